//! A fast hasher for the planner's maps (the Fx hash of rustc). Its keys are
//! keyed HMACs of BSNs and the organisation's own professional codes, which
//! an outsider can neither choose nor predict, so the DoS resistance of the
//! default SipHash buys nothing here, and SipHash was a fifth of the dry run.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};

#[derive(Debug, Default, Clone, Copy)]
pub struct BuildFast;

impl BuildHasher for BuildFast {
    type Hasher = Fast;
    fn build_hasher(&self) -> Fast {
        Fast(0)
    }
}

pub struct Fast(u64);

impl Fast {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Fast {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildFast>;
pub type FastSet<K> = HashSet<K, BuildFast>;

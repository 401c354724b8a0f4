//! A keyed hash of a child's BSN: how local state recognises a child without
//! keeping the number. The key is per installation, so the hashes mean nothing
//! elsewhere and cannot be reversed by trying all 10⁹ numbers without it.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Bsn;

/// 128 bits of HMAC-SHA256: collisions are out of reach for any index size.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectKey(pub [u8; 16]);

impl std::fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

#[derive(Clone)]
pub struct SubjectHasher {
    /// Keyed once; cloned per use, which skips re-hashing the key.
    mac: Hmac<Sha256>,
}

impl SubjectHasher {
    pub fn new(key: &[u8]) -> SubjectHasher {
        SubjectHasher {
            // HMAC accepts keys of any length.
            mac: Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length"),
        }
    }

    pub fn key(&self, bsn: &Bsn) -> SubjectKey {
        let mut mac = self.mac.clone();
        mac.update(bsn.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        SubjectKey(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_child_same_key_other_installation_other_key() {
        let b = Bsn::parse("123456782").unwrap();
        let a = SubjectHasher::new(b"installation-a");
        let c = SubjectHasher::new(b"installation-b");
        assert_eq!(a.key(&b), a.key(&b));
        assert_ne!(a.key(&b), c.key(&b));
        assert_ne!(a.key(&b), a.key(&Bsn::parse("111222333").unwrap()));
    }
}

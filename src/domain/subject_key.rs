//! A keyed hash of a child's BSN: how local state recognises a child without
//! keeping the number. The key is per installation, so the hashes mean nothing
//! elsewhere and cannot be reversed by trying all 10⁹ numbers without it.

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};

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

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const BLOCK: usize = 64;

/// HMAC-SHA256 (RFC 2104) over a BSN, with the key's two padded blocks
/// compressed once, when the key is loaded. A BSN and the inner hash each
/// fit one block with their padding, so a subject key costs exactly two
/// compressions and no copies: the HMAC is done once or twice per record of
/// every file, and the general `hmac` crate's state (cloned per use, with its
/// buffers) cost three times that. `same_as_the_hmac_crate` pins it.
#[derive(Clone)]
pub struct SubjectHasher {
    /// The state after the key XOR ipad, and after the key XOR opad.
    inner: [u32; 8],
    outer: [u32; 8],
}

impl SubjectHasher {
    pub fn new(key: &[u8]) -> SubjectHasher {
        // A key longer than a block is hashed first; any shorter one is
        // padded with zeros (RFC 2104, 2).
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let keyed = |pad: u8| {
            let mut state = IV;
            compress256(&mut state, &[block.map(|b| b ^ pad)]);
            state
        };
        SubjectHasher {
            inner: keyed(0x36),
            outer: keyed(0x5c),
        }
    }

    pub fn key(&self, bsn: &Bsn) -> SubjectKey {
        SubjectKey(self.mac(bsn.as_bytes()))
    }

    /// What the store keeps to recognise its key by (`store::open`): the
    /// HMAC of a fixed label, which says nothing of the key or of any child.
    pub fn fingerprint(&self) -> String {
        self.mac(b"visync subject key fingerprint v1")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The first 128 bits of the HMAC of a message of at most 55 bytes.
    fn mac(&self, message: &[u8]) -> [u8; 16] {
        let inner = Self::finish(self.inner, message);
        let mut digest = [0u8; 32];
        for (out, word) in digest.chunks_exact_mut(4).zip(inner) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        let outer = Self::finish(self.outer, &digest);
        let mut key = [0u8; 16];
        for (out, word) in key.chunks_exact_mut(4).zip(outer) {
            out.copy_from_slice(&word.to_be_bytes());
        }
        key
    }

    /// The hash of the keyed block followed by `message` (at most 55 bytes,
    /// so that it ends in one block with its padding: a BSN's 9, a digest's
    /// 32), from the state after the keyed block.
    fn finish(mut state: [u32; 8], message: &[u8]) -> [u32; 8] {
        let mut block = [0u8; BLOCK];
        block[..message.len()].copy_from_slice(message);
        block[message.len()] = 0x80;
        let bits = ((BLOCK + message.len()) * 8) as u64;
        block[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
        compress256(&mut state, &[block]);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};

    #[test]
    fn same_child_same_key_other_installation_other_key() {
        let b = Bsn::parse("123456782").unwrap();
        let a = SubjectHasher::new(b"installation-a");
        let c = SubjectHasher::new(b"installation-b");
        assert_eq!(a.key(&b), a.key(&b));
        assert_ne!(a.key(&b), c.key(&b));
        assert_ne!(a.key(&b), a.key(&Bsn::parse("111222333").unwrap()));
    }

    /// The stored keys were made with the `hmac` crate: every key length
    /// around the block size, many BSNs, the same 128 bits.
    #[test]
    fn same_as_the_hmac_crate() {
        let bsns: Vec<Bsn> = (100_000_000u32..)
            .filter_map(|n| Bsn::parse(&n.to_string()).ok())
            .take(200)
            .collect();
        for len in [0, 1, 16, 32, 55, 63, 64, 65, 100, 200] {
            let secret: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let fast = SubjectHasher::new(&secret);
            for bsn in &bsns {
                let mut mac = Hmac::<Sha256>::new_from_slice(&secret).unwrap();
                mac.update(bsn.as_bytes());
                let full = mac.finalize().into_bytes();
                assert_eq!(fast.key(bsn).0, full[..16], "key of {len} bytes");
            }
        }
    }
}

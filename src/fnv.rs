//! FNV-1a, 64-bit: the hash of a name where no defence against chosen
//! collisions is needed (the names are the workspace owner's own): the
//! byte of `run/supervisors.lock` a supervisor locks, and the sets of names
//! a scan of the registry keeps. SipHash, std's default, cost a fifth of
//! the instructions of starting one name among a thousand.

/// The hash of `bytes`.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h = Hasher::default();
    std::hash::Hasher::write(&mut h, bytes);
    h.0
}

/// For `HashSet`/`HashMap` keyed by names.
#[derive(Clone, Copy, Default)]
pub struct Build;

impl std::hash::BuildHasher for Build {
    type Hasher = Hasher;
    fn build_hasher(&self) -> Hasher {
        Hasher::default()
    }
}

pub struct Hasher(u64);

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Hasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(super::hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}

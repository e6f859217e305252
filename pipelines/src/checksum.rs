//! Internet checksums (RFC 1071) and their incremental update (RFC 1624).
//!
//! The fast path never recomputes a checksum over the payload: every rewrite adjusts the
//! stored value by the difference between old and new header words (RFC 1624, eqn. 3:
//! `HC' = ~(~HC + ~m + m')`). The full computations here exist for the slow path, for
//! offload pseudo-headers and for tests, which check every incremental result against them.

use std::net::IpAddr;

/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;

/// Adds the big-endian 16-bit words of `data` to `sum` (an odd trailing byte is padded
/// with zero, as RFC 768 prescribes). The result is folded to at most 16 bits.
#[inline]
pub fn sum_words(sum: u32, data: &[u8]) -> u32 {
    // Two words at a time as one 32-bit word: 2^16 ≡ 1 (mod 0xffff), so the folded sum is
    // the same, in half the additions. A u64 cannot overflow below 2^32 quads.
    let mut acc = u64::from(sum);
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        acc += u64::from(u32::from_be_bytes([q[0], q[1], q[2], q[3]]));
    }
    match *quads.remainder() {
        [a, b, c] => acc += u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        [a, b] => acc += u64::from(u16::from_be_bytes([a, b])),
        [a] => acc += u64::from(a) << 8,
        _ => {}
    }
    u32::from(fold64(acc))
}

/// Folds a 64-bit one's-complement accumulator to 16 bits (not complemented).
#[inline]
fn fold64(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    fold(u32::try_from(acc).unwrap_or(u32::MAX))
}

/// Folds a 32-bit one's-complement accumulator to 16 bits (not complemented).
#[inline]
pub fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 0xffff.
    u16::try_from(sum).unwrap_or(0xffff)
}

/// RFC 1624 update of checksum `check` for one 16-bit word changing from `old` to `new`.
#[inline]
pub fn update_word(check: u16, old: u16, new: u16) -> u16 {
    let sum = u32::from(!check) + u32::from(!old) + u32::from(new);
    !fold(sum)
}

/// RFC 1624 update of `check` for a field changing from `old` to `new` (equal, even
/// lengths: addresses, ports). Odd trailing bytes are ignored, so callers pass whole words.
#[inline]
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    // 32 bits at a time (see `sum_words`): !(a:b) = !a:!b, so this is the word-wise sum.
    let mut acc = u64::from(!check);
    let (mut o4, mut n4) = (old.chunks_exact(4), new.chunks_exact(4));
    for (o, n) in (&mut o4).zip(&mut n4) {
        acc += u64::from(!u32::from_be_bytes([o[0], o[1], o[2], o[3]]));
        acc += u64::from(u32::from_be_bytes([n[0], n[1], n[2], n[3]]));
    }
    if let ([o0, o1, ..], [n0, n1, ..]) = (o4.remainder(), n4.remainder()) {
        acc += u64::from(!u16::from_be_bytes([*o0, *o1]));
        acc += u64::from(u16::from_be_bytes([*n0, *n1]));
    }
    !fold64(acc)
}

/// Maps a computed UDP checksum to its wire form: 0 means "no checksum" in UDP, so a
/// computed 0 is sent as 0xFFFF (RFC 768).
#[inline]
pub fn udp_wire(check: u16) -> u16 {
    if check == 0 {
        0xffff
    } else {
        check
    }
}

/// Full IPv4 header checksum over `header` (with its checksum field as stored; a header
/// whose stored checksum is right yields 0).
#[inline]
pub fn ipv4_header_sum(header: &[u8]) -> u16 {
    !fold(sum_words(0, header))
}

/// Computes the IPv4 header checksum of `header`, treating its checksum field (bytes
/// 10..12) as zero.
pub fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum = sum_words(0, header.get(..10).unwrap_or(header));
    if let Some(rest) = header.get(12..) {
        sum = sum_words(sum, rest);
    }
    !fold(sum)
}

/// One's-complement sum of the UDP pseudo-header (RFC 768 / RFC 8200 §8.1), folded but not
/// complemented: exactly what DPDK's `rte_ipv4_phdr_cksum` / `rte_ipv6_phdr_cksum` return
/// and what a NIC with UDP checksum offload expects in the checksum field.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, udp_len: u32) -> u16 {
    fold(pseudo_header_acc(src, dst, udp_len))
}

fn pseudo_header_acc(src: IpAddr, dst: IpAddr, udp_len: u32) -> u32 {
    let mut sum = 0;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            sum = sum_words(sum, &s.octets());
            sum = sum_words(sum, &d.octets());
        }
        (s, d) => {
            sum = sum_words(sum, &to_v6_octets(s));
            sum = sum_words(sum, &to_v6_octets(d));
        }
    }
    sum += u32::from(IPPROTO_UDP);
    sum += udp_len >> 16;
    sum += udp_len & 0xffff;
    sum
}

fn to_v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// Whether a received UDP datagram (`udp`: header and payload, between `src` and `dst`)
/// carries an *unfinished* checksum: the field holds only the pseudo-header sum, as a Linux
/// sender with TX checksum offload leaves it for the NIC, and the datagram does not verify.
/// A veth passes such datagrams on as they are, so kernel-attached PMDs (AF_XDP,
/// AF_PACKET) see them. Cheap: a pseudo-header sum and one compare; only a match (also one
/// valid datagram in 65,535, by chance) pays for the full verification that decides.
pub fn is_unfinished_udp(src: IpAddr, dst: IpAddr, udp: &[u8]) -> bool {
    let Some(&[hi, lo]) = udp.get(6..8) else {
        return false;
    };
    let stored = u16::from_be_bytes([hi, lo]);
    let len = u32::try_from(udp.len()).unwrap_or(u32::MAX);
    // 0 is "no checksum" (IPv4), never a pseudo-header sum of a UDP datagram.
    if stored == 0 || stored != pseudo_header_sum(src, dst, len) {
        return false;
    }
    fold(sum_words(pseudo_header_acc(src, dst, len), udp)) != 0xffff
}

/// Full UDP checksum (wire form, so never 0) of `udp` (header + payload, with its checksum
/// field treated as zero) between `src` and `dst`.
pub fn udp_checksum(src: IpAddr, dst: IpAddr, udp: &[u8]) -> u16 {
    let len = u32::try_from(udp.len()).unwrap_or(u32::MAX);
    let mut sum = pseudo_header_acc(src, dst, len);
    sum = sum_words(sum, udp.get(..6).unwrap_or(udp));
    if let Some(rest) = udp.get(8..) {
        sum = sum_words(sum, rest);
    }
    udp_wire(!fold(sum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// RFC 1071 §3 worked example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum_words(0, &data)), 0xddf2);
    }

    /// A well-known IPv4 header (from Wikipedia's checksum article) with checksum b861.
    #[test]
    fn ipv4_header_known_value() {
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&hdr), 0xb861);
        assert_eq!(ipv4_header_sum(&hdr), 0);
    }

    #[test]
    fn incremental_matches_full_for_address_change() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let old = [0xc0, 0xa8, 0x00, 0xc7];
        let new = [198, 18, 7, 9];
        hdr[16..20].copy_from_slice(&new);
        let inc = update(0xb861, &old, &new);
        assert_eq!(inc, ipv4_header_checksum(&hdr));
    }

    #[test]
    fn update_word_ttl_decrement() {
        // TTL 0x40 -> 0x3f in the ttl/protocol word of the header above.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        hdr[8] = 0x3f;
        assert_eq!(
            update_word(0xb861, 0x4011, 0x3f11),
            ipv4_header_checksum(&hdr)
        );
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        assert_eq!(udp_wire(0), 0xffff);
        assert_eq!(udp_wire(0x1234), 0x1234);
    }

    #[test]
    fn udp_checksum_validates_to_zero_sum() {
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
        let mut udp = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0b, 0, 0, b'a', b'b', b'c'];
        let c = udp_checksum(src, dst, &udp);
        udp[6..8].copy_from_slice(&c.to_be_bytes());
        let total = fold(sum_words(pseudo_header_acc(src, dst, 11), &udp));
        assert_eq!(total, 0xffff);
    }

    #[test]
    fn unfinished_checksum_is_the_bare_pseudo_header_sum_and_must_fail_verification() {
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
        let dst = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
        // Pseudo-header words c612 0001 c613 0002 0011 000b sum to 0x18c44, folded 0x8c45.
        let mut udp = [
            0x30, 0x39, 0x00, 0x35, 0x00, 0x0b, 0x8c, 0x45, b'a', b'b', b'c',
        ];
        assert_eq!(pseudo_header_sum(src, dst, 11), 0x8c45);
        assert!(is_unfinished_udp(src, dst, &udp));
        let full = udp_checksum(src, dst, &udp);
        udp[6..8].copy_from_slice(&full.to_be_bytes());
        assert!(!is_unfinished_udp(src, dst, &udp), "a finished checksum");
        udp[6..8].copy_from_slice(&[0, 0]);
        assert!(!is_unfinished_udp(src, dst, &udp), "no checksum (IPv4)");
        assert!(!is_unfinished_udp(src, dst, &udp[..7]), "cut short");
        // A valid datagram whose checksum happens to equal the pseudo-header sum (0x8c46
        // for 12 bytes) is fine: the last payload word is chosen so that it verifies.
        let mut lucky = [
            0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x8c, 0x46, b'a', b'b', 0, 0,
        ];
        assert_eq!(pseudo_header_sum(src, dst, 12), 0x8c46);
        let pseudo = pseudo_header_acc(src, dst, 12);
        let partial = fold(sum_words(pseudo, &lucky));
        lucky[10..12].copy_from_slice(&(!partial).to_be_bytes());
        assert_eq!(fold(sum_words(pseudo, &lucky)), 0xffff, "it verifies");
        assert!(!is_unfinished_udp(src, dst, &lucky));
    }

    /// Word-at-a-time reference (RFC 1071 as written).
    fn reference_sum(data: &[u8]) -> u16 {
        let mut sum: u64 = data
            .chunks(2)
            .map(|w| u64::from(w[0]) << 8 | w.get(1).map_or(0, |&b| u64::from(b)))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        u16::try_from(sum).unwrap()
    }

    proptest::proptest! {
        #[test]
        fn wide_sums_match_word_sums(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            proptest::prop_assert_eq!(fold(sum_words(0, &data)), reference_sum(&data));
        }

        #[test]
        fn wide_update_matches_word_update(
            check in proptest::prelude::any::<u16>(),
            pairs in proptest::collection::vec(proptest::prelude::any::<(u16, u16)>(), 0..20),
        ) {
            let old: Vec<u8> = pairs.iter().flat_map(|p| p.0.to_be_bytes()).collect();
            let new: Vec<u8> = pairs.iter().flat_map(|p| p.1.to_be_bytes()).collect();
            // RFC 1624 eqn. 3 one 16-bit word at a time, in one accumulator.
            let mut sum = u64::from(!check);
            for &(o, n) in &pairs {
                sum += u64::from(!o) + u64::from(n);
            }
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            proptest::prop_assert_eq!(update(check, &old, &new), !u16::try_from(sum).unwrap());
        }
    }
}

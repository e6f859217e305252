//! Named-field views over header bytes, for rewriting in place.
//!
//! etherparse slices are read-only; the fast path rewrites through these views instead.
//! Each view wraps a buffer `T` that starts at its header, names every byte range it
//! touches in a private `field` module and reads or writes with offset accesses: nothing is
//! cast to a `#[repr(C)]` struct, so alignment never matters. Setters exist only when
//! `T: AsMut<[u8]>`.
//!
//! Views are built with `new_checked`, which verifies the buffer is long enough for every
//! field, so no accessor can panic afterwards. The fast path only builds them on offsets
//! that [`crate::parse`] has validated.

/// A byte range within a header.
type Field = std::ops::Range<usize>;

/// The buffer is shorter than the header the view needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

fn read_u16(b: &[u8], f: Field) -> u16 {
    let mut w = [0u8; 2];
    w.copy_from_slice(&b[f]);
    u16::from_be_bytes(w)
}

fn write_u16(b: &mut [u8], f: Field, v: u16) {
    b[f].copy_from_slice(&v.to_be_bytes());
}

/// Ethernet II header.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Destination MAC (6 octets)                 |
/// +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                               |                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+       Source MAC (6 octets)   +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           EtherType           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug)]
pub struct Ethernet<T> {
    buf: T,
}

mod eth_field {
    use super::Field;
    pub(super) const DST: Field = 0..6;
    pub(super) const SRC: Field = 6..12;
    pub(super) const ETHERTYPE: Field = 12..14;
}

impl<T: AsRef<[u8]>> Ethernet<T> {
    /// Ethernet II header length (without VLAN tags).
    pub const HEADER_LEN: usize = eth_field::ETHERTYPE.end;

    /// Wraps `buf` after checking it holds a whole header.
    ///
    /// # Errors
    /// [`Truncated`] when `buf` is shorter than [`Self::HEADER_LEN`].
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        if buf.as_ref().len() < Self::HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Self { buf })
    }

    /// Destination MAC.
    pub fn dst(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf.as_ref()[eth_field::DST]);
        m
    }

    /// Source MAC.
    pub fn src(&self) -> [u8; 6] {
        let mut m = [0; 6];
        m.copy_from_slice(&self.buf.as_ref()[eth_field::SRC]);
        m
    }

    /// Outer EtherType (0x8100 / 0x88a8 when VLAN tagged).
    pub fn ethertype(&self) -> u16 {
        read_u16(self.buf.as_ref(), eth_field::ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ethernet<T> {
    /// Sets the destination MAC.
    pub fn set_dst(&mut self, mac: [u8; 6]) {
        self.buf.as_mut()[eth_field::DST].copy_from_slice(&mac);
    }

    /// Sets the source MAC.
    pub fn set_src(&mut self, mac: [u8; 6]) {
        self.buf.as_mut()[eth_field::SRC].copy_from_slice(&mac);
    }
}

/// IPv4 header (RFC 791). Options, if any, follow byte 20 and are never touched.
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version|  IHL  |Type of Service|          Total Length         |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Identification        |Flags|      Fragment Offset    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |  Time to Live |    Protocol   |         Header Checksum       |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                       Source Address                          |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                    Destination Address                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug)]
pub struct Ipv4<T> {
    buf: T,
}

mod ipv4_field {
    use super::Field;
    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOTAL_LEN: Field = 2..4;
    pub(super) const FLAGS_FRAGMENT: Field = 6..8;
    pub(super) const TTL: usize = 8;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const TTL_PROTO: Field = 8..10;
    pub(super) const CHECKSUM: Field = 10..12;
    pub(super) const SRC: Field = 12..16;
    pub(super) const DST: Field = 16..20;
}

impl<T: AsRef<[u8]>> Ipv4<T> {
    /// Length of the header without options.
    pub const MIN_HEADER_LEN: usize = ipv4_field::DST.end;

    /// Wraps `buf` after checking it holds the fixed header.
    ///
    /// # Errors
    /// [`Truncated`] when `buf` is shorter than 20 bytes.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        if buf.as_ref().len() < Self::MIN_HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Self { buf })
    }

    /// Version field (4 for a well-formed header).
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[ipv4_field::VER_IHL] >> 4
    }

    /// Flags and fragment offset (16 bits); `& 0x3fff != 0` means a fragment.
    pub fn flags_fragment(&self) -> u16 {
        read_u16(self.buf.as_ref(), ipv4_field::FLAGS_FRAGMENT)
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buf.as_ref()[ipv4_field::VER_IHL] & 0x0f) * 4
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buf.as_ref(), ipv4_field::TOTAL_LEN)
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[ipv4_field::TTL]
    }

    /// Protocol number.
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[ipv4_field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buf.as_ref(), ipv4_field::CHECKSUM)
    }

    /// Source address.
    pub fn src(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buf.as_ref()[ipv4_field::SRC]);
        a
    }

    /// Destination address.
    pub fn dst(&self) -> [u8; 4] {
        let mut a = [0; 4];
        a.copy_from_slice(&self.buf.as_ref()[ipv4_field::DST]);
        a
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4<T> {
    /// Decrements the TTL, updating the header checksum incrementally; returns the new TTL.
    pub fn decrement_ttl(&mut self) -> u8 {
        let old = read_u16(self.buf.as_ref(), ipv4_field::TTL_PROTO);
        let ttl = self.ttl().wrapping_sub(1);
        self.buf.as_mut()[ipv4_field::TTL] = ttl;
        let new = read_u16(self.buf.as_ref(), ipv4_field::TTL_PROTO);
        let c = crate::checksum::update_word(self.checksum(), old, new);
        self.set_checksum(c);
        ttl
    }

    /// Sets both addresses and decrements the TTL with one incremental checksum update
    /// (the forwarding rewrite); returns the new TTL.
    pub fn rewrite_for_forwarding(&mut self, src: [u8; 4], dst: [u8; 4]) -> u8 {
        let mut old = [0u8; 10];
        old[..4].copy_from_slice(&self.src());
        old[4..8].copy_from_slice(&self.dst());
        old[8..].copy_from_slice(&self.buf.as_ref()[ipv4_field::TTL_PROTO]);
        let ttl = self.ttl().wrapping_sub(1);
        let b = self.buf.as_mut();
        b[ipv4_field::SRC].copy_from_slice(&src);
        b[ipv4_field::DST].copy_from_slice(&dst);
        b[ipv4_field::TTL] = ttl;
        let mut new = [0u8; 10];
        new[..4].copy_from_slice(&src);
        new[4..8].copy_from_slice(&dst);
        new[8..].copy_from_slice(&self.buf.as_ref()[ipv4_field::TTL_PROTO]);
        let c = crate::checksum::update(self.checksum(), &old, &new);
        self.set_checksum(c);
        ttl
    }

    /// Sets the source address, updating the header checksum incrementally.
    pub fn set_src(&mut self, addr: [u8; 4]) {
        let c = crate::checksum::update(self.checksum(), &self.src(), &addr);
        self.buf.as_mut()[ipv4_field::SRC].copy_from_slice(&addr);
        self.set_checksum(c);
    }

    /// Sets the destination address, updating the header checksum incrementally.
    pub fn set_dst(&mut self, addr: [u8; 4]) {
        let c = crate::checksum::update(self.checksum(), &self.dst(), &addr);
        self.buf.as_mut()[ipv4_field::DST].copy_from_slice(&addr);
        self.set_checksum(c);
    }

    /// Writes the header checksum field as is (0 when the NIC computes it).
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buf.as_mut(), ipv4_field::CHECKSUM, c);
    }
}

/// IPv6 fixed header (RFC 8200). Extension headers follow and are never touched.
///
/// ```text
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Traffic Class |           Flow Label                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |         Payload Length        |  Next Header  |   Hop Limit   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                 Source Address (16 octets)                    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |              Destination Address (16 octets)                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
#[derive(Debug)]
pub struct Ipv6<T> {
    buf: T,
}

mod ipv6_field {
    use super::Field;
    pub(super) const VERSION: usize = 0;
    pub(super) const PAYLOAD_LEN: Field = 4..6;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const HOP_LIMIT: usize = 7;
    pub(super) const SRC: Field = 8..24;
    pub(super) const DST: Field = 24..40;
}

impl<T: AsRef<[u8]>> Ipv6<T> {
    /// Fixed header length.
    pub const HEADER_LEN: usize = ipv6_field::DST.end;

    /// Wraps `buf` after checking it holds the fixed header.
    ///
    /// # Errors
    /// [`Truncated`] when `buf` is shorter than 40 bytes.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        if buf.as_ref().len() < Self::HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Self { buf })
    }

    /// Version field (6 for a well-formed header).
    pub fn version(&self) -> u8 {
        self.buf.as_ref()[ipv6_field::VERSION] >> 4
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buf.as_ref(), ipv6_field::PAYLOAD_LEN)
    }

    /// Next header (the protocol of the payload when there are no extension headers).
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[ipv6_field::NEXT_HEADER]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[ipv6_field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buf.as_ref()[ipv6_field::SRC]);
        a
    }

    /// Destination address.
    pub fn dst(&self) -> [u8; 16] {
        let mut a = [0; 16];
        a.copy_from_slice(&self.buf.as_ref()[ipv6_field::DST]);
        a
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6<T> {
    /// Decrements the hop limit (IPv6 has no header checksum); returns the new value.
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let h = self.hop_limit().wrapping_sub(1);
        self.buf.as_mut()[ipv6_field::HOP_LIMIT] = h;
        h
    }

    /// Sets the source address.
    pub fn set_src(&mut self, addr: [u8; 16]) {
        self.buf.as_mut()[ipv6_field::SRC].copy_from_slice(&addr);
    }

    /// Sets the destination address.
    pub fn set_dst(&mut self, addr: [u8; 16]) {
        self.buf.as_mut()[ipv6_field::DST].copy_from_slice(&addr);
    }
}

/// UDP header (RFC 768).
///
/// ```text
///  0      7 8     15 16    23 24    31
/// +--------+--------+--------+--------+
/// |     Source      |   Destination   |
/// |      Port       |      Port       |
/// +--------+--------+--------+--------+
/// |     Length      |    Checksum     |
/// +--------+--------+--------+--------+
/// ```
#[derive(Debug)]
pub struct Udp<T> {
    buf: T,
}

mod udp_field {
    use super::Field;
    pub(super) const SRC_PORT: Field = 0..2;
    pub(super) const DST_PORT: Field = 2..4;
    pub(super) const LENGTH: Field = 4..6;
    pub(super) const CHECKSUM: Field = 6..8;
}

impl<T: AsRef<[u8]>> Udp<T> {
    /// UDP header length.
    pub const HEADER_LEN: usize = udp_field::CHECKSUM.end;

    /// Wraps `buf` after checking it holds the header.
    ///
    /// # Errors
    /// [`Truncated`] when `buf` is shorter than 8 bytes.
    pub fn new_checked(buf: T) -> Result<Self, Truncated> {
        if buf.as_ref().len() < Self::HEADER_LEN {
            return Err(Truncated);
        }
        Ok(Self { buf })
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buf.as_ref(), udp_field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buf.as_ref(), udp_field::DST_PORT)
    }

    /// Length field (header + payload).
    pub fn length(&self) -> u16 {
        read_u16(self.buf.as_ref(), udp_field::LENGTH)
    }

    /// Checksum field (0 = none, IPv4 only).
    pub fn checksum(&self) -> u16 {
        read_u16(self.buf.as_ref(), udp_field::CHECKSUM)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Udp<T> {
    /// Sets the source port (checksum is the caller's business: see
    /// [`crate::checksum::update_word`]).
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(self.buf.as_mut(), udp_field::SRC_PORT, port);
    }

    /// Sets the destination port (checksum is the caller's business).
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(self.buf.as_mut(), udp_field::DST_PORT, port);
    }

    /// Writes the checksum field as is.
    pub fn set_checksum(&mut self, c: u16) {
        write_u16(self.buf.as_mut(), udp_field::CHECKSUM, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static UDP_BYTES: [u8; 8] = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0xab, 0xcd];

    #[test]
    fn udp_deconstruct() {
        let u = Udp::new_checked(&UDP_BYTES[..]).unwrap();
        assert_eq!(u.src_port(), 12345);
        assert_eq!(u.dst_port(), 53);
        assert_eq!(u.length(), 12);
        assert_eq!(u.checksum(), 0xabcd);
    }

    #[test]
    fn udp_construct_into_a5_buffer() {
        let mut buf = [0xa5u8; 8];
        let mut u = Udp::new_checked(&mut buf[..]).unwrap();
        u.set_src_port(12345);
        u.set_dst_port(53);
        u.set_checksum(0xabcd);
        assert_eq!(buf, [0x30, 0x39, 0x00, 0x35, 0xa5, 0xa5, 0xab, 0xcd]);
    }

    #[test]
    fn truncated_views_are_refused() {
        assert_eq!(Udp::new_checked(&[0u8; 7][..]).err(), Some(Truncated));
        assert_eq!(Ipv4::new_checked(&[0u8; 19][..]).err(), Some(Truncated));
        assert_eq!(Ipv6::new_checked(&[0u8; 39][..]).err(), Some(Truncated));
        assert_eq!(Ethernet::new_checked(&[0u8; 13][..]).err(), Some(Truncated));
    }

    #[test]
    fn ipv4_setters_keep_checksum_valid() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let mut ip = Ipv4::new_checked(&mut hdr[..]).unwrap();
        ip.set_src([198, 18, 0, 1]);
        ip.set_dst([198, 19, 255, 254]);
        assert_eq!(ip.decrement_ttl(), 0x3f);
        assert_eq!(&hdr[12..20], &[198, 18, 0, 1, 198, 19, 255, 254]);
        assert_eq!(hdr[8], 0x3f);
        assert_eq!(crate::checksum::ipv4_header_sum(&hdr), 0);
    }

    #[test]
    fn combined_forwarding_rewrite_matches_full_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let mut ip = Ipv4::new_checked(&mut hdr[..]).unwrap();
        assert_eq!(
            ip.rewrite_for_forwarding([198, 18, 1, 253], [198, 18, 1, 1]),
            0x3f
        );
        assert_eq!(&hdr[12..20], &[198, 18, 1, 253, 198, 18, 1, 1]);
        assert_eq!(hdr[8], 0x3f);
        let stored = u16::from_be_bytes([hdr[10], hdr[11]]);
        assert_eq!(stored, crate::checksum::ipv4_header_checksum(&hdr));
    }

    #[test]
    fn ethernet_and_ipv6_fields() {
        let mut frame = [0xa5u8; 14];
        let mut e = Ethernet::new_checked(&mut frame[..]).unwrap();
        e.set_dst([2, 0, 0, 0, 0, 1]);
        e.set_src([2, 0, 0, 0, 0, 2]);
        assert_eq!(e.dst(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(e.src(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(e.ethertype(), 0xa5a5);

        let mut v6 = [0u8; 40];
        v6[7] = 2;
        let mut ip = Ipv6::new_checked(&mut v6[..]).unwrap();
        assert_eq!(ip.decrement_hop_limit(), 1);
        ip.set_dst([0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        assert_eq!(ip.dst()[15], 9);
        assert_eq!(v6[7], 1);
    }
}

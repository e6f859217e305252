//! Frame builders: every frame the slow path sends is written here through smoltcp's wire
//! representations into one reused buffer, checksums computed in software (the slow path
//! is rare traffic; offload is not worth a special case).

use std::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv4Message, Icmpv4Packet, Icmpv4Repr, Icmpv6Message, Icmpv6Packet, Icmpv6Repr,
    IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags, NdiscRepr,
    RawHardwareAddress, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, IPV6_HEADER_LEN,
};

/// Shortest Ethernet frame without FCS; shorter frames are zero-padded, since not every
/// DPDK PMD pads runts.
pub(crate) const MIN_FRAME_LEN: usize = 60;
/// Hop limit of echo replies and ICMP errors.
pub(crate) const DEFAULT_HOP_LIMIT: u8 = 64;
/// RFC 4861 §6.1.2: every ND message is sent and accepted with hop limit 255 only.
pub(crate) const ND_HOP_LIMIT: u8 = 255;
/// RFC 4443 §2.4(c): an ICMPv6 error must not exceed the minimum IPv6 MTU.
pub(crate) const IPV6_MIN_MTU: usize = 1280;
/// ICMP error header (type, code, checksum, unused / MTU / pointer).
const ICMP_ERROR_HEADER_LEN: usize = 8;

/// The Ethernet ends of a frame to emit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    pub(crate) src: EthernetAddress,
    pub(crate) dst: EthernetAddress,
}

/// Resets `buf` to a zeroed frame of `l3_len` bytes after the Ethernet header (padded to
/// the minimum), writes the Ethernet header and returns the L3 part.
fn frame(buf: &mut Vec<u8>, link: Link, ethertype: EthernetProtocol, l3_len: usize) -> &mut [u8] {
    buf.clear();
    buf.resize((ETHERNET_HEADER_LEN + l3_len).max(MIN_FRAME_LEN), 0);
    let mut eth = EthernetFrame::new_unchecked(&mut buf[..]);
    EthernetRepr {
        src_addr: link.src,
        dst_addr: link.dst,
        ethertype,
    }
    .emit(&mut eth);
    &mut buf[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + l3_len]
}

/// An ARP packet of either operation.
pub(crate) fn arp(buf: &mut Vec<u8>, link: Link, repr: &ArpRepr) {
    let l3 = frame(buf, link, EthernetProtocol::Arp, repr.buffer_len());
    repr.emit(&mut ArpPacket::new_unchecked(l3));
}

/// An ARP request for `target` from `(src_mac, src_ip)`, broadcast.
pub(crate) fn arp_request(
    buf: &mut Vec<u8>,
    src_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    target: Ipv4Addr,
) {
    let link = Link {
        src: src_mac,
        dst: EthernetAddress::BROADCAST,
    };
    let repr = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: src_mac,
        source_protocol_addr: src_ip,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    arp(buf, link, &repr);
}

/// An IPv4 packet carrying `payload_len` bytes of ICMP written by `icmp`.
fn ipv4_icmp(
    buf: &mut Vec<u8>,
    link: Link,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload_len: usize,
    icmp: impl FnOnce(&mut Icmpv4Packet<&mut [u8]>),
) {
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmp,
        payload_len,
        hop_limit: DEFAULT_HOP_LIMIT,
    };
    let l3 = frame(
        buf,
        link,
        EthernetProtocol::Ipv4,
        IPV4_HEADER_LEN + payload_len,
    );
    let mut packet = Ipv4Packet::new_unchecked(&mut *l3);
    ip.emit(&mut packet, &ChecksumCapabilities::default());
    icmp(&mut Icmpv4Packet::new_unchecked(&mut l3[IPV4_HEADER_LEN..]));
}

/// An IPv6 packet carrying `payload_len` bytes of ICMPv6 written by `icmp`.
fn ipv6_icmp(
    buf: &mut Vec<u8>,
    link: Link,
    ip: Ipv6Repr,
    icmp: impl FnOnce(&mut Icmpv6Packet<&mut [u8]>),
) {
    let l3 = frame(
        buf,
        link,
        EthernetProtocol::Ipv6,
        IPV6_HEADER_LEN + ip.payload_len,
    );
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut *l3));
    icmp(&mut Icmpv6Packet::new_unchecked(&mut l3[IPV6_HEADER_LEN..]));
}

/// An ICMPv4 echo reply mirroring a request's identifier, sequence number and data.
pub(crate) fn echo_reply_v4(
    buf: &mut Vec<u8>,
    link: Link,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) {
    let repr = Icmpv4Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    ipv4_icmp(buf, link, src, dst, repr.buffer_len(), |icmp| {
        repr.emit(icmp, &ChecksumCapabilities::default());
    });
}

/// An ICMPv6 echo reply mirroring a request's identifier, sequence number and data.
pub(crate) fn echo_reply_v6(
    buf: &mut Vec<u8>,
    link: Link,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq_no: u16,
    data: &[u8],
) {
    let repr = Icmpv6Repr::EchoReply {
        ident,
        seq_no,
        data,
    };
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: repr.buffer_len(),
        hop_limit: DEFAULT_HOP_LIMIT,
    };
    ipv6_icmp(buf, link, ip, |icmp| {
        repr.emit(&src, &dst, icmp, &ChecksumCapabilities::default())
    });
}

/// A neighbor discovery message (NS or NA) with hop limit 255.
pub(crate) fn ndisc(
    buf: &mut Vec<u8>,
    link: Link,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    repr: NdiscRepr<'_>,
) {
    let repr = Icmpv6Repr::Ndisc(repr);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: repr.buffer_len(),
        hop_limit: ND_HOP_LIMIT,
    };
    ipv6_icmp(buf, link, ip, |icmp| {
        repr.emit(&src, &dst, icmp, &ChecksumCapabilities::default())
    });
}

/// A neighbor advertisement for `target` (an address we answer for) with our MAC as the
/// target link-layer option.
pub(crate) fn neighbor_advert(
    buf: &mut Vec<u8>,
    link: Link,
    target: Ipv6Addr,
    dst: Ipv6Addr,
    solicited: bool,
) {
    let mut flags = NdiscNeighborFlags::OVERRIDE;
    flags.set(NdiscNeighborFlags::SOLICITED, solicited);
    let repr = NdiscRepr::NeighborAdvert {
        flags,
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(link.src)),
    };
    ndisc(buf, link, target, dst, repr);
}

/// RFC 4291 §2.7.1: ff02::1:ffXX:XXXX from the low 24 bits of `target`.
pub(crate) fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// RFC 2464 §7: 33:33 followed by the low 32 bits of the multicast address.
pub(crate) fn multicast_mac(group: Ipv6Addr) -> EthernetAddress {
    let o = group.octets();
    EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// A neighbor solicitation for `target` to its solicited-node group, with our MAC as the
/// source link-layer option.
pub(crate) fn neighbor_solicit(
    buf: &mut Vec<u8>,
    src_mac: EthernetAddress,
    src: Ipv6Addr,
    target: Ipv6Addr,
) {
    let group = solicited_node(target);
    let link = Link {
        src: src_mac,
        dst: multicast_mac(group),
    };
    let repr = NdiscRepr::NeighborSolicit {
        target_addr: target,
        lladdr: Some(RawHardwareAddress::from(src_mac)),
    };
    ndisc(buf, link, src, group, repr);
}

/// The first 8 bytes of an ICMP error but its checksum: type, code and the 32-bit word
/// after the checksum (unused, next-hop MTU in its low 16 bits, MTU or pointer, by type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ErrorHeader {
    pub(crate) msg_type: u8,
    pub(crate) code: u8,
    pub(crate) word: u32,
}

/// An ICMPv4 error quoting `offending` (the caller cuts it: the original IP header and the
/// first 8 bytes of its payload, RFC 792), bytes unchanged.
pub(crate) fn icmp_error_v4(
    buf: &mut Vec<u8>,
    link: Link,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    header: ErrorHeader,
    offending: &[u8],
) {
    let payload_len = ICMP_ERROR_HEADER_LEN + offending.len();
    ipv4_icmp(buf, link, src, dst, payload_len, |icmp| {
        // Written field by field: the quote must stay byte-exact, which the `Icmpv4Repr`
        // error variants would not keep (they re-emit the quoted header).
        icmp.set_msg_type(Icmpv4Message::from(header.msg_type));
        icmp.set_msg_code(header.code);
        // Bytes 4..8 through the echo setters, which address them whatever the type.
        let [a, b, c, d] = header.word.to_be_bytes();
        icmp.set_echo_ident(u16::from_be_bytes([a, b]));
        icmp.set_echo_seq_no(u16::from_be_bytes([c, d]));
        icmp.data_mut()[..offending.len()].copy_from_slice(offending);
        icmp.fill_checksum();
    });
}

/// Largest quote that keeps an ICMPv6 error within the IPv6 minimum MTU.
pub(crate) const MAX_V6_QUOTE: usize = IPV6_MIN_MTU - IPV6_HEADER_LEN - ICMP_ERROR_HEADER_LEN;

/// An ICMPv6 error quoting as much of the offending packet as fits in 1280 bytes (RFC
/// 4443 §2.4(c)); the checksum covers the pseudo-header.
pub(crate) fn icmp_error_v6(
    buf: &mut Vec<u8>,
    link: Link,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    header: ErrorHeader,
    offending: &[u8],
) {
    let quote = &offending[..offending.len().min(MAX_V6_QUOTE)];
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: ICMP_ERROR_HEADER_LEN + quote.len(),
        hop_limit: DEFAULT_HOP_LIMIT,
    };
    ipv6_icmp(buf, link, ip, |icmp| {
        icmp.set_msg_type(Icmpv6Message::from(header.msg_type));
        icmp.set_msg_code(header.code);
        // Bytes 4..8 through the MTU setter, which addresses them whatever the type.
        icmp.set_pkt_too_big_mtu(header.word);
        icmp.payload_mut()[..quote.len()].copy_from_slice(quote);
        icmp.fill_checksum(&src, &dst);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);

    #[test]
    fn arp_request_bytes() {
        let mut buf = vec![0xa5; 100];
        arp_request(
            &mut buf,
            MAC,
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
        );
        let mut expected = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06, // Ethernet
            0, 1, 0x08, 0, 6, 4, 0, 1, // htype, ptype, hlen, plen, request
            0x02, 0, 0, 0, 0, 1, 198, 18, 0, 1, // sender
            0, 0, 0, 0, 0, 0, 198, 18, 0, 2, // target
        ];
        expected.resize(60, 0);
        assert_eq!(buf, expected);
    }

    #[test]
    fn solicited_node_group_and_mac() {
        let target: Ipv6Addr = "2001:2::1234:5678".parse().unwrap();
        let group = solicited_node(target);
        assert_eq!(group, "ff02::1:ff34:5678".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            multicast_mac(group),
            EthernetAddress([0x33, 0x33, 0xff, 0x34, 0x56, 0x78])
        );
    }

    const FRAG_NEEDED: ErrorHeader = ErrorHeader {
        msg_type: 3,
        code: 4,
        word: 1280,
    };

    #[test]
    fn icmp_error_v4_quotes_bytes_verbatim() {
        let offending: Vec<u8> = (0u8..28).collect();
        let mut buf = vec![0xa5; 10];
        let link = Link {
            src: MAC,
            dst: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
        };
        icmp_error_v4(
            &mut buf,
            link,
            Ipv4Addr::new(198, 18, 1, 1),
            Ipv4Addr::new(198, 18, 2, 2),
            FRAG_NEEDED,
            &offending,
        );
        assert_eq!(buf.len(), 14 + 20 + 8 + 28);
        let icmp = &buf[34..];
        assert_eq!(&icmp[..2], &[3, 4]);
        assert_eq!(&icmp[4..8], &[0, 0, 0x05, 0x00], "next-hop MTU 1280");
        assert_eq!(&icmp[8..], &offending[..]);
        assert!(Icmpv4Packet::new_checked(icmp).unwrap().verify_checksum());
    }

    #[test]
    fn icmp_error_v6_truncates_to_the_minimum_mtu() {
        let offending = vec![0x5a; 2000];
        let mut buf = Vec::new();
        let link = Link {
            src: MAC,
            dst: EthernetAddress([0x02, 0, 0, 0, 0, 2]),
        };
        let (src, dst) = ("2001:2::1".parse().unwrap(), "2001:2::2".parse().unwrap());
        let header = ErrorHeader {
            msg_type: 1,
            code: 1,
            word: 0,
        };
        icmp_error_v6(&mut buf, link, src, dst, header, &offending);
        assert_eq!(buf.len(), 14 + IPV6_MIN_MTU);
        let icmp = Icmpv6Packet::new_checked(&buf[54..]).unwrap();
        assert!(icmp.verify_checksum(&src, &dst));
        assert_eq!(
            (icmp.msg_type(), icmp.msg_code()),
            (Icmpv6Message::DstUnreachable, 1)
        );
    }
}

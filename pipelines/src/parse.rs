//! Parsing at the border: etherparse checks the frame once, and the result is reduced at
//! once to a `Copy` [`ParsedUdp`] (or a non-UDP [`Parsed`] class). Everything downstream
//! classifies, pins and counts on that value, never on bytes.
//!
//! Accepted: Ethernet II, up to two VLAN tags (802.1Q / 802.1ad QinQ), IPv4 with options,
//! IPv6 with the extension headers etherparse walks (hop-by-hop, routing, fragment,
//! destination options, authentication — each bounded, so the walk is bounded), UDP.
//!
//! Decisions:
//! - The IPv4 header checksum is verified (20–60 bytes, cheap); a bad one is dropped.
//! - The UDP checksum is **not** verified per packet: rewrites are incremental, so a wrong
//!   checksum stays wrong and the receiver drops the datagram, as it would have without us.
//!   (The worker looks for unfinished checksums on kernel-attached ports only:
//!   [`crate::checksum::is_unfinished_udp`].)
//! - Fragments are classified as [`Parsed::Fragment`] without further work (they are rare
//!   and leave the hot path): the fragment handler reads them again with [`fragment`],
//!   which keeps what following a datagram fragment by fragment needs ([`ParsedFragment`]:
//!   the (source, destination, identification) key, offset, more-fragments, and for the
//!   first fragment its UDP header). There is no reassembly.
//! - The UDP length field must equal the IP payload length (after IPv6 extension headers).
//!
//! Speed: nearly all traffic is Ethernet, ≤ 2 VLAN tags, IPv4 without options or IPv6
//! without extension headers, then UDP. [`parse`] first tries a narrow hand-written reader
//! for exactly that shape (through the [`crate::wire`] views); it only ever *accepts*, and
//! only frames etherparse would accept with the same result. Anything else — every drop,
//! ARP, ICMP, options, extension headers, odd lengths — goes through etherparse, so the
//! drop reasons come from one place.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::packet::SliceError;
use etherparse::err::Layer;
use etherparse::{IpNumber, LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::checksum;
use crate::verdict::DropReason;
use crate::wire::{Ethernet, Ipv4, Ipv6, Udp};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const VLAN_TAG_LEN: usize = 4;
const PROTO_UDP: u8 = 17;

/// The addresses and ports of a UDP datagram, as seen on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// A validated UDP datagram, reduced to what the fast path needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedUdp {
    /// Addresses and ports.
    pub flow: FlowKey,
    /// Offset of the IP header (Ethernet + VLAN tags length).
    pub l3_off: u16,
    /// Offset of the UDP header (after IPv4 options / IPv6 extension headers).
    pub l4_off: u16,
    /// UDP length (header + payload).
    pub udp_len: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Number of VLAN tags (0, 1 or 2).
    pub vlans: u8,
}

impl ParsedUdp {
    /// The packet is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.flow.dst.is_ipv6()
    }
}

/// The outcome of parsing one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A UDP datagram (not a fragment).
    Udp(ParsedUdp),
    /// ARP.
    Arp,
    /// ICMPv4 or ICMPv6 (not a fragment).
    Icmp,
    /// An IP fragment (IPv4 with more-fragments or an offset, IPv6 with a fragmenting
    /// fragment header), of any protocol: read it with [`fragment`].
    Fragment,
    /// Another IP protocol (TCP, ...), with its destination.
    OtherIp {
        /// Destination address.
        dst: IpAddr,
    },
    /// Not acceptable; the reason to count.
    Drop(DropReason),
}

/// Parses one Ethernet frame. Never panics, whatever the bytes.
#[inline]
pub fn parse(frame: &[u8]) -> Parsed {
    match parse_common(frame) {
        Some(p) => Parsed::Udp(p),
        None => parse_full(frame),
    }
}

/// The common shape only: Ethernet, ≤ 2 802.1Q/802.1ad tags, IPv4 without options (valid
/// header checksum, not a fragment) or IPv6 without extension headers, then UDP whose
/// length equals the IP payload length, non-zero ports (and a non-zero IPv6 checksum).
/// `None` means "not this shape", never "drop": the caller falls back to etherparse.
#[inline]
fn parse_common(frame: &[u8]) -> Option<ParsedUdp> {
    let mut ethertype = Ethernet::new_checked(frame).ok()?.ethertype();
    let mut l3 = Ethernet::<&[u8]>::HEADER_LEN;
    let mut vlans = 0u8;
    while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        let tag = frame.get(l3..l3 + VLAN_TAG_LEN)?;
        if vlans == 2 {
            return None;
        }
        ethertype = u16::from_be_bytes([tag[2], tag[3]]);
        l3 += VLAN_TAG_LEN;
        vlans += 1;
    }
    let ip = frame.get(l3..)?;
    let (src, dst, ttl, ip_header_len, ip_payload_len) = match ethertype {
        ETHERTYPE_IPV4 => {
            let h = Ipv4::new_checked(ip).ok()?;
            let total = usize::from(h.total_len());
            if h.version() != 4
                || h.header_len() != Ipv4::<&[u8]>::MIN_HEADER_LEN
                || h.protocol() != PROTO_UDP
                // More Fragments or a fragment offset.
                || h.flags_fragment() & 0x3fff != 0
                || total > ip.len()
                || total < Ipv4::<&[u8]>::MIN_HEADER_LEN
                || checksum::ipv4_header_sum(&ip[..Ipv4::<&[u8]>::MIN_HEADER_LEN]) != 0
            {
                return None;
            }
            (
                IpAddr::V4(Ipv4Addr::from(h.src())),
                IpAddr::V4(Ipv4Addr::from(h.dst())),
                h.ttl(),
                Ipv4::<&[u8]>::MIN_HEADER_LEN,
                total - Ipv4::<&[u8]>::MIN_HEADER_LEN,
            )
        }
        ETHERTYPE_IPV6 => {
            let h = Ipv6::new_checked(ip).ok()?;
            let payload = usize::from(h.payload_len());
            if h.version() != 6
                || h.next_header() != PROTO_UDP
                || payload > ip.len() - Ipv6::<&[u8]>::HEADER_LEN
            {
                return None;
            }
            (
                IpAddr::V6(Ipv6Addr::from(h.src())),
                IpAddr::V6(Ipv6Addr::from(h.dst())),
                h.hop_limit(),
                Ipv6::<&[u8]>::HEADER_LEN,
                payload,
            )
        }
        _ => return None,
    };
    let l4 = l3 + ip_header_len;
    let udp = Udp::new_checked(frame.get(l4..)?).ok()?;
    let udp_len = udp.length();
    let (src_port, dst_port) = (udp.src_port(), udp.dst_port());
    if usize::from(udp_len) != ip_payload_len
        || usize::from(udp_len) < Udp::<&[u8]>::HEADER_LEN
        || src_port == 0
        || dst_port == 0
        || (dst.is_ipv6() && udp.checksum() == 0)
    {
        return None;
    }
    Some(ParsedUdp {
        flow: FlowKey {
            src,
            dst,
            src_port,
            dst_port,
        },
        l3_off: u16::try_from(l3).ok()?,
        l4_off: u16::try_from(l4).ok()?,
        udp_len,
        ttl,
        vlans,
    })
}

/// Any frame, through etherparse: the reference for every accepted shape and every drop
/// reason.
fn parse_full(frame: &[u8]) -> Parsed {
    let sliced = match SlicedPacket::from_ethernet(frame) {
        Ok(s) => s,
        Err(e) => return Parsed::Drop(slice_error_reason(&e)),
    };
    let mut vlans: u8 = 0;
    for ext in &sliced.link_exts {
        match ext {
            LinkExtSlice::Vlan(_) => vlans += 1,
            LinkExtSlice::Macsec(_) => return Parsed::Drop(DropReason::UnsupportedLink),
        }
    }
    if vlans > 2 {
        return Parsed::Drop(DropReason::UnsupportedLink);
    }
    let base = frame.as_ptr() as usize;
    let (src, dst, ttl, payload) = match &sliced.net {
        None => return Parsed::Drop(DropReason::NonIp),
        Some(NetSlice::Arp(_)) => return Parsed::Arp,
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            if checksum::ipv4_header_sum(h.slice()) != 0 {
                return Parsed::Drop(DropReason::BadIpv4Checksum);
            }
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                h.ttl(),
                v4.payload(),
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                h.hop_limit(),
                v6.payload(),
            )
        }
    };
    if payload.fragmented {
        return Parsed::Fragment;
    }
    let l3_off = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => v4.header().slice().as_ptr() as usize - base,
        Some(NetSlice::Ipv6(v6)) => v6.header().slice().as_ptr() as usize - base,
        _ => return Parsed::Drop(DropReason::NonIp),
    };
    match payload.ip_number {
        IpNumber::UDP => {}
        IpNumber::ICMP | IpNumber::IPV6_ICMP => return Parsed::Icmp,
        _ => return Parsed::OtherIp { dst },
    }
    let Some(TransportSlice::Udp(udp)) = &sliced.transport else {
        return Parsed::Drop(DropReason::TruncatedUdp);
    };
    let udp_len = udp.length();
    if usize::from(udp_len) != payload.payload.len() {
        return Parsed::Drop(DropReason::TruncatedUdp);
    }
    // RFC 8200 §8.1: an IPv6 UDP checksum of zero is invalid (the packet is discarded).
    if udp.source_port() == 0
        || udp.destination_port() == 0
        || (dst.is_ipv6() && udp.checksum() == 0)
    {
        return Parsed::Drop(DropReason::MalformedUdp);
    }
    let l4_off = udp.slice().as_ptr() as usize - base;
    let (Ok(l3_off), Ok(l4_off)) = (u16::try_from(l3_off), u16::try_from(l4_off)) else {
        return Parsed::Drop(DropReason::BadIpLength);
    };
    Parsed::Udp(ParsedUdp {
        flow: FlowKey {
            src,
            dst,
            src_port: udp.source_port(),
            dst_port: udp.destination_port(),
        },
        l3_off,
        l4_off,
        udp_len,
        ttl,
        vlans,
    })
}

/// One IP fragment of a UDP datagram ([`fragment`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedFragment {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Identification (IPv4: 16 bits; IPv6: the fragment header's 32 bits).
    pub id: u32,
    /// Offset of this fragment's data in the datagram, in bytes (a multiple of 8).
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// IPv4 DF bit (always false for IPv6, which routers never fragment anyway).
    pub dont_fragment: bool,
    /// Offset of the IP header in the frame.
    pub l3_off: u16,
    /// Offset of the fragment's data (after the IPv4 header, or the IPv6 fragment
    /// header).
    pub data_off: u16,
    /// Length of the fragment's data.
    pub data_len: u16,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Number of VLAN tags.
    pub vlans: u8,
    /// The first fragment (offset 0): its UDP header, as a datagram of the ports and
    /// UDP length it carries (`udp_len` is the reassembled datagram's, larger than what
    /// this fragment holds; `l4_off` = `data_off`).
    pub first: Option<ParsedUdp>,
}

impl ParsedFragment {
    /// Whether the datagram is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.dst.is_ipv6()
    }
}

/// Reads a frame that [`parse`] classified as [`Parsed::Fragment`]. Only fragments of
/// UDP datagrams are accepted (for IPv6, the fragment header's next header must be UDP);
/// everything else is an error naming the drop reason: `fragment` for another protocol,
/// a non-last fragment whose length is not a positive multiple of 8, data beyond 65,535
/// bytes, or a first fragment too short for the UDP header; `malformed_udp` /
/// `truncated_udp` for a first fragment's UDP header as for a whole datagram (ports 0,
/// IPv6 checksum 0, a length below 8 or below what the fragment carries). Never panics.
///
/// # Errors
/// The [`DropReason`] to count.
pub fn fragment(frame: &[u8]) -> Result<ParsedFragment, DropReason> {
    let sliced = SlicedPacket::from_ethernet(frame).map_err(|e| slice_error_reason(&e))?;
    let mut vlans: u8 = 0;
    for ext in &sliced.link_exts {
        match ext {
            LinkExtSlice::Vlan(_) => vlans += 1,
            LinkExtSlice::Macsec(_) => return Err(DropReason::UnsupportedLink),
        }
    }
    if vlans > 2 {
        return Err(DropReason::UnsupportedLink);
    }
    let base = frame.as_ptr() as usize;
    let off = |p: *const u8| u16::try_from(p as usize - base).map_err(|_| DropReason::BadIpLength);
    let (src, dst, ttl, id, offset, more, df, l3_off, payload) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            if checksum::ipv4_header_sum(h.slice()) != 0 {
                return Err(DropReason::BadIpv4Checksum);
            }
            if h.protocol() != IpNumber::UDP {
                return Err(DropReason::Fragment);
            }
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                h.ttl(),
                u32::from(h.identification()),
                h.fragments_offset().value(),
                h.more_fragments(),
                h.dont_fragment(),
                off(h.slice().as_ptr())?,
                v4.payload(),
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let frag = v6.extensions().clone().into_iter().find_map(|e| match e {
                etherparse::Ipv6ExtensionSlice::Fragment(f) => Some(f),
                _ => None,
            });
            let Some(frag) = frag else {
                return Err(DropReason::Fragment);
            };
            if frag.next_header() != IpNumber::UDP {
                return Err(DropReason::Fragment);
            }
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                h.hop_limit(),
                frag.identification(),
                frag.fragment_offset().value(),
                frag.more_fragments(),
                false,
                off(h.slice().as_ptr())?,
                v6.payload(),
            )
        }
        Some(NetSlice::Arp(_)) | None => return Err(DropReason::NonIp),
    };
    if !payload.fragmented || payload.ip_number != IpNumber::UDP {
        return Err(DropReason::Fragment);
    }
    let data = payload.payload;
    let data_off = off(data.as_ptr())?;
    let data_len = u16::try_from(data.len()).map_err(|_| DropReason::BadIpLength)?;
    // The offset field counts 8-byte units (13 bits): `value() * 8` fits a u16.
    let offset = offset.checked_mul(8).ok_or(DropReason::Fragment)?;
    if u32::from(offset) + u32::from(data_len) > u32::from(u16::MAX)
        || (more && (data_len == 0 || data_len % 8 != 0))
    {
        return Err(DropReason::Fragment);
    }
    let first = if offset == 0 {
        let Some(udp) = data.first_chunk::<8>() else {
            return Err(DropReason::Fragment);
        };
        let word = |i: usize| u16::from_be_bytes([udp[i], udp[i + 1]]);
        let (src_port, dst_port, udp_len, check) = (word(0), word(2), word(4), word(6));
        if src_port == 0 || dst_port == 0 || (dst.is_ipv6() && check == 0) {
            return Err(DropReason::MalformedUdp);
        }
        if usize::from(udp_len) < Udp::<&[u8]>::HEADER_LEN || udp_len < data_len {
            return Err(DropReason::TruncatedUdp);
        }
        Some(ParsedUdp {
            flow: FlowKey {
                src,
                dst,
                src_port,
                dst_port,
            },
            l3_off,
            l4_off: data_off,
            udp_len,
            ttl,
            vlans,
        })
    } else {
        None
    };
    Ok(ParsedFragment {
        src,
        dst,
        id,
        offset,
        more,
        dont_fragment: df,
        l3_off,
        data_off,
        data_len,
        ttl,
        vlans,
        first,
    })
}

fn slice_error_reason(e: &SliceError) -> DropReason {
    match e {
        SliceError::Len(l) => match l.layer {
            Layer::Ethernet2Header | Layer::LinuxSllHeader | Layer::EtherPayload => {
                DropReason::TruncatedEthernet
            }
            Layer::VlanHeader => DropReason::TruncatedVlan,
            Layer::MacsecHeader | Layer::MacsecPacket => DropReason::UnsupportedLink,
            Layer::IpHeader | Layer::Ipv4Header | Layer::Ipv6Header => DropReason::TruncatedIp,
            Layer::Ipv4Packet | Layer::Ipv6Packet => DropReason::BadIpLength,
            Layer::IpAuthHeader
            | Layer::Ipv6ExtHeader
            | Layer::Ipv6HopByHopHeader
            | Layer::Ipv6DestOptionsHeader
            | Layer::Ipv6RouteHeader
            | Layer::Ipv6FragHeader => DropReason::MalformedIpv6Ext,
            Layer::UdpHeader | Layer::UdpPayload => DropReason::TruncatedUdp,
            _ => DropReason::NotUdp,
        },
        SliceError::Ip(_) | SliceError::Ipv4(_) | SliceError::Ipv6(_) => DropReason::MalformedIp,
        SliceError::Ipv4Exts(_) | SliceError::Ipv6Exts(_) => DropReason::MalformedIpv6Ext,
        SliceError::LinuxSll(_) | SliceError::Macsec(_) => DropReason::UnsupportedLink,
        SliceError::Tcp(_) => DropReason::NotUdp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 (198.18.0.1 → 198.19.0.10, TTL 64) + UDP 40000 → 53, payload "hi".
    pub(crate) const UDP4: [u8; 44] = [
        0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 0x1e, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, // IPv4 ...
        198, 18, 0, 1, 198, 19, 0, 10, // addresses
        0x9c, 0x40, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, b'h', b'i', // UDP, no checksum
    ];

    fn with_ip_checksum(mut f: [u8; 44]) -> [u8; 44] {
        let c = checksum::ipv4_header_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn parses_udp4_fixture() {
        let f = with_ip_checksum(UDP4);
        let Parsed::Udp(p) = parse(&f) else {
            panic!("not udp: {:?}", parse(&f));
        };
        assert_eq!(p.flow.src, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)));
        assert_eq!(p.flow.dst, IpAddr::V4(Ipv4Addr::new(198, 19, 0, 10)));
        assert_eq!((p.flow.src_port, p.flow.dst_port), (40000, 53));
        assert_eq!(
            (p.l3_off, p.l4_off, p.udp_len, p.ttl, p.vlans),
            (14, 34, 10, 64, 0)
        );
    }

    #[test]
    fn bad_ipv4_checksum_is_dropped() {
        let mut f = with_ip_checksum(UDP4);
        f[25] ^= 1;
        assert_eq!(parse(&f), Parsed::Drop(DropReason::BadIpv4Checksum));
    }

    #[test]
    fn fragments_are_classified_and_read_on_demand() {
        let mut f = UDP4;
        f[20] = 0x20; // More Fragments
        f[16..18].copy_from_slice(&[0, 24]); // total length 24: 4 bytes of data
        let f = with_ip_checksum(f);
        assert_eq!(parse(&f), Parsed::Fragment);
        // 4 bytes of data: neither a multiple of 8 nor room for the UDP header.
        assert_eq!(fragment(&f), Err(DropReason::Fragment));
        // A first fragment of 8 bytes: the UDP header, whose length covers more.
        let mut f = UDP4;
        f[20] = 0x20;
        f[16..18].copy_from_slice(&[0, 28]);
        let f = with_ip_checksum(f);
        let p = fragment(&f).expect("first fragment");
        assert_eq!((p.offset, p.more, p.data_off, p.data_len), (0, true, 34, 8));
        let udp = p.first.expect("carries the UDP header");
        assert_eq!(
            (udp.flow.src_port, udp.flow.dst_port, udp.udp_len),
            (40000, 53, 10)
        );
        // A later fragment (offset 8 bytes, last): no UDP header.
        let mut f = UDP4;
        f[20..22].copy_from_slice(&[0x00, 0x01]);
        f[16..18].copy_from_slice(&[0, 22]);
        let f = with_ip_checksum(f);
        let p = fragment(&f).expect("later fragment");
        assert_eq!((p.offset, p.more, p.first), (8, false, None));
        assert_eq!((p.id, p.data_len), (1, 2));
    }

    #[test]
    fn truncations_map_to_their_layer() {
        let f = with_ip_checksum(UDP4);
        assert_eq!(parse(&f[..10]), Parsed::Drop(DropReason::TruncatedEthernet));
        assert_eq!(parse(&f[..20]), Parsed::Drop(DropReason::TruncatedIp));
        assert_eq!(parse(&f[..40]), Parsed::Drop(DropReason::BadIpLength));
    }

    #[test]
    fn udp_length_must_match_ip_payload() {
        let mut f = UDP4;
        f[39] = 0x09;
        assert_eq!(
            parse(&with_ip_checksum(f)),
            Parsed::Drop(DropReason::TruncatedUdp)
        );
    }

    #[test]
    fn arp_and_unknown_ethertype() {
        let mut f = UDP4;
        f[12..14].copy_from_slice(&[0x88, 0xcc]); // LLDP
        assert_eq!(parse(&f), Parsed::Drop(DropReason::NonIp));
        let arp: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06, // Ethernet
            0, 1, 0x08, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18,
            0, 2,
        ];
        assert_eq!(parse(&arp), Parsed::Arp);
    }

    fn common_shapes() -> Vec<Vec<u8>> {
        use crate::testkit::{udp_frame, PORT0_MAC};
        let v4 = (
            "198.18.0.1:40000".parse().unwrap(),
            "198.19.0.10:53".parse().unwrap(),
        );
        let v6 = (
            "[2001:2::1]:40000".parse().unwrap(),
            "[2001:2:0:2::1]:53".parse().unwrap(),
        );
        let mut out = Vec::new();
        for (src, dst) in [v4, v6] {
            for vlans in [&[][..], &[7], &[7, 9]] {
                out.push(udp_frame(src, dst, 64, vlans, PORT0_MAC, b"payload"));
            }
        }
        out
    }

    #[test]
    fn common_shape_takes_the_narrow_reader() {
        for f in common_shapes() {
            let p = parse_common(&f).expect("common shape must not fall back");
            assert_eq!(parse_full(&f), Parsed::Udp(p));
        }
        // Options, a fragment, padding mismatch: fall back (and etherparse decides).
        let mut opts = with_ip_checksum(UDP4);
        opts[14] = 0x46;
        assert_eq!(parse_common(&opts), None);
        let mut frag = UDP4;
        frag[20] = 0x20;
        assert_eq!(parse_common(&with_ip_checksum(frag)), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20000))]
        /// The narrow reader never accepts what etherparse would not, nor differently.
        #[test]
        fn narrow_reader_agrees_with_etherparse(
            which in 0usize..6,
            flips in proptest::collection::vec((0usize..66, proptest::prelude::any::<u8>()), 0..3),
            cut in 0usize..100,
        ) {
            let mut f = common_shapes().swap_remove(which);
            for (at, x) in flips {
                if let Some(b) = f.get_mut(at) {
                    *b ^= x;
                }
            }
            // Usually repair the IPv4 header checksum so header mutations get past it.
            let mut l3 = 14;
            while f.len() >= l3 + 4 && matches!(f[l3 - 2..l3], [0x81, 0x00] | [0x88, 0xa8]) {
                l3 += 4;
            }
            if cut % 4 != 0 && f.len() >= l3 + 20 && f[l3 - 2..l3] == [0x08, 0x00] {
                let c = checksum::ipv4_header_checksum(&f[l3..l3 + 20]);
                f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
            }
            f.truncate(f.len().min(cut.max(f.len() / 2) + 10));
            if let Some(p) = parse_common(&f) {
                proptest::prop_assert_eq!(parse_full(&f), Parsed::Udp(p));
            }
        }
    }
}

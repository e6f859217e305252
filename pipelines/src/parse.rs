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
//! - Fragments are dropped (`fragment`): there is no reassembly, and only the first fragment
//!   carries the ports, so later ones could not be classified.
//! - The UDP length field must equal the IP payload length (after IPv6 extension headers).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::err::packet::SliceError;
use etherparse::err::Layer;
use etherparse::{IpNumber, LinkExtSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::checksum;
use crate::verdict::DropReason;

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
    /// Another IP protocol (TCP, ...), with its destination.
    OtherIp {
        /// Destination address.
        dst: IpAddr,
    },
    /// Not acceptable; the reason to count.
    Drop(DropReason),
}

/// Parses one Ethernet frame. Never panics, whatever the bytes.
pub fn parse(frame: &[u8]) -> Parsed {
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
        return Parsed::Drop(DropReason::Fragment);
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
    fn fragments_are_dropped() {
        let mut f = UDP4;
        f[20] = 0x20; // More Fragments
        let f = with_ip_checksum(f);
        assert_eq!(parse(&f), Parsed::Drop(DropReason::Fragment));
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
}

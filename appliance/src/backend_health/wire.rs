//! Probes on the wire: the frame of a probe ([`probe_frame`]), and what a frame the slow
//! path received says about a probe ([`classify`]): an answer to a probe source port, or
//! an ICMP port / host unreachable quoting a probe. Parsed with smoltcp's checked views
//! (bad input is `None`, never a panic); checksums verified, and computed in software
//! on the way out (rare traffic).

use std::net::{IpAddr, SocketAddr};

use pipelines::net::PortRange;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, EthernetRepr, Icmpv4Message, Icmpv4Packet,
    Icmpv6Message, Icmpv6Packet, IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr,
    UdpPacket, UdpRepr, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, IPV6_HEADER_LEN, UDP_HEADER_LEN,
};

/// Shortest Ethernet frame without FCS (shorter ones are zero-padded).
const MIN_FRAME_LEN: usize = 60;
/// Hop limit of probes.
const HOP_LIMIT: u8 = 64;

/// What the slow path tells the health checker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    /// A UDP datagram to a probe source port.
    Reply {
        /// Its source.
        from: SocketAddr,
        /// Its destination port (the probe's source port).
        to_port: u16,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// An ICMP port or host unreachable about a probe.
    Unreachable {
        /// The probe's destination (from the quote).
        to: SocketAddr,
        /// The probe's source port (from the quote).
        from_port: u16,
        /// `"port unreachable"` or `"host unreachable"` (ICMPv6: `"address unreachable"`).
        what: &'static str,
    },
    /// The slow path could not send a probe.
    Unsent {
        /// The probe's destination.
        to: SocketAddr,
        /// Its source port.
        from_port: u16,
        /// Why (`"next hop unresolved"`, `"no own address of that family on the port"`).
        why: &'static str,
    },
}

/// Writes the Ethernet frame of a UDP probe into `buf` (cleared first): `src:src_port →
/// target` with `payload`, from `src_mac` to `dst_mac`. Returns `false`, writing nothing,
/// when `src` and `target` are of different families.
pub fn probe_frame(
    buf: &mut Vec<u8>,
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    src: IpAddr,
    src_port: u16,
    target: SocketAddr,
    payload: &[u8],
) -> bool {
    let udp = UdpRepr {
        src_port,
        dst_port: target.port(),
    };
    let udp_len = UDP_HEADER_LEN + payload.len();
    let caps = ChecksumCapabilities::default();
    let (ethertype, ip_len) = match (src, target.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (EthernetProtocol::Ipv4, IPV4_HEADER_LEN),
        (IpAddr::V6(_), IpAddr::V6(_)) => (EthernetProtocol::Ipv6, IPV6_HEADER_LEN),
        _ => return false,
    };
    buf.clear();
    buf.resize(
        (ETHERNET_HEADER_LEN + ip_len + udp_len).max(MIN_FRAME_LEN),
        0,
    );
    EthernetRepr {
        src_addr: EthernetAddress(src_mac),
        dst_addr: EthernetAddress(dst_mac),
        ethertype,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    let l3 = &mut buf[ETHERNET_HEADER_LEN..ETHERNET_HEADER_LEN + ip_len + udp_len];
    match (src, target.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Ipv4Repr {
            src_addr: s,
            dst_addr: d,
            next_header: IpProtocol::Udp,
            payload_len: udp_len,
            hop_limit: HOP_LIMIT,
        }
        .emit(&mut Ipv4Packet::new_unchecked(&mut *l3), &caps),
        (IpAddr::V6(s), IpAddr::V6(d)) => Ipv6Repr {
            src_addr: s,
            dst_addr: d,
            next_header: IpProtocol::Udp,
            payload_len: udp_len,
            hop_limit: HOP_LIMIT,
        }
        .emit(&mut Ipv6Packet::new_unchecked(&mut *l3)),
        _ => return false,
    }
    udp.emit(
        &mut UdpPacket::new_unchecked(&mut l3[ip_len..]),
        &IpAddress::from(src),
        &IpAddress::from(target.ip()),
        payload.len(),
        |p| p.copy_from_slice(payload),
        &caps,
    );
    true
}

/// What `frame` says about a probe sent from a port in `ports`: the event and the
/// address it was sent to (the caller checks that it is one of the appliance's own).
/// `None`: not about a probe, or malformed (checked lengths and checksums).
pub fn classify(frame: &[u8], ports: PortRange) -> Option<(ProbeEvent, IpAddr)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    match eth.ethertype() {
        EthernetProtocol::Ipv4 => classify_v4(eth.payload(), ports),
        EthernetProtocol::Ipv6 => classify_v6(eth.payload(), ports),
        _ => None,
    }
}

fn classify_v4(l3: &[u8], ports: PortRange) -> Option<(ProbeEvent, IpAddr)> {
    let ip = Ipv4Packet::new_checked(l3).ok()?;
    if ip.version() != 4 || !ip.verify_checksum() || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    let (src, dst) = (IpAddr::V4(ip.src_addr()), IpAddr::V4(ip.dst_addr()));
    match ip.next_header() {
        IpProtocol::Udp => reply(ip.payload(), src, dst, ports),
        IpProtocol::Icmp => {
            let icmp = Icmpv4Packet::new_checked(ip.payload()).ok()?;
            if icmp.msg_type() != Icmpv4Message::DstUnreachable || !icmp.verify_checksum() {
                return None;
            }
            let what = match icmp.msg_code() {
                1 => "host unreachable",
                3 => "port unreachable",
                _ => return None,
            };
            // The quote: the probe's IPv4 header and (RFC 792) at least the 8 bytes
            // after it, its UDP header. Usually truncated: read the bytes, not lengths.
            let bytes = icmp.data();
            let first = *bytes.first()?;
            let header_len = usize::from(first & 0x0f) * 4;
            if first >> 4 != 4 || header_len < IPV4_HEADER_LEN || bytes.get(9) != Some(&17) {
                return None;
            }
            let udp = bytes.get(header_len..header_len + UDP_HEADER_LEN)?;
            let probe_src = IpAddr::from(<[u8; 4]>::try_from(bytes.get(12..16)?).ok()?);
            let probe_dst = IpAddr::from(<[u8; 4]>::try_from(bytes.get(16..20)?).ok()?);
            unreachable(udp, probe_src, probe_dst, dst, what, ports)
        }
        _ => None,
    }
}

fn classify_v6(l3: &[u8], ports: PortRange) -> Option<(ProbeEvent, IpAddr)> {
    let ip = Ipv6Packet::new_checked(l3).ok()?;
    if ip.version() != 6 {
        return None;
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    match ip.next_header() {
        IpProtocol::Udp => reply(ip.payload(), src.into(), dst.into(), ports),
        IpProtocol::Icmpv6 => {
            let icmp = Icmpv6Packet::new_checked(ip.payload()).ok()?;
            if icmp.msg_type() != Icmpv6Message::DstUnreachable || !icmp.verify_checksum(&src, &dst)
            {
                return None;
            }
            let what = match icmp.msg_code() {
                3 => "address unreachable",
                4 => "port unreachable",
                _ => return None,
            };
            // The quote: the probe's IPv6 header (no extension headers: we sent none)
            // and its UDP header.
            let bytes = icmp.payload();
            if bytes.first()? >> 4 != 6 || bytes.get(6) != Some(&17) {
                return None;
            }
            let probe_src = IpAddr::from(<[u8; 16]>::try_from(bytes.get(8..24)?).ok()?);
            let probe_dst = IpAddr::from(<[u8; 16]>::try_from(bytes.get(24..40)?).ok()?);
            let udp = bytes.get(IPV6_HEADER_LEN..IPV6_HEADER_LEN + UDP_HEADER_LEN)?;
            unreachable(udp, probe_src, probe_dst, dst.into(), what, ports)
        }
        _ => None,
    }
}

/// A UDP datagram `src → dst` to a probe port, checksum verified.
fn reply(l4: &[u8], src: IpAddr, dst: IpAddr, ports: PortRange) -> Option<(ProbeEvent, IpAddr)> {
    let udp = UdpPacket::new_checked(l4).ok()?;
    if !ports.contains(udp.dst_port()) {
        return None;
    }
    // Verifies the checksum (a zero IPv4 checksum means none was computed).
    UdpRepr::parse(
        &udp,
        &IpAddress::from(src),
        &IpAddress::from(dst),
        &ChecksumCapabilities::default(),
    )
    .ok()?;
    let event = ProbeEvent::Reply {
        from: SocketAddr::new(src, udp.src_port()),
        to_port: udp.dst_port(),
        payload: udp.payload().to_vec(),
    };
    Some((event, dst))
}

/// An unreachable quoting `udp` (the probe's UDP header) sent `probe_src → probe_dst`;
/// the error itself went to `error_dst`, which must be the probe's source.
fn unreachable(
    udp: &[u8],
    probe_src: IpAddr,
    probe_dst: IpAddr,
    error_dst: IpAddr,
    what: &'static str,
    ports: PortRange,
) -> Option<(ProbeEvent, IpAddr)> {
    let src_port = u16::from_be_bytes([*udp.first()?, *udp.get(1)?]);
    let dst_port = u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]);
    if probe_src != error_dst || !ports.contains(src_port) {
        return None;
    }
    let event = ProbeEvent::Unreachable {
        to: SocketAddr::new(probe_dst, dst_port),
        from_port: src_port,
        what,
    };
    Some((event, probe_src))
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;

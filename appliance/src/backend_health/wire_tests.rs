//! Probe frames checked with etherparse (an independent parser); replies and ICMP errors
//! built with etherparse and classified; bad checksums, other ports and truncations
//! give nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::icmpv6::DestUnreachableCode;
use etherparse::{Icmpv4Type, Icmpv6Type, PacketBuilder, SlicedPacket, TransportSlice};
use pipelines::net::PortRange;

use super::*;

const APP_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const BE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 2];
const OWN4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const BE4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 11);
const OWN6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 1);
const BE6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x11);
const PORTS: PortRange = PortRange {
    first: 600,
    last: 1023,
};

fn probe(src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let mut buf = vec![0xaa; 3];
    assert!(probe_frame(
        &mut buf,
        (APP_MAC, BE_MAC),
        src,
        700,
        SocketAddr::new(dst, 53),
        b"probe!",
    ));
    buf
}

#[test]
fn probe_frames_are_valid_udp_with_checksums() {
    for (src, dst) in [
        (IpAddr::V4(OWN4), IpAddr::V4(BE4)),
        (OWN6.into(), BE6.into()),
    ] {
        let frame = probe(src, dst);
        let p = SlicedPacket::from_ethernet(&frame).expect("parses");
        let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
            panic!("ethernet");
        };
        assert_eq!((eth.source(), eth.destination()), (APP_MAC, BE_MAC));
        let Some(TransportSlice::Udp(udp)) = &p.transport else {
            panic!("udp");
        };
        assert_eq!((udp.source_port(), udp.destination_port()), (700, 53));
        assert_eq!(udp.payload(), b"probe!");
        let header = udp.to_header();
        let sum = match &p.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                assert_eq!(ip.header().ttl(), 64);
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                header.calc_checksum_ipv4(&h, udp.payload()).expect("sum")
            }
            Some(etherparse::NetSlice::Ipv6(ip)) => header
                .calc_checksum_ipv6(&ip.header().to_header(), udp.payload())
                .expect("sum"),
            _ => panic!("ip"),
        };
        assert_eq!(header.checksum, sum);
        // Padded to the Ethernet minimum.
        assert!(frame.len() >= 60);
    }
    // Mixed families write nothing.
    let mut buf = Vec::new();
    let to = SocketAddr::new(BE6.into(), 53);
    assert!(!probe_frame(
        &mut buf,
        (APP_MAC, BE_MAC),
        OWN4.into(),
        1,
        to,
        b"x"
    ));
    assert!(buf.is_empty());
}

fn udp_reply(from: IpAddr, to: IpAddr, to_port: u16) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(BE_MAC, APP_MAC);
    let b = match (from, to) {
        (IpAddr::V4(f), IpAddr::V4(t)) => b.ipv4(f.octets(), t.octets(), 64),
        (IpAddr::V6(f), IpAddr::V6(t)) => b.ipv6(f.octets(), t.octets(), 64),
        _ => unreachable!(),
    };
    let b = b.udp(53, to_port);
    let mut out = Vec::new();
    b.write(&mut out, b"answer").expect("writes");
    out
}

#[test]
fn replies_to_probe_ports_are_recognised_with_valid_checksums() {
    for (from, to) in [
        (IpAddr::V4(BE4), IpAddr::V4(OWN4)),
        (BE6.into(), OWN6.into()),
    ] {
        let frame = udp_reply(from, to, 700);
        let want = ProbeEvent::Reply {
            from: SocketAddr::new(from, 53),
            to_port: 700,
            payload: b"answer".to_vec(),
        };
        assert_eq!(classify(&frame, PORTS), Some((want, to)));
        // Outside the probe ports: not ours.
        assert_eq!(classify(&udp_reply(from, to, 5000), PORTS), None);
        // A corrupted payload fails the UDP checksum.
        let mut bad = frame.clone();
        let n = bad.len();
        bad[n - 1] ^= 0xff;
        assert_eq!(classify(&bad, PORTS), None);
        // Every truncation is refused or classified, never a panic.
        for len in 0..frame.len() {
            let _ = classify(&frame[..len], PORTS);
        }
    }
}

/// An ICMP error from the backend quoting `probe` (IP header onwards, `quote_len` bytes).
fn unreachable_about(probe: &[u8], v6: bool, code: u8, quote_len: usize) -> Vec<u8> {
    let quoted = &probe[14..14 + quote_len];
    let mut out = Vec::new();
    if v6 {
        let code = match code {
            3 => DestUnreachableCode::Address,
            4 => DestUnreachableCode::Port,
            _ => DestUnreachableCode::Prohibited,
        };
        PacketBuilder::ethernet2(BE_MAC, APP_MAC)
            .ipv6(BE6.octets(), OWN6.octets(), 64)
            .icmpv6(Icmpv6Type::DestinationUnreachable(code))
            .write(&mut out, quoted)
            .expect("writes");
    } else {
        let code = match code {
            1 => DestUnreachableHeader::Host,
            3 => DestUnreachableHeader::Port,
            _ => DestUnreachableHeader::Network,
        };
        PacketBuilder::ethernet2(BE_MAC, APP_MAC)
            .ipv4(BE4.octets(), OWN4.octets(), 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(code))
            .write(&mut out, quoted)
            .expect("writes");
    }
    out
}

#[test]
fn icmp_unreachable_about_a_probe_names_it() {
    let cases = [
        (false, 3, "port unreachable"),
        (false, 1, "host unreachable"),
        (true, 4, "port unreachable"),
        (true, 3, "address unreachable"),
    ];
    for (v6, code, what) in cases {
        let (own, be): (IpAddr, IpAddr) = if v6 {
            (OWN6.into(), BE6.into())
        } else {
            (OWN4.into(), BE4.into())
        };
        let p = probe(own, be);
        let ip_header = if v6 { 40 } else { 20 };
        // The header and 8 bytes (RFC 792), or the whole probe.
        for quote_len in [ip_header + 8, ip_header + 8 + 6] {
            let frame = unreachable_about(&p, v6, code, quote_len);
            let want = ProbeEvent::Unreachable {
                to: SocketAddr::new(be, 53),
                from_port: 700,
                what,
            };
            assert_eq!(classify(&frame, PORTS), Some((want, own)), "{v6} {code}");
            for len in 0..frame.len() {
                let _ = classify(&frame[..len], PORTS);
            }
        }
        // Quote shorter than the UDP header: nothing to match.
        let short = unreachable_about(&p, v6, code, ip_header + 2);
        assert_eq!(classify(&short, PORTS), None);
        // Other codes are not health signals.
        let other = unreachable_about(&p, v6, 0, ip_header + 8);
        assert_eq!(classify(&other, PORTS), None);
        // A corrupted ICMP message fails its checksum.
        let mut bad = unreachable_about(&p, v6, code, ip_header + 8);
        let n = bad.len();
        bad[n - 1] ^= 0x55;
        assert_eq!(classify(&bad, PORTS), None);
    }
    // A quoted source port outside the probe ports: about a flow, not a probe.
    let mut buf = Vec::new();
    let to = SocketAddr::new(BE4.into(), 53);
    assert!(probe_frame(
        &mut buf,
        (APP_MAC, BE_MAC),
        OWN4.into(),
        40000,
        to,
        b"x"
    ));
    assert_eq!(
        classify(&unreachable_about(&buf, false, 3, 28), PORTS),
        None
    );
}

//! The ICMP errors the slow path sends when the fast path asks (time exceeded, Frag
//! Needed / Packet Too Big), byte by byte: every field read from the frame by offset and
//! cross-checked with etherparse, checksums with the independent RFC 1071 sum of
//! `slowpath_support` (ICMPv6 over its pseudo-header); the source address rule; what gets
//! no error; the rate limit per source and in all.
#![allow(clippy::tests_outside_test_module)]

mod slowpath_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use appliance::slowpath::{IcmpError, SlowPathConfig, SlowPathMsg, SlowPathTuning};
use etherparse::icmpv4::{DestUnreachableHeader, TimeExceededCode};
use etherparse::{icmpv6, Icmpv4Type, Icmpv6Type, SlicedPacket, TransportSlice};
use slowpath_support::*;

const TOO_BIG: IcmpError = IcmpError::TooBig { mtu: 1400 };

fn error(h: &mut Harness, error: IcmpError, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
    h.send(SlowPathMsg::IcmpError {
        port: PORT,
        error,
        frame,
    })
}

/// An IPv4 UDP datagram from `src` to `dst` with TTL 1 (what the fast path passes up as
/// time exceeded), header checksum fixed.
fn udp4_ttl1(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut f = udp4(src, dst, payload);
    f[14 + 8] = 1;
    f[24..26].fill(0);
    let sum = !ones_complement_sum(&[&f[14..34]]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Checks the Ethernet and IPv4 headers of an error from `from` to `to` and returns the
/// ICMP message.
fn icmpv4_of(reply: &[u8], from: Ipv4Addr, to: Ipv4Addr) -> &[u8] {
    assert_eq!(&reply[..6], &PEER_MAC, "back to the previous hop");
    assert_eq!(&reply[6..12], &OUR_MAC);
    assert_eq!(&reply[12..14], &[0x08, 0x00]);
    let ip = &reply[14..];
    assert_eq!(ip[0], 0x45, "IPv4, no options");
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_eq!(ip[8], 64, "TTL");
    assert_eq!(ip[9], 1, "ICMP");
    assert_ipv4_header_checksum(ip);
    assert_eq!(&ip[12..16], &from.octets(), "source");
    assert_eq!(&ip[16..20], &to.octets(), "destination");
    let icmp = &ip[20..total];
    assert_icmpv4_checksum(icmp);
    icmp
}

/// Checks the Ethernet and IPv6 headers of an error from `from` to `to` and returns the
/// ICMPv6 message (checksum verified over the pseudo-header).
fn icmpv6_of(reply: &[u8], from: Ipv6Addr, to: Ipv6Addr) -> &[u8] {
    assert_eq!(&reply[..6], &PEER_MAC);
    assert_eq!(&reply[6..12], &OUR_MAC);
    assert_eq!(&reply[12..14], &[0x86, 0xdd]);
    let ip = &reply[14..];
    assert_eq!(ip[0] >> 4, 6);
    let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
    assert_eq!(ip[6], 58, "ICMPv6");
    assert_eq!(ip[7], 64, "hop limit");
    assert_eq!(&ip[8..24], &from.octets(), "source");
    assert_eq!(&ip[24..40], &to.octets(), "destination");
    let icmp = &ip[40..40 + payload];
    assert_icmpv6_checksum(from, to, icmp);
    icmp
}

fn icmpv4_type(reply: &[u8]) -> Icmpv4Type {
    match SlicedPacket::from_ethernet(reply)
        .expect("etherparse")
        .transport
    {
        Some(TransportSlice::Icmpv4(icmp)) => icmp.icmp_type(),
        other => panic!("not ICMPv4: {other:?}"),
    }
}

fn icmpv6_type(reply: &[u8]) -> Icmpv6Type {
    match SlicedPacket::from_ethernet(reply)
        .expect("etherparse")
        .transport
    {
        Some(TransportSlice::Icmpv6(icmp)) => icmp.icmp_type(),
        other => panic!("not ICMPv6: {other:?}"),
    }
}

#[test]
fn time_exceeded_v4_from_the_vip_quotes_header_and_8_bytes() {
    let mut h = Harness::new();
    let datagram = udp4_ttl1(PEER4, VIP4, b"a query longer than eight bytes");
    let reply = only(error(&mut h, IcmpError::TimeExceeded, datagram.clone()));
    let icmp = icmpv4_of(&reply, VIP4, PEER4);
    assert_eq!(icmp.len(), 8 + 20 + 8);
    assert_eq!((icmp[0], icmp[1]), (11, 0), "time exceeded in transit");
    assert_eq!(&icmp[4..8], &[0; 4], "unused");
    assert_eq!(
        &icmp[8..],
        &datagram[14..14 + 28],
        "header + 8 bytes, verbatim"
    );
    assert_eq!(
        icmpv4_type(&reply),
        Icmpv4Type::TimeExceeded(TimeExceededCode::TtlExceededInTransit)
    );
    let s = h.stats();
    assert_eq!((s.time_exceeded_sent, s.frames_sent), (1, 1));
    assert_eq!((s.rejects_sent, s.too_big_sent), (0, 0));
}

#[test]
fn frag_needed_v4_carries_the_next_hop_mtu() {
    let mut h = Harness::new();
    let datagram = udp4(PEER4, VIP4, &[0x33; 1450]);
    let reply = only(error(&mut h, TOO_BIG, datagram.clone()));
    let icmp = icmpv4_of(&reply, VIP4, PEER4);
    assert_eq!(
        (icmp[0], icmp[1]),
        (3, 4),
        "fragmentation needed and DF set"
    );
    assert_eq!(&icmp[4..6], &[0, 0], "unused");
    assert_eq!(
        &icmp[6..8],
        &1400u16.to_be_bytes(),
        "next-hop MTU (RFC 1191)"
    );
    assert_eq!(&icmp[8..], &datagram[14..14 + 28]);
    assert_eq!(
        icmpv4_type(&reply),
        Icmpv4Type::DestinationUnreachable(DestUnreachableHeader::FragmentationNeeded {
            next_hop_mtu: 1400
        })
    );
    assert_eq!(h.stats().too_big_sent, 1);
}

#[test]
fn the_source_is_the_destination_when_ours_else_the_ports_own_address() {
    let mut h = Harness::new();
    // A full-NAT reply to the SNAT address: from the SNAT address.
    let reply = only(error(
        &mut h,
        IcmpError::TimeExceeded,
        udp4_ttl1(PEER4, SNAT4, b"reply"),
    ));
    icmpv4_of(&reply, SNAT4, PEER4);
    // A preserve-client reply to a client behind a router: from the port's own address.
    let client = Ipv4Addr::new(198, 19, 7, 7);
    let reply = only(error(&mut h, TOO_BIG, udp4(PEER4, client, &[1; 1450])));
    icmpv4_of(&reply, OWN4, PEER4);
    let client6 = Ipv6Addr::new(0x2001, 2, 0, 9, 0, 0, 0, 7);
    let reply = only(error(
        &mut h,
        IcmpError::TimeExceeded,
        udp6(PEER6, client6, b"x"),
    ));
    icmpv6_of(&reply, OWN6, PEER6);
}

#[test]
fn time_exceeded_v6_quotes_the_whole_small_datagram() {
    let mut h = Harness::new();
    let datagram = udp6(PEER6, VIP6, b"hello");
    let reply = only(error(&mut h, IcmpError::TimeExceeded, datagram.clone()));
    let icmp = icmpv6_of(&reply, VIP6, PEER6);
    assert_eq!((icmp[0], icmp[1]), (3, 0), "hop limit exceeded in transit");
    assert_eq!(&icmp[4..8], &[0; 4], "unused");
    assert_eq!(&icmp[8..], &datagram[14..], "whole datagram quoted");
    assert_eq!(
        icmpv6_type(&reply),
        Icmpv6Type::TimeExceeded(icmpv6::TimeExceededCode::HopLimitExceeded)
    );
    assert_eq!(h.stats().time_exceeded_sent, 1);
}

#[test]
fn packet_too_big_v6_carries_the_mtu_and_fits_1280() {
    let mut h = Harness::new();
    let datagram = udp6(PEER6, VIP6, &[0x42; 1452]);
    let reply = only(error(&mut h, TOO_BIG, datagram.clone()));
    assert_eq!(reply.len(), 14 + 1280, "the minimum MTU exactly");
    let icmp = icmpv6_of(&reply, VIP6, PEER6);
    assert_eq!((icmp[0], icmp[1]), (2, 0), "packet too big");
    assert_eq!(&icmp[4..8], &1400u32.to_be_bytes(), "MTU");
    assert_eq!(&icmp[8..], &datagram[14..14 + 1280 - 48], "as much as fits");
    assert_eq!(icmpv6_type(&reply), Icmpv6Type::PacketTooBig { mtu: 1400 });
    assert_eq!(h.stats().too_big_sent, 1);
}

#[test]
fn no_error_about_later_fragments_non_udp_or_to_non_unicast_or_own_sources() {
    let mut h = Harness::new();
    // A later fragment (offset 8 bytes), header checksum fixed.
    let mut later = udp4(PEER4, VIP4, b"0123456789");
    later[20..22].copy_from_slice(&[0x00, 0x01]);
    later[24..26].fill(0);
    let sum = !ones_complement_sum(&[&later[14..34]]);
    later[24..26].copy_from_slice(&sum.to_be_bytes());
    let ping = echo4(PEER4, VIP4, 1, 1, b"x");
    for frame in [
        later,
        ping,
        udp4(Ipv4Addr::BROADCAST, VIP4, b"x"),
        udp4(Ipv4Addr::LOCALHOST, VIP4, b"x"),
        udp4(OWN4, VIP4, b"x"),
        udp6(VIP6, PEER6, b"x"),
    ] {
        assert!(error(&mut h, IcmpError::TimeExceeded, frame).is_empty());
    }
    // A frame from a multicast MAC.
    let mut multicast = udp4(PEER4, VIP4, b"x");
    multicast[6] |= 1;
    assert!(error(&mut h, TOO_BIG, multicast).is_empty());
    let s = h.stats();
    assert_eq!(s.ignored, 7);
    assert_eq!(
        (s.time_exceeded_sent, s.too_big_sent, s.frames_sent),
        (0, 0, 0)
    );
}

#[test]
fn bad_frames_are_malformed_not_answered() {
    let mut h = Harness::new();
    let mut bad_sum = udp4(PEER4, VIP4, b"x");
    bad_sum[24] ^= 0xff;
    let good = udp4(PEER4, VIP4, b"x");
    for frame in [bad_sum, good[..20].to_vec(), good[..34 - 1].to_vec()] {
        assert!(error(&mut h, IcmpError::TimeExceeded, frame).is_empty());
    }
    assert_eq!(h.stats().malformed, 3);
    assert_eq!(h.stats().frames_sent, 0);
}

#[test]
fn each_source_is_limited_to_its_own_bucket() {
    // A large budget in all, so that only the per-source one shows.
    let mut h = Harness::with(SlowPathConfig {
        tuning: SlowPathTuning {
            reject_rate_per_sec: 10_000,
            reject_burst: 10_000,
            ..SlowPathTuning::default()
        },
        ..config()
    });
    let a = udp4_ttl1(PEER4, VIP4, b"a");
    let b = udp4_ttl1(Ipv4Addr::new(198, 18, 0, 51), VIP4, b"b");
    // Default: burst 10, 10 per second per source.
    let sent: usize = (0..15)
        .map(|_| error(&mut h, IcmpError::TimeExceeded, a.clone()).len())
        .sum();
    assert_eq!(sent, 10);
    assert_eq!(h.stats().icmp_errors_rate_limited, 5);
    assert_eq!(
        only(error(&mut h, TOO_BIG, b.clone())).len(),
        14 + 20 + 8 + 28,
        "another source still gets its error"
    );
    // 100 ms at 10/s refills one token for `a`.
    h.now += Duration::from_millis(100);
    let sent: usize = (0..5)
        .map(|_| error(&mut h, IcmpError::TimeExceeded, a.clone()).len())
        .sum();
    assert_eq!(sent, 1);
    let s = h.stats();
    assert_eq!(
        (
            s.time_exceeded_sent,
            s.too_big_sent,
            s.icmp_errors_rate_limited
        ),
        (11, 1, 9)
    );
}

#[test]
fn every_error_shares_the_budget_in_all() {
    // Default: 100 per second, burst 10, rejects included.
    let mut h = Harness::new();
    let sources = (100..130u8).map(|i| IpAddr::V4(Ipv4Addr::new(198, 18, 0, i)));
    let mut sent = 0;
    for (i, src) in sources.enumerate() {
        let IpAddr::V4(src) = src else { unreachable!() };
        let out = match i % 3 {
            0 => h.reject(udp4(src, VIP4, b"x")),
            1 => error(&mut h, IcmpError::TimeExceeded, udp4(src, VIP4, b"x")),
            _ => error(&mut h, TOO_BIG, udp4(src, VIP4, b"x")),
        };
        sent += out.len();
    }
    assert_eq!(sent, 10, "the burst in all, whatever the source");
    let s = h.stats();
    assert_eq!(
        s.rejects_rate_limited + s.icmp_errors_rate_limited,
        20,
        "the rest limited"
    );
}

#[test]
fn a_full_source_table_gives_no_error_to_new_busy_sources() {
    let mut h = Harness::with(SlowPathConfig {
        tuning: SlowPathTuning {
            reject_rate_per_sec: 10_000,
            reject_burst: 10_000,
            icmp_error_sources: 2,
            ..SlowPathTuning::default()
        },
        ..config()
    });
    let from = |i: u8| udp4(Ipv4Addr::new(198, 18, 0, i), VIP4, b"x");
    assert_eq!(error(&mut h, TOO_BIG, from(100)).len(), 1);
    assert_eq!(error(&mut h, TOO_BIG, from(101)).len(), 1);
    assert!(error(&mut h, TOO_BIG, from(102)).is_empty(), "table full");
    // A second later both buckets have refilled: their sources are quiet, one makes room.
    h.now += Duration::from_secs(1);
    assert_eq!(error(&mut h, TOO_BIG, from(102)).len(), 1);
    assert_eq!(h.stats().icmp_errors_rate_limited, 1);
}

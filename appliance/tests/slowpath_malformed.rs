//! Bad input is counted, never a panic: arbitrary bytes, truncations of valid frames, and
//! neighbor discovery messages with valid checksums around arbitrary options.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod slowpath_support;

use std::net::Ipv6Addr;

use appliance::slowpath::SlowPathMsg;
use etherparse::{Icmpv6Type, PacketBuilder};
use proptest::prelude::*;
use slowpath_support::*;

/// Valid frames of every kind the slow path handles.
fn valid_frames() -> Vec<Vec<u8>> {
    vec![
        arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], VIP4),
        arp_frame(OUR_MAC, 2, ROUTER_MAC, ROUTER4, OUR_MAC, OWN4),
        echo4(PEER4, VIP4, 1, 2, b"payload"),
        echo6(PEER6, VIP6, 1, 2, b"payload"),
        ns(
            PEER_MAC,
            OUR_MAC,
            PEER6,
            VIP6,
            VIP6,
            &lladdr_option(1, PEER_MAC),
        ),
        na(ROUTER_MAC, ROUTER6, ROUTER6, ROUTER_MAC),
        udp4(PEER4, VIP4, b"rejected datagram"),
        udp6(PEER6, VIP6, b"rejected datagram"),
    ]
}

/// What the cuts of one valid frame come to. Every cut `frame[..len]`, `len` from 0 to one
/// short of the whole, is handed over twice: as a `Frame` and as a `Reject`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fates {
    /// Frames: counted malformed, ignored, answered with an ARP reply.
    frame_malformed: u64,
    frame_ignored: u64,
    arp_replies: u64,
    /// Rejects: counted malformed, ignored.
    reject_malformed: u64,
    reject_ignored: u64,
}

/// Hands every cut of `frame` to a fresh slow path and reads the counters.
fn fates_of_cuts(frame: &[u8]) -> Fates {
    let count = |what: fn(&mut Harness, Vec<u8>)| {
        let mut h = Harness::new();
        for len in 0..frame.len() {
            what(&mut h, frame[..len].to_vec());
        }
        h.stats()
    };
    let f = count(|h, cut| drop(h.frame(cut)));
    let r = count(|h, cut| drop(h.reject(cut)));
    assert_eq!(
        f.frames_handled,
        frame.len() as u64,
        "every frame is handled"
    );
    assert_eq!(f.frames_sent, f.arp_replies, "only ARP replies are sent");
    assert_eq!(
        (r.frames_sent, r.rejects_sent, r.rejects_rate_limited),
        (0, 0, 0),
        "no cut is a datagram to reject"
    );
    Fates {
        frame_malformed: f.malformed,
        frame_ignored: f.ignored,
        arp_replies: f.arp_replies,
        reject_malformed: r.malformed,
        reject_ignored: r.ignored,
    }
}

#[test]
fn every_truncation_of_every_valid_frame_is_counted_exactly() {
    // Below 14 bytes there is no Ethernet header: malformed either way.
    const ETH: u64 = 14;
    // ARP (14 + 28 bytes, padded to 60). As a frame: the ARP body is incomplete below 42
    // bytes (malformed); from 42 on a cut only takes padding, so the request for the VIP
    // is answered, and the reply from a sender we never asked about teaches nothing
    // (ignored). As a reject: an ARP frame is no datagram, ignored once the Ethernet
    // header is whole.
    let arp = |whole: Fates| Fates {
        frame_malformed: 42,
        reject_malformed: ETH,
        reject_ignored: 60 - ETH,
        ..whole
    };
    // IP: the checked views need the whole datagram (IPv4 total length, IPv6 payload
    // length) and these frames carry no padding, so every cut is malformed, both ways.
    let ip = |len: u64| Fates {
        frame_malformed: len,
        reject_malformed: len,
        ..Fates::default()
    };
    let expected = [
        (
            "ARP request for the VIP",
            60,
            arp(Fates {
                arp_replies: 60 - 42,
                ..Fates::default()
            }),
        ),
        (
            "ARP reply to us",
            60,
            arp(Fates {
                frame_ignored: 60 - 42,
                ..Fates::default()
            }),
        ),
        ("ICMP echo", 49, ip(49)),
        ("ICMPv6 echo", 69, ip(69)),
        ("neighbor solicitation", 86, ip(86)),
        ("neighbor advertisement", 86, ip(86)),
        ("UDP", 59, ip(59)),
        ("UDPv6", 79, ip(79)),
    ];
    let frames = valid_frames();
    assert_eq!(
        frames.len(),
        expected.len(),
        "one expectation per valid frame"
    );
    for (frame, (kind, len, fates)) in frames.iter().zip(expected) {
        assert_eq!(frame.len(), len, "{kind}");
        assert_eq!(fates_of_cuts(frame), fates, "{kind}");
    }
}

#[test]
fn specific_malformations_are_counted_as_malformed() {
    let mut h = Harness::new();
    // Ethernet header only, ARP ethertype.
    let arp = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], OWN4);
    h.frame(arp[..14].to_vec());
    // ARP for a hardware type we do not speak.
    let mut odd = arp.clone();
    odd[15] = 6;
    h.frame(odd);
    // IPv4 header checksum broken.
    let mut echo = echo4(PEER4, VIP4, 1, 1, b"x");
    echo[14 + 10] ^= 0xff;
    h.frame(echo.clone());
    h.reject(echo);
    // IPv4 total length beyond the frame.
    let mut long = udp4(PEER4, VIP4, b"x");
    long[14 + 2] = 0xff;
    h.reject(long);
    assert_eq!(h.stats().malformed, 5);
    assert_eq!(h.stats().rejects_sent, 0);
}

/// A neighbor solicitation for our VIP whose options are arbitrary, with a valid checksum.
fn ns_with_options(options: &[u8]) -> Vec<u8> {
    let mut body = VIP6.octets().to_vec();
    body.extend_from_slice(options);
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x10);
    let b = PacketBuilder::ethernet2(PEER_MAC, [0x33, 0x33, 0xff, 0, 0, 0x10])
        .ipv6(PEER6.octets(), group.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborSolicitation);
    let mut f = Vec::new();
    b.write(&mut f, &body).unwrap();
    f
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut h = Harness::new();
        h.frame(bytes.clone());
        h.reject(bytes.clone());
        h.resolve(std::net::IpAddr::V4(ROUTER4));
        h.advance(std::time::Duration::from_secs(1));
        let s = h.stats();
        prop_assert_eq!(s.frames_handled, 1);
        prop_assert!(s.malformed + s.ignored <= 2);
    }

    #[test]
    fn arbitrary_payload_behind_our_headers_never_panics(
        ethertype in prop_oneof![Just(0x0806u16), Just(0x0800), Just(0x86dd), any::<u16>()],
        to_us in any::<bool>(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut frame = Vec::new();
        frame.extend_from_slice(if to_us { &OUR_MAC } else { &BROADCAST });
        frame.extend_from_slice(&PEER_MAC);
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(&payload);
        let mut h = Harness::new();
        for sent in [h.frame(frame.clone()), h.reject(frame)] {
            for (_, out) in sent {
                prop_assert!(out.len() >= 60);
                prop_assert_eq!(&out[6..12], &OUR_MAC[..]);
            }
        }
    }

    #[test]
    fn neighbor_options_with_valid_checksum_never_panic(
        options in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut h = Harness::new();
        let out = h.frame(ns_with_options(&options));
        let s = h.stats();
        // Either answered or counted.
        prop_assert_eq!(out.len() as u64 + s.malformed + s.ignored, 1);
    }

    #[test]
    fn flipping_one_byte_of_a_valid_frame_never_panics(
        which in 0usize..8,
        at in any::<proptest::sample::Index>(),
        xor in 1u8..=255,
    ) {
        let mut frame = valid_frames().swap_remove(which);
        let i = at.index(frame.len());
        frame[i] ^= xor;
        let mut h = Harness::new();
        h.frame(frame.clone());
        h.reject(frame);
        h.send(SlowPathMsg::Shutdown);
    }
}

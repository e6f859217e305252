//! The slow path answers for the appliance's own addresses, VIPs and SNAT addresses (ARP,
//! NDP, echo), rejects flows with ICMP unreachable, and follows address updates.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod slowpath_support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use appliance::slowpath::{PortAddresses, SlowPathConfig, SlowPathMsg, SlowPathTuning};
use etherparse::{Icmpv4Type, Icmpv6Type, NetSlice, SlicedPacket, TransportSlice};
use slowpath_support::*;

/// The ARP reply we expect for `target`, byte for byte.
fn expected_arp_reply(target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&PEER_MAC); // back to the requester
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&OUR_MAC);
    f.extend_from_slice(&target.octets());
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&PEER4.octets());
    f.resize(60, 0);
    f
}

#[test]
fn arp_request_for_own_address_gets_reply_with_port_mac() {
    let mut h = Harness::new();
    let req = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], OWN4);
    assert_eq!(only(h.frame(req)), expected_arp_reply(OWN4));
    assert_eq!(h.stats().arp_replies, 1);
    assert_eq!(h.stats().frames_sent, 1);
}

#[test]
fn arp_request_for_vip_gets_reply() {
    let mut h = Harness::new();
    let req = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], VIP4);
    assert_eq!(only(h.frame(req)), expected_arp_reply(VIP4));
}

#[test]
fn arp_request_for_unknown_address_gets_nothing() {
    let mut h = Harness::new();
    let req = arp_frame(
        BROADCAST,
        1,
        PEER_MAC,
        PEER4,
        [0; 6],
        Ipv4Addr::new(198, 18, 0, 77),
    );
    assert!(h.frame(req).is_empty());
    assert_eq!(h.stats().arp_replies, 0);
    assert_eq!(h.stats().ignored, 1);
    // Not for us: the sender is not learned either.
    assert!(!h.sp.neighbor_snapshot().contains_key(&IpAddr::V4(PEER4)));
}

#[test]
fn arp_request_for_us_teaches_the_on_link_sender() {
    let mut h = Harness::new();
    h.frame(arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], OWN4));
    assert_eq!(
        h.sp.neighbor_snapshot().get(&IpAddr::V4(PEER4)),
        Some(&PEER_MAC)
    );
    assert_eq!(h.stats().resolutions_learned, 1);
}

#[test]
fn frames_for_another_station_are_ignored() {
    let mut h = Harness::new();
    let req = arp_frame([0x02, 9, 9, 9, 9, 9], 1, PEER_MAC, PEER4, [0; 6], OWN4);
    assert!(h.frame(req).is_empty());
    assert_eq!(h.stats().ignored, 1);
}

fn check_echo4_reply(frame: &[u8], from: Ipv4Addr, id: u16, seq: u16, data: &[u8]) {
    assert_eq!(&frame[..6], &PEER_MAC);
    assert_eq!(&frame[6..12], &OUR_MAC);
    let ip = &frame[14..];
    assert_ipv4_header_checksum(ip);
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    assert_icmpv4_checksum(&ip[ihl..total]);
    let parsed = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv4(v4)) = &parsed.net else {
        panic!("not IPv4")
    };
    assert_eq!(v4.header().source_addr(), from);
    assert_eq!(v4.header().destination_addr(), PEER4);
    let Some(TransportSlice::Icmpv4(icmp)) = &parsed.transport else {
        panic!("not ICMP")
    };
    let Icmpv4Type::EchoReply(echo) = icmp.icmp_type() else {
        panic!("not an echo reply")
    };
    assert_eq!((echo.id, echo.seq), (id, seq));
    assert_eq!(icmp.payload(), data);
}

#[test]
fn echo_to_vip_and_own_address_is_answered_with_valid_checksums() {
    let mut h = Harness::new();
    for (dst, data) in [
        (VIP4, &b"udplb ping"[..]),
        (OWN4, &b"odd length payload!"[..]),
    ] {
        let reply = only(h.frame(echo4(PEER4, dst, 0x1234, 7, data)));
        check_echo4_reply(&reply, dst, 0x1234, 7, data);
    }
    assert_eq!(h.stats().echo_replies, 2);
}

#[test]
fn echo_with_bad_checksum_is_malformed() {
    let mut h = Harness::new();
    let mut req = echo4(PEER4, VIP4, 1, 1, b"x");
    let last = req.len() - 1;
    req[last] ^= 0xff;
    assert!(h.frame(req).is_empty());
    assert_eq!(h.stats().malformed, 1);
    assert_eq!(h.stats().echo_replies, 0);
}

#[test]
fn echo_to_an_address_we_do_not_own_is_ignored() {
    let mut h = Harness::new();
    assert!(h
        .frame(echo4(PEER4, Ipv4Addr::new(198, 19, 9, 9), 1, 1, b"x"))
        .is_empty());
    assert_eq!(h.stats().ignored, 1);
}

#[test]
fn icmpv6_echo_to_vip_is_answered() {
    let mut h = Harness::new();
    let data = b"v6 ping to the vip";
    let reply = only(h.frame(echo6(PEER6, VIP6, 99, 3, data)));
    assert_eq!(&reply[..6], &PEER_MAC);
    let parsed = SlicedPacket::from_ethernet(&reply).unwrap();
    let Some(NetSlice::Ipv6(v6)) = &parsed.net else {
        panic!("not IPv6")
    };
    assert_eq!(v6.header().source_addr(), VIP6);
    assert_eq!(v6.header().destination_addr(), PEER6);
    let Some(TransportSlice::Icmpv6(icmp)) = &parsed.transport else {
        panic!("not ICMPv6")
    };
    let Icmpv6Type::EchoReply(echo) = icmp.icmp_type() else {
        panic!("not an echo reply")
    };
    assert_eq!((echo.id, echo.seq), (99, 3));
    assert_eq!(icmp.payload(), data);
    assert_icmpv6_checksum(VIP6, PEER6, icmp.slice());
}

/// Checks an NA for `target` sent to `dst`, returns its flags byte.
fn check_na(frame: &[u8], eth_dst: [u8; 6], dst: Ipv6Addr, target: Ipv6Addr) -> u8 {
    assert_eq!(&frame[..6], &eth_dst);
    assert_eq!(&frame[6..12], &OUR_MAC);
    let parsed = SlicedPacket::from_ethernet(frame).unwrap();
    let Some(NetSlice::Ipv6(v6)) = &parsed.net else {
        panic!("not IPv6")
    };
    assert_eq!(v6.header().hop_limit(), 255);
    assert_eq!(v6.header().source_addr(), target);
    assert_eq!(v6.header().destination_addr(), dst);
    let Some(TransportSlice::Icmpv6(icmp)) = &parsed.transport else {
        panic!("not ICMPv6")
    };
    assert!(matches!(
        icmp.icmp_type(),
        Icmpv6Type::NeighborAdvertisement(_)
    ));
    assert_icmpv6_checksum(target, dst, icmp.slice());
    let body = icmp.slice();
    assert_eq!(&body[8..24], &target.octets());
    // Target link-layer address option: type 2, length 1 (8 bytes), our MAC.
    assert_eq!(
        &body[24..32],
        &[2, 1, OUR_MAC[0], OUR_MAC[1], OUR_MAC[2], OUR_MAC[3], OUR_MAC[4], OUR_MAC[5]]
    );
    body[4]
}

#[test]
fn neighbor_solicitation_for_vip_gets_advert_with_target_lladdr() {
    let mut h = Harness::new();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0010);
    let group_mac = [0x33, 0x33, 0xff, 0x00, 0x00, 0x10];
    let sol = ns(
        PEER_MAC,
        group_mac,
        PEER6,
        group,
        VIP6,
        &lladdr_option(1, PEER_MAC),
    );
    let flags = check_na(&only(h.frame(sol)), PEER_MAC, PEER6, VIP6);
    assert_eq!(flags, 0x60, "solicited + override, not router");
    assert_eq!(h.stats().nd_replies, 1);
    // The on-link solicitor was learned from its source link-layer option.
    assert_eq!(
        h.sp.neighbor_snapshot().get(&IpAddr::V6(PEER6)),
        Some(&PEER_MAC)
    );
}

#[test]
fn neighbor_solicitation_for_own_address_without_option_replies_to_frame_source() {
    let mut h = Harness::new();
    let sol = ns(PEER_MAC, OUR_MAC, PEER6, OWN6, OWN6, &[]);
    check_na(&only(h.frame(sol)), PEER_MAC, PEER6, OWN6);
}

#[test]
fn duplicate_address_detection_is_answered_to_all_nodes() {
    let mut h = Harness::new();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0001);
    let sol = ns(
        PEER_MAC,
        [0x33, 0x33, 0xff, 0, 0, 1],
        Ipv6Addr::UNSPECIFIED,
        group,
        OWN6,
        &[],
    );
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let flags = check_na(
        &only(h.frame(sol)),
        [0x33, 0x33, 0, 0, 0, 1],
        all_nodes,
        OWN6,
    );
    assert_eq!(flags, 0x20, "override only: unsolicited");
}

#[test]
fn neighbor_solicitation_with_low_hop_limit_is_dropped() {
    let mut h = Harness::new();
    let mut sol = ns(PEER_MAC, OUR_MAC, PEER6, OWN6, OWN6, &[]);
    sol[14 + 7] = 254; // hop limit; not covered by the ICMPv6 checksum
    assert!(h.frame(sol).is_empty());
    assert_eq!(h.stats().malformed, 1);
}

#[test]
fn neighbor_solicitation_for_unknown_target_gets_nothing() {
    let mut h = Harness::new();
    let other = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x99);
    assert!(h
        .frame(ns(PEER_MAC, OUR_MAC, PEER6, other, other, &[]))
        .is_empty());
    assert_eq!(h.stats().nd_replies, 0);
}

#[test]
fn reject_v4_answers_admin_prohibited_quoting_header_and_8_bytes() {
    let mut h = Harness::new();
    let datagram = udp4(PEER4, VIP4, b"a query that is longer than eight bytes");
    let reply = only(h.reject(datagram.clone()));
    assert_eq!(&reply[..6], &PEER_MAC);
    assert_eq!(&reply[6..12], &OUR_MAC);
    let ip = &reply[14..];
    assert_ipv4_header_checksum(ip);
    assert_eq!(&ip[12..16], &VIP4.octets(), "from the VIP");
    assert_eq!(&ip[16..20], &PEER4.octets(), "to the client");
    assert_eq!(ip[9], 1, "ICMP");
    let icmp = &ip[20..];
    assert_eq!(icmp.len(), 8 + 20 + 8);
    assert_eq!(
        (icmp[0], icmp[1]),
        (3, 13),
        "destination unreachable, administratively prohibited"
    );
    assert_eq!(&icmp[4..8], &[0, 0, 0, 0]);
    assert_eq!(
        &icmp[8..],
        &datagram[14..14 + 28],
        "original header + 8 bytes, verbatim"
    );
    assert_icmpv4_checksum(icmp);
    assert_eq!(h.stats().rejects_sent, 1);
}

#[test]
fn reject_v6_quotes_as_much_as_fits_in_1280() {
    let mut h = Harness::new();
    let small = udp6(PEER6, VIP6, b"hello");
    let reply = only(h.reject(small.clone()));
    let parsed = SlicedPacket::from_ethernet(&reply).unwrap();
    let Some(TransportSlice::Icmpv6(icmp)) = &parsed.transport else {
        panic!("not ICMPv6")
    };
    assert_eq!(
        &icmp.slice()[..2],
        &[1, 1],
        "destination unreachable, administratively prohibited"
    );
    assert_eq!(&icmp.slice()[8..], &small[14..], "whole datagram quoted");
    assert_icmpv6_checksum(VIP6, PEER6, icmp.slice());

    let big = udp6(PEER6, VIP6, &[0x42; 1400]);
    let reply = only(h.reject(big.clone()));
    assert_eq!(reply.len(), 14 + 1280);
    let icmp = &reply[14 + 40..];
    assert_eq!(&icmp[8..], &big[14..14 + 1280 - 48]);
    assert_icmpv6_checksum(VIP6, PEER6, icmp);
}

#[test]
fn rejects_are_rate_limited_by_token_bucket() {
    let mut h = Harness::new(); // default: burst 10, 100 per second in all
                                // A client each, so that the per-source limit (10/s, burst 10) never shows.
    let datagram = |i: u8| udp4(Ipv4Addr::new(198, 18, 0, 100 + i), VIP4, b"x");
    let sent: usize = (0..25).map(|i| h.reject(datagram(i)).len()).sum();
    assert_eq!(sent, 10);
    assert_eq!(h.stats().rejects_sent, 10);
    assert_eq!(h.stats().rejects_rate_limited, 15);
    // 50 ms at 100/s refills 5 tokens.
    h.now += Duration::from_millis(50);
    let sent: usize = (0..25).map(|i| h.reject(datagram(i)).len()).sum();
    assert_eq!(sent, 5);
}

#[test]
fn reject_for_a_non_vip_destination_or_non_host_source_is_ignored() {
    let mut h = Harness::new();
    assert!(h
        .reject(udp4(PEER4, Ipv4Addr::new(198, 19, 7, 7), b"x"))
        .is_empty());
    assert!(h.reject(udp4(Ipv4Addr::BROADCAST, VIP4, b"x")).is_empty());
    assert!(h.reject(udp4(Ipv4Addr::LOCALHOST, VIP4, b"x")).is_empty());
    assert_eq!(h.stats().ignored, 3);
    assert_eq!(h.stats().rejects_sent, 0);
}

#[test]
fn update_addresses_takes_effect() {
    let mut h = Harness::new();
    let new_vip = Ipv4Addr::new(198, 19, 0, 20);
    let ask_new = || arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], new_vip);
    let ask_old = || arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], VIP4);
    assert!(h.frame(ask_new()).is_empty());
    h.send(SlowPathMsg::UpdateAddresses {
        port: PORT,
        own: vec![(IpAddr::V4(OWN4), 24)],
        vips: vec![IpAddr::V4(new_vip)],
    });
    assert_eq!(only(h.frame(ask_new())), expected_arp_reply(new_vip));
    assert!(
        h.frame(ask_old()).is_empty(),
        "the old VIP is no longer answered"
    );
    // The IPv6 own address went away too.
    assert!(h.frame(echo6(PEER6, OWN6, 1, 1, b"x")).is_empty());
}

#[test]
fn invalid_address_update_keeps_previous_addresses() {
    let mut h = Harness::new();
    h.send(SlowPathMsg::UpdateAddresses {
        port: PORT,
        own: vec![(IpAddr::V4(OWN4), 40)],
        vips: vec![],
    });
    let req = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], VIP4);
    assert_eq!(only(h.frame(req)), expected_arp_reply(VIP4));
}

#[test]
fn frames_on_unknown_port_are_ignored() {
    let mut h = Harness::new();
    let out = h.send(SlowPathMsg::Frame {
        port: 7,
        frame: arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], OWN4),
    });
    assert!(out.is_empty());
    assert_eq!(h.stats().ignored, 1);
    assert_eq!(h.stats().frames_handled, 1);
}

// SNAT addresses: backends on the SNAT address's link send their full-NAT replies to it,
// so they resolve it like any neighbor. Expected frames are literal bytes.

#[test]
fn arp_request_for_snat_address_gets_reply_byte_for_byte() {
    let mut h = Harness::new();
    let req = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], SNAT4);
    #[rustfmt::skip]
    let expected: [u8; 60] = [
        // Ethernet: to the requester, from the port, ARP
        0x02, 0x00, 0x5e, 0x00, 0x00, 0x02,  0x02, 0x00, 0x5e, 0x00, 0x00, 0x01,  0x08, 0x06,
        // Ethernet/IPv4, 6/4 bytes, reply
        0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02,
        // sender: the port's MAC has 198.18.0.2 (the SNAT address)
        0x02, 0x00, 0x5e, 0x00, 0x00, 0x01,  198, 18, 0, 2,
        // target: the requester, 198.18.0.50
        0x02, 0x00, 0x5e, 0x00, 0x00, 0x02,  198, 18, 0, 50,
        // padding to the Ethernet minimum
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(only(h.frame(req)), expected);
    assert_eq!(h.stats().arp_replies, 1);
    // The backend asked for us: it is learned, as for an own address.
    assert_eq!(
        h.sp.neighbor_snapshot().get(&IpAddr::V4(PEER4)),
        Some(&PEER_MAC)
    );
}

#[test]
fn neighbor_solicitation_for_snat_address_gets_advert_byte_for_byte() {
    let mut h = Harness::new();
    // Solicited-node group of 2001:2::2 and its MAC.
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0002);
    let sol = ns(
        PEER_MAC,
        [0x33, 0x33, 0xff, 0x00, 0x00, 0x02],
        PEER6,
        group,
        SNAT6,
        &lladdr_option(1, PEER_MAC),
    );
    #[rustfmt::skip]
    let expected: [u8; 86] = [
        // Ethernet: to the solicitor, from the port, IPv6
        0x02, 0x00, 0x5e, 0x00, 0x00, 0x02,  0x02, 0x00, 0x5e, 0x00, 0x00, 0x01,  0x86, 0xdd,
        // IPv6: version 6, payload 32 bytes, ICMPv6, hop limit 255
        0x60, 0x00, 0x00, 0x00,  0x00, 0x20, 58, 255,
        // source 2001:2::2 (the SNAT address)
        0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02,
        // destination 2001:2::50 (the solicitor)
        0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x50,
        // neighbor advertisement, code 0, checksum (computed by hand over the pseudo-header)
        136, 0, 0x55, 0x45,
        // flags: solicited + override, not router
        0x60, 0x00, 0x00, 0x00,
        // target 2001:2::2
        0x20, 0x01, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x02,
        // target link-layer address option: the port's MAC
        2, 1, 0x02, 0x00, 0x5e, 0x00, 0x00, 0x01,
    ];
    let reply = only(h.frame(sol));
    assert_eq!(reply, expected);
    assert_icmpv6_checksum(SNAT6, PEER6, &reply[54..]);
    assert_eq!(h.stats().nd_replies, 1);
}

#[test]
fn duplicate_address_detection_of_snat_address_is_answered_to_all_nodes() {
    let mut h = Harness::new();
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x0002);
    let sol = ns(
        PEER_MAC,
        [0x33, 0x33, 0xff, 0, 0, 2],
        Ipv6Addr::UNSPECIFIED,
        group,
        SNAT6,
        &[],
    );
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let flags = check_na(
        &only(h.frame(sol)),
        [0x33, 0x33, 0, 0, 0, 1],
        all_nodes,
        SNAT6,
    );
    assert_eq!(flags, 0x20, "override only: unsolicited");
}

#[test]
fn echo_to_snat_address_is_answered_from_it() {
    let mut h = Harness::new();
    let reply = only(h.frame(echo4(PEER4, SNAT4, 5, 6, b"ping snat")));
    check_echo4_reply(&reply, SNAT4, 5, 6, b"ping snat");
    let reply = only(h.frame(echo6(PEER6, SNAT6, 7, 8, b"ping snat6")));
    let ip6 = &reply[14..54];
    assert_eq!(&ip6[8..24], &SNAT6.octets(), "from the SNAT address");
    assert_icmpv6_checksum(SNAT6, PEER6, &reply[54..]);
    assert_eq!(reply[54], 129, "echo reply");
    assert_eq!(h.stats().echo_replies, 2);
}

#[test]
fn address_updates_keep_the_snat_addresses() {
    let mut h = Harness::new();
    h.send(SlowPathMsg::UpdateAddresses {
        port: PORT,
        own: vec![(IpAddr::V4(OWN4), 24), (IpAddr::V6(OWN6), 64)],
        vips: vec![],
    });
    let req = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], SNAT4);
    assert_eq!(only(h.frame(req)), expected_arp_reply(SNAT4));
    let sol = ns(PEER_MAC, OUR_MAC, PEER6, SNAT6, SNAT6, &[]);
    check_na(&only(h.frame(sol)), PEER_MAC, PEER6, SNAT6);
}

#[test]
fn snat_address_is_answered_only_on_the_port_given_it() {
    const BACKEND_PORT: u16 = 1;
    let backend_mac = [0x02, 0x00, 0x5e, 0x00, 0x01, 0x01];
    let snat = Ipv4Addr::new(198, 18, 1, 2);
    let backend = Ipv4Addr::new(198, 18, 1, 11);
    let clients = PortAddresses {
        mac: OUR_MAC,
        own: vec![(IpAddr::V4(OWN4), 24)],
        vips: vec![IpAddr::V4(VIP4)],
        snat: vec![],
    };
    let backends = PortAddresses {
        mac: backend_mac,
        own: vec![(IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)), 24)],
        vips: vec![IpAddr::V4(VIP4)],
        snat: vec![IpAddr::V4(snat)],
    };
    let mut h = Harness::with(SlowPathConfig {
        ports: [(PORT, clients), (BACKEND_PORT, backends)]
            .into_iter()
            .collect(),
        static_neighbors: vec![],
        tuning: SlowPathTuning::default(),
    });
    let ask = |eth_dst| arp_frame(eth_dst, 1, PEER_MAC, backend, [0; 6], snat);
    let out = h.send(SlowPathMsg::Frame {
        port: BACKEND_PORT,
        frame: ask(BROADCAST),
    });
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].0, BACKEND_PORT);
    assert_eq!(
        &out[0].1[6..12],
        &backend_mac,
        "from the backend port's MAC"
    );
    assert_eq!(&out[0].1[28..32], &snat.octets());
    // The client-side port does not claim it.
    assert!(h.frame(ask(BROADCAST)).is_empty());
    assert_eq!(h.stats().arp_replies, 1);
}

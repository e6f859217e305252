//! ICMP errors about flows, both ways, every mode, both families: byte fixtures checked
//! field by field, with every checksum verified independently (`common`): the outer IPv4
//! header, the ICMP message (ICMPv6 with its pseudo-header), the embedded IPv4 header;
//! and the embedded UDP header compared with the datagram the receiver of the error
//! actually sent (so its checksum is exactly right). Also what is not translated, and
//! how errors find their flow on two workers.

#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::IpAddr;

use common::*;
use pipelines::testkit::{self, decode_verified, udp_frame};
use pipelines::{DropReason, HostReason, Verdict};

/// The error kinds to try per family: (type, code, the 4 bytes after the checksum,
/// passive health failure).
fn kinds(v6: bool) -> Vec<(u8, u8, [u8; 4], bool)> {
    if v6 {
        vec![
            (1, 4, [0; 4], true),              // port unreachable
            (1, 3, [0; 4], true),              // address unreachable
            (2, 0, [0, 0, 0x05, 0x78], false), // packet too big, MTU 1400
            (3, 0, [0; 4], false),             // hop limit exceeded
            (4, 0, [0, 0, 0, 40], false),      // parameter problem, pointer
        ]
    } else {
        vec![
            (3, 3, [0; 4], true),              // port unreachable
            (3, 1, [0; 4], true),              // host unreachable
            (3, 4, [0, 0, 0x05, 0x78], false), // fragmentation needed, MTU 1400
            (11, 0, [0; 4], false),            // time exceeded
            (12, 0, [9, 0, 0, 0], false),      // parameter problem, pointer
        ]
    }
}

fn n_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    }
}

/// Offsets in an untagged frame: the ICMP header and the embedded IP header.
fn icmp_at(frame: &[u8]) -> usize {
    if frame[12..14] == [0x86, 0xdd] {
        54
    } else {
        14 + usize::from(frame[14] & 0x0f) * 4
    }
}

struct Outer {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
}

fn outer(frame: &[u8]) -> Outer {
    if frame[12..14] == [0x86, 0xdd] {
        Outer {
            src: IpAddr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap()),
            dst: IpAddr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap()),
            ttl: frame[21],
        }
    } else {
        assert!(ipv4_header_ok(frame, 14), "outer IPv4 header checksum");
        Outer {
            src: IpAddr::from(<[u8; 4]>::try_from(&frame[26..30]).unwrap()),
            dst: IpAddr::from(<[u8; 4]>::try_from(&frame[30..34]).unwrap()),
            ttl: frame[22],
        }
    }
}

/// Checks that the datagram embedded in the error `e` is the start of `sent` (the
/// datagram the error's receiver sent), with the TTL / hop limit `hops` lower: same
/// addresses, ports, UDP length and checksum, payload bytes (as far as quoted), and a
/// valid IPv4 header checksum.
fn check_embedded(e: &[u8], sent: &[u8], hops: u8) {
    let q = &e[icmp_at(e) + 8..];
    let s = l3(sent);
    let v6 = sent[12..14] == [0x86, 0xdd];
    let n = q.len().min(s.len());
    let mut want = s[..n].to_vec();
    if v6 {
        want[7] -= hops;
    } else {
        want[8] -= hops;
        let ihl = usize::from(want[0] & 0x0f) * 4;
        want[10..12].copy_from_slice(&[0, 0]);
        let c = internet_checksum(0, &want[..ihl]);
        want[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            ones_sum(0, &q[..ihl]),
            0xffff,
            "embedded IPv4 header checksum"
        );
    }
    assert_eq!(&q[..n], &want[..], "embedded datagram");
}

/// Backend-side errors about forwarded datagrams reach the client, FullNAT and
/// preserve-client, both families, every error kind.
#[test]
fn backend_errors_reach_the_client_as_about_its_own_datagram() {
    for (client, vip) in [
        (CLIENT4, VIP4),
        (CLIENT6, VIP6),
        (CLIENT4, PC4),
        (CLIENT6, PC6),
    ] {
        let (client, vip) = (sa(client), sa(vip));
        let v6 = vip.is_ipv6();
        for (kind, code, rest, unreachable) in kinds(v6) {
            let mut rig = Rig::new(1);
            let original = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"query");
            let mut fwd = original.clone();
            assert_eq!(tx_port(rig.run(&mut fwd, SEC)), 1);
            let d = decode_verified(&fwd).unwrap();
            // The backend's error quotes what it received (ICMPv6: all of it).
            let quoted = quote(&fwd, if v6 { 1000 } else { 8 });
            let mut e = icmp_error(
                d.dst.ip(),
                d.src.ip(),
                64,
                kind,
                code,
                rest,
                &quoted,
                testkit::backend_mac(3),
                testkit::PORT1_MAC,
            );
            let input = e.clone();
            assert_eq!(tx_port(rig.run(&mut e, 2 * SEC)), 0, "{vip} {kind}/{code}");
            let o = outer(&e);
            assert_eq!((o.src, o.dst, o.ttl), (vip.ip(), client.ip(), 63));
            assert_eq!(&e[..6], &testkit::ROUTER_MAC.0);
            assert_eq!(&e[6..12], &testkit::PORT0_MAC.0);
            let at = icmp_at(&e);
            assert_eq!((e[at], e[at + 1]), (kind, code));
            assert_eq!(&e[at + 4..at + 8], &rest, "MTU / pointer kept");
            assert_eq!(e.len(), input.len());
            assert!(icmp_checksum_ok(&e), "ICMP checksum");
            // The client sees its own datagram quoted (one hop: udplb).
            check_embedded(&e, &original, 1);
            let c = rig.workers[0].counters();
            assert_eq!(c.icmp_translated, 1);
            let fails: u64 = c.entities.backends.iter().map(|t| t.icmp_unreachable).sum();
            assert_eq!(fails, u64::from(unreachable), "{kind}/{code}");
            // The flow stays, and keeps its backend and SNAT port.
            let mut again = original.clone();
            tx_port(rig.run(&mut again, 3 * SEC));
            let d2 = decode_verified(&again).unwrap();
            assert_eq!((d2.src, d2.dst), (d.src, d.dst));
            assert_eq!(rig.workers[0].counters().flows_created, 1);
        }
    }
}

/// An error refreshes no flow: it expires as if the error had not come.
#[test]
fn errors_neither_delete_nor_refresh_flows() {
    let mut rig = Rig::new(1);
    let original = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
    let mut fwd = original.clone();
    tx_port(rig.run(&mut fwd, SEC));
    let d = decode_verified(&fwd).unwrap();
    let mut e = icmp_error(
        d.dst.ip(),
        d.src.ip(),
        64,
        3,
        3,
        [0; 4],
        &quote(&fwd, 8),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    // Unreplied timeout 30 s: the error at 30 s - 1 ns, the next datagram after 31 s.
    tx_port(rig.run(&mut e, 31 * SEC - 1));
    assert_eq!(rig.workers[0].flows_len(), 1);
    let mut again = original.clone();
    tx_port(rig.run(&mut again, 31 * SEC + 1));
    assert_eq!(
        rig.workers[0].counters().flows_created,
        2,
        "expired on time"
    );
}

/// A preserve-client backend's error without a flow on this worker: translated from the
/// tables (the endpoint serves one listener).
#[test]
fn preserve_client_errors_without_a_flow_come_from_the_tables() {
    for (client, vip, backend) in [
        (CLIENT4, PC4, testkit::backend4(3)),
        (CLIENT6, PC6, testkit::backend6(3)),
    ] {
        let (client, vip) = (sa(client), sa(vip));
        let mut rig = Rig::new(1);
        let original = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"query");
        // What the backend received from udplb (on another worker, say).
        let received = udp_frame(client, backend, 63, &[], testkit::PORT1_MAC, b"query");
        let (k, c) = if vip.is_ipv6() { (1, 4) } else { (3, 3) };
        let mut e = icmp_error(
            backend.ip(),
            client.ip(),
            64,
            k,
            c,
            [0; 4],
            &quote(&received, 8),
            testkit::backend_mac(3),
            testkit::PORT1_MAC,
        );
        assert_eq!(tx_port(rig.run(&mut e, SEC)), 0);
        let o = outer(&e);
        assert_eq!((o.src, o.dst), (vip.ip(), client.ip()));
        assert!(icmp_checksum_ok(&e));
        check_embedded(&e, &original, 1);
        let fails: u64 = rig.workers[0]
            .counters()
            .entities
            .backends
            .iter()
            .map(|t| t.icmp_unreachable)
            .sum();
        assert_eq!(fails, 1);
    }
}

/// Client-side errors (a router on the client's path) about replies reach the backend
/// as about the reply it sent: FullNAT, preserve-client (flow and tables), DSR.
#[test]
fn client_side_errors_reach_the_backend_as_about_its_reply() {
    for (client, vip, router) in [
        (CLIENT4, VIP4, ROUTER4),
        (CLIENT6, VIP6, ROUTER6),
        (CLIENT4, PC4, ROUTER4),
        (CLIENT6, PC6, ROUTER6),
    ] {
        let (client, vip, router) = (sa(client), sa(vip), ip(router));
        let v6 = vip.is_ipv6();
        for with_flow in [true, false] {
            if !with_flow && vip.port() == 53 {
                continue; // FullNAT needs the flow (see the two-worker test).
            }
            let mut rig = Rig::new(1);
            let mut fwd = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"query");
            tx_port(rig.run(&mut fwd, SEC));
            let d = decode_verified(&fwd).unwrap();
            // The backend's reply as it sent it, and as udplb sent it on.
            let sent = udp_frame(d.dst, d.src, 64, &[], testkit::PORT1_MAC, &[7; 1300]);
            let mut out = sent.clone();
            tx_port(rig.run(&mut out, SEC));
            if !with_flow {
                rig = Rig::new(1);
            }
            let (k, c, rest) = if v6 {
                (2, 0, [0, 0, 0x05, 0x00])
            } else {
                (3, 4, [0, 0, 0x05, 0x00])
            };
            let mut e = icmp_error(
                router,
                vip.ip(),
                64,
                k,
                c,
                rest,
                &quote(&out, if v6 { 1000 } else { 8 }),
                testkit::ROUTER_MAC,
                testkit::PORT0_MAC,
            );
            assert_eq!(
                tx_port(rig.run(&mut e, 2 * SEC)),
                1,
                "{vip} flow {with_flow}"
            );
            let o = outer(&e);
            let expected_src = if vip.port() == 53 { d.src.ip() } else { router };
            assert_eq!((o.src, o.dst, o.ttl), (expected_src, d.dst.ip(), 63));
            assert_eq!(&e[..6], &testkit::backend_mac(n_of(d.dst.ip())).0);
            assert_eq!(&e[6..12], &testkit::PORT1_MAC.0);
            assert!(icmp_checksum_ok(&e));
            let at = icmp_at(&e);
            assert_eq!(&e[at + 4..at + 8], &rest, "MTU kept");
            // One hop (udplb) between the backend and the router.
            check_embedded(&e, &sent, 1);
            assert_eq!(rig.workers[0].counters().icmp_translated, 1);
        }
    }
}

/// DSR: a client-side error about a backend's direct reply reaches the VIP, and is
/// switched to that backend unchanged; a backend's error about a client datagram that
/// comes through udplb is routed on unchanged.
#[test]
fn dsr_errors_are_switched_or_routed_unchanged() {
    for (client, vip, router) in [(CLIENT4, DSR4, ROUTER4), (CLIENT6, DSR6, ROUTER6)] {
        let (client, vip, router) = (sa(client), sa(vip), ip(router));
        let v6 = vip.is_ipv6();
        for with_flow in [true, false] {
            let mut rig = Rig::new(1);
            let mut fwd = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"query");
            tx_port(rig.run(&mut fwd, SEC));
            let backend_mac = fwd[..6].to_vec();
            if !with_flow {
                rig = Rig::new(1);
            }
            // The backend's reply, from the VIP straight to the client, too big for a
            // router on the way.
            let reply = udp_frame(vip, client, 60, &[], testkit::ROUTER_MAC, &[1; 1400]);
            let (k, c) = if v6 { (2, 0) } else { (3, 4) };
            let mut e = icmp_error(
                router,
                vip.ip(),
                64,
                k,
                c,
                [0, 0, 0x05, 0x00],
                &quote(&reply, if v6 { 1000 } else { 8 }),
                testkit::ROUTER_MAC,
                testkit::PORT0_MAC,
            );
            let input = e.clone();
            assert_eq!(tx_port(rig.run(&mut e, 2 * SEC)), 1);
            assert_eq!(&e[..6], &backend_mac[..], "the flow's backend");
            assert_eq!(&e[6..12], &testkit::PORT1_MAC.0);
            assert_eq!(&e[12..], &input[12..], "nothing else changes");
        }
        // A DSR backend's port unreachable about the client's datagram, routed through
        // udplb: on to the client, unchanged but for the TTL, and counted for it.
        let mut rig = Rig::new(1);
        let original = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"query");
        let mut fwd = original.clone();
        tx_port(rig.run(&mut fwd, SEC));
        let n = *fwd[..6].last().unwrap();
        let (k, c) = if v6 { (1, 4) } else { (3, 3) };
        let mut e = icmp_error(
            vip.ip(),
            client.ip(),
            64,
            k,
            c,
            [0; 4],
            &quote(&fwd, 8),
            testkit::backend_mac(n),
            testkit::PORT1_MAC,
        );
        assert_eq!(tx_port(rig.run(&mut e, 2 * SEC)), 0);
        let o = outer(&e);
        assert_eq!((o.src, o.dst, o.ttl), (vip.ip(), client.ip(), 63));
        assert!(icmp_checksum_ok(&e));
        check_embedded(&e, &original, 0);
        let fails: u64 = rig.workers[0]
            .counters()
            .entities
            .backends
            .iter()
            .map(|t| t.icmp_unreachable)
            .sum();
        assert_eq!(fails, 1);
    }
}

/// What is not translated: echo and neighbor discovery (host, as before), errors about
/// ICMP, errors about the appliance's own datagrams (host), and the checks.
#[test]
fn what_is_not_translated() {
    let mut rig = Rig::new(1);
    let mut ping = echo(sa(CLIENT4).ip(), sa(VIP4).ip(), testkit::PORT0_MAC);
    assert_eq!(rig.run(&mut ping, SEC), Verdict::ToHost(HostReason::Icmp));
    let mut ping6 = echo(sa(CLIENT6).ip(), sa(VIP6).ip(), testkit::PORT0_MAC);
    assert_eq!(rig.run(&mut ping6, SEC), Verdict::ToHost(HostReason::Icmp));
    // An error about an echo request (ICMP about ICMP), sent to a client.
    let about_icmp = icmp_error(
        ip("198.18.1.1"),
        sa(CLIENT4).ip(),
        64,
        3,
        3,
        [0; 4],
        &quote(&ping, 8),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    let mut f = about_icmp.clone();
    assert_eq!(rig.run(&mut f, SEC), Verdict::ToHost(HostReason::Icmp));
    assert_eq!(f, about_icmp, "untouched");
    // About the appliance's own datagram (a health probe from its port address).
    let probe = udp_frame(
        sa("198.18.1.254:33000"),
        testkit::backend4(1),
        64,
        &[],
        testkit::PORT1_MAC,
        b"probe",
    );
    let mut f = icmp_error(
        testkit::backend4(1).ip(),
        ip("198.18.1.254"),
        64,
        3,
        3,
        [0; 4],
        &quote(&probe, 8),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    assert_eq!(rig.run(&mut f, SEC), Verdict::ToHost(HostReason::Icmp));
    // A flow's error arriving from the clients' side: mismatch.
    let mut fwd = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
    tx_port(rig.run(&mut fwd, SEC));
    let d = decode_verified(&fwd).unwrap();
    let e = icmp_error(
        d.dst.ip(),
        d.src.ip(),
        64,
        3,
        3,
        [0; 4],
        &quote(&fwd, 8),
        testkit::ROUTER_MAC,
        testkit::PORT0_MAC,
    );
    let mut f = e.clone();
    assert_eq!(
        rig.run_port(0, 0, &mut f, SEC),
        Verdict::Drop(DropReason::IcmpMismatch)
    );
    // The same from the right side with TTL 1: no error about an error.
    let mut f = icmp_error(
        d.dst.ip(),
        d.src.ip(),
        1,
        3,
        3,
        [0; 4],
        &quote(&fwd, 8),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    assert_eq!(rig.run(&mut f, SEC), Verdict::Drop(DropReason::TtlExpired));
    // A quote too short for the ports: not an error about a flow (host, as before).
    let mut f = icmp_error(
        d.dst.ip(),
        d.src.ip(),
        64,
        3,
        3,
        [0; 4],
        &quote(&fwd, 2),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    assert_eq!(rig.run(&mut f, SEC), Verdict::ToHost(HostReason::Icmp));
    // Four bytes of UDP header: translated, the UDP checksum left alone (not quoted).
    let mut f = icmp_error(
        d.dst.ip(),
        d.src.ip(),
        64,
        3,
        3,
        [0; 4],
        &quote(&fwd, 4),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    assert_eq!(tx_port(rig.run(&mut f, SEC)), 0);
    assert!(icmp_checksum_ok(&f));
    assert_eq!(rig.workers[0].counters().icmp_translated, 1);
}

/// Two workers: a backend's error about a FullNAT flow goes to the worker of its SNAT
/// port; a client-side error about a FullNAT reply (which does not say the SNAT port)
/// visits the workers from a start worker until one has the flow; no match anywhere is
/// `icmp_no_flow` after at most one visit each.
#[test]
fn two_workers_find_the_flow() {
    for (client, vip, router) in [(CLIENT4, VIP4, ROUTER4), (CLIENT6, VIP6, ROUTER6)] {
        let (client, vip, router) = (sa(client), sa(vip), ip(router));
        let v6 = vip.is_ipv6();
        for flow_on in 0..2 {
            for lands_on in 0..2 {
                let mut rig = Rig::new(2);
                let original = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"query");
                let mut fwd = original.clone();
                let (at, v, _) = rig.deliver(flow_on, &mut fwd, SEC);
                assert_eq!((at, tx_port(v)), (flow_on, 1));
                let d = decode_verified(&fwd).unwrap();
                let mut e = icmp_error(
                    d.dst.ip(),
                    d.src.ip(),
                    64,
                    3,
                    3,
                    [0; 4],
                    &quote(&fwd, 8),
                    testkit::backend_mac(1),
                    testkit::PORT1_MAC,
                );
                let (at, v, hops) = rig.deliver(lands_on, &mut e, 2 * SEC);
                assert_eq!((at, tx_port(v)), (flow_on, 0));
                assert!(hops <= 1);
                check_embedded(&e, &original, 1);

                let sent = udp_frame(d.dst, d.src, 64, &[], testkit::PORT1_MAC, &[7; 100]);
                let mut out = sent.clone();
                let (_, v, _) = rig.deliver(lands_on, &mut out, 2 * SEC);
                tx_port(v);
                let mut e = icmp_error(
                    router,
                    vip.ip(),
                    64,
                    3,
                    4,
                    [0, 0, 5, 0],
                    &quote(&out, if v6 { 1000 } else { 8 }),
                    testkit::ROUTER_MAC,
                    testkit::PORT0_MAC,
                );
                let (at, v, hops) = rig.deliver(lands_on, &mut e, 3 * SEC);
                assert_eq!(
                    (at, tx_port(v)),
                    (flow_on, 1),
                    "flow on {flow_on}, lands on {lands_on}"
                );
                assert!(hops <= 2, "{hops}");
                check_embedded(&e, &sent, 1);
                // Another client port: no flow anywhere.
                let other = udp_frame(
                    vip,
                    sa(if v6 {
                        "[2001:2:0:9::7]:40001"
                    } else {
                        "198.19.0.7:40001"
                    }),
                    63,
                    &[],
                    testkit::PORT0_MAC,
                    b"x",
                );
                let mut e = icmp_error(
                    router,
                    vip.ip(),
                    64,
                    3,
                    4,
                    [0, 0, 5, 0],
                    &quote(&other, 8),
                    testkit::ROUTER_MAC,
                    testkit::PORT0_MAC,
                );
                let (_, v, hops) = rig.deliver(lands_on, &mut e, 3 * SEC);
                assert_eq!(v, Verdict::Drop(DropReason::IcmpNoFlow));
                assert!(hops <= 2, "{hops}");
            }
        }
    }
}

/// A quick sanity check of the fixture builders against etherparse.
#[test]
fn fixtures_are_valid_icmp() {
    let f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
    let e = icmp_error(
        ip("198.18.1.1"),
        ip(SNAT4),
        64,
        3,
        3,
        [0; 4],
        &quote(&f, 8),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    assert!(icmp_checksum_ok(&e));
    let s = etherparse::SlicedPacket::from_ethernet(&e).unwrap();
    assert!(matches!(
        s.transport,
        Some(etherparse::TransportSlice::Icmpv4(_))
    ));
    let f6 = udp_frame(sa(CLIENT6), sa(VIP6), 64, &[], testkit::PORT0_MAC, b"q");
    let e6 = icmp_error(
        ip("2001:2:0:1::1"),
        ip(SNAT6),
        64,
        1,
        4,
        [0; 4],
        &quote(&f6, 8),
        testkit::backend_mac(1),
        testkit::PORT1_MAC,
    );
    assert!(icmp_checksum_ok(&e6));
    let s = etherparse::SlicedPacket::from_ethernet(&e6).unwrap();
    let Some(etherparse::TransportSlice::Icmpv6(i)) = s.transport else {
        panic!("not ICMPv6");
    };
    let h = etherparse::Ipv6Header::from_slice(&e6[14..]).unwrap().0;
    assert_eq!(
        i.icmp_type()
            .calc_checksum(h.source, h.destination, i.payload())
            .unwrap(),
        i.checksum(),
        "etherparse agrees"
    );
}

//! Byte-level tests of every fast-path outcome, on the `testkit` topology. Outputs are
//! checked field by field against hand-written expectations and re-verified with
//! etherparse's own checksum routines.

// An integration-test crate is all tests; the lint targets library code.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pipelines::neighbor::Neighbors;
use pipelines::net::{MacAddr, Network, PortRange, SnatConfig};
use pipelines::spec::{ForwardingConfig, NatMode, WEIGHT_SCALE};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{self, backend4, backend6, decode_verified, udp_frame};
use pipelines::{
    Context, DropReason, FastPath, FastPathParams, HostReason, OffloadRequest, Verdict,
};

const SEC: u64 = 1_000_000_000;

struct Rig {
    tables: Tables,
    network: Network,
    neighbors: Neighbors,
    worker: FastPath,
}

fn params() -> FastPathParams {
    let mut p = FastPathParams::new(
        0,
        1,
        PortRange {
            first: 1024,
            last: 65535,
        },
    );
    p.flow_capacity = 1024;
    p
}

impl Rig {
    fn new() -> Rig {
        Rig::with(testkit::config(), testkit::network(false), params())
    }

    fn with(cfg: ForwardingConfig, network: Network, p: FastPathParams) -> Rig {
        Rig {
            tables: Tables::build(&cfg, &DataplaneParams::default()).unwrap(),
            network,
            neighbors: testkit::neighbors(4),
            worker: FastPath::new(p).unwrap(),
        }
    }

    /// Delivers `frame` on the port it is addressed to (as a switch would), port 0 for
    /// any other destination.
    fn run(&mut self, frame: &mut [u8], now: u64) -> Verdict {
        let port = testkit::arrival_port(frame);
        self.run_on(port, frame, now)
    }

    fn run_on(&mut self, port: u16, frame: &mut [u8], now: u64) -> Verdict {
        let ctx = Context {
            tables: &self.tables,
            network: &self.network,
            neighbors: &self.neighbors,
        };
        self.worker.process(&ctx, now, port, frame)
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const CLIENT4: &str = "198.19.0.7:40000";
const VIP4: &str = "198.18.2.1:53";
const SNAT4: &str = "198.18.1.253";
const CLIENT6: &str = "[2001:2:0:9::7]:40000";
const VIP6: &str = "[2001:2:0:2::1]:53";

fn tx(v: Verdict) -> (u16, Option<OffloadRequest>) {
    match v {
        Verdict::Tx { port, offload } => (port, offload),
        other => panic!("expected Tx, got {other:?}"),
    }
}

/// Forward then reverse through a FullNAT listener; checks every rewritten field.
fn fullnat_round_trip(client: &str, vip: &str, vlans: &[u16], backends: [SocketAddr; 2]) {
    let mut rig = Rig::new();
    let mut f = udp_frame(sa(client), sa(vip), 64, vlans, testkit::PORT0_MAC, b"query");
    let (port, offload) = tx(rig.run(&mut f, SEC));
    assert_eq!((port, offload), (1, None));
    let d = decode_verified(&f).unwrap();
    assert!(backends.contains(&d.dst), "to a route backend: {}", d.dst);
    let snat: IpAddr = if d.dst.is_ipv4() {
        SNAT4.parse().unwrap()
    } else {
        "2001:2:0:1::fd".parse().unwrap()
    };
    assert_eq!(d.src.ip(), snat);
    assert!((1024..=65535).contains(&d.src.port()));
    assert_eq!(d.ttl, 63);
    assert_eq!(d.vlans, vlans);
    assert_eq!(d.src_mac, testkit::PORT1_MAC);
    let n = match d.dst.ip() {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    };
    assert_eq!(d.dst_mac, testkit::backend_mac(n));
    assert_eq!(d.payload, b"query");

    // Same flow again: same backend and SNAT port.
    let mut f2 = udp_frame(sa(client), sa(vip), 64, vlans, testkit::PORT0_MAC, b"again");
    tx(rig.run(&mut f2, 2 * SEC));
    let d2 = decode_verified(&f2).unwrap();
    assert_eq!((d2.src, d2.dst), (d.src, d.dst));

    // The reply: backend → SNAT:port becomes VIP → client.
    let mut r = udp_frame(d.dst, d.src, 64, vlans, testkit::PORT1_MAC, b"answer");
    let (port, _) = tx(rig.run(&mut r, 3 * SEC));
    assert_eq!(port, 0);
    let dr = decode_verified(&r).unwrap();
    assert_eq!((dr.src, dr.dst), (sa(vip), sa(client)));
    assert_eq!(
        (dr.src_mac, dr.dst_mac),
        (testkit::PORT0_MAC, testkit::ROUTER_MAC)
    );
    assert_eq!(dr.ttl, 63);
    assert_eq!(dr.payload, b"answer");

    let c = rig.worker.counters();
    assert_eq!((c.flows_created, c.flows_active, c.tx_packets), (1, 1, 3));
    assert_eq!(
        c.entities.listeners.iter().map(|t| t.packets).sum::<u64>(),
        2
    );
    assert_eq!(
        c.entities
            .listeners
            .iter()
            .map(|t| t.reply_packets)
            .sum::<u64>(),
        1
    );
    assert_eq!(
        c.entities
            .backends
            .iter()
            .map(|t| t.flows_created)
            .sum::<u64>(),
        1
    );
}

#[test]
fn ipv4_fullnat_forward_and_reverse() {
    fullnat_round_trip(CLIENT4, VIP4, &[], [backend4(1), backend4(2)]);
}

#[test]
fn ipv6_fullnat_forward_and_reverse() {
    fullnat_round_trip(CLIENT6, VIP6, &[], [backend6(1), backend6(2)]);
}

#[test]
fn vlan_and_qinq_fullnat_keep_their_tags() {
    fullnat_round_trip(CLIENT4, VIP4, &[100], [backend4(1), backend4(2)]);
    fullnat_round_trip(CLIENT4, VIP4, &[100, 200], [backend4(1), backend4(2)]);
    fullnat_round_trip(CLIENT6, VIP6, &[7, 8], [backend6(1), backend6(2)]);
}

fn preserve_round_trip(client: &str, vip: &str, backend: SocketAddr) {
    let mut rig = Rig::new();
    let mut f = udp_frame(sa(client), sa(vip), 9, &[], testkit::PORT0_MAC, b"q");
    assert_eq!(tx(rig.run(&mut f, SEC)).0, 1);
    let d = decode_verified(&f).unwrap();
    assert_eq!((d.src, d.dst, d.ttl), (sa(client), backend, 8));
    // The backend answers the client directly (routing through us).
    let mut r = udp_frame(backend, sa(client), 9, &[], testkit::PORT1_MAC, b"a");
    assert_eq!(tx(rig.run(&mut r, 2 * SEC)).0, 0);
    let dr = decode_verified(&r).unwrap();
    assert_eq!((dr.src, dr.dst, dr.ttl), (sa(vip), sa(client), 8));
    assert_eq!(dr.dst_mac, testkit::ROUTER_MAC);
}

#[test]
fn ipv4_preserve_client_forward_and_reverse() {
    preserve_round_trip(CLIENT4, "198.18.2.1:54", backend4(3));
}

#[test]
fn ipv6_preserve_client_forward_and_reverse() {
    preserve_round_trip(CLIENT6, "[2001:2:0:2::1]:54", backend6(3));
}

/// A preserve-client reply whose flow is not on this worker (expired here, or another
/// worker's) is translated from the tables: the endpoint serves one listener, so the
/// source becomes that listener's VIP and port. Counted per listener, route and backend,
/// and as `stateless_replies`; the flow path, when there is a flow, does not count there.
#[test]
fn preserve_client_replies_without_a_flow_come_from_the_tables() {
    for (client, vip, backend) in [
        (sa(CLIENT4), sa("198.18.2.1:54"), backend4(3)),
        (sa(CLIENT6), sa("[2001:2:0:2::1]:54"), backend6(3)),
    ] {
        let mut rig = Rig::new();
        let mut r = udp_frame(backend, client, 64, &[7], testkit::PORT1_MAC, b"late");
        assert_eq!(tx(rig.run(&mut r, SEC)), (0, None));
        let d = decode_verified(&r).unwrap();
        assert_eq!((d.src, d.dst, d.ttl), (vip, client, 63));
        assert_eq!(
            (d.src_mac, d.dst_mac),
            (testkit::PORT0_MAC, testkit::ROUTER_MAC)
        );
        assert_eq!(
            (d.vlans.as_slice(), d.payload.as_slice()),
            (&[7][..], &b"late"[..])
        );
        let c = rig.worker.counters();
        assert_eq!((c.stateless_replies, c.flows_active), (1, 0));
        let named = c.entities.named(&rig.tables).unwrap();
        let replies = |want: &dyn Fn(&pipelines::counters::Entity) -> bool| -> u64 {
            named
                .iter()
                .filter(|(e, _)| want(e))
                .map(|(_, t)| t.reply_packets)
                .sum()
        };
        use pipelines::counters::Entity;
        assert_eq!(
            replies(&|e| matches!(e, Entity::Listener(k) if k.listener == "udp-54")),
            1
        );
        assert_eq!(
            replies(&|e| matches!(e, Entity::Route(k) if k.name == "route-54")),
            1
        );
        assert_eq!(
            replies(&|e| matches!(e, Entity::Backend(_, a) if *a == backend)),
            1
        );
        assert_eq!(replies(&|_| true), 3, "nothing else counted");

        // With a flow here, the flow translates (and its timer is refreshed).
        let mut f = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"q");
        tx(rig.run(&mut f, SEC));
        let mut r = udp_frame(backend, client, 64, &[], testkit::PORT1_MAC, b"a");
        tx(rig.run(&mut r, 29 * SEC));
        assert_eq!(rig.worker.counters().stateless_replies, 1);
        assert_eq!(
            rig.worker.maintain(31 * SEC),
            0,
            "the reply refreshed the flow"
        );

        // Once the flow is gone, the backend's source arriving from the clients' side
        // is not a reply.
        let mut spoofed = udp_frame(backend, client, 64, &[], testkit::PORT0_MAC, b"x");
        let before = spoofed.clone();
        assert_eq!(
            rig.run(&mut spoofed, 61 * SEC),
            Verdict::Drop(DropReason::Stray)
        );
        assert_eq!(spoofed, before);
        // A FullNAT listener's backend gets no stateless path: its replies need the flow.
        let mut r = udp_frame(
            if client.is_ipv4() {
                backend4(1)
            } else {
                backend6(1)
            },
            client,
            64,
            &[],
            testkit::PORT1_MAC,
            b"x",
        );
        assert_eq!(rig.run(&mut r, 61 * SEC), Verdict::Drop(DropReason::Stray));
    }
}

#[test]
fn ipv4_zero_udp_checksum_stays_zero() {
    let mut rig = Rig::new();
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
    f[40..42].copy_from_slice(&[0, 0]);
    tx(rig.run(&mut f, SEC));
    let d = decode_verified(&f).unwrap();
    assert_eq!(d.udp_checksum, 0);
}

/// A literal frame with IPv4 options (4 × NOP, IHL 6): the UDP header is found after them.
#[test]
fn ipv4_with_options_literal_fixture() {
    #[rustfmt::skip]
    let mut f: Vec<u8> = vec![
        0x02, 0, 0, 0, 0, 0x01,  0x0a, 0, 0, 0, 0, 0x99,  0x08, 0x00,
        0x46, 0x00, 0x00, 0x22,  0x12, 0x34, 0x40, 0x00,  0x40, 0x11, 0x00, 0x00,
        198, 19, 0, 7,  198, 18, 2, 1,
        0x01, 0x01, 0x01, 0x01,
        0x9c, 0x40, 0x00, 0x35,  0x00, 0x0a, 0x00, 0x00,  b'h', b'i',
    ];
    let c = pipelines::checksum::ipv4_header_checksum(&f[14..38]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let u = pipelines::checksum::udp_checksum(
        "198.19.0.7".parse().unwrap(),
        "198.18.2.1".parse().unwrap(),
        &f[38..48],
    );
    f[44..46].copy_from_slice(&u.to_be_bytes());
    decode_verified(&f).unwrap();
    let mut rig = Rig::new();
    tx(rig.run(&mut f, SEC));
    let d = decode_verified(&f).unwrap();
    assert_eq!(d.src.ip(), SNAT4.parse::<IpAddr>().unwrap());
    assert_eq!(d.payload, b"hi");
    assert_eq!(&f[34..38], &[1, 1, 1, 1], "options untouched");
    assert_eq!(f[22], 0x3f, "ttl decremented");
}

#[test]
fn offload_port_gets_pseudo_header_sum_and_zero_ip_checksum() {
    let mut rig = Rig::with(testkit::config(), testkit::network(true), params());
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[5], testkit::PORT0_MAC, b"abc");
    let (port, off) = tx(rig.run(&mut f, SEC));
    assert_eq!(port, 1);
    assert_eq!(
        off,
        Some(OffloadRequest {
            l2_len: 18,
            l3_len: 20,
            ipv6: false,
            ipv4_checksum: true,
            udp_checksum: true
        })
    );
    let ip = &f[18..38];
    assert_eq!(&ip[10..12], &[0, 0]);
    // Pseudo-header sum, written out by hand: src + dst + proto + length, folded.
    let words = [
        u32::from(u16::from_be_bytes([ip[12], ip[13]])),
        u32::from(u16::from_be_bytes([ip[14], ip[15]])),
        u32::from(u16::from_be_bytes([ip[16], ip[17]])),
        u32::from(u16::from_be_bytes([ip[18], ip[19]])),
        17,
        11,
    ];
    let mut s: u32 = words.iter().sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(u32::from(u16::from_be_bytes([f[44], f[45]])), s);
}

#[test]
fn ttl_expiry_goes_to_the_host_for_time_exceeded() {
    let mut rig = Rig::new();
    // Forward (FullNAT and preserve-client), IPv4 and IPv6: the slow path answers.
    for (src, dst) in [(CLIENT4, VIP4), (CLIENT4, "198.18.2.1:54"), (CLIENT6, VIP6)] {
        let mut f = udp_frame(sa(src), sa(dst), 1, &[], testkit::PORT0_MAC, b"x");
        let before = f.clone();
        assert_eq!(
            rig.run(&mut f, SEC),
            Verdict::ToHost(HostReason::TimeExceeded),
            "{dst}"
        );
        assert_eq!(f, before, "host packets are untouched");
    }
    assert_eq!(
        rig.worker.counters().host_count(HostReason::TimeExceeded),
        3
    );
    // A reply of a flow, and a stateless preserve-client reply.
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
    tx(rig.run(&mut f, SEC));
    let d = decode_verified(&f).unwrap();
    let mut r = udp_frame(d.dst, d.src, 1, &[], testkit::PORT1_MAC, b"a");
    assert_eq!(
        rig.run(&mut r, SEC),
        Verdict::ToHost(HostReason::TimeExceeded)
    );
    let mut r = udp_frame(backend4(3), sa(CLIENT4), 1, &[], testkit::PORT1_MAC, b"a");
    assert_eq!(
        rig.run(&mut r, SEC),
        Verdict::ToHost(HostReason::TimeExceeded)
    );
    // No ICMP error to a source that cannot take one: dropped and counted.
    let mut f = udp_frame(sa("0.0.0.0:68"), sa(VIP4), 1, &[], testkit::PORT0_MAC, b"x");
    assert_eq!(rig.run(&mut f, SEC), Verdict::Drop(DropReason::TtlExpired));
    // DSR switches the frame: no TTL check.
    let mut f = udp_frame(
        sa(CLIENT4),
        sa("198.18.2.1:60"),
        1,
        &[],
        testkit::PORT0_MAC,
        b"x",
    );
    assert!(matches!(rig.run(&mut f, SEC), Verdict::Tx { .. }));
    let c = rig.worker.counters();
    assert_eq!(c.host_count(HostReason::TimeExceeded), 5);
    assert_eq!(c.drop_count(DropReason::TtlExpired), 1);
}

#[test]
fn unknown_next_hop_goes_to_host_for_resolution() {
    let mut rig = Rig::new();
    rig.neighbors = Neighbors::new([]);
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
    let before = f.clone();
    let v = rig.run(&mut f, SEC);
    let Verdict::ToHost(HostReason::Resolve { next_hop, port }) = v else {
        panic!("{v:?}");
    };
    assert!([backend4(1).ip(), backend4(2).ip()].contains(&next_hop));
    assert_eq!(port, 1, "the backends' port, where the route sends it");
    assert_eq!(f, before);
    let c = rig.worker.counters();
    assert_eq!(c.host_count(HostReason::Resolve { next_hop, port }), 1);
}

/// A FullNAT reply to an SNAT port of another worker's partition is that worker's flow:
/// `Handoff` (counted as such, not as a drop), the packet untouched; a port of this
/// worker's own partition without a flow stays `no_reverse_flow`.
#[test]
fn replies_to_another_workers_snat_port_are_handed_off() {
    let pool = PortRange {
        first: 1024,
        last: 65535,
    };
    let mut p = FastPathParams::new(0, 2, pool);
    p.flow_capacity = 1024;
    let mut rig = Rig::with(testkit::config(), testkit::network(false), p);
    let theirs = pool.partition(1, 2).first;
    let mine = pool.partition(0, 2).last;
    let snat = |port| SocketAddr::new(SNAT4.parse().unwrap(), port);
    let mut f = udp_frame(backend4(1), snat(theirs), 64, &[], testkit::PORT1_MAC, b"r");
    let before = f.clone();
    assert_eq!(rig.run(&mut f, SEC), Verdict::Handoff { worker: 1 });
    assert_eq!(f, before, "handed-off packets are untouched");
    let c = rig.worker.counters();
    assert_eq!((c.handoff, c.drops_total(), c.tx_packets), (1, 0, 0));

    let mut f = udp_frame(backend4(1), snat(mine), 64, &[], testkit::PORT1_MAC, b"r");
    assert_eq!(
        rig.run(&mut f, SEC),
        Verdict::Drop(DropReason::NoReverseFlow)
    );
    let c = rig.worker.counters();
    assert_eq!(c.handoff, 1);
    assert_eq!(c.drop_count(DropReason::NoReverseFlow), 1);
}

/// The link-layer filter: a frame is for us on its input port when it is addressed to the
/// port's MAC, broadcast, IPv6 all-nodes or the solicited-node group of the port's own
/// addresses, the SNAT address or a VIP; anything else is `not_for_us`.
#[test]
fn frames_for_other_macs_or_groups_are_not_for_us() {
    let mut rig = Rig::new();
    let icmp6 = |dst: &str, mac: MacAddr| {
        let dst: std::net::Ipv6Addr = dst.parse().unwrap();
        let mut f = Vec::new();
        etherparse::PacketBuilder::ethernet2(testkit::CLIENT_SIDE_MAC.0, mac.0)
            .ipv6(
                "2001:2::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
                dst.octets(),
                255,
            )
            .icmpv6_echo_request(1, 1)
            .write(&mut f, b"")
            .unwrap();
        f
    };
    let sn = |a: &str| MacAddr::solicited_node(a.parse().unwrap());
    let icmp = Verdict::ToHost(HostReason::Icmp);
    let not_for_us = Verdict::Drop(DropReason::NotForUs);
    let cases = [
        // (input port, frame, verdict)
        (0, icmp6("2001:2::fe", testkit::PORT0_MAC), icmp),
        (0, icmp6("2001:2::fe", MacAddr::BROADCAST), icmp),
        (0, icmp6("ff02::1", MacAddr::IPV6_ALL_NODES), icmp),
        (0, icmp6("ff02::1:ff00:fe", sn("2001:2::fe")), icmp),
        (1, icmp6("ff02::1:ff00:fd", sn("2001:2:0:1::fd")), icmp),
        (0, icmp6("ff02::1:ff00:1", sn("2001:2:0:2::1")), icmp),
        // Port 1's MAC on port 0. (Port 1's own IPv6 address shares its low 24 bits, and
        // so its group, with port 0's in this topology.)
        (0, icmp6("2001:2::fe", testkit::PORT1_MAC), not_for_us),
        // Groups nobody here joined: another host's solicited-node, all-routers, IPv4.
        (0, icmp6("ff02::1:ff00:77", sn("2001:2::77")), not_for_us),
        (
            0,
            icmp6("ff02::2", MacAddr([0x33, 0x33, 0, 0, 0, 2])),
            not_for_us,
        ),
        (
            0,
            icmp6("2001:2::fe", MacAddr([0x01, 0, 0x5e, 0, 0, 1])),
            not_for_us,
        ),
        // A port the network does not have.
        (7, icmp6("2001:2::fe", testkit::PORT0_MAC), not_for_us),
    ];
    let mut expected_drops = 0;
    for (i, (port, mut f, want)) in cases.into_iter().enumerate() {
        let before = f.clone();
        assert_eq!(rig.run_on(port, &mut f, SEC), want, "case {i}");
        assert_eq!(f, before, "case {i}: untouched");
        expected_drops += u64::from(want == not_for_us);
    }
    let c = rig.worker.counters();
    assert_eq!(c.drop_count(DropReason::NotForUs), expected_drops);
    assert_eq!(c.drops_total(), expected_drops, "no other reason");

    // A forwardable datagram for another host is not forwarded, in a burst too.
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::ROUTER_MAC, b"x");
    let mut ok = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
    let mut bufs: Vec<&mut [u8]> = vec![&mut f, &mut ok];
    let mut verdicts = [Verdict::Drop(DropReason::Stray); 2];
    let ctx = Context {
        tables: &rig.tables,
        network: &rig.network,
        neighbors: &rig.neighbors,
    };
    rig.worker
        .process_burst(&ctx, SEC, 0, &mut bufs, &mut verdicts);
    assert_eq!(verdicts[0], not_for_us);
    assert!(matches!(verdicts[1], Verdict::Tx { port: 1, .. }));
}

#[test]
fn non_udp_goes_to_host_or_is_dropped() {
    let mut rig = Rig::new();
    let tcp = |dst: [u8; 4]| {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(testkit::CLIENT_SIDE_MAC.0, testkit::PORT0_MAC.0)
            .ipv4([198, 19, 0, 7], dst, 64)
            .tcp(40000, 80, 1, 1000)
            .write(&mut out, b"")
            .unwrap();
        out
    };
    let icmp = {
        let mut out = Vec::new();
        etherparse::PacketBuilder::ethernet2(testkit::CLIENT_SIDE_MAC.0, testkit::PORT0_MAC.0)
            .ipv4([198, 19, 0, 7], [198, 18, 0, 254], 64)
            .icmpv4_echo_request(1, 1)
            .write(&mut out, b"ping")
            .unwrap();
        out
    };
    let cases: Vec<(Vec<u8>, Verdict)> = vec![
        (
            tcp([198, 18, 2, 1]),
            Verdict::ToHost(HostReason::OwnAddress),
        ),
        (
            tcp([198, 18, 0, 254]),
            Verdict::ToHost(HostReason::OwnAddress),
        ),
        // The SNAT address is the appliance's too (replies, pings and ND reach the host).
        (
            tcp([198, 18, 1, 253]),
            Verdict::ToHost(HostReason::OwnAddress),
        ),
        (tcp([198, 18, 9, 9]), Verdict::Drop(DropReason::NotUdp)),
        (icmp, Verdict::ToHost(HostReason::Icmp)),
        (
            udp_frame(
                sa(CLIENT4),
                sa("198.18.0.254:53"),
                64,
                &[],
                testkit::PORT0_MAC,
                b"",
            ),
            Verdict::ToHost(HostReason::OwnAddress),
        ),
    ];
    for (mut f, want) in cases {
        assert_eq!(rig.run(&mut f, SEC), want);
    }
}

/// A rig whose client-side port 0 is kernel-attached (may see unfinished checksums).
fn kernel_attached_rig() -> Rig {
    let net = testkit::network(false);
    let mut ports = net.ports().to_vec();
    ports[0].unfinished_rx_checksums = true;
    let net = Network::new(ports, vec![], *net.snat()).unwrap();
    Rig::with(testkit::config(), net, params())
}

/// An IPv4 UDP frame (no options, untagged) with its checksum replaced by the bare
/// pseudo-header sum, as a sender with TX checksum offload hands it to a veth.
fn unfinished(mut f: Vec<u8>) -> Vec<u8> {
    let (src, dst) = (
        IpAddr::from([f[26], f[27], f[28], f[29]]),
        IpAddr::from([f[30], f[31], f[32], f[33]]),
    );
    let len = u32::from(u16::from_be_bytes([f[38], f[39]]));
    let sum = pipelines::checksum::pseudo_header_sum(src, dst, len);
    f[40..42].copy_from_slice(&sum.to_be_bytes());
    f
}

#[test]
fn unfinished_checksum_is_looked_for_on_kernel_attached_ports_only() {
    let good = || udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"query");
    // Kernel-attached: the unfinished datagram is dropped, a finished one forwarded.
    let mut rig = kernel_attached_rig();
    let mut bad = unfinished(good());
    assert_eq!(
        rig.run(&mut bad, SEC),
        Verdict::Drop(DropReason::UnfinishedUdpChecksum)
    );
    tx(rig.run(&mut good(), SEC));
    // A NIC port does not look (its datagrams come complete from the wire): forwarded.
    let mut rig = Rig::new();
    tx(rig.run(&mut unfinished(good()), SEC));
    assert_eq!(
        rig.worker
            .counters()
            .drop_count(DropReason::UnfinishedUdpChecksum),
        0
    );
}

/// Builds, for one reason, a rig and a packet that must be dropped for it.
fn drop_case(reason: DropReason) -> (Rig, Vec<u8>) {
    let udp4 = |dst: &str, ttl| udp_frame(sa(CLIENT4), sa(dst), ttl, &[], testkit::PORT0_MAC, b"x");
    let good = udp4(VIP4, 64);
    let fix_ip = |mut f: Vec<u8>| {
        let ihl = usize::from(f[14] & 0x0f) * 4;
        if ihl >= 20 && f.len() >= 14 + ihl {
            f[24..26].copy_from_slice(&[0, 0]);
            let c = pipelines::checksum::ipv4_header_checksum(&f[14..14 + ihl]);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
        f
    };
    let rig = Rig::new();
    match reason {
        DropReason::TruncatedEthernet => (rig, good[..10].to_vec()),
        DropReason::TruncatedVlan => {
            let mut f = good[..14].to_vec();
            f[12..14].copy_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&[0, 1]);
            (rig, f)
        }
        DropReason::UnsupportedLink => {
            let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[1, 2], testkit::PORT0_MAC, b"x");
            f.splice(20..20, [0x81, 0x00, 0x00, 0x03]);
            (rig, f)
        }
        DropReason::NonIp => {
            let mut f = good;
            f[12..14].copy_from_slice(&[0x88, 0xcc]);
            (rig, f)
        }
        DropReason::TruncatedIp => (rig, good[..24].to_vec()),
        DropReason::MalformedIp => {
            let mut f = good;
            f[14] = 0x44;
            (rig, f)
        }
        DropReason::BadIpLength => {
            let n = good.len() - 1;
            (rig, good[..n].to_vec())
        }
        DropReason::BadIpv4Checksum => {
            let mut f = good;
            f[24] ^= 0xff;
            (rig, f)
        }
        DropReason::MalformedIpv6Ext => {
            let mut f = udp_frame(
                sa("[2001:2:0:9::7]:255"),
                sa(VIP6),
                64,
                &[],
                testkit::PORT0_MAC,
                b"x",
            );
            f[20] = 0; // next header: hop-by-hop; its length byte (0xff) overruns
            (rig, f)
        }
        DropReason::TruncatedUdp => {
            let mut f = good;
            f[39] += 1;
            (rig, f)
        }
        DropReason::MalformedUdp => {
            let mut f = good;
            f[36..38].copy_from_slice(&[0, 0]);
            (rig, f)
        }
        DropReason::UnfinishedUdpChecksum => (kernel_attached_rig(), unfinished(good)),
        // More fragments, 9 bytes of data: not a multiple of 8.
        DropReason::Fragment => {
            let mut f = good;
            f[20] = 0x20;
            (rig, fix_ip(f))
        }
        // One bucket of four entries, all pending: a fifth datagram finds no room.
        DropReason::FragmentTableFull => {
            let mut p = params();
            p.fragment_capacity = 1;
            let mut rig = Rig::with(testkit::config(), testkit::network(false), p);
            for id in 1..=4 {
                let mut f = later_fragment(id);
                assert!(matches!(rig.run(&mut f, SEC), Verdict::Hold { .. }));
            }
            (rig, later_fragment(5))
        }
        DropReason::FragmentHoldFull => {
            let mut p = params();
            p.fragment_holds = 0;
            (
                Rig::with(testkit::config(), testkit::network(false), p),
                later_fragment(1),
            )
        }
        // Counted when a hold expires, not for a packet: see `held_fragments_time_out`.
        DropReason::FragmentTimeout => unreachable!("not a per-packet verdict"),
        // Too big for port 1 (MTU 100), DF, from a source no ICMP error may go to.
        DropReason::TooBig => {
            let mut net = testkit::network(false);
            let mut ports = net.ports().to_vec();
            ports[1].mtu = 100;
            net = Network::new(ports, vec![], *net.snat()).unwrap();
            let mut f = udp_frame(
                sa("0.0.0.0:68"),
                sa(VIP4),
                64,
                &[],
                testkit::PORT0_MAC,
                &[0; 200],
            );
            f[20] |= 0x40;
            (Rig::with(testkit::config(), net, params()), fix_ip(f))
        }
        // Port unreachable from a backend to a client about a datagram of no flow.
        DropReason::IcmpNoFlow => (rig, unreachable_from_backend(sa(CLIENT4), false)),
        DropReason::IcmpBadChecksum => {
            let mut f = unreachable_from_backend(sa(CLIENT4), false);
            let n = f.len();
            f[n - 1] ^= 0x55;
            (rig, f)
        }
        // A real flow's error, but sent to the client instead of the SNAT address.
        DropReason::IcmpMismatch => {
            let mut rig = Rig::new();
            let mut f = udp4(VIP4, 64);
            tx(rig.run(&mut f, SEC));
            let d = decode_verified(&f).unwrap();
            let quoted = udp_frame(d.src, d.dst, 63, &[], testkit::PORT1_MAC, b"x");
            let e = icmp_unreachable(d.dst.ip(), sa(CLIENT4).ip(), &quoted, true);
            (rig, e)
        }
        DropReason::NotUdp => {
            let mut f = Vec::new();
            etherparse::PacketBuilder::ethernet2(testkit::CLIENT_SIDE_MAC.0, testkit::PORT0_MAC.0)
                .ipv4([198, 19, 0, 7], [198, 18, 9, 9], 64)
                .tcp(1, 2, 3, 4)
                .write(&mut f, b"")
                .unwrap();
            (rig, f)
        }
        DropReason::Stray => (rig, udp4("198.18.9.9:53", 64)),
        // From a source no ICMP error may go to (else: time exceeded from the host).
        DropReason::TtlExpired => (
            rig,
            udp_frame(sa("0.0.0.0:68"), sa(VIP4), 1, &[], testkit::PORT0_MAC, b"x"),
        ),
        DropReason::NoListener => (rig, udp4("198.18.2.1:99", 64)),
        DropReason::NoRoute => (rig, udp4("198.18.2.1:55", 64)),
        DropReason::NoBackend => (rig, udp4("198.18.2.1:56", 64)),
        DropReason::DroppedShare => (
            rig,
            udp_frame(
                sa("0.0.0.0:68"),
                sa("198.18.2.1:57"),
                64,
                &[],
                testkit::PORT0_MAC,
                b"x",
            ),
        ),
        DropReason::NoSnatAddress => {
            let mut net = testkit::network(false);
            net = Network::new(
                net.ports().to_vec(),
                vec![],
                SnatConfig {
                    ipv4: None,
                    ..*net.snat()
                },
            )
            .unwrap();
            let client = udp_frame(
                sa("198.18.0.7:40000"),
                sa(VIP4),
                64,
                &[],
                testkit::PORT0_MAC,
                b"x",
            );
            (Rig::with(testkit::config(), net, params()), client)
        }
        DropReason::SnatExhausted => {
            let mut p = params();
            p.snat_ports = PortRange {
                first: 2000,
                last: 2000,
            };
            let mut rig = Rig::with(testkit::config(), testkit::network(false), p);
            let mut first = udp4(VIP4, 64);
            tx(rig.run(&mut first, SEC));
            (
                rig,
                udp_frame(
                    sa("198.19.0.8:1"),
                    sa(VIP4),
                    64,
                    &[],
                    testkit::PORT0_MAC,
                    b"x",
                ),
            )
        }
        DropReason::FullNatNoState => {
            let mut p = params();
            p.flow_capacity = 1;
            let mut rig = Rig::with(testkit::config(), testkit::network(false), p);
            let mut first = udp4(VIP4, 64);
            tx(rig.run(&mut first, SEC));
            (
                rig,
                udp_frame(
                    sa("198.19.0.8:1"),
                    sa(VIP4),
                    64,
                    &[],
                    testkit::PORT0_MAC,
                    b"x",
                ),
            )
        }
        DropReason::NoReverseFlow => (
            rig,
            udp_frame(
                backend4(1),
                sa("198.18.1.253:40000"),
                64,
                &[],
                testkit::PORT1_MAC,
                b"x",
            ),
        ),
        // A unicast frame for another host, as a promiscuous port delivers it.
        DropReason::NotForUs => (
            rig,
            udp_frame(
                sa(CLIENT4),
                sa(VIP4),
                64,
                &[],
                testkit::backend_mac(1),
                b"x",
            ),
        ),
        // A DSR backend behind the client-side router: reachable, but not on-link.
        DropReason::DsrNotOnLink => {
            let mut cfg = testkit::config();
            cfg.listeners.push(testkit::listener(
                "198.18.2.1",
                61,
                NatMode::Dsr,
                &[(sa("198.19.5.5:61"), WEIGHT_SCALE)],
            ));
            cfg.normalize();
            let rig = Rig::with(cfg, testkit::network(false), params());
            (rig, udp4("198.18.2.1:61", 64))
        }
        DropReason::Unroutable => {
            let mut cfg = testkit::config();
            cfg.listeners.push(testkit::listener(
                "2001:2:0:2::1",
                58,
                NatMode::FullNat,
                &[(sa("[2001:2:0:ff::1]:53"), WEIGHT_SCALE)],
            ));
            cfg.normalize();
            let rig = Rig::with(cfg, testkit::network(false), params());
            let f = udp_frame(
                sa(CLIENT6),
                sa("[2001:2:0:2::1]:58"),
                64,
                &[],
                testkit::PORT0_MAC,
                b"x",
            );
            (rig, f)
        }
    }
}

/// A fragment at offset 8 (the last) of datagram `id` from the client to the VIP.
fn later_fragment(id: u16) -> Vec<u8> {
    let mut f = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        b"abcdefgh",
    );
    f[18..20].copy_from_slice(&id.to_be_bytes());
    f[20..22].copy_from_slice(&[0, 1]);
    f[24..26].copy_from_slice(&[0, 0]);
    let c = pipelines::checksum::ipv4_header_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

/// An ICMP port unreachable (code 3) from `src` to `dst` quoting `datagram` (IPv4 header
/// and 8 bytes); `dst_mac` = port 1's when `backend_side`, else port 0's.
fn icmp_unreachable(src: IpAddr, dst: IpAddr, datagram: &[u8], backend_side: bool) -> Vec<u8> {
    let mac = if backend_side {
        testkit::PORT1_MAC
    } else {
        testkit::PORT0_MAC
    };
    common::icmp_error(
        src,
        dst,
        64,
        3,
        3,
        [0; 4],
        &common::quote(datagram, 8),
        testkit::CLIENT_SIDE_MAC,
        mac,
    )
}

/// A backend's port unreachable about `client` → backend 1 (no such flow).
fn unreachable_from_backend(client: SocketAddr, _v6: bool) -> Vec<u8> {
    let quoted = udp_frame(client, backend4(1), 63, &[], testkit::PORT1_MAC, b"x");
    icmp_unreachable(backend4(1).ip(), client.ip(), &quoted, true)
}

/// One packet per drop reason: the verdict names it, its counter moves by one, no other
/// drop counter moves, and the packet is left untouched. (`fragment_timeout` counts held
/// fragments when they expire: `held_fragments_time_out` in tests/fragments.rs.)
#[test]
fn every_drop_reason_has_a_packet_and_a_counter() {
    for &reason in DropReason::ALL {
        if reason == DropReason::FragmentTimeout {
            continue;
        }
        let (mut rig, mut f) = drop_case(reason);
        let before = rig.worker.counters().clone();
        let original = f.clone();
        let v = rig.run(&mut f, 2 * SEC);
        assert_eq!(v, Verdict::Drop(reason), "reason {}", reason.name());
        assert_eq!(f, original, "reason {} modified the packet", reason.name());
        let after = rig.worker.counters();
        for &r in DropReason::ALL {
            let delta = after.drop_count(r) - before.drop_count(r);
            assert_eq!(
                delta,
                u64::from(r == reason),
                "{} after {}",
                r.name(),
                reason.name()
            );
        }
    }
}

#[test]
fn dropped_share_from_a_unicast_client_is_rejected_via_host() {
    let mut rig = Rig::new();
    let mut f = udp_frame(
        sa(CLIENT4),
        sa("198.18.2.1:57"),
        64,
        &[],
        testkit::PORT0_MAC,
        b"x",
    );
    assert_eq!(rig.run(&mut f, SEC), Verdict::ToHost(HostReason::Reject));
    assert_eq!(rig.worker.counters().host_count(HostReason::Reject), 1);
}

#[test]
fn arp_goes_to_host() {
    let mut rig = Rig::new();
    let mut arp: Vec<u8> = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0,
        1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 1, 0, 0, 0, 0, 0, 0, 198, 18, 0, 254,
    ];
    assert_eq!(rig.run(&mut arp, SEC), Verdict::ToHost(HostReason::Arp));
}

#[test]
fn table_full_and_rate_guard_fall_back_to_stateless_for_preserve_client() {
    let mut p = params();
    p.flow_capacity = 1;
    let mut rig = Rig::with(testkit::config(), testkit::network(false), p);
    for i in 0..3u16 {
        let client = SocketAddr::from(([198, 19, 0, 7], 1000 + i));
        let mut f = udp_frame(
            client,
            sa("198.18.2.1:54"),
            64,
            &[],
            testkit::PORT0_MAC,
            b"x",
        );
        tx(rig.run(&mut f, SEC));
        assert_eq!(decode_verified(&f).unwrap().dst, backend4(3));
    }
    let c = rig.worker.counters();
    assert_eq!((c.flows_created, c.table_full, c.flows_active), (1, 2, 1));

    let mut p = params();
    p.new_flow_rate_limit = 1;
    let mut rig = Rig::with(testkit::config(), testkit::network(false), p);
    for i in 0..3u16 {
        let client = SocketAddr::from(([198, 19, 0, 7], 1000 + i));
        let mut f = udp_frame(
            client,
            sa("198.18.2.1:54"),
            64,
            &[],
            testkit::PORT0_MAC,
            b"x",
        );
        tx(rig.run(&mut f, SEC));
    }
    assert_eq!(rig.worker.counters().rate_limited, 2);
    assert_eq!(rig.worker.counters().flows_created, 1);
    // A second later the bucket has refilled.
    let mut f = udp_frame(
        sa("198.19.0.9:9"),
        sa("198.18.2.1:54"),
        64,
        &[],
        testkit::PORT0_MAC,
        b"x",
    );
    tx(rig.run(&mut f, 2 * SEC + 1));
    assert_eq!(rig.worker.counters().flows_created, 2);
}

#[test]
fn idle_flows_expire_and_return_their_snat_port() {
    let mut rig = Rig::new();
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
    tx(rig.run(&mut f, SEC));
    let d = decode_verified(&f).unwrap();
    let free = rig.worker.snat_ports_free().0;
    // Not yet idle for 30 s: nothing expires.
    assert_eq!(rig.worker.maintain(30 * SEC), 0);
    assert_eq!(rig.worker.maintain(32 * SEC), 1);
    assert_eq!(rig.worker.snat_ports_free().0, free + 1);
    assert_eq!(rig.worker.counters().flows_active, 0);
    // The backend's late reply no longer matches.
    let mut r = udp_frame(d.dst, d.src, 64, &[], testkit::PORT1_MAC, b"late");
    assert_eq!(
        rig.run(&mut r, 33 * SEC),
        Verdict::Drop(DropReason::NoReverseFlow)
    );
}

#[test]
fn snat_ports_are_never_shared_by_live_flows() {
    let mut rig = Rig::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..500u16 {
        let [hi, lo] = i.to_be_bytes();
        let client = SocketAddr::from(([198, 19, hi, lo], 5000 + i));
        let mut f = udp_frame(client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
        tx(rig.run(&mut f, SEC));
        assert!(seen.insert(decode_verified(&f).unwrap().src.port()));
    }
}

/// Config changes: flows stay with a backend that remains (new weights notwithstanding),
/// re-pick when it leaves, and new flows follow the new weights.
#[test]
fn flows_survive_config_changes_while_their_backend_stays() {
    let mut rig = Rig::new();
    let mut pinned = Vec::new();
    for i in 0..64u8 {
        let client = SocketAddr::from(([198, 19, 1, i], 7000 + u16::from(i)));
        let mut f = udp_frame(client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
        tx(rig.run(&mut f, SEC));
        pinned.push((client, decode_verified(&f).unwrap()));
    }
    assert!(pinned.iter().any(|(_, d)| d.dst == backend4(1)));
    assert!(pinned.iter().any(|(_, d)| d.dst == backend4(2)));

    // Backend 1 now takes weight 0 (no new flows), backend 2 doubles.
    let mut cfg = testkit::config();
    let l = cfg
        .listeners
        .iter_mut()
        .find(|l| l.port == 53 && l.vip.is_ipv4())
        .unwrap();
    let r = l.route.as_mut().unwrap();
    r.backends[0].weight = 0;
    r.backends[1].weight = 2 * WEIGHT_SCALE;
    let old_generation = rig.tables.generation();
    rig.tables = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
    for (client, d) in &pinned {
        let mut f = udp_frame(*client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
        tx(rig.run(&mut f, 2 * SEC));
        let now = decode_verified(&f).unwrap();
        assert_eq!((now.dst, now.src), (d.dst, d.src), "pinned flow moved");
    }
    let retired = rig.worker.take_retired();
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].generation, old_generation);
    assert_eq!(
        retired[0].listeners.iter().map(|t| t.packets).sum::<u64>(),
        64
    );
    // New flows all go to backend 2.
    for i in 0..32u8 {
        let client = SocketAddr::from(([198, 19, 2, i], 9000 + u16::from(i)));
        let mut f = udp_frame(client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
        tx(rig.run(&mut f, 2 * SEC));
        assert_eq!(decode_verified(&f).unwrap().dst, backend4(2));
    }

    // Backend 1 leaves: its flows re-pick (to 2) and keep their SNAT port; replies follow.
    cfg.listeners
        .iter_mut()
        .find(|l| l.port == 53 && l.vip.is_ipv4())
        .unwrap()
        .route
        .as_mut()
        .unwrap()
        .backends
        .remove(0);
    rig.tables = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
    for (client, d) in &pinned {
        let mut f = udp_frame(*client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
        tx(rig.run(&mut f, 3 * SEC));
        let now = decode_verified(&f).unwrap();
        assert_eq!(now.dst, backend4(2));
        assert_eq!(now.src, d.src, "SNAT port kept");
        let mut reply = udp_frame(now.dst, now.src, 64, &[], testkit::PORT1_MAC, b"r");
        tx(rig.run(&mut reply, 3 * SEC));
        assert_eq!(decode_verified(&reply).unwrap().dst, *client);
    }
    let moved = pinned.iter().filter(|(_, d)| d.dst == backend4(1)).count() as u64;
    assert_eq!(rig.worker.counters().flows_repinned, moved);
}

#[test]
fn identity_keyed_counters_name_every_entity() {
    let mut rig = Rig::new();
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
    tx(rig.run(&mut f, SEC));
    let named = rig.worker.counters().entities.named(&rig.tables).unwrap();
    let listener_packets: u64 = named
        .iter()
        .filter_map(|(e, t)| match e {
            pipelines::counters::Entity::Listener(k) if k.listener == "udp-53" => Some(t.packets),
            _ => None,
        })
        .sum();
    assert_eq!(listener_packets, 1);
}

#[test]
fn burst_api_matches_single_packet_api() {
    let mut rig = Rig::new();
    let mut frames: Vec<Vec<u8>> = (0..8u16)
        .map(|i| {
            let client = SocketAddr::from(([198, 19, 3, 1], 100 + i));
            udp_frame(client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x")
        })
        .collect();
    frames.push(udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        1,
        &[],
        testkit::PORT0_MAC,
        b"x",
    ));
    let mut verdicts = [Verdict::Drop(DropReason::Stray); 9];
    let mut bufs: Vec<&mut [u8]> = frames.iter_mut().map(|f| f.as_mut_slice()).collect();
    let ctx = Context {
        tables: &rig.tables,
        network: &rig.network,
        neighbors: &rig.neighbors,
    };
    rig.worker
        .process_burst(&ctx, SEC, 0, &mut bufs, &mut verdicts);
    assert!(verdicts[..8]
        .iter()
        .all(|v| matches!(v, Verdict::Tx { port: 1, .. })));
    assert_eq!(verdicts[8], Verdict::ToHost(HostReason::TimeExceeded));
    assert_eq!(rig.worker.counters().flows_active, 8);
}

#[test]
fn listener_idle_timeout_override_applies() {
    let mut cfg = testkit::config();
    for l in &mut cfg.listeners {
        l.options.idle_timeout = Some(Duration::from_secs(2));
    }
    let mut rig = Rig::with(cfg, testkit::network(false), params());
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
    tx(rig.run(&mut f, SEC));
    assert_eq!(rig.worker.maintain(2 * SEC), 0);
    assert_eq!(rig.worker.maintain(3 * SEC + 1), 1);
}

/// IPv6 with a hop-by-hop extension header: the UDP header is found after it and the
/// extension header is carried through untouched.
#[test]
fn ipv6_extension_header_is_walked() {
    let mut f = udp_frame(sa(CLIENT6), sa(VIP6), 64, &[], testkit::PORT0_MAC, b"ext");
    // Next header → hop-by-hop (0); insert [next = UDP, len 0, PadN(4)] after the header.
    f[20] = 0;
    let plen = u16::from_be_bytes([f[18], f[19]]) + 8;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    f.splice(54..54, [17, 0, 1, 4, 0, 0, 0, 0]);
    decode_verified(&f).unwrap();
    let mut rig = Rig::new();
    tx(rig.run(&mut f, SEC));
    let d = decode_verified(&f).unwrap();
    assert!([backend6(1), backend6(2)].contains(&d.dst));
    assert_eq!(d.payload, b"ext");
    assert_eq!(&f[54..62], &[17, 0, 1, 4, 0, 0, 0, 0]);
    assert_eq!(d.ttl, 63);
}

//! Direct server return byte fixtures: a DSR frame leaves with only its MACs changed
//! (destination = the chosen backend's, source = the output port's), every byte from the
//! EtherType on as the client sent it, on the backend's port, with no offload request.
//! Flows are pinned forward-only; a backend that is not on-link is `dsr_not_on_link`.

// An integration-test crate is all tests; the lint targets library code.
#![allow(clippy::tests_outside_test_module)]

mod common;

use common::Rig;

use std::net::{IpAddr, SocketAddr};

use pipelines::fastpath::pick;
use pipelines::maglev;
use pipelines::neighbor::Neighbors;
use pipelines::net::{MacAddr, Network, DEFAULT_SNAT_PORTS};
use pipelines::parse::FlowKey;
use pipelines::spec::{ForwardingConfig, NatMode, WEIGHT_SCALE};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{self, backend4, backend6, decode_verified, dsr_backend, udp_frame};
use pipelines::{DropReason, FastPathParams, HostReason, Verdict};

const SEC: u64 = 1_000_000_000;
const VIP4: &str = "198.18.2.1:60";
const VIP6: &str = "[2001:2:0:2::1]:60";

/// One worker on the testkit topology with a flow table of `capacity`.
fn rig_with(cfg: ForwardingConfig, network: Network, capacity: u32) -> Rig {
    let mut p = FastPathParams::new(0, 1, DEFAULT_SNAT_PORTS);
    p.flow_capacity = capacity;
    Rig::single(cfg, network, p)
}

fn one_worker() -> Rig {
    rig_with(testkit::config(), testkit::network(false), 1024)
}

impl Rig {
    /// The MAC of the backend Maglev picks for `client` → `vip` (computed independently
    /// of the fast path, from the tables).
    fn picked_mac(&self, client: SocketAddr, vip: SocketAddr) -> MacAddr {
        let li = self.tables.lookup_listener(vip.ip(), vip.port()).unwrap();
        let l = &self.tables.listeners()[li as usize];
        let key = FlowKey {
            src: client.ip(),
            dst: vip.ip(),
            src_port: client.port(),
            dst_port: vip.port(),
        };
        let slot = pick(&self.tables, l, &key);
        assert!(slot != maglev::NO_BACKEND && slot != maglev::DROP);
        let b = l.route.as_ref().unwrap().backends[(slot - 1) as usize].addr;
        let n = match b.ip() {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(a) => a.octets()[15],
        };
        testkit::backend_mac(n)
    }
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Asserts the DSR frame rules: `out` is `input` with bytes 0..6 = `backend_mac` and 6..12
/// = port 1's MAC, sent on port 1 without offload.
fn assert_dsr(v: Verdict, input: &[u8], out: &[u8], backend_mac: MacAddr) {
    assert_eq!(
        v,
        Verdict::Tx {
            port: 1,
            offload: None
        }
    );
    assert_eq!(out.len(), input.len());
    assert_eq!(&out[..6], &backend_mac.0, "destination MAC = the backend's");
    assert_eq!(&out[6..12], &testkit::PORT1_MAC.0, "source MAC = port 1's");
    assert_eq!(&out[12..], &input[12..], "nothing else changes");
}

/// A literal IPv4 frame (checksums written out): 198.19.0.7:40000 → 198.18.2.1:60, TTL
/// 64, four 0xa5 bytes.
#[test]
fn ipv4_literal_frame_changes_only_the_macs() {
    #[rustfmt::skip]
    let input: Vec<u8> = vec![
        0x02, 0, 0, 0, 0, 0x01,  0x0a, 0, 0, 0, 0, 0x99,  0x08, 0x00,
        0x45, 0x00, 0x00, 0x20,  0x12, 0x34, 0x40, 0x00,  0x40, 0x11, 0x9a, 0x6b,
        198, 19, 0, 7,  198, 18, 2, 1,
        0x9c, 0x40, 0x00, 0x3c,  0x00, 0x0c, 0x89, 0xe0,
        0xa5, 0xa5, 0xa5, 0xa5,
    ];
    decode_verified(&input).expect("the literal frame is valid");
    let mut rig = one_worker();
    let mac = rig.picked_mac(sa("198.19.0.7:40000"), sa(VIP4));
    let mut f = input.clone();
    let v = rig.run(&mut f, SEC);
    assert_dsr(v, &input, &f, mac);
    #[rustfmt::skip]
    let expected_head = [
        0x0a, 0, 0, 0, 1, mac.0[5],  0x02, 0, 0, 0, 0, 0x02,  0x08, 0x00,
        0x45, 0x00, 0x00, 0x20,  0x12, 0x34, 0x40, 0x00,  0x40, 0x11, 0x9a, 0x6b,
    ];
    assert_eq!(
        &f[..26],
        &expected_head,
        "TTL 0x40 and checksum 0x9a6b as sent"
    );
}

/// Both families, untagged, 802.1Q and QinQ, TTL 64 and 1 (not decremented, not
/// dropped: the frame is switched), with and without checksum offload on the out port.
#[test]
fn every_byte_after_the_macs_is_kept() {
    let payload = [0xa5u8; 37];
    for offload in [false, true] {
        let mut rig = rig_with(testkit::config(), testkit::network(offload), 1024);
        for (client, vip) in [
            (sa("198.19.0.7:40000"), sa(VIP4)),
            (sa("[2001:2:0:9::7]:40000"), sa(VIP6)),
        ] {
            for vlans in [&[][..], &[100], &[100, 200]] {
                for ttl in [64, 1] {
                    let input = udp_frame(client, vip, ttl, vlans, testkit::PORT0_MAC, &payload);
                    let mut f = input.clone();
                    let v = rig.run(&mut f, SEC);
                    assert_dsr(v, &input, &f, rig.picked_mac(client, vip));
                    let d = decode_verified(&f).expect("checksums still valid");
                    assert_eq!((d.src, d.dst, d.ttl), (client, vip, ttl));
                    assert_eq!(d.vlans, vlans);
                }
            }
        }
        let c = rig.workers[0].counters();
        assert_eq!(c.tx_packets, 12);
        assert_eq!(c.flows_created, 2, "one flow per client, all frames pinned");
    }
}

/// Flows are pinned (same idle timeout), counted forward only, and expire; a datagram
/// from the VIP that reaches the appliance anyway (a backend routing its replies through
/// it) is not forwarded.
#[test]
fn flows_are_pinned_forward_only() {
    let mut rig = one_worker();
    let clients: Vec<SocketAddr> = (0..50u8)
        .map(|i| SocketAddr::from(([198, 19, 1, i], 5000 + u16::from(i))))
        .collect();
    let mut macs = Vec::new();
    for &c in &clients {
        let mut f = udp_frame(c, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
        assert!(matches!(rig.run(&mut f, SEC), Verdict::Tx { port: 1, .. }));
        macs.push(MacAddr(f[..6].try_into().unwrap()));
    }
    assert!(macs.contains(&testkit::backend_mac(1)) && macs.contains(&testkit::backend_mac(2)));
    // The route changes weights: pinned flows stay where they are.
    let mut cfg = testkit::config();
    let l = cfg
        .listeners
        .iter_mut()
        .find(|l| l.port == 60 && l.vip.is_ipv4())
        .unwrap();
    l.route.as_mut().unwrap().backends[0].weight = 0;
    rig.tables = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
    for (&c, mac) in clients.iter().zip(&macs) {
        let mut f = udp_frame(c, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
        assert!(matches!(
            rig.run(&mut f, 2 * SEC),
            Verdict::Tx { port: 1, .. }
        ));
        assert_eq!(&f[..6], &mac.0, "pinned");
    }
    let c = rig.workers[0].counters();
    assert_eq!((c.flows_created, c.flows_active), (50, 50));
    // Entity counters per tables generation: the first one created the flows.
    let li = rig.tables.lookup_listener(sa(VIP4).ip(), 60).unwrap() as usize;
    let t = c.entities.listeners[li];
    assert_eq!((t.packets, t.flows_created, t.reply_packets), (50, 0, 0));
    let old = rig.workers[0].take_retired();
    let t = old[0].listeners[li];
    assert_eq!((t.packets, t.flows_created, t.reply_packets), (50, 50, 0));

    // What a backend would send if it routed its reply through us: not forwarded.
    let mut r = udp_frame(sa(VIP4), clients[0], 64, &[], testkit::PORT1_MAC, b"a");
    assert_eq!(rig.run(&mut r, 2 * SEC), Verdict::Drop(DropReason::Stray));

    // Same idle timeout as every mode (30 s by default).
    assert_eq!(rig.workers[0].maintain(31 * SEC), 0);
    assert_eq!(rig.workers[0].maintain(33 * SEC), 50);
    assert_eq!(rig.workers[0].flows_len(), 0);
}

/// Backend 1 leaves the route: its flows re-pick (to backend 2).
#[test]
fn flows_repin_when_their_backend_leaves() {
    let mut rig = one_worker();
    let clients: Vec<SocketAddr> = (0..40u8)
        .map(|i| SocketAddr::from(([198, 19, 2, i], 6000 + u16::from(i))))
        .collect();
    for &c in &clients {
        let mut f = udp_frame(c, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
        assert!(matches!(rig.run(&mut f, SEC), Verdict::Tx { .. }));
    }
    let on_one = clients
        .iter()
        .filter(|&&c| rig.picked_mac(c, sa(VIP4)) == testkit::backend_mac(1))
        .count() as u64;
    assert!(on_one > 0);
    let mut cfg = testkit::config();
    cfg.listeners
        .iter_mut()
        .find(|l| l.port == 60 && l.vip.is_ipv4())
        .unwrap()
        .route
        .as_mut()
        .unwrap()
        .backends
        .retain(|b| b.addr != dsr_backend(backend4(1)));
    rig.tables = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
    for &c in &clients {
        let input = udp_frame(c, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
        let mut f = input.clone();
        let v = rig.run(&mut f, 2 * SEC);
        assert_dsr(v, &input, &f, testkit::backend_mac(2));
    }
    assert_eq!(rig.workers[0].counters().flows_repinned, on_one);
    assert_eq!(rig.workers[0].flows_len(), clients.len());
}

/// An unresolved backend MAC goes to the host for resolution, untouched; a backend that
/// is not on-link is refused before any resolution (its gateway is never asked for).
#[test]
fn unresolved_and_not_on_link_backends() {
    let mut rig = one_worker();
    rig.neighbors = Neighbors::new([]);
    let mut f = udp_frame(
        sa("198.19.0.7:40000"),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        b"q",
    );
    let before = f.clone();
    let v = rig.run(&mut f, SEC);
    let Verdict::ToHost(HostReason::Resolve { next_hop, port }) = v else {
        panic!("{v:?}");
    };
    assert!([backend4(1).ip(), backend4(2).ip()].contains(&next_hop));
    assert_eq!(port, 1);
    assert_eq!(f, before);

    let mut cfg = testkit::config();
    cfg.listeners.push(testkit::listener(
        "2001:2:0:2::1",
        61,
        NatMode::Dsr,
        &[(sa("[2001:2:0:9::5]:61"), WEIGHT_SCALE)],
    ));
    cfg.normalize();
    for neighbors in [Neighbors::new([]), testkit::neighbors(4)] {
        let mut rig = rig_with(cfg.clone(), testkit::network(false), 1024);
        rig.neighbors = neighbors;
        let mut f = udp_frame(
            sa("[2001:2:0:9::7]:40000"),
            sa("[2001:2:0:2::1]:61"),
            64,
            &[],
            testkit::PORT0_MAC,
            b"q",
        );
        let before = f.clone();
        assert_eq!(
            rig.run(&mut f, SEC),
            Verdict::Drop(DropReason::DsrNotOnLink)
        );
        assert_eq!(f, before);
        assert_eq!(
            rig.workers[0]
                .counters()
                .drop_count(DropReason::DsrNotOnLink),
            1
        );
    }
}

/// A full table (or the rate guard) forwards DSR statelessly, like preserve-client.
#[test]
fn full_table_forwards_statelessly() {
    let mut rig = rig_with(testkit::config(), testkit::network(false), 1);
    for i in 0..3u16 {
        let client = SocketAddr::from(([198, 19, 0, 7], 1000 + i));
        let input = udp_frame(client, sa(VIP4), 64, &[], testkit::PORT0_MAC, b"x");
        let mut f = input.clone();
        let v = rig.run(&mut f, SEC);
        assert_dsr(v, &input, &f, rig.picked_mac(client, sa(VIP4)));
    }
    let c = rig.workers[0].counters();
    assert_eq!((c.flows_created, c.table_full), (1, 2));
}

/// A backend of the other family cannot receive the VIP's frames: it joins the dropped
/// share (ICMP unreachable through the host), like in every mode.
#[test]
fn other_family_backends_join_the_dropped_share() {
    let mut cfg = testkit::config();
    cfg.listeners.push(testkit::listener(
        "198.18.2.1",
        62,
        NatMode::Dsr,
        &[(dsr_backend(backend6(1)), WEIGHT_SCALE)],
    ));
    cfg.normalize();
    let mut rig = rig_with(cfg, testkit::network(false), 1024);
    let mut f = udp_frame(
        sa("198.19.0.7:40000"),
        sa("198.18.2.1:62"),
        64,
        &[],
        testkit::PORT0_MAC,
        b"x",
    );
    assert_eq!(rig.run(&mut f, SEC), Verdict::ToHost(HostReason::Reject));
}

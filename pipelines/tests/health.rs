//! Health in the fast path: excluded endpoints take no new flows (their Maglev share
//! falls to the next healthy slots, the same on every appliance), their pinned flows move
//! on their next datagram (keeping the SNAT port), panic mode and fail-open keep
//! everything flowing, and recovered endpoints take new flows again.

#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use common::*;
use pipelines::fastpath::pick;
use pipelines::health::Health;
use pipelines::parse::FlowKey;
use pipelines::spec::{ForwardingConfig, HealthCheckSpec, NatMode, PolicyKey, WEIGHT_SCALE};
use pipelines::testkit::{self, backend4, decode_verified, udp_frame};
use pipelines::Verdict;

const VIP: &str = "198.18.2.1:70";

/// The standard config plus 198.18.2.1:70 over backends 1..=4 in `mode` (DSR: on port 70).
fn config(mode: NatMode) -> ForwardingConfig {
    let mut c = testkit::config();
    let port = if mode == NatMode::Dsr { 70 } else { 5353 };
    let backends: Vec<(SocketAddr, u64)> = (1..=4)
        .map(|n| (SocketAddr::new(backend4(n).ip(), port), WEIGHT_SCALE))
        .collect();
    c.listeners
        .push(testkit::listener("198.18.2.1", 70, mode, &backends));
    c.normalize();
    c
}

fn backend(n: u8, mode: NatMode) -> SocketAddr {
    SocketAddr::new(
        backend4(n).ip(),
        if mode == NatMode::Dsr { 70 } else { 5353 },
    )
}

fn client(i: u16) -> SocketAddr {
    SocketAddr::from(([198, 19, 1, u8::try_from(i % 250).unwrap()], 20000 + i))
}

/// Sends one datagram of client `i` and returns the backend it went to (by MAC, which
/// every mode sets) and the source the backend saw.
fn send(rig: &mut Rig, i: u16, now: u64) -> (u8, SocketAddr) {
    let mut f = udp_frame(client(i), sa(VIP), 64, &[], testkit::PORT0_MAC, b"q");
    assert_eq!(tx_port(rig.run(&mut f, now)), 1);
    let d = decode_verified(&f).unwrap();
    (f[5], d.src)
}

#[test]
fn excluded_backends_take_no_new_flows_and_only_their_share_moves() {
    for mode in [NatMode::FullNat, NatMode::PreserveClient, NatMode::Dsr] {
        let mut rig = Rig::with(config(mode), testkit::network(false), 1, |_| {});
        let health = Arc::new(Health::new([backend(2, mode)]));
        rig.set_health(&health);
        let li = rig
            .tables
            .lookup_listener(sa(VIP).ip(), 70)
            .expect("listener");
        let l = rig.tables.listeners()[li as usize].clone();
        let mut per_backend = BTreeMap::new();
        for i in 0..800 {
            let (n, _) = send(&mut rig, i, SEC);
            assert_ne!(n, 2, "{mode}: an excluded backend took a new flow");
            *per_backend.entry(n).or_insert(0) += 1;
            // Flows Maglev did not send to backend 2 go where they always went.
            let k = FlowKey {
                src: client(i).ip(),
                dst: sa(VIP).ip(),
                src_port: client(i).port(),
                dst_port: 70,
            };
            let slot = pick(&rig.tables, &l, &k);
            let route = l.route.as_ref().unwrap();
            let maglev_backend = route.backends[(slot - 1) as usize].addr;
            if maglev_backend != backend(2, mode) {
                assert_eq!(
                    backend(n, mode),
                    maglev_backend,
                    "{mode}: unhealthy share only"
                );
            }
        }
        assert_eq!(per_backend.len(), 3);
        assert!(per_backend.values().all(|&c| c > 150), "{per_backend:?}");
    }
}

/// Two appliances with the same tables and health send every flow to the same backend.
#[test]
fn the_fallback_is_the_same_on_every_appliance() {
    let health = Arc::new(Health::new([
        backend(1, NatMode::FullNat),
        backend(3, NatMode::FullNat),
    ]));
    let mut a = Rig::with(config(NatMode::FullNat), testkit::network(false), 1, |_| {});
    let mut b = Rig::with(config(NatMode::FullNat), testkit::network(false), 1, |_| {});
    a.set_health(&health);
    b.set_health(&Arc::new(Health::new([
        backend(3, NatMode::FullNat),
        backend(1, NatMode::FullNat),
    ])));
    for i in 0..300 {
        let (na, _) = send(&mut a, i, SEC);
        let (nb, _) = send(&mut b, i, SEC);
        assert_eq!(na, nb);
        assert!(na == 2 || na == 4);
    }
}

/// Flows pinned to a backend that becomes unhealthy move on their next datagram,
/// keeping their SNAT port; their replies come from the new backend; the rest stay.
#[test]
fn pinned_flows_leave_an_unhealthy_backend() {
    for mode in [NatMode::FullNat, NatMode::PreserveClient, NatMode::Dsr] {
        let mut rig = Rig::with(config(mode), testkit::network(false), 1, |_| {});
        let before: Vec<(u8, SocketAddr)> = (0..200).map(|i| send(&mut rig, i, SEC)).collect();
        let on_1 = before.iter().filter(|(n, _)| *n == 1).count();
        assert!(on_1 > 20);
        rig.set_health(&Arc::new(Health::new([backend(1, mode)])));
        for (i, (n, src)) in (0..200).zip(&before) {
            let (m, src2) = send(&mut rig, i, 2 * SEC);
            if *n == 1 {
                assert_ne!(m, 1, "{mode}: moved");
            } else {
                assert_eq!(m, *n, "{mode}: healthy flows stay");
            }
            assert_eq!(src2, *src, "{mode}: same source (SNAT port kept)");
            if mode != NatMode::Dsr {
                // The new backend's reply finds the flow.
                let mut r = udp_frame(backend(m, mode), src2, 64, &[], testkit::PORT1_MAC, b"a");
                assert_eq!(tx_port(rig.run(&mut r, 2 * SEC)), 0);
                let d = decode_verified(&r).unwrap();
                assert_eq!((d.src, d.dst), (sa(VIP), client(i)));
            }
        }
        let c = rig.workers[0].counters();
        assert_eq!(c.flows_repinned_unhealthy, on_1 as u64, "{mode}");
        assert_eq!(c.flows_repinned, 0);
        assert_eq!(c.flows_created, 200, "moved, not recreated");

        // Recovered: new flows may pick backend 1 again; moved flows stay where they are.
        rig.set_health(&Arc::new(Health::default()));
        let mut seen = BTreeSet::new();
        for i in 1000..1200 {
            seen.insert(send(&mut rig, i, 3 * SEC).0);
        }
        assert!(seen.contains(&1), "{mode}");
        for (i, (n, _)) in (0..200).zip(&before) {
            let (m, _) = send(&mut rig, i, 3 * SEC);
            if *n == 1 {
                assert_ne!(m, 1, "{mode}: no move back");
            }
        }
    }
}

/// Panic mode (computed by the control side) and fail-open (nothing healthy left on a
/// route) keep every backend in use.
#[test]
fn panic_and_fail_open_use_every_backend() {
    let check = HealthCheckSpec {
        // The Service testkit's listeners name for every backend.
        service: pipelines::spec::ServiceKey {
            namespace: "default".into(),
            name: "svc".into(),
            port: 53,
        },
        policy: PolicyKey {
            namespace: "default".into(),
            name: "hc".into(),
        },
        endpoints: (1..=4).map(|n| backend(n, NatMode::FullNat)).collect(),
        active: None,
        passive: None,
        panic_threshold_percent: 50,
    };
    let down = |a: SocketAddr| a != backend(4, NatMode::FullNat);
    let health = Health::compute(std::slice::from_ref(&check), down);
    assert!(health.is_empty());
    assert_eq!(health.panicking(), std::slice::from_ref(&check.service));
    let mut rig = Rig::with(config(NatMode::FullNat), testkit::network(false), 1, |_| {});
    rig.set_health(&Arc::new(health));
    let used: BTreeSet<u8> = (0..200).map(|i| send(&mut rig, i, SEC).0).collect();
    assert_eq!(used.len(), 4, "panic: all four");

    // Threshold 0: no panic, three excluded; then all four: fail open.
    let mut no_panic = check.clone();
    no_panic.panic_threshold_percent = 0;
    let h = Health::compute(std::slice::from_ref(&no_panic), down);
    assert_eq!(h.excluded().len(), 3);
    rig.set_health(&Arc::new(h));
    let used: BTreeSet<u8> = (200..400).map(|i| send(&mut rig, i, SEC).0).collect();
    assert_eq!(used, BTreeSet::from([4]));
    let h = Health::compute(std::slice::from_ref(&no_panic), |_| true);
    rig.set_health(&Arc::new(h));
    let used: BTreeSet<u8> = (400..600).map(|i| send(&mut rig, i, SEC).0).collect();
    assert_eq!(used.len(), 4, "fail open");
    assert_eq!(rig.workers[0].counters().flows_repinned_unhealthy, 0);
    // Other listeners are unaffected by health they do not use.
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
    assert!(matches!(rig.run(&mut f, SEC), Verdict::Tx { port: 1, .. }));
}

//! Flow idle timeouts from the spec: a flow that has not seen a reply expires after the
//! listener's unreplied timeout, one that has after its replied timeout, or after its
//! backend's own (session affinity); DSR flows, whose replies never pass, count as
//! replied. Time is the caller's: the tests drive the timestamp.

#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use pipelines::spec::{ForwardingConfig, NatMode, WEIGHT_SCALE};
use pipelines::testkit::{self, backend4, decode_verified, udp_frame};

/// 198.18.2.1:70 in `mode` over backend 1 (whose own replied timeout is `backend_idle`),
/// replied timeout 120 s, unreplied 10 s.
fn config(mode: NatMode, backend_idle: Option<u64>) -> ForwardingConfig {
    let mut c = testkit::config();
    let b = if mode == NatMode::Dsr {
        SocketAddr::new(backend4(1).ip(), 70)
    } else {
        backend4(1)
    };
    let mut l = testkit::listener("198.18.2.1", 70, mode, &[(b, WEIGHT_SCALE)]);
    l.options.idle_timeout = Some(Duration::from_secs(120));
    l.options.unreplied_timeout = Some(Duration::from_secs(10));
    if let Some(r) = &mut l.route {
        r.backends[0].idle_timeout = backend_idle.map(Duration::from_secs);
    }
    c.listeners.push(l);
    c.normalize();
    c
}

/// Sends the client's datagram at `t` seconds; returns the source the backend sees.
fn request(rig: &mut Rig, t: u64) -> SocketAddr {
    let mut f = udp_frame(
        sa(CLIENT4),
        sa("198.18.2.1:70"),
        64,
        &[],
        testkit::PORT0_MAC,
        b"q",
    );
    assert_eq!(tx_port(rig.run(&mut f, t * SEC)), 1);
    decode_verified(&f).unwrap().src
}

fn reply(rig: &mut Rig, to: SocketAddr, t: u64) {
    let mut r = udp_frame(backend4(1), to, 64, &[], testkit::PORT1_MAC, b"a");
    assert_eq!(tx_port(rig.run(&mut r, t * SEC)), 0);
}

fn created(rig: &Rig) -> u64 {
    rig.workers[0].counters().flows_created
}

#[test]
fn unreplied_flows_expire_after_the_unreplied_timeout() {
    for mode in [NatMode::FullNat, NatMode::PreserveClient] {
        let mut rig = Rig::with(config(mode, None), testkit::network(false), 1, |_| {});
        request(&mut rig, 1);
        // Each request refreshes it by 10 s.
        request(&mut rig, 10);
        request(&mut rig, 19);
        assert_eq!(created(&rig), 1, "{mode}");
        request(&mut rig, 30);
        assert_eq!(created(&rig), 2, "{mode}: expired at 29 s");
        // The sweep frees it too (and its SNAT port).
        for _ in 0..8 {
            rig.workers[0].maintain(41 * SEC);
        }
        assert_eq!(rig.workers[0].flows_len(), 0);
        assert_eq!(rig.workers[0].counters().flows_expired, 2);
    }
}

#[test]
fn a_reply_switches_to_the_replied_timeout() {
    for mode in [NatMode::FullNat, NatMode::PreserveClient] {
        let mut rig = Rig::with(config(mode, None), testkit::network(false), 1, |_| {});
        let src = request(&mut rig, 1);
        reply(&mut rig, src, 2);
        // 100 s of silence: still the same flow (replied: 120 s).
        let again = request(&mut rig, 102);
        assert_eq!((created(&rig), again), (1, src), "{mode}");
        // Client datagrams now refresh by 120 s too.
        request(&mut rig, 221);
        assert_eq!(created(&rig), 1, "{mode}");
        request(&mut rig, 342);
        assert_eq!(created(&rig), 2, "{mode}: expired at 341 s");
    }
}

#[test]
fn a_backends_own_timeout_replaces_the_replied_timeout() {
    let mut rig = Rig::with(
        config(NatMode::FullNat, Some(600)),
        testkit::network(false),
        1,
        |_| {},
    );
    request(&mut rig, 1);
    // Unreplied, the listener's 10 s still apply.
    request(&mut rig, 12);
    assert_eq!(created(&rig), 2);
    let src2 = request(&mut rig, 13);
    reply(&mut rig, src2, 14);
    // Replied: the backend's 600 s, longer than the listener's 120 s.
    request(&mut rig, 500);
    assert_eq!(created(&rig), 2);
    reply(&mut rig, src2, 501);
    request(&mut rig, 1100);
    assert_eq!(created(&rig), 2);
    request(&mut rig, 1701);
    assert_eq!(created(&rig), 3);
}

#[test]
fn dsr_flows_count_as_replied() {
    let mut rig = Rig::with(
        config(NatMode::Dsr, None),
        testkit::network(false),
        1,
        |_| {},
    );
    request(&mut rig, 1);
    request(&mut rig, 100);
    assert_eq!(created(&rig), 1, "120 s, not 10 s");
    request(&mut rig, 221);
    assert_eq!(created(&rig), 2);
}

#[test]
fn without_settings_both_timeouts_are_the_appliance_default() {
    // The standard listeners set nothing: 30 s either way (conntrack's unreplied 30 s
    // does not shorten the 30 s default).
    let mut rig = Rig::new(1);
    let send = |rig: &mut Rig, t: u64| {
        let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, b"q");
        assert_eq!(tx_port(rig.run(&mut f, t * SEC)), 1);
    };
    send(&mut rig, 1);
    send(&mut rig, 30);
    assert_eq!(created(&rig), 1);
    send(&mut rig, 61);
    assert_eq!(created(&rig), 2);
}

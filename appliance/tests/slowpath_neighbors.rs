//! Next-hop resolution: ARP requests and neighbor solicitations on demand, rate-limited,
//! learned entries published through the callback, refreshed and expired on the caller's
//! clock; and the threaded run loop end to end.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod slowpath_support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use appliance::slowpath::{FrameSink, NeighborMap, SlowPath, SlowPathMsg};
use slowpath_support::*;

/// The ARP request the slow path must emit: broadcast, from our MAC and own address.
fn expected_arp_request(target: std::net::Ipv4Addr) -> Vec<u8> {
    arp_frame(BROADCAST, 1, OUR_MAC, OWN4, [0; 6], target)
}

fn published(h: &mut Harness) -> Vec<NeighborMap> {
    let mut maps = Vec::new();
    h.sp.publish_if_changed(&mut |m: &NeighborMap| maps.push(m.clone()));
    maps
}

#[test]
fn static_neighbors_are_published_first() {
    let mut h = Harness::new();
    let maps = published(&mut h);
    assert_eq!(
        maps,
        vec![BTreeMap::from([(IpAddr::V4(STATIC4), STATIC_MAC)])]
    );
    assert!(published(&mut h).is_empty(), "nothing changed since");
    // A static entry is never re-resolved.
    assert!(h.resolve(IpAddr::V4(STATIC4)).is_empty());
}

#[test]
fn resolve_sends_arp_request_rate_limited_and_reply_is_published() {
    let mut h = Harness::new();
    published(&mut h);
    let target = IpAddr::V4(ROUTER4);
    assert_eq!(only(h.resolve(target)), expected_arp_request(ROUTER4));
    h.now += Duration::from_millis(500);
    assert!(
        h.resolve(target).is_empty(),
        "second resolve within 1 s sends nothing"
    );
    assert_eq!(h.stats().resolutions_sent, 1);

    let reply = arp_frame(OUR_MAC, 2, ROUTER_MAC, ROUTER4, OUR_MAC, OWN4);
    assert!(h.frame(reply).is_empty());
    let maps = published(&mut h);
    assert_eq!(maps.len(), 1);
    assert_eq!(maps[0].get(&target), Some(&ROUTER_MAC));
    assert_eq!(
        maps[0].get(&IpAddr::V4(STATIC4)),
        Some(&STATIC_MAC),
        "snapshot is complete"
    );
    assert_eq!(h.stats().resolutions_learned, 1);
    // Resolved: further requests send nothing.
    h.now += Duration::from_secs(2);
    assert!(h.resolve(target).is_empty());
}

#[test]
fn unsolicited_arp_reply_is_not_learned() {
    let mut h = Harness::new();
    published(&mut h);
    h.frame(arp_frame(OUR_MAC, 2, ROUTER_MAC, ROUTER4, OUR_MAC, OWN4));
    assert!(published(&mut h).is_empty());
    assert_eq!(h.stats().ignored, 1);
}

#[test]
fn unanswered_resolution_is_retried_then_abandoned() {
    let mut h = Harness::new();
    assert_eq!(h.resolve(IpAddr::V4(ROUTER4)).len(), 1);
    let mut retries = 0;
    for _ in 0..10 {
        retries += h.advance(Duration::from_secs(1)).len();
    }
    assert_eq!(retries, 2, "three probes in all");
    assert_eq!(h.stats().resolutions_failed, 1);
    assert_eq!(h.stats().resolutions_sent, 3);
}

#[test]
fn learned_entry_is_refreshed_before_it_expires_and_removed_if_silent() {
    let mut h = Harness::new();
    h.resolve(IpAddr::V4(ROUTER4));
    h.frame(arp_frame(OUR_MAC, 2, ROUTER_MAC, ROUTER4, OUR_MAC, OWN4));
    published(&mut h);
    assert!(h.advance(Duration::from_secs(59)).is_empty());
    let refresh = only(h.advance(Duration::from_secs(1)));
    assert_eq!(refresh, expected_arp_request(ROUTER4));
    // Answered: the entry is confirmed and lives on without a change to publish.
    h.frame(arp_frame(OUR_MAC, 2, ROUTER_MAC, ROUTER4, OUR_MAC, OWN4));
    assert!(h.advance(Duration::from_secs(30)).is_empty());
    assert!(published(&mut h).is_empty());
    // Now silent: refresh probes once per second, then removal is published.
    let mut probes = 0;
    for _ in 0..60 {
        probes += h.advance(Duration::from_secs(1)).len();
    }
    assert_eq!(probes, 15, "one per second from 60 s to 75 s of age");
    assert_eq!(h.stats().neighbors_expired, 1);
    let maps = published(&mut h);
    assert_eq!(maps.len(), 1);
    assert!(!maps[0].contains_key(&IpAddr::V4(ROUTER4)));
}

#[test]
fn resolve_v6_sends_solicitation_to_solicited_node_group() {
    let mut h = Harness::new();
    let frame = only(h.resolve(IpAddr::V6(ROUTER6)));
    // ROUTER6 ends in 12:3456 → group ff02::1:ff12:3456, MAC 33:33:ff:12:34:56.
    assert_eq!(&frame[..6], &[0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
    assert_eq!(&frame[6..12], &OUR_MAC);
    assert_eq!(&frame[12..14], &[0x86, 0xdd]);
    let ip = &frame[14..];
    assert_eq!(ip[7], 255, "hop limit");
    assert_eq!(
        &ip[8..24],
        &OWN6.octets(),
        "from the own address in the target's prefix"
    );
    let group = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff12, 0x3456);
    assert_eq!(&ip[24..40], &group.octets());
    let icmp = &ip[40..];
    assert_eq!(icmp.len(), 32);
    assert_eq!(icmp[0], 135, "neighbor solicitation");
    assert_eq!(&icmp[8..24], &ROUTER6.octets());
    assert_eq!(&icmp[24..26], &[1, 1], "source link-layer option");
    assert_eq!(&icmp[26..32], &OUR_MAC);
    assert_icmpv6_checksum(OWN6, group, icmp);
    h.now += Duration::from_millis(999);
    assert!(h.resolve(IpAddr::V6(ROUTER6)).is_empty());
}

#[test]
fn neighbor_advert_answers_a_pending_resolution() {
    let mut h = Harness::new();
    published(&mut h);
    h.resolve(IpAddr::V6(ROUTER6));
    assert!(h
        .frame(na(ROUTER_MAC, ROUTER6, ROUTER6, ROUTER_MAC))
        .is_empty());
    let maps = published(&mut h);
    assert_eq!(maps[0].get(&IpAddr::V6(ROUTER6)), Some(&ROUTER_MAC));
}

#[test]
fn unsolicited_neighbor_advert_only_updates_known_entries() {
    let mut h = Harness::new();
    published(&mut h);
    h.frame(na(ROUTER_MAC, ROUTER6, ROUTER6, ROUTER_MAC));
    assert!(published(&mut h).is_empty());
    // Learned from its solicitation for our VIP, then the peer moves to a new MAC.
    h.frame(ns(
        PEER_MAC,
        OUR_MAC,
        PEER6,
        VIP6,
        VIP6,
        &lladdr_option(1, PEER_MAC),
    ));
    assert_eq!(
        published(&mut h)[0].get(&IpAddr::V6(PEER6)),
        Some(&PEER_MAC)
    );
    let moved = [0x02, 0, 0x5e, 0, 0, 0x77];
    h.frame(na(moved, PEER6, PEER6, moved));
    assert_eq!(published(&mut h)[0].get(&IpAddr::V6(PEER6)), Some(&moved));
}

/// Forwards sent frames to the test thread.
struct ChannelSink(crossbeam_channel::Sender<(u16, Vec<u8>)>);

impl FrameSink for ChannelSink {
    fn send(&mut self, port: u16, frame: &[u8]) {
        let _ = self.0.send((port, frame.to_vec()));
    }
}

#[test]
fn run_loop_answers_publishes_and_stops_on_shutdown() {
    let counters = std::sync::Arc::new(appliance::slowpath::SlowPathCounters::default());
    let sp = SlowPath::new(config(), std::sync::Arc::clone(&counters)).unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<SlowPathMsg<Vec<u8>>>(16);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    let (pub_tx, pub_rx) = crossbeam_channel::unbounded();
    let thread = std::thread::spawn(move || {
        sp.run(rx, ChannelSink(out_tx), move |m: &NeighborMap| {
            let _ = pub_tx.send(m.clone());
        });
    });
    let wait = Duration::from_secs(10);
    assert_eq!(
        pub_rx.recv_timeout(wait).unwrap().len(),
        1,
        "static entries first"
    );

    let req = arp_frame(BROADCAST, 1, PEER_MAC, PEER4, [0; 6], VIP4);
    assert!(counters.try_send(
        &tx,
        SlowPathMsg::Frame {
            port: PORT,
            frame: req
        }
    ));
    let (port, reply) = out_rx.recv_timeout(wait).unwrap();
    assert_eq!(port, PORT);
    assert_eq!(&reply[20..22], &[0, 2], "ARP reply");
    let map = pub_rx.recv_timeout(wait).unwrap();
    assert_eq!(map.get(&IpAddr::V4(PEER4)), Some(&PEER_MAC));

    assert!(counters.try_send(&tx, SlowPathMsg::Shutdown));
    thread.join().unwrap();
    assert_eq!(counters.snapshot().arp_replies, 1);
    assert_eq!(counters.snapshot().frames_handled, 1);
}

#[test]
fn run_loop_exits_when_senders_are_gone() {
    let counters = std::sync::Arc::new(appliance::slowpath::SlowPathCounters::default());
    let sp = SlowPath::new(config(), counters).unwrap();
    let (tx, rx) = crossbeam_channel::bounded::<SlowPathMsg<Vec<u8>>>(1);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        sp.run(rx, Vec::<(u16, Vec<u8>)>::new(), |_: &NeighborMap| {});
        let _ = done_tx.send(());
    });
    drop(tx);
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("run returned");
}

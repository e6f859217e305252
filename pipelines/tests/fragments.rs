//! IP fragments through every NAT mode, both families, both directions, in order and out
//! of order, on one and two workers: every output fragment is checked byte by byte
//! against its input, and the datagram the receiver reassembles (independent reassembler
//! in `common`) is decoded with a valid UDP checksum and the mode's addresses and ports.
//! Also: holds that time out, the egress MTU (too big → ICMP from the host, or split by
//! the appliance with `refragment::split_ipv4`), and the bounds of the fragment table.

#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::HashMap;
use std::net::IpAddr;

use common::*;
use pipelines::fastpath::steer::fragment_owner;
use pipelines::fragment::Release;
use pipelines::net::Network;
use pipelines::refragment::split_ipv4;
use pipelines::testkit::{self, backend4, backend6, decode_verified, udp_frame};
use pipelines::{DropReason, HostReason, Verdict};

/// A rig plus the appliance's side of holding: buffers by (worker, slot), re-run when
/// released; every verdict other than `Hold` and `Handoff` is collected with its frame.
struct Harness {
    rig: Rig,
    held: HashMap<(usize, u16), (u16, Vec<u8>)>,
    out: Vec<(Verdict, Vec<u8>)>,
    expired: usize,
    max_hops: usize,
}

impl Harness {
    fn new(rig: Rig) -> Harness {
        Harness {
            rig,
            held: HashMap::new(),
            out: Vec::new(),
            expired: 0,
            max_hops: 0,
        }
    }

    /// Sends `frame` to worker `w` (as RSS would), arriving on the port it addresses.
    fn send(&mut self, w: usize, frame: &[u8], now: u64) {
        let port = testkit::arrival_port(frame);
        self.send_port(w, port, frame.to_vec(), now);
        self.drain(now);
    }

    fn send_port(&mut self, w: usize, port: u16, mut frame: Vec<u8>, now: u64) {
        let mut at = w;
        let mut hops = 0;
        loop {
            match self.rig.run_port(at, port, &mut frame, now) {
                Verdict::Handoff { worker } => {
                    at = usize::from(worker);
                    hops += 1;
                    assert!(hops <= 2, "a fragment moves at most twice");
                }
                Verdict::Hold { slot } => {
                    let old = self.held.insert((at, slot), (port, frame));
                    assert!(old.is_none(), "slot {slot} of worker {at} given twice");
                    break;
                }
                v => {
                    self.out.push((v, frame));
                    break;
                }
            }
        }
        self.max_hops = self.max_hops.max(hops);
    }

    /// Acts on released hold slots until none is left (a re-run can release more).
    fn drain(&mut self, now: u64) {
        loop {
            let mut again = Vec::new();
            for w in 0..self.rig.workers.len() {
                for r in self.rig.released(w) {
                    match r {
                        Release::Run { slot } => {
                            let (port, f) = self.held.remove(&(w, slot)).expect("held");
                            again.push((w, port, f));
                        }
                        Release::Expired { slot } => {
                            self.held.remove(&(w, slot)).expect("held");
                            self.expired += 1;
                        }
                    }
                }
            }
            if again.is_empty() {
                return;
            }
            for (w, port, f) in again {
                self.send_port(w, port, f, now);
            }
        }
    }

    /// The frames sent with `Tx` on `port`; panics on any other verdict.
    fn sent(&mut self, port: u16) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.out)
            .into_iter()
            .map(|(v, f)| {
                assert_eq!(
                    v,
                    Verdict::Tx {
                        port,
                        offload: None
                    },
                    "verdict"
                );
                f
            })
            .collect()
    }
}

/// A payload long enough to need three fragments, different at every position.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i * 7 % 251).unwrap()).collect()
}

/// The orders fragments are sent in: in order, reversed (first last), and the first in
/// the middle.
fn orders(n: usize) -> Vec<Vec<usize>> {
    let mut mid: Vec<usize> = (1..n).collect();
    mid.insert(n / 2, 0);
    vec![(0..n).collect(), (0..n).rev().collect(), mid]
}

fn chunk(v6: bool) -> usize {
    if v6 {
        1448
    } else {
        1480
    }
}

/// Checks that each output fragment is its input with only the expected fields changed:
/// MACs, addresses, TTL − 1 (IPv4 header checksum valid), same id, offset and flags.
fn check_pieces(
    inputs: &[Vec<u8>],
    outputs: &[Vec<u8>],
    src: IpAddr,
    dst: IpAddr,
    dst_mac: pipelines::net::MacAddr,
    src_mac: pipelines::net::MacAddr,
    ttl_drop: u8,
) {
    assert_eq!(outputs.len(), inputs.len());
    let mut ins: Vec<Piece> = inputs.iter().map(|f| piece(f)).collect();
    let mut outs: Vec<Piece> = outputs.iter().map(|f| piece(f)).collect();
    ins.sort_by_key(|p| p.offset);
    outs.sort_by_key(|p| p.offset);
    for (i, o) in ins.iter().zip(&outs) {
        assert_eq!((o.src, o.dst), (src, dst), "addresses");
        assert_eq!((o.dst_mac, o.src_mac), (dst_mac, src_mac), "MACs");
        assert_eq!(o.ttl, i.ttl - ttl_drop, "TTL");
        assert_eq!((o.id, o.offset, o.more), (i.id, i.offset, i.more));
        if i.offset != 0 {
            assert_eq!(o.data, i.data, "later fragments carry their data unchanged");
        } else {
            assert_eq!(
                o.data[8..],
                i.data[8..],
                "the first changes only its UDP header"
            );
        }
    }
}

fn n_of(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    }
}

/// FullNAT and preserve-client, both families, both directions, every order.
#[test]
fn fragmented_datagrams_follow_their_first_fragment() {
    let cases = [
        (CLIENT4, VIP4, true),
        (CLIENT6, VIP6, true),
        (CLIENT4, PC4, false),
        (CLIENT6, PC6, false),
    ];
    for (client, vip, fullnat) in cases {
        let (client, vip) = (sa(client), sa(vip));
        let v6 = vip.is_ipv6();
        for (k, order) in orders(3).into_iter().enumerate() {
            let mut h = Harness::new(Rig::new(1));
            let data = payload(3000);
            let whole = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, &data);
            let id = 0x1000 + u32::try_from(k).unwrap();
            let frags = fragments(&whole, chunk(v6), id);
            assert_eq!(frags.len(), 3);
            for &i in &order {
                h.send(0, &frags[i], SEC);
            }
            let held = h.rig.workers[0].counters().fragments_held;
            assert_eq!(
                held,
                order.iter().position(|&i| i == 0).unwrap() as u64,
                "{order:?}"
            );
            let out = h.sent(1);
            let d = reassemble(&out);
            assert_eq!(d.payload, data);
            let backend = d.dst;
            let expected = if fullnat {
                if v6 {
                    vec![backend6(1), backend6(2)]
                } else {
                    vec![backend4(1), backend4(2)]
                }
            } else if v6 {
                vec![backend6(3)]
            } else {
                vec![backend4(3)]
            };
            assert!(expected.contains(&backend), "{backend}");
            let src = if fullnat {
                let snat = ip(if v6 { SNAT6 } else { SNAT4 });
                assert_eq!(d.src.ip(), snat);
                snat
            } else {
                assert_eq!(d.src, client);
                client.ip()
            };
            let bmac = testkit::backend_mac(n_of(backend.ip()));
            check_pieces(&frags, &out, src, backend.ip(), bmac, testkit::PORT1_MAC, 1);
            // The datagram's entry is gone once all its fragments passed.
            let c = h.rig.workers[0].counters();
            assert_eq!((c.fragment_entries, c.fragments_waiting), (0, 0));
            assert_eq!(c.fragments_forwarded, 3);
            assert_eq!(
                c.entities.listeners.iter().map(|t| t.packets).sum::<u64>(),
                1
            );

            // The same flow unfragmented: same backend (and SNAT port).
            let mut f = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"small");
            assert_eq!(tx_port(h.rig.run(&mut f, SEC)), 1);
            let small = decode_verified(&f).unwrap();
            assert_eq!((small.src, small.dst), (d.src, d.dst));

            // The backend's large reply, fragmented, in the same order.
            let reply_data = payload(3500);
            let reply = udp_frame(d.dst, d.src, 64, &[], testkit::PORT1_MAC, &reply_data);
            let rfrags = fragments(&reply, chunk(v6), id + 0x100);
            for &i in &order {
                h.send(0, &rfrags[i], 2 * SEC);
            }
            let out = h.sent(0);
            let r = reassemble(&out);
            assert_eq!((r.src, r.dst), (vip, client), "reply addresses");
            assert_eq!(r.payload, reply_data);
            check_pieces(
                &rfrags,
                &out,
                vip.ip(),
                client.ip(),
                testkit::ROUTER_MAC,
                testkit::PORT0_MAC,
                1,
            );
        }
    }
}

/// A preserve-client reply without a flow on the worker (translated from the tables),
/// fragmented.
#[test]
fn stateless_preserve_client_replies_fragmented() {
    for (client, vip, backend) in [(CLIENT4, PC4, backend4(3)), (CLIENT6, PC6, backend6(3))] {
        let (client, vip) = (sa(client), sa(vip));
        let mut h = Harness::new(Rig::new(1));
        let data = payload(4000);
        let reply = udp_frame(backend, client, 64, &[], testkit::PORT1_MAC, &data);
        let frags = fragments(&reply, chunk(vip.is_ipv6()), 77);
        for i in [2, 0, 1] {
            h.send(0, &frags[i], SEC);
        }
        let out = h.sent(0);
        let r = reassemble(&out);
        assert_eq!((r.src, r.dst, r.payload), (vip, client, data));
        assert_eq!(h.rig.workers[0].counters().stateless_replies, 1);
    }
}

/// DSR: every fragment goes to the same backend with only its MACs changed.
#[test]
fn dsr_fragments_change_only_their_macs() {
    for (client, vip) in [(CLIENT4, DSR4), (CLIENT6, DSR6)] {
        let (client, vip) = (sa(client), sa(vip));
        for order in orders(3) {
            let mut h = Harness::new(Rig::new(1));
            let whole = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, &payload(3000));
            let frags = fragments(&whole, chunk(vip.is_ipv6()), 9);
            for &i in &order {
                h.send(0, &frags[i], SEC);
            }
            let mut out = h.sent(1);
            let mut ins = frags.clone();
            let off = |f: &Vec<u8>| piece(f).offset;
            out.sort_by_key(off);
            ins.sort_by_key(off);
            let mac = out[0][..6].to_vec();
            assert!([1, 2]
                .map(testkit::backend_mac)
                .iter()
                .any(|m| m.0[..] == mac[..]));
            for (o, i) in out.iter().zip(&ins) {
                assert_eq!(&o[..6], &mac[..], "one backend");
                assert_eq!(&o[6..12], &testkit::PORT1_MAC.0);
                assert_eq!(&o[12..], &i[12..], "nothing else changes");
            }
        }
    }
}

/// Two workers: fragments land anywhere; each reaches its owner, and a FullNAT reply
/// whose SNAT port belongs to the other worker is handed on from the owner (at most two
/// moves per fragment).
#[test]
fn two_workers_hand_fragments_to_the_owner_and_the_flow() {
    for v6 in [false, true] {
        let (client, vip) = if v6 {
            (sa(CLIENT6), sa(VIP6))
        } else {
            (sa(CLIENT4), sa(VIP4))
        };
        let mut h = Harness::new(Rig::new(2));
        // The flow lives on worker 1 (its SNAT port is from worker 1's partition).
        let mut f = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, b"q");
        let (at, v, _) = h.rig.deliver(1, &mut f, SEC);
        assert_eq!((at, tx_port(v)), (1, 1));
        let d = decode_verified(&f).unwrap();
        // A large reply whose fragments' owner is worker 0.
        let id = (1..)
            .find(|&id| fragment_owner(d.dst.ip(), d.src.ip(), id, 2) == 0)
            .unwrap();
        let data = payload(3500);
        let reply = udp_frame(d.dst, d.src, 64, &[], testkit::PORT1_MAC, &data);
        let frags = fragments(&reply, chunk(v6), id);
        // Later fragments land on worker 1 first, the first fragment on worker 1 too.
        for (i, w) in [(2, 1), (1, 0), (0, 1)] {
            h.send(w, &frags[i], 2 * SEC);
        }
        let out = h.sent(0);
        let r = reassemble(&out);
        assert_eq!((r.src, r.dst, r.payload), (vip, client, data));
        assert_eq!(h.max_hops, 2);
        for w in 0..2 {
            let c = h.rig.workers[w].counters();
            assert_eq!(
                (c.fragment_entries, c.fragments_waiting),
                (0, 0),
                "worker {w}"
            );
        }
        // A forward datagram landing on the non-owner is handed to the owner, which
        // creates the flow there.
        let data = payload(3000);
        let whole = udp_frame(client, vip, 64, &[], testkit::PORT0_MAC, &data);
        let id = (1..)
            .find(|&id| fragment_owner(client.ip(), vip.ip(), id, 2) == 1)
            .unwrap();
        for f in fragments(&whole, chunk(v6), id) {
            h.send(0, &f, 3 * SEC);
        }
        let out = h.sent(1);
        let fwd = reassemble(&out);
        assert_eq!(fwd.payload, data);
        assert_eq!(h.rig.workers[1].counters().fragments_forwarded, 3 + 3);
    }
}

#[test]
fn held_fragments_time_out() {
    let mut h = Harness::new(Rig::new(1));
    let whole = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    let frags = fragments(&whole, 1480, 5);
    h.send(0, &frags[1], SEC);
    h.send(0, &frags[2], SEC);
    assert_eq!(h.held.len(), 2);
    assert_eq!(h.rig.workers[0].counters().fragments_waiting, 2);
    // Not yet: 3 s after the first held fragment. (Each maintain call examines a bounded
    // part of the table: a few calls cover it.)
    for _ in 0..4 {
        h.rig.workers[0].maintain(3 * SEC);
    }
    h.drain(3 * SEC);
    assert_eq!(h.expired, 0);
    for _ in 0..4 {
        h.rig.workers[0].maintain(4 * SEC + 1);
    }
    h.drain(4 * SEC + 1);
    assert_eq!(h.expired, 2);
    assert!(h.held.is_empty());
    let c = h.rig.workers[0].counters();
    assert_eq!(c.drop_count(DropReason::FragmentTimeout), 2);
    assert_eq!((c.fragment_entries, c.fragments_waiting), (0, 0));
    // The first fragment, late: a new datagram for the table, forwarded alone.
    h.send(0, &frags[0], 5 * SEC);
    assert_eq!(h.sent(1).len(), 1);
}

/// A datagram whose first fragment is dropped takes its later fragments with it, with
/// the same reason; a host verdict (own address) likewise.
#[test]
fn later_fragments_share_their_first_fragments_fate() {
    let mut h = Harness::new(Rig::new(1));
    // No listener on port 99 of the VIP.
    let whole = udp_frame(
        sa(CLIENT4),
        sa("198.18.2.1:99"),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    let frags = fragments(&whole, 1480, 6);
    for i in [1, 0, 2] {
        h.send(0, &frags[i], SEC);
    }
    let verdicts: Vec<Verdict> = h.out.drain(..).map(|(v, _)| v).collect();
    assert_eq!(verdicts, [Verdict::Drop(DropReason::NoListener); 3]);
    // To the appliance's own address: all to the host.
    let whole = udp_frame(
        sa(CLIENT4),
        sa("198.18.0.254:5000"),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    for f in fragments(&whole, 1480, 7) {
        h.send(0, &f, SEC);
    }
    let verdicts: Vec<Verdict> = h.out.drain(..).map(|(v, _)| v).collect();
    assert_eq!(verdicts, [Verdict::ToHost(HostReason::OwnAddress); 3]);
    // TTL 1: time exceeded about the first fragment only; the others are dropped.
    let whole = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        1,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    for f in fragments(&whole, 1480, 8) {
        h.send(0, &f, SEC);
    }
    let verdicts: Vec<Verdict> = h.out.drain(..).map(|(v, _)| v).collect();
    assert_eq!(
        verdicts,
        [
            Verdict::ToHost(HostReason::TimeExceeded),
            Verdict::Drop(DropReason::TtlExpired),
            Verdict::Drop(DropReason::TtlExpired)
        ]
    );
}

/// Hold limits: at most the per-datagram number, at most the worker's slots.
#[test]
fn holds_are_bounded() {
    let rig = Rig::with(testkit::config(), testkit::network(false), 1, |p| {
        p.fragment_holds = 3;
        p.fragment_holds_per_datagram = 2;
    });
    let mut h = Harness::new(rig);
    let whole = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(4000),
    );
    let frags = fragments(&whole, 1000, 11);
    assert_eq!(frags.len(), 5);
    for f in &frags[1..4] {
        h.send(0, f, SEC);
    }
    assert_eq!(h.held.len(), 2);
    assert_eq!(
        h.out.pop().map(|(v, _)| v),
        Some(Verdict::Drop(DropReason::FragmentHoldFull))
    );
    let other = udp_frame(
        sa("198.19.0.8:1"),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(4000),
    );
    let others = fragments(&other, 1000, 12);
    h.send(0, &others[1], SEC);
    h.send(0, &others[2], SEC);
    assert_eq!(h.held.len(), 3, "one slot was left");
    assert_eq!(
        h.out.pop().map(|(v, _)| v),
        Some(Verdict::Drop(DropReason::FragmentHoldFull))
    );
    // The first fragment releases the two held; the datagram misses the dropped one.
    h.send(0, &frags[0], SEC);
    h.send(0, &frags[4], SEC);
    assert_eq!(h.sent(1).len(), 4);
    assert_eq!(
        h.rig.workers[0].counters().fragment_entries,
        2,
        "incomplete: kept until timeout"
    );
}

/// Clears the DF bit of an IPv4 frame (no VLAN tags), fixing its header checksum.
fn without_df(mut f: Vec<u8>) -> Vec<u8> {
    f[20] &= !0x40;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = internet_checksum(0, &f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f
}

fn network_with_mtu(port: usize, mtu: u16) -> Network {
    let net = testkit::network(false);
    let mut ports = net.ports().to_vec();
    ports[port].mtu = mtu;
    let routes = vec![
        pipelines::net::StaticRoute {
            prefix: "198.19.0.0/16".parse().unwrap(),
            next_hop: ip(ROUTER4),
            port: 0,
        },
        pipelines::net::StaticRoute {
            prefix: "2001:2:0:9::/64".parse().unwrap(),
            next_hop: ip(ROUTER6),
            port: 0,
        },
    ];
    Network::new(ports, routes, *net.snat()).unwrap()
}

/// Larger than the out port's MTU: IPv4 without DF is rewritten for the appliance to
/// split; IPv4 with DF and IPv6 go to the host for Frag Needed / Packet Too Big.
#[test]
fn datagrams_larger_than_the_mtu() {
    let mut rig = Rig::with(testkit::config(), network_with_mtu(1, 1000), 1, |_| {});
    let data = payload(1400);
    let mut f = without_df(udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &data,
    ));
    assert_eq!(
        rig.run(&mut f, SEC),
        Verdict::Fragment { port: 1, mtu: 1000 }
    );
    let mut pieces = Vec::new();
    let n = split_ipv4(&f, 14, 1000, |h, d| {
        let mut v = h.to_vec();
        v.extend_from_slice(d);
        pieces.push(v);
    })
    .unwrap();
    assert_eq!(n, 2);
    assert!(pieces.iter().all(|p| p.len() - 14 <= 1000));
    let d = reassemble(&pieces);
    assert_eq!(d.payload, data);
    assert_eq!(d.src.ip(), ip(SNAT4));
    // With DF (etherparse's builder sets it): untouched, to the host with the MTU.
    let mut f = udp_frame(sa(CLIENT4), sa(VIP4), 64, &[], testkit::PORT0_MAC, &data);
    assert_ne!(f[20] & 0x40, 0);
    let before = f.clone();
    assert_eq!(
        rig.run(&mut f, SEC),
        Verdict::ToHost(HostReason::TooBig { mtu: 1000 })
    );
    assert_eq!(f, before);
    // IPv6 is never fragmented on the way.
    let mut f = udp_frame(sa(CLIENT6), sa(VIP6), 64, &[], testkit::PORT0_MAC, &data);
    assert_eq!(
        rig.run(&mut f, SEC),
        Verdict::ToHost(HostReason::TooBig { mtu: 1000 })
    );
    // A reply too big for the clients' port, and a DSR frame too big for the backends'.
    let mut rig = Rig::with(testkit::config(), network_with_mtu(0, 1000), 1, |_| {});
    let mut q = udp_frame(sa(CLIENT6), sa(VIP6), 64, &[], testkit::PORT0_MAC, b"q");
    tx_port(rig.run(&mut q, SEC));
    let d = decode_verified(&q).unwrap();
    let mut r = udp_frame(d.dst, d.src, 64, &[], testkit::PORT1_MAC, &data);
    assert_eq!(
        rig.run(&mut r, SEC),
        Verdict::ToHost(HostReason::TooBig { mtu: 1000 })
    );
    let mut rig = Rig::with(testkit::config(), network_with_mtu(1, 1000), 1, |_| {});
    let mut f = without_df(udp_frame(
        sa(CLIENT4),
        sa(DSR4),
        64,
        &[],
        testkit::PORT0_MAC,
        &data,
    ));
    let original = f.clone();
    assert_eq!(
        rig.run(&mut f, SEC),
        Verdict::Fragment { port: 1, mtu: 1000 }
    );
    assert_eq!(&f[12..], &original[12..], "DSR: MACs only, then split");
    // Fragments larger than the MTU are split again, first and later alike.
    let mut h = Harness::new(Rig::with(
        testkit::config(),
        network_with_mtu(1, 1000),
        1,
        |_| {},
    ));
    let whole = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    let frags = fragments(&whole, 1480, 21);
    for f in &frags {
        h.send(0, f, SEC);
    }
    let mut pieces = Vec::new();
    let mut split = 0;
    for (v, f) in std::mem::take(&mut h.out) {
        if v == (Verdict::Tx {
            port: 1,
            offload: None,
        }) {
            // The last fragment (48 bytes of data) fits.
            pieces.push(f);
            continue;
        }
        assert_eq!(v, Verdict::Fragment { port: 1, mtu: 1000 });
        split += 1;
        split_ipv4(&f, 14, 1000, |hd, d| {
            let mut p = hd.to_vec();
            p.extend_from_slice(d);
            pieces.push(p);
        })
        .unwrap();
    }
    assert_eq!((split, pieces.len()), (2, 5));
    let d = reassemble(&pieces);
    assert_eq!(d.payload, payload(3000));
}

/// The UDP checksum of a first fragment is updated in software even on a port with UDP
/// checksum offload (a NIC would sum only the fragment).
#[test]
fn first_fragments_never_ask_for_udp_checksum_offload() {
    let mut h = Harness::new(Rig::with(
        testkit::config(),
        testkit::network(true),
        1,
        |_| {},
    ));
    let whole = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    for f in fragments(&whole, 1480, 31) {
        h.send(0, &f, SEC);
    }
    let mut out = Vec::new();
    for (v, f) in std::mem::take(&mut h.out) {
        match v {
            Verdict::Tx { port: 1, offload } => {
                assert!(offload.is_none_or(|o| !o.udp_checksum), "{offload:?}");
                // The IPv4 checksum may be left to the NIC: fill it in for the check.
                let mut f = f;
                if offload.is_some_and(|o| o.ipv4_checksum) {
                    let c = internet_checksum(0, &f[14..34]);
                    f[24..26].copy_from_slice(&c.to_be_bytes());
                }
                out.push(f);
            }
            v => panic!("{v:?}"),
        }
    }
    assert_eq!(reassemble(&out).payload, payload(3000));
}

/// Fragments of other protocols and malformed fragments are counted as `fragment`.
#[test]
fn malformed_and_foreign_fragments() {
    let mut rig = Rig::new(1);
    let whole = udp_frame(
        sa(CLIENT4),
        sa(VIP4),
        64,
        &[],
        testkit::PORT0_MAC,
        &payload(3000),
    );
    let mut frags = fragments(&whole, 1480, 41);
    // Another protocol.
    let f = &mut frags[1];
    f[23] = 6;
    f[24..26].copy_from_slice(&[0, 0]);
    let c = internet_checksum(0, &f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    assert_eq!(rig.run(f, SEC), Verdict::Drop(DropReason::Fragment));
    // A first fragment whose UDP ports are zero.
    let f = &mut frags[0];
    f[34..36].copy_from_slice(&[0, 0]);
    assert_eq!(rig.run(f, SEC), Verdict::Drop(DropReason::MalformedUdp));
    let c = rig.workers[0].counters();
    assert_eq!(c.fragment_entries, 0, "nothing is tracked for them");
}

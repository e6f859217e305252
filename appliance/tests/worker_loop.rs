//! The real worker loop (`appliance::worker::Worker`) on in-memory ports (`MemoryIo`):
//! runs as any user under `cargo test`, no EAL. Each test steps the loop round by round
//! with a clock it moves by hand (`Worker::poll`), so holds and expiry are deterministic;
//! one runs the loop on its own thread (`WorkerSetup::spawn`) as production does. After
//! every test, every buffer the worker took must be back (`MemoryPool::in_use`), as the
//! DPDK tests check their mempool.
//!
//! Scenario (`support::scenario`): `pipelines::testkit`'s two ports (0 faces clients
//! behind router 198.18.0.1, 1 faces backends 198.18.1.0/24, SNAT 198.18.1.253), VIP
//! 198.18.2.1 with `dns` :53 full NAT → backend 1, `game` :54 preserve-client → backend
//! 3, `far` :56 full NAT → backend 4 (unresolved until a test publishes its MAC).
#![allow(clippy::tests_outside_test_module)]

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance::slowpath::{IcmpError, SlowPathCounters, SlowPathMsg};
use appliance::worker::{
    Handoff, MemoryBuf, MemoryIo, MemoryPool, ReportSlot, Wire, Worker, WorkerReport, WorkerSetup,
    BURST, HOLD_CAPACITY, HOLD_TIME, MAINTAIN_INTERVAL,
};
use crossbeam_channel::{Receiver, Sender};
use pipelines::health::Health;
use pipelines::neighbor::Neighbors;
use pipelines::net::MacAddr;
use pipelines::tables::Tables;
use pipelines::testkit::{self, udp_frame};
use pipelines::{DropReason, HostReason, OffloadRequest};
use support::scenario::{self, *};
use support::{listener, service, SNAT_PORTS};

/// How a rig is built.
#[derive(Clone, Copy)]
struct Options {
    /// Frames each port queue holds (both directions).
    depth: usize,
    /// Messages the slow-path channel holds.
    slow_path_depth: usize,
    /// Port 1 offers checksum offload.
    offload: bool,
    /// This worker is `id` of `workers` (its SNAT partition).
    id: u16,
    workers: u16,
    /// Port 1's MTU (the backends' side).
    port1_mtu: u16,
    /// Most frames per receive (`workers.burst`), when not the default.
    burst: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            depth: 64,
            slow_path_depth: 64,
            offload: false,
            id: 0,
            workers: 1,
            port1_mtu: pipelines::net::DEFAULT_MTU,
            burst: None,
        }
    }
}

/// A worker on in-memory ports, stepped by hand, and the test's end of every channel.
struct Rig {
    pool: MemoryPool,
    /// `wires[p]` sends to and receives from the worker's port `p`.
    wires: Vec<Wire>,
    worker: Option<Worker<MemoryIo>>,
    report: ReportSlot,
    slowpath: Receiver<SlowPathMsg<MemoryBuf>>,
    slowpath_counters: Arc<SlowPathCounters>,
    neighbors: Sender<Arc<Neighbors>>,
    tables: Sender<Arc<Tables>>,
    health: Sender<Arc<Health>>,
    inject: Sender<(u16, MemoryBuf)>,
    /// The worker's epoch; `now` is the time since.
    epoch: Instant,
    now: Duration,
    heartbeat: Arc<appliance::worker::Heartbeat>,
}

impl Rig {
    fn new() -> Rig {
        Rig::with(Options::default(), None)
    }

    fn with(o: Options, handoff: Option<Handoff<MemoryBuf>>) -> Rig {
        let pool = MemoryPool::new();
        let (io, wires) = MemoryIo::new(2, o.depth, &pool);
        let (sp_tx, slowpath) = crossbeam_channel::bounded(o.slow_path_depth);
        let (tables, tables_rx) = crossbeam_channel::unbounded();
        let (neighbors, neighbors_rx) = crossbeam_channel::unbounded();
        let (health, health_rx) = crossbeam_channel::unbounded();
        let (inject, inject_rx) = crossbeam_channel::bounded(BURST);
        let slowpath_counters = Arc::new(SlowPathCounters::default());
        let epoch = Instant::now();
        let mut builder = WorkerSetup::builder(
            support::fast_path(o.id, o.workers, 1024),
            io,
            Arc::new(scenario::network(o.offload, o.port1_mtu)),
            support::scenario::tables(),
        )
        .table_updates(tables_rx)
        .neighbors(Arc::new(Neighbors::new(static_neighbors())))
        .neighbor_updates(neighbors_rx)
        .health_updates(health_rx)
        .slow_path(sp_tx, Arc::clone(&slowpath_counters))
        .inject(inject_rx)
        .epoch(epoch);
        if let Some(h) = handoff {
            builder = builder.handoff(h);
        }
        if let Some(b) = o.burst {
            builder = builder.burst(b);
        }
        let setup = builder.build();
        let report = Arc::clone(setup.report());
        let heartbeat = Arc::clone(setup.heartbeat());
        Rig {
            pool,
            wires,
            worker: Some(setup.into_worker()),
            report,
            slowpath,
            slowpath_counters,
            neighbors,
            tables,
            health,
            inject,
            epoch,
            now: Duration::ZERO,
            heartbeat,
        }
    }

    /// One round of the loop at the current time; returns what it received.
    fn poll(&mut self) -> usize {
        let at = self.epoch + self.now;
        self.worker.as_mut().expect("running").poll(at)
    }

    /// Moves the clock by `d`, then runs a round.
    fn advance(&mut self, d: Duration) -> usize {
        self.now += d;
        self.poll()
    }

    /// The one frame port `port` transmitted (the worker runs a round first).
    fn receive_buf(&mut self, port: usize) -> MemoryBuf {
        self.poll();
        let mut out = self.wires[port].drain();
        assert_eq!(out.len(), 1, "exactly one frame expected on port {port}");
        out.pop().expect("one frame")
    }

    /// Stops the worker: checks nothing else came out and every buffer is back; returns
    /// its final report.
    fn finish(mut self) -> WorkerReport {
        self.worker.take().expect("running").finish();
        for (p, wire) in self.wires.iter().enumerate() {
            let extra = wire.drain();
            assert!(extra.is_empty(), "unexpected frames on port {p}: {extra:?}");
        }
        let extra: Vec<_> = self.slowpath.try_iter().collect();
        assert!(extra.is_empty(), "unexpected slow-path messages: {extra:?}");
        assert_eq!(self.pool.in_use(), 0, "every buffer returned");
        std::mem::take(&mut *self.report.lock().expect("report"))
    }
}

impl Harness for Rig {
    type Buf = MemoryBuf;

    fn send(&mut self, port: usize, frame: &[u8]) {
        assert!(
            self.wires[port].send(frame),
            "port {port}'s RX queue is full"
        );
    }

    fn receive(&mut self, port: usize) -> Vec<u8> {
        self.receive_buf(port).data().to_vec()
    }

    fn receive_n(&mut self, port: usize, n: usize) -> Vec<Vec<u8>> {
        self.poll();
        let out = bytes(&self.wires[port].drain());
        assert_eq!(out.len(), n, "frames on port {port}");
        out
    }

    fn slow_path_msg(&mut self) -> SlowPathMsg<MemoryBuf> {
        self.poll();
        let mut msgs: Vec<_> = self.slowpath.try_iter().collect();
        assert_eq!(
            msgs.len(),
            1,
            "exactly one slow-path message expected: {msgs:?}"
        );
        msgs.pop().expect("one message")
    }

    fn publish(&mut self, neighbors: Vec<(IpAddr, MacAddr)>) {
        self.neighbors
            .send(Arc::new(Neighbors::new(neighbors)))
            .expect("the worker listens for neighbors");
    }

    fn settle(&mut self, received: u64) {
        assert_eq!(
            u64::try_from(self.poll()).unwrap(),
            received,
            "one round takes them all"
        );
    }
}

#[test]
fn full_nat_forward_and_reverse_through_the_worker_loop() {
    let mut rig = Rig::new();
    scenario::full_nat_exchange(&mut rig);
    let r = rig.finish();
    scenario::full_nat_report(&r);
    assert_eq!(r.drops, Default::default(), "no loop drop either");
}

#[test]
fn preserve_client_forward_and_reverse_through_the_worker_loop() {
    let mut rig = Rig::new();
    scenario::preserve_client_exchange(&mut rig);
    scenario::preserve_client_report(&rig.finish());
}

#[test]
fn slow_path_gets_arp_and_resolves_held_datagrams() {
    let mut rig = Rig::new();
    scenario::slow_path_exchange(&mut rig);
    scenario::slow_path_report(&rig.finish());
}

#[test]
fn drops_are_counted_by_reason_and_freed() {
    let mut rig = Rig::new();
    scenario::drops_exchange(&mut rig);
    scenario::drops_report(&rig.finish());
}

#[test]
fn frames_for_another_station_are_dropped_as_not_for_us() {
    let mut rig = Rig::new();
    // A promiscuous port (pcap, AF_PACKET, a bridge flooding) delivers it.
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x77]);
    let vip = SocketAddr::from((VIP, 53));
    rig.send(0, &udp_frame(sa(CLIENT), vip, 64, &[], other, b"w"));
    rig.settle(1);
    let r = rig.finish();
    assert_eq!(r.counters.drop_count(DropReason::NotForUs), 1);
    assert_eq!(r.counters.drops_total(), 1);
}

#[test]
fn a_round_takes_at_most_the_configured_burst_from_a_port() {
    let mut rig = Rig::with(
        Options {
            burst: Some(3),
            ..Options::default()
        },
        None,
    );
    let other = MacAddr([0x02, 0, 0, 0, 0, 0x77]);
    let vip = SocketAddr::from((VIP, 53));
    for _ in 0..7 {
        rig.send(0, &udp_frame(sa(CLIENT), vip, 64, &[], other, b"b"));
    }
    let rounds: Vec<usize> = (0..4).map(|_| rig.poll()).collect();
    assert_eq!(rounds, [3, 3, 1, 0], "workers.burst: 3 frames per receive");
    let r = rig.finish();
    assert_eq!(r.counters.drop_count(DropReason::NotForUs), 7);
}

#[test]
fn a_datagram_held_again_keeps_its_first_deadline() {
    let mut rig = Rig::new();
    rig.send(0, &to_vip(56, b"far"));
    rig.poll();
    assert!(matches!(rig.slow_path_msg(), SlowPathMsg::Resolve { .. }));

    // Two seconds later the slow path publishes neighbors that still lack backend 4
    // (it learned someone else): the datagram runs again and is held again.
    let mut unrelated = static_neighbors();
    unrelated.push((IpAddr::from([198, 18, 1, 9]), testkit::backend_mac(9)));
    rig.publish(unrelated);
    rig.advance(Duration::from_secs(2));
    assert!(
        matches!(rig.slow_path_msg(), SlowPathMsg::Resolve { .. }),
        "asked again"
    );
    assert!(rig.wires[1].drain().is_empty(), "still held");

    // Just before its first deadline it is still there; just after, it is gone, although
    // its second hold is only a second old.
    rig.advance(HOLD_TIME - Duration::from_secs(2));
    rig.advance(Duration::from_millis(2));
    rig.publish(with_far_backend());
    rig.advance(Duration::from_millis(10));
    assert!(
        rig.wires[1].drain().is_empty(),
        "expired at its first deadline: never sent"
    );

    let r = rig.finish();
    assert_eq!(r.events.held, 2, "held twice");
    assert_eq!(r.drops.hold_expired, 1, "then dropped as unresolved");
    assert_eq!(r.counters.tx_packets, 0);
}

#[test]
fn a_datagram_held_again_expires_when_released_after_its_first_deadline() {
    let mut rig = Rig::new();
    rig.send(0, &to_vip(56, b"far"));
    rig.poll();
    let mut unrelated = static_neighbors();
    unrelated.push((IpAddr::from([198, 18, 1, 9]), testkit::backend_mac(9)));
    rig.publish(unrelated);
    rig.advance(Duration::from_secs(2));
    // The answer arrives after the first deadline, in the same round that would expire
    // it: the release finds it late and drops it.
    rig.publish(with_far_backend());
    rig.advance(HOLD_TIME);
    assert!(rig.wires[1].drain().is_empty(), "late: not sent");
    let msgs: Vec<_> = rig.slowpath.try_iter().collect();
    assert_eq!(msgs.len(), 2, "two resolve requests: {msgs:?}");
    let r = rig.finish();
    assert_eq!((r.events.held, r.drops.hold_expired), (2, 1));
}

#[test]
fn held_datagrams_keep_their_input_port_and_order() {
    let mut rig = Rig::new();
    // Datagrams to `far` arriving on port 0 (addressed to its MAC) and on port 1
    // (addressed to port 1's MAC): each is only "for us" on its own port, so a release
    // that lost the port would drop it as not_for_us.
    let vip = SocketAddr::from((VIP, 56));
    let on = |port: u16, payload: &[u8]| {
        let mac = if port == 0 {
            testkit::PORT0_MAC
        } else {
            testkit::PORT1_MAC
        };
        udp_frame(sa(CLIENT), vip, 64, &[], mac, payload)
    };
    rig.send(0, &on(0, b"a"));
    rig.poll();
    rig.send(1, &on(1, b"b"));
    rig.poll();
    rig.send(0, &on(0, b"c"));
    rig.poll();
    assert_eq!(rig.slowpath.try_iter().count(), 3, "three resolve requests");
    rig.publish(with_far_backend());
    rig.advance(Duration::from_millis(5));
    let out: Vec<Vec<u8>> = rig.wires[1]
        .drain()
        .iter()
        .map(|b| decoded(b.data()).payload)
        .collect();
    assert_eq!(out, [b"a", b"b", b"c"], "every one sent, in order");
    let r = rig.finish();
    assert_eq!(r.counters.drop_count(DropReason::NotForUs), 0);
    assert_eq!(r.counters.tx_packets, 3);
    assert_eq!(r.events.held, 3);
}

/// A rig whose slow path takes `n` resolve requests, holding `n` datagrams to `far` (each
/// asks for backend 4), sent a queue's worth at a time.
fn holding(n: usize) -> Rig {
    let mut rig = Rig::with(
        Options {
            slow_path_depth: n,
            ..Options::default()
        },
        None,
    );
    for i in 0..n {
        rig.send(0, &to_vip(56, &i.to_be_bytes()));
        if (i + 1) % 32 == 0 {
            rig.poll();
        }
    }
    rig.poll();
    assert_eq!(
        rig.slowpath.try_iter().count(),
        n,
        "a resolve request for every one"
    );
    rig
}

#[test]
fn a_snapshot_releases_at_most_a_burst_of_held_datagrams() {
    let extra = 8;
    let mut rig = holding(BURST + extra);
    rig.publish(with_far_backend());
    rig.advance(Duration::from_millis(5));
    assert_eq!(rig.wires[1].drain().len(), BURST, "one burst per snapshot");
    rig.publish(with_far_backend());
    rig.advance(Duration::from_millis(5));
    assert_eq!(
        rig.wires[1].drain().len(),
        extra,
        "the rest with the next one"
    );
    let r = rig.finish();
    assert_eq!(r.events.held, u64::try_from(BURST + extra).unwrap());
    assert_eq!(r.drops.hold_expired, 0);
}

#[test]
fn a_full_hold_queue_drops_and_counts() {
    let n = HOLD_CAPACITY + 3;
    let mut rig = holding(n);
    // Beyond the hold time, everything held expires.
    rig.advance(HOLD_TIME + Duration::from_millis(2));
    let r = rig.finish();
    assert_eq!(r.events.held, u64::try_from(HOLD_CAPACITY).unwrap());
    assert_eq!(
        r.drops.hold_expired,
        u64::try_from(n).unwrap(),
        "3 refused at once, the rest expired"
    );
}

#[test]
fn a_full_tx_queue_refuses_and_the_refused_are_counted() {
    let mut rig = Rig::with(
        Options {
            depth: 4,
            ..Options::default()
        },
        None,
    );
    for round in 0..2u8 {
        for i in 0..4u8 {
            rig.send(0, &to_vip(53, &[round, i]));
        }
        rig.poll();
    }
    // Port 1's queue took the first round; the second found it full.
    let sent = rig.wires[1].drain();
    assert_eq!(sent.len(), 4);
    assert_eq!(decoded(sent[0].data()).payload, [0, 0]);
    drop(sent);
    let r = rig.finish();
    assert_eq!(r.counters.tx_packets, 8, "the fast path sent eight");
    assert_eq!(r.drops.tx_refused, 4, "the queue refused four");
}

#[test]
fn slow_path_overflow_is_dropped_and_counted_on_both_sides() {
    let mut rig = Rig::with(
        Options {
            slow_path_depth: 1,
            ..Options::default()
        },
        None,
    );
    rig.send(0, &arp_request_for_vip());
    rig.send(0, &arp_request_for_vip());
    rig.poll();
    assert!(matches!(rig.slow_path_msg(), SlowPathMsg::Frame { .. }));
    let channel_overflow = rig.slowpath_counters.snapshot().channel_overflow;
    let r = rig.finish();
    assert_eq!(r.counters.host_count(HostReason::Arp), 2);
    assert_eq!(r.drops.host_overflow, 1);
    assert_eq!(channel_overflow, 1, "the slow path's counter agrees");
}

#[test]
fn slow_path_frames_are_transmitted_on_their_port() {
    let mut rig = Rig::new();
    let reply = vec![0xa5; 60];
    for port in [1, 0, 7] {
        rig.inject
            .send((port, rig.pool.buf(&reply)))
            .expect("inject");
    }
    rig.poll();
    assert_eq!(rig.receive(1), reply);
    assert_eq!(rig.receive(0), reply);
    let r = rig.finish();
    assert_eq!(r.drops.tx_refused, 1, "port 7 does not exist");
}

#[test]
fn checksum_offload_is_requested_on_a_port_that_offers_it() {
    let mut rig = Rig::with(
        Options {
            offload: true,
            ..Options::default()
        },
        None,
    );
    rig.send(0, &to_vip(53, b"query"));
    rig.poll();
    let out = rig.receive_buf(1);
    assert_eq!(
        out.offload(),
        Some(OffloadRequest {
            l2_len: 14,
            l3_len: 20,
            ipv6: false,
            ipv4_checksum: true,
            udp_checksum: true,
        }),
        "port 1 finishes the IPv4 and UDP checksums"
    );
    drop(out);
    let r = rig.finish();
    assert_eq!(r.counters.tx_packets, 1);
}

#[test]
fn a_health_snapshot_is_adopted_between_bursts_and_moves_pinned_flows() {
    let mut rig = Rig::new();
    const TWO: &[support::Listener] = &[listener(
        "dns",
        53,
        &[service("dns", &["198.18.1.1", "198.18.1.2"], 5353)],
    )];
    rig.tables
        .send(support::tables("198.18.2.1", TWO))
        .expect("worker listens for tables");
    rig.send(0, &to_vip(53, b"before"));
    let first = decoded(&rig.receive(1)).dst;
    let other = if first == backend(1) {
        backend(2)
    } else {
        backend(1)
    };
    // The flow's backend is excluded: its next datagram moves to the other one.
    rig.health
        .send(Arc::new(Health::new([first])))
        .expect("worker listens for health");
    rig.send(0, &to_vip(53, b"after"));
    assert_eq!(decoded(&rig.receive(1)).dst, other);
    // Healthy again: the moved flow stays where it is.
    rig.health
        .send(Arc::new(Health::new([])))
        .expect("worker listens for health");
    rig.send(0, &to_vip(53, b"again"));
    assert_eq!(decoded(&rig.receive(1)).dst, other);
    rig.advance(REPORT_INTERVAL_PAST);
    let r = rig.finish();
    assert_eq!(r.counters.flows_repinned_unhealthy, 1);
}

#[test]
fn new_tables_are_adopted_between_bursts() {
    let mut rig = Rig::new();
    rig.send(0, &to_vip(53, b"before"));
    rig.poll();
    assert_eq!(decoded(&rig.receive(1)).dst, backend(1));
    let first = rig.report_generation();

    // `dns` now goes to backend 2: new flows follow, the pinned flow's backend left the
    // route so it is re-pinned.
    const MOVED: &[support::Listener] = &[listener(
        "dns",
        53,
        &[service("dns", &["198.18.1.2"], 5353)],
    )];
    let moved = support::tables("198.18.2.1", MOVED);
    let generation = moved.generation();
    rig.tables.send(moved).expect("worker listens for tables");
    rig.send(0, &to_vip(53, b"after"));
    rig.advance(REPORT_INTERVAL_PAST);
    assert_eq!(decoded(&rig.receive(1)).dst, backend(2));
    let r = rig.finish();
    assert_eq!(r.generation, generation, "runs the new tables");
    assert_ne!(first, generation);
    assert_eq!(
        r.retired.iter().map(|e| e.generation).collect::<Vec<_>>(),
        [first],
        "the old generation's entity counters are retired"
    );
    assert_eq!(r.counters.flows_repinned, 1);
}

#[test]
fn every_round_stamps_the_heartbeat_with_its_time_and_tables() {
    let mut rig = Rig::new();
    let hb = Arc::clone(&rig.heartbeat);
    let first = hb.generation();
    assert_ne!(
        first, 0,
        "the starting tables are known before the first round"
    );
    assert_eq!(
        hb.age(rig.epoch + Duration::from_secs(1)),
        None,
        "no round yet"
    );
    rig.advance(Duration::from_millis(10));
    assert_eq!(
        hb.age(rig.epoch + Duration::from_millis(510)),
        Some(Duration::from_millis(500))
    );
    // An idle round stamps too: the heartbeat says "polling", not "busy".
    rig.advance(Duration::from_millis(700));
    assert_eq!(
        hb.age(rig.epoch + Duration::from_millis(710)),
        Some(Duration::ZERO)
    );
    const MOVED: &[support::Listener] = &[listener(
        "dns",
        53,
        &[service("dns", &["198.18.1.2"], 5353)],
    )];
    let moved = support::tables("198.18.2.1", MOVED);
    let generation = moved.generation();
    rig.tables.send(moved).expect("worker listens for tables");
    assert_eq!(hb.generation(), first, "adopted only at the next round");
    rig.advance(Duration::from_millis(1));
    assert_eq!(hb.generation(), generation);
    rig.finish();
}

/// Past the report interval, so a round publishes the report.
const REPORT_INTERVAL_PAST: Duration = Duration::from_millis(150);

impl Rig {
    /// The tables generation the worker reported after a round past the report interval.
    fn report_generation(&mut self) -> u64 {
        self.advance(REPORT_INTERVAL_PAST);
        self.report.lock().expect("report").generation
    }
}

/// Two workers on their own queues of the same two ports, with a hand-off mesh.
fn two_workers(depth: usize) -> (Rig, Rig) {
    let mut mesh = Handoff::mesh(2, depth).into_iter();
    let mut rig = |id| {
        Rig::with(
            Options {
                id,
                workers: 2,
                ..Options::default()
            },
            mesh.next(),
        )
    };
    let w0 = rig(0);
    let w1 = rig(1);
    (w0, w1)
}

#[test]
fn full_nat_reply_on_the_wrong_worker_is_handed_to_the_owner() {
    let (mut w0, mut w1) = two_workers(64);
    // Client → VIP on worker 0: it creates the flow with an SNAT port of its partition.
    w0.send(0, &to_vip(53, b"query"));
    w0.poll();
    let out = decoded(&w0.receive(1));
    let snat_port = out.src.port();
    assert_eq!(SNAT_PORTS.owner(snat_port, 2), Some(0), "worker 0 owns it");

    // The backend's reply lands on worker 1 (RSS), on port 1: handed to worker 0, which
    // runs it as arriving on port 1 (its MAC is port 1's) and sends it out on port 0.
    w1.send(
        1,
        &from_backend(1, SocketAddr::from((SNAT, snat_port)), b"answer"),
    );
    w1.poll();
    assert!(w1.wires[0].drain().is_empty(), "not sent by worker 1");
    assert_eq!(w0.poll(), 1, "worker 0 took the reply");
    let back = decoded(&w0.receive(0));
    assert_eq!(
        (back.src, back.dst),
        (SocketAddr::from((VIP, 53)), sa(CLIENT)),
        "the reply goes back translated, from the VIP"
    );
    assert_eq!(back.payload, b"answer");

    let r1 = w1.finish();
    assert_eq!(r1.events.handed_off, 1, "worker 1 handed the reply over");
    assert_eq!(
        (r1.counters.handoff, r1.counters.drops_total()),
        (1, 0),
        "the fast path said Handoff, not a drop"
    );
    let r0 = w0.finish();
    assert_eq!(
        r0.counters.tx_packets, 2,
        "worker 0 sent the query and the reply"
    );
    assert_eq!(r0.counters.drop_count(DropReason::NotForUs), 0);
}

#[test]
fn a_full_handoff_channel_drops_and_counts() {
    let (w0, mut w1) = two_workers(1);
    // Two replies to SNAT ports of worker 0's partition; its channel holds one.
    let port = (SNAT_PORTS.first..=SNAT_PORTS.last)
        .find(|p| SNAT_PORTS.owner(*p, 2) == Some(0))
        .expect("a port of worker 0");
    for payload in [b"one", b"two"] {
        w1.send(1, &from_backend(1, SocketAddr::from((SNAT, port)), payload));
    }
    w1.poll();
    // Worker 0 never ran: the reply waiting in its channel is freed with the channel.
    drop(w0);
    let r1 = w1.finish();
    assert_eq!(r1.events.handed_off, 1);
    assert_eq!(r1.drops.handoff_overflow, 1);
}

#[test]
fn the_loop_runs_on_its_own_thread_until_stopped() {
    let pool = MemoryPool::new();
    let (io, wires) = MemoryIo::new(2, 64, &pool);
    let setup = WorkerSetup::builder(
        support::fast_path(0, 1, 1024),
        io,
        Arc::new(testkit::network(false)),
        support::scenario::tables(),
    )
    .neighbors(Arc::new(Neighbors::new(static_neighbors())))
    .idle_backoff(Duration::from_micros(50))
    .build();
    let (report, stop) = (Arc::clone(setup.report()), Arc::clone(setup.stop_flag()));
    let thread = setup.spawn().expect("worker thread");

    assert!(wires[0].send(&to_vip(53, b"query")));
    let out = wires[1]
        .recv_timeout(Duration::from_secs(5))
        .expect("forwarded within 5 s");
    assert_eq!(decoded(out.data()).dst, backend(1));
    drop(out);
    // The periodic report shows it while the worker runs (bounded wait).
    let start = Instant::now();
    while report.lock().expect("report").counters.tx_packets == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no report within 5 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    thread.join().expect("the worker exits");
    let r = std::mem::take(&mut *report.lock().expect("report"));
    assert_eq!((r.counters.rx_packets, r.counters.tx_packets), (1, 1));
    assert_eq!(pool.in_use(), 0, "every buffer returned");
}

/// What the worker sent, as bytes.
fn bytes(frames: &[MemoryBuf]) -> Vec<Vec<u8>> {
    frames.iter().map(|f| f.data().to_vec()).collect()
}

#[test]
fn fragments_held_and_split_through_the_worker_loop() {
    let mut rig = Rig::with(
        Options {
            port1_mtu: FRAGMENT_MTU,
            ..Options::default()
        },
        None,
    );
    scenario::fragments_exchange(&mut rig);
    scenario::fragments_report(&rig.finish());
}

#[test]
fn fragments_before_their_first_are_held_and_forwarded_once_it_arrives() {
    let mut rig = Rig::new();
    let (payload, frags) = fragmented_to_vip(4000, false);
    assert_eq!(frags.len(), 3);
    // The later fragments first, in two rounds: held, nothing goes out.
    rig.send(0, &frags[2]);
    rig.poll();
    rig.send(0, &frags[1]);
    rig.poll();
    assert!(rig.wires[1].drain().is_empty(), "held, not sent");
    assert_eq!(rig.pool.in_use(), 2, "the worker keeps both buffers");
    // The first fragment decides; the held ones follow it in the same round.
    rig.send(0, &frags[0]);
    rig.poll();
    let out = rig.wires[1].drain();
    assert_eq!(out.len(), 3);
    let offset = |f: &MemoryBuf| u16::from_be_bytes([f.data()[20], f.data()[21]]) & 0x1fff;
    assert_eq!(offset(&out[0]), 0, "the first fragment goes first");
    let d = reassembled(&bytes(&out));
    assert_eq!(d.dst, backend(1));
    assert_eq!(d.src.ip(), IpAddr::from(SNAT));
    assert_eq!(
        d.payload, payload,
        "the reassembled datagram, checksum verified"
    );
    drop(out);
    let r = rig.finish();
    assert_eq!(r.counters.fragments_held, 2);
    assert_eq!(r.counters.fragments_forwarded, 3);
    assert_eq!(r.counters.fragments_waiting, 0);
    assert_eq!(r.events.fragments_rerun, 2);
    assert_eq!(r.counters.drops_total(), 0);
}

#[test]
fn fragments_in_one_burst_in_any_order_are_all_forwarded() {
    let mut rig = Rig::new();
    let (payload, frags) = fragmented_to_vip(4000, false);
    // Last, first, middle: the first releases the last within the burst.
    for i in [2, 0, 1] {
        rig.send(0, &frags[i]);
    }
    rig.poll();
    let out = rig.wires[1].drain();
    assert_eq!(out.len(), 3);
    assert_eq!(reassembled(&bytes(&out)).payload, payload);
    drop(out);
    let r = rig.finish();
    assert_eq!(r.counters.fragments_held, 1);
    assert_eq!(r.events.fragments_rerun, 1);
}

#[test]
fn held_fragments_whose_first_never_comes_are_freed() {
    let mut rig = Rig::new();
    let (_, frags) = fragmented_to_vip(4000, false);
    rig.send(0, &frags[1]);
    rig.send(0, &frags[2]);
    rig.poll();
    assert_eq!(rig.pool.in_use(), 2);
    // Past the fragment timeout (3 s); the sweep visits a bounded share of the table per
    // maintenance round, so run enough rounds to cover it.
    rig.advance(Duration::from_secs(4));
    for _ in 0..16 {
        rig.advance(MAINTAIN_INTERVAL);
    }
    assert_eq!(rig.pool.in_use(), 0, "freed by the worker, not at its end");
    let r = rig.finish();
    assert_eq!(r.counters.drop_count(DropReason::FragmentTimeout), 2);
    assert_eq!(r.counters.fragments_waiting, 0);
    assert_eq!(r.events.fragments_rerun, 0);
}

#[test]
fn a_stopped_worker_frees_the_fragments_it_holds() {
    let mut rig = Rig::new();
    let (_, frags) = fragmented_to_vip(4000, false);
    rig.send(0, &frags[2]);
    rig.poll();
    assert_eq!(rig.pool.in_use(), 1);
    // `finish` checks that every buffer is back.
    assert_eq!(rig.finish().counters.fragments_held, 1);
}

#[test]
fn a_datagram_larger_than_the_out_port_mtu_is_split() {
    let mut rig = Rig::with(
        Options {
            port1_mtu: 1280,
            ..Options::default()
        },
        None,
    );
    let payload: Vec<u8> = (0..3000).map(|i| u8::try_from(i % 249).unwrap()).collect();
    rig.send(0, &scenario::with_df(to_vip(53, &payload), false));
    rig.poll();
    let out = rig.wires[1].drain();
    // 3008 bytes of UDP in pieces of at most 1280 − 20 = 1256 → 1256 (a multiple of 8).
    assert_eq!(out.len(), 3);
    for f in &out {
        assert!(f.data().len() - 14 <= 1280, "at most the MTU");
        assert!(f.offload().is_none(), "every checksum final");
        assert_eq!(&f.data()[..6], &testkit::backend_mac(1).0, "to backend 1");
    }
    let d = reassembled(&bytes(&out));
    assert_eq!((d.dst, d.src.ip()), (backend(1), IpAddr::from(SNAT)));
    assert_eq!(d.payload, payload);
    drop(out);
    let r = rig.finish();
    assert_eq!((r.events.refragmented, r.events.refragment_pieces), (1, 3));
    assert_eq!(r.drops.refragment_failed, 0);
    assert_eq!(r.counters.tx_packets, 1, "one datagram for the fast path");
}

#[test]
fn fragments_larger_than_the_out_port_mtu_are_split_again() {
    let mut rig = Rig::with(
        Options {
            port1_mtu: 1000,
            ..Options::default()
        },
        None,
    );
    let (payload, frags) = fragmented_to_vip(2500, false);
    assert_eq!(frags.len(), 2);
    rig.send(0, &frags[1]);
    rig.send(0, &frags[0]);
    rig.poll();
    let out = rig.wires[1].drain();
    // 1480 + 1028 bytes, in pieces of at most 976 data bytes: 2 + 2.
    assert_eq!(out.len(), 4);
    assert_eq!(reassembled(&bytes(&out)).payload, payload);
    drop(out);
    let r = rig.finish();
    assert_eq!((r.events.refragmented, r.events.refragment_pieces), (2, 4));
}

#[test]
fn a_df_datagram_larger_than_the_out_port_mtu_goes_to_the_slow_path() {
    let mut rig = Rig::with(
        Options {
            port1_mtu: 1280,
            ..Options::default()
        },
        None,
    );
    let (_, frags) = fragmented_to_vip(1400, true);
    assert_eq!(frags.len(), 1, "fits the sender's 1500");
    rig.send(0, &frags[0]);
    match rig.slow_path_msg() {
        SlowPathMsg::IcmpError {
            port,
            error: IcmpError::TooBig { mtu },
            frame,
        } => {
            assert_eq!((port, mtu), (0, 1280));
            assert_eq!(frame.data(), &frags[0][..], "untouched");
        }
        other => panic!("expected TooBig, got {other:?}"),
    }
    let r = rig.finish();
    assert_eq!(r.counters.host_count(HostReason::TooBig { mtu: 1280 }), 1);
    assert_eq!(r.events.refragmented, 0);
}

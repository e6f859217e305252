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

use appliance::slowpath::{SlowPathCounters, SlowPathMsg};
use appliance::worker::{
    Handoff, MemoryBuf, MemoryIo, MemoryPool, ReportSlot, Wire, Worker, WorkerReport, WorkerSetup,
    BURST, HOLD_CAPACITY, HOLD_TIME,
};
use crossbeam_channel::{Receiver, Sender};
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            depth: 64,
            slow_path_depth: 64,
            offload: false,
            id: 0,
            workers: 1,
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
        let (inject, inject_rx) = crossbeam_channel::bounded(BURST);
        let slowpath_counters = Arc::new(SlowPathCounters::default());
        let epoch = Instant::now();
        let mut builder = WorkerSetup::builder(
            support::fast_path(o.id, o.workers, 1024),
            io,
            Arc::new(testkit::network(o.offload)),
            support::scenario::tables(),
        )
        .table_updates(tables_rx)
        .neighbors(Arc::new(Neighbors::new(static_neighbors())))
        .neighbor_updates(neighbors_rx)
        .slow_path(sp_tx, Arc::clone(&slowpath_counters))
        .inject(inject_rx)
        .epoch(epoch);
        if let Some(h) = handoff {
            builder = builder.handoff(h);
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

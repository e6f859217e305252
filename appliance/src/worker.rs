//! The poll-mode worker: one per lcore, `rx_burst` → `pipelines` → `tx_burst`.
//!
//! Each worker owns one RX and one TX queue on every port, its `pipelines::FastPath` (flow
//! table, SNAT partition, counters) and reusable bursts: nothing is allocated and nothing
//! is locked per packet. New tables and neighbor snapshots arrive as `Arc`s over channels
//! and are picked up between bursts. Counters are copied out every
//! [`REPORT_INTERVAL`] with a `try_lock`, so the management thread never stalls a worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pipelines::counters::{Counters, EntityCounters};
use pipelines::neighbor::Neighbors;
use pipelines::net::Network;
use pipelines::tables::Tables;
use pipelines::{Context, DropReason, FastPath, HostReason, Verdict};

use crate::dpdk::{Mbuf, MbufBurst, RxQueue, TxChecksum, TxQueue};
use crate::slowpath::{SlowPathCounters, SlowPathMsg};

/// How often a worker copies its counters out and expires idle flows.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// Packets per RX burst (the size of [`MbufBurst`]).
const BURST: usize = MbufBurst::CAPACITY;
/// How often a worker sweeps its flow table (bounded work per sweep).
const MAINTAIN_INTERVAL: Duration = Duration::from_millis(1);

/// What a worker publishes for the management thread.
#[derive(Debug, Default)]
pub struct WorkerReport {
    /// Fast-path counters as of the last copy.
    pub counters: Counters,
    /// Entity counters of tables generations the worker has left (drained by the reader).
    pub retired: Vec<EntityCounters>,
    /// Datagrams the TX queues refused (freed).
    pub tx_refused: u64,
    /// Frames for the slow path that did not fit in its channel (freed).
    pub host_overflow: u64,
    /// Generation of the tables the worker runs.
    pub generation: u64,
    /// Replies passed to the worker that owns their SNAT port (the fast path's
    /// `Handoff` verdict).
    pub handed_off: u64,
    /// Replies that could not be passed on (the owner's channel was full).
    pub handoff_overflow: u64,
    /// Datagrams held while their next hop was resolved.
    pub held: u64,
    /// Held datagrams dropped: not resolved in time, or the hold queue was full.
    pub hold_expired: u64,
}

/// Shared handle on a worker's report.
pub type ReportSlot = Arc<Mutex<WorkerReport>>;

/// Everything a worker runs with; moved onto its lcore.
pub struct WorkerSetup {
    /// The fast path (flow table, SNAT partition, counters).
    pub fast_path: FastPath,
    /// `rx[p]` polls port `p`.
    pub rx: Vec<RxQueue>,
    /// `tx[p]` transmits on port `p`.
    pub tx: Vec<TxQueue>,
    /// The static network (ports, routes, SNAT).
    pub network: Arc<Network>,
    /// Current tables; newer ones arrive on `tables_rx`.
    pub tables: Arc<Tables>,
    /// New tables from the management thread.
    pub tables_rx: Receiver<Arc<Tables>>,
    /// Current neighbors; newer snapshots arrive on `neighbors_rx`.
    pub neighbors: Arc<Neighbors>,
    /// New neighbor snapshots from the slow path.
    pub neighbors_rx: Receiver<Arc<Neighbors>>,
    /// The slow path's input.
    pub slowpath: Sender<SlowPathMsg<Mbuf>>,
    /// Counts slow-path channel overflow.
    pub slowpath_counters: Arc<SlowPathCounters>,
    /// Where counters are copied out.
    pub report: ReportSlot,
    /// Frames the slow path sends (ARP/ND replies, ICMP): `(port, frame)`, transmitted on
    /// this worker's TX queues so no queue is shared and every PMD works.
    pub inject_rx: Receiver<(u16, Mbuf)>,
    /// Set by the management thread to stop the worker.
    pub stop: Arc<AtomicBool>,
    /// Sleep after an empty poll round (0: pure polling).
    pub idle_backoff: Duration,
    /// Monotonic origin of the fast path's timestamps (shared by all workers).
    pub epoch: Instant,
}

/// Hands replies to the worker that owns their flow (full NAT with several workers).
///
/// RSS steers a backend's reply by its own hash, not by which worker allocated the SNAT
/// port it is addressed to. The fast path recognises such a reply (`Verdict::Handoff`,
/// the owner from `PortRange::owner`) and the worker passes it to the owner over a
/// bounded channel, untouched, with the port it arrived on (the owner's fast path checks
/// the frame against that port); the owner processes it with its own flow table.
pub struct Handoff {
    /// This worker's index.
    pub worker_id: u16,
    /// Replies other workers pass to this one: `(input port, frame)`.
    pub rx: Receiver<(u16, Mbuf)>,
    /// `to[w]` reaches worker `w` (this worker's own entry is unused).
    pub to: Vec<Sender<(u16, Mbuf)>>,
}

impl Handoff {
    /// Channels for `workers` workers, each bounded to `depth` mbufs.
    pub fn mesh(workers: u16, depth: usize) -> Vec<Handoff> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| crossbeam_channel::bounded::<(u16, Mbuf)>(depth))
            .unzip();
        (0..workers)
            .zip(rxs)
            .map(|(worker_id, rx)| Handoff {
                worker_id,
                rx,
                to: txs.clone(),
            })
            .collect()
    }
}

/// Per-loop tallies that are not fast-path counters.
#[derive(Default)]
struct LoopStats {
    tx_refused: u64,
    host_overflow: u64,
    handed_off: u64,
    handoff_overflow: u64,
    held: u64,
    hold_expired: u64,
}

/// Datagrams waiting for their next hop to be resolved, like a kernel's ARP queue: when
/// the slow path publishes new neighbors they run through the fast path again; after
/// [`HOLD_TIME`] they are dropped. Fixed capacity, allocated once. Entries are
/// `(deadline, input port, frame)`: a held frame runs again as if on the port it came in.
struct Held {
    queue: std::collections::VecDeque<(u64, u16, Mbuf)>,
}

/// How many datagrams a worker holds for neighbor resolution.
const HOLD_CAPACITY: usize = 256;
/// How long a datagram waits for its neighbor.
const HOLD_TIME: Duration = Duration::from_secs(3);

impl Held {
    fn new() -> Held {
        Held {
            queue: std::collections::VecDeque::with_capacity(HOLD_CAPACITY),
        }
    }
}

/// Runs the worker loop until `stop` is set, with no other worker to hand replies to.
pub fn run(w: WorkerSetup) {
    let (_tx, rx) = crossbeam_channel::bounded(1);
    run_with_handoff(
        w,
        Handoff {
            worker_id: 0,
            rx,
            to: Vec::new(),
        },
    );
}

/// Runs the worker loop until `stop` is set. Every mbuf the worker holds is freed or
/// handed on before it returns.
pub fn run_with_handoff(mut w: WorkerSetup, handoff: Handoff) {
    let ports = w.rx.len();
    let mut rx_burst = MbufBurst::new();
    let mut tx_bursts: Vec<MbufBurst> = (0..ports).map(|_| MbufBurst::new()).collect();
    let mut stats = LoopStats::default();
    let mut held = Held::new();
    let mut last_report = Instant::now();
    let mut last_maintain = last_report;
    let mut idle_rounds = 0u32;
    while !w.stop.load(Ordering::Relaxed) {
        // Burst boundary: adopt the newest tables and neighbors, if any.
        if let Some(t) = w.tables_rx.try_iter().last() {
            w.tables = t;
            w.fast_path.adopt(&w.tables);
        }
        let clock = Instant::now();
        let now = nanos_since(w.epoch, clock);
        let mut received = 0usize;
        if let Some(n) = w.neighbors_rx.try_iter().last() {
            w.neighbors = n;
            // New neighbors: held datagrams try again (at most a burst's worth per
            // snapshot; the rest wait for the next one or expire), one burst per run of
            // frames from the same input port.
            let mut again = held.queue.len();
            let (mut port, mut taken) = (0, 0);
            while again > 0 {
                again -= 1;
                let Some((deadline, p, mbuf)) = held.queue.pop_front() else {
                    break;
                };
                if deadline < now {
                    stats.hold_expired += 1;
                    continue;
                }
                if taken == BURST {
                    held.queue.push_front((deadline, p, mbuf));
                    break;
                }
                if p != port && !rx_burst.is_empty() {
                    handle_burst(
                        &mut w,
                        &handoff,
                        now,
                        port,
                        &mut rx_burst,
                        &mut tx_bursts,
                        &mut stats,
                        &mut held,
                    );
                }
                port = p;
                taken += 1;
                if let Err(mbuf) = rx_burst.push(mbuf) {
                    held.queue.push_front((deadline, p, mbuf));
                    break;
                }
            }
            if !rx_burst.is_empty() {
                handle_burst(
                    &mut w,
                    &handoff,
                    now,
                    port,
                    &mut rx_burst,
                    &mut tx_bursts,
                    &mut stats,
                    &mut held,
                );
            }
        }
        // Port ids are u16 (DPDK's): the range bounds them, no conversion can overflow.
        for in_port in (0..=u16::MAX).take(ports) {
            let n = w.rx[usize::from(in_port)].rx_burst(&mut rx_burst);
            if n == 0 {
                continue;
            }
            received += n;
            handle_burst(
                &mut w,
                &handoff,
                now,
                in_port,
                &mut rx_burst,
                &mut tx_bursts,
                &mut stats,
                &mut held,
            );
        }
        // Replies other workers passed here (full NAT, several workers), one burst per
        // run of frames from the same input port.
        let mut port = 0;
        for (p, mbuf) in handoff.rx.try_iter().take(BURST) {
            if p != port && !rx_burst.is_empty() {
                received += rx_burst.len();
                handle_burst(
                    &mut w,
                    &handoff,
                    now,
                    port,
                    &mut rx_burst,
                    &mut tx_bursts,
                    &mut stats,
                    &mut held,
                );
            }
            port = p;
            if rx_burst.push(mbuf).is_err() {
                break;
            }
        }
        if !rx_burst.is_empty() {
            received += rx_burst.len();
            handle_burst(
                &mut w,
                &handoff,
                now,
                port,
                &mut rx_burst,
                &mut tx_bursts,
                &mut stats,
                &mut held,
            );
        }
        // Frames from the slow path ride along with the forwarded ones.
        for (port, mbuf) in w.inject_rx.try_iter().take(BURST) {
            enqueue(&mut w.tx, &mut tx_bursts, port, mbuf, &mut stats);
        }
        for (port, burst) in tx_bursts.iter_mut().enumerate() {
            if !burst.is_empty() {
                stats.tx_refused += flush(&mut w.tx[port], burst);
            }
        }
        if clock.duration_since(last_maintain) >= MAINTAIN_INTERVAL {
            last_maintain = clock;
            w.fast_path.maintain(now);
            while held
                .queue
                .front()
                .is_some_and(|(deadline, _, _)| *deadline < now)
            {
                held.queue.pop_front();
                stats.hold_expired += 1;
            }
            if clock.duration_since(last_report) >= REPORT_INTERVAL {
                last_report = clock;
                let report = Arc::clone(&w.report);
                let guard = report.try_lock();
                if let Ok(mut r) = guard {
                    fill_report(&mut r, &mut w, &stats);
                }
            }
        }
        if received == 0 {
            idle_rounds = idle_rounds.saturating_add(1);
            // Back off only after a few empty rounds, so a loaded worker never sleeps.
            if !w.idle_backoff.is_zero() && idle_rounds > 16 {
                std::thread::sleep(w.idle_backoff);
            }
        } else {
            idle_rounds = 0;
        }
    }
    // Last report: wait for the lock so the final counters are never lost.
    let report = Arc::clone(&w.report);
    let mut r = report.lock().unwrap_or_else(|e| e.into_inner());
    fill_report(&mut r, &mut w, &stats);
}

fn fill_report(r: &mut WorkerReport, w: &mut WorkerSetup, stats: &LoopStats) {
    r.counters.clone_from(w.fast_path.counters());
    r.retired.extend(w.fast_path.take_retired());
    r.tx_refused = stats.tx_refused;
    r.host_overflow = stats.host_overflow;
    r.handed_off = stats.handed_off;
    r.handoff_overflow = stats.handoff_overflow;
    r.held = stats.held;
    r.hold_expired = stats.hold_expired;
    r.generation = w.tables.generation();
}

/// Runs one burst through the fast path and acts on every verdict; empties `burst`.
#[allow(clippy::too_many_arguments)]
fn handle_burst(
    w: &mut WorkerSetup,
    handoff: &Handoff,
    now: u64,
    in_port: u16,
    burst: &mut MbufBurst,
    tx_bursts: &mut [MbufBurst],
    stats: &mut LoopStats,
    held: &mut Held,
) {
    let mut verdicts = [Verdict::Drop(DropReason::NotUdp); BURST];
    let ctx = Context {
        tables: &w.tables,
        network: &w.network,
        neighbors: &w.neighbors,
    };
    {
        // Empty slices are `Default`: a fixed array of views, no allocation.
        let mut packets: [&mut [u8]; BURST] = Default::default();
        let mut n = 0;
        for (view, mbuf) in packets.iter_mut().zip(burst.as_mut_slice()) {
            *view = mbuf.data_mut();
            n += 1;
        }
        w.fast_path
            .process_burst(&ctx, now, in_port, &mut packets[..n], &mut verdicts[..n]);
    }
    for (mut mbuf, &verdict) in burst.drain().zip(verdicts.iter()) {
        match verdict {
            Verdict::Tx { port, offload } => {
                if let Some(o) = offload {
                    let sum = if o.ipv6 {
                        TxChecksum::Ipv6 {
                            udp: o.udp_checksum,
                        }
                    } else {
                        TxChecksum::Ipv4 {
                            header: o.ipv4_checksum,
                            udp: o.udp_checksum,
                        }
                    };
                    if mbuf.set_tx_checksum(sum, o.l2_len, o.l3_len).is_err() {
                        // Header lengths beyond what the NIC takes: cannot offload, and
                        // the checksum fields hold partial sums. Drop it.
                        stats.tx_refused += 1;
                        continue;
                    }
                }
                enqueue(&mut w.tx, tx_bursts, port, mbuf, stats);
            }
            Verdict::ToHost(reason) => {
                let msg = match reason {
                    HostReason::Resolve { next_hop, port } => {
                        // Hold the datagram (untouched) until the neighbor is known.
                        if held.queue.len() < HOLD_CAPACITY {
                            let deadline =
                                now + u64::try_from(HOLD_TIME.as_nanos()).unwrap_or(u64::MAX);
                            held.queue.push_back((deadline, in_port, mbuf));
                            stats.held += 1;
                        } else {
                            stats.hold_expired += 1;
                        }
                        SlowPathMsg::Resolve { port, next_hop }
                    }
                    HostReason::Reject => SlowPathMsg::Reject {
                        port: in_port,
                        frame: mbuf,
                    },
                    _ => SlowPathMsg::Frame {
                        port: in_port,
                        frame: mbuf,
                    },
                };
                if !w.slowpath_counters.try_send(&w.slowpath, msg) {
                    stats.host_overflow += 1;
                }
            }
            Verdict::Handoff { worker } => {
                // Another worker's flow: the packet is untouched, pass it on.
                match handoff.to.get(usize::from(worker)) {
                    Some(tx) if worker != handoff.worker_id => match tx.try_send((in_port, mbuf)) {
                        Ok(()) => stats.handed_off += 1,
                        Err(_) => stats.handoff_overflow += 1,
                    },
                    // No channel to that worker: it cannot be passed on.
                    _ => stats.handoff_overflow += 1,
                }
            }
            // Holding and splitting fragments come with the appliance side of issue 12.
            Verdict::Drop(_) | Verdict::Hold { .. } | Verdict::Fragment { .. } => drop(mbuf),
        }
    }
}

/// Queues `mbuf` for transmission on `port`, flushing the burst when it is full.
fn enqueue(
    txqs: &mut [TxQueue],
    tx_bursts: &mut [MbufBurst],
    port: u16,
    mbuf: Mbuf,
    stats: &mut LoopStats,
) {
    let (Some(burst), Some(txq)) = (
        tx_bursts.get_mut(usize::from(port)),
        txqs.get_mut(usize::from(port)),
    ) else {
        stats.tx_refused += 1;
        return;
    };
    if burst.is_full() {
        stats.tx_refused += flush(txq, burst);
    }
    if burst.push(mbuf).is_err() {
        stats.tx_refused += 1;
    }
}

/// Transmits a burst; frees and counts what the queue refused.
fn flush(txq: &mut TxQueue, burst: &mut MbufBurst) -> u64 {
    txq.tx_burst(burst);
    burst.free_all() as u64
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

//! The poll-mode worker: one per lcore, `rx_burst` → `pipelines` → `tx_burst`.
//!
//! Each worker owns one RX and one TX queue on every port, its `pipelines::Worker` (flow
//! table, SNAT partition, counters) and reusable bursts: nothing is allocated and nothing
//! is locked per packet. New tables and neighbor snapshots arrive as `Arc`s over channels
//! and are picked up between bursts. Counters are copied out every
//! [`REPORT_INTERVAL`] with a `try_lock`, so the management thread never stalls a worker.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pipelines::counters::{Counters, EntityCounters};
use pipelines::neighbor::Neighbors;
use pipelines::net::Network;
use pipelines::tables::Tables;
use pipelines::{Context, HostReason, Verdict};

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
}

/// Shared handle on a worker's report.
pub type ReportSlot = Arc<Mutex<WorkerReport>>;

/// Everything a worker runs with; moved onto its lcore.
pub struct WorkerSetup {
    /// The fast-path state (flow table, SNAT partition, counters).
    pub pipeline: pipelines::Worker,
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

/// Runs the worker loop until `stop` is set. Every mbuf the worker holds is freed or
/// handed on before it returns.
pub fn run(mut w: WorkerSetup) {
    let ports = w.rx.len();
    let mut rx_burst = MbufBurst::new();
    let mut tx_bursts: Vec<MbufBurst> = (0..ports).map(|_| MbufBurst::new()).collect();
    let mut verdicts = [Verdict::Drop(pipelines::DropReason::NotUdp); BURST];
    let mut tx_refused = 0u64;
    let mut host_overflow = 0u64;
    let mut last_report = Instant::now();
    let mut last_maintain = last_report;
    let mut idle_rounds = 0u32;
    while !w.stop.load(Ordering::Relaxed) {
        // Burst boundary: adopt the newest tables and neighbors, if any.
        if let Some(t) = w.tables_rx.try_iter().last() {
            w.tables = t;
            w.pipeline.adopt(&w.tables);
        }
        if let Some(n) = w.neighbors_rx.try_iter().last() {
            w.neighbors = n;
        }
        let clock = Instant::now();
        let now = nanos_since(w.epoch, clock);
        let ctx = Context {
            tables: &w.tables,
            network: &w.network,
            neighbors: &w.neighbors,
        };
        let mut received = 0usize;
        for (in_port, rxq) in w.rx.iter_mut().enumerate() {
            let n = rxq.rx_burst(&mut rx_burst);
            if n == 0 {
                continue;
            }
            received += n;
            let in_port = u16::try_from(in_port).unwrap_or(u16::MAX);
            {
                // Empty slices are `Default`: a fixed array of views, no allocation.
                let mut packets: [&mut [u8]; BURST] = Default::default();
                let mut n = 0;
                for (view, mbuf) in packets.iter_mut().zip(rx_burst.as_mut_slice()) {
                    *view = mbuf.data_mut();
                    n += 1;
                }
                w.pipeline
                    .process_burst(&ctx, now, in_port, &mut packets[..n], &mut verdicts[..n]);
            }
            for (mut mbuf, &verdict) in rx_burst.drain().zip(verdicts.iter()) {
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
                                // Header lengths beyond what the NIC takes: cannot offload,
                                // and the checksum fields hold partial sums. Drop it.
                                tx_refused += 1;
                                continue;
                            }
                        }
                        let Some(burst) = tx_bursts.get_mut(usize::from(port)) else {
                            tx_refused += 1;
                            continue;
                        };
                        if burst.is_full() {
                            tx_refused += flush(&mut w.tx[usize::from(port)], burst);
                        }
                        if burst.push(mbuf).is_err() {
                            tx_refused += 1;
                        }
                    }
                    Verdict::ToHost(reason) => {
                        let msg = match reason {
                            HostReason::Resolve { next_hop } => {
                                // The datagram itself is lost (like a kernel without a
                                // neighbor queue); the next one finds the entry.
                                drop(mbuf);
                                SlowPathMsg::Resolve {
                                    port: resolve_port(&w.network, next_hop, in_port),
                                    next_hop,
                                }
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
                            host_overflow += 1;
                        }
                    }
                    Verdict::Drop(_) => drop(mbuf),
                }
            }
        }
        // Frames from the slow path ride along with the forwarded ones.
        for (port, mbuf) in w.inject_rx.try_iter().take(BURST) {
            let Some(burst) = tx_bursts.get_mut(usize::from(port)) else {
                tx_refused += 1;
                continue;
            };
            if burst.is_full() {
                tx_refused += flush(&mut w.tx[usize::from(port)], burst);
            }
            if burst.push(mbuf).is_err() {
                tx_refused += 1;
            }
        }
        for (port, burst) in tx_bursts.iter_mut().enumerate() {
            if !burst.is_empty() {
                tx_refused += flush(&mut w.tx[port], burst);
            }
        }
        if clock.duration_since(last_maintain) >= MAINTAIN_INTERVAL {
            last_maintain = clock;
            w.pipeline.maintain(now);
            if clock.duration_since(last_report) >= REPORT_INTERVAL {
                last_report = clock;
                publish(&mut w, tx_refused, host_overflow);
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
    r.counters.clone_from(w.pipeline.counters());
    r.retired.extend(w.pipeline.take_retired());
    r.tx_refused = tx_refused;
    r.host_overflow = host_overflow;
}

/// Transmits a burst; frees and counts what the queue refused.
fn flush(txq: &mut TxQueue, burst: &mut MbufBurst) -> u64 {
    txq.tx_burst(burst);
    burst.free_all() as u64
}

fn publish(w: &mut WorkerSetup, tx_refused: u64, host_overflow: u64) {
    if let Ok(mut r) = w.report.try_lock() {
        r.counters.clone_from(w.pipeline.counters());
        r.retired.extend(w.pipeline.take_retired());
        r.tx_refused = tx_refused;
        r.host_overflow = host_overflow;
        r.generation = w.tables.generation();
    }
}

/// The port a next hop is resolved on: where the routing table sends it.
fn resolve_port(network: &Network, next_hop: IpAddr, fallback: u16) -> u16 {
    network.route(next_hop).map_or(fallback, |h| h.port)
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

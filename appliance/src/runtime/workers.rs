//! The workers' channels and their start on the EAL lcores: the one place that builds a
//! [`WorkerSetup`].
//!
//! Per worker, [`WorkerLinks`] holds the worker's ends: new tables (from the control plane),
//! neighbor snapshots (from the slow path), health snapshots (from the backend health
//! checker), its counter report, the slow path's frames to
//! transmit (worker 0 only) and the hand-off mesh. [`Links`] holds the other ends.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use pipelines::health::Health;
use pipelines::neighbor::Neighbors;
use pipelines::net::{MacAddr, Network};
use pipelines::tables::Tables;
use pipelines::{FastPath, FastPathParams};

use super::ports::PortSet;
use super::RunError;
use crate::dpdk::{Eal, LcoreId, LcoreJob, Mbuf, QueueId};
use crate::settings::Settings;
use crate::slowpath::{SlowPathCounters, SlowPathMsg};
use crate::worker::{DpdkIo, Handoff, Heartbeat, ReportSlot, WorkerReport, WorkerSetup};

/// Depth of each worker's hand-off channel.
const HANDOFF_DEPTH: usize = 1024;
/// Depth of the channel of frames the slow path sends through worker 0.
const INJECT_DEPTH: usize = 1024;

/// One worker's ends of the channels.
pub(super) struct WorkerLinks {
    tables_rx: Receiver<Arc<Tables>>,
    neighbors_rx: Receiver<Arc<Neighbors>>,
    health_rx: Receiver<Arc<Health>>,
    report: ReportSlot,
    /// Frames the slow path sends: worker 0 transmits them, the others never receive any.
    inject_rx: Receiver<(u16, Mbuf)>,
    handoff: Handoff<Mbuf>,
    heartbeat: Arc<Heartbeat>,
}

/// Publishes the slow path's neighbor table to every worker as an immutable snapshot.
pub(super) struct NeighborPublisher {
    workers: Vec<Sender<Arc<Neighbors>>>,
    /// Entries in the last snapshot (a metric).
    pub(super) count: Arc<AtomicUsize>,
}

impl NeighborPublisher {
    pub(super) fn publish(&self, map: &BTreeMap<IpAddr, [u8; 6]>) {
        let snapshot = Arc::new(Neighbors::new(
            map.iter().map(|(ip, mac)| (*ip, MacAddr(*mac))),
        ));
        self.count.store(snapshot.len(), Ordering::Relaxed);
        for tx in &self.workers {
            let _ = tx.send(Arc::clone(&snapshot));
        }
    }
}

/// Every channel between the workers and the rest.
pub(super) struct Links {
    /// Per worker, its ends.
    pub(super) workers: Vec<WorkerLinks>,
    /// Per worker, the control plane's end of its tables channel.
    pub(super) tables: Vec<Sender<Arc<Tables>>>,
    /// The slow path's end of the neighbor channels.
    pub(super) neighbors: NeighborPublisher,
    /// Per worker, the backend health checker's end of its health channel.
    pub(super) health: Vec<Sender<Arc<Health>>>,
    /// Per worker, its counter report.
    pub(super) reports: Vec<ReportSlot>,
    /// Per worker, its heartbeat (read by the health check).
    pub(super) heartbeats: Vec<Arc<Heartbeat>>,
    /// The slow path's frame sink sends through worker 0 here.
    pub(super) inject_tx: Sender<(u16, Mbuf)>,
    /// Kept to drain at shutdown: what nobody sent goes back to the pool.
    pub(super) inject_rx: Receiver<(u16, Mbuf)>,
}

impl Links {
    pub(super) fn new(workers: u16, neighbor_count: usize) -> Links {
        let (inject_tx, inject_rx) = crossbeam_channel::bounded(INJECT_DEPTH);
        let mut links = Links {
            workers: Vec::new(),
            tables: Vec::new(),
            neighbors: NeighborPublisher {
                workers: Vec::new(),
                count: Arc::new(AtomicUsize::new(neighbor_count)),
            },
            health: Vec::new(),
            reports: Vec::new(),
            heartbeats: Vec::new(),
            inject_tx,
            inject_rx: inject_rx.clone(),
        };
        for (id, handoff) in (0..workers).zip(Handoff::<Mbuf>::mesh(workers, HANDOFF_DEPTH)) {
            let (tables_tx, tables_rx) = unbounded();
            let (neighbors_tx, neighbors_rx) = unbounded();
            let (health_tx, health_rx) = unbounded();
            links.health.push(health_tx);
            let report: ReportSlot = Arc::new(Mutex::new(WorkerReport::default()));
            let heartbeat = Heartbeat::new(Instant::now());
            links.heartbeats.push(Arc::clone(&heartbeat));
            links.tables.push(tables_tx);
            links.neighbors.workers.push(neighbors_tx);
            links.reports.push(Arc::clone(&report));
            links.workers.push(WorkerLinks {
                tables_rx,
                neighbors_rx,
                health_rx,
                report,
                inject_rx: if id == 0 {
                    inject_rx.clone()
                } else {
                    crossbeam_channel::never()
                },
                handoff,
                heartbeat,
            });
        }
        links
    }
}

/// What every worker starts with besides its links.
pub(super) struct WorkerContext<'a> {
    pub(super) settings: &'a Settings,
    pub(super) ports: &'a PortSet,
    pub(super) network: &'a Arc<Network>,
    pub(super) tables: &'a Arc<Tables>,
    pub(super) neighbors: &'a Arc<Neighbors>,
    pub(super) slow_path: &'a Sender<SlowPathMsg<Mbuf>>,
    pub(super) slow_path_counters: &'a Arc<SlowPathCounters>,
}

/// The running workers.
pub(super) struct Workers {
    stop: Arc<AtomicBool>,
    jobs: Vec<LcoreJob<()>>,
}

impl Workers {
    /// Starts one worker per lcore, each with its links (as many as lcores).
    pub(super) fn spawn(
        eal: &Eal,
        lcores: &[LcoreId],
        links: Vec<WorkerLinks>,
        cx: &WorkerContext<'_>,
    ) -> Result<Workers, RunError> {
        let workers =
            u16::try_from(links.len()).map_err(|_| RunError::Network("too many workers".into()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let flows = &cx.settings.flows;
        let mut jobs = Vec::new();
        for (id, (lcore, link)) in (0..workers).zip(lcores.iter().zip(links)) {
            let params = FastPathParams {
                flow_capacity: (flows.capacity / u32::from(workers)).max(1),
                new_flow_rate_limit: flows.new_flow_rate_limit,
                ..FastPathParams::new(id, workers, cx.network.snat().ports)
            };
            let fast_path = FastPath::new(params).map_err(|e| RunError::Network(e.to_string()))?;
            let io = cx.ports.with(|ports| DpdkIo::claim(ports, QueueId(id)))?;
            let setup =
                WorkerSetup::builder(fast_path, io, Arc::clone(cx.network), Arc::clone(cx.tables))
                    .table_updates(link.tables_rx)
                    .neighbors(Arc::clone(cx.neighbors))
                    .neighbor_updates(link.neighbors_rx)
                    .health_updates(link.health_rx)
                    .slow_path(cx.slow_path.clone(), Arc::clone(cx.slow_path_counters))
                    .report(link.report)
                    .inject(link.inject_rx)
                    .handoff(link.handoff)
                    .heartbeat(link.heartbeat)
                    .stop(Arc::clone(&stop))
                    .burst(usize::from(cx.settings.workers.burst))
                    .idle_backoff(Duration::from_micros(u64::from(
                        cx.settings.workers.idle_backoff_us,
                    )))
                    .epoch(epoch)
                    .build();
            jobs.push(setup.launch(eal, *lcore)?);
        }
        if jobs.is_empty() {
            return Err(RunError::Network(
                "no worker lcore: list at least one in workers.lcores".into(),
            ));
        }
        Ok(Workers { stop, jobs })
    }

    /// Stops every worker and waits for it (each frees what it holds first).
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for job in self.jobs {
            if let Err(e) = job.wait() {
                log::error!("worker: {e}");
            }
        }
    }
}

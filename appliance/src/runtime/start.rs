//! Start-up: `Appliance::start(settings) -> Running`, then `running.serve()`.
//!
//! Order: settings checked against this host → the initial set (manifest files, or the
//! persisted API set; `control::initial_set`) compiled (refused:
//! nothing started) → liveness interface (with `announce`; down, so nothing is announced)
//! → EAL → mempool → ports → control plane → slow path thread → workers on their lcores →
//! management API, signals, manifest watcher → supervisor (health, drain, announcement).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use config::CompileParams;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use pipelines::neighbor::Neighbors;
use pipelines::net::MacAddr;
use pipelines::tables::DataplaneParams;

use super::handler::ApplianceHandler;
use super::ports::{self, PortSet};
use super::supervise::{Supervisor, SupervisorThread};
use super::workers::{Links, WorkerContext, Workers};
use super::RunError;
use crate::announce::{AnnounceConfig, Announcer};
use crate::control::{
    initial_set, ControlParams, ControlPlane, Observed, Publisher, SlowPathLink, SourceMode,
};
use crate::dpdk::{Eal, Mbuf, Mempool, RuntimeDir, SocketId};
use crate::health::{HealthCheck, PortLinks};
use crate::mgmt::{
    ManagementServer, ManifestWatcher, MgmtEvent, ReloadReason, SignalListener, Tokens,
};
use crate::settings::{CpuSet, ManagementSettings, Settings, SettingsError, MAX_WORKERS};
use crate::slowpath::{
    FrameSink, PortAddresses, SlowPath, SlowPathConfig, SlowPathCounters, SlowPathMsg,
    SlowPathTuning, StaticNeighbor,
};

/// Mbufs per pool: enough for every RX/TX ring plus bursts in flight and the slow path.
const POOL_MBUFS: u32 = 16383;

/// The appliance, before it runs.
pub struct Appliance;

/// A started appliance: ports up, workers polling, the management API serving.
pub struct Running {
    pub(super) eal: Eal,
    pub(super) runtime_dir: Option<RuntimeDir>,
    pub(super) pool: Mempool,
    pub(super) ports: Arc<PortSet>,
    pub(super) plane: Arc<ControlPlane>,
    pub(super) workers: Workers,
    pub(super) slow_path: SlowPathThread,
    /// Slow-path frames for worker 0; drained at shutdown.
    pub(super) inject_rx: Receiver<(u16, Mbuf)>,
    pub(super) management: Management,
    /// Health, drain and announcement, on their own thread.
    pub(super) supervisor: Arc<Supervisor>,
    pub(super) supervise: SupervisorThread,
    /// How long to keep forwarding after withdrawing at a graceful stop.
    pub(super) stop_grace: Duration,
}

/// The slow path's thread and its input.
pub(super) struct SlowPathThread {
    pub(super) tx: Sender<SlowPathMsg<Mbuf>>,
    pub(super) thread: JoinHandle<()>,
}

/// The management API and the reload and stop triggers.
pub(super) struct Management {
    pub(super) server: ManagementServer,
    pub(super) watcher: Option<ManifestWatcher>,
    pub(super) signals: SignalListener,
    events: Receiver<MgmtEvent>,
    /// Where the tokens are read from again on SIGHUP.
    management: ManagementSettings,
}

/// How often the manifest files are polled (a change is applied once it has settled for
/// `mgmt::SETTLE`).
const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// How often the management loop releases tables no worker uses any more.
const TICK: Duration = Duration::from_secs(1);

impl Appliance {
    /// Starts the appliance described by `settings`.
    ///
    /// # Errors
    /// See [`RunError`]; nothing is left running.
    pub fn start(settings: Settings) -> Result<Running, RunError> {
        settings
            .check_cpus(&CpuSet::usable())
            .map_err(SettingsError::Invalid)?;
        let tokens = settings.management.read_tokens()?;
        let sources = settings.manifests.sources();
        if sources.mode != SourceMode::Files && sources.state.is_none() {
            log::warn!(
                "manifests.state_dir is not set: a set pushed by PUT /v1/manifests is not \
                 persisted and a restart serves the manifest files again"
            );
        }
        let initial = initial_set(&sources)?;

        // Before anything else: an interface of that name (a leftover persistent TAP)
        // refuses the start, and BIRD is told to announce nothing.
        let announcer = settings
            .announce
            .as_ref()
            .map(|a| Announcer::start(AnnounceConfig::from(a), std::time::Instant::now()))
            .transpose()?;

        let eal = Eal::init(&settings.eal_arguments())?;
        let runtime_dir = eal.runtime_dir();
        let lcores = eal.worker_lcores();
        // The settings bound the lcores to MAX_WORKERS, so the worker count is exact.
        let n_workers = (1..=MAX_WORKERS)
            .zip(&lcores)
            .next_back()
            .map_or(1, |(n, _)| n);
        let pool = Mempool::new(
            "udplb_pool",
            POOL_MBUFS,
            256,
            Mempool::DEFAULT_DATA_ROOM,
            SocketId::ANY,
        )?;
        let ports = Arc::new(PortSet::start(&settings, &pool, n_workers)?);
        let network = Arc::new(ports.with(|p| ports::network(&settings, p))?);
        let static_neighbors: Vec<StaticNeighbor> = settings
            .neighbors
            .iter()
            .map(|n| StaticNeighbor {
                // Where the routing table sends it (the fast path asks the same way).
                port: network.route(n.ip).map_or(0, |h| h.port),
                ip: n.ip,
                mac: n.mac.0,
            })
            .collect();
        let neighbors = Arc::new(Neighbors::new(
            static_neighbors.iter().map(|n| (n.ip, MacAddr(n.mac))),
        ));

        let links = Links::new(n_workers, neighbors.len());
        let (sp_tx, sp_rx) = crossbeam_channel::bounded::<SlowPathMsg<Mbuf>>(
            usize::try_from(settings.slow_path.queue_depth).unwrap_or(usize::MAX),
        );
        let sp_counters = Arc::new(SlowPathCounters::default());
        let own = ports::own_addresses(&settings);
        let publisher = Publisher {
            workers: links.tables.clone(),
            slow_path: Some(SlowPathLink {
                tx: sp_tx.clone(),
                counters: Arc::clone(&sp_counters),
                own: own.clone(),
                network: Arc::clone(&network),
            }),
            default_vips: settings.default_vips.clone(),
        };
        let observed = Observed {
            reports: links.reports.clone(),
            ports: Some(Arc::clone(&ports) as Arc<dyn crate::control::PortStats>),
            slow_path: Arc::clone(&sp_counters),
            neighbors: Arc::clone(&links.neighbors.count),
        };
        let (plane, tables) =
            ControlPlane::with_initial(control_params(&settings), publisher, observed, &initial)?;
        drop(initial);
        let plane = Arc::new(plane);

        // Slow path thread.
        let snat_on_link = ports::snat_on_link(&settings);
        let mut sp_ports = BTreeMap::new();
        for (i, own) in (0..=u16::MAX).zip(&own) {
            let mac = ports.with(|p| p[usize::from(i)].mac_addr())?;
            sp_ports.insert(
                i,
                PortAddresses {
                    mac,
                    own: own.clone(),
                    vips: plane.vips(),
                    snat: snat_on_link
                        .iter()
                        .filter(|(_, p)| *p == usize::from(i))
                        .map(|(ip, _)| *ip)
                        .collect(),
                },
            );
        }
        let slow = SlowPath::new(
            SlowPathConfig {
                ports: sp_ports,
                static_neighbors,
                tuning: SlowPathTuning {
                    reject_rate_per_sec: settings.slow_path.icmp_rate_limit,
                    ..SlowPathTuning::default()
                },
            },
            Arc::clone(&sp_counters),
        )
        .map_err(|e| RunError::Network(e.to_string()))?;
        let sink = MbufSink {
            pool: pool.clone(),
            worker: links.inject_tx.clone(),
            counters: Arc::clone(&sp_counters),
        };
        let neighbor_publisher = links.neighbors;
        let thread = std::thread::Builder::new()
            .name("udplb-slowpath".into())
            .spawn(move || {
                let _registered = Eal::get().and_then(|e| e.register_thread().ok());
                slow.run(sp_rx, sink, |map| neighbor_publisher.publish(map));
            })
            .map_err(|e| RunError::Network(format!("cannot start the slow path thread: {e}")))?;
        let slow_path = SlowPathThread { tx: sp_tx, thread };

        let workers = Workers::spawn(
            &eal,
            &lcores,
            links.workers,
            &WorkerContext {
                settings: &settings,
                ports: &ports,
                network: &network,
                tables: &tables,
                neighbors: &neighbors,
                slow_path: &slow_path.tx,
                slow_path_counters: &sp_counters,
            },
        )?;

        let health = HealthCheck::new(
            Some(Arc::clone(&ports) as Arc<dyn PortLinks>),
            links.heartbeats.clone(),
            settings.workers.heartbeat_timeout.0,
        );
        let supervisor = Supervisor::new(
            Arc::clone(&plane),
            health,
            settings.drain.deadline.0,
            announcer.is_some(),
        );
        let handler = Arc::new(ApplianceHandler::new(
            Arc::clone(&plane),
            Arc::clone(&supervisor),
        ));
        let management = Management::start(&settings, tokens, &plane, handler)?;
        let interval = settings
            .announce
            .as_ref()
            .map_or(Duration::from_millis(200), |a| a.interval.0);
        let supervise = supervisor
            .spawn(announcer, interval)
            .map_err(|e| RunError::Management(format!("cannot start the supervisor: {e}")))?;
        log::info!(
            "udplb ready: {} port(s), {} worker(s), management API on http://{}",
            ports.len(),
            n_workers,
            management.server.local_addr()
        );
        Ok(Running {
            eal,
            runtime_dir,
            pool,
            ports,
            plane,
            workers,
            slow_path,
            inject_rx: links.inject_rx,
            management,
            supervisor,
            supervise,
            stop_grace: settings
                .announce
                .as_ref()
                .map_or(Duration::ZERO, |a| a.stop_grace.0),
        })
    }
}

fn control_params(settings: &Settings) -> ControlParams {
    ControlParams {
        compile: CompileParams {
            controller_name: settings.controller_name.clone(),
            default_vips: settings.default_vips.clone(),
        },
        dataplane: DataplaneParams {
            maglev_size: settings.maglev.table_size,
            maglev_seed: settings.maglev.seed,
            default_nat_mode: settings.nat_mode,
            default_idle_timeout: settings.flows.idle_timeout.0,
            default_hash_key: settings.hash_key,
        },
        sources: settings.manifests.sources(),
    }
}

impl Management {
    fn start(
        settings: &Settings,
        tokens: Tokens,
        plane: &ControlPlane,
        handler: Arc<ApplianceHandler>,
    ) -> Result<Management, RunError> {
        let (events_tx, events) = unbounded::<MgmtEvent>();
        let signals = SignalListener::start(events_tx.clone())
            .map_err(|e| RunError::Management(e.to_string()))?;
        let watcher = if plane.sources().uses_files() {
            // Without the watcher, SIGHUP and the API still reload.
            ManifestWatcher::start(plane.sources().paths.clone(), WATCH_INTERVAL, events_tx)
                .inspect_err(|e| log::warn!("manifest files are not watched: {e}"))
                .ok()
        } else {
            None
        };
        // Changes run through the handler on the server's serial thread, so that the
        // supervisor is woken by every applied set, whatever its trigger.
        let server = ManagementServer::start_with(settings.management.listen, tokens, handler)
            .map_err(|e| RunError::Management(e.to_string()))?;
        Ok(Management {
            server,
            watcher,
            signals,
            events,
            management: settings.management.clone(),
        })
    }
}

impl Running {
    /// The management API's address (with the real port when 0 was asked for).
    pub fn management_addr(&self) -> SocketAddr {
        self.management.server.local_addr()
    }

    /// The management loop, until SIGINT or SIGTERM: hands reloads (a file change,
    /// SIGHUP) to the serial command thread without waiting for them, re-reads the tokens
    /// on SIGHUP, and releases unused tables every second. It never waits on a compile,
    /// so a stop is acted on at once.
    pub fn serve(&self) {
        let m = &self.management;
        loop {
            let event = match m.events.recv_timeout(TICK) {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => {
                    self.plane.tick();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            match event {
                MgmtEvent::Reload(reason) => {
                    if reason == ReloadReason::Sighup {
                        match m.management.read_tokens() {
                            Ok(tokens) => {
                                m.server.set_tokens(tokens);
                                log::info!("SIGHUP: management tokens read again");
                            }
                            Err(e) => log::error!("SIGHUP: keeping the previous tokens: {e}"),
                        }
                    }
                    m.server.reload(reason);
                }
                MgmtEvent::Shutdown(signal) => {
                    log::info!("{signal:?}: shutting down");
                    break;
                }
            }
        }
    }
}

/// Hands slow-path frames to worker 0, which sends them on its own TX queues: no TX
/// queue is shared between threads, and PMDs that need as many TX as RX queues (net_tap)
/// work unchanged.
struct MbufSink {
    pool: Mempool,
    worker: Sender<(u16, Mbuf)>,
    counters: Arc<SlowPathCounters>,
}

impl FrameSink for MbufSink {
    fn send(&mut self, port: u16, frame: &[u8]) {
        let sent = Mbuf::from_bytes(&self.pool, frame)
            .ok()
            .is_some_and(|mbuf| self.worker.try_send((port, mbuf)).is_ok());
        if !sent {
            self.counters
                .frames_unsent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

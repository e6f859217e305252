//! `udplb run` and `udplb status`: start-up, the management loop and graceful shutdown.
//!
//! Start-up order: settings → manifests (refused if invalid) → EAL → mempool → ports →
//! slow path thread → workers on their lcores → management API → signals and file
//! watcher. Shutdown reverses it and checks that every mbuf came back to its pool.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use config::CompileParams;
use crossbeam_channel::{unbounded, Sender};
use pipelines::neighbor::Neighbors;
use pipelines::net::{ChecksumCaps, MacAddr, Network, PortConfig, SnatConfig, StaticRoute};
use pipelines::tables::DataplaneParams;
use pipelines::{FastPath, FastPathParams};

use crate::control::{ControlPlane, PortSample, Wiring};
use crate::dpdk::{Eal, Mbuf, Mempool, Port, PortBuilder, QueueId, RuntimeDir, SocketId};
use crate::mgmt::{self, ApiBackend, ManagementServer, ManifestWatcher, MgmtEvent, SignalListener};
use crate::settings::{Settings, SnatReach};
use crate::slowpath::{
    FrameSink, PortAddresses, SlowPath, SlowPathConfig, SlowPathCounters, SlowPathMsg,
    SlowPathTuning, StaticNeighbor,
};
use crate::worker::{DpdkIo, Handoff, ReportSlot, WorkerReport, WorkerSetup};

/// Why the appliance could not start (or stopped badly).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings file is unreadable or invalid.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The manifests named in the settings are invalid.
    #[error("manifests: {0}")]
    Manifests(String),
    /// DPDK refused something.
    #[error("dpdk: {0}")]
    Dpdk(#[from] crate::dpdk::DpdkError),
    /// The network description is inconsistent.
    #[error("network: {0}")]
    Network(String),
    /// The management API could not start.
    #[error("management API: {0}")]
    Management(String),
    /// Mbufs were still held at shutdown.
    #[error("{0} mbufs did not return to the pool at shutdown")]
    LeakedMbufs(u32),
}

/// Mbufs per pool: enough for every RX/TX ring plus bursts in flight and the slow path.
const POOL_MBUFS: u32 = 16383;
const RING_SIZE: u16 = 1024;

/// Reads the settings file and runs the appliance until SIGINT/SIGTERM.
///
/// # Errors
/// See [`RunError`].
pub fn run_from_file(path: &Path) -> Result<(), RunError> {
    let settings = Settings::from_file(path)?;
    run(settings)
}

/// Hands slow-path frames to worker 0, which sends them on its own TX queues: no TX
/// queue is shared between threads, and PMDs that need as many TX as RX queues (net_tap)
/// work unchanged.
struct MbufSink {
    pool: Mempool,
    worker: Sender<(u16, Mbuf)>,
    failed: Arc<AtomicUsize>,
}

impl FrameSink for MbufSink {
    fn send(&mut self, port: u16, frame: &[u8]) {
        let sent = Mbuf::from_bytes(&self.pool, frame)
            .ok()
            .is_some_and(|mbuf| self.worker.try_send((port, mbuf)).is_ok());
        if !sent {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs the appliance described by `settings` until SIGINT/SIGTERM.
///
/// # Errors
/// See [`RunError`].
pub fn run(settings: Settings) -> Result<(), RunError> {
    let token = settings.management.read_token()?;
    let objects = if settings.manifests.is_empty() {
        config::ObjectSet::default()
    } else {
        config::load_paths(&settings.manifests).map_err(|e| RunError::Manifests(e.to_string()))?
    };

    let eal = Eal::init(&settings.eal_arguments())?;
    let runtime_dir = eal.runtime_dir();
    let worker_lcores = eal.worker_lcores();
    // The settings bound the lcores to MAX_WORKERS, so the worker count is exact.
    let workers = (1..=crate::settings::MAX_WORKERS)
        .zip(&worker_lcores)
        .next_back()
        .map_or(1, |(n, _)| n);
    let pool = Mempool::new(
        "udplb_pool",
        POOL_MBUFS,
        256,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )?;

    // Ports: one RX/TX queue pair per worker.
    let mut ports: Vec<Port> = Vec::new();
    // Mbufs that net_af_xdp ports keep after they close (DPDK 22.11 does not return them):
    // those parked in their fill rings at set-up, measured, plus at most one TX ring per
    // queue of frames awaiting completion. Not counted as a leak.
    let mut parked_by_af_xdp = 0u32;
    for p in &settings.ports {
        let mut b = PortBuilder::new(&p.device)?
            .rx_queues(workers)
            .tx_queues(workers)
            .rx_ring_size(RING_SIZE)
            .tx_ring_size(RING_SIZE)
            .mempool(&pool)
            .rss(workers > 1)
            .tx_checksum_offload(true)
            .mtu(p.mtu);
        if let Some(mac) = p.mac {
            b = b.mac_addr(mac.0);
        }
        let before_start = pool.in_use();
        let mut port = b.build()?;
        port.start()?;
        if port.driver() == "net_af_xdp" {
            parked_by_af_xdp += pool.in_use().saturating_sub(before_start)
                + u32::from(RING_SIZE) * u32::from(workers);
        }
        log::info!(
            "port {} ({}): driver {}, mac {}, checksum offload {:?}",
            p.name,
            p.device,
            port.driver(),
            fmt_mac(port.mac_addr()?),
            port.checksum_offload()
        );
        ports.push(port);
    }

    let network = Arc::new(build_network(&settings, &ports)?);
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

    // Channels: tables and neighbors to each worker, frames to the slow path.
    let (sp_tx, sp_rx) =
        crossbeam_channel::bounded::<SlowPathMsg<Mbuf>>(settings.slow_path.queue_depth as usize);
    let sp_counters = Arc::new(SlowPathCounters::default());
    let mut tables_txs = Vec::new();
    let mut tables_rxs = Vec::new();
    let mut nb_txs: Vec<Sender<Arc<Neighbors>>> = Vec::new();
    let mut nb_rxs = Vec::new();
    let mut reports: Vec<ReportSlot> = Vec::new();
    for _ in 0..workers {
        let (t, r) = unbounded();
        tables_txs.push(t);
        tables_rxs.push(r);
        let (t, r) = unbounded();
        nb_txs.push(t);
        nb_rxs.push(r);
        reports.push(Arc::new(Mutex::new(WorkerReport::default())));
    }

    let neighbor_count = Arc::new(AtomicUsize::new(neighbors.len()));
    let own: Vec<Vec<(IpAddr, u8)>> = settings
        .ports
        .iter()
        .map(|p| {
            p.addresses
                .iter()
                .map(|a| (a.addr(), a.prefix_len()))
                .collect()
        })
        .collect();
    let vip_tx = sp_tx.clone();
    let resolve_tx = sp_tx.clone();
    let resolve_counters = Arc::clone(&sp_counters);
    let resolve_network = Arc::clone(&network);
    let vip_counters = Arc::clone(&sp_counters);
    let own_for_vips = own.clone();
    let port_names: Vec<String> = settings.ports.iter().map(|p| p.name.clone()).collect();
    // Ports stay here for statistics until shutdown; workers hold only queue handles.
    let shared_ports: Arc<Mutex<Vec<Port>>> = Arc::new(Mutex::new(Vec::new()));
    let stats_ports_read = Arc::clone(&shared_ports);
    let sp_counters_read = Arc::clone(&sp_counters);
    // Slow-path frames that could not be handed to a worker for transmission.
    let sink_failed = Arc::new(AtomicUsize::new(0));
    let sink_failed_read = Arc::clone(&sink_failed);
    let neighbor_count_read = Arc::clone(&neighbor_count);
    let wiring = Wiring {
        workers: tables_txs,
        reports: reports.clone(),
        set_vips: Box::new(move |vips: Vec<IpAddr>| {
            for (port, own) in (0..=u16::MAX).zip(own_for_vips.iter()) {
                let msg = SlowPathMsg::UpdateAddresses {
                    port,
                    own: own.clone(),
                    vips: vips.clone(),
                };
                if !vip_counters.try_send(&vip_tx, msg) {
                    log::warn!("slow path queue full: VIP update for port {port} lost");
                }
            }
        }),
        resolve: Box::new(move |addrs: Vec<IpAddr>| {
            for ip in addrs {
                // Resolve the next hop the fast path will use for this backend.
                let Some(hop) = resolve_network.route(ip) else {
                    continue;
                };
                let msg = SlowPathMsg::Resolve {
                    port: hop.port,
                    next_hop: hop.via,
                };
                resolve_counters.try_send(&resolve_tx, msg);
            }
        }),
        port_stats: Box::new(move || {
            let ports = stats_ports_read.lock().unwrap_or_else(|e| e.into_inner());
            port_names
                .iter()
                .zip(ports.iter())
                .map(|(name, port)| port_sample(name, port))
                .collect()
        }),
        extra_counters: Box::new(move || {
            let mut named = sp_counters_read.named();
            let unsent = sink_failed_read.load(Ordering::Relaxed);
            named.push(("frames_unsent", u64::try_from(unsent).unwrap_or(u64::MAX)));
            named
        }),
        neighbors: Box::new(move || neighbor_count_read.load(Ordering::Relaxed)),
    };
    let dataplane = DataplaneParams {
        maglev_size: settings.maglev.table_size,
        maglev_seed: settings.maglev.seed,
        default_nat_mode: settings.nat_mode,
        default_idle_timeout: settings.flows.idle_timeout.0,
        default_hash_key: settings.hash_key,
    };
    let params = CompileParams {
        controller_name: settings.controller_name.clone(),
        default_vips: settings.default_vips.clone(),
    };
    let (plane, tables) = ControlPlane::new(
        params,
        dataplane,
        settings.manifests.clone(),
        wiring,
        &objects,
    )
    .map_err(RunError::Manifests)?;
    let plane = Arc::new(plane);

    // Slow path thread.
    let snat_on_link = snat_ports(&settings);
    let mut sp_ports = BTreeMap::new();
    for ((i, port), own) in (0..=u16::MAX).zip(&ports).zip(&own) {
        sp_ports.insert(
            i,
            PortAddresses {
                mac: port.mac_addr()?,
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
    let tuning = SlowPathTuning {
        reject_rate_per_sec: settings.slow_path.icmp_rate_limit,
        ..SlowPathTuning::default()
    };
    let slow = SlowPath::new(
        SlowPathConfig {
            ports: sp_ports,
            static_neighbors,
            tuning,
        },
        Arc::clone(&sp_counters),
    )
    .map_err(|e| RunError::Network(e.to_string()))?;
    let (inject_tx, inject_rx) = crossbeam_channel::bounded::<(u16, Mbuf)>(1024);
    let sink = MbufSink {
        pool: pool.clone(),
        worker: inject_tx,
        failed: Arc::clone(&sink_failed),
    };
    let nb_count = Arc::clone(&neighbor_count);
    let slow_thread = std::thread::Builder::new()
        .name("udplb-slowpath".into())
        .spawn(move || {
            let _registered = Eal::get().and_then(|e| e.register_thread().ok());
            slow.run(sp_rx, sink, move |map: &BTreeMap<IpAddr, [u8; 6]>| {
                let snap = Arc::new(Neighbors::new(
                    map.iter().map(|(ip, mac)| (*ip, MacAddr(*mac))),
                ));
                nb_count.store(snap.len(), Ordering::Relaxed);
                for tx in &nb_txs {
                    let _ = tx.send(Arc::clone(&snap));
                }
            });
        })
        .map_err(|e| RunError::Network(format!("cannot start the slow path thread: {e}")))?;

    // Workers.
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let snat_pool = network.snat().ports;
    let mut jobs = Vec::new();
    let mut handoffs = Handoff::<Mbuf>::mesh(workers, 1024).into_iter();
    for (id, (lcore, (tables_rx, neighbors_rx))) in
        (0..workers).zip(worker_lcores.iter().zip(tables_rxs.into_iter().zip(nb_rxs)))
    {
        let wp = FastPathParams {
            flow_capacity: (settings.flows.capacity / u32::from(workers)).max(1),
            new_flow_rate_limit: settings.flows.new_flow_rate_limit,
            ..FastPathParams::new(id, workers, snat_pool)
        };
        let fast_path = FastPath::new(wp).map_err(|e| RunError::Network(e.to_string()))?;
        let handoff = handoffs
            .next()
            .ok_or_else(|| RunError::Network("handoff channels missing".into()))?;
        let setup = WorkerSetup::builder(
            fast_path,
            DpdkIo::claim(&ports, QueueId(id))?,
            Arc::clone(&network),
            Arc::clone(&tables),
        )
        .table_updates(tables_rx)
        .neighbors(Arc::clone(&neighbors))
        .neighbor_updates(neighbors_rx)
        .slow_path(sp_tx.clone(), Arc::clone(&sp_counters))
        .report(Arc::clone(&reports[usize::from(id)]))
        .inject(if id == 0 {
            inject_rx.clone()
        } else {
            crossbeam_channel::never()
        })
        .handoff(handoff)
        .stop(Arc::clone(&stop))
        .idle_backoff(Duration::from_micros(u64::from(
            settings.workers.idle_backoff_us,
        )))
        .epoch(epoch)
        .build();
        jobs.push(setup.launch(&eal, *lcore)?);
    }
    if jobs.is_empty() {
        return Err(RunError::Network(
            "no worker lcore: list at least one in workers.lcores".into(),
        ));
    }

    let n_ports = ports.len();
    *shared_ports.lock().unwrap_or_else(|e| e.into_inner()) = ports;

    // Management API, reload triggers, signals.
    let (events_tx, events_rx) = unbounded::<MgmtEvent>();
    let signals = SignalListener::start(events_tx.clone())
        .map_err(|e| RunError::Management(e.to_string()))?;
    let watcher = if settings.manifests.is_empty() {
        None
    } else {
        Some(ManifestWatcher::start(
            settings.manifests.clone(),
            Duration::from_secs(1),
            events_tx.clone(),
        ))
    };
    let control: Arc<dyn ApiBackend> = Arc::new(ApiControl(Arc::clone(&plane)));
    let server = ManagementServer::start(settings.management.listen, token, control)
        .map_err(|e| RunError::Management(e.to_string()))?;
    log::info!(
        "udplb ready: {} port(s), {} worker(s), management API on http://{}",
        n_ports,
        workers,
        server.local_addr()
    );

    for event in events_rx.iter() {
        match event {
            MgmtEvent::Reload(reason) => match plane.reload_files() {
                Ok(_) => log::info!("manifests reloaded ({reason:?})"),
                Err(e) => log::error!(
                    "manifests refused ({reason:?}), still serving the previous set:\n{e}"
                ),
            },
            MgmtEvent::Shutdown(signal) => {
                log::info!("{signal:?}: shutting down");
                break;
            }
        }
    }

    // Shutdown: API, watcher, workers, slow path, ports; then count mbufs.
    server.shutdown();
    drop(watcher);
    drop(signals);
    stop.store(true, Ordering::Relaxed);
    for job in jobs {
        if let Err(e) = job.wait() {
            log::error!("worker: {e}");
        }
    }
    let _ = sp_tx.send(SlowPathMsg::Shutdown);
    drop(sp_tx);
    if slow_thread.join().is_err() {
        log::error!("the slow path thread panicked");
    }
    drop(plane);
    let ports = std::mem::take(&mut *shared_ports.lock().unwrap_or_else(|e| e.into_inner()));
    for mut port in ports {
        if let Err(e) = port.stop() {
            log::warn!("stopping port {}: {e}", port.name());
        }
    }
    // Slow-path frames nobody sent any more go back to the pool.
    drop(inject_rx);
    let in_use = pool.in_use();
    let leaked = in_use.saturating_sub(parked_by_af_xdp);
    if in_use > leaked {
        log::info!(
            "{} mbufs stay with the closed net_af_xdp ports (fill rings and TX completions \
             the PMD does not return; not a leak)",
            in_use - leaked
        );
    }
    log::info!("shutdown complete: {leaked} mbufs outstanding");
    drop(pool);
    finish_eal(eal, runtime_dir);
    if leaked != 0 {
        return Err(RunError::LeakedMbufs(leaked));
    }
    Ok(())
}

/// Releases the EAL and removes its runtime directory, which DPDK leaves behind. Cleanup is
/// refused while a mempool lives on (mbufs still out); the process exits right after, so
/// the directory goes either way.
fn finish_eal(eal: Eal, runtime_dir: Option<RuntimeDir>) {
    if let Err(e) = eal.cleanup() {
        log::info!("EAL not cleaned up, exiting without: {e}");
    }
    let Some(dir) = runtime_dir else {
        return;
    };
    match dir.remove() {
        Ok(true) => log::info!("removed DPDK runtime directory {}", dir.path().display()),
        Ok(false) => log::info!(
            "left DPDK runtime directory {}: it holds files of other processes (without a \
             shared configuration they may use the same file prefix)",
            dir.path().display()
        ),
        Err(e) => log::warn!(
            "cannot remove DPDK runtime directory {}: {e}",
            dir.path().display()
        ),
    }
}

/// The management API's view of the control plane.
struct ApiControl(Arc<ControlPlane>);

impl ApiBackend for ApiControl {
    fn apply_manifests(&self, yaml: &str) -> Result<String, String> {
        self.0.apply_yaml(yaml)
    }
    fn status_yaml(&self) -> String {
        self.0.status_yaml()
    }
    fn metrics(&self) -> String {
        self.0.metrics()
    }
    fn healthy(&self) -> bool {
        true
    }
}

fn build_network(settings: &Settings, ports: &[Port]) -> Result<Network, RunError> {
    let mut configs = Vec::new();
    for (p, port) in settings.ports.iter().zip(ports) {
        let off = port.checksum_offload();
        let mut caps = ChecksumCaps::empty();
        if off.ipv4_header {
            caps |= ChecksumCaps::IPV4;
        }
        if off.udp {
            caps |= ChecksumCaps::UDP;
        }
        configs.push(PortConfig {
            mac: MacAddr(port.mac_addr()?),
            addresses: p.addresses.clone(),
            checksum: caps,
            // Kernel-attached PMDs pass on what a local sender's veth hands them.
            unfinished_rx_checksums: matches!(port.driver(), "net_af_xdp" | "net_af_packet"),
        });
    }
    let mut routes = Vec::new();
    for r in &settings.routes {
        let (idx, _) = settings
            .port(&r.port)
            .ok_or_else(|| RunError::Network(format!("routes: no port named {:?}", r.port)))?;
        routes.push(StaticRoute {
            prefix: r.prefix,
            next_hop: r.via,
            port: idx,
        });
    }
    let snat = SnatConfig {
        ipv4: settings.snat.ipv4,
        ipv6: settings.snat.ipv6,
        ports: settings.snat.ports,
    };
    Network::new(configs, routes, snat).map_err(|e| RunError::Network(e.to_string()))
}

/// The on-link SNAT addresses with the port that answers ARP/NDP for them; logs where
/// each SNAT address is reached from, so an operator sees which port owns it.
fn snat_ports(settings: &Settings) -> Vec<(IpAddr, usize)> {
    let mut on_link = Vec::new();
    for (field, ip) in settings.snat_addresses() {
        match settings.snat_reach(ip) {
            Some(SnatReach::OnLink { port }) => {
                log::info!(
                    "{field} {ip}: on the link of port {}, which answers ARP/NDP and ping for it",
                    settings.ports[port].name
                );
                on_link.push((ip, port));
            }
            Some(SnatReach::Routed { route }) => log::info!(
                "{field} {ip}: inside no port's prefix, covered by routes[{route}]; no port \
                 answers ARP/NDP for it, the network must route it to this appliance"
            ),
            // Refused by settings validation.
            None => {}
        }
    }
    on_link
}

fn port_sample(name: &str, port: &Port) -> PortSample {
    let s = port.stats().unwrap_or_default();
    PortSample {
        name: name.to_owned(),
        rx_packets: s.ipackets,
        rx_bytes: s.ibytes,
        tx_packets: s.opackets,
        tx_bytes: s.obytes,
        rx_missed: s.imissed,
        rx_errors: s.ierrors,
        tx_errors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `udplb status`: prints the running appliance's Gateway API status and key counters.
///
/// # Errors
/// The API cannot be reached or answers with an error.
pub fn print_status(api: &str, full_metrics: bool) -> Result<(), String> {
    let (code, status) = mgmt::fetch(api, "/v1/status").map_err(|e| e.to_string())?;
    if code != 200 {
        return Err(format!("GET /v1/status: HTTP {code}: {status}"));
    }
    let (code, metrics) = mgmt::fetch(api, "/metrics").map_err(|e| e.to_string())?;
    if code != 200 {
        return Err(format!("GET /metrics: HTTP {code}"));
    }
    if full_metrics {
        print!("{metrics}");
        return Ok(());
    }
    print!("{status}");
    println!("---\n# key counters");
    for line in metrics.lines() {
        if line.starts_with('#') {
            continue;
        }
        let key = [
            "udplb_config_",
            "udplb_port_rx_packets",
            "udplb_port_tx_packets",
            "udplb_flows_active",
            "udplb_flows_created",
            "udplb_drops_total",
            "udplb_backend_packets_total",
            "udplb_neighbors",
        ];
        let value_nonzero = !line.ends_with(" 0");
        if key.iter().any(|k| line.starts_with(k))
            && (value_nonzero || line.starts_with("udplb_config_"))
        {
            println!("{line}");
        }
    }
    Ok(())
}

//! The control plane: Gateway API manifests in, published tables, status and metrics out.
//!
//! Manifests come from files (at start, on change, on SIGHUP) or from `PUT /v1/manifests`;
//! the most recent valid set wins. A set is validated and compiled (`config`), its tables
//! built (`pipelines`), and only then published whole to every worker: a rejected set
//! leaves the running configuration untouched. The I/O it needs (workers' channels, the
//! slow path's VIP list, port statistics) is injected, so it is tested without DPDK.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use config::{CompileParams, ObjectSet};
use crossbeam_channel::Sender;
use pipelines::counters::{Counters, Entity, EntityCounters, MetricKind, Traffic};
use pipelines::tables::{DataplaneParams, Tables};

use crate::metrics::{MetricType, MetricsWriter};
use crate::worker::ReportSlot;

/// Statistics of one DPDK port, as the metrics show them.
#[derive(Clone, Debug, Default)]
pub struct PortSample {
    /// Port name from the settings.
    pub name: String,
    /// Received packets.
    pub rx_packets: u64,
    /// Received bytes.
    pub rx_bytes: u64,
    /// Transmitted packets.
    pub tx_packets: u64,
    /// Transmitted bytes.
    pub tx_bytes: u64,
    /// Packets the NIC dropped for lack of RX descriptors.
    pub rx_missed: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// RX mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// Worker-loop tallies summed over workers.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopTotals {
    /// Datagrams the TX queues refused.
    pub tx_refused: u64,
    /// Frames that did not fit in the slow path's channel.
    pub host_overflow: u64,
    /// Replies passed to the worker owning their flow.
    pub handed_off: u64,
    /// Replies that could not be passed on.
    pub handoff_overflow: u64,
    /// Datagrams held for neighbor resolution.
    pub held: u64,
    /// Held datagrams dropped (not resolved in time, or the hold queue full).
    pub hold_expired: u64,
}

/// What the control plane is wired to.
pub struct Wiring {
    /// One channel per worker: new tables.
    pub workers: Vec<Sender<Arc<Tables>>>,
    /// Each worker's counter report.
    pub reports: Vec<ReportSlot>,
    /// Called with every VIP after a successful apply (the slow path answers ARP/ND/ICMP).
    pub set_vips: Box<dyn Fn(Vec<IpAddr>) + Send + Sync>,
    /// Called with every backend address after a successful apply, so the slow path
    /// resolves their next hops before the first datagram needs them.
    pub resolve: Box<dyn Fn(Vec<IpAddr>) + Send + Sync>,
    /// Port statistics, read when metrics are scraped.
    pub port_stats: Box<dyn Fn() -> Vec<PortSample> + Send + Sync>,
    /// Extra `(name, value)` counters (slow path), read when metrics are scraped.
    pub extra_counters: Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>,
    /// Number of neighbor entries, read when metrics are scraped.
    pub neighbors: Box<dyn Fn() -> usize + Send + Sync>,
}

/// The running configuration and counter totals.
struct State {
    status_yaml: String,
    status_json: String,
    tables: Arc<Tables>,
    /// Tables of recent generations, to name the counters workers retire.
    by_generation: HashMap<u64, Arc<Tables>>,
    /// Identity-keyed totals of retired generations.
    totals: BTreeMap<Entity, Traffic>,
    /// Configuration generation (1 = the first applied set).
    generation: u64,
}

/// Compiles and publishes manifests; answers status and metrics.
pub struct ControlPlane {
    params: CompileParams,
    dataplane: DataplaneParams,
    manifests: Vec<PathBuf>,
    default_vips: Vec<IpAddr>,
    wiring: Wiring,
    state: Mutex<State>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

/// Generations of tables kept to name retired counters.
const KEEP_GENERATIONS: usize = 16;

impl ControlPlane {
    /// Compiles `objects` as the initial configuration and publishes it.
    ///
    /// # Errors
    /// The tables cannot be built (e.g. a Maglev table too small for a route).
    pub fn new(
        params: CompileParams,
        dataplane: DataplaneParams,
        manifests: Vec<PathBuf>,
        wiring: Wiring,
        objects: &ObjectSet,
    ) -> Result<(ControlPlane, Arc<Tables>), String> {
        let (tables, status_yaml, status_json) = compile(objects, &params, &dataplane)?;
        let tables = Arc::new(tables);
        let default_vips = params.default_vips.clone();
        let plane = ControlPlane {
            params,
            dataplane,
            manifests,
            default_vips,
            wiring,
            state: Mutex::new(State {
                status_yaml,
                status_json,
                tables: Arc::clone(&tables),
                by_generation: HashMap::from([(tables.generation(), Arc::clone(&tables))]),
                totals: BTreeMap::new(),
                generation: 1,
            }),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        };
        (plane.wiring.set_vips)(plane.vips_of(&tables));
        (plane.wiring.resolve)(backend_addrs(&tables));
        Ok((plane, tables))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every VIP the running configuration serves (listeners' and default VIPs), which
    /// the slow path answers ARP, ND and ping for.
    pub fn vips(&self) -> Vec<IpAddr> {
        self.vips_of(&self.tables())
    }

    fn vips_of(&self, tables: &Tables) -> Vec<IpAddr> {
        let set: BTreeSet<IpAddr> = tables
            .listeners()
            .iter()
            .map(|l| l.vip)
            .chain(self.default_vips.iter().copied())
            .collect();
        set.into_iter().collect()
    }

    /// Validates, compiles and publishes `objects`; returns the status YAML.
    ///
    /// # Errors
    /// Why the set was refused; the running configuration is unchanged.
    pub fn apply(&self, objects: &ObjectSet) -> Result<String, String> {
        let result = compile(objects, &self.params, &self.dataplane);
        let (tables, status_yaml, status_json) = match result {
            Ok(v) => v,
            Err(e) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let tables = Arc::new(tables);
        let mut st = self.state();
        for w in &self.wiring.workers {
            // A worker that has exited no longer needs tables.
            let _ = w.send(Arc::clone(&tables));
        }
        (self.wiring.set_vips)(self.vips_of(&tables));
        (self.wiring.resolve)(backend_addrs(&tables));
        st.by_generation
            .insert(tables.generation(), Arc::clone(&tables));
        if st.by_generation.len() > KEEP_GENERATIONS {
            let oldest = st.by_generation.keys().min().copied();
            if let Some(g) = oldest {
                st.by_generation.remove(&g);
            }
        }
        st.tables = tables;
        st.status_yaml = status_yaml.clone();
        st.status_json = status_json;
        st.generation += 1;
        drop(st);
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        Ok(status_yaml)
    }

    /// Applies the YAML body of `PUT /v1/manifests`.
    ///
    /// # Errors
    /// The precise load, validation or build errors.
    pub fn apply_yaml(&self, yaml: &str) -> Result<String, String> {
        match config::load_str("PUT /v1/manifests", yaml) {
            Ok(objects) => self.apply(&objects),
            Err(e) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                Err(e.to_string())
            }
        }
    }

    /// Reloads the manifest files named in the settings.
    ///
    /// # Errors
    /// The precise load, validation or build errors.
    pub fn reload_files(&self) -> Result<String, String> {
        match config::load_paths(&self.manifests) {
            Ok(objects) => self.apply(&objects),
            Err(e) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
                Err(e.to_string())
            }
        }
    }

    /// The status of the running configuration, as `udplb check` prints it.
    pub fn status_yaml(&self) -> String {
        self.state().status_yaml.clone()
    }

    /// The same as JSON.
    pub fn status_json(&self) -> String {
        self.state().status_json.clone()
    }

    /// The running tables.
    pub fn tables(&self) -> Arc<Tables> {
        Arc::clone(&self.state().tables)
    }

    /// Sums every worker's counters (identity-keyed entity totals included).
    pub fn counters(&self) -> (Counters, BTreeMap<Entity, Traffic>, LoopTotals) {
        let mut st = self.state();
        let mut sum = Counters::default();
        let mut live: BTreeMap<Entity, Traffic> = BTreeMap::new();
        let mut totals = LoopTotals::default();
        for slot in &self.wiring.reports {
            let mut r = slot.lock().unwrap_or_else(|e| e.into_inner());
            for retired in r.retired.drain(..) {
                let named = st
                    .by_generation
                    .get(&retired.generation)
                    .and_then(|t| retired.named(t));
                for (entity, t) in named.into_iter().flatten() {
                    st.totals.entry(entity).or_default().add(&t);
                }
            }
            let current = st
                .by_generation
                .get(&r.counters.entities.generation)
                .and_then(|t| r.counters.entities.named(t));
            for (entity, t) in current.into_iter().flatten() {
                live.entry(entity).or_default().add(&t);
            }
            let mut c = r.counters.clone();
            // Entities are summed by identity above; merge the scalar counters only.
            c.entities = EntityCounters::default();
            sum.merge(&c);
            totals.tx_refused += r.drops.tx_refused;
            totals.host_overflow += r.drops.host_overflow;
            totals.handed_off += r.events.handed_off;
            totals.handoff_overflow += r.drops.handoff_overflow;
            totals.held += r.events.held;
            totals.hold_expired += r.drops.hold_expired;
        }
        for (entity, t) in &st.totals {
            live.entry(entity.clone()).or_default().add(t);
        }
        (sum, live, totals)
    }

    /// Prometheus text exposition of everything the appliance counts.
    pub fn metrics(&self) -> String {
        let (c, entities, totals) = self.counters();
        let generation = self.state().generation;
        let mut m = MetricsWriter::new();
        m.family(
            "udplb_config_generation",
            "Configuration generation (1 = the set loaded at start).",
            MetricType::Gauge,
        )
        .sample(&[], generation);
        let mut f = m.family(
            "udplb_config_reloads_total",
            "Manifest sets applied (ok) or refused (failed) after start.",
            MetricType::Counter,
        );
        f.sample(&[("result", "ok")], self.reloads_ok.load(Ordering::Relaxed));
        f.sample(
            &[("result", "failed")],
            self.reloads_failed.load(Ordering::Relaxed),
        );
        let ports = (self.wiring.port_stats)();
        port_metrics(&mut m, &ports);
        // The fast path's counters, declared once in pipelines (counters!).
        for metric in c.metrics() {
            let kind = match metric.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
            };
            m.family(&format!("udplb_{}", metric.name), metric.help, kind)
                .sample(&[], metric.value);
        }
        let mut f = m.family(
            "udplb_drops_total",
            "Packets dropped by the fast path, by reason.",
            MetricType::Counter,
        );
        for (reason, v) in c.drops_named() {
            f.sample(&[("reason", reason)], v);
        }
        f.sample(&[("reason", "tx_refused")], totals.tx_refused);
        f.sample(&[("reason", "slow_path_overflow")], totals.host_overflow);
        f.sample(&[("reason", "handoff_overflow")], totals.handoff_overflow);
        f.sample(&[("reason", "neighbor_unresolved")], totals.hold_expired);
        m.family(
            "udplb_held_for_resolution_total",
            "Datagrams held while their next hop was resolved (each is processed again, so \
             it also counts again in udplb_rx_packets_total).",
            MetricType::Counter,
        )
        .sample(&[], totals.held);
        m.family(
            "udplb_handoff_total",
            "Replies passed to the worker that owns their flow (full NAT, several workers).",
            MetricType::Counter,
        )
        .sample(&[], totals.handed_off);
        let mut f = m.family(
            "udplb_host_packets_total",
            "Packets handed to the slow path, by reason.",
            MetricType::Counter,
        );
        for r in 0..pipelines::HostReason::COUNT {
            f.sample(&[("reason", pipelines::HostReason::NAMES[r])], c.to_host[r]);
        }
        let mut f = m.family(
            "udplb_slow_path_total",
            "Slow path events (ARP/ND replies, echo, resolutions, ICMP rejects), by kind.",
            MetricType::Counter,
        );
        for (name, v) in (self.wiring.extra_counters)() {
            f.sample(&[("event", name)], v);
        }
        m.family(
            "udplb_neighbors",
            "Entries in the neighbor table.",
            MetricType::Gauge,
        )
        .sample(&[], (self.wiring.neighbors)());
        entity_metrics(&mut m, &entities);
        m.finish()
    }
}

/// Every backend address of every route, once.
fn backend_addrs(tables: &Tables) -> Vec<IpAddr> {
    let set: BTreeSet<IpAddr> = tables
        .backend_ids()
        .iter()
        .map(|(_, addr)| addr.ip())
        .collect();
    set.into_iter().collect()
}

fn compile(
    objects: &ObjectSet,
    params: &CompileParams,
    dataplane: &DataplaneParams,
) -> Result<(Tables, String, String), String> {
    let compiled = config::compile(objects, params);
    let tables = Tables::build(&compiled.forwarding, dataplane).map_err(|e| e.to_string())?;
    Ok((
        tables,
        config::status_yaml(&compiled.status),
        config::status_json(&compiled.status),
    ))
}

fn port_metrics(m: &mut MetricsWriter, ports: &[PortSample]) {
    type Get = fn(&PortSample) -> u64;
    let families: [(&str, &str, Get); 8] = [
        (
            "udplb_port_rx_packets_total",
            "Packets received by the port.",
            |p| p.rx_packets,
        ),
        (
            "udplb_port_rx_bytes_total",
            "Bytes received by the port.",
            |p| p.rx_bytes,
        ),
        (
            "udplb_port_tx_packets_total",
            "Packets sent by the port.",
            |p| p.tx_packets,
        ),
        (
            "udplb_port_tx_bytes_total",
            "Bytes sent by the port.",
            |p| p.tx_bytes,
        ),
        (
            "udplb_port_rx_missed_total",
            "Packets the NIC dropped: RX queues full.",
            |p| p.rx_missed,
        ),
        ("udplb_port_rx_errors_total", "Receive errors.", |p| {
            p.rx_errors
        }),
        ("udplb_port_tx_errors_total", "Transmit errors.", |p| {
            p.tx_errors
        }),
        (
            "udplb_port_rx_nombuf_total",
            "RX mbuf allocation failures.",
            |p| p.rx_nombuf,
        ),
    ];
    for (name, help, get) in families {
        let mut f = m.family(name, help, MetricType::Counter);
        for p in ports {
            f.sample(&[("port", &p.name)], get(p));
        }
    }
}

fn entity_metrics(m: &mut MetricsWriter, entities: &BTreeMap<Entity, Traffic>) {
    type Get = fn(&Traffic) -> u64;
    let fields: [(&str, &str, Get); 5] = [
        ("packets_total", "Client datagrams forwarded", |t| t.packets),
        ("bytes_total", "Client bytes forwarded", |t| t.bytes),
        ("reply_packets_total", "Reply datagrams forwarded", |t| {
            t.reply_packets
        }),
        ("reply_bytes_total", "Reply bytes forwarded", |t| {
            t.reply_bytes
        }),
        ("flows_created_total", "Flows created", |t| t.flows_created),
    ];
    for (kind, what) in [
        ("listener", "listener"),
        ("route", "route"),
        ("backend", "backend"),
    ] {
        for (field, help, get) in fields {
            let name = format!("udplb_{kind}_{field}");
            let mut f = m.family(&name, &format!("{help}, per {what}."), MetricType::Counter);
            for (entity, t) in entities {
                match (kind, entity) {
                    ("listener", Entity::Listener(l)) => {
                        f.sample(
                            &[
                                ("namespace", &l.namespace),
                                ("gateway", &l.gateway),
                                ("listener", &l.listener),
                            ],
                            get(t),
                        );
                    }
                    ("route", Entity::Route(r)) => {
                        f.sample(&[("namespace", &r.namespace), ("route", &r.name)], get(t));
                    }
                    ("backend", Entity::Backend(l, addr)) => {
                        let addr = addr.to_string();
                        f.sample(
                            &[
                                ("namespace", &l.namespace),
                                ("gateway", &l.gateway),
                                ("listener", &l.listener),
                                ("backend", &addr),
                            ],
                            get(t),
                        );
                    }
                    _ => {}
                }
            }
        }
    }
}

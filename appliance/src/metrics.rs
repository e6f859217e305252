//! The metrics exposition: one [`MetricsSnapshot`] rendered through `prometheus-client`,
//! as the Prometheus text format (0.0.4) or OpenMetrics 1.0.
//!
//! Design note. Counters live where they are counted (per-worker structs in `pipelines`,
//! slow-path atomics, DPDK port statistics); the control plane sums them into a snapshot
//! when a scrape asks ([`crate::control`]), and a custom [`Collector`] encodes that
//! snapshot: no registry object holds a second copy of any counter. Families declared with
//! `pipelines::counters!` are rendered by walking their descriptors (name, HELP, kind), so
//! a counter added there appears here with no change to this file.
//!
//! Names are byte-identical in both formats: a counter is registered without its `_total`
//! (the encoder appends it) and a `_bytes` suffix becomes the `bytes` unit (OpenMetrics
//! writes `# UNIT`; both formats put the suffix back on the name). The 0.0.4 output is what
//! the hand-written exposition before it printed, HELP and TYPE lines included
//! (`tests/metrics_exposition.rs` holds it to a golden file).

use std::collections::BTreeMap;

use pipelines::counters::{Counters, Entity, Metric, MetricKind, Traffic};
use pipelines::HostReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::slowpath::SlowPathStats;
use crate::worker::{LoopCounters, LoopDrops};

/// The exposition formats `GET /metrics` offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MetricsFormat {
    /// Prometheus text format 0.0.4 (the default, for scrapers that do not ask).
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 text (`# UNIT` lines, counter families without `_total`, `# EOF`).
    OpenMetrics,
}

impl MetricsFormat {
    /// The format a scraper asks for in its `Accept` header: OpenMetrics when it names
    /// `application/openmetrics-text` (as Prometheus does), else the 0.0.4 text.
    pub fn negotiate(accept: Option<&str>) -> MetricsFormat {
        let wants_openmetrics = accept.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut params = part.split(';').map(str::trim);
                let is_type = params
                    .next()
                    .is_some_and(|t| t.eq_ignore_ascii_case("application/openmetrics-text"));
                // `q=0` means "not acceptable".
                is_type && !params.any(|p| p.replace(' ', "") == "q=0")
            })
        });
        if wants_openmetrics {
            MetricsFormat::OpenMetrics
        } else {
            MetricsFormat::Prometheus
        }
    }

    /// The `Content-Type` of an exposition in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            MetricsFormat::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            MetricsFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

/// Statistics of one DPDK port, as the metrics show them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

/// Everything the appliance counts, at one moment: what a scrape renders.
#[derive(Clone, Debug, Default)]
pub struct MetricsSnapshot {
    /// Configuration generation (1 = the set loaded at start).
    pub generation: u64,
    /// Manifest sets applied after start.
    pub reloads_ok: u64,
    /// Manifest sets refused after start.
    pub reloads_failed: u64,
    /// Every port's statistics, in port order.
    pub ports: Vec<PortSample>,
    /// The fast path's counters summed over workers (entities excluded: see `entities`).
    pub fast_path: Counters,
    /// Worker-loop drops summed over workers (more `udplb_drops_total` reasons).
    pub loop_drops: LoopDrops,
    /// Other worker-loop tallies summed over workers.
    pub loop_counters: LoopCounters,
    /// The slow path's counters.
    pub slow_path: SlowPathStats,
    /// Entries in the neighbor table.
    pub neighbors: u64,
    /// Identity-keyed traffic per listener, route and backend, over every generation.
    pub entities: BTreeMap<Entity, Traffic>,
    /// Backend endpoints that serve several preserve-client listeners (their flows are
    /// kept on one owner worker).
    pub shared_endpoints: u64,
    /// Health, heartbeats, drain and announcement (the running appliance; `None` for a
    /// control plane alone).
    pub appliance: Option<ApplianceSample>,
}

/// The appliance's own state at a scrape: health, workers' heartbeats, drain, VIPs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplianceSample {
    /// Whether `/healthz` would answer 200.
    pub healthy: bool,
    /// Each worker's heartbeat age in seconds (`None`: not polled yet), in worker order.
    pub heartbeat_ages: Vec<Option<f64>>,
    /// `serving`, `draining` or `drained`.
    pub drain_state: &'static str,
    /// Each VIP with a listener and whether it is announced (empty without `announce`).
    pub vips: Vec<(String, bool)>,
}

impl MetricsSnapshot {
    /// The exposition of this snapshot in `format`.
    pub fn render(self, format: MetricsFormat) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector(self)));
        let mut out = String::new();
        let encoded = match format {
            MetricsFormat::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            }
            MetricsFormat::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut out, &registry)
            }
        };
        // Writing to a String cannot fail, and every name is fixed by this program.
        debug_assert!(encoded.is_ok(), "metrics encoding failed");
        out
    }
}

/// Encodes one snapshot when the registry is encoded (once per scrape).
#[derive(Debug)]
struct SnapshotCollector(MetricsSnapshot);

/// Label pairs of one sample.
type Labels<'a> = Vec<(&'a str, &'a str)>;

/// One family being written: its samples go out under one HELP/TYPE header.
struct Family<'e, 'a> {
    encoder: &'e mut DescriptorEncoder<'a>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let mut f = Family {
            encoder: &mut encoder,
        };
        f.one(
            "udplb_config_generation",
            "Configuration generation (1 = the set loaded at start).",
            MetricKind::Gauge,
            &[(Vec::new(), s.generation)],
        )?;
        f.one(
            "udplb_config_reloads_total",
            "Manifest sets applied (ok) or refused (failed) after start.",
            MetricKind::Counter,
            &[
                (vec![("result", "ok")], s.reloads_ok),
                (vec![("result", "failed")], s.reloads_failed),
            ],
        )?;
        f.ports(&s.ports)?;
        // The fast path's counters, declared once in pipelines (counters!).
        for m in s.fast_path.metrics() {
            f.one(
                &format!("udplb_{}", m.name),
                m.help,
                m.kind,
                &[(Vec::new(), m.value)],
            )?;
        }
        let drops: Vec<(Labels<'_>, u64)> = s
            .fast_path
            .drops_named()
            .map(|(reason, v)| (vec![("reason", reason)], v))
            .chain(labelled("reason", s.loop_drops.metrics()))
            .collect();
        f.one(
            "udplb_drops_total",
            "Packets dropped by the fast path, by reason.",
            MetricKind::Counter,
            &drops,
        )?;
        for m in s.loop_counters.metrics() {
            f.one(
                &format!("udplb_{}", m.name),
                m.help,
                m.kind,
                &[(Vec::new(), m.value)],
            )?;
        }
        let host: Vec<(Labels<'_>, u64)> = HostReason::NAMES
            .iter()
            .zip(s.fast_path.to_host)
            .map(|(reason, v)| (vec![("reason", *reason)], v))
            .collect();
        f.one(
            "udplb_host_packets_total",
            "Packets handed to the slow path, by reason.",
            MetricKind::Counter,
            &host,
        )?;
        let slow: Vec<(Labels<'_>, u64)> = labelled("event", s.slow_path.metrics()).collect();
        f.one(
            "udplb_slow_path_total",
            "Slow path events (ARP/ND replies, echo, resolutions, ICMP rejects), by kind.",
            MetricKind::Counter,
            &slow,
        )?;
        f.one(
            "udplb_neighbors",
            "Entries in the neighbor table.",
            MetricKind::Gauge,
            &[(Vec::new(), s.neighbors)],
        )?;
        f.one(
            "udplb_shared_endpoints",
            "Backend endpoints serving several preserve-client listeners (flows kept on one owner worker).",
            MetricKind::Gauge,
            &[(Vec::new(), s.shared_endpoints)],
        )?;
        if let Some(a) = &s.appliance {
            f.appliance(a)?;
        }
        f.entities(&s.entities)
    }
}

/// A `counters!` struct whose metric names are the values of one label of a family.
fn labelled(
    label: &'static str,
    metrics: impl Iterator<Item = Metric>,
) -> impl Iterator<Item = (Labels<'static>, u64)> {
    metrics.map(move |m| (vec![(label, m.name)], m.value))
}

impl Family<'_, '_> {
    fn appliance(&mut self, a: &ApplianceSample) -> Result<(), std::fmt::Error> {
        self.one(
            "udplb_healthy",
            "1 when the appliance can serve (ports up, workers polling, configuration applied), as /healthz says.",
            MetricKind::Gauge,
            &[(Vec::new(), u64::from(a.healthy))],
        )?;
        let workers: Vec<String> = (0..a.heartbeat_ages.len()).map(|w| w.to_string()).collect();
        let mut family = self.encoder.encode_descriptor(
            "udplb_worker_heartbeat_age_seconds",
            "Seconds since the worker's last poll round.",
            None,
            MetricType::Gauge,
        )?;
        for (worker, age) in workers.iter().zip(&a.heartbeat_ages) {
            // A worker that never polled has no age: its sample is infinite.
            let age = age.unwrap_or(f64::INFINITY);
            let labels = vec![("worker", worker.as_str())];
            let sample = family.encode_family(&labels)?;
            ConstGauge::new(age).encode(sample)?;
        }
        let states: Vec<(Labels<'_>, u64)> = ["serving", "draining", "drained"]
            .iter()
            .map(|s| (vec![("state", *s)], u64::from(*s == a.drain_state)))
            .collect();
        self.one(
            "udplb_drain_state",
            "1 for the current drain state (serving, draining, drained).",
            MetricKind::Gauge,
            &states,
        )?;
        let vips: Vec<(Labels<'_>, u64)> = a
            .vips
            .iter()
            .map(|(vip, on)| (vec![("vip", vip.as_str())], u64::from(*on)))
            .collect();
        self.one(
            "udplb_vip_announced",
            "1 when the VIP is announced to the routing daemon (liveness interface up, BIRD configured).",
            MetricKind::Gauge,
            &vips,
        )
    }

    /// Writes one family: `name` is the full sample name, as scrapers see it.
    fn one(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricKind,
        samples: &[(Labels<'_>, u64)],
    ) -> Result<(), std::fmt::Error> {
        let (base, unit) = split_name(name, kind);
        let metric_type = match kind {
            MetricKind::Counter => MetricType::Counter,
            MetricKind::Gauge => MetricType::Gauge,
        };
        let mut family = self
            .encoder
            .encode_descriptor(base, help, unit.as_ref(), metric_type)?;
        for (labels, value) in samples {
            let sample = family.encode_family(labels)?;
            match kind {
                MetricKind::Counter => ConstCounter::new(*value).encode(sample)?,
                MetricKind::Gauge => ConstGauge::new(*value).encode(sample)?,
            }
        }
        Ok(())
    }

    fn ports(&mut self, ports: &[PortSample]) -> Result<(), std::fmt::Error> {
        type Get = fn(&PortSample) -> u64;
        let families: [(&str, &str, Get); 8] = [
            ("rx_packets", "Packets received by the port.", |p| {
                p.rx_packets
            }),
            ("rx_bytes", "Bytes received by the port.", |p| p.rx_bytes),
            ("tx_packets", "Packets sent by the port.", |p| p.tx_packets),
            ("tx_bytes", "Bytes sent by the port.", |p| p.tx_bytes),
            (
                "rx_missed",
                "Packets the NIC dropped: RX queues full.",
                |p| p.rx_missed,
            ),
            ("rx_errors", "Receive errors.", |p| p.rx_errors),
            ("tx_errors", "Transmit errors.", |p| p.tx_errors),
            ("rx_nombuf", "RX mbuf allocation failures.", |p| p.rx_nombuf),
        ];
        for (field, help, get) in families {
            let samples: Vec<(Labels<'_>, u64)> = ports
                .iter()
                .map(|p| (vec![("port", p.name.as_str())], get(p)))
                .collect();
            self.one(
                &format!("udplb_port_{field}_total"),
                help,
                MetricKind::Counter,
                &samples,
            )?;
        }
        Ok(())
    }

    fn entities(&mut self, entities: &BTreeMap<Entity, Traffic>) -> Result<(), std::fmt::Error> {
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
        // Backend addresses as label values, rendered once.
        let addrs: BTreeMap<&Entity, String> = entities
            .keys()
            .filter_map(|e| match e {
                Entity::Backend(_, addr) => Some((e, addr.to_string())),
                _ => None,
            })
            .collect();
        for kind in ["listener", "route", "backend"] {
            for (field, help, get) in fields {
                let samples: Vec<(Labels<'_>, u64)> = entities
                    .iter()
                    .filter_map(|(entity, t)| {
                        let labels = match (kind, entity) {
                            ("listener", Entity::Listener(l)) => vec![
                                ("namespace", l.namespace.as_str()),
                                ("gateway", l.gateway.as_str()),
                                ("listener", l.listener.as_str()),
                            ],
                            ("route", Entity::Route(r)) => vec![
                                ("namespace", r.namespace.as_str()),
                                ("route", r.name.as_str()),
                            ],
                            ("backend", Entity::Backend(l, _)) => vec![
                                ("namespace", l.namespace.as_str()),
                                ("gateway", l.gateway.as_str()),
                                ("listener", l.listener.as_str()),
                                ("backend", addrs.get(entity)?.as_str()),
                            ],
                            _ => return None,
                        };
                        Some((labels, get(t)))
                    })
                    .collect();
                self.one(
                    &format!("udplb_{kind}_{field}"),
                    &format!("{help}, per {kind}."),
                    MetricKind::Counter,
                    &samples,
                )?;
            }
        }
        Ok(())
    }
}

/// The name to register and its unit: a counter's `_total` comes off (the encoder appends
/// it) and a `_bytes` suffix becomes the `bytes` unit (the encoder puts it back), so the
/// sample names come out exactly as `name`.
fn split_name(name: &str, kind: MetricKind) -> (&str, Option<Unit>) {
    let base = match kind {
        MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name),
        MetricKind::Gauge => name,
    };
    match base.strip_suffix("_bytes") {
        Some(stem) => (stem, Some(Unit::Bytes)),
        None => (base, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_the_registered_name_and_unit() {
        assert_eq!(
            split_name("udplb_rx_bytes_total", MetricKind::Counter),
            ("udplb_rx", Some(Unit::Bytes))
        );
        assert_eq!(
            split_name("udplb_flow_table_memory_bytes", MetricKind::Gauge),
            ("udplb_flow_table_memory", Some(Unit::Bytes))
        );
        assert_eq!(
            split_name("udplb_drops_total", MetricKind::Counter),
            ("udplb_drops", None)
        );
        assert_eq!(
            split_name("udplb_flows_active", MetricKind::Gauge),
            ("udplb_flows_active", None)
        );
    }

    #[test]
    fn openmetrics_is_asked_for_by_the_accept_header() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            MetricsFormat::negotiate(Some(prometheus)),
            MetricsFormat::OpenMetrics
        );
        assert_eq!(MetricsFormat::negotiate(None), MetricsFormat::Prometheus);
        assert_eq!(
            MetricsFormat::negotiate(Some("text/plain")),
            MetricsFormat::Prometheus
        );
        assert_eq!(
            MetricsFormat::negotiate(Some("application/openmetrics-text; q=0")),
            MetricsFormat::Prometheus
        );
        assert_eq!(
            MetricsFormat::OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(
            MetricsFormat::Prometheus.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn both_formats_name_samples_alike_and_openmetrics_adds_units_and_eof() {
        let mut snapshot = MetricsSnapshot {
            generation: 3,
            ..MetricsSnapshot::default()
        };
        snapshot.fast_path.rx_bytes = 1500;
        snapshot.fast_path.flow_memory_bytes = 4096;
        let text = snapshot.clone().render(MetricsFormat::Prometheus);
        let open = snapshot.render(MetricsFormat::OpenMetrics);
        let samples = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(samples(&text), samples(&open));
        assert!(text.contains("udplb_config_generation 3\n"), "{text}");
        assert!(text.contains("# TYPE udplb_rx_bytes_total counter\nudplb_rx_bytes_total 1500\n"));
        assert!(open.contains(
            "# TYPE udplb_rx_bytes counter\n# UNIT udplb_rx_bytes bytes\nudplb_rx_bytes_total 1500\n"
        ));
        assert!(open.contains(
            "# UNIT udplb_flow_table_memory_bytes bytes\nudplb_flow_table_memory_bytes 4096\n"
        ));
        assert!(open.ends_with("# EOF\n"), "{open}");
        assert!(!text.contains("# EOF"));
    }
}

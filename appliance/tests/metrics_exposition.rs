//! The exposition of a fixed snapshot: byte-identical to the golden file
//! `tests/fixtures/metrics.prom` (written by the hand-made renderer that came before
//! `prometheus-client`, so scrapers see the same names, labels, HELP and TYPE), and the
//! same samples in OpenMetrics. After adding a counter, `UDPLB_UPDATE_GOLDEN=1` rewrites
//! the golden file (review its diff).

#![allow(clippy::tests_outside_test_module)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use appliance::control::{ControlParams, ControlPlane, Observed, PortStats, Publisher};
use appliance::metrics::{MetricsFormat, PortSample};
use appliance::slowpath::{SlowPathCounters, SlowPathStats};
use appliance::worker::WorkerReport;
use pipelines::counters::{Counters, EntityCounters, Traffic};

struct TwoPorts;

impl PortStats for TwoPorts {
    fn samples(&self) -> Vec<PortSample> {
        let port = |name: &str, base: u64| PortSample {
            name: name.into(),
            rx_packets: base + 1,
            rx_bytes: base + 2,
            tx_packets: base + 3,
            tx_bytes: base + 4,
            rx_missed: base + 5,
            rx_errors: base + 6,
            tx_errors: base + 7,
            rx_nombuf: base + 8,
        };
        vec![port("edge", 10), port("backends", 20)]
    }
}

fn n(i: usize) -> u64 {
    u64::try_from(i).expect("small")
}

/// The control plane of the DNS example with two workers' reports, two ports, the slow
/// path and the neighbor count all filled with distinct values.
fn plane() -> ControlPlane {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/dns");
    let objects = config::load_paths(&[dir]).expect("dns example");
    let reports: Vec<_> = (0..2)
        .map(|_| Arc::new(Mutex::new(WorkerReport::default())))
        .collect();
    let slow_path = Arc::new(SlowPathCounters::default());
    let mut stats = SlowPathStats::default();
    for (i, d) in SlowPathStats::METRICS.iter().enumerate() {
        *stats.counter_mut(d.field).expect("declared") = 100 + n(i);
    }
    // The golden file's frames_unsent (the last event) came from the sink's own count.
    stats.frames_unsent = 7;
    for m in stats.metrics() {
        let d = SlowPathStats::METRICS
            .iter()
            .find(|d| d.name == m.name)
            .expect("descriptor");
        slow_path
            .counter(d.field)
            .expect("declared")
            .store(m.value, Ordering::Relaxed);
    }
    let observed = Observed {
        reports: reports.clone(),
        ports: Some(Arc::new(TwoPorts)),
        slow_path,
        neighbors: Arc::new(AtomicUsize::new(5)),
    };
    let (plane, tables) = ControlPlane::new(
        ControlParams::default(),
        Publisher::default(),
        observed,
        &objects,
    )
    .expect("plane");
    for (w, slot) in (0u64..).zip(&reports) {
        let mut r = slot.lock().expect("report");
        let mut c = Counters::default();
        for (i, d) in Counters::METRICS.iter().enumerate() {
            *c.counter_mut(d.field).expect("declared") = 1000 * (w + 1) + n(i);
        }
        for (i, d) in c.drops.iter_mut().enumerate() {
            *d = 200 + n(i) + w;
        }
        for (i, d) in c.to_host.iter_mut().enumerate() {
            *d = 300 + n(i) + w;
        }
        let mut e = EntityCounters::for_tables(&tables);
        let all = e
            .listeners
            .iter_mut()
            .chain(e.routes.iter_mut())
            .chain(e.backends.iter_mut());
        for (i, t) in all.enumerate() {
            let i = n(i) * 10 + w;
            *t = Traffic {
                packets: i + 1,
                bytes: i + 2,
                reply_packets: i + 3,
                reply_bytes: i + 4,
                flows_created: i + 5,
                icmp_unreachable: i + 6,
            };
        }
        c.entities = e;
        r.counters = c;
        r.drops.tx_refused = 1 + w;
        r.drops.host_overflow = 2 + w;
        r.events.handed_off = 3 + w;
        r.drops.handoff_overflow = 4 + w;
        r.events.held = 5 + w;
        r.drops.hold_expired = 6 + w;
    }
    plane
}

fn golden_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metrics.prom")
}

fn golden() -> String {
    std::fs::read_to_string(golden_path()).expect("golden file")
}

fn samples(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.starts_with('#')).collect()
}

#[test]
fn prometheus_text_is_byte_identical_to_the_golden_file() {
    let text = plane().snapshot().render(MetricsFormat::Prometheus);
    // A new counter changes the exposition on purpose: rewrite the file with
    // UDPLB_UPDATE_GOLDEN=1 and review its diff.
    if std::env::var_os("UDPLB_UPDATE_GOLDEN").is_some() {
        std::fs::write(golden_path(), &text).expect("golden file written");
    }
    let golden = golden();
    if text != golden {
        let diff: Vec<String> = golden
            .lines()
            .zip(text.lines())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .take(10)
            .collect();
        panic!(
            "exposition differs ({} vs {} lines):\n{}",
            golden.lines().count(),
            text.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn openmetrics_has_the_same_samples_with_units_and_eof() {
    let open = plane().snapshot().render(MetricsFormat::OpenMetrics);
    let golden = golden();
    assert_eq!(samples(&open), samples(&golden));
    assert!(open.ends_with("\n# EOF\n"), "{open}");
    assert!(open.contains("# TYPE udplb_drops counter\n"), "{open}");
    assert!(
        open.contains("# UNIT udplb_backend_bytes bytes\n"),
        "{open}"
    );
}

/// Every query (`expr`, and a template variable's `definition`) with its `legendFormat`.
fn queries(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match v {
        serde_json::Value::Object(map) => {
            let legend = map
                .get("legendFormat")
                .and_then(|l| l.as_str())
                .unwrap_or("");
            for key in ["expr", "definition"] {
                if let Some(expr) = map.get(key).and_then(|e| e.as_str()) {
                    out.push((expr.to_owned(), legend.to_owned()));
                }
            }
            map.values().for_each(|v| queries(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// Identifiers in `text` that start with `prefix` (`[a-z0-9_]` after it).
fn words_after<'t>(text: &'t str, prefix: &str) -> Vec<&'t str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(prefix) {
        let word = &rest[i..];
        let end = word
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(word.len());
        found.push(&word[..end]);
        rest = &word[end..];
    }
    found
}

#[test]
fn the_grafana_dashboard_queries_only_exposed_metrics_and_labels() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/grafana/udplb-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let exposition = plane().snapshot().render(MetricsFormat::Prometheus);
    // Sample name -> the label names it carries.
    let mut exposed: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        std::collections::BTreeMap::new();
    for line in samples(&exposition) {
        let name_end = line.find(['{', ' ']).expect("sample");
        let labels = exposed.entry(&line[..name_end]).or_default();
        if let Some(body) = line[name_end..].strip_prefix('{') {
            for pair in body.split("\",") {
                labels.insert(
                    pair.split('=')
                        .next()
                        .expect("label")
                        .trim_start_matches('}'),
                );
            }
        }
    }
    let mut found = Vec::new();
    queries(&dashboard, &mut found);
    assert!(found.len() >= 30, "only {} queries found", found.len());
    for (expr, legend) in &found {
        let metrics = words_after(expr, "udplb_");
        assert!(!metrics.is_empty(), "{expr}: names no udplb metric");
        let mut labels: std::collections::BTreeSet<&str> = ["instance", "job"].into();
        for m in &metrics {
            let carried = exposed
                .get(m)
                .unwrap_or_else(|| panic!("{expr}: {m} is not exposed"));
            labels.extend(carried);
        }
        // Labels grouped by and shown in legends must exist on the metrics queried.
        let grouped = expr
            .split("by (")
            .skip(1)
            .flat_map(|s| s.split(')').next().unwrap_or("").split(','))
            .map(str::trim);
        let shown = legend
            .split("{{")
            .skip(1)
            .map(|s| s.split("}}").next().unwrap_or("").trim());
        for label in grouped.chain(shown) {
            assert!(
                labels.contains(label),
                "{expr}: no label {label:?} on {metrics:?}"
            );
        }
    }
}

//! Prometheus text exposition (format 0.0.4), written by hand: the format is small and a
//! writer keeps the appliance free of a metrics registry.
//!
//! Design note: counters live where they are counted (per-worker arrays in `pipelines`);
//! this module only renders a snapshot. [`MetricsWriter`] groups samples by family, so a
//! caller may emit a family's samples in several passes (one per worker, say) and still get
//! one contiguous block with one `# HELP` and one `# TYPE` line, as the format requires.
//! Families come out in the order they were first declared and samples in the order they
//! were added, so equal inputs give byte-identical output.
//!
//! ```
//! use appliance::metrics::{MetricType, MetricsWriter};
//! let mut w = MetricsWriter::new();
//! w.family("udplb_port_rx_packets_total", "Packets received.", MetricType::Counter)
//!     .sample(&[("port", "lan")], 42u64);
//! assert_eq!(
//!     w.finish().lines().collect::<Vec<_>>(),
//!     [
//!         "# HELP udplb_port_rx_packets_total Packets received.",
//!         "# TYPE udplb_port_rx_packets_total counter",
//!         "udplb_port_rx_packets_total{port=\"lan\"} 42",
//!     ]
//! );
//! ```

use std::fmt::Write as _;

/// The `# TYPE` of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    /// A monotonically increasing count (name should end in `_total`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Neither (rarely right).
    Untyped,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Untyped => "untyped",
        }
    }
}

/// A sample value: integer counters print exactly, floats in Prometheus' notation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// An unsigned integer (counters, sizes).
    Int(u64),
    /// A float (ratios, seconds).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(u64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(u64::try_from(v).unwrap_or(u64::MAX))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(u64::from(v))
    }
}

struct Family {
    name: String,
    help: String,
    kind: MetricType,
    samples: String,
}

/// Builds one Prometheus text exposition.
#[derive(Default)]
pub struct MetricsWriter {
    families: Vec<Family>,
    current: usize,
}

/// Adds samples to the family that [`MetricsWriter::family`] selected.
pub struct FamilyWriter<'a> {
    family: &'a mut Family,
}

impl MetricsWriter {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Selects the family `name`, declaring it on first use. A later call with the same name
    /// appends to the same family (its first help text and type are kept).
    ///
    /// `name` must match `[a-zA-Z_:][a-zA-Z0-9_:]*`; names are fixed by the program, so a bad
    /// one is a bug, caught by a debug assertion.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) -> FamilyWriter<'_> {
        debug_assert!(is_metric_name(name), "bad metric name {name:?}");
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    samples: String::new(),
                });
                self.families.len() - 1
            }
        };
        self.current = index;
        FamilyWriter {
            family: &mut self.families[index],
        }
    }

    /// Adds a sample to the family selected last. Does nothing before any `family` call.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        if let Some(family) = self.families.get_mut(self.current) {
            FamilyWriter { family }.sample(labels, value);
        }
        self
    }

    /// The exposition text.
    pub fn finish(self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }
}

impl FamilyWriter<'_> {
    /// Adds one sample with these labels (names must match `[a-zA-Z_][a-zA-Z0-9_]*`; values
    /// are escaped).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Self {
        let out = &mut self.family.samples;
        out.push_str(&self.family.name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (name, value)) in labels.iter().enumerate() {
                debug_assert!(is_label_name(name), "bad label name {name:?}");
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label_value(out, value);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        match value.into() {
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) if v.is_nan() => out.push_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => out.push_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => out.push_str("-Inf"),
            Value::Float(v) => {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
        self
    }
}

/// Label values escape backslash, double quote and line feed.
fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text escapes backslash and line feed.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

fn is_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn is_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_grouped_with_one_header_each_in_declaration_order() {
        let mut w = MetricsWriter::new();
        w.family("udplb_rx_total", "Received.", MetricType::Counter)
            .sample(&[("port", "a"), ("worker", "1")], 1u64);
        w.family("udplb_generation", "Config generation.", MetricType::Gauge)
            .sample(&[], 7u64);
        // A second pass over the first family (e.g. the next worker) joins its block.
        w.family("udplb_rx_total", "ignored", MetricType::Gauge)
            .sample(&[("port", "a"), ("worker", "2")], 2u64);
        assert_eq!(
            w.finish(),
            "# HELP udplb_rx_total Received.\n\
             # TYPE udplb_rx_total counter\n\
             udplb_rx_total{port=\"a\",worker=\"1\"} 1\n\
             udplb_rx_total{port=\"a\",worker=\"2\"} 2\n\
             # HELP udplb_generation Config generation.\n\
             # TYPE udplb_generation gauge\n\
             udplb_generation 7\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut w = MetricsWriter::new();
        w.family("m", "line one\nback\\slash \"quoted\"", MetricType::Untyped)
            .sample(&[("route", "a\\b\"c\nd")], 0u64);
        assert_eq!(
            w.finish(),
            "# HELP m line one\\nback\\\\slash \"quoted\"\n\
             # TYPE m untyped\n\
             m{route=\"a\\\\b\\\"c\\nd\"} 0\n"
        );
    }

    #[test]
    fn values_print_in_prometheus_notation() {
        let mut w = MetricsWriter::new();
        w.family("v", "Values.", MetricType::Gauge);
        w.sample(&[("k", "max")], u64::MAX)
            .sample(&[("k", "half")], 0.5)
            .sample(&[("k", "nan")], f64::NAN)
            .sample(&[("k", "inf")], f64::INFINITY)
            .sample(&[("k", "-inf")], f64::NEG_INFINITY)
            .sample(&[("k", "up")], true)
            .sample(&[("k", "len")], 3usize);
        assert_eq!(
            w.finish(),
            "# HELP v Values.\n# TYPE v gauge\n\
             v{k=\"max\"} 18446744073709551615\n\
             v{k=\"half\"} 0.5\n\
             v{k=\"nan\"} NaN\n\
             v{k=\"inf\"} +Inf\n\
             v{k=\"-inf\"} -Inf\n\
             v{k=\"up\"} 1\n\
             v{k=\"len\"} 3\n"
        );
    }

    #[test]
    fn sample_before_any_family_is_ignored_and_empty_writer_is_empty() {
        let mut w = MetricsWriter::new();
        w.sample(&[], 1u64);
        assert_eq!(w.finish(), "");
    }

    #[test]
    fn names_are_checked() {
        assert!(is_metric_name("udplb:rx_total"));
        assert!(!is_metric_name("1abc"));
        assert!(!is_metric_name("a-b"));
        assert!(!is_metric_name(""));
        assert!(is_label_name("_port"));
        assert!(!is_label_name("port:x"));
    }
}

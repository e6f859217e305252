//! udplb's `/metrics` (Prometheus or OpenMetrics text) as samples that tests can query by
//! name and labels, whatever order the labels come in.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `udplb_drops_total`.
    pub name: String,
    /// Label name → value.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// Every sample of one scrape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    samples: Vec<Sample>,
}

impl Metrics {
    /// Parses exposition text; comment lines and lines that are not samples are skipped.
    pub fn parse(text: &str) -> Metrics {
        Metrics {
            samples: text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(parse_sample)
                .collect(),
        }
    }

    /// Every sample.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The samples named `name` whose labels include every pair of `labels`.
    pub fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        })
    }

    /// The sum of the samples named `name` whose labels include every pair of `labels`
    /// (0 when there is none), as a count.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        self.matching(name, labels).map(|s| as_count(s.value)).sum()
    }
}

/// A counter sample as an integer. udplb's counters are non-negative integers far below
/// 2^53, which an f64 holds exactly; anything else (negative, NaN) counts as 0.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn as_count(value: f64) -> u64 {
    if value.is_finite() && value >= 0.0 {
        value.round() as u64
    } else {
        0
    }
}

/// `name{k="v",…} value [timestamp]`, or `name value`.
fn parse_sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(body) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(body)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The labels up to the closing `}`, and what follows it.
fn parse_labels(mut s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let (key, after) = s.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                (_, c) => value.push(c),
            }
        };
        labels.insert(key.trim().to_owned(), value);
        s = &after[end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP udplb_drops_total Packets dropped by the fast path, by reason.
# TYPE udplb_drops_total counter
udplb_drops_total{reason="no_route"} 3
udplb_drops_total{reason="stray"} 4
udplb_backend_packets_total{namespace="default",gateway="gw",listener="echo",backend="198.18.1.11:7000"} 10
udplb_backend_packets_total{backend="[2001:2:0:1::11]:7000",listener="echo",namespace="default",gateway="gw"} 5
udplb_config_generation 2
udplb_odd{note="a \"quoted\", {braced} value"} 1.5 1700000000
# EOF
"#;

    #[test]
    fn samples_by_name_and_labels_in_any_order() {
        let m = Metrics::parse(TEXT);
        assert_eq!(m.samples().len(), 6);
        assert_eq!(m.sum("udplb_drops_total", &[]), 7);
        assert_eq!(m.sum("udplb_drops_total", &[("reason", "stray")]), 4);
        assert_eq!(m.sum("udplb_drops_total", &[("reason", "other")]), 0);
        assert_eq!(
            m.sum("udplb_backend_packets_total", &[("listener", "echo")]),
            15
        );
        assert_eq!(
            m.sum(
                "udplb_backend_packets_total",
                &[("backend", "[2001:2:0:1::11]:7000"), ("gateway", "gw")]
            ),
            5
        );
        assert_eq!(m.sum("udplb_config_generation", &[]), 2);
        let odd = m.matching("udplb_odd", &[]).next().expect("odd sample");
        assert_eq!(odd.labels["note"], "a \"quoted\", {braced} value");
        assert_eq!(odd.value, 1.5);
    }

    #[test]
    fn broken_lines_are_skipped() {
        let m = Metrics::parse("x{a=\"1\" 2\ny{a=\"1\"}\nz nan_or_not\n{a=\"1\"} 3\nok 1\n");
        let names: Vec<&str> = m.samples().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok"]);
    }
}

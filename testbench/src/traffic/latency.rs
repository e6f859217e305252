//! Latency samples, their percentiles and their distribution.

use serde::{Deserialize, Serialize};

/// At most this many samples are kept per recorder; later ones are counted only.
pub const MAX_SAMPLES: usize = 2_000_000;

/// At most this many points of the distribution are kept in a [`Latency`] summary.
pub const CDF_POINTS: usize = 300;

/// Collects round-trip times in nanoseconds.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    samples: Vec<u64>,
    dropped: u64,
}

impl Recorder {
    /// Records one sample.
    pub fn record(&mut self, nanos: u64) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(nanos);
        } else {
            self.dropped += 1;
        }
    }

    /// Adds all of `other`'s samples.
    pub fn merge(&mut self, other: Recorder) {
        let room = MAX_SAMPLES.saturating_sub(self.samples.len());
        let (keep, over) = if other.samples.len() > room {
            (room, other.samples.len() - room)
        } else {
            (other.samples.len(), 0)
        };
        self.samples.extend_from_slice(&other.samples[..keep]);
        self.dropped += other.dropped + over as u64;
    }

    /// The summary, or `None` without samples.
    pub fn summary(mut self) -> Option<Latency> {
        if self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable();
        let s = &self.samples;
        let us = |ns: u64| ns as f64 / 1_000.0;
        let sum: u128 = s.iter().map(|&x| u128::from(x)).sum();
        Some(Latency {
            samples: s.len() as u64,
            unrecorded: self.dropped,
            min_us: us(s[0]),
            p50_us: us(nearest_rank(s, 0.50)),
            p99_us: us(nearest_rank(s, 0.99)),
            p999_us: us(nearest_rank(s, 0.999)),
            max_us: us(s[s.len() - 1]),
            mean_us: sum as f64 / s.len() as f64 / 1_000.0,
            cdf: cdf(s, CDF_POINTS),
        })
    }
}

/// `points` evenly spaced quantiles of sorted, non-empty `sorted` (at most one per
/// sample): `(µs rounded to 0.1, fraction of samples at or below it)`.
fn cdf(sorted: &[u64], points: usize) -> Vec<(f64, f64)> {
    let n = points.min(sorted.len());
    (1..=n)
        .map(|k| {
            let f = k as f64 / n as f64;
            let us = nearest_rank(sorted, f) as f64 / 1_000.0;
            ((us * 10.0).round() / 10.0, (f * 1e4).round() / 1e4)
        })
        .collect()
}

/// Nearest-rank percentile of sorted, non-empty `sorted`: the smallest sample with at
/// least `q` of all samples at or below it.
// q is in [0, 1], so the rank is a non-negative integer at most n (then clamped).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn nearest_rank(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len();
    let rank = (q * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Round-trip time percentiles, in microseconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples the percentiles are computed from.
    pub samples: u64,
    /// Samples beyond [`MAX_SAMPLES`], not included.
    pub unrecorded: u64,
    /// Smallest.
    pub min_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Up to [`CDF_POINTS`] points `(µs, fraction of samples ≤ it)` of the distribution.
    #[serde(default)]
    pub cdf: Vec<(f64, f64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut r = Recorder::default();
        // 1..=1000 µs in scrambled order.
        for i in 0..1000u64 {
            r.record(((i * 7919) % 1000 + 1) * 1000);
        }
        let l = r.summary().expect("has samples");
        assert_eq!(l.samples, 1000);
        assert_eq!(l.min_us, 1.0);
        assert_eq!(l.p50_us, 500.0);
        assert_eq!(l.p99_us, 990.0);
        assert_eq!(l.p999_us, 999.0);
        assert_eq!(l.max_us, 1000.0);
        assert_eq!(l.mean_us, 500.5);
        // 300 of the 1000 samples, the last one the maximum.
        assert_eq!(l.cdf.len(), CDF_POINTS);
        assert_eq!(l.cdf[0], (4.0, 0.0033));
        assert_eq!(l.cdf[149], (500.0, 0.5));
        assert_eq!(l.cdf[299], (1000.0, 1.0));
        assert!(l
            .cdf
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
    }

    #[test]
    fn single_sample_and_empty() {
        assert!(Recorder::default().summary().is_none());
        let mut r = Recorder::default();
        r.record(42_000);
        let l = r.summary().expect("one sample");
        assert_eq!((l.p50_us, l.p999_us), (42.0, 42.0));
        assert_eq!(l.cdf, vec![(42.0, 1.0)]);
    }

    #[test]
    fn merge_keeps_counts() {
        let mut a = Recorder::default();
        a.record(1);
        let mut b = Recorder::default();
        b.record(2);
        b.record(3);
        a.merge(b);
        assert_eq!(a.summary().map(|l| l.samples), Some(3));
    }
}

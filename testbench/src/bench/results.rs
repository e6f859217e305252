//! What a run measured, as `results.json` stores it (and `--render-only` reads it back).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::peers::Peer;
use crate::traffic::loadgen::Report;

/// One step of a load ladder.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// Offered packets (or new flows) per second; `None`: unpaced.
    pub offered_pps: Option<f64>,
    /// What the generator actually sent per second.
    pub sent_pps: f64,
    /// What the backends received per second (over the sending time).
    pub delivered_pps: f64,
    /// `1 - received / sent`.
    pub loss: f64,
    /// CPU seconds used by the peer's processes during the step (`None`: kernel path).
    pub cpu_s: Option<f64>,
    /// Packets received by the backends.
    pub delivered: u64,
}

/// A ladder and its verdict.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ladder {
    /// Steps in order; stops after the first failing one.
    pub steps: Vec<Step>,
    /// Highest delivered rate of a step with loss under 0.1 %.
    pub max_pps: Option<f64>,
    /// CPU seconds per million delivered packets at that step.
    pub cpu_s_per_mpkt: Option<f64>,
    /// Whether the best step was the unpaced one (the generator, not the peer, bound it).
    pub generator_bound: bool,
}

/// Request/response latency.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RrReport {
    /// Requests sent.
    pub sent: u64,
    /// Replies matched.
    pub received: u64,
    /// Sending time, seconds.
    pub elapsed_s: f64,
    /// Percentiles, microseconds.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Up to 300 points `(µs, fraction ≤)` of the distribution.
    pub cdf: Vec<(f64, f64)>,
}

impl From<&Report> for RrReport {
    /// The round trips of a request/response load generator run (zeros without replies).
    fn from(r: &Report) -> RrReport {
        let (p50_us, p99_us, p999_us, cdf) = r.latency.as_ref().map_or_else(
            || (0.0, 0.0, 0.0, Vec::new()),
            |l| (l.p50_us, l.p99_us, l.p999_us, l.cdf.clone()),
        );
        RrReport {
            sent: r.sent,
            received: r.received,
            elapsed_s: r.elapsed_s,
            p50_us,
            p99_us,
            p999_us,
            cdf,
        }
    }
}

/// Everything measured for one peer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PeerResult {
    /// Ladders by case name (`64B few`, `512B many`, `new flows`).
    pub ladders: BTreeMap<String, Ladder>,
    /// Echo request/response latency.
    pub echo_rr: Option<RrReport>,
    /// DNS request/response latency.
    pub dns_rr: Option<RrReport>,
    /// DNS closed-loop maximum (8 outstanding queries).
    pub dns_max: Option<RrReport>,
    /// Resident memory of the peer's processes grown by the many-flow cases, in KiB.
    pub rss_growth_kib: Option<u64>,
    /// Notes on how it ran.
    pub notes: Vec<String>,
}

/// The DPDK I/O ceiling on net_tap.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DpdkCeiling {
    /// Where packets were dropped during the io ladder.
    #[serde(default)]
    pub notes: Vec<String>,
    /// `--forward-mode=io` fed by the generator (64 B, few flows).
    pub io: Ladder,
    /// `--forward-mode=txonly`: packets per second the port writes into the kernel.
    pub txonly_pps: Option<f64>,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// `nproc`.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Load average at start.
    pub loadavg: String,
    /// Per peer.
    pub peers: BTreeMap<Peer, PeerResult>,
    /// DPDK ceiling.
    pub dpdk: DpdkCeiling,
    /// Wall-clock seconds of the run.
    pub duration_s: f64,
    /// Peers or steps that failed, with the reason.
    pub failures: Vec<String>,
}

impl Results {
    /// No measurements yet; the machine they are taken on.
    pub fn on_this_machine() -> Results {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_else(|| "unknown".into());
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        Results {
            cpu,
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            kernel: read("/proc/sys/kernel/osrelease"),
            loadavg: read("/proc/loadavg"),
            ..Results::default()
        }
    }
}

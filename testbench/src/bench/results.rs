//! What a run measured, as `results.json` stores it (and `--render-only` reads it back).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::peers::Peer;
use crate::traffic::loadgen::Report;

/// One load step: the generator's job and what every counter saw meanwhile.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Step {
    /// Offered packets (or new flows) per second; `None`: unpaced.
    pub offered_pps: Option<f64>,
    /// Frames that left the generator's interface (its `tx_packets + tx_dropped`: what
    /// the lb side took, or refused).
    pub sent: u64,
    /// `sent` over the sending time.
    pub sent_pps: f64,
    /// Datagrams the generator's DPDK port accepted (above `sent` when the PMD loses
    /// frames on the way to the interface).
    #[serde(default)]
    pub gen_accepted: u64,
    /// Sending time, seconds.
    pub elapsed_s: f64,
    /// Datagrams that reached the backends' UDP layer (`/proc/net/snmp{,6}`:
    /// `InDatagrams + RcvbufErrors`, summed over the backends).
    pub delivered: u64,
    /// `delivered` over the sending time.
    pub delivered_pps: f64,
    /// Frames the backends' interfaces received (`ip -s link`, summed).
    pub link_delivered: u64,
    /// Frames refused entering the lb side: the client's veth could not hand them over
    /// (its `tx_dropped`), or the lb side could not queue them for its CPU (`rx_dropped` of
    /// its end): the system under test did not keep up.
    pub ingress_dropped: u64,
    /// `1 - delivered / sent`.
    pub loss: f64,
    /// CPU seconds of the whole machine (user + nice + system + irq + softirq, all CPUs,
    /// `/proc/stat`) minus the generator's own (its `/proc/<pid>/stat`).
    pub sut_cpu_s: f64,
    /// The generator's CPU seconds.
    pub gen_cpu_s: f64,
    /// Per CPU: busy share of the step (0..1).
    pub cpu_busy: Vec<f64>,
    /// Per CPU: softirq share of the step (0..1).
    pub cpu_softirq: Vec<f64>,
}

impl Step {
    /// Machine CPU seconds (the generator's excluded) per million delivered datagrams.
    pub fn cpu_s_per_mpkt(&self) -> Option<f64> {
        (self.delivered > 0).then(|| self.sut_cpu_s / (self.delivered as f64 / 1e6))
    }
}

/// A search for the highest rate with loss under 0.1 %, and its verdict.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ladder {
    /// Steps in the order run.
    pub steps: Vec<Step>,
    /// Highest delivered rate of a step with loss under 0.1 %.
    pub max_pps: Option<f64>,
    /// Machine CPU seconds per million delivered datagrams at that step.
    pub cpu_s_per_mpkt: Option<f64>,
    /// Whether the best step was the unpaced one: the generator, not the peer, bound it.
    pub generator_bound: bool,
}

impl Ladder {
    /// The step of [`Ladder::max_pps`].
    pub fn best(&self) -> Option<&Step> {
        let max = self.max_pps?;
        self.steps
            .iter()
            .find(|s| s.loss < super::ladder::MAX_LOSS && s.delivered_pps == max)
    }

    /// The unpaced step (the first of a search).
    pub fn unpaced(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.offered_pps.is_none())
    }
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
    /// Searches by case name (`64B 1 flow`, `512B many`, `new flows`, …).
    pub ladders: BTreeMap<String, Ladder>,
    /// One step at the same fixed load for every peer (64 B, 1 flow, [`super::EQUAL_LOAD_PPS`]):
    /// CPU per packet when nobody is saturated.
    pub equal_load: Option<Step>,
    /// Echo request/response latency.
    pub echo_rr: Option<RrReport>,
    /// DNS request/response latency.
    pub dns_rr: Option<RrReport>,
    /// DNS closed-loop maximum (8 outstanding queries).
    pub dns_max: Option<RrReport>,
    /// Resident memory of the peer's processes grown by the many-flow cases, in KiB.
    pub rss_growth_kib: Option<u64>,
    /// Notes on how it ran (ports, drops, saturation).
    pub notes: Vec<String>,
}

/// The generator alone, into a sink that drops at the lb side's ingress.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GeneratorCeiling {
    /// The generator's DPDK driver.
    pub driver: String,
    /// Unpaced steps by case name.
    pub cases: BTreeMap<String, Step>,
}

/// The whole run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// The command that produced it.
    pub command: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu: String,
    /// `nproc`.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Load average at start (`/proc/loadavg`).
    pub loadavg: String,
    /// Load average at the end.
    pub loadavg_end: String,
    /// Start time (UTC, from `date`).
    pub started: String,
    /// How CPUs were placed, in words.
    pub placement: Vec<String>,
    /// The generator alone.
    pub generator: GeneratorCeiling,
    /// Per peer.
    pub peers: BTreeMap<Peer, PeerResult>,
    /// Wall-clock seconds of the run.
    pub duration_s: f64,
    /// Whether it was a `--quick` smoke run (short steps, fewer cases).
    pub quick: bool,
    /// Peers or steps that failed, with the reason.
    pub failures: Vec<String>,
}

/// `/proc/loadavg`, trimmed.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
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
        let started = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Results {
            cpu,
            // Online CPUs of the machine (the bench itself may be pinned to fewer).
            cpus: cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            loadavg: loadavg(),
            started,
            ..Results::default()
        }
    }
}

//! Load ladders: one-way load at rising offered rates, each step counted where it
//! arrives, until a step loses too much or the generator cannot go faster.

use std::net::SocketAddr;
use std::time::Duration;

use super::procfs;
use super::results::{Ladder, Step};
use crate::error::Result;
use crate::topology::Topology;
use crate::traffic::loadgen::{LoadgenConfig, Mode};
use crate::traffic::tools::Tools;

/// Loss above which a load step fails (0.1 %).
pub(super) const MAX_LOSS: f64 = 0.001;

/// Flows of the "few flows" cases, on fixed ports so state persists across steps.
pub(super) const FEW_FLOWS: u32 = 8;
const FEW_FIRST_PORT: u16 = 10_000;

/// Flows of the "many flows" cases (see RESULTS.md for why not 100,000).
pub(super) const MANY_FLOWS: u32 = 19_000;
const MANY_FIRST_PORT: u16 = 20_000;

/// Offered loads of a throughput ladder, packets per second; `None`: unpaced.
pub(super) const LADDER: &[Option<f64>] = &[
    Some(25_000.0),
    Some(35_000.0),
    Some(50_000.0),
    Some(70_000.0),
    Some(100_000.0),
    Some(150_000.0),
    Some(200_000.0),
    Some(300_000.0),
    Some(450_000.0),
    None,
];

/// Offered new flows per second for the flow-setup ladder; each step opens at most
/// [`NEWFLOW_MAX_PER_STEP`] flows so all steps fit udplb's 65,536-entry table.
pub(super) const NEWFLOW_LADDER: &[Option<f64>] =
    &[Some(10_000.0), Some(25_000.0), Some(50_000.0), None];
pub(super) const NEWFLOW_MAX_PER_STEP: u32 = 6_000;

/// The system under test as a load step sees it.
pub(super) struct Sut<'t> {
    /// Its topology: the client sends, the lb namespace holds the system.
    pub(super) topo: &'t Topology,
    /// Where the client sends; flow `i` to `targets[i % n]`.
    pub(super) targets: Vec<SocketAddr>,
    /// Whether its work is done by processes in the lb namespace (CPU accounting).
    pub(super) has_processes: bool,
}

/// What a load step sends.
#[derive(Clone, Copy)]
pub(super) struct Load {
    flows: u32,
    first_port: Option<u16>,
    size: usize,
    rate: Option<f64>,
    /// Datagrams per flow.
    count: u64,
    max_ms: u64,
}

/// A non-negative float as a whole number, saturating (loads are seconds and datagram
/// counts, far inside u64).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) fn whole(x: f64) -> u64 {
    if x.is_finite() && x > 0.0 {
        x.min(u64::MAX as f64) as u64
    } else {
        0
    }
}

impl Load {
    /// [`FEW_FLOWS`] flows on fixed ports, `size`-byte datagrams at `rate` for about `secs`.
    pub(super) fn few(size: usize, rate: Option<f64>, secs: f64) -> Load {
        let per_flow = rate.unwrap_or(600_000.0) * secs / f64::from(FEW_FLOWS);
        Load {
            flows: FEW_FLOWS,
            first_port: Some(FEW_FIRST_PORT),
            size,
            rate,
            count: whole(per_flow.ceil().max(1.0)),
            max_ms: whole(secs * 1000.0) + 1_000,
        }
    }

    /// [`MANY_FLOWS`] flows on fixed ports: at least one pass over all of them, about
    /// 1.5 s at `rate`.
    pub(super) fn many(size: usize, rate: Option<f64>) -> Load {
        let per_flow = rate.unwrap_or(600_000.0) * 1.5 / f64::from(MANY_FLOWS);
        Load {
            flows: MANY_FLOWS,
            first_port: Some(MANY_FIRST_PORT),
            size,
            rate,
            count: whole(per_flow.ceil().max(1.0)),
            max_ms: 6_000,
        }
    }

    /// `flows` fresh flows (kernel-chosen ports), one 64-byte datagram each, at `rate`
    /// new flows per second.
    pub(super) fn new_flows(flows: u32, rate: Option<f64>) -> Load {
        Load {
            flows,
            first_port: None,
            size: 64,
            rate,
            count: 1,
            max_ms: 10_000,
        }
    }
}

/// Sends `load` one way and counts, with `count_at`, what arrived.
pub(super) fn step(
    sut: &Sut<'_>,
    tools: &Tools,
    load: Load,
    count_at: &dyn Fn() -> Result<u64>,
) -> Result<Step> {
    let topo = sut.topo;
    let client = topo.client(0);
    let mut cfg = LoadgenConfig::new(sut.targets[0], client.ipv4().into(), load.flows);
    cfg.targets.clone_from(&sut.targets);
    cfg.mode = Mode::Blast;
    cfg.first_port = load.first_port;
    cfg.count = load.count;
    cfg.rate = load.rate;
    cfg.payload_size = load.size;
    cfg.max_duration_ms = load.max_ms;
    cfg.threads = 2;
    let before = count_at()?;
    let cpu0 = procfs::cpu_seconds(topo.lb_ns());
    let report = tools.loadgen(client.ns(), &cfg, &topo.log_path("loadgen.log"))?;
    // Let queues drain before counting.
    std::thread::sleep(Duration::from_millis(300));
    let cpu = procfs::cpu_seconds(topo.lb_ns()) - cpu0;
    let delivered = count_at()?.saturating_sub(before);
    let elapsed = report.elapsed_s.max(1e-6);
    Ok(Step {
        offered_pps: load.rate,
        sent_pps: report.send_rate_pps,
        delivered_pps: delivered as f64 / elapsed,
        loss: if report.sent == 0 {
            1.0
        } else {
            1.0 - (delivered.min(report.sent) as f64 / report.sent as f64)
        },
        cpu_s: sut.has_processes.then_some(cpu),
        delivered,
    })
}

/// Runs `run(rate)` up the ladder until a step loses 0.1 % or more, or the generator
/// falls short of the offered rate.
pub(super) fn climb(
    rates: &[Option<f64>],
    mut run: impl FnMut(Option<f64>) -> Result<Step>,
) -> Result<Ladder> {
    let mut out = Ladder::default();
    let mut i = 0;
    while let Some(&rate) = rates.get(i) {
        let s = run(rate)?;
        eprintln!(
            "   offered {:>8} sent {:>8.0} delivered {:>8.0} pps loss {:.4} %",
            rate.map_or("max".to_owned(), |r| format!("{r:.0}")),
            s.sent_pps,
            s.delivered_pps,
            s.loss * 100.0
        );
        let passed = s.loss < MAX_LOSS;
        // The generator fell short of the offered rate: only the unpaced step is left.
        let short = rate.is_some_and(|r| s.sent_pps < 0.9 * r);
        if passed && out.max_pps.is_none_or(|m| s.delivered_pps > m) {
            out.max_pps = Some(s.delivered_pps);
            out.cpu_s_per_mpkt = s.cpu_s.map(|c| c / (s.delivered.max(1) as f64 / 1e6));
            out.generator_bound = rate.is_none() || short;
        }
        out.steps.push(s);
        if !passed {
            break;
        }
        i = if short && rates.last() == Some(&None) {
            (i + 1).max(rates.len() - 1)
        } else {
            i + 1
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step_with(delivered_pps: f64, loss: f64, sent_pps: f64) -> Step {
        Step {
            offered_pps: None,
            sent_pps,
            delivered_pps,
            loss,
            cpu_s: Some(1.0),
            delivered: 1_000_000,
        }
    }

    #[test]
    fn ladder_stops_at_the_first_lossy_step_and_keeps_the_best_passing() {
        let rates = [Some(10.0), Some(20.0), Some(30.0), None];
        let mut calls = Vec::new();
        let l = climb(&rates, |r| {
            calls.push(r);
            Ok(match r {
                Some(10.0) => step_with(10.0, 0.0, 10.0),
                Some(20.0) => step_with(20.0, 0.0005, 20.0),
                _ => step_with(25.0, 0.01, 30.0),
            })
        })
        .expect("ladder");
        assert_eq!(calls, vec![Some(10.0), Some(20.0), Some(30.0)]);
        assert_eq!(l.max_pps, Some(20.0));
        assert_eq!(l.cpu_s_per_mpkt, Some(1.0));
        assert!(!l.generator_bound);
    }

    #[test]
    fn ladder_jumps_to_unpaced_when_the_generator_falls_short() {
        let rates = [Some(10.0), Some(20.0), Some(30.0), None];
        let mut calls = Vec::new();
        let l = climb(&rates, |r| {
            calls.push(r);
            Ok(match r {
                Some(10.0) => step_with(10.0, 0.0, 10.0),
                Some(20.0) => step_with(15.0, 0.0, 15.0),
                _ => step_with(16.0, 0.0, 16.0),
            })
        })
        .expect("ladder");
        assert_eq!(calls, vec![Some(10.0), Some(20.0), None]);
        assert_eq!(l.max_pps, Some(16.0));
        assert!(l.generator_bound);
    }

    #[test]
    fn loads_bound_every_step_in_count_and_time() {
        let few = Load::few(64, Some(25_000.0), 1.0);
        assert_eq!(
            (few.flows, few.count, few.max_ms),
            (FEW_FLOWS, 3_125, 2_000)
        );
        let many = Load::many(512, None);
        assert_eq!(
            (many.flows, many.count, many.max_ms),
            (MANY_FLOWS, 48, 6_000)
        );
        let fresh = Load::new_flows(6_000, Some(10_000.0));
        assert_eq!((fresh.first_port, fresh.count), (None, 1));
    }
}

//! Load steps and the search for a peer's maximum: one-way load from the DPDK generator
//! (`testbench udpgen` in the client namespace), counted where it arrives (the backends'
//! UDP layer and links), with the machine's CPU time over the step.
//!
//! The search starts unpaced: if nothing is lost the generator, not the peer, was the
//! limit. Otherwise it steps down from what the generator sent until a step loses less
//! than 0.1 %, then bisects between the highest passing and lowest failing rates.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::placement;
use super::procfs;
use super::results::{Ladder, Step};
use crate::counters;
use crate::error::{Error, Result};
use crate::topology::{Topology, HOST_IFACE};
use crate::traffic::udpgen::driver::Generator;
use crate::traffic::udpgen::{FlowSpace, Job};

/// Loss at or above which a step fails (0.1 %).
pub(super) const MAX_LOSS: f64 = 0.001;

/// Frame length without FCS of a 64-byte frame on the wire.
pub(super) const FRAME_64: usize = 60;
/// Frame length without FCS of a 512-byte frame on the wire.
pub(super) const FRAME_512: usize = 508;

/// Source port of the single flow.
const ONE_FLOW_PORT: u16 = 10_000;
/// Many flows: 256 source addresses × 512 ports.
pub(super) const MANY_SOURCES: u32 = 256;
const MANY_PORTS: u16 = 512;
const MANY_FIRST_PORT: u16 = 20_000;
/// New flows: 4,096 source addresses × 60,000 ports; each datagram takes the next one,
/// so no tuple comes back within a run.
const NEW_SOURCES: u32 = 4_096;
const NEW_PORTS: u16 = 60_000;
const NEW_FIRST_PORT: u16 = 1_024;

/// Flows of the many-flow cases.
pub(super) const MANY_FLOWS: u64 = MANY_SOURCES as u64 * MANY_PORTS as u64;
const _: () = assert!(MANY_FLOWS >= 100_000, "the many-flow cases need 100k flows");

/// How long the counters are left to settle after a job (queues drain).
const SETTLE: Duration = Duration::from_millis(200);
/// An unpaced job's datagram count: far more than it can send before its time bound.
const UNPACED_COUNT: u64 = 1 << 40;
/// Paced steps of a search after the unpaced one.
const PACED_STEPS: usize = 8;
/// A failing step's successor, while nothing has passed: this fraction of it.
const STEP_DOWN: f64 = 0.6;
/// The search stops once the lowest failing rate is within this fraction above the
/// highest passing one.
const RESOLUTION: f64 = 0.1;
/// A search gives up below this rate (packets or new flows per second).
pub(super) const FLOOR_PPS: f64 = 2_000.0;

/// Which flows a step's datagrams belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flows {
    /// One flow (the client's address, one port).
    One,
    /// [`MANY_FLOWS`] flows, datagram `k` of flow `k % MANY_FLOWS`.
    Many,
    /// Every datagram a flow never seen before.
    New,
}

/// A throughput case.
#[derive(Clone, Copy, Debug)]
pub(super) struct Case {
    /// Its name in results and reports.
    pub(super) name: &'static str,
    /// Frame length without FCS.
    pub(super) frame_len: usize,
    /// Its flows.
    pub(super) flows: Flows,
}

/// The new-flow case.
pub(super) const NEW_FLOWS: Case = Case {
    name: "new flows",
    frame_len: FRAME_64,
    flows: Flows::New,
};

/// The throughput cases, in the order they run (the many-flow cases after their state
/// is opened).
pub(super) const CASES: [Case; 4] = [
    Case {
        name: "64B 1 flow",
        frame_len: FRAME_64,
        flows: Flows::One,
    },
    Case {
        name: "512B 1 flow",
        frame_len: FRAME_512,
        flows: Flows::One,
    },
    Case {
        name: "64B 131k flows",
        frame_len: FRAME_64,
        flows: Flows::Many,
    },
    Case {
        name: "512B 131k flows",
        frame_len: FRAME_512,
        flows: Flows::Many,
    },
];

/// What one step sends.
#[derive(Clone, Copy, Debug)]
pub(super) struct Load {
    pub(super) frame_len: usize,
    pub(super) flows: Flows,
    /// Datagrams per second; `None`: unpaced.
    pub(super) rate: Option<f64>,
    /// Duration of the step.
    pub(super) secs: f64,
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

/// The system under test as the generator sees it, and the generator.
pub(super) struct Bencher<'t> {
    /// Its topology: client 0 sends, the backends count.
    pub(super) topo: &'t Topology,
    /// Where datagrams go; flow `i` to `targets[i % n]`.
    pub(super) targets: Vec<SocketAddr>,
    /// The client's next hop (the peer's or the kernel router's MAC).
    pub(super) dst_mac: [u8; 6],
    /// The generator, in the client namespace.
    pub(super) gen: Generator,
    /// Next unused flow number of the new-flow space.
    pub(super) new_flow_cursor: u64,
}

/// Counters read before and after a job.
struct Snapshot {
    udp: u64,
    link: u64,
    /// The client's interface: frames handed to the lb side, and refused by it.
    client_tx: u64,
    client_tx_dropped: u64,
    /// The lb side of the client's veth: frames it could not queue for processing.
    lb_rx_dropped: u64,
    cpu: Vec<procfs::CpuTicks>,
    gen_cpu_s: f64,
}

impl Bencher<'_> {
    /// The flows' source space and the job's flow numbering for `flows`.
    fn flow_plan(&self, flows: Flows, count: u64) -> (FlowSpace, u64, u64) {
        match flows {
            Flows::One => (
                FlowSpace::single(self.topo.client(0).ipv4().into(), ONE_FLOW_PORT),
                0,
                1,
            ),
            Flows::Many => (many_space(), 0, MANY_FLOWS),
            Flows::New => (
                FlowSpace {
                    first_source: IpAddr::V4(Ipv4Addr::new(198, 19, 128, 0)),
                    sources: NEW_SOURCES,
                    first_port: NEW_FIRST_PORT,
                    ports: NEW_PORTS,
                },
                self.new_flow_cursor,
                count.max(1),
            ),
        }
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let mut udp = 0;
        let mut link = 0;
        for b in self.topo.backends() {
            udp += counters::udp_arrivals(b.ns())?;
            link += counters::link_stats(b.ns(), HOST_IFACE)?.rx_packets;
        }
        let client = counters::link_stats(self.topo.client(0).ns(), HOST_IFACE)?;
        let lb = counters::link_stats(self.topo.lb_ns(), placement::CLIENT_PORT)?;
        Ok(Snapshot {
            udp,
            link,
            client_tx: client.tx_packets,
            client_tx_dropped: client.tx_dropped,
            lb_rx_dropped: lb.rx_dropped,
            cpu: procfs::machine_ticks(),
            gen_cpu_s: procfs::process_cpu_seconds(self.gen.pid()),
        })
    }

    /// Sends `load` and measures what arrived and what the machine spent.
    ///
    /// # Errors
    /// The generator fails or a counter cannot be read.
    pub(super) fn step(&mut self, load: &Load) -> Result<Step> {
        let (count, max_ms) = match load.rate {
            Some(rate) => (
                whole(rate * load.secs).max(1),
                whole(load.secs * 1500.0) + 500,
            ),
            None => (UNPACED_COUNT, whole(load.secs * 1000.0).max(1)),
        };
        let (space, first_flow, flows) = self.flow_plan(load.flows, count);
        let job = Job {
            dst_mac: self.dst_mac,
            space,
            targets: self.targets.clone(),
            frame_len: load.frame_len,
            first_flow,
            flows: if load.flows == Flows::New {
                u64::MAX
            } else {
                flows
            },
            count,
            rate: load.rate,
            max_ms,
        };
        let before = self.snapshot()?;
        let report = self.gen.run(&job)?;
        if let Some(e) = report.error {
            return Err(Error::invalid("udpgen job", e));
        }
        if load.flows == Flows::New {
            self.new_flow_cursor += report.sent;
        }
        std::thread::sleep(SETTLE);
        let after = self.snapshot()?;
        let (busy_s, cpu_busy, cpu_softirq) = procfs::machine_delta(&before.cpu, &after.cpu);
        let gen_cpu_s = (after.gen_cpu_s - before.gen_cpu_s).max(0.0);
        let delivered = after.udp.saturating_sub(before.udp);
        let elapsed = report.elapsed_s.max(1e-6);
        // What left the generator's interface, by the kernel's count: what the lb side
        // took plus what it refused.
        let refused = after
            .client_tx_dropped
            .saturating_sub(before.client_tx_dropped);
        let sent = after.client_tx.saturating_sub(before.client_tx) + refused;
        Ok(Step {
            offered_pps: load.rate,
            sent,
            sent_pps: sent as f64 / elapsed,
            gen_accepted: report.sent,
            elapsed_s: report.elapsed_s,
            delivered,
            delivered_pps: delivered as f64 / elapsed,
            link_delivered: after.link.saturating_sub(before.link),
            ingress_dropped: refused + after.lb_rx_dropped.saturating_sub(before.lb_rx_dropped),
            loss: loss(sent, delivered),
            sut_cpu_s: (busy_s - gen_cpu_s).max(0.0),
            gen_cpu_s,
            cpu_busy,
            cpu_softirq,
        })
    }
}

/// The many-flow source space: 198.19.64.0–255 × ports 20000–20511.
pub(super) fn many_space() -> FlowSpace {
    FlowSpace {
        first_source: IpAddr::V4(Ipv4Addr::new(198, 19, 64, 0)),
        sources: MANY_SOURCES,
        first_port: MANY_FIRST_PORT,
        ports: MANY_PORTS,
    }
}

/// `1 - delivered / sent` (nothing sent: total loss).
fn loss(sent: u64, delivered: u64) -> f64 {
    if sent == 0 {
        1.0
    } else {
        1.0 - delivered.min(sent) as f64 / sent as f64
    }
}

/// Prints a step as it is measured.
pub(super) fn log_step(s: &Step) {
    let busy: Vec<String> = s
        .cpu_busy
        .iter()
        .zip(&s.cpu_softirq)
        .enumerate()
        .map(|(i, (b, si))| format!("cpu{i} {:.0}% (si {:.0}%)", b * 100.0, si * 100.0))
        .collect();
    eprintln!(
        "   offered {:>8} sent {:>8.0} delivered {:>8.0} pps (link {:>8.0}) loss {:.3} % {}",
        s.offered_pps
            .map_or("max".to_owned(), |r| format!("{r:.0}")),
        s.sent_pps,
        s.delivered_pps,
        s.link_delivered as f64 / s.elapsed_s.max(1e-6),
        s.loss * 100.0,
        busy.join(" ")
    );
}

/// Searches for the highest rate with loss under [`MAX_LOSS`]: `run(None)` unpaced first;
/// if it loses, a bracketing search between what the generator sent (failing) and the
/// floor: paced steps at [`STEP_DOWN`] of the lowest failing rate until one passes, then
/// bisection between the highest passing and the lowest failing rate until they are
/// within [`RESOLUTION`]. What an overloaded peer *delivered* is not a bound: a peer in
/// receive livelock (its CPU taken by the kernel's receive work) delivers a small
/// fraction of what it sustains once the load is below its capacity. At most
/// [`PACED_STEPS`] paced steps, none below `floor`.
pub(super) fn search(
    floor: f64,
    mut run: impl FnMut(Option<f64>) -> Result<Step>,
) -> Result<Ladder> {
    let mut out = Ladder::default();
    let first = run(None)?;
    log_step(&first);
    let passed = first.loss < MAX_LOSS;
    let mut failing = first.sent_pps;
    if passed {
        out.max_pps = Some(first.delivered_pps);
        out.cpu_s_per_mpkt = first.cpu_s_per_mpkt();
        out.generator_bound = true;
    }
    out.steps.push(first);
    if passed {
        return Ok(out);
    }
    let mut passing: Option<f64> = None;
    let mut target = failing * STEP_DOWN;
    for _ in 0..PACED_STEPS {
        if target < floor {
            break;
        }
        let s = run(Some(target))?;
        log_step(&s);
        if s.loss < MAX_LOSS {
            if out.max_pps.is_none_or(|m| s.delivered_pps > m) {
                out.max_pps = Some(s.delivered_pps);
                out.cpu_s_per_mpkt = s.cpu_s_per_mpkt();
            }
            passing = Some(passing.map_or(target, |p| p.max(target)));
        } else {
            failing = failing.min(target);
        }
        out.steps.push(s);
        target = match passing {
            None => failing * STEP_DOWN,
            Some(p) if failing <= p * (1.0 + RESOLUTION) => break,
            Some(p) => f64::midpoint(p, failing),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that delivers everything up to `capacity` pps and loses the excess; the
    /// generator sends `gen` pps at most.
    fn peer(capacity: f64, gen: f64) -> impl FnMut(Option<f64>) -> Result<Step> {
        move |rate| {
            let sent_pps = rate.map_or(gen, |r| r.min(gen));
            let delivered_pps = sent_pps.min(capacity);
            Ok(Step {
                offered_pps: rate,
                sent: whole(sent_pps),
                sent_pps,
                delivered: whole(delivered_pps),
                delivered_pps,
                loss: loss(whole(sent_pps), whole(delivered_pps)),
                sut_cpu_s: 1.0,
                ..Step::default()
            })
        }
    }

    #[test]
    fn an_unsaturated_peer_is_generator_bound() {
        let l = search(FLOOR_PPS, peer(2e6, 1e6)).expect("search");
        assert_eq!(l.steps.len(), 1);
        assert_eq!(l.max_pps, Some(1e6));
        assert!(l.generator_bound);
        assert_eq!(l.cpu_s_per_mpkt, Some(1.0));
    }

    #[test]
    fn a_saturated_peer_is_found_from_above_and_refined_once() {
        let mut rates = Vec::new();
        let mut p = peer(300_000.0, 1e6);
        let l = search(FLOOR_PPS, |r| {
            rates.push(r);
            p(r)
        })
        .expect("search");
        // Unpaced sends 1M (70 % lost); 600k and 360k fail, 216k passes; bisection:
        // 288k passes, 324k and 306k fail (306k is within 10 % of 288k).
        let expected: Vec<Option<f64>> = [None, Some(600e3), Some(360e3), Some(216e3)]
            .into_iter()
            .chain([Some(288e3), Some(324e3), Some(306e3)])
            .collect();
        assert_eq!(rates.len(), expected.len(), "{rates:?}");
        for (r, e) in rates.iter().zip(&expected) {
            match (r, e) {
                (Some(r), Some(e)) => assert!((r - e).abs() < 1.0, "{rates:?}"),
                (None, None) => {}
                _ => panic!("{rates:?}"),
            }
        }
        assert!((l.max_pps.expect("found") - 288e3).abs() < 1.0);
        assert!(!l.generator_bound);
    }

    #[test]
    fn a_peer_in_livelock_is_searched_from_what_was_sent() {
        // Overloaded it delivers 5k (receive livelock); below 300k it loses nothing.
        let mut rates = Vec::new();
        let l = search(FLOOR_PPS, |r| {
            rates.push(r);
            let sent_pps = r.unwrap_or(900e3);
            let delivered_pps = if sent_pps > 300e3 { 5e3 } else { sent_pps };
            Ok(Step {
                offered_pps: r,
                sent: whole(sent_pps),
                sent_pps,
                delivered: whole(delivered_pps),
                delivered_pps,
                loss: loss(whole(sent_pps), whole(delivered_pps)),
                ..Step::default()
            })
        })
        .expect("search");
        let max = l.max_pps.expect("found");
        assert!(max > 270e3 && max <= 300e3, "max {max}, steps {rates:?}");
    }

    #[test]
    fn a_peer_lossy_at_any_rate_has_no_maximum() {
        // Loses 1 % of everything: every step fails; the search ends at the floor or
        // after its paced steps, whichever comes first.
        let mut calls = 0;
        let l = search(FLOOR_PPS, |r| {
            calls += 1;
            let sent = r.unwrap_or(1e6);
            Ok(Step {
                offered_pps: r,
                sent: whole(sent),
                sent_pps: sent,
                delivered: whole(sent * 0.99),
                delivered_pps: sent * 0.99,
                loss: 0.01,
                ..Step::default()
            })
        })
        .expect("search");
        assert_eq!(l.max_pps, None);
        assert_eq!(calls, 1 + PACED_STEPS);
        assert!(l.steps.iter().all(|s| s.loss >= MAX_LOSS));
    }

    #[test]
    fn a_search_stops_at_the_floor() {
        let l = search(FLOOR_PPS, peer(1_000.0, 1e4)).expect("search");
        // The paced steps at 6k, 3.6k and 2.16k fail; the next, 1.3k, is below the floor
        // and never run.
        assert_eq!(l.steps.len(), 4);
        assert_eq!(l.max_pps, None);
    }

    #[test]
    fn the_many_flow_space_holds_every_flow_once() {
        let s = many_space();
        assert_eq!(s.size(), MANY_FLOWS);
        assert_eq!(
            s.tuple(0),
            (IpAddr::V4(Ipv4Addr::new(198, 19, 64, 0)), 20_000)
        );
        assert_eq!(
            s.tuple(MANY_FLOWS - 1),
            (IpAddr::V4(Ipv4Addr::new(198, 19, 64, 255)), 20_511)
        );
        assert!((loss(0, 0) - 1.0).abs() < 1e-12);
        assert!((loss(1000, 999) - 0.001).abs() < 1e-12);
    }
}

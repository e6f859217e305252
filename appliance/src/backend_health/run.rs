//! The health checker's thread: adopts the checks of each published configuration,
//! sends the probes due through the slow path, takes what the slow path recognised as
//! answers, samples the passive counters, and publishes a new `Health` snapshot to every
//! worker when the excluded endpoints or panicking Services change (as tables and
//! neighbor snapshots are published: an `Arc` per worker channel, adopted between
//! bursts).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver, Sender};
use pipelines::health::Health;
use pipelines::net::{Network, PortRange};
use pipelines::spec::HealthCheckSpec;

use super::checker::Checker;
use super::passive::PassiveSource;
use super::report::HealthReport;
use super::wire::ProbeEvent;

/// How often the passive counters are sampled (workers copy theirs out every 100 ms).
const PASSIVE_INTERVAL: Duration = Duration::from_millis(200);
/// The longest the thread sleeps (so a stop is seen promptly).
const MAX_SLEEP: Duration = Duration::from_millis(100);
/// How often the status report is copied out (and whenever a snapshot is published).
const REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// Slow-path events handled per round, at most.
const EVENTS_PER_ROUND: usize = 1024;

/// A probe for the slow path to send: `payload` from the port's own address (the one
/// whose prefix holds `next_hop`) and `src_port` to `target`, through `next_hop`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeDatagram {
    /// The port facing the endpoint (the route's).
    pub port: u16,
    /// The route's next hop (the endpoint itself on a connected prefix).
    pub next_hop: IpAddr,
    /// Destination.
    pub target: SocketAddr,
    /// Source port, in the probe range.
    pub src_port: u16,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// The slow path's side: which datagrams and ICMP errors are about probes, and where to
/// tell it.
#[derive(Clone, Debug)]
pub struct ProbeTap {
    /// The probe source ports.
    pub ports: PortRange,
    /// The checker's input (never blocks: a full channel drops the event).
    pub events: Sender<ProbeEvent>,
}

/// The latest [`HealthReport`], shared with the management thread.
pub type ReportSlot = Arc<Mutex<HealthReport>>;

/// The checker thread's links.
pub struct HealthLinks {
    /// The checks of each published configuration (from the control plane).
    pub checks: Receiver<Vec<HealthCheckSpec>>,
    /// What the slow path recognised.
    pub events: Receiver<ProbeEvent>,
    /// Hands a probe to the slow path; `false` when its queue is full.
    pub send: Box<dyn FnMut(ProbeDatagram) -> bool + Send>,
    /// Routes probes.
    pub network: Arc<Network>,
    /// Each worker's health channel.
    pub workers: Vec<Sender<Arc<Health>>>,
    /// The passive counters.
    pub passive: Arc<dyn PassiveSource>,
    /// Where the report goes.
    pub report: ReportSlot,
    /// Set to stop the thread.
    pub stop: Arc<AtomicBool>,
}

/// Starts the checker thread, sending probes from `ports`.
///
/// # Errors
/// The thread could not be created.
pub fn spawn(links: HealthLinks, ports: Option<PortRange>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("udplb-health".into())
        .spawn(move || run(links, Checker::new(ports)))
}

fn run(mut links: HealthLinks, mut checker: Checker) {
    if checker.probe_ports().is_none() {
        log::error!(
            "backend health: the SNAT port pool takes every port; active checks cannot send \
             probes (each fails, saying so)"
        );
    }
    let mut next_passive = Instant::now();
    let mut next_report = Instant::now();
    while !links.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if let Some(checks) = links.checks.try_iter().last() {
            log::info!("backend health: {} Service port(s) checked", checks.len());
            checker.set_checks(checks, now);
        }
        for event in links.events.try_iter().take(EVENTS_PER_ROUND) {
            checker.on_event(event, now);
        }
        for o in checker.poll(now) {
            let unsent = |why| ProbeEvent::Unsent {
                to: o.target,
                from_port: o.src_port,
                why,
            };
            let Some(hop) = links.network.route(o.target.ip()) else {
                checker.on_event(unsent("no route"), now);
                continue;
            };
            let sent = (links.send)(ProbeDatagram {
                port: hop.port,
                next_hop: hop.via,
                target: o.target,
                src_port: o.src_port,
                payload: o.payload,
            });
            if !sent {
                checker.on_event(unsent("slow path queue full"), now);
            }
        }
        if now >= next_passive {
            checker.sample_passive(&links.passive.endpoint_totals(), now);
            next_passive = now + PASSIVE_INTERVAL;
        }
        let published = checker.publish();
        if let Some(h) = &published {
            log::info!(
                "backend health: {} endpoint(s) take no new flows, {} Service(s) in panic",
                h.excluded().len(),
                h.panicking().len()
            );
            for w in &links.workers {
                // A worker that has exited needs no health.
                let _ = w.send(Arc::clone(h));
            }
        }
        if published.is_some() || now >= next_report {
            *links.report.lock().unwrap_or_else(|e| e.into_inner()) =
                HealthReport::of(&checker, now);
            next_report = now + REPORT_INTERVAL;
        }
        let wake = [
            checker.next_wakeup(),
            checker.next_ejection_end(),
            Some(next_passive),
            Some(now + MAX_SLEEP),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + MAX_SLEEP);
        let timeout = wake.saturating_duration_since(Instant::now());
        select! {
            recv(links.checks) -> msg => match msg {
                Ok(checks) => checker.set_checks(checks, Instant::now()),
                // The control plane is gone: stop.
                Err(_) => break,
            },
            recv(links.events) -> msg => match msg {
                Ok(event) => checker.on_event(event, Instant::now()),
                // No slow path any more: nothing will come.
                Err(_) => links.events = crossbeam_channel::never(),
            },
            default(timeout) => {},
        }
    }
    log::info!("backend health stopped: {:?}", checker.counters());
}

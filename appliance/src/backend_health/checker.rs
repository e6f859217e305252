//! The scheduler: which endpoint to probe when, the probes in flight and their results,
//! passive samples, and the [`Health`] snapshot they add up to. Time is passed in; the
//! thread around it ([`super::spawn`]) does the I/O.
//!
//! Bounds: at most [`MAX_IN_FLIGHT`] probes per endpoint (the timeout is at most the
//! interval, so normally one), and never more than the probe source ports (each probe in
//! flight holds one, which is how its answer is found). A configuration change drops the
//! probes and state of every endpoint it no longer checks the same way.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipelines::health::Health;
use pipelines::net::PortRange;
use pipelines::spec::{ActiveCheckSpec, HealthCheckSpec, ProbeSpec};

use super::probe::{self, Judged};
use super::state::{
    ejection_cap, ActiveState, PassiveSample, PassiveState, PassiveStep, ProbeResult,
};
use super::wire::ProbeEvent;

/// Probes in flight per endpoint, at most.
pub const MAX_IN_FLIGHT: usize = 2;
/// Probe source ports used at most (the top of the largest run outside the SNAT pool).
pub const MAX_PROBE_PORTS: u32 = 4096;

/// A probe to send: a UDP datagram from the appliance's address on the port facing
/// `target`, from source port `src_port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Destination: the endpoint's address, the check's port (or the endpoint's).
    pub target: SocketAddr,
    /// Source port (in the probe range).
    pub src_port: u16,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Probe and ejection tallies, for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthCounters {
    /// Probes handed to the slow path.
    pub probes_sent: u64,
    /// Probes that passed.
    pub passed: u64,
    /// Failed: no passing answer within the timeout.
    pub failed_timeout: u64,
    /// Failed: ICMP port or host unreachable.
    pub failed_unreachable: u64,
    /// Failed: a wrong answer (DNS rcode or question).
    pub failed_reply: u64,
    /// Failed: the slow path could not send it (next hop unresolved, no source address).
    pub failed_unsent: u64,
    /// Probes not started: every probe source port was in use.
    pub no_source_port: u64,
    /// Passive ejections.
    pub ejections: u64,
    /// Ejections the Service's `maxEjectionPercent` held back.
    pub ejections_capped: u64,
    /// Health snapshots published to the workers.
    pub published: u64,
}

/// A probe waiting for its answer.
#[derive(Clone, Debug)]
struct InFlight {
    endpoint: SocketAddr,
    target: SocketAddr,
    id: u16,
    deadline: Instant,
    /// Why the slow path could not send it, if it could not.
    unsent: Option<&'static str>,
}

/// One checked endpoint.
#[derive(Clone, Debug)]
pub struct EndpointState {
    /// Index of its check in [`Checker::checks`].
    pub check: usize,
    /// The active check's state (unused without one).
    pub active: ActiveState,
    /// The passive check's state (unused without one).
    pub passive: PassiveState,
    /// When its next probe is due (`None`: no active check).
    next_probe: Option<Instant>,
    in_flight: usize,
}

impl EndpointState {
    fn new(check: usize) -> EndpointState {
        EndpointState {
            check,
            active: ActiveState::default(),
            passive: PassiveState::default(),
            next_probe: None,
            in_flight: 0,
        }
    }

    /// Failed the active check or ejected.
    pub fn unhealthy(&self) -> bool {
        !self.active.healthy || self.passive.ejected()
    }
}

/// Random 16-bit values (DNS IDs) from the process's random SipHash keys: unpredictable
/// off-path without a dependency.
struct Ids {
    keys: RandomState,
    n: u64,
}

impl Ids {
    fn next(&mut self) -> u16 {
        self.n = self.n.wrapping_add(1);
        // Truncation intended: any 16 bits of the hash.
        (self.keys.hash_one(self.n) & 0xffff) as u16
    }
}

/// Every check's state.
pub struct Checker {
    checks: Vec<HealthCheckSpec>,
    endpoints: BTreeMap<SocketAddr, EndpointState>,
    /// By source port.
    in_flight: BTreeMap<u16, InFlight>,
    ports: Option<PortRange>,
    next_port: u16,
    ids: Ids,
    counters: HealthCounters,
    health: Arc<Health>,
}

impl Checker {
    /// A checker that sends probes from `ports` (`None`: no port outside the SNAT pool,
    /// so no active probe is ever sent and each says so).
    pub fn new(ports: Option<PortRange>) -> Checker {
        Checker {
            checks: Vec::new(),
            endpoints: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            next_port: ports.map_or(0, |p| p.first),
            ports,
            ids: Ids {
                keys: RandomState::new(),
                n: 0,
            },
            counters: HealthCounters::default(),
            health: Arc::new(Health::default()),
        }
    }

    /// The probe source ports.
    pub fn probe_ports(&self) -> Option<PortRange> {
        self.ports
    }

    /// The checks in force.
    pub fn checks(&self) -> &[HealthCheckSpec] {
        &self.checks
    }

    /// Every checked endpoint's state.
    pub fn endpoints(&self) -> &BTreeMap<SocketAddr, EndpointState> {
        &self.endpoints
    }

    /// The tallies.
    pub fn counters(&self) -> HealthCounters {
        self.counters
    }

    /// The snapshot last returned by [`Checker::publish`].
    pub fn health(&self) -> &Arc<Health> {
        &self.health
    }

    /// Probes in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Adopts the checks of a new configuration at `now`. An endpoint checked the same
    /// way as before (same active and passive settings) keeps its state and schedule;
    /// any other starts afresh (healthy), and the probes in flight of an endpoint no
    /// longer checked that way are forgotten. First probes are spread over the interval.
    pub fn set_checks(&mut self, checks: Vec<HealthCheckSpec>, now: Instant) {
        let same = |a: &HealthCheckSpec, b: &HealthCheckSpec| {
            a.active == b.active && a.passive == b.passive
        };
        let mut endpoints = BTreeMap::new();
        for (i, c) in checks.iter().enumerate() {
            let n = c.endpoints.len().max(1);
            for (k, addr) in c.endpoints.iter().enumerate() {
                let kept = self
                    .endpoints
                    .remove(addr)
                    .filter(|e| same(&self.checks[e.check], c));
                let mut e = match kept {
                    Some(e) => e,
                    None => {
                        // Spread first probes: endpoint k of n at k/n of the interval.
                        let mut e = EndpointState::new(i);
                        e.next_probe = c.active.as_ref().map(|a| now + spread(a.interval, k, n));
                        e
                    }
                };
                e.check = i;
                endpoints.insert(*addr, e);
            }
        }
        self.in_flight
            .retain(|_, p| endpoints.get(&p.endpoint).is_some_and(|e| e.in_flight > 0));
        self.endpoints = endpoints;
        self.checks = checks;
    }

    /// Ends the probes past their deadline and starts those due, at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Outgoing> {
        let expired: Vec<u16> = self
            .in_flight
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(port, _)| *port)
            .collect();
        for port in expired {
            let Some(p) = self.in_flight.remove(&port) else {
                continue;
            };
            let Some(spec) = self.active_spec(p.endpoint) else {
                continue;
            };
            let weak = matches!(spec.probe, ProbeSpec::Udp { expect: None, .. });
            let timeout = spec.timeout;
            let (passed, reason) = match p.unsent {
                Some(why) => {
                    self.counters.failed_unsent += 1;
                    (false, format!("not sent: {why}"))
                }
                None if weak => {
                    self.counters.passed += 1;
                    (true, "no ICMP unreachable (weak check)".to_owned())
                }
                None => {
                    self.counters.failed_timeout += 1;
                    (false, format!("no answer within {timeout:?}"))
                }
            };
            self.finish(p.endpoint, passed, reason, now);
        }
        let mut out = Vec::new();
        let due: Vec<SocketAddr> = self
            .endpoints
            .iter()
            .filter(|(_, e)| e.next_probe.is_some_and(|t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        for addr in due {
            if let Some(o) = self.start_probe(addr, now) {
                out.push(o);
            }
        }
        out
    }

    /// When [`Checker::poll`] next has work: the earliest probe due or deadline.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let probes = self.endpoints.values().filter_map(|e| e.next_probe);
        let deadlines = self.in_flight.values().map(|p| p.deadline);
        probes.chain(deadlines).min()
    }

    fn active_spec(&self, endpoint: SocketAddr) -> Option<&ActiveCheckSpec> {
        let e = self.endpoints.get(&endpoint)?;
        self.checks.get(e.check)?.active.as_ref()
    }

    fn start_probe(&mut self, addr: SocketAddr, now: Instant) -> Option<Outgoing> {
        let spec = self.active_spec(addr)?.clone();
        let e = self.endpoints.get_mut(&addr)?;
        // The schedule moves on whether or not this probe goes out; after a stall, from
        // now (no burst of catch-up probes).
        let next = e.next_probe.map_or(now, |t| t + spec.interval);
        e.next_probe = Some(if next <= now {
            now + spec.interval
        } else {
            next
        });
        if e.in_flight >= MAX_IN_FLIGHT {
            return None;
        }
        let target = SocketAddr::new(addr.ip(), spec.port.unwrap_or(addr.port()));
        let Some(src_port) = self.free_port() else {
            self.counters.no_source_port += 1;
            let why = if self.ports.is_some() {
                "every probe source port is in use"
            } else {
                "no source port outside the SNAT pool"
            };
            self.finish(addr, false, format!("not sent: {why}"), now);
            return None;
        };
        let id = self.ids.next();
        self.in_flight.insert(
            src_port,
            InFlight {
                endpoint: addr,
                target,
                id,
                deadline: now + spec.timeout,
                unsent: None,
            },
        );
        if let Some(e) = self.endpoints.get_mut(&addr) {
            e.in_flight += 1;
        }
        self.counters.probes_sent += 1;
        Some(Outgoing {
            target,
            src_port,
            payload: probe::encode(&spec.probe, id),
        })
    }

    /// The next free source port, round robin (so a late answer to an old probe rarely
    /// meets a new one on the same port).
    fn free_port(&mut self) -> Option<u16> {
        let range = self.ports?;
        for _ in 0..range.len() {
            let port = self.next_port;
            self.next_port = if port >= range.last || port < range.first {
                range.first
            } else {
                port + 1
            };
            if !self.in_flight.contains_key(&port) {
                return Some(port);
            }
        }
        None
    }

    /// An answer or error from the slow path.
    pub fn on_event(&mut self, event: ProbeEvent, now: Instant) {
        match event {
            ProbeEvent::Reply {
                from,
                to_port,
                payload,
            } => {
                let Some(p) = self.in_flight.get(&to_port) else {
                    return;
                };
                if p.target != from {
                    return;
                }
                let (endpoint, id) = (p.endpoint, p.id);
                let Some(spec) = self.active_spec(endpoint) else {
                    return;
                };
                let (passed, reason) = match probe::judge(&spec.probe, id, &payload) {
                    Judged::Ignore => return,
                    Judged::Pass => {
                        self.counters.passed += 1;
                        (true, "answered".to_owned())
                    }
                    Judged::Fail(why) => {
                        self.counters.failed_reply += 1;
                        (false, why)
                    }
                };
                self.in_flight.remove(&to_port);
                self.finish(endpoint, passed, reason, now);
            }
            ProbeEvent::Unreachable {
                to,
                from_port,
                what,
            } => {
                if self
                    .in_flight
                    .get(&from_port)
                    .is_none_or(|p| p.target != to)
                {
                    return;
                }
                let Some(p) = self.in_flight.remove(&from_port) else {
                    return;
                };
                self.counters.failed_unreachable += 1;
                self.finish(p.endpoint, false, format!("ICMP {what}"), now);
            }
            ProbeEvent::Unsent { to, from_port, why } => {
                // It fails at its deadline, as a lost probe would, saying why.
                if let Some(p) = self.in_flight.get_mut(&from_port) {
                    if p.target == to {
                        p.unsent = Some(why);
                    }
                }
            }
        }
    }

    fn finish(&mut self, endpoint: SocketAddr, passed: bool, reason: String, now: Instant) {
        let Some(e) = self.endpoints.get_mut(&endpoint) else {
            return;
        };
        e.in_flight = e.in_flight.saturating_sub(1);
        let Some(spec) = self.checks.get(e.check).and_then(|c| c.active.as_ref()) else {
            return;
        };
        let changed = e.active.record(
            spec,
            ProbeResult {
                passed,
                reason,
                at: now,
            },
        );
        if changed {
            let state = if e.active.healthy {
                "healthy"
            } else {
                "unhealthy"
            };
            let why = e.active.last.as_ref().map_or("", |r| r.reason.as_str());
            log::info!("backend {endpoint}: active check: {state} ({why})");
        }
    }

    /// Takes the workers' running totals per endpoint (summed over listeners) at `now`:
    /// ejections start and end here. An endpoint missing from `totals` has counted
    /// nothing yet.
    pub fn sample_passive(&mut self, totals: &BTreeMap<SocketAddr, PassiveSample>, now: Instant) {
        for (i, c) in self.checks.iter().enumerate() {
            let Some(spec) = c.passive else {
                continue;
            };
            let cap = ejection_cap(spec.max_ejection_percent, c.endpoints.len());
            let mut ejected = c
                .endpoints
                .iter()
                .filter(|a| {
                    self.endpoints
                        .get(a)
                        .is_some_and(|e| e.check == i && e.passive.ejected())
                })
                .count();
            for addr in &c.endpoints {
                // An endpoint is checked under one Service port only (the spec's rule);
                // should two name it, the one it was filed under samples it.
                let Some(e) = self.endpoints.get_mut(addr).filter(|e| e.check == i) else {
                    continue;
                };
                let sample = totals.get(addr).copied().unwrap_or_default();
                match e.passive.sample(&spec, sample, now) {
                    PassiveStep::Nothing => {}
                    PassiveStep::Returned => {
                        ejected = ejected.saturating_sub(1);
                        log::info!("backend {addr}: passive ejection over");
                    }
                    PassiveStep::WantsEjection if ejected < cap => {
                        let time = e.passive.eject(&spec, now);
                        ejected += 1;
                        self.counters.ejections += 1;
                        log::warn!(
                            "backend {addr}: ejected for {time:?} after {} ICMP unreachable \
                             in a row",
                            spec.consecutive_failures
                        );
                    }
                    PassiveStep::WantsEjection => self.counters.ejections_capped += 1,
                }
            }
        }
    }

    /// The next ejection end, for the thread's timer.
    pub fn next_ejection_end(&self) -> Option<Instant> {
        self.endpoints
            .values()
            .filter_map(|e| e.passive.ejected_until)
            .min()
    }

    /// The snapshot for the current state if it differs from the last one returned
    /// (excluded endpoints or panicking Services), to publish to the workers.
    pub fn publish(&mut self) -> Option<Arc<Health>> {
        let endpoints = &self.endpoints;
        let h = Health::compute(&self.checks, |a| {
            endpoints.get(&a).is_some_and(EndpointState::unhealthy)
        });
        if h.excluded() == self.health.excluded() && h.panicking() == self.health.panicking() {
            return None;
        }
        let h = Arc::new(h);
        self.health = Arc::clone(&h);
        self.counters.published += 1;
        Some(h)
    }
}

/// `interval × k / n`, for endpoint `k` of `n`.
fn spread(interval: Duration, k: usize, n: usize) -> Duration {
    let k = u32::try_from(k).unwrap_or(u32::MAX);
    let n = u32::try_from(n).unwrap_or(u32::MAX).max(1);
    interval / n * k
}

/// The probe source ports: the largest run of ports outside the SNAT pool `snat` (port 0
/// excluded), at most [`MAX_PROBE_PORTS`] of them, from the top of the run; `None` when
/// the pool takes every port. Replies to a port outside the pool reach the slow path
/// whatever the addresses (the fast path keeps pool ports of the SNAT address for flows).
pub fn probe_ports(snat: PortRange) -> Option<PortRange> {
    let below = (snat.first > 1).then(|| PortRange {
        first: 1,
        last: snat.first - 1,
    });
    let above = (snat.last < u16::MAX).then(|| PortRange {
        first: snat.last + 1,
        last: u16::MAX,
    });
    let run = match (below, above) {
        (Some(b), Some(a)) => {
            if a.len() >= b.len() {
                a
            } else {
                b
            }
        }
        (b, a) => b.or(a)?,
    };
    let take = u16::try_from(run.len().min(MAX_PROBE_PORTS)).unwrap_or(u16::MAX);
    Some(PortRange {
        first: run.last - (take - 1),
        last: run.last,
    })
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;

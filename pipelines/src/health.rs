//! The health snapshot: which backend endpoints take no new flows.
//!
//! Published like [`crate::neighbor::Neighbors`]: the appliance's health module (active
//! probes, passive ICMP signal, see [`crate::spec::HealthCheckSpec`]) builds an immutable
//! [`Health`] whenever an endpoint's state changes and hands it to every worker as an
//! `Arc` ([`crate::FastPath::set_health`]); the fast path never learns why.
//!
//! Design note: panic mode is decided here, on the control side, because it needs every
//! endpoint of a Service at once: [`Health::compute`] applies each Service's
//! `panic_threshold_percent` and leaves the endpoints of a panicking Service out of the
//! snapshot (they all take flows), and lists the panicking Services for status. The
//! fast path only asks "is this endpoint excluded?". Endpoints are named by address and
//! port, as in the spec, so a snapshot does not depend on a tables generation; each worker
//! maps it onto the tables it runs (once per change, not per packet).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::spec::{HealthCheckSpec, ServiceKey};

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// An immutable set of excluded (unhealthy, not in panic) backend endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    generation: u64,
    excluded: Vec<SocketAddr>,
    panicking: Vec<ServiceKey>,
}

impl Default for Health {
    fn default() -> Self {
        Health::new([])
    }
}

impl Health {
    /// A snapshot excluding exactly `excluded` (no panic logic: see [`Health::compute`]).
    pub fn new(excluded: impl IntoIterator<Item = SocketAddr>) -> Health {
        let mut excluded: Vec<SocketAddr> = excluded.into_iter().collect();
        excluded.sort_unstable();
        excluded.dedup();
        Health {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            excluded,
            panicking: Vec::new(),
        }
    }

    /// The snapshot for the health checks `checks` given each checked endpoint's state
    /// (`unhealthy(addr)`: failed its active check or ejected by the passive one). Per
    /// Service: when more than `panic_threshold_percent` % of its endpoints are unhealthy
    /// (and the threshold is not 0), the Service panics: none of its endpoints is
    /// excluded, and it is listed in [`Health::panicking`]; otherwise its unhealthy
    /// endpoints are excluded. Endpoints no check names are never excluded.
    pub fn compute(checks: &[HealthCheckSpec], unhealthy: impl Fn(SocketAddr) -> bool) -> Health {
        let mut excluded = Vec::new();
        let mut panicking = Vec::new();
        for c in checks {
            let bad: Vec<SocketAddr> = c
                .endpoints
                .iter()
                .copied()
                .filter(|a| unhealthy(*a))
                .collect();
            let threshold = u64::from(c.panic_threshold_percent);
            let panic =
                threshold > 0 && bad.len() as u64 * 100 > threshold * c.endpoints.len() as u64;
            if panic {
                panicking.push(c.service.clone());
            } else {
                excluded.extend(bad);
            }
        }
        let mut h = Health::new(excluded);
        panicking.sort();
        h.panicking = panicking;
        h
    }

    /// Process-unique, increasing identifier (a worker remaps only on a new one).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The excluded endpoints, sorted.
    pub fn excluded(&self) -> &[SocketAddr] {
        &self.excluded
    }

    /// Whether `addr` takes no new flows.
    pub fn is_excluded(&self, addr: SocketAddr) -> bool {
        self.excluded.binary_search(&addr).is_ok()
    }

    /// Services in panic mode (for status: "more than N % unhealthy, using all").
    pub fn panicking(&self) -> &[ServiceKey] {
        &self.panicking
    }

    /// Whether nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.excluded.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PolicyKey;

    fn check(name: &str, n: u8, panic: u8) -> HealthCheckSpec {
        HealthCheckSpec {
            service: ServiceKey {
                namespace: "ns".into(),
                name: name.into(),
                port: 53,
            },
            policy: PolicyKey {
                namespace: "ns".into(),
                name: "p".into(),
            },
            endpoints: (1..=n)
                .map(|i| SocketAddr::from(([198, 18, 1, i], 53)))
                .collect(),
            active: None,
            passive: None,
            panic_threshold_percent: panic,
        }
    }

    #[test]
    fn panic_threshold_is_applied_per_service() {
        let a = check("a", 4, 50);
        let mut b = check("b", 2, 50);
        for e in &mut b.endpoints {
            e.set_port(54);
        }
        let down = |addrs: Vec<SocketAddr>| move |x: SocketAddr| addrs.contains(&x);
        let ep = |i: u8, port: u16| SocketAddr::from(([198, 18, 1, i], port));
        // Two of four is not more than half: both excluded.
        let h = Health::compute(&[a.clone(), b.clone()], down(vec![ep(1, 53), ep(2, 53)]));
        assert_eq!(h.excluded(), [ep(1, 53), ep(2, 53)]);
        assert!(h.panicking().is_empty());
        // Three of four: panic, nobody excluded; b is independent.
        let h = Health::compute(
            &[a.clone(), b.clone()],
            down(vec![ep(1, 53), ep(2, 53), ep(3, 53), ep(1, 54)]),
        );
        assert_eq!(h.excluded(), [ep(1, 54)]);
        assert_eq!(h.panicking(), std::slice::from_ref(&a.service));
        // Threshold 0 disables panic: all four excluded.
        let mut a0 = a.clone();
        a0.panic_threshold_percent = 0;
        let all = down((1..=4).map(|i| ep(i, 53)).collect());
        assert_eq!(Health::compute(&[a0], all).excluded().len(), 4);
        // Endpoints no check names are never excluded.
        let h = Health::compute(&[a], down(vec![ep(9, 53)]));
        assert!(h.is_empty() && !h.is_excluded(ep(9, 53)));
    }

    #[test]
    fn generations_increase() {
        let a = Health::new([]);
        let b = Health::default();
        assert!(b.generation() > a.generation());
    }
}

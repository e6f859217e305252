//! The announcement gate: which prefixes this appliance announces, decided from what it
//! can serve.
//!
//! - The liveness interface is up only while the appliance is healthy
//!   ([`crate::health`]: ports up, every worker polling, the published configuration
//!   applied) and not stopping. Down, every route through it is withdrawn at once.
//! - A VIP is announced when the appliance is healthy, not draining or stopping, and at
//!   least one of the VIP's listeners is ready: its route has weight on at least one
//!   endpoint that is not draining. (A VIP with several listeners stays announced while
//!   any of them can serve: withdrawing it would also take the working ports away, and
//!   every appliance with the same manifests decides the same.) VIPs without a listener
//!   (`default_vips` alone) are not announced: nothing would serve them.
//! - Return routes (preserve-client replies) are announced while the appliance is
//!   healthy and not stopping, draining included: replies to the flows a draining
//!   appliance still serves keep coming back to it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use pipelines::net::IpNet;
use pipelines::tables::{Listener, Tables};

/// Where the appliance is in its life, besides its health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Serving.
    Serving,
    /// Draining or drained (`udplb drain`).
    Draining,
    /// A graceful stop has begun.
    Stopping,
}

/// Why a VIP is not announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Withheld {
    /// The appliance is not healthy (see `/healthz`).
    NotHealthy,
    /// None of the VIP's listeners has a ready backend.
    NoReadyBackend,
    /// Draining.
    Draining,
    /// Stopping.
    Stopping,
}

impl fmt::Display for Withheld {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Withheld::NotHealthy => "not healthy",
            Withheld::NoReadyBackend => "no ready backend",
            Withheld::Draining => "draining",
            Withheld::Stopping => "stopping",
        })
    }
}

/// The gate's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the liveness interface is up.
    pub link_up: bool,
    /// Every VIP with a listener: announced (`None`) or why not.
    pub vips: BTreeMap<IpAddr, Option<Withheld>>,
    /// Whether the return routes are announced.
    pub return_routes: bool,
}

impl Decision {
    /// The VIPs announced.
    pub fn announced(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vips
            .iter()
            .filter(|(_, w)| w.is_none())
            .map(|(vip, _)| *vip)
    }
}

/// Whether `listener` can take a new flow: its route has weight on an endpoint that is
/// not draining.
pub fn listener_ready(listener: &Listener) -> bool {
    listener
        .route
        .as_ref()
        .is_some_and(|r| r.backends.iter().any(|b| b.weight > 0 && !b.draining))
}

/// Every VIP with a listener, and whether any of its listeners is ready.
pub fn vip_readiness(tables: &Tables) -> BTreeMap<IpAddr, bool> {
    let mut vips = BTreeMap::new();
    for l in tables.listeners() {
        let ready = vips.entry(l.vip).or_insert(false);
        *ready |= listener_ready(l);
    }
    vips
}

/// Decides from the health, the phase and each VIP's readiness.
pub fn decide(healthy: bool, phase: Phase, readiness: &BTreeMap<IpAddr, bool>) -> Decision {
    let alive = healthy && phase != Phase::Stopping;
    let vips = readiness
        .iter()
        .map(|(vip, ready)| {
            let why = if phase == Phase::Stopping {
                Some(Withheld::Stopping)
            } else if !healthy {
                Some(Withheld::NotHealthy)
            } else if phase == Phase::Draining {
                Some(Withheld::Draining)
            } else if !ready {
                Some(Withheld::NoReadyBackend)
            } else {
                None
            };
            (*vip, why)
        })
        .collect();
    Decision {
        link_up: alive,
        vips,
        return_routes: alive,
    }
}

/// A VIP as the host route announced for it.
pub fn host_prefix(vip: IpAddr) -> IpNet {
    let len = if vip.is_ipv4() { 32 } else { 128 };
    // A full-length prefix is valid for its family.
    IpNet::new(vip, len).unwrap_or_else(|_| IpNet::from(vip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn readiness(v: &[(&str, bool)]) -> BTreeMap<IpAddr, bool> {
        v.iter().map(|(a, r)| (ip(a), *r)).collect()
    }

    #[test]
    fn healthy_serving_announces_ready_vips_only() {
        let r = readiness(&[("198.19.0.10", true), ("198.19.0.11", false)]);
        let d = decide(true, Phase::Serving, &r);
        assert!(d.link_up && d.return_routes);
        assert_eq!(d.vips[&ip("198.19.0.10")], None);
        assert_eq!(d.vips[&ip("198.19.0.11")], Some(Withheld::NoReadyBackend));
        assert_eq!(d.announced().collect::<Vec<_>>(), [ip("198.19.0.10")]);
    }

    #[test]
    fn unhealthy_draining_and_stopping_withhold_everything_they_must() {
        let r = readiness(&[("198.19.0.10", true), ("2001:2:0:ff::10", true)]);
        let d = decide(false, Phase::Serving, &r);
        assert!(!d.link_up && !d.return_routes);
        assert!(d.vips.values().all(|w| *w == Some(Withheld::NotHealthy)));

        let d = decide(true, Phase::Draining, &r);
        assert!(d.link_up, "flows still served");
        assert!(
            d.return_routes,
            "replies of the flows still served come back"
        );
        assert!(d.vips.values().all(|w| *w == Some(Withheld::Draining)));
        assert_eq!(d.announced().count(), 0);

        for healthy in [true, false] {
            let d = decide(healthy, Phase::Stopping, &r);
            assert!(!d.link_up && !d.return_routes);
            assert!(d.vips.values().all(|w| *w == Some(Withheld::Stopping)));
        }
    }

    #[test]
    fn host_prefixes() {
        assert_eq!(host_prefix(ip("198.19.0.10")).to_string(), "198.19.0.10/32");
        assert_eq!(
            host_prefix(ip("2001:2:0:ff::10")).to_string(),
            "2001:2:0:ff::10/128"
        );
    }
}

//! Publishing a configuration: its tables to every worker, its VIPs to the slow path (which
//! answers ARP, ND and ping for them), every backend's next hop to be resolved before
//! the first datagram needs it, and its health checks to the backend health checker.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use crossbeam_channel::Sender;
use pipelines::net::Network;
use pipelines::spec::HealthCheckSpec;
use pipelines::tables::Tables;

use crate::dpdk::Mbuf;
use crate::slowpath::{SlowPathCounters, SlowPathMsg};

/// Where a configuration goes once it is built.
#[derive(Default)]
pub struct Publisher {
    /// `workers[w]` takes worker `w`'s new tables (picked up between bursts).
    pub workers: Vec<Sender<Arc<Tables>>>,
    /// The slow path, when there is one (the API tests run without).
    pub slow_path: Option<SlowPathLink>,
    /// VIPs served besides those the Gateways request (`default_vips`).
    pub default_vips: Vec<IpAddr>,
    /// The backend health checker's input, when there is one (`crate::backend_health`).
    pub health: Option<Sender<Vec<HealthCheckSpec>>>,
}

/// The control plane's link to the slow path.
pub struct SlowPathLink {
    /// The slow path's input (shared with the workers; never blocks).
    pub tx: Sender<SlowPathMsg<Mbuf>>,
    /// Counts messages the channel refused.
    pub counters: Arc<SlowPathCounters>,
    /// Each port's own addresses with their prefix lengths, sent with every VIP update.
    pub own: Vec<Vec<(IpAddr, u8)>>,
    /// Routes each backend to the next hop to resolve.
    pub network: Arc<Network>,
}

impl Publisher {
    /// Every VIP of `tables` (listeners' and default VIPs), once each, in order.
    pub fn vips(&self, tables: &Tables) -> Vec<IpAddr> {
        let set: BTreeSet<IpAddr> = tables
            .listeners()
            .iter()
            .map(|l| l.vip)
            .chain(self.default_vips.iter().copied())
            .collect();
        set.into_iter().collect()
    }

    /// Sends `tables` to every worker, then tells the slow path and the health checker
    /// (`checks`: the configuration's health checks).
    pub(super) fn publish(&self, tables: &Arc<Tables>, checks: &[HealthCheckSpec]) {
        for w in &self.workers {
            // A worker that has exited no longer needs tables.
            let _ = w.send(Arc::clone(tables));
        }
        self.tell_slow_path(tables);
        self.tell_health(checks);
    }

    /// The health checker's part: the checks in force from now on.
    pub(super) fn tell_health(&self, checks: &[HealthCheckSpec]) {
        if let Some(tx) = &self.health {
            // A checker that has stopped needs nothing.
            let _ = tx.send(checks.to_vec());
        }
    }

    /// The slow path's part only: the workers started with these tables.
    pub(super) fn tell_slow_path(&self, tables: &Tables) {
        if let Some(link) = &self.slow_path {
            link.set_vips(&self.vips(tables));
            link.resolve(&backend_addrs(tables));
        }
    }
}

impl SlowPathLink {
    fn set_vips(&self, vips: &[IpAddr]) {
        for (port, own) in (0..=u16::MAX).zip(&self.own) {
            let msg = SlowPathMsg::UpdateAddresses {
                port,
                own: own.clone(),
                vips: vips.to_vec(),
            };
            if !self.counters.try_send(&self.tx, msg) {
                log::warn!("slow path queue full: VIP update for port {port} lost");
            }
        }
    }

    fn resolve(&self, backends: &[IpAddr]) {
        for ip in backends {
            // Resolve the next hop the fast path will use for this backend.
            let Some(hop) = self.network.route(*ip) else {
                continue;
            };
            let msg = SlowPathMsg::Resolve {
                port: hop.port,
                next_hop: hop.via,
            };
            self.counters.try_send(&self.tx, msg);
        }
    }
}

/// Every backend address of every route, once.
fn backend_addrs(tables: &Tables) -> Vec<IpAddr> {
    let set: BTreeSet<IpAddr> = tables
        .backend_ids()
        .iter()
        .map(|(_, addr)| addr.ip())
        .collect();
    set.into_iter().collect()
}

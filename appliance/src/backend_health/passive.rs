//! Where the passive signal comes from: the workers' identity-keyed backend counters,
//! summed per endpoint over the listeners that use it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use pipelines::counters::Entity;

use super::state::PassiveSample;
use crate::control::ControlPlane;

/// Running totals of each backend endpoint's ICMP unreachable errors and replies.
pub trait PassiveSource: Send + Sync {
    /// Totals per endpoint, summed over listeners and tables generations.
    fn endpoint_totals(&self) -> BTreeMap<SocketAddr, PassiveSample>;
}

impl PassiveSource for ControlPlane {
    fn endpoint_totals(&self) -> BTreeMap<SocketAddr, PassiveSample> {
        let mut out: BTreeMap<SocketAddr, PassiveSample> = BTreeMap::new();
        for (entity, t) in self.sums().entities {
            if let Entity::Backend(_, addr) = entity {
                let s = out.entry(addr).or_default();
                s.icmp_unreachable += t.icmp_unreachable;
                s.reply_packets += t.reply_packets;
            }
        }
        out
    }
}

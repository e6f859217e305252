//! Per-worker counters, summed outside the fast path.
//!
//! Design note. Each worker owns a [`Counters`] value and increments plain `u64`s (no
//! atomics, no sharing); the management thread gets copies (how is the appliance's choice:
//! e.g. the worker sends a clone every second over a channel) and sums them with
//! [`Counters::merge`].
//!
//! Global counters (drop reasons, host reasons, fallbacks, flows) live for the worker's
//! life. Per-entity counters (listener, route, backend) are indexed by the positions in one
//! [`Tables`] generation and are therefore **flushed per
//! generation**: when a worker adopts new tables, its [`EntityCounters`] of the old
//! generation are retired (kept until [`FastPath::take_retired`](crate::fastpath::FastPath::take_retired)
//! collects them) and a zeroed set sized for the new tables starts. The management thread,
//! which keeps each published `Arc<Tables>` until every worker has retired it, turns
//! entity counters into identity-keyed totals with [`EntityCounters::named`] and adds them
//! up — so totals per listener / route / backend survive any number of swaps.

use std::net::SocketAddr;

use crate::spec::{ListenerKey, RouteKey};
use crate::tables::Tables;
use crate::verdict::{DropReason, HostReason};

/// Traffic of one listener, route or backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Client → backend datagrams forwarded.
    pub packets: u64,
    /// Their bytes (Ethernet frame length).
    pub bytes: u64,
    /// Backend → client datagrams forwarded.
    pub reply_packets: u64,
    /// Their bytes.
    pub reply_bytes: u64,
    /// Flows created (including stateless fallbacks, which count as one flow each).
    pub flows_created: u64,
}

impl Traffic {
    /// Adds `o`.
    pub fn add(&mut self, o: &Traffic) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.reply_packets += o.reply_packets;
        self.reply_bytes += o.reply_bytes;
        self.flows_created += o.flows_created;
    }
}

/// Per-entity counters of one tables generation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntityCounters {
    /// The [`Tables::generation`] the indices refer to.
    pub generation: u64,
    /// By listener index.
    pub listeners: Vec<Traffic>,
    /// By route counter index.
    pub routes: Vec<Traffic>,
    /// By backend counter index.
    pub backends: Vec<Traffic>,
}

/// An entity's identity, for identity-keyed totals.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    /// A listener.
    Listener(ListenerKey),
    /// A route.
    Route(RouteKey),
    /// A backend of a listener's route.
    Backend(ListenerKey, SocketAddr),
}

impl EntityCounters {
    /// Zeroed counters sized for `tables`.
    pub fn for_tables(tables: &Tables) -> EntityCounters {
        EntityCounters {
            generation: tables.generation(),
            listeners: vec![Traffic::default(); tables.listeners().len()],
            routes: vec![Traffic::default(); tables.route_keys().len()],
            backends: vec![Traffic::default(); tables.backend_ids().len()],
        }
    }

    /// Adds `o` when it is of the same generation; returns whether it did.
    pub fn merge(&mut self, o: &EntityCounters) -> bool {
        if o.generation != self.generation
            || o.listeners.len() != self.listeners.len()
            || o.routes.len() != self.routes.len()
            || o.backends.len() != self.backends.len()
        {
            return false;
        }
        for (a, b) in self.listeners.iter_mut().zip(&o.listeners) {
            a.add(b);
        }
        for (a, b) in self.routes.iter_mut().zip(&o.routes) {
            a.add(b);
        }
        for (a, b) in self.backends.iter_mut().zip(&o.backends) {
            a.add(b);
        }
        true
    }

    /// Pairs every counter with its identity, using the `tables` of the same generation
    /// (`None` if `tables` is another generation).
    pub fn named(&self, tables: &Tables) -> Option<Vec<(Entity, Traffic)>> {
        if tables.generation() != self.generation {
            return None;
        }
        let mut out = Vec::new();
        for (l, t) in tables.listeners().iter().zip(&self.listeners) {
            out.push((Entity::Listener(l.key.clone()), *t));
        }
        for (k, t) in tables.route_keys().iter().zip(&self.routes) {
            out.push((Entity::Route(k.clone()), *t));
        }
        for ((li, addr), t) in tables.backend_ids().iter().zip(&self.backends) {
            let key = tables.listeners().get(*li as usize)?.key.clone();
            out.push((Entity::Backend(key, *addr), *t));
        }
        Some(out)
    }
}

/// Counters of one worker (or a sum of workers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    /// Packets seen.
    pub rx_packets: u64,
    /// Bytes seen.
    pub rx_bytes: u64,
    /// Packets given a `Tx` verdict.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Drops, indexed by [`DropReason::index`].
    pub drops: [u64; DropReason::COUNT],
    /// Packets to the slow path, indexed by [`HostReason::index`].
    pub to_host: [u64; HostReason::COUNT],
    /// Replies given a `Handoff` verdict (their flow is on another worker).
    pub handoff: u64,
    /// Flows inserted in the flow table.
    pub flows_created: u64,
    /// Flows removed by idle expiry (sweep, lazy expiry or reuse of an expired record).
    pub flows_expired: u64,
    /// Flows re-pinned because their backend left the route.
    pub flows_repinned: u64,
    /// New flows not inserted because the table was full (stateless fallback).
    pub table_full: u64,
    /// New flows not inserted because of the new-flow rate guard (stateless fallback).
    pub rate_limited: u64,
    /// Flows held now (gauge).
    pub flows_active: u64,
    /// Flow table capacity (gauge).
    pub flow_capacity: u64,
    /// Bytes preallocated for the flow table and SNAT pools (gauge).
    pub flow_memory_bytes: u64,
    /// Per-entity counters of the current tables generation.
    pub entities: EntityCounters,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_bytes: 0,
            drops: [0; DropReason::COUNT],
            to_host: [0; HostReason::COUNT],
            handoff: 0,
            flows_created: 0,
            flows_expired: 0,
            flows_repinned: 0,
            table_full: 0,
            rate_limited: 0,
            flows_active: 0,
            flow_capacity: 0,
            flow_memory_bytes: 0,
            entities: EntityCounters::default(),
        }
    }
}

impl Counters {
    /// Drops counted for `r`.
    pub fn drop_count(&self, r: DropReason) -> u64 {
        self.drops[r.index()]
    }

    /// Packets handed to the host for `r`.
    pub fn host_count(&self, r: HostReason) -> u64 {
        self.to_host[r.index()]
    }

    /// Total drops.
    pub fn drops_total(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another worker's counters (gauges add too: capacities and occupancy of
    /// several workers sum). Entity counters are added only when of the same generation;
    /// returns whether they were.
    pub fn merge(&mut self, o: &Counters) -> bool {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_bytes += o.tx_bytes;
        for (a, b) in self.drops.iter_mut().zip(&o.drops) {
            *a += b;
        }
        for (a, b) in self.to_host.iter_mut().zip(&o.to_host) {
            *a += b;
        }
        self.handoff += o.handoff;
        self.flows_created += o.flows_created;
        self.flows_expired += o.flows_expired;
        self.flows_repinned += o.flows_repinned;
        self.table_full += o.table_full;
        self.rate_limited += o.rate_limited;
        self.flows_active += o.flows_active;
        self.flow_capacity += o.flow_capacity;
        self.flow_memory_bytes += o.flow_memory_bytes;
        self.entities.merge(&o.entities)
    }

    /// `(name, value)` of every drop reason, for metrics.
    pub fn drops_named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.drops[r.index()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sums_and_respects_generation() {
        let mut a = Counters::default();
        let mut b = Counters::default();
        a.drops[DropReason::Fragment.index()] = 2;
        b.drops[DropReason::Fragment.index()] = 3;
        b.flows_active = 7;
        b.entities.generation = 9;
        assert!(!a.merge(&b), "different generations do not mix");
        assert_eq!(a.drop_count(DropReason::Fragment), 5);
        assert_eq!(a.flows_active, 7);
        a.entities.generation = 9;
        assert!(a.merge(&b));
        assert_eq!(a.drops_named().count(), DropReason::COUNT);
    }
}

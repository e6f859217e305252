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
//!
//! Declared once: [`counters!`](crate::counters!) generates a counter struct, its merge
//! and its metric descriptions (name, HELP text, counter or gauge) from one list, so
//! adding a counter is a one-line change. [`Counters`] is declared with it; the appliance
//! declares its own (worker-loop tallies, slow-path atomics) the same way.

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
    /// Backends only: ICMP port or host unreachable errors about this backend's flows
    /// (from the backend, or a router on the way to it), counted before the error is
    /// translated to the client. The passive health signal: the appliance's health
    /// module watches the deltas per endpoint (and `reply_packets` for recoveries).
    pub icmp_unreachable: u64,
}

impl Traffic {
    /// Adds `o`.
    pub fn add(&mut self, o: &Traffic) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.reply_packets += o.reply_packets;
        self.reply_bytes += o.reply_bytes;
        self.flows_created += o.flows_created;
        self.icmp_unreachable += o.icmp_unreachable;
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

/// Drop counts, indexed by [`DropReason::index`]: an array (through `Deref`) that is
/// `Default` at any length (the standard library's arrays stop at 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropCounts(pub [u64; DropReason::COUNT]);

impl Default for DropCounts {
    fn default() -> Self {
        DropCounts([0; DropReason::COUNT])
    }
}

impl std::ops::Deref for DropCounts {
    type Target = [u64; DropReason::COUNT];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for DropCounts {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Whether a metric only grows (`counter`) or goes up and down (`gauge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonic; Prometheus `counter` (the name ends in `_total`).
    Counter,
    /// A current value (occupancy, capacity); Prometheus `gauge`.
    Gauge,
}

/// The description of one declared counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MetricDesc {
    /// The struct field.
    pub field: &'static str,
    /// The metric name, without the exporter's prefix (e.g. `rx_packets_total`).
    pub name: &'static str,
    /// The HELP text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
}

/// One counter's value with its description: what a metrics exporter renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Metric {
    /// The metric name, without the exporter's prefix.
    pub name: &'static str,
    /// The HELP text.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The value.
    pub value: u64,
}

/// Declares a block of `u64` counters from one list: the struct, `add_counters` (the
/// merge), `METRICS` (name, HELP, kind per field, in declaration order) and `metrics()`
/// (an iterator of [`Metric`]s for an exporter). Adding a counter is one line.
///
/// Each entry is `field: counter("name_total", "Help text."),` or
/// `field: gauge("name", "Help text."),` with optional `///` docs. Gauges also add in
/// `add_counters` (capacities and occupancies of several workers sum).
///
/// Two forms:
/// - `pub struct Name { entries }` (optionally followed by `extra { pub field: Type, }`
///   for fields the macro leaves alone, e.g. arrays merged by hand): plain `u64` fields,
///   for a value one thread owns and others copy (the fast path's [`Counters`], a
///   worker's report).
/// - `pub shared struct Live => Snapshot { entries }`: `AtomicU64` fields, updated with
///   `Relaxed` adds from several threads (e.g. the slow path and the workers), plus the
///   plain `Snapshot` (the first form) that `Live::snapshot()` reads.
///
/// ```
/// pipelines::counters! {
///     /// Worker-loop tallies.
///     #[derive(Clone, Debug, Default, PartialEq, Eq)]
///     pub struct LoopCounters {
///         /// Datagrams the TX queues refused.
///         tx_refused: counter("tx_refused_total", "Datagrams the TX queues refused."),
///         held: gauge("held", "Datagrams waiting for a neighbor."),
///     }
/// }
/// let mut a = LoopCounters { tx_refused: 2, held: 1 };
/// a.add_counters(&LoopCounters { tx_refused: 3, held: 1 });
/// let m: Vec<_> = a.metrics().map(|m| (m.name, m.value)).collect();
/// assert_eq!(m, [("tx_refused_total", 5), ("held", 2)]);
///
/// pipelines::counters! {
///     /// Shared between threads.
///     pub shared struct Live => LiveStats {
///         frames: counter("frames_total", "Frames handled."),
///     }
/// }
/// let live = Live::default();
/// live.frames.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
/// assert_eq!(live.snapshot(), LiveStats { frames: 1 });
/// ```
#[macro_export]
macro_rules! counters {
    (@kind counter) => { $crate::counters::MetricKind::Counter };
    (@kind gauge) => { $crate::counters::MetricKind::Gauge };
    (
        $(#[$meta:meta])*
        $vis:vis shared struct $live:ident => $snap:ident {
            $( $(#[doc = $doc:literal])* $field:ident : $kind:ident ($metric:literal, $help:literal), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default)]
        $vis struct $live {
            $( $(#[doc = $doc])* pub $field: ::std::sync::atomic::AtomicU64, )+
        }

        $crate::counters! {
            #[doc = concat!("A point-in-time copy of [`", stringify!($live), "`].")]
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
            $vis struct $snap {
                $( $(#[doc = $doc])* $field : $kind ($metric, $help), )+
            }
        }

        #[allow(dead_code)]
        impl $live {
            /// Reads every counter (each one atomically, the set not as a whole).
            pub fn snapshot(&self) -> $snap {
                $snap {
                    $( $field: self.$field.load(::std::sync::atomic::Ordering::Relaxed), )+
                }
            }

            /// The declared counter named `field` (for tests and tools that go by name).
            pub fn counter(&self, field: &str) -> Option<&::std::sync::atomic::AtomicU64> {
                match field {
                    $( stringify!($field) => Some(&self.$field), )+
                    _ => None,
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[doc = $doc:literal])* $field:ident : $kind:ident ($metric:literal, $help:literal), )+
        }
        $( extra { $( $(#[$xmeta:meta])* $xvis:vis $xfield:ident : $xty:ty, )* } )?
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[doc = $doc])* pub $field: u64, )+
            $( $( $(#[$xmeta])* $xvis $xfield: $xty, )* )?
        }

        #[allow(dead_code)]
        impl $name {
            /// The declared counters' descriptions, in declaration order.
            pub const METRICS: &'static [$crate::counters::MetricDesc] = &[
                $( $crate::counters::MetricDesc {
                    field: stringify!($field),
                    name: $metric,
                    help: $help,
                    kind: $crate::counters!(@kind $kind),
                }, )+
            ];

            /// The declared counter named `field` (for tests and tools that go by name).
            pub fn counter_mut(&mut self, field: &str) -> Option<&mut u64> {
                match field {
                    $( stringify!($field) => Some(&mut self.$field), )+
                    _ => None,
                }
            }

            /// Adds `o`'s declared counters (gauges too). Fields declared `extra` are the
            /// caller's to merge.
            pub fn add_counters(&mut self, o: &Self) {
                $( self.$field += o.$field; )+
            }

            /// Every declared counter with its description, in declaration order.
            pub fn metrics(&self) -> impl Iterator<Item = $crate::counters::Metric> {
                let values = [ $( self.$field, )+ ];
                Self::METRICS
                    .iter()
                    .zip(values)
                    .map(|(d, value)| $crate::counters::Metric {
                        name: d.name,
                        help: d.help,
                        kind: d.kind,
                        value,
                    })
            }
        }
    };
}

crate::counters! {
    /// Counters of one worker (or a sum of workers). The metric names are the
    /// appliance's, without its `udplb_` prefix.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Counters {
        /// Packets seen.
        rx_packets: counter("rx_packets_total", "Packets the fast path received."),
        /// Bytes seen.
        rx_bytes: counter("rx_bytes_total", "Bytes the fast path received."),
        /// Packets given a `Tx` verdict.
        tx_packets: counter("tx_packets_total", "Packets the fast path sent."),
        /// Their bytes.
        tx_bytes: counter("tx_bytes_total", "Bytes the fast path sent."),
        /// Flows held now.
        flows_active: gauge("flows_active", "Flows in the flow tables."),
        /// Flows inserted in the flow table.
        flows_created: counter("flows_created_total", "Flows created."),
        /// Flows removed by idle expiry (sweep, lazy expiry or reuse of an expired record).
        flows_expired: counter("flows_expired_total", "Flows expired after their idle timeout."),
        /// Flows re-pinned because their backend left the route.
        flows_repinned: counter(
            "flows_repinned_total",
            "Flows whose backend left the route and that picked a new one."
        ),
        /// Flow table capacity.
        flow_capacity: gauge("flow_table_capacity", "Flow table capacity (all workers)."),
        /// Bytes preallocated for the flow table and SNAT pools.
        flow_memory_bytes: gauge("flow_table_memory_bytes", "Memory held by the flow tables."),
        /// New flows not inserted because the table was full (stateless fallback).
        table_full: counter(
            "flow_table_full_total",
            "New flows served statelessly because the flow table was full."
        ),
        /// New flows not inserted because of the new-flow rate guard (stateless fallback).
        rate_limited: counter(
            "new_flow_rate_limited_total",
            "New flows served statelessly by the new-flow rate guard."
        ),
        /// Packets given a `Handoff` verdict (their flow is on another worker).
        handoff: counter(
            "handoff_verdicts_total",
            "Packets the fast path found to belong to another worker's flow (full NAT \
             replies, steered preserve-client listeners); the worker loop passes them on."
        ),
        /// Preserve-client replies translated from the tables alone (no flow here).
        stateless_replies: counter(
            "stateless_replies_total",
            "Preserve-client replies translated without a flow on this worker (the \
             backend endpoint serves one listener)."
        ),
        /// Flows moved off a backend the health snapshot excludes.
        flows_repinned_unhealthy: counter(
            "flows_repinned_unhealthy_total",
            "Flows whose backend became unhealthy and that picked a healthy one."
        ),
        /// IP fragments given `Tx` or `Fragment` (first and later fragments alike).
        fragments_forwarded: counter(
            "fragments_forwarded_total",
            "IP fragments forwarded (every fragment of a fragmented datagram)."
        ),
        /// Fragments given `Hold` (arrived before their datagram's first fragment).
        fragments_held: counter(
            "fragments_held_total",
            "IP fragments held until their datagram's first fragment arrived."
        ),
        /// Hold slots in use now.
        fragments_waiting: gauge(
            "fragments_waiting",
            "IP fragments held now, waiting for their first fragment."
        ),
        /// Datagrams in the fragment table now.
        fragment_entries: gauge(
            "fragment_table_entries",
            "Fragmented datagrams tracked in the fragment tables."
        ),
        /// ICMP errors about flows translated (either direction).
        icmp_translated: counter(
            "icmp_errors_translated_total",
            "ICMP errors about UDP flows translated and forwarded (from backends to \
             clients and from the clients' side to backends)."
        ),
    }
    extra {
        /// Drops, indexed by [`DropReason::index`].
        pub drops: DropCounts,
        /// Packets to the slow path, indexed by [`HostReason::index`].
        pub to_host: [u64; HostReason::COUNT],
        /// Per-entity counters of the current tables generation.
        pub entities: EntityCounters,
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
        self.add_counters(o);
        for (a, b) in self.drops.iter_mut().zip(o.drops.iter()) {
            *a += b;
        }
        for (a, b) in self.to_host.iter_mut().zip(&o.to_host) {
            *a += b;
        }
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

    #[test]
    fn every_declared_counter_merges_and_has_one_metric() {
        // Give each counter a distinct value through its metric order, merge twice, and
        // read it back: a counter missing from the merge or the metrics would show.
        let mut one = Counters::default();
        let n = Counters::METRICS.len();
        for (i, d) in Counters::METRICS.iter().enumerate() {
            *one.counter_mut(d.field).expect("every declared field") =
                u64::try_from(i + 1).unwrap();
        }
        assert_eq!(
            one.counter_mut("drops"),
            None,
            "extra fields are not counters"
        );
        let mut sum = Counters::default();
        sum.merge(&one);
        sum.merge(&one);
        let values: Vec<u64> = sum.metrics().map(|m| m.value).collect();
        let want: Vec<u64> = (1..=n).map(|i| 2 * u64::try_from(i).unwrap()).collect();
        assert_eq!(values, want);
        let mut names: Vec<_> = Counters::METRICS.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "metric names are unique");
        for d in Counters::METRICS {
            assert_eq!(
                d.kind == MetricKind::Counter,
                d.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                d.name
            );
        }
    }

    crate::counters! {
        /// Shared between threads.
        pub shared struct Live => LiveStats {
            /// Frames.
            frames: counter("frames_total", "Frames handled."),
            /// Queue depth.
            depth: gauge("depth", "Frames queued."),
        }
    }

    #[test]
    fn shared_counters_snapshot_into_the_plain_form() {
        use std::sync::atomic::Ordering::Relaxed;
        let live = std::sync::Arc::new(Live::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let live = std::sync::Arc::clone(&live);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        live.frames.fetch_add(1, Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        live.counter("depth").expect("declared").store(3, Relaxed);
        assert!(live.counter("nothing").is_none());
        let snap = live.snapshot();
        assert_eq!(
            snap,
            LiveStats {
                frames: 4000,
                depth: 3
            }
        );
        let metrics: Vec<_> = snap.metrics().map(|m| (m.name, m.kind, m.value)).collect();
        assert_eq!(
            metrics,
            [
                ("frames_total", MetricKind::Counter, 4000),
                ("depth", MetricKind::Gauge, 3)
            ]
        );
    }
}

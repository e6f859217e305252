//! What a worker counts besides the fast path, and the report it publishes.
//!
//! Declared with [`pipelines::counters!`], so a new tally is one line: the field, its
//! merge (`add_counters`) and its metric description come from the same entry. Two
//! blocks, because the exporter shows them two ways:
//!
//! - [`LoopDrops`]: frames the loop dropped after the fast path let them through. Each
//!   declared name is a `reason` label value of `udplb_drops_total`, next to the fast
//!   path's `DropReason`s ([`LoopDrops::drops_named`] mirrors
//!   `pipelines::counters::Counters::drops_named`).
//! - [`LoopCounters`]: events with a metric of their own (`udplb_` + the declared name).

use std::sync::{Arc, Mutex};

use pipelines::counters::{Counters, EntityCounters};

pipelines::counters! {
    /// Frames the worker loop dropped, by reason (a worker's own `u64`s).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct LoopDrops {
        /// Datagrams the TX queues refused, or whose checksum offload request the buffer
        /// could not carry (freed).
        tx_refused: counter("tx_refused", "Datagrams the TX queues refused."),
        /// Frames for the slow path that did not fit in its channel (freed).
        host_overflow: counter(
            "slow_path_overflow",
            "Frames for the slow path that did not fit in its channel."
        ),
        /// Replies that could not be passed to the worker owning their flow (its channel
        /// was full).
        handoff_overflow: counter(
            "handoff_overflow",
            "Replies that could not be passed to the worker owning their flow."
        ),
        /// Held datagrams dropped: not resolved within the hold time, or the hold queue
        /// was full.
        hold_expired: counter(
            "neighbor_unresolved",
            "Datagrams whose next hop was not resolved in time."
        ),
        /// IPv4 datagrams larger than their out port's MTU that could not be split (no
        /// buffer for a piece, or not splittable); pieces already queued still go out.
        refragment_failed: counter(
            "refragment_failed",
            "IPv4 datagrams larger than the out port's MTU that could not be split."
        ),
    }
}

impl LoopDrops {
    /// `(reason, value)` of every loop drop, for `udplb_drops_total{reason}`.
    pub fn drops_named(&self) -> impl Iterator<Item = (&'static str, u64)> {
        self.metrics().map(|m| (m.name, m.value))
    }

    /// All loop drops.
    pub fn total(&self) -> u64 {
        self.metrics().map(|m| m.value).sum()
    }
}

pipelines::counters! {
    /// Worker-loop events (a worker's own `u64`s).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct LoopCounters {
        /// Datagrams held while their next hop was resolved (a datagram held again
        /// counts again).
        held: counter(
            "held_for_resolution_total",
            "Datagrams held while their next hop was resolved (each is processed again, so \
             it also counts again in udplb_rx_packets_total)."
        ),
        /// Replies passed to the worker that owns their SNAT port (the fast path's
        /// `Handoff` verdict).
        handed_off: counter(
            "handoff_total",
            "Replies passed to the worker that owns their flow (full NAT, several workers)."
        ),
        /// Held fragments run through the fast path again once their datagram's first
        /// fragment was decided.
        fragments_rerun: counter(
            "fragments_released_total",
            "Held IP fragments run again once their datagram's first fragment was decided \
             (each also counts again in udplb_rx_packets_total)."
        ),
        /// IPv4 datagrams (or fragments) split for a smaller out-port MTU.
        refragmented: counter(
            "refragmented_total",
            "IPv4 datagrams without DF split into fragments for the out port's MTU."
        ),
        /// Frames sent for them.
        refragment_pieces: counter(
            "refragment_pieces_total",
            "Fragments made by splitting datagrams for the out port's MTU."
        ),
    }
}

/// What a worker publishes for the management thread.
#[derive(Debug, Default)]
pub struct WorkerReport {
    /// Fast-path counters as of the last copy.
    pub counters: Counters,
    /// Entity counters of tables generations the worker has left (drained by the reader).
    pub retired: Vec<EntityCounters>,
    /// Generation of the tables the worker runs.
    pub generation: u64,
    /// The loop's drops.
    pub drops: LoopDrops,
    /// The loop's events.
    pub events: LoopCounters,
}

/// Shared handle on a worker's report.
pub type ReportSlot = Arc<Mutex<WorkerReport>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_the_exported_ones() {
        let names: Vec<_> = LoopDrops::default().drops_named().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "tx_refused",
                "slow_path_overflow",
                "handoff_overflow",
                "neighbor_unresolved",
                "refragment_failed"
            ]
        );
        let names: Vec<_> = LoopCounters::METRICS.iter().map(|d| d.name).collect();
        assert_eq!(
            names,
            [
                "held_for_resolution_total",
                "handoff_total",
                "fragments_released_total",
                "refragmented_total",
                "refragment_pieces_total"
            ]
        );
    }

    #[test]
    fn every_tally_merges_and_totals() {
        let mut a = LoopDrops::default();
        for (i, d) in LoopDrops::METRICS.iter().enumerate() {
            *a.counter_mut(d.field).expect("declared") = u64::try_from(i + 1).unwrap();
        }
        let mut sum = a;
        sum.add_counters(&a);
        assert_eq!(sum.total(), 2 * (1 + 2 + 3 + 4 + 5));
        let mut e = LoopCounters {
            held: 1,
            handed_off: 2,
            fragments_rerun: 3,
            refragmented: 4,
            refragment_pieces: 5,
        };
        e.add_counters(&LoopCounters {
            held: 3,
            handed_off: 4,
            fragments_rerun: 5,
            refragmented: 6,
            refragment_pieces: 7,
        });
        assert_eq!(
            (
                e.held,
                e.handed_off,
                e.fragments_rerun,
                e.refragmented,
                e.refragment_pieces
            ),
            (4, 6, 8, 10, 12)
        );
    }
}

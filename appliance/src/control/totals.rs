//! Counter sums: every worker's report added up, per-entity counters turned into
//! identity-keyed totals that survive configuration swaps.
//!
//! Workers count listeners, routes and backends by their positions in one tables
//! generation, and retire those counters when they adopt new tables. The totals keep the
//! tables of a generation only while some worker may still report counters of it: each
//! retired set is named (listener, route, backend identity) as soon as it is collected and
//! added to a running total, and a generation older than every worker's current one is
//! dropped at once ([`Totals::collect`], run on every publish, scrape and management
//! tick). Re-publishing on a timer therefore holds a bounded number of generations (the
//! running one, plus those a worker has not left yet), never a history.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use pipelines::counters::{Counters, Entity, EntityCounters, Traffic};
use pipelines::tables::Tables;

use crate::worker::{LoopCounters, LoopDrops, ReportSlot};

/// Every worker's counters summed, entities by identity.
#[derive(Clone, Debug, Default)]
pub struct Sums {
    /// The fast path's scalar counters (entities are in `entities`).
    pub fast_path: Counters,
    /// Worker-loop drops.
    pub loop_drops: LoopDrops,
    /// Other worker-loop tallies.
    pub loop_counters: LoopCounters,
    /// Traffic per listener, route and backend over every generation.
    pub entities: BTreeMap<Entity, Traffic>,
}

/// Identity-keyed totals of retired generations, and the tables to name them.
pub(super) struct Totals {
    /// Tables of the generations some worker may still report counters of.
    by_generation: BTreeMap<u64, Arc<Tables>>,
    /// Totals of retired counters.
    retired: BTreeMap<Entity, Traffic>,
    /// Every published generation, weakly: how many are still alive anywhere (workers,
    /// their channels, here), for [`Totals::live_generations`].
    published: Vec<Weak<Tables>>,
}

impl Totals {
    pub(super) fn new(first: &Arc<Tables>) -> Totals {
        Totals {
            by_generation: BTreeMap::from([(first.generation(), Arc::clone(first))]),
            retired: BTreeMap::new(),
            published: vec![Arc::downgrade(first)],
        }
    }

    /// Remembers a published generation until no worker runs an older or equal one.
    pub(super) fn published(&mut self, tables: &Arc<Tables>) {
        self.by_generation
            .insert(tables.generation(), Arc::clone(tables));
        self.published.push(Arc::downgrade(tables));
    }

    /// Names and adds up the counters the workers retired, then drops the tables of every
    /// generation that no worker can report any more: older than the oldest generation a
    /// worker runs (a worker that has not reported yet counts as running the oldest), and
    /// not `current`.
    pub(super) fn collect(&mut self, reports: &[ReportSlot], current: u64) {
        let mut oldest_running = u64::MAX;
        for slot in reports {
            let mut r = slot.lock().unwrap_or_else(|e| e.into_inner());
            for retired in r.retired.drain(..) {
                for (entity, t) in self.named(&retired) {
                    self.retired.entry(entity).or_default().add(&t);
                }
            }
            // A worker's report carries its retired counters and its generation together,
            // so nothing older than `generation` can come from it any more.
            oldest_running = oldest_running.min(r.generation);
        }
        self.by_generation
            .retain(|&g, _| g == current || g >= oldest_running);
        self.published.retain(|w| w.strong_count() > 0);
    }

    /// Tables generations still alive anywhere in the process (published by the control
    /// plane and not yet dropped by every holder).
    pub(super) fn live_generations(&self) -> usize {
        self.published
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// Generations whose tables the totals hold to name counters.
    pub(super) fn held_generations(&self) -> usize {
        self.by_generation.len()
    }

    /// Sums the reports; counters the workers retired are added to the totals for good.
    pub(super) fn sum(&mut self, reports: &[ReportSlot], current: u64) -> Sums {
        self.collect(reports, current);
        let mut sums = Sums::default();
        for slot in reports {
            let r = slot.lock().unwrap_or_else(|e| e.into_inner());
            for (entity, t) in self.named(&r.counters.entities) {
                sums.entities.entry(entity).or_default().add(&t);
            }
            let mut c = r.counters.clone();
            // Entities are summed by identity above; merge the scalar counters only.
            c.entities = EntityCounters::default();
            sums.fast_path.merge(&c);
            sums.loop_drops.add_counters(&r.drops);
            sums.loop_counters.add_counters(&r.events);
        }
        for (entity, t) in &self.retired {
            sums.entities.entry(entity.clone()).or_default().add(t);
        }
        sums
    }

    /// `counters` with identities, when their generation's tables are still known.
    fn named(&self, counters: &EntityCounters) -> Vec<(Entity, Traffic)> {
        self.by_generation
            .get(&counters.generation)
            .and_then(|t| counters.named(t))
            .unwrap_or_default()
    }
}

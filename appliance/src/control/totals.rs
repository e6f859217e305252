//! Counter sums: every worker's report added up, per-entity counters turned into
//! identity-keyed totals that survive configuration swaps.
//!
//! Workers count listeners, routes and backends by their positions in one tables
//! generation, and retire those counters when they adopt new tables. The totals keep the
//! tables of recent generations so that each retired set can be named (listener, route,
//! backend identity) and added to a running total; the live set of the current generation
//! is added on top when a scrape asks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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

/// Generations of tables kept to name retired counters.
const KEEP_GENERATIONS: usize = 16;

/// Identity-keyed totals of retired generations, and the tables to name them.
pub(super) struct Totals {
    /// Tables of recent generations.
    by_generation: HashMap<u64, Arc<Tables>>,
    /// Totals of retired counters.
    retired: BTreeMap<Entity, Traffic>,
}

impl Totals {
    pub(super) fn new(first: &Arc<Tables>) -> Totals {
        Totals {
            by_generation: HashMap::from([(first.generation(), Arc::clone(first))]),
            retired: BTreeMap::new(),
        }
    }

    /// Remembers a published generation (the oldest is forgotten past a bound).
    pub(super) fn published(&mut self, tables: &Arc<Tables>) {
        self.by_generation
            .insert(tables.generation(), Arc::clone(tables));
        if self.by_generation.len() > KEEP_GENERATIONS {
            if let Some(oldest) = self.by_generation.keys().min().copied() {
                self.by_generation.remove(&oldest);
            }
        }
    }

    /// Sums the reports; counters the workers retired are added to the totals for good.
    pub(super) fn sum(&mut self, reports: &[ReportSlot]) -> Sums {
        let mut sums = Sums::default();
        for slot in reports {
            let mut r = slot.lock().unwrap_or_else(|e| e.into_inner());
            for retired in r.retired.drain(..) {
                for (entity, t) in self.named(&retired) {
                    self.retired.entry(entity).or_default().add(&t);
                }
            }
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

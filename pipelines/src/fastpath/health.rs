//! Health in the fast path: the current [`Health`] snapshot mapped onto the current
//! tables (once per change of either), so a packet asks one indexed question.
//!
//! - A new flow whose Maglev pick is excluded walks the ring to the next slot that is
//!   not ([`crate::maglev::Maglev::lookup_accepting`]; the dropped-weight share counts
//!   as not excluded): deterministic, so appliances with the same tables and health pick
//!   alike, and the table is never rebuilt for a health change.
//! - A pinned flow whose backend is excluded picks again the same way on its next
//!   datagram (`flows_repinned_unhealthy`), keeping its SNAT port, as on a configuration
//!   change.
//! - A listener whose route has no eligible backend left that is not excluded ignores
//!   health (fail open, as panic mode does for a Service), so excluding everything never
//!   turns into dropping everything or walking whole tables.

use std::sync::Arc;

use crate::health::Health;
use crate::maglev;
use crate::tables::{Route, Tables};

/// The snapshot compiled for one tables generation.
#[derive(Debug, Default)]
pub(super) struct Exclusions {
    /// (tables generation, health generation) this was built for.
    key: (u64, u64),
    /// Something is excluded (else every other field is ignored).
    pub(super) any: bool,
    /// By backend counter index: excluded.
    by_backend: Vec<bool>,
    /// By listener index: no eligible backend of its route is healthy (health ignored).
    fail_open: Vec<bool>,
}

impl Exclusions {
    /// Rebuilds for `tables` and `health` unless already built for both (allocates only
    /// then).
    pub(super) fn refresh(&mut self, tables: &Tables, health: &Arc<Health>) {
        let key = (tables.generation(), health.generation());
        if key == self.key {
            return;
        }
        self.key = key;
        self.by_backend.clear();
        self.fail_open.clear();
        self.any = false;
        if health.is_empty() {
            return;
        }
        self.by_backend.resize(tables.backend_ids().len(), false);
        for (ci, (_, addr)) in tables.backend_ids().iter().enumerate() {
            if health.is_excluded(*addr) {
                self.by_backend[ci] = true;
                self.any = true;
            }
        }
        self.fail_open = tables
            .listeners()
            .iter()
            .map(|l| {
                l.route.as_ref().is_none_or(|r| {
                    !r.backends.iter().any(|b| {
                        b.weight > 0
                            && !b.draining
                            && b.addr.is_ipv4() == l.vip.is_ipv4()
                            && !self.by_backend[b.counter_idx as usize]
                    })
                })
            })
            .collect();
    }

    /// Whether backend `bi` of listener `li`'s `route` is excluded (and health applies
    /// to that listener).
    #[inline]
    pub(super) fn excludes(&self, li: u32, route: &Route, bi: u32) -> bool {
        self.any
            && route
                .backends
                .get(bi as usize)
                .is_some_and(|b| self.by_backend.get(b.counter_idx as usize) == Some(&true))
            && self.fail_open.get(li as usize) == Some(&false)
    }

    /// The slot value a new flow of listener `li` with Maglev hash `h` gets: Maglev's
    /// pick, or the next slot on the ring whose backend is not excluded.
    #[inline]
    pub(super) fn pick(&self, li: u32, route: &Route, h: u64) -> u32 {
        let v = route.maglev.lookup(h);
        if !self.any || v == maglev::NO_BACKEND || v == maglev::DROP {
            return v;
        }
        if !self.excludes(li, route, v - 1) {
            return v;
        }
        self.walk(li, route, h).unwrap_or(v)
    }

    #[cold]
    #[inline(never)]
    fn walk(&self, li: u32, route: &Route, h: u64) -> Option<u32> {
        route.maglev.lookup_accepting(h, |v| {
            v == maglev::DROP || (v != maglev::NO_BACKEND && !self.excludes(li, route, v - 1))
        })
    }
}

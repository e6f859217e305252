//! The neighbor table: IP → (port, MAC), static entries from settings plus entries learned
//! from ARP and NDP, with the resolution state machine (pending probes, refresh, expiry).
//!
//! Design note: a `BTreeMap` keyed by address keeps the published snapshot in a stable
//! order and makes the periodic scan cheap to reason about; the table is small (next hops
//! and on-link clients, bounded by `max_neighbors`) and only the slow-path thread touches
//! it, so no concurrent structure is needed. Workers never read it: they get an immutable
//! snapshot through the publish callback.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use super::config::{SlowPathTuning, StaticNeighbor};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Static,
    Learned {
        confirmed: Instant,
        last_probe: Option<Instant>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    port: u16,
    mac: [u8; 6],
    kind: Kind,
}

/// A resolution that has been asked for and not answered yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    port: u16,
    last_sent: Instant,
    probes: u32,
}

/// A probe (ARP request or neighbor solicitation) the caller must send now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Probe {
    pub(crate) port: u16,
    pub(crate) target: IpAddr,
}

/// What [`NeighborTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// A new entry, or an existing one whose MAC or port changed.
    Changed,
    /// An existing entry confirmed with the same MAC.
    Confirmed,
    /// Nothing: static entry, or not allowed to create one.
    Unchanged,
    /// Nothing: the table is at capacity.
    Full,
}

/// Why the caller lets [`NeighborTable::learn`] create an entry it has not asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Create {
    /// RFC 826 / RFC 4861 §7.2.3: the sender asked us (ARP request or NS for one of our
    /// addresses) and is on-link, so we will likely talk to it.
    Allowed,
    /// Only update existing or pending entries (replies we did not ask for, gratuitous
    /// announcements).
    OnlyKnown,
}

/// Per-slow-path neighbor state.
#[derive(Debug)]
pub(crate) struct NeighborTable {
    entries: BTreeMap<IpAddr, Entry>,
    pending: BTreeMap<IpAddr, Pending>,
    dynamic: usize,
    changed: bool,
}

impl NeighborTable {
    /// A table holding the static entries; marked changed so the first publish sends them.
    pub(crate) fn new(statics: &[StaticNeighbor]) -> Self {
        let entries = statics
            .iter()
            .map(|s| {
                let entry = Entry {
                    port: s.port,
                    mac: s.mac,
                    kind: Kind::Static,
                };
                (s.ip, entry)
            })
            .collect();
        Self {
            entries,
            pending: BTreeMap::new(),
            dynamic: 0,
            changed: true,
        }
    }

    /// The port and MAC of `ip`, if known.
    pub(crate) fn lookup(&self, ip: IpAddr) -> Option<(u16, [u8; 6])> {
        self.entries.get(&ip).map(|e| (e.port, e.mac))
    }

    /// Records that `ip` is at `mac` behind `port`, if allowed.
    pub(crate) fn learn(
        &mut self,
        port: u16,
        ip: IpAddr,
        mac: [u8; 6],
        now: Instant,
        create: Create,
        tuning: &SlowPathTuning,
    ) -> Learned {
        let learned = Kind::Learned {
            confirmed: now,
            last_probe: None,
        };
        if let Some(entry) = self.entries.get_mut(&ip) {
            if matches!(entry.kind, Kind::Static) {
                return Learned::Unchanged;
            }
            let changed = entry.mac != mac || entry.port != port;
            *entry = Entry {
                port,
                mac,
                kind: learned,
            };
            self.changed |= changed;
            return if changed {
                Learned::Changed
            } else {
                Learned::Confirmed
            };
        }
        let was_pending = self.pending.remove(&ip).is_some();
        if was_pending {
            // The pending slot becomes the entry's slot: `dynamic` is unchanged.
        } else if create == Create::Allowed {
            if self.dynamic >= tuning.max_neighbors {
                return Learned::Full;
            }
            self.dynamic += 1;
        } else {
            return Learned::Unchanged;
        }
        self.entries.insert(
            ip,
            Entry {
                port,
                mac,
                kind: learned,
            },
        );
        self.changed = true;
        Learned::Changed
    }

    /// The fast path met `ip` unresolved: returns the probe to send now, if any (at most
    /// one per target per `resolve_interval`).
    pub(crate) fn request(
        &mut self,
        port: u16,
        ip: IpAddr,
        now: Instant,
        tuning: &SlowPathTuning,
    ) -> Result<Option<Probe>, Learned> {
        if self.entries.contains_key(&ip) {
            return Ok(None);
        }
        if let Some(p) = self.pending.get_mut(&ip) {
            // Still wanted: keep probing for as long as the fast path keeps asking.
            p.probes = 0;
            p.port = port;
            if now.saturating_duration_since(p.last_sent) < tuning.resolve_interval {
                return Ok(None);
            }
            p.last_sent = now;
            p.probes = 1;
            return Ok(Some(Probe { port, target: ip }));
        }
        if self.dynamic >= tuning.max_neighbors {
            return Err(Learned::Full);
        }
        self.dynamic += 1;
        self.pending.insert(
            ip,
            Pending {
                port,
                last_sent: now,
                probes: 1,
            },
        );
        Ok(Some(Probe { port, target: ip }))
    }

    /// Time-driven work: retries pending resolutions, refreshes aging entries and removes
    /// expired ones. Probes to send are appended to `out`; returns
    /// `(resolutions abandoned, entries expired)`.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        tuning: &SlowPathTuning,
        out: &mut Vec<Probe>,
    ) -> (u64, u64) {
        let due = |last: Instant| now.saturating_duration_since(last) >= tuning.resolve_interval;
        let before = self.pending.len();
        self.pending.retain(|&target, p| {
            if !due(p.last_sent) {
                return true;
            }
            if p.probes >= tuning.resolve_probes {
                return false;
            }
            p.probes += 1;
            p.last_sent = now;
            out.push(Probe {
                port: p.port,
                target,
            });
            true
        });
        let abandoned = before - self.pending.len();

        let before = self.entries.len();
        self.entries.retain(|&target, e| {
            let Kind::Learned {
                confirmed,
                last_probe,
            } = &mut e.kind
            else {
                return true;
            };
            let age = now.saturating_duration_since(*confirmed);
            if age >= tuning.expire_after {
                return false;
            }
            if age >= tuning.refresh_after && last_probe.is_none_or(due) {
                *last_probe = Some(now);
                out.push(Probe {
                    port: e.port,
                    target,
                });
            }
            true
        });
        let expired = before - self.entries.len();
        self.dynamic -= abandoned + expired;
        self.changed |= expired > 0;
        (abandoned as u64, expired as u64)
    }

    /// Whether the table changed since the last call (and clears the flag).
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// The complete IP → MAC map the fast path resolves next hops with.
    pub(crate) fn snapshot(&self) -> BTreeMap<IpAddr, [u8; 6]> {
        self.entries.iter().map(|(ip, e)| (*ip, e.mac)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 0xa];
    const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 0xb];

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn static_entries_are_published_and_never_overwritten() {
        let t0 = Instant::now();
        let tuning = SlowPathTuning::default();
        let statics = [StaticNeighbor {
            port: 0,
            ip: ip("198.18.0.9"),
            mac: MAC_A,
        }];
        let mut table = NeighborTable::new(&statics);
        assert!(table.take_changed());
        let got = table.learn(0, ip("198.18.0.9"), MAC_B, t0, Create::Allowed, &tuning);
        assert_eq!(got, Learned::Unchanged);
        assert_eq!(table.lookup(ip("198.18.0.9")), Some((0, MAC_A)));
        let mut out = Vec::new();
        table.poll(t0 + Duration::from_secs(3600), &tuning, &mut out);
        assert!(out.is_empty());
        assert_eq!(table.snapshot().len(), 1);
    }

    #[test]
    fn pending_resolution_retries_then_gives_up() {
        let t0 = Instant::now();
        let tuning = SlowPathTuning::default();
        let target = ip("198.18.0.7");
        let mut table = NeighborTable::new(&[]);
        assert_eq!(
            table.request(1, target, t0, &tuning),
            Ok(Some(Probe { port: 1, target }))
        );
        assert_eq!(
            table.request(1, target, t0 + Duration::from_millis(500), &tuning),
            Ok(None)
        );
        let mut out = Vec::new();
        let mut abandoned = 0;
        for s in 1..=5 {
            abandoned += table.poll(t0 + Duration::from_secs(s), &tuning, &mut out).0;
        }
        // The second request restarted the budget: three more probes by poll, then abandoned.
        assert_eq!(out.len(), 3);
        assert_eq!(abandoned, 1);
        // Learning is no longer allowed without a new request.
        let late = t0 + Duration::from_secs(6);
        assert_eq!(
            table.learn(1, target, MAC_A, late, Create::OnlyKnown, &tuning),
            Learned::Unchanged
        );
    }

    #[test]
    fn learned_entry_is_refreshed_then_expires() {
        let t0 = Instant::now();
        let tuning = SlowPathTuning::default();
        let target = ip("2001:2::7");
        let mut table = NeighborTable::new(&[]);
        table.take_changed();
        table.request(0, target, t0, &tuning).unwrap();
        assert_eq!(
            table.learn(0, target, MAC_A, t0, Create::OnlyKnown, &tuning),
            Learned::Changed
        );
        assert!(table.take_changed());
        let mut out = Vec::new();
        table.poll(t0 + Duration::from_secs(59), &tuning, &mut out);
        assert!(out.is_empty());
        table.poll(t0 + Duration::from_secs(60), &tuning, &mut out);
        table.poll(t0 + Duration::from_millis(60_500), &tuning, &mut out);
        table.poll(t0 + Duration::from_secs(61), &tuning, &mut out);
        assert_eq!(out, vec![Probe { port: 0, target }; 2]);
        assert!(!table.take_changed());
        let (_, expired) = table.poll(t0 + Duration::from_secs(75), &tuning, &mut out);
        assert_eq!(expired, 1);
        assert!(table.take_changed());
        assert!(table.snapshot().is_empty());
    }

    #[test]
    fn confirmation_restarts_the_age_and_mac_change_is_a_change() {
        let t0 = Instant::now();
        let tuning = SlowPathTuning::default();
        let target = ip("198.18.0.5");
        let mut table = NeighborTable::new(&[]);
        table.take_changed();
        table.learn(0, target, MAC_A, t0, Create::Allowed, &tuning);
        assert!(table.take_changed());
        let t1 = t0 + Duration::from_secs(70);
        assert_eq!(
            table.learn(0, target, MAC_A, t1, Create::OnlyKnown, &tuning),
            Learned::Confirmed
        );
        assert!(!table.take_changed());
        let mut out = Vec::new();
        assert_eq!(
            table.poll(t0 + Duration::from_secs(80), &tuning, &mut out),
            (0, 0)
        );
        assert!(out.is_empty());
        assert_eq!(
            table.learn(0, target, MAC_B, t1, Create::OnlyKnown, &tuning),
            Learned::Changed
        );
        assert_eq!(table.snapshot()[&target], MAC_B);
    }

    #[test]
    fn capacity_bounds_learning_and_requests() {
        let t0 = Instant::now();
        let tuning = SlowPathTuning {
            max_neighbors: 1,
            ..Default::default()
        };
        let mut table = NeighborTable::new(&[]);
        let got = table.learn(0, ip("198.18.0.1"), MAC_A, t0, Create::Allowed, &tuning);
        assert_eq!(got, Learned::Changed);
        let got = table.learn(0, ip("198.18.0.2"), MAC_A, t0, Create::Allowed, &tuning);
        assert_eq!(got, Learned::Full);
        assert_eq!(
            table.request(0, ip("198.18.0.3"), t0, &tuning),
            Err(Learned::Full)
        );
    }
}

//! The per-worker fragment table: how the later fragments of a datagram follow its first.
//!
//! Design note. udplb does not reassemble. Only a datagram's first fragment carries the
//! UDP header, so it decides like any datagram (listener, flow, Maglev, rewrite); the
//! table remembers that decision under the datagram's identity ([`FragKey`]: source,
//! destination, identification; the protocol is always UDP) and applies it to the
//! later fragments: the same output port, MACs and addresses (and TTL decrement), the
//! same handoff, drop or host verdict. Fragments that arrive before their first
//! fragment are *held*: the appliance keeps their buffers in numbered hold slots and the
//! table keeps only the slot numbers, linked per datagram (no packet bytes here), and
//! asks for them back once the first fragment has been decided ([`Release::Run`]) or
//! when the datagram times out ([`Release::Expired`]).
//!
//! Fixed size, allocated once: a set-associative table (buckets of [`WAYS`] entries,
//! addressed by a seeded hash of the key), a fixed number of hold slots with a free
//! stack, and a release list as long as the slots. Bounds: every entry lives at most the
//! timeout from its creation; a datagram holds at most `per_datagram` fragments; an entry
//! is freed as soon as its fragments' data adds up to the datagram's length (known from
//! the last fragment), so the table holds datagrams in flight, not history. A bucket full
//! of live entries refuses new datagrams (`fragment_table_full`): a flood of fragments
//! cannot evict the entries of datagrams under way.

use crate::hash::{hash_words, ip_words};
use crate::verdict::{DropReason, HostReason};

/// Entries per bucket.
pub const WAYS: usize = 4;

/// "No slot" in the per-datagram hold lists.
const NONE: u16 = u16::MAX;

/// The identity of a fragmented datagram (RFC 791 §3.2, RFC 8200 §4.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FragKey {
    /// Source address (16-byte form).
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub id: u32,
    /// IPv6 (the families have separate identification spaces).
    pub ipv6: bool,
}

/// What the output of a datagram's first fragment was, to apply to the later ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Out {
    /// Output port.
    pub port: u16,
    /// Destination MAC.
    pub dst_mac: [u8; 6],
    /// Source MAC.
    pub src_mac: [u8; 6],
    /// IP source (16-byte form).
    pub src: [u8; 16],
    /// IP destination.
    pub dst: [u8; 16],
    /// The TTL / hop limit was decremented (every mode but DSR).
    pub decrement_ttl: bool,
}

/// What happens to a datagram's later fragments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The first fragment has not been decided yet: later fragments are held.
    Pending,
    /// Rewritten as the first fragment was, and sent.
    Forward(Out),
    /// Passed to another worker (the first fragment's flow lives there).
    Handoff(u16),
    /// Dropped for this reason.
    Drop(DropReason),
    /// Given to the host for this reason.
    Host(HostReason),
}

/// A hold slot the appliance must act on ([`FragTable::take_released`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// The datagram's first fragment has been decided: run the held buffer through the
    /// fast path again (with the port it arrived on).
    Run {
        /// The hold slot.
        slot: u16,
    },
    /// The datagram timed out (counted as `fragment_timeout`): free the held buffer.
    Expired {
        /// The hold slot.
        slot: u16,
    },
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: FragKey,
    used: bool,
    deadline: u64,
    decision: Decision,
    /// Data bytes of the fragments handled so far.
    seen: u32,
    /// The datagram's data length, once its last fragment was seen (0 before).
    total: u32,
    /// Held slots, linked through `FragTable::next`.
    held_head: u16,
    held: u8,
}

impl Default for Entry {
    fn default() -> Self {
        Entry {
            key: FragKey::default(),
            used: false,
            deadline: 0,
            decision: Decision::Pending,
            seen: 0,
            total: 0,
            held_head: NONE,
            held: 0,
        }
    }
}

/// Sizes of a [`FragTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragParams {
    /// Datagrams tracked at once (rounded up to a power of two buckets of [`WAYS`]).
    pub capacity: u32,
    /// Hold slots (fragments waiting for their first fragment), at most 65,535.
    pub holds: u16,
    /// Fragments one datagram may hold.
    pub per_datagram: u8,
    /// Lifetime of an entry from its creation, in ns.
    pub timeout_ns: u64,
    /// Seed of the key hash.
    pub seed: u64,
}

/// The fragment table of one worker (see the module docs).
#[derive(Debug)]
pub struct FragTable {
    entries: Vec<Entry>,
    bucket_mask: usize,
    seed: u64,
    timeout: u64,
    per_datagram: u8,
    len: usize,
    cursor: usize,
    /// Per hold slot: the next slot of the same datagram.
    next: Vec<u16>,
    free: Vec<u16>,
    released: Vec<Release>,
    waiting: usize,
}

impl FragTable {
    /// Preallocates the table.
    pub fn new(p: FragParams) -> FragTable {
        let buckets = (p.capacity.max(1) as usize)
            .div_ceil(WAYS)
            .next_power_of_two();
        // Slots are 0..holds, all below NONE.
        let holds = p.holds;
        FragTable {
            entries: vec![Entry::default(); buckets * WAYS],
            bucket_mask: buckets - 1,
            seed: p.seed,
            timeout: p.timeout_ns,
            per_datagram: p.per_datagram,
            len: 0,
            cursor: 0,
            next: vec![NONE; usize::from(holds)],
            free: (0..holds).rev().collect(),
            released: Vec::with_capacity(usize::from(holds)),
            waiting: 0,
        }
    }

    /// Datagrams tracked now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no datagram is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries the table can hold.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Fragments held now.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// Bytes preallocated.
    pub fn memory_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
            + self.next.len() * 2 * std::mem::size_of::<u16>()
            + self.released.capacity() * std::mem::size_of::<Release>()
    }

    fn bucket(&self, k: &FragKey) -> usize {
        let [a, b] = ip_words(&k.src);
        let [c, d] = ip_words(&k.dst);
        let h = hash_words(
            self.seed,
            &[a, b, c, d, u64::from(k.id) | u64::from(k.ipv6) << 32],
        );
        // The bucket index is below the table length, a usize.
        #[allow(clippy::cast_possible_truncation)]
        let i = h as usize & self.bucket_mask;
        i * WAYS
    }

    /// The live entry of `k`. An expired one is removed on the way (its held fragments
    /// are released as `Expired`; their count is added to `timed_out`).
    pub fn find(&mut self, k: &FragKey, now: u64, timed_out: &mut u64) -> Option<u32> {
        let b = self.bucket(k);
        for i in b..b + WAYS {
            let e = &self.entries[i];
            if e.used && e.key == *k {
                let i = u32::try_from(i).ok()?;
                if e.deadline <= now {
                    *timed_out += self.expire(i);
                    return None;
                }
                return Some(i);
            }
        }
        None
    }

    /// A new `Pending` entry for `k` (which must not have a live one), reusing an expired
    /// entry of its bucket if need be; `None` when the bucket holds only live entries.
    pub fn insert(&mut self, k: &FragKey, now: u64, timed_out: &mut u64) -> Option<u32> {
        let b = self.bucket(k);
        let mut slot = None;
        for i in b..b + WAYS {
            let e = &self.entries[i];
            if !e.used {
                slot = Some(i);
                break;
            }
            if e.deadline <= now && slot.is_none() {
                slot = Some(i);
            }
        }
        let i = u32::try_from(slot?).ok()?;
        if self.entries[i as usize].used {
            *timed_out += self.expire(i);
        }
        self.entries[i as usize] = Entry {
            key: *k,
            used: true,
            deadline: now.saturating_add(self.timeout),
            ..Entry::default()
        };
        self.len += 1;
        Some(i)
    }

    /// The entry's decision.
    pub fn decision(&self, i: u32) -> Decision {
        self.entries[i as usize].decision
    }

    /// Records the first fragment's decision. Unless it is `Pending`, the datagram's
    /// held fragments are released to run again.
    pub fn decide(&mut self, i: u32, d: Decision) {
        self.entries[i as usize].decision = d;
        if d != Decision::Pending {
            self.release(i, |slot| Release::Run { slot });
        }
    }

    /// Takes a hold slot for a fragment of entry `i`; `None` when the datagram holds its
    /// maximum or no slot is free.
    pub fn hold(&mut self, i: u32) -> Option<u16> {
        let e = &self.entries[i as usize];
        if e.held >= self.per_datagram {
            return None;
        }
        let slot = self.free.pop()?;
        let e = &mut self.entries[i as usize];
        self.next[usize::from(slot)] = e.held_head;
        e.held_head = slot;
        e.held += 1;
        self.waiting += 1;
        Some(slot)
    }

    /// Counts a handled fragment (`len` data bytes at `offset`, `more` following) of a
    /// decided entry; frees the entry once the fragments cover the datagram. Returns
    /// whether it did.
    pub fn account(&mut self, i: u32, offset: u16, len: u16, more: bool) -> bool {
        let e = &mut self.entries[i as usize];
        e.seen += u32::from(len);
        if !more {
            e.total = u32::from(offset) + u32::from(len);
        }
        if e.total != 0 && e.seen >= e.total {
            self.remove(i);
            return true;
        }
        false
    }

    /// Examines up to `budget` entries from the sweep cursor, removing the expired;
    /// returns how many held fragments timed out.
    pub fn sweep(&mut self, now: u64, budget: usize) -> u64 {
        let mut timed_out = 0;
        for _ in 0..budget.min(self.entries.len()) {
            let i = self.cursor;
            self.cursor = (self.cursor + 1) % self.entries.len();
            let e = &self.entries[i];
            if e.used && e.deadline <= now {
                if let Ok(i) = u32::try_from(i) {
                    timed_out += self.expire(i);
                }
            }
        }
        timed_out
    }

    /// The hold slots the appliance must act on now, oldest first. The slots are free
    /// again for the fast path once this returns, so the appliance must take each
    /// buffer out of its slot while iterating.
    pub fn take_released(&mut self) -> std::vec::Drain<'_, Release> {
        for r in &self.released {
            let (Release::Run { slot } | Release::Expired { slot }) = *r;
            self.free.push(slot);
        }
        self.released.drain(..)
    }

    /// Removes entry `i`, releasing its held fragments as expired; returns how many.
    fn expire(&mut self, i: u32) -> u64 {
        let n = self.entries[i as usize].held;
        self.release(i, |slot| Release::Expired { slot });
        self.remove(i);
        u64::from(n)
    }

    fn release(&mut self, i: u32, what: impl Fn(u16) -> Release) {
        let e = &mut self.entries[i as usize];
        let mut slot = e.held_head;
        e.held_head = NONE;
        e.held = 0;
        while slot != NONE {
            self.released.push(what(slot));
            self.waiting -= 1;
            slot = std::mem::replace(&mut self.next[usize::from(slot)], NONE);
        }
    }

    fn remove(&mut self, i: u32) {
        let e = &mut self.entries[i as usize];
        if e.used {
            debug_assert_eq!(e.held, 0, "held fragments are released first");
            *e = Entry::default();
            self.len -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u32) -> FragKey {
        let mut k = FragKey {
            id,
            ..FragKey::default()
        };
        k.src[15] = 1;
        k.dst[15] = 2;
        k
    }

    fn table(capacity: u32, holds: u16) -> FragTable {
        FragTable::new(FragParams {
            capacity,
            holds,
            per_datagram: 3,
            timeout_ns: 100,
            seed: 7,
        })
    }

    #[test]
    fn entries_are_found_decided_and_freed_when_covered() {
        let mut t = table(64, 8);
        let mut lost = 0;
        assert_eq!(t.find(&key(1), 0, &mut lost), None);
        let i = t.insert(&key(1), 0, &mut lost).unwrap();
        assert_eq!(t.find(&key(1), 10, &mut lost), Some(i));
        assert_eq!(t.decision(i), Decision::Pending);
        t.decide(i, Decision::Handoff(3));
        // 0..1480, 1480..2960 (last is 40 bytes at 2960): freed when all are counted.
        assert!(!t.account(i, 0, 1480, true));
        assert!(!t.account(i, 2960, 40, false));
        assert_eq!(t.len(), 1);
        assert!(t.account(i, 1480, 1480, true));
        assert!(t.is_empty());
        assert_eq!(t.find(&key(1), 10, &mut lost), None);
        assert_eq!(lost, 0);
    }

    #[test]
    fn held_fragments_are_released_to_run_or_expire() {
        let mut t = table(64, 4);
        let mut lost = 0;
        let a = t.insert(&key(1), 0, &mut lost).unwrap();
        let b = t.insert(&key(2), 0, &mut lost).unwrap();
        let held: Vec<u16> = (0..3).filter_map(|_| t.hold(a)).collect();
        assert_eq!(held.len(), 3);
        assert_eq!(t.hold(a), None, "three per datagram");
        let s = t.hold(b).unwrap();
        assert_eq!(t.hold(b), None, "every slot in use");
        assert_eq!(t.waiting(), 4);
        t.decide(a, Decision::Drop(DropReason::NoListener));
        let mut runs: Vec<_> = t.take_released().collect();
        runs.sort_by_key(|r| match r {
            Release::Run { slot } | Release::Expired { slot } => *slot,
        });
        let mut want: Vec<_> = held.iter().map(|&slot| Release::Run { slot }).collect();
        want.sort_by_key(|r| match r {
            Release::Run { slot } | Release::Expired { slot } => *slot,
        });
        assert_eq!(runs, want);
        assert_eq!(t.waiting(), 1);
        // b expires: found no more, its slot released as expired and counted.
        assert_eq!(t.find(&key(2), 100, &mut lost), None);
        assert_eq!(lost, 1);
        assert_eq!(
            t.take_released().collect::<Vec<_>>(),
            [Release::Expired { slot: s }]
        );
        assert_eq!(t.waiting(), 0);
        // Every slot is free again.
        let c = t.insert(&key(3), 200, &mut lost).unwrap();
        let mut again = 0;
        while t.hold(c).is_some() {
            again += 1;
        }
        assert_eq!(again, 3);
    }

    #[test]
    fn full_buckets_refuse_until_an_entry_expires() {
        // One bucket: WAYS entries.
        let mut t = table(1, 0);
        let mut lost = 0;
        for id in 0..u32::try_from(WAYS).unwrap() {
            assert!(t.insert(&key(id), 0, &mut lost).is_some());
        }
        assert_eq!(t.insert(&key(99), 50, &mut lost), None);
        assert!(t.insert(&key(99), 100, &mut lost).is_some(), "reuses one");
        assert_eq!(t.len(), WAYS);
        assert_eq!(t.sweep(1000, 100), 0);
        assert!(t.is_empty());
    }
}

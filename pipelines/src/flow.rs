//! Per-worker flow table: fixed capacity, preallocated, no allocation after start.
//!
//! Design note. Records live in one `Vec<Flow>` (80 bytes each) with a free-index stack.
//! A separate open-addressing index (linear probing, backward-shift deletion, at most half
//! full) maps a direction's 4-tuple to a record: each flow has a *forward* entry
//! (client:port → VIP:port) and a *reverse* entry (the reply's tuple: backend:port →
//! SNAT:port for FullNAT, backend:port → client:port for preserve-client), so the reply
//! path is one lookup too. DSR flows have no reverse entry: their replies never reach the
//! appliance, so the entry would only lengthen probe sequences. An index slot is 8 bytes
//! (32-bit hash tag, whose low bits are also the home position, and the record
//! reference); the record is compared in full on a tag match. For 1 M flows: 80 MB of
//! records + 32 MiB of index + 4 MB free stack ≈ 111 MiB.
//!
//! The hash is seeded per worker (a fixed value from its parameters, never a random
//! state), so one worker's layout is reproducible in tests and benchmarks.
//!
//! Expiry is lazy and incremental: a hit on an expired record is a miss, and
//! [`FlowTable::sweep`] frees a bounded number of expired records per call. When no record
//! is free, an insert first scans a bounded window for expired records to reuse; if there
//! is none the insert fails (the caller counts `table_full` and falls back), so a flood of
//! new flows never evicts live ones.

use crate::hash::{hash_words, ip_words, low32};
use crate::spec::NatMode;

/// A direction's addresses and ports, with addresses in 16-byte form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

/// Flow flag: record in use.
const IN_USE: u8 = 1;
/// Flow flag: a reply has been seen (the replied idle timeout applies). DSR flows never
/// get it (their replies never pass udplb): their backends' unreplied timeout is the
/// replied one ([`crate::tables::Backend::timeouts_ns`]).
pub const REPLIED: u8 = 2;
/// Flow flag: IPv6.
pub const IPV6: u8 = 4;

/// One flow record. `repr(C)`: the declared order is the layout, 80 bytes with the
/// tuple first and `mode` last ([`FlowTable::touch_record`] loads both ends).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C)]
pub struct Flow {
    /// Client address.
    pub client: [u8; 16],
    /// VIP.
    pub vip: [u8; 16],
    /// Backend address.
    pub backend: [u8; 16],
    /// Client port.
    pub client_port: u16,
    /// Listener port.
    pub vip_port: u16,
    /// Backend port.
    pub backend_port: u16,
    /// SNAT port (FullNAT only).
    pub snat_port: u16,
    /// Expiry time (ns).
    pub expires: u64,
    /// Replied idle timeout in ms (the backend's), to refresh `expires` on replies.
    pub idle_ms: u32,
    /// Cached listener index in the current tables (verified before use).
    pub listener_idx: u32,
    /// Cached backend index in the listener's route (verified before use).
    pub backend_idx: u32,
    /// [`IPV6`] | [`REPLIED`] | in-use.
    pub flags: u8,
    /// The NAT mode it was created with (it keeps it across configuration changes). A
    /// byte of its own (it fits the record's padding): the forward path reads it per
    /// packet.
    pub mode: NatMode,
}

impl Flow {
    /// Forward (client → VIP) tuple.
    pub fn forward_tuple(&self) -> Tuple {
        Tuple {
            src: self.client,
            dst: self.vip,
            src_port: self.client_port,
            dst_port: self.vip_port,
        }
    }

    /// Reply tuple (backend → SNAT address or client). `snat` is the SNAT address of the
    /// flow's family (ignored for preserve-client).
    pub fn reverse_tuple(&self, snat: &[u8; 16]) -> Tuple {
        if self.mode == NatMode::FullNat {
            Tuple {
                src: self.backend,
                dst: *snat,
                src_port: self.backend_port,
                dst_port: self.snat_port,
            }
        } else {
            Tuple {
                src: self.backend,
                dst: self.client,
                src_port: self.backend_port,
                dst_port: self.client_port,
            }
        }
    }

    /// Whether the flow is FullNAT (holds an SNAT port).
    #[inline]
    pub fn is_fullnat(&self) -> bool {
        self.mode == NatMode::FullNat
    }

    /// Whether the flow has a reverse index entry (every mode but DSR).
    #[inline]
    fn has_reverse(&self) -> bool {
        self.mode != NatMode::Dsr
    }

    /// Whether the flow is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.flags & IPV6 != 0
    }

    /// Whether a reply has been seen.
    pub fn is_replied(&self) -> bool {
        self.flags & REPLIED != 0
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    tag: u32,
    /// 0 = empty, else `(record << 1 | direction) + 1`.
    entry: u32,
}

/// Direction of an index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client → VIP.
    Forward,
    /// Backend → SNAT / client.
    Reverse,
}

/// Why an insert failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// The flow table of one worker.
#[derive(Debug)]
pub struct FlowTable {
    flows: Vec<Flow>,
    free: Vec<u32>,
    index: Vec<Slot>,
    mask: usize,
    seed: u64,
    cursor: usize,
}

/// How many records an insert into a full table examines for an expired one.
const EVICT_SCAN: usize = 32;

impl FlowTable {
    /// Largest supported capacity.
    pub const MAX_CAPACITY: u32 = 1 << 28;

    /// Preallocates a table for `capacity` flows (clamped to 1..=[`Self::MAX_CAPACITY`]).
    pub fn new(capacity: u32, seed: u64) -> FlowTable {
        let cap = capacity.clamp(1, Self::MAX_CAPACITY) as usize;
        let slots = (cap * 4).next_power_of_two();
        FlowTable {
            flows: vec![Flow::default(); cap],
            // Popped from the end: the lowest index first.
            free: (0..u32::try_from(cap).unwrap_or(u32::MAX)).rev().collect(),
            index: vec![Slot::default(); slots],
            mask: slots - 1,
            seed,
            cursor: 0,
        }
    }

    /// Capacity in flows.
    pub fn capacity(&self) -> usize {
        self.flows.len()
    }

    /// Live (possibly expired but not yet swept) flows.
    pub fn len(&self) -> usize {
        self.flows.len() - self.free.len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes preallocated.
    pub fn memory_bytes(&self) -> usize {
        self.flows.len() * std::mem::size_of::<Flow>()
            + self.index.len() * std::mem::size_of::<Slot>()
            + self.flows.len() * std::mem::size_of::<u32>()
    }

    /// Hash of a tuple under this table's seed.
    #[inline]
    pub fn hash(&self, t: &Tuple) -> u64 {
        let [a, b] = ip_words(&t.src);
        let [c, d] = ip_words(&t.dst);
        hash_words(
            self.seed,
            &[
                a,
                b,
                c,
                d,
                u64::from(t.src_port) << 16 | u64::from(t.dst_port),
            ],
        )
    }

    /// Record by index.
    pub fn get(&self, idx: u32) -> &Flow {
        &self.flows[idx as usize]
    }

    /// Mutable record by index.
    pub fn get_mut(&mut self, idx: u32) -> &mut Flow {
        &mut self.flows[idx as usize]
    }

    /// Loads the index slot at the home of hash `h` (see [`FlowTable::hash`]) so a later
    /// lookup finds it in cache; returns its entry for [`FlowTable::touch_record`].
    #[inline]
    pub fn touch_slot(&self, h: u64) -> u32 {
        self.index[low32(h) as usize & self.mask].entry
    }

    /// Loads the record an index entry points to (0 = none); returns a value only to
    /// keep the loads alive. Its first and last bytes: an 80-byte record spans two cache
    /// lines at most offsets, and both are read when the flow is used.
    #[inline]
    pub fn touch_record(&self, entry: u32) -> u64 {
        if entry == 0 {
            return 0;
        }
        self.flows
            .get(((entry - 1) >> 1) as usize)
            .map_or(0, |f| u64::from(f.client[0]) ^ f.mode as u64)
    }

    /// Finds the record whose `dir` tuple equals `t`. `snat` is the SNAT address of the
    /// tuple's family, to rebuild reverse tuples of FullNAT flows.
    #[inline]
    pub fn lookup(&self, t: &Tuple, dir: Dir, snat: &[u8; 16]) -> Option<u32> {
        self.lookup_hashed(self.hash(t), t, dir, snat)
    }

    /// [`FlowTable::lookup`] with `h = self.hash(t)` already computed.
    #[inline]
    pub fn lookup_hashed(&self, h: u64, t: &Tuple, dir: Dir, snat: &[u8; 16]) -> Option<u32> {
        let tag = low32(h);
        let mut pos = tag as usize & self.mask;
        let want = u32::from(dir == Dir::Reverse);
        // At most half full: an empty slot ends every probe well before a full lap.
        for _ in 0..self.index.len() {
            let s = self.index[pos];
            if s.entry == 0 {
                return None;
            }
            let e = s.entry - 1;
            if s.tag == tag && e & 1 == want {
                let idx = e >> 1;
                let f = &self.flows[idx as usize];
                let ft = match dir {
                    Dir::Forward => f.forward_tuple(),
                    Dir::Reverse => f.reverse_tuple(snat),
                };
                if ft == *t {
                    return Some(idx);
                }
            }
            pos = (pos + 1) & self.mask;
        }
        None
    }

    fn index_insert(&mut self, t: &Tuple, dir: Dir, idx: u32) {
        let tag = low32(self.hash(t));
        let mut pos = tag as usize & self.mask;
        while self.index[pos].entry != 0 {
            pos = (pos + 1) & self.mask;
        }
        self.index[pos] = Slot {
            tag,
            entry: ((idx << 1) | u32::from(dir == Dir::Reverse)) + 1,
        };
    }

    fn index_remove(&mut self, t: &Tuple, dir: Dir, idx: u32) {
        let tag = low32(self.hash(t));
        let target = ((idx << 1) | u32::from(dir == Dir::Reverse)) + 1;
        let mut pos = tag as usize & self.mask;
        let mut found = None;
        for _ in 0..self.index.len() {
            let s = self.index[pos];
            if s.entry == 0 {
                break;
            }
            if s.entry == target {
                found = Some(pos);
                break;
            }
            pos = (pos + 1) & self.mask;
        }
        let Some(mut hole) = found else { return };
        // Backward-shift deletion: pull later entries of the cluster into the hole unless
        // their home lies cyclically in (hole, j].
        let mut j = hole;
        for _ in 0..self.index.len() {
            j = (j + 1) & self.mask;
            let s = self.index[j];
            if s.entry == 0 {
                break;
            }
            let home = s.tag as usize & self.mask;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                self.index[hole] = s;
                hole = j;
            }
        }
        self.index[hole] = Slot::default();
    }

    /// Inserts `flow` (forward and, except for DSR, reverse entries). `now` lets a full
    /// table reuse an expired record; `on_evict` is called with each evicted record (to
    /// free its SNAT port).
    ///
    /// # Errors
    /// [`Full`] when no record is free and none in the scan window has expired.
    pub fn insert(
        &mut self,
        flow: Flow,
        snat: &SnatAddrs,
        now: u64,
        on_evict: &mut impl FnMut(&Flow),
    ) -> Result<u32, Full> {
        if self.free.is_empty() {
            self.sweep(now, EVICT_SCAN, snat, on_evict);
        }
        let snat = snat.of(flow.is_ipv6());
        let idx = self.free.pop().ok_or(Full)?;
        let mut f = flow;
        f.flags |= IN_USE;
        self.flows[idx as usize] = f;
        self.index_insert(&f.forward_tuple(), Dir::Forward, idx);
        if f.has_reverse() {
            self.index_insert(&f.reverse_tuple(snat), Dir::Reverse, idx);
        }
        Ok(idx)
    }

    /// Removes record `idx`.
    pub fn remove(&mut self, idx: u32, snat: &[u8; 16]) {
        let f = self.flows[idx as usize];
        if f.flags & IN_USE == 0 {
            return;
        }
        self.index_remove(&f.forward_tuple(), Dir::Forward, idx);
        if f.has_reverse() {
            self.index_remove(&f.reverse_tuple(snat), Dir::Reverse, idx);
        }
        self.flows[idx as usize].flags = 0;
        self.free.push(idx);
    }

    /// Re-pins record `idx` to a new backend, moving its reverse entry (if it has one).
    pub fn repin(&mut self, idx: u32, backend: [u8; 16], port: u16, snat: &[u8; 16]) {
        let old = self.flows[idx as usize];
        if old.has_reverse() {
            self.index_remove(&old.reverse_tuple(snat), Dir::Reverse, idx);
        }
        let f = &mut self.flows[idx as usize];
        f.backend = backend;
        f.backend_port = port;
        let f = *f;
        if f.has_reverse() {
            self.index_insert(&f.reverse_tuple(snat), Dir::Reverse, idx);
        }
    }

    /// Examines up to `budget` records from the sweep cursor and removes the expired ones,
    /// calling `on_expire` for each; returns how many were removed.
    pub fn sweep(
        &mut self,
        now: u64,
        budget: usize,
        snat: &SnatAddrs,
        on_expire: &mut impl FnMut(&Flow),
    ) -> usize {
        let mut removed = 0;
        for _ in 0..budget.min(self.flows.len()) {
            let idx = self.cursor;
            self.cursor = (self.cursor + 1) % self.flows.len();
            let f = self.flows[idx];
            if f.flags & IN_USE != 0 && f.expires <= now {
                on_expire(&f);
                self.remove(u32::try_from(idx).unwrap_or(u32::MAX), snat.of(f.is_ipv6()));
                removed += 1;
            }
        }
        removed
    }
}

/// The SNAT addresses in 16-byte form (all-zero when not configured), to rebuild the
/// reverse tuples of FullNAT flows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnatAddrs {
    /// IPv4 SNAT address (IPv4-mapped).
    pub v4: [u8; 16],
    /// IPv6 SNAT address.
    pub v6: [u8; 16],
}

impl SnatAddrs {
    /// The address of a family.
    #[inline]
    pub fn of(&self, ipv6: bool) -> &[u8; 16] {
        if ipv6 {
            &self.v6
        } else {
            &self.v4
        }
    }
}

/// A stack of free SNAT ports for one address: pop to allocate, push to return.
#[derive(Debug)]
pub struct SnatPorts {
    free: Vec<u16>,
}

impl SnatPorts {
    /// All ports of `range` free.
    pub fn new(range: crate::net::PortRange) -> SnatPorts {
        SnatPorts {
            free: if range.is_empty() {
                Vec::new()
            } else {
                (range.first..=range.last).rev().collect()
            },
        }
    }

    /// Takes a free port.
    pub fn alloc(&mut self) -> Option<u16> {
        self.free.pop()
    }

    /// Returns a port.
    pub fn release(&mut self, port: u16) {
        self.free.push(port);
    }

    /// Ports free.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(n: u16, snat_port: u16) -> Flow {
        let mut f = Flow {
            client_port: n,
            vip_port: 53,
            backend_port: 5353,
            snat_port,
            expires: 100,
            mode: NatMode::FullNat,
            ..Default::default()
        };
        f.client[15] = 1;
        f.vip[15] = 2;
        f.backend[15] = 3;
        f
    }

    const SNAT: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    const ADDRS: SnatAddrs = SnatAddrs { v4: SNAT, v6: SNAT };

    #[test]
    fn insert_lookup_both_directions_and_remove() {
        let mut t = FlowTable::new(64, 1);
        let mut none = |_: &Flow| {};
        let mut ids = Vec::new();
        for n in 1..=64 {
            ids.push(t.insert(flow(n, 1000 + n), &ADDRS, 0, &mut none).unwrap());
        }
        assert_eq!(t.len(), 64);
        assert_eq!(
            t.insert(flow(99, 2000), &ADDRS, 0, &mut none),
            Err(Full),
            "full and nothing expired"
        );
        for (n, &id) in (1..=64).zip(&ids) {
            let f = flow(n, 1000 + n);
            assert_eq!(t.lookup(&f.forward_tuple(), Dir::Forward, &SNAT), Some(id));
            assert_eq!(
                t.lookup(&f.reverse_tuple(&SNAT), Dir::Reverse, &SNAT),
                Some(id)
            );
            // A forward tuple is not found as a reverse one.
            assert_eq!(t.lookup(&f.forward_tuple(), Dir::Reverse, &SNAT), None);
        }
        // Remove every other flow; the rest stay findable (backward shift is correct).
        for (i, &id) in ids.iter().enumerate().step_by(2) {
            t.remove(id, &SNAT);
            let n = u16::try_from(i).unwrap() + 1;
            assert_eq!(
                t.lookup(&flow(n, 1000 + n).forward_tuple(), Dir::Forward, &SNAT),
                None
            );
        }
        for (i, &id) in ids.iter().enumerate().skip(1).step_by(2) {
            let n = u16::try_from(i).unwrap() + 1;
            let f = flow(n, 1000 + n);
            assert_eq!(t.lookup(&f.forward_tuple(), Dir::Forward, &SNAT), Some(id));
            assert_eq!(
                t.lookup(&f.reverse_tuple(&SNAT), Dir::Reverse, &SNAT),
                Some(id)
            );
        }
        assert_eq!(t.len(), 32);
    }

    #[test]
    fn full_table_reuses_expired_records() {
        let mut t = FlowTable::new(4, 1);
        let mut evicted = Vec::new();
        for n in 1..=4 {
            t.insert(flow(n, n), &ADDRS, 0, &mut |_: &Flow| {}).unwrap();
        }
        let id = t
            .insert(flow(9, 9), &ADDRS, 101, &mut |f: &Flow| {
                evicted.push(f.snat_port)
            })
            .unwrap();
        assert_eq!(evicted.len(), 4, "all four had expired at 100");
        assert_eq!(t.len(), 1);
        assert_eq!(
            t.lookup(&flow(9, 9).forward_tuple(), Dir::Forward, &SNAT),
            Some(id)
        );
    }

    #[test]
    fn sweep_is_bounded_and_frees_expired() {
        let mut t = FlowTable::new(8, 1);
        for n in 1..=8 {
            let mut f = flow(n, n);
            f.expires = u64::from(n) * 10;
            t.insert(f, &ADDRS, 0, &mut |_: &Flow| {}).unwrap();
        }
        let mut freed = 0;
        assert_eq!(t.sweep(45, 3, &ADDRS, &mut |_: &Flow| freed += 1), 3);
        assert_eq!(t.sweep(45, 8, &ADDRS, &mut |_: &Flow| freed += 1), 1);
        assert_eq!(freed, 4);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn repin_moves_the_reverse_entry() {
        let mut t = FlowTable::new(4, 1);
        let f = flow(1, 7);
        let id = t.insert(f, &ADDRS, 0, &mut |_: &Flow| {}).unwrap();
        let mut nb = [0u8; 16];
        nb[15] = 4;
        t.repin(id, nb, 99, &SNAT);
        assert_eq!(t.lookup(&f.reverse_tuple(&SNAT), Dir::Reverse, &SNAT), None);
        let moved = t.get(id).reverse_tuple(&SNAT);
        assert_eq!(moved.src, nb);
        assert_eq!(t.lookup(&moved, Dir::Reverse, &SNAT), Some(id));
    }

    #[test]
    fn dsr_flows_have_no_reverse_entry() {
        let mut t = FlowTable::new(8, 1);
        let mut f = flow(1, 0);
        f.mode = NatMode::Dsr;
        let id = t.insert(f, &ADDRS, 0, &mut |_: &Flow| {}).unwrap();
        assert_eq!(t.get(id).mode, NatMode::Dsr);
        assert_eq!(t.lookup(&f.forward_tuple(), Dir::Forward, &SNAT), Some(id));
        assert_eq!(t.lookup(&f.reverse_tuple(&SNAT), Dir::Reverse, &SNAT), None);
        let occupied = |t: &FlowTable| t.index.iter().filter(|s| s.entry != 0).count();
        assert_eq!(occupied(&t), 1, "one index entry");
        let mut nb = [0u8; 16];
        nb[15] = 4;
        t.repin(id, nb, 99, &SNAT);
        assert_eq!(occupied(&t), 1, "re-pinning adds none");
        assert_eq!(t.lookup(&f.forward_tuple(), Dir::Forward, &SNAT), Some(id));
        t.remove(id, &SNAT);
        assert_eq!(occupied(&t), 0);
        assert!(t.is_empty());
    }

    #[test]
    fn memory_for_a_million_flows_is_under_128_mib() {
        let flows = 1_000_000usize;
        let slots = (flows * 4).next_power_of_two();
        let bytes = flows * std::mem::size_of::<Flow>() + slots * 8 + flows * 4;
        assert!(bytes <= 128 << 20, "{bytes}");
        assert_eq!(std::mem::size_of::<Flow>(), 80);
    }

    proptest::proptest! {
        /// Random inserts and removals agree with a map model: every live flow is found in
        /// both directions, every removed one in neither (checks backward-shift deletion).
        #[test]
        fn matches_a_map_model(ops in proptest::collection::vec((0u16..200, proptest::bool::ANY), 1..400)) {
            let mut t = FlowTable::new(256, 7);
            let mut model = std::collections::HashMap::new();
            for (n, insert) in ops {
                let f = flow(n, 1000 + n);
                let live = model.get(&n).copied();
                match (insert, live) {
                    (true, None) => {
                        let id = t.insert(f, &ADDRS, 0, &mut |_: &Flow| {}).unwrap();
                        model.insert(n, id);
                    }
                    (false, Some(id)) => {
                        t.remove(id, &SNAT);
                        model.remove(&n);
                    }
                    _ => {}
                }
                proptest::prop_assert_eq!(t.len(), model.len());
            }
            for n in 0u16..200 {
                let f = flow(n, 1000 + n);
                let want = model.get(&n).copied();
                proptest::prop_assert_eq!(t.lookup(&f.forward_tuple(), Dir::Forward, &SNAT), want);
                proptest::prop_assert_eq!(t.lookup(&f.reverse_tuple(&SNAT), Dir::Reverse, &SNAT), want);
            }
        }
    }

    #[test]
    fn snat_ports_come_back() {
        let mut p = SnatPorts::new(crate::net::PortRange {
            first: 10,
            last: 11,
        });
        assert_eq!(p.alloc(), Some(10));
        assert_eq!(p.alloc(), Some(11));
        assert_eq!(p.alloc(), None);
        p.release(10);
        assert_eq!(p.alloc(), Some(10));
    }
}

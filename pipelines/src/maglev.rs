//! Weighted Maglev consistent hashing (Eisenbud et al., NSDI 2016; weights as in Katran's
//! `MaglevHashV2`).
//!
//! A table of prime size `M` maps a flow hash to a slot value. Each endpoint gets a
//! permutation of the slots from a fixed-seed hash of its identity (address:port, never its
//! position), `offset = h1 mod M`, `skip = h2 mod (M-1) + 1`. Endpoints take turns claiming
//! their next free preferred slot; an endpoint of weight `w` takes a turn each time its
//! accumulated weight passes the largest weight, so slot counts follow the weights with no
//! rule that weights sum to anything. The result depends only on the endpoint set, the
//! weights, `M` and the seed: appliances given the same configuration agree on every flow.
//!
//! Slot values: [`NO_BACKEND`] (0) = empty table, [`DROP`] = the dropped-weight share, any
//! other value is what the caller put in [`Endpoint::value`] (the tables use backend index
//! + 1).
//!
//! Disruption: when one of N equal backends is removed, its ≈ M/N slots move, and in
//! addition a small number of surviving backends' slots move (the permutations interleave
//! differently). Tests bound the total at ≤ 2 × M/N for N ≥ 3 — the paper (§3.4, Fig. 10)
//! and Katran's integration test report the extra churn at a few percent of M/N for tables
//! ≥ 100 × N.

use crate::hash::hash_words;

/// Slot value meaning "no backend takes new flows".
pub const NO_BACKEND: u32 = 0;
/// Slot value meaning "dropped-weight share: reject new flows".
pub const DROP: u32 = u32::MAX;

/// One participant in a Maglev table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Stable identity bytes (for backends: the 16-byte address and the port).
    pub id: [u8; 18],
    /// Relative weight; 0 takes no slots.
    pub weight: u64,
    /// What its slots hold (not [`NO_BACKEND`]).
    pub value: u32,
}

/// A built Maglev lookup table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Maglev {
    slots: Vec<u32>,
}

fn id_words(id: &[u8; 18]) -> [u64; 3] {
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&id[..8]);
    b.copy_from_slice(&id[8..16]);
    [
        u64::from_be_bytes(a),
        u64::from_be_bytes(b),
        u64::from(u16::from_be_bytes([id[16], id[17]])),
    ]
}

/// The smallest prime ≥ `n` (`n` itself when none fits in a `u32`): what to suggest for
/// a table size that is not prime.
pub fn next_prime(n: u32) -> u32 {
    (n..=u32::MAX).find(|&c| is_prime(c)).unwrap_or(n)
}

/// Whether `n` is prime (trial division; `n` ≤ u32::MAX, at most 65536 steps).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n.is_multiple_of(2) {
        return n == 2;
    }
    let n = u64::from(n);
    let mut d = 3u64;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

impl Maglev {
    /// Builds the table of `size` slots (the caller checks that `size` is prime; a
    /// non-prime size still terminates but balances worse) for `endpoints`, with the
    /// permutation hashes keyed by `seed`.
    pub fn build(endpoints: &[Endpoint], size: u32, seed: u64) -> Maglev {
        let m = u64::from(size.max(1));
        let mut slots = vec![NO_BACKEND; usize::try_from(m).unwrap_or(usize::MAX)];
        let active: Vec<&Endpoint> = endpoints.iter().filter(|e| e.weight > 0).collect();
        let Some(max_w) = active.iter().map(|e| e.weight).max() else {
            return Maglev { slots };
        };
        // A placeholder distinct from every value, so an endpoint's own value can be anything.
        let mut taken = vec![false; slots.len()];
        let perm: Vec<(u64, u64)> = active
            .iter()
            .map(|e| {
                let w = id_words(&e.id);
                let h1 = hash_words(seed, &w);
                let h2 = hash_words(seed ^ 0x5bd1_e995_0000_0001, &w);
                let skip = if m > 1 { h2 % (m - 1) + 1 } else { 1 };
                (h1 % m, skip)
            })
            .collect();
        let mut next = vec![0u64; active.len()];
        let mut cum = vec![0u64; active.len()];
        let mut filled = 0u64;
        // Each pass of the outer loop lets the heaviest endpoint place one slot, so it runs
        // at most M passes; each placement probes at most M candidates.
        while filled < m {
            for (i, e) in active.iter().enumerate() {
                cum[i] += e.weight;
                if cum[i] < max_w {
                    continue;
                }
                cum[i] -= max_w;
                let (offset, skip) = perm[i];
                while next[i] < m {
                    let pos = usize::try_from((offset + next[i] * skip) % m).unwrap_or(0);
                    next[i] += 1;
                    if !taken[pos] {
                        taken[pos] = true;
                        slots[pos] = e.value;
                        filled += 1;
                        break;
                    }
                }
                if filled == m {
                    break;
                }
            }
        }
        Maglev { slots }
    }

    /// Number of slots.
    pub fn size(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// All slots.
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// Slot value for a flow hash (upper 32 bits scaled onto the table: no division).
    #[inline]
    pub fn lookup(&self, hash: u64) -> u32 {
        self.slots
            .get(self.index(hash))
            .copied()
            .unwrap_or(NO_BACKEND)
    }

    #[inline]
    fn index(&self, hash: u64) -> usize {
        let idx = ((hash >> 32) * self.slots.len() as u64) >> 32;
        usize::try_from(idx).unwrap_or(0)
    }

    /// The first slot value that `accept` takes, walking the ring from the slot of `hash`
    /// (which is tried first) and wrapping; `None` when no slot is accepted. How
    /// unhealthy backends are skipped without rebuilding the table: their slots fall to
    /// the next accepted slot's owner, so their share spreads over the others in
    /// proportion to their slots (the slot order is a mix of every permutation), and the
    /// same table, hash and `accept` always give the same value (every appliance with the
    /// same health agrees). Costs one step per skipped slot: about `1 / (share of
    /// accepted slots)` on average, at most the table size.
    pub fn lookup_accepting(&self, hash: u64, accept: impl Fn(u32) -> bool) -> Option<u32> {
        let start = self.index(hash);
        let (after, before) = self.slots.split_at(start.min(self.slots.len()));
        before.iter().chain(after).copied().find(|&v| accept(v))
    }

    /// Memory held by the table.
    pub fn memory_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u32>()
    }
}

/// Slots whose owner changed between two tables, comparing owners by identity
/// (`old_owner` / `new_owner` map a slot value to e.g. the backend's address), not by
/// value, since values are indices that differ between generations. Tables of different
/// sizes differ in every slot.
pub fn diff<T: PartialEq>(
    old: &Maglev,
    old_owner: impl Fn(u32) -> T,
    new: &Maglev,
    new_owner: impl Fn(u32) -> T,
) -> Vec<usize> {
    if old.slots.len() != new.slots.len() {
        return (0..new.slots.len()).collect();
    }
    old.slots
        .iter()
        .zip(&new.slots)
        .enumerate()
        .filter(|(_, (o, n))| old_owner(**o) != new_owner(**n))
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(n: u8, weight: u64) -> Endpoint {
        let mut id = [0u8; 18];
        id[15] = n;
        id[17] = 53;
        Endpoint {
            id,
            weight,
            value: u32::from(n),
        }
    }

    #[test]
    fn primes() {
        assert!(is_prime(65537));
        assert!(is_prime(2));
        assert!(!is_prime(65536));
        assert!(!is_prime(1));
        assert!(!is_prime(65535));
        assert!(is_prime(4_294_967_291));
        let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert_eq!(next_prime(65536), 65537);
        assert_eq!(next_prime(65537), 65537);
    }

    #[test]
    fn empty_table_is_all_no_backend() {
        let m = Maglev::build(&[], 101, 7);
        assert!(m.slots().iter().all(|&s| s == NO_BACKEND));
        let m = Maglev::build(&[ep(1, 0)], 101, 7);
        assert!(m.slots().iter().all(|&s| s == NO_BACKEND));
    }

    #[test]
    fn single_endpoint_fills_the_table() {
        let m = Maglev::build(&[ep(1, 5)], 101, 7);
        assert!(m.slots().iter().all(|&s| s == 1));
    }

    #[test]
    fn equal_weights_are_exactly_balanced() {
        let eps: Vec<_> = (1..=3).map(|n| ep(n, 10)).collect();
        let m = Maglev::build(&eps, 65537, 7);
        for n in 1..=3u32 {
            let c = m.slots().iter().filter(|&&s| s == n).count();
            assert!((21845..=21846).contains(&c), "backend {n}: {c}");
        }
    }

    #[test]
    fn diff_reports_removed_backend_slots() {
        let eps: Vec<_> = (1..=4).map(|n| ep(n, 1)).collect();
        let a = Maglev::build(&eps, 1009, 3);
        let b = Maglev::build(&eps[..3], 1009, 3);
        let moved = diff(&a, |v| v, &b, |v| v);
        let owned_by_4 = a.slots().iter().filter(|&&s| s == 4).count();
        assert!(moved.len() >= owned_by_4);
        assert!(moved.len() <= 2 * owned_by_4);
        assert!(diff(&a, |v| v, &a.clone(), |v| v).is_empty());
    }

    #[test]
    fn lookup_spreads_over_all_slots() {
        let m = Maglev::build(&[ep(1, 1)], 7, 0);
        assert_eq!(m.lookup(0), 1);
        assert_eq!(m.lookup(u64::MAX), 1);
    }
}

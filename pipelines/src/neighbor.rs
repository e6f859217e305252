//! Neighbor table: next-hop IP → MAC.
//!
//! An immutable snapshot, built by the slow path from ARP / ND replies and static entries
//! and published whole as `Arc<Neighbors>`, like the tables. Lookups are a binary search
//! over a sorted vector: no hashing state, no allocation.

use std::net::IpAddr;

use crate::net::MacAddr;

/// Immutable IP → MAC snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Neighbors {
    entries: Vec<(IpAddr, MacAddr)>,
    /// IPv4 entries as integers, for a cheaper search.
    v4: Vec<(u32, MacAddr)>,
    /// IPv6 entries as integers.
    v6: Vec<(u128, MacAddr)>,
}

impl Neighbors {
    /// Builds a snapshot; on duplicate addresses the last entry wins.
    pub fn new(entries: impl IntoIterator<Item = (IpAddr, MacAddr)>) -> Neighbors {
        let mut v: Vec<(IpAddr, MacAddr)> = entries.into_iter().collect();
        // Stable sort keeps input order among equal keys, so "last wins" after dedup.
        v.sort_by_key(|e| e.0);
        let mut out: Vec<(IpAddr, MacAddr)> = Vec::with_capacity(v.len());
        for e in v {
            match out.last_mut() {
                Some(last) if last.0 == e.0 => *last = e,
                _ => out.push(e),
            }
        }
        let v4 = out
            .iter()
            .filter_map(|(ip, m)| match ip {
                IpAddr::V4(a) => Some((u32::from(*a), *m)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let v6 = out
            .iter()
            .filter_map(|(ip, m)| match ip {
                IpAddr::V6(a) => Some((u128::from(*a), *m)),
                IpAddr::V4(_) => None,
            })
            .collect();
        Neighbors {
            entries: out,
            v4,
            v6,
        }
    }

    /// A copy with `ip` set to `mac` (how the slow path publishes a new resolution).
    pub fn with(&self, ip: IpAddr, mac: MacAddr) -> Neighbors {
        Neighbors::new(self.entries.iter().copied().chain([(ip, mac)]))
    }

    /// The MAC of `ip`, if resolved.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<MacAddr> {
        match ip {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .binary_search_by_key(&a, |e| e.0)
                    .ok()
                    .map(|i| self.v4[i].1)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .binary_search_by_key(&a, |e| e.0)
                    .ok()
                    .map(|i| self.v6[i].1)
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries, sorted by address.
    pub fn entries(&self) -> &[(IpAddr, MacAddr)] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_last_wins() {
        let a: IpAddr = "198.18.0.1".parse().unwrap();
        let b: IpAddr = "2001:2::1".parse().unwrap();
        let n = Neighbors::new([
            (b, MacAddr([2; 6])),
            (a, MacAddr([1; 6])),
            (a, MacAddr([3; 6])),
        ]);
        assert_eq!(n.len(), 2);
        assert_eq!(n.lookup(a), Some(MacAddr([3; 6])));
        assert_eq!(n.lookup(b), Some(MacAddr([2; 6])));
        assert_eq!(n.lookup("198.18.0.2".parse().unwrap()), None);
        let n2 = n.with("198.18.0.2".parse().unwrap(), MacAddr([4; 6]));
        assert_eq!(
            n2.lookup("198.18.0.2".parse().unwrap()),
            Some(MacAddr([4; 6]))
        );
        assert_eq!(n.len(), 2);
    }
}

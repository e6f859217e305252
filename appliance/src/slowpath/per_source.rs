//! ICMP errors per destination (the offending datagram's source), as RFC 1812 §4.3.2.8
//! and RFC 4443 §2.4(f) ask and Linux does (`icmp_ratelimit`, per peer): one client that
//! keeps sending datagrams with TTL 1 or too large for the path gets a steady trickle of
//! errors, and cannot use up the appliance-wide budget that every other client shares.
//!
//! A bounded table of [`TokenBucket`]s by address, allocated once. When it is full, a
//! new source takes the place of one whose bucket has refilled completely (it has been
//! quiet for at least `burst / rate` seconds, so forgetting it changes nothing); when
//! every entry is busy, the new source gets no error (counted as rate-limited): a flood
//! of sources cannot grow the table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use super::limiter::TokenBucket;

/// Token buckets by source address, at most `capacity` of them.
#[derive(Debug)]
pub(crate) struct PerSource {
    rate: u32,
    burst: u32,
    capacity: usize,
    buckets: HashMap<IpAddr, TokenBucket>,
}

impl PerSource {
    /// `rate` errors per second and a burst of `burst` for each of at most `capacity`
    /// sources.
    pub(crate) fn new(rate: u32, burst: u32, capacity: usize) -> PerSource {
        PerSource {
            rate,
            burst,
            capacity,
            buckets: HashMap::with_capacity(capacity),
        }
    }

    /// Takes a token from `source`'s bucket, if it has one (a new source starts full).
    pub(crate) fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        if let Some(bucket) = self.buckets.get_mut(&source) {
            return bucket.allow(now);
        }
        if self.buckets.len() >= self.capacity {
            let idle = self
                .buckets
                .iter_mut()
                .find(|(_, b)| b.is_full(now))
                .map(|(ip, _)| *ip);
            match idle {
                Some(ip) => {
                    self.buckets.remove(&ip);
                }
                None => return false,
            }
        }
        let mut bucket = TokenBucket::new(self.rate, self.burst);
        let allowed = bucket.allow(now);
        self.buckets.insert(source, bucket);
        allowed
    }

    /// Sources tracked now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([198, 18, 0, last])
    }

    #[test]
    fn each_source_has_its_own_bucket() {
        let t0 = Instant::now();
        let mut p = PerSource::new(10, 2, 8);
        assert!(p.allow(ip(1), t0) && p.allow(ip(1), t0));
        assert!(!p.allow(ip(1), t0), "source 1 spent its burst");
        assert!(p.allow(ip(2), t0), "source 2 still has its own");
        // 10/s: one token per 100 ms.
        assert!(p.allow(ip(1), t0 + Duration::from_millis(100)));
        assert!(!p.allow(ip(1), t0 + Duration::from_millis(100)));
    }

    #[test]
    fn a_full_table_replaces_quiet_sources_only() {
        let t0 = Instant::now();
        let mut p = PerSource::new(10, 2, 2);
        assert!(p.allow(ip(1), t0));
        assert!(p.allow(ip(2), t0));
        assert!(!p.allow(ip(3), t0), "both entries busy: no room, no error");
        assert_eq!(p.len(), 2);
        // 200 ms later both buckets are full again (burst 2 at 10/s): quiet sources.
        let later = t0 + Duration::from_millis(200);
        assert!(p.allow(ip(3), later));
        assert_eq!(p.len(), 2, "bounded");
    }
}

//! The per-burst next-hop cache: route, out port, neighbor MAC and offloads of the
//! destinations a burst sends to.

use std::net::IpAddr;

use super::Context;
use crate::net::{ChecksumCaps, MacAddr, NextHop};
use crate::verdict::{DropReason, HostReason, Verdict};

/// A resolved destination: out port, MACs and the port's offloads.
#[derive(Clone, Copy, Debug)]
pub(super) struct Hop {
    pub(super) dst: IpAddr,
    pub(super) port: u16,
    pub(super) dst_mac: MacAddr,
    pub(super) src_mac: MacAddr,
    pub(super) caps: ChecksumCaps,
    /// The route's next hop is `dst` itself (a connected prefix, or a static route
    /// through `dst`): a frame to `dst_mac` reaches `dst` at layer 2.
    pub(super) on_link: bool,
}

/// Destinations resolved during the current burst (route + port + neighbor), so a burst
/// to a few backends or clients resolves each once. Cleared at every burst start: the
/// [`Context`] (network, neighbors) is only fixed for one burst. Direct-mapped by the
/// address's last byte; only successful resolutions are kept, so every other verdict
/// is produced exactly as without the cache.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct HopCache {
    entries: [Option<Hop>; HOP_CACHE_SLOTS],
}

const HOP_CACHE_SLOTS: usize = 8;

impl HopCache {
    #[inline]
    fn slot(dst: IpAddr) -> usize {
        let last = match dst {
            IpAddr::V4(a) => a.octets()[3],
            IpAddr::V6(a) => a.octets()[15],
        };
        usize::from(last) % HOP_CACHE_SLOTS
    }

    /// The hop to `dst`, resolving it on a miss; `Err` is the verdict when it cannot be.
    #[inline]
    pub(super) fn resolve(&mut self, ctx: &Context<'_>, dst: IpAddr) -> Result<Hop, Verdict> {
        self.resolve_with(ctx, dst, false)
    }

    /// The hop to `dst`, which must be on-link (DSR): a route through a gateway is
    /// `dsr_not_on_link`, decided before any neighbor resolution.
    #[inline]
    pub(super) fn resolve_on_link(
        &mut self,
        ctx: &Context<'_>,
        dst: IpAddr,
    ) -> Result<Hop, Verdict> {
        self.resolve_with(ctx, dst, true)
    }

    #[inline(always)]
    fn resolve_with(
        &mut self,
        ctx: &Context<'_>,
        dst: IpAddr,
        on_link: bool,
    ) -> Result<Hop, Verdict> {
        const NOT_ON_LINK: Verdict = Verdict::Drop(DropReason::DsrNotOnLink);
        let slot = &mut self.entries[Self::slot(dst)];
        if let Some(h) = slot {
            if h.dst == dst {
                if on_link && !h.on_link {
                    return Err(NOT_ON_LINK);
                }
                return Ok(*h);
            }
        }
        let Some(NextHop { port, via }) = ctx.network.route(dst) else {
            return Err(Verdict::Drop(DropReason::Unroutable));
        };
        if on_link && via != dst {
            return Err(NOT_ON_LINK);
        }
        let Some(out) = ctx.network.ports().get(usize::from(port)) else {
            return Err(Verdict::Drop(DropReason::Unroutable));
        };
        let Some(mac) = ctx.neighbors.lookup(via) else {
            return Err(Verdict::ToHost(HostReason::Resolve {
                next_hop: via,
                port,
            }));
        };
        let h = Hop {
            dst,
            port,
            dst_mac: mac,
            src_mac: out.mac,
            caps: out.checksum,
            on_link: via == dst,
        };
        *slot = Some(h);
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::{DataplaneParams, Tables};
    use crate::testkit;

    #[test]
    fn hop_cache_keeps_colliding_destinations_apart() {
        let tables = Tables::build(&testkit::config(), &DataplaneParams::default()).unwrap();
        let network = testkit::network(false);
        let neighbors = testkit::neighbors(9);
        let ctx = Context {
            tables: &tables,
            network: &network,
            neighbors: &neighbors,
        };
        let mut hops = HopCache::default();
        // .1 and .9 share a slot; each must get its own MAC, hit or miss.
        let (a, b) = (testkit::backend4(1).ip(), testkit::backend4(9).ip());
        assert_eq!(HopCache::slot(a), HopCache::slot(b));
        for dst in [a, b, a, a, b] {
            let hop = hops.resolve(&ctx, dst).unwrap();
            assert_eq!(Some(hop.dst_mac), neighbors.lookup(dst));
            assert_eq!(hop.dst, dst);
        }
        // Failures are not cached: an unresolved next hop stays unresolved.
        let unknown: IpAddr = "198.18.1.200".parse().unwrap();
        for _ in 0..2 {
            assert!(matches!(
                hops.resolve(&ctx, unknown),
                Err(Verdict::ToHost(HostReason::Resolve { .. }))
            ));
        }
    }

    #[test]
    fn on_link_is_required_cached_or_not() {
        let tables = Tables::build(&testkit::config(), &DataplaneParams::default()).unwrap();
        let network = testkit::network(false);
        let neighbors = testkit::neighbors(4);
        let ctx = Context {
            tables: &tables,
            network: &network,
            neighbors: &neighbors,
        };
        let not_on_link = Err(Verdict::Drop(DropReason::DsrNotOnLink));
        // Behind the client-side router: routable, not on-link; cached or not.
        let far: IpAddr = "198.19.0.7".parse().unwrap();
        let mut hops = HopCache::default();
        assert_eq!(hops.resolve_on_link(&ctx, far).map(|h| h.dst), not_on_link);
        let h = hops.resolve(&ctx, far).unwrap();
        assert_eq!((h.port, h.on_link), (0, false));
        assert_eq!(hops.resolve_on_link(&ctx, far).map(|h| h.dst), not_on_link);
        // A backend on port 1's prefix is on-link, cached or not.
        let near = testkit::backend4(1).ip();
        for _ in 0..2 {
            let h = hops.resolve_on_link(&ctx, near).unwrap();
            assert_eq!(
                (h.port, h.on_link, h.dst_mac),
                (1, true, testkit::backend_mac(1))
            );
        }
    }
}

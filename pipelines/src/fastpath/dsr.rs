//! Direct server return at layer 2 (`dsr`), as IPVS "direct routing" does it.
//!
//! Only the Ethernet header changes: destination MAC = the chosen backend's (neighbor
//! lookup of the backend address), source MAC = the output port's (a sender on a link
//! must use its own MAC: switches learn from it, and the backend's ARP/ND caches must not
//! learn the client's router at our port). Everything from the first VLAN tag on is
//! untouched: tags, IP and UDP headers (addresses, ports, TTL / hop limit, checksums) and
//! payload. The TTL is neither checked nor decremented: the frame is switched to the
//! backend, not routed, and the backend delivers it locally (it holds the VIP on a
//! loopback interface). So no checksum work and no offload request.
//!
//! The backend must be on-link: the route to it must have the backend itself as next hop
//! (a connected prefix of an appliance port, or a static route through the backend);
//! otherwise the frame would reach a router that forwards it back to the VIP. That is
//! decided before the neighbor lookup (`dsr_not_on_link`); an unresolved backend MAC is
//! `ToHost(Resolve)` as for every mode.
//!
//! Room for an encapsulating variant: IPIP / GUE DSR (as Katran and GLB do) would be a
//! second transmit function beside [`transmit`], chosen by a per-listener `DsrEncap`
//! option (`L2` = this, `Ipip`, `Gue { port }`). It would route to the backend through
//! any next hop (no on-link requirement), prepend an outer IP (and UDP) header from an
//! appliance address to the backend, and set the outer checksums, which needs buffers
//! with headroom: the fast path's contract would grow from `&mut [u8]` to a buffer that
//! can be extended at the front (DPDK mbufs have 128 bytes of headroom), and the
//! verdict an offload request for the outer header. Flows, steering and tables stay as
//! they are: only the transmit step differs.

use std::net::IpAddr;

use super::hop::HopCache;
use super::rewrite::refuse_too_big;
use super::Context;
use crate::verdict::{DropReason, Verdict};
use crate::wire::Ethernet;

/// Sends `pkt` to the on-link backend `backend` by rewriting its MACs only; the packet is
/// modified only when the verdict is `Tx`. `l3` is the IP header's offset and `src` the
/// datagram's source (for the MTU check: the frame is switched unchanged, so it must fit
/// the backends' port).
#[inline]
pub(super) fn transmit(
    ctx: &Context<'_>,
    hops: &mut HopCache,
    pkt: &mut [u8],
    l3: usize,
    src: IpAddr,
    backend: IpAddr,
) -> Verdict {
    let hop = match hops.resolve_on_link(ctx, backend) {
        Ok(h) => h,
        Err(v) => return v,
    };
    let too_big = pkt.len() - l3 > usize::from(ctx.network.min_mtu())
        && pkt.len() - l3 > usize::from(ctx.network.mtu(hop.port));
    if too_big {
        if let Some(v) = refuse_too_big(pkt, l3, src, ctx.network.mtu(hop.port)) {
            return v;
        }
    }
    let Ok(mut eth) = Ethernet::new_checked(pkt) else {
        // Unreachable after a successful parse; never panic on it.
        return Verdict::Drop(DropReason::TruncatedEthernet);
    };
    eth.set_dst(hop.dst_mac.0);
    eth.set_src(hop.src_mac.0);
    if too_big {
        // IPv4 without DF: the appliance splits the frame.
        return Verdict::Fragment {
            port: hop.port,
            mtu: ctx.network.mtu(hop.port),
        };
    }
    Verdict::Tx {
        port: hop.port,
        offload: None,
    }
}

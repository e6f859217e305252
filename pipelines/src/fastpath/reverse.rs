//! Backend → client: a reply that matched a pinned flow by its own 4-tuple goes back
//! from the VIP (and, for FullNAT, to the client's address and port), and refreshes the
//! flow's idle timer. A preserve-client reply without a flow on this worker, from an
//! endpoint that serves one listener, is translated from the tables alone: the source
//! becomes that listener's VIP and port, the destination (the client) stays.

use std::net::{IpAddr, SocketAddr};

use super::forward::time_exceeded;
use super::rewrite::{ip_from16, transmit, Rewrite};
use super::{Context, FastPath, Timestamp};
use crate::counters::Traffic;
use crate::flow::REPLIED;
use crate::parse::ParsedUdp;
use crate::tables::Route;
use crate::verdict::{DropReason, Verdict};

impl FastPath {
    pub(super) fn reverse(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        p: &ParsedUdp,
        fi: u32,
    ) -> Verdict {
        if p.ttl <= 1 {
            return time_exceeded(p.flow.src);
        }
        let f = *self.flows.get(fi);
        let v6 = f.is_ipv6();
        let rw = Rewrite {
            src: ip_from16(&f.vip, v6),
            src_port: f.vip_port,
            dst: ip_from16(&f.client, v6),
            dst_port: f.client_port,
        };
        let v = transmit(ctx, &mut self.hops, pkt, p, &rw);
        if let Verdict::Tx { .. } = v {
            let fm = self.flows.get_mut(fi);
            fm.flags |= REPLIED;
            fm.expires = now.saturating_add(u64::from(f.idle_ms) * 1_000_000);
            let tables = ctx.tables;
            let li = match tables.listeners().get(f.listener_idx as usize) {
                Some(l) if l.vip == rw.src && l.port == f.vip_port => Some(f.listener_idx),
                _ => tables.lookup_listener(rw.src, f.vip_port),
            };
            if let Some(li) = li {
                let route = tables.listeners()[li as usize].route.as_ref();
                // The index the flow cached, checked by identity (as the forward path
                // does); a search only after a tables change moved it.
                let backend = route.and_then(|r| {
                    let bi = match r.backends.get(f.backend_idx as usize) {
                        Some(b) if b.addr.port() == f.backend_port && b.ip16 == f.backend => {
                            f.backend_idx
                        }
                        _ => r.find_backend(SocketAddr::new(
                            ip_from16(&f.backend, v6),
                            f.backend_port,
                        ))?,
                    };
                    Some(r.backends.get(bi as usize)?.counter_idx)
                });
                self.count_reply(li, route, backend, pkt.len() as u64);
            }
        }
        v
    }

    /// A preserve-client reply from backend `bi` of listener `li` (the only listener that
    /// endpoint serves), translated without a flow.
    pub(super) fn stateless_reply(
        &mut self,
        ctx: &Context<'_>,
        pkt: &mut [u8],
        p: &ParsedUdp,
        li: u32,
        bi: u32,
    ) -> Verdict {
        let tables = ctx.tables;
        let l = &tables.listeners()[li as usize];
        if !arrived_from(ctx, self.rx_port, p.flow.src) {
            // Not from where the backend is: a spoofed source, not a reply.
            return Verdict::Drop(DropReason::Stray);
        }
        if p.ttl <= 1 {
            return time_exceeded(p.flow.src);
        }
        let rw = Rewrite {
            src: l.vip,
            src_port: l.port,
            dst: p.flow.dst,
            dst_port: p.flow.dst_port,
        };
        let v = transmit(ctx, &mut self.hops, pkt, p, &rw);
        if let Verdict::Tx { .. } = v {
            self.counters.stateless_replies += 1;
            let route = l.route.as_ref();
            let backend = route
                .and_then(|r| r.backends.get(bi as usize))
                .map(|b| b.counter_idx);
            self.count_reply(li, route, backend, pkt.len() as u64);
        }
        v
    }

    /// Counts a reply of listener `li`, its `route` and the backend with counter index
    /// `backend`, when known.
    #[inline]
    fn count_reply(&mut self, li: u32, route: Option<&Route>, backend: Option<u32>, len: u64) {
        let e = &mut self.counters.entities;
        let bump = |t: Option<&mut Traffic>| {
            if let Some(t) = t {
                t.reply_packets += 1;
                t.reply_bytes += len;
            }
        };
        bump(e.listeners.get_mut(li as usize));
        if let Some(r) = route {
            bump(e.routes.get_mut(r.counter_idx as usize));
        }
        if let Some(b) = backend {
            bump(e.backends.get_mut(b as usize));
        }
    }
}

/// Whether a datagram from `src` arrived on `port`, the port the appliance reaches `src`
/// through (a reverse-path check: a client cannot pass off its datagrams as a backend's).
#[inline]
pub(super) fn arrived_from(ctx: &Context<'_>, port: u16, src: IpAddr) -> bool {
    ctx.network.route(src).is_some_and(|h| h.port == port)
}

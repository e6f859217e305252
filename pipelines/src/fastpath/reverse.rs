//! Backend → client: a reply that matched a pinned flow by its own 4-tuple goes back
//! from the VIP (and, for FullNAT, to the client's address and port), and refreshes the
//! flow's idle timer.

use std::net::IpAddr;

use super::rewrite::{ip_from16, transmit, Rewrite};
use super::{Context, FastPath, Timestamp};
use crate::flow::Flow;
use crate::parse::ParsedUdp;
use crate::tables::Tables;
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
            return Verdict::Drop(DropReason::TtlExpired);
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
            self.flows.get_mut(fi).expires = now.saturating_add(u64::from(f.idle_ms) * 1_000_000);
            self.count_reply(ctx.tables, &f, rw.src, pkt.len() as u64);
        }
        v
    }

    fn count_reply(&mut self, tables: &Tables, f: &Flow, vip: IpAddr, len: u64) {
        let li = match tables.listeners().get(f.listener_idx as usize) {
            Some(l) if l.vip == vip && l.port == f.vip_port => Some(f.listener_idx),
            _ => tables.lookup_listener(vip, f.vip_port),
        };
        let Some(li) = li.map(|i| i as usize) else {
            return;
        };
        let l = &tables.listeners()[li];
        let e = &mut self.counters.entities;
        let bump = |t: Option<&mut crate::counters::Traffic>| {
            if let Some(t) = t {
                t.reply_packets += 1;
                t.reply_bytes += len;
            }
        };
        bump(e.listeners.get_mut(li));
        if let Some(r) = &l.route {
            bump(e.routes.get_mut(r.counter_idx as usize));
            let addr =
                std::net::SocketAddr::new(ip_from16(&f.backend, f.is_ipv6()), f.backend_port);
            if let Some(bi) = r.find_backend(addr) {
                bump(
                    e.backends
                        .get_mut(r.backends[bi as usize].counter_idx as usize),
                );
            }
        }
    }
}

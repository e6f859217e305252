//! Which path a parsed packet takes, and the per-verdict counters.
//!
//! Order matters and is the fast path's contract: a (VIP, port) listener wins; then a
//! reply of a pinned flow (its own 4-tuple); then the SNAT address and pool: a port of
//! another worker's partition is that worker's flow (`Handoff`, the appliance passes the
//! untouched packet on), a port of this worker's partition without a flow is
//! `no_reverse_flow`; then own addresses (host); then another port of a VIP
//! (`no_listener`); anything else is `stray`. Non-UDP goes to the host when it is ARP,
//! ICMP or addressed to the appliance, and is dropped otherwise.

use super::{Context, FastPath, Timestamp};
use crate::flow::{Dir, Tuple};
use crate::parse::{Parsed, ParsedUdp};
use crate::verdict::{DropReason, HostReason, Verdict};

impl FastPath {
    pub(super) fn process_parsed(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        parsed: Parsed,
        hash: Option<u64>,
    ) -> Verdict {
        let len = pkt.len() as u64;
        self.counters.rx_packets += 1;
        self.counters.rx_bytes += len;
        let v = match parsed {
            Parsed::Udp(p) => {
                let t = super::packet_tuple(&p.flow);
                let h = hash.unwrap_or_else(|| self.flows.hash(&t));
                self.udp(ctx, now, pkt, &p, &t, h)
            }
            Parsed::Arp => Verdict::ToHost(HostReason::Arp),
            Parsed::Icmp => Verdict::ToHost(HostReason::Icmp),
            Parsed::OtherIp { dst } => {
                if ctx.network.is_own(dst) || ctx.tables.is_vip(dst) {
                    Verdict::ToHost(HostReason::OwnAddress)
                } else {
                    Verdict::Drop(DropReason::NotUdp)
                }
            }
            Parsed::Drop(r) => Verdict::Drop(r),
        };
        match v {
            Verdict::Tx { .. } => {
                self.counters.tx_packets += 1;
                self.counters.tx_bytes += len;
            }
            Verdict::ToHost(r) => self.counters.to_host[r.index()] += 1,
            Verdict::Drop(r) => self.counters.drops[r.index()] += 1,
            Verdict::Handoff { .. } => self.counters.handoff += 1,
        }
        v
    }

    /// A UDP datagram whose wire tuple is `t`, with `h = flows.hash(t)`.
    fn udp(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        p: &ParsedUdp,
        t: &Tuple,
        h: u64,
    ) -> Verdict {
        let k = &p.flow;
        if let Some(li) = ctx.tables.lookup_listener(k.dst, k.dst_port) {
            return self.forward(ctx, now, pkt, p, li, t, h);
        }
        let v6 = p.is_ipv6();
        if let Some(fi) = self
            .flows
            .lookup_hashed(h, t, Dir::Reverse, self.snat.of(v6))
        {
            if self.flows.get(fi).expires > now {
                return self.reverse(ctx, now, pkt, p, fi);
            }
            self.expire(fi);
        }
        if ctx.network.snat_addr(v6) == Some(k.dst) {
            // FullNAT replies are steered by SNAT port: RSS does not know which worker
            // allocated it, so a reply may arrive here while its flow lives elsewhere.
            let pool = ctx.network.snat().ports;
            match pool.owner(k.dst_port, self.params.workers) {
                Some(worker) if worker != self.params.worker_id => {
                    return Verdict::Handoff { worker }
                }
                Some(_) => return Verdict::Drop(DropReason::NoReverseFlow),
                None => {}
            }
        }
        if ctx.network.is_own(k.dst) {
            return Verdict::ToHost(HostReason::OwnAddress);
        }
        if ctx.tables.is_vip(k.dst) {
            return Verdict::Drop(DropReason::NoListener);
        }
        Verdict::Drop(DropReason::Stray)
    }
}

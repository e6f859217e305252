//! Which path a packet takes, and the per-verdict counters.
//!
//! First the link layer, as a NIC's MAC filter would: a frame is for us when its
//! destination is the input port's MAC, broadcast, or a multicast group the appliance
//! joined (IPv6 all-nodes and the solicited-node groups of the port's addresses, the SNAT
//! address and the VIPs, precomputed in `Network` and `Tables`); anything else is
//! `not_for_us`, so a port that sees every frame on its link never forwards another host's
//! traffic. The unicast test is one 6-byte compare; only multicast frames search the groups.
//!
//! Order matters and is the fast path's contract: a (VIP, port) listener wins; then a
//! reply of a pinned flow (its own 4-tuple); then the SNAT address and pool: a port of
//! another worker's partition is that worker's flow (`Handoff`, the appliance passes the
//! untouched packet on), a port of this worker's partition without a flow is
//! `no_reverse_flow`; then own addresses (host); then another port of a VIP
//! (`no_listener`); then a datagram from a preserve-client backend endpoint: translated
//! from the tables when the endpoint serves one listener, else handed to the client's
//! owner worker (`no_reverse_flow` if that is this one); anything else is `stray`.
//! Non-UDP goes to the host when it is ARP, ICMP or addressed to the appliance, and is
//! dropped otherwise.

use std::net::IpAddr;

use super::{Context, FastPath, Timestamp};
use crate::checksum;
use crate::flow::{Dir, Tuple};
use crate::net::MacAddr;
use crate::parse::{Parsed, ParsedUdp};
use crate::tables::EndpointOwner;
use crate::verdict::{DropReason, HostReason, Verdict};

/// A MAC as one integer (low 48 bits), so the per-packet unicast test is one compare.
/// [`NO_MAC`] never equals a key.
#[inline]
pub(super) fn mac_key(mac: &[u8; 6]) -> u64 {
    let mut b = [0u8; 8];
    b[..6].copy_from_slice(mac);
    u64::from_le_bytes(b)
}

/// Whether the datagram's UDP checksum is unfinished (see [`checksum::is_unfinished_udp`]).
#[inline]
fn unfinished_checksum(pkt: &[u8], p: &ParsedUdp) -> bool {
    let l4 = usize::from(p.l4_off);
    pkt.get(l4..l4 + usize::from(p.udp_len))
        .is_some_and(|udp| checksum::is_unfinished_udp(p.flow.src, p.flow.dst, udp))
}

/// The key of "no port": no frame matches it.
pub(super) const NO_MAC: u64 = u64::MAX;

impl FastPath {
    /// Whether the frame's destination MAC is for this appliance on the burst's input
    /// port. Frames too short to hold one are left to the parser (`truncated_ethernet`).
    #[inline]
    pub(super) fn for_us(&self, ctx: &Context<'_>, pkt: &[u8]) -> bool {
        let Some(dst) = pkt.first_chunk::<6>() else {
            return true;
        };
        if mac_key(dst) == self.rx_mac {
            return true;
        }
        let dst = MacAddr(*dst);
        dst.is_multicast()
            && (dst == MacAddr::BROADCAST
                || ctx.network.joins(self.rx_port, dst)
                || ctx.tables.joins(dst))
    }

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
            Parsed::Udp(p) if self.check_unfinished && unfinished_checksum(pkt, &p) => {
                Verdict::Drop(DropReason::UnfinishedUdpChecksum)
            }
            Parsed::Udp(p) => {
                let t = super::packet_tuple(&p.flow);
                let h = hash.unwrap_or_else(|| self.flows.hash(&t));
                self.udp(ctx, now, pkt, &p, &t, h)
            }
            Parsed::Fragment => self.fragment(ctx, now, pkt),
            Parsed::Arp => Verdict::ToHost(HostReason::Arp),
            Parsed::Icmp => self.icmp(ctx, now, pkt),
            Parsed::OtherIp { dst } => {
                if ctx.network.is_own(dst) || ctx.tables.is_vip(dst) {
                    Verdict::ToHost(HostReason::OwnAddress)
                } else {
                    Verdict::Drop(DropReason::NotUdp)
                }
            }
            Parsed::Drop(r) => Verdict::Drop(r),
        };
        if let Verdict::Tx { .. } = v {
            self.counters.tx_packets += 1;
            self.counters.tx_bytes += len;
        } else {
            self.count_other(v, len);
        }
        v
    }

    /// Counts a verdict (every one but `Tx` comes here: out of line, so the forwarding
    /// paths stay compact).
    #[inline(never)]
    fn count_other(&mut self, v: Verdict, len: u64) {
        *self.verdict_counter(v) += 1;
        if let Verdict::Tx { .. } | Verdict::Fragment { .. } = v {
            self.counters.tx_bytes += len;
        }
    }

    /// Takes back the counting of a packet and its verdict `v` (a first fragment runs
    /// through [`FastPath::process_parsed`] inside its own processing, which counts it).
    pub(super) fn uncount(&mut self, v: Verdict, len: u64) {
        self.counters.rx_packets -= 1;
        self.counters.rx_bytes -= len;
        *self.verdict_counter(v) -= 1;
        if let Verdict::Tx { .. } | Verdict::Fragment { .. } = v {
            self.counters.tx_bytes -= len;
        }
    }

    fn verdict_counter(&mut self, v: Verdict) -> &mut u64 {
        let c = &mut self.counters;
        match v {
            Verdict::Tx { .. } | Verdict::Fragment { .. } => &mut c.tx_packets,
            Verdict::Hold { .. } => &mut c.fragments_held,
            Verdict::ToHost(r) => &mut c.to_host[r.index()],
            Verdict::Drop(r) => &mut c.drops[r.index()],
            Verdict::Handoff { .. } => &mut c.handoff,
        }
    }

    /// A UDP datagram whose wire tuple is `t`, with `h = flows.hash(t)`. (A datagram's
    /// first fragment comes this way too, through `process_parsed`: one call site, so the
    /// forwarding paths stay inlined.)
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
        if let Some(li) = self.listener_of(ctx, k.dst, k.dst_port) {
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
        self.no_flow(ctx, pkt, p)
    }

    /// The listener serving (`dst`, `port`), remembered for the rest of the burst: the
    /// datagrams of a burst mostly share their destination, and one compare is cheaper
    /// than the listener index's hash and probe.
    #[inline]
    fn listener_of(&mut self, ctx: &Context<'_>, dst: IpAddr, port: u16) -> Option<u32> {
        if let Some((ip, p, li)) = self.last_listener {
            if p == port && ip == dst {
                return li;
            }
        }
        let li = ctx.tables.lookup_listener(dst, port);
        self.last_listener = Some((dst, port, li));
        li
    }

    /// A UDP datagram that is neither for a listener nor a reply of a flow here. Kept out
    /// of line so the established paths stay compact; with several workers, the
    /// preserve-client replies that land away from their flow come this way.
    #[inline(never)]
    fn no_flow(&mut self, ctx: &Context<'_>, pkt: &mut [u8], p: &ParsedUdp) -> Verdict {
        let k = &p.flow;
        if ctx.network.snat_addr(p.is_ipv6()) == Some(k.dst) {
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
        match ctx.tables.lookup_endpoint(k.src, k.src_port) {
            Some(EndpointOwner::Listener { listener, backend }) => {
                self.stateless_reply(ctx, pkt, p, listener, backend)
            }
            // Only the flow knows the VIP; it lives on the client's owner.
            Some(EndpointOwner::Shared) => match self.elsewhere(k.dst, k.dst_port) {
                Some(worker) => Verdict::Handoff { worker },
                None => Verdict::Drop(DropReason::NoReverseFlow),
            },
            None => Verdict::Drop(DropReason::Stray),
        }
    }
}

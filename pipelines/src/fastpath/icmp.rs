//! ICMP errors about flows, both ways (RFC 5508, RFC 4787 REQ-11..13, RFC 4443).
//!
//! An error is matched by the datagram it quotes, which udplb itself sent, so its
//! addresses are the rewritten ones:
//! - **From the backends' side, about a forwarded datagram** (quoted: SNAT:port →
//!   backend for FullNAT, client → backend for preserve-client). The reply tuple (the
//!   quote reversed) finds the flow; the error goes to the client as if about the
//!   datagram the client sent: outer VIP → client, quoted client:port → VIP:port. A port
//!   or host unreachable counts for the backend ([`crate::counters::Traffic::icmp_unreachable`],
//!   before translating). Without a flow here: FullNAT → handed to the SNAT port's worker
//!   (or `icmp_no_flow` on it); preserve-client → translated from the tables when the
//!   endpoint serves one listener, handed to the client's owner when shared.
//! - **From the clients' side, about a reply** (quoted: VIP:port → client). The forward
//!   tuple (the quote reversed) finds the flow; the error goes to the backend as if about
//!   the reply it sent: FullNAT outer SNAT → backend, quoted backend:port → SNAT:port;
//!   preserve-client outer (source kept) → backend, quoted backend:port → client:port;
//!   DSR: the frame is switched to the backend unchanged (it holds the VIP and sent the
//!   reply). Without a flow here: preserve-client and DSR pick the backend from the
//!   tables as a new flow would (steered listeners: handed to the client's owner first);
//!   FullNAT flows live where their SNAT port was allocated, which the quote does not
//!   say: with several workers the error visits them in turn from a start worker its
//!   quote hashes to, each handing it on marked (as fragments are, see
//!   [`super::steer`]) until one has the flow or all have been asked (`icmp_no_flow`).
//! - **From a DSR backend about a forwarded datagram** (quoted: client → VIP, sent to
//!   the client): only reaches udplb when the backend routes through it; routed on
//!   unchanged (TTL − 1, MACs) when a DSR flow matches, and counted as the backend's.
//!
//! Checks: the ICMP checksum over the whole message (`icmp_bad_checksum`); the outer
//! destination must be where the flow's datagrams came from (SNAT address, client or
//! VIP), and the error must arrive on the port that faces the side it claims to come
//! from (`icmp_mismatch`); the outer source may be any router on the path. ICMP never
//! deletes or refreshes a flow (RFC 4787 REQ-12); only errors quoting UDP are translated,
//! so never ICMP about ICMP. The outer TTL is decremented (`ttl_expired` at ≤ 1, without
//! an error about an error); one that no longer fits the port's MTU is `too_big`.
//! Errors that match nothing go to the host when addressed to the appliance itself
//! (errors about its own datagrams, such as health probes: those must use a source port
//! outside the SNAT pool), else `icmp_no_flow`.

use std::net::{IpAddr, SocketAddr};

use super::hop::Hop;
use super::reverse::arrived_from;
use super::rewrite::ip_from16;
use super::{Context, FastPath, Timestamp};
use crate::flow::{Dir, Flow, Tuple};
use crate::hash::{hash_words, ip16, ip_words};
use crate::icmp::{self, IcmpError, Translation};
use crate::parse::FlowKey;
use crate::spec::NatMode;
use crate::tables::EndpointOwner;
use crate::verdict::{DropReason, HostReason, Verdict};

/// Seed of the start worker of a search.
const SEARCH_SEED: u64 = 0x6963_6d70_0000_0001;

impl FastPath {
    /// An ICMP or ICMPv6 packet: an error about a flow is translated, anything else goes
    /// to the host as before.
    #[cold]
    #[inline(never)]
    pub(super) fn icmp(&mut self, ctx: &Context<'_>, now: Timestamp, pkt: &mut [u8]) -> Verdict {
        let Some(e) = icmp::parse_error(pkt) else {
            return Verdict::ToHost(HostReason::Icmp);
        };
        if !icmp::checksum_ok(pkt, &e) {
            return Verdict::Drop(DropReason::IcmpBadChecksum);
        }
        let q = e.inner;
        if let Some(li) = ctx.tables.lookup_listener(q.src, q.src_port) {
            return self.icmp_about_reply(ctx, now, pkt, &e, li);
        }
        if ctx.tables.lookup_listener(q.dst, q.dst_port).is_some() {
            return self.icmp_about_dsr_request(ctx, now, pkt, &e);
        }
        self.icmp_about_request(ctx, now, pkt, &e)
    }

    /// From the backends' side, about a datagram udplb forwarded to a backend.
    fn icmp_about_request(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        e: &IcmpError,
    ) -> Verdict {
        let q = e.inner;
        let v6 = e.is_ipv6();
        let reply = Tuple {
            src: ip16(q.dst),
            dst: ip16(q.src),
            src_port: q.dst_port,
            dst_port: q.src_port,
        };
        if let Some(f) = self.live_flow(&reply, Dir::Reverse, v6, now) {
            if e.dst != q.src || !arrived_from(ctx, self.rx_port, q.dst) {
                return Verdict::Drop(DropReason::IcmpMismatch);
            }
            let (vip, client) = (ip_from16(&f.vip, v6), ip_from16(&f.client, v6));
            let t = Translation {
                src: vip,
                dst: client,
                inner: FlowKey {
                    src: client,
                    dst: vip,
                    src_port: f.client_port,
                    dst_port: f.vip_port,
                },
                decrement_ttl: true,
            };
            if e.is_unreachable() {
                let backend = SocketAddr::new(q.dst, q.dst_port);
                self.count_unreachable(ctx, f.listener_idx, vip, f.vip_port, backend);
            }
            return self.send_icmp(ctx, pkt, e, &t);
        }
        let pool = ctx.network.snat().ports;
        if ctx.network.snat_addr(v6) == Some(q.src) && pool.contains(q.src_port) {
            return match pool.owner(q.src_port, self.params.workers) {
                Some(w) if w != self.params.worker_id => Verdict::Handoff { worker: w },
                _ => Verdict::Drop(DropReason::IcmpNoFlow),
            };
        }
        if ctx.network.is_own(q.src) {
            // About the appliance's own datagram (a health probe, the slow path).
            return Verdict::ToHost(HostReason::Icmp);
        }
        match ctx.tables.lookup_endpoint(q.dst, q.dst_port) {
            Some(EndpointOwner::Listener { listener, .. }) => {
                if e.dst != q.src || !arrived_from(ctx, self.rx_port, q.dst) {
                    return Verdict::Drop(DropReason::IcmpMismatch);
                }
                let l = &ctx.tables.listeners()[listener as usize];
                let t = Translation {
                    src: l.vip,
                    dst: q.src,
                    inner: FlowKey {
                        dst: l.vip,
                        dst_port: l.port,
                        ..q
                    },
                    decrement_ttl: true,
                };
                if e.is_unreachable() {
                    let backend = SocketAddr::new(q.dst, q.dst_port);
                    self.count_unreachable(ctx, listener, l.vip, l.port, backend);
                }
                self.send_icmp(ctx, pkt, e, &t)
            }
            Some(EndpointOwner::Shared) => match self.elsewhere(q.src, q.src_port) {
                Some(worker) => Verdict::Handoff { worker },
                None => Verdict::Drop(DropReason::IcmpNoFlow),
            },
            None => self.unmatched(ctx, e),
        }
    }

    /// From the clients' side, about a reply udplb sent from listener `li`'s VIP.
    fn icmp_about_reply(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        e: &IcmpError,
        li: u32,
    ) -> Verdict {
        let q = e.inner;
        let v6 = e.is_ipv6();
        if e.dst != q.src || !arrived_from(ctx, self.rx_port, q.dst) {
            return Verdict::Drop(DropReason::IcmpMismatch);
        }
        // The client's datagrams: client:port → VIP:port.
        let request = FlowKey {
            src: q.dst,
            dst: q.src,
            src_port: q.dst_port,
            dst_port: q.src_port,
        };
        let forward = super::packet_tuple(&request);
        let tables = ctx.tables;
        let l = &tables.listeners()[li as usize];
        let (mode, backend, snat_port) = match self.live_flow(&forward, Dir::Forward, v6, now) {
            Some(f) => (
                f.mode,
                SocketAddr::new(ip_from16(&f.backend, v6), f.backend_port),
                f.snat_port,
            ),
            None => {
                let Some(route) = &l.route else {
                    return Verdict::Drop(DropReason::IcmpNoFlow);
                };
                match l.nat_mode {
                    NatMode::FullNat => return self.search(ctx, pkt, &forward),
                    NatMode::PreserveClient if l.steered => {
                        if let Some(worker) = self.elsewhere(request.src, request.src_port) {
                            return Verdict::Handoff { worker };
                        }
                        return Verdict::Drop(DropReason::IcmpNoFlow);
                    }
                    mode => match self.choose(tables, l, li, route, &request) {
                        Ok(bi) => (mode, route.backends[bi as usize].addr, 0),
                        Err(_) => return Verdict::Drop(DropReason::IcmpNoFlow),
                    },
                }
            }
        };
        let t = match mode {
            NatMode::Dsr => return self.switch_icmp(ctx, pkt, e, backend.ip()),
            NatMode::FullNat => {
                let Some(snat) = ctx.network.snat_addr(v6) else {
                    return Verdict::Drop(DropReason::NoSnatAddress);
                };
                Translation {
                    src: snat,
                    dst: backend.ip(),
                    inner: FlowKey {
                        src: backend.ip(),
                        dst: snat,
                        src_port: backend.port(),
                        dst_port: snat_port,
                    },
                    decrement_ttl: true,
                }
            }
            NatMode::PreserveClient => Translation {
                src: e.src,
                dst: backend.ip(),
                inner: FlowKey {
                    src: backend.ip(),
                    src_port: backend.port(),
                    ..q
                },
                decrement_ttl: true,
            },
        };
        self.send_icmp(ctx, pkt, e, &t)
    }

    /// About a client → VIP datagram, from the backends' side: a DSR backend's error,
    /// routed on to the client unchanged.
    fn icmp_about_dsr_request(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        e: &IcmpError,
    ) -> Verdict {
        let v6 = e.is_ipv6();
        let forward = super::packet_tuple(&e.inner);
        let Some(f) = self.live_flow(&forward, Dir::Forward, v6, now) else {
            return Verdict::Drop(DropReason::IcmpNoFlow);
        };
        if f.mode != NatMode::Dsr {
            return Verdict::Drop(DropReason::IcmpNoFlow);
        }
        let backend = SocketAddr::new(ip_from16(&f.backend, v6), f.backend_port);
        if e.dst != e.inner.src || !arrived_from(ctx, self.rx_port, backend.ip()) {
            return Verdict::Drop(DropReason::IcmpMismatch);
        }
        if e.is_unreachable() {
            let (vip, port) = (e.inner.dst, e.inner.dst_port);
            self.count_unreachable(ctx, f.listener_idx, vip, port, backend);
        }
        let t = Translation {
            src: e.src,
            dst: e.dst,
            inner: e.inner,
            decrement_ttl: true,
        };
        self.send_icmp(ctx, pkt, e, &t)
    }

    /// A live (not expired) flow by one of its tuples; ICMP never refreshes it.
    fn live_flow(&self, t: &Tuple, dir: Dir, v6: bool, now: Timestamp) -> Option<Flow> {
        let fi = self.flows.lookup(t, dir, self.snat.of(v6))?;
        let f = *self.flows.get(fi);
        (f.expires > now).then_some(f)
    }

    /// The FullNAT flow of a client-side error is on some worker: ask them in turn, from
    /// a start worker the flow's forward tuple hashes to.
    fn search(&self, ctx: &Context<'_>, pkt: &mut [u8], forward: &Tuple) -> Verdict {
        let (me, n) = (self.params.worker_id, self.params.workers);
        if n < 2 {
            return Verdict::Drop(DropReason::IcmpNoFlow);
        }
        let [a, b] = ip_words(&forward.src);
        let h = hash_words(SEARCH_SEED, &[a, b, u64::from(forward.src_port)]);
        let start = u16::try_from(h % u64::from(n)).unwrap_or(0);
        let marked = self.marked(pkt);
        let next = if !marked && me != start {
            start
        } else {
            (me + 1) % n
        };
        if next == start && (marked || me == start) {
            return Verdict::Drop(DropReason::IcmpNoFlow);
        }
        self.mark(ctx, pkt);
        Verdict::Handoff { worker: next }
    }

    /// Nothing matched: the appliance's own business, or a drop.
    fn unmatched(&self, ctx: &Context<'_>, e: &IcmpError) -> Verdict {
        if ctx.network.is_own(e.dst) {
            Verdict::ToHost(HostReason::Icmp)
        } else {
            Verdict::Drop(DropReason::IcmpNoFlow)
        }
    }

    /// Rewrites the error to `t` and routes it to `t.dst`.
    fn send_icmp(
        &mut self,
        ctx: &Context<'_>,
        pkt: &mut [u8],
        e: &IcmpError,
        t: &Translation,
    ) -> Verdict {
        if e.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        match self.hops.resolve(ctx, t.dst) {
            Ok(hop) => self.emit_icmp(ctx, pkt, e, &hop, Some(t)),
            Err(v) => v,
        }
    }

    /// A client-side error about a DSR reply: switched unchanged to the backend, which
    /// holds the VIP (MACs only, like the client's datagrams).
    fn switch_icmp(
        &mut self,
        ctx: &Context<'_>,
        pkt: &mut [u8],
        e: &IcmpError,
        backend: IpAddr,
    ) -> Verdict {
        match self.hops.resolve_on_link(ctx, backend) {
            Ok(hop) => self.emit_icmp(ctx, pkt, e, &hop, None),
            Err(v) => v,
        }
    }

    /// Sends an ICMP error to `hop`, rewritten by `t` (translated) or unchanged (switched):
    /// an error larger than the out port's MTU is dropped (no error about an error), the
    /// MACs are set and it is counted as translated.
    fn emit_icmp(
        &mut self,
        ctx: &Context<'_>,
        pkt: &mut [u8],
        e: &IcmpError,
        hop: &Hop,
        t: Option<&Translation>,
    ) -> Verdict {
        if pkt.len() - usize::from(e.l3_off) > usize::from(ctx.network.mtu(hop.port)) {
            return Verdict::Drop(DropReason::TooBig);
        }
        if t.is_some_and(|t| icmp::rewrite(pkt, e, t).is_none()) {
            return Verdict::Drop(DropReason::TruncatedIp);
        }
        pkt[..6].copy_from_slice(&hop.dst_mac.0);
        pkt[6..12].copy_from_slice(&hop.src_mac.0);
        self.counters.icmp_translated += 1;
        Verdict::Tx {
            port: hop.port,
            offload: None,
        }
    }

    /// Counts a port / host unreachable for `backend` of the listener at `li` (checked
    /// against `vip`:`port`, as flows cache the index).
    fn count_unreachable(
        &mut self,
        ctx: &Context<'_>,
        li: u32,
        vip: IpAddr,
        port: u16,
        backend: SocketAddr,
    ) {
        let tables = ctx.tables;
        let li = match tables.listeners().get(li as usize) {
            Some(l) if l.vip == vip && l.port == port => li,
            _ => match tables.lookup_listener(vip, port) {
                Some(li) => li,
                None => return,
            },
        };
        let Some(route) = &tables.listeners()[li as usize].route else {
            return;
        };
        let Some(bi) = route.find_backend(backend) else {
            return;
        };
        let ci = route.backends[bi as usize].counter_idx as usize;
        if let Some(t) = self.counters.entities.backends.get_mut(ci) {
            t.icmp_unreachable += 1;
        }
    }
}

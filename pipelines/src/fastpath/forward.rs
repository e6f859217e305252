//! Client → backend: the flow-table hit that keeps a flow on its backend, or the Maglev
//! pick, guard and SNAT port of a new flow.
//!
//! Design note: the flow record caches the backend's index for the tables it was last
//! used with, and the backend's address is its identity; after a tables swap the index
//! is re-checked against the address (one compare), and only a backend that left the
//! route makes the flow re-pick (`flows_repinned`), keeping its SNAT port. A FullNAT flow
//! cannot be served without a record (its SNAT port and replies need one), so when the
//! table is full or the guard refuses, FullNAT drops (`fullnat_no_state`) while
//! preserve-client and DSR forward statelessly by Maglev.
//!
//! A steered listener's datagrams are handed to their client's owner worker before any
//! pick (see [`super::steer`]); the rewrite itself is per mode: FullNAT and
//! preserve-client in `rewrite`, DSR in `dsr`.

use std::net::IpAddr;

use super::rewrite::{ip_from16, transmit, Rewrite};
use super::steer::client_owner;
use super::{dsr, release, Context, FastPath, Timestamp};
use crate::counters::{EntityCounters, Traffic};
use crate::flow::{Dir, Flow, Tuple, IPV6, REPLIED};
use crate::hash::{hash_words, ip16, ip_words};
use crate::maglev;
use crate::parse::{FlowKey, ParsedUdp};
use crate::spec::{HashKey, NatMode};
use crate::tables::{Backend, Listener, Route, Tables};
use crate::verdict::{DropReason, HostReason, Verdict};

/// Whether `ip` may receive an ICMP error (RFC 1122 §3.2.2, RFC 4443 §2.4 e).
pub(super) fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
    }
}

/// A datagram whose TTL / hop limit would reach 0: time exceeded from the slow path, when
/// its source can receive an ICMP error.
#[cold]
pub(super) fn time_exceeded(src: IpAddr) -> Verdict {
    if is_unicast(src) {
        Verdict::ToHost(HostReason::TimeExceeded)
    } else {
        Verdict::Drop(DropReason::TtlExpired)
    }
}

/// The Maglev hash of a flow under a hash-key mode, with the tables' seed. Identical on
/// every appliance given the same configuration.
#[inline]
pub fn flow_hash(seed: u64, mode: HashKey, k: &FlowKey) -> u64 {
    let [a, b] = ip_words(&ip16(k.src));
    match mode {
        HashKey::FiveTuple => {
            let [c, d] = ip_words(&ip16(k.dst));
            hash_words(
                seed,
                &[
                    a,
                    b,
                    c,
                    d,
                    u64::from(k.src_port) << 16 | u64::from(k.dst_port),
                ],
            )
        }
        HashKey::SourceIpPort => hash_words(seed, &[a, b, u64::from(k.src_port)]),
        HashKey::SourceIp => hash_words(seed, &[a, b]),
    }
}

/// The Maglev slot value a new flow `k` of `listener` gets (backend index + 1,
/// [`maglev::DROP`] or [`maglev::NO_BACKEND`]): "where would this flow go".
pub fn pick(tables: &Tables, listener: &Listener, k: &FlowKey) -> u32 {
    listener.route.as_ref().map_or(maglev::NO_BACKEND, |r| {
        r.maglev
            .lookup(flow_hash(tables.params().maglev_seed, listener.hash_key, k))
    })
}

impl FastPath {
    /// Maglev choice for a new (or re-picked) flow of listener `li`, skipping excluded
    /// (unhealthy) backends: `Ok(backend index)` or the verdict.
    pub(super) fn choose(
        &self,
        tables: &Tables,
        l: &Listener,
        li: u32,
        route: &Route,
        k: &FlowKey,
    ) -> Result<u32, Verdict> {
        let h = flow_hash(tables.params().maglev_seed, l.hash_key, k);
        match self.excl.pick(li, route, h) {
            maglev::NO_BACKEND => Err(Verdict::Drop(DropReason::NoBackend)),
            maglev::DROP if is_unicast(k.src) => Err(Verdict::ToHost(HostReason::Reject)),
            maglev::DROP => Err(Verdict::Drop(DropReason::DroppedShare)),
            v => Ok(v - 1),
        }
    }

    /// The worker that owns the flows of client `ip`:`port` when it is not this one
    /// (steered listeners, see [`super::steer`]).
    #[inline]
    pub(super) fn elsewhere(&self, ip: IpAddr, port: u16) -> Option<u16> {
        let (me, n) = (self.params.worker_id, self.params.workers);
        if n < 2 {
            return None;
        }
        let owner = client_owner(ip, port, n);
        (owner != me).then_some(owner)
    }

    /// A datagram of a steered listener: `Handoff` to its client's owner unless that is
    /// this worker. A flow held here from before the listener was steered is forgotten,
    /// so the owner takes over. Out of line and cold: only listeners with a shared
    /// endpoint come here, and the handoff costs far more than the branch (measured: the
    /// other modes' established path is ≈ 6 instructions shorter this way).
    #[cold]
    #[inline(never)]
    fn steer(&mut self, k: &FlowKey, v6: bool, held: Option<u32>) -> Option<Verdict> {
        let worker = self.elsewhere(k.src, k.src_port)?;
        if let Some(fi) = held {
            self.flows.remove(fi, self.snat.of(v6));
        }
        Some(Verdict::Handoff { worker })
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn forward(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        p: &ParsedUdp,
        li: u32,
        ft: &Tuple,
        h: u64,
    ) -> Verdict {
        let tables = ctx.tables;
        let l = &tables.listeners()[li as usize];
        let Some(route) = &l.route else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        let k = &p.flow;
        let v6 = p.is_ipv6();
        let mut hit = None;
        if let Some(fi) = self
            .flows
            .lookup_hashed(h, ft, Dir::Forward, self.snat.of(v6))
        {
            let f = *self.flows.get(fi);
            if f.expires <= now {
                self.expire(fi);
            } else {
                hit = Some((fi, f));
            }
        }
        // A flow keeps the mode it was created with; a new one takes the listener's.
        let mode = hit.as_ref().map_or(l.nat_mode, |(_, f)| f.mode);
        if mode == NatMode::PreserveClient && l.steered {
            if let Some(v) = self.steer(k, v6, hit.map(|(fi, _)| fi)) {
                return v;
            }
        }
        // DSR switches the frame to the backend at layer 2: no routing, no TTL.
        if p.ttl <= 1 && mode != NatMode::Dsr {
            return time_exceeded(k.src);
        }
        let (bi, snat_port) = match hit {
            Some((fi, f)) => {
                let cached = route
                    .backends
                    .get(f.backend_idx as usize)
                    .filter(|b| b.ip16 == f.backend && b.addr.port() == f.backend_port)
                    .map(|_| f.backend_idx);
                let found = cached.or_else(|| {
                    route.find_backend(std::net::SocketAddr::new(
                        ip_from16(&f.backend, v6),
                        f.backend_port,
                    ))
                });
                let bi = match found {
                    Some(bi) if !self.excl.excludes(li, route, bi) => bi,
                    found => {
                        // The backend left the route, or is unhealthy: re-pick under the
                        // current tables and health.
                        let bi = match self.choose(tables, l, li, route, k) {
                            Ok(bi) => bi,
                            Err(v) => return v,
                        };
                        let b = route.backends[bi as usize].addr;
                        self.flows
                            .repin(fi, ip16(b.ip()), b.port(), self.snat.of(v6));
                        if found.is_some() {
                            self.counters.flows_repinned_unhealthy += 1;
                        } else {
                            self.counters.flows_repinned += 1;
                        }
                        bi
                    }
                };
                let b = &route.backends[bi as usize];
                let fm = self.flows.get_mut(fi);
                fm.backend_idx = bi;
                fm.listener_idx = li;
                fm.idle_ms = b.replied_ms;
                let idle = b.timeouts_ns[usize::from(fm.flags & REPLIED != 0)];
                fm.expires = now.saturating_add(idle);
                (bi, f.snat_port)
            }
            None => match self.new_flow(ctx, now, l, route, li, p, ft) {
                Ok(x) => x,
                Err(v) => return v,
            },
        };
        let b = &route.backends[bi as usize];
        let v = match mode {
            NatMode::FullNat => {
                let Some(snat) = ctx.network.snat_addr(v6) else {
                    return Verdict::Drop(DropReason::NoSnatAddress);
                };
                let rw = Rewrite {
                    src: snat,
                    src_port: snat_port,
                    dst: b.addr.ip(),
                    dst_port: b.addr.port(),
                };
                transmit(ctx, &mut self.hops, pkt, p, &rw)
            }
            NatMode::PreserveClient => {
                let rw = Rewrite {
                    src: k.src,
                    src_port: k.src_port,
                    dst: b.addr.ip(),
                    dst_port: b.addr.port(),
                };
                transmit(ctx, &mut self.hops, pkt, p, &rw)
            }
            NatMode::Dsr => dsr::transmit(
                ctx,
                &mut self.hops,
                pkt,
                usize::from(p.l3_off),
                k.src,
                b.addr.ip(),
            ),
        };
        if let Verdict::Tx { .. } = v {
            let len = pkt.len() as u64;
            for t in entity_traffic(&mut self.counters.entities, li, route, b) {
                t.packets += 1;
                t.bytes += len;
            }
        }
        v
    }

    /// Creates the flow for a first packet: Maglev pick, guard, SNAT port, insert.
    /// Returns (backend index, snat port) or the verdict. The flow takes the listener's
    /// NAT mode.
    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        l: &Listener,
        route: &Route,
        li: u32,
        p: &ParsedUdp,
        ft: &Tuple,
    ) -> Result<(u32, u16), Verdict> {
        let v6 = p.is_ipv6();
        let bi = self.choose(ctx.tables, l, li, route, &p.flow)?;
        let b = &route.backends[bi as usize];
        let fullnat = l.nat_mode == NatMode::FullNat;
        if fullnat && ctx.network.snat_addr(v6).is_none() {
            return Err(Verdict::Drop(DropReason::NoSnatAddress));
        }
        let mut stateful = self.guard.allow(now);
        if !stateful {
            self.counters.rate_limited += 1;
        }
        let mut snat_port = 0;
        if stateful {
            if fullnat {
                let pool = if v6 { &mut self.snat6 } else { &mut self.snat4 };
                snat_port = pool
                    .alloc()
                    .ok_or(Verdict::Drop(DropReason::SnatExhausted))?;
            }
            let flow = Flow {
                client: ft.src,
                vip: ft.dst,
                backend: b.ip16,
                client_port: ft.src_port,
                vip_port: ft.dst_port,
                backend_port: b.addr.port(),
                snat_port,
                expires: now.saturating_add(b.timeouts_ns[0]),
                idle_ms: b.replied_ms,
                listener_idx: li,
                backend_idx: bi,
                flags: if v6 { IPV6 } else { 0 },
                mode: l.nat_mode,
            };
            let (snat4, snat6, expired) = (
                &mut self.snat4,
                &mut self.snat6,
                &mut self.counters.flows_expired,
            );
            let inserted = self.flows.insert(flow, &self.snat, now, &mut |f: &Flow| {
                release(snat4, snat6, expired, f)
            });
            match inserted {
                Ok(_) => self.counters.flows_created += 1,
                Err(_) => {
                    if fullnat {
                        let pool = if v6 { &mut self.snat6 } else { &mut self.snat4 };
                        pool.release(snat_port);
                    }
                    self.counters.table_full += 1;
                    stateful = false;
                }
            }
        }
        if !stateful && fullnat {
            return Err(Verdict::Drop(DropReason::FullNatNoState));
        }
        for t in entity_traffic(&mut self.counters.entities, li, route, b) {
            t.flows_created += 1;
        }
        Ok((bi, snat_port))
    }
}

/// The traffic counters a forwarded datagram moves: its listener's, route's and backend's.
#[inline]
fn entity_traffic<'a>(
    e: &'a mut EntityCounters,
    li: u32,
    route: &Route,
    b: &Backend,
) -> impl Iterator<Item = &'a mut Traffic> {
    [
        e.listeners.get_mut(li as usize),
        e.routes.get_mut(route.counter_idx as usize),
        e.backends.get_mut(b.counter_idx as usize),
    ]
    .into_iter()
    .flatten()
}

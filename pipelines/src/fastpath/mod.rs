//! One fast-path worker: its flow table, SNAT ports, new-flow guard and counters, and the
//! per-packet function.
//!
//! Contract with the appliance:
//! - one `FastPath` per lcore, never shared; it reads the current `Arc<Tables>`,
//!   `Network` and `Arc<Neighbors>` through a [`Context`] per burst and notices a new
//!   tables generation by itself (see [`crate::counters`] for what happens to counters);
//! - time is supplied by the caller ([`Timestamp`], monotonic ns): nothing here reads a
//!   clock, allocates, locks or logs per packet;
//! - packets are plain byte slices starting at the Ethernet header; a `Tx` verdict means
//!   the bytes were rewritten in place (addresses, ports, TTL, MACs, checksums), every
//!   other verdict leaves them untouched;
//! - replies to a FullNAT flow must reach the worker that owns the SNAT port
//!   ([`PortRange::owner`]); preserve-client replies the worker that saw the client
//!   (symmetric RSS on the address pair).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::counters::{Counters, EntityCounters};
use crate::flow::{Dir, Flow, FlowTable, SnatAddrs, SnatPorts, Tuple, FULLNAT, IPV6};
use crate::hash::{hash_words, ip16, ip_words};
use crate::maglev;
use crate::neighbor::Neighbors;
use crate::net::{ChecksumCaps, MacAddr, Network, NextHop, PortRange};
use crate::parse::{parse, FlowKey, Parsed, ParsedUdp};
use crate::spec::{HashKey, NatMode};
use crate::tables::{Listener, Route, Tables};
use crate::verdict::{DropReason, HostReason, OffloadRequest, Verdict};
use crate::wire::{Ethernet, Ipv4, Ipv6, Udp};

/// Monotonic time in nanoseconds, supplied by the caller.
pub type Timestamp = u64;

/// Per-worker settings, fixed at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FastPathParams {
    /// This worker's index.
    pub worker_id: u16,
    /// Number of workers.
    pub workers: u16,
    /// Flow table capacity (preallocated; 1 M flows ≈ 111 MiB).
    pub flow_capacity: u32,
    /// New flows per second before the guard falls back to stateless Maglev; 0 =
    /// unlimited. Bursts up to one second's worth pass.
    pub new_flow_rate_limit: u32,
    /// This worker's share of the SNAT port pool (see [`PortRange::partition`]).
    pub snat_ports: PortRange,
    /// Seed of the flow-table hash (any fixed value).
    pub flow_hash_seed: u64,
    /// Flow records examined per [`FastPath::maintain`] call.
    pub sweep_budget: u32,
}

impl FastPathParams {
    /// Defaults for worker `worker_id` of `workers`, taking its share of `pool`:
    /// 1 Mi flows, no rate guard, 1024 records per sweep.
    pub fn new(worker_id: u16, workers: u16, pool: PortRange) -> FastPathParams {
        FastPathParams {
            worker_id,
            workers,
            flow_capacity: 1 << 20,
            new_flow_rate_limit: 0,
            snat_ports: pool.partition(worker_id, workers),
            flow_hash_seed: 0x9e37_79b9_7f4a_7c15 ^ u64::from(worker_id),
            sweep_budget: 1024,
        }
    }
}

/// What a burst is processed against.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Current forwarding tables.
    pub tables: &'a Tables,
    /// The static network.
    pub network: &'a Network,
    /// Current neighbor snapshot.
    pub neighbors: &'a Neighbors,
}

/// Token bucket for new flows; tokens are scaled by 1e9 so refill is exact in ns.
#[derive(Debug)]
struct NewFlowGuard {
    rate: u64,
    tokens: u64,
    last: Timestamp,
}

const NS: u64 = 1_000_000_000;

impl NewFlowGuard {
    fn new(rate: u32) -> Self {
        NewFlowGuard {
            rate: u64::from(rate),
            tokens: u64::from(rate) * NS,
            last: 0,
        }
    }

    fn allow(&mut self, now: Timestamp) -> bool {
        if self.rate == 0 {
            return true;
        }
        let elapsed = now.saturating_sub(self.last).min(NS);
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * NS);
        if self.tokens >= NS {
            self.tokens -= NS;
            true
        } else {
            false
        }
    }
}

/// A fast-path worker.
#[derive(Debug)]
pub struct FastPath {
    params: FastPathParams,
    flows: FlowTable,
    snat4: SnatPorts,
    snat6: SnatPorts,
    snat: SnatAddrs,
    guard: NewFlowGuard,
    counters: Counters,
    retired: Vec<EntityCounters>,
    hops: HopCache,
}

/// A resolved destination: out port, MACs and the port's offloads.
#[derive(Clone, Copy, Debug)]
struct Hop {
    dst: IpAddr,
    port: u16,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    caps: ChecksumCaps,
}

/// Destinations resolved during the current burst (route + port + neighbor), so a burst
/// to a few backends or clients resolves each once. Cleared at every burst start: the
/// [`Context`] (network, neighbors) is only fixed for one burst. Direct-mapped by the
/// address's last byte; only successful resolutions are kept, so every other verdict
/// is produced exactly as without the cache.
#[derive(Clone, Copy, Debug, Default)]
struct HopCache {
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
    fn resolve(&mut self, ctx: &Context<'_>, dst: IpAddr) -> Result<Hop, Verdict> {
        let slot = &mut self.entries[Self::slot(dst)];
        if let Some(h) = slot {
            if h.dst == dst {
                return Ok(*h);
            }
        }
        let Some(NextHop { port, via }) = ctx.network.route(dst) else {
            return Err(Verdict::Drop(DropReason::Unroutable));
        };
        let Some(out) = ctx.network.ports().get(usize::from(port)) else {
            return Err(Verdict::Drop(DropReason::Unroutable));
        };
        let Some(mac) = ctx.neighbors.lookup(via) else {
            return Err(Verdict::ToHost(HostReason::Resolve { next_hop: via }));
        };
        let h = Hop {
            dst,
            port,
            dst_mac: mac,
            src_mac: out.mac,
            caps: out.checksum,
        };
        *slot = Some(h);
        Ok(h)
    }
}

/// The new addresses and ports of a rewritten datagram.
#[derive(Clone, Copy, Debug)]
struct Rewrite {
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
}

fn ip_from16(a: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    }
}

fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.is_unspecified()),
        IpAddr::V6(a) => !(a.is_multicast() || a.is_unspecified()),
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

/// Why the worker cannot be created.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FastPathError {
    /// Flow capacity is 0 or above the maximum.
    #[error("flow capacity {0} out of range 1..={max}", max = FlowTable::MAX_CAPACITY)]
    Capacity(u32),
    /// Worker id not below the worker count.
    #[error("worker id {id} not below worker count {workers}")]
    WorkerId {
        /// Id.
        id: u16,
        /// Count.
        workers: u16,
    },
}

impl FastPath {
    /// Creates a worker, preallocating its flow table and SNAT pools.
    ///
    /// # Errors
    /// [`FastPathError`] for a capacity of 0 or above [`FlowTable::MAX_CAPACITY`], or a
    /// worker id not below the worker count.
    pub fn new(params: FastPathParams) -> Result<FastPath, FastPathError> {
        if params.flow_capacity == 0 || params.flow_capacity > FlowTable::MAX_CAPACITY {
            return Err(FastPathError::Capacity(params.flow_capacity));
        }
        if params.worker_id >= params.workers {
            return Err(FastPathError::WorkerId {
                id: params.worker_id,
                workers: params.workers,
            });
        }
        let flows = FlowTable::new(params.flow_capacity, params.flow_hash_seed);
        let snat4 = SnatPorts::new(params.snat_ports);
        let snat6 = SnatPorts::new(params.snat_ports);
        let counters = Counters {
            flow_capacity: flows.capacity() as u64,
            flow_memory_bytes: (flows.memory_bytes() + 2 * 2 * params.snat_ports.len() as usize)
                as u64,
            ..Counters::default()
        };
        Ok(FastPath {
            params,
            flows,
            snat4,
            snat6,
            snat: SnatAddrs::default(),
            guard: NewFlowGuard::new(params.new_flow_rate_limit),
            counters,
            retired: Vec::new(),
            hops: HopCache::default(),
        })
    }

    /// Its parameters.
    pub fn params(&self) -> &FastPathParams {
        &self.params
    }

    /// Its counters (gauges are current as of the last burst or maintain call).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Entity counters of tables generations this worker has left, oldest first.
    pub fn take_retired(&mut self) -> Vec<EntityCounters> {
        std::mem::take(&mut self.retired)
    }

    /// Live flows held.
    pub fn flows_len(&self) -> usize {
        self.flows.len()
    }

    /// Free SNAT ports (IPv4, IPv6) in this worker's partition.
    pub fn snat_ports_free(&self) -> (usize, usize) {
        (self.snat4.available(), self.snat6.available())
    }

    /// Switches per-entity counters to `tables` if it is a new generation (called by
    /// [`FastPath::process_burst`] itself; public so the appliance can do it eagerly). Only
    /// this allocates, once per configuration change.
    pub fn adopt(&mut self, tables: &Tables) {
        if self.counters.entities.generation == tables.generation() {
            return;
        }
        let old = std::mem::replace(
            &mut self.counters.entities,
            EntityCounters::for_tables(tables),
        );
        if old.generation != 0 {
            self.retired.push(old);
        }
    }

    fn begin(&mut self, ctx: &Context<'_>) {
        self.adopt(ctx.tables);
        self.hops = HopCache::default();
        let n = ctx.network;
        self.snat = SnatAddrs {
            v4: n.snat_addr(false).map(ip16).unwrap_or_default(),
            v6: n.snat_addr(true).map(ip16).unwrap_or_default(),
        };
    }

    /// Processes a burst: `verdicts[i]` is the decision for `packets[i]`. Only the first
    /// `min(packets.len(), verdicts.len())` packets are processed. `in_port` is the port
    /// the burst arrived on (kept for per-port policy; the fast path does not need it
    /// today).
    pub fn process_burst(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        in_port: u16,
        packets: &mut [&mut [u8]],
        verdicts: &mut [Verdict],
    ) {
        let _ = in_port;
        self.begin(ctx);
        // Two passes per chunk: parse everything and touch each packet's flow-index slot
        // and record, so the cache misses of a chunk overlap instead of queueing; then
        // process. The chunk array lives on the stack.
        let n = packets.len().min(verdicts.len());
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            let mut parsed = [Parsed::Drop(DropReason::Stray); CHUNK];
            let mut hashes = [None; CHUNK];
            for ((slot, h), pkt) in parsed.iter_mut().zip(&mut hashes).zip(&packets[start..end]) {
                *slot = parse(pkt);
                if let Parsed::Udp(p) = slot {
                    *h = Some(self.flows.hash(&packet_tuple(&p.flow)));
                }
            }
            // Tight loops of independent loads: the misses overlap.
            let mut entries = [0u32; CHUNK];
            for (e, h) in entries.iter_mut().zip(&hashes) {
                if let Some(h) = h {
                    *e = self.flows.touch_slot(*h);
                }
            }
            let mut touched = 0u64;
            for e in entries {
                touched ^= self.flows.touch_record(e);
            }
            std::hint::black_box(touched);
            for (((pkt, v), p), h) in packets[start..end]
                .iter_mut()
                .zip(&mut verdicts[start..end])
                .zip(parsed)
                .zip(hashes)
            {
                *v = self.process_parsed(ctx, now, pkt, p, h);
            }
            start = end;
        }
        self.counters.flows_active = self.flows.len() as u64;
    }

    /// Processes one packet (same as a burst of one).
    pub fn process(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        in_port: u16,
        packet: &mut [u8],
    ) -> Verdict {
        let _ = in_port;
        self.begin(ctx);
        let v = self.process_one(ctx, now, packet);
        self.counters.flows_active = self.flows.len() as u64;
        v
    }

    /// Expires idle flows, examining at most `sweep_budget` records; returns how many
    /// were freed (their SNAT ports return to the pool).
    pub fn maintain(&mut self, now: Timestamp) -> usize {
        let (snat4, snat6, expired) = (
            &mut self.snat4,
            &mut self.snat6,
            &mut self.counters.flows_expired,
        );
        let n = self.flows.sweep(
            now,
            self.params.sweep_budget as usize,
            &self.snat,
            &mut |f: &Flow| release(snat4, snat6, expired, f),
        );
        self.counters.flows_active = self.flows.len() as u64;
        n
    }

    /// Forgets the flow whose client → VIP datagrams have `key` (management "clear
    /// flow"; also how benchmarks keep occupancy constant), returning its SNAT port to
    /// the pool. Returns whether there was one. Not counted as an expiry.
    pub fn remove_flow(&mut self, key: &FlowKey) -> bool {
        let t = packet_tuple(key);
        let v6 = key.dst.is_ipv6();
        let Some(fi) = self.flows.lookup(&t, Dir::Forward, self.snat.of(v6)) else {
            return false;
        };
        let f = *self.flows.get(fi);
        let mut uncounted = 0;
        release(&mut self.snat4, &mut self.snat6, &mut uncounted, &f);
        self.flows.remove(fi, self.snat.of(v6));
        self.counters.flows_active = self.flows.len() as u64;
        true
    }

    fn process_one(&mut self, ctx: &Context<'_>, now: Timestamp, pkt: &mut [u8]) -> Verdict {
        let parsed = parse(pkt);
        self.process_parsed(ctx, now, pkt, parsed, None)
    }

    fn process_parsed(
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
                let t = packet_tuple(&p.flow);
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
        if ctx.network.snat_addr(v6) == Some(k.dst) && ctx.network.snat().ports.contains(k.dst_port)
        {
            return Verdict::Drop(DropReason::NoReverseFlow);
        }
        if ctx.network.is_own(k.dst) {
            return Verdict::ToHost(HostReason::OwnAddress);
        }
        if ctx.tables.is_vip(k.dst) {
            return Verdict::Drop(DropReason::NoListener);
        }
        Verdict::Drop(DropReason::Stray)
    }

    fn expire(&mut self, fi: u32) {
        let f = *self.flows.get(fi);
        release(
            &mut self.snat4,
            &mut self.snat6,
            &mut self.counters.flows_expired,
            &f,
        );
        self.flows.remove(fi, self.snat.of(f.is_ipv6()));
    }

    /// Maglev choice for a new (or re-picked) flow: `Ok(backend index)` or the verdict.
    fn choose(tables: &Tables, l: &Listener, route: &Route, k: &FlowKey) -> Result<usize, Verdict> {
        let slot = route
            .maglev
            .lookup(flow_hash(tables.params().maglev_seed, l.hash_key, k));
        match slot {
            maglev::NO_BACKEND => Err(Verdict::Drop(DropReason::NoBackend)),
            maglev::DROP if is_unicast(k.src) => Err(Verdict::ToHost(HostReason::Reject)),
            maglev::DROP => Err(Verdict::Drop(DropReason::DroppedShare)),
            v => Ok((v - 1) as usize),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn forward(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
        p: &ParsedUdp,
        li: usize,
        ft: &Tuple,
        h: u64,
    ) -> Verdict {
        let tables = ctx.tables;
        let l = &tables.listeners()[li];
        let Some(route) = &l.route else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        if p.ttl <= 1 {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        let k = &p.flow;
        let v6 = p.is_ipv6();
        let idle_ms = u32::try_from(l.idle_timeout_ns / 1_000_000).unwrap_or(u32::MAX);
        let mut hit = self
            .flows
            .lookup_hashed(h, ft, Dir::Forward, self.snat.of(v6));
        if let Some(fi) = hit {
            if self.flows.get(fi).expires <= now {
                self.expire(fi);
                hit = None;
            }
        }
        let (bi, fullnat, snat_port) = match hit {
            Some(fi) => {
                let f = *self.flows.get(fi);
                let cached = route
                    .backends
                    .get(f.backend_idx as usize)
                    .filter(|b| ip16(b.addr.ip()) == f.backend && b.addr.port() == f.backend_port)
                    .map(|_| f.backend_idx as usize);
                let found = cached.or_else(|| {
                    route.find_backend(std::net::SocketAddr::new(
                        ip_from16(&f.backend, v6),
                        f.backend_port,
                    ))
                });
                let bi = match found {
                    Some(bi) => bi,
                    None => {
                        // The backend left the route: re-pick under the new tables.
                        let bi = match Self::choose(tables, l, route, k) {
                            Ok(bi) => bi,
                            Err(v) => return v,
                        };
                        let b = route.backends[bi].addr;
                        self.flows
                            .repin(fi, ip16(b.ip()), b.port(), self.snat.of(v6));
                        self.counters.flows_repinned += 1;
                        bi
                    }
                };
                let fm = self.flows.get_mut(fi);
                fm.backend_idx = bi as u32;
                fm.listener_idx = li as u32;
                fm.idle_ms = idle_ms;
                fm.expires = now.saturating_add(l.idle_timeout_ns);
                (bi, f.is_fullnat(), f.snat_port)
            }
            None => match self.new_flow(ctx, now, l, route, li, p, ft, idle_ms) {
                Ok(x) => x,
                Err(v) => return v,
            },
        };
        let b = &route.backends[bi];
        let rw = if fullnat {
            let Some(snat) = ctx.network.snat_addr(v6) else {
                return Verdict::Drop(DropReason::NoSnatAddress);
            };
            Rewrite {
                src: snat,
                src_port: snat_port,
                dst: b.addr.ip(),
                dst_port: b.addr.port(),
            }
        } else {
            Rewrite {
                src: k.src,
                src_port: k.src_port,
                dst: b.addr.ip(),
                dst_port: b.addr.port(),
            }
        };
        let v = transmit(ctx, &mut self.hops, pkt, p, &rw);
        if let Verdict::Tx { .. } = v {
            let len = pkt.len() as u64;
            let e = &mut self.counters.entities;
            for t in [
                e.listeners.get_mut(li),
                e.routes.get_mut(route.counter_idx as usize),
                e.backends.get_mut(b.counter_idx as usize),
            ]
            .into_iter()
            .flatten()
            {
                t.packets += 1;
                t.bytes += len;
            }
        }
        v
    }

    /// Creates the flow for a first packet: Maglev pick, guard, SNAT port, insert.
    /// Returns (backend index, fullnat, snat port) or the verdict.
    #[allow(clippy::too_many_arguments)]
    fn new_flow(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        l: &Listener,
        route: &Route,
        li: usize,
        p: &ParsedUdp,
        ft: &Tuple,
        idle_ms: u32,
    ) -> Result<(usize, bool, u16), Verdict> {
        let v6 = p.is_ipv6();
        let bi = Self::choose(ctx.tables, l, route, &p.flow)?;
        let b = &route.backends[bi];
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
                backend: ip16(b.addr.ip()),
                client_port: ft.src_port,
                vip_port: ft.dst_port,
                backend_port: b.addr.port(),
                snat_port,
                expires: now.saturating_add(l.idle_timeout_ns),
                idle_ms,
                listener_idx: li as u32,
                backend_idx: bi as u32,
                flags: if fullnat { FULLNAT } else { 0 } | if v6 { IPV6 } else { 0 },
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
        let e = &mut self.counters.entities;
        for t in [
            e.listeners.get_mut(li),
            e.routes.get_mut(route.counter_idx as usize),
            e.backends.get_mut(b.counter_idx as usize),
        ]
        .into_iter()
        .flatten()
        {
            t.flows_created += 1;
        }
        Ok((bi, fullnat, snat_port))
    }

    fn reverse(
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
            Some(l) if l.vip == vip && l.port == f.vip_port => Some(f.listener_idx as usize),
            _ => tables.lookup_listener(vip, f.vip_port),
        };
        let Some(li) = li else { return };
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
                bump(e.backends.get_mut(r.backends[bi].counter_idx as usize));
            }
        }
    }
}

/// Packets per parse-and-touch pass of [`FastPath::process_burst`].
const CHUNK: usize = 32;

/// The flow-index key of a datagram as it is on the wire (forward and reverse lookups
/// both hash this).
fn packet_tuple(k: &FlowKey) -> Tuple {
    Tuple {
        src: ip16(k.src),
        dst: ip16(k.dst),
        src_port: k.src_port,
        dst_port: k.dst_port,
    }
}

fn release(snat4: &mut SnatPorts, snat6: &mut SnatPorts, expired: &mut u64, f: &Flow) {
    *expired += 1;
    if f.flags & FULLNAT != 0 {
        if f.flags & IPV6 != 0 {
            snat6.release(f.snat_port);
        } else {
            snat4.release(f.snat_port);
        }
    }
}

/// Routes, resolves and rewrites a datagram to `rw`; the packet is modified only when the
/// verdict is `Tx`.
fn transmit(
    ctx: &Context<'_>,
    hops: &mut HopCache,
    pkt: &mut [u8],
    p: &ParsedUdp,
    rw: &Rewrite,
) -> Verdict {
    let hop = match hops.resolve(ctx, rw.dst) {
        Ok(h) => h,
        Err(v) => return v,
    };
    match rewrite(pkt, p, rw, hop.dst_mac, hop.src_mac, hop.caps) {
        Some(offload) => Verdict::Tx {
            port: hop.port,
            offload,
        },
        // Unreachable after a successful parse; never panic on it.
        None => Verdict::Drop(DropReason::TruncatedIp),
    }
}

/// Rewrites addresses, ports, TTL, MACs and checksums in place. Returns the offload
/// request (`Some(None)` when everything was done in software), or `None` if the offsets
/// do not fit the buffer.
fn rewrite(
    pkt: &mut [u8],
    p: &ParsedUdp,
    rw: &Rewrite,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    caps: ChecksumCaps,
) -> Option<Option<OffloadRequest>> {
    let l3 = usize::from(p.l3_off);
    let l4 = usize::from(p.l4_off);
    if pkt.len() < l4 {
        return None;
    }
    let (head, l4buf) = pkt.split_at_mut(l4);
    let mut udp = Udp::new_checked(l4buf).ok()?;
    let old_ports = [udp.src_port(), udp.dst_port()];
    let new_ports = [rw.src_port, rw.dst_port];
    let udp_check = udp.checksum();
    // IPv4 UDP checksum 0 = none: stays 0 and the NIC is not asked to compute it.
    let has_udp_check = udp_check != 0 || p.is_ipv6();
    let offload_udp = has_udp_check && caps.contains(ChecksumCaps::UDP);
    let l3_len = u16::try_from(l4 - l3).ok()?;
    let mut old_words = [0u8; 36];
    let mut new_words = [0u8; 36];
    let offload = match (rw.src, rw.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Ipv4::new_checked(head.get_mut(l3..)?).ok()?;
            old_words[..4].copy_from_slice(&ip.src());
            old_words[4..8].copy_from_slice(&ip.dst());
            new_words[..4].copy_from_slice(&s.octets());
            new_words[4..8].copy_from_slice(&d.octets());
            ip.rewrite_for_forwarding(s.octets(), d.octets());
            let offload_ip = caps.contains(ChecksumCaps::IPV4);
            if offload_ip {
                ip.set_checksum(0);
            }
            for (i, (o, n)) in old_ports.iter().zip(new_ports).enumerate() {
                old_words[8 + 2 * i..10 + 2 * i].copy_from_slice(&o.to_be_bytes());
                new_words[8 + 2 * i..10 + 2 * i].copy_from_slice(&n.to_be_bytes());
            }
            if offload_udp {
                udp.set_checksum(checksum::pseudo_header_sum(
                    rw.src,
                    rw.dst,
                    u32::from(p.udp_len),
                ));
            } else if has_udp_check {
                udp.set_checksum(checksum::udp_wire(checksum::update(
                    udp_check,
                    &old_words[..12],
                    &new_words[..12],
                )));
            }
            (offload_ip || offload_udp).then_some(OffloadRequest {
                l2_len: p.l3_off,
                l3_len,
                ipv6: false,
                ipv4_checksum: offload_ip,
                udp_checksum: offload_udp,
            })
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = Ipv6::new_checked(head.get_mut(l3..)?).ok()?;
            old_words[..16].copy_from_slice(&ip.src());
            old_words[16..32].copy_from_slice(&ip.dst());
            new_words[..16].copy_from_slice(&s.octets());
            new_words[16..32].copy_from_slice(&d.octets());
            ip.set_src(s.octets());
            ip.set_dst(d.octets());
            ip.decrement_hop_limit();
            // Only one port changes per direction in preserve-client, but the words are
            // cheap: fold both.
            let mut old_p = [0u8; 4];
            let mut new_p = [0u8; 4];
            old_p[..2].copy_from_slice(&old_ports[0].to_be_bytes());
            old_p[2..].copy_from_slice(&old_ports[1].to_be_bytes());
            new_p[..2].copy_from_slice(&new_ports[0].to_be_bytes());
            new_p[2..].copy_from_slice(&new_ports[1].to_be_bytes());
            old_words[32..].copy_from_slice(&old_p);
            new_words[32..].copy_from_slice(&new_p);
            if offload_udp {
                udp.set_checksum(checksum::pseudo_header_sum(
                    rw.src,
                    rw.dst,
                    u32::from(p.udp_len),
                ));
            } else {
                udp.set_checksum(checksum::udp_wire(checksum::update(
                    udp_check, &old_words, &new_words,
                )));
            }
            offload_udp.then_some(OffloadRequest {
                l2_len: p.l3_off,
                l3_len,
                ipv6: true,
                ipv4_checksum: false,
                udp_checksum: true,
            })
        }
        // Families never mix: tables keep other-family backends out of Maglev.
        _ => return None,
    };
    udp.set_src_port(rw.src_port);
    udp.set_dst_port(rw.dst_port);
    let mut eth = Ethernet::new_checked(&mut head[..]).ok()?;
    eth.set_dst(dst_mac.0);
    eth.set_src(src_mac.0);
    Some(offload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::DataplaneParams;
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
}

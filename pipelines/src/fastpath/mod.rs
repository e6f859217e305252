//! The fast path a worker owns: its flow table, SNAT ports, new-flow guard, next-hop cache
//! and counters, and the per-packet function.
//!
//! Contract with the appliance:
//! - one [`FastPath`] per lcore, never shared; it reads the current `Arc<Tables>`,
//!   `Network` and `Arc<Neighbors>` through a [`Context`] per burst and notices a new
//!   tables generation by itself (see [`crate::counters`](mod@crate::counters) for what happens to counters);
//! - time is supplied by the caller ([`Timestamp`], monotonic ns): nothing here reads a
//!   clock, allocates, locks or logs per packet;
//! - packets are plain byte slices starting at the Ethernet header; a `Tx` verdict means
//!   the bytes were rewritten in place (addresses, ports, TTL, MACs, checksums; DSR: the
//!   MACs only), every other verdict leaves them untouched;
//! - a packet whose flow lives on another worker gets `Handoff { worker }` (a FullNAT
//!   reply to that worker's SNAT port, [`PortRange::owner`]; a steered preserve-client
//!   listener's packet, [`steer::client_owner`]); the appliance passes it there.
//!
//! One concern per file, in the order a packet meets them:
//! - this file: the [`FastPath`] state, burst processing (a parse-and-prefetch pass, then
//!   one packet at a time) and flow expiry;
//! - `classify`: which path a parsed packet takes (listener, reply, host, drop) and the
//!   verdict counters;
//! - `forward`: client → backend: flow lookup, Maglev pick for new flows, SNAT ports;
//! - `reverse`: backend → client replies, of a pinned flow or from the tables;
//! - `rewrite`: addresses, ports, TTL, MACs and incremental checksums, in place;
//! - `dsr`: direct server return (MACs only, on-link backends);
//! - [`steer`]: which worker owns a flow, per mode;
//! - `guard`: the new-flow rate guard (token bucket);
//! - `hop`: the per-burst next-hop cache (route, out port, neighbor MAC).

mod classify;
mod dsr;
mod forward;
mod fragment;
mod guard;
mod health;
mod hop;
mod icmp;
mod reverse;
mod rewrite;
pub mod steer;

use crate::counters::{Counters, EntityCounters};
use crate::flow::{Dir, Flow, FlowTable, SnatAddrs, SnatPorts, Tuple, IPV6};
use crate::fragment::{FragParams, FragTable, Release};
use crate::hash::ip16;
use crate::health::Health;
use crate::neighbor::Neighbors;
use crate::net::{Network, PortRange};
use crate::parse::{parse, FlowKey, Parsed};
use crate::tables::Tables;
use crate::verdict::{DropReason, Verdict};

pub use forward::{flow_hash, pick};
use guard::NewFlowGuard;
use hop::HopCache;
use std::net::IpAddr;
use std::sync::Arc;

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
    /// Flow records examined per [`FastPath::maintain`] call (and as many
    /// fragment-table entries).
    pub sweep_budget: u32,
    /// Fragmented datagrams followed at once (see [`crate::fragment`]).
    pub fragment_capacity: u32,
    /// Hold slots: fragments that may wait for their datagram's first fragment
    /// ([`Verdict::Hold`]); 0 holds none (such fragments are `fragment_hold_full`).
    pub fragment_holds: u16,
    /// Fragments one datagram may hold.
    pub fragment_holds_per_datagram: u8,
    /// How long a fragmented datagram is followed after its first fragment (or its
    /// first held fragment), in ns.
    pub fragment_timeout_ns: u64,
}

impl FastPathParams {
    /// Defaults for worker `worker_id` of `workers`, taking its share of `pool`:
    /// 1 Mi flows, no rate guard, 1024 records per sweep; 4096 fragmented datagrams, 256
    /// hold slots, 16 per datagram, 3 s (the neighbor hold time of the appliance).
    pub fn new(worker_id: u16, workers: u16, pool: PortRange) -> FastPathParams {
        FastPathParams {
            worker_id,
            workers,
            flow_capacity: 1 << 20,
            new_flow_rate_limit: 0,
            snat_ports: pool.partition(worker_id, workers),
            flow_hash_seed: 0x9e37_79b9_7f4a_7c15 ^ u64::from(worker_id),
            sweep_budget: 1024,
            fragment_capacity: 4096,
            fragment_holds: 256,
            fragment_holds_per_datagram: 16,
            fragment_timeout_ns: 3_000_000_000,
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
    frags: FragTable,
    health: Arc<Health>,
    excl: health::Exclusions,
    /// The port the current burst arrived on, and its MAC ([`classify::mac_key`];
    /// [`classify::NO_MAC`] when there is no such port).
    rx_port: u16,
    rx_mac: u64,
    /// The current burst's port can deliver unfinished UDP checksums (see
    /// [`crate::net::PortConfig::unfinished_rx_checksums`]).
    check_unfinished: bool,
    /// The last listener lookup of the current burst: (destination, port, listener).
    last_listener: Option<(IpAddr, u16, Option<u32>)>,
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
            frags: FragTable::new(FragParams {
                capacity: params.fragment_capacity,
                holds: params.fragment_holds,
                per_datagram: params.fragment_holds_per_datagram,
                timeout_ns: params.fragment_timeout_ns,
                seed: params.flow_hash_seed ^ 0x6672_6167,
            }),
            health: Arc::new(Health::default()),
            excl: health::Exclusions::default(),
            rx_port: 0,
            rx_mac: classify::NO_MAC,
            check_unfinished: false,
            last_listener: None,
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

    /// The hold slots (of [`Verdict::Hold`]) the appliance must act on now, oldest
    /// first: [`Release::Run`] → take the buffer out of the slot and run it through the
    /// fast path again with the port it arrived on; [`Release::Expired`] → take it out
    /// and free it (counted as `fragment_timeout`). Call after handling each burst's
    /// verdicts (a fragment held in a burst can be released by a later packet of the same
    /// burst) and after [`FastPath::maintain`]. The slots are reused as soon as this
    /// returns, so each buffer must leave its slot while iterating.
    pub fn take_released(&mut self) -> impl Iterator<Item = Release> + '_ {
        self.counters.fragments_waiting = self.frags.waiting() as u64;
        self.frags.take_released()
    }

    /// Adopts a new health snapshot (from the next burst on): excluded endpoints take no
    /// new flows, and flows pinned to them move on their next datagram (see
    /// [`crate::health`]). Cheap when nothing changed; mapping a new snapshot onto the
    /// tables allocates once, at the next burst.
    pub fn set_health(&mut self, health: Arc<Health>) {
        self.health = health;
    }

    /// The health snapshot in use.
    pub fn health(&self) -> &Arc<Health> {
        &self.health
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

    fn begin(&mut self, ctx: &Context<'_>, in_port: u16) {
        self.adopt(ctx.tables);
        self.excl.refresh(ctx.tables, &self.health);
        self.hops = HopCache::default();
        self.last_listener = None;
        self.rx_port = in_port;
        self.rx_mac = ctx
            .network
            .ports()
            .get(usize::from(in_port))
            .map_or(classify::NO_MAC, |p| classify::mac_key(&p.mac.0));
        self.check_unfinished = ctx
            .network
            .ports()
            .get(usize::from(in_port))
            .is_some_and(|p| p.unfinished_rx_checksums);
        let n = ctx.network;
        self.snat = SnatAddrs {
            v4: n.snat_addr(false).map(ip16).unwrap_or_default(),
            v6: n.snat_addr(true).map(ip16).unwrap_or_default(),
        };
    }

    /// Processes a burst: `verdicts[i]` is the decision for `packets[i]`. Only the first
    /// `min(packets.len(), verdicts.len())` packets are processed. `in_port` is the port
    /// the burst arrived on: frames not addressed to it (its MAC, broadcast or a group it
    /// joined) are dropped as `not_for_us`.
    pub fn process_burst(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        in_port: u16,
        packets: &mut [&mut [u8]],
        verdicts: &mut [Verdict],
    ) {
        self.begin(ctx, in_port);
        // Passes per chunk: touch every frame, parse everything and touch each packet's
        // flow-index slot and record, so the cache misses of a chunk overlap instead of
        // queueing; then process. The chunk array lives on the stack.
        let n = packets.len().min(verdicts.len());
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            // The frames' first lines, all at once: fresh from a NIC (or another core)
            // they miss the cache, and the parse below would fetch them one at a time.
            let mut first = 0u8;
            for pkt in &packets[start..end] {
                first ^= pkt.first().copied().unwrap_or(0);
            }
            std::hint::black_box(first);
            let mut parsed = [Parsed::Drop(DropReason::Stray); CHUNK];
            let mut hashes = [None; CHUNK];
            for ((slot, h), pkt) in parsed.iter_mut().zip(&mut hashes).zip(&packets[start..end]) {
                // Each branch writes the slot itself, so `parse` builds its result in place.
                if self.for_us(ctx, pkt) {
                    *slot = parse(pkt);
                } else {
                    *slot = Parsed::Drop(DropReason::NotForUs);
                }
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
        self.gauges();
    }

    /// Processes one packet (same as a burst of one).
    pub fn process(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        in_port: u16,
        packet: &mut [u8],
    ) -> Verdict {
        self.begin(ctx, in_port);
        let v = self.process_one(ctx, now, packet);
        self.gauges();
        v
    }

    /// Expires idle flows, examining at most `sweep_budget` records; returns how many
    /// were freed (their SNAT ports return to the pool).
    pub fn maintain(&mut self, now: Timestamp) -> usize {
        // Empty tables have nothing to expire: an idle worker skips walking their
        // records (cold after a sleep, that walk was most of an idle wake-up's cost).
        let (snat4, snat6, expired) = (
            &mut self.snat4,
            &mut self.snat6,
            &mut self.counters.flows_expired,
        );
        let n = if self.flows.is_empty() {
            0
        } else {
            self.flows.sweep(
                now,
                self.params.sweep_budget as usize,
                &self.snat,
                &mut |f: &Flow| release(snat4, snat6, expired, f),
            )
        };
        self.counters.flows_active = self.flows.len() as u64;
        let timed_out = if self.frags.is_empty() {
            0
        } else {
            self.frags.sweep(now, self.params.sweep_budget as usize)
        };
        self.counters.drops[DropReason::FragmentTimeout.index()] += timed_out;
        self.gauges();
        n
    }

    fn gauges(&mut self) {
        self.counters.flows_active = self.flows.len() as u64;
        self.counters.fragment_entries = self.frags.len() as u64;
        self.counters.fragments_waiting = self.frags.waiting() as u64;
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
        let parsed = if self.for_us(ctx, pkt) {
            parse(pkt)
        } else {
            Parsed::Drop(DropReason::NotForUs)
        };
        self.process_parsed(ctx, now, pkt, parsed, None)
    }

    /// Forgets an expired flow, returning its SNAT port.
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
    if f.is_fullnat() {
        if f.flags & IPV6 != 0 {
            snat6.release(f.snat_port);
        } else {
            snat4.release(f.snat_port);
        }
    }
}

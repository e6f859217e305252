//! # udplb fast path (I/O-free)
//!
//! What happens to every packet, at line rate, without any I/O: the appliance's DPDK
//! workers hand bursts of byte buffers in and get a [`Verdict`] per packet back. Because
//! nothing here touches a NIC, a clock, a lock or the allocator per packet, everything is
//! tested on byte fixtures and benchmarked with criterion.
//!
//! ## Layers, bottom up
//! - [`wire`]: named-field views for in-place rewrites; [`checksum`]: RFC 1071 sums and
//!   RFC 1624 incremental updates.
//! - [`parse`]: a frame is checked once (a narrow reader for the common shape,
//!   etherparse for everything else) and reduced to a `Copy`
//!   [`parse::ParsedUdp`] (Ethernet II, ≤ 2 VLAN tags, IPv4 with options, IPv6 extension
//!   headers, UDP); the IPv4 header checksum is verified, UDP checksums are not;
//!   fragments and ICMP leave the hot path as classes, read again out of line
//!   ([`parse::fragment`], [`icmp::parse_error`]).
//! - [`maglev`]: weighted, seeded, deterministic Maglev; [`tables`]: the immutable
//!   [`tables::Tables`] compiled from [`spec::ForwardingConfig`] (listeners by (VIP, port),
//!   routes, backends, Maglev tables).
//! - [`net`]: the static [`net::Network`] (ports, own addresses, routes, SNAT, checksum
//!   offload capabilities); [`neighbor`]: the [`neighbor::Neighbors`] snapshot.
//! - [`flow`]: the fixed-capacity per-worker flow table and SNAT port pools;
//!   [`fragment`]: the per-worker fragment table and hold slots; [`icmp`]: ICMP errors
//!   about UDP datagrams (read, verify, rewrite); [`health`]: the [`health::Health`]
//!   snapshot; [`refragment`]: splitting an IPv4 datagram for a smaller MTU;
//!   [`counters`](mod@counters): per-worker counters, declared once with [`counters!`];
//!   [`fastpath`]: [`FastPath`], the per-packet function (classify, forward, reverse,
//!   rewrite, fragments, ICMP errors, health, new-flow guard, next-hop cache: one module
//!   each).
//! - [`spec`] also holds the value types other crates parse into (`NatMode`, `HashKey`,
//!   `HumanDuration`), and [`net`] `PortRange`, `MacAddr` and `IpNet` (`ipnet`), each
//!   with `FromStr`/`Display`; the crate stays serde-free.
//! - [`testkit`]: fixtures (topology, packet builder, independent verifier) for tests.
//!
//! ## Contract with the appliance
//! 1. The management thread builds `Arc<Tables>` with [`tables::Tables::build`] and
//!    publishes it whole (e.g. over a crossbeam channel); likewise the slow path publishes
//!    `Arc<Neighbors>`, and the health module `Arc<Health>` ([`health::Health::compute`]
//!    applies the panic thresholds), which each worker adopts with
//!    [`FastPath::set_health`] between bursts. The [`net::Network`] (with each port's
//!    MTU) is built once at start.
//! 2. Each worker owns one [`FastPath`] ([`FastPath::new`] preallocates its flow table). Per
//!    burst it takes the newest pointers (`try_recv`) and calls
//!    [`FastPath::process_burst`] with a [`Context`], a monotonic timestamp in ns, the input
//!    port and the buffers (Ethernet header at index 0). The input port matters: frames not
//!    addressed to its MAC, broadcast or a group the appliance joined are `not_for_us`, so
//!    frames that run again (held for a neighbor, handed to another worker) must keep the
//!    port they arrived on.
//! 3. Verdicts: `Tx { port, offload }` → the buffer was rewritten in place (for DSR only
//!    its MACs); send it on `port`, setting the DPDK offload flags from
//!    [`OffloadRequest`] when present.
//!    `ToHost(reason)` → the buffer is untouched; give it to the slow path (ARP/ND/ICMP,
//!    own address, `Resolve { next_hop, port }`: resolve `next_hop` on `port` and publish
//!    a new `Neighbors`, `Reject`: answer ICMP unreachable from the VIP, `TimeExceeded`:
//!    answer ICMP time exceeded, `TooBig { mtu }`: answer Frag Needed / Packet Too Big
//!    with `mtu`; all rate-limited; the README's "ICMP the slow path sends" has the
//!    types, codes, sources and quotes).
//!    `Handoff { worker }` → the buffer is untouched (but for the mark below); its flow
//!    lives on `worker` (a FullNAT reply to that worker's SNAT port, a request or reply
//!    of a steered preserve-client listener, see [`fastpath::steer`]; a fragment's owner;
//!    the worker holding an ICMP error's flow): pass it there with the port it arrived
//!    on. A packet moves at most once, except fragments (at most twice: to their owner,
//!    then to their flow's worker) and client-side ICMP errors about FullNAT replies (to
//!    each worker at most once); those, when handed on by an owner, carry the input
//!    port's MAC as Ethernet source, which is what stops them from coming back.
//!    `Hold { slot }` → a fragment that arrived before its datagram's first fragment:
//!    keep the untouched buffer and its input port in hold slot `slot`
//!    (< [`FastPathParams::fragment_holds`]) until [`FastPath::take_released`] names the
//!    slot. `Fragment { port, mtu }` → like `Tx` (rewritten, every checksum final, no
//!    offload) but larger than `port`'s MTU: split it with
//!    [`refragment::split_ipv4`] and send the pieces on `port`. `Drop(reason)` → free
//!    it; it has been counted.
//! 4. After handling a burst's verdicts (and after `maintain`), drain
//!    [`FastPath::take_released`]: `Run { slot }` → take the buffer out of the slot and
//!    run it through the fast path again with its input port; `Expired { slot }` → take
//!    it out and free it (counted as `fragment_timeout`). The slots are reused once the
//!    iterator is dropped.
//!    Between bursts, call [`FastPath::maintain`] (bounded idle expiry of flows and
//!    fragment-table entries), and periodically
//!    copy [`FastPath::counters`] and [`FastPath::take_retired`] to the management thread,
//!    which sums workers with [`counters::Counters::merge`] and names entity counters with
//!    [`counters::EntityCounters::named`] using the tables of the same generation. The
//!    passive health signal is there: [`counters::Traffic::icmp_unreachable`] per backend
//!    (ICMP port / host unreachable about its flows), beside `reply_packets`.
//! 5. Steering: any RSS spread works; the fast path says with `Handoff` which packets
//!    must move ([`fastpath::steer`] has the rules per mode). Preserve-client replies
//!    are translated by whichever worker receives them (from the tables when it has no
//!    flow), except for endpoints shared by several listeners; DSR has no replies.
//!    [`tables::Tables::shared_endpoints`] lists the shared endpoints for status and
//!    metrics.
//!
//! ## Guarantees
//! - `process` never panics on any input (proptest over arbitrary and mutated frames).
//! - Appliances with the same configuration and [`tables::DataplaneParams`] build identical
//!   Maglev tables and send a new flow to the same backend.
//! - Flows stay on their backend (by address) across table swaps while it stays in the
//!   route; otherwise they re-pick on their next packet, keeping their SNAT port.
//! - With several workers no request or reply is lost in any mode (two-worker test
//!   under RSS-like and adversarial steering, across a tables swap), except the
//!   documented transition: replies sent by a newly shared endpoint before the client's
//!   next request.
//! - SNAT ports are never held by two live flows and return to the pool on expiry.
//! - A fragmented UDP datagram is forwarded as its first fragment decides, fragment by
//!   fragment, its UDP checksum right for the reassembled datagram; memory for that is
//!   fixed per worker. ICMP errors about flows reach the other side with every checksum
//!   right; ICMP never deletes or refreshes a flow.
//! - Same tables and health → same backend for a new flow on every worker and appliance;
//!   an excluded backend takes no new flow (unless its route has no other), and its
//!   pinned flows move on their next datagram.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub mod counters;
pub mod fastpath;
pub mod flow;
pub mod fragment;
pub mod hash;
pub mod health;
pub mod icmp;
pub mod maglev;
pub mod neighbor;
pub mod net;
pub mod parse;
pub mod refragment;
pub mod spec;
pub mod tables;
pub mod testkit;
pub mod verdict;
pub mod wire;

pub use fastpath::{Context, FastPath, FastPathError, FastPathParams, Timestamp};
pub use verdict::{DropReason, HostReason, OffloadRequest, Verdict};

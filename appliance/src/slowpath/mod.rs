//! Slow path: the appliance's host stack for the frames the fast path does not forward.
//!
//! One thread, fed by a bounded channel of [`SlowPathMsg`] from the workers, that
//! - answers ARP and NDP (neighbor solicitations) for the appliance's own addresses, **the
//!   VIPs** and the SNAT addresses (on the port whose prefix holds them: backends there
//!   resolve them to send full-NAT replies), and ICMP/ICMPv6 echo to them;
//! - resolves next hops on request ([`SlowPathMsg::Resolve`]) with rate-limited ARP
//!   requests / neighbor solicitations, refreshes learned entries before they age out, and
//!   publishes the whole neighbor table through a callback whenever it changes;
//! - answers rejected new flows ([`SlowPathMsg::Reject`]) with a token-bucket-limited ICMP
//!   destination unreachable, code *administratively prohibited* (ICMPv4 code 13, RFC
//!   1812; ICMPv6 code 1, RFC 4443): the datagram was dropped by policy (the route's share
//!   of invalid backends), not because nothing listens on the port, so "port unreachable"
//!   would misreport the cause;
//! - sends backend health probes ([`SlowPathMsg::Probe`]) and hands what answers them to
//!   the health checker (`probe.rs`, see `crate::backend_health`).
//! - sends ICMP time exceeded and Frag Needed / Packet Too Big when the fast path asks
//!   ([`SlowPathMsg::IcmpError`]), rate-limited per destination and in all
//!   (`icmp_errors`, which builds every ICMP error, rejects included).
//!
//! Design note: the slow path drives smoltcp's `wire` layer (`ArpRepr`, `Ipv4Repr`,
//! `Icmpv4Repr`, `Ipv6Repr`, `Icmpv6Repr`, `NdiscRepr`, checked packet views) rather than a
//! smoltcp `Interface` per port. An `Interface` holds a small compile-time number of
//! addresses while VIPs are many and change on every reload; its neighbor cache is private,
//! so it could neither be snooped from every frame, published as a snapshot, nor paced as
//! the fast path needs; and it would answer for own addresses only, leaving VIPs to a
//! second code path anyway. With the wire layer, own addresses and VIPs share one path,
//! every parse is a checked view (bad input is counted, never a panic), and all time comes
//! from the caller ([`SlowPath::poll`]), so tests drive the clock.
//!
//! Only untagged Ethernet II frames are handled; VLAN-tagged frames count as `ignored`.

mod config;
mod counters;
mod emit;
mod icmp_errors;
mod input;
mod limiter;
mod neighbors;
mod per_source;
mod probe;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

pub use config::{PortAddresses, SlowPathConfig, SlowPathError, SlowPathTuning, StaticNeighbor};
pub use counters::{SlowPathCounters, SlowPathStats};
pub use icmp_errors::IcmpError;

use config::PortState;
use icmp_errors::Kind;
use limiter::TokenBucket;
use neighbors::{NeighborTable, Probe};
use per_source::PerSource;

/// The published neighbor table: next-hop address → MAC.
pub type NeighborMap = BTreeMap<IpAddr, [u8; 6]>;

/// How long [`SlowPath::run`] blocks on the channel before doing its periodic work.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Messages from the workers (and the management thread) to the slow path.
///
/// `B` is the frame buffer: an owned DPDK mbuf in the appliance, `Vec<u8>` in tests. It is
/// dropped (the mbuf freed) as soon as the message is handled.
#[derive(Debug)]
pub enum SlowPathMsg<B> {
    /// A frame the fast path did not handle (ARP, NDP, ICMP, traffic to own addresses).
    Frame {
        /// Port it arrived on.
        port: u16,
        /// The whole Ethernet frame.
        frame: B,
    },
    /// The fast path met a next hop without a neighbor entry.
    Resolve {
        /// Port the next hop is reached through.
        port: u16,
        /// The next hop.
        next_hop: IpAddr,
    },
    /// A new UDP flow the fast path dropped (a route's share of invalid backends): answer
    /// with ICMP destination unreachable from the VIP to the client.
    Reject {
        /// Port it arrived on.
        port: u16,
        /// The whole Ethernet frame of the rejected datagram.
        frame: B,
    },
    /// A datagram the fast path could not forward and whose source should be told (time
    /// exceeded, Frag Needed / Packet Too Big): answer with that ICMP error.
    IcmpError {
        /// Port it arrived on (the error goes back there).
        port: u16,
        /// Which error.
        error: IcmpError,
        /// The whole Ethernet frame of the datagram, untouched.
        frame: B,
    },
    /// Replaces a port's own addresses and VIPs (after a config reload); its SNAT
    /// addresses stay.
    UpdateAddresses {
        /// The port.
        port: u16,
        /// Own addresses with prefix lengths.
        own: Vec<(IpAddr, u8)>,
        /// VIPs answered on this port.
        vips: Vec<IpAddr>,
    },
    /// A backend health probe to send (`crate::backend_health`).
    Probe(crate::backend_health::ProbeDatagram),
    /// Stop the slow-path thread.
    Shutdown,
}

/// Where the slow path sends frames; the appliance allocates an mbuf and transmits it on
/// the port's slow-path TX queue (dropping and counting on its side if that fails).
pub trait FrameSink {
    /// Sends one complete Ethernet frame on `port`.
    fn send(&mut self, port: u16, frame: &[u8]);
}

/// Collects frames in memory, for tests and tools.
impl FrameSink for Vec<(u16, Vec<u8>)> {
    fn send(&mut self, port: u16, frame: &[u8]) {
        self.push((port, frame.to_vec()));
    }
}

/// Whether the run loop goes on after a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Keep going.
    Continue,
    /// A `Shutdown` was received.
    Stop,
}

/// The slow-path state: ports, neighbor table, reject limiter, counters.
///
/// Drive it with [`SlowPath::run`] on its own thread, or step it with
/// [`SlowPath::handle`] and [`SlowPath::poll`] (tests).
#[derive(Debug)]
pub struct SlowPath {
    ports: BTreeMap<u16, PortState>,
    neighbors: NeighborTable,
    /// Every ICMP error, all destinations together.
    rejects: TokenBucket,
    /// ICMP errors by destination.
    per_source: PerSource,
    tuning: SlowPathTuning,
    counters: Arc<SlowPathCounters>,
    /// Reused frame buffer for everything sent.
    tx: Vec<u8>,
    /// Reused list of probes due.
    probes: Vec<Probe>,
    /// Health probes: their source ports and the checker's input (`probe.rs`).
    probe_tap: Option<crate::backend_health::ProbeTap>,
}

impl SlowPath {
    /// Validates the configuration and builds the slow path.
    ///
    /// # Errors
    /// A [`SlowPathError`] naming the port or neighbor and field at fault.
    pub fn new(
        config: SlowPathConfig,
        counters: Arc<SlowPathCounters>,
    ) -> Result<Self, SlowPathError> {
        config.tuning.validate()?;
        let ports = config
            .ports
            .iter()
            .map(|(&id, addrs)| PortState::new(id, addrs).map(|state| (id, state)))
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        for n in &config.static_neighbors {
            if !ports.contains_key(&n.port) {
                return Err(SlowPathError::UnknownPort {
                    ip: n.ip,
                    port: n.port,
                });
            }
            config::check_mac(|| format!("static neighbor {}", n.ip), n.mac)?;
        }
        Ok(Self {
            ports,
            neighbors: NeighborTable::new(&config.static_neighbors),
            rejects: TokenBucket::new(
                config.tuning.reject_rate_per_sec,
                config.tuning.reject_burst,
            ),
            per_source: PerSource::new(
                config.tuning.icmp_error_rate_per_source,
                config.tuning.icmp_error_burst_per_source,
                config.tuning.icmp_error_sources,
            ),
            tuning: config.tuning,
            counters,
            tx: Vec::with_capacity(2048),
            probes: Vec::new(),
            probe_tap: None,
        })
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<SlowPathCounters> {
        &self.counters
    }

    /// Handles one message at time `now`, sending any answer to `sink`.
    pub fn handle<B: AsRef<[u8]>>(
        &mut self,
        msg: SlowPathMsg<B>,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Step {
        match msg {
            SlowPathMsg::Frame { port, frame } => {
                SlowPathCounters::bump(&self.counters.frames_handled);
                let fate = self.on_frame(port, frame.as_ref(), now, sink);
                self.count(fate);
            }
            SlowPathMsg::Reject { port, frame } => {
                let fate = self.on_icmp_error(port, frame.as_ref(), Kind::Reject, now, sink);
                self.count(fate);
            }
            SlowPathMsg::IcmpError { port, error, frame } => {
                let kind = Kind::Error(error);
                let fate = self.on_icmp_error(port, frame.as_ref(), kind, now, sink);
                self.count(fate);
            }
            SlowPathMsg::Resolve { port, next_hop } => self.on_resolve(port, next_hop, now, sink),
            SlowPathMsg::UpdateAddresses { port, own, vips } => {
                self.update_addresses(port, own, vips)
            }
            SlowPathMsg::Probe(p) => self.on_probe(p, now, sink),
            SlowPathMsg::Shutdown => return Step::Stop,
        }
        Step::Continue
    }

    /// Time-driven work: retries pending resolutions, refreshes learned entries before they
    /// expire, removes expired ones. Call at least every [`POLL_INTERVAL`].
    pub fn poll(&mut self, now: Instant, sink: &mut dyn FrameSink) {
        let mut probes = std::mem::take(&mut self.probes);
        probes.clear();
        let (abandoned, expired) = self.neighbors.poll(now, &self.tuning, &mut probes);
        SlowPathCounters::add(&self.counters.resolutions_failed, abandoned);
        SlowPathCounters::add(&self.counters.neighbors_expired, expired);
        for probe in &probes {
            self.send_probe(*probe, sink);
        }
        self.probes = probes;
    }

    /// The complete IP → MAC neighbor map (static and learned).
    pub fn neighbor_snapshot(&self) -> NeighborMap {
        self.neighbors.snapshot()
    }

    /// Calls `on_neighbors` with the complete map if it changed since the last publish
    /// (the first call after [`SlowPath::new`] always publishes, carrying the static
    /// entries). Returns whether it published.
    pub fn publish_if_changed(&mut self, on_neighbors: &mut dyn FnMut(&NeighborMap)) -> bool {
        if !self.neighbors.take_changed() {
            return false;
        }
        on_neighbors(&self.neighbors.snapshot());
        true
    }

    /// The slow-path thread body: blocks on `rx` for at most [`POLL_INTERVAL`], handles
    /// what arrives, polls timers, publishes neighbor changes. Returns on
    /// [`SlowPathMsg::Shutdown`] or when every sender is gone.
    pub fn run<B, S, F>(mut self, rx: Receiver<SlowPathMsg<B>>, mut sink: S, mut on_neighbors: F)
    where
        B: AsRef<[u8]>,
        S: FrameSink,
        F: FnMut(&NeighborMap),
    {
        /// Messages handled between two publishes, so a burst of ARP replies costs one
        /// snapshot, not one each.
        const BATCH: usize = 64;
        let mut next_poll = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_poll {
                self.poll(now, &mut sink);
                next_poll = now + POLL_INTERVAL;
            }
            self.publish_if_changed(&mut on_neighbors);
            let first = match rx.recv_timeout(next_poll.saturating_duration_since(Instant::now())) {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut batch = std::iter::once(first).chain(rx.try_iter().take(BATCH - 1));
            if batch.any(|msg| self.handle(msg, Instant::now(), &mut sink) == Step::Stop) {
                break;
            }
        }
        self.publish_if_changed(&mut on_neighbors);
        log::info!("slow path stopped: {:?}", self.counters.snapshot());
    }

    fn count(&self, fate: input::Fate) {
        match fate {
            input::Fate::Done => {}
            input::Fate::Ignored => SlowPathCounters::bump(&self.counters.ignored),
            input::Fate::Malformed => SlowPathCounters::bump(&self.counters.malformed),
        }
    }

    fn transmit(&mut self, port: u16, sink: &mut dyn FrameSink) {
        sink.send(port, &self.tx);
        SlowPathCounters::bump(&self.counters.frames_sent);
    }

    fn on_resolve(&mut self, port: u16, next_hop: IpAddr, now: Instant, sink: &mut dyn FrameSink) {
        if !self.ports.contains_key(&port) {
            // Unbounded (the fast path may ask per packet): counted, logged at debug only.
            log::debug!("slow path: resolve {next_hop} on unknown port {port}");
            SlowPathCounters::bump(&self.counters.ignored);
            return;
        }
        match self.neighbors.request(port, next_hop, now, &self.tuning) {
            Ok(Some(probe)) => self.send_probe(probe, sink),
            Ok(None) => {}
            Err(_) => SlowPathCounters::bump(&self.counters.neighbors_table_full),
        }
    }

    /// Sends an ARP request or a neighbor solicitation for `probe.target`.
    fn send_probe(&mut self, probe: Probe, sink: &mut dyn FrameSink) {
        let Some(state) = self.ports.get(&probe.port) else {
            return;
        };
        let sent = match probe.target {
            IpAddr::V4(target) => state.source_v4_for(target).map(|src| {
                emit::arp_request(&mut self.tx, state.mac, src, target);
            }),
            IpAddr::V6(target) => state.source_v6_for(target).map(|src| {
                emit::neighbor_solicit(&mut self.tx, state.mac, src, target);
            }),
        };
        if sent.is_some() {
            SlowPathCounters::bump(&self.counters.resolutions_sent);
            self.transmit(probe.port, sink);
        } else {
            // Paced like the probes themselves: at most once per target per interval.
            log::warn!(
                "slow path: cannot resolve {} on port {}: no own address of that family",
                probe.target,
                probe.port
            );
        }
    }

    fn update_addresses(&mut self, port: u16, own: Vec<(IpAddr, u8)>, vips: Vec<IpAddr>) {
        let Some(current) = self.ports.get(&port) else {
            log::warn!("slow path: address update for unknown port {port} ignored");
            return;
        };
        let addrs = PortAddresses {
            mac: current.mac.0,
            own,
            vips,
            snat: current.snat.clone(),
        };
        match PortState::new(port, &addrs) {
            Ok(state) => {
                self.ports.insert(port, state);
            }
            Err(e) => log::error!(
                "slow path: address update rejected, keeping the previous addresses: {e}"
            ),
        }
    }
}

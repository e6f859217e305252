//! The compiled, immutable lookup tables the workers read: listeners by (VIP, port), each
//! with its route's backends and Maglev table.
//!
//! Built once per configuration by the management thread from a
//! [`ForwardingConfig`] and published whole as
//! `Arc<Tables>`; workers pick the new pointer up at a burst boundary. Every `Tables` gets
//! a process-unique, increasing [`Tables::generation`], which is how a worker notices a new
//! one and how per-entity counters are keyed (see [`crate::counters`](mod@crate::counters)).
//!
//! Besides listeners by (VIP, port), the tables index the backend endpoints of
//! preserve-client listeners by (address, port): a reply from an endpoint that serves one
//! listener is translated from the tables alone, on any worker ([`Tables::lookup_endpoint`]).
//! An endpoint that serves several preserve-client listeners is *shared*: its replies say
//! nothing about which VIP the client used, so they need the flow, and the listeners it
//! serves are *steered* (their flows live on the client's owner worker, see
//! [`crate::fastpath::steer`]). [`Tables::shared_endpoints`] lists them for status and
//! metrics.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::hash::{hash_words, ip16, ip_words, slot};
use crate::maglev::{self, Endpoint, Maglev};
use crate::net::{AddrSet, MacAddr};
use crate::spec::{
    BackendSpec, ForwardingConfig, HashKey, ListenerKey, NatMode, RouteKey, ServiceKey,
    DEFAULT_UNREPLIED_TIMEOUT,
};

/// The default Maglev seed: fixed, so every appliance agrees out of the box. The
/// appliance's settings default to it, and so do [`DataplaneParams::default`], the tests and
/// the benchmarks, which therefore exercise the product's rings.
pub const DEFAULT_MAGLEV_SEED: u64 = 0x7564_706c_6200_0001;

/// The default Maglev table size per route (prime; 100 × 655 backends).
pub const DEFAULT_MAGLEV_SIZE: u32 = 65537;

/// The default flow idle timeout (of replied flows; unreplied flows default to the
/// shorter of this and [`DEFAULT_UNREPLIED_TIMEOUT`], see
/// [`crate::spec::ListenerOptions::flow_timeouts`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Appliance-wide parameters of the data plane (from the appliance's own settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataplaneParams {
    /// Maglev table size per route: a prime ≥ 100 × backends.
    pub maglev_size: u32,
    /// Seed of every data-plane hash that must agree across appliances.
    pub maglev_seed: u64,
    /// NAT mode of listeners that do not override it.
    pub default_nat_mode: NatMode,
    /// Idle timeout of replied flows of listeners that do not override it. (Unreplied
    /// flows default to [`DEFAULT_UNREPLIED_TIMEOUT`], capped by this.)
    pub default_idle_timeout: Duration,
    /// Hash key of listeners that do not override it.
    pub default_hash_key: HashKey,
}

impl Default for DataplaneParams {
    fn default() -> Self {
        DataplaneParams {
            maglev_size: DEFAULT_MAGLEV_SIZE,
            maglev_seed: DEFAULT_MAGLEV_SEED,
            default_nat_mode: NatMode::default(),
            default_idle_timeout: DEFAULT_IDLE_TIMEOUT,
            default_hash_key: HashKey::default(),
        }
    }
}

/// Why a configuration cannot be turned into tables.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The Maglev size is not prime.
    #[error("maglev table size {size} is not prime (use e.g. 65537 or 655373)")]
    SizeNotPrime {
        /// Configured size.
        size: u32,
    },
    /// The Maglev size is under 100 × the backends of a route.
    #[error(
        "listener {listener}: maglev table size {size} is under 100 × {backends} backends \
         (needs ≥ {required}, prime)"
    )]
    SizeTooSmall {
        /// `namespace/gateway/listener`.
        listener: String,
        /// Configured size.
        size: u32,
        /// Backends taking slots (plus one for a dropped-weight share).
        backends: usize,
        /// Minimum size.
        required: u64,
    },
    /// Two listeners serve the same (VIP, port).
    #[error("listeners {first} and {second} both serve {vip} port {port}")]
    DuplicateListener {
        /// First listener.
        first: String,
        /// Second listener.
        second: String,
        /// VIP.
        vip: IpAddr,
        /// Port.
        port: u16,
    },
    /// More listeners or backends than the 32-bit indices hold.
    #[error("too many {what}")]
    TooMany {
        /// "listeners" or "backends".
        what: &'static str,
    },
}

/// One concrete endpoint of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Address and port: the stable identity flows are pinned to.
    pub addr: SocketAddr,
    /// The address in the 16-byte form flow records keep (IPv4-mapped for IPv4), so a
    /// flow's cached backend is checked with one compare.
    pub ip16: [u8; 16],
    /// The Service port it was reached through.
    pub service: ServiceKey,
    /// Scaled weight (0 takes no new flows).
    pub weight: u64,
    /// Draining: no new flows, pinned flows stay.
    pub draining: bool,
    /// Index into [`crate::counters::EntityCounters::backends`].
    pub counter_idx: u32,
    /// The listener is preserve-client and this endpoint also serves another
    /// preserve-client listener (see [`Tables::shared_endpoints`]).
    pub shared: bool,
    /// Idle timeouts of a flow pinned to it, in ns, indexed by whether the flow has seen
    /// a reply: `[unreplied, replied]`. Replied: its [`BackendSpec::idle_timeout`]
    /// (session affinity), else the listener's; unreplied: the listener's (for a DSR
    /// listener the replied one: its replies never pass udplb). An array, so the
    /// forward path indexes it instead of branching.
    pub timeouts_ns: [u64; 2],
    /// The replied timeout in milliseconds, as flow records keep it.
    pub replied_ms: u32,
}

/// The route of a listener, with its Maglev table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The UDPRoute.
    pub key: RouteKey,
    /// Index into [`crate::counters::EntityCounters::routes`] (one per distinct route key).
    pub counter_idx: u32,
    /// Backends sorted by `addr`.
    pub backends: Vec<Backend>,
    /// Scaled weight of the dropped share (including backends of the other IP family,
    /// which cannot be reached without address-family translation).
    pub dropped_weight: u64,
    /// Slot value = backend index + 1, [`maglev::DROP`] or [`maglev::NO_BACKEND`].
    pub maglev: Maglev,
}

impl Route {
    /// Index of the backend with this identity (backend indices fit a `u32`: the tables
    /// refuse more).
    pub fn find_backend(&self, addr: SocketAddr) -> Option<u32> {
        let i = self.backends.binary_search_by(|b| b.addr.cmp(&addr)).ok()?;
        u32::try_from(i).ok()
    }

    /// Who owns a slot value, by identity (for [`maglev::diff`]).
    pub fn slot_owner(&self, value: u32) -> SlotOwner {
        match value {
            maglev::NO_BACKEND => SlotOwner::Nobody,
            maglev::DROP => SlotOwner::Drop,
            v => self
                .backends
                .get(usize::try_from(v - 1).unwrap_or(usize::MAX))
                .map_or(SlotOwner::Nobody, |b| SlotOwner::Backend(b.addr)),
        }
    }
}

/// The identity owning a Maglev slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotOwner {
    /// Empty.
    Nobody,
    /// Dropped-weight share.
    Drop,
    /// A backend, by address.
    Backend(SocketAddr),
}

/// One served (VIP, UDP port), with its effective options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    /// VIP.
    pub vip: IpAddr,
    /// UDP port.
    pub port: u16,
    /// Gateway listener identity.
    pub key: ListenerKey,
    /// Effective NAT mode.
    pub nat_mode: NatMode,
    /// Effective hash key.
    pub hash_key: HashKey,
    /// Effective idle timeout of a flow that has seen a reply, in nanoseconds (before any
    /// backend's own, [`Backend::timeouts_ns`]).
    pub idle_timeout_ns: u64,
    /// The same in milliseconds.
    pub idle_ms: u32,
    /// Effective idle timeout of a flow that has not seen a reply yet, in nanoseconds
    /// ([`crate::spec::ListenerOptions::flow_timeouts`]).
    pub unreplied_timeout_ns: u64,
    /// The attached route, if any.
    pub route: Option<Route>,
    /// Preserve-client with at least one shared endpoint: its flows live on their
    /// client's owner worker ([`crate::fastpath::steer::client_owner`]).
    pub steered: bool,
}

/// A backend endpoint that serves several preserve-client listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedEndpoint {
    /// The endpoint.
    pub addr: SocketAddr,
    /// Indices (into [`Tables::listeners`]) of the listeners it serves, ascending.
    pub listeners: Vec<u32>,
}

/// Who a backend endpoint's replies belong to ([`Tables::lookup_endpoint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointOwner {
    /// One preserve-client listener: its index and the endpoint's index in its route.
    Listener {
        /// Listener index.
        listener: u32,
        /// Backend index in the listener's route.
        backend: u32,
    },
    /// Several preserve-client listeners: only the flow knows which.
    Shared,
}

/// One indexed endpoint.
#[derive(Clone, Copy, Debug)]
struct EndpointEntry {
    ip: IpAddr,
    port: u16,
    owner: EndpointOwner,
}

/// Immutable, whole forwarding tables.
#[derive(Debug)]
pub struct Tables {
    generation: u64,
    params: DataplaneParams,
    listeners: Vec<Listener>,
    /// Open addressing over (vip, port): listener index + 1, 0 = empty.
    index: Vec<u32>,
    vips: AddrSet,
    /// Sorted solicited-node multicast MACs of the IPv6 VIPs.
    vip_groups: Vec<MacAddr>,
    route_keys: Vec<RouteKey>,
    backend_ids: Vec<(u32, SocketAddr)>,
    /// Endpoints of preserve-client listeners.
    endpoints: Vec<EndpointEntry>,
    /// Open addressing over (address, port): endpoint index + 1, 0 = empty.
    endpoint_index: Vec<u32>,
    shared: Vec<SharedEndpoint>,
}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

fn listener_name(k: &ListenerKey) -> String {
    format!("{}/{}/{}", k.namespace, k.gateway, k.listener)
}

fn endpoint_id(addr: SocketAddr) -> [u8; 18] {
    let mut id = [0u8; 18];
    id[..16].copy_from_slice(&ip16(addr.ip()));
    id[16..].copy_from_slice(&addr.port().to_be_bytes());
    id
}

/// Identity of the dropped-weight pseudo-endpoint (not a valid unicast address:port).
const DROP_ID: [u8; 18] = *b"udplb-drop-share\0\0";

impl Tables {
    /// Compiles `spec` with `params`.
    ///
    /// # Errors
    /// [`TableError`] naming the listener when the Maglev size is not prime or too small
    /// for its route, or when two listeners claim one (VIP, port).
    pub fn build(spec: &ForwardingConfig, params: &DataplaneParams) -> Result<Tables, TableError> {
        if !maglev::is_prime(params.maglev_size) {
            return Err(TableError::SizeNotPrime {
                size: params.maglev_size,
            });
        }
        let mut specs: Vec<_> = spec.listeners.iter().collect();
        specs.sort_by_key(|l| (l.vip, l.port));
        for w in specs.windows(2) {
            if (w[0].vip, w[0].port) == (w[1].vip, w[1].port) {
                return Err(TableError::DuplicateListener {
                    first: listener_name(&w[0].key),
                    second: listener_name(&w[1].key),
                    vip: w[0].vip,
                    port: w[0].port,
                });
            }
        }
        let mut route_keys: Vec<RouteKey> = Vec::new();
        let mut backend_ids = Vec::new();
        let mut listeners = Vec::with_capacity(specs.len());
        for (li, l) in specs.iter().enumerate() {
            let li = u32::try_from(li).map_err(|_| TableError::TooMany { what: "listeners" })?;
            let timeouts = l
                .options
                .flow_timeouts(params.default_idle_timeout, DEFAULT_UNREPLIED_TIMEOUT);
            let route = match &l.route {
                None => None,
                Some(r) => {
                    let counter_idx = match route_keys.iter().position(|k| *k == r.key) {
                        Some(i) => i,
                        None => {
                            route_keys.push(r.key.clone());
                            route_keys.len() - 1
                        }
                    };
                    let mut specs_sorted: Vec<&BackendSpec> = r.backends.iter().collect();
                    specs_sorted.sort_by_key(|b| b.addr);
                    specs_sorted.dedup_by(|a, b| a.addr == b.addr);
                    let mut dropped_weight = r.dropped_weight;
                    let mut backends = Vec::with_capacity(specs_sorted.len());
                    let mut endpoints = Vec::with_capacity(specs_sorted.len() + 1);
                    for (bi, b) in specs_sorted.iter().enumerate() {
                        let counter_idx = u32::try_from(backend_ids.len())
                            .map_err(|_| TableError::TooMany { what: "backends" })?;
                        backend_ids.push((li, b.addr));
                        let same_family = b.addr.is_ipv4() == l.vip.is_ipv4();
                        if !same_family {
                            dropped_weight = dropped_weight.saturating_add(b.weight);
                        } else if b.weight > 0 && !b.draining {
                            endpoints.push(Endpoint {
                                id: endpoint_id(b.addr),
                                weight: b.weight,
                                value: u32::try_from(bi + 1)
                                    .map_err(|_| TableError::TooMany { what: "backends" })?,
                            });
                        }
                        let replied = b.idle_timeout.unwrap_or(timeouts.replied);
                        let dsr =
                            l.options.nat_mode.unwrap_or(params.default_nat_mode) == NatMode::Dsr;
                        let unreplied = if dsr { replied } else { timeouts.unreplied };
                        backends.push(Backend {
                            addr: b.addr,
                            ip16: ip16(b.addr.ip()),
                            service: b.service.clone(),
                            weight: b.weight,
                            draining: b.draining,
                            counter_idx,
                            shared: false,
                            timeouts_ns: [nanos(unreplied), nanos(replied)],
                            replied_ms: millis(replied),
                        });
                    }
                    if dropped_weight > 0 {
                        endpoints.push(Endpoint {
                            id: DROP_ID,
                            weight: dropped_weight,
                            value: maglev::DROP,
                        });
                    }
                    // The listener's own size (config checked it), else the appliance's.
                    let size = l.options.maglev_size.unwrap_or(params.maglev_size);
                    if !maglev::is_prime(size) {
                        return Err(TableError::SizeNotPrime { size });
                    }
                    let required = crate::spec::MAGLEV_SLOTS_PER_ENTRY * endpoints.len() as u64;
                    if u64::from(size) < required {
                        return Err(TableError::SizeTooSmall {
                            listener: listener_name(&l.key),
                            size,
                            backends: endpoints.len(),
                            required,
                        });
                    }
                    let maglev = Maglev::build(&endpoints, size, params.maglev_seed);
                    Some(Route {
                        key: r.key.clone(),
                        counter_idx: u32::try_from(counter_idx)
                            .map_err(|_| TableError::TooMany { what: "routes" })?,
                        backends,
                        dropped_weight,
                        maglev,
                    })
                }
            };
            listeners.push(Listener {
                vip: l.vip,
                port: l.port,
                key: l.key.clone(),
                nat_mode: l.options.nat_mode.unwrap_or(params.default_nat_mode),
                hash_key: l.options.hash_key.unwrap_or(params.default_hash_key),
                idle_timeout_ns: nanos(timeouts.replied),
                idle_ms: millis(timeouts.replied),
                unreplied_timeout_ns: nanos(timeouts.unreplied),
                route,
                steered: false,
            });
        }
        let index = open_index(
            listeners.iter().map(|l| (l.vip, l.port)),
            params.maglev_seed,
            "listeners",
        )?;
        let (endpoints, shared) = index_endpoints(&mut listeners);
        let endpoint_index = open_index(
            endpoints.iter().map(|e| (e.ip, e.port)),
            params.maglev_seed,
            "backends",
        )?;
        let mut vip_addrs: Vec<IpAddr> = listeners.iter().map(|l| l.vip).collect();
        vip_addrs.sort_unstable();
        vip_addrs.dedup();
        let vips = AddrSet::new(vip_addrs.iter().copied());
        let mut vip_groups: Vec<MacAddr> = vip_addrs
            .iter()
            .filter_map(|v| match v {
                IpAddr::V6(a) => Some(MacAddr::solicited_node(*a)),
                IpAddr::V4(_) => None,
            })
            .collect();
        vip_groups.sort_unstable();
        vip_groups.dedup();
        Ok(Tables {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            params: *params,
            listeners,
            index,
            vips,
            vip_groups,
            route_keys,
            backend_ids,
            endpoints,
            endpoint_index,
            shared,
        })
    }

    /// Process-unique, increasing identifier of this build.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Parameters it was built with.
    pub fn params(&self) -> &DataplaneParams {
        &self.params
    }

    /// All listeners, sorted by (VIP, port); indices are listener counter indices.
    pub fn listeners(&self) -> &[Listener] {
        &self.listeners
    }

    /// Distinct routes, by counter index.
    pub fn route_keys(&self) -> &[RouteKey] {
        &self.route_keys
    }

    /// Backends by counter index: (listener index, address).
    pub fn backend_ids(&self) -> &[(u32, SocketAddr)] {
        &self.backend_ids
    }

    /// Endpoints that serve several preserve-client listeners, sorted by address. Their
    /// replies need the flow (on the client's owner worker); operators may want to know
    /// (status, metrics: their count is a gauge).
    pub fn shared_endpoints(&self) -> &[SharedEndpoint] {
        &self.shared
    }

    /// Whom replies from the backend endpoint `ip`:`port` belong to, if it serves a
    /// preserve-client listener. No allocation; O(1) expected.
    #[inline]
    pub fn lookup_endpoint(&self, ip: IpAddr, port: u16) -> Option<EndpointOwner> {
        let mask = self.endpoint_index.len() - 1;
        let mut pos = slot(addr_port_hash(self.params.maglev_seed, ip, port), mask);
        // At most half full, like the listener index.
        for _ in 0..self.endpoint_index.len() {
            let e = self.endpoint_index[pos];
            if e == 0 {
                return None;
            }
            if let Some(x) = self.endpoints.get((e - 1) as usize) {
                if x.port == port && x.ip == ip {
                    return Some(x.owner);
                }
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Listener index serving (`vip`, `port`). No allocation; O(1) expected.
    #[inline]
    pub fn lookup_listener(&self, vip: IpAddr, port: u16) -> Option<u32> {
        let mask = self.index.len() - 1;
        let mut pos = slot(addr_port_hash(self.params.maglev_seed, vip, port), mask);
        // The index is at most half full, so an empty slot ends every probe.
        for _ in 0..self.index.len() {
            let e = self.index[pos];
            if e == 0 {
                return None;
            }
            let i = e - 1;
            if let Some(l) = self.listeners.get(i as usize) {
                if l.port == port && l.vip == vip {
                    return Some(i);
                }
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    /// Whether `ip` is a VIP of any listener.
    #[inline]
    pub fn is_vip(&self, ip: IpAddr) -> bool {
        self.vips.contains(ip)
    }

    /// Whether `mac` is the solicited-node multicast group of an IPv6 VIP (where neighbor
    /// solicitations for it arrive).
    pub fn joins(&self, mac: MacAddr) -> bool {
        self.vip_groups.binary_search(&mac).is_ok()
    }

    /// Memory held by the tables (Maglev tables dominate).
    pub fn memory_bytes(&self) -> usize {
        self.listeners
            .iter()
            .filter_map(|l| l.route.as_ref())
            .map(|r| r.maglev.memory_bytes() + r.backends.len() * std::mem::size_of::<Backend>())
            .sum::<usize>()
            + self.index.len() * 4
            + self.listeners.len() * std::mem::size_of::<Listener>()
            + self.endpoint_index.len() * 4
            + self.endpoints.len() * std::mem::size_of::<EndpointEntry>()
    }
}

/// A timeout in ns, saturating (settings, annotations and policies bound it to 24 h).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A timeout in ms, saturating.
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[inline]
fn addr_port_hash(seed: u64, ip: IpAddr, port: u16) -> u64 {
    let [a, b] = ip_words(&ip16(ip));
    hash_words(seed, &[a, b, u64::from(port)])
}

/// An open-addressing index (at most half full, so every probe ends at an empty slot)
/// over `keys`: slot = key position + 1, 0 = empty.
fn open_index(
    keys: impl ExactSizeIterator<Item = (IpAddr, u16)>,
    seed: u64,
    what: &'static str,
) -> Result<Vec<u32>, TableError> {
    let slots = (keys.len() * 2).next_power_of_two().max(8);
    let mut index = vec![0u32; slots];
    for (i, (ip, port)) in keys.enumerate() {
        let mut pos = slot(addr_port_hash(seed, ip, port), slots - 1);
        while index[pos] != 0 {
            pos = (pos + 1) & (slots - 1);
        }
        index[pos] = u32::try_from(i + 1).map_err(|_| TableError::TooMany { what })?;
    }
    Ok(index)
}

/// Indexes the endpoints of preserve-client listeners (of the listener's family: others
/// are never forwarded to), marks shared ones on their backends and the listeners they
/// serve as steered, and lists them.
fn index_endpoints(listeners: &mut [Listener]) -> (Vec<EndpointEntry>, Vec<SharedEndpoint>) {
    let mut served: BTreeMap<(IpAddr, u16), Vec<(u32, u32)>> = BTreeMap::new();
    for (li, l) in (0u32..).zip(listeners.iter()) {
        let Some(r) = l
            .route
            .as_ref()
            .filter(|_| l.nat_mode == NatMode::PreserveClient)
        else {
            continue;
        };
        for (bi, b) in (0u32..).zip(&r.backends) {
            if b.addr.is_ipv4() == l.vip.is_ipv4() {
                served
                    .entry((b.addr.ip(), b.addr.port()))
                    .or_default()
                    .push((li, bi));
            }
        }
    }
    let mut endpoints = Vec::with_capacity(served.len());
    let mut shared = Vec::new();
    for ((ip, port), by) in served {
        let owner = match by.as_slice() {
            [(listener, backend)] => EndpointOwner::Listener {
                listener: *listener,
                backend: *backend,
            },
            _ => {
                for &(li, bi) in &by {
                    let l = &mut listeners[li as usize];
                    l.steered = true;
                    if let Some(r) = &mut l.route {
                        r.backends[bi as usize].shared = true;
                    }
                }
                shared.push(SharedEndpoint {
                    addr: SocketAddr::new(ip, port),
                    listeners: by.iter().map(|&(li, _)| li).collect(),
                });
                EndpointOwner::Shared
            }
        };
        endpoints.push(EndpointEntry { ip, port, owner });
    }
    (endpoints, shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{BackendSpec, ListenerOptions, ListenerSpec, RouteSpec, WEIGHT_SCALE};

    pub(crate) fn listener(vip: &str, port: u16, backends: &[(&str, u64)]) -> ListenerSpec {
        ListenerSpec {
            vip: vip.parse().unwrap(),
            port,
            key: ListenerKey {
                namespace: "ns".into(),
                gateway: "gw".into(),
                listener: format!("l{port}"),
            },
            options: ListenerOptions::default(),
            route: Some(RouteSpec {
                key: RouteKey {
                    namespace: "ns".into(),
                    name: "r".into(),
                },
                backends: backends
                    .iter()
                    .map(|(a, w)| BackendSpec {
                        addr: a.parse().unwrap(),
                        service: ServiceKey {
                            namespace: "ns".into(),
                            name: "svc".into(),
                            port: 53,
                        },
                        weight: *w,
                        draining: false,
                        idle_timeout: None,
                    })
                    .collect(),
                dropped_weight: 0,
            }),
        }
    }

    #[test]
    fn lookup_finds_each_listener_and_nothing_else() {
        let cfg = ForwardingConfig {
            listeners: (1..=50)
                .map(|p| listener("198.19.0.10", p, &[("198.18.1.1:53", WEIGHT_SCALE)]))
                .collect(),
            ..ForwardingConfig::default()
        };
        let t = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        for p in 1..=50u16 {
            let i = t
                .lookup_listener("198.19.0.10".parse().unwrap(), p)
                .unwrap();
            assert_eq!(t.listeners()[i as usize].port, p);
        }
        assert_eq!(t.lookup_listener("198.19.0.10".parse().unwrap(), 51), None);
        assert_eq!(t.lookup_listener("198.19.0.11".parse().unwrap(), 1), None);
        assert!(t.is_vip("198.19.0.10".parse().unwrap()));
    }

    #[test]
    fn rejects_non_prime_and_small_sizes_naming_the_listener() {
        let cfg = ForwardingConfig {
            listeners: vec![listener(
                "198.19.0.10",
                53,
                &[("198.18.1.1:53", 1), ("198.18.1.2:53", 1)],
            )],
            ..ForwardingConfig::default()
        };
        let p = DataplaneParams {
            maglev_size: 65536,
            ..Default::default()
        };
        assert_eq!(
            Tables::build(&cfg, &p).unwrap_err(),
            TableError::SizeNotPrime { size: 65536 }
        );
        let p = DataplaneParams {
            maglev_size: 197,
            ..Default::default()
        };
        let e = Tables::build(&cfg, &p).unwrap_err();
        assert!(e.to_string().contains("ns/gw/l53"), "{e}");
        assert!(matches!(e, TableError::SizeTooSmall { required: 200, .. }));
    }

    #[test]
    fn a_listener_size_replaces_the_appliance_size_for_its_route_only() {
        let mut small = listener(
            "198.19.0.10",
            53,
            &[("198.18.1.1:53", 1), ("198.18.1.2:53", 1)],
        );
        small.options.maglev_size = Some(211);
        let cfg = ForwardingConfig {
            listeners: vec![
                small.clone(),
                listener("198.19.0.10", 54, &[("198.18.1.1:53", 1)]),
            ],
            ..ForwardingConfig::default()
        };
        let t = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        let sizes: Vec<usize> = t
            .listeners()
            .iter()
            .map(|l| l.route.as_ref().unwrap().maglev.slots().len())
            .collect();
        assert_eq!(sizes, [211, DEFAULT_MAGLEV_SIZE as usize]);
        // The same rules as the appliance size, counted as RouteSpec::maglev_entries does.
        let route = small.route.clone().unwrap();
        assert_eq!(route.maglev_entries(true), 2);
        small.options.maglev_size = Some(199);
        let cfg = ForwardingConfig {
            listeners: vec![small.clone()],
            ..ForwardingConfig::default()
        };
        assert!(matches!(
            Tables::build(&cfg, &DataplaneParams::default()),
            Err(TableError::SizeTooSmall {
                size: 199,
                backends: 2,
                required: 200,
                ..
            })
        ));
        small.options.maglev_size = Some(221);
        let cfg = ForwardingConfig {
            listeners: vec![small],
            ..ForwardingConfig::default()
        };
        assert_eq!(
            Tables::build(&cfg, &DataplaneParams::default()).unwrap_err(),
            TableError::SizeNotPrime { size: 221 }
        );
    }

    #[test]
    fn duplicate_listener_is_rejected() {
        let mut a = listener("198.19.0.10", 53, &[]);
        let b = a.clone();
        a.key.listener = "other".into();
        let cfg = ForwardingConfig {
            listeners: vec![a, b],
            ..ForwardingConfig::default()
        };
        assert!(matches!(
            Tables::build(&cfg, &DataplaneParams::default()),
            Err(TableError::DuplicateListener { port: 53, .. })
        ));
    }

    #[test]
    fn generations_increase() {
        let cfg = ForwardingConfig::default();
        let a = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        let b = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        assert!(b.generation() > a.generation());
    }

    #[test]
    fn other_family_backend_joins_the_dropped_share() {
        let cfg = ForwardingConfig {
            listeners: vec![listener(
                "198.19.0.10",
                53,
                &[("198.18.1.1:53", 1), ("[2001:2::1]:53", 1)],
            )],
            ..ForwardingConfig::default()
        };
        let t = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        let r = t.listeners()[0].route.as_ref().unwrap();
        assert_eq!(r.dropped_weight, 1);
        let drops = r
            .maglev
            .slots()
            .iter()
            .filter(|&&s| s == maglev::DROP)
            .count();
        assert!((32700..32840).contains(&drops), "{drops}");
    }

    /// Endpoints of preserve-client listeners are indexed: one listener → that listener
    /// and the backend's index; several → shared (listed, their backends marked, their
    /// listeners steered). FullNAT and DSR listeners' endpoints, and backends of the
    /// other family, are not indexed and make nothing shared.
    #[test]
    fn endpoints_of_preserve_client_listeners_are_indexed() {
        let with_mode = |mut l: ListenerSpec, m: NatMode| {
            l.options.nat_mode = Some(m);
            l
        };
        let pc = |vip, port, b: &[(&str, u64)]| {
            with_mode(listener(vip, port, b), NatMode::PreserveClient)
        };
        let cfg = ForwardingConfig {
            listeners: vec![
                // 198.18.1.1:53 behind two preserve-client VIPs: shared.
                pc(
                    "198.19.0.10",
                    53,
                    &[("198.18.1.1:53", 1), ("198.18.1.2:53", 1)],
                ),
                pc("198.19.0.11", 53, &[("198.18.1.1:53", 1)]),
                // Same address, other port: another endpoint, unique.
                pc(
                    "198.19.0.12",
                    53,
                    &[("198.18.1.1:54", 1), ("[2001:2::1]:53", 1)],
                ),
                // FullNAT and DSR users of 198.18.1.2:53 do not make it shared.
                with_mode(
                    listener("198.19.0.13", 53, &[("198.18.1.2:53", 1)]),
                    NatMode::FullNat,
                ),
                with_mode(
                    listener("198.19.0.14", 53, &[("198.18.1.2:53", 1)]),
                    NatMode::Dsr,
                ),
            ],
            ..ForwardingConfig::default()
        };
        let t = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let li = |vip: &str| t.lookup_listener(ip(vip), 53).unwrap();
        assert_eq!(
            t.lookup_endpoint(ip("198.18.1.1"), 53),
            Some(EndpointOwner::Shared)
        );
        assert_eq!(
            t.lookup_endpoint(ip("198.18.1.2"), 53),
            Some(EndpointOwner::Listener {
                listener: li("198.19.0.10"),
                backend: 1
            })
        );
        assert_eq!(
            t.lookup_endpoint(ip("198.18.1.1"), 54),
            Some(EndpointOwner::Listener {
                listener: li("198.19.0.12"),
                backend: 0
            })
        );
        assert_eq!(t.lookup_endpoint(ip("2001:2::1"), 53), None, "other family");
        assert_eq!(t.lookup_endpoint(ip("198.18.1.3"), 53), None);
        let mut both = vec![li("198.19.0.10"), li("198.19.0.11")];
        both.sort_unstable();
        assert_eq!(
            t.shared_endpoints(),
            &[SharedEndpoint {
                addr: "198.18.1.1:53".parse().unwrap(),
                listeners: both
            }]
        );
        let steered: Vec<bool> = t.listeners().iter().map(|l| l.steered).collect();
        assert_eq!(steered, [true, true, false, false, false]);
        let shared = |vip: &str| -> Vec<bool> {
            let r = t.listeners()[li(vip) as usize].route.as_ref().unwrap();
            r.backends.iter().map(|b| b.shared).collect()
        };
        assert_eq!(shared("198.19.0.10"), [true, false]);
        assert_eq!(shared("198.19.0.11"), [true]);
        assert_eq!(shared("198.19.0.13"), [false]);

        // Many endpoints: every one is found (the index probes correctly).
        let many = ForwardingConfig {
            listeners: (1..=40u16)
                .map(|p| {
                    let b: Vec<String> = (1..=25).map(|n| format!("198.18.{p}.{n}:{p}")).collect();
                    let b: Vec<(&str, u64)> = b.iter().map(|s| (s.as_str(), 1)).collect();
                    pc("198.19.0.10", p, &b)
                })
                .collect(),
            ..ForwardingConfig::default()
        };
        let t = Tables::build(&many, &DataplaneParams::default()).unwrap();
        for p in 1..=40u16 {
            for n in 1..=25u8 {
                let [_, lo] = p.to_be_bytes();
                let found = t.lookup_endpoint(IpAddr::from([198, 18, lo, n]), p);
                let backend = match found {
                    Some(EndpointOwner::Listener { backend, .. }) => Some(backend),
                    _ => None,
                };
                assert_eq!(backend, Some(u32::from(n - 1)), "{p} {n}: {found:?}");
            }
        }
        assert!(t.shared_endpoints().is_empty());
    }
}

//! The forwarding specification: what the control plane (`config`) compiles Gateway API
//! objects into, and what the fast path builds its lookup tables from.
//!
//! As with Katran's BPF maps, the data plane owns this format and the control plane fills
//! it. It is plain data: no hashing state, no Maglev tables, nothing machine-dependent, so
//! two appliances given the same objects compile the same value, and tests compare values
//! with `==`. [`ForwardingConfig::normalize`] puts every list in its canonical order.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Fixed-point scale for endpoint weights.
///
/// A backendRef of weight `w` over `k` ready endpoints gives each endpoint
/// `w * WEIGHT_SCALE / k`. 720720 is divisible by every integer from 1 to 16, so the common
/// cases split exactly; any remainder error is below one part in 720720.
pub const WEIGHT_SCALE: u64 = 720_720;

/// Everything the fast path needs to know about the Gateway API objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardingConfig {
    /// One entry per served (VIP, UDP port); sorted by `(vip, port)`, unique.
    pub listeners: Vec<ListenerSpec>,
}

/// Identity of a Gateway listener: `namespace/gateway/listener`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerKey {
    /// Namespace of the Gateway.
    pub namespace: String,
    /// Name of the Gateway.
    pub gateway: String,
    /// `spec.listeners[].name`.
    pub listener: String,
}

/// Identity of a UDPRoute: `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// Namespace of the route.
    pub namespace: String,
    /// Name of the route.
    pub name: String,
}

/// Identity of a backend Service port that a backendRef names: `namespace/name:port`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// The Service port (not the target port).
    pub port: u16,
}

/// How the source of forwarded datagrams is rewritten.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NatMode {
    /// Client→VIP becomes SNAT address:allocated port → backend; replies are reversed.
    #[default]
    FullNat,
    /// Only the destination is rewritten; the backend sees the client address and must
    /// route its replies back through the appliance.
    PreserveClient,
}

/// Which packet fields choose the backend for a new flow (and key the flow table).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashKey {
    /// Source IP, source port, destination IP, destination port (protocol is always UDP).
    #[default]
    FiveTuple,
    /// Source IP and port: every destination port of a listener behaves alike.
    SourceIpPort,
    /// Source IP only: client affinity across source ports.
    SourceIp,
}

/// Per-listener behaviour that the Gateway API leaves to the implementation. `None` means
/// "use the appliance default".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    /// NAT mode override.
    pub nat_mode: Option<NatMode>,
    /// Flow idle timeout override.
    pub idle_timeout: Option<Duration>,
    /// Hash key override.
    pub hash_key: Option<HashKey>,
}

/// One served (VIP, UDP port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Destination address of client datagrams.
    pub vip: IpAddr,
    /// Destination UDP port of client datagrams.
    pub port: u16,
    /// The Gateway listener this entry comes from.
    pub key: ListenerKey,
    /// Implementation-specific options (from annotations, see config/README.md).
    pub options: ListenerOptions,
    /// The route that carries this listener's traffic (the oldest attached one); `None`
    /// when no route is attached: datagrams are dropped and counted as `no_route`.
    pub route: Option<RouteSpec>,
}

/// The winning route of a listener, reduced to a weighted endpoint set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// The UDPRoute.
    pub key: RouteKey,
    /// Concrete endpoints, sorted by `addr`, unique by `addr` (an endpoint reached through
    /// several backendRefs has their weights summed).
    pub backends: Vec<BackendSpec>,
    /// Scaled weight (see [`WEIGHT_SCALE`]) of invalid backendRefs (missing Service,
    /// no ready endpoints, refused reference, invalid kind): that share of new flows is
    /// dropped and answered with ICMP unreachable, never spread over valid backends.
    pub dropped_weight: u64,
}

/// One concrete endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Endpoint address and port: the backend's stable identity across configs.
    pub addr: SocketAddr,
    /// The Service port it was reached through (the first in sort order if several).
    pub service: ServiceKey,
    /// Scaled weight (see [`WEIGHT_SCALE`]); 0 takes no new flows.
    pub weight: u64,
    /// EndpointSlice says terminating or not ready: no new flows, pinned flows stay.
    pub draining: bool,
}

impl ForwardingConfig {
    /// Sorts every list into canonical order, so equal inputs compare equal.
    pub fn normalize(&mut self) {
        self.listeners.sort_by_key(|l| (l.vip, l.port));
        for l in &mut self.listeners {
            if let Some(r) = &mut l.route {
                r.backends.sort_by_key(|b| b.addr);
            }
        }
    }
}

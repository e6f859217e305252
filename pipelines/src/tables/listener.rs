//! What a worker reads per served (VIP, port): the [`Listener`] with its effective
//! options, its [`Route`] (backends and Maglev table) and each [`Backend`].

use std::net::{IpAddr, SocketAddr};

use crate::maglev::{self, Maglev};
use crate::spec::{HashKey, ListenerKey, NatMode, RouteKey, ServiceKey};

#[cfg(doc)]
use super::Tables;
#[cfg(doc)]
use crate::spec::BackendSpec;

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

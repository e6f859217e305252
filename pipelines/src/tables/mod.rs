//! The compiled, immutable lookup tables the workers read: listeners by (VIP, port), each
//! with its route's backends and Maglev table.
//!
//! Built once per configuration by the management thread from a
//! [`ForwardingConfig`](crate::spec::ForwardingConfig) and published whole as
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
//!
//! Modules: `params` (the appliance-wide [`DataplaneParams`] and their defaults),
//! `listener` (what a worker reads per listener: [`Listener`], [`Route`], [`Backend`]),
//! `build` ([`Tables::build`] and its [`TableError`]s), `index` (the open-addressing
//! indexes by address and port) and `endpoints` (the endpoints of preserve-client
//! listeners, shared or not).

use std::net::{IpAddr, SocketAddr};

use crate::net::{AddrSet, MacAddr};
use crate::spec::RouteKey;

mod build;
mod endpoints;
mod index;
mod listener;
mod params;

pub use build::TableError;
pub use endpoints::{EndpointOwner, SharedEndpoint};
pub use listener::{Backend, Listener, Route, SlotOwner};
pub use params::{DataplaneParams, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAGLEV_SEED, DEFAULT_MAGLEV_SIZE};

use endpoints::EndpointEntry;

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

impl Tables {
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
        let i = index::probe(
            &self.endpoint_index,
            self.params.maglev_seed,
            ip,
            port,
            |i| {
                self.endpoints
                    .get(i)
                    .is_some_and(|e| e.port == port && e.ip == ip)
            },
        )?;
        self.endpoints.get(i as usize).map(|e| e.owner)
    }

    /// Listener index serving (`vip`, `port`). No allocation; O(1) expected.
    #[inline]
    pub fn lookup_listener(&self, vip: IpAddr, port: u16) -> Option<u32> {
        index::probe(&self.index, self.params.maglev_seed, vip, port, |i| {
            self.listeners
                .get(i)
                .is_some_and(|l| l.port == port && l.vip == vip)
        })
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

/// Spec builders for the tests of every table module.
#[cfg(test)]
mod fixtures {
    use crate::spec::{
        BackendSpec, ListenerKey, ListenerOptions, ListenerSpec, RouteKey, RouteSpec, ServiceKey,
    };

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
}

#[cfg(test)]
mod tests {
    use super::fixtures::listener;
    use super::*;
    use crate::spec::{ForwardingConfig, WEIGHT_SCALE};

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
    fn generations_increase() {
        let cfg = ForwardingConfig::default();
        let a = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        let b = Tables::build(&cfg, &DataplaneParams::default()).unwrap();
        assert!(b.generation() > a.generation());
    }
}

//! The backend endpoints of preserve-client listeners, by (address, port): whom their
//! replies belong to, and which of them are shared by several listeners.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use super::Listener;
use crate::spec::NatMode;

#[cfg(doc)]
use super::Tables;

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
pub(super) struct EndpointEntry {
    pub(super) ip: IpAddr,
    pub(super) port: u16,
    pub(super) owner: EndpointOwner,
}

/// Indexes the endpoints of preserve-client listeners (of the listener's family: others
/// are never forwarded to), marks shared ones on their backends and the listeners they
/// serve as steered, and lists them.
pub(super) fn index_endpoints(
    listeners: &mut [Listener],
) -> (Vec<EndpointEntry>, Vec<SharedEndpoint>) {
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
    use super::super::fixtures::listener;
    use super::super::{DataplaneParams, Tables};
    use super::*;
    use crate::spec::{ForwardingConfig, ListenerSpec};

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

//! [`Tables::build`]: listeners sorted by (VIP, port) and checked for duplicates, each
//! route's backends with their effective timeouts and its Maglev table (size checked),
//! then the lookup indexes. A new build gets the next generation.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::endpoints::index_endpoints;
use super::index::open_index;
use super::{Backend, DataplaneParams, Listener, Route, Tables};
use crate::hash::ip16;
use crate::maglev::{self, Endpoint, Maglev};
use crate::net::{AddrSet, MacAddr};
use crate::spec::{
    BackendSpec, FlowTimeouts, ForwardingConfig, ListenerKey, ListenerSpec, NatMode, RouteKey,
    RouteSpec, DEFAULT_UNREPLIED_TIMEOUT, MAGLEV_SLOTS_PER_ENTRY,
};

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
        let mut ids = Ids::default();
        let mut listeners = Vec::with_capacity(specs.len());
        for (li, l) in specs.iter().enumerate() {
            let li = u32::try_from(li).map_err(|_| TableError::TooMany { what: "listeners" })?;
            let timeouts = l
                .options
                .flow_timeouts(params.default_idle_timeout, DEFAULT_UNREPLIED_TIMEOUT);
            let route = match &l.route {
                None => None,
                Some(r) => Some(build_route(l, li, r, timeouts, params, &mut ids)?),
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
            route_keys: ids.route_keys,
            backend_ids: ids.backend_ids,
            endpoints,
            endpoint_index,
            shared,
        })
    }
}

/// Counter indices handed out so far: distinct routes, and every backend with its
/// listener.
#[derive(Default)]
struct Ids {
    route_keys: Vec<RouteKey>,
    backend_ids: Vec<(u32, SocketAddr)>,
}

/// The route of listener `li` (spec `l`): its backends, sorted and deduplicated by
/// address, with their timeouts, and its Maglev table.
fn build_route(
    l: &ListenerSpec,
    li: u32,
    r: &RouteSpec,
    timeouts: FlowTimeouts,
    params: &DataplaneParams,
    ids: &mut Ids,
) -> Result<Route, TableError> {
    let counter_idx = match ids.route_keys.iter().position(|k| *k == r.key) {
        Some(i) => i,
        None => {
            ids.route_keys.push(r.key.clone());
            ids.route_keys.len() - 1
        }
    };
    let mut specs_sorted: Vec<&BackendSpec> = r.backends.iter().collect();
    specs_sorted.sort_by_key(|b| b.addr);
    specs_sorted.dedup_by(|a, b| a.addr == b.addr);
    let mut dropped_weight = r.dropped_weight;
    let mut backends = Vec::with_capacity(specs_sorted.len());
    let mut endpoints = Vec::with_capacity(specs_sorted.len() + 1);
    for (bi, b) in specs_sorted.iter().enumerate() {
        let counter_idx = u32::try_from(ids.backend_ids.len())
            .map_err(|_| TableError::TooMany { what: "backends" })?;
        ids.backend_ids.push((li, b.addr));
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
        let dsr = l.options.nat_mode.unwrap_or(params.default_nat_mode) == NatMode::Dsr;
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
    let required = MAGLEV_SLOTS_PER_ENTRY * endpoints.len() as u64;
    if u64::from(size) < required {
        return Err(TableError::SizeTooSmall {
            listener: listener_name(&l.key),
            size,
            backends: endpoints.len(),
            required,
        });
    }
    let maglev = Maglev::build(&endpoints, size, params.maglev_seed);
    Ok(Route {
        key: r.key.clone(),
        counter_idx: u32::try_from(counter_idx)
            .map_err(|_| TableError::TooMany { what: "routes" })?,
        backends,
        dropped_weight,
        maglev,
    })
}

/// A timeout in ns, saturating (settings, annotations and policies bound it to 24 h).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A timeout in ms, saturating.
fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::listener;
    use super::super::DEFAULT_MAGLEV_SIZE;
    use super::*;

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
}

//! Resolving backendRefs to concrete endpoints, and weighting them.
//!
//! A backendRef of weight `w` is worth `w * WEIGHT_SCALE`. That share is split evenly
//! (integer division) over the ref's ready endpoints of the VIP's address family, or
//! dropped when the ref is invalid or has no such endpoint: an invalid backend's share
//! is never spread over the valid ones.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pipelines::spec::{BackendSpec, RouteKey, RouteSpec, ServiceKey, WEIGHT_SCALE};

use crate::index::Index;
use crate::model::{
    BackendRef, EndpointSlice, IntOrString, Service, ServicePort, UdpRoute, GATEWAY_GROUP,
};

/// What one backendRef resolved to.
#[derive(Clone, Debug)]
pub(crate) enum Resolved {
    /// Not usable: the reason is a route `ResolvedRefs` reason.
    Invalid {
        reason: &'static str,
        message: String,
    },
    /// A Service port and its endpoints (address, draining), unique by address, and
    /// the Service's `ClientIP` affinity timeout, if it asks for that affinity.
    Service {
        key: ServiceKey,
        endpoints: BTreeMap<SocketAddr, bool>,
        affinity: Option<Duration>,
    },
}

/// One backendRef with its weight (default 1) and resolution.
#[derive(Clone, Debug)]
pub(crate) struct WeightedRef {
    pub(crate) weight: u64,
    pub(crate) resolved: Resolved,
}

/// Resolves every backendRef of every rule (several v1alpha2 rules merge into one set).
pub(crate) fn resolve_route(index: &Index<'_>, route: &UdpRoute) -> Vec<WeightedRef> {
    route
        .spec
        .rules
        .iter()
        .flat_map(|rule| rule.backend_refs.iter())
        .map(|b| WeightedRef {
            weight: b.weight.and_then(|w| u64::try_from(w).ok()).unwrap_or(1),
            resolved: resolve(index, route, b),
        })
        .collect()
}

fn resolve(index: &Index<'_>, route: &UdpRoute, b: &BackendRef) -> Resolved {
    let namespace = b.namespace.as_deref().unwrap_or(&route.meta.namespace);
    let what = format!("backendRef {namespace}/{}", b.name);
    if !b.is_service() {
        return Resolved::Invalid {
            reason: "InvalidKind",
            message: format!(
                "{what}: kind {:?} in group {:?} is not supported (only core Service)",
                b.kind(),
                b.group()
            ),
        };
    }
    if namespace != route.meta.namespace
        && !granted(index, &route.meta.namespace, namespace, &b.name)
    {
        return Resolved::Invalid {
            reason: "RefNotPermitted",
            message: format!(
                "{what}: no ReferenceGrant in namespace {namespace} allows UDPRoutes from \
                 namespace {} to refer to Service {}",
                route.meta.namespace, b.name
            ),
        };
    }
    let Some(service) = index.service(namespace, &b.name) else {
        return Resolved::Invalid {
            reason: "BackendNotFound",
            message: format!("{what}: Service not found"),
        };
    };
    if service.spec.kind.as_deref() == Some("ExternalName") {
        return Resolved::Invalid {
            reason: "InvalidKind",
            message: format!("{what}: ExternalName Services are not supported"),
        };
    }
    let port = b.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
    let Some(service_port) = pick_service_port(service, port) else {
        return Resolved::Invalid {
            reason: "BackendNotFound",
            message: format!("{what}: Service has no port {port}"),
        };
    };
    let key = ServiceKey {
        namespace: namespace.into(),
        name: b.name.clone(),
        port,
    };
    let endpoints = index
        .slices(namespace, &b.name)
        .iter()
        .flat_map(|slice| slice_endpoints(slice, service_port))
        .fold(BTreeMap::new(), |mut acc, (addr, draining)| {
            // Listed twice (two slices): ready wins.
            let entry = acc.entry(addr).or_insert(draining);
            *entry &= draining;
            acc
        });
    Resolved::Service {
        key,
        endpoints,
        affinity: service.client_ip_affinity(),
    }
}

/// A Service port by number; the UDP one when TCP and UDP share the number.
pub(crate) fn pick_service_port(service: &Service, port: u16) -> Option<&ServicePort> {
    let matching = || {
        service
            .spec
            .ports
            .iter()
            .filter(|p| p.port == i64::from(port))
    };
    matching()
        .find(|p| p.protocol.as_deref() == Some("UDP"))
        .or_else(|| matching().next())
}

/// The endpoints of one slice for one Service port: the slice port with the Service
/// port's name, else a numeric targetPort (or the port itself when targetPort is absent).
fn slice_endpoints(slice: &EndpointSlice, service_port: &ServicePort) -> Vec<(SocketAddr, bool)> {
    let name = service_port.name.as_deref().unwrap_or("");
    let named: Vec<_> = slice
        .ports
        .iter()
        .filter(|p| p.name.as_deref().unwrap_or("") == name)
        .filter_map(|p| Some((p.protocol.as_deref(), u16::try_from(p.port?).ok()?)))
        .collect();
    let by_name = named
        .iter()
        .find(|(proto, _)| *proto == Some("UDP"))
        .or_else(|| named.first())
        .map(|(_, port)| *port);
    let port = by_name.or_else(|| match &service_port.target_port {
        Some(IntOrString::Int(n)) => u16::try_from(*n).ok(),
        None => u16::try_from(service_port.port).ok(),
        Some(IntOrString::String(_)) => None,
    });
    let Some(port) = port else {
        return Vec::new();
    };
    slice
        .endpoints
        .iter()
        .flat_map(|e| {
            let draining = e.conditions.draining();
            e.addresses
                .iter()
                .filter_map(|a| a.parse::<IpAddr>().ok())
                .map(move |ip| (SocketAddr::new(ip, port), draining))
        })
        .collect()
}

/// A ReferenceGrant in `target_ns` lets UDPRoutes in `from_ns` refer to Service `name`.
fn granted(index: &Index<'_>, from_ns: &str, target_ns: &str, name: &str) -> bool {
    index.grants(target_ns).iter().any(|g| {
        let from_ok =
            g.spec.from.iter().any(|f| {
                f.group == GATEWAY_GROUP && f.kind == "UDPRoute" && f.namespace == from_ns
            });
        let to_ok = g.spec.to.iter().any(|t| {
            matches!(t.group.as_str(), "" | "core")
                && t.kind == "Service"
                && t.name.as_deref().is_none_or(|n| n == name)
        });
        from_ok && to_ok
    })
}

/// The weighted endpoint set of a route for VIPs of one address family. An endpoint of a
/// Service with `ClientIP` affinity gets that affinity's timeout (the longest, if several
/// such Services reach it); the caller clears it when the listener does not hash on the
/// source IP.
pub(crate) fn route_spec(key: RouteKey, refs: &[WeightedRef], ipv4: bool) -> RouteSpec {
    // addr -> (service, weight, any ready contribution, affinity timeout)
    let mut backends: BTreeMap<SocketAddr, (ServiceKey, u64, bool, Option<Duration>)> =
        BTreeMap::new();
    let mut dropped_weight = 0u64;
    for r in refs {
        let share = r.weight.saturating_mul(WEIGHT_SCALE);
        let Resolved::Service {
            key,
            endpoints,
            affinity,
        } = &r.resolved
        else {
            dropped_weight = dropped_weight.saturating_add(share);
            continue;
        };
        let family: Vec<(SocketAddr, bool)> = endpoints
            .iter()
            .filter(|(a, _)| a.is_ipv4() == ipv4)
            .map(|(a, d)| (*a, *d))
            .collect();
        let ready = family.iter().filter(|(_, d)| !d).count();
        if ready == 0 {
            dropped_weight = dropped_weight.saturating_add(share);
        }
        let each = if ready == 0 { 0 } else { share / ready as u64 };
        for (addr, draining) in family {
            let entry = backends
                .entry(addr)
                .or_insert_with(|| (key.clone(), 0, false, None));
            if *key < entry.0 {
                entry.0 = key.clone();
            }
            if !draining {
                entry.1 = entry.1.saturating_add(each);
                entry.2 = true;
            }
            entry.3 = entry.3.max(*affinity);
        }
    }
    RouteSpec {
        key,
        backends: backends
            .into_iter()
            .map(
                |(addr, (service, weight, ready, idle_timeout))| BackendSpec {
                    addr,
                    service,
                    weight,
                    draining: !ready,
                    idle_timeout,
                },
            )
            .collect(),
        dropped_weight,
    }
}

/// Services (by key) with no ready endpoint in either family.
pub(crate) fn without_ready_endpoints(refs: &[WeightedRef]) -> Vec<&ServiceKey> {
    let mut out: Vec<&ServiceKey> = refs
        .iter()
        .filter_map(|r| match &r.resolved {
            Resolved::Service { key, endpoints, .. } if endpoints.values().all(|d| *d) => Some(key),
            _ => None,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

//! The forwarding spec: the winning route of every served listener compiled per VIP, with
//! the listener options and affinity timeouts policies and annotations give it, and the
//! health checks of the Service ports it forwards to.

use std::collections::BTreeMap;
use std::net::IpAddr;

use pipelines::spec::{ForwardingConfig, ListenerKey, ListenerSpec, RouteKey, RouteSpec};

use super::gateways::{unserved, GatewayState};
use crate::backends::{route_spec, WeightedRef};
use crate::effective::{self, HealthChecks, RouteNotes};
use crate::model::UdpRoute;
use crate::policy::{Evaluation, Topology};

fn route_key(r: &UdpRoute) -> RouteKey {
    RouteKey {
        namespace: r.meta.namespace.clone(),
        name: r.meta.name.clone(),
    }
}

/// The winning route of every served listener, compiled for each VIP: (Gateway,
/// listener) → (VIP, route).
pub(super) type Served = BTreeMap<(usize, usize), Vec<(IpAddr, Option<RouteSpec>)>>;

pub(super) fn served_routes(
    gateways: &[GatewayState<'_>],
    routes: &[&UdpRoute],
    resolved: &[Vec<WeightedRef>],
) -> Served {
    let mut served = Served::new();
    for (gi, g) in gateways.iter().enumerate() {
        for (li, l) in g.listeners.iter().enumerate() {
            if unserved(g, l).is_some() {
                continue;
            }
            let winner = l.routes.first().copied();
            let per_vip = g
                .vips
                .iter()
                .map(|vip| {
                    let route = winner
                        .map(|ri| route_spec(route_key(routes[ri]), &resolved[ri], vip.is_ipv4()));
                    (*vip, route)
                })
                .collect();
            served.insert((gi, li), per_vip);
        }
    }
    served
}

/// One entry per (VIP, port) of every programmed UDP listener, and the health checks of
/// the Service ports they forward to.
pub(super) fn forwarding(
    gateways: &[GatewayState<'_>],
    served: Served,
    topo: &Topology<'_>,
    eval: &mut Evaluation<'_>,
    notes: &mut RouteNotes,
) -> ForwardingConfig {
    let mut config = ForwardingConfig::default();
    let mut listener_options = BTreeMap::new();
    for &(gi, li) in served.keys() {
        let g = &gateways[gi];
        let options =
            effective::listener_options(topo, eval, gi, li, &g.gw.meta.annotations, notes);
        listener_options.insert((gi, li), options);
    }
    let mut health = HealthChecks::default();
    for ((gi, li), per_vip) in served {
        let g = &gateways[gi];
        let l = &g.listeners[li];
        let key = ListenerKey {
            namespace: g.gw.meta.namespace.clone(),
            gateway: g.gw.meta.name.clone(),
            listener: l.spec.name.clone(),
        };
        let options = listener_options[&(gi, li)];
        for (vip, mut route) in per_vip {
            if let Some(r) = &mut route {
                effective::affinity_timeouts(r, &options);
            }
            if let Some(ri) = l.routes.first() {
                health.add(topo, eval, gi, &topo.refs[*ri], vip);
            }
            config.listeners.push(ListenerSpec {
                vip,
                port: l.port,
                key: key.clone(),
                options,
                route,
            });
        }
    }
    config.health_checks = health.finish();
    config.normalize();
    config
}

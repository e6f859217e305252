//! A route's parentRefs: each one that names a Gateway of ours attaches the route to the
//! listeners it selects and that admit it, or is refused with the Gateway API reason.

use std::collections::HashMap;

use super::gateways::GatewayState;
use crate::attach::{admits_namespace, UDP_ROUTE};
use crate::index::Index;
use crate::model::{UdpRoute, GATEWAY_GROUP};
use crate::status::ParentRefStatus;

/// How one parentRef of a route came out.
pub(super) enum Attachment {
    /// Accepted on these listeners of `gateways[gateway]`.
    Accepted {
        gateway: usize,
        listeners: Vec<usize>,
    },
    /// Refused on `gateways[gateway]`.
    Refused {
        reason: &'static str,
        message: String,
    },
}

/// Every parentRef of every route (in age order), as route status echoes it, with its
/// outcome (`None`: not a Gateway of ours, no status). Records the accepted routes on
/// the listeners.
pub(super) fn attach_routes(
    index: &Index<'_>,
    gateways: &mut [GatewayState<'_>],
    routes: &[&UdpRoute],
) -> Vec<Vec<(ParentRefStatus, Option<Attachment>)>> {
    // Position in `gateways` by namespace/name, for parentRefs.
    let gateway_at: HashMap<String, usize> = gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id(), i))
        .collect();
    let mut attachments = Vec::with_capacity(routes.len());
    for (ri, route) in routes.iter().enumerate() {
        let mut per_route = Vec::new();
        for p in &route.spec.parent_refs {
            let parent = ParentRefStatus {
                group: p.group.clone().unwrap_or_else(|| GATEWAY_GROUP.into()),
                kind: p.kind.clone().unwrap_or_else(|| "Gateway".into()),
                namespace: p
                    .namespace
                    .clone()
                    .unwrap_or_else(|| route.meta.namespace.clone()),
                name: p.name.clone(),
                section_name: p.section_name.clone(),
                port: p.port.and_then(|x| u16::try_from(x).ok()),
            };
            let gi = gateway_at
                .get(&format!("{}/{}", parent.namespace, parent.name))
                .copied();
            let outcome = attach(index, gateways, gi, ri, route, &parent);
            per_route.push((parent, outcome));
        }
        attachments.push(per_route);
    }
    attachments
}

/// Attaches route `ri` to the parent, per the Gateway API rules; `None` when the parent
/// is not a Gateway of ours (no status is written for it).
fn attach(
    index: &Index<'_>,
    gateways: &mut [GatewayState<'_>],
    gi: Option<usize>,
    ri: usize,
    route: &UdpRoute,
    parent: &ParentRefStatus,
) -> Option<Attachment> {
    if parent.group != GATEWAY_GROUP || parent.kind != "Gateway" {
        return None;
    }
    let gi = gi?;
    let g = &mut gateways[gi];
    let candidates: Vec<usize> = g
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| {
            parent
                .section_name
                .as_ref()
                .is_none_or(|s| *s == l.spec.name)
        })
        .filter(|(_, l)| parent.port.is_none_or(|p| p == l.port))
        .map(|(i, _)| i)
        .collect();
    if candidates.is_empty() {
        return Some(Attachment::Refused {
            reason: "NoMatchingParent",
            message: format!(
                "Gateway {}/{} has no listener{}{}",
                parent.namespace,
                parent.name,
                parent
                    .section_name
                    .as_ref()
                    .map(|s| format!(" named {s:?}"))
                    .unwrap_or_default(),
                parent
                    .port
                    .map(|p| format!(" on port {p}"))
                    .unwrap_or_default()
            ),
        });
    }
    let gateway_ns = g.gw.meta.namespace.clone();
    let allowed: Vec<usize> = candidates
        .into_iter()
        .filter(|&li| {
            let l = &g.listeners[li];
            l.udp
                && l.supported.iter().any(|k| k.kind == UDP_ROUTE)
                && admits_namespace(index, l.spec, &gateway_ns, &route.meta.namespace)
        })
        .collect();
    if allowed.is_empty() {
        return Some(Attachment::Refused {
            reason: "NotAllowedByListeners",
            message: format!(
                "no selected listener of Gateway {}/{} accepts UDPRoutes from namespace {} \
                 (listener protocol, allowedRoutes.kinds or allowedRoutes.namespaces)",
                parent.namespace, parent.name, route.meta.namespace
            ),
        });
    }
    for &li in &allowed {
        g.listeners[li].routes.insert(ri);
    }
    Some(Attachment::Accepted {
        gateway: gi,
        listeners: allowed,
    })
}

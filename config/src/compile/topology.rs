//! The view of Gateways, listeners and routes that policy attachment works on.

use super::forwarding::Served;
use super::gateways::{unserved, GatewayState};
use super::parents::Attachment;
use super::CompileParams;
use crate::backends::WeightedRef;
use crate::index::Index;
use crate::model::UdpRoute;
use crate::policy::{GatewayView, ListenerView, ParentView, Topology};
use crate::status::ParentRefStatus;

/// What policies need to know of the Gateways and routes.
pub(super) fn topology<'a>(
    index: &'a Index<'a>,
    gateways: &'a [GatewayState<'a>],
    routes: &'a [&'a UdpRoute],
    attachments: &'a [Vec<(ParentRefStatus, Option<Attachment>)>],
    resolved: &'a [Vec<WeightedRef>],
    served: &Served,
    params: &'a CompileParams,
) -> Topology<'a> {
    let gateways = gateways
        .iter()
        .enumerate()
        .map(|(gi, g)| GatewayView {
            namespace: &g.gw.meta.namespace,
            name: &g.gw.meta.name,
            listeners: g
                .listeners
                .iter()
                .enumerate()
                .map(|(li, l)| ListenerView {
                    name: &l.spec.name,
                    unserved: unserved(g, l),
                    winner: l.routes.first().copied(),
                    entries: served
                        .get(&(gi, li))
                        .into_iter()
                        .flatten()
                        .filter_map(|(vip, r)| Some(r.as_ref()?.maglev_entries(vip.is_ipv4())))
                        .max()
                        .unwrap_or(0),
                })
                .collect(),
        })
        .collect();
    let parents = attachments
        .iter()
        .map(|per_route| {
            per_route
                .iter()
                .map(|(parent, outcome)| ParentView {
                    parent,
                    accepted: match outcome {
                        Some(Attachment::Accepted { gateway, listeners }) => {
                            Some((*gateway, listeners.as_slice()))
                        }
                        _ => None,
                    },
                })
                .collect()
        })
        .collect();
    Topology {
        gateways,
        routes,
        parents,
        refs: resolved,
        index,
        controller_name: &params.controller_name,
    }
}

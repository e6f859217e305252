//! A route's status: per parentRef of ours, Accepted (with the listeners where an older
//! route carries the traffic, and policy notes), ResolvedRefs, and the policy that
//! affects it.

use super::gateways::GatewayState;
use super::parents::Attachment;
use super::{affected, CompileParams};
use crate::backends::{without_ready_endpoints, Resolved, WeightedRef};
use crate::effective::RouteNotes;
use crate::model::UdpRoute;
use crate::policy::Evaluation;
use crate::status::{Condition, ParentRefStatus, RouteParentStatus, RouteReport, RouteStatus};

/// What a route's report needs besides its own parents and refs.
pub(super) struct RouteView<'a> {
    pub(super) ri: usize,
    pub(super) route: &'a UdpRoute,
    pub(super) gateways: &'a [GatewayState<'a>],
    pub(super) routes: &'a [&'a UdpRoute],
    pub(super) eval: &'a Evaluation<'a>,
    pub(super) notes: &'a RouteNotes,
}

/// The status of one route.
pub(super) fn route_report(
    v: &RouteView<'_>,
    parents: &[(ParentRefStatus, Option<Attachment>)],
    refs: &[WeightedRef],
    params: &CompileParams,
) -> RouteReport {
    let (ri, route) = (v.ri, v.route);
    let generation = route.meta.generation;
    let resolved_refs = resolved_refs_condition(refs, generation);
    let parents = parents
        .iter()
        .enumerate()
        .filter_map(|(pi, (parent, outcome))| {
            let accepted = match outcome.as_ref()? {
                Attachment::Refused { reason, message } => {
                    Condition::new("Accepted", false, reason, message.clone(), generation)
                }
                Attachment::Accepted { gateway, listeners } => {
                    let g = &v.gateways[*gateway];
                    let mut notes: Vec<String> = listeners
                        .iter()
                        .filter_map(|&li| {
                            let l = &g.listeners[li];
                            let winner = *l.routes.first()?;
                            (winner != ri).then(|| {
                                let w = &v.routes[winner].meta;
                                format!(
                                    "not carrying traffic on listener {:?}: {}/{} is older",
                                    l.spec.name, w.namespace, w.name
                                )
                            })
                        })
                        .collect();
                    for &li in listeners {
                        if let Some(n) = v.notes.get(&(ri, *gateway, li)) {
                            notes.extend(n.iter().cloned());
                        }
                    }
                    let message = if notes.is_empty() {
                        "Route is accepted".to_owned()
                    } else {
                        format!("Route is accepted; {}", notes.join("; "))
                    };
                    Condition::new("Accepted", true, "Accepted", message, generation)
                }
            };
            let mut conditions = vec![accepted, resolved_refs.clone()];
            if let Some(p) = v.eval.affecting_route_parent(ri, pi) {
                conditions.push(affected(&p, "route parent", generation));
            }
            Some(RouteParentStatus {
                parent_ref: parent.clone(),
                controller_name: params.controller_name.clone(),
                conditions,
            })
        })
        .collect();
    RouteReport {
        api_version: route.api_version.clone(),
        namespace: route.meta.namespace.clone(),
        name: route.meta.name.clone(),
        status: RouteStatus { parents },
    }
}

/// `ResolvedRefs`: False with the first invalid ref's reason (all listed in the message);
/// True otherwise, noting Services without ready endpoints (their share is dropped).
fn resolved_refs_condition(refs: &[WeightedRef], generation: i64) -> Condition {
    let invalid: Vec<(&str, &str)> = refs
        .iter()
        .filter_map(|r| match &r.resolved {
            Resolved::Invalid { reason, message } => Some((*reason, message.as_str())),
            Resolved::Service { .. } => None,
        })
        .collect();
    if let Some((reason, _)) = invalid.first() {
        let messages: Vec<&str> = invalid.iter().map(|(_, m)| *m).collect();
        return Condition::new(
            "ResolvedRefs",
            false,
            reason,
            format!("{}; its share of new flows is dropped", messages.join("; ")),
            generation,
        );
    }
    let empty = without_ready_endpoints(refs);
    let message = if empty.is_empty() {
        "All references resolved".to_owned()
    } else {
        let names: Vec<String> = empty
            .iter()
            .map(|k| format!("{}/{}:{}", k.namespace, k.name, k.port))
            .collect();
        format!(
            "All references resolved; Service {} has no ready endpoints: its share of new flows is dropped",
            names.join(", ")
        )
    };
    Condition::new("ResolvedRefs", true, "ResolvedRefs", message, generation)
}

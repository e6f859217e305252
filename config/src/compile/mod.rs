//! The compile step: objects in, status and forwarding spec out. Pure and deterministic:
//! objects are processed in sorted orders, never in input order.
//!
//! Modules, in the order the step runs: `gateways` (ours, their listeners and ports),
//! `parents` (routes attached to listeners), `forwarding` (the forwarding spec),
//! `topology` (what policy attachment sees), `gateway_status` and `route_status`.

use std::net::IpAddr;

use pipelines::spec::ForwardingConfig;

use crate::backends::{resolve_route, WeightedRef};
use crate::class;
use crate::digest::{self, Digest};
use crate::effective::RouteNotes;
use crate::index::Index;
use crate::load::ObjectSet;
use crate::model::UdpRoute;
use crate::policy;
use crate::status::{Condition, StatusReport};

mod forwarding;
mod gateway_status;
mod gateways;
mod parents;
mod route_status;
mod topology;

use forwarding::{forwarding, served_routes};
use gateway_status::gateway_report;
use gateways::{claim_ports, our_gateways};
use parents::attach_routes;
use route_status::{route_report, RouteView};
use topology::topology;

/// The status condition type udplb adds to a Gateway, a listener or a route parent that
/// a UDPTrafficPolicy applies to (GEP-713: `<kind>Affected`, with our domain).
pub const TRAFFIC_POLICY_AFFECTED: &str = "udplb.io/UDPTrafficPolicyAffected";

/// The controller name udplb answers to unless configured otherwise.
pub const DEFAULT_CONTROLLER_NAME: &str = "udplb.io/appliance";

/// Inputs of the compile step that do not come from the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileParams {
    /// GatewayClasses with this `spec.controllerName` are ours.
    pub controller_name: String,
    /// VIPs of Gateways that request no address.
    pub default_vips: Vec<IpAddr>,
}

impl Default for CompileParams {
    fn default() -> Self {
        CompileParams {
            controller_name: DEFAULT_CONTROLLER_NAME.into(),
            default_vips: Vec::new(),
        }
    }
}

/// The result of the compile step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// What the data plane serves (normalized).
    pub forwarding: ForwardingConfig,
    /// Status of every GatewayClass and Gateway of ours and every UDPRoute.
    pub status: StatusReport,
}

impl Compiled {
    /// [`digest::forwarding_digest`] of the forwarding config: equal digests, equal
    /// tables.
    pub fn forwarding_digest(&self) -> Digest {
        digest::forwarding_digest(&self.forwarding)
    }

    /// [`digest::status_digest`] of the status.
    pub fn status_digest(&self) -> Digest {
        digest::status_digest(&self.status)
    }
}

/// Compiles objects into status and a forwarding spec. Never fails: problems become
/// status conditions; schema problems were rejected by [`crate::load()`].
pub fn compile(set: &ObjectSet, params: &CompileParams) -> Compiled {
    let index = Index::new(set);
    let mut gateways = our_gateways(set, params);
    claim_ports(&mut gateways);

    let mut routes: Vec<&UdpRoute> = set.udp_routes.iter().collect();
    routes.sort_by(|a, b| a.meta.age_key().cmp(&b.meta.age_key()));
    let attachments = attach_routes(&index, &mut gateways, &routes);

    let resolved: Vec<Vec<WeightedRef>> = routes.iter().map(|r| resolve_route(&index, r)).collect();
    let served = served_routes(&gateways, &routes, &resolved);
    let topo = topology(
        &index,
        &gateways,
        &routes,
        &attachments,
        &resolved,
        &served,
        params,
    );
    let mut eval = policy::evaluate(set, &topo);
    let mut notes = RouteNotes::new();
    let forwarding = forwarding(&gateways, served, &topo, &mut eval, &mut notes);
    let mut report = StatusReport {
        gateway_classes: class::reports(set, params),
        gateways: gateways
            .iter()
            .enumerate()
            .map(|(gi, g)| gateway_report(gi, g, &eval))
            .collect(),
        routes: routes
            .iter()
            .zip(&attachments)
            .zip(&resolved)
            .enumerate()
            .map(|(ri, ((route, parents), refs))| {
                let view = RouteView {
                    ri,
                    route,
                    gateways: &gateways,
                    routes: &routes,
                    eval: &eval,
                    notes: &notes,
                };
                route_report(&view, parents, refs, params)
            })
            .collect(),
        policies: eval.reports(&params.controller_name),
    };
    report
        .gateways
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    report
        .routes
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    // Policies come sorted by kind, then namespace/name.
    Compiled {
        forwarding,
        status: report,
    }
}

/// The `udplb.io/UDPTrafficPolicyAffected` condition naming `policy`.
pub(super) fn affected(policy: &str, what: &str, generation: i64) -> Condition {
    Condition::new(
        TRAFFIC_POLICY_AFFECTED,
        true,
        "Affected",
        format!("UDPTrafficPolicy {policy} applies to this {what}"),
        generation,
    )
}

//! Policy attachment: what each policy's targets are, which policy holds a target, what
//! applies to each listener and Service port, and the policies' status.
//!
//! Ancestors (GEP-713 `status.ancestors`): a Gateway for a Gateway target, the Gateway
//! and listener (`sectionName`) for a listener target, each parentRef of ours that
//! accepts a UDPRoute target, and each Gateway of ours with an accepted UDPRoute that
//! uses a Service target. A target with no such ancestor (missing, or not used by a
//! Gateway of ours) is its own ancestor, so that every policy gets status.
//!
//! A policy whose condition on an ancestor is not `Accepted=True` has no effect under
//! that ancestor. Evaluation is in two steps: [`evaluate`] decides which policies hold
//! which targets; the compile step then reads the layers of each listener and Service
//! port ([`Evaluation::traffic_layers`], [`Evaluation::backend_policy`]), may add notes,
//! and asks for the reports ([`Evaluation::reports`]).
//!
//! Modules: `targets` (each targetRef resolved to its ancestors and scopes),
//! `conflicts` (which policy holds which target, and each ancestor's outcome), `lookup`
//! (what applies where, as the compile step asks), `checks` (what needs the whole
//! picture: Maglev sizes, specific Service ports) and `report` (the policies' status).

use std::collections::HashMap;

use super::model::{BACKEND_POLICY_KIND, TRAFFIC_POLICY_KIND};
use super::values::{self, BackendSettings, TrafficSettings};
use crate::backends::WeightedRef;
use crate::index::Index;
use crate::load::ObjectSet;
use crate::model::{Meta, UdpRoute};
use crate::status::ParentRefStatus;

mod checks;
mod conflicts;
mod lookup;
mod report;
mod targets;

/// At most this many ancestors in a policy's status (GEP-713 `PolicyStatus`).
pub(super) const MAX_ANCESTORS: usize = 16;

/// What the compile step knows about Gateways and routes, as policies need it.
pub(crate) struct Topology<'a> {
    /// Our Gateways, by index (sorted by namespace/name).
    pub(crate) gateways: Vec<GatewayView<'a>>,
    /// Routes in age order.
    pub(crate) routes: &'a [&'a UdpRoute],
    /// Per route, per parentRef (in spec order).
    pub(crate) parents: Vec<Vec<ParentView<'a>>>,
    /// Per route, its resolved backendRefs.
    pub(crate) refs: &'a [Vec<WeightedRef>],
    /// Object lookups.
    pub(crate) index: &'a Index<'a>,
    /// Written in every ancestor status.
    pub(crate) controller_name: &'a str,
}

/// A Gateway of ours.
pub(crate) struct GatewayView<'a> {
    pub(crate) namespace: &'a str,
    pub(crate) name: &'a str,
    /// In spec order.
    pub(crate) listeners: Vec<ListenerView<'a>>,
}

/// A listener of a Gateway of ours.
pub(crate) struct ListenerView<'a> {
    pub(crate) name: &'a str,
    /// Why it has no forwarding entry; `None` when it is served.
    pub(crate) unserved: Option<&'static str>,
    /// The route carrying its traffic (index in age order).
    pub(crate) winner: Option<usize>,
    /// Maglev entries its route needs (the most over its VIPs' families).
    pub(crate) entries: usize,
}

/// One parentRef of a route.
pub(crate) struct ParentView<'a> {
    /// As route status echoes it.
    pub(crate) parent: &'a ParentRefStatus,
    /// The Gateway and listeners that accepted the route; `None` when refused or not ours.
    pub(crate) accepted: Option<(usize, &'a [usize])>,
}

/// One policy's entry under one ancestor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AttachmentId {
    pub(super) policy: usize,
    pub(super) ancestor: usize,
}

pub(super) enum Settings {
    Backend(Result<BackendSettings, Vec<String>>),
    Traffic(Result<TrafficSettings, Vec<String>>),
}

impl Settings {
    pub(super) fn problems(&self) -> Option<&[String]> {
        match self {
            Settings::Backend(Err(p)) | Settings::Traffic(Err(p)) => Some(p),
            _ => None,
        }
    }
}

/// What a policy applies to under one ancestor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    Gateway(usize),
    Listener(usize, usize),
    /// Route `ri` through its parentRef `pi`, accepted on Gateway `gi`; `listeners` are
    /// those where it carries the traffic.
    Route {
        ri: usize,
        pi: usize,
        gi: usize,
        listeners: Vec<usize>,
    },
    /// A Service (one port by name, or all) as used by routes of Gateway `gi`.
    Service {
        gi: usize,
        namespace: String,
        name: String,
        section: Option<String>,
    },
}

/// The keys the compile step looks scopes up by.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum Lookup {
    Gateway(usize),
    Listener(usize, usize),
    Route(usize, usize, usize),
    RouteParent(usize, usize),
    Service(usize, String, String, Option<String>),
}

pub(super) enum Outcome {
    Accepted,
    Refused {
        reason: &'static str,
        message: String,
    },
}

pub(super) struct Ancestor {
    pub(super) aref: ParentRefStatus,
    pub(super) outcomes: Vec<Outcome>,
    pub(super) scopes: Vec<Scope>,
    pub(super) notes: Vec<String>,
}

impl Ancestor {
    pub(super) fn alive(&self) -> bool {
        self.outcomes.iter().all(|o| matches!(o, Outcome::Accepted))
    }
}

/// A declared target, for conflicts: (kind, namespace, name, sectionName).
pub(super) type TargetKey = (&'static str, String, String, Option<String>);

/// What one targetRef resolved to.
pub(super) struct Target {
    /// `None` when the target is missing or not a kind the policy takes.
    pub(super) key: Option<TargetKey>,
    /// `TargetNotFound`, and why.
    pub(super) missing: Option<String>,
    /// The target in words, for conflict messages.
    pub(super) what: String,
    /// Ancestors, with what the policy applies to there and a note for its status.
    pub(super) ancestors: Vec<(ParentRefStatus, Option<Scope>, Option<String>)>,
}

pub(super) struct Policy<'a> {
    pub(super) kind: &'static str,
    pub(super) meta: &'a Meta,
    pub(super) settings: Settings,
    pub(super) targets: Vec<Target>,
    pub(super) ancestors: Vec<Ancestor>,
}

impl<'a> Policy<'a> {
    /// A policy as read, before its ancestors are decided.
    fn new(
        kind: &'static str,
        meta: &'a Meta,
        settings: Settings,
        targets: Vec<Target>,
    ) -> Policy<'a> {
        Policy {
            kind,
            meta,
            settings,
            targets,
            ancestors: Vec::new(),
        }
    }

    pub(super) fn id(&self) -> String {
        format!("{}/{}", self.meta.namespace, self.meta.name)
    }
}

/// The policies, attached.
pub(crate) struct Evaluation<'a> {
    pub(super) policies: Vec<Policy<'a>>,
    pub(super) lookup: HashMap<Lookup, AttachmentId>,
    /// Some UDPBackendPolicy applies somewhere (spares the per-backendRef lookups).
    pub(super) has_service_scopes: bool,
}

/// Attaches every policy of the set.
pub(crate) fn evaluate<'a>(set: &'a ObjectSet, topo: &Topology<'_>) -> Evaluation<'a> {
    let used = if set.udp_backend_policies.is_empty() {
        targets::ServiceUse::new()
    } else {
        targets::service_use(topo)
    };
    let backend = by_name(&set.udp_backend_policies, |p| &p.meta)
        .into_iter()
        .map(|p| {
            let settings = Settings::Backend(values::backend(&p.spec));
            let refs = p.spec.target_refs.iter();
            let resolved =
                refs.map(|t| targets::resolve_backend(topo, &used, &p.meta.namespace, t));
            Policy::new(BACKEND_POLICY_KIND, &p.meta, settings, resolved.collect())
        });
    let traffic = by_name(&set.udp_traffic_policies, |p| &p.meta)
        .into_iter()
        .map(|p| {
            let settings = Settings::Traffic(values::traffic(&p.spec));
            let refs = p.spec.target_refs.iter();
            let resolved = refs.map(|t| targets::resolve_traffic(topo, &p.meta.namespace, t));
            Policy::new(TRAFFIC_POLICY_KIND, &p.meta, settings, resolved.collect())
        });
    let mut policies: Vec<Policy<'a>> = backend.chain(traffic).collect();
    conflicts::decide(&mut policies);
    let mut eval = Evaluation {
        policies,
        lookup: HashMap::new(),
        has_service_scopes: false,
    };
    eval.index();
    eval.check_maglev_sizes(topo);
    eval.note_specific_ports(topo);
    eval
}

/// `objects` in namespace/name order.
fn by_name<T>(objects: &[T], meta: impl Fn(&T) -> &Meta) -> Vec<&T> {
    let mut sorted: Vec<&T> = objects.iter().collect();
    sorted.sort_by(|a, b| {
        let (a, b) = (meta(a), meta(b));
        (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name))
    });
    sorted
}

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

use std::collections::{BTreeSet, HashMap};

use pipelines::maglev::next_prime;
use pipelines::spec::{PolicyKey, ServiceKey, MAGLEV_SLOTS_PER_ENTRY};

use super::model::{PolicyTargetReference, BACKEND_POLICY_KIND, TRAFFIC_POLICY_KIND};
use super::values::{self, BackendSettings, TrafficSettings};
use crate::backends::{pick_service_port, Resolved, WeightedRef};
use crate::index::Index;
use crate::load::ObjectSet;
use crate::model::{Meta, UdpRoute, GATEWAY_GROUP};
use crate::status::{Condition, ParentRefStatus, PolicyAncestorStatus, PolicyReport, PolicyStatus};

/// At most this many ancestors in a policy's status (GEP-713 `PolicyStatus`).
const MAX_ANCESTORS: usize = 16;

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
    policy: usize,
    ancestor: usize,
}

enum Settings {
    Backend(Result<BackendSettings, Vec<String>>),
    Traffic(Result<TrafficSettings, Vec<String>>),
}

impl Settings {
    fn problems(&self) -> Option<&[String]> {
        match self {
            Settings::Backend(Err(p)) | Settings::Traffic(Err(p)) => Some(p),
            _ => None,
        }
    }
}

/// What a policy applies to under one ancestor.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scope {
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
enum Lookup {
    Gateway(usize),
    Listener(usize, usize),
    Route(usize, usize, usize),
    RouteParent(usize, usize),
    Service(usize, String, String, Option<String>),
}

enum Outcome {
    Accepted,
    Refused {
        reason: &'static str,
        message: String,
    },
}

struct Ancestor {
    aref: ParentRefStatus,
    outcomes: Vec<Outcome>,
    scopes: Vec<Scope>,
    notes: Vec<String>,
}

impl Ancestor {
    fn alive(&self) -> bool {
        self.outcomes.iter().all(|o| matches!(o, Outcome::Accepted))
    }
}

/// A declared target, for conflicts: (kind, namespace, name, sectionName).
type TargetKey = (&'static str, String, String, Option<String>);

/// What one targetRef resolved to.
struct Target {
    /// `None` when the target is missing or not a kind the policy takes.
    key: Option<TargetKey>,
    /// `TargetNotFound`, and why.
    missing: Option<String>,
    /// The target in words, for conflict messages.
    what: String,
    /// Ancestors, with what the policy applies to there and a note for its status.
    ancestors: Vec<(ParentRefStatus, Option<Scope>, Option<String>)>,
}

struct Policy<'a> {
    kind: &'static str,
    meta: &'a Meta,
    settings: Settings,
    targets: Vec<Target>,
    ancestors: Vec<Ancestor>,
}

impl Policy<'_> {
    fn id(&self) -> String {
        format!("{}/{}", self.meta.namespace, self.meta.name)
    }
}

/// The policies, attached.
pub(crate) struct Evaluation<'a> {
    policies: Vec<Policy<'a>>,
    lookup: HashMap<Lookup, AttachmentId>,
    /// Some UDPBackendPolicy applies somewhere (spares the per-backendRef lookups).
    has_service_scopes: bool,
}

fn reference(
    group: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    section: Option<&String>,
) -> ParentRefStatus {
    ParentRefStatus {
        group: group.into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
        section_name: section.cloned(),
        port: None,
    }
}

/// Services used by accepted routes: (namespace, name) → (Gateway, Service port).
type ServiceUse<'a> = HashMap<(&'a str, &'a str), BTreeSet<(usize, u16)>>;

fn service_use<'a>(topo: &'a Topology<'_>) -> ServiceUse<'a> {
    let mut used: ServiceUse<'a> = HashMap::new();
    for (ri, parents) in topo.parents.iter().enumerate() {
        let gateways: BTreeSet<usize> = parents
            .iter()
            .filter_map(|p| p.accepted.map(|(gi, _)| gi))
            .collect();
        for r in &topo.refs[ri] {
            if let Resolved::Service { key, .. } = &r.resolved {
                let entry = used
                    .entry((key.namespace.as_str(), key.name.as_str()))
                    .or_default();
                entry.extend(gateways.iter().map(|&gi| (gi, key.port)));
            }
        }
    }
    used
}

fn resolve_backend(
    topo: &Topology<'_>,
    used: &ServiceUse<'_>,
    namespace: &str,
    t: &PolicyTargetReference,
) -> Target {
    let own = reference(
        &t.group,
        &t.kind,
        namespace,
        &t.name,
        t.section_name.as_ref(),
    );
    let mut what = format!("Service {namespace}/{}", t.name);
    if let Some(s) = &t.section_name {
        what.push_str(&format!(" port {s:?}"));
    }
    let not_ours = Target {
        key: None,
        missing: None,
        what: what.clone(),
        ancestors: vec![(own.clone(), None, None)],
    };
    if !(matches!(t.group.as_str(), "" | "core") && t.kind == "Service") {
        return not_ours;
    }
    let missing = |message: String| Target {
        key: None,
        missing: Some(message),
        what: what.clone(),
        ancestors: vec![(own.clone(), None, None)],
    };
    let Some(service) = topo.index.service(namespace, &t.name) else {
        return missing(format!("Service {namespace}/{} not found", t.name));
    };
    if let Some(section) = &t.section_name {
        if !service
            .spec
            .ports
            .iter()
            .any(|p| p.name.as_deref() == Some(section))
        {
            return missing(format!(
                "Service {namespace}/{} has no port named {section:?}",
                t.name
            ));
        }
    }
    let gateways: BTreeSet<usize> = used
        .get(&(namespace, t.name.as_str()))
        .into_iter()
        .flatten()
        .filter(|(_, port)| match &t.section_name {
            None => true,
            Some(s) => pick_service_port(service, *port).and_then(|p| p.name.as_ref()) == Some(s),
        })
        .map(|(gi, _)| *gi)
        .collect();
    let mut ancestors: Vec<_> = gateways
        .into_iter()
        .map(|gi| {
            let g = &topo.gateways[gi];
            (
                reference(GATEWAY_GROUP, "Gateway", g.namespace, g.name, None),
                Some(Scope::Service {
                    gi,
                    namespace: namespace.into(),
                    name: t.name.clone(),
                    section: t.section_name.clone(),
                }),
                None,
            )
        })
        .collect();
    if ancestors.is_empty() {
        ancestors.push((
            own,
            None,
            Some(format!(
                "no UDPRoute accepted by a Gateway of ours uses {what}; the policy applies \
                 when one does"
            )),
        ));
    }
    Target {
        key: Some((
            "Service",
            namespace.into(),
            t.name.clone(),
            t.section_name.clone(),
        )),
        missing: None,
        what,
        ancestors,
    }
}

fn resolve_traffic(topo: &Topology<'_>, namespace: &str, t: &PolicyTargetReference) -> Target {
    let own = reference(
        &t.group,
        &t.kind,
        namespace,
        &t.name,
        t.section_name.as_ref(),
    );
    let mut what = format!("{} {namespace}/{}", t.kind, t.name);
    if let Some(s) = &t.section_name {
        what.push_str(&format!(" listener {s:?}"));
    }
    let missing = |message: String| Target {
        key: None,
        missing: Some(message),
        what: what.clone(),
        ancestors: vec![(own.clone(), None, None)],
    };
    match (t.group.as_str(), t.kind.as_str()) {
        (GATEWAY_GROUP, "Gateway") => {
            let Some(gi) = topo
                .gateways
                .iter()
                .position(|g| g.namespace == namespace && g.name == t.name)
            else {
                return missing(format!(
                    "Gateway {namespace}/{} does not exist or is not managed by {}",
                    t.name, topo.controller_name
                ));
            };
            let g = &topo.gateways[gi];
            let (scope, note) = match &t.section_name {
                None => (Scope::Gateway(gi), None),
                Some(s) => {
                    let Some(li) = g.listeners.iter().position(|l| l.name == s) else {
                        return missing(format!(
                            "Gateway {namespace}/{} has no listener named {s:?}",
                            t.name
                        ));
                    };
                    let note = g.listeners[li]
                        .unserved
                        .map(|why| format!("listener {s:?} is not served ({why})"));
                    (Scope::Listener(gi, li), note)
                }
            };
            Target {
                key: Some((
                    "Gateway",
                    namespace.into(),
                    t.name.clone(),
                    t.section_name.clone(),
                )),
                missing: None,
                what,
                ancestors: vec![(own, Some(scope), note)],
            }
        }
        (GATEWAY_GROUP, "UDPRoute") => {
            let Some(ri) = topo
                .routes
                .iter()
                .position(|r| r.meta.namespace == namespace && r.meta.name == t.name)
            else {
                return missing(format!("UDPRoute {namespace}/{} not found", t.name));
            };
            let mut ancestors = Vec::new();
            for (pi, p) in topo.parents[ri].iter().enumerate() {
                let Some((gi, listeners)) = p.accepted else {
                    continue;
                };
                let g = &topo.gateways[gi];
                let (carried, elsewhere): (Vec<usize>, Vec<usize>) = listeners
                    .iter()
                    .partition(|&&li| g.listeners[li].winner == Some(ri));
                let note = (!elsewhere.is_empty()).then(|| {
                    let names: Vec<String> = elsewhere
                        .iter()
                        .map(|&li| format!("{:?}", g.listeners[li].name))
                        .collect();
                    format!(
                        "the UDPRoute does not carry the traffic of listener(s) {} (an older \
                         route does), so the policy does not apply there",
                        names.join(", ")
                    )
                });
                ancestors.push((
                    p.parent.clone(),
                    Some(Scope::Route {
                        ri,
                        pi,
                        gi,
                        listeners: carried,
                    }),
                    note,
                ));
            }
            if ancestors.is_empty() {
                ancestors.push((
                    own,
                    None,
                    Some(format!(
                        "UDPRoute {namespace}/{} is not accepted by a Gateway of ours; the \
                         policy applies when it is",
                        t.name
                    )),
                ));
            }
            Target {
                key: Some(("UDPRoute", namespace.into(), t.name.clone(), None)),
                missing: None,
                what,
                ancestors,
            }
        }
        _ => Target {
            key: None,
            missing: None,
            what,
            ancestors: vec![(own, None, None)],
        },
    }
}

/// Attaches every policy of the set.
pub(crate) fn evaluate<'a>(set: &'a ObjectSet, topo: &Topology<'_>) -> Evaluation<'a> {
    let used = if set.udp_backend_policies.is_empty() {
        ServiceUse::new()
    } else {
        service_use(topo)
    };
    let mut policies: Vec<Policy<'a>> = Vec::new();
    let mut backend: Vec<_> = set.udp_backend_policies.iter().collect();
    backend
        .sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));
    for p in backend {
        policies.push(Policy {
            kind: BACKEND_POLICY_KIND,
            meta: &p.meta,
            settings: Settings::Backend(values::backend(&p.spec)),
            targets: p
                .spec
                .target_refs
                .iter()
                .map(|t| resolve_backend(topo, &used, &p.meta.namespace, t))
                .collect(),
            ancestors: Vec::new(),
        });
    }
    let mut traffic: Vec<_> = set.udp_traffic_policies.iter().collect();
    traffic
        .sort_by(|a, b| (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name)));
    for p in traffic {
        policies.push(Policy {
            kind: TRAFFIC_POLICY_KIND,
            meta: &p.meta,
            settings: Settings::Traffic(values::traffic(&p.spec)),
            targets: p
                .spec
                .target_refs
                .iter()
                .map(|t| resolve_traffic(topo, &p.meta.namespace, t))
                .collect(),
            ancestors: Vec::new(),
        });
    }

    // Invalid: bad values, or more ancestors than status can list.
    let invalid: Vec<Option<String>> = policies
        .iter()
        .map(|p| {
            let mut why: Vec<String> = p.settings.problems().unwrap_or_default().to_vec();
            let mut distinct: Vec<&ParentRefStatus> = Vec::new();
            for (a, _, _) in p.targets.iter().flat_map(|t| &t.ancestors) {
                if !distinct.contains(&a) {
                    distinct.push(a);
                }
            }
            if distinct.len() > MAX_ANCESTORS {
                why.push(format!(
                    "spec.targetRefs: the policy has {} ancestors and status lists at most \
                     {MAX_ANCESTORS}, so it is not applied; split its targets over several \
                     policies",
                    distinct.len()
                ));
            }
            (!why.is_empty()).then(|| why.join("; "))
        })
        .collect();

    // Conflicts: per declared target, the oldest valid policy of the kind holds it.
    let mut by_age: Vec<usize> = (0..policies.len()).collect();
    by_age.sort_by(|&a, &b| {
        (policies[a].kind, policies[a].meta.age_key())
            .cmp(&(policies[b].kind, policies[b].meta.age_key()))
    });
    let mut holders: HashMap<(&'static str, TargetKey), usize> = HashMap::new();
    let mut lost: HashMap<(usize, usize), String> = HashMap::new();
    for &pi in &by_age {
        if invalid[pi].is_some() {
            continue;
        }
        for (ti, t) in policies[pi].targets.iter().enumerate() {
            let Some(key) = &t.key else { continue };
            match holders.get(&(policies[pi].kind, key.clone())) {
                Some(&holder) if holder != pi => {
                    let h = &policies[holder];
                    let me = &policies[pi];
                    let order = if h.meta.created == me.meta.created {
                        "has the same creationTimestamp and comes first by namespace/name"
                    } else {
                        "is older"
                    };
                    lost.insert(
                        (pi, ti),
                        format!(
                            "conflicts with {} {}, which targets the same {} and {order}",
                            h.kind,
                            h.id(),
                            t.what
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    holders.insert((policies[pi].kind, key.clone()), pi);
                }
            }
        }
    }

    // Ancestors, with every target's outcome under them.
    for (pi, policy) in policies.iter_mut().enumerate() {
        let mut ancestors: Vec<Ancestor> = Vec::new();
        for (ti, t) in policy.targets.iter().enumerate() {
            let refused = |reason: &'static str, message: &String| Outcome::Refused {
                reason,
                message: message.clone(),
            };
            for (aref, scope, note) in &t.ancestors {
                let outcome = if let Some(m) = &invalid[pi] {
                    refused("Invalid", m)
                } else if let Some(m) = &t.missing {
                    refused("TargetNotFound", m)
                } else if let Some(m) = lost.get(&(pi, ti)) {
                    refused("Conflicted", m)
                } else {
                    Outcome::Accepted
                };
                let i = match ancestors.iter().position(|a| a.aref == *aref) {
                    Some(i) => i,
                    None => {
                        ancestors.push(Ancestor {
                            aref: aref.clone(),
                            outcomes: Vec::new(),
                            scopes: Vec::new(),
                            notes: Vec::new(),
                        });
                        ancestors.len() - 1
                    }
                };
                let a = &mut ancestors[i];
                a.outcomes.push(outcome);
                a.scopes.extend(scope.clone());
                a.notes.extend(note.clone());
            }
        }
        ancestors.truncate(MAX_ANCESTORS);
        policy.ancestors = ancestors;
    }

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

impl<'a> Evaluation<'a> {
    /// Rebuilds the lookups from the ancestors that are still accepted.
    fn index(&mut self) {
        self.lookup.clear();
        self.has_service_scopes = false;
        for (policy, p) in self.policies.iter().enumerate() {
            for (ancestor, a) in p.ancestors.iter().enumerate() {
                if !a.alive() {
                    continue;
                }
                let id = AttachmentId { policy, ancestor };
                for s in &a.scopes {
                    let keys = match s {
                        Scope::Gateway(gi) => vec![Lookup::Gateway(*gi)],
                        Scope::Listener(gi, li) => vec![Lookup::Listener(*gi, *li)],
                        Scope::Route {
                            ri,
                            pi,
                            gi,
                            listeners,
                        } => listeners
                            .iter()
                            .map(|li| Lookup::Route(*ri, *gi, *li))
                            // Affected only where it carries traffic.
                            .chain((!listeners.is_empty()).then_some(Lookup::RouteParent(*ri, *pi)))
                            .collect(),
                        Scope::Service {
                            gi,
                            namespace,
                            name,
                            section,
                        } => vec![Lookup::Service(
                            *gi,
                            namespace.clone(),
                            name.clone(),
                            section.clone(),
                        )],
                    };
                    for k in keys {
                        self.has_service_scopes |= matches!(k, Lookup::Service(..));
                        self.lookup.entry(k).or_insert(id);
                    }
                }
            }
        }
    }

    fn traffic(&self, id: AttachmentId) -> Option<TrafficSettings> {
        match &self.policies[id.policy].settings {
            Settings::Traffic(Ok(s)) => Some(*s),
            _ => None,
        }
    }

    /// The UDPTrafficPolicies that apply to listener `li` of Gateway `gi`, most specific
    /// first: the one targeting the route that carries its traffic, the one targeting the
    /// listener, the one targeting the Gateway.
    pub(crate) fn traffic_layers(
        &self,
        topo: &Topology<'_>,
        gi: usize,
        li: usize,
    ) -> Vec<(AttachmentId, TrafficSettings)> {
        let route = topo.gateways[gi].listeners[li]
            .winner
            .map(|ri| Lookup::Route(ri, gi, li));
        route
            .into_iter()
            .chain([Lookup::Listener(gi, li), Lookup::Gateway(gi)])
            .filter_map(|k| self.lookup.get(&k).copied())
            .filter_map(|id| Some((id, self.traffic(id)?)))
            .collect()
    }

    /// A policy holding a listener's `maglevTableSize` that is too small for its route
    /// becomes `Invalid` under that ancestor; repeated, since the listener then falls back
    /// to a less specific policy.
    fn check_maglev_sizes(&mut self, topo: &Topology<'_>) {
        loop {
            let mut refused = None;
            'listeners: for (gi, g) in topo.gateways.iter().enumerate() {
                for (li, l) in g.listeners.iter().enumerate() {
                    let Some(ri) = l.winner.filter(|_| l.unserved.is_none()) else {
                        continue;
                    };
                    let layers = self.traffic_layers(topo, gi, li);
                    let Some((id, size)) = layers
                        .iter()
                        .find_map(|(id, s)| Some((*id, s.maglev_size?)))
                    else {
                        continue;
                    };
                    let need = MAGLEV_SLOTS_PER_ENTRY * l.entries as u64;
                    if u64::from(size) < need {
                        let r = &topo.routes[ri].meta;
                        let suggestion = u32::try_from(need).map_or(need, |n| next_prime(n).into());
                        refused = Some((
                            id,
                            format!(
                                "spec.maglevTableSize: {size} is too small for listener {:?} \
                                 of Gateway {}/{}: its route {}/{} has {} Maglev entries, \
                                 which need at least {need} slots (a prime, e.g. {suggestion})",
                                l.name, g.namespace, g.name, r.namespace, r.name, l.entries
                            ),
                        ));
                        break 'listeners;
                    }
                }
            }
            let Some((id, message)) = refused else {
                return;
            };
            self.policies[id.policy].ancestors[id.ancestor]
                .outcomes
                .push(Outcome::Refused {
                    reason: "Invalid",
                    message,
                });
            self.index();
        }
    }

    /// Notes, on a policy for a whole Service, the ports that follow a policy for that
    /// port by name instead.
    fn note_specific_ports(&mut self, topo: &Topology<'_>) {
        let mut notes = Vec::new();
        for (key, &id) in &self.lookup {
            let Lookup::Service(gi, namespace, name, None) = key else {
                continue;
            };
            let Some(service) = topo.index.service(namespace, name) else {
                continue;
            };
            for port in service.spec.ports.iter().filter_map(|p| p.name.as_ref()) {
                let specific =
                    Lookup::Service(*gi, namespace.clone(), name.clone(), Some(port.clone()));
                if let Some(other) = self.lookup.get(&specific) {
                    notes.push((
                        id,
                        format!(
                            "Service port {port:?} follows the more specific {} {}",
                            self.policies[other.policy].kind,
                            self.policies[other.policy].id()
                        ),
                    ));
                }
            }
        }
        notes.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, note) in notes {
            self.note(id, note);
        }
    }

    /// The UDPBackendPolicy that applies to a Service port used on Gateway `gi`: the one
    /// targeting that port by name, else the one targeting the whole Service.
    pub(crate) fn backend_policy(
        &self,
        topo: &Topology<'_>,
        gi: usize,
        key: &ServiceKey,
    ) -> Option<(PolicyKey, &BackendSettings)> {
        if !self.has_service_scopes {
            return None;
        }
        let port_name = topo
            .index
            .service(&key.namespace, &key.name)
            .and_then(|s| pick_service_port(s, key.port))
            .and_then(|p| p.name.clone());
        let named = port_name
            .map(|n| Lookup::Service(gi, key.namespace.clone(), key.name.clone(), Some(n)));
        let whole = Lookup::Service(gi, key.namespace.clone(), key.name.clone(), None);
        let id = named
            .and_then(|k| self.lookup.get(&k))
            .or_else(|| self.lookup.get(&whole))?;
        let p = &self.policies[id.policy];
        match &p.settings {
            Settings::Backend(Ok(s)) => Some((
                PolicyKey {
                    namespace: p.meta.namespace.clone(),
                    name: p.meta.name.clone(),
                },
                s,
            )),
            _ => None,
        }
    }

    /// `namespace/name` of the policy of an attachment.
    pub(crate) fn policy_id(&self, id: AttachmentId) -> String {
        self.policies[id.policy].id()
    }

    /// Adds a note to the status message of a policy under one ancestor.
    pub(crate) fn note(&mut self, id: AttachmentId, note: String) {
        let notes = &mut self.policies[id.policy].ancestors[id.ancestor].notes;
        if !notes.contains(&note) {
            notes.push(note);
        }
    }

    /// `namespace/name` of the UDPTrafficPolicy attached at a lookup key, if any.
    fn affecting(&self, key: &Lookup) -> Option<String> {
        self.lookup.get(key).map(|id| self.policies[id.policy].id())
    }

    /// The UDPTrafficPolicy applied to Gateway `gi` as a whole.
    pub(crate) fn affecting_gateway(&self, gi: usize) -> Option<String> {
        self.affecting(&Lookup::Gateway(gi))
    }

    /// The UDPTrafficPolicy applied to listener `li` of Gateway `gi` by `sectionName`.
    pub(crate) fn affecting_listener(&self, gi: usize, li: usize) -> Option<String> {
        self.affecting(&Lookup::Listener(gi, li))
    }

    /// The UDPTrafficPolicy applied to route `ri` through its parentRef `pi`.
    pub(crate) fn affecting_route_parent(&self, ri: usize, pi: usize) -> Option<String> {
        self.affecting(&Lookup::RouteParent(ri, pi))
    }

    /// Every policy's status, UDPBackendPolicies then UDPTrafficPolicies, each in
    /// namespace/name order.
    pub(crate) fn reports(&self, controller_name: &str) -> Vec<PolicyReport> {
        self.policies
            .iter()
            .map(|p| {
                let generation = p.meta.generation;
                let weak = matches!(&p.settings, Settings::Backend(Ok(s)) if s.weak());
                let ancestors = p
                    .ancestors
                    .iter()
                    .map(|a| {
                        let refused: Vec<(&str, &str)> = a
                            .outcomes
                            .iter()
                            .filter_map(|o| match o {
                                Outcome::Refused { reason, message } => {
                                    Some((*reason, message.as_str()))
                                }
                                Outcome::Accepted => None,
                            })
                            .collect();
                        let condition = match refused.first() {
                            Some((reason, _)) => {
                                let mut messages: Vec<&str> =
                                    refused.iter().map(|(_, m)| *m).collect();
                                messages.dedup();
                                Condition::new(
                                    "Accepted",
                                    false,
                                    reason,
                                    messages.join("; "),
                                    generation,
                                )
                            }
                            None => {
                                let mut message = vec!["Policy is accepted".to_owned()];
                                if weak {
                                    message.push(
                                        "the active UDP check expects no reply, so it is weak: \
                                         an endpoint fails it only when an ICMP port or host \
                                         unreachable comes back"
                                            .into(),
                                    );
                                }
                                message.extend(a.notes.iter().cloned());
                                Condition::new(
                                    "Accepted",
                                    true,
                                    "Accepted",
                                    message.join("; "),
                                    generation,
                                )
                            }
                        };
                        PolicyAncestorStatus {
                            ancestor_ref: a.aref.clone(),
                            controller_name: controller_name.to_owned(),
                            conditions: vec![condition],
                        }
                    })
                    .collect();
                PolicyReport {
                    kind: p.kind,
                    namespace: p.meta.namespace.clone(),
                    name: p.meta.name.clone(),
                    status: PolicyStatus { ancestors },
                }
            })
            .collect()
    }
}

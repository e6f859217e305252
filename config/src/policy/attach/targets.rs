//! Each targetRef resolved: the target's key (for conflicts), whether it exists, and its
//! ancestors with what the policy applies to under each.

use std::collections::{BTreeSet, HashMap};

use super::{Scope, Target, TargetKey, Topology};
use crate::backends::{pick_service_port, Resolved};
use crate::model::GATEWAY_GROUP;
use crate::policy::model::PolicyTargetReference;
use crate::status::ParentRefStatus;

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

/// What a target is before it is resolved: itself as an ancestor (a target with no
/// ancestor of ours is its own, so that every policy gets status) and in words.
struct Declared {
    own: ParentRefStatus,
    what: String,
}

impl Declared {
    fn new(namespace: &str, t: &PolicyTargetReference, what: String) -> Declared {
        let own = reference(
            &t.group,
            &t.kind,
            namespace,
            &t.name,
            t.section_name.as_ref(),
        );
        Declared { own, what }
    }

    /// Not a kind the policy takes: no key, no effect.
    fn unsupported(self) -> Target {
        Target {
            key: None,
            missing: None,
            what: self.what,
            ancestors: vec![(self.own, None, None)],
        }
    }

    /// `TargetNotFound`, and why.
    fn missing(&self, message: String) -> Target {
        Target {
            key: None,
            missing: Some(message),
            what: self.what.clone(),
            ancestors: vec![(self.own.clone(), None, None)],
        }
    }

    /// Found, under these ancestors of ours.
    fn found(
        self,
        key: TargetKey,
        ancestors: Vec<(ParentRefStatus, Option<Scope>, Option<String>)>,
    ) -> Target {
        Target {
            key: Some(key),
            missing: None,
            what: self.what,
            ancestors,
        }
    }

    /// Found, with no ancestor of ours yet: its own ancestor, with a note saying when
    /// the policy will apply.
    fn unused(self, key: TargetKey, note: String) -> Target {
        let own = self.own.clone();
        self.found(key, vec![(own, None, Some(note))])
    }
}

/// Services used by accepted routes: (namespace, name) → (Gateway, Service port).
pub(super) type ServiceUse<'a> = HashMap<(&'a str, &'a str), BTreeSet<(usize, u16)>>;

pub(super) fn service_use<'a>(topo: &'a Topology<'_>) -> ServiceUse<'a> {
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

pub(super) fn resolve_backend(
    topo: &Topology<'_>,
    used: &ServiceUse<'_>,
    namespace: &str,
    t: &PolicyTargetReference,
) -> Target {
    let mut what = format!("Service {namespace}/{}", t.name);
    if let Some(s) = &t.section_name {
        what.push_str(&format!(" port {s:?}"));
    }
    let declared = Declared::new(namespace, t, what);
    if !(matches!(t.group.as_str(), "" | "core") && t.kind == "Service") {
        return declared.unsupported();
    }
    let missing = |message: String| declared.missing(message);
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
    let ancestors: Vec<_> = gateways
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
    let key = (
        "Service",
        namespace.into(),
        t.name.clone(),
        t.section_name.clone(),
    );
    if ancestors.is_empty() {
        let note = format!(
            "no UDPRoute accepted by a Gateway of ours uses {}; the policy applies when one \
             does",
            declared.what
        );
        return declared.unused(key, note);
    }
    declared.found(key, ancestors)
}

pub(super) fn resolve_traffic(
    topo: &Topology<'_>,
    namespace: &str,
    t: &PolicyTargetReference,
) -> Target {
    let mut what = format!("{} {namespace}/{}", t.kind, t.name);
    if let Some(s) = &t.section_name {
        what.push_str(&format!(" listener {s:?}"));
    }
    let declared = Declared::new(namespace, t, what);
    let missing = |message: String| declared.missing(message);
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
            let key = (
                "Gateway",
                namespace.into(),
                t.name.clone(),
                t.section_name.clone(),
            );
            let own = declared.own.clone();
            declared.found(key, vec![(own, Some(scope), note)])
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
            let key = ("UDPRoute", namespace.into(), t.name.clone(), None);
            if ancestors.is_empty() {
                let note = format!(
                    "UDPRoute {namespace}/{} is not accepted by a Gateway of ours; the \
                     policy applies when it is",
                    t.name
                );
                return declared.unused(key, note);
            }
            declared.found(key, ancestors)
        }
        _ => declared.unsupported(),
    }
}

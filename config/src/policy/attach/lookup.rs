//! What applies where: the lookups from scopes to the attachment that holds them (rebuilt
//! whenever an ancestor is refused), as the compile step asks for them.

use pipelines::spec::{PolicyKey, ServiceKey};

use super::{AttachmentId, Evaluation, Lookup, Scope, Settings, Topology};
use crate::backends::pick_service_port;
use crate::policy::values::{BackendSettings, TrafficSettings};

impl<'a> Evaluation<'a> {
    /// Rebuilds the lookups from the ancestors that are still accepted.
    pub(super) fn index(&mut self) {
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
}

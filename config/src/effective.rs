//! What each served listener and each policed Service port gets, once policies, Service
//! session affinity and Gateway annotations are merged.
//!
//! Per listener and per field, the first that sets it wins:
//! 1. the UDPTrafficPolicy targeting the UDPRoute that carries the listener's traffic;
//! 2. the UDPTrafficPolicy targeting the listener (`sectionName`);
//! 3. the UDPTrafficPolicy targeting the Gateway;
//! 4. for the hash key only: `source-ip` when a Service of that route asks for
//!    `sessionAffinity: ClientIP`;
//! 5. the `udplb.io/listener.<listener>.<option>` annotation, then the Gateway-wide one;
//! 6. the appliance's settings (the field stays `None`).
//!
//! A backend keeps its Service's affinity timeout ([`BackendSpec::idle_timeout`]) only
//! when the listener hashes on the source IP.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use pipelines::spec::{
    BackendSpec, HashKey, HealthCheckSpec, ListenerOptions, PolicyKey, RouteSpec, ServiceKey,
};

use crate::backends::{Resolved, WeightedRef};
use crate::options;
use crate::policy::values::BackendSettings;
use crate::policy::{Evaluation, Topology};

/// Notes for the `Accepted` message of a route's parent entry, by (route, Gateway,
/// listener).
pub(crate) type RouteNotes = HashMap<(usize, usize, usize), Vec<String>>;

fn names(keys: &BTreeSet<(String, String)>) -> String {
    keys.iter()
        .map(|(ns, n)| format!("{ns}/{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The options of listener `li` of Gateway `gi`, whose traffic route `ri` carries (if
/// any), with `annotations` of the Gateway. Notes on session affinity go to `notes` and
/// to the policy that overrides it.
pub(crate) fn listener_options(
    topo: &Topology<'_>,
    eval: &mut Evaluation<'_>,
    gi: usize,
    li: usize,
    annotations: &BTreeMap<String, String>,
    notes: &mut RouteNotes,
) -> ListenerOptions {
    let listener = topo.gateways[gi].listeners[li].name;
    let layers = eval.traffic_layers(topo, gi, li);
    let annotated = options::for_listener(annotations, listener);
    let mut o = ListenerOptions {
        nat_mode: layers.iter().find_map(|(_, s)| s.nat_mode),
        idle_timeout: layers.iter().find_map(|(_, s)| s.idle_timeout),
        hash_key: None,
        unreplied_timeout: layers.iter().find_map(|(_, s)| s.unreplied_timeout),
        maglev_size: layers.iter().find_map(|(_, s)| s.maglev_size),
    };
    o.nat_mode = o.nat_mode.or(annotated.nat_mode);
    o.idle_timeout = o.idle_timeout.or(annotated.idle_timeout);

    let winner = topo.gateways[gi].listeners[li].winner;
    let refs = winner.map_or(&[][..], |ri| &topo.refs[ri][..]);
    let any_affinity = refs.iter().any(|r| {
        matches!(
            r.resolved,
            Resolved::Service {
                affinity: Some(_),
                ..
            }
        )
    });
    let (mut sticky, mut loose) = (BTreeSet::new(), BTreeSet::new());
    for r in refs.iter().filter(|_| any_affinity) {
        if let Resolved::Service { key, affinity, .. } = &r.resolved {
            let name = (key.namespace.clone(), key.name.clone());
            if affinity.is_some() {
                sticky.insert(name);
            } else {
                loose.insert(name);
            }
        }
    }
    loose.retain(|n| !sticky.contains(n));
    let explicit = layers.iter().find_map(|(id, s)| Some((*id, s.hash_key?)));
    o.hash_key = match explicit {
        Some((_, h)) => Some(h),
        None if !sticky.is_empty() => Some(HashKey::SourceIp),
        None => annotated.hash_key,
    };
    let (Some(ri), false) = (winner, sticky.is_empty()) else {
        return o;
    };
    let g = &topo.gateways[gi];
    let route_note = match explicit {
        Some((id, h)) if h != HashKey::SourceIp => {
            let policy = eval.policy_id(id);
            let r = &topo.routes[ri].meta;
            eval.note(
                id,
                format!(
                    "its hashKey {h} applies to listener {listener:?} of Gateway {}/{}, whose \
                     route {}/{} uses Service(s) {} with ClientIP session affinity: that \
                     affinity is not honoured there",
                    g.namespace,
                    g.name,
                    r.namespace,
                    r.name,
                    names(&sticky)
                ),
            );
            format!(
                "listener {listener:?}: UDPTrafficPolicy {policy} sets hashKey {h}, so the \
                 ClientIP session affinity of Service(s) {} is not honoured",
                names(&sticky)
            )
        }
        Some(_) => format!(
            "listener {listener:?} hashes on the source IP (a UDPTrafficPolicy sets it), \
             which honours the ClientIP session affinity of Service(s) {}",
            names(&sticky)
        ),
        None if loose.is_empty() => format!(
            "listener {listener:?} hashes on the source IP: Service(s) {} ask for ClientIP \
             session affinity",
            names(&sticky)
        ),
        None => format!(
            "listener {listener:?} hashes on the source IP for all of the route's backends: \
             Service(s) {} ask for ClientIP session affinity, and the listener has one hash, \
             so Service(s) {} (which do not) are hashed on the source IP too",
            names(&sticky),
            names(&loose)
        ),
    };
    notes.entry((ri, gi, li)).or_default().push(route_note);
    o
}

/// Drops the affinity timeouts of a listener's backends unless it hashes on the source IP.
pub(crate) fn affinity_timeouts(route: &mut RouteSpec, options: &ListenerOptions) {
    if options.hash_key != Some(HashKey::SourceIp) {
        for BackendSpec { idle_timeout, .. } in &mut route.backends {
            *idle_timeout = None;
        }
    }
}

/// Collects the health checks of the Service ports that served listeners forward to.
#[derive(Default)]
pub(crate) struct HealthChecks<'e> {
    by_service: BTreeMap<ServiceKey, (PolicyKey, &'e BackendSettings, BTreeSet<SocketAddr>)>,
}

impl<'e> HealthChecks<'e> {
    /// Adds the endpoints that listener `li` of Gateway `gi` forwards to from `vip`.
    pub(crate) fn add(
        &mut self,
        topo: &Topology<'_>,
        eval: &'e Evaluation<'_>,
        gi: usize,
        refs: &[WeightedRef],
        vip: IpAddr,
    ) {
        for r in refs {
            let Resolved::Service { key, endpoints, .. } = &r.resolved else {
                continue;
            };
            let Some((policy, settings)) = eval.backend_policy(topo, gi, key) else {
                continue;
            };
            let entry = self
                .by_service
                .entry(key.clone())
                .or_insert_with(|| (policy, settings, BTreeSet::new()));
            entry.2.extend(
                endpoints
                    .iter()
                    .filter(|(a, draining)| !**draining && a.is_ipv4() == vip.is_ipv4())
                    .map(|(a, _)| *a),
            );
        }
    }

    /// One entry per Service port with endpoints; an endpoint reached through several
    /// policed Service ports is checked under the smallest only.
    pub(crate) fn finish(self) -> Vec<HealthCheckSpec> {
        let mut taken = BTreeSet::new();
        let mut out = Vec::new();
        for (service, (policy, s, endpoints)) in self.by_service {
            let endpoints: Vec<SocketAddr> =
                endpoints.into_iter().filter(|a| taken.insert(*a)).collect();
            if endpoints.is_empty() {
                continue;
            }
            out.push(HealthCheckSpec {
                service,
                policy,
                endpoints,
                active: s.active.clone(),
                passive: s.passive,
                panic_threshold_percent: s.panic_threshold_percent,
            });
        }
        out
    }
}

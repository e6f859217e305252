//! The compile step: objects in, status and forwarding spec out. Pure and deterministic:
//! objects are processed in sorted orders, never in input order.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use pipelines::spec::{ForwardingConfig, ListenerKey, ListenerSpec, RouteKey, RouteSpec};

use crate::attach::{admits_namespace, route_kinds, UDP_ROUTE};
use crate::backends::{resolve_route, route_spec, without_ready_endpoints, Resolved, WeightedRef};
use crate::class;
use crate::digest::{self, Digest};
use crate::effective::{self, HealthChecks, RouteNotes};
use crate::index::Index;
use crate::load::ObjectSet;
use crate::model::{Gateway, Listener, UdpRoute, GATEWAY_GROUP};
use crate::policy::{self, Evaluation, GatewayView, ListenerView, ParentView, Topology};
use crate::status::{
    Condition, GatewayReport, GatewayStatus, GatewayStatusAddress, GroupKind, ListenerStatus,
    ParentRefStatus, RouteParentStatus, RouteReport, RouteStatus, StatusReport,
};

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

struct ListenerState<'a> {
    spec: &'a Listener,
    port: u16,
    udp: bool,
    supported: Vec<GroupKind>,
    invalid_kinds: Vec<String>,
    conflicted: bool,
    /// The Gateway that holds this listener's port on a shared VIP.
    unavailable: Option<String>,
    /// Indices (in age order) of Accepted routes attached here.
    routes: BTreeSet<usize>,
}

struct GatewayState<'a> {
    gw: &'a Gateway,
    vips: Vec<IpAddr>,
    unsupported_addresses: Vec<String>,
    listeners: Vec<ListenerState<'a>>,
}

impl GatewayState<'_> {
    fn accepted(&self) -> bool {
        self.unsupported_addresses.is_empty()
    }
    fn id(&self) -> String {
        format!("{}/{}", self.gw.meta.namespace, self.gw.meta.name)
    }
}

/// How one parentRef of a route came out.
enum Attachment {
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

/// Compiles objects into status and a forwarding spec. Never fails: problems become
/// status conditions; schema problems were rejected by [`crate::load()`].
pub fn compile(set: &ObjectSet, params: &CompileParams) -> Compiled {
    let index = Index::new(set);
    let mut gateways = our_gateways(set, params);
    claim_ports(&mut gateways);
    // Position in `gateways` by namespace/name, for parentRefs.
    let gateway_at: HashMap<String, usize> = gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (g.id(), i))
        .collect();

    let mut routes: Vec<&UdpRoute> = set.udp_routes.iter().collect();
    routes.sort_by(|a, b| a.meta.age_key().cmp(&b.meta.age_key()));

    // parentRef outcomes per route (None: not ours, no status).
    let mut attachments: Vec<Vec<(ParentRefStatus, Option<Attachment>)>> = Vec::new();
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
            let outcome = attach(&index, &mut gateways, gi, ri, route, &parent);
            per_route.push((parent, outcome));
        }
        attachments.push(per_route);
    }

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

/// Gateways whose class names our controller and is Accepted, sorted by namespace/name.
fn our_gateways<'a>(set: &'a ObjectSet, params: &CompileParams) -> Vec<GatewayState<'a>> {
    let ours = class::served(set, params);
    let mut out: Vec<GatewayState<'a>> = set
        .gateways
        .iter()
        .filter(|g| ours.contains(g.spec.gateway_class_name.as_str()))
        .map(|gw| {
            let mut vips = BTreeSet::new();
            let mut unsupported_addresses = Vec::new();
            for a in &gw.spec.addresses {
                let kind = a.kind.as_deref().unwrap_or("IPAddress");
                let value = a.value.as_deref().filter(|v| !v.is_empty());
                match (kind, value) {
                    ("IPAddress", Some(v)) => vips.extend(v.parse::<IpAddr>().ok()),
                    ("IPAddress", None) => vips.extend(params.default_vips.iter().copied()),
                    (other, _) => unsupported_addresses.push(other.to_owned()),
                }
            }
            if gw.spec.addresses.is_empty() {
                vips.extend(params.default_vips.iter().copied());
            }
            let mut listeners: Vec<ListenerState<'a>> = gw
                .spec
                .listeners
                .iter()
                .map(|l| {
                    let udp = l.protocol == "UDP";
                    let (supported, invalid_kinds) = route_kinds(l, udp);
                    ListenerState {
                        spec: l,
                        port: u16::try_from(l.port).unwrap_or(0),
                        udp,
                        supported,
                        invalid_kinds,
                        conflicted: false,
                        unavailable: None,
                        routes: BTreeSet::new(),
                    }
                })
                .collect();
            let mut udp_ports: BTreeMap<u16, usize> = BTreeMap::new();
            for l in listeners.iter().filter(|l| l.udp) {
                *udp_ports.entry(l.port).or_default() += 1;
            }
            for l in listeners.iter_mut().filter(|l| l.udp) {
                l.conflicted = udp_ports.get(&l.port).copied().unwrap_or(0) > 1;
            }
            GatewayState {
                gw,
                vips: vips.into_iter().collect(),
                unsupported_addresses,
                listeners,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.gw.meta.namespace, &a.gw.meta.name).cmp(&(&b.gw.meta.namespace, &b.gw.meta.name))
    });
    out
}

/// Two Gateways sharing a VIP and a UDP port: the older keeps it, the newer listener is
/// `PortUnavailable`.
fn claim_ports(gateways: &mut [GatewayState<'_>]) {
    let mut order: Vec<usize> = (0..gateways.len()).collect();
    order.sort_by(|&a, &b| {
        gateways[a]
            .gw
            .meta
            .age_key()
            .cmp(&gateways[b].gw.meta.age_key())
    });
    let mut claims: BTreeMap<(IpAddr, u16), String> = BTreeMap::new();
    for gi in order {
        if !gateways[gi].accepted() {
            continue;
        }
        let id = gateways[gi].id();
        let vips = gateways[gi].vips.clone();
        for l in gateways[gi].listeners.iter_mut() {
            if !l.udp || l.conflicted {
                continue;
            }
            let holder = vips
                .iter()
                .find_map(|vip| claims.get(&(*vip, l.port)).filter(|h| **h != id));
            if let Some(holder) = holder {
                l.unavailable = Some(holder.clone());
                continue;
            }
            for vip in &vips {
                claims.insert((*vip, l.port), id.clone());
            }
        }
    }
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

fn route_key(r: &UdpRoute) -> RouteKey {
    RouteKey {
        namespace: r.meta.namespace.clone(),
        name: r.meta.name.clone(),
    }
}

/// Why a listener has no forwarding entry; `None` when it is served.
fn unserved(g: &GatewayState<'_>, l: &ListenerState<'_>) -> Option<&'static str> {
    if !g.accepted() {
        Some("the Gateway is not accepted")
    } else if !l.udp {
        Some("its protocol is not UDP")
    } else if l.conflicted {
        Some("another UDP listener uses its port")
    } else if l.unavailable.is_some() {
        Some("an older Gateway holds its port")
    } else {
        None
    }
}

/// The winning route of every served listener, compiled for each VIP: (Gateway,
/// listener) → (VIP, route).
type Served = BTreeMap<(usize, usize), Vec<(IpAddr, Option<RouteSpec>)>>;

fn served_routes(
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

/// What policies need to know of the Gateways and routes.
fn topology<'a>(
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

/// One entry per (VIP, port) of every programmed UDP listener, and the health checks of
/// the Service ports they forward to.
fn forwarding(
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

/// The `udplb.io/UDPTrafficPolicyAffected` condition naming `policy`.
fn affected(policy: &str, what: &str, generation: i64) -> Condition {
    Condition::new(
        TRAFFIC_POLICY_AFFECTED,
        true,
        "Affected",
        format!("UDPTrafficPolicy {policy} applies to this {what}"),
        generation,
    )
}

fn gateway_report(gi: usize, g: &GatewayState<'_>, eval: &Evaluation<'_>) -> GatewayReport {
    let generation = g.gw.meta.generation;
    let mut bad_listeners = Vec::new();
    let listeners = g
        .listeners
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let (accepted, reason, message) = if !l.udp {
                (
                    false,
                    "UnsupportedProtocol",
                    format!(
                        "protocol {} is not supported; udplb serves UDP",
                        l.spec.protocol
                    ),
                )
            } else if let Some(holder) = &l.unavailable {
                (
                    false,
                    "PortUnavailable",
                    format!(
                        "UDP port {} on a shared address is held by the older Gateway {holder}",
                        l.port
                    ),
                )
            } else {
                (true, "Accepted", "Listener is accepted".to_owned())
            };
            let programmed = accepted && !l.conflicted && g.accepted() && !g.vips.is_empty();
            let resolved = l.invalid_kinds.is_empty();
            if !accepted || l.conflicted || !resolved {
                bad_listeners.push(l.spec.name.clone());
            }
            let mut conditions = vec![
                Condition::new("Accepted", accepted, reason, message, generation),
                if programmed {
                    Condition::new(
                        "Programmed",
                        true,
                        "Programmed",
                        "Listener is programmed",
                        generation,
                    )
                } else {
                    Condition::new(
                        "Programmed",
                        false,
                        "Invalid",
                        "Listener is not programmed",
                        generation,
                    )
                },
                if resolved {
                    Condition::new(
                        "ResolvedRefs",
                        true,
                        "ResolvedRefs",
                        "All references resolved",
                        generation,
                    )
                } else {
                    Condition::new(
                        "ResolvedRefs",
                        false,
                        "InvalidRouteKinds",
                        format!("unsupported route kinds: {}", l.invalid_kinds.join(", ")),
                        generation,
                    )
                },
                if l.conflicted {
                    Condition::new(
                        "Conflicted",
                        true,
                        "ProtocolConflict",
                        format!(
                            "another UDP listener uses port {}; neither is served",
                            l.port
                        ),
                        generation,
                    )
                } else {
                    Condition::new(
                        "Conflicted",
                        false,
                        "NoConflicts",
                        "No conflicts",
                        generation,
                    )
                },
            ];
            if let Some(p) = eval.affecting_listener(gi, li) {
                conditions.push(affected(&p, "listener", generation));
            }
            ListenerStatus {
                name: l.spec.name.clone(),
                supported_kinds: l.supported.clone(),
                attached_routes: u32::try_from(l.routes.len()).unwrap_or(u32::MAX),
                conditions,
            }
        })
        .collect();
    let accepted = if !g.accepted() {
        Condition::new(
            "Accepted",
            false,
            "UnsupportedAddress",
            format!(
                "address type(s) {} not supported; udplb supports IPAddress",
                g.unsupported_addresses.join(", ")
            ),
            generation,
        )
    } else if !bad_listeners.is_empty() {
        Condition::new(
            "Accepted",
            true,
            "ListenersNotValid",
            format!("invalid listener(s): {}", bad_listeners.join(", ")),
            generation,
        )
    } else {
        Condition::new(
            "Accepted",
            true,
            "Accepted",
            "Gateway is accepted",
            generation,
        )
    };
    let programmed = if !g.accepted() {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "Gateway is not accepted",
            generation,
        )
    } else if g.vips.is_empty() {
        Condition::new(
            "Programmed",
            false,
            "AddressNotAssigned",
            "no address requested and the appliance has no default VIP",
            generation,
        )
    } else {
        Condition::new(
            "Programmed",
            true,
            "Programmed",
            "Gateway is programmed",
            generation,
        )
    };
    GatewayReport {
        namespace: g.gw.meta.namespace.clone(),
        name: g.gw.meta.name.clone(),
        status: GatewayStatus {
            // Addresses are bound only when the Gateway is accepted.
            addresses: g
                .vips
                .iter()
                .filter(|_| g.accepted())
                .map(|v| GatewayStatusAddress {
                    kind: "IPAddress".into(),
                    value: v.to_string(),
                })
                .collect(),
            conditions: [accepted, programmed]
                .into_iter()
                .chain(
                    eval.affecting_gateway(gi)
                        .map(|p| affected(&p, "Gateway", generation)),
                )
                .collect(),
            listeners,
        },
    }
}

/// What a route's report needs besides its own parents and refs.
struct RouteView<'a> {
    ri: usize,
    route: &'a UdpRoute,
    gateways: &'a [GatewayState<'a>],
    routes: &'a [&'a UdpRoute],
    eval: &'a Evaluation<'a>,
    notes: &'a RouteNotes,
}

fn route_report(
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

//! Status objects, spelled exactly as the Gateway API spells them (camelCase), and their
//! rendering as the documents `udplb check` prints (GatewayClasses, Gateways, UDPRoutes,
//! then udplb's policies).
//!
//! `lastTransitionTime` is omitted so that the output is a pure function of the input.

use serde::Serialize;

use crate::policy::model::POLICY_API_VERSION;

/// `"True"` / `"False"` as the API writes condition status.
pub(crate) fn flag(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

/// A `metav1.Condition` without `lastTransitionTime`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`, `SupportedVersion`,
    /// `udplb.io/UDPTrafficPolicyAffected`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `True`, `False`, or `Unknown` (only GatewayClass `SupportedVersion`, when the
    /// input carries no Gateway API CRDs).
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// The object's `metadata.generation`.
    pub observed_generation: i64,
}

impl Condition {
    pub(crate) fn new(
        kind: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
        generation: i64,
    ) -> Self {
        Condition {
            kind: kind.into(),
            status: flag(status).into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
        }
    }

    /// A condition whose status is `Unknown`.
    pub(crate) fn unknown(
        kind: &str,
        reason: &str,
        message: impl Into<String>,
        generation: i64,
    ) -> Self {
        Condition {
            kind: kind.into(),
            status: "Unknown".into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: generation,
        }
    }

    /// True when `status` is `"True"`.
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }

    /// True when `status` is `"False"`.
    pub fn is_false(&self) -> bool {
        self.status == "False"
    }

    /// Whether the condition is as a healthy object has it: `Conflicted` not True,
    /// `SupportedVersion` not False (`Unknown`, without CRDs in the input, is fine),
    /// any other True, except a Gateway's `Accepted` with reason `ListenersNotValid`.
    fn healthy(&self) -> bool {
        match self.kind.as_str() {
            "Conflicted" => !self.is_true(),
            "SupportedVersion" => !self.is_false(),
            _ => self.is_true() && self.reason != "ListenersNotValid",
        }
    }

    /// `kind=status (reason)`, as a problem line ends.
    fn brief(&self) -> String {
        format!("{}={} ({})", self.kind, self.status, self.reason)
    }
}

/// `{group, kind}` as status spells it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKind {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
}

/// `GatewayClass.status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassStatus {
    /// `Accepted`, `SupportedVersion`.
    pub conditions: Vec<Condition>,
    /// What the class supports, sorted by name; empty (and omitted) when the class is
    /// not Accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supported_features: Vec<SupportedFeature>,
}

/// `GatewayClass.status.supportedFeatures[]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SupportedFeature {
    /// A feature name as the Gateway API spells it (`pkg/features`).
    pub name: String,
}

/// `Gateway.status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GatewayStatus {
    /// Bound addresses.
    pub addresses: Vec<GatewayStatusAddress>,
    /// `Accepted`, `Programmed`.
    pub conditions: Vec<Condition>,
    /// One entry per listener, in spec order.
    pub listeners: Vec<ListenerStatus>,
}

/// `Gateway.status.addresses[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GatewayStatusAddress {
    /// Always `IPAddress`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The address.
    pub value: String,
}

/// `Gateway.status.listeners[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    /// Listener name.
    pub name: String,
    /// Route kinds the listener accepts.
    pub supported_kinds: Vec<GroupKind>,
    /// Number of Accepted routes attached.
    pub attached_routes: u32,
    /// `Accepted`, `Programmed`, `ResolvedRefs`, `Conflicted`.
    pub conditions: Vec<Condition>,
}

/// `UDPRoute.status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    /// One entry per parentRef that names one of our Gateways.
    pub parents: Vec<RouteParentStatus>,
}

/// `UDPRoute.status.parents[]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parentRef with defaults filled in.
    pub parent_ref: ParentRefStatus,
    /// The appliance's controller name.
    pub controller_name: String,
    /// `Accepted`, `ResolvedRefs`.
    pub conditions: Vec<Condition>,
}

/// A parentRef with group, kind and namespace defaulted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentRefStatus {
    /// `gateway.networking.k8s.io`.
    pub group: String,
    /// `Gateway`.
    pub kind: String,
    /// Namespace of the Gateway.
    pub namespace: String,
    /// Name of the Gateway.
    pub name: String,
    /// As written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// As written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// A policy's `status` (GEP-713 `PolicyStatus`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyStatus {
    /// One entry per ancestor (at most 16): a Gateway, a Gateway listener or a UDPRoute
    /// parent, or the target itself when it has no ancestor of ours.
    pub ancestors: Vec<PolicyAncestorStatus>,
}

/// `status.ancestors[]` of a policy (GEP-713 `PolicyAncestorStatus`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    /// The ancestor, spelled as a parentRef.
    pub ancestor_ref: ParentRefStatus,
    /// The appliance's controller name.
    pub controller_name: String,
    /// `Accepted`.
    pub conditions: Vec<Condition>,
}

/// The computed status of one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyReport {
    /// `UDPBackendPolicy` or `UDPTrafficPolicy`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: PolicyStatus,
}

/// The computed status of one GatewayClass of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayClassReport {
    /// Name (cluster-scoped).
    pub name: String,
    /// Status.
    pub status: GatewayClassStatus,
}

/// The computed status of one Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayReport {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: GatewayStatus,
}

/// The computed status of one UDPRoute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteReport {
    /// apiVersion as read.
    pub api_version: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Status; `parents` is empty when no parentRef names one of our Gateways.
    pub status: RouteStatus,
}

/// Status of every GatewayClass and Gateway of ours, every UDPRoute and every policy,
/// sorted by namespace/name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// GatewayClasses that name our controller, Accepted or not.
    pub gateway_classes: Vec<GatewayClassReport>,
    /// Our Gateways.
    pub gateways: Vec<GatewayReport>,
    /// All UDPRoutes.
    pub routes: Vec<RouteReport>,
    /// Every policy: UDPBackendPolicies, then UDPTrafficPolicies.
    pub policies: Vec<PolicyReport>,
}

/// One status document as `udplb check` prints it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDocument<'a> {
    /// apiVersion.
    pub api_version: &'a str,
    /// `GatewayClass`, `Gateway`, `UDPRoute`, `UDPBackendPolicy` or `UDPTrafficPolicy`.
    pub kind: &'static str,
    /// Name and namespace.
    pub metadata: DocumentMeta<'a>,
    /// The computed status.
    pub status: AnyStatus<'a>,
}

/// `metadata` of a [`StatusDocument`].
#[derive(Clone, Debug, Serialize)]
pub struct DocumentMeta<'a> {
    /// Name.
    pub name: &'a str,
    /// Namespace; empty (and omitted) for a cluster-scoped GatewayClass.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub namespace: &'a str,
}

/// GatewayClass, Gateway or route status.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum AnyStatus<'a> {
    /// A GatewayClass's.
    GatewayClass(&'a GatewayClassStatus),
    /// A Gateway's.
    Gateway(&'a GatewayStatus),
    /// A route's.
    Route(&'a RouteStatus),
    /// A policy's.
    Policy(&'a PolicyStatus),
}

impl StatusReport {
    /// The documents: GatewayClasses, then Gateways, then UDPRoutes, then
    /// UDPBackendPolicies and UDPTrafficPolicies, each group in namespace/name order.
    pub fn documents(&self) -> Vec<StatusDocument<'_>> {
        let classes = self.gateway_classes.iter().map(|c| StatusDocument {
            api_version: "gateway.networking.k8s.io/v1",
            kind: "GatewayClass",
            metadata: DocumentMeta {
                name: &c.name,
                namespace: "",
            },
            status: AnyStatus::GatewayClass(&c.status),
        });
        let gateways = self.gateways.iter().map(|g| StatusDocument {
            api_version: "gateway.networking.k8s.io/v1",
            kind: "Gateway",
            metadata: DocumentMeta {
                name: &g.name,
                namespace: &g.namespace,
            },
            status: AnyStatus::Gateway(&g.status),
        });
        let routes = self.routes.iter().map(|r| StatusDocument {
            api_version: &r.api_version,
            kind: "UDPRoute",
            metadata: DocumentMeta {
                name: &r.name,
                namespace: &r.namespace,
            },
            status: AnyStatus::Route(&r.status),
        });
        let policies = self.policies.iter().map(|p| StatusDocument {
            api_version: POLICY_API_VERSION,
            kind: p.kind,
            metadata: DocumentMeta {
                name: &p.name,
                namespace: &p.namespace,
            },
            status: AnyStatus::Policy(&p.status),
        });
        classes
            .chain(gateways)
            .chain(routes)
            .chain(policies)
            .collect()
    }

    /// Routes whose status has no parent of ours (they are not ours to judge).
    pub fn ignored_routes(&self) -> usize {
        self.routes
            .iter()
            .filter(|r| r.status.parents.is_empty())
            .count()
    }

    /// Problems: every condition that is not as a healthy object has it. A GatewayClass
    /// `SupportedVersion` that is `Unknown` (no CRDs in the input) is not a problem.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut check = |who: &dyn Fn() -> String, conditions: &[Condition]| {
            for c in conditions.iter().filter(|c| !c.healthy()) {
                out.push(format!("{}: {}", who(), c.brief()));
            }
        };
        for c in &self.gateway_classes {
            check(&|| format!("GatewayClass {}", c.name), &c.status.conditions);
        }
        for g in &self.gateways {
            let id = format!("Gateway {}/{}", g.namespace, g.name);
            check(&|| id.clone(), &g.status.conditions);
            for l in &g.status.listeners {
                check(&|| format!("{id} listener {}", l.name), &l.conditions);
            }
        }
        for r in &self.routes {
            for p in &r.status.parents {
                let who = || {
                    format!(
                        "UDPRoute {}/{} parent {}/{}",
                        r.namespace, r.name, p.parent_ref.namespace, p.parent_ref.name
                    )
                };
                check(&who, &p.conditions);
            }
        }
        for p in &self.policies {
            for a in &p.status.ancestors {
                let r = &a.ancestor_ref;
                let who = || {
                    format!(
                        "{} {}/{} ancestor {} {}/{}{}",
                        p.kind,
                        p.namespace,
                        p.name,
                        r.kind,
                        r.namespace,
                        r.name,
                        r.section_name
                            .as_ref()
                            .map(|s| format!(" section {s}"))
                            .unwrap_or_default()
                    )
                };
                check(&who, &a.conditions);
            }
        }
        out
    }

    /// True when every GatewayClass of ours is Accepted with no unsupported CRD version,
    /// every Gateway and listener is Accepted, Programmed and not conflicted, every
    /// route parent is Accepted with ResolvedRefs true, and every policy is Accepted by
    /// each of its ancestors.
    pub fn all_ok(&self) -> bool {
        self.problems().is_empty()
    }

    /// One line: counts, and the first problem if any.
    pub fn summary(&self) -> String {
        let problems = self.problems();
        let ignored = self.ignored_routes();
        let mut line = format!(
            "{} gatewayclass(es), {} gateway(s), {} UDPRoute(s)",
            self.gateway_classes.len(),
            self.gateways.len(),
            self.routes.len()
        );
        if ignored > 0 {
            line.push_str(&format!(" ({ignored} not attached to a Gateway of ours)"));
        }
        if !self.policies.is_empty() {
            line.push_str(&format!(", {} policy(ies)", self.policies.len()));
        }
        match problems.first() {
            None => line.push_str(": all accepted"),
            Some(first) => line.push_str(&format!(
                ": {} condition(s) not healthy, first: {first}",
                problems.len()
            )),
        }
        line
    }
}

/// The report as multi-document YAML (what `udplb check` prints).
pub fn status_yaml(report: &StatusReport) -> String {
    let mut out = String::new();
    for doc in report.documents() {
        out.push_str("---\n");
        match serde_norway::to_string(&doc) {
            Ok(text) => out.push_str(&text),
            // Serializing plain structs of strings and numbers cannot fail; keep going.
            Err(e) => out.push_str(&format!("# cannot render: {e}\n")),
        }
    }
    out
}

/// The report as a JSON array (what `udplb check --output json` prints).
pub fn status_json(report: &StatusReport) -> String {
    serde_json::to_string_pretty(&report.documents())
        .unwrap_or_else(|e| format!("\"cannot render: {e}\""))
}

//! The Gateway API and Kubernetes objects udplb reads, as serde types.
//!
//! Field names follow the Kubernetes spelling (camelCase). Numbers that the API bounds
//! (ports, weights) are read as `i64` so that an out-of-range value is reported by
//! [`crate::validate`] with its range instead of as a type error. Gateway API `spec`
//! structures reject unknown fields (a typo such as `backendRef` must not be silently
//! ignored); core objects (`Service`, `EndpointSlice`, `Namespace`) and the Gateway API's
//! `CustomResourceDefinition`s accept and ignore the many fields kubectl prints that udplb
//! does not use.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::time::Timestamp;
use crate::validate::Location;

/// The API group of Gateway API kinds.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// The API group of the Gateway API's experimental `X`-prefixed kinds (same bundle).
pub const GATEWAY_EXPERIMENTAL_GROUP: &str = "gateway.networking.x-k8s.io";
/// The CRD annotation naming the Gateway API release (bundle version) it comes from.
pub const BUNDLE_VERSION_ANNOTATION: &str = "gateway.networking.k8s.io/bundle-version";
/// The label that links an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// The label Kubernetes puts on every Namespace, holding its name.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// `metadata` as written in YAML.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawMeta {
    /// `metadata.name`.
    pub name: Option<String>,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `metadata.labels`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `metadata.creationTimestamp` (RFC 3339).
    pub creation_timestamp: Option<String>,
}

/// `metadata` after defaulting: the identity and the fields udplb uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; `default` when absent, empty for cluster-scoped kinds.
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `metadata.generation`; 1 when absent (what the API server assigns on create).
    pub generation: i64,
    /// `metadata.creationTimestamp`; `None` sorts as the newest.
    pub created: Option<Timestamp>,
    /// Where the object was read from.
    pub source: Location,
}

impl Meta {
    /// Age order: older first, a missing timestamp counts as newest, ties by namespace/name.
    pub fn age_key(&self) -> (bool, Option<Timestamp>, &str, &str) {
        (
            self.created.is_none(),
            self.created,
            &self.namespace,
            &self.name,
        )
    }
}

/// A Gateway API `GatewayClass` (only `controllerName` matters to udplb).
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayClass {
    /// Metadata (cluster-scoped).
    pub meta: Meta,
    /// `spec`.
    pub spec: GatewayClassSpec,
}

/// `GatewayClass.spec`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayClassSpec {
    /// The controller that manages Gateways of this class.
    pub controller_name: String,
    /// Controller-specific parameters. udplb takes none, so a class that sets this is
    /// not Accepted (`InvalidParameters`).
    #[serde(default)]
    pub parameters_ref: Option<ParametersReference>,
    /// Ignored.
    #[serde(default)]
    pub description: Option<String>,
}

/// `GatewayClass.spec.parametersRef`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParametersReference {
    /// API group of the referent (`""` for core).
    pub group: String,
    /// Kind of the referent.
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// Namespace, for a namespaced referent.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A Gateway API `Gateway`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gateway {
    /// Metadata.
    pub meta: Meta,
    /// `spec`.
    pub spec: GatewaySpec,
}

/// `Gateway.spec`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewaySpec {
    /// The GatewayClass.
    pub gateway_class_name: String,
    /// Listeners (1..=64, unique names).
    pub listeners: Vec<Listener>,
    /// Requested addresses (at most 16); empty means the appliance's default VIPs.
    #[serde(default)]
    pub addresses: Vec<GatewayAddress>,
    /// Ignored (infrastructure labels for provisioned resources).
    #[serde(default)]
    pub infrastructure: Option<serde_json::Value>,
    /// Ignored (TLS towards backends).
    #[serde(default, rename = "backendTLS")]
    pub backend_tls: Option<serde_json::Value>,
    /// Ignored (ListenerSets).
    #[serde(default)]
    pub allowed_listeners: Option<serde_json::Value>,
    /// Ignored (Gateway-level TLS).
    #[serde(default)]
    pub tls: Option<serde_json::Value>,
    /// Ignored.
    #[serde(default)]
    pub default_scope: Option<serde_json::Value>,
}

/// `Gateway.spec.addresses[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayAddress {
    /// Address type; `IPAddress` when absent.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The address; absent or empty asks the implementation to assign one.
    #[serde(default)]
    pub value: Option<String>,
}

/// `Gateway.spec.listeners[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listener {
    /// Listener name, unique in the Gateway.
    pub name: String,
    /// Must be absent for UDP.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Port, 1..=65535.
    pub port: i64,
    /// `UDP`, `TCP`, `HTTP`, `HTTPS`, `TLS`, or an implementation-specific value.
    pub protocol: String,
    /// Must be absent for UDP.
    #[serde(default)]
    pub tls: Option<serde_json::Value>,
    /// Which routes may attach.
    #[serde(default)]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `listeners[].allowedRoutes`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllowedRoutes {
    /// Namespaces routes may come from; `from: Same` when absent.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds (at most 8); derived from the protocol when absent or empty.
    #[serde(default)]
    pub kinds: Option<Vec<RouteGroupKind>>,
}

/// `allowedRoutes.namespaces`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteNamespaces {
    /// `All`, `Same` (default) or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// Namespace label selector, used with `from: Selector`.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// A `metav1.LabelSelector`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Every label must be present with this value.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    /// Every requirement must hold.
    #[serde(default)]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `matchExpressions[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In`/`NotIn`; must be empty for `Exists`/`DoesNotExist`.
    #[serde(default)]
    pub values: Vec<String>,
}

/// `{group, kind}` of a route kind.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteGroupKind {
    /// API group; `gateway.networking.k8s.io` when absent.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
}

/// A Gateway API `UDPRoute` (`v1` or `v1alpha2`).
#[derive(Clone, Debug, PartialEq)]
pub struct UdpRoute {
    /// Metadata.
    pub meta: Meta,
    /// The apiVersion it was written in, echoed in status output.
    pub api_version: String,
    /// `spec`.
    pub spec: UdpRouteSpec,
}

/// `UDPRoute.spec` (identical in `v1` and `v1alpha2` apart from the rule limit).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdpRouteSpec {
    /// Parents (at most 32).
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Rules: exactly 1 in `v1`, 1..=16 in `v1alpha2`.
    pub rules: Vec<UdpRouteRule>,
    /// Ignored (experimental default-Gateway attachment).
    #[serde(default)]
    pub use_default_gateways: Option<serde_json::Value>,
}

/// `UDPRoute.spec.parentRefs[]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentReference {
    /// Default `gateway.networking.k8s.io`.
    #[serde(default)]
    pub group: Option<String>,
    /// Default `Gateway`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Default: the route's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Gateway name.
    pub name: String,
    /// Listener name.
    #[serde(default)]
    pub section_name: Option<String>,
    /// Listener port, 1..=65535.
    #[serde(default)]
    pub port: Option<i64>,
}

/// `UDPRoute.spec.rules[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdpRouteRule {
    /// Optional rule name.
    #[serde(default)]
    pub name: Option<String>,
    /// Backends (1..=16).
    pub backend_refs: Vec<BackendRef>,
}

/// `rules[].backendRefs[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// Default `""` (core).
    #[serde(default)]
    pub group: Option<String>,
    /// Default `Service`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Object name.
    pub name: String,
    /// Default: the route's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Service port (not targetPort), required for Services.
    #[serde(default)]
    pub port: Option<i64>,
    /// Default 1, 0..=1000000.
    #[serde(default)]
    pub weight: Option<i64>,
}

impl BackendRef {
    /// The group with its default filled in.
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or("")
    }
    /// The kind with its default filled in.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("Service")
    }
    /// True for a reference to a core Service (the only kind udplb resolves).
    pub fn is_service(&self) -> bool {
        matches!(self.group(), "" | "core") && self.kind() == "Service"
    }
}

/// A Gateway API `ReferenceGrant`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferenceGrant {
    /// Metadata (lives in the target's namespace).
    pub meta: Meta,
    /// `spec`.
    pub spec: ReferenceGrantSpec,
}

/// `ReferenceGrant.spec`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceGrantSpec {
    /// Who may refer (1..=16).
    pub from: Vec<ReferenceGrantFrom>,
    /// What may be referred to (1..=16).
    pub to: Vec<ReferenceGrantTo>,
}

/// `ReferenceGrant.spec.from[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceGrantFrom {
    /// Referrer group.
    pub group: String,
    /// Referrer kind.
    pub kind: String,
    /// Referrer namespace.
    pub namespace: String,
}

/// `ReferenceGrant.spec.to[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceGrantTo {
    /// Target group (`""` for core).
    pub group: String,
    /// Target kind.
    pub kind: String,
    /// Target name; absent means every object of the kind in the namespace.
    #[serde(default)]
    pub name: Option<String>,
}

/// A core `Service` (only its ports and type matter).
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Metadata.
    pub meta: Meta,
    /// `spec`.
    pub spec: ServiceSpec,
}

/// `Service.spec` (unknown fields ignored).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `ClusterIP` (default), `NodePort`, `LoadBalancer` or `ExternalName`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Ports.
    #[serde(default)]
    pub ports: Vec<ServicePort>,
    /// `None` (default) or `ClientIP`.
    #[serde(default)]
    pub session_affinity: Option<String>,
    /// The `ClientIP` affinity's timeout; only with `sessionAffinity: ClientIP`.
    #[serde(default)]
    pub session_affinity_config: Option<SessionAffinityConfig>,
}

/// `Service.spec.sessionAffinityConfig`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct SessionAffinityConfig {
    /// `clientIP`.
    #[serde(default, rename = "clientIP")]
    pub client_ip: Option<ClientIpConfig>,
}

/// `sessionAffinityConfig.clientIP`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIpConfig {
    /// Seconds, 1..=86400; 10800 when absent.
    #[serde(default)]
    pub timeout_seconds: Option<i64>,
}

/// Kubernetes' default `sessionAffinityConfig.clientIP.timeoutSeconds` (3 hours).
pub const DEFAULT_CLIENT_IP_TIMEOUT_SECONDS: i64 = 10_800;
/// Kubernetes' largest `sessionAffinityConfig.clientIP.timeoutSeconds` (1 day).
pub const MAX_CLIENT_IP_TIMEOUT_SECONDS: i64 = 86_400;

impl Service {
    /// The idle timeout of `sessionAffinity: ClientIP` (`timeoutSeconds`, default 10800
    /// s), or `None` without client-IP affinity.
    pub fn client_ip_affinity(&self) -> Option<std::time::Duration> {
        if self.spec.session_affinity.as_deref() != Some("ClientIP") {
            return None;
        }
        let seconds = self
            .spec
            .session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(DEFAULT_CLIENT_IP_TIMEOUT_SECONDS)
            .clamp(1, MAX_CLIENT_IP_TIMEOUT_SECONDS);
        Some(std::time::Duration::from_secs(seconds.unsigned_abs()))
    }
}

/// `Service.spec.ports[]`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name (matches the EndpointSlice port name).
    #[serde(default)]
    pub name: Option<String>,
    /// `TCP` (Kubernetes default), `UDP` or `SCTP`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Service port, 1..=65535.
    pub port: i64,
    /// Target port: a number or a container port name; defaults to `port`.
    #[serde(default)]
    pub target_port: Option<IntOrString>,
}

/// A Kubernetes `IntOrString`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    /// A number.
    Int(i64),
    /// A name.
    String(String),
}

/// A `discovery.k8s.io/v1` `EndpointSlice`.
#[derive(Clone, Debug, PartialEq)]
pub struct EndpointSlice {
    /// Metadata; the `kubernetes.io/service-name` label names the Service.
    pub meta: Meta,
    /// `IPv4`, `IPv6` or `FQDN` (ignored).
    pub address_type: String,
    /// Endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Ports.
    pub ports: Vec<EndpointPort>,
}

/// `EndpointSlice.endpoints[]` (unknown fields ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// Addresses (udplb uses them all; Kubernetes puts exactly one).
    pub addresses: Vec<String>,
    /// Readiness.
    #[serde(default)]
    pub conditions: EndpointConditions,
}

/// `endpoints[].conditions`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointConditions {
    /// Absent means ready (Kubernetes: unknown state is ready).
    #[serde(default)]
    pub ready: Option<bool>,
    /// Serving (may be true while terminating; still draining for udplb).
    #[serde(default)]
    pub serving: Option<bool>,
    /// Terminating; absent means false.
    #[serde(default)]
    pub terminating: Option<bool>,
}

impl EndpointConditions {
    /// Draining: not ready or terminating. Draining endpoints take no new flows.
    pub fn draining(&self) -> bool {
        self.ready == Some(false) || self.terminating == Some(true)
    }
}

/// `EndpointSlice.ports[]` (unknown fields ignored).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPort {
    /// Name, matching a Service port name.
    #[serde(default)]
    pub name: Option<String>,
    /// Protocol (`TCP` when absent).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Port number; absent means "all ports" and is ignored by udplb.
    #[serde(default)]
    pub port: Option<i64>,
}

/// A core `Namespace` (only its labels matter).
#[derive(Clone, Debug, PartialEq)]
pub struct Namespace {
    /// Metadata (cluster-scoped).
    pub meta: Meta,
}

/// An `apiextensions.k8s.io/v1` `CustomResourceDefinition` of the Gateway API (group
/// `gateway.networking.k8s.io` or `gateway.networking.x-k8s.io`). Only its identity is
/// kept: the bundle version is an annotation, in `meta.annotations`.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomResourceDefinition {
    /// Metadata (cluster-scoped; the name is `<plural>.<group>`).
    pub meta: Meta,
    /// `spec.group`.
    pub group: String,
    /// `spec.names.kind`.
    pub kind: String,
}

impl CustomResourceDefinition {
    /// The `gateway.networking.k8s.io/bundle-version` annotation, if set.
    pub fn bundle_version(&self) -> Option<&str> {
        self.meta
            .annotations
            .get(BUNDLE_VERSION_ANNOTATION)
            .map(String::as_str)
    }
}

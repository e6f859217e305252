//! The policy kinds of udplb's API group `udplb.io/v1alpha1`, as serde types.
//!
//! Both follow GEP-713 (policy attachment): `spec.targetRefs[]` names what they attach to,
//! and their status is `status.ancestors[]` ([`crate::status::PolicyStatus`]).
//!
//! The shape is strict (unknown fields are refused, so a typo is an error at load), but
//! values are read as written: numbers as `i64`, durations and keywords as strings. They
//! are judged when the set is compiled (`policy::values`), and a bad value makes the
//! policy `Accepted=False/Invalid` with the field in the message, instead of refusing the
//! whole set.

use serde::Deserialize;

use crate::model::Meta;

/// udplb's API group.
pub const UDPLB_GROUP: &str = "udplb.io";
/// The apiVersion of both policy kinds.
pub const POLICY_API_VERSION: &str = "udplb.io/v1alpha1";
/// The kind of [`UdpBackendPolicy`].
pub const BACKEND_POLICY_KIND: &str = "UDPBackendPolicy";
/// The kind of [`UdpTrafficPolicy`].
pub const TRAFFIC_POLICY_KIND: &str = "UDPTrafficPolicy";

/// `spec.targetRefs[]`: an object in the policy's own namespace (GEP-713
/// `LocalPolicyTargetReferenceWithSectionName`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    /// API group of the target (`""` for core).
    pub group: String,
    /// Kind of the target.
    pub kind: String,
    /// Name of the target.
    pub name: String,
    /// A section of the target: a listener name (Gateway) or a port name (Service).
    #[serde(default)]
    pub section_name: Option<String>,
}

/// A `UDPBackendPolicy`: health checking of the endpoints of a Service (or of one of its
/// ports), wherever a UDPRoute of one of our Gateways uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct UdpBackendPolicy {
    /// Metadata.
    pub meta: Meta,
    /// `spec`.
    pub spec: UdpBackendPolicySpec,
}

/// `UDPBackendPolicy.spec`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdpBackendPolicySpec {
    /// Services (group `""`, kind `Service`), optionally one port by name (1..=16).
    pub target_refs: Vec<PolicyTargetReference>,
    /// What to check.
    pub health_check: HealthCheck,
}

/// `spec.healthCheck`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Probes sent by the appliance.
    #[serde(default)]
    pub active: Option<ActiveHealthCheck>,
    /// Ejection on ICMP errors from a backend.
    #[serde(default)]
    pub passive: Option<PassiveHealthCheck>,
    /// Percent of unhealthy endpoints above which health is ignored (default 50).
    #[serde(default)]
    pub panic_threshold: Option<i64>,
}

/// `spec.healthCheck.active`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActiveHealthCheck {
    /// `UDP` or `DNS`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Time between probes (default `3s`).
    #[serde(default)]
    pub interval: Option<String>,
    /// Time a probe waits for its answer (default `1s`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// Passes in a row that make an endpoint healthy (default 1).
    #[serde(default)]
    pub healthy_threshold: Option<i64>,
    /// Failures in a row that make an endpoint unhealthy (default 3).
    #[serde(default)]
    pub unhealthy_threshold: Option<i64>,
    /// Probe destination port (default: the endpoint's port).
    #[serde(default)]
    pub port: Option<i64>,
    /// The UDP probe, for `type: UDP`.
    #[serde(default)]
    pub udp: Option<UdpProbe>,
    /// The DNS probe, for `type: DNS`.
    #[serde(default)]
    pub dns: Option<DnsProbe>,
}

/// `active.udp`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdpProbe {
    /// The payload sent.
    pub send: Payload,
    /// The reply that passes; without it the check is weak.
    #[serde(default)]
    pub expect: Option<ExpectedPayload>,
}

/// Bytes written one of three ways: exactly one field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Payload {
    /// UTF-8 text.
    #[serde(default)]
    pub text: Option<String>,
    /// Hexadecimal digits, two per byte.
    #[serde(default)]
    pub hex: Option<String>,
    /// Base64 (standard alphabet).
    #[serde(default)]
    pub base64: Option<String>,
}

/// `udp.expect`: a [`Payload`] and how to match it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedPayload {
    /// `Exact` (default), `Prefix` or `Contains`.
    #[serde(default, rename = "match")]
    pub matching: Option<String>,
    /// UTF-8 text.
    #[serde(default)]
    pub text: Option<String>,
    /// Hexadecimal digits.
    #[serde(default)]
    pub hex: Option<String>,
    /// Base64.
    #[serde(default)]
    pub base64: Option<String>,
}

impl ExpectedPayload {
    /// The bytes part.
    pub fn payload(&self) -> Payload {
        Payload {
            text: self.text.clone(),
            hex: self.hex.clone(),
            base64: self.base64.clone(),
        }
    }
}

/// `active.dns`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DnsProbe {
    /// Query name.
    pub name: String,
    /// Query type (default `A`).
    #[serde(default, rename = "type")]
    pub qtype: Option<String>,
    /// Response codes that pass (default `[NOERROR]`).
    #[serde(default)]
    pub rcodes: Option<Vec<String>>,
    /// The query's RD bit (default false).
    #[serde(default)]
    pub recursion_desired: Option<bool>,
}

/// `spec.healthCheck.passive`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassiveHealthCheck {
    /// Failures in a row that eject an endpoint (default 5).
    #[serde(default)]
    pub consecutive_failures: Option<i64>,
    /// First ejection time (default `30s`).
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    /// Most endpoints ejected at once, in percent (default 10).
    #[serde(default)]
    pub max_ejection_percent: Option<i64>,
}

/// A `UDPTrafficPolicy`: how a Gateway's listeners handle flows.
#[derive(Clone, Debug, PartialEq)]
pub struct UdpTrafficPolicy {
    /// Metadata.
    pub meta: Meta,
    /// `spec`.
    pub spec: UdpTrafficPolicySpec,
}

/// `UDPTrafficPolicy.spec`. Every field but `targetRefs` is optional; an unset field
/// leaves the value to less specific policies, annotations and appliance settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UdpTrafficPolicySpec {
    /// Gateways (optionally one listener by `sectionName`) and UDPRoutes (1..=16).
    pub target_refs: Vec<PolicyTargetReference>,
    /// `fullnat` or `preserve-client` (`pipelines::spec::NatMode`).
    #[serde(default)]
    pub nat_mode: Option<String>,
    /// `5-tuple`, `source-ip-port` or `source-ip` (`pipelines::spec::HashKey`).
    #[serde(default)]
    pub hash_key: Option<String>,
    /// Idle timeout of flows that have seen a reply.
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// Idle timeout of flows that have not seen a reply yet.
    #[serde(default)]
    pub unreplied_timeout: Option<String>,
    /// Maglev table size of the listener's route (a prime).
    #[serde(default)]
    pub maglev_table_size: Option<i64>,
}

//! One object decoded: dispatched on `apiVersion` and `kind`, decoded into the typed model
//! (strictly for Gateway API kinds and udplb's policies, loosely for core objects) with the
//! field path of any error, metadata defaults applied, then validated.

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_norway::Value;

use super::ObjectSet;
use crate::model::{
    CustomResourceDefinition, Endpoint, EndpointPort, EndpointSlice, Gateway, GatewayClass,
    GatewayClassSpec, GatewaySpec, Meta, Namespace, RawMeta, ReferenceGrant, ReferenceGrantSpec,
    Service, ServiceSpec, UdpRoute, UdpRouteSpec, GATEWAY_EXPERIMENTAL_GROUP, GATEWAY_GROUP,
};
use crate::policy::model::{
    UdpBackendPolicy, UdpBackendPolicySpec, UdpTrafficPolicy, UdpTrafficPolicySpec,
    BACKEND_POLICY_KIND, TRAFFIC_POLICY_KIND, UDPLB_GROUP,
};
use crate::time::Timestamp;
use crate::validate::{self, Checker, Location, ObjectId, Problem};
use crate::yaml::Overflow;

/// Kinds udplb reads: (group, kind) → accepted versions.
fn supported(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (group, kind) {
        ("gateway.networking.k8s.io", "GatewayClass" | "Gateway") => &["v1", "v1beta1"],
        ("gateway.networking.k8s.io", "UDPRoute") => &["v1", "v1alpha2"],
        ("gateway.networking.k8s.io", "ReferenceGrant") => &["v1", "v1beta1", "v1alpha2"],
        ("", "Service" | "Namespace") => &["v1"],
        ("discovery.k8s.io", "EndpointSlice") => &["v1"],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => &["v1"],
        (UDPLB_GROUP, BACKEND_POLICY_KIND | TRAFFIC_POLICY_KIND) => &["v1alpha1"],
        _ => return None,
    })
}

/// Decodes and validates one object into `set`; a kind udplb does not read is skipped.
pub(super) fn object(
    value: Value,
    location: Location,
    overflows: &[Overflow],
    set: &mut ObjectSet,
    problems: &mut Vec<Problem>,
) {
    let shape = |field: &str, message: &str| Problem {
        location: location.clone(),
        object: None,
        field: field.into(),
        message: message.into(),
    };
    if !value.is_mapping() {
        problems.push(shape(
            "",
            "a document must be a mapping with apiVersion and kind",
        ));
        return;
    }
    let Some(kind) = value.get("kind").and_then(Value::as_str).map(str::to_owned) else {
        problems.push(shape("kind", "required string"));
        return;
    };
    let Some(api_version) = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        problems.push(shape("apiVersion", "required string"));
        return;
    };
    let (group, version) = api_version
        .rsplit_once('/')
        .unwrap_or(("", api_version.as_str()));
    let Some(versions) = supported(group, &kind) else {
        log::debug!("{location}: skipping {api_version} {kind}: not a kind udplb reads");
        return;
    };
    let cluster_scoped = matches!(
        kind.as_str(),
        "GatewayClass" | "Namespace" | "CustomResourceDefinition"
    );
    let meta_value = value.get("metadata");
    let name = meta_value
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned();
    let namespace = if cluster_scoped {
        String::new()
    } else {
        meta_value
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_owned()
    };
    let id = ObjectId {
        kind: kind.clone(),
        namespace,
        name,
    };
    let mut c = Checker::new(&location, id, problems, overflows);
    if !versions.contains(&version) {
        c.fail(
            "apiVersion",
            format!(
                "{api_version} is not supported for {kind} (supported: {})",
                versions
                    .iter()
                    .map(|v| if group.is_empty() {
                        (*v).to_owned()
                    } else {
                        format!("{group}/{v}")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        return;
    }
    match kind.as_str() {
        "GatewayClass" => {
            if let Some((meta, spec)) = strict::<GatewayClassSpec>(value, true, &location, &mut c) {
                set.gateway_classes.push(GatewayClass { meta, spec });
            }
        }
        "Gateway" => {
            if let Some((meta, spec)) = strict::<GatewaySpec>(value, false, &location, &mut c) {
                let g = Gateway { meta, spec };
                validate::gateway(&mut c, &g);
                set.gateways.push(g);
            }
        }
        "UDPRoute" => {
            if let Some((meta, spec)) = strict::<UdpRouteSpec>(value, false, &location, &mut c) {
                let r = UdpRoute {
                    meta,
                    api_version,
                    spec,
                };
                validate::udp_route(&mut c, &r);
                set.udp_routes.push(r);
            }
        }
        BACKEND_POLICY_KIND => {
            if let Some((meta, spec)) =
                strict::<UdpBackendPolicySpec>(value, false, &location, &mut c)
            {
                validate::policy_target_refs(&mut c, &spec.target_refs);
                set.udp_backend_policies
                    .push(UdpBackendPolicy { meta, spec });
            }
        }
        TRAFFIC_POLICY_KIND => {
            if let Some((meta, spec)) =
                strict::<UdpTrafficPolicySpec>(value, false, &location, &mut c)
            {
                validate::policy_target_refs(&mut c, &spec.target_refs);
                set.udp_traffic_policies
                    .push(UdpTrafficPolicy { meta, spec });
            }
        }
        "ReferenceGrant" => {
            if let Some((meta, spec)) =
                strict::<ReferenceGrantSpec>(value, false, &location, &mut c)
            {
                let g = ReferenceGrant { meta, spec };
                validate::reference_grant(&mut c, &g);
                set.reference_grants.push(g);
            }
        }
        "Service" => {
            if let Some((meta, spec)) = typed::<Loose<ServiceSpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, false, &location, &mut c).map(|m| (m, e.spec)))
            {
                let s = Service {
                    meta,
                    spec: spec.unwrap_or_default(),
                };
                validate::service(&mut c, &s);
                set.services.push(s);
            }
        }
        "EndpointSlice" => {
            if let Some(e) = typed::<RawEndpointSlice>(value, &mut c) {
                if let Some(meta) = with_meta(e.metadata, false, &location, &mut c) {
                    let s = EndpointSlice {
                        meta,
                        address_type: e.address_type,
                        endpoints: e.endpoints.unwrap_or_default(),
                        ports: e.ports.unwrap_or_default(),
                    };
                    validate::endpoint_slice(&mut c, &s);
                    set.endpoint_slices.push(s);
                }
            }
        }
        "Namespace" => {
            if let Some(e) = typed::<Loose<IgnoredAny>>(value, &mut c) {
                if let Some(meta) = with_meta(e.metadata, true, &location, &mut c) {
                    set.namespaces.push(Namespace { meta });
                }
            }
        }
        "CustomResourceDefinition" => {
            if let Some(e) = typed::<RawCrd>(value, &mut c) {
                if let Some(meta) = with_meta(e.metadata, true, &location, &mut c) {
                    let group = e.spec.group;
                    if group == GATEWAY_GROUP || group == GATEWAY_EXPERIMENTAL_GROUP {
                        set.custom_resource_definitions
                            .push(CustomResourceDefinition {
                                meta,
                                group,
                                kind: e.spec.names.kind,
                            });
                    } else {
                        log::debug!("{location}: skipping the CRD of {group}: not Gateway API");
                    }
                }
            }
        }
        _ => log::debug!("{location}: skipping {kind}"),
    }
}

/// A Gateway API object or a udplb policy: only these top-level fields are allowed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Strict<S> {
    #[serde(rename = "apiVersion")]
    _api_version: IgnoredAny,
    #[serde(rename = "kind")]
    _kind: IgnoredAny,
    #[serde(default)]
    metadata: RawMeta,
    spec: S,
    #[serde(default, rename = "status")]
    _status: Option<IgnoredAny>,
}

/// Decodes a [`Strict`] object: its metadata (defaults applied) and spec.
fn strict<S: DeserializeOwned>(
    value: Value,
    cluster_scoped: bool,
    location: &Location,
    c: &mut Checker<'_>,
) -> Option<(Meta, S)> {
    let e = typed::<Strict<S>>(value, c)?;
    let meta = with_meta(e.metadata, cluster_scoped, location, c)?;
    Some((meta, e.spec))
}

/// A core object: unknown top-level fields are ignored.
#[derive(Deserialize)]
struct Loose<S> {
    #[serde(default)]
    metadata: RawMeta,
    #[serde(default)]
    spec: Option<S>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEndpointSlice {
    #[serde(default)]
    metadata: RawMeta,
    address_type: String,
    #[serde(default)]
    endpoints: Option<Vec<Endpoint>>,
    #[serde(default)]
    ports: Option<Vec<EndpointPort>>,
}

/// A CustomResourceDefinition: identity only. Its schema (often hundreds of kilobytes)
/// and every other field are ignored.
#[derive(Deserialize)]
struct RawCrd {
    #[serde(default)]
    metadata: RawMeta,
    spec: RawCrdSpec,
}

#[derive(Deserialize)]
struct RawCrdSpec {
    group: String,
    names: RawCrdNames,
}

#[derive(Deserialize)]
struct RawCrdNames {
    kind: String,
}

/// Decodes `value` as `T`, reporting a failure with its field path; an integer outside
/// `i64` there is reported as out of range.
fn typed<T: DeserializeOwned>(value: Value, c: &mut Checker<'_>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            match c.overflow_at(&field) {
                Some(literal) => {
                    let message = validate::out_of_range(&field, &literal);
                    c.fail(field, message);
                }
                None => c.fail(field, e.inner().to_string()),
            }
            None
        }
    }
}

/// Applies metadata defaults: namespace `default`, generation 1.
fn with_meta(
    raw: RawMeta,
    cluster_scoped: bool,
    location: &Location,
    c: &mut Checker<'_>,
) -> Option<Meta> {
    let mut ok = true;
    let name = match raw.name.filter(|n| !n.is_empty()) {
        Some(n) => n,
        None => {
            c.fail("metadata.name", "required");
            ok = false;
            String::new()
        }
    };
    let generation = raw.generation.unwrap_or(1);
    if generation < 0 {
        c.fail("metadata.generation", format!("{generation} is negative"));
        ok = false;
    }
    let created = match raw.creation_timestamp.as_deref() {
        None | Some("") => None,
        Some(text) => match Timestamp::parse(text) {
            Ok(t) => Some(t),
            Err(e) => {
                c.fail("metadata.creationTimestamp", format!("{text:?}: {e}"));
                ok = false;
                None
            }
        },
    };
    let namespace = if cluster_scoped {
        String::new()
    } else {
        raw.namespace
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into())
    };
    ok.then(|| Meta {
        name,
        namespace,
        labels: raw.labels,
        annotations: raw.annotations,
        generation,
        created,
        source: location.clone(),
    })
}

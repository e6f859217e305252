//! Reading objects: files, directories, multi-document YAML and kubectl `List`s.
//!
//! Each document is parsed into a YAML value, dispatched on `apiVersion`/`kind`, decoded
//! into the typed model with the field path of any error, then validated
//! ([`crate::validate`]). Problems are collected across every document and file, so one
//! run reports all of them; a set with any problem is rejected whole.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_norway::Value;

use crate::model::{
    CustomResourceDefinition, Endpoint, EndpointPort, EndpointSlice, Gateway, GatewayClass,
    GatewayClassSpec, GatewaySpec, Meta, Namespace, RawMeta, ReferenceGrant, ReferenceGrantSpec,
    Service, ServiceSpec, UdpRoute, UdpRouteSpec, GATEWAY_EXPERIMENTAL_GROUP, GATEWAY_GROUP,
};
use crate::time::Timestamp;
use crate::validate::{self, Checker, Location, ObjectId, Problem, ValidationError};

/// Every object udplb understands, as read (validated, not yet interpreted).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectSet {
    /// GatewayClasses.
    pub gateway_classes: Vec<GatewayClass>,
    /// Gateways.
    pub gateways: Vec<Gateway>,
    /// UDPRoutes (v1 and v1alpha2).
    pub udp_routes: Vec<UdpRoute>,
    /// ReferenceGrants.
    pub reference_grants: Vec<ReferenceGrant>,
    /// Services.
    pub services: Vec<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<EndpointSlice>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// The Gateway API's CustomResourceDefinitions (their bundle version decides the
    /// GatewayClass `SupportedVersion` condition); other CRDs are skipped.
    pub custom_resource_definitions: Vec<CustomResourceDefinition>,
}

/// Why a set of objects could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The input is not valid YAML, has the wrong shape, or breaks a schema rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl ObjectSet {
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.gateway_classes.len()
            + self.gateways.len()
            + self.udp_routes.len()
            + self.reference_grants.len()
            + self.services.len()
            + self.endpoint_slices.len()
            + self.namespaces.len()
            + self.custom_resource_definitions.len()
    }

    /// True when the set holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds every object of `other`. Two objects of one kind with the same namespace and
    /// name are an error (as in Kubernetes, `v1` and `v1alpha2` UDPRoutes are one kind);
    /// on error `self` is left unchanged.
    ///
    /// # Errors
    /// A [`ValidationError`] naming each duplicate and where it was first defined.
    pub fn merge(&mut self, other: ObjectSet) -> Result<(), ValidationError> {
        let mut merged = self.clone();
        merged.gateway_classes.extend(other.gateway_classes);
        merged.gateways.extend(other.gateways);
        merged.udp_routes.extend(other.udp_routes);
        merged.reference_grants.extend(other.reference_grants);
        merged.services.extend(other.services);
        merged.endpoint_slices.extend(other.endpoint_slices);
        merged.namespaces.extend(other.namespaces);
        merged
            .custom_resource_definitions
            .extend(other.custom_resource_definitions);
        let problems = merged.duplicates();
        if problems.is_empty() {
            *self = merged;
            Ok(())
        } else {
            Err(ValidationError { problems })
        }
    }

    fn metas(&self) -> Vec<(&'static str, &Meta)> {
        let mut out: Vec<(&'static str, &Meta)> = Vec::with_capacity(self.len());
        out.extend(
            self.gateway_classes
                .iter()
                .map(|o| ("GatewayClass", &o.meta)),
        );
        out.extend(self.gateways.iter().map(|o| ("Gateway", &o.meta)));
        out.extend(self.udp_routes.iter().map(|o| ("UDPRoute", &o.meta)));
        out.extend(
            self.reference_grants
                .iter()
                .map(|o| ("ReferenceGrant", &o.meta)),
        );
        out.extend(self.services.iter().map(|o| ("Service", &o.meta)));
        out.extend(
            self.endpoint_slices
                .iter()
                .map(|o| ("EndpointSlice", &o.meta)),
        );
        out.extend(self.namespaces.iter().map(|o| ("Namespace", &o.meta)));
        out.extend(
            self.custom_resource_definitions
                .iter()
                .map(|o| ("CustomResourceDefinition", &o.meta)),
        );
        out
    }

    fn duplicates(&self) -> Vec<Problem> {
        let mut first: BTreeMap<ObjectId, &Location> = BTreeMap::new();
        let mut problems = Vec::new();
        for (kind, meta) in self.metas() {
            let id = object_id(kind, meta);
            match first.get(&id) {
                Some(loc) => problems.push(Problem {
                    location: meta.source.clone(),
                    object: Some(id),
                    field: String::new(),
                    message: format!("defined twice; first at {loc}"),
                }),
                None => {
                    first.insert(id, &meta.source);
                }
            }
        }
        problems
    }
}

fn object_id(kind: &str, meta: &Meta) -> ObjectId {
    ObjectId {
        kind: kind.into(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
    }
}

/// Loads files and directories (non-recursive: the `*.yaml` and `*.yml` files in them,
/// in name order) into one set.
///
/// # Errors
/// [`LoadError::Io`] for an unreadable path; [`LoadError::Invalid`] listing every parse,
/// schema and duplicate problem across all files.
pub fn load_paths(paths: &[PathBuf]) -> Result<ObjectSet, LoadError> {
    let mut files = Vec::new();
    for path in paths {
        let io_err = |source| LoadError::Io {
            path: path.clone(),
            source,
        };
        if fs::metadata(path).map_err(io_err)?.is_dir() {
            let mut found = Vec::new();
            for entry in fs::read_dir(path).map_err(io_err)? {
                let p = entry.map_err(io_err)?.path();
                let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
                if yaml && p.is_file() {
                    found.push(p);
                }
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut set = ObjectSet::default();
    let mut problems = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).map_err(|source| LoadError::Io {
            path: file.clone(),
            source,
        })?;
        let (one, mut found) = parse_str(&display(file), &text);
        problems.append(&mut found);
        if let Err(mut e) = set.merge(one) {
            problems.append(&mut e.problems);
        }
    }
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(ValidationError { problems }.into())
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Loads one YAML text (one or more documents); `source_name` is used in errors.
///
/// # Errors
/// [`LoadError::Invalid`] listing every problem.
pub fn load_str(source_name: &str, text: &str) -> Result<ObjectSet, LoadError> {
    let (set, problems) = parse_str(source_name, text);
    if problems.is_empty() {
        let mut out = ObjectSet::default();
        out.merge(set)?;
        Ok(out)
    } else {
        Err(ValidationError { problems }.into())
    }
}

fn parse_str(source_name: &str, text: &str) -> (ObjectSet, Vec<Problem>) {
    let mut set = ObjectSet::default();
    let mut problems = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let location = Location {
            file: source_name.into(),
            document: i + 1,
            item: None,
        };
        match Value::deserialize(doc) {
            Ok(value) => document(value, location, &mut set, &mut problems),
            Err(e) => {
                problems.push(Problem {
                    location,
                    object: None,
                    field: String::new(),
                    message: format!("not valid YAML: {e}"),
                });
                // The rest of the stream cannot be trusted after a syntax error.
                break;
            }
        }
    }
    (set, problems)
}

fn document(value: Value, location: Location, set: &mut ObjectSet, problems: &mut Vec<Problem>) {
    if value.is_null() {
        return;
    }
    let kind = value.get("kind").and_then(Value::as_str).map(str::to_owned);
    if kind.as_deref() == Some("List") && location.item.is_none() {
        match value.get("items") {
            Some(Value::Sequence(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let at = Location {
                        item: Some(i),
                        ..location.clone()
                    };
                    document(item.clone(), at, set, problems);
                }
            }
            Some(Value::Null) | None => {}
            Some(_) => problems.push(Problem {
                location,
                object: None,
                field: "items".into(),
                message: "must be a list of objects".into(),
            }),
        }
        return;
    }
    object(value, location, set, problems);
}

/// Kinds udplb reads: (group, kind) → accepted versions.
fn supported(group: &str, kind: &str) -> Option<&'static [&'static str]> {
    Some(match (group, kind) {
        ("gateway.networking.k8s.io", "GatewayClass" | "Gateway") => &["v1", "v1beta1"],
        ("gateway.networking.k8s.io", "UDPRoute") => &["v1", "v1alpha2"],
        ("gateway.networking.k8s.io", "ReferenceGrant") => &["v1", "v1beta1", "v1alpha2"],
        ("", "Service" | "Namespace") => &["v1"],
        ("discovery.k8s.io", "EndpointSlice") => &["v1"],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => &["v1"],
        _ => return None,
    })
}

fn object(value: Value, location: Location, set: &mut ObjectSet, problems: &mut Vec<Problem>) {
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
    let mut c = Checker::new(&location, id, problems);
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
            if let Some((meta, spec)) = typed::<Strict<GatewayClassSpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, true, &location, &mut c).map(|m| (m, e.spec)))
            {
                set.gateway_classes.push(GatewayClass { meta, spec });
            }
        }
        "Gateway" => {
            if let Some((meta, spec)) = typed::<Strict<GatewaySpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, false, &location, &mut c).map(|m| (m, e.spec)))
            {
                let g = Gateway { meta, spec };
                validate::gateway(&mut c, &g);
                set.gateways.push(g);
            }
        }
        "UDPRoute" => {
            if let Some((meta, spec)) = typed::<Strict<UdpRouteSpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, false, &location, &mut c).map(|m| (m, e.spec)))
            {
                let r = UdpRoute {
                    meta,
                    api_version,
                    spec,
                };
                validate::udp_route(&mut c, &r);
                set.udp_routes.push(r);
            }
        }
        "ReferenceGrant" => {
            if let Some((meta, spec)) = typed::<Strict<ReferenceGrantSpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, false, &location, &mut c).map(|m| (m, e.spec)))
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

/// A Gateway API object: only these top-level fields are allowed.
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

/// Decodes `value` as `T`, reporting a failure with its field path.
fn typed<T: DeserializeOwned>(value: Value, c: &mut Checker<'_>) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            c.fail(field, e.inner().to_string());
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

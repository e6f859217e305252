//! Reading objects: files, directories, multi-document YAML and kubectl `List`s.
//!
//! Each document is parsed into a YAML value, dispatched on `apiVersion`/`kind`, decoded
//! into the typed model with the field path of any error, then validated
//! ([`crate::validate`]). Problems are collected across every document and file, so one
//! run reports all of them; a set with any problem is rejected whole.
//!
//! [`load`] is the one validator: `udplb check` (files), the appliance's file watcher and
//! its `PUT /v1/manifests` (a text) all go through it, so the same input gives the same
//! list of problems whichever way it arrives.
//!
//! Sizes are capped before anything is parsed ([`MAX_MANIFEST_BYTES`] per file or text,
//! [`MAX_SET_BYTES`] per set): parsing needs up to about 100 bytes of memory per byte of
//! YAML (a flow list of one-digit numbers), so the cap is what bounds memory.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_norway::Value;

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
use crate::validate::{self, Checker, Location, ObjectId, Problem, ValidationError};
use crate::yaml::{self, Overflow};

/// Largest manifest file, and largest text ([`load_str`], the appliance's
/// `PUT /v1/manifests` body): 16 MiB. A realistic set of 20,000 UDPRoutes, 20,000
/// Services and 10,000 endpoints is 15.7 MiB of YAML and needs about 250 MB to load,
/// compile and render its status; a pathological 16 MiB document (a flow list of
/// one-digit numbers) needs about 1.7 GB to parse. `config/README.md` has the figures.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// Largest set read by one [`load`] (all its files and texts together): 64 MiB. Parsing
/// memory is per document and freed after it, so this bounds what stays: the typed
/// objects (a few times the YAML size) and the compiled result.
pub const MAX_SET_BYTES: usize = 64 << 20;

/// One input of a set: a file or directory, or a text (such as an HTTP body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// A file, or a directory whose `*.yaml` and `*.yml` files are read in name order
    /// (not recursively).
    Path(&'a Path),
    /// YAML text; `name` stands for the file name in problems.
    Text {
        /// The name used in problems, e.g. `PUT /v1/manifests`.
        name: &'a str,
        /// One or more YAML documents.
        text: &'a str,
    },
}

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
    /// `udplb.io/v1alpha1` `UDPBackendPolicy` objects.
    pub udp_backend_policies: Vec<UdpBackendPolicy>,
    /// `udplb.io/v1alpha1` `UDPTrafficPolicy` objects.
    pub udp_traffic_policies: Vec<UdpTrafficPolicy>,
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
    /// A file or text is over [`MAX_MANIFEST_BYTES`]; nothing was parsed.
    #[error(
        "{name}: {size} bytes is over the limit of {limit} bytes ({} MiB) for one manifest \
         file or body",
        limit >> 20
    )]
    FileTooLarge {
        /// The file, or the name of the text.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// [`MAX_MANIFEST_BYTES`].
        limit: usize,
    },
    /// The files and texts of one set add up to more than [`MAX_SET_BYTES`]; nothing was
    /// parsed.
    #[error(
        "the manifests add up to {size} bytes (at {name}), over the limit of {limit} bytes \
         ({} MiB) for one set",
        limit >> 20
    )]
    SetTooLarge {
        /// The file or text that went over.
        name: String,
        /// The total up to and including it, in bytes.
        size: u64,
        /// [`MAX_SET_BYTES`].
        limit: usize,
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
            + self.udp_backend_policies.len()
            + self.udp_traffic_policies.len()
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
        let problems = duplicates(self.metas().chain(other.metas()));
        if !problems.is_empty() {
            return Err(ValidationError { problems });
        }
        self.gateway_classes.extend(other.gateway_classes);
        self.gateways.extend(other.gateways);
        self.udp_routes.extend(other.udp_routes);
        self.reference_grants.extend(other.reference_grants);
        self.services.extend(other.services);
        self.endpoint_slices.extend(other.endpoint_slices);
        self.namespaces.extend(other.namespaces);
        self.custom_resource_definitions
            .extend(other.custom_resource_definitions);
        self.udp_backend_policies.extend(other.udp_backend_policies);
        self.udp_traffic_policies.extend(other.udp_traffic_policies);
        Ok(())
    }

    /// Moves every object of `other` to the end of `self`.
    fn append(&mut self, other: &mut ObjectSet) {
        self.gateway_classes.append(&mut other.gateway_classes);
        self.gateways.append(&mut other.gateways);
        self.udp_routes.append(&mut other.udp_routes);
        self.reference_grants.append(&mut other.reference_grants);
        self.services.append(&mut other.services);
        self.endpoint_slices.append(&mut other.endpoint_slices);
        self.namespaces.append(&mut other.namespaces);
        self.custom_resource_definitions
            .append(&mut other.custom_resource_definitions);
        self.udp_backend_policies
            .append(&mut other.udp_backend_policies);
        self.udp_traffic_policies
            .append(&mut other.udp_traffic_policies);
    }

    /// Every object's kind and metadata, kind by kind, each kind in input order.
    fn metas(&self) -> impl Iterator<Item = (&'static str, &Meta)> {
        fn of<'a, T>(
            kind: &'static str,
            objects: &'a [T],
            meta: fn(&T) -> &Meta,
        ) -> impl Iterator<Item = (&'static str, &'a Meta)> {
            objects.iter().map(move |o| (kind, meta(o)))
        }
        of("GatewayClass", &self.gateway_classes, |o| &o.meta)
            .chain(of("Gateway", &self.gateways, |o| &o.meta))
            .chain(of("UDPRoute", &self.udp_routes, |o| &o.meta))
            .chain(of("ReferenceGrant", &self.reference_grants, |o| &o.meta))
            .chain(of("Service", &self.services, |o| &o.meta))
            .chain(of("EndpointSlice", &self.endpoint_slices, |o| &o.meta))
            .chain(of("Namespace", &self.namespaces, |o| &o.meta))
            .chain(of(
                "CustomResourceDefinition",
                &self.custom_resource_definitions,
                |o| &o.meta,
            ))
            .chain(of(BACKEND_POLICY_KIND, &self.udp_backend_policies, |o| {
                &o.meta
            }))
            .chain(of(TRAFFIC_POLICY_KIND, &self.udp_traffic_policies, |o| {
                &o.meta
            }))
    }
}

/// "defined twice" for every object whose kind, namespace and name came before.
fn duplicates<'a>(metas: impl Iterator<Item = (&'static str, &'a Meta)>) -> Vec<Problem> {
    let mut first: HashMap<(&str, &str, &str), &Location> = HashMap::new();
    let mut problems = Vec::new();
    for (kind, meta) in metas {
        let key = (kind, meta.namespace.as_str(), meta.name.as_str());
        match first.get(&key) {
            Some(loc) => problems.push(Problem {
                location: meta.source.clone(),
                object: Some(object_id(kind, meta)),
                field: String::new(),
                message: format!("defined twice; first at {loc}"),
            }),
            None => {
                first.insert(key, &meta.source);
            }
        }
    }
    problems
}

fn object_id(kind: &str, meta: &Meta) -> ObjectId {
    ObjectId {
        kind: kind.into(),
        namespace: meta.namespace.clone(),
        name: meta.name.clone(),
    }
}

/// Loads a set from files, directories and texts: the one validator behind
/// [`load_paths`], [`load_str`], `udplb check` and the appliance.
///
/// Sizes are checked first, from file metadata, before anything is read; a file that
/// grows past the cap while it is read is caught by a bounded read. Then every document
/// of every source is parsed, decoded and validated, and every problem is collected:
/// parse, schema and field problems in input order, then objects defined twice.
///
/// # Errors
/// [`LoadError::Io`] for an unreadable path; [`LoadError::FileTooLarge`] and
/// [`LoadError::SetTooLarge`] over the caps; [`LoadError::Invalid`] listing every problem.
pub fn load(sources: &[Source<'_>]) -> Result<ObjectSet, LoadError> {
    enum Input<'a> {
        File(PathBuf),
        Text(&'a str, &'a str),
    }
    let mut inputs = Vec::new();
    let mut total = 0u64;
    let mut count = |name: &dyn Fn() -> String, size: u64| {
        if size > MAX_MANIFEST_BYTES as u64 {
            return Err(LoadError::FileTooLarge {
                name: name(),
                size,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        total = total.saturating_add(size);
        if total > MAX_SET_BYTES as u64 {
            return Err(LoadError::SetTooLarge {
                name: name(),
                size: total,
                limit: MAX_SET_BYTES,
            });
        }
        Ok(())
    };
    for source in sources {
        match *source {
            Source::Text { name, text } => {
                count(&|| name.to_owned(), text.len() as u64)?;
                inputs.push(Input::Text(name, text));
            }
            Source::Path(path) => {
                for file in files(path)? {
                    let size = fs::metadata(&file)
                        .map_err(|source| LoadError::Io {
                            path: file.clone(),
                            source,
                        })?
                        .len();
                    count(&|| display(&file), size)?;
                    inputs.push(Input::File(file));
                }
            }
        }
    }
    let mut set = ObjectSet::default();
    let mut problems = Vec::new();
    // Files may have grown since their sizes were added up: count what is read too.
    let mut read = 0u64;
    for input in inputs {
        match input {
            Input::Text(name, text) => parse_str(name, text, &mut set, &mut problems),
            Input::File(file) => {
                let text = read_capped(&file)?;
                read += text.len() as u64;
                if read > MAX_SET_BYTES as u64 {
                    return Err(LoadError::SetTooLarge {
                        name: display(&file),
                        size: read,
                        limit: MAX_SET_BYTES,
                    });
                }
                parse_str(&display(&file), &text, &mut set, &mut problems);
            }
        }
    }
    problems.extend(duplicates(set.metas()));
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(ValidationError { problems }.into())
    }
}

/// The files a path stands for: itself, or a directory's `*.yaml` and `*.yml` files in
/// name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !fs::metadata(path).map_err(io_err)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(path).map_err(io_err)? {
        let p = entry.map_err(io_err)?.path();
        let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if yaml && p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a file as UTF-8, never more than [`MAX_MANIFEST_BYTES`] + 1 bytes of it (it may
/// have grown since its size was checked).
fn read_capped(file: &Path) -> Result<String, LoadError> {
    let io_err = |source| LoadError::Io {
        path: file.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(file)
        .map_err(io_err)?
        .take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    // The size first: a read cut at the cap may end inside a character.
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(LoadError::FileTooLarge {
            name: display(file),
            size: bytes.len() as u64,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// Loads files and directories (non-recursive: the `*.yaml` and `*.yml` files in them,
/// in name order) into one set: [`load`] of [`Source::Path`]s.
///
/// # Errors
/// As [`load`].
pub fn load_paths(paths: &[PathBuf]) -> Result<ObjectSet, LoadError> {
    let sources: Vec<Source<'_>> = paths.iter().map(|p| Source::Path(p)).collect();
    load(&sources)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Loads one YAML text (one or more documents); `source_name` is used in errors: [`load`]
/// of one [`Source::Text`].
///
/// # Errors
/// As [`load`].
pub fn load_str(source_name: &str, text: &str) -> Result<ObjectSet, LoadError> {
    load(&[Source::Text {
        name: source_name,
        text,
    }])
}

fn parse_str(source_name: &str, text: &str, set: &mut ObjectSet, problems: &mut Vec<Problem>) {
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let location = Location {
            file: source_name.into(),
            document: i + 1,
            item: None,
        };
        // The items of a List are read and checked one by one, into a side set kept only
        // if the document turns out to be a List.
        let mut items = ObjectSet::default();
        let mut item_problems = Vec::new();
        let mut on_item = |i: usize, item: Value, overflows: Vec<Overflow>| {
            let at = Location {
                item: Some(i),
                ..location.clone()
            };
            document(item, at, &overflows, &mut items, &mut item_problems);
        };
        match yaml::document(doc, &mut on_item) {
            Ok((value, overflows)) => {
                if value.get("kind").and_then(Value::as_str) == Some("List") {
                    set.append(&mut items);
                    problems.append(&mut item_problems);
                }
                document(value, location, &overflows, set, problems);
            }
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
}

/// One document, or one item of a `List` (a List in a List is not read). `overflows` are
/// the integers outside `i64` in it, with paths relative to it.
fn document(
    value: Value,
    location: Location,
    overflows: &[Overflow],
    set: &mut ObjectSet,
    problems: &mut Vec<Problem>,
) {
    if value.is_null() {
        return;
    }
    let is_list = value.get("kind").and_then(Value::as_str) == Some("List");
    if is_list && location.item.is_none() {
        // Its items were read one by one already (a sequence reads as null here).
        if !matches!(value.get("items"), Some(Value::Null) | None) {
            problems.push(Problem {
                location,
                object: None,
                field: "items".into(),
                message: "must be a list of objects".into(),
            });
        }
        return;
    }
    object(value, location, overflows, set, problems);
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
        (UDPLB_GROUP, BACKEND_POLICY_KIND | TRAFFIC_POLICY_KIND) => &["v1alpha1"],
        _ => return None,
    })
}

fn object(
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
        BACKEND_POLICY_KIND => {
            if let Some((meta, spec)) = typed::<Strict<UdpBackendPolicySpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, false, &location, &mut c).map(|m| (m, e.spec)))
            {
                validate::policy_target_refs(&mut c, &spec.target_refs);
                set.udp_backend_policies
                    .push(UdpBackendPolicy { meta, spec });
            }
        }
        TRAFFIC_POLICY_KIND => {
            if let Some((meta, spec)) = typed::<Strict<UdpTrafficPolicySpec>>(value, &mut c)
                .and_then(|e| with_meta(e.metadata, false, &location, &mut c).map(|m| (m, e.spec)))
            {
                validate::policy_target_refs(&mut c, &spec.target_refs);
                set.udp_traffic_policies
                    .push(UdpTrafficPolicy { meta, spec });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_even_when_the_size_lies() {
        // A character device reports size 0 and never ends: only the bounded read stops.
        let err = read_capped(Path::new("/dev/zero")).expect_err("endless input");
        match err {
            LoadError::FileTooLarge { name, size, limit } => {
                assert_eq!(name, "/dev/zero");
                assert_eq!(size, MAX_MANIFEST_BYTES as u64 + 1);
                assert_eq!(limit, MAX_MANIFEST_BYTES);
            }
            other => panic!("expected FileTooLarge, got {other}"),
        }
    }
}

//! Schema validation: the limits the Gateway API enforces with OpenAPI and CEL rules,
//! checked here because raw YAML never went through an API server.
//!
//! Every problem names its source (file, document, List item), the object
//! (`kind namespace/name`) and the field path. A set with any problem is rejected whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use crate::model::{
    BackendRef, EndpointSlice, Gateway, LabelSelector, ReferenceGrant, Service, UdpRoute,
    GATEWAY_GROUP, MAX_CLIENT_IP_TIMEOUT_SECONDS,
};
use crate::options;
use crate::policy::model::PolicyTargetReference;
use crate::yaml::Overflow;

/// Where an object was read from.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// File name (or the source name given to [`crate::load::load_str`]).
    pub file: String,
    /// 1-based index of the YAML document in the file.
    pub document: usize,
    /// 0-based index in `items:` when the document is a `kind: List`.
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        Ok(())
    }
}

/// Identity of an object: kind, namespace (empty when cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// Kind, e.g. `UDPRoute`.
    pub kind: String,
    /// Namespace; empty for cluster-scoped kinds.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// One validation problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where the object was read from.
    pub location: Location,
    /// The object, when its kind and name could be read.
    pub object: Option<ObjectId>,
    /// Field path, e.g. `spec.rules[0].backendRefs[1].weight`; empty for the whole object.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a set of objects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    /// The problems, in input order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} problem(s) in the configuration:",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Collects problems for one object.
pub(crate) struct Checker<'a> {
    location: &'a Location,
    object: ObjectId,
    problems: &'a mut Vec<Problem>,
    /// Integers outside `i64` in the object, by field path.
    overflows: &'a [Overflow],
}

impl<'a> Checker<'a> {
    pub(crate) fn new(
        location: &'a Location,
        object: ObjectId,
        problems: &'a mut Vec<Problem>,
        overflows: &'a [Overflow],
    ) -> Self {
        Checker {
            location,
            object,
            problems,
            overflows,
        }
    }

    /// The integer outside `i64` written at `field`, if any.
    pub(crate) fn overflow_at(&self, field: &str) -> Option<String> {
        self.overflows
            .iter()
            .find(|o| o.path == field)
            .map(|o| o.literal.clone())
    }

    pub(crate) fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            location: self.location.clone(),
            object: Some(self.object.clone()),
            field: field.into(),
            message: message.into(),
        });
    }

    fn range(&mut self, field: String, value: i64, lo: i64, hi: i64) {
        if !(lo..=hi).contains(&value) {
            self.fail(field, format!("{value} is out of range {lo}..={hi}"));
        }
    }

    fn count<T>(&mut self, field: &str, items: &[T], lo: usize, hi: usize) {
        let n = items.len();
        if n < lo || n > hi {
            self.fail(
                field,
                format!("has {n} item(s); between {lo} and {hi} are allowed"),
            );
        }
    }
}

const PORT_MAX: i64 = 65_535;
/// Largest backendRef weight the API accepts.
pub const WEIGHT_MAX: i64 = 1_000_000;

/// The accepted range of a bounded integer field, by the field's name (the last segment
/// of its path): ports, weights, `metadata.generation`.
fn bounds(field: &str) -> Option<(i64, i64)> {
    match field.rsplit('.').next()? {
        "port" | "targetPort" => Some((1, PORT_MAX)),
        "timeoutSeconds" => Some((1, MAX_CLIENT_IP_TIMEOUT_SECONDS)),
        "weight" => Some((0, WEIGHT_MAX)),
        "generation" => Some((0, i64::MAX)),
        _ => None,
    }
}

/// The message for an integer too large for any field udplb reads (beyond `i64`), e.g.
/// `18446744073709551616 is out of range 1..=65535` for a port.
pub(crate) fn out_of_range(field: &str, literal: &str) -> String {
    match bounds(field) {
        Some((lo, hi)) => format!("{literal} is out of range {lo}..={hi}"),
        None => format!(
            "{literal} is out of range {}..={} (integers are 64-bit)",
            i64::MIN,
            i64::MAX
        ),
    }
}

/// Checks a Gateway against the Gateway API schema and udplb's annotations.
pub(crate) fn gateway(c: &mut Checker<'_>, g: &Gateway) {
    let spec = &g.spec;
    c.count("spec.listeners", &spec.listeners, 1, 64);
    c.count("spec.addresses", &spec.addresses, 0, 16);
    let mut names = BTreeSet::new();
    for (i, l) in spec.listeners.iter().enumerate() {
        let at = format!("spec.listeners[{i}]");
        if !names.insert(l.name.as_str()) {
            c.fail(
                format!("{at}.name"),
                format!("Listener name must be unique: {:?} is repeated", l.name),
            );
        }
        if l.name.is_empty() {
            c.fail(format!("{at}.name"), "must not be empty");
        }
        c.range(format!("{at}.port"), l.port, 1, PORT_MAX);
        let proto = l.protocol.as_str();
        if matches!(proto, "TCP" | "UDP") && l.hostname.is_some() {
            c.fail(
                format!("{at}.hostname"),
                format!("hostname must not be specified for protocol {proto}"),
            );
        }
        if matches!(proto, "HTTP" | "TCP" | "UDP") && l.tls.is_some() {
            c.fail(
                format!("{at}.tls"),
                format!("tls must not be specified for protocol {proto}"),
            );
        }
        if let Some(allowed) = &l.allowed_routes {
            if let Some(ns) = &allowed.namespaces {
                let from = ns.from.as_deref().unwrap_or("Same");
                match from {
                    "All" | "Same" => {}
                    "Selector" => match &ns.selector {
                        Some(sel) => {
                            selector(c, &format!("{at}.allowedRoutes.namespaces.selector"), sel)
                        }
                        None => c.fail(
                            format!("{at}.allowedRoutes.namespaces.selector"),
                            "required when from is Selector",
                        ),
                    },
                    other => c.fail(
                        format!("{at}.allowedRoutes.namespaces.from"),
                        format!("{other:?} is not one of All, Same, Selector"),
                    ),
                }
            }
            if let Some(kinds) = &allowed.kinds {
                c.count(&format!("{at}.allowedRoutes.kinds"), kinds, 0, 8);
            }
        }
    }
    let mut values = BTreeSet::new();
    for (i, a) in spec.addresses.iter().enumerate() {
        let at = format!("spec.addresses[{i}].value");
        let kind = a.kind.as_deref().unwrap_or("IPAddress");
        let Some(value) = a.value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if !values.insert(value) {
            c.fail(
                &at,
                format!("{value:?} is repeated; addresses must be unique"),
            );
        }
        if kind == "IPAddress" && value.parse::<IpAddr>().is_err() {
            c.fail(&at, format!("{value:?} is not an IP address"));
        }
    }
    let listener_names: Vec<&str> = spec.listeners.iter().map(|l| l.name.as_str()).collect();
    for bad in options::check(&g.meta.annotations, &listener_names) {
        c.fail(format!("metadata.annotations[{:?}]", bad.key), bad.message);
    }
}

fn selector(c: &mut Checker<'_>, at: &str, sel: &LabelSelector) {
    for (i, e) in sel.match_expressions.iter().enumerate() {
        let at = format!("{at}.matchExpressions[{i}]");
        match e.operator.as_str() {
            "In" | "NotIn" if e.values.is_empty() => c.fail(
                format!("{at}.values"),
                format!("must not be empty for operator {}", e.operator),
            ),
            "Exists" | "DoesNotExist" if !e.values.is_empty() => c.fail(
                format!("{at}.values"),
                format!("must be empty for operator {}", e.operator),
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => c.fail(
                format!("{at}.operator"),
                format!("{other:?} is not one of In, NotIn, Exists, DoesNotExist"),
            ),
        }
    }
}

/// Checks a UDPRoute; `v1` allows exactly one rule, `v1alpha2` up to 16.
pub(crate) fn udp_route(c: &mut Checker<'_>, r: &UdpRoute) {
    let spec = &r.spec;
    let max_rules = if r.api_version.ends_with("/v1") {
        1
    } else {
        16
    };
    if spec.rules.len() != 1 && max_rules == 1 {
        c.fail(
            "spec.rules",
            format!(
                "has {} rule(s); UDPRoute {} allows exactly one (v1alpha2 allowed up to 16)",
                spec.rules.len(),
                r.api_version
            ),
        );
    } else {
        c.count("spec.rules", &spec.rules, 1, max_rules);
    }
    c.count("spec.parentRefs", &spec.parent_refs, 0, 32);
    let mut per_parent: BTreeMap<(String, String, String, String), Vec<usize>> = BTreeMap::new();
    for (i, p) in spec.parent_refs.iter().enumerate() {
        let at = format!("spec.parentRefs[{i}]");
        if let Some(port) = p.port {
            c.range(format!("{at}.port"), port, 1, PORT_MAX);
        }
        if p.name.is_empty() {
            c.fail(format!("{at}.name"), "must not be empty");
        }
        let key = (
            p.group.clone().unwrap_or_else(|| GATEWAY_GROUP.into()),
            p.kind.clone().unwrap_or_else(|| "Gateway".into()),
            p.namespace
                .clone()
                .unwrap_or_else(|| r.meta.namespace.clone()),
            p.name.clone(),
        );
        per_parent.entry(key).or_default().push(i);
    }
    for ((_, kind, ns, name), refs) in &per_parent {
        if refs.len() < 2 {
            continue;
        }
        let mut sections = BTreeSet::new();
        for &i in refs {
            match &spec.parent_refs[i].section_name {
                None => c.fail(
                    format!("spec.parentRefs[{i}].sectionName"),
                    format!(
                        "sectionName must be specified when parentRefs includes 2 or more \
                         references to the same parent ({kind} {ns}/{name})"
                    ),
                ),
                Some(s) if !sections.insert(s.as_str()) => c.fail(
                    format!("spec.parentRefs[{i}].sectionName"),
                    format!(
                        "sectionName must be unique when parentRefs includes 2 or more \
                         references to the same parent ({kind} {ns}/{name}); {s:?} is repeated"
                    ),
                ),
                Some(_) => {}
            }
        }
    }
    let mut rule_names = BTreeSet::new();
    for (ri, rule) in spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{ri}]");
        if let Some(name) = &rule.name {
            if !rule_names.insert(name.as_str()) {
                c.fail(
                    format!("{at}.name"),
                    format!("rule name {name:?} is repeated"),
                );
            }
        }
        c.count(&format!("{at}.backendRefs"), &rule.backend_refs, 1, 16);
        for (bi, b) in rule.backend_refs.iter().enumerate() {
            backend_ref(c, &format!("{at}.backendRefs[{bi}]"), b);
        }
    }
}

fn backend_ref(c: &mut Checker<'_>, at: &str, b: &BackendRef) {
    if let Some(w) = b.weight {
        c.range(format!("{at}.weight"), w, 0, WEIGHT_MAX);
    }
    match b.port {
        Some(port) => c.range(format!("{at}.port"), port, 1, PORT_MAX),
        None if b.is_service() => {
            c.fail(format!("{at}.port"), "Must have port for Service reference")
        }
        None => {}
    }
    if b.name.is_empty() {
        c.fail(format!("{at}.name"), "must not be empty");
    }
}

/// Checks a ReferenceGrant.
pub(crate) fn reference_grant(c: &mut Checker<'_>, g: &ReferenceGrant) {
    c.count("spec.from", &g.spec.from, 1, 16);
    c.count("spec.to", &g.spec.to, 1, 16);
}

/// Checks a Service's ports and session affinity.
pub(crate) fn service(c: &mut Checker<'_>, s: &Service) {
    for (i, p) in s.spec.ports.iter().enumerate() {
        c.range(format!("spec.ports[{i}].port"), p.port, 1, PORT_MAX);
        if let Some(crate::model::IntOrString::Int(t)) = p.target_port {
            c.range(format!("spec.ports[{i}].targetPort"), t, 1, PORT_MAX);
        }
    }
    let affinity = s.spec.session_affinity.as_deref().unwrap_or("None");
    match affinity {
        "None" | "ClientIP" => {}
        other => c.fail(
            "spec.sessionAffinity",
            format!("{other:?} is not one of None, ClientIP"),
        ),
    }
    if let Some(config) = &s.spec.session_affinity_config {
        if affinity != "ClientIP" {
            c.fail(
                "spec.sessionAffinityConfig",
                format!("must not be set when sessionAffinity is {affinity}"),
            );
        }
        if let Some(t) = config.client_ip.as_ref().and_then(|c| c.timeout_seconds) {
            c.range(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds".into(),
                t,
                1,
                MAX_CLIENT_IP_TIMEOUT_SECONDS,
            );
        }
    }
}

/// Checks the shape of a policy's `spec.targetRefs` (the CRD's limits: 1..=16 entries,
/// names not empty, and the CEL rules of GEP-713 policies: refs to the same target all
/// set a `sectionName`, or none does, and each (target, sectionName) appears once).
pub(crate) fn policy_target_refs(c: &mut Checker<'_>, refs: &[PolicyTargetReference]) {
    c.count("spec.targetRefs", refs, 1, 16);
    let mut per_target: BTreeMap<(&str, &str, &str), Vec<usize>> = BTreeMap::new();
    for (i, r) in refs.iter().enumerate() {
        if r.name.is_empty() {
            c.fail(format!("spec.targetRefs[{i}].name"), "must not be empty");
        }
        if r.section_name.as_deref() == Some("") {
            c.fail(
                format!("spec.targetRefs[{i}].sectionName"),
                "must not be empty",
            );
        }
        per_target
            .entry((r.group.as_str(), r.kind.as_str(), r.name.as_str()))
            .or_default()
            .push(i);
    }
    for ((_, kind, name), idx) in per_target {
        let sectioned = idx
            .iter()
            .filter(|&&i| refs[i].section_name.is_some())
            .count();
        if sectioned != 0 && sectioned != idx.len() {
            for &i in idx.iter().filter(|&&i| refs[i].section_name.is_none()) {
                c.fail(
                    format!("spec.targetRefs[{i}].sectionName"),
                    format!(
                        "sectionName must be specified when targetRefs includes 2 or more \
                         references to the same target ({kind} {name})"
                    ),
                );
            }
        }
        let mut seen = BTreeSet::new();
        for &i in &idx {
            if !seen.insert(refs[i].section_name.as_deref()) {
                c.fail(
                    format!("spec.targetRefs[{i}]"),
                    format!(
                        "targetRefs must be unique: {kind} {name}{} is repeated",
                        refs[i]
                            .section_name
                            .as_ref()
                            .map(|s| format!(" section {s:?}"))
                            .unwrap_or_default()
                    ),
                );
            }
        }
    }
}

/// Checks an EndpointSlice's addresses against its address type, and its ports.
pub(crate) fn endpoint_slice(c: &mut Checker<'_>, s: &EndpointSlice) {
    let want_v4 = match s.address_type.as_str() {
        "IPv4" => true,
        "IPv6" => false,
        "FQDN" => return,
        other => {
            c.fail(
                "addressType",
                format!("{other:?} is not one of IPv4, IPv6, FQDN"),
            );
            return;
        }
    };
    for (i, e) in s.endpoints.iter().enumerate() {
        for (j, a) in e.addresses.iter().enumerate() {
            match a.parse::<IpAddr>() {
                Ok(ip) if ip.is_ipv4() == want_v4 => {}
                _ => c.fail(
                    format!("endpoints[{i}].addresses[{j}]"),
                    format!("{a:?} is not an {} address", s.address_type),
                ),
            }
        }
    }
    for (i, p) in s.ports.iter().enumerate() {
        if let Some(port) = p.port {
            c.range(format!("ports[{i}].port"), port, 1, PORT_MAX);
        }
    }
}

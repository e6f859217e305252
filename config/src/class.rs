//! GatewayClass status: every class whose `spec.controllerName` is ours gets `Accepted`,
//! `SupportedVersion` and `supportedFeatures`, whether or not a Gateway uses it. Classes
//! of other controllers get nothing.
//!
//! - `Accepted`: udplb takes no class parameters, so a class with a `parametersRef` is
//!   `False/InvalidParameters` and its Gateways are not served; otherwise `True/Accepted`.
//! - `SupportedVersion`: from the `gateway.networking.k8s.io/bundle-version` annotation of
//!   the Gateway API CRDs in the input. An unsupported or missing version is
//!   `False/UnsupportedVersion` and the class stays Accepted (the spec's "best effort"
//!   choice: udplb validates every object it reads against its own schema anyway). Without
//!   CRDs in the input the version cannot be known: `Unknown/Pending`.
//! - `supportedFeatures`: [`SUPPORTED_FEATURES`], only on an Accepted class.

use std::collections::{BTreeMap, BTreeSet};

use crate::compile::CompileParams;
use crate::load::ObjectSet;
use crate::model::{CustomResourceDefinition, GatewayClass};
use crate::status::{Condition, GatewayClassReport, GatewayClassStatus, SupportedFeature};

/// The Gateway API features udplb supports, spelled as the Gateway API's `pkg/features`
/// spells them and sorted as `status.supportedFeatures` must be: the core features of the
/// `GATEWAY-UDP` conformance profile. No extended feature is claimed.
pub const SUPPORTED_FEATURES: [&str; 3] = ["Gateway", "ReferenceGrant", "UDPRoute"];

/// The Gateway API bundle versions udplb supports, as condition messages spell them:
/// the v1.6 release (UDPRoute GA), any patch.
pub const SUPPORTED_BUNDLE_VERSIONS: &str = "v1.6.x";

/// True for a bundle version in [`SUPPORTED_BUNDLE_VERSIONS`]: `v1.6.<patch>`. Later
/// minor releases may add standard-channel fields and status reasons udplb does not know,
/// and pre-releases are not releases, so neither is recognized.
pub fn supported_bundle_version(version: &str) -> bool {
    version
        .strip_prefix("v1.6.")
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
}

/// Why udplb does not accept `class`, or `None` when it does.
pub(crate) fn refusal(class: &GatewayClass) -> Option<String> {
    let p = class.spec.parameters_ref.as_ref()?;
    let kind = if p.group.is_empty() || p.group == "core" {
        p.kind.clone()
    } else {
        format!("{}.{}", p.kind, p.group)
    };
    let name = match &p.namespace {
        Some(ns) => format!("{ns}/{}", p.name),
        None => p.name.clone(),
    };
    Some(format!(
        "parametersRef {kind} {name} is not supported: udplb takes no GatewayClass parameters"
    ))
}

/// Names of the classes whose Gateways udplb serves: ours and Accepted.
pub(crate) fn served<'a>(set: &'a ObjectSet, params: &CompileParams) -> BTreeSet<&'a str> {
    set.gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == params.controller_name && refusal(c).is_none())
        .map(|c| c.meta.name.as_str())
        .collect()
}

/// What the Gateway API CRDs in the input say about the installed release.
enum Versions {
    /// No Gateway API CRD in the input.
    Unknown,
    /// Every CRD is at a supported bundle version; the message names them.
    Supported(String),
    /// Some CRD has no or an unsupported bundle version; the message lists what was found.
    Unsupported(String),
}

fn versions(crds: &[CustomResourceDefinition]) -> Versions {
    if crds.is_empty() {
        return Versions::Unknown;
    }
    // Bundle version (None: no annotation) -> the kinds at that version.
    let mut found: BTreeMap<Option<&str>, BTreeSet<&str>> = BTreeMap::new();
    for crd in crds {
        found
            .entry(crd.bundle_version())
            .or_default()
            .insert(crd.kind.as_str());
    }
    let all_supported = found
        .keys()
        .all(|v| v.is_some_and(supported_bundle_version));
    if all_supported {
        let list: Vec<&str> = found.keys().filter_map(|v| *v).collect();
        let (noun, verb) = if list.len() == 1 {
            ("version", "is")
        } else {
            ("versions", "are")
        };
        return Versions::Supported(format!(
            "Gateway API CRD bundle {noun} {} {verb} supported \
             (udplb supports {SUPPORTED_BUNDLE_VERSIONS})",
            list.join(", ")
        ));
    }
    // Versions in order, then the CRDs without the annotation.
    let (annotated, missing): (Vec<_>, Vec<_>) = found.iter().partition(|(v, _)| v.is_some());
    let list: Vec<String> = annotated
        .into_iter()
        .chain(missing)
        .map(|(version, kinds)| {
            let kinds: Vec<&str> = kinds.iter().copied().collect();
            format!(
                "{} ({})",
                version.unwrap_or("no bundle-version annotation"),
                kinds.join(", ")
            )
        })
        .collect();
    Versions::Unsupported(format!(
        "Gateway API CRD bundle version not supported: found {}; \
         udplb supports {SUPPORTED_BUNDLE_VERSIONS}",
        list.join(", ")
    ))
}

/// Status of every GatewayClass that names our controller, sorted by name.
pub(crate) fn reports(set: &ObjectSet, params: &CompileParams) -> Vec<GatewayClassReport> {
    let versions = versions(&set.custom_resource_definitions);
    let mut out: Vec<GatewayClassReport> = set
        .gateway_classes
        .iter()
        .filter(|c| c.spec.controller_name == params.controller_name)
        .map(|c| report(c, &versions))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn report(class: &GatewayClass, versions: &Versions) -> GatewayClassReport {
    let generation = class.meta.generation;
    let refused = refusal(class);
    let accepted = match &refused {
        Some(why) => Condition::new("Accepted", false, "InvalidParameters", why, generation),
        None => {
            let message = if matches!(versions, Versions::Unsupported(_)) {
                "GatewayClass is accepted; the Gateway API CRD bundle version is not supported, \
                 so udplb serves on a best-effort basis (see SupportedVersion)"
            } else {
                "GatewayClass is accepted"
            };
            Condition::new("Accepted", true, "Accepted", message, generation)
        }
    };
    let supported_version = match versions {
        Versions::Unknown => Condition::unknown(
            "SupportedVersion",
            "Pending",
            format!(
                "the input carries no Gateway API CRDs, so their bundle version is unknown \
                 (udplb supports {SUPPORTED_BUNDLE_VERSIONS})"
            ),
            generation,
        ),
        Versions::Supported(message) => Condition::new(
            "SupportedVersion",
            true,
            "SupportedVersion",
            message.as_str(),
            generation,
        ),
        Versions::Unsupported(message) => Condition::new(
            "SupportedVersion",
            false,
            "UnsupportedVersion",
            message.as_str(),
            generation,
        ),
    };
    let supported_features = if refused.is_none() {
        SUPPORTED_FEATURES
            .iter()
            .map(|name| SupportedFeature {
                name: (*name).to_owned(),
            })
            .collect()
    } else {
        Vec::new()
    };
    GatewayClassReport {
        name: class.meta.name.clone(),
        status: GatewayClassStatus {
            conditions: vec![accepted, supported_version],
            supported_features,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v1_6_releases_are_supported() {
        for v in ["v1.6.0", "v1.6.1", "v1.6.12"] {
            assert!(supported_bundle_version(v), "{v}");
        }
        for v in [
            "v1.5.1",
            "v1.7.0",
            "v2.6.0",
            "1.6.0",
            "v1.6",
            "v1.6.",
            "v1.6.0-rc.1",
            "v1.60.0",
            "v0.0.0-dev",
            "monthly-2026.06",
            "",
        ] {
            assert!(!supported_bundle_version(v), "{v}");
        }
    }

    #[test]
    fn supported_features_are_sorted_and_unique() {
        let mut sorted = SUPPORTED_FEATURES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, SUPPORTED_FEATURES);
    }
}

//! Which routes a listener admits: namespaces (`allowedRoutes.namespaces`) and kinds
//! (`allowedRoutes.kinds`).

use std::collections::BTreeMap;

use crate::index::Index;
use crate::model::{LabelSelector, Listener, GATEWAY_GROUP, NAMESPACE_NAME_LABEL};
use crate::status::GroupKind;

/// The only route kind udplb serves.
pub(crate) const UDP_ROUTE: &str = "UDPRoute";

/// Route kinds of a listener: those udplb supports, and the names of the others.
pub(crate) fn route_kinds(l: &Listener, udp: bool) -> (Vec<GroupKind>, Vec<String>) {
    let udp_route = GroupKind {
        group: GATEWAY_GROUP.into(),
        kind: UDP_ROUTE.into(),
    };
    let requested = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_ref())
        .filter(|k| !k.is_empty());
    let Some(requested) = requested else {
        // Derived from the protocol: UDP means UDPRoute; other protocols serve nothing here.
        return (if udp { vec![udp_route] } else { Vec::new() }, Vec::new());
    };
    let mut supported = Vec::new();
    let mut invalid = Vec::new();
    for k in requested {
        let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
        if udp && group == GATEWAY_GROUP && k.kind == UDP_ROUTE {
            if !supported.contains(&udp_route) {
                supported.push(udp_route.clone());
            }
        } else if udp {
            invalid.push(if group.is_empty() {
                k.kind.clone()
            } else {
                format!("{group}/{}", k.kind)
            });
        }
    }
    (supported, invalid)
}

/// Labels of a namespace: those of its Namespace object, plus the
/// `kubernetes.io/metadata.name` label Kubernetes puts on every namespace.
pub(crate) fn namespace_labels(index: &Index<'_>, namespace: &str) -> BTreeMap<String, String> {
    let mut labels = index
        .namespace(namespace)
        .map(|n| n.meta.labels.clone())
        .unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.into(), namespace.into());
    labels
}

/// Whether a listener of a Gateway in `gateway_ns` admits routes from `route_ns`.
pub(crate) fn admits_namespace(
    index: &Index<'_>,
    l: &Listener,
    gateway_ns: &str,
    route_ns: &str,
) -> bool {
    let namespaces = l
        .allowed_routes
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    match namespaces.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "All" => true,
        "Selector" => namespaces
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|sel| selector_matches(sel, &namespace_labels(index, route_ns))),
        _ => gateway_ns == route_ns,
    }
}

/// `metav1.LabelSelector` semantics: every matchLabels entry and every expression holds.
pub(crate) fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = sel
        .match_labels
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_ok = sel.match_expressions.iter().all(|e| {
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| e.values.contains(v)),
            "NotIn" => value.is_none_or(|v| !e.values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(selector_matches(&LabelSelector::default(), &labels(&[])));
    }

    #[test]
    fn operators() {
        let l = labels(&[("env", "prod")]);
        assert!(selector_matches(&expr("env", "In", &["prod", "qa"]), &l));
        assert!(!selector_matches(&expr("env", "In", &["qa"]), &l));
        assert!(!selector_matches(&expr("env", "NotIn", &["prod"]), &l));
        assert!(selector_matches(&expr("tier", "NotIn", &["x"]), &l));
        assert!(selector_matches(&expr("env", "Exists", &[]), &l));
        assert!(!selector_matches(&expr("tier", "Exists", &[]), &l));
        assert!(selector_matches(&expr("tier", "DoesNotExist", &[]), &l));
        assert!(!selector_matches(&expr("env", "DoesNotExist", &[]), &l));
    }

    #[test]
    fn match_labels_need_every_pair() {
        let sel = LabelSelector {
            match_labels: labels(&[("env", "prod"), ("team", "dns")]),
            match_expressions: Vec::new(),
        };
        assert!(selector_matches(
            &sel,
            &labels(&[("env", "prod"), ("team", "dns"), ("x", "y")])
        ));
        assert!(!selector_matches(&sel, &labels(&[("env", "prod")])));
    }
}

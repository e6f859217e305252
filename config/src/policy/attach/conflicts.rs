//! Which policy holds which target: a policy with bad values or more ancestors than
//! status lists is `Invalid`; per declared target the oldest valid policy of the kind
//! holds it and the others are `Conflicted`; a missing target is `TargetNotFound`. Each
//! ancestor collects the outcomes of the targets under it.

use std::collections::HashMap;

use super::{Ancestor, Outcome, Policy, TargetKey, MAX_ANCESTORS};
use crate::status::ParentRefStatus;

/// Decides every policy's ancestors and their outcomes.
pub(super) fn decide(policies: &mut [Policy<'_>]) {
    // Invalid: bad values, or more ancestors than status can list.
    let invalid: Vec<Option<String>> = policies
        .iter()
        .map(|p| {
            let mut why: Vec<String> = p.settings.problems().unwrap_or_default().to_vec();
            let mut distinct: Vec<&ParentRefStatus> = Vec::new();
            for (a, _, _) in p.targets.iter().flat_map(|t| &t.ancestors) {
                if !distinct.contains(&a) {
                    distinct.push(a);
                }
            }
            if distinct.len() > MAX_ANCESTORS {
                why.push(format!(
                    "spec.targetRefs: the policy has {} ancestors and status lists at most \
                     {MAX_ANCESTORS}, so it is not applied; split its targets over several \
                     policies",
                    distinct.len()
                ));
            }
            (!why.is_empty()).then(|| why.join("; "))
        })
        .collect();

    // Conflicts: per declared target, the oldest valid policy of the kind holds it.
    let mut by_age: Vec<usize> = (0..policies.len()).collect();
    by_age.sort_by(|&a, &b| {
        (policies[a].kind, policies[a].meta.age_key())
            .cmp(&(policies[b].kind, policies[b].meta.age_key()))
    });
    let mut holders: HashMap<(&'static str, TargetKey), usize> = HashMap::new();
    let mut lost: HashMap<(usize, usize), String> = HashMap::new();
    for &pi in &by_age {
        if invalid[pi].is_some() {
            continue;
        }
        for (ti, t) in policies[pi].targets.iter().enumerate() {
            let Some(key) = &t.key else { continue };
            match holders.get(&(policies[pi].kind, key.clone())) {
                Some(&holder) if holder != pi => {
                    let h = &policies[holder];
                    let me = &policies[pi];
                    let order = if h.meta.created == me.meta.created {
                        "has the same creationTimestamp and comes first by namespace/name"
                    } else {
                        "is older"
                    };
                    lost.insert(
                        (pi, ti),
                        format!(
                            "conflicts with {} {}, which targets the same {} and {order}",
                            h.kind,
                            h.id(),
                            t.what
                        ),
                    );
                }
                Some(_) => {}
                None => {
                    holders.insert((policies[pi].kind, key.clone()), pi);
                }
            }
        }
    }

    // Ancestors, with every target's outcome under them.
    for (pi, policy) in policies.iter_mut().enumerate() {
        let mut ancestors: Vec<Ancestor> = Vec::new();
        for (ti, t) in policy.targets.iter().enumerate() {
            let refused = |reason: &'static str, message: &String| Outcome::Refused {
                reason,
                message: message.clone(),
            };
            for (aref, scope, note) in &t.ancestors {
                let outcome = if let Some(m) = &invalid[pi] {
                    refused("Invalid", m)
                } else if let Some(m) = &t.missing {
                    refused("TargetNotFound", m)
                } else if let Some(m) = lost.get(&(pi, ti)) {
                    refused("Conflicted", m)
                } else {
                    Outcome::Accepted
                };
                let i = match ancestors.iter().position(|a| a.aref == *aref) {
                    Some(i) => i,
                    None => {
                        ancestors.push(Ancestor {
                            aref: aref.clone(),
                            outcomes: Vec::new(),
                            scopes: Vec::new(),
                            notes: Vec::new(),
                        });
                        ancestors.len() - 1
                    }
                };
                let a = &mut ancestors[i];
                a.outcomes.push(outcome);
                a.scopes.extend(scope.clone());
                a.notes.extend(note.clone());
            }
        }
        ancestors.truncate(MAX_ANCESTORS);
        policy.ancestors = ancestors;
    }
}

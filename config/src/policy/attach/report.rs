//! The policies' status: one `Accepted` condition per ancestor, with the reasons it was
//! refused or the notes it was accepted with.

use super::{Evaluation, Outcome, Settings};
use crate::status::{Condition, PolicyAncestorStatus, PolicyReport, PolicyStatus};

impl<'a> Evaluation<'a> {
    /// Every policy's status, UDPBackendPolicies then UDPTrafficPolicies, each in
    /// namespace/name order.
    pub(crate) fn reports(&self, controller_name: &str) -> Vec<PolicyReport> {
        self.policies
            .iter()
            .map(|p| {
                let generation = p.meta.generation;
                let weak = matches!(&p.settings, Settings::Backend(Ok(s)) if s.weak());
                let ancestors = p
                    .ancestors
                    .iter()
                    .map(|a| {
                        let refused: Vec<(&str, &str)> = a
                            .outcomes
                            .iter()
                            .filter_map(|o| match o {
                                Outcome::Refused { reason, message } => {
                                    Some((*reason, message.as_str()))
                                }
                                Outcome::Accepted => None,
                            })
                            .collect();
                        let condition = match refused.first() {
                            Some((reason, _)) => {
                                let mut messages: Vec<&str> =
                                    refused.iter().map(|(_, m)| *m).collect();
                                messages.dedup();
                                Condition::new(
                                    "Accepted",
                                    false,
                                    reason,
                                    messages.join("; "),
                                    generation,
                                )
                            }
                            None => {
                                let mut message = vec!["Policy is accepted".to_owned()];
                                if weak {
                                    message.push(
                                        "the active UDP check expects no reply, so it is weak: \
                                         an endpoint fails it only when an ICMP port or host \
                                         unreachable comes back"
                                            .into(),
                                    );
                                }
                                message.extend(a.notes.iter().cloned());
                                Condition::new(
                                    "Accepted",
                                    true,
                                    "Accepted",
                                    message.join("; "),
                                    generation,
                                )
                            }
                        };
                        PolicyAncestorStatus {
                            ancestor_ref: a.aref.clone(),
                            controller_name: controller_name.to_owned(),
                            conditions: vec![condition],
                        }
                    })
                    .collect();
                PolicyReport {
                    kind: p.kind,
                    namespace: p.meta.namespace.clone(),
                    name: p.meta.name.clone(),
                    status: PolicyStatus { ancestors },
                }
            })
            .collect()
    }
}

//! Checks that need every policy attached: a `maglevTableSize` too small for the route it
//! would apply to, and the notes on a whole-Service policy about ports that follow a more
//! specific one.

use pipelines::maglev::next_prime;
use pipelines::spec::MAGLEV_SLOTS_PER_ENTRY;

use super::{Evaluation, Lookup, Outcome, Topology};

impl<'a> Evaluation<'a> {
    /// A policy holding a listener's `maglevTableSize` that is too small for its route
    /// becomes `Invalid` under that ancestor; repeated, since the listener then falls back
    /// to a less specific policy.
    pub(super) fn check_maglev_sizes(&mut self, topo: &Topology<'_>) {
        loop {
            let mut refused = None;
            'listeners: for (gi, g) in topo.gateways.iter().enumerate() {
                for (li, l) in g.listeners.iter().enumerate() {
                    let Some(ri) = l.winner.filter(|_| l.unserved.is_none()) else {
                        continue;
                    };
                    let layers = self.traffic_layers(topo, gi, li);
                    let Some((id, size)) = layers
                        .iter()
                        .find_map(|(id, s)| Some((*id, s.maglev_size?)))
                    else {
                        continue;
                    };
                    let need = MAGLEV_SLOTS_PER_ENTRY * l.entries as u64;
                    if u64::from(size) < need {
                        let r = &topo.routes[ri].meta;
                        let suggestion = u32::try_from(need).map_or(need, |n| next_prime(n).into());
                        refused = Some((
                            id,
                            format!(
                                "spec.maglevTableSize: {size} is too small for listener {:?} \
                                 of Gateway {}/{}: its route {}/{} has {} Maglev entries, \
                                 which need at least {need} slots (a prime, e.g. {suggestion})",
                                l.name, g.namespace, g.name, r.namespace, r.name, l.entries
                            ),
                        ));
                        break 'listeners;
                    }
                }
            }
            let Some((id, message)) = refused else {
                return;
            };
            self.policies[id.policy].ancestors[id.ancestor]
                .outcomes
                .push(Outcome::Refused {
                    reason: "Invalid",
                    message,
                });
            self.index();
        }
    }

    /// Notes, on a policy for a whole Service, the ports that follow a policy for that
    /// port by name instead.
    pub(super) fn note_specific_ports(&mut self, topo: &Topology<'_>) {
        let mut notes = Vec::new();
        for (key, &id) in &self.lookup {
            let Lookup::Service(gi, namespace, name, None) = key else {
                continue;
            };
            let Some(service) = topo.index.service(namespace, name) else {
                continue;
            };
            for port in service.spec.ports.iter().filter_map(|p| p.name.as_ref()) {
                let specific =
                    Lookup::Service(*gi, namespace.clone(), name.clone(), Some(port.clone()));
                if let Some(other) = self.lookup.get(&specific) {
                    notes.push((
                        id,
                        format!(
                            "Service port {port:?} follows the more specific {} {}",
                            self.policies[other.policy].kind,
                            self.policies[other.policy].id()
                        ),
                    ));
                }
            }
        }
        notes.sort_by(|a, b| a.1.cmp(&b.1));
        for (id, note) in notes {
            self.note(id, note);
        }
    }
}

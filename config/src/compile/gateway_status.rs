//! A Gateway's status: its listeners' conditions (Accepted, Programmed, ResolvedRefs,
//! Conflicted), its own Accepted and Programmed, its addresses, and the policy that
//! affects each.

use super::affected;
use super::gateways::GatewayState;
use crate::policy::Evaluation;
use crate::status::{
    Condition, GatewayReport, GatewayStatus, GatewayStatusAddress, ListenerStatus,
};

/// The status of Gateway `gi` (its index among ours).
pub(super) fn gateway_report(
    gi: usize,
    g: &GatewayState<'_>,
    eval: &Evaluation<'_>,
) -> GatewayReport {
    let generation = g.gw.meta.generation;
    let mut bad_listeners = Vec::new();
    let listeners = g
        .listeners
        .iter()
        .enumerate()
        .map(|(li, l)| {
            let (accepted, reason, message) = if !l.udp {
                (
                    false,
                    "UnsupportedProtocol",
                    format!(
                        "protocol {} is not supported; udplb serves UDP",
                        l.spec.protocol
                    ),
                )
            } else if let Some(holder) = &l.unavailable {
                (
                    false,
                    "PortUnavailable",
                    format!(
                        "UDP port {} on a shared address is held by the older Gateway {holder}",
                        l.port
                    ),
                )
            } else {
                (true, "Accepted", "Listener is accepted".to_owned())
            };
            let programmed = accepted && !l.conflicted && g.accepted() && !g.vips.is_empty();
            let resolved = l.invalid_kinds.is_empty();
            if !accepted || l.conflicted || !resolved {
                bad_listeners.push(l.spec.name.clone());
            }
            let mut conditions = vec![
                Condition::new("Accepted", accepted, reason, message, generation),
                if programmed {
                    Condition::new(
                        "Programmed",
                        true,
                        "Programmed",
                        "Listener is programmed",
                        generation,
                    )
                } else {
                    Condition::new(
                        "Programmed",
                        false,
                        "Invalid",
                        "Listener is not programmed",
                        generation,
                    )
                },
                if resolved {
                    Condition::new(
                        "ResolvedRefs",
                        true,
                        "ResolvedRefs",
                        "All references resolved",
                        generation,
                    )
                } else {
                    Condition::new(
                        "ResolvedRefs",
                        false,
                        "InvalidRouteKinds",
                        format!("unsupported route kinds: {}", l.invalid_kinds.join(", ")),
                        generation,
                    )
                },
                if l.conflicted {
                    Condition::new(
                        "Conflicted",
                        true,
                        "ProtocolConflict",
                        format!(
                            "another UDP listener uses port {}; neither is served",
                            l.port
                        ),
                        generation,
                    )
                } else {
                    Condition::new(
                        "Conflicted",
                        false,
                        "NoConflicts",
                        "No conflicts",
                        generation,
                    )
                },
            ];
            if let Some(p) = eval.affecting_listener(gi, li) {
                conditions.push(affected(&p, "listener", generation));
            }
            ListenerStatus {
                name: l.spec.name.clone(),
                supported_kinds: l.supported.clone(),
                attached_routes: u32::try_from(l.routes.len()).unwrap_or(u32::MAX),
                conditions,
            }
        })
        .collect();
    let accepted = if !g.accepted() {
        Condition::new(
            "Accepted",
            false,
            "UnsupportedAddress",
            format!(
                "address type(s) {} not supported; udplb supports IPAddress",
                g.unsupported_addresses.join(", ")
            ),
            generation,
        )
    } else if !bad_listeners.is_empty() {
        Condition::new(
            "Accepted",
            true,
            "ListenersNotValid",
            format!("invalid listener(s): {}", bad_listeners.join(", ")),
            generation,
        )
    } else {
        Condition::new(
            "Accepted",
            true,
            "Accepted",
            "Gateway is accepted",
            generation,
        )
    };
    let programmed = if !g.accepted() {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "Gateway is not accepted",
            generation,
        )
    } else if g.vips.is_empty() {
        Condition::new(
            "Programmed",
            false,
            "AddressNotAssigned",
            "no address requested and the appliance has no default VIP",
            generation,
        )
    } else {
        Condition::new(
            "Programmed",
            true,
            "Programmed",
            "Gateway is programmed",
            generation,
        )
    };
    GatewayReport {
        namespace: g.gw.meta.namespace.clone(),
        name: g.gw.meta.name.clone(),
        status: GatewayStatus {
            // Addresses are bound only when the Gateway is accepted.
            addresses: g
                .vips
                .iter()
                .filter(|_| g.accepted())
                .map(|v| GatewayStatusAddress {
                    kind: "IPAddress".into(),
                    value: v.to_string(),
                })
                .collect(),
            conditions: [accepted, programmed]
                .into_iter()
                .chain(
                    eval.affecting_gateway(gi)
                        .map(|p| affected(&p, "Gateway", generation)),
                )
                .collect(),
            listeners,
        },
    }
}

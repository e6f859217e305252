//! Our Gateways and their listeners: addresses (VIPs, or the appliance's default VIPs),
//! route kinds, listeners of one Gateway sharing a UDP port (`Conflicted`), Gateways
//! sharing a VIP and port (the older keeps it), and why a listener is not served.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::CompileParams;
use crate::attach::route_kinds;
use crate::class;
use crate::load::ObjectSet;
use crate::model::{Gateway, Listener};
use crate::status::GroupKind;

/// A listener of a Gateway of ours, as the attachment rules see it.
pub(super) struct ListenerState<'a> {
    pub(super) spec: &'a Listener,
    pub(super) port: u16,
    pub(super) udp: bool,
    pub(super) supported: Vec<GroupKind>,
    pub(super) invalid_kinds: Vec<String>,
    pub(super) conflicted: bool,
    /// The Gateway that holds this listener's port on a shared VIP.
    pub(super) unavailable: Option<String>,
    /// Indices (in age order) of Accepted routes attached here.
    pub(super) routes: BTreeSet<usize>,
}

/// A Gateway of ours: its VIPs and listeners.
pub(super) struct GatewayState<'a> {
    pub(super) gw: &'a Gateway,
    pub(super) vips: Vec<IpAddr>,
    pub(super) unsupported_addresses: Vec<String>,
    pub(super) listeners: Vec<ListenerState<'a>>,
}

impl GatewayState<'_> {
    pub(super) fn accepted(&self) -> bool {
        self.unsupported_addresses.is_empty()
    }
    pub(super) fn id(&self) -> String {
        format!("{}/{}", self.gw.meta.namespace, self.gw.meta.name)
    }
}

/// Gateways whose class names our controller and is Accepted, sorted by namespace/name.
pub(super) fn our_gateways<'a>(
    set: &'a ObjectSet,
    params: &CompileParams,
) -> Vec<GatewayState<'a>> {
    let ours = class::served(set, params);
    let mut out: Vec<GatewayState<'a>> = set
        .gateways
        .iter()
        .filter(|g| ours.contains(g.spec.gateway_class_name.as_str()))
        .map(|gw| {
            let mut vips = BTreeSet::new();
            let mut unsupported_addresses = Vec::new();
            for a in &gw.spec.addresses {
                let kind = a.kind.as_deref().unwrap_or("IPAddress");
                let value = a.value.as_deref().filter(|v| !v.is_empty());
                match (kind, value) {
                    ("IPAddress", Some(v)) => vips.extend(v.parse::<IpAddr>().ok()),
                    ("IPAddress", None) => vips.extend(params.default_vips.iter().copied()),
                    (other, _) => unsupported_addresses.push(other.to_owned()),
                }
            }
            if gw.spec.addresses.is_empty() {
                vips.extend(params.default_vips.iter().copied());
            }
            let mut listeners: Vec<ListenerState<'a>> = gw
                .spec
                .listeners
                .iter()
                .map(|l| {
                    let udp = l.protocol == "UDP";
                    let (supported, invalid_kinds) = route_kinds(l, udp);
                    ListenerState {
                        spec: l,
                        port: u16::try_from(l.port).unwrap_or(0),
                        udp,
                        supported,
                        invalid_kinds,
                        conflicted: false,
                        unavailable: None,
                        routes: BTreeSet::new(),
                    }
                })
                .collect();
            let mut udp_ports: BTreeMap<u16, usize> = BTreeMap::new();
            for l in listeners.iter().filter(|l| l.udp) {
                *udp_ports.entry(l.port).or_default() += 1;
            }
            for l in listeners.iter_mut().filter(|l| l.udp) {
                l.conflicted = udp_ports.get(&l.port).copied().unwrap_or(0) > 1;
            }
            GatewayState {
                gw,
                vips: vips.into_iter().collect(),
                unsupported_addresses,
                listeners,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.gw.meta.namespace, &a.gw.meta.name).cmp(&(&b.gw.meta.namespace, &b.gw.meta.name))
    });
    out
}

/// Two Gateways sharing a VIP and a UDP port: the older keeps it, the newer listener is
/// `PortUnavailable`.
pub(super) fn claim_ports(gateways: &mut [GatewayState<'_>]) {
    let mut order: Vec<usize> = (0..gateways.len()).collect();
    order.sort_by(|&a, &b| {
        gateways[a]
            .gw
            .meta
            .age_key()
            .cmp(&gateways[b].gw.meta.age_key())
    });
    let mut claims: BTreeMap<(IpAddr, u16), String> = BTreeMap::new();
    for gi in order {
        if !gateways[gi].accepted() {
            continue;
        }
        let id = gateways[gi].id();
        let vips = gateways[gi].vips.clone();
        for l in gateways[gi].listeners.iter_mut() {
            if !l.udp || l.conflicted {
                continue;
            }
            let holder = vips
                .iter()
                .find_map(|vip| claims.get(&(*vip, l.port)).filter(|h| **h != id));
            if let Some(holder) = holder {
                l.unavailable = Some(holder.clone());
                continue;
            }
            for vip in &vips {
                claims.insert((*vip, l.port), id.clone());
            }
        }
    }
}

/// Why a listener has no forwarding entry; `None` when it is served.
pub(super) fn unserved(g: &GatewayState<'_>, l: &ListenerState<'_>) -> Option<&'static str> {
    if !g.accepted() {
        Some("the Gateway is not accepted")
    } else if !l.udp {
        Some("its protocol is not UDP")
    } else if l.conflicted {
        Some("another UDP listener uses its port")
    } else if l.unavailable.is_some() {
        Some("an older Gateway holds its port")
    } else {
        None
    }
}

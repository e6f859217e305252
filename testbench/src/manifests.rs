//! Gateway API manifests for end-to-end scenarios, written as YAML text (the same shape a
//! user or `kubectl get -o yaml` would feed udplb).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::topology::Host;

/// The GatewayClass udplb serves (`udplb`, controller `udplb.io/appliance`).
pub fn gateway_class() -> String {
    "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: udplb}\nspec: {controllerName: udplb.io/appliance}\n".into()
}

/// A Gateway `name` in `default` with `vips` and UDP listeners `(name, port)`;
/// `annotations` are `key: value` lines (e.g. `udplb.io/nat-mode: preserve-client`).
pub fn gateway(
    name: &str,
    vips: &[IpAddr],
    listeners: &[(&str, u16)],
    annotations: &[(&str, &str)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway");
    let _ = writeln!(s, "metadata:\n  name: {name}\n  namespace: default");
    if !annotations.is_empty() {
        let _ = writeln!(s, "  annotations:");
        for (k, v) in annotations {
            let _ = writeln!(s, "    {k}: \"{v}\"");
        }
    }
    let _ = writeln!(s, "spec:\n  gatewayClassName: udplb\n  addresses:");
    for v in vips {
        let _ = writeln!(s, "    - {{type: IPAddress, value: \"{v}\"}}");
    }
    let _ = writeln!(s, "  listeners:");
    for (l, port) in listeners {
        let _ = writeln!(s, "    - {{name: {l}, protocol: UDP, port: {port}}}");
    }
    s
}

/// A parentRef: Gateway name, optional sectionName and port.
#[derive(Clone, Debug)]
pub struct Parent<'a> {
    /// Gateway name.
    pub gateway: &'a str,
    /// Listener name.
    pub section: Option<&'a str>,
    /// Listener port.
    pub port: Option<u16>,
}

/// A UDPRoute `name` (v1) in `default`, created at `created` (RFC 3339), with backendRefs
/// `(service, port, weight)`.
pub fn route(
    name: &str,
    created: &str,
    parents: &[Parent<'_>],
    backends: &[(&str, u16, u32)],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "apiVersion: gateway.networking.k8s.io/v1\nkind: UDPRoute"
    );
    let _ = writeln!(
        s,
        "metadata:\n  name: {name}\n  namespace: default\n  creationTimestamp: \"{created}\""
    );
    let _ = writeln!(s, "spec:\n  parentRefs:");
    for p in parents {
        let _ = write!(s, "    - {{name: {}", p.gateway);
        if let Some(sec) = p.section {
            let _ = write!(s, ", sectionName: {sec}");
        }
        if let Some(port) = p.port {
            let _ = write!(s, ", port: {port}");
        }
        let _ = writeln!(s, "}}");
    }
    let _ = writeln!(s, "  rules:\n    - backendRefs:");
    for (svc, port, weight) in backends {
        let _ = writeln!(
            s,
            "        - {{name: {svc}, port: {port}, weight: {weight}}}"
        );
    }
    s
}

/// An endpoint of a Service: address and whether it is terminating (draining).
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    /// Address.
    pub addr: IpAddr,
    /// `conditions.terminating` (and `ready: false`).
    pub terminating: bool,
}

impl Endpoint {
    /// A ready endpoint.
    pub fn ready(addr: IpAddr) -> Endpoint {
        Endpoint {
            addr,
            terminating: false,
        }
    }

    /// Both addresses of `host` (IPv4, IPv6), ready.
    pub fn both_of(host: &Host) -> [Endpoint; 2] {
        [
            Endpoint::ready(host.ipv4().into()),
            Endpoint::ready(host.ipv6().into()),
        ]
    }
}

/// A Service `name` with one UDP port `port` (target port the same) and one EndpointSlice
/// per address family holding `endpoints`.
pub fn service(name: &str, port: u16, endpoints: &[Endpoint]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  ports: [{{name: p, protocol: UDP, port: {port}, targetPort: {port}}}]"
    );
    for (family, v6) in [("IPv4", false), ("IPv6", true)] {
        let eps: Vec<&Endpoint> = endpoints
            .iter()
            .filter(|e| e.addr.is_ipv6() == v6)
            .collect();
        if eps.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice"
        );
        let _ = writeln!(
            s,
            "metadata:\n  name: {name}-{}\n  namespace: default\n  labels: {{kubernetes.io/service-name: {name}}}",
            family.to_lowercase()
        );
        let _ = writeln!(
            s,
            "addressType: {family}\nports: [{{name: p, protocol: UDP, port: {port}}}]\nendpoints:"
        );
        for e in eps {
            let cond = if e.terminating {
                "{ready: false, serving: true, terminating: true}"
            } else {
                "{ready: true}"
            };
            let _ = writeln!(s, "  - {{addresses: [\"{}\"], conditions: {cond}}}", e.addr);
        }
    }
    s
}

/// The usual scenario in one stream: the GatewayClass; a Gateway `gw` on `vips` with UDP
/// `listeners` and `annotations`; a UDPRoute `route` attached to all of its listeners;
/// and per `(service, weight, endpoints)` a Service on `port` holding `endpoints`, which
/// the route references with `weight`.
pub fn gateway_with_route(
    route_name: &str,
    vips: &[IpAddr],
    listeners: &[(&str, u16)],
    annotations: &[(&str, &str)],
    port: u16,
    services: &[(&str, u32, Vec<Endpoint>)],
) -> String {
    let refs: Vec<(&str, u16, u32)> = services.iter().map(|(s, w, _)| (*s, port, *w)).collect();
    let mut docs = vec![
        gateway_class(),
        gateway("gw", vips, listeners, annotations),
        route(
            route_name,
            "2026-01-01T00:00:00Z",
            &[Parent {
                gateway: "gw",
                section: None,
                port: None,
            }],
            &refs,
        ),
    ];
    docs.extend(services.iter().map(|(svc, _, eps)| service(svc, port, eps)));
    join(&docs)
}

/// Joins documents into one multi-document YAML stream.
pub fn join(docs: &[String]) -> String {
    docs.iter()
        .map(|d| d.trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n---\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_manifests_are_valid_and_accepted() {
        let vip: IpAddr = "198.18.0.10".parse().unwrap();
        let yaml = join(&[
            gateway_class(),
            gateway(
                "gw",
                &[vip],
                &[("a", 5300), ("b", 5301)],
                &[("udplb.io/nat-mode", "preserve-client")],
            ),
            route(
                "r",
                "2026-01-01T00:00:00Z",
                &[Parent {
                    gateway: "gw",
                    section: Some("a"),
                    port: None,
                }],
                &[("svc", 53, 70), ("svc2", 53, 30)],
            ),
            service(
                "svc",
                53,
                &[Endpoint::ready("198.18.1.11".parse().unwrap())],
            ),
            service(
                "svc2",
                53,
                &[Endpoint {
                    addr: "198.18.1.12".parse().unwrap(),
                    terminating: true,
                }],
            ),
        ]);
        let set = config::load_str("generated", &yaml).expect("valid manifests");
        let compiled = config::compile(&set, &config::CompileParams::default());
        assert!(
            compiled.status.all_ok(),
            "{}",
            config::status_yaml(&compiled.status)
        );
        let l = &compiled.forwarding.listeners;
        assert_eq!(l.len(), 2);
        let r = l[0].route.as_ref().expect("route on listener a");
        assert_eq!(r.backends.len(), 2);
        assert!(r.backends.iter().any(|b| b.draining));
        assert_eq!(
            l[0].options.nat_mode,
            Some(pipelines::spec::NatMode::PreserveClient)
        );
    }
}

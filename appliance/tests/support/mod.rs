//! Shared fixtures of the appliance's worker tests and of `examples/worker_throughput.rs`
//! (which includes this file with `#[path]`): Gateway API manifests for one VIP, compiled
//! tables, a one-port network, and ([`dpdk`]) the EAL once per process with mempools and
//! ring ports. Addresses from 198.18.0.0/15 only.
// Each test binary uses a part of it.
#![allow(dead_code)]

pub mod dpdk;
pub mod scenario;

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;

use pipelines::net::{
    ChecksumCaps, IpNet, MacAddr, Network, PortConfig, PortRange, SnatConfig, StaticRoute,
};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::{FastPath, FastPathParams};

/// The SNAT port pool every fixture uses.
pub const SNAT_PORTS: PortRange = PortRange {
    first: 1024,
    last: 65535,
};

/// A Service (one port, 53) backed by one EndpointSlice, referenced with a weight.
pub struct Backend {
    /// Service name (also the EndpointSlice's).
    pub service: &'static str,
    /// The endpoints' IPv4 addresses.
    pub addresses: &'static [&'static str],
    /// The endpoints' port (what the fast path sends to).
    pub port: u16,
    /// `backendRefs[].weight`.
    pub weight: u32,
}

/// A UDP listener of the Gateway and the UDPRoute (of the same name) attached to it.
pub struct Listener {
    /// Listener and route name.
    pub name: &'static str,
    /// Listener port.
    pub port: u16,
    /// `udplb.io/listener.NAME.nat-mode: preserve-client` (else full NAT).
    pub preserve_client: bool,
    /// The route's backendRefs.
    pub backends: &'static [Backend],
}

/// A full-NAT listener `name` on `port` with one backend Service.
pub const fn listener(name: &'static str, port: u16, backends: &'static [Backend]) -> Listener {
    Listener {
        name,
        port,
        preserve_client: false,
        backends,
    }
}

/// A Service `service` of weight 1 whose endpoints listen on `port`.
pub const fn service(
    service: &'static str,
    addresses: &'static [&'static str],
    port: u16,
) -> Backend {
    Backend {
        service,
        addresses,
        port,
        weight: 1,
    }
}

/// GatewayClass `udplb`, Gateway `default/gw` on `vip` with `listeners`, one UDPRoute per
/// listener (bound by sectionName), and the Services and EndpointSlices they reference.
pub fn manifests(vip: &str, listeners: &[Listener]) -> String {
    let mut y = String::from(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n\
         metadata: {name: udplb}\nspec: {controllerName: udplb.io/appliance}\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n\
         metadata:\n  name: gw\n  namespace: default\n  annotations: {",
    );
    let preserved: Vec<String> = listeners
        .iter()
        .filter(|l| l.preserve_client)
        .map(|l| format!("udplb.io/listener.{}.nat-mode: preserve-client", l.name))
        .collect();
    y.push_str(&preserved.join(", "));
    let _ = write!(
        y,
        "}}\nspec:\n  gatewayClassName: udplb\n  addresses: [{{value: {vip}}}]\n  listeners:\n"
    );
    for l in listeners {
        let _ = writeln!(
            y,
            "  - {{name: {}, port: {}, protocol: UDP}}",
            l.name, l.port
        );
    }
    let mut services: Vec<&Backend> = Vec::new();
    for l in listeners {
        let _ = write!(
            y,
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: UDPRoute\n\
             metadata: {{name: {name}, namespace: default}}\nspec:\n  \
             parentRefs: [{{name: gw, sectionName: {name}}}]\n  rules:\n  - backendRefs:\n",
            name = l.name
        );
        for b in l.backends {
            let _ = writeln!(
                y,
                "    - {{name: {}, port: 53, weight: {}}}",
                b.service, b.weight
            );
            if !services.iter().any(|s| s.service == b.service) {
                services.push(b);
            }
        }
    }
    for b in services {
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {svc}, namespace: default}}\n\
             spec: {{ports: [{{name: dns, protocol: UDP, port: 53}}]}}\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {svc}, \
             namespace: default, labels: {{kubernetes.io/service-name: {svc}}}}}\n\
             addressType: IPv4\nports: [{{name: dns, protocol: UDP, port: {port}}}]\n\
             endpoints: [{{addresses: [{addrs}]}}]\n",
            svc = b.service,
            port = b.port,
            addrs = b.addresses.join(", ")
        );
    }
    y
}

/// The tables of [`manifests`]`(vip, listeners)`, checking every listener compiled.
pub fn tables(vip: &str, listeners: &[Listener]) -> Arc<Tables> {
    let objects = config::load_str("fixture.yaml", &manifests(vip, listeners))
        .expect("fixture manifests load");
    let compiled = config::compile(&objects, &config::CompileParams::default());
    assert_eq!(
        compiled.forwarding.listeners.len(),
        listeners.len(),
        "every listener compiled: {:#?}",
        compiled.forwarding
    );
    Arc::new(Tables::build(&compiled.forwarding, &DataplaneParams::default()).expect("tables"))
}

/// An IPv4 prefix.
pub fn net4(a: [u8; 4], len: u8) -> IpNet {
    IpNet::new(IpAddr::from(a), len).expect("prefix")
}

/// One port with `mac` and `addresses`, `routes`, SNAT address `snat` with [`SNAT_PORTS`].
pub fn one_port_network(
    mac: MacAddr,
    addresses: Vec<IpNet>,
    routes: Vec<StaticRoute>,
    snat: [u8; 4],
) -> Network {
    Network::new(
        vec![PortConfig {
            mac,
            addresses,
            checksum: ChecksumCaps::empty(),
            unfinished_rx_checksums: false,
            mtu: pipelines::net::DEFAULT_MTU,
        }],
        routes,
        SnatConfig {
            ipv4: Some(snat.into()),
            ipv6: None,
            ports: SNAT_PORTS,
        },
    )
    .expect("network")
}

/// Worker `id` of `workers` with `flow_capacity` flows and its share of [`SNAT_PORTS`].
pub fn fast_path(id: u16, workers: u16, flow_capacity: u32) -> FastPath {
    FastPath::new(FastPathParams {
        flow_capacity,
        ..FastPathParams::new(id, workers, SNAT_PORTS)
    })
    .expect("fast path")
}

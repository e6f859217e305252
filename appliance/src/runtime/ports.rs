//! Port bring-up: one DPDK port per `ports[]` entry with one RX and one TX queue per
//! worker, the static network they make (addresses, routes, SNAT), and their statistics.

use std::net::IpAddr;
use std::sync::Mutex;

use pipelines::net::{ChecksumCaps, MacAddr, Network, PortConfig, SnatConfig, StaticRoute};

use super::RunError;
use crate::control::PortStats;
use crate::dpdk::{Mempool, Port, PortBuilder};
use crate::health::{PortLink, PortLinks};
use crate::metrics::PortSample;
use crate::settings::{Settings, SnatReach};

/// Descriptors per RX and TX ring.
pub(super) const RING_SIZE: u16 = 1024;

/// The started ports. They stay here for statistics until shutdown; workers hold only
/// queue handles.
pub(super) struct PortSet {
    names: Vec<String>,
    ports: Mutex<Vec<Port>>,
    /// Mbufs that net_af_xdp ports keep after they close (DPDK 22.11 does not return
    /// them): those parked in their fill rings at set-up, measured, plus at most one TX
    /// ring per queue of frames awaiting completion. Not counted as a leak.
    pub(super) parked_by_af_xdp: u32,
}

impl PortSet {
    /// Configures and starts every port of `settings` with `workers` queue pairs.
    pub(super) fn start(
        settings: &Settings,
        pool: &Mempool,
        workers: u16,
    ) -> Result<PortSet, RunError> {
        let mut ports = Vec::new();
        let mut parked_by_af_xdp = 0u32;
        for p in &settings.ports {
            let mut b = PortBuilder::new(&p.device)?
                .rx_queues(workers)
                .tx_queues(workers)
                .rx_ring_size(RING_SIZE)
                .tx_ring_size(RING_SIZE)
                .mempool(pool)
                .rss(workers > 1)
                .tx_checksum_offload(true)
                .mtu(p.mtu);
            if let Some(mac) = p.mac {
                b = b.mac_addr(mac.0);
            }
            let before_start = pool.in_use();
            let mut port = b.build()?;
            port.start()?;
            if port.driver() == "net_af_xdp" {
                parked_by_af_xdp += pool.in_use().saturating_sub(before_start)
                    + u32::from(RING_SIZE) * u32::from(workers);
            }
            log::info!(
                "port {} ({}): driver {}, mac {}, checksum offload {:?}",
                p.name,
                p.device,
                port.driver(),
                MacAddr(port.mac_addr()?),
                port.checksum_offload()
            );
            ports.push(port);
        }
        Ok(PortSet {
            names: settings.ports.iter().map(|p| p.name.clone()).collect(),
            ports: Mutex::new(ports),
            parked_by_af_xdp,
        })
    }

    /// Runs `f` on the ports (set-up and shutdown; metrics read them the same way).
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Vec<Port>) -> T) -> T {
        f(&mut self.ports.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The ports' count.
    pub(super) fn len(&self) -> usize {
        self.names.len()
    }
}

impl PortStats for PortSet {
    fn samples(&self) -> Vec<PortSample> {
        self.with(|ports| {
            self.names
                .iter()
                .zip(ports.iter())
                .map(|(name, port)| {
                    let s = port.stats().unwrap_or_default();
                    PortSample {
                        name: name.clone(),
                        rx_packets: s.ipackets,
                        rx_bytes: s.ibytes,
                        tx_packets: s.opackets,
                        tx_bytes: s.obytes,
                        rx_missed: s.imissed,
                        rx_errors: s.ierrors,
                        tx_errors: s.oerrors,
                        rx_nombuf: s.rx_nombuf,
                    }
                })
                .collect()
        })
    }
}

impl PortLinks for PortSet {
    fn links(&self) -> Vec<PortLink> {
        self.with(|ports| {
            self.names
                .iter()
                .zip(ports.iter())
                .map(|(name, port)| PortLink {
                    name: name.clone(),
                    // A link DPDK cannot read is not known to be up.
                    up: port.link().is_ok_and(|l| l.up),
                })
                .collect()
        })
    }
}

/// The static network: each port's MAC, addresses and checksum offloads, the routes and
/// the SNAT configuration.
pub(super) fn network(settings: &Settings, ports: &[Port]) -> Result<Network, RunError> {
    let mut configs = Vec::new();
    for (p, port) in settings.ports.iter().zip(ports) {
        let off = port.checksum_offload();
        let mut caps = ChecksumCaps::empty();
        if off.ipv4_header {
            caps |= ChecksumCaps::IPV4;
        }
        if off.udp {
            caps |= ChecksumCaps::UDP;
        }
        configs.push(PortConfig {
            mac: MacAddr(port.mac_addr()?),
            addresses: p.addresses.clone(),
            checksum: caps,
            // Kernel-attached PMDs pass on what a local sender's veth hands them.
            unfinished_rx_checksums: matches!(port.driver(), "net_af_xdp" | "net_af_packet"),
            mtu: p.mtu,
        });
    }
    let mut routes = Vec::new();
    for r in &settings.routes {
        let (idx, _) = settings
            .port(&r.port)
            .ok_or_else(|| RunError::Network(format!("routes: no port named {:?}", r.port)))?;
        routes.push(StaticRoute {
            prefix: r.prefix,
            next_hop: r.via,
            port: idx,
        });
    }
    let snat = SnatConfig {
        ipv4: settings.snat.ipv4,
        ipv6: settings.snat.ipv6,
        ports: settings.snat.ports,
    };
    Network::new(configs, routes, snat).map_err(|e| RunError::Network(e.to_string()))
}

/// Each port's own addresses with their prefix lengths.
pub(super) fn own_addresses(settings: &Settings) -> Vec<Vec<(IpAddr, u8)>> {
    settings
        .ports
        .iter()
        .map(|p| {
            p.addresses
                .iter()
                .map(|a| (a.addr(), a.prefix_len()))
                .collect()
        })
        .collect()
}

/// The on-link SNAT addresses with the port that answers ARP/NDP for them; logs where
/// each SNAT address is reached from, so an operator sees which port owns it.
pub(super) fn snat_on_link(settings: &Settings) -> Vec<(IpAddr, usize)> {
    let mut on_link = Vec::new();
    for (field, ip) in settings.snat_addresses() {
        match settings.snat_reach(ip) {
            Some(SnatReach::OnLink { port }) => {
                log::info!(
                    "{field} {ip}: on the link of port {}, which answers ARP/NDP and ping for it",
                    settings.ports[port].name
                );
                on_link.push((ip, port));
            }
            Some(SnatReach::Routed { route }) => log::info!(
                "{field} {ip}: inside no port's prefix, covered by routes[{route}]; no port \
                 answers ARP/NDP for it, the network must route it to this appliance"
            ),
            // Refused by settings validation.
            None => {}
        }
    }
    on_link
}

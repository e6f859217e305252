//! Fixtures shared by the tests, the benchmarks and the appliance's tests: a small
//! standard topology, a packet builder and an *independent* decoder that verifies every
//! checksum with etherparse's own routines (not this crate's).
//!
//! Not used by the fast path. Addresses are from the benchmarking ranges 198.18.0.0/15 and
//! 2001:2::/48.
//!
//! Topology: port 0 faces clients (198.18.0.254/24, 2001:2::fe/64; clients in
//! 198.19.0.0/16 and 2001:2:0:9::/64 are behind router 198.18.0.1 / 2001:2::1); port 1
//! faces backends (198.18.1.254/24, 2001:2:0:1::fe/64, with checksum offload when asked);
//! SNAT addresses 198.18.1.253 and 2001:2:0:1::fd, ports 1024–65535. VIPs are 198.18.2.1
//! and 2001:2:0:2::1.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    Ipv4Header, LinkExtSlice, NetSlice, PacketBuilder, SlicedPacket, TransportSlice, VlanId,
};

use crate::neighbor::Neighbors;
use crate::net::{
    ChecksumCaps, IpNet, MacAddr, Network, PortConfig, PortRange, SnatConfig, StaticRoute,
};
use crate::spec::{
    BackendSpec, ForwardingConfig, ListenerKey, ListenerOptions, ListenerSpec, NatMode, RouteKey,
    RouteSpec, ServiceKey, WEIGHT_SCALE,
};

/// MAC of port 0 (client side).
pub const PORT0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
/// MAC of port 1 (backend side).
pub const PORT1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);
/// MAC of the client-side router.
pub const ROUTER_MAC: MacAddr = MacAddr([0x0a, 0, 0, 0, 0, 0x01]);
/// MAC of backend `n` (198.18.1.`n` / 2001:2:0:1::`n`).
pub fn backend_mac(n: u8) -> MacAddr {
    MacAddr([0x0a, 0, 0, 0, 1, n])
}
/// The port a frame addressed to `frame`'s destination MAC arrives on in the standard
/// topology: 1 for [`PORT1_MAC`], else 0 (as a switch would deliver it).
pub fn arrival_port(frame: &[u8]) -> u16 {
    match frame.first_chunk::<6>() {
        Some(dst) if MacAddr(*dst) == PORT1_MAC => 1,
        _ => 0,
    }
}

/// A client's MAC as seen in inbound frames.
pub const CLIENT_SIDE_MAC: MacAddr = MacAddr([0x0a, 0, 0, 0, 0, 0x99]);

fn net(a: &str, len: u8) -> IpNet {
    IpNet::new(a.parse().expect("fixture address"), len).expect("fixture prefix")
}

/// The standard network; `offload` gives port 1 IPv4 and UDP checksum offload.
pub fn network(offload: bool) -> Network {
    Network::new(
        vec![
            PortConfig {
                mac: PORT0_MAC,
                addresses: vec![net("198.18.0.254", 24), net("2001:2::fe", 64)],
                checksum: ChecksumCaps::empty(),
                unfinished_rx_checksums: false,
                mtu: crate::net::DEFAULT_MTU,
            },
            PortConfig {
                mac: PORT1_MAC,
                addresses: vec![net("198.18.1.254", 24), net("2001:2:0:1::fe", 64)],
                checksum: if offload {
                    ChecksumCaps::all()
                } else {
                    ChecksumCaps::empty()
                },
                unfinished_rx_checksums: false,
                mtu: crate::net::DEFAULT_MTU,
            },
        ],
        vec![
            StaticRoute {
                prefix: net("198.19.0.0", 16),
                next_hop: "198.18.0.1".parse().expect("fixture"),
                port: 0,
            },
            StaticRoute {
                prefix: net("2001:2:0:9::", 64),
                next_hop: "2001:2::1".parse().expect("fixture"),
                port: 0,
            },
        ],
        SnatConfig {
            ipv4: Some("198.18.1.253".parse().expect("fixture")),
            ipv6: Some("2001:2:0:1::fd".parse().expect("fixture")),
            ports: PortRange {
                first: 1024,
                last: 65535,
            },
        },
    )
    .expect("fixture network is valid")
}

/// Neighbors: both routers and backends 1..=`backends` of each family.
pub fn neighbors(backends: u8) -> Neighbors {
    let mut v: Vec<(IpAddr, MacAddr)> = vec![
        ("198.18.0.1".parse().expect("fixture"), ROUTER_MAC),
        ("2001:2::1".parse().expect("fixture"), ROUTER_MAC),
    ];
    for n in 1..=backends {
        v.push((IpAddr::from([198, 18, 1, n]), backend_mac(n)));
        let mut a = [0u8; 16];
        a[..8].copy_from_slice(&[0x20, 0x01, 0, 2, 0, 0, 0, 1]);
        a[15] = n;
        v.push((IpAddr::from(a), backend_mac(n)));
    }
    Neighbors::new(v)
}

/// A listener on `vip:port` with `mode` and `backends` (address, weight).
pub fn listener(
    vip: &str,
    port: u16,
    mode: NatMode,
    backends: &[(SocketAddr, u64)],
) -> ListenerSpec {
    ListenerSpec {
        vip: vip.parse().expect("fixture vip"),
        port,
        key: ListenerKey {
            namespace: "default".into(),
            gateway: "gw".into(),
            listener: format!("udp-{port}"),
        },
        options: ListenerOptions {
            nat_mode: Some(mode),
            ..ListenerOptions::default()
        },
        route: Some(RouteSpec {
            key: RouteKey {
                namespace: "default".into(),
                name: format!("route-{port}"),
            },
            backends: backends
                .iter()
                .map(|(addr, weight)| BackendSpec {
                    addr: *addr,
                    service: ServiceKey {
                        namespace: "default".into(),
                        name: "svc".into(),
                        port: 53,
                    },
                    weight: *weight,
                    draining: false,
                    idle_timeout: None,
                })
                .collect(),
            dropped_weight: 0,
        }),
    }
}

/// IPv4 backend `n` on port 5353.
pub fn backend4(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, n], 5353))
}

/// IPv6 backend `n` on port 5353.
pub fn backend6(n: u8) -> SocketAddr {
    let mut a = [0u16; 8];
    a[..4].copy_from_slice(&[0x2001, 2, 0, 1]);
    a[7] = u16::from(n);
    SocketAddr::from((a, 5353))
}

/// A backend's address with the DSR listeners' port (60): DSR leaves the UDP ports as
/// the client sent them.
pub fn dsr_backend(b: SocketAddr) -> SocketAddr {
    SocketAddr::new(b.ip(), 60)
}

/// The standard configuration:
/// - 198.18.2.1:53 FullNAT over backends 1 and 2 (equal weights);
/// - 198.18.2.1:54 preserve-client over backend 3;
/// - `[2001:2:0:2::1]:53` FullNAT over IPv6 backends 1 and 2;
/// - `[2001:2:0:2::1]:54` preserve-client over IPv6 backend 3;
/// - 198.18.2.1:55 without a route; :56 with only a draining backend; :57 with only a
///   dropped-weight share;
/// - 198.18.2.1:60 and `[2001:2:0:2::1]:60` DSR over backends 1 and 2 of their family on
///   port 60 ([`dsr_backend`]: a DSR backend receives the datagram on the VIP's port).
pub fn config() -> ForwardingConfig {
    let w = WEIGHT_SCALE;
    let mut no_route = listener("198.18.2.1", 55, NatMode::FullNat, &[]);
    no_route.route = None;
    let mut draining = listener("198.18.2.1", 56, NatMode::FullNat, &[(backend4(4), w)]);
    if let Some(r) = &mut draining.route {
        r.backends[0].draining = true;
    }
    let mut rejecting = listener("198.18.2.1", 57, NatMode::FullNat, &[]);
    if let Some(r) = &mut rejecting.route {
        r.dropped_weight = w;
    }
    let mut c = ForwardingConfig {
        listeners: vec![
            listener(
                "198.18.2.1",
                53,
                NatMode::FullNat,
                &[(backend4(1), w), (backend4(2), w)],
            ),
            listener(
                "198.18.2.1",
                54,
                NatMode::PreserveClient,
                &[(backend4(3), w)],
            ),
            listener(
                "2001:2:0:2::1",
                53,
                NatMode::FullNat,
                &[(backend6(1), w), (backend6(2), w)],
            ),
            listener(
                "2001:2:0:2::1",
                54,
                NatMode::PreserveClient,
                &[(backend6(3), w)],
            ),
            no_route,
            draining,
            rejecting,
            listener(
                "198.18.2.1",
                60,
                NatMode::Dsr,
                &[(dsr_backend(backend4(1)), w), (dsr_backend(backend4(2)), w)],
            ),
            listener(
                "2001:2:0:2::1",
                60,
                NatMode::Dsr,
                &[(dsr_backend(backend6(1)), w), (dsr_backend(backend6(2)), w)],
            ),
        ],
        ..ForwardingConfig::default()
    };
    c.normalize();
    c
}

/// Builds an Ethernet frame carrying a UDP datagram `src → dst` with valid checksums,
/// 0–2 VLAN tags, source MAC [`CLIENT_SIDE_MAC`] and destination `dst_mac`.
///
/// # Panics
/// On mixed address families, more than two VLAN tags or an invalid VLAN id: fixture
/// misuse.
pub fn udp_frame(
    src: SocketAddr,
    dst: SocketAddr,
    ttl: u8,
    vlans: &[u16],
    dst_mac: MacAddr,
    payload: &[u8],
) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2(CLIENT_SIDE_MAC.0, dst_mac.0);
    let vid = |v: u16| VlanId::try_new(v).expect("vlan id");
    let mut out = Vec::new();
    macro_rules! finish {
        ($step:expr) => {{
            let b = match (src.ip(), dst.ip()) {
                (IpAddr::V4(s), IpAddr::V4(d)) => $step.ipv4(s.octets(), d.octets(), ttl),
                (IpAddr::V6(s), IpAddr::V6(d)) => $step.ipv6(s.octets(), d.octets(), ttl),
                _ => panic!("mixed families"),
            };
            b.udp(src.port(), dst.port())
                .write(&mut out, payload)
                .expect("write to Vec");
        }};
    }
    match vlans {
        [] => finish!(eth),
        [v] => finish!(eth.single_vlan(vid(*v))),
        [o, i] => finish!(eth.double_vlan(vid(*o), vid(*i))),
        _ => panic!("at most two VLAN tags"),
    }
    out
}

/// A frame decoded and verified independently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// VLAN ids, outer first.
    pub vlans: Vec<u16>,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// UDP checksum field.
    pub udp_checksum: u16,
    /// UDP payload.
    pub payload: Vec<u8>,
}

/// Decodes `frame` with etherparse and verifies the IPv4 header checksum and the UDP
/// checksum (unless 0 over IPv4) with etherparse's routines.
///
/// # Errors
/// A message saying what does not parse or which checksum is wrong.
pub fn decode_verified(frame: &[u8]) -> Result<Decoded, String> {
    let s = SlicedPacket::from_ethernet(frame).map_err(|e| format!("parse: {e}"))?;
    s.link.as_ref().ok_or("no ethernet")?;
    let mut src_mac = MacAddr::default();
    let mut dst_mac = MacAddr::default();
    dst_mac.0.copy_from_slice(frame.get(0..6).ok_or("short")?);
    src_mac.0.copy_from_slice(frame.get(6..12).ok_or("short")?);
    let vlans = s
        .link_exts
        .iter()
        .filter_map(|e| match e {
            LinkExtSlice::Vlan(v) => Some(v.vlan_identifier().value()),
            LinkExtSlice::Macsec(_) => None,
        })
        .collect();
    let Some(TransportSlice::Udp(udp)) = &s.transport else {
        return Err("not udp".into());
    };
    let uh = udp.to_header();
    let payload = udp.payload();
    let (src_ip, dst_ip, ttl) = match &s.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h: Ipv4Header = v4.header().to_header();
            let stored = v4.header().header_checksum();
            let want = h.calc_header_checksum();
            if stored != want {
                return Err(format!(
                    "ipv4 header checksum {stored:#06x}, want {want:#06x}"
                ));
            }
            if uh.checksum != 0 {
                let want = uh
                    .calc_checksum_ipv4_raw(h.source, h.destination, payload)
                    .map_err(|e| e.to_string())?;
                if uh.checksum != want {
                    return Err(format!(
                        "udp4 checksum {:#06x}, want {want:#06x}",
                        uh.checksum
                    ));
                }
            }
            (
                IpAddr::from(h.source),
                IpAddr::from(h.destination),
                h.time_to_live,
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let want = uh
                .calc_checksum_ipv6_raw(h.source(), h.destination(), payload)
                .map_err(|e| e.to_string())?;
            if uh.checksum != want {
                return Err(format!(
                    "udp6 checksum {:#06x}, want {want:#06x}",
                    uh.checksum
                ));
            }
            (
                IpAddr::from(h.source()),
                IpAddr::from(h.destination()),
                h.hop_limit(),
            )
        }
        _ => return Err("not ip".into()),
    };
    Ok(Decoded {
        src_mac,
        dst_mac,
        vlans,
        src: SocketAddr::new(src_ip, uh.source_port),
        dst: SocketAddr::new(dst_ip, uh.destination_port),
        ttl,
        udp_checksum: uh.checksum,
        payload: payload.to_vec(),
    })
}

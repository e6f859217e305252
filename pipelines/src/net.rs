//! The appliance's own network, from its static configuration: ports with their MAC,
//! addresses and checksum offload capabilities, static routes, and the SNAT addresses with
//! their port pool.
//!
//! Routing is a longest-prefix match over connected prefixes (the ports' own addresses
//! with their prefix lengths: next hop = the destination itself) and static routes (next
//! hop = the gateway). The list is short and scanned linearly, longest prefix first.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address with a prefix length (`198.18.0.1/24`): the maintained `ipnet` type. The
/// address is kept as written (host bits are not cleared); the type guarantees a prefix
/// length that fits the family.
pub use ipnet::IpNet;

use crate::spec::ParseError;

/// An Ethernet MAC address, written `02:00:5e:10:00:01`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// `33:33:00:00:00:01`: the IPv6 all-nodes group `ff02::1` (RFC 2464 §7).
    pub const IPV6_ALL_NODES: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);

    /// The MAC of the solicited-node multicast group of `ip` (RFC 4291 §2.7.1, `ff02::1:ffXX:XXXX`,
    /// mapped by RFC 2464 §7): where neighbor solicitations for `ip` are sent.
    pub fn solicited_node(ip: Ipv6Addr) -> MacAddr {
        let o = ip.octets();
        MacAddr([0x33, 0x33, 0xff, o[13], o[14], o[15]])
    }

    /// The six bytes.
    #[inline]
    pub fn octets(self) -> [u8; 6] {
        self.0
    }

    /// Whether it is a unicast address (group bit clear, not all zero).
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && self.0 != [0; 6]
    }

    /// Whether the group bit is set (multicast or broadcast).
    #[inline]
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl From<[u8; 6]> for MacAddr {
    fn from(b: [u8; 6]) -> Self {
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Syntax {
            text: s.to_owned(),
            expected: "a MAC address like 02:00:00:00:00:01",
        };
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(bytes))
    }
}

bitflags::bitflags! {
    /// Transmit checksum offloads a port offers (a runtime value, not a cargo feature).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct ChecksumCaps: u8 {
        /// The NIC computes the IPv4 header checksum (`RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`).
        const IPV4 = 1;
        /// The NIC computes the UDP checksum (`RTE_ETH_TX_OFFLOAD_UDP_CKSUM`).
        const UDP = 2;
    }
}

/// One DPDK port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortConfig {
    /// Its MAC, the source of every frame sent on it.
    pub mac: MacAddr,
    /// Own addresses, with the prefix lengths of the connected networks.
    pub addresses: Vec<IpNet>,
    /// Transmit checksum offloads.
    pub checksum: ChecksumCaps,
    /// The port can receive UDP datagrams with an unfinished checksum (only the
    /// pseudo-header sum): kernel-attached PMDs (AF_XDP, AF_PACKET) on a veth whose sender
    /// has TX checksum offload on. The fast path looks for that signature on such ports
    /// only and drops what fails verification (`unfinished_udp_checksum`).
    pub unfinished_rx_checksums: bool,
    /// The largest IP packet the port sends (its MTU, [`DEFAULT_MTU`] unless configured).
    /// Larger datagrams routed through it get `ToHost(TooBig)` (IPv4 with DF, IPv6) or
    /// `Verdict::Fragment` (IPv4 without DF).
    pub mtu: u16,
}

/// The MTU of an Ethernet port that sets none.
pub const DEFAULT_MTU: u16 = 1500;

/// A static route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticRoute {
    /// Destination prefix.
    pub prefix: IpNet,
    /// Gateway.
    pub next_hop: IpAddr,
    /// Output port.
    pub port: u16,
}

/// An inclusive range of UDP ports, written `1024-65535` (or a single port, `5000`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port.
    pub first: u16,
    /// Last port (inclusive).
    pub last: u16,
}

impl PortRange {
    /// Number of ports (0 when `last < first`).
    pub fn len(&self) -> u32 {
        if self.last < self.first {
            0
        } else {
            u32::from(self.last - self.first) + 1
        }
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }

    /// The contiguous share of worker `worker` among `workers` (the last takes the
    /// remainder). Replies to an SNAT port must reach the worker owning its share.
    pub fn partition(&self, worker: u16, workers: u16) -> PortRange {
        let Some((span, share)) = self.share(workers) else {
            return *self;
        };
        let w = worker.min(workers - 1);
        // w * share ≤ (workers - 1) * share ≤ span + 1 - share ≤ span (share ≥ 1 when the
        // range has at least `workers` ports; 0 otherwise): first stays within the range.
        let first = self.first + w * share;
        let last = if w + 1 == workers {
            self.last
        } else {
            first + share.saturating_sub(1)
        };
        debug_assert!(first <= self.first + span && last <= self.last);
        PortRange { first, last }
    }

    /// Which worker owns `port` under [`PortRange::partition`].
    pub fn owner(&self, port: u16, workers: u16) -> Option<u16> {
        if !self.contains(port) {
            return None;
        }
        let Some((_, share)) = self.share(workers) else {
            return Some(0);
        };
        Some(((port - self.first) / share.max(1)).min(workers - 1))
    }

    /// `(last - first, len / workers)` for a non-empty range and at least two workers,
    /// computed without leaving `u16`: with two or more workers a share is at most 32768.
    fn share(&self, workers: u16) -> Option<(u16, u16)> {
        if self.is_empty() || workers < 2 {
            return None;
        }
        let span = self.last - self.first;
        // (span + 1) / workers = span / workers, plus one when span % workers is the last
        // remainder before a carry.
        let share = span / workers + u16::from(span % workers == workers - 1);
        Some((span, share))
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        let bad = || ParseError::Syntax {
            text: s.to_owned(),
            expected: "FIRST-LAST, e.g. \"1024-65535\"",
        };
        let (first, last) = s.split_once('-').unwrap_or((s, s));
        let first: u16 = first.trim().parse().map_err(|_| bad())?;
        let last: u16 = last.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(ParseError::Invalid {
                text: s.to_owned(),
                problem: "the first port is above the last".into(),
            });
        }
        Ok(PortRange { first, last })
    }
}

/// Source NAT for `fullnat` listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnatConfig {
    /// Source address of IPv4 FullNAT traffic.
    pub ipv4: Option<Ipv4Addr>,
    /// Source address of IPv6 FullNAT traffic.
    pub ipv6: Option<Ipv6Addr>,
    /// Pool of source ports (shared by both addresses), partitioned among workers.
    pub ports: PortRange,
}

/// A set of addresses searched per packet (own addresses, VIPs): integers per family
/// (as [`crate::neighbor::Neighbors`] keeps them), scanned when there are few (the common
/// case: a handful of compares), binary-searched otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AddrSet {
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl AddrSet {
    /// Up to this many, a linear scan beats a binary search.
    const SCAN: usize = 16;

    pub(crate) fn new(addrs: impl IntoIterator<Item = IpAddr>) -> AddrSet {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for a in addrs {
            match a {
                IpAddr::V4(a) => v4.push(u32::from(a)),
                IpAddr::V6(a) => v6.push(u128::from(a)),
            }
        }
        v4.sort_unstable();
        v4.dedup();
        v6.sort_unstable();
        v6.dedup();
        AddrSet { v4, v6 }
    }

    #[inline]
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        fn find<T: Ord + Copy>(keys: &[T], key: T) -> bool {
            if keys.len() <= AddrSet::SCAN {
                // Measured: `contains` costs ≈ 45 more instructions per packet here.
                #[allow(clippy::manual_contains)]
                keys.iter().any(|&k| k == key)
            } else {
                keys.binary_search(&key).is_ok()
            }
        }
        match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => find(&self.v6, u128::from(a)),
        }
    }
}

/// Where to send a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Output port.
    pub port: u16,
    /// The neighbor to resolve: the destination itself on a connected prefix, else the
    /// gateway.
    pub via: IpAddr,
}

/// A configuration error, naming the offending item.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    /// A route names a port that does not exist.
    #[error("route to {prefix}: port {port} does not exist")]
    NoSuchPort {
        /// Route prefix.
        prefix: IpNet,
        /// The port.
        port: u16,
    },
    /// The SNAT port range is empty.
    #[error("snat port range {first}..={last} is empty")]
    EmptySnatRange {
        /// First.
        first: u16,
        /// Last.
        last: u16,
    },
    /// Too many ports for u16 port ids.
    #[error("too many ports")]
    TooManyPorts,
}

#[derive(Clone, Copy, Debug)]
struct FibEntry {
    prefix: IpNet,
    gateway: Option<IpAddr>,
    port: u16,
}

/// A FIB entry with its prefix as integers, per family, for a branch-light scan.
#[derive(Clone, Copy, Debug)]
struct Fib<T> {
    net: T,
    mask: T,
    gateway: Option<IpAddr>,
    port: u16,
}

/// The static network: ports, routes, SNAT.
#[derive(Clone, Debug)]
pub struct Network {
    ports: Vec<PortConfig>,
    snat: SnatConfig,
    fib4: Vec<Fib<u32>>,
    fib6: Vec<Fib<u128>>,
    own: AddrSet,
    /// Per port, sorted: the multicast MACs it listens to (IPv6 all-nodes and the
    /// solicited-node groups of the port's IPv6 addresses and the SNAT address).
    joined: Vec<Vec<MacAddr>>,
    /// The smallest port MTU: packets up to it fit every port (one compare per packet).
    min_mtu: u16,
}

impl Network {
    /// Validates and indexes the network.
    ///
    /// # Errors
    /// [`NetError`] for a route to a missing port or an empty SNAT port range.
    pub fn new(
        ports: Vec<PortConfig>,
        routes: Vec<StaticRoute>,
        snat: SnatConfig,
    ) -> Result<Network, NetError> {
        if snat.ports.is_empty() {
            return Err(NetError::EmptySnatRange {
                first: snat.ports.first,
                last: snat.ports.last,
            });
        }
        let mut fib = Vec::new();
        let mut own = Vec::new();
        for (i, p) in ports.iter().enumerate() {
            let port = u16::try_from(i).map_err(|_| NetError::TooManyPorts)?;
            for a in &p.addresses {
                own.push(a.addr());
                fib.push(FibEntry {
                    prefix: *a,
                    gateway: None,
                    port,
                });
            }
        }
        for r in &routes {
            if usize::from(r.port) >= ports.len() {
                return Err(NetError::NoSuchPort {
                    prefix: r.prefix,
                    port: r.port,
                });
            }
            fib.push(FibEntry {
                prefix: r.prefix,
                gateway: Some(r.next_hop),
                port: r.port,
            });
        }
        // Longest prefix first; connected before static at equal length (stable sort).
        fib.sort_by_key(|e| std::cmp::Reverse(e.prefix.prefix_len()));
        let mut fib4 = Vec::new();
        let mut fib6 = Vec::new();
        for e in &fib {
            match e.prefix {
                IpNet::V4(n) => {
                    let mask = u32::from(n.netmask());
                    fib4.push(Fib {
                        net: u32::from(n.addr()) & mask,
                        mask,
                        gateway: e.gateway,
                        port: e.port,
                    });
                }
                IpNet::V6(n) => {
                    let mask = u128::from(n.netmask());
                    fib6.push(Fib {
                        net: u128::from(n.addr()) & mask,
                        mask,
                        gateway: e.gateway,
                        port: e.port,
                    });
                }
            }
        }
        own.extend(snat.ipv4.map(IpAddr::V4));
        own.extend(snat.ipv6.map(IpAddr::V6));
        let own = AddrSet::new(own);
        let joined = ports
            .iter()
            .map(|p| {
                let v6 = p.addresses.iter().filter_map(|a| match a.addr() {
                    IpAddr::V6(a) => Some(a),
                    IpAddr::V4(_) => None,
                });
                let mut macs: Vec<MacAddr> = v6
                    .chain(snat.ipv6)
                    .map(MacAddr::solicited_node)
                    .chain([MacAddr::IPV6_ALL_NODES])
                    .collect();
                macs.sort_unstable();
                macs.dedup();
                macs
            })
            .collect();
        let min_mtu = ports.iter().map(|p| p.mtu).min().unwrap_or(DEFAULT_MTU);
        Ok(Network {
            ports,
            snat,
            fib4,
            fib6,
            own,
            joined,
            min_mtu,
        })
    }

    /// The ports, by port id.
    pub fn ports(&self) -> &[PortConfig] {
        &self.ports
    }

    /// The smallest MTU of any port: an IP packet up to this long fits wherever it goes.
    #[inline]
    pub fn min_mtu(&self) -> u16 {
        self.min_mtu
    }

    /// The MTU of `port` ([`DEFAULT_MTU`] for a port that does not exist).
    pub fn mtu(&self, port: u16) -> u16 {
        self.ports
            .get(usize::from(port))
            .map_or(DEFAULT_MTU, |p| p.mtu)
    }

    /// SNAT configuration.
    pub fn snat(&self) -> &SnatConfig {
        &self.snat
    }

    /// SNAT address for a family.
    #[inline]
    pub fn snat_addr(&self, ipv6: bool) -> Option<IpAddr> {
        if ipv6 {
            self.snat.ipv6.map(IpAddr::V6)
        } else {
            self.snat.ipv4.map(IpAddr::V4)
        }
    }

    /// Whether `ip` is one of the appliance's own addresses (port or SNAT address).
    #[inline]
    pub fn is_own(&self, ip: IpAddr) -> bool {
        self.own.contains(ip)
    }

    /// Whether `port` listens to the multicast MAC `mac` (IPv6 all-nodes, or the
    /// solicited-node group of one of the port's IPv6 addresses or of the SNAT address).
    /// VIPs are the tables' ([`crate::tables::Tables::joins`]).
    pub fn joins(&self, port: u16, mac: MacAddr) -> bool {
        self.joined
            .get(usize::from(port))
            .is_some_and(|j| j.binary_search(&mac).is_ok())
    }

    /// Longest-prefix route to `dst`.
    #[inline]
    pub fn route(&self, dst: IpAddr) -> Option<NextHop> {
        let (port, gateway) = match dst {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                let e = self.fib4.iter().find(|e| a & e.mask == e.net)?;
                (e.port, e.gateway)
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                let e = self.fib6.iter().find(|e| a & e.mask == e.net)?;
                (e.port, e.gateway)
            }
        };
        Some(NextHop {
            port,
            via: gateway.unwrap_or(dst),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(addr: &str, len: u8) -> IpNet {
        IpNet::new(addr.parse().unwrap(), len).unwrap()
    }

    fn network() -> Network {
        Network::new(
            vec![
                PortConfig {
                    mac: MacAddr([2, 0, 0, 0, 0, 1]),
                    addresses: vec![net("198.18.0.254", 24), net("2001:2::fe", 64)],
                    checksum: ChecksumCaps::empty(),
                    unfinished_rx_checksums: false,
                    mtu: DEFAULT_MTU,
                },
                PortConfig {
                    mac: MacAddr([2, 0, 0, 0, 0, 2]),
                    addresses: vec![net("198.18.1.254", 24)],
                    checksum: ChecksumCaps::all(),
                    unfinished_rx_checksums: false,
                    mtu: DEFAULT_MTU,
                },
            ],
            vec![StaticRoute {
                prefix: net("198.19.0.0", 16),
                next_hop: "198.18.1.1".parse().unwrap(),
                port: 1,
            }],
            SnatConfig {
                ipv4: Some("198.18.1.253".parse().unwrap()),
                ipv6: None,
                ports: PortRange {
                    first: 1024,
                    last: 65535,
                },
            },
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let n = network();
        let h = n.route("198.18.0.7".parse().unwrap()).unwrap();
        assert_eq!((h.port, h.via), (0, "198.18.0.7".parse().unwrap()));
        let h = n.route("198.19.3.4".parse().unwrap()).unwrap();
        assert_eq!((h.port, h.via), (1, "198.18.1.1".parse().unwrap()));
        assert_eq!(n.route("203.0.113.1".parse().unwrap()), None);
        assert_eq!(n.route("2001:2::9".parse().unwrap()).unwrap().port, 0);
    }

    #[test]
    fn ports_join_all_nodes_and_their_solicited_node_groups() {
        let n = network();
        let sn = |a: &str| MacAddr::solicited_node(a.parse().unwrap());
        assert_eq!(
            sn("2001:2::12:3456"),
            MacAddr([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
        );
        assert!(n.joins(0, MacAddr::IPV6_ALL_NODES));
        assert!(n.joins(1, MacAddr::IPV6_ALL_NODES));
        assert!(n.joins(0, sn("2001:2::fe")), "port 0's own address");
        assert!(!n.joins(1, sn("2001:2::fe")), "not port 1's");
        assert!(!n.joins(0, sn("2001:2::77")));
        assert!(!n.joins(2, MacAddr::IPV6_ALL_NODES), "no such port");
        assert!(
            !n.joins(0, MacAddr([0x01, 0, 0x5e, 0, 0, 1])),
            "no IPv4 groups"
        );
    }

    #[test]
    fn address_sets_find_members_scanned_or_searched() {
        for n in [0u8, 3, 16, 17, 200] {
            let members: Vec<IpAddr> = (0..n)
                .flat_map(|i| {
                    [
                        IpAddr::from([198, 18, 0, i]),
                        format!("2001:2::{i:x}").parse().unwrap(),
                    ]
                })
                .collect();
            let set = AddrSet::new(members.iter().rev().copied());
            for a in &members {
                assert!(set.contains(*a), "{n}: {a}");
            }
            for a in ["198.18.0.250", "2001:2::fa", "::ffff:198.18.0.251", "::1"] {
                assert!(!set.contains(a.parse().unwrap()), "{n}: {a}");
            }
        }
    }

    #[test]
    fn own_addresses_include_snat() {
        let n = network();
        assert!(n.is_own("198.18.1.253".parse().unwrap()));
        assert!(n.is_own("2001:2::fe".parse().unwrap()));
        assert!(!n.is_own("198.18.1.1".parse().unwrap()));
    }

    #[test]
    fn bad_networks_are_refused() {
        let e = Network::new(
            vec![],
            vec![StaticRoute {
                prefix: net("0.0.0.0", 0),
                next_hop: "198.18.0.1".parse().unwrap(),
                port: 3,
            }],
            SnatConfig {
                ipv4: None,
                ipv6: None,
                ports: PortRange {
                    first: 1024,
                    last: 2047,
                },
            },
        )
        .unwrap_err();
        assert!(matches!(e, NetError::NoSuchPort { port: 3, .. }));
        let e = Network::new(
            vec![PortConfig {
                mac: MacAddr::default(),
                addresses: vec![net("198.18.0.1", 32)],
                checksum: ChecksumCaps::empty(),
                unfinished_rx_checksums: false,
                mtu: DEFAULT_MTU,
            }],
            vec![],
            SnatConfig {
                ipv4: None,
                ipv6: None,
                ports: PortRange { first: 5, last: 4 },
            },
        )
        .unwrap_err();
        assert!(matches!(e, NetError::EmptySnatRange { .. }));
    }

    #[test]
    fn partitions_cover_the_range_without_overlap() {
        let r = PortRange {
            first: 1024,
            last: 65535,
        };
        let mut total = 0;
        let mut prev_last = 1023u32;
        for w in 0..3 {
            let p = r.partition(w, 3);
            assert_eq!(u32::from(p.first), prev_last + 1);
            prev_last = u32::from(p.last);
            total += p.len();
            assert_eq!(r.owner(p.first, 3), Some(w));
            assert_eq!(r.owner(p.last, 3), Some(w));
        }
        assert_eq!(total, r.len());
        assert_eq!(prev_last, 65535);
    }

    #[test]
    fn partition_arithmetic_matches_the_wide_formula() {
        // The u16 arithmetic against the obvious u32 one, over awkward sizes.
        let wide = |r: PortRange, w: u32, n: u32| {
            let share = r.len() / n;
            let first = u32::from(r.first) + w * share;
            let last = if w + 1 == n {
                u32::from(r.last)
            } else {
                first + share.saturating_sub(1)
            };
            (first, last)
        };
        for (first, last) in [(1024, 65535), (0, 65535), (1, 1), (5, 9), (1000, 1002)] {
            let r = PortRange { first, last };
            for n in 1..=7u16 {
                for w in 0..n {
                    let p = r.partition(w, n);
                    let (f, l) = wide(r, u32::from(w), u32::from(n));
                    if n > 1 {
                        assert_eq!(
                            (u32::from(p.first), u32::from(p.last)),
                            (f, l),
                            "{r} {w}/{n}"
                        );
                    } else {
                        assert_eq!(p, r);
                    }
                    if r.len() >= u32::from(n) {
                        for port in [p.first, p.last] {
                            assert_eq!(r.owner(port, n), Some(w), "{r} port {port} {w}/{n}");
                        }
                    }
                }
            }
        }
        assert_eq!(PortRange { first: 1, last: 1 }.owner(2, 3), None);
    }

    #[test]
    fn prefix_zero_matches_everything_of_its_family() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(net("0.0.0.0", 0).contains(&ip("198.18.0.1")));
        assert!(!net("0.0.0.0", 0).contains(&ip("2001:2::1")));
        assert!(net("2001:2::", 48).contains(&ip("2001:2:0:1::1")));
        assert!(!net("2001:2::", 48).contains(&ip("2001:3::1")));
        // Host bits are kept as written (an own address with its connected prefix).
        let own: IpNet = "198.18.0.1/24".parse().unwrap();
        assert_eq!(own.addr(), ip("198.18.0.1"));
        assert!(own.contains(&ip("198.18.0.200")));
        assert!(IpNet::new(ip("198.18.0.1"), 33).is_err());
    }

    #[test]
    fn macs_and_port_ranges_parse_and_print() {
        let mac: MacAddr = "02:00:5E:10:00:01".parse().unwrap();
        assert_eq!(mac, MacAddr([2, 0, 0x5e, 0x10, 0, 1]));
        assert_eq!(mac.to_string(), "02:00:5e:10:00:01");
        assert!(mac.is_unicast() && !mac.is_multicast());
        assert!(!MacAddr::BROADCAST.is_unicast() && MacAddr::BROADCAST.is_multicast());
        assert!(!MacAddr::default().is_unicast());
        for bad in [
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "2:0:5e:10:0:1",
            "zz:00:00:00:00:00",
        ] {
            assert_eq!(
                bad.parse::<MacAddr>().unwrap_err().to_string(),
                format!("{bad:?}: expected a MAC address like 02:00:00:00:00:01")
            );
        }
        let r: PortRange = "1024-65535".parse().unwrap();
        assert_eq!((r.first, r.last, r.len()), (1024, 65535, 64512));
        assert_eq!(r.to_string(), "1024-65535");
        assert_eq!("5000".parse::<PortRange>().map(|r| r.len()), Ok(1));
        assert_eq!(
            "2000-1000".parse::<PortRange>().unwrap_err().to_string(),
            "\"2000-1000\": the first port is above the last"
        );
        assert_eq!(
            "1024-70000".parse::<PortRange>().unwrap_err().to_string(),
            "\"1024-70000\": expected FIRST-LAST, e.g. \"1024-65535\""
        );
    }
}

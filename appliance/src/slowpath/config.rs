//! What the slow path is told about each port (MAC, own addresses, VIPs, SNAT addresses)
//! and how it paces itself, validated once into a [`PortState`] that answers "is this
//! address ours?".

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use smoltcp::wire::{EthernetAddress, Ipv4Cidr, Ipv6Cidr};

/// Addresses of one DPDK port, as the slow path needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortAddresses {
    /// The port's MAC: source of everything the slow path sends on it.
    pub mac: [u8; 6],
    /// The appliance's own addresses on this port with their prefix lengths. The prefixes
    /// define which neighbors are on-link and which source an ARP request or neighbor
    /// solicitation uses.
    pub own: Vec<(IpAddr, u8)>,
    /// VIPs answered on this port (ARP, NDP, echo) besides the own addresses.
    pub vips: Vec<IpAddr>,
    /// SNAT addresses answered on this port (ARP, NDP, echo): those inside its prefixes.
    /// Backends on this link address their full-NAT replies to them, so they must
    /// resolve here even when the SNAT address is not one of the port's own addresses.
    /// Static: [`SlowPathMsg::UpdateAddresses`](super::SlowPathMsg::UpdateAddresses)
    /// keeps them.
    pub snat: Vec<IpAddr>,
}

/// A neighbor entry from `appliance.yaml`: never learned over, never aged out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticNeighbor {
    /// Port the neighbor is reached through.
    pub port: u16,
    /// Neighbor address.
    pub ip: IpAddr,
    /// Neighbor MAC.
    pub mac: [u8; 6],
}

/// Pacing of resolution, refresh and ICMP errors. The defaults follow common host
/// practice: one probe per second per target (RFC 4861 `RETRANS_TIMER`), three probes
/// (`MAX_MULTICAST_SOLICIT`), refresh after a minute; ICMP errors at most 100/s in all
/// and 10/s to any one address (Linux allows 1/s per peer with a burst of 6, and 1000/s in
/// all: a little more per source here, so that `traceroute`'s three probes per hop and a
/// few retried oversized datagrams all get their answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowPathTuning {
    /// Minimum time between two probes (ARP request / NS) for the same target.
    pub resolve_interval: Duration,
    /// Unanswered probes after which a first resolution is abandoned.
    pub resolve_probes: u32,
    /// Age of a learned entry at which refresh probes start.
    pub refresh_after: Duration,
    /// Age at which an unrefreshed learned entry is removed (and the removal published).
    pub expire_after: Duration,
    /// Sustained rate of the ICMP errors the slow path sends (rejected flows, time
    /// exceeded, Frag Needed / Packet Too Big), all destinations together, per second.
    pub reject_rate_per_sec: u32,
    /// Burst of ICMP errors allowed above that rate.
    pub reject_burst: u32,
    /// Sustained rate of ICMP errors to any one address (the offending datagram's
    /// source), per second.
    pub icmp_error_rate_per_source: u32,
    /// Burst of ICMP errors to one address.
    pub icmp_error_burst_per_source: u32,
    /// Addresses whose ICMP error rate is tracked at once (a bounded table; see
    /// `per_source`).
    pub icmp_error_sources: usize,
    /// Capacity of learned entries plus pending resolutions (static entries not counted).
    pub max_neighbors: usize,
}

impl Default for SlowPathTuning {
    fn default() -> Self {
        Self {
            resolve_interval: Duration::from_secs(1),
            resolve_probes: 3,
            refresh_after: Duration::from_secs(60),
            expire_after: Duration::from_secs(75),
            reject_rate_per_sec: 100,
            reject_burst: 10,
            icmp_error_rate_per_source: 10,
            icmp_error_burst_per_source: 10,
            icmp_error_sources: 4096,
            max_neighbors: 65_536,
        }
    }
}

/// Everything [`SlowPath::new`](super::SlowPath::new) needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlowPathConfig {
    /// Ports by DPDK port id.
    pub ports: BTreeMap<u16, PortAddresses>,
    /// Preloaded neighbor entries.
    pub static_neighbors: Vec<StaticNeighbor>,
    /// Pacing.
    pub tuning: SlowPathTuning,
}

/// A slow-path configuration error; each names the port or neighbor and the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SlowPathError {
    /// An own address has a prefix longer than its family allows.
    #[error("slow path port {port}: own address {addr}/{prefix}: prefix longer than {max} bits")]
    PrefixTooLong {
        /// Port id.
        port: u16,
        /// The address.
        addr: IpAddr,
        /// The prefix given.
        prefix: u8,
        /// The family's maximum.
        max: u8,
    },
    /// An own, VIP or SNAT address that cannot be a host address (unspecified,
    /// multicast, broadcast, loopback).
    #[error("slow path port {port}: {field} {addr}: not a unicast host address")]
    NotUnicast {
        /// Port id.
        port: u16,
        /// `own`, `vips` or `snat`.
        field: &'static str,
        /// The address.
        addr: IpAddr,
    },
    /// A port MAC or static neighbor MAC that is multicast, broadcast or all-zero.
    #[error("{object}: mac {mac}: not a unicast MAC address")]
    MacNotUnicast {
        /// `slow path port N` or `static neighbor IP`.
        object: String,
        /// The MAC, as text.
        mac: String,
    },
    /// A static neighbor on a port the slow path does not know.
    #[error("static neighbor {ip}: port {port} is not configured")]
    UnknownPort {
        /// Neighbor address.
        ip: IpAddr,
        /// The unknown port.
        port: u16,
    },
    /// An inconsistent tuning value.
    #[error("slow path tuning: {field}: {reason}")]
    Tuning {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl SlowPathTuning {
    /// Checks the values against each other.
    ///
    /// # Errors
    /// [`SlowPathError::Tuning`] naming the first offending field.
    pub fn validate(&self) -> Result<(), SlowPathError> {
        let bad = |field, reason| Err(SlowPathError::Tuning { field, reason });
        if self.resolve_interval.is_zero() {
            return bad("resolve_interval", "must be positive");
        }
        if self.resolve_probes == 0 {
            return bad("resolve_probes", "must be at least 1");
        }
        if self.expire_after <= self.refresh_after {
            return bad("expire_after", "must be longer than refresh_after");
        }
        if self.reject_burst == 0 && self.reject_rate_per_sec != 0 {
            return bad(
                "reject_burst",
                "must be at least 1 when rejects are enabled",
            );
        }
        if self.icmp_error_burst_per_source == 0 && self.icmp_error_rate_per_source != 0 {
            return bad(
                "icmp_error_burst_per_source",
                "must be at least 1 when ICMP errors are enabled",
            );
        }
        if self.icmp_error_sources == 0 {
            return bad("icmp_error_sources", "must be at least 1");
        }
        Ok(())
    }
}

/// A port's addresses, validated and indexed.
#[derive(Clone, Debug)]
pub(crate) struct PortState {
    pub(crate) mac: EthernetAddress,
    own_v4: Vec<Ipv4Cidr>,
    own_v6: Vec<Ipv6Cidr>,
    /// The SNAT addresses it answers for, kept across address updates.
    pub(crate) snat: Vec<IpAddr>,
    /// Own addresses, VIPs and SNAT addresses: everything this port answers for (a set,
    /// so an SNAT address that is also an own address is answered once).
    answers: BTreeSet<IpAddr>,
}

pub(crate) fn mac_text(mac: [u8; 6]) -> String {
    EthernetAddress(mac).to_string()
}

/// A MAC a station can have: not multicast, not broadcast, not all-zero.
pub(crate) fn is_unicast_mac(mac: EthernetAddress) -> bool {
    mac.is_unicast() && mac.0 != [0; 6]
}

pub(crate) fn check_mac(
    object: impl FnOnce() -> String,
    mac: [u8; 6],
) -> Result<(), SlowPathError> {
    if is_unicast_mac(EthernetAddress(mac)) {
        Ok(())
    } else {
        Err(SlowPathError::MacNotUnicast {
            object: object(),
            mac: mac_text(mac),
        })
    }
}

/// An address a host on the wire can have: not unspecified, multicast, broadcast or
/// loopback (RFC 1122 §3.2.1.3). Used for our own addresses and for whom we answer.
pub(crate) fn is_host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback())
        }
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

impl PortState {
    /// Validates one port's addresses.
    pub(crate) fn new(port: u16, addrs: &PortAddresses) -> Result<Self, SlowPathError> {
        check_mac(|| format!("slow path port {port}"), addrs.mac)?;
        let mut state = Self {
            mac: EthernetAddress(addrs.mac),
            own_v4: Vec::new(),
            own_v6: Vec::new(),
            snat: addrs.snat.clone(),
            answers: BTreeSet::new(),
        };
        for &(addr, prefix) in &addrs.own {
            if !is_host_address(addr) {
                return Err(SlowPathError::NotUnicast {
                    port,
                    field: "own",
                    addr,
                });
            }
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix > max {
                return Err(SlowPathError::PrefixTooLong {
                    port,
                    addr,
                    prefix,
                    max,
                });
            }
            match addr {
                IpAddr::V4(a) => state.own_v4.push(Ipv4Cidr::new(a, prefix)),
                IpAddr::V6(a) => state.own_v6.push(Ipv6Cidr::new(a, prefix)),
            }
            state.answers.insert(addr);
        }
        let others = addrs.vips.iter().map(|&a| ("vips", a));
        for (field, addr) in others.chain(addrs.snat.iter().map(|&a| ("snat", a))) {
            if !is_host_address(addr) {
                return Err(SlowPathError::NotUnicast { port, field, addr });
            }
            state.answers.insert(addr);
        }
        Ok(state)
    }

    /// Whether this port answers ARP/NDP/echo for `ip` (own address, VIP or SNAT address).
    pub(crate) fn answers_for(&self, ip: IpAddr) -> bool {
        self.answers.contains(&ip)
    }

    /// Whether `ip` lies in one of the port's own prefixes (IPv6 link-local always does).
    pub(crate) fn on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.own_v4.iter().any(|c| c.contains_addr(&a)),
            IpAddr::V6(a) => {
                a.is_unicast_link_local() || self.own_v6.iter().any(|c| c.contains_addr(&a))
            }
        }
    }

    /// Source for an ARP request to `target`: the own address whose prefix holds it, else
    /// the first own IPv4 address.
    pub(crate) fn source_v4_for(&self, target: Ipv4Addr) -> Option<Ipv4Addr> {
        self.own_v4
            .iter()
            .find(|c| c.contains_addr(&target))
            .or_else(|| self.own_v4.first())
            .map(Ipv4Cidr::address)
    }

    /// Source for a neighbor solicitation of `target`, chosen as for IPv4.
    pub(crate) fn source_v6_for(&self, target: Ipv6Addr) -> Option<Ipv6Addr> {
        self.own_v6
            .iter()
            .find(|c| c.contains_addr(&target))
            .or_else(|| self.own_v6.first())
            .map(Ipv6Cidr::address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

    fn port(own: Vec<(IpAddr, u8)>, vips: Vec<IpAddr>) -> PortAddresses {
        PortAddresses {
            mac: MAC,
            own,
            vips,
            snat: vec![],
        }
    }

    #[test]
    fn answers_for_own_and_vips_only() {
        let state = PortState::new(
            0,
            &port(
                vec![("198.18.0.1".parse().unwrap(), 24)],
                vec!["198.19.0.10".parse().unwrap()],
            ),
        )
        .unwrap();
        assert!(state.answers_for("198.18.0.1".parse().unwrap()));
        assert!(state.answers_for("198.19.0.10".parse().unwrap()));
        assert!(!state.answers_for("198.18.0.2".parse().unwrap()));
        assert!(state.on_link("198.18.0.200".parse().unwrap()));
        assert!(!state.on_link("198.19.0.10".parse().unwrap()));
    }

    #[test]
    fn answers_for_snat_addresses_once_without_making_them_a_source() {
        let own4: IpAddr = "198.18.1.1".parse().unwrap();
        let snat4: IpAddr = "198.18.1.2".parse().unwrap();
        let addrs = PortAddresses {
            snat: vec![snat4, own4],
            ..port(vec![(own4, 24)], vec![])
        };
        let state = PortState::new(0, &addrs).unwrap();
        assert!(state.answers_for(snat4));
        assert!(state.answers_for(own4), "SNAT equal to the own address");
        assert_eq!(state.answers.len(), 2, "{:?}", state.answers);
        // An SNAT address is never the source of our own probes.
        assert_eq!(
            state.source_v4_for("198.18.1.9".parse().unwrap()),
            Some("198.18.1.1".parse().unwrap())
        );
        let bad = PortAddresses {
            snat: vec!["0.0.0.0".parse().unwrap()],
            ..port(vec![], vec![])
        };
        assert_eq!(
            PortState::new(1, &bad).unwrap_err().to_string(),
            "slow path port 1: snat 0.0.0.0: not a unicast host address"
        );
    }

    #[test]
    fn source_prefers_the_matching_prefix() {
        let state = PortState::new(
            0,
            &port(
                vec![
                    ("198.18.0.1".parse().unwrap(), 24),
                    ("198.18.5.1".parse().unwrap(), 24),
                    ("2001:2::1".parse().unwrap(), 64),
                ],
                vec![],
            ),
        )
        .unwrap();
        assert_eq!(
            state.source_v4_for("198.18.5.9".parse().unwrap()),
            Some("198.18.5.1".parse().unwrap())
        );
        assert_eq!(
            state.source_v4_for("198.19.9.9".parse().unwrap()),
            Some("198.18.0.1".parse().unwrap())
        );
        assert_eq!(
            state.source_v6_for("fe80::1".parse().unwrap()),
            Some("2001:2::1".parse().unwrap())
        );
    }

    #[test]
    fn rejects_bad_prefix_address_and_mac() {
        let err = PortState::new(3, &port(vec![("198.18.0.1".parse().unwrap(), 33)], vec![]));
        assert_eq!(
            err.unwrap_err().to_string(),
            "slow path port 3: own address 198.18.0.1/33: prefix longer than 32 bits"
        );
        let err = PortState::new(3, &port(vec![], vec!["ff02::1".parse().unwrap()]));
        assert_eq!(
            err.unwrap_err().to_string(),
            "slow path port 3: vips ff02::1: not a unicast host address"
        );
        let bad_mac = PortAddresses {
            mac: [0xff; 6],
            own: vec![],
            vips: vec![],
            snat: vec![],
        };
        assert_eq!(
            PortState::new(3, &bad_mac).unwrap_err().to_string(),
            "slow path port 3: mac ff-ff-ff-ff-ff-ff: not a unicast MAC address"
        );
    }

    #[test]
    fn tuning_validation_names_the_field() {
        let t = SlowPathTuning {
            expire_after: Duration::from_secs(60),
            ..Default::default()
        };
        assert_eq!(
            t.validate().unwrap_err().to_string(),
            "slow path tuning: expire_after: must be longer than refresh_after"
        );
        assert!(SlowPathTuning::default().validate().is_ok());
    }
}

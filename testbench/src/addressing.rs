//! The address plan of a topology, with defaults that match `config/examples/dns`.
//!
//! One L2 segment carries three subnets, so that replies must be routed through the
//! appliance (or the kernel stand-in) rather than going host to host:
//!
//! | subnet | IPv4 | IPv6 | who |
//! |---|---|---|---|
//! | VIP | 198.18.0.0/24 | 2001:2::/64 | appliance .1 / ::1, VIP .10 / ::10, SNAT .2 / ::2 |
//! | backends | 198.18.1.0/24 | 2001:2:0:1::/64 | gateway .1 / ::1, backends from .11 / ::11 |
//! | clients | 198.19.0.0/24 | 2001:2:0:100::/64 | gateway .1 / ::1, clients from .100 / ::100 |
//!
//! Only the benchmarking ranges 198.18.0.0/15 and 2001:2::/48 are accepted.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

/// An interface address with its prefix length, e.g. `198.18.1.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IfAddr {
    /// The address.
    pub addr: IpAddr,
    /// The prefix length.
    pub prefix_len: u8,
}

impl IfAddr {
    /// The network this address is in, as `network/len` text for `ip route`.
    pub fn network(&self) -> String {
        let net = match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.prefix_len)))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.prefix_len)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        format!("{net}/{}", self.prefix_len)
    }

    /// Whether `other` lies in this address's network.
    pub fn contains(&self, other: IpAddr) -> bool {
        let other = IfAddr {
            addr: other,
            prefix_len: self.prefix_len,
        };
        self.addr.is_ipv4() == other.addr.is_ipv4() && self.network() == other.network()
    }
}

impl fmt::Display for IfAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

/// Where every address of a topology comes from. [`Addressing::default`] is the plan in
/// the module docs; change fields to move things, [`Addressing::validate`] checks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addressing {
    /// Appliance address on the VIP subnet (also fixes that subnet's prefix).
    pub vip_gateway_v4: IfAddr,
    /// Appliance address on the backend subnet; the backends' default gateway.
    pub backend_gateway_v4: IfAddr,
    /// Appliance address on the client subnet; the clients' gateway to the VIP subnet.
    pub client_gateway_v4: IfAddr,
    /// IPv6 counterpart of `vip_gateway_v4`.
    pub vip_gateway_v6: IfAddr,
    /// IPv6 counterpart of `backend_gateway_v4`.
    pub backend_gateway_v6: IfAddr,
    /// IPv6 counterpart of `client_gateway_v4`.
    pub client_gateway_v6: IfAddr,
    /// The IPv4 VIP.
    pub vip_v4: Ipv4Addr,
    /// The IPv6 VIP.
    pub vip_v6: Ipv6Addr,
    /// The IPv4 SNAT address (full-NAT mode): in the VIP subnet (the default; backends
    /// reach it through their gateway) or in the backend subnet (on the backends' link:
    /// they resolve it themselves, and the appliance must answer ARP for it).
    pub snat_v4: Ipv4Addr,
    /// The IPv6 SNAT address.
    pub snat_v6: Ipv6Addr,
    /// Address of backend 0; backend `i` gets this plus `i`.
    pub first_backend_v4: Ipv4Addr,
    /// IPv6 address of backend 0.
    pub first_backend_v6: Ipv6Addr,
    /// Address of client 0's first address; see [`Addressing::client_v4`].
    pub first_client_v4: Ipv4Addr,
    /// IPv6 address of client 0's first address.
    pub first_client_v6: Ipv6Addr,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

const fn v6(s2: u16, s3: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 2, s2, s3, 0, 0, 0, host)
}

fn ifaddr(addr: impl Into<IpAddr>, prefix_len: u8) -> IfAddr {
    IfAddr {
        addr: addr.into(),
        prefix_len,
    }
}

impl Default for Addressing {
    fn default() -> Self {
        Addressing {
            vip_gateway_v4: ifaddr(v4(198, 18, 0, 1), 24),
            backend_gateway_v4: ifaddr(v4(198, 18, 1, 1), 24),
            client_gateway_v4: ifaddr(v4(198, 19, 0, 1), 24),
            vip_gateway_v6: ifaddr(v6(0, 0, 1), 64),
            backend_gateway_v6: ifaddr(v6(0, 1, 1), 64),
            client_gateway_v6: ifaddr(v6(0, 0x100, 1), 64),
            vip_v4: v4(198, 18, 0, 10),
            vip_v6: v6(0, 0, 0x10),
            snat_v4: v4(198, 18, 0, 2),
            snat_v6: v6(0, 0, 2),
            first_backend_v4: v4(198, 18, 1, 11),
            first_backend_v6: v6(0, 1, 0x11),
            first_client_v4: v4(198, 19, 0, 100),
            first_client_v6: v6(0, 0x100, 0x100),
        }
    }
}

/// Whether `addr` is in 198.18.0.0/15 or 2001:2::/48.
pub fn is_benchmark_addr(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => u32::from(a) >> 17 == u32::from(v4(198, 18, 0, 0)) >> 17,
        IpAddr::V6(a) => u128::from(a) >> 80 == u128::from(v6(0, 0, 0)) >> 80,
    }
}

impl Addressing {
    /// The appliance's own interface addresses: VIP, backend and client gateways, IPv4
    /// then IPv6. The kernel stand-in puts exactly these on its bridge.
    pub fn appliance_addrs(&self) -> [IfAddr; 6] {
        [
            self.vip_gateway_v4,
            self.backend_gateway_v4,
            self.client_gateway_v4,
            self.vip_gateway_v6,
            self.backend_gateway_v6,
            self.client_gateway_v6,
        ]
    }

    /// IPv4 address of backend `index`, with the backend subnet's prefix.
    pub fn backend_v4(&self, index: usize) -> Result<IfAddr> {
        self.host_v4(
            self.first_backend_v4,
            index,
            self.backend_gateway_v4,
            "backend",
        )
    }

    /// IPv6 address of backend `index`.
    pub fn backend_v6(&self, index: usize) -> Result<IfAddr> {
        self.host_v6(
            self.first_backend_v6,
            index,
            self.backend_gateway_v6,
            "backend",
        )
    }

    /// IPv4 address `which` of client `index` when each client has `per_client` addresses.
    pub fn client_v4(&self, index: usize, which: usize, per_client: usize) -> Result<IfAddr> {
        let n = index * per_client + which;
        self.host_v4(self.first_client_v4, n, self.client_gateway_v4, "client")
    }

    /// IPv6 address `which` of client `index`.
    pub fn client_v6(&self, index: usize, which: usize, per_client: usize) -> Result<IfAddr> {
        let n = index * per_client + which;
        self.host_v6(self.first_client_v6, n, self.client_gateway_v6, "client")
    }

    fn host_v4(&self, first: Ipv4Addr, n: usize, gw: IfAddr, role: &str) -> Result<IfAddr> {
        let addr = u32::try_from(n)
            .ok()
            .and_then(|n| u32::from(first).checked_add(n))
            .map(Ipv4Addr::from);
        self.host(addr.map(IpAddr::V4), n, gw, role)
    }

    fn host_v6(&self, first: Ipv6Addr, n: usize, gw: IfAddr, role: &str) -> Result<IfAddr> {
        let addr = u128::try_from(n)
            .ok()
            .and_then(|n| u128::from(first).checked_add(n))
            .map(Ipv6Addr::from);
        self.host(addr.map(IpAddr::V6), n, gw, role)
    }

    fn host(&self, addr: Option<IpAddr>, n: usize, gw: IfAddr, role: &str) -> Result<IfAddr> {
        let what = format!("{role} address #{n}");
        let addr = addr.ok_or_else(|| Error::invalid(&what, "overflows the address space"))?;
        if !gw.contains(addr) {
            return Err(Error::invalid(
                what,
                format!("{addr} leaves the {role} subnet {}", gw.network()),
            ));
        }
        let snat = [IpAddr::V4(self.snat_v4), IpAddr::V6(self.snat_v6)];
        if self.appliance_addrs().iter().any(|a| a.addr == addr) || snat.contains(&addr) {
            return Err(Error::invalid(
                what,
                format!("{addr} is an appliance address"),
            ));
        }
        Ok(ifaddr(addr, gw.prefix_len))
    }

    /// Checks that every address is in a benchmarking range, that the VIPs are in the VIP
    /// subnet and the SNAT addresses in the VIP or the backend subnet, and that the three
    /// subnets are distinct.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        let named: [(&str, IpAddr); 14] = [
            ("vip_gateway_v4", self.vip_gateway_v4.addr),
            ("backend_gateway_v4", self.backend_gateway_v4.addr),
            ("client_gateway_v4", self.client_gateway_v4.addr),
            ("vip_gateway_v6", self.vip_gateway_v6.addr),
            ("backend_gateway_v6", self.backend_gateway_v6.addr),
            ("client_gateway_v6", self.client_gateway_v6.addr),
            ("vip_v4", self.vip_v4.into()),
            ("vip_v6", self.vip_v6.into()),
            ("snat_v4", self.snat_v4.into()),
            ("snat_v6", self.snat_v6.into()),
            ("first_backend_v4", self.first_backend_v4.into()),
            ("first_backend_v6", self.first_backend_v6.into()),
            ("first_client_v4", self.first_client_v4.into()),
            ("first_client_v6", self.first_client_v6.into()),
        ];
        for (field, addr) in named {
            if !is_benchmark_addr(addr) {
                return Err(Error::invalid(
                    format!("Addressing::{field}"),
                    format!("{addr} is outside 198.18.0.0/15 and 2001:2::/48"),
                ));
            }
        }
        for (field, addr, subnet) in [
            ("vip_v4", IpAddr::from(self.vip_v4), self.vip_gateway_v4),
            ("vip_v6", self.vip_v6.into(), self.vip_gateway_v6),
        ] {
            if !subnet.contains(addr) {
                return Err(Error::invalid(
                    format!("Addressing::{field}"),
                    format!("{addr} is not in the VIP subnet {}", subnet.network()),
                ));
            }
        }
        for (field, addr, subnets) in [
            (
                "snat_v4",
                IpAddr::from(self.snat_v4),
                [self.vip_gateway_v4, self.backend_gateway_v4],
            ),
            (
                "snat_v6",
                self.snat_v6.into(),
                [self.vip_gateway_v6, self.backend_gateway_v6],
            ),
        ] {
            if !subnets.iter().any(|s| s.contains(addr)) {
                return Err(Error::invalid(
                    format!("Addressing::{field}"),
                    format!(
                        "{addr} is in neither the VIP subnet {} nor the backend subnet {}",
                        subnets[0].network(),
                        subnets[1].network()
                    ),
                ));
            }
        }
        for gw in self.appliance_addrs() {
            let max = if gw.addr.is_ipv4() { 32 } else { 128 };
            if gw.prefix_len == 0 || gw.prefix_len > max {
                return Err(Error::invalid(
                    format!("Addressing gateway {gw}"),
                    format!("prefix length must be 1 to {max}"),
                ));
            }
        }
        let nets = self.appliance_addrs().map(|a| a.network());
        for i in 0..nets.len() {
            if nets[i + 1..].contains(&nets[i]) {
                return Err(Error::invalid(
                    "Addressing gateways",
                    format!("subnet {} is used twice", nets[i]),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_dns_example() {
        let a = Addressing::default();
        a.validate().expect("defaults are valid");
        assert_eq!(a.vip_v4.to_string(), "198.18.0.10");
        assert_eq!(a.vip_v6.to_string(), "2001:2::10");
        assert_eq!(a.backend_v4(0).unwrap().to_string(), "198.18.1.11/24");
        assert_eq!(a.backend_v4(2).unwrap().to_string(), "198.18.1.13/24");
        assert_eq!(a.backend_v6(2).unwrap().to_string(), "2001:2:0:1::13/64");
        assert_eq!(a.client_v4(1, 0, 1).unwrap().to_string(), "198.19.0.101/24");
        assert_eq!(
            a.client_v6(0, 0, 1).unwrap().to_string(),
            "2001:2:0:100::100/64"
        );
        assert_eq!(a.client_v4(1, 2, 4).unwrap().to_string(), "198.19.0.106/24");
        assert_eq!(
            a.appliance_addrs().map(|x| x.to_string()),
            [
                "198.18.0.1/24",
                "198.18.1.1/24",
                "198.19.0.1/24",
                "2001:2::1/64",
                "2001:2:0:1::1/64",
                "2001:2:0:100::1/64"
            ]
        );
    }

    #[test]
    fn networks_are_masked() {
        assert_eq!(ifaddr(v4(198, 18, 1, 77), 24).network(), "198.18.1.0/24");
        assert_eq!(ifaddr(v6(0, 0x100, 5), 64).network(), "2001:2:0:100::/64");
        assert_eq!(ifaddr(v4(198, 18, 1, 77), 0).network(), "0.0.0.0/0");
    }

    #[test]
    fn hosts_must_stay_in_their_subnet() {
        let a = Addressing::default();
        assert!(a.backend_v4(244).is_ok()); // 198.18.1.255 is still inside the /24
        let err = a.backend_v4(245).expect_err("198.18.2.0 leaves the subnet");
        assert!(err.to_string().contains("backend address #245"), "{err}");
    }

    #[test]
    fn hosts_must_not_take_the_gateway() {
        let a = Addressing {
            first_backend_v4: v4(198, 18, 1, 0),
            ..Addressing::default()
        };
        assert!(a.backend_v4(0).is_ok());
        assert!(a.backend_v4(1).is_err());
    }

    #[test]
    fn only_benchmark_ranges_are_valid() {
        assert!(is_benchmark_addr(v4(198, 19, 255, 255).into()));
        assert!(!is_benchmark_addr(v4(198, 20, 0, 0).into()));
        assert!(!is_benchmark_addr(v4(10, 0, 0, 1).into()));
        assert!(is_benchmark_addr(v6(0, 0xffff, 1).into()));
        assert!(!is_benchmark_addr(v6(1, 0, 1).into()));
        assert!(!is_benchmark_addr("2001:3::1".parse().unwrap()));
        let bad = Addressing {
            vip_v4: v4(10, 0, 0, 10),
            ..Addressing::default()
        };
        let err = bad.validate().expect_err("10/8 is refused");
        assert!(err.to_string().contains("Addressing::vip_v4"), "{err}");
    }

    #[test]
    fn vip_and_snat_outside_their_subnets_are_refused() {
        let bad = Addressing {
            vip_v6: v6(0, 1, 0x10),
            ..Addressing::default()
        };
        let err = bad.validate().expect_err("vip in backend subnet");
        assert!(err.to_string().contains("vip_v6"), "{err}");
        let bad = Addressing {
            snat_v6: v6(0, 0x100, 2),
            ..Addressing::default()
        };
        let err = bad.validate().expect_err("snat in client subnet");
        assert!(err.to_string().contains("snat_v6"), "{err}");
    }

    #[test]
    fn snat_on_the_backend_link_is_valid_and_never_a_backend() {
        let a = Addressing {
            snat_v4: v4(198, 18, 1, 2),
            snat_v6: v6(0, 1, 2),
            ..Addressing::default()
        };
        a.validate().expect("SNAT in the backend subnet");
        let clash = Addressing {
            first_backend_v4: v4(198, 18, 1, 2),
            ..a
        };
        let err = clash
            .backend_v4(0)
            .expect_err("backend on the SNAT address");
        assert!(err.to_string().contains("appliance address"), "{err}");
    }
}

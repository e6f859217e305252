//! The scale-out fabric's addresses and names: one router, one client, the backends on a
//! shared link, and appliance *k* (1 to [`MAX_APPLIANCES`]) with an edge link, a
//! management link and a port on the backends' link. The numbers follow
//! `deploy/udplb-appliance.yaml` (appliance 1: edge 198.18.11.2, management 198.18.21.2,
//! router 198.18.21.1), so the BIRD configurations of `deploy/bird/` apply unchanged
//! where they name addresses (see [`super::bird`]).
//!
//! | link | subnet | router | other side |
//! |---|---|---|---|
//! | client | 198.19.1.0/24 | .1 | client .100 |
//! | edge *k* (DPDK port `edge`) | 198.18.(10+*k*).0/24 | .1 | appliance .2 (the VIP's BGP next hop) |
//! | management *k* (kernel, BGP) | 198.18.21.4(*k*-1)/30 | +1 | appliance +2 |
//! | backends (a bridge in the router) | 198.18.128.0/24 | .1 | appliance *k* port `backends` .(10+*k*), its SNAT .(20+*k*); backend *j* .(101+*j*) |
//!
//! The VIP 198.19.0.10 lies in the prefix deploy/bird/router.conf accepts
//! (198.19.0.0/24, host routes); every management address in its `neighbor range`
//! 198.18.20.0/22. IPv4 only.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::cleanup::DPDK_RUNTIME;
use crate::error::Result;
use crate::names::RunId;

/// Appliances a fabric can hold (three serve, a fourth joins).
pub const MAX_APPLIANCES: usize = 4;

/// The VIP every appliance announces.
pub const VIP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);

/// The UDP port of the VIP's listener and of the backends' echo servers.
pub const PORT: u16 = 7000;

/// The client's address.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 100);

/// The router's address on the client link.
pub const ROUTER_CLIENT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 19, 1, 1);

/// The router's address on the backends' link (their default gateway).
pub const ROUTER_BACKEND_SIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 128, 1);

/// Prefix length of the client, edge and backend links.
pub const LINK_PREFIX: u8 = 24;

/// Prefix length of the management links.
pub const MGMT_PREFIX: u8 = 30;

/// The backends' subnet, as the router's `ip rule` for return traffic names it.
pub const BACKEND_NET: &str = "198.18.128.0/24";

/// Addresses of appliance `k` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplianceAddrs {
    /// Its index, 1 to [`MAX_APPLIANCES`].
    pub k: usize,
    /// Its DPDK edge port's address (the VIP's BGP next hop).
    pub edge: Ipv4Addr,
    /// The router's address on that edge link (the appliance's default route).
    pub router_edge: Ipv4Addr,
    /// Its management address (BGP session, BIRD router id).
    pub mgmt: Ipv4Addr,
    /// The router's management address on that link.
    pub router_mgmt: Ipv4Addr,
    /// Its DPDK backends port's address (the return routes' next hop).
    pub backend_port: Ipv4Addr,
    /// Its SNAT address (full NAT), on the backends' link.
    pub snat: Ipv4Addr,
}

/// The addresses of appliance `k`, 1 to [`MAX_APPLIANCES`].
///
/// # Panics
/// If `k` is out of range (a scenario bug, not an input).
pub fn appliance(k: usize) -> ApplianceAddrs {
    assert!(
        (1..=MAX_APPLIANCES).contains(&k),
        "appliance {k} out of range"
    );
    // k ≤ 4: every octet below fits in a u8.
    let k8 = u8::try_from(k).unwrap_or(u8::MAX);
    let mgmt_base = 4 * (k8 - 1);
    ApplianceAddrs {
        k,
        edge: Ipv4Addr::new(198, 18, 10 + k8, 2),
        router_edge: Ipv4Addr::new(198, 18, 10 + k8, 1),
        mgmt: Ipv4Addr::new(198, 18, 21, mgmt_base + 2),
        router_mgmt: Ipv4Addr::new(198, 18, 21, mgmt_base + 1),
        backend_port: Ipv4Addr::new(198, 18, 128, 10 + k8),
        snat: Ipv4Addr::new(198, 18, 128, 20 + k8),
    }
}

/// The address of backend `j` (0-based; at most 100 backends).
///
/// # Panics
/// If `j` ≥ 100.
pub fn backend(j: usize) -> Ipv4Addr {
    assert!(j < 100, "backend {j} out of range");
    Ipv4Addr::new(198, 18, 128, 101 + u8::try_from(j).unwrap_or(0))
}

/// The name backend `j` answers with.
pub fn backend_name(j: usize) -> String {
    format!("backend-{j}")
}

/// Interface and namespace names of one fabric run. Namespaces are `ulbtb-<pid>-<seq>-<role>`
/// (so `testbench cleanup` knows them); interface names carry the run's tag.
#[derive(Clone, Debug)]
pub struct Names {
    id: RunId,
}

/// Prefix of the router's management interfaces: BFD runs on `<prefix>*`.
pub const MGMT_IF_PREFIX: &str = "ham";

impl Names {
    /// Names for run `id`.
    pub fn new(id: RunId) -> Names {
        Names { id }
    }

    /// The run's identity.
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The router's namespace.
    pub fn router_ns(&self) -> String {
        self.id.netns("r")
    }

    /// The client's namespace.
    pub fn client_ns(&self) -> String {
        self.id.netns("c")
    }

    /// Backend `j`'s namespace.
    pub fn backend_ns(&self, j: usize) -> String {
        self.id.netns(&format!("b{j}"))
    }

    /// Appliance `k`'s namespace.
    pub fn appliance_ns(&self, k: usize) -> String {
        self.id.netns(&format!("a{k}"))
    }

    /// The backends' bridge in the router namespace.
    ///
    /// # Errors
    /// The name would be too long (cannot happen for real pids).
    pub fn backend_bridge(&self) -> Result<String> {
        self.id.ifname("hab")
    }

    /// The router's end of the client link.
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn router_client_if(&self) -> Result<String> {
        self.id.ifname("hac")
    }

    /// The router's end of backend `j`'s link (a bridge port).
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn router_backend_if(&self, j: usize) -> Result<String> {
        self.id.ifname(&format!("hb{j}x"))
    }

    /// The router's end of appliance `k`'s edge link.
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn router_edge_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("hae{k}"))
    }

    /// The router's end of appliance `k`'s management link (matches [`MGMT_IF_PREFIX`]).
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn router_mgmt_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("{MGMT_IF_PREFIX}{k}"))
    }

    /// The router's end (a bridge port) of appliance `k`'s backends port.
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn router_appliance_backend_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("hak{k}"))
    }

    /// Appliance `k`'s edge veth (DPDK `net_af_packet`).
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn edge_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("hde{k}"))
    }

    /// Appliance `k`'s backends veth (DPDK `net_af_packet`).
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn backends_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("hdb{k}"))
    }

    /// Appliance `k`'s management veth (kernel; BGP and BFD).
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn mgmt_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("hdm{k}"))
    }

    /// Appliance `k`'s liveness TAP (`announce.liveness_interface`).
    ///
    /// # Errors
    /// As [`Names::backend_bridge`].
    pub fn liveness_if(&self, k: usize) -> Result<String> {
        self.id.ifname(&format!("hlv{k}"))
    }

    /// Appliance `k`'s DPDK `--file-prefix`: named after the run, so that `testbench
    /// cleanup` recognises its runtime directory when a killed run left it.
    pub fn dpdk_prefix(&self, k: usize) -> String {
        format!("{}-a{k}", self.id.stem())
    }

    /// Appliance `k`'s DPDK runtime directory (EAL makes it even with `--no-shconf`).
    pub fn dpdk_runtime_dir(&self, k: usize) -> PathBuf {
        Path::new(DPDK_RUNTIME).join(self.dpdk_prefix(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::MAX_IFNAME;

    #[test]
    fn appliance_one_matches_the_deploy_example() {
        let a = appliance(1);
        assert_eq!(a.edge, Ipv4Addr::new(198, 18, 11, 2));
        assert_eq!(a.router_edge, Ipv4Addr::new(198, 18, 11, 1));
        assert_eq!(a.mgmt, Ipv4Addr::new(198, 18, 21, 2));
        assert_eq!(a.router_mgmt, Ipv4Addr::new(198, 18, 21, 1));
        let d = appliance(4);
        assert_eq!(d.edge, Ipv4Addr::new(198, 18, 14, 2));
        assert_eq!(d.mgmt, Ipv4Addr::new(198, 18, 21, 14));
        assert_eq!(d.router_mgmt, Ipv4Addr::new(198, 18, 21, 13));
        assert_eq!(d.backend_port, Ipv4Addr::new(198, 18, 128, 14));
        assert_eq!(d.snat, Ipv4Addr::new(198, 18, 128, 24));
    }

    #[test]
    fn addresses_are_distinct() {
        let mut all = vec![CLIENT, ROUTER_CLIENT_SIDE, ROUTER_BACKEND_SIDE, VIP];
        for k in 1..=MAX_APPLIANCES {
            let a = appliance(k);
            all.extend([
                a.edge,
                a.router_edge,
                a.mgmt,
                a.router_mgmt,
                a.backend_port,
                a.snat,
            ]);
        }
        all.extend((0..8).map(backend));
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }

    #[test]
    fn names_fit_for_the_largest_pid() {
        let names = Names::new(RunId {
            pid: 4_194_304,
            seq: 1295,
        });
        for k in 1..=MAX_APPLIANCES {
            for name in [
                names.router_edge_if(k),
                names.router_mgmt_if(k),
                names.router_appliance_backend_if(k),
                names.edge_if(k),
                names.backends_if(k),
                names.mgmt_if(k),
                names.liveness_if(k),
            ] {
                assert!(name.expect("fits").len() <= MAX_IFNAME);
            }
        }
        assert!(names.router_backend_if(9).is_ok());
        let rt = names.dpdk_runtime_dir(2);
        let id = RunId::parse(&rt.file_name().unwrap().to_string_lossy());
        assert_eq!(
            id,
            Some(names.id()),
            "testbench cleanup must recognise {rt:?}"
        );
        assert!(names.router_mgmt_if(2).unwrap().starts_with(MGMT_IF_PREFIX));
    }
}

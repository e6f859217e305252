//! The topology: client, backend and appliance namespaces joined by one bridge.
//!
//! ```text
//!   client ns "c0..": eth0 ─┐                      ┌─ eth0 : backend ns "b0.."
//!                           │   lb ns (bridge br0) │
//!             veth c0..  ───┴── br0 ──┬──┬──────────┴── veth b0..
//!                                     │  └── ulbp<tag> ═ ulbv<tag>  (appliance veth, for
//!                                     │                              af_packet / af_xdp)
//!                                     └── ulbt<tag>  (DPDK net_tap, joined by attach_tap)
//! ```
//!
//! Clients and backends are in different subnets (see [`crate::addressing`]), so every
//! reply is routed through the appliance's addresses. With
//! [`TopologyBuilder::kernel_router`] the lb namespace's kernel holds those addresses on
//! the bridge and forwards (no NAT): the bench can then be tested without udplb.
//!
//! With [`TopologyBuilder::separate_backend_link`] the backends' veths join a second
//! bridge, br1, with a second appliance veth (`ulbq<tag>` ═ `ulbw<tag>`): one link, and one
//! appliance port, per side.
//!
//! Everything is removed when the [`Topology`] is dropped, also during a panic: processes
//! in its namespaces are killed, the namespaces (and so every interface) deleted, and the
//! run directory removed (kept, with its path printed, if a panic is unwinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::addressing::{Addressing, IfAddr};
use crate::error::{Error, Result};
use crate::exec::{self, Process};
use crate::names::{check_ifname, RunId};
use crate::netns::{kill_all_in, Netns};

/// Name of the bridge inside the lb namespace.
pub const BRIDGE: &str = "br0";

/// Name of the backends' bridge with [`TopologyBuilder::separate_backend_link`].
pub const BACKEND_BRIDGE: &str = "br1";

/// Name of the interface inside every client and backend namespace.
pub const HOST_IFACE: &str = "eth0";

/// Whether a host is a client or a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Sends traffic to the VIP.
    Client,
    /// Serves traffic behind the appliance.
    Backend,
}

/// A client or backend: its own namespace, one interface [`HOST_IFACE`], its addresses.
#[derive(Debug)]
pub struct Host {
    name: String,
    role: Role,
    index: usize,
    ipv4: Vec<IfAddr>,
    ipv6: Vec<IfAddr>,
    ns: Netns,
}

impl Host {
    /// Logical name, `client-<i>` or `backend-<i>`; dnsmasq and echo servers answer with it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Client or backend.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Position among the hosts of its role.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Its first IPv4 address.
    pub fn ipv4(&self) -> Ipv4Addr {
        match self.ipv4.first().map(|a| a.addr) {
            Some(IpAddr::V4(a)) => a,
            // Construction always assigns at least one IPv4 address.
            _ => Ipv4Addr::UNSPECIFIED,
        }
    }

    /// Its first IPv6 address.
    pub fn ipv6(&self) -> Ipv6Addr {
        match self.ipv6.first().map(|a| a.addr) {
            Some(IpAddr::V6(a)) => a,
            _ => Ipv6Addr::UNSPECIFIED,
        }
    }

    /// All its addresses with prefix lengths, IPv4 first.
    pub fn addrs(&self) -> impl Iterator<Item = &IfAddr> {
        self.ipv4.iter().chain(&self.ipv6)
    }

    /// All its IPv4 addresses (clients may have several, for multi-source load).
    pub fn ipv4_all(&self) -> Vec<IpAddr> {
        self.ipv4.iter().map(|a| a.addr).collect()
    }

    /// All its IPv6 addresses.
    pub fn ipv6_all(&self) -> Vec<IpAddr> {
        self.ipv6.iter().map(|a| a.addr).collect()
    }

    /// MAC address of its interface.
    ///
    /// # Errors
    /// As [`Netns::mac`].
    pub fn mac(&self) -> Result<[u8; 6]> {
        self.ns.mac(HOST_IFACE)
    }
}

/// Parameters of a [`Topology`]; obtained from [`Topology::builder`].
#[derive(Clone, Debug)]
pub struct TopologyBuilder {
    clients: usize,
    backends: usize,
    ips_per_client: usize,
    addressing: Addressing,
    kernel_router: bool,
    backend_link: bool,
}

impl Default for TopologyBuilder {
    fn default() -> Self {
        TopologyBuilder {
            clients: 1,
            backends: 3,
            ips_per_client: 1,
            addressing: Addressing::default(),
            kernel_router: false,
            backend_link: false,
        }
    }
}

impl TopologyBuilder {
    /// Number of client namespaces (default 1).
    pub fn clients(mut self, n: usize) -> Self {
        self.clients = n;
        self
    }

    /// Number of backend namespaces (default 3, matching `config/examples/dns`).
    pub fn backends(mut self, n: usize) -> Self {
        self.backends = n;
        self
    }

    /// Addresses per client and family (default 1), for load from several source IPs.
    pub fn ips_per_client(mut self, n: usize) -> Self {
        self.ips_per_client = n;
        self
    }

    /// The address plan (default [`Addressing::default`]).
    pub fn addressing(mut self, addressing: Addressing) -> Self {
        self.addressing = addressing;
        self
    }

    /// Whether the lb namespace's kernel stands in for the appliance (default false).
    pub fn kernel_router(mut self, on: bool) -> Self {
        self.kernel_router = on;
        self
    }

    /// Whether the backends get a link of their own (default false): a second bridge
    /// [`BACKEND_BRIDGE`] and a second appliance veth ([`Topology::backend_veth`]), so
    /// the appliance has one port facing the clients and one facing the backends, as an
    /// edge host with two NICs. The TAP stays on the client link.
    pub fn separate_backend_link(mut self, on: bool) -> Self {
        self.backend_link = on;
        self
    }

    /// Creates the namespaces, bridge, veths, addresses and routes.
    ///
    /// # Errors
    /// [`Error::Invalid`] for bad parameters; [`Error::Command`] if an `ip` or `sysctl`
    /// command fails (typically: not root). Whatever was created is removed again.
    pub fn build(self) -> Result<Topology> {
        if self.clients == 0 || self.backends == 0 || self.ips_per_client == 0 {
            return Err(Error::invalid(
                "TopologyBuilder",
                "clients, backends and ips_per_client must be at least 1",
            ));
        }
        self.addressing.validate()?;
        let id = RunId::next();
        let run_dir = RunDir::create(&id)?;
        let lb = Netns::create(&id.netns("lb"))?;
        lb.sysctl(&[
            ("net.ipv4.conf.all.send_redirects", "0"),
            ("net.ipv4.conf.default.send_redirects", "0"),
        ])?;
        lb.sysctl(NO_DAD)?;
        let backend_bridge = if self.backend_link {
            BACKEND_BRIDGE
        } else {
            BRIDGE
        };
        add_bridge(&lb, BRIDGE)?;
        if self.backend_link {
            add_bridge(&lb, BACKEND_BRIDGE)?;
        }
        // With br_netfilter loaded (Docker hosts), the bridge would validate and drop
        // malformed IP frames itself: the appliance must see them as a wire would.
        for key in [
            "net.bridge.bridge-nf-call-iptables",
            "net.bridge.bridge-nf-call-ip6tables",
            "net.bridge.bridge-nf-call-arptables",
        ] {
            if Path::new("/proc/sys").join(key.replace('.', "/")).exists() {
                lb.sysctl(&[(key, "0")])?;
            }
        }

        let mut clients = Vec::with_capacity(self.clients);
        for i in 0..self.clients {
            let ipv4 = (0..self.ips_per_client)
                .map(|j| self.addressing.client_v4(i, j, self.ips_per_client))
                .collect::<Result<Vec<_>>>()?;
            let ipv6 = (0..self.ips_per_client)
                .map(|j| self.addressing.client_v6(i, j, self.ips_per_client))
                .collect::<Result<Vec<_>>>()?;
            let host = self.add_host(&id, &lb, BRIDGE, Role::Client, i, ipv4, ipv6)?;
            let a = &self.addressing;
            for (dst, via) in [
                (a.vip_gateway_v4, a.client_gateway_v4),
                (a.backend_gateway_v4, a.client_gateway_v4),
                (a.vip_gateway_v6, a.client_gateway_v6),
                (a.backend_gateway_v6, a.client_gateway_v6),
            ] {
                add_route(&host.ns, &dst.network(), via.addr)?;
            }
            clients.push(host);
        }
        let mut backends = Vec::with_capacity(self.backends);
        for i in 0..self.backends {
            let ipv4 = vec![self.addressing.backend_v4(i)?];
            let ipv6 = vec![self.addressing.backend_v6(i)?];
            let host = self.add_host(&id, &lb, backend_bridge, Role::Backend, i, ipv4, ipv6)?;
            add_route(&host.ns, "default", self.addressing.backend_gateway_v4.addr)?;
            add_route(&host.ns, "default", self.addressing.backend_gateway_v6.addr)?;
            backends.push(host);
        }

        let tap_name = id.ifname("ulbt")?;
        let appliance_veth = id.ifname("ulbv")?;
        add_appliance_veth(&lb, &appliance_veth, &id.ifname("ulbp")?, BRIDGE)?;
        let backend_veth = if self.backend_link {
            let veth = id.ifname("ulbw")?;
            add_appliance_veth(&lb, &veth, &id.ifname("ulbq")?, BACKEND_BRIDGE)?;
            Some(veth)
        } else {
            None
        };

        if self.kernel_router {
            let a = &self.addressing;
            for addr in a.appliance_addrs() {
                let backend_side = [a.backend_gateway_v4, a.backend_gateway_v6].contains(&addr);
                let bridge = if backend_side { backend_bridge } else { BRIDGE };
                add_addr(&lb, bridge, &addr)?;
            }
            lb.sysctl(&[
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv6.conf.all.forwarding", "1"),
                ("net.ipv4.conf.br0.send_redirects", "0"),
            ])?;
            if self.backend_link {
                lb.sysctl(&[("net.ipv4.conf.br1.send_redirects", "0")])?;
            }
        } else {
            // The appliance answers for the gateways; the bridges themselves stay silent.
            lb.sysctl(&[(&disable_ipv6_key(BRIDGE), "1")])?;
            if self.backend_link {
                lb.sysctl(&[(&disable_ipv6_key(BACKEND_BRIDGE), "1")])?;
            }
        }

        Ok(Topology {
            id,
            addressing: self.addressing,
            kernel_router: self.kernel_router,
            tap_name,
            appliance_veth,
            backend_veth,
            clients,
            backends,
            lb,
            run_dir,
        })
    }

    /// Creates one host namespace, its veth into `bridge`, addresses and sysctls.
    #[allow(clippy::too_many_arguments)]
    fn add_host(
        &self,
        id: &RunId,
        lb: &Netns,
        bridge: &str,
        role: Role,
        index: usize,
        ipv4: Vec<IfAddr>,
        ipv6: Vec<IfAddr>,
    ) -> Result<Host> {
        let (short, long) = match role {
            Role::Client => ("c", "client"),
            Role::Backend => ("b", "backend"),
        };
        let port = format!("{short}{index}");
        check_ifname(&port)?;
        let ns = Netns::create(&id.netns(&port))?;
        // Before the interface exists, so that it inherits the defaults.
        // Redirects would let a host bypass the gateway after the first packet.
        ns.sysctl(&[
            ("net.ipv4.conf.all.accept_redirects", "0"),
            ("net.ipv6.conf.all.accept_redirects", "0"),
            ("net.ipv6.conf.default.accept_redirects", "0"),
            ("net.ipv6.conf.default.accept_ra", "0"),
        ])?;
        ns.sysctl(NO_DAD)?;
        let peer = ["peer", "name", HOST_IFACE, "netns", ns.name()];
        lb.ip(&[&["link", "add", port.as_str(), "type", "veth"][..], &peer].concat())?;
        join(lb, &port, bridge)?;
        ns.ip(&["link", "set", HOST_IFACE, "up"])?;
        for addr in ipv4.iter().chain(&ipv6) {
            add_addr(&ns, HOST_IFACE, addr)?;
        }
        Ok(Host {
            name: format!("{long}-{index}"),
            role,
            index,
            ipv4,
            ipv6,
            ns,
        })
    }
}

/// No duplicate address detection: while it runs (1 to 2 s) link-local addresses are
/// tentative and neighbour discovery stalls, losing the first IPv6 datagrams. Set before
/// interfaces are created, so they inherit it.
const NO_DAD: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
];

fn disable_ipv6_key(iface: &str) -> String {
    format!("net.ipv6.conf.{iface}.disable_ipv6")
}

/// Creates bridge `name` in the lb namespace, forwarding at once.
fn add_bridge(lb: &Netns, name: &str) -> Result<()> {
    lb.ip(&["link", "add", name, "type", "bridge"])?;
    lb.ip(&["link", "set", name, "type", "bridge", "forward_delay", "0"])?;
    lb.ip(&["link", "set", name, "up"])?;
    Ok(())
}

/// A veth pair for a kernel-attached DPDK port: `dpdk_side` stays unbridged and without
/// IPv6 (the kernel must not speak on it), `bridge_side` joins `bridge`.
fn add_appliance_veth(lb: &Netns, dpdk_side: &str, bridge_side: &str, bridge: &str) -> Result<()> {
    lb.ip(&[
        "link",
        "add",
        dpdk_side,
        "type",
        "veth",
        "peer",
        "name",
        bridge_side,
    ])?;
    join(lb, bridge_side, bridge)?;
    lb.sysctl(&[(&disable_ipv6_key(dpdk_side), "1")])?;
    lb.ip(&["link", "set", dpdk_side, "up"])?;
    Ok(())
}

/// Enslaves `iface` to the client bridge and brings it up.
fn join_bridge(lb: &Netns, iface: &str) -> Result<()> {
    join(lb, iface, BRIDGE)
}

/// Enslaves `iface` to `bridge` and brings it up; bridge ports carry no addresses.
fn join(lb: &Netns, iface: &str, bridge: &str) -> Result<()> {
    lb.ip(&["link", "set", "dev", iface, "master", bridge])?;
    lb.sysctl(&[(&disable_ipv6_key(iface), "1")])?;
    lb.ip(&["link", "set", "dev", iface, "up"])?;
    Ok(())
}

fn add_addr(ns: &Netns, iface: &str, addr: &IfAddr) -> Result<()> {
    let text = addr.to_string();
    if addr.addr.is_ipv6() {
        // nodad: the address is usable at once instead of after duplicate detection.
        ns.ip(&["-6", "addr", "add", &text, "dev", iface, "nodad"])?;
    } else {
        ns.ip(&["addr", "add", &text, "dev", iface])?;
    }
    Ok(())
}

fn add_route(ns: &Netns, dst: &str, via: IpAddr) -> Result<()> {
    let family = if via.is_ipv6() { "-6" } else { "-4" };
    ns.ip(&[family, "route", "add", dst, "via", &via.to_string()])?;
    Ok(())
}

/// The run's scratch directory (logs, sockets); removed on drop unless a panic unwinds.
#[derive(Debug)]
pub(crate) struct RunDir(pub(crate) PathBuf);

impl RunDir {
    pub(crate) fn create(id: &RunId) -> Result<RunDir> {
        let path = std::env::temp_dir().join(id.stem());
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        Ok(RunDir(path))
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "testbench: keeping logs of the failed run in {}",
                self.0.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A running topology; see the module docs. Dropping it removes everything it created.
#[derive(Debug)]
pub struct Topology {
    id: RunId,
    addressing: Addressing,
    kernel_router: bool,
    tap_name: String,
    appliance_veth: String,
    backend_veth: Option<String>,
    // Field order is drop order: hosts, then the lb namespace, then the logs.
    clients: Vec<Host>,
    backends: Vec<Host>,
    lb: Netns,
    run_dir: RunDir,
}

impl Topology {
    /// Parameters with defaults: 1 client, 3 backends, default addressing, no router.
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder::default()
    }

    /// The default topology with the kernel standing in for the appliance.
    ///
    /// # Errors
    /// As [`TopologyBuilder::build`].
    pub fn with_kernel_router() -> Result<Topology> {
        Topology::builder().kernel_router(true).build()
    }

    /// The run's identity (pid and sequence number in every name).
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The address plan.
    pub fn addressing(&self) -> &Addressing {
        &self.addressing
    }

    /// Whether the kernel stands in for the appliance.
    pub fn is_kernel_router(&self) -> bool {
        self.kernel_router
    }

    /// The namespace the appliance runs in (`ip netns exec <lb> udplb run …`).
    pub fn lb_ns(&self) -> &Netns {
        &self.lb
    }

    /// The clients, by index.
    pub fn clients(&self) -> &[Host] {
        &self.clients
    }

    /// The backends, by index.
    pub fn backends(&self) -> &[Host] {
        &self.backends
    }

    /// Client `i`.
    ///
    /// # Panics
    /// If `i` is out of range (a test bug, not an input).
    pub fn client(&self, i: usize) -> &Host {
        &self.clients[i]
    }

    /// Backend `i`.
    ///
    /// # Panics
    /// If `i` is out of range.
    pub fn backend(&self, i: usize) -> &Host {
        &self.backends[i]
    }

    /// A TAP name unique to this run, for DPDK devargs `net_tap0,iface=<name>`.
    pub fn tap_name(&self) -> &str {
        &self.tap_name
    }

    /// The veth end in the lb namespace meant for DPDK `net_af_packet` / `net_af_xdp`
    /// (`iface=<name>`); its peer is already on the bridge. It is not bridged itself.
    pub fn appliance_veth(&self) -> &str {
        &self.appliance_veth
    }

    /// With [`TopologyBuilder::separate_backend_link`], the veth end in the lb namespace
    /// for the appliance's backend-facing port (its peer is on [`BACKEND_BRIDGE`]).
    pub fn backend_veth(&self) -> Option<&str> {
        self.backend_veth.as_deref()
    }

    /// Turns TX checksum offload off on every client's and backend's interface
    /// (`ethtool -K eth0 tx off`). Needed when the appliance's port is kernel-attached
    /// (net_af_xdp, net_af_packet) on a veth: a veth passes a locally sent datagram on with
    /// only its pseudo-header checksum, for a NIC to finish, and a kernel-attached PMD hands
    /// exactly those bytes to the appliance; with offload off the sender's kernel computes
    /// complete checksums, as a real NIC would put on the wire.
    ///
    /// # Errors
    /// [`Error::Command`] if `ethtool` fails or is missing (`scripts/setup` installs it).
    pub fn disable_tx_checksum_offload(&self) -> Result<()> {
        for host in self.clients.iter().chain(&self.backends) {
            host.ns.run(
                "ethtool",
                &["-K", HOST_IFACE, "tx", "off"],
                exec::SHORT_TIMEOUT,
            )?;
        }
        Ok(())
    }

    /// The run directory, for logs, sockets and generated files; removed on drop.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir.0
    }

    /// `run_dir/<file>`.
    pub fn log_path(&self, file: &str) -> PathBuf {
        self.run_dir.0.join(file)
    }

    /// Waits, at most `timeout`, for interface `name` to appear in the lb namespace
    /// (DPDK creates it when udplb starts), then bridges it and brings it up.
    ///
    /// The interface appears before DPDK has started the port: frames sent before the
    /// appliance reports itself ready are dropped. Wait for that readiness too.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it never appears; [`Error::Command`] if bridging fails.
    pub fn attach_tap(&self, name: &str, timeout: Duration) -> Result<()> {
        check_ifname(name)?;
        exec::wait_for(
            &format!("interface {name} in {}", self.lb.name()),
            timeout,
            || Ok(self.lb.has_link(name).then_some(())),
        )?;
        join_bridge(&self.lb, name)
    }

    /// Starts `program args…` in the lb namespace with output to `run_dir/<log>`.
    ///
    /// # Errors
    /// As [`Process::spawn`].
    pub fn spawn_in_lb(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        log: &str,
    ) -> Result<Process> {
        self.lb.spawn(program, args, &self.log_path(log))
    }

    /// Gives the kernel side of a DPDK `net_tap` interface a MAC of its own. net_tap gives
    /// it the DPDK port's MAC when the port starts; bridged, that MAC counts as the
    /// bridge's local address and frames for the appliance never leave through the TAP.
    /// Call it once the appliance has started its port. Each topology has its own bridge,
    /// so a fixed locally administered MAC is unique.
    ///
    /// # Errors
    /// [`Error::Command`] if `ip link set` fails.
    pub fn detach_tap_mac(&self, name: &str) -> Result<()> {
        self.lb
            .ip(&["link", "set", "dev", name, "address", "02:75:6c:62:00:01"])
            .map(|_| ())
    }

    /// Every namespace of this run: lb, clients, backends.
    pub fn namespaces(&self) -> Vec<&str> {
        std::iter::once(self.lb.name())
            .chain(self.clients.iter().map(|h| h.ns.name()))
            .chain(self.backends.iter().map(|h| h.ns.name()))
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // The appliance goes first so it never sees its peers vanish; each Netns then
        // kills what is left in it when the fields drop.
        let _ = kill_all_in(self.lb.name(), Duration::from_secs(5));
    }
}

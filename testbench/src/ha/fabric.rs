//! The scale-out fabric: a router namespace running BIRD (deploy/bird/router.conf) with
//! ECMP and L4 hashing, a client behind it, backends on a bridge inside the router
//! namespace, and up to [`MAX_APPLIANCES`] appliance [`Node`]s, each joined to the router
//! by an edge link (DPDK), a management link (kernel, BGP) and a port on the backends'
//! bridge (DPDK).
//!
//! ```text
//!  client ns ─ eth0 ══ hac ─┐ router ns: BIRD, ECMP (fib_multipath_hash_policy=1)
//!                           ├─ hae1 ══ edge   ┐
//!                           ├─ ham1 ══ mgmt   ├ appliance ns a1: udplb (edge, backends:
//!                           │  hab (bridge) ─ hak1 ══ backends ┘  net_af_packet), BIRD
//!                           │   ├─ hb0x ══ eth0  backend ns b0 (echo "backend-0")
//!                           │   └─ …
//! ```
//!
//! Per NAT mode (see README.md, "Scale out"): `dsr` backends hold the VIP on `lo` with
//! `arp_ignore=1`/`arp_announce=2` and reply through the router; `preserve-client`
//! appliances announce return routes and the router looks up the backends' traffic in
//! table 100; `fullnat` appliances each have their own SNAT address on the backends' link.
//! Every veth has TX checksum offload off (the DPDK ports are kernel-attached; see
//! appliance/README.md). Dropping the fabric kills every process and deletes every
//! namespace (and so every interface and TAP), the DPDK runtime directories and the run
//! directory.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::bird::{self, Bird};
use super::node::{Node, NodeSettings};
use super::plan::{self, Names, MAX_APPLIANCES};
use super::HaMode;
use crate::error::{Error, Result};
use crate::exec::{self, Process, SHORT_TIMEOUT};
use crate::names::RunId;
use crate::netns::Netns;
use crate::topology::RunDir;
use crate::traffic::tools::{EchoServer, Tools};

/// Interface name of the client and the backends in their namespaces.
const HOST_IF: &str = "eth0";

/// The backends' echo servers' receive buffers: 4 MiB (the host's `rmem_max` here)
/// hold seconds of a backend's share of the demo's traffic, where the default ~208 KiB
/// held about a hundred milliseconds and overflowed whenever the machine was busy.
const BACKEND_RCVBUF: usize = 4 << 20;

/// The backends' bridge's MAC (locally administered).
const BRIDGE_MAC: &str = "02:00:c6:12:80:01";

/// The routing table the router looks up the backends' traffic in (preserve-client).
pub const RETURN_TABLE: &str = "100";

/// Sysctls of every namespace of the fabric, set before its interfaces exist: no IPv6
/// (the fabric is IPv4; nothing else reaches the DPDK ports), no redirects.
const NS_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.conf.default.accept_redirects", "0"),
];

/// Creates a namespace of the fabric.
pub(crate) fn namespace(name: &str) -> Result<Netns> {
    let ns = Netns::create(name)?;
    ns.sysctl(NS_SYSCTLS)?;
    Ok(ns)
}

/// A veth from `router` (end `router_end`) into `other` (end `other_end`), both up.
pub(crate) fn veth(router: &Netns, router_end: &str, other: &Netns, other_end: &str) -> Result<()> {
    router.ip(&[
        "link",
        "add",
        router_end,
        "type",
        "veth",
        "peer",
        "name",
        other_end,
        "netns",
        other.name(),
    ])?;
    router.ip(&["link", "set", router_end, "up"])?;
    other.ip(&["link", "set", other_end, "up"])?;
    Ok(())
}

/// `ethtool -K <iface> tx off` in `ns`: senders on veths must finish their checksums,
/// since the appliances' ports are kernel-attached.
pub(crate) fn tx_checksum_off(ns: &Netns, iface: &str) -> Result<()> {
    ns.run("ethtool", &["-K", iface, "tx", "off"], SHORT_TIMEOUT)
        .map(drop)
}

/// `ip addr add <addr>/<len> dev <iface>` in `ns`.
pub(crate) fn address(ns: &Netns, iface: &str, addr: Ipv4Addr, len: u8) -> Result<()> {
    ns.ip(&["addr", "add", &format!("{addr}/{len}"), "dev", iface])
        .map(drop)
}

/// The router, the client, the backends and the appliances of one scenario run.
pub struct Fabric {
    names: Names,
    mode: HaMode,
    tools: Tools,
    udplb: PathBuf,
    settings: NodeSettings,
    backend_count: usize,
    // Field order is drop order: appliances (udplb, BIRD, runtime directories), the
    // router's BIRD and the echo servers, then the namespaces, then the run directory.
    nodes: Vec<Option<Node>>,
    router_bird: Option<Bird>,
    route_monitor: Option<Process>,
    echo: Vec<EchoServer>,
    backends: Vec<Netns>,
    client: Netns,
    router: Netns,
    run_dir: RunDir,
}

impl Fabric {
    /// Builds the router (with its BIRD), the client and `backends` backends (each with
    /// an echo server answering with its name) for `mode`. Appliances come with
    /// [`Fabric::start_node`].
    ///
    /// # Errors
    /// Any command fails (not root, `bird2` or `ethtool` missing); what was built is
    /// removed again.
    pub fn build(
        mode: HaMode,
        backends: usize,
        tools: Tools,
        udplb: PathBuf,
        settings: NodeSettings,
    ) -> Result<Fabric> {
        if backends == 0 || backends > 10 {
            return Err(Error::invalid(
                "HA backends",
                format!("{backends} not in 1..=10"),
            ));
        }
        let names = Names::new(RunId::next());
        let run_dir = RunDir::create(&names.id())?;
        let router = namespace(&names.router_ns())?;
        let client = namespace(&names.client_ns())?;
        let mut fabric = Fabric {
            names,
            mode,
            tools,
            udplb,
            settings,
            backend_count: backends,
            nodes: (0..MAX_APPLIANCES).map(|_| None).collect(),
            router_bird: None,
            route_monitor: None,
            echo: Vec::new(),
            backends: Vec::new(),
            client,
            router,
            run_dir,
        };
        fabric.build_router()?;
        fabric.build_client()?;
        for j in 0..backends {
            fabric.build_backend(j)?;
        }
        // Every route change of the router, with timestamps, for the diagnostics.
        fabric.route_monitor = Some(fabric.router.spawn(
            "ip",
            &["-ts", "monitor", "route"],
            &fabric.dir().join("route-monitor.log"),
        )?);
        let log = fabric.dir().join("bird-router.log");
        let conf = bird::router_conf(&log)?;
        fabric.router_bird = Some(Bird::start(
            &fabric.router,
            fabric.dir(),
            "bird-router",
            &conf,
            &log,
        )?);
        Ok(fabric)
    }

    fn build_router(&self) -> Result<()> {
        let r = &self.router;
        r.sysctl(&[
            ("net.ipv4.ip_forward", "1"),
            // L4 hashing: each session (source port) is its own ECMP flow.
            ("net.ipv4.fib_multipath_hash_policy", "1"),
            ("net.ipv6.fib_multipath_hash_policy", "1"),
            // DSR replies (source VIP) come from the backends' link, not the VIP's route.
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            ("net.ipv4.conf.all.send_redirects", "0"),
            ("net.ipv4.conf.default.send_redirects", "0"),
        ])?;
        let bridge = self.names.backend_bridge()?;
        r.ip(&["link", "add", &bridge, "type", "bridge"])?;
        r.ip(&[
            "link",
            "set",
            &bridge,
            "type",
            "bridge",
            "forward_delay",
            "0",
        ])?;
        // A fixed address: a bridge otherwise takes its ports' lowest MAC, so a joining
        // appliance's port could change it, flushing the router's neighbours on it and
        // leaving the backends' ARP entries for their gateway stale.
        r.ip(&["link", "set", &bridge, "address", BRIDGE_MAC])?;
        r.ip(&["link", "set", &bridge, "up"])?;
        // With br_netfilter loaded the bridge would filter the backends' frames itself.
        for key in [
            "net.bridge.bridge-nf-call-iptables",
            "net.bridge.bridge-nf-call-arptables",
        ] {
            if Path::new("/proc/sys").join(key.replace('.', "/")).exists() {
                r.sysctl(&[(key, "0")])?;
            }
        }
        address(r, &bridge, plan::ROUTER_BACKEND_SIDE, plan::LINK_PREFIX)?;
        if self.mode == HaMode::PreserveClient {
            // deploy/bird/router.conf: the backends' traffic is routed by table 100, which
            // holds the appliances' return routes. `iif` keeps the router's own traffic
            // (from its address on that link) in the main table.
            r.ip(&[
                "rule",
                "add",
                "from",
                plan::BACKEND_NET,
                "iif",
                &bridge,
                "lookup",
                RETURN_TABLE,
            ])?;
        }
        Ok(())
    }

    fn build_client(&self) -> Result<()> {
        let end = self.names.router_client_if()?;
        veth(&self.router, &end, &self.client, HOST_IF)?;
        address(
            &self.router,
            &end,
            plan::ROUTER_CLIENT_SIDE,
            plan::LINK_PREFIX,
        )?;
        address(&self.client, HOST_IF, plan::CLIENT, plan::LINK_PREFIX)?;
        self.client.ip(&[
            "route",
            "add",
            "default",
            "via",
            &plan::ROUTER_CLIENT_SIDE.to_string(),
        ])?;
        tx_checksum_off(&self.client, HOST_IF)?;
        tx_checksum_off(&self.router, &end)
    }

    fn build_backend(&mut self, j: usize) -> Result<()> {
        let ns = namespace(&self.names.backend_ns(j))?;
        let end = self.names.router_backend_if(j)?;
        veth(&self.router, &end, &ns, HOST_IF)?;
        self.router
            .ip(&["link", "set", &end, "master", &self.names.backend_bridge()?])?;
        address(&ns, HOST_IF, plan::backend(j), plan::LINK_PREFIX)?;
        ns.ip(&[
            "route",
            "add",
            "default",
            "via",
            &plan::ROUTER_BACKEND_SIDE.to_string(),
        ])?;
        tx_checksum_off(&ns, HOST_IF)?;
        let mut listen = vec![SocketAddr::new(plan::backend(j).into(), plan::PORT)];
        if self.mode == HaMode::Dsr {
            // README.md, "Direct server return": the VIP on loopback, never announced by
            // ARP; the echo server answers from the VIP (its socket is bound to it).
            ns.ip(&["addr", "add", &format!("{}/32", plan::VIP), "dev", "lo"])?;
            ns.sysctl(&[
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
            ])?;
            listen.push(SocketAddr::new(plan::VIP.into(), plan::PORT));
        }
        let log = self.dir().join(format!("echo-b{j}.log"));
        let echo = self.tools.start_echo_in(
            &ns,
            &plan::backend_name(j),
            &listen,
            false,
            Some(BACKEND_RCVBUF),
            &log,
        )?;
        self.backends.push(ns);
        self.echo.push(echo);
        Ok(())
    }

    /// The run directory (configurations, logs, sockets); removed on drop.
    pub fn dir(&self) -> &Path {
        &self.run_dir.0
    }

    /// Names of this run.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The NAT mode.
    pub fn mode(&self) -> HaMode {
        self.mode
    }

    /// The router's namespace.
    pub fn router(&self) -> &Netns {
        &self.router
    }

    /// The client's namespace.
    pub fn client(&self) -> &Netns {
        &self.client
    }

    /// The backends' addresses and names, by index.
    pub fn backends(&self) -> Vec<(Ipv4Addr, String)> {
        (0..self.backend_count)
            .map(|j| (plan::backend(j), plan::backend_name(j)))
            .collect()
    }

    /// The router's BIRD.
    ///
    /// # Panics
    /// Never after a successful [`Fabric::build`].
    pub fn router_bird(&self) -> &Bird {
        self.router_bird.as_ref().expect("started by build")
    }

    /// Every namespace of the run that exists now.
    pub fn namespaces(&self) -> Vec<String> {
        let mut all = vec![self.router.name().to_owned(), self.client.name().to_owned()];
        all.extend(self.backends.iter().map(|n| n.name().to_owned()));
        all.extend(
            self.nodes
                .iter()
                .flatten()
                .map(|n| n.ns().name().to_owned()),
        );
        all
    }

    /// Starts appliance `k` (namespace, links, BIRD, udplb) without waiting for it.
    ///
    /// # Errors
    /// `k` is out of range or taken; any command fails.
    pub fn start_node(&mut self, k: usize, manifests: &str) -> Result<()> {
        if !(1..=MAX_APPLIANCES).contains(&k) || self.nodes[k - 1].is_some() {
            return Err(Error::invalid(
                "HA appliance",
                format!("{k} is out of range or already started"),
            ));
        }
        let node = Node::start(
            &self.names,
            k,
            &self.router,
            self.dir(),
            &self.udplb,
            self.mode,
            &self.settings,
            manifests,
        )?;
        self.nodes[k - 1] = Some(node);
        Ok(())
    }

    /// Appliance `k`, if started.
    pub fn node(&self, k: usize) -> Option<&Node> {
        self.nodes.get(k.wrapping_sub(1)).and_then(Option::as_ref)
    }

    /// Appliance `k`, if started.
    pub fn node_mut(&mut self, k: usize) -> Option<&mut Node> {
        self.nodes
            .get_mut(k.wrapping_sub(1))
            .and_then(Option::as_mut)
    }

    /// The next hops of the router's kernel route to the VIP (empty without a route).
    ///
    /// # Errors
    /// `ip route` fails.
    pub fn next_hops(&self) -> Result<Vec<Ipv4Addr>> {
        let out = self
            .router
            .ip(&["route", "show", &format!("{}/32", plan::VIP)])?;
        Ok(parse_vias(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The next hops of the router's table-100 default route (preserve-client returns).
    ///
    /// # Errors
    /// `ip route` fails.
    pub fn return_hops(&self) -> Result<Vec<Ipv4Addr>> {
        // The table exists only once a route is in it.
        let out = exec::run_unchecked(
            std::process::Command::new("ip").args([
                "-n",
                self.router.name(),
                "route",
                "show",
                "table",
                RETURN_TABLE,
            ]),
            None,
            SHORT_TIMEOUT,
        )?;
        Ok(parse_vias(&String::from_utf8_lossy(&out.stdout)))
    }

    /// The appliances (by index) the router's route to the VIP goes through.
    ///
    /// # Errors
    /// `ip route` fails.
    pub fn routed_appliances(&self) -> Result<Vec<usize>> {
        Ok(self
            .next_hops()?
            .into_iter()
            .filter_map(appliance_of)
            .collect())
    }

    /// Polls the router's route every `every` until `want` holds for the set of
    /// appliances it goes through; returns when the route was last read without it (the
    /// change came after) and when it held.
    ///
    /// # Errors
    /// [`Error::Timeout`] naming the last set seen.
    pub fn wait_route(
        &self,
        what: &str,
        want: impl Fn(&[usize]) -> bool,
        every: Duration,
        timeout: Duration,
    ) -> Result<(Instant, Instant)> {
        let start = Instant::now();
        let mut last = Vec::new();
        // When the route was last read without what is wanted: it changed after that.
        let mut unchanged_at = start;
        loop {
            if let Ok(now) = self.routed_appliances() {
                if want(&now) {
                    return Ok((unchanged_at, Instant::now()));
                }
                last = now;
                unchanged_at = Instant::now();
            }
            if start.elapsed() > timeout {
                return Err(Error::Timeout {
                    what: format!("{what} (router's route via appliances {last:?})"),
                    timeout,
                });
            }
            std::thread::sleep(every);
        }
    }

    /// The appliance the router sends each session (source port) to, from the kernel's
    /// own multipath choice (`ip route get … iif … ipproto udp sport … dport …`, in one
    /// `ip -batch`); 0 where there is no route.
    ///
    /// # Errors
    /// `ip` fails.
    pub fn router_choice(&self, ports: &[u16]) -> Result<Vec<usize>> {
        let iif = self.names.router_client_if()?;
        let mut batch = String::new();
        for p in ports {
            batch.push_str(&format!(
                "route get {} from {} iif {iif} ipproto udp sport {p} dport {}\n",
                plan::VIP,
                plan::CLIENT,
                plan::PORT
            ));
        }
        let out = exec::run_unchecked(
            std::process::Command::new("ip").args(["-n", self.router.name(), "-batch", "-"]),
            Some(batch.as_bytes()),
            Duration::from_secs(30),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        let choices: Vec<usize> = text
            .lines()
            .filter(|l| l.starts_with(&plan::VIP.to_string()))
            .map(|l| {
                parse_vias(l)
                    .first()
                    .copied()
                    .and_then(appliance_of)
                    .unwrap_or(0)
            })
            .collect();
        if choices.len() != ports.len() {
            return Err(Error::Parse {
                tool: "ip route get".into(),
                detail: format!(
                    "{} answers for {} sessions: {}",
                    choices.len(),
                    ports.len(),
                    String::from_utf8_lossy(&out.stderr)
                ),
            });
        }
        Ok(choices)
    }

    /// Pings `addr` once from the router (ARP resolved before sessions need it: the
    /// research notes' advice, since next hops must not start unresolved).
    pub fn prime(&self, addr: Ipv4Addr) {
        let _ = self.router.run(
            "ping",
            &["-c", "1", "-W", "1", &addr.to_string()],
            SHORT_TIMEOUT,
        );
    }

    /// The router's route changes so far that concern the VIP or the return table
    /// (`ip -ts monitor route`, one event a block).
    pub fn route_events(&self) -> String {
        let text = self
            .route_monitor
            .as_ref()
            .map(Process::log)
            .unwrap_or_default();
        let vip = plan::VIP.to_string();
        let mut out = String::new();
        let mut keep = false;
        for line in text.lines() {
            if line.starts_with('[') {
                keep = line.contains(&vip) || line.contains(&format!("table {RETURN_TABLE}"));
            }
            if keep {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Where datagrams were dropped so far, outside the session client's view: the
    /// backends' and the client's full receive buffers, the router's interfaces, each
    /// running appliance's drop counters and its ports' missed frames. One line.
    pub fn drop_report(&self) -> String {
        let rcvbuf = |ns: &Netns| {
            crate::counters::udp_rcvbuf_errors(ns).map_or("?".to_owned(), |n| n.to_string())
        };
        let backends: Vec<String> = self.backends.iter().map(rcvbuf).collect();
        let router: Vec<String> = crate::counters::all_link_stats(&self.router)
            .map(|links| {
                links
                    .into_iter()
                    .filter(|(_, l)| l.rx_dropped + l.tx_dropped > 0)
                    .map(|(name, l)| format!("{name}:rx{}/tx{}", l.rx_dropped, l.tx_dropped))
                    .collect()
            })
            .unwrap_or_else(|_| vec!["?".to_owned()]);
        let mut appliances = Vec::new();
        for k in 1..=MAX_APPLIANCES {
            if let Some(node) = self.node(k) {
                let text = node.metrics().map_or("?".to_owned(), |m| {
                    format!(
                        "drops={} rx_missed={} rx_nombuf={}",
                        m.sum("udplb_drops_total", &[]),
                        m.sum("udplb_port_rx_missed_total", &[]),
                        m.sum("udplb_port_rx_nombuf_total", &[])
                    )
                });
                appliances.push(format!("a{k}[{text}]"));
            }
        }
        format!(
            "backends_rcvbuf_errors={} client_rcvbuf_errors={} router_link_drops=[{}] {}",
            backends.join(","),
            rcvbuf(&self.client),
            router.join(" "),
            appliances.join(" ")
        )
    }

    /// The echo servers.
    pub fn echo_servers(&self) -> &[EchoServer] {
        &self.echo
    }

    /// The testbench tools.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }
}

/// The appliance whose edge address is `hop`.
pub fn appliance_of(hop: Ipv4Addr) -> Option<usize> {
    (1..=MAX_APPLIANCES)
        .find(|&k| plan::appliance(k).edge == hop || plan::appliance(k).backend_port == hop)
}

/// Every `via <IPv4>` in `ip route` output, in order.
pub fn parse_vias(text: &str) -> Vec<Ipv4Addr> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "via")
        .filter_map(|w| w[1].parse().ok())
        .collect()
}

/// Whether `addr` is one of the fabric's IPv4 addresses (for messages).
pub fn describe(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => match appliance_of(a) {
            Some(k) => format!("{a} (appliance {k})"),
            None => a.to_string(),
        },
        IpAddr::V6(a) => a.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vias_of_single_and_multipath_routes() {
        let single = "198.19.0.10 via 198.18.11.2 dev hae1x proto bird metric 32 \n";
        assert_eq!(parse_vias(single), [Ipv4Addr::new(198, 18, 11, 2)]);
        let multi = "198.19.0.10 proto bird metric 32 \n\tnexthop via 198.18.11.2 dev a weight 1 \n\tnexthop via 198.18.13.2 dev b weight 1 \n";
        assert_eq!(
            parse_vias(multi),
            [Ipv4Addr::new(198, 18, 11, 2), Ipv4Addr::new(198, 18, 13, 2)]
        );
        assert!(parse_vias("").is_empty());
        let get = "198.19.0.10 from 198.19.1.100 via 198.18.12.2 dev hae2 \n    cache iif hac\n";
        assert_eq!(
            parse_vias(get).first().copied().and_then(appliance_of),
            Some(2)
        );
    }

    #[test]
    fn hops_name_appliances() {
        assert_eq!(appliance_of(plan::appliance(3).edge), Some(3));
        assert_eq!(appliance_of(plan::appliance(2).backend_port), Some(2));
        assert_eq!(appliance_of(plan::ROUTER_BACKEND_SIDE), None);
        assert_eq!(
            describe(plan::appliance(4).edge.into()),
            "198.18.14.2 (appliance 4)"
        );
    }
}

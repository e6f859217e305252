//! The systems measured and how each one is set up in a topology's lb namespace: udplb
//! (through [`Appliance::start`], on `net_af_xdp`, `net_af_packet` or `net_tap`), nginx's
//! stream UDP proxy, nftables DNAT and dnsdist, each configured the way its users would for
//! per-flow UDP balancing, and each given the system-under-test CPU
//! ([`placement::SUT_CPU`]) and nothing else.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::placement::{self, SUT_CPU};
use crate::appliance::{Appliance, ApplianceOptions};
use crate::counters;
use crate::error::{Error, Result};
use crate::exec::{self, Process};
use crate::manifests::{self, Endpoint};
use crate::topology::{Topology, HOST_IFACE};

/// Idle timeout of every peer's per-flow state (udplb, nginx, conntrack).
pub(super) const IDLE_TIMEOUT_S: u32 = 10;

/// The hard open-file limit of this machine's processes (no CAP_SYS_RESOURCE to raise
/// it): it bounds nginx's sessions (one upstream socket each).
pub(super) const NOFILE: u32 = 20_000;

/// udplb's flow table: the many-flow state plus the new-flow runs, with room to spare.
pub(super) const UDPLB_FLOW_CAPACITY: u32 = 1 << 20;

/// The cap of udplb's idle back-off (it polls 10 µs after its last frame, then sleeps 1 µs
/// doubling up to this): it shares its CPU with the kernel's softirq work for its own
/// packets, which must not wait for a busy poller.
pub(super) const UDPLB_IDLE_BACKOFF_US: u32 = 20;

/// The systems measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// No load balancer: the generator straight to the backends through the kernel router.
    Direct,
    /// udplb on a DPDK `net_af_xdp` port on a veth into the bridge.
    UdplbAfXdp,
    /// udplb on a DPDK `net_af_packet` port on the same veth.
    UdplbAfPacket,
    /// udplb on a DPDK `net_tap` port bridged to the backends (reference).
    UdplbTap,
    /// nginx stream module, UDP proxy.
    Nginx,
    /// Kernel NAT: nftables DNAT with a jhash map.
    Nftables,
    /// dnsdist (DNS workload only).
    Dnsdist,
}

impl Peer {
    /// Display name.
    pub fn label(self) -> &'static str {
        match self {
            Peer::Direct => "direct (no LB)",
            Peer::UdplbAfXdp => "udplb (net_af_xdp)",
            Peer::UdplbAfPacket => "udplb (net_af_packet)",
            Peer::UdplbTap => "udplb (net_tap)",
            Peer::Nginx => "nginx stream",
            Peer::Nftables => "nftables DNAT",
            Peer::Dnsdist => "dnsdist",
        }
    }

    /// Whether this is udplb (on any port).
    pub fn is_udplb(self) -> bool {
        matches!(
            self,
            Peer::UdplbAfXdp | Peer::UdplbAfPacket | Peer::UdplbTap
        )
    }

    /// A fresh topology for this peer: one client, three backends; the lb namespace's
    /// kernel routes for every peer but udplb. The client's traffic is steered to the
    /// system-under-test CPU ([`placement::steer`]); the returned text says how.
    pub(super) fn topology(self) -> Result<(Topology, String)> {
        let topo = Topology::builder()
            .clients(1)
            .backends(3)
            .kernel_router(!self.is_udplb())
            .build()?;
        let how = placement::steer(&topo)?;
        Ok((topo, how))
    }

    /// udplb's DPDK device for this peer in `topo`.
    fn udplb_device(self, topo: &Topology) -> Option<String> {
        let veth = topo.appliance_veth();
        match self {
            Peer::UdplbAfXdp => Some(format!(
                "net_af_xdp0,iface={veth},start_queue=0,queue_count=1"
            )),
            Peer::UdplbAfPacket => Some(format!("net_af_packet0,iface={veth},qpairs=1")),
            _ => None,
        }
    }
}

/// A peer running in a topology: where clients send, and the processes (or udplb) that
/// stop when it is dropped.
pub(super) struct RunningPeer<'t> {
    /// The topology.
    pub(super) topo: &'t Topology,
    /// Where clients send; flow `i` to `targets[i % n]`.
    pub(super) targets: Vec<SocketAddr>,
    procs: Vec<Process>,
    udplb: Option<Appliance<'t>>,
    peer: Peer,
}

/// The VIP the peers serve.
fn vip(topo: &Topology) -> IpAddr {
    topo.addressing().vip_v4.into()
}

/// `port` on every backend's IPv4 address, in backend order.
pub(super) fn backend_addrs(topo: &Topology, port: u16) -> Vec<SocketAddr> {
    topo.backends()
        .iter()
        .map(|b| SocketAddr::new(b.ipv4().into(), port))
        .collect()
}

/// Starts `peer` in `topo`'s lb namespace, balancing `port` over the backends; udplb
/// loads `manifests`.
pub(super) fn start<'t>(
    peer: Peer,
    topo: &'t Topology,
    port: u16,
    manifests: &str,
) -> Result<RunningPeer<'t>> {
    let lb = topo.lb_ns();
    let mut running = RunningPeer {
        topo,
        targets: vec![SocketAddr::new(vip(topo), port)],
        procs: Vec::new(),
        udplb: None,
        peer,
    };
    match peer {
        Peer::Direct => {
            running.targets = backend_addrs(topo, port);
        }
        Peer::UdplbAfXdp | Peer::UdplbAfPacket | Peer::UdplbTap => {
            // Client-IP preservation: the same rewrite as nftables DNAT (destination
            // only), and no SNAT port per flow (one SNAT address holds ~64k flows).
            let mut opts = ApplianceOptions::new(manifests);
            opts.nat_mode = "preserve-client".into();
            opts.idle_timeout = format!("{IDLE_TIMEOUT_S}s");
            opts.flow_capacity = UDPLB_FLOW_CAPACITY;
            opts.idle_backoff_us = UDPLB_IDLE_BACKOFF_US;
            opts.device = peer.udplb_device(topo);
            // The bench runs on the generator's CPU; udplb's worker lcore is the other.
            opts.cpus = Some(format!("{},{SUT_CPU}", placement::GEN_CPU));
            running.udplb = Some(Appliance::start(topo, &opts)?);
        }
        Peer::Nginx => {
            add_vip(topo)?;
            let dir = topo.run_dir().join("nginx");
            std::fs::create_dir_all(&dir).map_err(|e| Error::io("nginx dir", e))?;
            let conf = dir.join("nginx.conf");
            std::fs::write(&conf, nginx_conf(topo, &dir, port))
                .map_err(|e| Error::io("nginx.conf", e))?;
            let conf = conf.to_string_lossy().into_owned();
            let prefix = dir.to_string_lossy().into_owned();
            let mut cmd = lb.command("nginx");
            cmd.args(["-c", &conf, "-p", &prefix, "-g", "daemon off;"]);
            let p = Process::spawn(cmd, &topo.log_path("nginx.log"))?;
            lb.wait_udp_bound(port, 1, Duration::from_secs(10))
                .map_err(|e| Error::invalid("nginx", format!("{e}; log:\n{}", p.log())))?;
            running.procs.push(p);
        }
        Peer::Nftables => {
            let rules = nft_rules(topo, port);
            exec::run(
                lb.command("nft").arg("-f").arg("-"),
                Some(rules.as_bytes()),
                Duration::from_secs(10),
            )?;
            // conntrack exists in the namespace once the NAT table is loaded.
            let _ = lb.sysctl(&[
                (
                    "net.netfilter.nf_conntrack_udp_timeout",
                    &IDLE_TIMEOUT_S.to_string(),
                ),
                (
                    "net.netfilter.nf_conntrack_udp_timeout_stream",
                    &IDLE_TIMEOUT_S.to_string(),
                ),
            ]);
        }
        Peer::Dnsdist => {
            add_vip(topo)?;
            let conf = topo.run_dir().join("dnsdist.conf");
            std::fs::write(&conf, dnsdist_conf(topo, port))
                .map_err(|e| Error::io("dnsdist.conf", e))?;
            let conf = conf.to_string_lossy().into_owned();
            let p = lb.spawn(
                "dnsdist",
                &["--supervised", "--disable-syslog", "-C", &conf],
                &topo.log_path("dnsdist.log"),
            )?;
            lb.wait_udp_bound(port, 1, Duration::from_secs(10))
                .map_err(|e| Error::invalid("dnsdist", format!("{e}; log:\n{}", p.log())))?;
            // Every thread, the ones it starts later included (they inherit the mask).
            placement::pin(p.pid(), SUT_CPU)?;
            running.procs.push(p);
        }
    }
    Ok(running)
}

impl RunningPeer<'_> {
    /// Whether its work is done by processes in the lb namespace (memory accounting).
    pub(super) fn has_processes(&self) -> bool {
        self.udplb.is_some() || !self.procs.is_empty()
    }

    /// The MAC client 0 sends to: its gateway's (udplb's port, or the kernel router's
    /// bridge), resolved by the client's kernel with one ping.
    ///
    /// # Errors
    /// The gateway does not answer within three tries.
    pub(super) fn next_hop_mac(&self) -> Result<[u8; 6]> {
        let client = self.topo.client(0);
        let gw = self.topo.addressing().client_gateway_v4.addr.to_string();
        let mut last = String::new();
        for _ in 0..3 {
            let _ = client
                .ns()
                .run("ping", &["-c", "1", "-W", "1", &gw], Duration::from_secs(3));
            let out = client
                .ns()
                .ip(&["-j", "neigh", "show", &gw, "dev", HOST_IFACE])?;
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(mac) = neigh_mac(&last) {
                return Ok(mac);
            }
        }
        Err(Error::invalid(
            "next hop",
            format!("{gw} not resolved from the client: {last}"),
        ))
    }

    /// For udplb: its port (driver, XDP mode, the kernel side's counters) and its own
    /// non-zero drop counters. Empty for the other peers.
    pub(super) fn notes(&self) -> Vec<String> {
        let Some(app) = &self.udplb else {
            return Vec::new();
        };
        let topo = self.topo;
        let mut notes = Vec::new();
        if let Some(line) = app.log().lines().find(|l| l.contains(": driver ")) {
            let at = line.find("port ").unwrap_or(0);
            notes.push(format!("port: `{}`", &line[at..]));
        }
        if self.peer == Peer::UdplbTap {
            notes.push(tap_note(topo));
        } else {
            let veth = topo.appliance_veth();
            if let Ok(out) = topo.lb_ns().ip(&["-d", "link", "show", "dev", veth]) {
                let text = String::from_utf8_lossy(&out.stdout);
                let mode = if text.contains("xdpgeneric") {
                    "XDP generic (skb) mode"
                } else if text.contains(" xdp") || text.contains("prog/xdp") {
                    "XDP native (driver) mode"
                } else {
                    "no XDP program (AF_PACKET)"
                };
                notes.push(format!("{veth}: {mode}"));
            }
            if let Ok(s) = counters::link_stats(topo.lb_ns(), veth) {
                notes.push(format!(
                    "{veth} (kernel side of the DPDK port): {} frames received towards DPDK, \
                     {} dropped there; {} sent from DPDK",
                    s.rx_packets, s.rx_dropped, s.tx_packets
                ));
            }
        }
        if let Ok((_, text)) = app.get("/metrics") {
            let drops: Vec<&str> = text
                .lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.contains("drop") || l.contains("table_full"))
                        && !l.ends_with(" 0")
                })
                .collect();
            notes.push(if drops.is_empty() {
                "udplb counted no drops of its own".into()
            } else {
                format!("udplb's own drop counters: `{}`", drops.join("`, `"))
            });
        }
        notes
    }
}

/// The `lladdr` of `ip -j neigh show` output, if resolved.
fn neigh_mac(json: &str) -> Option<[u8; 6]> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let mac = v.as_array()?.first()?.get("lladdr")?.as_str()?;
    let mut out = [0u8; 6];
    let mut parts = mac.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The TAP's kernel-side counters: `tx dropped` are frames the kernel could not queue
/// for the DPDK reader.
pub(super) fn tap_note(topo: &Topology) -> String {
    let tap = topo.tap_name();
    let s = counters::link_stats(topo.lb_ns(), tap).unwrap_or_default();
    format!(
        "TAP {tap} (kernel side): {} frames written towards DPDK, {} dropped there (queue full); {} frames read back from DPDK",
        s.tx_packets, s.tx_dropped, s.rx_packets
    )
}

/// The VIP as a local address of the lb namespace (for the socket proxies).
fn add_vip(topo: &Topology) -> Result<()> {
    topo.lb_ns()
        .ip(&["addr", "add", &format!("{}/32", vip(topo)), "dev", "lo"])
        .map(drop)
}

/// nginx as its users configure it for UDP: per-flow consistent hashing, one response
/// per request; one worker, pinned to the system-under-test CPU (the other one is the
/// generator's).
fn nginx_conf(topo: &Topology, dir: &Path, port: u16) -> String {
    let mut s = String::new();
    let d = dir.display();
    // worker_cpu_affinity takes a bit mask written in binary, CPU 0 rightmost.
    let mask = format!("{:b}", 1u64 << SUT_CPU);
    let _ = writeln!(
        s,
        "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    );
    let _ = writeln!(
        s,
        "user root;\nworker_processes 1;\nworker_cpu_affinity {mask};\nworker_rlimit_nofile {NOFILE};"
    );
    let _ = writeln!(s, "pid {d}/nginx.pid;\nerror_log {d}/error.log warn;");
    let _ = writeln!(s, "events {{ worker_connections {}; }}", NOFILE - 100);
    let _ = writeln!(
        s,
        "stream {{\n  upstream backends {{\n    hash $remote_addr$remote_port consistent;"
    );
    for b in backend_addrs(topo, port) {
        // max_fails=0: a sink never answers, which must not mark the backend down.
        let _ = writeln!(s, "    server {b} max_fails=0;");
    }
    let _ = writeln!(
        s,
        "  }}\n  server {{\n    listen {}:{port} udp reuseport;",
        vip(topo)
    );
    let _ = writeln!(
        s,
        "    proxy_pass backends;\n    proxy_responses 1;\n    proxy_timeout {IDLE_TIMEOUT_S}s;\n  }}\n}}"
    );
    s
}

/// Kernel NAT: DNAT of the VIP to a backend chosen by a hash of the client address and
/// port; conntrack keeps the flow and reverses the NAT on replies.
fn nft_rules(topo: &Topology, port: u16) -> String {
    let map: Vec<String> = topo
        .backends()
        .iter()
        .enumerate()
        .map(|(i, b)| format!("{i} : {}", b.ipv4()))
        .collect();
    format!(
        "table ip udplb_bench {{\n  chain pre {{\n    type nat hook prerouting priority dstnat; policy accept;\n    ip daddr {} udp dport {port} dnat to jhash ip saddr . udp sport mod {} map {{ {} }}\n  }}\n}}\n",
        vip(topo),
        map.len(),
        map.join(", ")
    )
}

/// dnsdist with its defaults (leastOutstanding policy, no cache) over the dnsmasqs.
fn dnsdist_conf(topo: &Topology, port: u16) -> String {
    // Its default ACL admits only private and loopback clients.
    let mut s = format!(
        "setLocal(\"{}:{port}\")\nsetACL({{\"198.18.0.0/15\", \"2001:2::/48\"}})\n",
        vip(topo)
    );
    for b in backend_addrs(topo, port) {
        let _ = writeln!(s, "newServer({{address=\"{b}\"}})");
    }
    s
}

/// The generator's sink for its own ceiling: an nftables `netdev` ingress chain on the lb
/// side of the client's veth that drops everything (after RPS, on the SUT CPU).
pub(super) fn ingress_drop_rules() -> String {
    format!(
        "table netdev udplb_bench_sink {{\n  chain in {{\n    type filter hook ingress device \"{}\" priority 0; policy drop;\n  }}\n}}\n",
        placement::CLIENT_PORT
    )
}

/// The echo workload's manifests for udplb: one Gateway on both VIPs with listener
/// `echo` on `port`, one route to every backend (both addresses).
pub(super) fn echo_manifests(topo: &Topology, port: u16) -> String {
    let eps: Vec<Endpoint> = topo.backends().iter().flat_map(Endpoint::both_of).collect();
    manifests::gateway_with_route(
        "echo",
        &[vip(topo), topo.addressing().vip_v6.into()],
        &[("echo", port)],
        &[],
        port,
        &[("echo", 1, eps)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbor_macs_are_read_from_ip_json() {
        let json = r#"[{"dst":"198.19.0.1","dev":"eth0","lladdr":"02:af:ce:2c:3d:66","state":["REACHABLE"]}]"#;
        assert_eq!(neigh_mac(json), Some([0x02, 0xaf, 0xce, 0x2c, 0x3d, 0x66]));
        assert_eq!(
            neigh_mac(r#"[{"dst":"198.19.0.1","state":["FAILED"]}]"#),
            None
        );
        assert_eq!(neigh_mac("[]"), None);
        assert_eq!(neigh_mac(r#"[{"lladdr":"02:af:ce"}]"#), None);
    }

    #[test]
    fn configurations_pin_and_name_what_they_serve() {
        let conf = ingress_drop_rules();
        assert!(conf.contains("device \"c0\"") && conf.contains("policy drop"));
        assert!(Peer::UdplbTap.is_udplb() && !Peer::Nftables.is_udplb());
        assert_eq!(
            serde_json::to_string(&Peer::UdplbAfXdp).expect("json"),
            "\"udplb-af-xdp\""
        );
    }
}

//! The systems measured and how each one is set up in a topology's lb namespace: udplb
//! (through [`Appliance::start`]), nginx's stream UDP proxy, nftables DNAT and dnsdist,
//! each configured the way its users would for per-flow UDP balancing.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ladder::Sut;
use crate::appliance::{Appliance, ApplianceOptions};
use crate::counters;
use crate::error::{Error, Result};
use crate::exec::{self, Process};
use crate::manifests::{self, Endpoint};
use crate::topology::Topology;

/// Idle timeout of every peer's per-flow state (udplb, nginx, conntrack).
pub(super) const IDLE_TIMEOUT_S: u32 = 10;

/// The hard open-file limit of this machine's processes (no CAP_SYS_RESOURCE to raise
/// it): it bounds the generator's flows and nginx's sessions.
pub(super) const NOFILE: u32 = 20_000;

/// The systems measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// No load balancer: the generator straight to the backends through the kernel router.
    Direct,
    /// udplb on a DPDK net_tap port.
    Udplb,
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
            Peer::Udplb => "udplb",
            Peer::Nginx => "nginx stream",
            Peer::Nftables => "nftables DNAT",
            Peer::Dnsdist => "dnsdist",
        }
    }

    /// A fresh topology for this peer: one client, three backends; the lb namespace's
    /// kernel routes for every peer but udplb.
    pub(super) fn topology(self) -> Result<Topology> {
        Topology::builder()
            .clients(1)
            .backends(3)
            .kernel_router(self != Peer::Udplb)
            .build()
    }
}

/// A peer running in a topology: where clients send, and the processes (or udplb) that
/// stop when it is dropped.
pub(super) struct RunningPeer<'t> {
    pub(super) sut: Sut<'t>,
    _procs: Vec<Process>,
    udplb: Option<Appliance<'t>>,
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
        sut: Sut {
            topo,
            targets: vec![SocketAddr::new(vip(topo), port)],
            has_processes: true,
        },
        _procs: Vec::new(),
        udplb: None,
    };
    match peer {
        Peer::Direct => {
            running.sut.targets = backend_addrs(topo, port);
            running.sut.has_processes = false;
        }
        Peer::Udplb => {
            // The appliance's own polling default (a worker that never sleeps, as
            // deployed), not the testbench's CPU-saving back-off, which would add up to
            // 100 µs to every round trip at moderate rates.
            let mut opts = ApplianceOptions::new(manifests);
            opts.idle_timeout = format!("{IDLE_TIMEOUT_S}s");
            opts.idle_backoff_us = 0;
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
            running._procs.push(p);
        }
        Peer::Nftables => {
            running.sut.has_processes = false;
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
            running._procs.push(p);
        }
    }
    Ok(running)
}

impl RunningPeer<'_> {
    /// For udplb: where its run dropped packets — the kernel side of its TAP (the queue
    /// towards DPDK was full) and udplb's own non-zero drop counters. Empty for the
    /// other peers.
    pub(super) fn drop_notes(&self) -> Vec<String> {
        let Some(app) = &self.udplb else {
            return Vec::new();
        };
        let mut notes = vec![tap_note(self.sut.topo)];
        if let Ok((_, text)) = app.get("/metrics") {
            let drops: Vec<&str> = text
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains("drop") && !l.ends_with(" 0"))
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
/// per request, workers on every core.
fn nginx_conf(topo: &Topology, dir: &Path, port: u16) -> String {
    let mut s = String::new();
    let d = dir.display();
    let _ = writeln!(
        s,
        "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    );
    let _ = writeln!(
        s,
        "user root;\nworker_processes auto;\nworker_rlimit_nofile {NOFILE};"
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

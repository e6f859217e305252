//! `testbench demo`: the README's first command. Builds a topology with three dnsmasq
//! backends, runs udplb on a DPDK port (a TAP by default; `net_af_xdp` or `net_af_packet`
//! on a veth on request) with `config/examples/dns/`, shows `dig` answers spreading over
//! the backends, prints status and key metrics, and cleans up.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use crate::appliance::{Appliance, ApplianceOptions};
use crate::error::{Error, Result};
use crate::topology::Topology;
use crate::traffic::dns::{dig, DigQuery, Dnsmasq, DNS_PORT};

/// Reads every `*.yaml` of `dir` into one multi-document stream (sorted by name).
///
/// # Errors
/// The directory or a file cannot be read.
pub fn read_manifest_dir(dir: &Path) -> Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("reading {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        docs.push(
            std::fs::read_to_string(&f)
                .map_err(|e| Error::io(format!("reading {}", f.display()), e))?,
        );
    }
    Ok(docs.join("\n---\n"))
}

/// The kind of DPDK port the demo gives udplb.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DemoPort {
    /// `net_tap`: a TAP the testbench bridges (the default; works everywhere).
    #[default]
    Tap,
    /// `net_af_xdp` on a veth whose peer is on the bridge.
    AfXdp,
    /// `net_af_packet` on that veth.
    AfPacket,
}

impl DemoPort {
    /// udplb's device in `topo` (`None`: the topology's TAP).
    pub fn device(self, topo: &Topology) -> Option<String> {
        let veth = topo.appliance_veth();
        match self {
            DemoPort::Tap => None,
            DemoPort::AfXdp => Some(format!(
                "net_af_xdp0,iface={veth},start_queue=0,queue_count=1"
            )),
            DemoPort::AfPacket => Some(format!("net_af_packet0,iface={veth}")),
        }
    }
}

/// Runs the demo with the manifests of `manifest_dir` on a `port`; `queries` dig queries
/// per family.
///
/// # Errors
/// Any step fails (everything created is removed all the same).
pub fn run(manifest_dir: &Path, queries: u16, port: DemoPort) -> Result<()> {
    let topo = Topology::builder().clients(1).backends(3).build()?;
    println!("== topology (namespaces: {})", topo.namespaces().join(", "));
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT)?;
    let mut opts = ApplianceOptions::new(read_manifest_dir(manifest_dir)?);
    opts.device = port.device(&topo);
    println!(
        "== dnsmasq on {} backends; starting udplb on {}",
        topo.backends().len(),
        opts.device(&topo)
    );
    if opts.is_kernel_attached() {
        println!(
            "== kernel-attached port: TX checksum offload off on the clients' and backends' \
             veths (ethtool -K eth0 tx off), as a NIC would finish checksums"
        );
    }
    let app = Appliance::start(&topo, &opts)?;
    let client = topo.client(0);
    for vip in [
        IpAddr::from(topo.addressing().vip_v4),
        topo.addressing().vip_v6.into(),
    ] {
        let src = if vip.is_ipv4() {
            IpAddr::from(client.ipv4())
        } else {
            client.ipv6().into()
        };
        let mut tally: BTreeMap<String, u32> = BTreeMap::new();
        for i in 0..queries {
            let q = DigQuery::whoami(vip).source(SocketAddr::new(src, 30000 + i));
            let answer = dig(client.ns(), &q)?;
            let who = answer.txt().unwrap_or("(no answer)").to_owned();
            println!(
                "dig @{vip} whoami.test TXT from {src}#{} -> {who}",
                30000 + i
            );
            *tally.entry(who).or_default() += 1;
        }
        println!("== {vip}: answers per backend {tally:?}");
    }
    let (_, status) = app.get("/v1/status")?;
    println!("== GET /v1/status\n{status}");
    let (_, metrics) = app.get("/metrics")?;
    println!("== GET /metrics (non-zero samples)");
    for line in metrics
        .lines()
        .filter(|l| !l.starts_with('#') && !l.ends_with(" 0"))
    {
        println!("{line}");
    }
    let (exit, log) = app.stop()?;
    println!("== udplb stopped ({exit}); last log lines:");
    for line in log
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        println!("{line}");
    }
    if !exit.success() {
        return Err(Error::invalid("udplb", format!("exited with {exit}")));
    }
    Ok(())
}

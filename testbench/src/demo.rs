//! `testbench demo`: the README's first command. Builds a topology with three dnsmasq
//! backends, runs udplb on a TAP port with `config/examples/dns/`, shows `dig` answers
//! spreading over the backends, prints status and key metrics, and cleans up.

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

/// Runs the demo with the manifests of `manifest_dir`; `queries` dig queries per family.
///
/// # Errors
/// Any step fails (everything created is removed all the same).
pub fn run(manifest_dir: &Path, queries: u16) -> Result<()> {
    let topo = Topology::builder().clients(1).backends(3).build()?;
    println!("== topology (namespaces: {})", topo.namespaces().join(", "));
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT)?;
    println!(
        "== dnsmasq on {} backends; starting udplb on TAP {}",
        topo.backends().len(),
        topo.tap_name()
    );
    let app = Appliance::start(
        &topo,
        &ApplianceOptions::new(read_manifest_dir(manifest_dir)?),
    )?;
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

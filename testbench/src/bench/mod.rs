//! `testbench bench-peers`: udplb side by side with the systems users would run instead
//! (nginx's stream UDP proxy, nftables DNAT, dnsdist), in one run, on the same topology,
//! backends and load generator; plus the generator alone and the DPDK `net_tap` I/O
//! ceiling (`dpdk-testpmd`). Writes `RESULTS.md`, `results.json` and PNG plots.
//!
//! Every peer runs in the lb namespace of its own [`Topology`] (dropped, with every
//! process in it, before the next peer starts). Throughput is one-way load to counting
//! sinks, up a load ladder; latency is the load generator in request/response mode (one
//! outstanding request per thread, every round trip kept for the distribution).
//!
//! * [`peers`]: the systems measured and their configurations;
//! * `ladder`: load steps and ladders;
//! * [`testpmd`]: the `dpdk-testpmd` driver and the I/O ceiling;
//! * `procfs`: CPU and memory of the peer's processes;
//! * [`results`]: what a run measured (`results.json`);
//! * [`report`]: `RESULTS.md` and the plots.

mod ladder;
pub mod peers;
mod procfs;
pub mod report;
pub mod results;
pub mod testpmd;

use std::path::{Path, PathBuf};
use std::time::Instant;

use self::ladder::{Load, NEWFLOW_LADDER, NEWFLOW_MAX_PER_STEP};
use self::peers::{Peer, RunningPeer};
use self::results::{PeerResult, Results, RrReport};
use crate::counters;
use crate::error::Result;
use crate::topology::Topology;
use crate::traffic::dns::{Dnsmasq, DNS_PORT};
use crate::traffic::loadgen::{LoadgenConfig, Payload};
use crate::traffic::tools::{EchoServer, Tools};

/// UDP port of the echo workload (VIP and backends).
pub const ECHO_PORT: u16 = 7777;

/// Request/response rate for latency, and its duration.
const RR_RATE: f64 = 5_000.0;
const RR_MS: u64 = 4_000;
const DNS_RR_RATE: f64 = 2_000.0;

/// Options of `testbench bench-peers`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Where RESULTS.md, results.json and the PNGs go (plot.py must be there).
    pub out: PathBuf,
    /// The testbench binary (for loadgen and echo in namespaces).
    pub tools: PathBuf,
    /// The udplb example DNS manifests.
    pub dns_manifests: PathBuf,
}

/// Runs every peer in turn and writes the report.
///
/// # Errors
/// Writing the results fails. A peer that fails is recorded in `failures` and skipped.
pub fn run(opts: &BenchOptions) -> Result<()> {
    let started = Instant::now();
    let tools = Tools::new(&opts.tools);
    let mut results = Results::on_this_machine();
    for peer in [Peer::Direct, Peer::Udplb, Peer::Nginx, Peer::Nftables] {
        eprintln!("== {} (echo workload)", peer.label());
        match echo_workload(peer, &tools) {
            Ok(r) => {
                results.peers.insert(peer, r);
            }
            Err(e) => {
                eprintln!("   failed: {e}");
                results.failures.push(format!("{}: {e}", peer.label()));
            }
        }
    }
    for peer in [Peer::Direct, Peer::Udplb, Peer::Dnsdist] {
        eprintln!("== {} (DNS workload)", peer.label());
        match dns_workload(peer, &tools, &opts.dns_manifests) {
            Ok((rr, max)) => {
                let r = results.peers.entry(peer).or_default();
                r.dns_rr = Some(rr);
                r.dns_max = Some(max);
            }
            Err(e) => {
                eprintln!("   failed: {e}");
                results
                    .failures
                    .push(format!("{} (DNS): {e}", peer.label()));
            }
        }
    }
    eprintln!("== dpdk-testpmd on net_tap");
    match testpmd::ceiling(&tools) {
        Ok(d) => results.dpdk = d,
        Err(e) => results.failures.push(format!("dpdk-testpmd: {e}")),
    }
    results.duration_s = started.elapsed().as_secs_f64();
    report::save(&opts.out, &results)?;
    report::render(&opts.out, &results)
}

/// Redraws the plots and rewrites RESULTS.md from `out/results.json` of an earlier run
/// (no measurement; results.json itself is left as it is).
///
/// # Errors
/// The file cannot be read or parsed, or the outputs cannot be written.
pub fn render(out: &Path) -> Result<()> {
    report::render(out, &report::load(out)?)
}

/// Echo workload: the throughput ladders (new flows, few and many flows, 64 and 512 B),
/// memory growth with many flows, and echo round trips.
fn echo_workload(peer: Peer, tools: &Tools) -> Result<PeerResult> {
    let topo = peer.topology()?;
    let mut sinks = start_servers(&topo, tools, true)?;
    let running = peers::start(
        peer,
        &topo,
        ECHO_PORT,
        &peers::echo_manifests(&topo, ECHO_PORT),
    )?;
    let sut = &running.sut;
    let mut result = PeerResult::default();
    // Datagrams that reached the backends' UDP layer so far, so that a slow sink does not
    // count against the peer.
    let count = || -> Result<u64> {
        topo.backends()
            .iter()
            .map(|b| counters::udp_arrivals(b.ns()))
            .sum()
    };
    // Resolve every neighbor and open the few-flow state before measuring.
    ladder::step(sut, tools, Load::few(64, Some(5_000.0), 1.0), &count)?;

    eprintln!(" new flows");
    let newflows = ladder::climb(NEWFLOW_LADDER, |rate| {
        let flows = rate.map_or(NEWFLOW_MAX_PER_STEP, |r| {
            u32::try_from(ladder::whole(r))
                .map_or(NEWFLOW_MAX_PER_STEP, |r| r.min(NEWFLOW_MAX_PER_STEP))
        });
        ladder::step(sut, tools, Load::new_flows(flows, rate), &count)
    })?;
    result.ladders.insert("new flows".into(), newflows);

    for size in [64, 512] {
        eprintln!(" {size} B, {} flows", ladder::FEW_FLOWS);
        let l = ladder::climb(ladder::LADDER, |rate| {
            ladder::step(sut, tools, Load::few(size, rate, 1.0), &count)
        })?;
        result.ladders.insert(format!("{size}B few"), l);
    }
    let rss0 = procfs::rss_kib(topo.lb_ns());
    // Open the many flows at a moderate rate, then measure with them all in place.
    ladder::step(sut, tools, Load::many(64, Some(40_000.0)), &count)?;
    for size in [64, 512] {
        eprintln!(" {size} B, {} flows", ladder::MANY_FLOWS);
        let l = ladder::climb(ladder::LADDER, |rate| {
            ladder::step(sut, tools, Load::many(size, rate), &count)
        })?;
        result.ladders.insert(format!("{size}B many"), l);
    }
    if sut.has_processes {
        result.rss_growth_kib = Some(procfs::rss_kib(topo.lb_ns()).saturating_sub(rss0));
    }
    result.notes = running.drop_notes();

    eprintln!(" request/response latency");
    sinks.clear();
    let _echo = start_servers(&topo, tools, false)?;
    // Warm-up: new flows and neighbor entries.
    round_trips(tools, &running, Payload::Echo, Some(RR_RATE), 2, 500)?;
    result.echo_rr = Some(round_trips(
        tools,
        &running,
        Payload::Echo,
        Some(RR_RATE),
        2,
        RR_MS,
    )?);
    Ok(result)
}

/// DNS workload: round trips at a fixed rate, and the closed-loop maximum with 8
/// outstanding queries.
fn dns_workload(peer: Peer, tools: &Tools, manifests_dir: &Path) -> Result<(RrReport, RrReport)> {
    let topo = peer.topology()?;
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT)?;
    let manifests = crate::demo::read_manifest_dir(manifests_dir)?;
    let running = peers::start(peer, &topo, DNS_PORT, &manifests)?;
    round_trips(tools, &running, Payload::Dns, Some(DNS_RR_RATE), 2, 500)?;
    let rr = round_trips(tools, &running, Payload::Dns, Some(DNS_RR_RATE), 2, RR_MS)?;
    let max = round_trips(tools, &running, Payload::Dns, None, 8, 3_000)?;
    Ok((rr, max))
}

/// Request/response round trips through `running` for `duration_ms`: 64 flows from the
/// client, `threads` requests outstanding, `rate` requests per second in all (`None`: as
/// fast as replies come), 200 ms reply timeout.
fn round_trips(
    tools: &Tools,
    running: &RunningPeer<'_>,
    payload: Payload,
    rate: Option<f64>,
    threads: u32,
    duration_ms: u64,
) -> Result<RrReport> {
    /// Flows (sockets) of a latency run.
    const FLOWS: u32 = 64;
    /// Bounds the request count of an unpaced run; its duration ends it first.
    const UNPACED_CEILING: f64 = 1_000_000.0;
    let topo = running.sut.topo;
    let client = topo.client(0);
    let targets = &running.sut.targets;
    let mut cfg = LoadgenConfig::new(targets[0], client.ipv4().into(), FLOWS);
    cfg.targets.clone_from(targets);
    cfg.payload = payload;
    cfg.threads = threads;
    cfg.rate = rate;
    cfg.reply_timeout_ms = 200;
    cfg.max_duration_ms = duration_ms;
    let total = rate.unwrap_or(UNPACED_CEILING) * duration_ms as f64 / 1000.0;
    cfg.count = ladder::whole((total / f64::from(FLOWS)).ceil().max(1.0));
    let report = tools.loadgen(client.ns(), &cfg, &topo.log_path("rr.log"))?;
    let r = RrReport::from(&report);
    eprintln!(
        "   {} sent, {} answered in {:.1} s; p50 {:.0} µs p99 {:.0} µs p99.9 {:.0} µs",
        r.sent, r.received, r.elapsed_s, r.p50_us, r.p99_us, r.p999_us
    );
    Ok(r)
}

/// An echo server (`sink`: a counting sink) on [`ECHO_PORT`] of every backend.
fn start_servers(topo: &Topology, tools: &Tools, sink: bool) -> Result<Vec<EchoServer>> {
    topo.backends()
        .iter()
        .map(|b| {
            let log = topo.log_path(&format!("echo-{}-{sink}.log", b.name()));
            tools.start_echo(b, ECHO_PORT, sink, &log)
        })
        .collect()
}

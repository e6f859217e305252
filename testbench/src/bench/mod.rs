//! `testbench bench-peers`: udplb side by side with the systems users would run instead
//! (nginx's stream UDP proxy, nftables DNAT, dnsdist), in one run, on the same topology,
//! backends and generator; plus the generator alone. Writes `RESULTS.md`, `results.json`
//! and PNG plots.
//!
//! Every peer runs in the lb namespace of its own [`Topology`] (dropped, with every
//! process in it, before the next peer starts). Throughput is one-way load from the DPDK
//! generator (`testbench udpgen` on a kernel-attached port in the client namespace) to
//! sockets on the backends that are never read, counted at the backends' UDP layer and
//! links; the machine's CPU time comes from `/proc/stat`. Latency is the socket load
//! generator in request/response mode (closed loop, every round trip kept).
//!
//! * [`peers`]: the systems measured and their configurations;
//! * `placement`: which CPU runs what;
//! * `ladder`: load steps, cases and the search for a maximum;
//! * [`testpmd`]: the `dpdk-testpmd` driver (tests use it as a stand-in DPDK application);
//! * `procfs`: CPU and memory;
//! * [`results`]: what a run measured (`results.json`);
//! * [`report`]: `RESULTS.md` and the plots.

mod ladder;
pub mod peers;
mod placement;
mod procfs;
pub mod report;
pub mod results;
pub mod testpmd;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use self::ladder::{Bencher, Case, Flows, Load, CASES, FLOOR_PPS, FRAME_64, NEW_FLOWS};
use self::peers::{Peer, RunningPeer};
use self::placement::GEN_CPU;
use self::results::{GeneratorCeiling, PeerResult, Results, RrReport};
use crate::error::{Error, Result};
use crate::exec;
use crate::topology::{Topology, HOST_IFACE};
use crate::traffic::dns::{Dnsmasq, DNS_PORT};
use crate::traffic::loadgen::{LoadgenConfig, Payload};
use crate::traffic::tools::{EchoServer, Tools};
use crate::traffic::udpgen::driver::Generator;

/// UDP port of the echo workload (VIP and backends).
pub const ECHO_PORT: u16 = 7777;

/// Request/response rate for latency, and the DNS one.
const RR_RATE: f64 = 5_000.0;
const DNS_RR_RATE: f64 = 2_000.0;

/// The fixed load at which every peer's CPU per packet is also compared (64 B, 1 flow).
pub const EQUAL_LOAD_PPS: f64 = 100_000.0;

/// Rate at which the many flows are opened before their cases.
const OPEN_MANY_PPS: f64 = 100_000.0;

/// The peers of the echo workload, in the order they run.
const ECHO_PEERS: [Peer; 6] = [
    Peer::Direct,
    Peer::UdplbAfXdp,
    Peer::UdplbAfPacket,
    Peer::UdplbTap,
    Peer::Nftables,
    Peer::Nginx,
];

/// The generator's port driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenPort {
    /// `net_af_xdp` on the client's veth.
    AfXdp,
    /// `net_af_packet` on the client's veth.
    AfPacket,
}

impl GenPort {
    /// The DPDK device on the client's interface.
    pub fn device(self) -> String {
        match self {
            GenPort::AfXdp => {
                format!("net_af_xdp0,iface={HOST_IFACE},start_queue=0,queue_count=1")
            }
            GenPort::AfPacket => format!("net_af_packet0,iface={HOST_IFACE},qpairs=1"),
        }
    }
}

/// Options of `testbench bench-peers`.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Where RESULTS.md, results.json and the PNGs go (plot.py must be there).
    pub out: PathBuf,
    /// The testbench binary (for the generator, loadgen and servers in namespaces).
    pub tools: PathBuf,
    /// The udplb example DNS manifests.
    pub dns_manifests: PathBuf,
    /// A smoke run: short steps, 64-byte cases only, short latency runs.
    pub quick: bool,
    /// The generator's port.
    pub gen_port: GenPort,
    /// The command line, for the report.
    pub command: String,
    /// Only these peers (empty: all); the generator alone is measured either way.
    pub only: Vec<Peer>,
}

/// Step lengths and cases of a run.
struct Plan {
    secs: f64,
    new_flow_secs: f64,
    equal_secs: f64,
    rr_ms: u64,
    cases: Vec<Case>,
    /// Let every peer's flow state expire before the new-flow case.
    expire_before_new_flows: bool,
    gen_device: String,
}

impl Plan {
    fn new(opts: &BenchOptions) -> Plan {
        let all: Vec<Case> = CASES.to_vec();
        if opts.quick {
            Plan {
                secs: 0.3,
                new_flow_secs: 0.3,
                equal_secs: 0.5,
                rr_ms: 1_000,
                cases: all
                    .into_iter()
                    .filter(|c| c.frame_len == FRAME_64)
                    .collect(),
                expire_before_new_flows: false,
                gen_device: opts.gen_port.device(),
            }
        } else {
            Plan {
                secs: 1.0,
                new_flow_secs: 0.5,
                equal_secs: 2.0,
                rr_ms: 4_000,
                cases: all,
                expire_before_new_flows: true,
                gen_device: opts.gen_port.device(),
            }
        }
    }
}

/// Runs the generator alone, then every peer in turn, and writes the report.
///
/// # Errors
/// Writing the results fails. A peer that fails is recorded in `failures` and skipped.
pub fn run(opts: &BenchOptions) -> Result<()> {
    let started = Instant::now();
    let tools = Tools::new(&opts.tools);
    let plan = Plan::new(opts);
    let mut results = Results::on_this_machine();
    results.command.clone_from(&opts.command);
    results.quick = opts.quick;
    results.placement = vec![
        format!(
            "the bench process, and the echo servers, sinks, DNS servers and latency clients it \
             starts: CPUs {}",
            placement::own_affinity()
        ),
        format!(
            "generator: `testbench udpgen` on `{}` in the client namespace, DPDK lcore {GEN_CPU} \
             (pinned to CPU {GEN_CPU}, alone there while it sends)",
            plan.gen_device
        ),
        format!(
            "system under test: CPU {}: udplb's worker lcore (its main lcore, which only \
             serves the API and the slow path, on CPU {GEN_CPU}), nginx's one worker \
             (`worker_cpu_affinity`), dnsdist (`taskset`), and the kernel's softirq work for \
             every peer's packets",
            placement::SUT_CPU
        ),
    ];
    eprintln!("== generator alone");
    match generator_ceiling(&tools, &plan) {
        Ok(g) => results.generator = g,
        Err(e) => {
            eprintln!("   failed: {e}");
            results.failures.push(format!("generator alone: {e}"));
        }
    }
    let wanted = |p: &Peer| opts.only.is_empty() || opts.only.contains(p);
    for peer in ECHO_PEERS.into_iter().filter(wanted) {
        eprintln!("== {} (echo workload)", peer.label());
        match echo_workload(peer, &tools, &plan) {
            Ok((r, steering)) => {
                if !results.placement.contains(&steering) {
                    results.placement.push(steering);
                }
                results.peers.insert(peer, r);
            }
            Err(e) => {
                eprintln!("   failed: {e}");
                results.failures.push(format!("{}: {e}", peer.label()));
            }
        }
    }
    for peer in [Peer::Direct, Peer::UdplbAfXdp, Peer::Dnsdist]
        .into_iter()
        .filter(wanted)
    {
        eprintln!("== {} (DNS workload)", peer.label());
        match dns_workload(peer, &tools, &opts.dns_manifests, &plan) {
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
    results.loadavg_end = results::loadavg();
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

/// Starts the generator in `topo`'s client 0, sending to `dst_mac`.
fn generator<'t>(
    topo: &'t Topology,
    tools: &Tools,
    plan: &Plan,
    targets: Vec<std::net::SocketAddr>,
    dst_mac: [u8; 6],
) -> Result<Bencher<'t>> {
    let gen = Generator::start(
        topo.client(0).ns(),
        tools.bin(),
        &plan.gen_device,
        GEN_CPU,
        &topo.log_path("udpgen.log"),
    )?;
    Ok(Bencher {
        topo,
        targets,
        dst_mac,
        gen,
        new_flow_cursor: 0,
    })
}

/// The generator alone: unpaced, into an nftables ingress chain on the lb side of the
/// client's veth that drops everything, for every case.
fn generator_ceiling(tools: &Tools, plan: &Plan) -> Result<GeneratorCeiling> {
    let (topo, _) = Peer::Direct.topology()?;
    let holds = start_holds(&topo, tools)?;
    let running = peers::start(Peer::Direct, &topo, ECHO_PORT, "")?;
    let mac = running.next_hop_mac()?;
    exec::run(
        topo.lb_ns().command("nft").arg("-f").arg("-"),
        Some(peers::ingress_drop_rules().as_bytes()),
        Duration::from_secs(10),
    )?;
    let mut b = generator(&topo, tools, plan, running.targets.clone(), mac)?;
    let mut out = GeneratorCeiling {
        driver: b.gen.hello().driver.clone(),
        ..GeneratorCeiling::default()
    };
    for case in &plan.cases {
        eprintln!(" {}", case.name);
        let s = b.step(&Load {
            frame_len: case.frame_len,
            flows: case.flows,
            rate: None,
            secs: plan.secs,
        })?;
        ladder::log_step(&s);
        out.cases.insert(case.name.to_owned(), s);
    }
    b.gen.stop()?;
    drop(holds);
    Ok(out)
}

/// Echo workload: echo round trips first (a fresh system, echo servers on the
/// backends), then, with never-read sockets on the backends instead, the equal-load
/// step, the throughput searches (1 flow and many, 64 and 512 B), memory growth with many
/// flows, and new flows. Returns the results and how the client's traffic was steered.
fn echo_workload(peer: Peer, tools: &Tools, plan: &Plan) -> Result<(PeerResult, String)> {
    let (topo, steering) = peer.topology()?;
    let echo = start_servers(&topo, tools)?;
    let running = peers::start(
        peer,
        &topo,
        ECHO_PORT,
        &peers::echo_manifests(&topo, ECHO_PORT),
    )?;
    let mut result = PeerResult::default();
    eprintln!(" request/response latency");
    // Warm-up: flows and neighbor entries.
    round_trips(tools, &running, Payload::Echo, Some(RR_RATE), 2, 500)?;
    result.echo_rr = Some(round_trips(
        tools,
        &running,
        Payload::Echo,
        Some(RR_RATE),
        2,
        plan.rr_ms,
    )?);
    drop(echo);
    let _holds = start_holds(&topo, tools)?;
    let mac = running.next_hop_mac()?;
    // From here the generator's port holds the client's interface.
    let mut b = generator(&topo, tools, plan, running.targets.clone(), mac)?;
    // Open the one flow and fill the sinks' buffers before measuring.
    b.step(&Load {
        frame_len: FRAME_64,
        flows: Flows::One,
        rate: Some(20_000.0),
        secs: 0.5,
    })?;
    eprintln!(" equal load: 64B 1 flow at {EQUAL_LOAD_PPS:.0} pps");
    let eq = b.step(&Load {
        frame_len: FRAME_64,
        flows: Flows::One,
        rate: Some(EQUAL_LOAD_PPS),
        secs: plan.equal_secs,
    })?;
    ladder::log_step(&eq);
    result.equal_load = Some(eq);
    let rss0 = procfs::rss_kib(topo.lb_ns());
    let mut many_open = false;
    for case in &plan.cases {
        if case.flows == Flows::Many && !many_open {
            eprintln!(" opening {} flows", ladder::MANY_FLOWS);
            b.step(&Load {
                frame_len: FRAME_64,
                flows: Flows::Many,
                rate: Some(OPEN_MANY_PPS),
                secs: ladder::MANY_FLOWS as f64 / OPEN_MANY_PPS,
            })?;
            many_open = true;
        }
        eprintln!(" {}", case.name);
        let l = ladder::search(FLOOR_PPS, |rate| {
            b.step(&Load {
                frame_len: case.frame_len,
                flows: case.flows,
                rate,
                secs: plan.secs,
            })
        })?;
        result.ladders.insert(case.name.to_owned(), l);
    }
    if running.has_processes() {
        result.rss_growth_kib = Some(procfs::rss_kib(topo.lb_ns()).saturating_sub(rss0));
    }
    if plan.expire_before_new_flows {
        // Every peer starts the new-flow case with its flow state expired (nginx's
        // sessions hold its open files until then).
        std::thread::sleep(Duration::from_secs(u64::from(peers::IDLE_TIMEOUT_S) + 1));
    }
    eprintln!(" {}", NEW_FLOWS.name);
    let l = ladder::search(FLOOR_PPS, |rate| {
        b.step(&Load {
            frame_len: NEW_FLOWS.frame_len,
            flows: NEW_FLOWS.flows,
            rate,
            secs: plan.new_flow_secs,
        })
    })?;
    result.ladders.insert(NEW_FLOWS.name.to_owned(), l);
    result.notes = running.notes();
    // Give the client's interface back to the kernel (the XDP program goes with it).
    b.gen.stop()?;
    Ok((result, steering))
}

/// DNS workload: round trips at a fixed rate, and the closed-loop maximum with 8
/// outstanding queries.
fn dns_workload(
    peer: Peer,
    tools: &Tools,
    manifests_dir: &Path,
    plan: &Plan,
) -> Result<(RrReport, RrReport)> {
    let (topo, _) = peer.topology()?;
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT)?;
    let manifests = crate::demo::read_manifest_dir(manifests_dir)?;
    let running = peers::start(peer, &topo, DNS_PORT, &manifests)?;
    round_trips(tools, &running, Payload::Dns, Some(DNS_RR_RATE), 2, 500)?;
    let rr = round_trips(
        tools,
        &running,
        Payload::Dns,
        Some(DNS_RR_RATE),
        2,
        plan.rr_ms,
    )?;
    let max = round_trips(
        tools,
        &running,
        Payload::Dns,
        None,
        8,
        plan.rr_ms.min(3_000),
    )?;
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
    let topo = running.topo;
    let client = topo.client(0);
    let targets = &running.targets;
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

/// An echo server on [`ECHO_PORT`] of every backend.
fn start_servers(topo: &Topology, tools: &Tools) -> Result<Vec<EchoServer>> {
    topo.backends()
        .iter()
        .map(|b| {
            let log = topo.log_path(&format!("echo-{}.log", b.name()));
            tools.start_echo(b, ECHO_PORT, false, &log)
        })
        .collect()
}

/// A never-read socket on [`ECHO_PORT`] of every backend (`testbench hold`).
fn start_holds(topo: &Topology, tools: &Tools) -> Result<Vec<exec::Process>> {
    topo.backends()
        .iter()
        .map(|b| {
            let log = topo.log_path(&format!("hold-{}.log", b.name()));
            tools.start_hold(b, ECHO_PORT, &log)
        })
        .collect::<Result<Vec<_>>>()
        .map_err(|e| Error::invalid("backend sinks", e.to_string()))
}

//! Soak and chaos runs of the real udplb on the TAP testbench (`testbench soak`,
//! `testbench chaos`, `scripts/soak`, `scripts/chaos`), bounded in time and count.
//!
//! - **Soak**: pinned echo flows through the VIP while a controller re-PUTs the full set
//!   every 100 ms, alternating two sets that differ by a listener no flow uses (the pinned
//!   flows' listener and backends never change). Figures: PUTs and failed PUTs, udplb's
//!   RSS after the first minute (or half the run, if shorter) and at the end, datagrams
//!   sent and lost, flows that changed backend.
//! - **Chaos**: each round PUTs a new set (the echo route to backend `round % 2`, named
//!   `chaos-<round>`), kills udplb with SIGKILL under traffic, starts it again, and
//!   checks that it serves that last accepted set (persisted by the API): the status
//!   names the route and the probes are answered by that backend. Figures: kills,
//!   restarts, rounds served the last set, the longest time from kill to the first answer.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::appliance::{Appliance, ApplianceOptions};
use crate::error::{Error, Result};
use crate::manifests::{gateway_with_route, Endpoint};
use crate::topology::Topology;
use crate::traffic::loadgen::{LoadgenConfig, Mode};
use crate::traffic::tools::{EchoServer, Tools};

/// The echo port the flows use; the soak's second set adds a listener on `PORT + 1`.
const PORT: u16 = 7000;

/// What a soak does.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// How long (the controller and the traffic run this long).
    pub duration: Duration,
    /// Time between two PUTs.
    pub put_interval: Duration,
    /// Pinned flows (fixed source ports).
    pub flows: u32,
    /// Datagrams per second over all flows.
    pub rate: f64,
    /// The `testbench` binary (echo, loadgen).
    pub tools: PathBuf,
}

/// A soak's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SoakReport {
    /// Minutes run.
    pub minutes: f64,
    /// PUTs sent, and how many did not answer 200.
    pub puts: u64,
    /// PUTs that failed.
    pub put_failures: u64,
    /// udplb's RSS after the first minute (or half the run), and at the end, in KiB.
    pub rss_first_min_kb: u64,
    /// RSS at the end.
    pub rss_end_kb: u64,
    /// Growth from the first to the end, in percent.
    pub rss_growth_pct: f64,
    /// Datagrams the pinned flows sent, and lost (no echo within 1 s).
    pub datagrams: u64,
    /// Datagrams lost.
    pub lost: u64,
    /// Flows answered by more than one backend.
    pub flows_moved: u64,
}

impl SoakReport {
    /// The one summary line.
    pub fn line(&self) -> String {
        format!(
            "SOAK minutes={:.1} puts={} put_failures={} rss_first_min_kb={} rss_end_kb={} \
             rss_growth_pct={:.1} datagrams={} lost={} flows_moved={}",
            self.minutes,
            self.puts,
            self.put_failures,
            self.rss_first_min_kb,
            self.rss_end_kb,
            self.rss_growth_pct,
            self.datagrams,
            self.lost,
            self.flows_moved
        )
    }

    /// Whether it meets the bar: no failed PUT, no datagram lost, no flow moved, RSS
    /// within 10 % of its value after the first minute.
    pub fn passed(&self) -> bool {
        self.put_failures == 0
            && self.lost == 0
            && self.flows_moved == 0
            && self.rss_growth_pct <= 10.0
    }
}

/// An echo server on every backend.
fn echo_servers(topo: &Topology, tools: &Tools) -> Result<Vec<EchoServer>> {
    topo.backends()
        .iter()
        .map(|b| {
            let log = topo.log_path(&format!("echo-{}.log", b.name()));
            tools.start_echo(b, PORT, false, &log)
        })
        .collect()
}

fn vip(topo: &Topology) -> IpAddr {
    topo.addressing().vip_v4.into()
}

/// The set with `listeners`, routing `route` to the given backends (one Service each).
fn echo_set(topo: &Topology, route: &str, listeners: &[(&str, u16)], backends: &[usize]) -> String {
    let services: Vec<(String, u32, Vec<Endpoint>)> = backends
        .iter()
        .map(|&i| {
            (
                format!("svc{i}"),
                1,
                Endpoint::both_of(topo.backend(i)).to_vec(),
            )
        })
        .collect();
    let services: Vec<(&str, u32, Vec<Endpoint>)> = services
        .iter()
        .map(|(n, w, e)| (n.as_str(), *w, e.clone()))
        .collect();
    gateway_with_route(route, &[vip(topo)], listeners, &[], PORT, &services)
}

/// One request on each of `flows` flows from fixed ports below the ephemeral range, so
/// every backend's neighbor entry is resolved before the measured traffic starts.
fn warm_up(topo: &Topology, tools: &Tools, first_port: u16) {
    let mut cfg = LoadgenConfig::new(
        SocketAddr::new(vip(topo), PORT),
        topo.client(0).ipv4().into(),
        16,
    );
    cfg.first_port = Some(first_port);
    cfg.rate = Some(2000.0);
    let _ = tools.loadgen(topo.client(0).ns(), &cfg, &topo.log_path("warmup.log"));
}

/// udplb's resident set size, in KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs a soak.
///
/// # Errors
/// The topology, udplb or the tools cannot start, or udplb stops answering.
pub fn soak(opts: &SoakOptions) -> Result<SoakReport> {
    let tools = Tools::new(&opts.tools);
    let topo = Topology::builder().clients(1).backends(2).build()?;
    let _echo = echo_servers(&topo, &tools)?;
    let a = echo_set(&topo, "soak", &[("echo", PORT)], &[0, 1]);
    let b = echo_set(
        &topo,
        "soak",
        &[("echo", PORT), ("extra", PORT + 1)],
        &[0, 1],
    );
    let mut options = ApplianceOptions::new(a.clone());
    options.persist_api = true;
    let app = Appliance::start(&topo, &options)?;
    let files = [topo.log_path("set-a.yaml"), topo.log_path("set-b.yaml")];
    std::fs::write(&files[0], &a).map_err(|e| Error::io("write set-a.yaml", e))?;
    std::fs::write(&files[1], &b).map_err(|e| Error::io("write set-b.yaml", e))?;
    warm_up(&topo, &tools, 22000);

    let mut cfg = LoadgenConfig::new(
        SocketAddr::new(vip(&topo), PORT),
        topo.client(0).ipv4().into(),
        opts.flows,
    );
    cfg.first_port = Some(23000);
    cfg.mode = Mode::RequestResponse;
    cfg.count = u64::MAX;
    cfg.rate = Some(opts.rate);
    cfg.max_duration_ms = u64::try_from(opts.duration.as_millis()).unwrap_or(u64::MAX);
    cfg.reply_timeout_ms = 1000;
    cfg.threads = 1;
    let traffic = tools.spawn_loadgen(
        topo.client(0).ns(),
        &cfg,
        &topo.log_path("soak-loadgen.log"),
    )?;

    let start = Instant::now();
    let baseline_at = (opts.duration / 2).min(Duration::from_secs(60));
    let mut report = SoakReport::default();
    let mut next_rss = Duration::ZERO;
    let mut i = 0usize;
    while start.elapsed() < opts.duration {
        let tick = Instant::now();
        match app.put_manifests_file(&files[i % 2]) {
            Ok((200, _)) => {}
            Ok((code, body)) => {
                report.put_failures += 1;
                eprintln!("soak: PUT {i}: HTTP {code}: {body}");
            }
            Err(e) => {
                report.put_failures += 1;
                eprintln!("soak: PUT {i}: {e}");
            }
        }
        report.puts += 1;
        i += 1;
        let elapsed = start.elapsed();
        if elapsed >= next_rss {
            next_rss = elapsed + Duration::from_secs(5);
            let rss = rss_kb(app.pid())
                .ok_or_else(|| Error::invalid("udplb", format!("exited:\n{}", app.log())))?;
            if report.rss_first_min_kb == 0 && elapsed >= baseline_at {
                report.rss_first_min_kb = rss;
            }
            report.rss_end_kb = rss;
        }
        std::thread::sleep(opts.put_interval.saturating_sub(tick.elapsed()));
    }
    report.minutes = start.elapsed().as_secs_f64() / 60.0;
    let traffic = traffic.finish()?;
    report.rss_end_kb = rss_kb(app.pid()).unwrap_or(report.rss_end_kb);
    report.rss_growth_pct = growth(report.rss_first_min_kb, report.rss_end_kb);
    report.datagrams = traffic.sent;
    report.lost = traffic.lost;
    report.flows_moved = traffic
        .flows
        .iter()
        .filter(|f| f.backends.len() > 1)
        .count()
        .try_into()
        .unwrap_or(u64::MAX);
    app.stop()?;
    Ok(report)
}

// RSS figures are KiB counts far below 2^52: exact as floats.
#[allow(clippy::cast_precision_loss)]
fn growth(first: u64, end: u64) -> f64 {
    if first == 0 {
        return 0.0;
    }
    (end as f64 - first as f64) * 100.0 / first as f64
}

/// What a chaos run does.
#[derive(Clone, Debug)]
pub struct ChaosOptions {
    /// Kill-and-restart rounds.
    pub kills: u32,
    /// The `testbench` binary.
    pub tools: PathBuf,
}

/// A chaos run's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChaosReport {
    /// SIGKILLs sent.
    pub kills: u32,
    /// Restarts that came up ready.
    pub restarts: u32,
    /// Rounds in which the restarted udplb served the last accepted set.
    pub served_last_config: u32,
    /// Longest time from the kill to the first datagram answered, in seconds.
    pub max_recovery_s: f64,
}

impl ChaosReport {
    /// The one summary line.
    pub fn line(&self) -> String {
        format!(
            "CHAOS kills={} restarts={} served_last_config={} max_recovery_s={:.2}",
            self.kills, self.restarts, self.served_last_config, self.max_recovery_s
        )
    }

    /// Whether every round came back serving the last accepted set.
    pub fn passed(&self) -> bool {
        self.kills > 0 && self.restarts == self.kills && self.served_last_config == self.kills
    }
}

/// Runs the chaos rounds.
///
/// # Errors
/// The topology or the tools cannot start, a PUT is refused, or a restart fails.
pub fn chaos(opts: &ChaosOptions) -> Result<ChaosReport> {
    let tools = Tools::new(&opts.tools);
    let topo = Topology::builder().clients(1).backends(2).build()?;
    let _echo = echo_servers(&topo, &tools)?;
    let mut options =
        ApplianceOptions::new(echo_set(&topo, "chaos-files", &[("echo", PORT)], &[0]));
    options.persist_api = true;
    // A restarted appliance keeps its MAC, as one on a real NIC does.
    options.mac = Some("02:75:6c:62:00:0a".into());
    let mut app = Appliance::start(&topo, &options)?;
    warm_up(&topo, &tools, 22000);
    // Background traffic over the whole run (its losses while udplb is down are expected).
    let mut background = LoadgenConfig::new(
        SocketAddr::new(vip(&topo), PORT),
        topo.client(0).ipv4().into(),
        8,
    );
    background.mode = Mode::Blast;
    background.count = u64::MAX;
    background.rate = Some(200.0);
    background.max_duration_ms = u64::from(opts.kills) * 60_000 + 60_000;
    let _background = tools.spawn_loadgen(
        topo.client(0).ns(),
        &background,
        &topo.log_path("chaos-background.log"),
    )?;

    let mut report = ChaosReport::default();
    for round in 0..opts.kills {
        let backend = usize::try_from(round % 2).unwrap_or(0);
        let route = format!("chaos-{round}");
        let set = echo_set(&topo, &route, &[("echo", PORT)], &[backend]);
        let (code, body) = app.put_manifests(&set)?;
        if code != 200 {
            return Err(Error::invalid("chaos PUT", format!("HTTP {code}: {body}")));
        }
        let killed = Instant::now();
        app.kill();
        report.kills += 1;
        app = Appliance::start(&topo, &options)?;
        report.restarts += 1;
        let answered_by = probe_until_answered(&topo, &tools, Duration::from_secs(30));
        report.max_recovery_s = report.max_recovery_s.max(killed.elapsed().as_secs_f64());
        let (_, status) = app.get("/v1/status")?;
        let expected = topo.backend(backend).name();
        if answered_by.as_deref() == Some(expected) && status.contains(&format!("name: {route}\n"))
        {
            report.served_last_config += 1;
        } else {
            eprintln!(
                "chaos round {round}: answered by {answered_by:?} (want {expected}), status \
                 names {route}: {}",
                status.contains(&route)
            );
        }
    }
    app.stop()?;
    Ok(report)
}

/// Sends one echo request on a new flow until one is answered (at most `bound`); the
/// answering backend's name.
fn probe_until_answered(topo: &Topology, tools: &Tools, bound: Duration) -> Option<String> {
    let start = Instant::now();
    let log = topo.log_path("chaos-probe.log");
    while start.elapsed() < bound {
        let mut cfg = LoadgenConfig::new(
            SocketAddr::new(vip(topo), PORT),
            topo.client(0).ipv4().into(),
            1,
        );
        cfg.reply_timeout_ms = 200;
        cfg.max_duration_ms = 2_000;
        if let Ok(r) = tools.loadgen(topo.client(0).ns(), &cfg, &log) {
            if let Some(backend) = r.flows.first().and_then(|f| f.backend()) {
                return Some(backend.to_owned());
            }
        }
    }
    None
}

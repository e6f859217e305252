//! The phases of the scale-out scenario, for one NAT mode:
//!
//! 1. **Up**: router, client, backends; appliances 1 to 3 started together; wait until
//!    each is ready and the router's route to the VIP goes through all three; the router
//!    pings each appliance's addresses (neighbours resolved before sessions start).
//! 2. **Steady**: the session client runs; after a warm-up, the steady window: each
//!    appliance's forwarded-datagram counter (`/metrics`) before and after, and the
//!    router's own choice per session (`ip route get`).
//! 3. **Kill**: SIGKILL appliance 1's udplb (the first next hop: Linux's hash-threshold
//!    ECMP reshuffles the most sessions when it goes); the router's route is polled every
//!    5 ms until its next hop is gone (`failover_s`); then a settled window.
//! 4. **Join**: appliance 4 starts; from its start to its next hop in the router's route;
//!    then a settled window.
//! 5. **Drain**: `udplb drain --wait` on appliance 2; the route polled until its next hop
//!    is gone, then until drained; then a last window.
//!
//! The client is stopped, its record analysed ([`super::analysis`]), the fabric removed
//! and checked for leftovers.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::analysis::{self, Figures, Timeline};
use super::fabric::Fabric;
use super::node::NodeSettings;
use super::outcome::HaOutcome;
use super::plan::{self, Names};
use super::sessions::{unix_us, SessionsConfig, SessionsRecord};
use super::HaMode;
use crate::error::{Error, Result};
use crate::exec::Process;
use crate::manifests::{self, Endpoint};
use crate::netns::list_netns;
use crate::traffic::tools::Tools;

/// The appliance that is killed.
pub const KILLED: usize = 1;
/// The appliance that joins.
pub const JOINER: usize = 4;
/// The appliance that is drained.
pub const DRAINED: usize = 2;
/// First source port of the sessions (below the ephemeral range).
pub const FIRST_PORT: u16 = 20_000;
/// How often the router's route is polled while waiting for a change.
pub const POLL: Duration = Duration::from_millis(5);

/// What to run.
#[derive(Clone, Debug)]
pub struct HaOptions {
    /// Sessions the client keeps alive.
    pub sessions: u32,
    /// One request per session every this many milliseconds.
    pub interval_ms: u64,
    /// Backends.
    pub backends: usize,
    /// From the client's start to the steady window.
    pub warmup: Duration,
    /// The steady window.
    pub steady: Duration,
    /// The settled windows after the kill, the join and the drain.
    pub settle: Duration,
    /// Appliance settings.
    pub node: NodeSettings,
    /// The `testbench` binary (the session client and echo servers).
    pub tools: PathBuf,
    /// The `udplb` binary.
    pub udplb: PathBuf,
    /// Print each phase as it happens.
    pub progress: bool,
}

impl HaOptions {
    /// The full demo: 1,000 sessions at 100 ms, 4 backends, 5 s windows.
    pub fn full(tools: PathBuf, udplb: PathBuf) -> HaOptions {
        HaOptions {
            sessions: 1000,
            interval_ms: 100,
            backends: 4,
            warmup: Duration::from_secs(2),
            steady: Duration::from_secs(5),
            settle: Duration::from_secs(5),
            node: NodeSettings::default(),
            tools,
            udplb,
            progress: true,
        }
    }

    /// The CI variant: 200 sessions, 2 s windows.
    pub fn ci(tools: PathBuf, udplb: PathBuf) -> HaOptions {
        HaOptions {
            sessions: 200,
            warmup: Duration::from_millis(1500),
            steady: Duration::from_secs(2),
            settle: Duration::from_secs(2),
            ..HaOptions::full(tools, udplb)
        }
    }
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The manifests every appliance serves: a Gateway on the VIP, one UDP listener, a
/// route to a Service holding every backend.
pub fn manifests(backends: usize) -> String {
    let endpoints: Vec<Endpoint> = (0..backends)
        .map(|j| Endpoint::ready(plan::backend(j).into()))
        .collect();
    manifests::gateway_with_route(
        "echo",
        &[plan::VIP.into()],
        &[("echo", plan::PORT)],
        &[],
        plan::PORT,
        &[("echo", 1, endpoints)],
    )
}

/// Runs every mode in turn, printing the details and then the three `HA` lines (what
/// `scripts/demo-ha` shows).
///
/// # Errors
/// A mode fails to run (its fabric is removed all the same).
pub fn run_demo(opts: &HaOptions, modes: &[HaMode]) -> Result<Vec<HaOutcome>> {
    let mut outcomes = Vec::new();
    for &mode in modes {
        let outcome = run_mode(mode, opts)?;
        let f = &outcome.figures;
        if f.answered < f.sessions || f.drain_lost > 0 {
            println!("{}", outcome.diagnostics);
        }
        for line in outcome.details() {
            println!("{line}");
        }
        println!("{}", outcome.line());
        outcomes.push(outcome);
    }
    println!("== summary (load average {:.2})", load_average());
    for o in &outcomes {
        println!("{}", o.line());
    }
    Ok(outcomes)
}

/// Runs the scenario in `mode` and removes everything it made.
///
/// # Errors
/// A step fails; the fabric is removed all the same.
pub fn run_mode(mode: HaMode, opts: &HaOptions) -> Result<HaOutcome> {
    let started = Instant::now();
    let load_before = load_average();
    let fabric = Fabric::build(
        mode,
        opts.backends,
        Tools::new(&opts.tools),
        opts.udplb.clone(),
        opts.node.clone(),
    )?;
    let names = fabric.names().clone();
    let dir = fabric.dir().to_owned();
    let namespaces_of = |f: &Fabric| f.namespaces();
    let mut run = Run {
        fabric,
        opts,
        progress: opts.progress,
        started,
    };
    let result = run.phases();
    let mut all_ns = namespaces_of(&run.fabric);
    all_ns.push(names.appliance_ns(JOINER));
    if result.is_err() {
        // Keep what explains the failure before the fabric (and its run directory) goes.
        eprintln!("{}", run.logs());
        eprintln!(
            "--- the router's route changes\n{}",
            run.fabric.route_events()
        );
    }
    drop(run);
    let leftovers = leftovers(&names, &dir, &all_ns);
    let (figures, mut outcome) = result?;
    outcome.figures = figures;
    outcome.load = (load_before, load_average());
    outcome.elapsed = started.elapsed();
    outcome.leftovers = leftovers;
    Ok(outcome)
}

/// Everything a run may leave behind that still exists: namespaces, DPDK runtime
/// directories, the run directory, processes started with a path inside it.
pub fn leftovers(names: &Names, dir: &Path, namespaces: &[String]) -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(existing) = list_netns() {
        left.extend(
            namespaces
                .iter()
                .filter(|n| existing.contains(n))
                .map(|n| format!("namespace {n}")),
        );
    }
    for k in 1..=plan::MAX_APPLIANCES {
        let rt = names.dpdk_runtime_dir(k);
        if rt.exists() {
            left.push(format!("DPDK runtime directory {}", rt.display()));
        }
    }
    if dir.exists() {
        left.push(format!("run directory {}", dir.display()));
    }
    let needle = dir.to_string_lossy().into_owned();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(&needle) {
                left.push(format!(
                    "process {}: {}",
                    e.file_name().to_string_lossy(),
                    cmdline.trim()
                ));
            }
        }
    }
    left
}

struct Run<'o> {
    fabric: Fabric,
    opts: &'o HaOptions,
    progress: bool,
    started: Instant,
}

impl Run<'_> {
    fn say(&self, what: &str) {
        if self.progress {
            println!(
                "== [{:6.1} s] {}: {what}",
                self.started.elapsed().as_secs_f64(),
                self.fabric.mode()
            );
        }
    }

    /// The logs of every daemon, for a failure report.
    fn logs(&self) -> String {
        let mut out = String::new();
        for k in 1..=plan::MAX_APPLIANCES {
            if let Some(n) = self.fabric.node(k) {
                let tail = |s: String| {
                    let lines: Vec<&str> = s.lines().collect();
                    lines[lines.len().saturating_sub(40)..].join("\n")
                };
                out.push_str(&format!(
                    "--- appliance {k} udplb.log (tail)\n{}\n--- appliance {k} bird.log (tail)\n{}\n",
                    tail(n.log()),
                    tail(n.bird().log_text())
                ));
            }
        }
        out.push_str(&format!(
            "--- router bird.log\n{}\n",
            self.fabric.router_bird().log_text()
        ));
        out
    }

    fn ports(&self) -> Vec<u16> {
        (0..self.opts.sessions)
            .map(|i| FIRST_PORT + u16::try_from(i).unwrap_or(0))
            .collect()
    }

    fn wait_route(
        &self,
        what: &str,
        want: impl Fn(&[usize]) -> bool,
        timeout: Duration,
    ) -> Result<u64> {
        Ok(self.wait_route_change(what, want, timeout)?.1)
    }

    /// As [`Run::wait_route`], also returning when the route was last read without the
    /// change (the change came after it), both as [`unix_us`].
    fn wait_route_change(
        &self,
        what: &str,
        want: impl Fn(&[usize]) -> bool,
        timeout: Duration,
    ) -> Result<(u64, u64)> {
        let (unchanged, seen) = self.fabric.wait_route(what, want, POLL, timeout)?;
        let (now, now_us) = (Instant::now(), unix_us());
        let us = |i: Instant| {
            now_us.saturating_sub(u64::try_from(now.duration_since(i).as_micros()).unwrap_or(0))
        };
        Ok((us(unchanged), us(seen)))
    }

    fn forwarded(&self, ks: &[usize]) -> Result<BTreeMap<usize, u64>> {
        ks.iter()
            .map(|&k| {
                let node = self
                    .fabric
                    .node(k)
                    .ok_or_else(|| Error::invalid("HA", format!("appliance {k} not running")))?;
                Ok((k, node.forwarded()?))
            })
            .collect()
    }

    fn bring_up(&mut self, ks: &[usize], manifests: &str) -> Result<()> {
        for &k in ks {
            self.fabric.start_node(k, manifests)?;
        }
        for &k in ks {
            let node = self
                .fabric
                .node_mut(k)
                .ok_or_else(|| Error::invalid("HA", format!("appliance {k} not started")))?;
            node.wait_ready(Duration::from_secs(60))?;
            let a = *node.addrs();
            self.fabric.prime(a.edge);
            self.fabric.prime(a.backend_port);
        }
        Ok(())
    }

    fn phases(&mut self) -> Result<(Figures, HaOutcome)> {
        let opts = self.opts;
        let mode = self.fabric.mode();
        let manifests = manifests(opts.backends);
        self.say(&format!(
            "router (BIRD, ECMP, L4 hash), client, {} backends up in {}",
            opts.backends,
            self.fabric.dir().display()
        ));
        self.bring_up(&[1, 2, 3], &manifests)?;
        let t = Instant::now();
        self.wait_route(
            "the router's route via appliances 1, 2 and 3",
            |a| a == [1, 2, 3],
            Duration::from_secs(60),
        )?;
        self.say(&format!(
            "appliances 1-3 ready; router's route via all three {} ms later",
            t.elapsed().as_millis()
        ));
        let return_hops = if mode == HaMode::PreserveClient {
            let want = |f: &Fabric| f.return_hops().map(|h| h.len()).unwrap_or(0);
            crate::exec::wait_for(
                "three return routes in table 100",
                Duration::from_secs(10),
                || Ok((want(&self.fabric) == 3).then_some(())),
            )?;
            3
        } else {
            0
        };

        // The session client.
        let stop = self.fabric.dir().join("sessions.stop");
        let output = self.fabric.dir().join("sessions.json");
        let config = SessionsConfig {
            target: SocketAddr::new(plan::VIP.into(), plan::PORT),
            source: IpAddr::V4(plan::CLIENT),
            first_port: FIRST_PORT,
            sessions: opts.sessions,
            interval_ms: opts.interval_ms,
            reply_timeout_ms: 1000,
            max_duration_ms: 600_000,
            stop_file: stop.clone(),
        };
        config.validate()?;
        let mut client = self.spawn_client(&config, &output)?;
        std::thread::sleep(opts.warmup);
        if !client.is_running() {
            return Err(Error::invalid(
                "session client",
                format!("exited early:\n{}", client.log()),
            ));
        }

        // Steady.
        let ports = self.ports();
        let mut tl = Timeline {
            steady_from: unix_us(),
            ..Timeline::default()
        };
        let before = self.forwarded(&[1, 2, 3])?;
        let choice_steady = self.fabric.router_choice(&ports)?;
        std::thread::sleep(opts.steady);
        let after = self.forwarded(&[1, 2, 3])?;
        tl.steady_to = unix_us();
        let spread: BTreeMap<usize, u64> = after
            .iter()
            .map(|(k, v)| (*k, v.saturating_sub(before[k])))
            .collect();
        let mut router_split = BTreeMap::new();
        for c in &choice_steady {
            *router_split.entry(*c).or_insert(0) += 1;
        }
        self.say(&format!(
            "steady: forwarded per appliance {spread:?}, router's sessions per appliance {router_split:?}"
        ));

        // Kill.
        tl.kill_at = unix_us();
        let killed = Instant::now();
        self.fabric
            .node_mut(KILLED)
            .ok_or_else(|| Error::invalid("HA", "appliance 1 not running"))?
            .sigkill_udplb();
        // Watched from the signal on: the kernel deletes the TAP while it closes the dying
        // process's files, which may finish well before the whole teardown (the DPDK
        // ports' AF_PACKET sockets wait for RCU grace periods, slow on a loaded machine).
        tl.route_gone_at = self.wait_route(
            "the killed appliance's next hop to go",
            |a| !a.contains(&KILLED),
            Duration::from_secs(30),
        )?;
        let failover = killed.elapsed();
        self.fabric
            .node_mut(KILLED)
            .ok_or_else(|| Error::invalid("HA", "appliance 1 not running"))?
            .reap_udplb(Duration::from_secs(60))?;
        let exit_time = killed.elapsed();
        let choice_kill = self.fabric.router_choice(&ports)?;
        let moved_kill = moved(&choice_steady, &choice_kill);
        self.say(&format!(
            "SIGKILL appliance {KILLED}: next hop gone from the router after {:.1} ms, process reaped after {:.1} ms; {moved_kill} sessions moved",
            failover.as_secs_f64() * 1e3,
            exit_time.as_secs_f64() * 1e3
        ));
        std::thread::sleep(analysis::FAILOVER_MARGIN + opts.settle);

        // Join.
        tl.join_at = unix_us();
        let joining = Instant::now();
        self.bring_up(&[JOINER], &manifests)?;
        (tl.join_unrouted_at, tl.joined_at) = self.wait_route_change(
            "the joining appliance's next hop",
            |a| a.contains(&JOINER),
            Duration::from_secs(60),
        )?;
        let join_time = joining.elapsed();
        let choice_join = self.fabric.router_choice(&ports)?;
        let moved_join = moved(&choice_kill, &choice_join);
        let to_joiner = choice_join.iter().filter(|&&c| c == JOINER).count();
        let joiner_before = self.forwarded(&[JOINER])?[&JOINER];
        self.say(&format!(
            "appliance {JOINER} joined: in the router {} ms after its start; {moved_join} sessions moved, {to_joiner} to it",
            join_time.as_millis()
        ));
        std::thread::sleep(analysis::FAILOVER_MARGIN + opts.settle);
        let joiner_forwarded = self.forwarded(&[JOINER])?[&JOINER].saturating_sub(joiner_before);

        // Drain.
        tl.drain_at = unix_us();
        let draining = Instant::now();
        let mut drain = self
            .fabric
            .node(DRAINED)
            .ok_or_else(|| Error::invalid("HA", "appliance 2 not running"))?
            .spawn_drain(&opts.udplb, &opts.node.drain_deadline)?;
        self.wait_route(
            "the drained appliance's next hop to go",
            |a| !a.contains(&DRAINED),
            Duration::from_secs(30),
        )?;
        let withdraw_time = draining.elapsed();
        let choice_drain = self.fabric.router_choice(&ports)?;
        let moved_drain = moved(&choice_join, &choice_drain);
        let status = drain.wait_timeout(Duration::from_secs(60))?;
        if !status.success() {
            return Err(Error::invalid(
                "udplb drain --wait",
                format!("{status}:\n{}", drain.log()),
            ));
        }
        tl.drained_at = unix_us();
        let drain_time = draining.elapsed();
        let drain_ended_by = drain
            .log()
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("ended_by: "))
            .unwrap_or("?")
            .to_owned();
        let drained_at = self.forwarded(&[DRAINED])?[&DRAINED];
        self.say(&format!(
            "drain appliance {DRAINED}: withdrawn after {:.1} ms, drained after {} ms (ended by {drain_ended_by}); {moved_drain} sessions moved",
            withdraw_time.as_secs_f64() * 1e3,
            drain_time.as_millis()
        ));
        std::thread::sleep(opts.settle);
        let forwarded_after_drained =
            self.forwarded(&[DRAINED])?[&DRAINED].saturating_sub(drained_at);

        // The record.
        tl.end = unix_us();
        std::fs::write(&stop, b"stop").map_err(|e| Error::io("writing the stop file", e))?;
        let status = client.wait_timeout(Duration::from_secs(30))?;
        if !status.success() {
            return Err(Error::invalid(
                "session client",
                format!("{status}:\n{}", client.log()),
            ));
        }
        let record: SessionsRecord = serde_json::from_slice(
            &std::fs::read(&output).map_err(|e| Error::io("reading the sessions record", e))?,
        )
        .map_err(|e| Error::Parse {
            tool: "testbench sessions".into(),
            detail: e.to_string(),
        })?;
        let figures = analysis::figures(&record, &tl);
        let attribution_mismatch =
            (mode == HaMode::FullNat).then(|| snat_mismatch(&record, &tl, &choice_steady));
        let session_losses = session_losses(&self.fabric.router_bird().log_text());
        let diagnostics = self.diagnostics(&record, &tl);
        let drops = self.fabric.drop_report();
        self.say(&format!(
            "client stopped after {} rounds; {} backends answered",
            record.rounds.len(),
            record.backends.len()
        ));
        Ok((
            figures,
            HaOutcome {
                mode,
                appliances: 3,
                figures,
                failover,
                exit_time,
                join_time,
                withdraw_time,
                drain_time,
                drain_ended_by,
                spread,
                router_split,
                moved_kill,
                moved_join: (moved_join, to_joiner),
                moved_drain,
                joiner_forwarded,
                forwarded_after_drained,
                attribution_mismatch,
                return_hops,
                client_errors: (
                    record.late,
                    record.foreign,
                    record.send_errors,
                    record.recv_errors,
                ),
                session_losses,
                load: (0.0, 0.0),
                elapsed: Duration::ZERO,
                leftovers: Vec::new(),
                diagnostics,
                drops,
            },
        ))
    }

    /// The timeline, where requests went unanswered, the router's route changes and the
    /// daemons' complaints: what explains a failed check.
    fn diagnostics(&self, record: &SessionsRecord, tl: &Timeline) -> String {
        let ms = |t: u64| (i128::from(t) - i128::from(tl.steady_from)) / 1000;
        let mut d = format!(
            "--- {} events, ms from the steady window: kill {} route_gone {} join {} joined {} drain {} drained {} end {}\n",
            self.fabric.mode(),
            ms(tl.kill_at),
            ms(tl.route_gone_at),
            ms(tl.join_at),
            ms(tl.joined_at),
            ms(tl.drain_at),
            ms(tl.drained_at),
            ms(tl.end)
        );
        d.push_str(
            "--- unanswered requests per 500 ms (ms from the steady window, lost/requests):",
        );
        for (at, lost, total) in analysis::losses_over_time(record, tl.steady_from, 500_000) {
            d.push_str(&format!(" {at}:{lost}/{total}"));
        }
        d.push_str(&format!(
            "\n--- the router's route changes (VIP, table {})\n{}",
            super::fabric::RETURN_TABLE,
            self.fabric.route_events()
        ));
        for k in 1..=plan::MAX_APPLIANCES {
            if let Some(n) = self.fabric.node(k) {
                let complaints: Vec<String> = n
                    .log()
                    .lines()
                    .filter(|l| {
                        l.contains("WARN") || l.contains("ERROR") || l.contains("healthy again")
                    })
                    .map(str::to_owned)
                    .collect();
                d.push_str(&format!(
                    "--- appliance {k}: udplb warnings and errors\n{}\n",
                    complaints.join("\n")
                ));
            }
        }
        let bird = self.fabric.router_bird().log_text();
        let lines: Vec<&str> = bird.lines().collect();
        d.push_str(&format!(
            "--- router BIRD log (last 40 lines)\n{}\n",
            lines[lines.len().saturating_sub(40)..].join("\n")
        ));
        d
    }

    fn spawn_client(&self, config: &SessionsConfig, output: &Path) -> Result<Process> {
        let json = serde_json::to_string(config)
            .map_err(|e| Error::invalid("sessions config", e.to_string()))?;
        let nofile = u64::from(config.sessions) + 64;
        let mut cmd = self.fabric.client().command("prlimit");
        cmd.arg(format!("--nofile={nofile}:{nofile}"))
            .arg(&self.opts.tools)
            .args(["sessions", "--config-json", &json, "--output"])
            .arg(output);
        Process::spawn(cmd, &self.fabric.dir().join("sessions.log"))
    }
}

/// Sessions whose choice differs.
fn moved(before: &[usize], after: &[usize]) -> usize {
    before.iter().zip(after).filter(|(a, b)| a != b).count()
}

/// Full NAT: sessions whose backend, in the steady window, saw the SNAT address of an
/// appliance other than the one the router's `ip route get` named.
fn snat_mismatch(record: &SessionsRecord, tl: &Timeline, choice: &[usize]) -> usize {
    let steady = analysis::rounds_within(record, tl.steady_from, tl.steady_to);
    let Some(last) = steady.end.checked_sub(1) else {
        return record.sessions.len();
    };
    let last = u64::try_from(last).unwrap_or(u64::MAX);
    record
        .sessions
        .iter()
        .zip(choice)
        .filter(|(s, &c)| {
            let seen = s
                .peers
                .iter()
                .rev()
                .find(|(r, _)| *r <= last)
                .and_then(|(_, p)| match p.ip() {
                    IpAddr::V4(a) => {
                        (1..=plan::MAX_APPLIANCES).find(|&k| plan::appliance(k).snat == a)
                    }
                    IpAddr::V6(_) => None,
                });
            seen != Some(c)
        })
        .count()
}

/// BGP sessions the router's BIRD lost (BFD down, hold timer, connection errors) in
/// `log`: none is caused by the scenario, which never stops an appliance's BIRD.
pub fn session_losses(log: &str) -> usize {
    log.lines()
        .filter(|l| {
            l.contains("BFD session down")
                || l.contains("Hold timer expired")
                || l.contains("Connection lost")
                || l.contains("Connection reset")
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_exact() {
        let outcome = HaOutcome {
            mode: HaMode::PreserveClient,
            appliances: 3,
            figures: Figures {
                sessions: 1000,
                answered: 1000,
                backend_changed_kill: 0,
                backend_changed_join: 0,
                drain_lost: 0,
                ..Figures::default()
            },
            failover: Duration::from_millis(23),
            exit_time: Duration::ZERO,
            join_time: Duration::ZERO,
            withdraw_time: Duration::ZERO,
            drain_time: Duration::ZERO,
            drain_ended_by: String::new(),
            spread: BTreeMap::new(),
            router_split: BTreeMap::new(),
            moved_kill: 0,
            moved_join: (0, 0),
            moved_drain: 0,
            joiner_forwarded: 0,
            forwarded_after_drained: 0,
            attribution_mismatch: None,
            return_hops: 0,
            client_errors: (0, 0, 0, 0),
            session_losses: 0,
            load: (0.0, 0.0),
            elapsed: Duration::ZERO,
            leftovers: Vec::new(),
            diagnostics: String::new(),
            drops: String::new(),
        };
        assert_eq!(
            outcome.line(),
            "HA mode=preserve-client appliances=3 sessions=1000 answered=1000 failover_s=0.023 backend_changed_kill=0 backend_changed_join=0 drain_lost=0"
        );
    }

    #[test]
    fn manifests_hold_every_backend() {
        let yaml = manifests(4);
        let set = config::load_str("ha", &yaml).expect("valid manifests");
        let compiled = config::compile(&set, &config::CompileParams::default());
        assert!(
            compiled.status.all_ok(),
            "{}",
            config::status_yaml(&compiled.status)
        );
        let l = &compiled.forwarding.listeners;
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].route.as_ref().expect("route").backends.len(), 4);
    }

    #[test]
    fn moved_sessions() {
        assert_eq!(moved(&[1, 2, 3, 1], &[2, 2, 3, 3]), 2);
    }
}

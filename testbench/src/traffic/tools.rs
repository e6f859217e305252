//! Running the testbench's own tools (`echo`, `hold`, `loadgen`, `stats`) inside namespaces.
//!
//! The tools are subcommands of the `testbench` binary, started with `ip netns exec`.
//! Integration tests find the binary with `env!("CARGO_BIN_EXE_testbench")`:
//!
//! ```no_run
//! # fn main() -> testbench::Result<()> {
//! use testbench::{LoadgenConfig, Tools, Topology};
//! let topo = Topology::with_kernel_router()?;
//! // In an integration test of this crate: Tools::new(env!("CARGO_BIN_EXE_testbench")).
//! let tools = Tools::new("target/debug/testbench");
//! let _echo = tools.start_echo(topo.backend(0), 7000, false, &topo.log_path("echo.log"))?;
//! let target = (topo.backend(0).ipv4(), 7000).into();
//! let report = tools.loadgen(topo.client(0).ns(), &LoadgenConfig::new(target, topo.client(0).ipv4().into(), 10), &topo.log_path("lg.log"))?;
//! assert_eq!(report.received, 10);
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dnswatch::{WatchConfig, WatchLog};
use super::loadgen::{LoadgenConfig, Report};
use super::proto::EchoStats;
use crate::error::{Error, Result};
use crate::exec::{self, Process};
use crate::netns::Netns;
use crate::topology::Host;

/// Default number of open files; beyond it the loadgen is started under `prlimit`.
const DEFAULT_NOFILE: u64 = 1024;

/// How long a started echo server may take to bind its sockets.
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Slack added to a loadgen's own bound before the driver gives up on it.
const LOADGEN_SLACK: Duration = Duration::from_secs(15);

/// Where the `testbench` binary is.
#[derive(Clone, Debug)]
pub struct Tools {
    bin: PathBuf,
}

/// An echo server process and the addresses it serves.
#[derive(Debug)]
pub struct EchoServer {
    /// The process; killed on drop.
    pub process: Process,
    /// Name it answers with.
    pub name: String,
    /// Addresses it listens on.
    pub listen: Vec<SocketAddr>,
}

/// A load generator running in the background; see [`Tools::spawn_loadgen`].
#[derive(Debug)]
pub struct RunningLoadgen {
    process: Process,
    output: PathBuf,
    bound: Duration,
}

impl RunningLoadgen {
    /// Waits for it to finish (bounded by its own `max_duration_ms` plus slack) and
    /// returns its report.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it overruns (it is killed); [`Error::Command`] if it failed,
    /// with its log; [`Error::Parse`] if its report is unreadable.
    pub fn finish(mut self) -> Result<Report> {
        finish_json(
            &mut self.process,
            &self.output,
            self.bound,
            "testbench loadgen",
        )
    }
}

/// A DNS watch running in the background; see [`Tools::spawn_dns_watch`].
#[derive(Debug)]
pub struct RunningDnsWatch {
    process: Process,
    output: PathBuf,
    bound: Duration,
}

impl RunningDnsWatch {
    /// Waits for it to finish (bounded by its duration plus slack) and returns its log.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it overruns (it is killed); [`Error::Command`] if it failed;
    /// [`Error::Parse`] if its log is unreadable.
    pub fn finish(mut self) -> Result<WatchLog> {
        finish_json(
            &mut self.process,
            &self.output,
            self.bound,
            "testbench dns-watch",
        )
    }
}

/// Waits for a background tool (bounded by `bound`) and reads the JSON it wrote to
/// `output`.
fn finish_json<T: serde::de::DeserializeOwned>(
    process: &mut Process,
    output: &Path,
    bound: Duration,
    tool: &str,
) -> Result<T> {
    let status = process.wait_timeout(bound)?;
    if !status.success() {
        return Err(Error::Command {
            command: process.command().to_owned(),
            status: status.to_string(),
            stderr: process.log(),
        });
    }
    let json =
        std::fs::read(output).map_err(|e| Error::io(format!("reading {}", output.display()), e))?;
    serde_json::from_slice(&json).map_err(|e| Error::Parse {
        tool: tool.into(),
        detail: format!("{e} in {}", output.display()),
    })
}

impl Tools {
    /// Tools from the binary at `bin`.
    pub fn new(bin: impl Into<PathBuf>) -> Tools {
        Tools { bin: bin.into() }
    }

    /// The binary's path.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Starts an echo server in `host`'s namespace, on every address of the host, port
    /// `port`, answering with the host's name (`sink`: counting only), and waits until
    /// it listens.
    ///
    /// # Errors
    /// [`Error::Spawn`] if the binary is missing; [`Error::Timeout`] (with its log) if it
    /// does not bind within 10 s.
    pub fn start_echo(&self, host: &Host, port: u16, sink: bool, log: &Path) -> Result<EchoServer> {
        let listen: Vec<SocketAddr> = host
            .addrs()
            .map(|a| SocketAddr::new(a.addr, port))
            .collect();
        self.start_echo_in(host.ns(), host.name(), &listen, sink, None, log)
    }

    /// Starts an echo server named `name` in `ns` on `listen` (addresses of one port),
    /// with receive buffers of `rcvbuf` bytes (`None`: the system default), and waits
    /// until it listens.
    ///
    /// # Errors
    /// [`Error::Invalid`] without an address; otherwise as [`Tools::start_echo`].
    pub fn start_echo_in(
        &self,
        ns: &Netns,
        name: &str,
        listen: &[SocketAddr],
        sink: bool,
        rcvbuf: Option<usize>,
        log: &Path,
    ) -> Result<EchoServer> {
        let Some(port) = listen.first().map(SocketAddr::port) else {
            return Err(Error::invalid("echo listen", "give at least one address"));
        };
        let mut args = vec!["echo".to_owned(), "--name".to_owned(), name.to_owned()];
        for addr in listen {
            args.push("--listen".to_owned());
            args.push(addr.to_string());
        }
        if sink {
            args.push("--sink".to_owned());
        }
        if let Some(bytes) = rcvbuf {
            args.push("--rcvbuf".to_owned());
            args.push(bytes.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = ns.spawn_udp_server(
            &self.bin,
            &args,
            log,
            port,
            listen.len(),
            SERVER_READY_TIMEOUT,
        )?;
        Ok(EchoServer {
            process,
            name: name.to_owned(),
            listen: listen.to_vec(),
        })
    }

    /// Starts `testbench hold` in `host`'s namespace: UDP sockets on every address of the
    /// host, port `port`, that are never read (a sink that costs no CPU beyond the
    /// kernel's delivery; see [`crate::counters::udp_arrivals`]), and waits until they
    /// are bound.
    ///
    /// # Errors
    /// As [`Tools::start_echo`].
    pub fn start_hold(&self, host: &Host, port: u16, log: &Path) -> Result<Process> {
        let mut args = vec!["hold".to_owned()];
        let mut sockets = 0;
        for a in host.addrs() {
            args.push("--listen".to_owned());
            args.push(SocketAddr::new(a.addr, port).to_string());
            sockets += 1;
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        host.ns()
            .spawn_udp_server(&self.bin, &args, log, port, sockets, SERVER_READY_TIMEOUT)
    }

    /// Starts a load generator in `ns`; its log goes to `log`, its JSON report next to it
    /// (`<log>.json`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad config (checked here first); [`Error::Spawn`].
    pub fn spawn_loadgen(
        &self,
        ns: &Netns,
        config: &LoadgenConfig,
        log: &Path,
    ) -> Result<RunningLoadgen> {
        config.plan()?;
        let json = serde_json::to_string(config)
            .map_err(|e| Error::invalid("loadgen config", e.to_string()))?;
        let output = log.with_extension("json");
        let _ = std::fs::remove_file(&output);
        let out = output.to_string_lossy().into_owned();
        let nofile = u64::from(config.flows) + 64;
        let mut cmd = if nofile > DEFAULT_NOFILE {
            let mut c = ns.command("prlimit");
            c.arg(format!("--nofile={nofile}:{nofile}")).arg(&self.bin);
            c
        } else {
            ns.command(&self.bin)
        };
        cmd.args(["loadgen", "--config-json", &json, "--output", &out]);
        let process = Process::spawn(cmd, log)?;
        Ok(RunningLoadgen {
            process,
            output,
            bound: Duration::from_millis(config.max_duration_ms + config.reply_timeout_ms)
                + LOADGEN_SLACK,
        })
    }

    /// Starts a DNS watch ([`super::dnswatch`]) in `ns`; its log goes to `log`, its
    /// query log next to it (`<log>.json`).
    ///
    /// # Errors
    /// [`Error::Spawn`].
    pub fn spawn_dns_watch(
        &self,
        ns: &Netns,
        config: &WatchConfig,
        log: &Path,
    ) -> Result<RunningDnsWatch> {
        let json = serde_json::to_string(config)
            .map_err(|e| Error::invalid("dns-watch config", e.to_string()))?;
        let output = log.with_extension("json");
        let _ = std::fs::remove_file(&output);
        let out = output.to_string_lossy().into_owned();
        let mut cmd = ns.command(&self.bin);
        cmd.args(["dns-watch", "--config-json", &json, "--output", &out]);
        let process = Process::spawn(cmd, log)?;
        Ok(RunningDnsWatch {
            process,
            output,
            bound: Duration::from_millis(config.duration_ms + config.timeout_ms) + LOADGEN_SLACK,
        })
    }

    /// Runs a load generator in `ns` to completion and returns its report.
    ///
    /// # Errors
    /// As [`Tools::spawn_loadgen`] and [`RunningLoadgen::finish`].
    pub fn loadgen(&self, ns: &Netns, config: &LoadgenConfig, log: &Path) -> Result<Report> {
        self.spawn_loadgen(ns, config, log)?.finish()
    }

    /// Asks the echo server at `server` for its counters, from inside `ns`.
    ///
    /// # Errors
    /// [`Error::Command`] if the query failed (no answer within 3 s); [`Error::Parse`].
    pub fn echo_stats(&self, ns: &Netns, server: SocketAddr) -> Result<EchoStats> {
        let mut cmd = ns.command(&self.bin);
        cmd.args(["stats", "--server", &server.to_string()]);
        let out = exec::run(&mut cmd, None, Duration::from_secs(15))?;
        serde_json::from_slice(&out.stdout).map_err(|e| Error::Parse {
            tool: "testbench stats".into(),
            detail: e.to_string(),
        })
    }
}

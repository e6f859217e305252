//! `testbench`: the bench's own tools, run inside network namespaces by the library.
//!
//! ```text
//! testbench echo --name backend-0 --listen 198.18.1.11:7000 [--sink]
//! testbench hold --listen 198.18.1.11:7000
//! testbench udpgen --device net_af_xdp0,iface=eth0 --lcore 0 --file-prefix gen1 < jobs
//! testbench loadgen --target 198.18.0.10:7000 --source 198.19.0.100 --flows 100 --count 10
//! testbench stats --server 198.18.1.11:7000
//! testbench dns-watch --config-json '{...}' --output watch.json
//! testbench cleanup
//! testbench bench-peers --out docs/benchmarks [--quick] [--gen-port af-xdp|af-packet]
//! testbench sessions --config-json '{…}' --output record.json
//! testbench demo-ha [--ci] [--mode dsr]…
//! ```
#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use testbench::reliability::{ChaosOptions, SoakOptions};
use testbench::traffic::echo::{self, EchoConfig};
use testbench::traffic::loadgen::{self, LoadgenConfig, Mode, Payload};
use testbench::{cleanup, ha, Error, Result};

#[derive(Parser)]
#[command(name = "testbench", about = "udplb testbench tools", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// UDP echo server replying with its name, the peer address it saw, and the payload.
    Echo {
        /// Name put in every reply.
        #[arg(long)]
        name: String,
        /// Address to listen on (repeatable).
        #[arg(long, required = true)]
        listen: Vec<SocketAddr>,
        /// Count datagrams, never reply (for one-way load).
        #[arg(long)]
        sink: bool,
        /// Each socket's receive buffer in bytes (SO_RCVBUF; default: the system's).
        #[arg(long, value_name = "BYTES")]
        rcvbuf: Option<usize>,
    },
    /// Binds UDP sockets and never reads them: datagrams reach the UDP layer and, once
    /// the socket buffer is full, are counted there as receive-buffer errors. A sink that
    /// costs no CPU beyond the kernel's delivery.
    Hold {
        /// Address to bind (repeatable).
        #[arg(long, required = true)]
        listen: Vec<SocketAddr>,
    },
    /// Multi-flow load generator; prints (or writes) a JSON report.
    Loadgen(LoadgenArgs),
    /// DNS queries at a steady rate, each one's fate logged (JSON; `--config-json` is a
    /// `WatchConfig`).
    DnsWatch {
        /// The configuration as JSON.
        #[arg(long)]
        config_json: String,
        /// Write the log here.
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// DPDK one-way UDP generator on a kernel-attached port: reads jobs (JSON lines) on
    /// stdin, answers each with a report line; see `testbench::traffic::udpgen`.
    Udpgen {
        /// DPDK device, e.g. `net_af_xdp0,iface=eth0` or `net_af_packet0,iface=eth0`.
        #[arg(long)]
        device: String,
        /// The lcore (CPU) to run on.
        #[arg(long, default_value_t = 0)]
        lcore: u32,
        /// DPDK --file-prefix (unique per process).
        #[arg(long)]
        file_prefix: String,
    },
    /// Prints the counters of an echo server as JSON.
    Stats {
        /// The echo server's address.
        #[arg(long)]
        server: SocketAddr,
        /// How long to keep asking, in milliseconds.
        #[arg(long, default_value_t = 3000)]
        timeout_ms: u64,
    },
    /// Removes namespaces and directories left by testbench runs whose process died.
    Cleanup,
    /// Benchmarks udplb side by side with nginx, nftables and dnsdist; writes RESULTS.md,
    /// results.json and plots into `--out` (what `scripts/bench-peers` runs).
    BenchPeers {
        /// Output directory (holds plot.py).
        #[arg(long, default_value = "docs/benchmarks")]
        out: std::path::PathBuf,
        /// udplb manifests for the DNS workload.
        #[arg(long, default_value = "config/examples/dns")]
        dns_manifests: std::path::PathBuf,
        /// Only redraw the plots and rewrite RESULTS.md from `--out`/results.json.
        #[arg(long)]
        render_only: bool,
        /// A smoke run: short steps, 64-byte cases only, short latency runs.
        #[arg(long)]
        quick: bool,
        /// The generator's DPDK port on the client's veth.
        #[arg(long, value_enum, default_value = "af-packet")]
        gen_port: GenPortArg,
        /// The command line to name in RESULTS.md (default: this one).
        #[arg(long)]
        command: Option<String>,
        /// Only these peers, comma-separated (direct, udplb-af-xdp, udplb-af-packet,
        /// udplb-tap, nftables, nginx, dnsdist); default: all.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Keeps UDP sessions alive through a VIP and records who answered each request
    /// (the scale-out scenario's client; JSON configuration as `ha::sessions` defines).
    Sessions {
        /// The configuration as JSON.
        #[arg(long)]
        config_json: String,
        /// Where to write the record.
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Three udplb appliances behind a BIRD router with ECMP: SIGKILL, join and drain,
    /// in each NAT mode; prints one `HA` line per mode (what `scripts/demo-ha` runs).
    DemoHa {
        /// The shorter CI variant (200 sessions, 2 s windows).
        #[arg(long)]
        ci: bool,
        /// Modes to run (default: dsr, preserve-client, fullnat).
        #[arg(long = "mode", value_name = "MODE")]
        modes: Vec<String>,
        /// Sessions (default 1000; 200 with --ci).
        #[arg(long)]
        sessions: Option<u32>,
    },
    /// Soak: pinned flows through udplb while a controller re-PUTs the full set every
    /// 100 ms, alternating two sets; prints one SOAK line (what `scripts/soak` runs).
    Soak {
        /// Minutes to run.
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Pinned flows.
        #[arg(long, default_value_t = 32)]
        flows: u32,
        /// Datagrams per second over all flows.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
    },
    /// Chaos: kill -9 and restart udplb under traffic; prints one CHAOS line (what
    /// `scripts/chaos` runs).
    Chaos {
        /// Kill-and-restart rounds.
        #[arg(long, default_value_t = 20)]
        kills: u32,
    },
    /// Runs udplb on a TAP port in a fresh topology with dnsmasq backends, digs through
    /// the VIP, prints status and metrics, and cleans up (what `scripts/demo` runs).
    Demo {
        /// Gateway API manifests to load.
        #[arg(long, default_value = "config/examples/dns")]
        manifests: std::path::PathBuf,
        /// dig queries per address family.
        #[arg(long, default_value_t = 9)]
        queries: u16,
        /// udplb's DPDK port: a TAP, or AF_XDP / AF_PACKET on a veth.
        #[arg(long, value_enum, default_value = "tap")]
        port: DemoPortArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DemoPortArg {
    Tap,
    #[value(alias = "af_xdp")]
    AfXdp,
    #[value(alias = "af_packet")]
    AfPacket,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenPortArg {
    #[value(alias = "af_xdp")]
    AfXdp,
    #[value(alias = "af_packet")]
    AfPacket,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    RequestResponse,
    Blast,
}

#[derive(Clone, Copy, ValueEnum)]
enum PayloadArg {
    Echo,
    Dns,
}

#[derive(clap::Args)]
struct LoadgenArgs {
    /// The whole configuration as JSON (what the library passes); overrides the flags.
    #[arg(long)]
    config_json: Option<String>,
    /// Write the report here instead of stdout.
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    /// Destination (repeatable; flows are spread over them).
    #[arg(long)]
    target: Vec<SocketAddr>,
    /// Source address (repeatable; flows are spread over them).
    #[arg(long)]
    source: Vec<IpAddr>,
    /// Number of flows.
    #[arg(long, default_value_t = 1)]
    flows: u32,
    /// Source port of flow 0 (others follow); default: kernel-chosen.
    #[arg(long)]
    first_port: Option<u16>,
    /// Request/response or one-way.
    #[arg(long, value_enum, default_value = "request-response")]
    mode: ModeArg,
    /// Datagrams per flow.
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Total datagrams per second (default: unpaced).
    #[arg(long)]
    rate: Option<f64>,
    /// Hard bound on the run, milliseconds.
    #[arg(long, default_value_t = 60_000)]
    duration_ms: u64,
    /// Reply timeout, milliseconds.
    #[arg(long, default_value_t = 1_000)]
    reply_timeout_ms: u64,
    /// Payload size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Sending threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Our echo request, or a DNS query `whoami.test TXT`.
    #[arg(long, value_enum, default_value = "echo")]
    payload: PayloadArg,
}

impl LoadgenArgs {
    fn config(&self) -> Result<LoadgenConfig> {
        if let Some(json) = &self.config_json {
            return serde_json::from_str(json)
                .map_err(|e| Error::invalid("loadgen --config-json", e.to_string()));
        }
        Ok(LoadgenConfig {
            targets: self.target.clone(),
            sources: self.source.clone(),
            flows: self.flows,
            first_port: self.first_port,
            mode: match self.mode {
                ModeArg::RequestResponse => Mode::RequestResponse,
                ModeArg::Blast => Mode::Blast,
            },
            count: self.count,
            rate: self.rate,
            max_duration_ms: self.duration_ms,
            reply_timeout_ms: self.reply_timeout_ms,
            payload_size: self.size,
            threads: self.threads,
            payload: match self.payload {
                PayloadArg::Echo => Payload::Echo,
                PayloadArg::Dns => Payload::Dns,
            },
        })
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Echo {
            name,
            listen,
            sink,
            rcvbuf,
        } => {
            // Runs until killed: the library's Process guard owns this process.
            let stop = AtomicBool::new(false);
            let config = EchoConfig {
                name,
                listen,
                sink,
                recv_buffer: rcvbuf,
            };
            echo::serve(&config, &stop)
        }
        Cmd::Hold { listen } => {
            let _sockets = listen
                .iter()
                .map(|a| {
                    std::net::UdpSocket::bind(a).map_err(|e| Error::io(format!("bind {a}"), e))
                })
                .collect::<Result<Vec<_>>>()?;
            // Runs until killed: the library's Process guard owns this process.
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Cmd::Udpgen {
            device,
            lcore,
            file_prefix,
        } => testbench::traffic::udpgen::serve(
            &testbench::traffic::udpgen::GenOptions {
                device,
                lcore,
                file_prefix,
            },
            std::io::stdin().lock(),
            std::io::stdout().lock(),
        ),
        Cmd::Loadgen(args) => {
            let report = loadgen::run(&args.config()?)?;
            let json = serde_json::to_string_pretty(&report)
                .map_err(|e| Error::invalid("loadgen report", e.to_string()))?;
            match &args.output {
                Some(path) => std::fs::write(path, json)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e)),
                None => {
                    println!("{json}");
                    Ok(())
                }
            }
        }
        Cmd::DnsWatch {
            config_json,
            output,
        } => {
            let config = serde_json::from_str(&config_json)
                .map_err(|e| Error::invalid("dns-watch --config-json", e.to_string()))?;
            let log = testbench::traffic::dnswatch::run(&config)?;
            let json = serde_json::to_string(&log)
                .map_err(|e| Error::invalid("dns-watch log", e.to_string()))?;
            std::fs::write(&output, json)
                .map_err(|e| Error::io(format!("writing {}", output.display()), e))
        }
        Cmd::Stats { server, timeout_ms } => {
            let stats = echo::query_stats(server, Duration::from_millis(timeout_ms))?;
            let json = serde_json::to_string_pretty(&stats)
                .map_err(|e| Error::invalid("echo stats", e.to_string()))?;
            println!("{json}");
            Ok(())
        }
        Cmd::BenchPeers {
            out,
            render_only: true,
            ..
        } => testbench::bench::render(&out),
        Cmd::BenchPeers {
            out,
            dns_manifests,
            render_only: false,
            quick,
            gen_port,
            command,
            only,
        } => {
            let only = only
                .iter()
                .map(|p| {
                    serde_json::from_value(serde_json::Value::String(p.clone()))
                        .map_err(|_| Error::invalid("bench-peers --only", format!("no peer {p:?}")))
                })
                .collect::<Result<Vec<_>>>()?;
            let tools = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
            testbench::bench::run(&testbench::bench::BenchOptions {
                out,
                tools,
                dns_manifests,
                quick,
                gen_port: match gen_port {
                    GenPortArg::AfXdp => testbench::bench::GenPort::AfXdp,
                    GenPortArg::AfPacket => testbench::bench::GenPort::AfPacket,
                },
                command: command.unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
                only,
            })
        }
        Cmd::Demo {
            manifests,
            queries,
            port,
        } => testbench::demo::run(
            &manifests,
            queries,
            match port {
                DemoPortArg::Tap => testbench::demo::DemoPort::Tap,
                DemoPortArg::AfXdp => testbench::demo::DemoPort::AfXdp,
                DemoPortArg::AfPacket => testbench::demo::DemoPort::AfPacket,
            },
        ),
        Cmd::Sessions {
            config_json,
            output,
        } => {
            let config: ha::sessions::SessionsConfig = serde_json::from_str(&config_json)
                .map_err(|e| Error::invalid("sessions --config-json", e.to_string()))?;
            let record = ha::sessions::run(&config)?;
            let json = serde_json::to_vec(&record)
                .map_err(|e| Error::invalid("sessions record", e.to_string()))?;
            std::fs::write(&output, json)
                .map_err(|e| Error::io(format!("writing {}", output.display()), e))
        }
        Cmd::DemoHa {
            ci,
            modes,
            sessions,
        } => {
            let tools = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
            let udplb = testbench::appliance::udplb_binary()?;
            let mut opts = if ci {
                ha::HaOptions::ci(tools, udplb)
            } else {
                ha::HaOptions::full(tools, udplb)
            };
            if let Some(n) = sessions {
                opts.sessions = n;
            }
            let modes = if modes.is_empty() {
                ha::HaMode::ALL.to_vec()
            } else {
                modes
                    .iter()
                    .map(|m| {
                        ha::HaMode::parse(m).ok_or_else(|| {
                            Error::invalid(
                                "--mode",
                                format!("{m:?}: dsr, preserve-client or fullnat"),
                            )
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let outcomes = ha::run_demo(&opts, &modes)?;
            let left: Vec<&String> = outcomes.iter().flat_map(|o| &o.leftovers).collect();
            if left.is_empty() {
                Ok(())
            } else {
                Err(Error::invalid(
                    "demo-ha clean-up",
                    format!("left behind: {left:?}"),
                ))
            }
        }
        Cmd::Soak {
            minutes,
            flows,
            rate,
        } => {
            let tools = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
            let duration = Duration::try_from_secs_f64(minutes * 60.0)
                .map_err(|e| Error::invalid("--minutes", e.to_string()))?;
            let report = testbench::reliability::soak(&SoakOptions {
                duration,
                put_interval: Duration::from_millis(100),
                flows,
                rate,
                tools,
            })?;
            println!("{}", report.line());
            if report.passed() {
                Ok(())
            } else {
                Err(Error::invalid(
                    "soak",
                    "the run missed the bar (see the SOAK line)",
                ))
            }
        }
        Cmd::Chaos { kills } => {
            let tools = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
            let report = testbench::reliability::chaos(&ChaosOptions { kills, tools })?;
            println!("{}", report.line());
            if report.passed() {
                Ok(())
            } else {
                Err(Error::invalid(
                    "chaos",
                    "a round did not serve the last config",
                ))
            }
        }
        Cmd::Cleanup => {
            let report = cleanup::remove_stale()?;
            for ns in &report.namespaces {
                println!("removed namespace {ns}");
            }
            for dir in &report.dirs {
                println!("removed directory {}", dir.display());
            }
            if report.namespaces.is_empty() && report.dirs.is_empty() {
                println!("nothing to clean up");
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("testbench: {e}");
            ExitCode::FAILURE
        }
    }
}

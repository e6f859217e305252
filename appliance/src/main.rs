//! `udplb`: the appliance binary. A thin command line over the `appliance` library.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// udplb: a DPDK UDP load balancer configured with Kubernetes Gateway API UDPRoutes.
///
/// Start with `udplb check` on your manifests, then `udplb run -c appliance.yaml`.
/// Log verbosity follows RUST_LOG (e.g. RUST_LOG=debug); the default is `info`.
#[derive(Parser)]
#[command(name = "udplb", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance: DPDK ports, poll-mode workers, slow path and management API.
    ///
    /// The settings file names the ports (PCI addresses or vdevs such as
    /// `net_tap0,iface=udplb0`), the appliance's own addresses, SNAT pool, workers and the
    /// Gateway API manifests to load. See appliance/README.md.
    Run {
        /// The appliance settings file.
        #[arg(
            short,
            long,
            value_name = "FILE",
            default_value = "/etc/udplb/appliance.yaml"
        )]
        config: PathBuf,
    },
    /// Check Gateway API manifests offline and print the status udplb would report.
    ///
    /// Reads files and directories (*.yaml, *.yml; kubectl List output works), prints one
    /// document per GatewayClass, Gateway and UDPRoute with its computed status, and a
    /// summary on stderr. Exit status: 0 all accepted and resolved, 1 some condition
    /// false, 2 input unreadable or invalid.
    Check {
        /// Manifest files or directories.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
        output: Format,
        /// The GatewayClass controllerName that udplb serves.
        #[arg(long, default_value = config::DEFAULT_CONTROLLER_NAME)]
        controller_name: String,
        /// VIPs for Gateways without spec.addresses (repeat for several).
        #[arg(long = "default-vip", value_name = "IP")]
        default_vips: Vec<IpAddr>,
    },
    /// Ask a running appliance for its Gateway API status and key counters.
    Status {
        /// The management API address.
        #[arg(long, default_value = "127.0.0.1:9180")]
        api: String,
        /// Print the full Prometheus metrics instead of the key counters.
        #[arg(long)]
        metrics: bool,
        /// A file holding the token to send (the read token, or the write token), when
        /// `management.read_token_file` is set.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
    },
    /// Drain a running appliance: withdraw every VIP, keep serving its flows until they are
    /// idle or the deadline passes, then report `drained`.
    ///
    /// Prints the drain state (state, flows_remaining, ...). `--cancel` announces again;
    /// `--status` only prints. The systemd unit runs `udplb drain --wait` before it stops.
    Drain {
        /// The management API address.
        #[arg(long, default_value = "127.0.0.1:9180")]
        api: String,
        /// A file holding the write token (`management.token_file`); default:
        /// /etc/udplb/token when that file exists.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// How long to wait for flows to go idle (e.g. 30s); default: the appliance's
        /// `drain.deadline`.
        #[arg(long, value_name = "DURATION", conflicts_with_all = ["cancel", "status"])]
        deadline: Option<String>,
        /// Block until drained or the deadline has passed.
        #[arg(long, conflicts_with_all = ["cancel", "status"])]
        wait: bool,
        /// Cancel a drain: announce the VIPs again.
        #[arg(long, conflicts_with = "status")]
        cancel: bool,
        /// Print the drain state only.
        #[arg(long)]
        status: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => match appliance::runtime::run_from_file(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("udplb: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check {
            paths,
            output,
            controller_name,
            default_vips,
        } => {
            let opts = config::check::CheckOptions {
                output: match output {
                    Format::Yaml => config::check::OutputFormat::Yaml,
                    Format::Json => config::check::OutputFormat::Json,
                },
                params: config::CompileParams {
                    controller_name,
                    default_vips,
                },
            };
            let outcome = config::check::run(&paths, &opts);
            print!("{}", outcome.stdout);
            eprintln!("{}", outcome.stderr_summary);
            ExitCode::from(u8::try_from(outcome.exit_code).unwrap_or(2))
        }
        Command::Drain {
            api,
            token_file,
            deadline,
            wait,
            cancel,
            status,
        } => {
            let action = if cancel {
                appliance::mgmt::DrainAction::Cancel
            } else if status {
                appliance::mgmt::DrainAction::Status
            } else {
                appliance::mgmt::DrainAction::Start { deadline, wait }
            };
            let default = Path::new(appliance::mgmt::DEFAULT_TOKEN_FILE);
            let result = appliance::mgmt::read_token(token_file.as_deref(), Some(default))
                .and_then(|token| appliance::mgmt::drain(&api, token.as_deref(), &action));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("udplb drain: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Status {
            api,
            metrics,
            token_file,
        } => {
            let token = match appliance::mgmt::read_token(token_file.as_deref(), None) {
                Ok(token) => token,
                Err(e) => {
                    eprintln!("udplb status: {e}");
                    return ExitCode::from(2);
                }
            };
            match appliance::mgmt::print_status(&api, metrics, token.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("udplb status: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

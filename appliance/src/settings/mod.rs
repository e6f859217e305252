//! `appliance.yaml`: the appliance's own configuration.
//!
//! This file says what the machine is (DPDK ports, addresses, routes, workers, capacities,
//! management address); the Gateway API manifests say what it serves. Parsing happens once,
//! at the border (`schema.rs`: every field typed, unknown fields refused, so a typo is an
//! error naming the field, never a silently ignored setting); [`Settings::validate`]
//! (`validate.rs`) then checks what types alone cannot and reports every problem with its
//! field path, e.g. `routes[0].port: no port named "wan"`; [`Settings::check_cpus`]
//! (`host.rs`) checks at start that the lcores exist on this machine.
//!
//! Every field is documented in appliance/README.md ("Configuration (appliance.yaml)").

mod announce;
mod host;
mod manifests;
mod schema;
mod text;
mod validate;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use crate::dpdk::Device;
pub use announce::{AnnounceSettings, BirdSettings, DrainSettings};
pub use host::CpuSet;
pub use schema::{
    FlowSettings, MaglevSettings, ManagementSettings, ManifestSettings, NeighborSettings,
    PortSettings, RouteSettings, Settings, SlowPathSettings, SnatSettings, WorkerSettings,
    DEFAULT_IDLE_BACKOFF_US, DEFAULT_MANAGEMENT_LISTEN,
};
pub use validate::FieldError;

/// Why an `appliance.yaml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The settings file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown field, or a value of the wrong type or syntax.
    /// The message starts with the field path (e.g. `ports[1].addresses[0]: ...`).
    #[error("{0}")]
    Parse(String),
    /// The document parsed but breaks one or more rules; every problem is listed.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<FieldError>),
    /// A problem in a named file (wraps the other variants).
    #[error("{path}: {source}")]
    InFile {
        /// The settings file.
        path: PathBuf,
        /// The problem.
        source: Box<SettingsError>,
    },
    /// `management.token_file` or `management.read_token_file` could not be used.
    #[error("{field}: {path}: {message}")]
    Token {
        /// The setting.
        field: &'static str,
        /// The token file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

fn join_lines(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// How full-NAT replies addressed to an SNAT address reach the appliance
/// ([`Settings::snat_reach`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnatReach {
    /// Inside an address prefix of `ports[port]`: hosts on that link resolve the address
    /// themselves, so that port answers ARP/NDP (and ping) for it.
    OnLink {
        /// Index into `ports`.
        port: usize,
    },
    /// Inside no port's prefix but covered by `routes[route]`: routers deliver replies to
    /// it (the network beyond must route it to this appliance); no port answers ARP/NDP
    /// for it.
    Routed {
        /// Index into `routes`.
        route: usize,
    },
}

/// Most worker lcores (DPDK builds default to 128 lcores; queue ids are `u16`).
pub const MAX_WORKERS: u16 = 1024;
/// Most ports (port ids are `u16`).
pub const MAX_PORTS: u16 = 1024;

impl FromStr for Settings {
    type Err = SettingsError;

    /// Parses and validates a settings document. Relative paths stay as written.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let settings: Settings = serde_norway::from_str(text)
            .map_err(|e| SettingsError::Parse(parse_error(text, &e)))?;
        settings.validate().map_err(SettingsError::Invalid)?;
        Ok(settings)
    }
}

/// `serde_norway`'s message (it starts with the field path), except for an integer
/// beyond 64 bits: serde calls that "invalid type: integer `N` as u128, expected u16".
/// `config` finds such integers with their paths (the same reader manifests go through);
/// where the failing field holds one, the message says it is out of range.
fn parse_error(text: &str, e: &serde_norway::Error) -> String {
    let message = e.to_string();
    let overflows = config::integers_outside_i64(text).unwrap_or_default();
    let Some((path, literal)) = overflows.iter().find_map(|o| {
        message
            .strip_prefix(o.path.as_str())
            .filter(|rest| rest.starts_with(": "))
            .map(|_| (o.path.as_str(), o.literal.as_str()))
    }) else {
        return message;
    };
    // The type's range, from serde's "expected u16" (settings' integers are unsigned).
    let max = [
        ("u8", u64::from(u8::MAX)),
        ("u16", u64::from(u16::MAX)),
        ("u32", u64::from(u32::MAX)),
        ("u64", u64::MAX),
    ]
    .into_iter()
    .find(|(ty, _)| message.contains(&format!(", expected {ty}")))
    .map(|(_, max)| max);
    let range = match max {
        Some(max) => format!("0 to {max}"),
        None => "integers are at most 64-bit".to_owned(),
    };
    let at = e
        .location()
        .map(|l| format!(" at line {} column {}", l.line(), l.column()))
        .unwrap_or_default();
    format!("{path}: {literal} is out of range ({range}){at}")
}

impl Settings {
    /// Reads, parses and validates a settings file, then resolves relative `manifests` and
    /// `management.token_file` against the file's directory.
    ///
    /// # Errors
    /// [`SettingsError::Read`] if the file cannot be read; otherwise [`SettingsError::InFile`]
    /// wrapping the parse or validation error.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut settings = Settings::from_str(&text).map_err(|e| SettingsError::InFile {
            path: path.to_owned(),
            source: Box::new(e),
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        settings.manifests.resolve(base);
        for token in [
            &mut settings.management.token_file,
            &mut settings.management.read_token_file,
        ]
        .into_iter()
        .flatten()
        {
            *token = base.join(&*token);
        }
        Ok(settings)
    }

    /// RX and TX queues each port gets: one per worker (the validator bounds the workers
    /// to [`MAX_WORKERS`], so the count is exact).
    pub fn queues_per_port(&self) -> u16 {
        (1..=MAX_WORKERS)
            .zip(&self.workers.lcores)
            .next_back()
            .map_or(0, |(n, _)| n)
    }

    /// The port named `name`, with its index (port ids are `u16`, DPDK's; the validator
    /// bounds the ports to [`MAX_PORTS`]).
    pub fn port(&self, name: &str) -> Option<(u16, &PortSettings)> {
        (0..MAX_PORTS)
            .zip(&self.ports)
            .find(|(_, p)| p.name == name)
    }

    /// The configured SNAT addresses with their field names (`snat.ipv4`, `snat.ipv6`).
    pub fn snat_addresses(&self) -> Vec<(&'static str, IpAddr)> {
        let v4 = self.snat.ipv4.map(|a| ("snat.ipv4", IpAddr::V4(a)));
        let v6 = self.snat.ipv6.map(|a| ("snat.ipv6", IpAddr::V6(a)));
        v4.into_iter().chain(v6).collect()
    }

    /// How replies to SNAT address `ip` reach the appliance: on the link of the port with
    /// the longest address prefix holding it (the first such port on a tie), else through
    /// the longest route covering it; `None` if neither (validation refuses that).
    pub fn snat_reach(&self, ip: IpAddr) -> Option<SnatReach> {
        let on_link = self
            .ports
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.addresses.iter().map(move |a| (i, a)))
            .filter(|(_, a)| a.contains(&ip))
            .max_by_key(|&(i, a)| (a.prefix_len(), std::cmp::Reverse(i)));
        if let Some((port, _)) = on_link {
            return Some(SnatReach::OnLink { port });
        }
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.prefix.contains(&ip))
            .max_by_key(|&(i, r)| (r.prefix.prefix_len(), std::cmp::Reverse(i)))
            .map(|(route, _)| SnatReach::Routed { route })
    }

    /// EAL arguments for this configuration: lcores, main lcore, one device argument per
    /// port, then `eal_args`. The program name (`argv[0]`) is not included.
    pub fn eal_arguments(&self) -> Vec<String> {
        let mut lcores = vec![self.workers.main_lcore];
        lcores.extend(&self.workers.lcores);
        let list = lcores
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut args = vec![
            "-l".to_owned(),
            list,
            "--main-lcore".to_owned(),
            self.workers.main_lcore.to_string(),
        ];
        for port in &self.ports {
            args.extend(port.device.eal_args());
        }
        args.extend(self.eal_args.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::net::PortRange;
    use pipelines::spec::{HashKey, NatMode};
    use pipelines::tables::DEFAULT_MAGLEV_SEED;

    const MINIMAL: &str = "ports:\n  - name: p0\n    device: net_null0\n";

    #[test]
    fn minimal_document_gets_documented_defaults() {
        let s = Settings::from_str(MINIMAL).expect("minimal settings");
        assert_eq!(s.ports[0].mtu, 1500);
        assert_eq!(s.workers.lcores, vec![1]);
        assert_eq!(s.workers.main_lcore, 0);
        assert_eq!(s.workers.burst, 32);
        assert_eq!(s.workers.idle_backoff_us, 500);
        assert_eq!(s.flows.capacity, 1_048_576);
        assert_eq!(s.flows.idle_timeout.0, std::time::Duration::from_secs(30));
        assert_eq!(s.flows.new_flow_rate_limit, 0);
        assert_eq!(s.nat_mode, NatMode::FullNat);
        assert_eq!(s.hash_key, HashKey::FiveTuple);
        assert_eq!(s.maglev.table_size, 65537);
        assert_eq!(s.maglev.seed, DEFAULT_MAGLEV_SEED);
        assert_eq!(s.management.listen.to_string(), "127.0.0.1:9180");
        assert_eq!(s.management.token_file, None);
        assert_eq!(s.controller_name, "udplb.io/appliance");
        assert_eq!(
            s.snat.ports,
            PortRange {
                first: 1024,
                last: 65535
            }
        );
        assert_eq!(s.slow_path.queue_depth, 1024);
        assert_eq!(s.slow_path.icmp_rate_limit, 100);
        assert_eq!(s.queues_per_port(), 1);
    }

    #[test]
    fn devices_parse() {
        for pci in ["0000:03:00.0", "03:00.1", "0000:af:00.7,txq_inline=128"] {
            assert!(
                matches!(pci.parse::<Device>(), Ok(Device::Pci { .. })),
                "{pci}"
            );
        }
        for vdev in [
            "net_tap0,iface=udplb0",
            "net_af_packet0,iface=eth1",
            "net_af_xdp0,iface=eth1",
            "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap",
            "net_virtio_user0,path=/dev/vhost-net",
            "net_ring0",
            "net_null0",
        ] {
            assert!(
                matches!(vdev.parse::<Device>(), Ok(Device::Vdev { .. })),
                "{vdev}"
            );
        }
        for bad in [
            "eth0",
            "0000:03:00.8",
            "net_",
            "net_tap0,iface",
            "0000:3:00.0",
            "net_Tap0",
        ] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
        let tap: Device = "net_tap0,iface=udplb0".parse().expect("tap");
        assert_eq!(tap.port_name(), "net_tap0");
        assert_eq!(tap.eal_args(), ["--vdev", "net_tap0,iface=udplb0"]);
    }

    #[test]
    fn eal_arguments_derive_lcores_and_devices() {
        let s = Settings::from_str(
            "ports:\n  - {name: a, device: \"0000:03:00.0\"}\n  - {name: b, device: net_null0}\n\
             workers: {lcores: [2, 3], main_lcore: 1}\neal_args: [--in-memory]\n",
        )
        .expect("settings");
        assert_eq!(
            s.eal_arguments(),
            [
                "-l",
                "1,2,3",
                "--main-lcore",
                "1",
                "-a",
                "0000:03:00.0",
                "--vdev",
                "net_null0",
                "--in-memory"
            ]
        );
        assert_eq!(s.queues_per_port(), 2);
    }

    #[test]
    fn integers_beyond_64_bits_are_out_of_range_naming_the_field() {
        let err = |doc: &str| match Settings::from_str(doc) {
            Err(SettingsError::Parse(message)) => message,
            other => panic!("expected a parse error for {doc:?}, got {other:?}"),
        };
        assert_eq!(
            err("ports:\n  - {name: a, device: net_null0, mtu: 18446744073709551616}\n"),
            "ports[0].mtu: 18446744073709551616 is out of range (0 to 65535) at line 2 column 39"
        );
        assert_eq!(
            err(&format!(
                "{MINIMAL}workers: {{lcores: [1, 36893488147419103232]}}\n"
            )),
            "workers.lcores[1]: 36893488147419103232 is out of range (0 to 4294967295) at line 4 \
             column 23"
        );
        assert_eq!(
            err(&format!("{MINIMAL}maglev:\n  seed: 18446744073709551616\n")),
            "maglev.seed: 18446744073709551616 is out of range (0 to 18446744073709551615) at \
             line 5 column 9"
        );
        assert_eq!(
            err(&format!(
                "{MINIMAL}flows: {{capacity: -18446744073709551616}}\n"
            )),
            "flows.capacity: -18446744073709551616 is out of range (0 to 4294967295) at line 4 \
             column 19"
        );
        // Within 64 bits serde's own message stands, and a u64 above i64::MAX is a seed.
        assert!(err(&format!("{MINIMAL}workers: {{burst: 70000}}\n"))
            .starts_with("workers.burst: invalid value: integer `70000`, expected u16"),);
        let seed = Settings::from_str(&format!(
            "{MINIMAL}maglev: {{seed: 18446744073709551615}}\n"
        ))
        .expect("the largest seed");
        assert_eq!(seed.maglev.seed, u64::MAX);
    }
}

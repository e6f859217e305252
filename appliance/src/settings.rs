//! `appliance.yaml`: the appliance's own configuration.
//!
//! This file says what the machine is (DPDK ports, addresses, routes, workers, capacities,
//! management address); the Gateway API manifests say what it serves. Parsing happens once, at
//! the border: every field is typed (addresses, prefixes, MACs, durations, port ranges, device
//! strings) and unknown fields are rejected, so a typo is an error naming the field, never a
//! silently ignored setting. [`Settings::validate`] then checks what types alone cannot
//! (unique names, routes through known ports, a prime Maglev size, ...) and reports every
//! problem with its field path, e.g. `routes[0].port: no port named "wan"`.
//!
//! Every field is documented in appliance/README.md ("Configuration (appliance.yaml)").

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pipelines::maglev::{is_prime, next_prime};
use pipelines::net::{IpNet, MacAddr, PortRange};
use pipelines::spec::{check_idle_timeout, HashKey, HumanDuration, NatMode};
use pipelines::tables::{DataplaneParams, DEFAULT_MAGLEV_SEED};

pub use crate::dpdk::Device;
use serde::Deserialize;

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
    /// `management.token_file` could not be used.
    #[error("management.token_file: {path}: {message}")]
    Token {
        /// The token file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// One semantic problem: the field path and what is wrong with its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `routes[0].via`.
    pub field: String,
    /// What is wrong, e.g. `198.19.0.1 is not inside any address prefix of port "lan"`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn join_lines(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole `appliance.yaml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// DPDK ports, in the order they are probed. At least one.
    pub ports: Vec<PortSettings>,
    /// VIPs served in addition to the addresses that Gateways request (`spec.addresses`).
    /// The slow path answers ARP/NDP and ping for them.
    #[serde(default)]
    pub default_vips: Vec<IpAddr>,
    /// Source addresses and port pool for full NAT.
    #[serde(default)]
    pub snat: SnatSettings,
    /// Static neighbors (IP → MAC); others are resolved by ARP/NDP.
    #[serde(default)]
    pub neighbors: Vec<NeighborSettings>,
    /// Static routes: next hop per prefix. Destinations inside a port's own prefixes are
    /// reached directly.
    #[serde(default)]
    pub routes: Vec<RouteSettings>,
    /// Poll-mode workers.
    #[serde(default)]
    pub workers: WorkerSettings,
    /// Flow table.
    #[serde(default)]
    pub flows: FlowSettings,
    /// NAT mode for listeners that do not override it (`fullnat`, `preserve-client`).
    #[serde(default, deserialize_with = "text::one")]
    pub nat_mode: NatMode,
    /// Hash key for listeners that do not override it (`5-tuple`, `source-ip-port`,
    /// `source-ip`).
    #[serde(default, deserialize_with = "text::one")]
    pub hash_key: HashKey,
    /// Maglev consistent hashing.
    #[serde(default)]
    pub maglev: MaglevSettings,
    /// Management HTTP API.
    #[serde(default)]
    pub management: ManagementSettings,
    /// Gateway API manifest files or directories, loaded at start and watched for changes.
    /// Relative paths are resolved against the directory of the settings file.
    #[serde(default)]
    pub manifests: Vec<PathBuf>,
    /// `spec.controllerName` of the GatewayClasses this appliance serves.
    #[serde(default = "default_controller_name")]
    pub controller_name: String,
    /// Extra EAL arguments (e.g. `["--no-huge", "-m", "512"]`). Lcores and devices come from
    /// `workers` and `ports` and may not be given here.
    #[serde(default)]
    pub eal_args: Vec<String>,
    /// Slow path (ARP, NDP, ICMP).
    #[serde(default)]
    pub slow_path: SlowPathSettings,
}

/// One DPDK port.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSettings {
    /// Label used in metrics and in `routes[].port`: letters, digits, `_`, `-`, `.`.
    pub name: String,
    /// PCI address or vdev string.
    #[serde(deserialize_with = "text::one")]
    pub device: Device,
    /// The appliance's own addresses on this port, with prefix (`198.18.0.1/24`; the
    /// address is kept as written).
    #[serde(default, deserialize_with = "text::prefixes")]
    pub addresses: Vec<IpNet>,
    /// MAC address override; default: the device's own.
    #[serde(default, deserialize_with = "text::option")]
    pub mac: Option<MacAddr>,
    /// IP MTU in bytes.
    #[serde(default = "default_mtu")]
    pub mtu: u16,
}

/// SNAT addresses and port pool.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnatSettings {
    /// Source address of full-NAT IPv4 flows towards backends.
    #[serde(default)]
    pub ipv4: Option<Ipv4Addr>,
    /// Source address of full-NAT IPv6 flows towards backends.
    #[serde(default)]
    pub ipv6: Option<Ipv6Addr>,
    /// Source ports handed out to full-NAT flows.
    #[serde(default = "default_snat_ports", deserialize_with = "text::one")]
    pub ports: PortRange,
}

impl Default for SnatSettings {
    fn default() -> Self {
        SnatSettings {
            ipv4: None,
            ipv6: None,
            ports: default_snat_ports(),
        }
    }
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

/// A static neighbor entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborSettings {
    /// The neighbor's IP address.
    pub ip: IpAddr,
    /// Its MAC address.
    #[serde(deserialize_with = "text::one")]
    pub mac: MacAddr,
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// Destination prefix, host bits zero (`0.0.0.0/0`, `2001:2:0:200::/56`).
    #[serde(deserialize_with = "text::prefix")]
    pub prefix: IpNet,
    /// Next hop; must lie inside an address prefix of `port`.
    pub via: IpAddr,
    /// Name of the port to send through.
    pub port: String,
}

/// Poll-mode workers.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSettings {
    /// One worker per lcore; each owns one RX and one TX queue on every port.
    #[serde(default = "default_lcores")]
    pub lcores: Vec<u32>,
    /// The EAL main lcore, which runs management and the slow path; not a worker.
    #[serde(default)]
    pub main_lcore: u32,
    /// Microseconds a worker sleeps after an empty poll of every queue; 0 = pure polling.
    #[serde(default)]
    pub idle_backoff_us: u32,
    /// Packets per RX/TX burst (1 to 512).
    #[serde(default = "default_burst")]
    pub burst: u16,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            lcores: default_lcores(),
            main_lcore: 0,
            idle_backoff_us: 0,
            burst: default_burst(),
        }
    }
}

/// Flow table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSettings {
    /// Flow entries per worker (preallocated).
    #[serde(default = "default_flow_capacity")]
    pub capacity: u32,
    /// A flow with no packet for this long is forgotten (`30s`, `500ms`, `5m`, `1h`; the
    /// `humantime` grammar, 1ms to 24h).
    #[serde(default = "default_idle_timeout", deserialize_with = "text::one")]
    pub idle_timeout: HumanDuration,
    /// New flows per worker per second; excess datagrams are dropped and counted.
    /// 0 = unlimited.
    #[serde(default)]
    pub new_flow_rate_limit: u32,
}

impl Default for FlowSettings {
    fn default() -> Self {
        FlowSettings {
            capacity: default_flow_capacity(),
            idle_timeout: default_idle_timeout(),
            new_flow_rate_limit: 0,
        }
    }
}

/// Maglev consistent hashing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaglevSettings {
    /// Lookup table size per listener; must be prime, and should exceed 100 × backends.
    #[serde(default = "default_table_size")]
    pub table_size: u32,
    /// Seed of the backend hash; appliances with the same seed pick the same backends.
    #[serde(default = "default_maglev_seed")]
    pub seed: u64,
}

impl Default for MaglevSettings {
    fn default() -> Self {
        MaglevSettings {
            table_size: default_table_size(),
            seed: default_maglev_seed(),
        }
    }
}

/// Management HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementSettings {
    /// Address the API listens on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// File holding the bearer token that mutating calls must present; none = no token.
    /// Relative paths are resolved against the directory of the settings file.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl Default for ManagementSettings {
    fn default() -> Self {
        ManagementSettings {
            listen: default_listen(),
            token_file: None,
        }
    }
}

impl ManagementSettings {
    /// Reads the bearer token from `token_file` (surrounding whitespace removed).
    ///
    /// # Errors
    /// [`SettingsError::Token`] when the file cannot be read, is empty, or holds characters
    /// that cannot appear in an `Authorization` header.
    pub fn read_token(&self) -> Result<Option<String>, SettingsError> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let fail = |message: String| SettingsError::Token {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(fail("the file is empty".into()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(fail(
                "the token may only hold visible ASCII characters".into(),
            ));
        }
        Ok(Some(token.to_owned()))
    }
}

/// Slow path (ARP, NDP, ICMP).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowPathSettings {
    /// Capacity of the channel from workers to the slow path; overflow is dropped and
    /// counted, never blocks a worker.
    #[serde(default = "default_queue_depth")]
    pub queue_depth: u32,
    /// ICMP messages the appliance sends per second at most (echo replies and errors).
    #[serde(default = "default_icmp_rate_limit")]
    pub icmp_rate_limit: u32,
}

impl Default for SlowPathSettings {
    fn default() -> Self {
        SlowPathSettings {
            queue_depth: default_queue_depth(),
            icmp_rate_limit: default_icmp_rate_limit(),
        }
    }
}

fn default_mtu() -> u16 {
    1500
}
fn default_snat_ports() -> PortRange {
    PortRange {
        first: 1024,
        last: 65535,
    }
}
fn default_lcores() -> Vec<u32> {
    vec![1]
}
fn default_burst() -> u16 {
    32
}
fn default_flow_capacity() -> u32 {
    1 << 20
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(DataplaneParams::default().default_idle_timeout)
}
fn default_table_size() -> u32 {
    DataplaneParams::default().maglev_size
}
fn default_maglev_seed() -> u64 {
    DEFAULT_MAGLEV_SEED
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9180))
}
fn default_controller_name() -> String {
    "udplb.io/appliance".into()
}
fn default_queue_depth() -> u32 {
    1024
}
fn default_icmp_rate_limit() -> u32 {
    100
}

/// Most worker lcores (DPDK builds default to 128 lcores; queue ids are `u16`).
pub const MAX_WORKERS: u16 = 1024;
/// Most ports (port ids are `u16`).
pub const MAX_PORTS: u16 = 1024;

/// Largest accepted values, so a typo cannot ask for terabytes of preallocated memory.
const MAX_FLOW_CAPACITY: u32 = 1 << 28;
const MAX_TABLE_SIZE: u32 = 1 << 24;
const MAX_BURST: u16 = 512;
const MAX_QUEUE_DEPTH: u32 = 1 << 20;
const MAX_IDLE_BACKOFF_US: u32 = 1_000_000;
/// Smallest IPv4 MTU (RFC 791) and IPv6 MTU (RFC 8200).
const MIN_MTU_V4: u16 = 68;
const MIN_MTU_V6: u16 = 1280;
const MAX_MTU: u16 = 9702;

/// EAL options derived from `workers` and `ports`, refused in `eal_args`.
const RESERVED_EAL_ARGS: &[(&str, &str)] = &[
    ("-l", "workers.lcores"),
    ("--lcores", "workers.lcores"),
    ("-c", "workers.lcores"),
    ("--main-lcore", "workers.main_lcore"),
    ("-a", "ports[].device"),
    ("--allow", "ports[].device"),
    ("-b", "ports[].device"),
    ("--block", "ports[].device"),
    ("--vdev", "ports[].device"),
];

impl FromStr for Settings {
    type Err = SettingsError;

    /// Parses and validates a settings document. Relative paths stay as written.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let settings: Settings =
            serde_norway::from_str(text).map_err(|e| SettingsError::Parse(e.to_string()))?;
        settings.validate().map_err(SettingsError::Invalid)?;
        Ok(settings)
    }
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
        for manifest in &mut settings.manifests {
            *manifest = base.join(&*manifest);
        }
        if let Some(token) = &mut settings.management.token_file {
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

    /// Checks the rules that types alone cannot express.
    ///
    /// # Errors
    /// Every violated rule, each with its field path.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut v = Validator::default();
        self.validate_ports(&mut v);
        self.validate_addresses(&mut v);
        self.validate_routes(&mut v);
        self.validate_workers(&mut v);
        self.validate_capacities(&mut v);
        if v.errors.is_empty() {
            Ok(())
        } else {
            Err(v.errors)
        }
    }

    fn validate_ports(&self, v: &mut Validator) {
        if self.ports.is_empty() {
            v.fail("ports", "at least one port is required");
        }
        if self.ports.len() > usize::from(MAX_PORTS) {
            v.fail("ports", format!("at most {MAX_PORTS} ports"));
        }
        for (i, port) in self.ports.iter().enumerate() {
            let at = format!("ports[{i}]");
            if port.name.is_empty()
                || !port
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                v.fail(
                    format!("{at}.name"),
                    format!(
                        "{:?}: use letters, digits, '_', '-' or '.' (it is a metrics label)",
                        port.name
                    ),
                );
            }
            if let Some(j) = self.ports[..i].iter().position(|p| p.name == port.name) {
                v.fail(
                    format!("{at}.name"),
                    format!("{:?} is already the name of ports[{j}]", port.name),
                );
            }
            if let Some(j) = self.ports[..i]
                .iter()
                .position(|p| p.device.port_name() == port.device.port_name())
            {
                v.fail(
                    format!("{at}.device"),
                    format!(
                        "{:?} is already the device of ports[{j}]",
                        port.device.port_name()
                    ),
                );
            }
            if let Some(mac) = port.mac {
                if !mac.is_unicast() {
                    v.fail(
                        format!("{at}.mac"),
                        format!("{mac} is not a unicast address"),
                    );
                }
            }
            let needs_v6 = port.addresses.iter().any(|a| a.addr().is_ipv6());
            let min = if needs_v6 { MIN_MTU_V6 } else { MIN_MTU_V4 };
            if !(min..=MAX_MTU).contains(&port.mtu) {
                v.fail(
                    format!("{at}.mtu"),
                    format!(
                        "{} is out of range ({min} to {MAX_MTU}{})",
                        port.mtu,
                        if needs_v6 {
                            "; the port has IPv6 addresses"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
    }

    fn validate_addresses(&self, v: &mut Validator) {
        let mut own: Vec<(IpAddr, String)> = Vec::new();
        for (i, port) in self.ports.iter().enumerate() {
            for (j, prefix) in port.addresses.iter().enumerate() {
                let at = format!("ports[{i}].addresses[{j}]");
                v.unicast(&at, prefix.addr());
                if let Some((_, first)) = own.iter().find(|(a, _)| *a == prefix.addr()) {
                    v.fail(
                        at.clone(),
                        format!("{} is already assigned at {first}", prefix.addr()),
                    );
                }
                own.push((prefix.addr(), at));
            }
        }
        for (i, vip) in self.default_vips.iter().enumerate() {
            let at = format!("default_vips[{i}]");
            v.unicast(&at, *vip);
            if let Some((_, first)) = own.iter().find(|(a, _)| a == vip) {
                v.fail(at.clone(), format!("{vip} is already assigned at {first}"));
            }
            own.push((*vip, at));
        }
        for (field, ip) in self.snat_addresses() {
            let errors = v.errors.len();
            v.unicast(field, ip);
            if v.errors.len() == errors && self.snat_reach(ip).is_none() {
                v.fail(
                    field,
                    format!(
                        "{ip} is inside no port's address prefix and no route covers it, so \
                         backends' replies to it cannot reach the appliance: put it inside \
                         the prefix of the port facing the backends (that port then answers \
                         ARP/NDP for it), or add a route covering it and have the network \
                         route it to this appliance"
                    ),
                );
            }
        }
        if self.nat_mode == NatMode::FullNat {
            let v4 = self.default_vips.iter().any(IpAddr::is_ipv4);
            let v6 = self.default_vips.iter().any(IpAddr::is_ipv6);
            if v4 && self.snat.ipv4.is_none() {
                v.fail(
                    "snat.ipv4",
                    "required: nat_mode is fullnat and default_vips has an IPv4 address",
                );
            }
            if v6 && self.snat.ipv6.is_none() {
                v.fail(
                    "snat.ipv6",
                    "required: nat_mode is fullnat and default_vips has an IPv6 address",
                );
            }
        }
        if self.snat.ports.first == 0 {
            v.fail("snat.ports", "port 0 cannot be a source port");
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            v.unicast(&format!("neighbors[{i}].ip"), n.ip);
            if !n.mac.is_unicast() {
                v.fail(
                    format!("neighbors[{i}].mac"),
                    format!("{} is not a unicast address", n.mac),
                );
            }
            if let Some(j) = self.neighbors[..i].iter().position(|m| m.ip == n.ip) {
                v.fail(
                    format!("neighbors[{i}].ip"),
                    format!("{} is already listed at neighbors[{j}]", n.ip),
                );
            }
        }
    }

    fn validate_routes(&self, v: &mut Validator) {
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if route.prefix.addr() != route.prefix.network() {
                v.fail(
                    format!("{at}.prefix"),
                    format!(
                        "{}: host bits are set (did you mean {}?)",
                        route.prefix,
                        route.prefix.trunc()
                    ),
                );
            }
            if let Some(j) = self.routes[..i]
                .iter()
                .position(|r| r.prefix == route.prefix)
            {
                v.fail(
                    format!("{at}.prefix"),
                    format!("{} is already routed by routes[{j}]", route.prefix),
                );
            }
            if route.via.is_ipv4() != route.prefix.addr().is_ipv4() {
                v.fail(
                    format!("{at}.via"),
                    format!(
                        "{} is not of the same IP family as prefix {}",
                        route.via, route.prefix
                    ),
                );
                continue;
            }
            v.unicast(&format!("{at}.via"), route.via);
            match self.port(&route.port) {
                None => v.fail(
                    format!("{at}.port"),
                    format!("no port named {:?}", route.port),
                ),
                Some((_, port)) => {
                    if !port.addresses.iter().any(|a| a.contains(&route.via)) {
                        v.fail(
                            format!("{at}.via"),
                            format!(
                                "{} is not inside any address prefix of port {:?}",
                                route.via, route.port
                            ),
                        );
                    }
                }
            }
        }
    }

    fn validate_workers(&self, v: &mut Validator) {
        let w = &self.workers;
        if w.lcores.is_empty() {
            v.fail("workers.lcores", "at least one worker lcore is required");
        }
        if w.lcores.len() > usize::from(MAX_WORKERS) {
            v.fail(
                "workers.lcores",
                format!("at most {MAX_WORKERS} worker lcores"),
            );
        }
        for (i, lcore) in w.lcores.iter().enumerate() {
            if w.lcores[..i].contains(lcore) {
                v.fail(
                    format!("workers.lcores[{i}]"),
                    format!("lcore {lcore} is listed twice"),
                );
            }
            if *lcore == w.main_lcore {
                v.fail(
                    format!("workers.lcores[{i}]"),
                    format!("lcore {lcore} is the main lcore (workers.main_lcore)"),
                );
            }
        }
        if !(1..=MAX_BURST).contains(&w.burst) {
            v.fail(
                "workers.burst",
                format!("{} is out of range (1 to {MAX_BURST})", w.burst),
            );
        }
        if w.idle_backoff_us > MAX_IDLE_BACKOFF_US {
            v.fail(
                "workers.idle_backoff_us",
                format!(
                    "{} is out of range (0 to {MAX_IDLE_BACKOFF_US})",
                    w.idle_backoff_us
                ),
            );
        }
        for (i, arg) in self.eal_args.iter().enumerate() {
            let flag = arg.split('=').next().unwrap_or(arg);
            if let Some((_, from)) = RESERVED_EAL_ARGS.iter().find(|(f, _)| *f == flag) {
                v.fail(
                    format!("eal_args[{i}]"),
                    format!("{arg:?} is derived from {from}; remove it"),
                );
            }
        }
    }

    fn validate_capacities(&self, v: &mut Validator) {
        let f = &self.flows;
        if !(1..=MAX_FLOW_CAPACITY).contains(&f.capacity) {
            v.fail(
                "flows.capacity",
                format!("{} is out of range (1 to {MAX_FLOW_CAPACITY})", f.capacity),
            );
        }
        if let Err(message) = check_idle_timeout(f.idle_timeout.0) {
            v.fail("flows.idle_timeout", message);
        }
        let size = self.maglev.table_size;
        if size > MAX_TABLE_SIZE {
            v.fail(
                "maglev.table_size",
                format!("{size} is too large (at most {MAX_TABLE_SIZE})"),
            );
        } else if !is_prime(size) {
            v.fail(
                "maglev.table_size",
                format!(
                    "{size} is not prime (the next prime is {})",
                    next_prime(size)
                ),
            );
        }
        let name = &self.controller_name;
        let valid_controller = name
            .split_once('/')
            .is_some_and(|(domain, path)| !domain.is_empty() && !path.is_empty())
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_graphic());
        if !valid_controller {
            v.fail(
                "controller_name",
                format!("{name:?}: expected DOMAIN/PATH, e.g. \"udplb.io/appliance\""),
            );
        }
        let depth = self.slow_path.queue_depth;
        if !(1..=MAX_QUEUE_DEPTH).contains(&depth) {
            v.fail(
                "slow_path.queue_depth",
                format!("{depth} is out of range (1 to {MAX_QUEUE_DEPTH})"),
            );
        }
    }
}

/// Collects field errors.
#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn fail(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Own, VIP, SNAT, neighbor and next-hop addresses must be unicast host addresses.
    fn unicast(&mut self, field: &str, ip: IpAddr) {
        let bad = if ip.is_unspecified() {
            Some("the unspecified address")
        } else if ip.is_multicast() {
            Some("a multicast address")
        } else if ip.is_loopback() {
            Some("a loopback address")
        } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
            Some("the broadcast address")
        } else {
            None
        };
        if let Some(what) = bad {
            self.fail(field, format!("{ip} is {what}"));
        }
    }
}

/// Deserializes a type from its string form through `FromStr`. The parse runs inside the
/// deserializer's visitor, so the YAML parser reports the error with the field path and line.
struct FromStrVisitor<T>(std::marker::PhantomData<T>);

impl<T> serde::de::Visitor<'_> for FromStrVisitor<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

/// `deserialize_with` adaptors: settings parse straight into the pipelines types (which
/// are serde-free) through their `FromStr`, so appliance.yaml and the Gateway annotations
/// accept the same spellings with the same messages.
mod text {
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    use pipelines::net::IpNet;
    use serde::{Deserialize, Deserializer};

    use super::FromStrVisitor;

    /// A value parsed from its string form.
    struct Text<T>(T);

    impl<'de, T> Deserialize<'de> for Text<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_str(FromStrVisitor(PhantomData)).map(Text)
        }
    }

    pub(super) fn one<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: fmt::Display,
    {
        Text::deserialize(d).map(|t| t.0)
    }

    pub(super) fn option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: FromStr,
        T::Err: fmt::Display,
    {
        Option::<Text<T>>::deserialize(d).map(|o| o.map(|t| t.0))
    }

    /// An address with its prefix length, `198.18.0.1/24` (`ipnet`), with a message that
    /// says which part is wrong.
    struct Prefix(IpNet);

    impl FromStr for Prefix {
        type Err = String;

        fn from_str(s: &str) -> Result<Self, String> {
            if let Ok(net) = s.parse() {
                return Ok(Prefix(net));
            }
            let (addr, len) = s
                .split_once('/')
                .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX-LENGTH"))?;
            let addr: std::net::IpAddr = addr
                .parse()
                .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .parse()
                .map_err(|_| format!("{s:?}: prefix length out of range (0 to {max})"))?;
            IpNet::new(addr, len)
                .map(Prefix)
                .map_err(|_| format!("{s:?}: prefix length out of range (0 to {max})"))
        }
    }

    pub(super) fn prefix<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        one(d).map(|p: Prefix| p.0)
    }

    pub(super) fn prefixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
        Vec::<Text<Prefix>>::deserialize(d).map(|v| v.into_iter().map(|t| t.0 .0).collect())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn prefixes_parse_and_reject_out_of_range_lengths() {
            let p = |s: &str| s.parse::<Prefix>().map(|p| p.0);
            let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
            let net = p("198.18.0.1/24").expect("prefix");
            assert_eq!(net.addr(), ip("198.18.0.1"), "the address is kept");
            assert_eq!(net.network(), ip("198.18.0.0"));
            assert!(net.contains(&ip("198.18.0.200")));
            assert!(!net.contains(&ip("198.18.1.1")));
            assert!(!net.contains(&ip("2001:2::1")));
            let d = p("0.0.0.0/0").expect("default");
            assert!(d.prefix_len() == 0 && d.contains(&ip("198.19.255.255")));
            let v6 = p("2001:2:0:1::1/64").expect("v6");
            assert_eq!(v6.network(), ip("2001:2:0:1::"));
            assert!(v6.contains(&ip("2001:2:0:1:ffff::9")));
            assert_eq!(
                p("198.18.0.1/33"),
                Err("\"198.18.0.1/33\": prefix length out of range (0 to 32)".into())
            );
            assert!(p("2001:2::1/129").is_err());
            assert!(p("198.18.0.1").is_err());
            assert!(p("198.18.0/24").is_err());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "ports:\n  - name: p0\n    device: net_null0\n";

    #[test]
    fn minimal_document_gets_documented_defaults() {
        let s = Settings::from_str(MINIMAL).expect("minimal settings");
        assert_eq!(s.ports[0].mtu, 1500);
        assert_eq!(s.workers.lcores, vec![1]);
        assert_eq!(s.workers.main_lcore, 0);
        assert_eq!(s.workers.burst, 32);
        assert_eq!(s.workers.idle_backoff_us, 0);
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
}

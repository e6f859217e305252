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
use std::time::Duration;

use serde::{Deserialize, Deserializer};

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
    /// NAT mode for listeners that do not override it.
    #[serde(default)]
    pub nat_mode: NatMode,
    /// Hash key for listeners that do not override it.
    #[serde(default)]
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
    pub device: Device,
    /// The appliance's own addresses on this port, with prefix (`198.18.0.1/24`).
    #[serde(default)]
    pub addresses: Vec<IpPrefix>,
    /// MAC address override; default: the device's own.
    #[serde(default)]
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
    #[serde(default = "default_snat_ports")]
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
    pub mac: MacAddr,
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    /// Destination prefix, host bits zero (`0.0.0.0/0`, `2001:2:0:200::/56`).
    pub prefix: IpPrefix,
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
    /// A flow with no packet for this long is forgotten (`30s`, `500ms`, `5m`, `1h`).
    #[serde(default = "default_idle_timeout")]
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

/// How the source of forwarded datagrams is rewritten (appliance default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// `fullnat`: source becomes the SNAT address and an allocated port.
    #[default]
    #[serde(rename = "fullnat")]
    FullNat,
    /// `preserve-client`: only the destination is rewritten.
    PreserveClient,
}

impl From<NatMode> for pipelines::spec::NatMode {
    fn from(mode: NatMode) -> Self {
        match mode {
            NatMode::FullNat => pipelines::spec::NatMode::FullNat,
            NatMode::PreserveClient => pipelines::spec::NatMode::PreserveClient,
        }
    }
}

/// Which fields choose the backend of a new flow (appliance default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum HashKey {
    /// `5-tuple`: source and destination address and port.
    #[default]
    #[serde(rename = "5-tuple")]
    FiveTuple,
    /// `source-ip-port`: source address and port.
    #[serde(rename = "source-ip-port")]
    SourceIpPort,
    /// `source-ip`: source address only (client affinity).
    #[serde(rename = "source-ip")]
    SourceIp,
}

impl From<HashKey> for pipelines::spec::HashKey {
    fn from(key: HashKey) -> Self {
        match key {
            HashKey::FiveTuple => pipelines::spec::HashKey::FiveTuple,
            HashKey::SourceIpPort => pipelines::spec::HashKey::SourceIpPort,
            HashKey::SourceIp => pipelines::spec::HashKey::SourceIp,
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
    HumanDuration(Duration::from_secs(30))
}
fn default_table_size() -> u32 {
    65537
}
/// The default Maglev seed: fixed, so that every appliance agrees out of the box.
pub const DEFAULT_MAGLEV_SEED: u64 = 0x7564_706c_6200_0001;
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

/// Largest accepted values, so a typo cannot ask for terabytes of preallocated memory.
const MAX_FLOW_CAPACITY: u32 = 1 << 28;
const MAX_TABLE_SIZE: u32 = 1 << 24;
const MAX_BURST: u16 = 512;
const MAX_QUEUE_DEPTH: u32 = 1 << 20;
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
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

    /// RX and TX queues each port gets: one per worker.
    pub fn queues_per_port(&self) -> u16 {
        u16::try_from(self.workers.lcores.len()).unwrap_or(u16::MAX)
    }

    /// The port named `name`, with its index.
    pub fn port(&self, name: &str) -> Option<(usize, &PortSettings)> {
        self.ports.iter().enumerate().find(|(_, p)| p.name == name)
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
            .filter(|(_, a)| a.contains(ip))
            .max_by_key(|&(i, a)| (a.len(), std::cmp::Reverse(i)));
        if let Some((port, _)) = on_link {
            return Some(SnatReach::OnLink { port });
        }
        self.routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.prefix.contains(ip))
            .max_by_key(|&(i, r)| (r.prefix.len(), std::cmp::Reverse(i)))
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
            let (flag, value) = port.device.eal_argument();
            args.push(flag.to_owned());
            args.push(value.to_owned());
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
                .position(|p| p.device.id() == port.device.id())
            {
                v.fail(
                    format!("{at}.device"),
                    format!("{:?} is already the device of ports[{j}]", port.device.id()),
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
                        "{}: host bits are set (did you mean {}/{}?)",
                        route.prefix,
                        route.prefix.network(),
                        route.prefix.len()
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
                    if !port.addresses.iter().any(|a| a.contains(route.via)) {
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
        if f.idle_timeout.0.is_zero() || f.idle_timeout.0 > MAX_IDLE_TIMEOUT {
            v.fail(
                "flows.idle_timeout",
                format!("{} is out of range (1ms to 24h)", f.idle_timeout),
            );
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

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn next_prime(n: u32) -> u32 {
    (n..=u32::MAX).find(|&c| is_prime(c)).unwrap_or(n)
}

/// Deserializes a type from its string form through `FromStr`. The parse runs inside the
/// deserializer's visitor, so the YAML parser reports the error with the field path and line.
struct FromStrVisitor<T>(std::marker::PhantomData<T>);

impl<T> serde::de::Visitor<'_> for FromStrVisitor<T>
where
    T: FromStr<Err = String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(FromStrVisitor(std::marker::PhantomData))
            }
        }
    )*};
}
deserialize_from_str!(IpPrefix, MacAddr, HumanDuration, PortRange, Device);

/// An IP address with a prefix length: `198.18.0.1/24`, `2001:2::/48`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpPrefix {
    addr: IpAddr,
    len: u8,
}

impl IpPrefix {
    /// Builds a prefix; `None` if `len` exceeds the address width.
    pub fn new(addr: IpAddr, len: u8) -> Option<IpPrefix> {
        (len <= max_prefix_len(addr)).then_some(IpPrefix { addr, len })
    }

    /// The address as written (host bits kept).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    // A prefix length, not a collection size: `is_empty` would mean nothing.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether the prefix is `/0` (matches every address of its family).
    pub fn is_default(&self) -> bool {
        self.len == 0
    }

    /// The address with host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.len))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.len))),
        }
    }

    /// Whether `ip` lies inside the prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) ^ u32::from(b)) & mask32(self.len) == 0,
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                (u128::from(a) ^ u128::from(b)) & mask128(self.len) == 0
            }
            _ => false,
        }
    }
}

fn max_prefix_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for IpPrefix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX-LENGTH"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?}: {addr:?} is not an IP address"))?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("{s:?}: prefix length out of range"))?;
        IpPrefix::new(addr, len).ok_or_else(|| {
            format!(
                "{s:?}: prefix length out of range (0 to {})",
                max_prefix_len(addr)
            )
        })
    }
}

/// An Ethernet MAC address, written `02:00:5e:10:00:01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Whether it is a unicast address (group bit clear, not all zero).
    pub fn is_unicast(&self) -> bool {
        self.0[0] & 1 == 0 && self.0 != [0; 6]
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected a MAC address like 02:00:00:00:00:01");
        let mut bytes = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(bytes))
    }
}

/// A duration written with a unit: `500ms`, `30s`, `5m`, `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let (value, unit) = [(3_600_000, "h"), (60_000, "m"), (1000, "s")]
            .into_iter()
            // Zero prints as "0s".
            .find(|&(per, _)| ms / per * per == ms && (ms >= per || per == 1000))
            .map_or((ms, "ms"), |(per, unit)| (ms / per, unit));
        write!(f, "{value}{unit}")
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = s.split_at(digits);
        let bad = || format!("{s:?}: expected a number and a unit (ms, s, m or h), e.g. \"30s\"");
        let number: u64 = number.parse().map_err(|_| bad())?;
        let ms_per_unit = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(bad()),
        };
        let ms = number
            .checked_mul(ms_per_unit)
            .ok_or_else(|| format!("{s:?}: too large"))?;
        Ok(HumanDuration(Duration::from_millis(ms)))
    }
}

/// An inclusive UDP port range, written `1024-65535` (or a single port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port of the range.
    pub first: u16,
    /// Last port of the range (inclusive).
    pub last: u16,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn count(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?}: expected FIRST-LAST, e.g. \"1024-65535\"");
        let (first, last) = s.split_once('-').unwrap_or((s, s));
        let first: u16 = first.trim().parse().map_err(|_| bad())?;
        let last: u16 = last.trim().parse().map_err(|_| bad())?;
        if first > last {
            return Err(format!("{s:?}: the first port is above the last"));
        }
        Ok(PortRange { first, last })
    }
}

/// A DPDK device: a PCI address or a virtual device string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Device {
    /// `0000:03:00.0` (domain optional), optionally followed by `,key=value` device args.
    Pci(String),
    /// `net_tap0,iface=udplb0`: a DPDK vdev, driver name then `,key=value` args.
    Vdev(String),
}

impl Device {
    /// The EAL option and value that create this device (`-a ADDR` or `--vdev STRING`).
    pub fn eal_argument(&self) -> (&'static str, &str) {
        match self {
            Device::Pci(s) => ("-a", s),
            Device::Vdev(s) => ("--vdev", s),
        }
    }

    /// The name DPDK knows the device by: the PCI address or the vdev instance name.
    pub fn id(&self) -> &str {
        let (Device::Pci(s) | Device::Vdev(s)) = self;
        s.split(',').next().unwrap_or(s)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Device::Pci(s) | Device::Vdev(s)) = self;
        f.write_str(s)
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(',');
        let head = parts.next().unwrap_or_default();
        for arg in parts {
            match arg.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => return Err(format!("{s:?}: device argument {arg:?} is not KEY=VALUE")),
            }
        }
        if is_pci_address(head) {
            Ok(Device::Pci(s.to_owned()))
        } else if is_vdev_name(head) {
            Ok(Device::Vdev(s.to_owned()))
        } else {
            Err(format!(
                "{s:?}: expected a PCI address (0000:03:00.0) or a vdev (net_tap0,iface=udplb0)"
            ))
        }
    }
}

/// `[DDDD:]BB:DD.F` in hex.
fn is_pci_address(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    let fields: Vec<&str> = s.split(':').collect();
    let (domain_ok, bus, devfn) = match fields.as_slice() {
        [domain, bus, devfn] => (hex(domain, 4), *bus, *devfn),
        [bus, devfn] => (true, *bus, *devfn),
        _ => return false,
    };
    let Some((dev, func)) = devfn.split_once('.') else {
        return false;
    };
    domain_ok && hex(bus, 2) && hex(dev, 2) && matches!(func.as_bytes(), [b'0'..=b'7'])
}

/// `net_` + driver + instance, e.g. `net_tap0`, `net_af_packet1`.
fn is_vdev_name(s: &str) -> bool {
    s.strip_prefix("net_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
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
        assert_eq!(s.flows.idle_timeout.0, Duration::from_secs(30));
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
    fn prefixes_parse_and_reject_out_of_range_lengths() {
        let p: IpPrefix = "198.18.0.1/24".parse().expect("prefix");
        assert_eq!(p.network(), "198.18.0.0".parse::<IpAddr>().expect("ip"));
        assert!(p.contains("198.18.0.200".parse().expect("ip")));
        assert!(!p.contains("198.18.1.1".parse().expect("ip")));
        assert!(!p.contains("2001:2::1".parse().expect("ip")));
        let d: IpPrefix = "0.0.0.0/0".parse().expect("default");
        assert!(d.is_default() && d.contains("198.19.255.255".parse().expect("ip")));
        let v6: IpPrefix = "2001:2:0:1::1/64".parse().expect("v6");
        assert_eq!(v6.network(), "2001:2:0:1::".parse::<IpAddr>().expect("ip"));
        assert!(v6.contains("2001:2:0:1:ffff::9".parse().expect("ip")));
        assert_eq!(
            "198.18.0.1/33".parse::<IpPrefix>(),
            Err("\"198.18.0.1/33\": prefix length out of range (0 to 32)".into())
        );
        assert!("2001:2::1/129".parse::<IpPrefix>().is_err());
        assert!("198.18.0.1".parse::<IpPrefix>().is_err());
        assert!("198.18.0/24".parse::<IpPrefix>().is_err());
    }

    #[test]
    fn macs_durations_ranges_devices_parse() {
        let mac: MacAddr = "02:00:5E:10:00:01".parse().expect("mac");
        assert_eq!(mac.0, [2, 0, 0x5e, 0x10, 0, 1]);
        assert_eq!(mac.to_string(), "02:00:5e:10:00:01");
        assert!(mac.is_unicast());
        assert!(!"ff:ff:ff:ff:ff:ff"
            .parse::<MacAddr>()
            .expect("mac")
            .is_unicast());
        for bad in [
            "02:00:5e:10:00",
            "02:00:5e:10:00:01:02",
            "2:0:5e:10:0:1",
            "zz:00:00:00:00:00",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h", 3_600_000),
        ] {
            let d: HumanDuration = text.parse().expect("duration");
            assert_eq!(d.0, Duration::from_millis(ms));
            assert_eq!(d.to_string(), text);
        }
        for bad in ["30", "s", "30 s", "1.5s", "-1s", "3d"] {
            assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
        }
        assert_eq!(
            "1024-65535".parse::<PortRange>(),
            Ok(PortRange {
                first: 1024,
                last: 65535
            })
        );
        assert_eq!("5000".parse::<PortRange>().map(|r| r.count()), Ok(1));
        assert!("2000-1000".parse::<PortRange>().is_err());
        assert!("1024-70000".parse::<PortRange>().is_err());

        for pci in ["0000:03:00.0", "03:00.1", "0000:af:00.7,txq_inline=128"] {
            assert!(matches!(pci.parse::<Device>(), Ok(Device::Pci(_))), "{pci}");
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
                matches!(vdev.parse::<Device>(), Ok(Device::Vdev(_))),
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
        assert_eq!(tap.id(), "net_tap0");
        assert_eq!(tap.eal_argument(), ("--vdev", "net_tap0,iface=udplb0"));
    }

    #[test]
    fn primes() {
        let primes: Vec<u32> = (0..30).filter(|&n| is_prime(n)).collect();
        assert_eq!(primes, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]);
        assert!(is_prime(65537));
        assert!(!is_prime(65536));
        assert_eq!(next_prime(65536), 65537);
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

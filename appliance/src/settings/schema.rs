//! The `appliance.yaml` schema: one serde struct per section, each field typed (addresses,
//! prefixes, MACs, durations, port ranges, devices) and documented, with its default.
//! Unknown fields are refused, so a typo is an error naming the field.
//!
//! Every field is documented in appliance/README.md ("Configuration (appliance.yaml)").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use pipelines::net::{IpNet, MacAddr, PortRange};
use pipelines::spec::{HashKey, HumanDuration, NatMode};
use pipelines::tables::{DataplaneParams, DEFAULT_MAGLEV_SEED};
use serde::Deserialize;

use super::announce::{AnnounceSettings, DrainSettings};
pub use super::manifests::ManifestSettings;
use super::text;
use crate::dpdk::Device;

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
    /// Where Gateway API manifests come from: files or directories (loaded at start and
    /// watched), the API (persisted in a state directory), or both. A plain list of paths
    /// is the short form of `{source: both, paths: [...]}`. Relative paths are resolved
    /// against the directory of the settings file.
    #[serde(default)]
    pub manifests: ManifestSettings,
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
    /// VIPs announced over BGP through BIRD; absent = nothing announced.
    #[serde(default)]
    pub announce: Option<AnnounceSettings>,
    /// `udplb drain` defaults.
    #[serde(default)]
    pub drain: DrainSettings,
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
    /// Longest sleep, in µs, of a worker whose queues stay empty (the adaptive back-off of
    /// `worker::IdleBackoff`: none within 100 µs of the last frame, then 1 µs doubling up
    /// to this, 4 times this (at most 2 ms) after a second without frames); 0 = pure
    /// polling.
    #[serde(default = "default_idle_backoff_us")]
    pub idle_backoff_us: u32,
    /// Most frames a worker takes from a port per receive (1 to 32).
    #[serde(default = "default_burst")]
    pub burst: u16,
    /// A worker whose last poll round is older than this is reported stuck (`/healthz`
    /// answers 503, nothing is announced).
    #[serde(default = "default_heartbeat_timeout", deserialize_with = "text::one")]
    pub heartbeat_timeout: HumanDuration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            lcores: default_lcores(),
            main_lcore: 0,
            idle_backoff_us: DEFAULT_IDLE_BACKOFF_US,
            burst: default_burst(),
            heartbeat_timeout: default_heartbeat_timeout(),
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
    /// File holding the bearer token that calls changing the configuration must present;
    /// none = no token (then `listen` must be a loopback address). Relative paths are
    /// resolved against the directory of the settings file. Re-read on SIGHUP.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// File holding the bearer token that `GET /v1/status` and `GET /metrics` require
    /// (the write token works too); none = reads are open. Re-read on SIGHUP.
    #[serde(default)]
    pub read_token_file: Option<PathBuf>,
}

impl Default for ManagementSettings {
    fn default() -> Self {
        ManagementSettings {
            listen: default_listen(),
            token_file: None,
            read_token_file: None,
        }
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
    /// ICMP errors the appliance sends per second at most, all destinations together
    /// (rejects, time exceeded, Frag Needed / Packet Too Big; echo replies are not limited).
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
    pipelines::net::DEFAULT_MTU
}
fn default_snat_ports() -> PortRange {
    pipelines::net::DEFAULT_SNAT_PORTS
}
fn default_lcores() -> Vec<u32> {
    vec![1]
}
fn default_burst() -> u16 {
    super::validate::MAX_BURST
}
/// The default cap of a worker's idle back-off, µs: an idle worker costs ≈ 2 % of a core
/// (appliance README, "Idle workers").
pub const DEFAULT_IDLE_BACKOFF_US: u32 = 500;
fn default_idle_backoff_us() -> u32 {
    DEFAULT_IDLE_BACKOFF_US
}
fn default_heartbeat_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(500))
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
    DEFAULT_MANAGEMENT_LISTEN
}

/// Where the management API listens unless `management.listen` says otherwise (also the
/// CLI's default `--api`).
pub const DEFAULT_MANAGEMENT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    9180,
));
fn default_controller_name() -> String {
    config::DEFAULT_CONTROLLER_NAME.into()
}
fn default_queue_depth() -> u32 {
    1024
}
fn default_icmp_rate_limit() -> u32 {
    100
}

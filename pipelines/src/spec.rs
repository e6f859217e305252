//! The forwarding specification: what the control plane (`config`) compiles Gateway API
//! objects into, and what the fast path builds its lookup tables from.
//!
//! As with Katran's BPF maps, the data plane owns this format and the control plane fills
//! it. It is plain data: no hashing state, no Maglev tables, nothing machine-dependent, so
//! two appliances given the same objects compile the same value, and tests compare values
//! with `==`. [`ForwardingConfig::normalize`] puts every list in its canonical order.
//!
//! The value types that cross crates (`NatMode`, `HashKey`, [`HumanDuration`]) are
//! defined here once, with `FromStr` and `Display`: the appliance's settings and the
//! Gateway annotations parse straight into them, so both accept the same spellings and
//! report the same messages. (Ports, prefixes and MACs are in [`crate::net`].) The crate
//! stays serde-free: callers deserialize through `FromStr`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// Fixed-point scale for endpoint weights.
///
/// A backendRef of weight `w` over `k` ready endpoints gives each endpoint
/// `w * WEIGHT_SCALE / k`. 720720 is divisible by every integer from 1 to 16, so the common
/// cases split exactly; any remainder error is below one part in 720720.
pub const WEIGHT_SCALE: u64 = 720_720;

/// Everything the fast path needs to know about the Gateway API objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardingConfig {
    /// One entry per served (VIP, UDP port); sorted by `(vip, port)`, unique.
    pub listeners: Vec<ListenerSpec>,
    /// Health checks of backend Service ports (from `UDPBackendPolicy`); sorted by
    /// `service`, unique by `service`. An endpoint address appears in at most one entry;
    /// an endpoint in none is never checked and always eligible.
    pub health_checks: Vec<HealthCheckSpec>,
}

/// Identity of a Gateway listener: `namespace/gateway/listener`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ListenerKey {
    /// Namespace of the Gateway.
    pub namespace: String,
    /// Name of the Gateway.
    pub gateway: String,
    /// `spec.listeners[].name`.
    pub listener: String,
}

/// Identity of a UDPRoute: `namespace/name`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteKey {
    /// Namespace of the route.
    pub namespace: String,
    /// Name of the route.
    pub name: String,
}

/// Identity of a backend Service port that a backendRef names: `namespace/name:port`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// Namespace of the Service.
    pub namespace: String,
    /// Name of the Service.
    pub name: String,
    /// The Service port (not the target port).
    pub port: u16,
}

/// Why a setting or annotation value could not be parsed. The message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The text is not one of a closed set of spellings.
    #[error("{text:?} is not one of {expected}")]
    NotOneOf {
        /// The text as given.
        text: String,
        /// The accepted spellings, comma-separated.
        expected: &'static str,
    },
    /// The text does not have the expected shape.
    #[error("{text:?}: expected {expected}")]
    Syntax {
        /// The text as given.
        text: String,
        /// What was expected, with an example.
        expected: &'static str,
    },
    /// The text has the right shape but an unusable value.
    #[error("{text:?}: {problem}")]
    Invalid {
        /// The text as given.
        text: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// Declares a closed set of keyword values with `as_str`, `FromStr` and `Display`.
macro_rules! keywords {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
        }
        expected = $expected:literal;
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The canonical spelling (what `FromStr` accepts and `Display` writes).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;

            fn from_str(text: &str) -> Result<Self, ParseError> {
                match text {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(ParseError::NotOneOf {
                        text: text.to_owned(),
                        expected: $expected,
                    }),
                }
            }
        }
    };
}

keywords! {
    /// How the source of forwarded datagrams is rewritten.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum NatMode {
        /// `fullnat`: client→VIP becomes SNAT address:allocated port → backend; replies
        /// are reversed.
        #[default]
        FullNat = "fullnat",
        /// `preserve-client`: only the destination is rewritten; the backend sees the
        /// client address and must route its replies back through the appliance.
        PreserveClient = "preserve-client",
        /// `dsr`: direct server return at layer 2. Only the Ethernet header changes
        /// (destination MAC = the backend's, source MAC = the output port's); the IP and
        /// UDP headers are untouched. The backend must be on-link, hold the VIP on a
        /// loopback interface and reply straight to the client.
        Dsr = "dsr",
    }
    expected = "fullnat, preserve-client, dsr";
}

keywords! {
    /// Which packet fields choose the backend for a new flow.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum HashKey {
        /// `5-tuple`: source IP, source port, destination IP, destination port (protocol
        /// is always UDP).
        #[default]
        FiveTuple = "5-tuple",
        /// `source-ip-port`: source IP and port: every destination port of a listener
        /// behaves alike.
        SourceIpPort = "source-ip-port",
        /// `source-ip`: source IP only: client affinity across source ports.
        SourceIp = "source-ip",
    }
    expected = "5-tuple, source-ip-port, source-ip";
}

/// A duration as operators write it, in settings and annotations alike: the `humantime`
/// grammar (`500ms`, `30s`, `2m`, `1h`, `1h 30m`, `1.5s`, `0s`; units `ns`, `us`, `ms`,
/// `s`/`sec`, `m`/`min`, `h`/`hours`, `d`/`days`, ...).
///
/// The grammar accepts zero; whether zero (or any value) makes sense is the field's range
/// check (e.g. [`check_idle_timeout`]), so one field gets one message wherever it is set.
/// `Display` writes the largest unit that divides the value (`25h`, `90s`, `1500ms`), so
/// messages echo what was written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        humantime::parse_duration(text)
            .map(HumanDuration)
            .map_err(|e| ParseError::Invalid {
                text: text.to_owned(),
                problem: format!("expected a number and a unit, e.g. 500ms, 30s, 2m or 1h ({e})"),
            })
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u128, &str); 4] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
        ];
        let ns = self.0.as_nanos();
        if ns == 0 {
            return f.write_str("0s");
        }
        match UNITS.iter().find(|(per, _)| ns.is_multiple_of(*per)) {
            Some((per, unit)) => write!(f, "{}{unit}", ns / per),
            None => write!(f, "{}", humantime::format_duration(self.0)),
        }
    }
}

/// Shortest flow idle timeout.
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_millis(1);
/// Longest flow idle timeout (flow records keep it in milliseconds).
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The range check of a flow idle timeout, shared by the appliance settings
/// (`flows.idle_timeout`) and the `udplb.io/idle-timeout` annotations.
///
/// # Errors
/// `"<value> is out of range (1ms to 24h)"` for 0, anything under 1 ms or over 24 h.
pub fn check_idle_timeout(d: Duration) -> Result<Duration, String> {
    if (MIN_IDLE_TIMEOUT..=MAX_IDLE_TIMEOUT).contains(&d) {
        Ok(d)
    } else {
        Err(format!(
            "{} is out of range ({} to {})",
            HumanDuration(d),
            HumanDuration(MIN_IDLE_TIMEOUT),
            HumanDuration(MAX_IDLE_TIMEOUT)
        ))
    }
}

/// A flow idle timeout written as text (an annotation, a policy field): the
/// [`HumanDuration`] grammar and the [`check_idle_timeout`] range, with their messages.
///
/// # Errors
/// The grammar's message, or the range's.
pub fn parse_idle_timeout(text: &str) -> Result<Duration, String> {
    let HumanDuration(d) = text.parse().map_err(|e: ParseError| e.to_string())?;
    check_idle_timeout(d)
}

/// Per-listener behaviour that the Gateway API leaves to the implementation. `None` means
/// "use the appliance default".
///
/// The values come from `UDPTrafficPolicy` objects, Gateway annotations and the
/// `sessionAffinity` of the route's Services (config/README.md has the precedence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    /// NAT mode override.
    pub nat_mode: Option<NatMode>,
    /// Idle timeout of a flow that has seen a reply from its backend (within the
    /// [`check_idle_timeout`] range). `None`: the appliance's `flows.idle_timeout`.
    /// [`BackendSpec::idle_timeout`] replaces it for flows pinned to that backend.
    pub idle_timeout: Option<Duration>,
    /// Hash key override.
    pub hash_key: Option<HashKey>,
    /// Idle timeout of a flow that has not seen a reply yet (within the
    /// [`check_idle_timeout`] range). `None`: the shorter of
    /// [`DEFAULT_UNREPLIED_TIMEOUT`] and the listener's effective replied timeout
    /// ([`ListenerOptions::flow_timeouts`]).
    pub unreplied_timeout: Option<Duration>,
    /// Maglev table size of this listener's route: prime, at most [`MAX_MAGLEV_SIZE`],
    /// and at least [`MAGLEV_SLOTS_PER_ENTRY`] × [`RouteSpec::maglev_entries`] (config
    /// checks all three before it sets it). `None`: the appliance's `maglev.table_size`.
    pub maglev_size: Option<u32>,
}

/// Default idle timeout of a flow that has not seen a reply yet, when the listener sets
/// none and its replied timeout is longer: Linux conntrack's UDP unreplied timeout.
/// Short, because one-way flows (scans, spoofed floods, dead backends) would otherwise
/// hold flow-table entries as long as real sessions.
pub const DEFAULT_UNREPLIED_TIMEOUT: Duration = Duration::from_secs(30);

/// The effective idle timeouts of a listener's flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTimeouts {
    /// A flow that has seen a reply (before any [`BackendSpec::idle_timeout`]).
    pub replied: Duration,
    /// A flow that has not seen a reply yet.
    pub unreplied: Duration,
}

impl ListenerOptions {
    /// The effective timeouts, given the appliance's default idle timeout (for replied
    /// flows) and default unreplied timeout ([`DEFAULT_UNREPLIED_TIMEOUT`] unless the
    /// appliance has a setting for it): `replied` is `idle_timeout` or `default_idle`;
    /// `unreplied` is `unreplied_timeout`, or else the shorter of `default_unreplied` and
    /// `replied` (an unreplied flow never outlives a replied one by default).
    pub fn flow_timeouts(
        &self,
        default_idle: Duration,
        default_unreplied: Duration,
    ) -> FlowTimeouts {
        let replied = self.idle_timeout.unwrap_or(default_idle);
        let unreplied = self
            .unreplied_timeout
            .unwrap_or_else(|| default_unreplied.min(replied));
        FlowTimeouts { replied, unreplied }
    }
}

/// Largest Maglev table size: 16 Mi slots (64 MiB of `u32` per table).
pub const MAX_MAGLEV_SIZE: u32 = 1 << 24;

/// A Maglev table needs this many slots per entry (backend or dropped-weight share), so
/// that weights are honoured within about 1 % (`Tables::build` refuses smaller tables).
pub const MAGLEV_SLOTS_PER_ENTRY: u64 = 100;

/// One served (VIP, UDP port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Destination address of client datagrams.
    pub vip: IpAddr,
    /// Destination UDP port of client datagrams.
    pub port: u16,
    /// The Gateway listener this entry comes from.
    pub key: ListenerKey,
    /// Implementation-specific options (from annotations, see config/README.md).
    pub options: ListenerOptions,
    /// The route that carries this listener's traffic (the oldest attached one); `None`
    /// when no route is attached: datagrams are dropped and counted as `no_route`.
    pub route: Option<RouteSpec>,
}

/// The winning route of a listener, reduced to a weighted endpoint set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    /// The UDPRoute.
    pub key: RouteKey,
    /// Concrete endpoints, sorted by `addr`, unique by `addr` (an endpoint reached through
    /// several backendRefs has their weights summed).
    pub backends: Vec<BackendSpec>,
    /// Scaled weight (see [`WEIGHT_SCALE`]) of invalid backendRefs (missing Service,
    /// no ready endpoints, refused reference, invalid kind): that share of new flows is
    /// dropped and answered with ICMP unreachable, never spread over valid backends.
    pub dropped_weight: u64,
}

/// One concrete endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// Endpoint address and port: the backend's stable identity across configs.
    pub addr: SocketAddr,
    /// The Service port it was reached through (the first in sort order if several).
    pub service: ServiceKey,
    /// Scaled weight (see [`WEIGHT_SCALE`]); 0 takes no new flows.
    pub weight: u64,
    /// EndpointSlice says terminating or not ready: no new flows, pinned flows stay.
    pub draining: bool,
    /// Replaces the listener's replied-flow idle timeout for flows pinned to this
    /// backend: the `sessionAffinityConfig.clientIP.timeoutSeconds` of its Service when
    /// that Service asks for `ClientIP` affinity and the listener hashes on the source IP
    /// (the longest, if several Services reach the endpoint). Unreplied flows keep the
    /// listener's unreplied timeout. Within the [`check_idle_timeout`] range.
    pub idle_timeout: Option<Duration>,
}

impl RouteSpec {
    /// How many Maglev entries the route needs for VIPs of one address family: its
    /// backends of that family with a weight and not draining, plus one for the
    /// dropped-weight share (which includes the weight of the other family's backends).
    /// A table needs [`MAGLEV_SLOTS_PER_ENTRY`] slots per entry.
    pub fn maglev_entries(&self, ipv4: bool) -> usize {
        let mut dropped = self.dropped_weight > 0;
        let mut n = 0;
        for b in &self.backends {
            if b.addr.is_ipv4() != ipv4 {
                dropped |= b.weight > 0;
            } else if b.weight > 0 && !b.draining {
                n += 1;
            }
        }
        n + usize::from(dropped)
    }
}

/// Identity of a policy object: `namespace/name` (the kind is implied by where it is used).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyKey {
    /// Namespace of the policy.
    pub namespace: String,
    /// Name of the policy.
    pub name: String,
}

/// Health checking of the endpoints of one backend Service port, from the
/// `UDPBackendPolicy` that applies to it.
///
/// An endpoint is *unhealthy* when the active check has failed `unhealthy_threshold`
/// times in a row (until it passes `healthy_threshold` times in a row), or while the
/// passive check has it ejected. An unhealthy endpoint takes no new flows, and its
/// pinned flows move to a healthy backend on their next datagram; but when more than
/// `panic_threshold_percent` % of `endpoints` are unhealthy, health is ignored for all
/// of them (panic mode: every endpoint takes flows as if healthy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// The Service port; the key of this entry.
    pub service: ServiceKey,
    /// The `UDPBackendPolicy` this comes from (for status, logs and metrics).
    pub policy: PolicyKey,
    /// The endpoints checked: the ready (not draining) endpoints of the Service port
    /// that some listener forwards to, both address families; sorted, unique. An endpoint
    /// reached through several policed Service ports is checked under the smallest
    /// `service` only.
    pub endpoints: Vec<SocketAddr>,
    /// Probes sent by the appliance; `None`: no active checking.
    pub active: Option<ActiveCheckSpec>,
    /// Ejection on ICMP errors; `None`: no passive checking.
    pub passive: Option<PassiveCheckSpec>,
    /// Panic threshold in percent of `endpoints`, 0..=100; 0 disables panic mode.
    pub panic_threshold_percent: u8,
}

/// An active health check: one probe per endpoint every `interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveCheckSpec {
    /// What is sent and what counts as a pass.
    pub probe: ProbeSpec,
    /// Time between probes of one endpoint (100 ms to 1 h).
    pub interval: Duration,
    /// A probe with no passing answer within this time fails (1 ms to `interval`).
    pub timeout: Duration,
    /// Consecutive passes that make an unhealthy endpoint healthy (1..=100).
    pub healthy_threshold: u32,
    /// Consecutive failures that make a healthy endpoint unhealthy (1..=100).
    pub unhealthy_threshold: u32,
    /// Destination port of probes; `None`: the endpoint's own port.
    pub port: Option<u16>,
}

/// The probe of an active check. Every probe fails on an ICMP port or host unreachable
/// from the endpoint about it, and on its timeout unless the probe passes earlier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeSpec {
    /// One UDP datagram with `send` as payload (1..=512 bytes).
    Udp {
        /// The payload.
        send: Vec<u8>,
        /// The reply that passes; datagrams from the endpoint that do not match are
        /// ignored until the timeout. `None` (a *weak* check): the probe passes at its
        /// timeout unless an ICMP unreachable came back first.
        expect: Option<ExpectedReply>,
    },
    /// A DNS query (one question, a random ID); a reply with the query's ID and one of
    /// `rcodes` passes, any other reply fails.
    Dns {
        /// Query name in presentation form, without the final dot (`health.example`).
        name: String,
        /// Query type (1 = A, 28 = AAAA, ...).
        qtype: u16,
        /// Accepted response codes.
        rcodes: RcodeSet,
        /// The RD bit of the query.
        recursion_desired: bool,
    },
}

/// A set of DNS response codes 0..=15: bit `n` set means rcode `n` is accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RcodeSet(pub u16);

impl RcodeSet {
    /// Whether `rcode` (the 4-bit header RCODE) is in the set.
    pub fn contains(self, rcode: u8) -> bool {
        rcode < 16 && self.0 & (1 << rcode) != 0
    }
}

/// The reply a UDP probe expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedReply {
    /// How the reply payload is compared with `payload`.
    pub matching: PayloadMatch,
    /// The expected bytes (1..=512).
    pub payload: Vec<u8>,
}

keywords! {
    /// How a UDP probe's reply is compared with the expected bytes.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
    pub enum PayloadMatch {
        /// The reply payload equals the expected bytes.
        #[default]
        Exact = "Exact",
        /// The reply payload starts with the expected bytes.
        Prefix = "Prefix",
        /// The expected bytes occur somewhere in the reply payload.
        Contains = "Contains",
    }
    expected = "Exact, Prefix, Contains";
}

/// Passive health checking: an ICMP port or host unreachable from an endpoint about a
/// flow pinned to it is a failure; a reply from it resets the count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassiveCheckSpec {
    /// Consecutive failures that eject the endpoint (1..=1000).
    pub consecutive_failures: u32,
    /// How long the first ejection lasts (1 s to 1 h); the n-th ejection in a row lasts
    /// n × this (as Envoy's outlier detection).
    pub base_ejection_time: Duration,
    /// At most this percentage of `endpoints` is ejected at once, 0..=100 (rounded down,
    /// but at least one endpoint when the percentage is not 0).
    pub max_ejection_percent: u8,
}

impl ForwardingConfig {
    /// Sorts every list into canonical order, so equal inputs compare equal.
    pub fn normalize(&mut self) {
        self.listeners.sort_by_key(|l| (l.vip, l.port));
        for l in &mut self.listeners {
            if let Some(r) = &mut l.route {
                r.backends.sort_by_key(|b| b.addr);
            }
        }
        self.health_checks.sort_by(|a, b| a.service.cmp(&b.service));
        for h in &mut self.health_checks {
            h.endpoints.sort_unstable();
            h.endpoints.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip_and_name_the_alternatives() {
        for m in [NatMode::FullNat, NatMode::PreserveClient, NatMode::Dsr] {
            assert_eq!(m.to_string().parse::<NatMode>(), Ok(m));
        }
        for k in [HashKey::FiveTuple, HashKey::SourceIpPort, HashKey::SourceIp] {
            assert_eq!(k.to_string().parse::<HashKey>(), Ok(k));
        }
        assert_eq!("preserve-client".parse(), Ok(NatMode::PreserveClient));
        assert_eq!("dsr".parse(), Ok(NatMode::Dsr));
        assert_eq!("5-tuple".parse(), Ok(HashKey::FiveTuple));
        assert_eq!(
            "snat".parse::<NatMode>().unwrap_err().to_string(),
            "\"snat\" is not one of fullnat, preserve-client, dsr"
        );
        assert_eq!(
            "4-tuple".parse::<HashKey>().unwrap_err().to_string(),
            "\"4-tuple\" is not one of 5-tuple, source-ip-port, source-ip"
        );
        assert!("FullNat".parse::<NatMode>().is_err(), "spellings are exact");
    }

    #[test]
    fn durations_use_one_grammar_and_print_what_was_written() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2m", 120_000),
            ("1h", 3_600_000),
            ("25h", 90_000_000),
            ("0s", 0),
        ] {
            let d: HumanDuration = text.parse().expect(text);
            assert_eq!(d.0, Duration::from_millis(ms), "{text}");
            assert_eq!(d.to_string(), text);
        }
        // The humantime grammar also takes compound values, fractions and long units.
        for (text, ms, shown) in [
            ("1h 30m", 5_400_000, "90m"),
            ("1.5s", 1_500, "1500ms"),
            ("3d", 259_200_000, "72h"),
            ("30 s", 30_000, "30s"),
            ("2min", 120_000, "2m"),
        ] {
            let d: HumanDuration = text.parse().expect(text);
            assert_eq!(d.0, Duration::from_millis(ms), "{text}");
            assert_eq!(d.to_string(), shown, "{text}");
        }
        assert_eq!(
            HumanDuration(Duration::from_micros(1500)).to_string(),
            "1ms 500us"
        );
        for bad in ["", "30", "s", "-1s", "soon", "99999999999999999999h"] {
            let e = bad.parse::<HumanDuration>().expect_err(bad).to_string();
            assert!(
                e.starts_with(&format!("{bad:?}: expected a number and a unit")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn unreplied_flows_default_to_the_shorter_timeout() {
        let secs = Duration::from_secs;
        let t = |idle: Option<u64>, unreplied: Option<u64>| {
            let o = ListenerOptions {
                idle_timeout: idle.map(secs),
                unreplied_timeout: unreplied.map(secs),
                ..ListenerOptions::default()
            };
            let f = o.flow_timeouts(secs(30), DEFAULT_UNREPLIED_TIMEOUT);
            (f.replied.as_secs(), f.unreplied.as_secs())
        };
        // Nothing set: the appliance's idle timeout for both (today's behaviour).
        assert_eq!(t(None, None), (30, 30));
        // A long replied timeout keeps one-way flows short.
        assert_eq!(t(Some(120), None), (120, 30));
        // A short one shortens unreplied flows too.
        assert_eq!(t(Some(5), None), (5, 5));
        // Explicit values are taken as they are.
        assert_eq!(t(Some(120), Some(10)), (120, 10));
        assert_eq!(t(Some(5), Some(10)), (5, 10));
        assert_eq!(t(None, Some(90)), (30, 90));
    }

    #[test]
    fn maglev_entries_count_what_takes_slots() {
        let backend = |addr: &str, weight: u64, draining: bool| BackendSpec {
            addr: addr.parse().expect("addr"),
            service: ServiceKey {
                namespace: "ns".into(),
                name: "svc".into(),
                port: 53,
            },
            weight,
            draining,
            idle_timeout: None,
        };
        let mut r = RouteSpec {
            key: RouteKey {
                namespace: "ns".into(),
                name: "r".into(),
            },
            backends: vec![
                backend("198.18.1.1:53", 1, false),
                backend("198.18.1.2:53", 0, false),
                backend("198.18.1.3:53", 1, true),
                backend("[2001:2::1]:53", 1, false),
            ],
            dropped_weight: 0,
        };
        // IPv4: one backend, plus the drop share holding the IPv6 backend's weight; and
        // the other way round.
        assert_eq!(r.maglev_entries(true), 2);
        assert_eq!(r.maglev_entries(false), 2);
        r.backends[3].weight = 0;
        assert_eq!(r.maglev_entries(true), 1);
        r.dropped_weight = 5;
        assert_eq!(r.maglev_entries(true), 2);
        assert_eq!(r.maglev_entries(false), 1);
    }

    #[test]
    fn rcode_sets_and_payload_matches() {
        let s = RcodeSet(1 | 1 << 3);
        assert!(s.contains(0) && s.contains(3));
        assert!(!s.contains(2) && !s.contains(16) && !s.contains(255));
        for m in [
            PayloadMatch::Exact,
            PayloadMatch::Prefix,
            PayloadMatch::Contains,
        ] {
            assert_eq!(m.to_string().parse::<PayloadMatch>(), Ok(m));
        }
        assert_eq!(
            "exact".parse::<PayloadMatch>().unwrap_err().to_string(),
            "\"exact\" is not one of Exact, Prefix, Contains"
        );
    }

    #[test]
    fn normalize_sorts_health_checks_and_their_endpoints() {
        let key = |name: &str| ServiceKey {
            namespace: "ns".into(),
            name: name.into(),
            port: 53,
        };
        let check = |name: &str, endpoints: &[&str]| HealthCheckSpec {
            service: key(name),
            policy: PolicyKey {
                namespace: "ns".into(),
                name: "p".into(),
            },
            endpoints: endpoints.iter().map(|a| a.parse().expect("addr")).collect(),
            active: None,
            passive: None,
            panic_threshold_percent: 50,
        };
        let mut c = ForwardingConfig {
            listeners: Vec::new(),
            health_checks: vec![
                check("b", &["198.18.1.2:53", "198.18.1.1:53", "198.18.1.2:53"]),
                check("a", &[]),
            ],
        };
        c.normalize();
        assert_eq!(c.health_checks[0].service, key("a"));
        assert_eq!(
            c.health_checks[1].endpoints,
            [
                "198.18.1.1:53".parse::<SocketAddr>().expect("addr"),
                "198.18.1.2:53".parse().expect("addr")
            ]
        );
    }

    #[test]
    fn idle_timeouts_refuse_zero_and_more_than_a_day() {
        assert_eq!(
            check_idle_timeout(Duration::from_secs(30)),
            Ok(Duration::from_secs(30))
        );
        assert!(check_idle_timeout(MIN_IDLE_TIMEOUT).is_ok());
        assert!(check_idle_timeout(MAX_IDLE_TIMEOUT).is_ok());
        assert_eq!(
            check_idle_timeout(Duration::ZERO),
            Err("0s is out of range (1ms to 24h)".into())
        );
        assert_eq!(
            check_idle_timeout(Duration::from_secs(25 * 3600)),
            Err("25h is out of range (1ms to 24h)".into())
        );
        assert_eq!(
            check_idle_timeout(Duration::from_micros(500)),
            Err("500us is out of range (1ms to 24h)".into())
        );
    }

    #[test]
    fn idle_timeout_text_is_parsed_then_range_checked() {
        assert_eq!(parse_idle_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(
            parse_idle_timeout("0s"),
            Err("0s is out of range (1ms to 24h)".into())
        );
        assert_eq!(
            parse_idle_timeout("soon"),
            Err(
                "\"soon\": expected a number and a unit, e.g. 500ms, 30s, 2m or 1h \
                 (expected number at 0)"
                    .into()
            )
        );
    }
}

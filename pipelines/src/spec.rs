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

/// Per-listener behaviour that the Gateway API leaves to the implementation. `None` means
/// "use the appliance default".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenerOptions {
    /// NAT mode override.
    pub nat_mode: Option<NatMode>,
    /// Flow idle timeout override.
    pub idle_timeout: Option<Duration>,
    /// Hash key override.
    pub hash_key: Option<HashKey>,
}

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
}

//! `appliance.yaml` sections for scale-out: `announce` (VIPs over BGP through BIRD, the
//! liveness interface) and `drain` (the default drain deadline). Without `announce`
//! nothing is announced and nothing about a routing daemon is touched: a single-box
//! deployment is unchanged.

use std::path::PathBuf;
use std::time::Duration;

use pipelines::net::IpNet;
use pipelines::spec::HumanDuration;
use serde::Deserialize;

use super::text;
use super::validate::Validator;

/// VIP announcement through BIRD 2 (appliance/README.md, "Scale out").
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnounceSettings {
    /// BIRD's control socket and the include file udplb writes.
    #[serde(default)]
    pub bird: BirdSettings,
    /// Name of the TAP udplb creates; every announced route goes `via` it.
    #[serde(default = "default_liveness_interface")]
    pub liveness_interface: String,
    /// How often the gate is evaluated (also on every configuration change).
    #[serde(default = "default_interval", deserialize_with = "text::one")]
    pub interval: HumanDuration,
    /// On a graceful stop: how long udplb keeps forwarding after withdrawing its routes,
    /// before its workers and ports stop (skipped when a drain already finished).
    #[serde(default = "default_stop_grace", deserialize_with = "text::one")]
    pub stop_grace: HumanDuration,
    /// Prefixes announced while the appliance is healthy, for the backends' replies to
    /// come back through it (preserve-client behind ECMP): typically the clients'
    /// prefixes or a default route, imported by the router into the table it uses for
    /// traffic from the backends.
    #[serde(default, deserialize_with = "text::prefixes")]
    pub return_routes: Vec<IpNet>,
}

/// BIRD's side.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BirdSettings {
    /// BIRD's control socket (`bird -s`; Debian: `/run/bird/bird.ctl`).
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// The file udplb writes and BIRD's configuration includes.
    #[serde(default = "default_include")]
    pub include: PathBuf,
    /// Longest wait for any exchange on the control socket.
    #[serde(default = "default_timeout", deserialize_with = "text::one")]
    pub timeout: HumanDuration,
}

impl Default for BirdSettings {
    fn default() -> Self {
        BirdSettings {
            socket: default_socket(),
            include: default_include(),
            timeout: default_timeout(),
        }
    }
}

/// `udplb drain` defaults.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainSettings {
    /// How long a drain waits for flows to go idle when the request names no deadline.
    #[serde(default = "default_drain_deadline", deserialize_with = "text::one")]
    pub deadline: HumanDuration,
}

impl Default for DrainSettings {
    fn default() -> Self {
        DrainSettings {
            deadline: default_drain_deadline(),
        }
    }
}

fn default_liveness_interface() -> String {
    "udplb-live".into()
}
fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_millis(200))
}
fn default_stop_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_socket() -> PathBuf {
    "/run/bird/bird.ctl".into()
}
fn default_include() -> PathBuf {
    "/run/udplb/bird/vips.conf".into()
}
fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}
fn default_drain_deadline() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// `value` within `min..=max`, else a problem naming `field`.
pub(super) fn check_range(
    v: &mut Validator,
    field: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) {
    if value < min || value > max {
        v.fail(
            field,
            format!(
                "{} is out of range ({} to {})",
                HumanDuration(value),
                HumanDuration(min),
                HumanDuration(max)
            ),
        );
    }
}

impl AnnounceSettings {
    pub(super) fn validate(&self, v: &mut Validator) {
        let ms = Duration::from_millis;
        check_range(v, "announce.interval", self.interval.0, ms(10), ms(10_000));
        check_range(
            v,
            "announce.stop_grace",
            self.stop_grace.0,
            Duration::ZERO,
            ms(60_000),
        );
        check_range(
            v,
            "announce.bird.timeout",
            self.bird.timeout.0,
            ms(100),
            ms(60_000),
        );
        if !crate::announce::valid_interface_name(&self.liveness_interface) {
            v.fail(
                "announce.liveness_interface",
                format!(
                    "{:?} is not an interface name (1 to 15 bytes; no '/', ':', '\"' or \
                     whitespace)",
                    self.liveness_interface
                ),
            );
        }
        for (field, path) in [
            ("announce.bird.socket", &self.bird.socket),
            ("announce.bird.include", &self.bird.include),
        ] {
            if !path.is_absolute() || path.file_name().is_none() {
                v.fail(
                    field,
                    format!("{}: an absolute path to a file is required", path.display()),
                );
            }
        }
        for (i, p) in self.return_routes.iter().enumerate() {
            if p.addr() != p.network() {
                v.fail(
                    format!("announce.return_routes[{i}]"),
                    format!("{p}: host bits are set (the network is {})", p.trunc()),
                );
            }
            if self.return_routes[..i].contains(p) {
                v.fail(
                    format!("announce.return_routes[{i}]"),
                    format!("{p} is listed twice"),
                );
            }
        }
    }
}

impl DrainSettings {
    pub(super) fn validate(&self, v: &mut Validator) {
        check_range(
            v,
            "drain.deadline",
            self.deadline.0,
            Duration::ZERO,
            crate::drain::MAX_DEADLINE,
        );
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::super::{Settings, SettingsError};

    const PORTS: &str = "ports:\n  - {name: a, device: net_null0}\n";

    fn parse(extra: &str) -> Result<Settings, SettingsError> {
        Settings::from_str(&format!("{PORTS}{extra}"))
    }

    fn problems(extra: &str) -> Vec<String> {
        match parse(extra) {
            Err(SettingsError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
            other => panic!("expected invalid settings: {other:?}"),
        }
    }

    #[test]
    fn absent_means_no_announcement_and_defaults_apply() {
        let s = parse("").expect("valid");
        assert!(s.announce.is_none());
        assert_eq!(s.drain.deadline.to_string(), "30s");
        assert_eq!(s.workers.heartbeat_timeout.to_string(), "500ms");
        let s = parse("announce: {}\n").expect("valid");
        let a = s.announce.expect("announce");
        assert_eq!(a.bird.socket.to_str(), Some("/run/bird/bird.ctl"));
        assert_eq!(a.bird.include.to_str(), Some("/run/udplb/bird/vips.conf"));
        assert_eq!(a.liveness_interface, "udplb-live");
        assert_eq!(
            (a.interval.to_string(), a.stop_grace.to_string()),
            ("200ms".into(), "1s".into())
        );
        let s = parse(
            "announce:\n  bird: {socket: /run/b.ctl, include: /run/x/v.conf, timeout: 5s}\n  \
             liveness_interface: live0\n  interval: 100ms\n  stop_grace: 0s\n  \
             return_routes: [0.0.0.0/0, \"2001:2:0:100::/56\"]\ndrain: {deadline: 2m}\n",
        )
        .expect("valid");
        assert_eq!(s.announce.expect("announce").return_routes.len(), 2);
        assert_eq!(s.drain.deadline.to_string(), "2m");
    }

    #[test]
    fn the_deploy_example_is_valid() {
        let s = Settings::from_str(include_str!("../../../deploy/udplb-appliance.yaml"))
            .expect("deploy/udplb-appliance.yaml");
        let a = s.announce.expect("announce");
        assert_eq!(a.return_routes.len(), 2);
        assert_eq!(a.liveness_interface, "udplb-live");
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        assert_eq!(
            problems(
                "announce:\n  bird: {socket: bird.ctl, include: /run/x/, timeout: 10ms}\n  \
                 liveness_interface: \"a very long name\"\n  interval: 0s\n  stop_grace: 2m\n  \
                 return_routes: [198.19.0.1/24, 198.19.0.0/24, 198.19.0.0/24]\n\
                 drain: {deadline: 25h}\nworkers: {idle_backoff_us: 400000, heartbeat_timeout: 500ms}\n"
            ),
            [
                "workers.heartbeat_timeout: 500ms is out of range (800ms to 1m)",
                "announce.interval: 0s is out of range (10ms to 10s)",
                "announce.stop_grace: 2m is out of range (0s to 1m)",
                "announce.bird.timeout: 10ms is out of range (100ms to 1m)",
                "announce.liveness_interface: \"a very long name\" is not an interface name (1 to 15 bytes; no '/', ':', '\"' or whitespace)",
                "announce.bird.socket: bird.ctl: an absolute path to a file is required",
                "announce.return_routes[0]: 198.19.0.1/24: host bits are set (the network is 198.19.0.0/24)",
                "announce.return_routes[2]: 198.19.0.0/24 is listed twice",
                "drain.deadline: 25h is out of range (0s to 24h)",
            ]
        );
        assert!(matches!(
            parse("announce: {interval: 1s, colour: red}\n"),
            Err(SettingsError::Parse(m)) if m.contains("unknown field `colour`")
        ));
    }
}

//! A `UDPBackendPolicy` judged: its active check (interval, timeout, thresholds, port,
//! probe), its passive check (ICMP ejection) and its panic threshold, with Envoy
//! Gateway's defaults.

use std::time::Duration;

use pipelines::spec::{
    ActiveCheckSpec, ExpectedReply, HumanDuration, PassiveCheckSpec, PayloadMatch, ProbeSpec,
};

use super::probe::{bytes, dns_probe};
use super::{group_kind, ms, secs, Problems};
use crate::policy::model::{
    ActiveHealthCheck, HealthCheck, PassiveHealthCheck, UdpBackendPolicySpec,
};

/// Default time between two probes of one endpoint (Envoy Gateway's).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3);
/// Default probe timeout (Envoy Gateway's).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default passes in a row that make an endpoint healthy (Envoy Gateway's).
pub const DEFAULT_HEALTHY_THRESHOLD: u32 = 1;
/// Default failures in a row that make an endpoint unhealthy (Envoy Gateway's).
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;
/// Default ICMP errors in a row that eject an endpoint (Envoy Gateway's).
pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Default first ejection time (Envoy Gateway's).
pub const DEFAULT_BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
/// Default most endpoints ejected at once, in percent (Envoy Gateway's).
pub const DEFAULT_MAX_EJECTION_PERCENT: u8 = 10;
/// Default panic threshold in percent (Envoy's).
pub const DEFAULT_PANIC_THRESHOLD: u8 = 50;

/// What a valid `UDPBackendPolicy` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BackendSettings {
    pub(crate) active: Option<ActiveCheckSpec>,
    pub(crate) passive: Option<PassiveCheckSpec>,
    pub(crate) panic_threshold_percent: u8,
}

impl BackendSettings {
    /// A UDP check without an expected reply: it fails only on ICMP unreachable.
    pub(crate) fn weak(&self) -> bool {
        matches!(
            self.active,
            Some(ActiveCheckSpec {
                probe: ProbeSpec::Udp { expect: None, .. },
                ..
            })
        )
    }
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn u8_of(v: i64) -> u8 {
    u8::try_from(v).unwrap_or(0)
}

/// Judges a `UDPBackendPolicy` spec.
///
/// # Errors
/// Every problem, as `<field>: <message>`.
pub(crate) fn backend(spec: &UdpBackendPolicySpec) -> Result<BackendSettings, Vec<String>> {
    let mut p = Problems::default();
    for (i, t) in spec.target_refs.iter().enumerate() {
        if !(matches!(t.group.as_str(), "" | "core") && t.kind == "Service") {
            p.add(
                &format!("spec.targetRefs[{i}]"),
                format!(
                    "{} is not a target of UDPBackendPolicy (group \"\", kind Service)",
                    group_kind(t)
                ),
            );
        }
    }
    let HealthCheck {
        active,
        passive,
        panic_threshold,
    } = &spec.health_check;
    if active.is_none() && passive.is_none() {
        p.add("spec.healthCheck", "sets neither active nor passive");
    }
    let active = active
        .as_ref()
        .and_then(|a| active_check(&mut p, "spec.healthCheck.active", a));
    let passive = passive
        .as_ref()
        .map(|c| passive_check(&mut p, "spec.healthCheck.passive", c));
    let panic = p.range(
        "spec.healthCheck.panicThreshold",
        *panic_threshold,
        DEFAULT_PANIC_THRESHOLD.into(),
        0,
        100,
    );
    p.finish(BackendSettings {
        active,
        passive,
        panic_threshold_percent: u8_of(panic),
    })
}

fn active_check(p: &mut Problems, at: &str, a: &ActiveHealthCheck) -> Option<ActiveCheckSpec> {
    let interval = p.duration(
        &format!("{at}.interval"),
        a.interval.as_deref(),
        DEFAULT_INTERVAL,
        (ms(100), secs(3600)),
    );
    let timeout = p.duration(
        &format!("{at}.timeout"),
        a.timeout.as_deref(),
        DEFAULT_TIMEOUT,
        (ms(1), secs(3600)),
    );
    if timeout > interval {
        p.add(
            &format!("{at}.timeout"),
            format!(
                "{} is longer than the interval {}",
                HumanDuration(timeout),
                HumanDuration(interval)
            ),
        );
    }
    let healthy = p.range(
        &format!("{at}.healthyThreshold"),
        a.healthy_threshold,
        DEFAULT_HEALTHY_THRESHOLD.into(),
        1,
        100,
    );
    let unhealthy = p.range(
        &format!("{at}.unhealthyThreshold"),
        a.unhealthy_threshold,
        DEFAULT_UNHEALTHY_THRESHOLD.into(),
        1,
        100,
    );
    let port = a
        .port
        .map(|v| p.range(&format!("{at}.port"), Some(v), 1, 1, 65_535));
    let probe = match (a.kind.as_str(), &a.udp, &a.dns) {
        ("UDP", Some(udp), None) => {
            let send = bytes(p, &format!("{at}.udp.send"), &udp.send);
            let expect = udp.expect.as_ref().map(|e| {
                let field = format!("{at}.udp.expect");
                let matching = match e.matching.as_deref() {
                    None => PayloadMatch::Exact,
                    Some(m) => m.parse().unwrap_or_else(|err| {
                        p.add(&format!("{field}.match"), err);
                        PayloadMatch::Exact
                    }),
                };
                ExpectedReply {
                    matching,
                    payload: bytes(p, &field, &e.payload()),
                }
            });
            Some(ProbeSpec::Udp { send, expect })
        }
        ("DNS", None, Some(dns)) => Some(dns_probe(p, &format!("{at}.dns"), dns)),
        ("UDP" | "DNS", udp, dns) => {
            let (want, other) = if a.kind == "UDP" {
                ("udp", dns.as_ref().map(|_| "dns"))
            } else {
                ("dns", udp.as_ref().map(|_| "udp"))
            };
            match other {
                Some(other) => p.add(
                    &format!("{at}.{other}"),
                    format!("must not be set for type {}", a.kind),
                ),
                None => p.add(
                    &format!("{at}.{want}"),
                    format!("required for type {}", a.kind),
                ),
            }
            None
        }
        (other, _, _) => {
            p.add(
                &format!("{at}.type"),
                format!("{other:?} is not one of UDP, DNS"),
            );
            None
        }
    };
    Some(ActiveCheckSpec {
        probe: probe?,
        interval,
        timeout,
        healthy_threshold: u32_of(healthy),
        unhealthy_threshold: u32_of(unhealthy),
        port: port.and_then(|v| u16::try_from(v).ok()),
    })
}

fn passive_check(p: &mut Problems, at: &str, c: &PassiveHealthCheck) -> PassiveCheckSpec {
    let failures = p.range(
        &format!("{at}.consecutiveFailures"),
        c.consecutive_failures,
        DEFAULT_CONSECUTIVE_FAILURES.into(),
        1,
        1000,
    );
    let ejection = p.duration(
        &format!("{at}.baseEjectionTime"),
        c.base_ejection_time.as_deref(),
        DEFAULT_BASE_EJECTION_TIME,
        (secs(1), secs(3600)),
    );
    let percent = p.range(
        &format!("{at}.maxEjectionPercent"),
        c.max_ejection_percent,
        DEFAULT_MAX_EJECTION_PERCENT.into(),
        0,
        100,
    );
    PassiveCheckSpec {
        consecutive_failures: u32_of(failures),
        base_ejection_time: ejection,
        max_ejection_percent: u8_of(percent),
    }
}

#[cfg(test)]
mod tests {
    use pipelines::spec::RcodeSet;

    use super::super::probe::qtype;
    use super::*;
    use crate::policy::model::{
        DnsProbe, ExpectedPayload, Payload, PolicyTargetReference, UdpProbe,
    };

    fn active(kind: &str) -> ActiveHealthCheck {
        ActiveHealthCheck {
            kind: kind.into(),
            interval: None,
            timeout: None,
            healthy_threshold: None,
            unhealthy_threshold: None,
            port: None,
            udp: None,
            dns: None,
        }
    }

    fn spec(active: Option<ActiveHealthCheck>) -> UdpBackendPolicySpec {
        UdpBackendPolicySpec {
            target_refs: vec![PolicyTargetReference {
                group: String::new(),
                kind: "Service".into(),
                name: "dns".into(),
                section_name: None,
            }],
            health_check: HealthCheck {
                active,
                passive: None,
                panic_threshold: None,
            },
        }
    }

    fn text(t: &str) -> Payload {
        Payload {
            text: Some(t.into()),
            ..Payload::default()
        }
    }

    #[test]
    fn defaults_are_envoy_gateways() {
        let mut a = active("UDP");
        a.udp = Some(UdpProbe {
            send: text("ping"),
            expect: None,
        });
        let s = backend(&spec(Some(a))).expect("valid");
        let a = s.active.as_ref().expect("active");
        assert_eq!(a.interval, secs(3));
        assert_eq!(a.timeout, secs(1));
        assert_eq!((a.healthy_threshold, a.unhealthy_threshold), (1, 3));
        assert_eq!(a.port, None);
        assert_eq!(s.panic_threshold_percent, 50);
        assert!(s.weak());
    }

    #[test]
    fn every_bad_value_is_listed_with_its_field() {
        let mut a = active("UDP");
        a.interval = Some("50ms".into());
        a.timeout = Some("soon".into());
        a.healthy_threshold = Some(0);
        a.port = Some(70_000);
        a.udp = Some(UdpProbe {
            send: Payload {
                text: Some("x".into()),
                hex: Some("00".into()),
                base64: None,
            },
            expect: Some(ExpectedPayload {
                matching: Some("Regex".into()),
                hex: Some("0g".into()),
                ..ExpectedPayload::default()
            }),
        });
        let mut s = spec(Some(a));
        s.health_check.panic_threshold = Some(101);
        s.target_refs[0].kind = "Pod".into();
        assert_eq!(
            backend(&s).expect_err("invalid"),
            [
                "spec.targetRefs[0]: kind Pod is not a target of UDPBackendPolicy (group \"\", \
                 kind Service)",
                "spec.healthCheck.active.interval: 50ms is out of range (100ms to 1h)",
                "spec.healthCheck.active.timeout: \"soon\": expected a number and a unit, e.g. \
                 500ms, 30s, 2m or 1h (expected number at 0)",
                "spec.healthCheck.active.healthyThreshold: 0 is out of range 1..=100",
                "spec.healthCheck.active.port: 70000 is out of range 1..=65535",
                "spec.healthCheck.active.udp.send: needs exactly one of text, hex, base64",
                "spec.healthCheck.active.udp.expect.match: \"Regex\" is not one of Exact, \
                 Prefix, Contains",
                "spec.healthCheck.active.udp.expect.hex: 'g' at 1 is not a hexadecimal digit",
                "spec.healthCheck.panicThreshold: 101 is out of range 0..=100",
            ]
        );
    }

    #[test]
    fn type_and_probe_block_must_agree() {
        let s = spec(Some(active("DNS")));
        assert_eq!(
            backend(&s).expect_err("no dns block"),
            ["spec.healthCheck.active.dns: required for type DNS"]
        );
        let mut a = active("UDP");
        a.dns = Some(DnsProbe {
            name: "x".into(),
            qtype: None,
            rcodes: None,
            recursion_desired: None,
        });
        assert_eq!(
            backend(&spec(Some(a))).expect_err("dns block on UDP"),
            ["spec.healthCheck.active.dns: must not be set for type UDP"]
        );
        assert_eq!(
            backend(&spec(Some(active("TCP")))).expect_err("tcp"),
            ["spec.healthCheck.active.type: \"TCP\" is not one of UDP, DNS"]
        );
        assert_eq!(
            backend(&spec(None)).expect_err("nothing"),
            ["spec.healthCheck: sets neither active nor passive"]
        );
    }

    #[test]
    fn dns_probes() {
        let mut a = active("DNS");
        a.dns = Some(DnsProbe {
            name: "Health.Example.".into(),
            qtype: Some("AAAA".into()),
            rcodes: Some(vec!["NOERROR".into(), "NXDOMAIN".into()]),
            recursion_desired: Some(true),
        });
        let s = backend(&spec(Some(a))).expect("valid");
        assert_eq!(
            s.active.expect("active").probe,
            ProbeSpec::Dns {
                name: "Health.Example".into(),
                qtype: 28,
                rcodes: RcodeSet(0b1001),
                recursion_desired: true,
            }
        );
        assert_eq!(qtype("TYPE65535"), Some(65_535));
        assert_eq!(qtype("TYPE0"), None);
        assert_eq!(qtype("a"), None);
        let mut a = active("DNS");
        a.dns = Some(DnsProbe {
            name: "bad..name".into(),
            qtype: Some("AXFR".into()),
            rcodes: Some(vec!["OK".into()]),
            recursion_desired: None,
        });
        let e = backend(&spec(Some(a))).expect_err("invalid");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("spec.healthCheck.active.dns.name: \"bad..name\" has a label"));
        assert!(e[1].starts_with("spec.healthCheck.active.dns.type: \"AXFR\" is not one of A,"));
        assert!(e[2].starts_with("spec.healthCheck.active.dns.rcodes[0]: \"OK\" is not one of"));
    }
}

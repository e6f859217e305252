//! The values of a policy, judged: defaults filled in, ranges and consistency checked.
//!
//! A policy with any bad value is `Invalid` as a whole (it is not applied anywhere), and
//! its status lists every problem as `<field>: <what is wrong>`. Keywords and durations
//! are parsed by the `pipelines::spec` types, so they take the spellings of the Gateway
//! annotations and of `appliance.yaml`, with the same messages.

use std::time::Duration;

use pipelines::maglev::{is_prime, next_prime};
use pipelines::spec::{
    parse_idle_timeout, ActiveCheckSpec, ExpectedReply, HashKey, HumanDuration, NatMode,
    PassiveCheckSpec, PayloadMatch, ProbeSpec, RcodeSet, MAX_MAGLEV_SIZE,
};

use super::model::{
    ActiveHealthCheck, DnsProbe, HealthCheck, PassiveHealthCheck, Payload, PolicyTargetReference,
    UdpBackendPolicySpec, UdpTrafficPolicySpec,
};
use super::payload;
use crate::model::GATEWAY_GROUP;

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
/// Largest probe payload and expected reply, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 512;

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

/// What a valid `UDPTrafficPolicy` sets (`None`: left to others).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrafficSettings {
    pub(crate) nat_mode: Option<NatMode>,
    pub(crate) hash_key: Option<HashKey>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) unreplied_timeout: Option<Duration>,
    pub(crate) maglev_size: Option<u32>,
}

/// Problems of one policy, each `<field>: <message>`.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, field: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{field}: {message}"));
    }

    fn range(&mut self, field: &str, value: Option<i64>, default: i64, lo: i64, hi: i64) -> i64 {
        match value {
            None => default,
            Some(v) if (lo..=hi).contains(&v) => v,
            Some(v) => {
                self.add(field, format!("{v} is out of range {lo}..={hi}"));
                default
            }
        }
    }

    fn duration(
        &mut self,
        field: &str,
        text: Option<&str>,
        default: Duration,
        (lo, hi): (Duration, Duration),
    ) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match text.parse::<HumanDuration>() {
            Ok(HumanDuration(d)) if (lo..=hi).contains(&d) => d,
            Ok(HumanDuration(d)) => {
                self.add(
                    field,
                    format!(
                        "{} is out of range ({} to {})",
                        HumanDuration(d),
                        HumanDuration(lo),
                        HumanDuration(hi)
                    ),
                );
                default
            }
            Err(e) => {
                self.add(field, e);
                default
            }
        }
    }

    fn finish<T>(self, value: T) -> Result<T, Vec<String>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
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

/// The bytes of a payload: exactly one of `text`, `hex`, `base64`; 1..=512 bytes.
fn bytes(p: &mut Problems, at: &str, payload: &Payload) -> Vec<u8> {
    let decoded = match (&payload.text, &payload.hex, &payload.base64) {
        (Some(t), None, None) => Ok(t.as_bytes().to_vec()),
        (None, Some(h), None) => payload::hex(h).map_err(|e| (format!("{at}.hex"), e)),
        (None, None, Some(b)) => payload::base64(b).map_err(|e| (format!("{at}.base64"), e)),
        _ => Err((
            at.to_owned(),
            "needs exactly one of text, hex, base64".to_owned(),
        )),
    };
    match decoded {
        Ok(b) if (1..=MAX_PAYLOAD_BYTES).contains(&b.len()) => b,
        Ok(b) => {
            p.add(
                at,
                format!(
                    "{} bytes; between 1 and {MAX_PAYLOAD_BYTES} are allowed",
                    b.len()
                ),
            );
            Vec::new()
        }
        Err((field, message)) => {
            p.add(&field, message);
            Vec::new()
        }
    }
}

/// DNS types by name (RFC 1035, 3596, 2782, 8659), for the common checks.
const QTYPES: [(&str, u16); 11] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("ANY", 255),
    ("CAA", 257),
];

/// DNS response codes by name (RFC 1035, 2136).
const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

fn dns_probe(p: &mut Problems, at: &str, dns: &DnsProbe) -> ProbeSpec {
    let name = dns.name.strip_suffix('.').unwrap_or(&dns.name).to_owned();
    if let Err(e) = check_dns_name(&name) {
        p.add(&format!("{at}.name"), format!("{:?} {e}", dns.name));
    }
    let qtype = match dns.qtype.as_deref() {
        None => 1,
        Some(t) => qtype(t).unwrap_or_else(|| {
            p.add(
                &format!("{at}.type"),
                format!(
                    "{t:?} is not one of {} or TYPE<1..65535>",
                    QTYPES.map(|(n, _)| n).join(", ")
                ),
            );
            1
        }),
    };
    let mut rcodes = RcodeSet::default();
    match &dns.rcodes {
        None => rcodes.0 = 1,
        Some(list) if list.is_empty() => {
            p.add(&format!("{at}.rcodes"), "must name at least one rcode")
        }
        Some(list) => {
            for (i, r) in list.iter().enumerate() {
                match RCODES.iter().position(|n| n == r) {
                    Some(bit) => rcodes.0 |= 1 << bit,
                    None => p.add(
                        &format!("{at}.rcodes[{i}]"),
                        format!("{r:?} is not one of {}", RCODES.join(", ")),
                    ),
                }
            }
        }
    }
    ProbeSpec::Dns {
        name,
        qtype,
        rcodes,
        recursion_desired: dns.recursion_desired.unwrap_or(false),
    }
}

fn qtype(text: &str) -> Option<u16> {
    if let Some((_, v)) = QTYPES.iter().find(|(n, _)| *n == text) {
        return Some(*v);
    }
    let n: u16 = text.strip_prefix("TYPE")?.parse().ok()?;
    (n != 0).then_some(n)
}

/// A domain name without its final dot: 1..=253 characters, labels of 1..=63 letters,
/// digits, `-` or `_`.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("must have 1 to 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has a label that is empty or longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("may hold only letters, digits, '-', '_' and '.'");
        }
    }
    Ok(())
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

/// Judges a `UDPTrafficPolicy` spec.
///
/// # Errors
/// Every problem, as `<field>: <message>`.
pub(crate) fn traffic(spec: &UdpTrafficPolicySpec) -> Result<TrafficSettings, Vec<String>> {
    let mut p = Problems::default();
    for (i, t) in spec.target_refs.iter().enumerate() {
        let at = format!("spec.targetRefs[{i}]");
        match (t.group.as_str(), t.kind.as_str()) {
            (GATEWAY_GROUP, "Gateway") => {}
            (GATEWAY_GROUP, "UDPRoute") if t.section_name.is_some() => p.add(
                &format!("{at}.sectionName"),
                "is not supported for a UDPRoute target (udplb serves a UDPRoute's rules as one)",
            ),
            (GATEWAY_GROUP, "UDPRoute") => {}
            _ => p.add(
                &at,
                format!(
                    "{} is not a target of UDPTrafficPolicy (group {GATEWAY_GROUP}, kind \
                     Gateway or UDPRoute)",
                    group_kind(t)
                ),
            ),
        }
    }
    let mut s = TrafficSettings::default();
    if let Some(text) = &spec.nat_mode {
        match text.parse::<NatMode>() {
            Ok(m) => s.nat_mode = Some(m),
            Err(e) => p.add("spec.natMode", e),
        }
    }
    if let Some(text) = &spec.hash_key {
        match text.parse::<HashKey>() {
            Ok(h) => s.hash_key = Some(h),
            Err(e) => p.add("spec.hashKey", e),
        }
    }
    s.idle_timeout = timeout(&mut p, "spec.idleTimeout", spec.idle_timeout.as_deref());
    s.unreplied_timeout = timeout(
        &mut p,
        "spec.unrepliedTimeout",
        spec.unreplied_timeout.as_deref(),
    );
    if let Some(size) = spec.maglev_table_size {
        match u32::try_from(size) {
            Ok(n) if (1..=MAX_MAGLEV_SIZE).contains(&n) && is_prime(n) => s.maglev_size = Some(n),
            Ok(n) if (1..=MAX_MAGLEV_SIZE).contains(&n) => p.add(
                "spec.maglevTableSize",
                format!("{n} is not prime (the next prime is {})", next_prime(n)),
            ),
            _ => p.add(
                "spec.maglevTableSize",
                format!("{size} is out of range 1..={MAX_MAGLEV_SIZE}"),
            ),
        }
    }
    let UdpTrafficPolicySpec {
        target_refs: _,
        nat_mode,
        hash_key,
        idle_timeout,
        unreplied_timeout,
        maglev_table_size,
    } = spec;
    if nat_mode.is_none()
        && hash_key.is_none()
        && idle_timeout.is_none()
        && unreplied_timeout.is_none()
        && maglev_table_size.is_none()
    {
        p.add(
            "spec",
            "sets none of natMode, hashKey, idleTimeout, unrepliedTimeout, maglevTableSize",
        );
    }
    p.finish(s)
}

/// A flow timeout: the `humantime` grammar and the range of `flows.idle_timeout`.
fn timeout(p: &mut Problems, field: &str, text: Option<&str>) -> Option<Duration> {
    match parse_idle_timeout(text?) {
        Ok(d) => Some(d),
        Err(e) => {
            p.add(field, e);
            None
        }
    }
}

fn group_kind(t: &PolicyTargetReference) -> String {
    if t.group.is_empty() {
        format!("kind {}", t.kind)
    } else {
        format!("{}/{}", t.group, t.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{ExpectedPayload, UdpProbe};

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

    fn traffic_spec() -> UdpTrafficPolicySpec {
        UdpTrafficPolicySpec {
            target_refs: vec![PolicyTargetReference {
                group: GATEWAY_GROUP.into(),
                kind: "Gateway".into(),
                name: "gw".into(),
                section_name: None,
            }],
            nat_mode: None,
            hash_key: None,
            idle_timeout: None,
            unreplied_timeout: None,
            maglev_table_size: None,
        }
    }

    #[test]
    fn traffic_values_use_the_pipelines_spellings_and_ranges() {
        let mut s = traffic_spec();
        s.nat_mode = Some("preserve-client".into());
        s.hash_key = Some("source-ip".into());
        s.idle_timeout = Some("2m".into());
        s.unreplied_timeout = Some("10s".into());
        s.maglev_table_size = Some(65_537);
        assert_eq!(
            traffic(&s),
            Ok(TrafficSettings {
                nat_mode: Some(NatMode::PreserveClient),
                hash_key: Some(HashKey::SourceIp),
                idle_timeout: Some(secs(120)),
                unreplied_timeout: Some(secs(10)),
                maglev_size: Some(65_537),
            })
        );
        s.nat_mode = Some("snat".into());
        s.hash_key = Some("4-tuple".into());
        s.idle_timeout = Some("0s".into());
        s.unreplied_timeout = Some("25h".into());
        s.maglev_table_size = Some(65_536);
        s.target_refs[0].kind = "HTTPRoute".into();
        assert_eq!(
            traffic(&s).expect_err("invalid"),
            [
                "spec.targetRefs[0]: gateway.networking.k8s.io/HTTPRoute is not a target of \
                 UDPTrafficPolicy (group gateway.networking.k8s.io, kind Gateway or UDPRoute)",
                "spec.natMode: \"snat\" is not one of fullnat, preserve-client, dsr",
                "spec.hashKey: \"4-tuple\" is not one of 5-tuple, source-ip-port, source-ip",
                "spec.idleTimeout: 0s is out of range (1ms to 24h)",
                "spec.unrepliedTimeout: 25h is out of range (1ms to 24h)",
                "spec.maglevTableSize: 65536 is not prime (the next prime is 65537)",
            ]
        );
        s = traffic_spec();
        s.maglev_table_size = Some(i64::from(MAX_MAGLEV_SIZE) + 1);
        assert_eq!(
            traffic(&s).expect_err("too large"),
            ["spec.maglevTableSize: 16777217 is out of range 1..=16777216"]
        );
        assert_eq!(
            traffic(&traffic_spec()).expect_err("empty"),
            ["spec: sets none of natMode, hashKey, idleTimeout, unrepliedTimeout, maglevTableSize"]
        );
        let mut s = traffic_spec();
        s.idle_timeout = Some("1m".into());
        s.target_refs[0].kind = "UDPRoute".into();
        s.target_refs[0].section_name = Some("rule".into());
        assert_eq!(
            traffic(&s).expect_err("route section"),
            [
                "spec.targetRefs[0].sectionName: is not supported for a UDPRoute target (udplb \
              serves a UDPRoute's rules as one)"
            ]
        );
    }
}

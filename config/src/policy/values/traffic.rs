//! A `UDPTrafficPolicy` judged: its targets, NAT mode, hash key, flow timeouts and Maglev
//! table size, in the spellings and ranges of the pipelines types.

use std::time::Duration;

use pipelines::maglev::{is_prime, next_prime};
use pipelines::spec::{parse_idle_timeout, HashKey, NatMode, MAX_MAGLEV_SIZE};

use super::{group_kind, Problems};
use crate::model::GATEWAY_GROUP;
use crate::policy::model::UdpTrafficPolicySpec;

/// What a valid `UDPTrafficPolicy` sets (`None`: left to others).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrafficSettings {
    pub(crate) nat_mode: Option<NatMode>,
    pub(crate) hash_key: Option<HashKey>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) unreplied_timeout: Option<Duration>,
    pub(crate) maglev_size: Option<u32>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::PolicyTargetReference;
    use crate::policy::values::secs;

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

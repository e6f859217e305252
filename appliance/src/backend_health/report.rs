//! What the checker shows: a [`HealthReport`] copied out of the [`Checker`] by its thread,
//! read by `GET /v1/status` (the `BackendHealthStatus` document) and by the metrics.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pipelines::net::PortRange;
use pipelines::spec::{PolicyKey, ProbeSpec, ServiceKey};
use serde_json::json;

use super::checker::{Checker, HealthCounters};
use super::probe::rcode_name;

/// The note a weak check carries in status.
pub const WEAK_NOTE: &str = "weak check: a UDP probe without an expected reply fails only on \
                             ICMP port or host unreachable, so it finds a stopped process but \
                             not a hung one";

/// One endpoint's health at a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointReport {
    /// The endpoint.
    pub addr: SocketAddr,
    /// Neither failing its active check nor ejected.
    pub healthy: bool,
    /// Takes no new flows (unhealthy, and its Service not in panic).
    pub excluded: bool,
    /// Active check: its verdict, passes and failures in a row, the last result
    /// (passed, reason, how long ago).
    pub active: Option<ActiveReport>,
    /// Passive check: ICMP unreachable in a row, ejected for how much longer, ejections
    /// in a row.
    pub passive: Option<PassiveReport>,
}

/// The active side of an [`EndpointReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveReport {
    /// The active verdict.
    pub healthy: bool,
    /// Passes in a row.
    pub passes: u32,
    /// Failures in a row.
    pub failures: u32,
    /// The last probe: passed, why, how long ago.
    pub last: Option<(bool, String, Duration)>,
}

/// The passive side of an [`EndpointReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassiveReport {
    /// ICMP unreachable in a row.
    pub failures: u64,
    /// Time left of the current ejection.
    pub ejected_for: Option<Duration>,
    /// Ejections in a row.
    pub ejections_in_a_row: u32,
}

/// One checked Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceReport {
    /// The Service port.
    pub service: ServiceKey,
    /// The policy.
    pub policy: PolicyKey,
    /// The active check in words (`DNS health.example TXT every 3s, timeout 1s, ...`).
    pub check: String,
    /// A UDP check without an expected reply.
    pub weak: bool,
    /// More than the panic threshold unhealthy: every endpoint takes flows.
    pub panicking: bool,
    /// The panic threshold in percent.
    pub panic_threshold_percent: u8,
    /// Its endpoints.
    pub endpoints: Vec<EndpointReport>,
}

/// Everything the health checker shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthReport {
    /// Per checked Service port.
    pub services: Vec<ServiceReport>,
    /// Tallies.
    pub counters: HealthCounters,
    /// Probe source ports (`None`: the SNAT pool takes them all).
    pub probe_ports: Option<PortRange>,
}

impl HealthReport {
    /// The checker's state at `now`.
    pub fn of(c: &Checker, now: Instant) -> HealthReport {
        let health = c.health();
        let services =
            c.checks()
                .iter()
                .map(|spec| {
                    let endpoints = spec
                        .endpoints
                        .iter()
                        .filter_map(|addr| {
                            let e = c.endpoints().get(addr)?;
                            Some(EndpointReport {
                                addr: *addr,
                                healthy: !e.unhealthy(),
                                excluded: health.is_excluded(*addr),
                                active: spec.active.as_ref().map(|_| ActiveReport {
                                    healthy: e.active.healthy,
                                    passes: e.active.passes,
                                    failures: e.active.failures,
                                    last: e.active.last.as_ref().map(|r| {
                                        (
                                            r.passed,
                                            r.reason.clone(),
                                            now.saturating_duration_since(r.at),
                                        )
                                    }),
                                }),
                                passive: spec.passive.map(|_| PassiveReport {
                                    failures: e.passive.failures,
                                    ejected_for: e
                                        .passive
                                        .ejected_until
                                        .map(|u| u.saturating_duration_since(now)),
                                    ejections_in_a_row: e.passive.ejections_in_a_row,
                                }),
                            })
                        })
                        .collect();
                    ServiceReport {
                        service: spec.service.clone(),
                        policy: spec.policy.clone(),
                        check: describe(spec),
                        weak: spec.active.as_ref().is_some_and(|a| {
                            matches!(a.probe, ProbeSpec::Udp { expect: None, .. })
                        }),
                        panicking: health.panicking().contains(&spec.service),
                        panic_threshold_percent: spec.panic_threshold_percent,
                        endpoints,
                    }
                })
                .collect();
        HealthReport {
            services,
            counters: c.counters(),
            probe_ports: c.probe_ports(),
        }
    }

    /// The `BackendHealthStatus` YAML document for `GET /v1/status` (with its `---`).
    pub fn status_document(&self) -> String {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let services: Vec<_> = self
            .services
            .iter()
            .map(|s| {
                let endpoints: Vec<_> = s
                    .endpoints
                    .iter()
                    .map(|e| {
                        let active = e.active.as_ref().map(|a| {
                            json!({
                                "healthy": a.healthy,
                                "passesInARow": a.passes,
                                "failuresInARow": a.failures,
                                "lastResult": a.last.as_ref().map(|(passed, why, ago)| json!({
                                    "passed": passed,
                                    "reason": why,
                                    "agoMs": ms(*ago),
                                })),
                            })
                        });
                        let passive = e.passive.as_ref().map(|p| {
                            json!({
                                "icmpUnreachableInARow": p.failures,
                                "ejected": p.ejected_for.is_some(),
                                "ejectedForMs": p.ejected_for.map(ms),
                                "ejectionsInARow": p.ejections_in_a_row,
                            })
                        });
                        json!({
                            "endpoint": e.addr.to_string(),
                            "state": if e.healthy { "Healthy" } else { "Unhealthy" },
                            "takesNewFlows": !e.excluded,
                            "active": active,
                            "passive": passive,
                        })
                    })
                    .collect();
                let mut notes = Vec::new();
                if s.weak {
                    notes.push(WEAK_NOTE.to_owned());
                }
                if s.panicking {
                    notes.push(format!(
                        "panic: more than {} % of the endpoints are unhealthy, all of them take \
                         flows",
                        s.panic_threshold_percent
                    ));
                }
                json!({
                    "service": {
                        "namespace": s.service.namespace,
                        "name": s.service.name,
                        "port": s.service.port,
                    },
                    "policy": format!("{}/{}", s.policy.namespace, s.policy.name),
                    "check": s.check,
                    "weak": s.weak,
                    "panic": s.panicking,
                    "notes": notes,
                    "endpoints": endpoints,
                })
            })
            .collect();
        let c = &self.counters;
        let doc = json!({
            "apiVersion": "udplb.io/v1alpha1",
            "kind": "BackendHealthStatus",
            "metadata": {"name": "appliance"},
            "status": {
                "probeSourcePorts": self.probe_ports.map(|p| format!("{}-{}", p.first, p.last)),
                "services": services,
                "probes": {
                    "sent": c.probes_sent,
                    "passed": c.passed,
                    "failedTimeout": c.failed_timeout,
                    "failedUnreachable": c.failed_unreachable,
                    "failedReply": c.failed_reply,
                    "failedUnsent": c.failed_unsent,
                },
                "ejections": c.ejections,
            },
        });
        let yaml = serde_norway::to_string(&doc).unwrap_or_default();
        format!("---\n{yaml}")
    }
}

/// The check of `spec` in words, for status.
fn describe(spec: &pipelines::spec::HealthCheckSpec) -> String {
    let mut parts = Vec::new();
    if let Some(a) = &spec.active {
        let probe = match &a.probe {
            ProbeSpec::Udp { expect: None, .. } => "UDP (weak: no expected reply)".to_owned(),
            ProbeSpec::Udp {
                expect: Some(e), ..
            } => format!("UDP, reply matched {:?}", e.matching),
            ProbeSpec::Dns {
                name,
                qtype,
                rcodes,
                ..
            } => {
                let accepted: Vec<String> = (0..16u8)
                    .filter(|r| rcodes.contains(*r))
                    .map(rcode_name)
                    .collect();
                format!("DNS {name} type {qtype}, rcode {}", accepted.join("|"))
            }
        };
        let port = a.port.map(|p| format!(" to port {p}")).unwrap_or_default();
        parts.push(format!(
            "active: {probe}{port} every {:?}, timeout {:?}, unhealthy after {}, healthy after {}",
            a.interval, a.timeout, a.unhealthy_threshold, a.healthy_threshold
        ));
    }
    if let Some(p) = &spec.passive {
        parts.push(format!(
            "passive: eject after {} ICMP unreachable for {:?}, at most {} %",
            p.consecutive_failures, p.base_ejection_time, p.max_ejection_percent
        ));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::spec::{ActiveCheckSpec, HealthCheckSpec, PassiveCheckSpec};

    #[test]
    fn status_names_each_endpoint_the_weak_note_and_panic() {
        let t = Instant::now();
        let addr: SocketAddr = "198.18.1.11:7".parse().expect("addr");
        let spec = HealthCheckSpec {
            service: ServiceKey {
                namespace: "apps".into(),
                name: "echo".into(),
                port: 7,
            },
            policy: PolicyKey {
                namespace: "apps".into(),
                name: "echo-health".into(),
            },
            endpoints: vec![addr],
            active: Some(ActiveCheckSpec {
                probe: ProbeSpec::Udp {
                    send: b"x".to_vec(),
                    expect: None,
                },
                interval: Duration::from_secs(3),
                timeout: Duration::from_secs(1),
                healthy_threshold: 1,
                unhealthy_threshold: 1,
                port: None,
            }),
            passive: Some(PassiveCheckSpec {
                consecutive_failures: 5,
                base_ejection_time: Duration::from_secs(30),
                max_ejection_percent: 10,
            }),
            panic_threshold_percent: 50,
        };
        let mut c = Checker::new(Some(PortRange {
            first: 1,
            last: 1023,
        }));
        c.set_checks(vec![spec], t);
        let o = c.poll(t).pop().expect("probe");
        c.on_event(
            super::super::wire::ProbeEvent::Unreachable {
                to: o.target,
                from_port: o.src_port,
                what: "port unreachable",
            },
            t,
        );
        let _ = c.publish();
        let r = HealthReport::of(&c, t + Duration::from_millis(5));
        let s = &r.services[0];
        assert!(s.weak && s.panicking);
        assert!(!s.endpoints[0].healthy && !s.endpoints[0].excluded);
        let doc = r.status_document();
        for want in [
            "kind: BackendHealthStatus",
            "endpoint: 198.18.1.11:7",
            "state: Unhealthy",
            "takesNewFlows: true",
            "reason: ICMP port unreachable",
            "agoMs: 5",
            "weak check: a UDP probe without an expected reply",
            "panic: more than 50 % of the endpoints are unhealthy",
            "policy: apps/echo-health",
            "probeSourcePorts: 1-1023",
            "failedUnreachable: 1",
            "active: UDP (weak: no expected reply) every 3s, timeout 1s",
        ] {
            assert!(doc.contains(want), "{want:?} missing in\n{doc}");
        }
    }
}

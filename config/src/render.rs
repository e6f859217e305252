//! A serializable view of [`ForwardingConfig`] (which, being the data plane's format,
//! has no serde): for `udplb` diagnostics and golden tests.
//!
//! Optional fields are shown only when set, so a configuration without policies,
//! annotations or session affinity renders as it always did: a list of listeners. When
//! there are health checks, the document is a mapping `{listeners, healthChecks}`.

use std::time::Duration;

use pipelines::spec::{
    ActiveCheckSpec, ForwardingConfig, HealthCheckSpec, PassiveCheckSpec, ProbeSpec,
};
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListenerView {
    vip: String,
    port: u16,
    listener: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    nat_mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unreplied_timeout_ms: Option<u128>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hash_key: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maglev_table_size: Option<u32>,
    route: Option<RouteView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteView {
    name: String,
    dropped_weight: u64,
    backends: Vec<BackendView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BackendView {
    addr: String,
    service: String,
    weight: u64,
    draining: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout_ms: Option<u128>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HealthCheckView {
    service: String,
    policy: String,
    endpoints: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<ActiveView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    passive: Option<PassiveView>,
    panic_threshold_percent: u8,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveView {
    #[serde(rename = "type")]
    kind: &'static str,
    interval_ms: u128,
    timeout_ms: u128,
    healthy_threshold: u32,
    unhealthy_threshold: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    /// UDP: the payload in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    send_hex: Option<String>,
    /// UDP: the expected reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    expect: Option<ExpectView>,
    /// DNS: name, qtype, rcode bit set, RD.
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<QueryView>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExpectView {
    #[serde(rename = "match")]
    matching: &'static str,
    hex: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryView {
    name: String,
    qtype: u16,
    rcodes: Vec<u8>,
    recursion_desired: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PassiveView {
    consecutive_failures: u32,
    base_ejection_time_ms: u128,
    max_ejection_percent: u8,
}

#[derive(Serialize)]
#[serde(untagged)]
enum View {
    Listeners(Vec<ListenerView>),
    WithHealthChecks {
        listeners: Vec<ListenerView>,
        #[serde(rename = "healthChecks")]
        health_checks: Vec<HealthCheckView>,
    },
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ms(d: &Duration) -> u128 {
    d.as_millis()
}

fn active(a: &ActiveCheckSpec) -> ActiveView {
    let mut v = ActiveView {
        kind: "UDP",
        interval_ms: ms(&a.interval),
        timeout_ms: ms(&a.timeout),
        healthy_threshold: a.healthy_threshold,
        unhealthy_threshold: a.unhealthy_threshold,
        port: a.port,
        send_hex: None,
        expect: None,
        query: None,
    };
    match &a.probe {
        ProbeSpec::Udp { send, expect } => {
            v.send_hex = Some(hex(send));
            v.expect = expect.as_ref().map(|e| ExpectView {
                matching: e.matching.as_str(),
                hex: hex(&e.payload),
            });
        }
        ProbeSpec::Dns {
            name,
            qtype,
            rcodes,
            recursion_desired,
        } => {
            v.kind = "DNS";
            v.query = Some(QueryView {
                name: name.clone(),
                qtype: *qtype,
                rcodes: (0..16).filter(|&r| rcodes.contains(r)).collect(),
                recursion_desired: *recursion_desired,
            });
        }
    }
    v
}

fn health_check(h: &HealthCheckSpec) -> HealthCheckView {
    HealthCheckView {
        service: format!(
            "{}/{}:{}",
            h.service.namespace, h.service.name, h.service.port
        ),
        policy: format!("{}/{}", h.policy.namespace, h.policy.name),
        endpoints: h.endpoints.iter().map(ToString::to_string).collect(),
        active: h.active.as_ref().map(active),
        passive: h.passive.as_ref().map(|p: &PassiveCheckSpec| PassiveView {
            consecutive_failures: p.consecutive_failures,
            base_ejection_time_ms: ms(&p.base_ejection_time),
            max_ejection_percent: p.max_ejection_percent,
        }),
        panic_threshold_percent: h.panic_threshold_percent,
    }
}

fn view(config: &ForwardingConfig) -> View {
    let listeners = config
        .listeners
        .iter()
        .map(|l| ListenerView {
            vip: l.vip.to_string(),
            port: l.port,
            listener: format!("{}/{}/{}", l.key.namespace, l.key.gateway, l.key.listener),
            nat_mode: l.options.nat_mode.map(|m| m.as_str()),
            idle_timeout_ms: l.options.idle_timeout.as_ref().map(ms),
            unreplied_timeout_ms: l.options.unreplied_timeout.as_ref().map(ms),
            hash_key: l.options.hash_key.map(|h| h.as_str()),
            maglev_table_size: l.options.maglev_size,
            route: l.route.as_ref().map(|r| RouteView {
                name: format!("{}/{}", r.key.namespace, r.key.name),
                dropped_weight: r.dropped_weight,
                backends: r
                    .backends
                    .iter()
                    .map(|b| BackendView {
                        addr: b.addr.to_string(),
                        service: format!(
                            "{}/{}:{}",
                            b.service.namespace, b.service.name, b.service.port
                        ),
                        weight: b.weight,
                        draining: b.draining,
                        idle_timeout_ms: b.idle_timeout.as_ref().map(ms),
                    })
                    .collect(),
            }),
        })
        .collect();
    if config.health_checks.is_empty() {
        View::Listeners(listeners)
    } else {
        View::WithHealthChecks {
            listeners,
            health_checks: config.health_checks.iter().map(health_check).collect(),
        }
    }
}

/// The forwarding config as YAML: a list of listeners with their route and weighted
/// backends (`weight` and `droppedWeight` in units of `WEIGHT_SCALE`), or, when there are
/// health checks, a mapping of `listeners` and `healthChecks` (payloads in hex).
pub fn forwarding_yaml(config: &ForwardingConfig) -> String {
    serde_norway::to_string(&view(config)).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// The same as [`forwarding_yaml`], as JSON.
pub fn forwarding_json(config: &ForwardingConfig) -> String {
    serde_json::to_string_pretty(&view(config))
        .unwrap_or_else(|e| format!("\"cannot render: {e}\""))
}

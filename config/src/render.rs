//! A serializable view of [`ForwardingConfig`] (which, being the data plane's format,
//! has no serde): for `udplb` diagnostics and golden tests.

use std::time::Duration;

use pipelines::spec::ForwardingConfig;
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
    hash_key: Option<&'static str>,
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
}

fn views(config: &ForwardingConfig) -> Vec<ListenerView> {
    config
        .listeners
        .iter()
        .map(|l| ListenerView {
            vip: l.vip.to_string(),
            port: l.port,
            listener: format!("{}/{}/{}", l.key.namespace, l.key.gateway, l.key.listener),
            nat_mode: l.options.nat_mode.map(|m| m.as_str()),
            idle_timeout_ms: l.options.idle_timeout.as_ref().map(Duration::as_millis),
            hash_key: l.options.hash_key.map(|h| h.as_str()),
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
                    })
                    .collect(),
            }),
        })
        .collect()
}

/// The forwarding config as YAML: a list of listeners with their route and weighted
/// backends (`weight` and `droppedWeight` in units of `WEIGHT_SCALE`).
pub fn forwarding_yaml(config: &ForwardingConfig) -> String {
    serde_norway::to_string(&views(config)).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
}

/// The same as [`forwarding_yaml`], as JSON.
pub fn forwarding_json(config: &ForwardingConfig) -> String {
    serde_json::to_string_pretty(&views(config))
        .unwrap_or_else(|e| format!("\"cannot render: {e}\""))
}

//! The running appliance's health, drain, status and metrics, through its real handler
//! (`ApplianceHandler` over a real control plane and `Supervisor`) and the real HTTP
//! server, without DPDK: the ports' links are a fake, the workers' heartbeats are stamped
//! by the test (as the worker loop stamps them every round), the clock is driven where the
//! supervisor takes one. Also the announcement gate on compiled tables.

#![allow(clippy::tests_outside_test_module)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::announce::{decide, vip_readiness, Phase, Withheld};
use appliance::control::{ControlParams, ControlPlane, Observed, Publisher};
use appliance::health::{HealthCheck, PortLink, PortLinks};
use appliance::mgmt::{
    fetch, request, ManagementServer, MgmtCommand, MgmtError, MgmtHandler, MgmtReply,
};
use appliance::runtime::{ApplianceHandler, Supervisor};
use appliance::worker::{Heartbeat, ReportSlot, WorkerReport};

const DNS: [&str; 3] = [
    include_str!("../../config/examples/dns/gateway.yaml"),
    include_str!("../../config/examples/dns/route.yaml"),
    include_str!("../../config/examples/dns/service.yaml"),
];

fn manifests(terminating: bool) -> String {
    let text = DNS.join("\n---\n");
    if terminating {
        text.replace(
            "conditions: {ready: true}",
            "conditions: {ready: false, serving: true, terminating: true}",
        )
    } else {
        text
    }
}

struct Links(Mutex<Vec<PortLink>>);

impl PortLinks for Links {
    fn links(&self) -> Vec<PortLink> {
        self.0.lock().expect("lock").clone()
    }
}

struct Rig {
    plane: Arc<ControlPlane>,
    links: Arc<Links>,
    heartbeats: Vec<Arc<Heartbeat>>,
    report: ReportSlot,
    supervisor: Arc<Supervisor>,
    handler: Arc<ApplianceHandler>,
}

impl Rig {
    fn new() -> Rig {
        let objects = config::load_str("dns", &manifests(false)).expect("manifests");
        let report = ReportSlot::default();
        let (plane, _) = ControlPlane::new(
            ControlParams::default(),
            Publisher::default(),
            Observed {
                reports: vec![Arc::clone(&report)],
                ..Observed::default()
            },
            &objects,
        )
        .expect("control plane");
        let plane = Arc::new(plane);
        let links = Arc::new(Links(Mutex::new(vec![
            PortLink {
                name: "edge".into(),
                up: true,
            },
            PortLink {
                name: "backends".into(),
                up: true,
            },
        ])));
        let origin = Instant::now() - Duration::from_secs(10);
        let heartbeats = vec![Heartbeat::new(origin), Heartbeat::new(origin)];
        let health = HealthCheck::new(
            Some(Arc::clone(&links) as Arc<dyn PortLinks>),
            heartbeats.clone(),
            Duration::from_millis(500),
        );
        let supervisor =
            Supervisor::new(Arc::clone(&plane), health, Duration::from_secs(30), false);
        let handler = Arc::new(ApplianceHandler::new(
            Arc::clone(&plane),
            Arc::clone(&supervisor),
        ));
        Rig {
            plane,
            links,
            heartbeats,
            report,
            supervisor,
            handler,
        }
    }

    /// Every worker polls now and runs the published tables.
    fn workers_poll(&self) {
        let generation = self.plane.tables().generation();
        for hb in &self.heartbeats {
            hb.adopted(generation);
            hb.beat(Instant::now());
        }
    }

    fn health(&self) -> (bool, Vec<String>) {
        match self.handler.handle(MgmtCommand::Health) {
            Ok(MgmtReply::Health { healthy, reasons }) => (healthy, reasons),
            other => panic!("health: {other:?}"),
        }
    }

    fn set_flows(&self, n: u64) {
        let mut r = self.report.lock().expect("lock");
        *r = WorkerReport::default();
        r.counters.flows_active = n;
    }
}

#[test]
fn healthz_is_503_with_reasons_until_ports_workers_and_config_are_right() {
    let rig = Rig::new();
    let server = ManagementServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
        Arc::clone(&rig.handler),
    )
    .expect("server");
    let addr = server.local_addr().to_string();

    // No worker has polled yet.
    assert_eq!(
        fetch(&addr, "/healthz").expect("healthz"),
        (
            503,
            "unhealthy\nworker 0: has not polled yet\nworker 1: has not polled yet\n".into()
        )
    );
    rig.workers_poll();
    assert_eq!(
        fetch(&addr, "/healthz").expect("healthz"),
        (200, "ok\n".into())
    );

    // A port link goes down.
    rig.links.0.lock().expect("lock")[1].up = false;
    assert_eq!(
        fetch(&addr, "/healthz").expect("healthz"),
        (503, "unhealthy\nport backends: link down\n".into())
    );
    rig.links.0.lock().expect("lock")[1].up = true;

    // Worker 1's last round was 2 s ago: stuck.
    rig.workers_poll();
    rig.heartbeats[1].beat(Instant::now() - Duration::from_secs(2));
    let (healthy, reasons) = rig.health();
    assert!(!healthy);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("worker 1: heartbeat 2.")
            && reasons[0].ends_with(" s old (limit 0.5 s)"),
        "{reasons:?}"
    );

    // A worker still on older tables than the published ones (past the adoption time).
    rig.workers_poll();
    rig.heartbeats[0].adopted(rig.plane.tables().generation() - 1);
    let published = rig.plane.tables().generation();
    let check = rig
        .supervisor
        .health(Instant::now() + Duration::from_secs(1));
    assert!(
        check.reasons().contains(&format!(
            "worker 0: runs tables generation {}, not the published {published}",
            published - 1
        )),
        "{:?}",
        check.reasons()
    );
    rig.workers_poll();
    assert!(rig.health().0);

    // A graceful stop reports itself.
    rig.supervisor.begin_stop();
    assert_eq!(rig.health(), (false, vec!["stopping".to_owned()]));
    drop(server);
}

#[test]
fn drain_withdraws_waits_for_flows_and_cancels_on_a_driven_clock() {
    let rig = Rig::new();
    rig.workers_poll();
    let t0 = Instant::now();
    rig.set_flows(3);
    let report = rig.supervisor.drain(t0, Some(Duration::from_secs(5)));
    assert_eq!(
        (report.state, report.flows_remaining, report.deadline_in_ms),
        ("draining", 3, Some(5000))
    );
    rig.supervisor.tick(t0 + Duration::from_secs(1), None);
    assert_eq!(
        rig.supervisor
            .drain_report(t0 + Duration::from_secs(1))
            .state,
        "draining",
        "flows left"
    );
    rig.set_flows(0);
    rig.supervisor.tick(t0 + Duration::from_secs(2), None);
    let r = rig.supervisor.drain_report(t0 + Duration::from_secs(2));
    assert_eq!(
        (r.state, r.elapsed_ms, r.ended_by),
        ("drained", Some(2000), Some("idle"))
    );
    // Through the handler: the same state, and cancel serves again.
    match rig.handler.handle(MgmtCommand::DrainStatus) {
        Ok(MgmtReply::Drain(r)) => assert_eq!(r.state, "drained"),
        other => panic!("{other:?}"),
    }
    match rig.handler.handle(MgmtCommand::Undrain) {
        Ok(MgmtReply::Drain(r)) => assert_eq!(r.state, "serving"),
        other => panic!("{other:?}"),
    }

    // With flows that never go idle the deadline ends it.
    rig.set_flows(7);
    let t1 = Instant::now();
    rig.supervisor.drain(t1, Some(Duration::from_secs(5)));
    rig.supervisor.tick(t1 + Duration::from_secs(4), None);
    assert_eq!(rig.supervisor.drain_report(t1).state, "draining");
    rig.supervisor.tick(t1 + Duration::from_secs(5), None);
    let r = rig.supervisor.drain_report(t1 + Duration::from_secs(6));
    assert_eq!(
        (r.state, r.flows_remaining, r.ended_by),
        ("drained", 7, Some("deadline"))
    );
}

#[test]
fn status_ends_with_an_appliance_document_and_metrics_show_heartbeats() {
    let rig = Rig::new();
    rig.workers_poll();
    let server = ManagementServer::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        None,
        Arc::clone(&rig.handler),
    )
    .expect("server");
    let addr = server.local_addr().to_string();
    let (code, yaml) = fetch(&addr, "/v1/status").expect("status");
    assert_eq!(code, 200);
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("YAML"))
        .collect();
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        ["GatewayClass", "Gateway", "UDPRoute", "ApplianceStatus"],
        "{yaml}"
    );
    let appliance = &docs[3]["status"];
    assert_eq!(appliance["healthy"], true);
    assert_eq!(appliance["drain"]["state"], "serving");
    assert_eq!(appliance["workers"].as_array().map(Vec::len), Some(2));
    let (code, json) = fetch(&addr, "/v1/status?format=json").expect("json");
    assert_eq!(code, 200);
    let docs: Vec<serde_json::Value> = serde_json::from_str(&json).expect("array");
    assert_eq!(docs.last().expect("docs")["kind"], "ApplianceStatus");

    let (code, metrics) = fetch(&addr, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    for line in [
        "udplb_healthy 1",
        "udplb_drain_state{state=\"serving\"} 1",
        "udplb_drain_state{state=\"draining\"} 0",
        "udplb_shared_endpoints 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    for worker in ["0", "1"] {
        let prefix = format!("udplb_worker_heartbeat_age_seconds{{worker=\"{worker}\"}} ");
        let age: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{prefix}\n{metrics}"))
            .parse()
            .expect("seconds");
        assert!((0.0..60.0).contains(&age), "{age}");
    }
    // POST /v1/drain through the real handler.
    let (code, body) = request(&addr, "POST", "/v1/drain?deadline=10s", None, None).expect("post");
    assert_eq!(code, 200);
    assert!(body.starts_with("state: draining\n"), "{body}");
    drop(server);
}

#[test]
fn the_gate_follows_ready_backends_in_compiled_tables() {
    let rig = Rig::new();
    let readiness = vip_readiness(&rig.plane.tables());
    let vips: Vec<String> = readiness.keys().map(ToString::to_string).collect();
    assert_eq!(vips, ["198.18.0.10", "2001:2::10"]);
    assert!(readiness.values().all(|r| *r), "{readiness:?}");
    assert_eq!(
        decide(true, Phase::Serving, &readiness).announced().count(),
        2
    );

    // Every endpoint terminating (draining): no listener is ready, nothing announced.
    let reply = rig.handler.handle(MgmtCommand::ApplyManifests {
        yaml: manifests(true),
        confirm_remove_all: false,
    });
    assert!(reply.is_ok(), "manifests applied");
    let readiness = vip_readiness(&rig.plane.tables());
    assert!(readiness.values().all(|r| !*r), "{readiness:?}");
    let d = decide(true, Phase::Serving, &readiness);
    assert!(d
        .vips
        .values()
        .all(|w| *w == Some(Withheld::NoReadyBackend)));
}

/// The stop closes the commit gate through the appliance's handler (the server calls
/// `close` on the handler it was given): nothing commits any more, while health and drain
/// still answer.
#[test]
fn closing_the_appliance_handler_closes_the_commit_gate() {
    let rig = Rig::new();
    rig.workers_poll();
    let generation = rig.plane.tables().generation();
    rig.handler.close();
    let reply = rig.handler.handle(MgmtCommand::ApplyManifests {
        yaml: manifests(true),
        confirm_remove_all: true,
    });
    assert!(matches!(reply, Err(MgmtError::ShuttingDown)), "{reply:?}");
    assert_eq!(
        rig.plane.tables().generation(),
        generation,
        "nothing committed"
    );
    assert_eq!(rig.health(), (true, Vec::new()));
    let now = Instant::now();
    let reply = rig.handler.handle(MgmtCommand::Drain { deadline: None });
    assert!(
        matches!(&reply, Ok(MgmtReply::Drain(r)) if r.state == "draining"),
        "{reply:?}"
    );
    assert_eq!(rig.supervisor.drain_report(now).state, "draining");
}

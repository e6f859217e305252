//! Backend health end to end (issue 12): the real udplb on a `net_tap` port with three
//! dnsmasq backends and a `UDPBackendPolicy` DNS check (200 ms interval, 100 ms timeout,
//! 3 to fail, 1 to recover). A client asks through the VIP every 25 ms over 8 flows; one
//! backend's dnsmasq is stopped, then started again. Measured: the longest time a flow
//! went unanswered, and when the last unanswered query was sent after the stop; both
//! must stay within the detection time (interval × threshold + timeout) plus slack for a
//! loaded machine. Then new flows reach the restarted backend again.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testbench::appliance::{Appliance, ApplianceOptions};
use testbench::demo::read_manifest_dir;
use testbench::manifests::{gateway_with_route, Endpoint};
use testbench::traffic::dns::DNS_PORT;
use testbench::traffic::dnswatch::{WatchConfig, WatchLog};
use testbench::{Dnsmasq, EchoServer, Topology};

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 100;
const UNHEALTHY_THRESHOLD: u64 = 3;
/// interval × unhealthy threshold + timeout.
const DETECTION_MS: u64 = INTERVAL_MS * UNHEALTHY_THRESHOLD + TIMEOUT_MS;
/// A flow asks every FLOWS × QUERY_INTERVAL_MS (200 ms): its first answered query after
/// the switch comes up to that late; plus slack for two busy cores.
const SLACK_MS: u64 = FLOWS as u64 * QUERY_INTERVAL_MS + 1000;
const FLOWS: u32 = 8;
const QUERY_INTERVAL_MS: u64 = 25;

const POLICY: &str = "---
apiVersion: udplb.io/v1alpha1
kind: UDPBackendPolicy
metadata: {name: dns-health, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: dns}]
  healthCheck:
    active:
      type: DNS
      interval: 200ms
      timeout: 100ms
      unhealthyThreshold: 3
      healthyThreshold: 1
      dns: {name: whoami.test, type: TXT}
";

/// Passive only: three ICMP unreachable in a row eject for 2 s, half may be ejected.
const PASSIVE_POLICY: &str = "---
apiVersion: udplb.io/v1alpha1
kind: UDPBackendPolicy
metadata: {name: dns-passive, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: dns}]
  healthCheck:
    passive: {consecutiveFailures: 3, baseEjectionTime: 2s, maxEjectionPercent: 50}
";

fn manifests(policy: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/dns");
    let mut m = read_manifest_dir(dir.as_ref()).expect("config/examples/dns");
    if !m.ends_with('\n') {
        m.push('\n');
    }
    m.push_str(policy);
    m
}

/// Runs the main flows for a second and returns the index and name of the backend that
/// answered most of them.
fn busiest_backend(topo: &Topology) -> (usize, String) {
    let warm = common::tools()
        .spawn_dns_watch(
            topo.client(0).ns(),
            &watch(topo, 23000, FLOWS, 1000),
            &topo.log_path("watch-warm.log"),
        )
        .expect("dns-watch starts")
        .finish()
        .expect("dns-watch runs");
    let by_backend = warm.answers_by_backend(0);
    let name = by_backend
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(b, _)| b.clone())
        .expect("answers");
    let index = (0..3)
        .find(|&i| topo.backend(i).name() == name)
        .expect("a backend");
    (index, name)
}

fn watch(topo: &Topology, first_port: u16, flows: u32, duration_ms: u64) -> WatchConfig {
    WatchConfig {
        target: SocketAddr::new(topo.addressing().vip_v4.into(), DNS_PORT),
        source: topo.client(0).ipv4().into(),
        flows,
        first_port: Some(first_port),
        interval_ms: QUERY_INTERVAL_MS,
        timeout_ms: 1000,
        duration_ms,
    }
}

/// Polls `cond` every 50 ms for at most `within`; returns how long it took.
fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if cond() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn endpoint_metric(name: &str, endpoint: &str) -> String {
    format!("{name}{{namespace=\"default\",service=\"dns\",port=\"53\",endpoint=\"{endpoint}\"}}")
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap), dnsmasq"]
fn a_stopped_dnsmasq_is_avoided_within_the_detection_time_and_takes_flows_once_restarted() {
    let topo = Topology::builder()
        .clients(1)
        .backends(3)
        .build()
        .expect("topology builds");
    let mut dns: Vec<Option<Dnsmasq>> = Dnsmasq::start_on_backends(&topo, DNS_PORT)
        .expect("dnsmasq starts")
        .into_iter()
        .map(Some)
        .collect();
    let app =
        Appliance::start(&topo, &ApplianceOptions::new(manifests(POLICY))).expect("udplb starts");
    let tools = common::tools();
    let client = topo.client(0);

    // Every endpoint (3 IPv4, 3 IPv6) passes probes sent by the appliance itself.
    let passed = wait_for(Duration::from_secs(15), || {
        app.metric("udplb_health_probe_results_total{result=\"passed\"}")
            .unwrap_or(0)
            >= 18
    });
    let (_, status) = app.get("/v1/status").expect("status");
    assert!(passed.is_some(), "probes do not pass:\n{status}");
    assert!(status.contains("kind: BackendHealthStatus"), "{status}");
    let (code, json) = app.get("/v1/status?format=json").expect("status as JSON");
    assert_eq!(code, 200, "{json}");
    let docs: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let health = docs
        .as_array()
        .and_then(|d| d.iter().find(|d| d["kind"] == "BackendHealthStatus"))
        .expect("the health document");
    let endpoints = health["status"]["services"][0]["endpoints"]
        .as_array()
        .expect("endpoints");
    assert_eq!(endpoints.len(), 6, "{json}");
    // Both families probed through the port and answered.
    for e in endpoints {
        assert_eq!(
            e["active"]["lastResult"]["passed"], true,
            "{}: {json}",
            e["endpoint"]
        );
    }
    assert_eq!(status.matches("state: Healthy").count(), 6, "{status}");
    // The probes came from the appliance's own address, not the SNAT address.
    let own = topo.addressing().backend_gateway_v4.addr.to_string();
    let seen = dns[0].as_ref().map(Dnsmasq::log).unwrap_or_default();
    assert!(
        seen.contains(&format!("from {own}")),
        "{own} not in\n{seen}"
    );

    // Warm-up with the flows of the main run: which backend serves the most of them?
    let (victim, victim_name) = busiest_backend(&topo);
    let victim_ep = format!("{}:{DNS_PORT}", topo.backend(victim).ipv4());

    // The main run: stop the victim 2 s in, start it again 5 s in.
    let run = tools
        .spawn_dns_watch(
            client.ns(),
            &watch(&topo, 23000, FLOWS, 8000),
            &topo.log_path("watch.log"),
        )
        .expect("dns-watch starts");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(2000));
    dns[victim] = None;
    let stop_ms = u64::try_from(started.elapsed().as_millis()).expect("ms");
    let excluded = wait_for(Duration::from_secs(5), || {
        app.metric(&endpoint_metric("udplb_backend_excluded", &victim_ep))
            .unwrap_or(0)
            == 1
    });
    let (_, outage_status) = app.get("/v1/status").expect("status");
    std::thread::sleep(Duration::from_millis(5000).saturating_sub(started.elapsed()));
    let restarted = Instant::now();
    dns[victim] = Some(
        Dnsmasq::start(
            topo.backend(victim),
            DNS_PORT,
            &topo.log_path("dnsmasq-restarted.log"),
        )
        .expect("dnsmasq restarts"),
    );
    let recovered = wait_for(Duration::from_secs(5), || {
        app.metric(&endpoint_metric("udplb_backend_healthy", &victim_ep))
            .unwrap_or(0)
            == 1
    });
    let log: WatchLog = run.finish().expect("dns-watch runs");

    assert!(
        excluded.is_some(),
        "{victim_ep} never excluded:\n{outage_status}"
    );
    assert!(
        outage_status.contains("state: Unhealthy"),
        "{outage_status}"
    );
    let (longest, run_start) = log
        .longest_unanswered()
        .expect("the stop cost some queries");
    let last_unanswered = log.last_unanswered_ms().expect("unanswered queries");
    let avoided_after = last_unanswered.saturating_sub(stop_ms);
    let restart_ms = u64::try_from(restarted.duration_since(started).as_millis()).expect("ms");
    println!(
        "HEALTH stopped {victim_name} at {stop_ms} ms; longest unanswered {longest} ms (from \
         {run_start} ms); last unanswered query sent {avoided_after} ms after the stop; \
         excluded (metric seen) after {:?}; healthy again {:?} after the restart at \
         {restart_ms} ms; detection bound {DETECTION_MS} ms + {SLACK_MS} ms slack; {} \
         queries, {} unanswered",
        excluded.expect("checked"),
        recovered,
        log.queries.len(),
        log.queries.iter().filter(|q| q.rtt_ms.is_none()).count()
    );
    assert!(
        run_start + 100 >= stop_ms,
        "queries went unanswered before the stop (from {run_start} ms, stop at {stop_ms} ms)"
    );
    assert!(
        longest <= DETECTION_MS + SLACK_MS,
        "a flow went {longest} ms without an answer (bound {DETECTION_MS} + {SLACK_MS} ms)"
    );
    assert!(
        avoided_after <= DETECTION_MS + SLACK_MS,
        "queries still unanswered {avoided_after} ms after the stop"
    );
    assert!(
        recovered.is_some(),
        "{victim_ep} not healthy after the restart"
    );

    // New flows (other source ports) reach the restarted backend again.
    let fresh = tools
        .spawn_dns_watch(
            client.ns(),
            &watch(&topo, 24000, 24, 1500),
            &topo.log_path("watch-fresh.log"),
        )
        .expect("dns-watch starts")
        .finish()
        .expect("dns-watch runs");
    let answers = fresh.answers_by_backend(0);
    assert!(
        answers.get(&victim_name).copied().unwrap_or(0) > 0,
        "{victim_name} takes no new flows: {answers:?}"
    );
    assert!(
        fresh.queries.iter().all(|q| q.rtt_ms.is_some()),
        "unanswered queries after recovery"
    );
    let (status, text) = app.stop().expect("udplb stops");
    assert!(status.success(), "udplb exit {status:?}:\n{text}");
    assert!(text.contains("0 mbufs outstanding"), "{text}");
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap), dnsmasq"]
fn passive_ejection_on_icmp_unreachable_moves_the_flows_of_a_stopped_dnsmasq() {
    let topo = Topology::builder()
        .clients(1)
        .backends(3)
        .build()
        .expect("topology builds");
    let mut dns: Vec<Option<Dnsmasq>> = Dnsmasq::start_on_backends(&topo, DNS_PORT)
        .expect("dnsmasq starts")
        .into_iter()
        .map(Some)
        .collect();
    let app = Appliance::start(&topo, &ApplianceOptions::new(manifests(PASSIVE_POLICY)))
        .expect("udplb starts");
    let (victim, victim_name) = busiest_backend(&topo);
    let victim_ep = format!("{}:{DNS_PORT}", topo.backend(victim).ipv4());
    let run = common::tools()
        .spawn_dns_watch(
            topo.client(0).ns(),
            &watch(&topo, 23000, FLOWS, 4000),
            &topo.log_path("watch.log"),
        )
        .expect("dns-watch starts");
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    dns[victim] = None;
    let stop_ms = u64::try_from(started.elapsed().as_millis()).expect("ms");
    let ejected = wait_for(Duration::from_secs(3), || {
        app.metric(&endpoint_metric("udplb_backend_excluded", &victim_ep))
            .unwrap_or(0)
            == 1
    });
    let (_, status) = app.get("/v1/status").expect("status");
    let log = run.finish().expect("dns-watch runs");
    let ejections = app.metric("udplb_health_ejections_total").expect("metrics");
    let (longest, run_start) = log
        .longest_unanswered()
        .expect("the stop cost some queries");
    let after = log
        .last_unanswered_ms()
        .expect("unanswered")
        .saturating_sub(stop_ms);
    println!(
        "HEALTH passive: stopped {victim_name} at {stop_ms} ms; ejected (metric seen) after \
         {ejected:?}; longest unanswered {longest} ms (from {run_start} ms); last unanswered \
         query sent {after} ms after the stop; {ejections} ejection(s)"
    );
    assert!(ejected.is_some(), "{victim_ep} never ejected:\n{status}");
    assert!(status.contains("ejected: true"), "{status}");
    assert!(ejections >= 1);
    // Three errors in a row, seen at the next 200 ms sample, then each flow's next query
    // (every 200 ms) moves; slack for a loaded machine.
    let bound = 200 + 200 + FLOWS as u64 * QUERY_INTERVAL_MS + 1000;
    assert!(
        longest <= bound && after <= bound,
        "unanswered for {longest} ms, until {after} ms after the stop (bound {bound} ms)"
    );
    let (code, text) = app.stop().expect("udplb stops");
    assert!(code.success(), "udplb exit {code:?}:\n{text}");
}

/// The UDP check on our echo servers: it answers `ECHO <name> ...`.
const UDP_POLICY: &str = "---
apiVersion: udplb.io/v1alpha1
kind: UDPBackendPolicy
metadata: {name: echo-health, namespace: default}
spec:
  targetRefs: [{group: \"\", kind: Service, name: echo}]
  healthCheck:
    active:
      type: UDP
      interval: 200ms
      timeout: 100ms
      unhealthyThreshold: 2
      healthyThreshold: 1
      udp:
        send: {text: \"health?\"}
        expect: {match: Prefix, text: \"ECHO \"}
    panicThreshold: 75
";

/// The `lastResult.reason` of `endpoint` in the JSON status.
fn last_reason(app: &Appliance<'_>, endpoint: &str) -> Option<String> {
    let (_, json) = app.get("/v1/status?format=json").ok()?;
    let docs: serde_json::Value = serde_json::from_str(&json).ok()?;
    let health = docs
        .as_array()?
        .iter()
        .find(|d| d["kind"] == "BackendHealthStatus")?;
    let e = health["status"]["services"][0]["endpoints"]
        .as_array()?
        .iter()
        .find(|e| e["endpoint"] == endpoint)?;
    e["active"]["lastResult"]["reason"]
        .as_str()
        .map(str::to_owned)
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap)"]
fn udp_checks_pass_on_a_matching_reply_and_fail_on_icmp_unreachable_or_silence() {
    const PORT: u16 = 7777;
    let topo = Topology::builder()
        .clients(1)
        .backends(2)
        .build()
        .expect("topology builds");
    let tools = common::tools();
    let mut echo: Vec<Option<EchoServer>> = common::echo_on_all(&topo, &tools, PORT, false)
        .into_iter()
        .map(Some)
        .collect();
    let vips = [
        topo.addressing().vip_v4.into(),
        topo.addressing().vip_v6.into(),
    ];
    let endpoints: Vec<Endpoint> = (0..2)
        .flat_map(|i| Endpoint::both_of(topo.backend(i)))
        .collect();
    let mut m = gateway_with_route(
        "echo",
        &vips,
        &[("echo", PORT)],
        &[],
        PORT,
        &[("echo", 1, endpoints)],
    );
    m.push('\n');
    m.push_str(UDP_POLICY);
    let app = Appliance::start(&topo, &ApplianceOptions::new(m)).expect("udplb starts");
    let b0 = format!("{}:{PORT}", topo.backend(0).ipv4());
    let b1 = format!("{}:{PORT}", topo.backend(1).ipv4());
    let answered = wait_for(Duration::from_secs(10), || {
        [&b0, &b1]
            .iter()
            .all(|e| last_reason(&app, e).as_deref() == Some("answered"))
    });
    assert!(answered.is_some(), "{:?}", app.get("/v1/status"));
    // The echo server saw the probes from the appliance's own address and a source
    // port outside the SNAT pool.
    let stats = tools
        .echo_stats(
            topo.backend(0).ns(),
            SocketAddr::new(topo.backend(0).ipv4().into(), PORT),
        )
        .expect("stats");
    let own: std::net::IpAddr = topo.addressing().backend_gateway_v4.addr;
    assert!(
        stats.peers.keys().any(|p| p.ip() == own && p.port() < 1024),
        "{stats:?}"
    );

    // Stopped: the port answers with ICMP port unreachable.
    echo[0] = None;
    let excluded = |app: &Appliance<'_>| {
        app.metric(&format!(
            "udplb_backend_excluded{{namespace=\"default\",service=\"echo\",port=\"{PORT}\",endpoint=\"{b0}\"}}"
        ))
        .unwrap_or(0)
            == 1
    };
    assert!(wait_for(Duration::from_secs(5), || excluded(&app)).is_some());
    assert_eq!(
        last_reason(&app, &b0).as_deref(),
        Some("ICMP port unreachable")
    );
    // Silent (a sink that never replies): the probes time out.
    echo[0] = Some(
        tools
            .start_echo(topo.backend(0), PORT, true, &topo.log_path("echo-sink.log"))
            .expect("sink starts"),
    );
    let timed_out = wait_for(Duration::from_secs(5), || {
        last_reason(&app, &b0).as_deref() == Some("no answer within 100ms")
    });
    assert!(timed_out.is_some(), "{:?}", last_reason(&app, &b0));
    assert!(excluded(&app));
    // Answering again: healthy after one pass.
    echo[0] = None;
    echo[0] = Some(
        tools
            .start_echo(
                topo.backend(0),
                PORT,
                false,
                &topo.log_path("echo-again.log"),
            )
            .expect("echo starts"),
    );
    assert!(wait_for(Duration::from_secs(5), || !excluded(&app)).is_some());
    assert_eq!(last_reason(&app, &b1).as_deref(), Some("answered"));
    let (code, text) = app.stop().expect("udplb stops");
    assert!(code.success(), "udplb exit {code:?}:\n{text}");
}

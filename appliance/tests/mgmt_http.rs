//! The management HTTP API against a fake `MgmtHandler`: every route, status code, the token,
//! body limits, framing, and a clean shutdown. One test puts the real control plane
//! behind it (its I/O injected, no DPDK) to check what `GET /v1/status` reports.

#![allow(clippy::tests_outside_test_module)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use appliance::control::{ControlParams, ControlPlane, Observed, Publisher};
use appliance::mgmt::{
    fetch, request, ManagementServer, MgmtCommand, MgmtError, MgmtHandler, MgmtReply,
    MAX_BODY_BYTES,
};

/// Accepts manifests that contain `kind:` and no `invalid`; keeps the last accepted set.
#[derive(Default)]
struct FakeControl {
    applied: Mutex<Vec<String>>,
    unhealthy: AtomicBool,
    /// Drain commands received, as `Debug` text.
    drains: Mutex<Vec<String>>,
}

impl FakeControl {
    fn generation(&self) -> usize {
        self.applied.lock().expect("lock").len()
    }
}

/// The fake's refusal: its problem lines.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
struct FakeProblems(Vec<String>);

impl MgmtHandler for FakeControl {
    type Refusal = FakeProblems;

    fn handle(&self, command: MgmtCommand) -> Result<MgmtReply, MgmtError<FakeProblems>> {
        match command {
            MgmtCommand::ApplyManifests { yaml, .. } => {
                if !yaml.contains("kind:") || yaml.contains("invalid") {
                    return Err(MgmtError::Refused(FakeProblems(vec![
                        "UDPRoute default/dns: spec.rules[0].backendRefs[0].port: required".into(),
                        format!("({} bytes)", yaml.len()),
                    ])));
                }
                let mut applied = self.applied.lock().expect("lock");
                applied.push(yaml.clone());
                Ok(MgmtReply::Applied {
                    status_yaml: format!("generation: {}\nbytes: {}\n", applied.len(), yaml.len()),
                })
            }
            MgmtCommand::Status => Ok(MgmtReply::Status {
                yaml: format!(
                    "generation: {}\ngateways:\n- name: gw\n  programmed: true\n",
                    self.generation()
                ),
            }),
            MgmtCommand::Metrics(format) => Ok(MgmtReply::Metrics {
                format,
                body: format!(
                    "# HELP udplb_config_generation Generation.\n# TYPE udplb_config_generation gauge\nudplb_config_generation {}\n",
                    self.generation()
                ),
            }),
            MgmtCommand::Health => {
                let unhealthy = self.unhealthy.load(Ordering::SeqCst);
                Ok(MgmtReply::Health {
                    healthy: !unhealthy,
                    reasons: if unhealthy {
                        vec![
                            "port edge: link down".into(),
                            "worker 1: heartbeat 2.3 s old (limit 0.5 s)".into(),
                        ]
                    } else {
                        Vec::new()
                    },
                })
            }
            c @ (MgmtCommand::Drain { .. } | MgmtCommand::Undrain | MgmtCommand::DrainStatus) => {
                self.drains.lock().expect("lock").push(format!("{c:?}"));
                Ok(MgmtReply::Drain(appliance::drain::DrainReport {
                    state: if matches!(c, MgmtCommand::Undrain) {
                        "serving"
                    } else {
                        "draining"
                    },
                    flows_remaining: 2,
                    elapsed_ms: None,
                    deadline_in_ms: None,
                    ended_by: None,
                }))
            }
            command @ (MgmtCommand::Reload(_) | MgmtCommand::UseFiles { .. }) => Err(MgmtError::Unsupported {
                command: command.name(),
            }),
        }
    }
}

struct Api {
    server: Option<ManagementServer>,
    control: Arc<FakeControl>,
    addr: String,
}

impl Api {
    fn start(token: Option<&str>) -> Api {
        let control = Arc::new(FakeControl::default());
        let server = ManagementServer::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            token.map(str::to_owned),
            Arc::clone(&control),
        )
        .expect("start server");
        let addr = server.local_addr().to_string();
        Api {
            server: Some(server),
            control,
            addr,
        }
    }

    /// Sends raw bytes and returns the whole raw response.
    fn raw(&self, bytes: &[u8]) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(bytes).expect("send");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        String::from_utf8_lossy(&response).into_owned()
    }

    /// Sends `head`, then `filler` bytes of body from another thread (ignoring write
    /// errors: the server may answer and close before the end), and returns the response.
    fn raw_streaming(&self, head: &[u8], filler: usize) -> String {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(head).expect("send");
        let mut writer = stream.try_clone().expect("clone");
        let sender = std::thread::spawn(move || {
            let chunk = vec![b'x'; 64 << 10];
            let mut left = filler;
            while left > 0 {
                let n = left.min(chunk.len());
                if writer.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
        });
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let _ = sender.join();
        String::from_utf8_lossy(&response).into_owned()
    }

    fn put(&self, body: &str, token: Option<&str>) -> (u16, String) {
        request(
            &self.addr,
            "PUT",
            "/v1/manifests",
            Some(body.as_bytes()),
            token,
        )
        .expect("PUT")
    }
}

const MANIFESTS: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n";

#[test]
fn put_manifests_applies_and_answers_status_yaml() {
    let api = Api::start(None);
    let (code, body) = api.put(MANIFESTS, None);
    assert_eq!(code, 200);
    assert_eq!(body, format!("generation: 1\nbytes: {}\n", MANIFESTS.len()));
    assert_eq!(*api.control.applied.lock().expect("lock"), [MANIFESTS]);
    let raw = api.raw(
        format!(
            "PUT /v1/manifests HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{MANIFESTS}",
            MANIFESTS.len()
        )
        .as_bytes(),
    );
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(
        raw.contains("\r\nContent-Type: application/yaml\r\n"),
        "{raw}"
    );
    assert!(
        raw.ends_with(&format!("generation: 2\nbytes: {}\n", MANIFESTS.len())),
        "{raw}"
    );
}

#[test]
fn rejected_manifests_get_422_with_the_errors_and_change_nothing() {
    let api = Api::start(None);
    api.put(MANIFESTS, None);
    let (code, body) = api.put("kind: UDPRoute # invalid\n", None);
    assert_eq!(code, 422);
    assert_eq!(
        body,
        "UDPRoute default/dns: spec.rules[0].backendRefs[0].port: required\n(25 bytes)\n"
    );
    assert_eq!(api.control.generation(), 1);
    let (code, status) = fetch(&api.addr, "/v1/status").expect("status");
    assert_eq!(code, 200);
    assert!(status.starts_with("generation: 1\n"), "{status}");
}

#[test]
fn bearer_token_guards_only_mutating_calls() {
    let api = Api::start(Some("s3cret"));
    let (code, body) = api.put(MANIFESTS, None);
    assert_eq!(
        (code, body.as_str()),
        (401, "a valid bearer token is required\n")
    );
    assert_eq!(api.put(MANIFESTS, Some("s3cre")).0, 401);
    assert_eq!(api.put(MANIFESTS, Some("s3cret-and-more")).0, 401);
    assert_eq!(api.control.generation(), 0, "no apply without the token");
    let raw = api.raw(b"PUT /v1/manifests HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{raw}");
    assert!(raw.contains("\r\nWWW-Authenticate: Bearer\r\n"), "{raw}");

    assert_eq!(api.put(MANIFESTS, Some("s3cret")).0, 200);
    assert_eq!(api.control.generation(), 1);
    assert_eq!(fetch(&api.addr, "/v1/status").expect("status").0, 200);
    assert_eq!(fetch(&api.addr, "/metrics").expect("metrics").0, 200);
}

#[test]
fn status_as_yaml_and_json() {
    let api = Api::start(None);
    let (code, yaml) = fetch(&api.addr, "/v1/status").expect("status");
    assert_eq!(code, 200);
    assert_eq!(
        yaml,
        "generation: 0\ngateways:\n- name: gw\n  programmed: true\n"
    );
    let (code, json) = fetch(&api.addr, "/v1/status?format=json").expect("json");
    assert_eq!(code, 200);
    let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        value,
        serde_json::json!([{"generation": 0, "gateways": [{"name": "gw", "programmed": true}]}])
    );
    let raw = api.raw(b"GET /v1/status?format=json HTTP/1.1\r\n\r\n");
    assert!(
        raw.contains("\r\nContent-Type: application/json\r\n"),
        "{raw}"
    );
    let (code, body) = fetch(&api.addr, "/v1/status?format=xml").expect("xml");
    assert_eq!(
        (code, body.as_str()),
        (400, "format \"xml\": use yaml or json\n")
    );
}

#[test]
fn metrics_are_prometheus_text() {
    let api = Api::start(None);
    let raw = api.raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(
        raw.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{raw}"
    );
    assert!(raw.ends_with("\r\n\r\n# HELP udplb_config_generation Generation.\n# TYPE udplb_config_generation gauge\nudplb_config_generation 0\n"), "{raw}");
    // HEAD answers the same head without a body.
    let head = api.raw(b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
}

#[test]
fn metrics_are_openmetrics_when_the_scraper_asks() {
    let api = Api::start(None);
    let raw = api.raw(
        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,\
          text/plain;version=0.0.4;q=0.5\r\n\r\n",
    );
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert!(
        raw.contains(
            "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
        ),
        "{raw}"
    );
}

#[test]
fn healthz_follows_control() {
    let api = Api::start(None);
    assert_eq!(
        fetch(&api.addr, "/healthz").expect("healthz"),
        (200, "ok\n".into())
    );
    api.control.unhealthy.store(true, Ordering::SeqCst);
    assert_eq!(
        fetch(&api.addr, "/healthz").expect("healthz"),
        (
            503,
            "unhealthy\nport edge: link down\nworker 1: heartbeat 2.3 s old (limit 0.5 s)\n".into()
        )
    );
}

#[test]
fn drain_routes_need_the_token_to_change_anything_and_parse_the_deadline() {
    let api = Api::start(Some("s3cret"));
    // Reading the state needs no token.
    assert_eq!(
        fetch(&api.addr, "/v1/drain").expect("get"),
        (200, "state: draining\nflows_remaining: 2\n".into())
    );
    // Starting and cancelling do.
    for method in ["POST", "DELETE"] {
        let (code, body) = request(&api.addr, method, "/v1/drain", None, None).expect("call");
        assert_eq!(
            (code, body.as_str()),
            (401, "a valid bearer token is required\n")
        );
        assert_eq!(
            request(&api.addr, method, "/v1/drain", None, Some("nope"))
                .expect("call")
                .0,
            401
        );
    }
    let call = |method: &str, path: &str| {
        request(&api.addr, method, path, None, Some("s3cret")).expect("call")
    };
    assert_eq!(call("POST", "/v1/drain").0, 200);
    assert_eq!(call("POST", "/v1/drain?deadline=45s").0, 200);
    assert_eq!(call("POST", "/v1/drain?deadline=1500ms").0, 200);
    let (code, body) = call("POST", "/v1/drain?deadline=soon");
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with("deadline: "), "{body}");
    let (code, body) = call("POST", "/v1/drain?deadline=25h");
    assert_eq!(
        (code, body.as_str()),
        (400, "deadline 25h is out of range (0s to 24h)\n")
    );
    assert_eq!(
        call("DELETE", "/v1/drain"),
        (200, "state: serving\nflows_remaining: 2\n".into())
    );
    let raw = api.raw(b"PUT /v1/drain HTTP/1.1\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 405 "), "{raw}");
    assert!(
        raw.contains("\r\nAllow: GET, HEAD, POST, DELETE\r\n"),
        "{raw}"
    );
    assert_eq!(
        *api.control.drains.lock().expect("lock"),
        [
            "DrainStatus",
            "Drain { deadline: None }",
            "Drain { deadline: Some(45s) }",
            "Drain { deadline: Some(1.5s) }",
            "Undrain",
        ]
    );
}

#[test]
fn unknown_paths_404_and_wrong_methods_405() {
    let api = Api::start(None);
    assert_eq!(fetch(&api.addr, "/v2/status").expect("get").0, 404);
    assert_eq!(fetch(&api.addr, "/").expect("get").0, 404);
    let raw = api.raw(b"GET /v1/manifests HTTP/1.1\r\n\r\n");
    assert!(
        raw.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{raw}"
    );
    assert!(raw.contains("\r\nAllow: PUT\r\n"), "{raw}");
    let raw = api.raw(b"DELETE /v1/status HTTP/1.1\r\n\r\n");
    assert!(raw.starts_with("HTTP/1.1 405 "), "{raw}");
    assert!(raw.contains("\r\nAllow: GET, HEAD\r\n"), "{raw}");
    let (code, _) = request(&api.addr, "POST", "/metrics", Some(b"x"), None).expect("post");
    assert_eq!(code, 405);
}

#[test]
fn oversize_bodies_get_413_before_being_read() {
    let api = Api::start(None);
    let raw = api.raw(
        format!(
            "PUT /v1/manifests HTTP/1.1\r\nContent-Length: {}\r\n\r\nkind: x\n",
            MAX_BODY_BYTES + 1
        )
        .as_bytes(),
    );
    assert!(raw.starts_with("HTTP/1.1 413 "), "{raw}");
    assert!(
        raw.ends_with("request body exceeds the limit of 16777216 bytes\n"),
        "{raw}"
    );
    // Chunked bodies are bounded as they arrive: the chunk's bytes are counted as they
    // come (hyper decodes the chunks), so the harness sends them.
    let big_chunk = format!(
        "PUT /v1/manifests HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        MAX_BODY_BYTES + 1
    );
    let raw = api.raw_streaming(big_chunk.as_bytes(), MAX_BODY_BYTES + 1);
    assert!(raw.starts_with("HTTP/1.1 413 "), "{raw}");
    assert_eq!(api.control.generation(), 0);
}

#[test]
fn chunked_bodies_and_expect_continue_are_understood() {
    let api = Api::start(None);
    let raw = api.raw(
        b"PUT /v1/manifests HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          6\r\nkind: \r\n8\r\nGateway\n\r\n0\r\n\r\n",
    );
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
    assert_eq!(
        *api.control.applied.lock().expect("lock"),
        ["kind: Gateway\n"]
    );

    // Like curl with a large body: headers, wait for 100 Continue, then the body.
    let mut stream = TcpStream::connect(&api.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            b"PUT /v1/manifests HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 14\r\n\r\n",
        )
        .expect("head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("100 Continue");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"kind: Service\n").expect("body");
    let mut rest = String::new();
    let _ = stream.read_to_string(&mut rest);
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert_eq!(api.control.generation(), 2);
}

#[test]
fn malformed_requests_get_4xx() {
    let api = Api::start(None);
    for (request, status) in [
        (&b"GARBAGE\r\n\r\n"[..], "400"),
        (b"GET /metrics HTTP/2.0\r\n\r\n", "505"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505"),
        (b"GET metrics HTTP/1.1\r\n\r\n", "400"),
        (b"PUT /v1/manifests HTTP/1.1\r\n\r\n", "411"),
        (
            b"PUT /v1/manifests HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            "501",
        ),
        (
            b"PUT /v1/manifests HTTP/1.1\r\nContent-Length: 2\r\n\r\n\xff\xfe",
            "400",
        ),
    ] {
        let raw = api.raw(request);
        assert!(
            raw.starts_with(&format!("HTTP/1.1 {status} ")),
            "{} -> {raw}",
            String::from_utf8_lossy(request)
        );
    }
    let huge_header = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert!(api.raw(huge_header.as_bytes()).starts_with("HTTP/1.1 431 "));
    assert_eq!(api.control.generation(), 0);
}

#[test]
fn a_silent_client_does_not_block_others_and_shutdown_is_clean() {
    let mut api = Api::start(None);
    // Half a request, then silence: its thread waits on the read timeout.
    let mut idle = TcpStream::connect(&api.addr).expect("connect");
    idle.write_all(b"GET /metr").expect("send");
    assert_eq!(fetch(&api.addr, "/healthz").expect("healthz").0, 200);

    let server = api.server.take().expect("server");
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        server.shutdown();
        let _ = done_tx.send(());
    });
    // Generous bound: shutdown must not wait for the idle client's 10 s head timeout.
    done_rx
        .recv_timeout(Duration::from_secs(8))
        .expect("shutdown finished despite the idle connection");
    assert!(
        TcpStream::connect(&api.addr).is_err(),
        "the port is closed after shutdown"
    );
    // The idle client sees its connection closed.
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    match idle.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "no answer to half a request"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn bind_errors_name_the_address() {
    let api = Api::start(None);
    let addr: SocketAddr = api.addr.parse().expect("addr");
    let err = ManagementServer::start(addr, None, Arc::new(FakeControl::default()))
        .err()
        .expect("second bind fails");
    assert!(
        err.to_string()
            .starts_with(&format!("management.listen: cannot listen on {addr}: ")),
        "{err}"
    );
}

#[test]
fn client_reports_unreachable_api() {
    // Bind then drop to find a port with (very likely) no listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("ephemeral port")
        .port();
    let err = fetch(&format!("127.0.0.1:{port}"), "/healthz").expect_err("nothing listens");
    assert!(
        err.to_string()
            .starts_with(&format!("management API at 127.0.0.1:{port}: ")),
        "{err}"
    );
}

const ONE_CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: udplb, generation: 3}
spec: {controllerName: udplb.io/appliance}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.0.10}]
  listeners: [{name: dns, port: 53, protocol: UDP}]
";

/// `(name, Accepted status and reason, supportedFeatures)` of each GatewayClass document.
fn classes(docs: &[serde_json::Value]) -> Vec<(String, String, Vec<String>)> {
    docs.iter()
        .filter(|d| d["kind"] == "GatewayClass")
        .map(|d| {
            let accepted = d["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Accepted"))
                .map(|c| format!("{}/{}", c["status"], c["reason"]).replace('"', ""))
                .unwrap_or_default();
            let features = d["status"]["supportedFeatures"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|f| f["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (
                d["metadata"]["name"].as_str().unwrap_or("").to_owned(),
                accepted,
                features,
            )
        })
        .collect()
}

#[test]
fn status_reports_the_gateway_classes_of_the_running_configuration() {
    let objects = config::load_str("initial", ONE_CLASS).expect("valid manifests");
    let (plane, _tables) = ControlPlane::new(
        ControlParams::default(),
        Publisher::default(),
        Observed::default(),
        &objects,
    )
    .expect("control plane");
    let server =
        ManagementServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), None, Arc::new(plane))
            .expect("start server");
    let addr = server.local_addr().to_string();
    let features = vec![
        "Gateway".to_owned(),
        "ReferenceGrant".into(),
        "UDPRoute".into(),
    ];

    // YAML: the class document comes first, cluster-scoped, with its generation.
    let (code, yaml) = fetch(&addr, "/v1/status").expect("status");
    assert_eq!(code, 200);
    assert!(
        yaml.starts_with(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n  name: udplb\nstatus:\n"
        ),
        "{yaml}"
    );
    let docs: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("status is YAML"))
        .collect();
    assert_eq!(
        classes(&docs),
        [(
            "udplb".to_owned(),
            "True/Accepted".to_owned(),
            features.clone()
        )]
    );
    let conditions = docs[0]["status"]["conditions"]
        .as_array()
        .expect("conditions");
    assert!(conditions.iter().all(|c| c["observedGeneration"] == 3));
    assert_eq!(conditions[1]["type"], "SupportedVersion");
    assert_eq!(conditions[1]["status"], "Unknown");

    // A PUT that adds an unused class and one with parameters: all three reported, in
    // the PUT's answer and in JSON.
    let more = format!(
        "{ONE_CLASS}---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: spare}}
spec: {{controllerName: udplb.io/appliance}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tuned}}
spec:
  controllerName: udplb.io/appliance
  parametersRef: {{group: example.com, kind: Tuning, name: fast}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: theirs}}
spec: {{controllerName: example.com/other}}
"
    );
    let (code, answer) =
        request(&addr, "PUT", "/v1/manifests", Some(more.as_bytes()), None).expect("PUT");
    assert_eq!(code, 200, "{answer}");
    let (code, json) = fetch(&addr, "/v1/status?format=json").expect("json");
    assert_eq!(code, 200);
    let docs: Vec<serde_json::Value> = serde_json::from_str(&json).expect("JSON array");
    let want = [
        (
            "spare".to_owned(),
            "True/Accepted".to_owned(),
            features.clone(),
        ),
        (
            "tuned".to_owned(),
            "False/InvalidParameters".to_owned(),
            Vec::new(),
        ),
        ("udplb".to_owned(), "True/Accepted".to_owned(), features),
    ];
    assert_eq!(classes(&docs), want);
    let answered: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&answer)
        .map(|d| serde::Deserialize::deserialize(d).expect("answer is YAML"))
        .collect();
    assert_eq!(classes(&answered), want);
    server.shutdown();
}

/// The real control plane behind the API, started with `objects`.
fn real_plane(objects: &config::ObjectSet) -> ManagementServer {
    let (plane, _tables) = ControlPlane::new(
        ControlParams::default(),
        Publisher::default(),
        Observed::default(),
        objects,
    )
    .expect("control plane");
    ManagementServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), None, Arc::new(plane))
        .expect("start server")
}

#[test]
fn the_real_plane_serves_both_exposition_formats() {
    let objects = config::load_str("initial", ONE_CLASS).expect("valid manifests");
    let server = real_plane(&objects);
    let addr = server.local_addr().to_string();
    let get = |accept: &str| {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(format!("GET /metrics HTTP/1.1\r\n{accept}\r\n").as_bytes())
            .expect("send");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response
    };
    let text = get("");
    assert!(
        text.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{text}"
    );
    assert!(text.contains("\nudplb_config_generation 1\n"), "{text}");
    assert!(
        text.contains("# TYPE udplb_rx_bytes_total counter\n"),
        "{text}"
    );
    assert!(!text.contains("# EOF"), "{text}");
    let open = get("Accept: application/openmetrics-text;version=1.0.0\r\n");
    assert!(
        open.contains(
            "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
        ),
        "{open}"
    );
    assert!(open.contains("# UNIT udplb_rx_bytes bytes\n"), "{open}");
    assert!(open.ends_with("\n# EOF\n"), "{open}");
    server.shutdown();
}

#[test]
fn a_rejected_put_lists_the_problems_udplb_check_lists() {
    let objects = config::load_str("initial", ONE_CLASS).expect("valid manifests");
    let server = real_plane(&objects);
    let addr = server.local_addr().to_string();
    let dir = std::env::temp_dir().join(format!("udplb-mgmt-http-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // A GatewayClass defined twice next to a schema problem, and an integer beyond 64 bits.
    let bodies = [
        format!(
            "{ONE_CLASS}---\n{}",
            ONE_CLASS.replace("port: 53", "port: 70000")
        ),
        ONE_CLASS.replace("port: 53", "port: 18446744073709551616"),
    ];
    for (i, body) in bodies.iter().enumerate() {
        let file = dir.join(format!("{i}.yaml"));
        std::fs::write(&file, body).expect("write");
        let checked = config::check::run(
            std::slice::from_ref(&file),
            &config::check::CheckOptions::default(),
        );
        assert_eq!(checked.exit_code, 2, "{}", checked.stderr_summary);
        let (code, answer) =
            request(&addr, "PUT", "/v1/manifests", Some(body.as_bytes()), None).expect("PUT");
        assert_eq!(code, 422, "{answer}");
        let want = checked
            .stderr_summary
            .replace(&file.display().to_string(), "PUT /v1/manifests");
        assert_eq!(answer, format!("{want}\n"));
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown();
}

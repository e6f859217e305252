//! The management API under abuse and at stop (issue 10): idle connections cannot deny
//! `/healthz`, clients over the limit read a 503, ambiguous framing is a 400, the read
//! token guards reads, tokens rotate, the confirmation reaches the command, and a stop
//! during a long compile answers the client and returns within 2 s.

#![allow(clippy::tests_outside_test_module)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::control::{ControlParams, ControlPlane, Observed, Publisher};
use appliance::drain::DrainReport;
use appliance::mgmt::{
    fetch, request, ManagementServer, MgmtCommand, MgmtError, MgmtHandler, MgmtReply, Tokens,
};

/// Records commands; `ApplyManifests` blocks while `hold` is set (a long compile), and
/// commits only if the handler was not closed meanwhile.
#[derive(Default)]
struct Slow {
    hold: AtomicBool,
    entered: AtomicBool,
    closed: AtomicBool,
    committed: Mutex<Vec<MgmtCommand>>,
}

#[derive(Debug, thiserror::Error)]
#[error("refused")]
struct Never;

impl MgmtHandler for Slow {
    type Refusal = Never;

    fn handle(&self, command: MgmtCommand) -> Result<MgmtReply, MgmtError<Never>> {
        match command {
            MgmtCommand::Health => Ok(MgmtReply::Health {
                healthy: true,
                reasons: Vec::new(),
            }),
            MgmtCommand::Drain { .. } | MgmtCommand::Undrain | MgmtCommand::DrainStatus => {
                Ok(MgmtReply::Drain(DrainReport {
                    state: "draining",
                    flows_remaining: 0,
                    elapsed_ms: None,
                    deadline_in_ms: None,
                    ended_by: None,
                }))
            }
            MgmtCommand::Status => Ok(MgmtReply::Status {
                yaml: "kind: Gateway\n".into(),
            }),
            MgmtCommand::Metrics(format) => Ok(MgmtReply::Metrics {
                format,
                body: "udplb_x 1\n".into(),
            }),
            command => {
                self.entered.store(true, Ordering::SeqCst);
                // Bounded: the test ends long before.
                let start = Instant::now();
                while self.hold.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60)
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if self.closed.load(Ordering::SeqCst) {
                    return Err(MgmtError::ShuttingDown);
                }
                self.committed.lock().expect("lock").push(command);
                Ok(MgmtReply::Applied {
                    status_yaml: "ok\n".into(),
                })
            }
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
}

fn start(tokens: Tokens) -> (ManagementServer, Arc<Slow>, String) {
    let slow = Arc::new(Slow::default());
    let server = ManagementServer::start_with(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        tokens,
        Arc::clone(&slow),
    )
    .expect("start");
    let addr = server.local_addr().to_string();
    (server, slow, addr)
}

fn raw(addr: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(bytes).expect("send");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// Issue 10: 16 idle connections denied every other client, `/healthz` included, with a
/// reset. Now `/healthz` is answered and other calls read a 503.
#[test]
fn idle_connections_deny_neither_healthz_nor_a_readable_answer() {
    let (server, _slow, addr) = start(Tokens::default());
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            s.write_all(b"GET /metr").expect("half a request");
            s
        })
        .collect();
    // Let the server take every one of them.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        fetch(&addr, "/healthz").expect("healthz"),
        (200, "ok\n".into())
    );
    let (code, body) = fetch(&addr, "/v1/status").expect("an answer, not a reset");
    assert_eq!(
        (code, body.as_str()),
        (503, "too many management connections; retry later\n")
    );
    // Far past every lane: still an HTTP answer for the first few dozen more.
    let more: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let overflow = raw(&addr, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(overflow.starts_with("HTTP/1.1 503 "), "{overflow}");
    drop(more);
    drop(idle);
    server.shutdown();
}

/// Issue 10: two Content-Length headers were accepted (the first won), and `+5` and a
/// chunk size `+0` parsed. Every ambiguous framing is a 400 and applies nothing.
#[test]
fn ambiguous_framing_is_a_400() {
    let (server, slow, addr) = start(Tokens::default());
    for request in [
        &b"PUT /v1/manifests HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nkind: "[..],
        b"PUT /v1/manifests HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nkind:",
        b"PUT /v1/manifests HTTP/1.1\r\nContent-Length: +5\r\n\r\nkind:",
        b"PUT /v1/manifests HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n+0\r\n\r\n",
        b"PUT /v1/manifests HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nkind:\r\n+0\r\n\r\n",
        b"PUT /v1/manifests HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nkind:",
        b"PUT /v1/manifests HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nkind:",
    ] {
        let answer = raw(&addr, request);
        assert!(
            answer.starts_with("HTTP/1.1 400 "),
            "{} -> {answer}",
            String::from_utf8_lossy(request)
        );
    }
    assert!(slow.committed.lock().expect("lock").is_empty());
    server.shutdown();
}

/// `?confirm=remove-all` reaches the command; any other confirmation is a 400.
#[test]
fn the_confirmation_reaches_the_command() {
    let (server, slow, addr) = start(Tokens::default());
    let put = |path: &str| request(&addr, "PUT", path, Some(b"kind: x\n"), None).expect("PUT");
    assert_eq!(put("/v1/manifests").0, 200);
    assert_eq!(put("/v1/manifests?confirm=remove-all").0, 200);
    let (code, body) = put("/v1/manifests?confirm=yes");
    assert_eq!(
        (code, body.as_str()),
        (
            400,
            "confirm=\"yes\": the only confirmation is confirm=remove-all\n"
        )
    );
    let (code, _) =
        request(&addr, "POST", "/v1/reload?confirm=remove-all", None, None).expect("POST");
    assert_eq!(code, 200);
    let committed = slow.committed.lock().expect("lock").clone();
    assert_eq!(
        committed,
        [
            MgmtCommand::ApplyManifests {
                yaml: "kind: x\n".into(),
                confirm_remove_all: false
            },
            MgmtCommand::ApplyManifests {
                yaml: "kind: x\n".into(),
                confirm_remove_all: true
            },
            MgmtCommand::UseFiles {
                confirm_remove_all: true
            },
        ]
    );
    server.shutdown();
}

/// With a read token, status and metrics need it (or the write token); the health check
/// never does. New tokens replace the old ones at once (SIGHUP).
#[test]
fn the_read_token_guards_reads_and_tokens_rotate() {
    let (server, _slow, addr) = start(Tokens {
        write: Some("w1".into()),
        read: Some("r1".into()),
    });
    let get =
        |path: &str, token: Option<&str>| request(&addr, "GET", path, None, token).expect("GET").0;
    for path in ["/v1/status", "/metrics", "/v1/drain"] {
        assert_eq!(get(path, None), 401, "{path}");
        assert_eq!(get(path, Some("r1")), 200, "{path}");
        assert_eq!(get(path, Some("w1")), 200, "{path}");
    }
    assert_eq!(get("/healthz", None), 200);
    let put = |token| {
        request(
            &addr,
            "PUT",
            "/v1/manifests",
            Some(b"kind: x\n"),
            Some(token),
        )
        .expect("PUT")
        .0
    };
    assert_eq!(put("r1"), 401, "the read token never writes");
    assert_eq!(put("w1"), 200);
    for method in ["POST", "DELETE"] {
        let drain = |token| {
            request(&addr, method, "/v1/drain", None, Some(token))
                .expect("drain")
                .0
        };
        assert_eq!(drain("r1"), 401, "{method}: the read token never drains");
        assert_eq!(drain("w1"), 200, "{method}");
    }
    server.set_tokens(Tokens {
        write: Some("w2".into()),
        read: Some("r2".into()),
    });
    assert_eq!(put("w1"), 401, "the old token stopped working");
    assert_eq!(put("w2"), 200);
    assert_eq!(get("/v1/status", Some("r1")), 401);
    assert_eq!(get("/v1/status", Some("r2")), 200);
    server.shutdown();
}

/// Issue 10: SIGTERM during a long compile took 29.7 s. The server's stop abandons the
/// compile: the client waiting for it reads a 503, nothing is committed, and the stop
/// returns within 2 s (the compile here would take a minute).
#[test]
fn a_stop_during_a_long_compile_answers_and_returns_within_2s() {
    let (server, slow, addr) = start(Tokens::default());
    slow.hold.store(true, Ordering::SeqCst);
    let client = std::thread::spawn(move || {
        request(&addr, "PUT", "/v1/manifests", Some(b"kind: x\n"), None).expect("answered")
    });
    let start = Instant::now();
    while !slow.entered.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "compile never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let stop = Instant::now();
    server.shutdown();
    let took = stop.elapsed();
    assert!(took < Duration::from_secs(2), "stop took {took:?}");
    let (code, body) = client.join().expect("client");
    assert_eq!(
        (code, body.as_str()),
        (503, "the appliance is shutting down; nothing changed\n")
    );
    // The abandoned compile finishes later and commits nothing.
    slow.hold.store(false, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(50));
    assert!(slow.committed.lock().expect("lock").is_empty());
}

/// Health and drain are answered on the management thread, never queued behind a
/// compile on the serial thread: a drain asked for during a long PUT takes effect at once.
#[test]
fn health_and_drain_answer_while_a_compile_runs() {
    let (server, slow, addr) = start(Tokens::default());
    slow.hold.store(true, Ordering::SeqCst);
    let put_addr = addr.clone();
    let client = std::thread::spawn(move || {
        request(&put_addr, "PUT", "/v1/manifests", Some(b"kind: x\n"), None).expect("answered")
    });
    let start = Instant::now();
    while !slow.entered.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "compile never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(fetch(&addr, "/healthz").expect("healthz").0, 200);
    for (method, path) in [
        ("POST", "/v1/drain?deadline=10s"),
        ("GET", "/v1/drain"),
        ("DELETE", "/v1/drain"),
    ] {
        let (code, body) = request(&addr, method, path, None, None).expect("drain");
        assert_eq!(code, 200, "{method} {path}: {body}");
        assert!(body.starts_with("state: draining\n"), "{body}");
    }
    assert!(
        slow.committed.lock().expect("lock").is_empty(),
        "the compile still holds the serial thread"
    );
    slow.hold.store(false, Ordering::SeqCst);
    assert_eq!(client.join().expect("client").0, 200);
    assert_eq!(slow.committed.lock().expect("lock").len(), 1);
    server.shutdown();
}

/// Through the real control plane: an empty body is a 400 naming the confirmation, a
/// set removing every carrying listener a 409, and a files-only appliance refuses PUTs.
#[test]
fn the_real_plane_answers_the_guards_with_their_codes() {
    let objects = config::load_paths(&[
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/dns")
    ])
    .expect("example");
    let (plane, _tables) = ControlPlane::new(
        ControlParams::default(),
        Publisher::default(),
        Observed::default(),
        &objects,
    )
    .expect("plane");
    let server =
        ManagementServer::start(SocketAddr::from(([127, 0, 0, 1], 0)), None, Arc::new(plane))
            .expect("start");
    let addr = server.local_addr().to_string();
    let put = |path: &str, body: &str| {
        request(&addr, "PUT", path, Some(body.as_bytes()), None).expect("PUT")
    };
    let (code, body) = put("/v1/manifests", "");
    assert_eq!(code, 400, "{body}");
    assert!(body.starts_with("empty manifest set"), "{body}");
    assert!(body.contains("?confirm=remove-all"), "{body}");
    let (code, body) = put("/v1/manifests", "apiVersion: v1\nkind: List\nitems: []\n");
    assert_eq!(code, 409, "{body}");
    assert!(
        body.starts_with("this set removes every listener that carries traffic (198.18.0.10:53, [2001:2::10]:53)"),
        "{body}"
    );
    let (code, body) = put("/v1/manifests?confirm=remove-all", "");
    assert_eq!(code, 200, "{body}");
    server.shutdown();
}

//! The management HTTP API server: std threads, one short-lived thread per connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::command::{MgmtCommand, MgmtError, MgmtHandler, MgmtReply};
use super::http::{check_body_size, Conn, Limits, ReadError, Request, Response};
use crate::metrics::MetricsFormat;

/// Largest accepted `PUT /v1/manifests` body: the manifest size cap of `config`
/// (16 MiB), which `config::load` enforces on files and texts alike.
pub const MAX_BODY_BYTES: usize = config::MAX_MANIFEST_BYTES;

/// Connections served at once; more are answered 503 straight away.
const MAX_CONNECTIONS: usize = 16;

const LIMITS: Limits = Limits {
    max_head_bytes: 16 << 10,
    max_headers: 64,
    max_body_bytes: MAX_BODY_BYTES,
    head_timeout: Duration::from_secs(10),
    body_timeout: Duration::from_secs(60),
    io_timeout: Duration::from_secs(5),
};

const YAML: &str = "application/yaml";
const JSON: &str = "application/json";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("management.listen: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The server thread could not be started.
    #[error("cannot start the management thread: {0}")]
    Spawn(std::io::Error),
}

/// The running API server; [`ManagementServer::shutdown`] (or drop) stops it.
pub struct ManagementServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

struct Shared<H> {
    token: Option<String>,
    handler: Arc<H>,
    /// Serialises `ApplyManifests`.
    apply: Mutex<()>,
}

impl ManagementServer {
    /// Binds `addr` (port 0 picks a free port) and serves the API on a background thread.
    /// With `token`, `PUT /v1/manifests` requires `Authorization: Bearer <token>`.
    ///
    /// Requests become [`MgmtCommand`]s for `handler`.
    ///
    /// # Errors
    /// [`ServerError::Bind`] if the address cannot be bound, [`ServerError::Spawn`] if the
    /// thread cannot be created.
    pub fn start<H: MgmtHandler>(
        addr: SocketAddr,
        token: Option<String>,
        handler: Arc<H>,
    ) -> Result<ManagementServer, ServerError> {
        let listener =
            TcpListener::bind(addr).map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            token,
            handler,
            apply: Mutex::new(()),
        });
        let accept = std::thread::Builder::new()
            .name("udplb-mgmt".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || accept_loop(&listener, &stop, &shared)
            })
            .map_err(ServerError::Spawn)?;
        log::info!("management API listening on http://{local}");
        Ok(ManagementServer {
            addr: local,
            stop,
            accept: Some(accept),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes open connections and joins every server thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let wake = SocketAddr::new(loopback_for(self.addr.ip()), self.addr.port());
        match TcpStream::connect_timeout(&wake, Duration::from_secs(1)) {
            Ok(_) => {
                let _ = accept.join();
            }
            Err(e) => log::warn!("management API: cannot wake the accept thread: {e}"),
        }
    }
}

impl Drop for ManagementServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A wildcard listen address is reached through loopback.
fn loopback_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

fn accept_loop<H: MgmtHandler>(listener: &TcpListener, stop: &AtomicBool, shared: &Arc<Shared<H>>) {
    let mut open: Vec<(JoinHandle<()>, TcpStream)> = Vec::new();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            continue;
        };
        open.retain(|(thread, _)| !thread.is_finished());
        if open.len() >= MAX_CONNECTIONS {
            Conn::new(stream, LIMITS).reject(&Response::text(
                503,
                "too many management connections; retry later",
            ));
            continue;
        }
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        let shared = Arc::clone(shared);
        match std::thread::Builder::new()
            .name("udplb-mgmt-conn".into())
            .spawn(move || serve(Conn::new(stream, LIMITS), &shared))
        {
            Ok(thread) => open.push((thread, handle)),
            Err(e) => log::warn!("management API: cannot start a connection thread: {e}"),
        }
    }
    // Unblock connections still reading, then wait for them.
    for (thread, stream) in open {
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = thread.join();
    }
}

fn serve<H: MgmtHandler>(mut conn: Conn, shared: &Shared<H>) {
    let req = match conn.read_head() {
        Ok(req) => req,
        Err(ReadError::Gone) => return,
        Err(ReadError::Respond(status, message)) => {
            conn.respond(&Response::text(status, &message), false);
            return;
        }
    };
    let head_only = req.method == "HEAD";
    let response = route(&mut conn, &req, shared);
    log::debug!(
        "management API: {} {} -> {}",
        req.method,
        req.path,
        response.status
    );
    conn.respond(&response, head_only);
}

/// Maps a request to a command, and the command's answer to a response.
fn route<H: MgmtHandler>(conn: &mut Conn, req: &Request, shared: &Shared<H>) -> Response {
    let readable = matches!(req.method.as_str(), "GET" | "HEAD");
    let command = match req.path.as_str() {
        "/v1/manifests" if req.method == "PUT" => match manifests_body(conn, req, shared) {
            Ok(yaml) => MgmtCommand::ApplyManifests { yaml },
            Err(response) => return response,
        },
        "/v1/manifests" => return method_not_allowed("PUT"),
        "/v1/status" if readable => match req.query_param("format") {
            None | Some("yaml" | "json") => MgmtCommand::Status,
            Some(other) => {
                return Response::text(400, &format!("format {other:?}: use yaml or json"))
            }
        },
        "/metrics" if readable => {
            MgmtCommand::Metrics(MetricsFormat::negotiate(req.header("accept")))
        }
        "/healthz" if readable => MgmtCommand::Health,
        "/v1/drain" => match drain_command(req, shared) {
            Ok(command) => command,
            Err(response) => return response,
        },
        "/v1/status" | "/metrics" | "/healthz" => return method_not_allowed("GET, HEAD"),
        _ => return Response::text(404, &format!("no such resource: {}", req.path)),
    };
    let apply = matches!(command, MgmtCommand::ApplyManifests { .. });
    // A poisoned lock only means an earlier apply panicked; the guard holds no data.
    let _serial = apply.then(|| {
        shared
            .apply
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    });
    match shared.handler.handle(command) {
        Ok(reply) => reply_response(reply, req),
        Err(MgmtError::Refused(problems)) => Response::text(422, &problems.to_string()),
        Err(e @ MgmtError::Unsupported { .. }) => Response::text(501, &e.to_string()),
    }
}

fn reply_response(reply: MgmtReply, req: &Request) -> Response {
    match reply {
        MgmtReply::Applied { status_yaml } => Response::new(200, YAML, status_yaml),
        MgmtReply::Status { yaml } => match req.query_param("format") {
            Some("json") => match yaml_documents_as_json(&yaml) {
                Ok(mut json) => {
                    json.push('\n');
                    Response::new(200, JSON, json)
                }
                Err(e) => Response::text(500, &format!("status is not valid YAML: {e}")),
            },
            _ => Response::new(200, YAML, yaml),
        },
        MgmtReply::Metrics { format, body } => Response::new(200, format.content_type(), body),
        MgmtReply::Health { healthy: true, .. } => Response::text(200, "ok"),
        MgmtReply::Health {
            healthy: false,
            reasons,
        } => Response::text(503, &unhealthy_body(&reasons)),
        MgmtReply::Drain(report) => Response::new(200, YAML, report.to_yaml()),
    }
}

/// `/healthz` when unhealthy: `unhealthy`, then one reason per line.
fn unhealthy_body(reasons: &[String]) -> String {
    let mut body = String::from("unhealthy");
    for r in reasons {
        body.push('\n');
        body.push_str(r);
    }
    body
}

/// `GET /v1/drain` (state), `POST /v1/drain[?deadline=30s]` (start), `DELETE /v1/drain`
/// (cancel); the last two need the token, like `PUT /v1/manifests`.
fn drain_command<H: MgmtHandler>(
    req: &Request,
    shared: &Shared<H>,
) -> Result<MgmtCommand, Response> {
    match req.method.as_str() {
        "GET" | "HEAD" => Ok(MgmtCommand::DrainStatus),
        "POST" | "DELETE" => {
            authorize(req, shared)?;
            if req.method == "DELETE" {
                return Ok(MgmtCommand::Undrain);
            }
            let deadline = match req.query_param("deadline") {
                None => None,
                Some(text) => match text.parse::<pipelines::spec::HumanDuration>() {
                    Ok(d) if d.0 <= MAX_DRAIN_DEADLINE => Some(d.0),
                    Ok(d) => {
                        return Err(Response::text(
                            400,
                            &format!("deadline {d} is out of range (0s to 24h)"),
                        ))
                    }
                    Err(e) => return Err(Response::text(400, &format!("deadline: {e}"))),
                },
            };
            Ok(MgmtCommand::Drain { deadline })
        }
        _ => Err(method_not_allowed("GET, HEAD, POST, DELETE")),
    }
}

/// Longest drain deadline a request may ask for.
const MAX_DRAIN_DEADLINE: Duration = Duration::from_secs(24 * 3600);

/// The bearer token, when the server has one.
fn authorize<H: MgmtHandler>(req: &Request, shared: &Shared<H>) -> Result<(), Response> {
    if let Some(token) = &shared.token {
        if !bearer_matches(req.header("authorization"), token) {
            return Err(Response::text(401, "a valid bearer token is required")
                .with_header("WWW-Authenticate", "Bearer"));
        }
    }
    Ok(())
}

fn method_not_allowed(allow: &'static str) -> Response {
    Response::text(405, &format!("method not allowed; use {allow}")).with_header("Allow", allow)
}

/// The body of `PUT /v1/manifests` as text, once the token and the size are checked.
fn manifests_body<H: MgmtHandler>(
    conn: &mut Conn,
    req: &Request,
    shared: &Shared<H>,
) -> Result<String, Response> {
    authorize(req, shared)?;
    if let Err(ReadError::Respond(status, message)) = check_body_size(req, MAX_BODY_BYTES) {
        return Err(Response::text(status, &message));
    }
    if req
        .header("expect")
        .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
        && conn.send_continue().is_err()
    {
        return Err(Response::text(400, "connection failed"));
    }
    let body = match conn.read_body(req) {
        Ok(body) => body,
        Err(ReadError::Respond(status, message)) => return Err(Response::text(status, &message)),
        Err(ReadError::Gone) => return Err(Response::text(400, "request body incomplete")),
    };
    String::from_utf8(body).map_err(|_| Response::text(400, "request body is not UTF-8"))
}

/// The status is a multi-document YAML stream; as JSON it is an array of the documents,
/// as `udplb check --output json` prints it.
fn yaml_documents_as_json(yaml: &str) -> Result<String, String> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value = <serde_json::Value as serde::Deserialize>::deserialize(doc)
            .map_err(|e| e.to_string())?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    serde_json::to_string_pretty(&docs).map_err(|e| e.to_string())
}

/// Checks `Authorization: Bearer <token>` in time independent of where the tokens differ.
fn bearer_matches(header: Option<&str>, token: &str) -> bool {
    let Some((scheme, presented)) = header.and_then(|h| h.split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && constant_time_eq(presented.trim(), token)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_compare_exactly() {
        assert!(bearer_matches(Some("Bearer s3cret"), "s3cret"));
        assert!(bearer_matches(Some("bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer s3cretx"), "s3cret"));
        assert!(!bearer_matches(Some("Bearer "), "s3cret"));
        assert!(!bearer_matches(Some("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(Some("s3cret"), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }

    #[test]
    fn wildcard_addresses_are_woken_through_loopback() {
        assert_eq!(
            loopback_for("0.0.0.0".parse().expect("ip")),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        assert_eq!(
            loopback_for("::".parse().expect("ip")),
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        );
        let own: IpAddr = "198.18.0.1".parse().expect("ip");
        assert_eq!(loopback_for(own), own);
    }
}

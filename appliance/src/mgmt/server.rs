//! The management HTTP API server: hyper 1 on a tokio current-thread runtime, confined to
//! one thread (`udplb-mgmt`); workers and the slow path never see tokio.
//!
//! A connection goes through three steps:
//! 1. **Admission** (`http.rs`): its head is read within 10 s and 16 KiB, and checked
//!    strictly; the route is found (`routes.rs`), its token checked, its body framing
//!    checked and its announced size capped, all before any body byte is read. Refusals
//!    are answered here.
//! 2. **Exchange** (hyper): the head is replayed to hyper, which decodes the body
//!    (chunked, `100 Continue`) and writes the answer. The body is read within 60 s, with
//!    at most 5 s of silence, and capped as it arrives.
//! 3. **Command**: the route's [`MgmtCommand`]; those that change the configuration run
//!    on the serial thread (`serial.rs`), the others answer at once.
//!
//! Limits: 16 connections at once. Past that, 32 more are admitted for `GET /healthz`
//! only (with a 2 s head timeout) and answered `503` for anything else, so that a health
//! check is answered even while idle or hostile clients hold every slot, and a client
//! over the limit reads a `503` instead of a reset; beyond those, 64 more get an
//! immediate `503`, and only then are connections closed unanswered.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::command::{MgmtError, MgmtHandler};
use super::events::ReloadReason;
use super::http::{self, body_framing, HeadError, HeadLimits, Refuse, Replay, Request};
use super::routes::{self, Access, Answer, Route};
use super::serial::Serial;

/// Largest accepted `PUT /v1/manifests` body: the manifest size cap of `config`
/// (16 MiB), which `config::load` enforces on files and texts alike.
pub const MAX_BODY_BYTES: usize = config::MAX_MANIFEST_BYTES;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 16;
/// Connections past that admitted for `GET /healthz` only.
const HEALTH_ONLY_CONNECTIONS: usize = 32;
/// Connections past those answered `503` at once.
const OVERFLOW_CONNECTIONS: usize = 64;

const HEAD: HeadLimits = HeadLimits {
    max_bytes: 16 << 10,
    max_headers: 64,
    timeout: Duration::from_secs(10),
};
const HEALTH_ONLY_HEAD: HeadLimits = HeadLimits {
    timeout: Duration::from_secs(2),
    ..HEAD
};
/// Time to receive a whole body.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest silence while a body arrives.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop waits for answers in flight before closing every connection.
const STOP_GRACE: Duration = Duration::from_secs(1);

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

/// The bearer tokens the API asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Required by calls that change the configuration; `None`: not asked.
    pub write: Option<String>,
    /// Required by `GET /v1/status` and `GET /metrics` (the write token works too);
    /// `None`: reads are open.
    pub read: Option<String>,
}

/// The running API server; [`ManagementServer::shutdown`] (or drop) stops it.
pub struct ManagementServer {
    addr: SocketAddr,
    tokens: Arc<RwLock<Tokens>>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    reload: Box<dyn Fn(ReloadReason) + Send + Sync>,
    close: Box<dyn Fn() + Send + Sync>,
}

struct Shared<H: MgmtHandler> {
    tokens: Arc<RwLock<Tokens>>,
    serial: Serial<H>,
}

impl ManagementServer {
    /// Binds `addr` (port 0 picks a free port) and serves the API on its own thread.
    /// With `token`, calls that change the configuration require
    /// `Authorization: Bearer <token>`.
    ///
    /// # Errors
    /// [`ServerError::Bind`] if the address cannot be bound, [`ServerError::Spawn`] if a
    /// thread cannot be created.
    pub fn start<H: MgmtHandler>(
        addr: SocketAddr,
        token: Option<String>,
        handler: Arc<H>,
    ) -> Result<ManagementServer, ServerError> {
        let tokens = Tokens {
            write: token,
            read: None,
        };
        ManagementServer::start_with(addr, tokens, handler)
    }

    /// [`ManagementServer::start`] with both tokens.
    ///
    /// # Errors
    /// As [`ManagementServer::start`].
    pub fn start_with<H: MgmtHandler>(
        addr: SocketAddr,
        tokens: Tokens,
        handler: Arc<H>,
    ) -> Result<ManagementServer, ServerError> {
        let bind = |source| ServerError::Bind { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let serial = Serial::start(handler).map_err(ServerError::Spawn)?;
        let tokens = Arc::new(RwLock::new(tokens));
        let shared = Arc::new(Shared {
            tokens: Arc::clone(&tokens),
            serial: serial.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(ServerError::Spawn)?;
        let thread = std::thread::Builder::new()
            .name("udplb-mgmt".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, shared, stopped).await,
                        Err(e) => log::error!("management API: {e}"),
                    }
                });
            })
            .map_err(ServerError::Spawn)?;
        log::info!("management API listening on http://{local}");
        let (reload, close) = (serial.clone(), serial);
        Ok(ManagementServer {
            addr: local,
            tokens,
            stop,
            thread: Some(thread),
            reload: Box::new(move |reason| reload.reload(reason)),
            close: Box::new(move || close.close()),
        })
    }

    /// The bound address (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the tokens (SIGHUP re-reads the token files): the old ones stop working.
    pub fn set_tokens(&self, tokens: Tokens) {
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens;
    }

    /// Queues a reload of the manifest files on the serial thread (never waits for it).
    pub fn reload(&self, reason: ReloadReason) {
        (self.reload)(reason);
    }

    /// No change commits from now on: a compile still running is abandoned and its
    /// caller answered `503`; everything else is still answered until
    /// [`ManagementServer::shutdown`]. The stop calls this right after the withdrawal.
    pub fn close_commits(&self) {
        (self.close)();
    }

    /// Stops: no change commits any more, calls waiting for one are answered `503`,
    /// the listening socket closes, and every connection is closed within about a
    /// second. A compile still running is abandoned.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        (self.close)();
        let _ = self.stop.send(true);
        let _ = thread.join();
    }
}

impl Drop for ManagementServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Which connections a connection is admitted as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lane {
    /// Any route.
    Full,
    /// Over the limit: `GET /healthz` only.
    HealthOnly,
}

async fn serve<H: MgmtHandler>(
    listener: TcpListener,
    shared: Arc<Shared<H>>,
    mut stopped: watch::Receiver<bool>,
) {
    let full = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let health_only = Arc::new(Semaphore::new(HEALTH_ONLY_CONNECTIONS));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_CONNECTIONS));
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stopped.wait_for(|s| *s) => break,
            accepted = listener.accept() => accepted,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, say: do not spin.
                log::warn!("management API: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let stop = stopped.clone();
        if let Ok(permit) = Arc::clone(&full).try_acquire_owned() {
            tasks.spawn(connection(
                stream,
                Arc::clone(&shared),
                Lane::Full,
                permit,
                stop,
            ));
        } else if let Ok(permit) = Arc::clone(&health_only).try_acquire_owned() {
            let shared = Arc::clone(&shared);
            tasks.spawn(connection(stream, shared, Lane::HealthOnly, permit, stop));
        } else if let Ok(permit) = Arc::clone(&overflow).try_acquire_owned() {
            tasks.spawn(async move {
                let _permit = permit;
                http::respond_and_close(stream, 503, BUSY, &[], false).await;
            });
        }
        // Else: dropped, closed unanswered.
    }
    drop(listener);
    let drain = async { while tasks.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(STOP_GRACE, drain).await;
    tasks.abort_all();
}

const BUSY: &str = "too many management connections; retry later";

async fn connection<H: MgmtHandler>(
    mut stream: TcpStream,
    shared: Arc<Shared<H>>,
    lane: Lane,
    _permit: OwnedSemaphorePermit,
    mut stopped: watch::Receiver<bool>,
) {
    let limits = if lane == Lane::Full {
        HEAD
    } else {
        HEALTH_ONLY_HEAD
    };
    let head = tokio::select! {
        _ = stopped.wait_for(|s| *s) => return,
        head = http::read_head(&mut stream, limits) => head,
    };
    let (req, read) = match head {
        Ok(head) => head,
        Err(HeadError::Gone) => return,
        Err(HeadError::Respond(Refuse(status, message))) => {
            http::respond_and_close(stream, status, &message, &[], false).await;
            return;
        }
    };
    let head_only = req.method == "HEAD";
    let route = match admit(&req, lane, &shared) {
        Ok(route) => route,
        Err(answer) => {
            let headers: Vec<(&str, String)> = answer
                .headers
                .iter()
                .map(|(n, v)| (*n, v.clone()))
                .collect();
            let message = answer.message();
            http::respond_and_close(stream, answer.status, &message, &headers, head_only).await;
            return;
        }
    };
    let service = hyper::service::service_fn(move |incoming: hyper::Request<Incoming>| {
        let (req, shared, stopped) = (req.clone(), Arc::clone(&shared), stopped.clone());
        async move {
            let answer = exchange(incoming, &req, route, &shared, stopped).await;
            log::debug!(
                "management API: {} {} -> {}",
                req.method,
                req.path,
                answer.status
            );
            Ok::<_, Infallible>(to_hyper(answer))
        }
    });
    let io = TokioIo::new(Replay::new(read, stream));
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .title_case_headers(true)
        .max_buf_size(64 << 10)
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD.timeout)
        .serve_connection(io, service)
        .without_shutdown()
        .await;
    match served {
        Ok(parts) => http::linger_close(parts.io.into_inner().into_inner()).await,
        Err(e) => log::debug!("management API connection: {e}"),
    }
}

/// Route, lane, token and framing: everything decided before any body byte is read.
fn admit<H: MgmtHandler>(
    req: &Request,
    lane: Lane,
    shared: &Shared<H>,
) -> Result<&'static Route, Answer> {
    let health = req.path == "/healthz" && matches!(req.method.as_str(), "GET" | "HEAD");
    if lane == Lane::HealthOnly && !health {
        return Err(Answer::text(503, BUSY));
    }
    let route = routes::find(req)?;
    let tokens = shared
        .tokens
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if !authorized(route.access, &tokens, req.header("authorization")) {
        return Err(Answer::text(401, "a valid bearer token is required")
            .with_header("WWW-Authenticate", "Bearer"));
    }
    if route.body {
        body_framing(req, MAX_BODY_BYTES).map_err(|Refuse(s, m)| Answer::text(s, &m))?;
    }
    Ok(route)
}

fn authorized(access: Access, tokens: &Tokens, header: Option<&str>) -> bool {
    let matches =
        |token: &Option<String>| token.as_deref().is_some_and(|t| bearer_matches(header, t));
    match access {
        Access::Open => true,
        Access::Write => tokens.write.is_none() || matches(&tokens.write),
        Access::Read => tokens.read.is_none() || matches(&tokens.read) || matches(&tokens.write),
    }
}

/// Reads the body, runs the command, renders the answer.
async fn exchange<H: MgmtHandler>(
    incoming: hyper::Request<Incoming>,
    req: &Request,
    route: &Route,
    shared: &Shared<H>,
    mut stopped: watch::Receiver<bool>,
) -> Answer {
    let body = if route.body {
        let bytes = match read_body(incoming.into_body(), &mut stopped).await {
            Ok(bytes) => bytes,
            Err(answer) => return answer,
        };
        match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(_) => return Answer::text(400, "request body is not UTF-8"),
        }
    } else {
        None
    };
    let command = match (route.build)(req, body) {
        Ok(command) => command,
        Err(answer) => return answer,
    };
    if !command.changes_config() {
        return routes::answer(shared.serial.handler().handle(command), req);
    }
    let reply = shared.serial.submit(command);
    let outcome = tokio::select! {
        biased;
        outcome = reply => outcome.unwrap_or(Err(MgmtError::ShuttingDown)),
        _ = stopped.wait_for(|s| *s) => Err(MgmtError::ShuttingDown),
    };
    routes::answer(outcome, req)
}

/// The body, capped at [`MAX_BODY_BYTES`] as it arrives, within [`BODY_TIMEOUT`] and
/// with no silence longer than [`IO_TIMEOUT`].
async fn read_body(
    mut body: Incoming,
    stopped: &mut watch::Receiver<bool>,
) -> Result<Vec<u8>, Answer> {
    let deadline = Instant::now() + BODY_TIMEOUT;
    let mut out = Vec::new();
    loop {
        let wait = deadline.min(Instant::now() + IO_TIMEOUT);
        let frame = tokio::select! {
            frame = tokio::time::timeout_at(wait, body.frame()) => frame,
            _ = stopped.wait_for(|s| *s) => {
                return Err(Answer::text(503, "the appliance is shutting down; nothing changed"));
            }
        };
        match frame {
            Err(_) => return Err(Answer::text(408, "request timed out")),
            Ok(None) => return Ok(out),
            Ok(Some(Err(e))) => {
                let what = if e.is_incomplete_message() {
                    "request body incomplete".to_owned()
                } else {
                    format!("malformed request body: {e}")
                };
                return Err(Answer::text(400, &what));
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len().saturating_add(data.len()) > MAX_BODY_BYTES {
                        let Refuse(status, message) = http::too_large(MAX_BODY_BYTES);
                        return Err(Answer::text(status, &message));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

fn to_hyper(answer: Answer) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() = hyper::StatusCode::from_u16(answer.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Ok(value) = hyper::header::HeaderValue::from_str(answer.content_type) {
        headers.insert(hyper::header::CONTENT_TYPE, value);
    }
    for (name, value) in answer.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
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
    fn read_and_write_tokens_guard_their_routes() {
        let none = Tokens::default();
        let write = Tokens {
            write: Some("w".into()),
            read: None,
        };
        let both = Tokens {
            write: Some("w".into()),
            read: Some("r".into()),
        };
        let (w, r) = (Some("Bearer w"), Some("Bearer r"));
        for access in [Access::Open, Access::Read, Access::Write] {
            assert!(authorized(access, &none, None));
        }
        assert!(
            authorized(Access::Read, &write, None),
            "reads open without a read token"
        );
        assert!(!authorized(Access::Write, &write, None));
        assert!(!authorized(Access::Write, &write, r));
        assert!(authorized(Access::Write, &write, w));
        assert!(!authorized(Access::Read, &both, None));
        assert!(authorized(Access::Read, &both, r));
        assert!(
            authorized(Access::Read, &both, w),
            "the write token reads too"
        );
        assert!(
            !authorized(Access::Write, &both, r),
            "the read token never writes"
        );
        assert!(authorized(Access::Open, &both, None));
    }
}

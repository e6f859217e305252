//! Management thread: manifests from files and the HTTP API, compile, publish.
//!
//! This module holds the management machinery that does not depend on what is managed:
//! - [`MgmtCommand`]: every command the appliance takes, one typed enum, answered by an
//!   [`MgmtHandler`] (the appliance's control plane) with an [`MgmtReply`] or an
//!   [`MgmtError`] that keeps its cause as data.
//! - [`ManagementServer`]: the HTTP/1.1 API (`PUT /v1/manifests`, `POST /v1/reload`,
//!   `GET /v1/status`, `GET /metrics`, `GET /healthz`, `GET/POST/DELETE /v1/drain`; the
//!   table in `routes.rs`) on hyper and a tokio runtime confined to its own thread:
//!   requests become commands, replies and errors become status codes.
//! - [`Serial`]: the thread that runs commands changing the configuration, one at a time,
//!   so that nobody (HTTP, signals) waits on a compile.
//! - [`ManifestWatcher`]: polls the manifest paths and reports changes.
//! - [`SignalListener`]: turns SIGHUP into a reload and SIGINT/SIGTERM into a shutdown.
//! - [`fetch`] / [`request`]: the client that `udplb status` uses; [`drain`]: `udplb drain`.
//!
//! Reload triggers and signals meet in one channel of [`MgmtEvent`]s that the main loop
//! blocks on:
//!
//! ```no_run
//! use appliance::mgmt::{ManifestWatcher, MgmtEvent, SignalListener};
//! use std::time::Duration;
//! # fn main() -> std::io::Result<()> {
//! let (tx, events) = crossbeam_channel::unbounded();
//! let signals = SignalListener::start(tx.clone())?;
//! let watcher = ManifestWatcher::start(vec!["manifests/".into()], Duration::from_secs(1), tx)?;
//! for event in events {
//!     match event {
//!         MgmtEvent::Reload(reason) => { /* handle MgmtCommand::Reload(reason) */ let _ = reason; }
//!         MgmtEvent::Shutdown(_) => break,
//!     }
//! }
//! watcher.stop();
//! signals.close();
//! # Ok(()) }
//! ```

mod client;
mod command;
mod drain;
mod events;
mod http;
mod routes;
mod serial;
mod server;
mod watch;

pub use client::{fetch, print_status, read_token, request, ClientError};
pub use command::{MgmtCommand, MgmtError, MgmtHandler, MgmtReply, CONFIRM_REMOVE_ALL};
pub use drain::{run as drain, DrainAction, DEFAULT_TOKEN_FILE};
pub use events::{MgmtEvent, ReloadReason, ShutdownSignal, SignalListener};
pub use serial::{Outcome, Serial};
pub use server::{ManagementServer, ServerError, Tokens, MAX_BODY_BYTES};
pub use watch::{Fingerprint, ManifestWatcher, Settling, SETTLE};

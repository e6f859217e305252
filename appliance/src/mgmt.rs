//! Management thread: manifests from files and the HTTP API, compile, publish.
//!
//! This module holds the management machinery that does not depend on what is managed:
//! - [`ManagementServer`]: the HTTP/1.1 API (`PUT /v1/manifests`, `GET /v1/status`,
//!   `GET /metrics`, `GET /healthz`) on plain std threads, answering through the [`ApiBackend`]
//!   trait that the appliance implements (compile with `config`, publish to the workers).
//! - [`ManifestWatcher`]: polls the manifest paths and reports changes.
//! - [`SignalListener`]: turns SIGHUP into a reload and SIGINT/SIGTERM into a shutdown.
//! - [`fetch`] / [`request`]: the client that `udplb status` uses.
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
//!         MgmtEvent::Reload(reason) => { /* recompile, publish */ let _ = reason; }
//!         MgmtEvent::Shutdown(_) => break,
//!     }
//! }
//! watcher.stop();
//! signals.close();
//! # Ok(()) }
//! ```

mod client;
mod events;
mod http;
mod server;
mod watch;

pub use client::{fetch, request, ClientError};
pub use events::{MgmtEvent, ReloadReason, ShutdownSignal, SignalListener};
pub use server::{ApiBackend, ManagementServer, MgmtError, MAX_BODY_BYTES};
pub use watch::{Fingerprint, ManifestWatcher};

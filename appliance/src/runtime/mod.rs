//! `udplb run`: start-up, the management loop and graceful shutdown.
//!
//! ```text
//! Appliance::start(settings) -> Running      start.rs: settings checked, manifests compiled,
//!                                            EAL, pool, ports (ports.rs), slow path thread,
//!                                            workers (workers.rs), management API, signals,
//!                                            manifest watcher
//! running.serve()                            the management loop: reloads until a stop signal
//! running.shutdown()                         shutdown.rs: withdraw every announced route
//!                                            (then `announce.stop_grace`), the reverse
//!                                            order, then every mbuf must be back in its pool
//! ```
//!
//! Beside the management loop runs the supervisor (`supervise.rs`): health, drain and
//! the VIP announcement, which the API answers through `handler.rs`.
//!
//! Each thread gets its ends of the channels in a typed struct (a worker its
//! `WorkerLinks`, the control plane a [`Publisher`](crate::control::Publisher), the slow
//! path a `NeighborPublisher`), so what talks to what reads from the types.

mod handler;
mod ports;
mod shutdown;
mod start;
mod supervise;
mod workers;

use std::path::Path;

pub use handler::ApplianceHandler;
pub use start::{Appliance, Running};
pub use supervise::{Supervisor, SupervisorThread};

use crate::control::{Refusal, StartError};
use crate::settings::{CpuSet, Settings, SettingsError};

/// Why the appliance could not start (or stopped badly).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings file is unreadable or invalid, or does not fit this host.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The manifests named in the settings are invalid.
    #[error("manifests: {0}")]
    Manifests(#[from] Refusal),
    /// There is no valid set to start with (invalid files, an invalid persisted set).
    #[error(transparent)]
    Start(#[from] StartError),
    /// DPDK refused something.
    #[error("dpdk: {0}")]
    Dpdk(#[from] crate::dpdk::DpdkError),
    /// The network description is inconsistent, or a thread could not start.
    #[error("network: {0}")]
    Network(String),
    /// The management API or the signal handlers could not start.
    #[error("management API: {0}")]
    Management(String),
    /// The VIP announcement could not start (e.g. the liveness interface exists).
    #[error(transparent)]
    Announce(#[from] crate::announce::LivenessError),
    /// Mbufs were still held at shutdown.
    #[error("{0} mbufs did not return to the pool at shutdown")]
    LeakedMbufs(u32),
}

/// Reads the settings file, checks it against this host and runs the appliance until
/// SIGINT/SIGTERM.
///
/// # Errors
/// See [`RunError`].
pub fn run_from_file(path: &Path) -> Result<(), RunError> {
    let settings = Settings::from_file(path)?;
    settings
        .check_cpus(&CpuSet::usable())
        .map_err(|errors| SettingsError::InFile {
            path: path.to_owned(),
            source: Box::new(SettingsError::Invalid(errors)),
        })?;
    let running = Appliance::start(settings)?;
    running.serve();
    running.shutdown()
}

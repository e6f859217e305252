//! Management commands: one typed enum, answered with a typed reply or a typed error.
//!
//! Whoever asks (the HTTP API for a request, the management loop for a reload) builds a
//! [`MgmtCommand`] and hands it to the appliance's [`MgmtHandler`]; the answer is a
//! [`MgmtReply`] or an [`MgmtError`] that keeps its cause as data (a refused manifest set
//! carries the problems `config` found). How an answer looks on the wire (status codes,
//! content types, the problem list as text) is the HTTP layer's business, not the
//! handler's.

use std::time::Duration;

use crate::drain::DrainReport;
use crate::metrics::MetricsFormat;
use crate::mgmt::ReloadReason;

/// What the appliance is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgmtCommand {
    /// Replace the whole Gateway API object set with the YAML `yaml` (`PUT /v1/manifests`):
    /// validated and compiled, then swapped in atomically, or refused and nothing changed.
    ApplyManifests {
        /// The manifests (multi-document YAML, kubectl `List`s allowed).
        yaml: String,
        /// The caller confirmed that the set may be empty or remove every listener that
        /// carries traffic (`?confirm=remove-all`).
        confirm_remove_all: bool,
    },
    /// Forget the API-pushed set and serve what the manifest files say, now
    /// (`POST /v1/reload`).
    UseFiles {
        /// As for `ApplyManifests`.
        confirm_remove_all: bool,
    },
    /// Reload the manifest files named in the settings (a file changed, SIGHUP).
    Reload(ReloadReason),
    /// The Gateway API status of the running configuration (`GET /v1/status`).
    Status,
    /// Every counter, rendered in this format (`GET /metrics`).
    Metrics(MetricsFormat),
    /// Whether the appliance is serving (`GET /healthz`).
    Health,
    /// Start draining: withdraw every VIP, keep serving flows until they are idle or
    /// `deadline` (default: `drain.deadline`) passes (`POST /v1/drain`).
    Drain {
        /// How long to wait for the flows; `None`: the settings' default.
        deadline: Option<Duration>,
    },
    /// Cancel a drain: announce again when ready (`DELETE /v1/drain`).
    Undrain,
    /// Where the drain stands (`GET /v1/drain`).
    DrainStatus,
}

impl MgmtCommand {
    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            MgmtCommand::ApplyManifests { .. } => "apply manifests",
            MgmtCommand::UseFiles { .. } => "use files",
            MgmtCommand::Reload(_) => "reload",
            MgmtCommand::Status => "status",
            MgmtCommand::Metrics(_) => "metrics",
            MgmtCommand::Health => "health",
            MgmtCommand::Drain { .. } => "drain",
            MgmtCommand::Undrain => "undrain",
            MgmtCommand::DrainStatus => "drain status",
        }
    }

    /// Whether the command may change the configuration. Such commands run one at a
    /// time, on their own thread, and may take long (a compile); the others answer at
    /// once from the running state.
    pub fn changes_config(&self) -> bool {
        match self {
            MgmtCommand::ApplyManifests { .. }
            | MgmtCommand::UseFiles { .. }
            | MgmtCommand::Reload(_) => true,
            // Drain changes what is announced, not the configuration: answered at once,
            // even while a compile runs.
            MgmtCommand::Status
            | MgmtCommand::Metrics(_)
            | MgmtCommand::Health
            | MgmtCommand::Drain { .. }
            | MgmtCommand::Undrain
            | MgmtCommand::DrainStatus => false,
        }
    }
}

/// The confirmation a set needs to remove every listener that carries traffic, or to be
/// empty: the query parameter `confirm=remove-all`.
pub const CONFIRM_REMOVE_ALL: &str = "confirm=remove-all";

/// A command's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MgmtReply {
    /// The manifests were applied (`ApplyManifests`, `Reload`).
    Applied {
        /// The status of the new configuration, as YAML (what `udplb check` prints).
        status_yaml: String,
    },
    /// The status of the running configuration, as YAML documents.
    Status {
        /// One YAML document per GatewayClass, Gateway and UDPRoute.
        yaml: String,
    },
    /// The metrics exposition.
    Metrics {
        /// The format it is in (the one asked for).
        format: MetricsFormat,
        /// The exposition text.
        body: String,
    },
    /// Whether the appliance is serving.
    Health {
        /// `true` when serving.
        healthy: bool,
        /// Why not, one line per problem (e.g. `port edge: link down`); empty when
        /// healthy.
        reasons: Vec<String>,
    },
    /// The drain state after a drain command.
    Drain(DrainReport),
}

/// Why a command failed. `R` is the handler's reason for refusing a manifest set.
#[derive(Debug, thiserror::Error)]
pub enum MgmtError<R> {
    /// The manifest set was refused; the running configuration is unchanged (HTTP 422).
    /// `R` keeps the problems as data; its `Display` lists them.
    #[error(transparent)]
    Refused(R),
    /// The body holds no object at all (empty, blanks, comments): most likely a failed
    /// pipeline, never applied without confirmation (HTTP 400).
    #[error(
        "empty manifest set: the body holds no object (a failed `kubectl get` in a pipeline?); \
         nothing changed. To remove every object on purpose, send it again with \
         ?confirm=remove-all"
    )]
    EmptySet,
    /// The set would remove every listener that carries traffic now; it needs the
    /// confirmation (HTTP 409).
    #[error(
        "this set removes every listener that carries traffic ({}); nothing changed. To \
         remove them on purpose, send it again with ?confirm=remove-all",
        .listeners.join(", ")
    )]
    RemovesAllListeners {
        /// The running listeners that carry traffic (`VIP:port`).
        listeners: Vec<String>,
    },
    /// Not from this source: the settings say where manifests come from (HTTP 409).
    #[error("{0}")]
    WrongSource(String),
    /// The set was valid but could not be persisted; nothing changed (HTTP 500).
    #[error("{0}; nothing changed")]
    Persist(String),
    /// The appliance is stopping; the command was abandoned and nothing changed
    /// (HTTP 503).
    #[error("the appliance is shutting down; nothing changed")]
    ShuttingDown,
    /// This handler does not do that (e.g. reload files where there are none).
    #[error("{command}: not supported by this appliance")]
    Unsupported {
        /// [`MgmtCommand::name`] of the command.
        command: &'static str,
    },
}

/// What executes management commands; the appliance's control plane implements it.
///
/// `handle` may be called from several threads at once; commands that
/// [change the configuration](MgmtCommand::changes_config) come one at a time.
pub trait MgmtHandler: Send + Sync + 'static {
    /// Why a manifest set can be refused (the problem list, as data).
    type Refusal: std::error::Error + Send + 'static;

    /// Executes `command`.
    ///
    /// # Errors
    /// See [`MgmtError`].
    fn handle(&self, command: MgmtCommand) -> Result<MgmtReply, MgmtError<Self::Refusal>>;

    /// The appliance is stopping: from now on no command may change the configuration
    /// (one still compiling is abandoned and answers [`MgmtError::ShuttingDown`]).
    fn close(&self) {}
}

//! The control plane: Gateway API manifests in, published tables, status and metrics out.
//!
//! Manifests come from files (at start, on change, on SIGHUP) or from `PUT /v1/manifests`;
//! the most recent valid set wins. A set is validated, compiled and its tables built
//! (`apply.rs`), and only then published whole (`publish.rs`): to every worker, its VIPs to
//! the slow path, its backends' next hops to be resolved. A refused set leaves the running
//! configuration untouched. Counters are summed per scrape (`totals.rs`) and rendered by
//! [`crate::metrics`]. The control plane answers the management commands
//! ([`MgmtHandler`]); what it talks to is passed in as typed links ([`Publisher`],
//! [`Observed`]), so it is tested without DPDK.

mod apply;
mod publish;
mod totals;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use config::{CompileParams, ObjectSet};
use pipelines::tables::{DataplaneParams, Tables};

pub use apply::Refusal;
pub use publish::{Publisher, SlowPathLink};
pub use totals::Sums;

use crate::metrics::{MetricsSnapshot, PortSample};
use crate::mgmt::{MgmtCommand, MgmtError, MgmtHandler, MgmtReply};
use crate::slowpath::SlowPathCounters;
use crate::worker::ReportSlot;
use totals::Totals;

/// Port statistics, read when metrics are scraped (the DPDK ports in the appliance).
pub trait PortStats: Send + Sync {
    /// Every port's statistics, in port order.
    fn samples(&self) -> Vec<PortSample>;
}

/// What the control plane reads when metrics are scraped.
#[derive(Default)]
pub struct Observed {
    /// Each worker's counter report.
    pub reports: Vec<ReportSlot>,
    /// The ports' statistics, when there are ports.
    pub ports: Option<Arc<dyn PortStats>>,
    /// The slow path's counters.
    pub slow_path: Arc<SlowPathCounters>,
    /// Entries in the neighbor table (the slow path updates it).
    pub neighbors: Arc<AtomicUsize>,
}

/// What the control plane compiles with.
#[derive(Clone, Debug, Default)]
pub struct ControlParams {
    /// Controller name and default VIPs for `config::compile`.
    pub compile: CompileParams,
    /// Maglev size and seed, default NAT mode, idle timeout and hash key.
    pub dataplane: DataplaneParams,
    /// The manifest files and directories to (re)load.
    pub manifests: Vec<PathBuf>,
}

/// The running configuration.
struct State {
    status_yaml: String,
    status_json: String,
    tables: Arc<Tables>,
    /// Identity-keyed counter totals.
    totals: Totals,
    /// Configuration generation (1 = the first applied set).
    generation: u64,
}

/// Compiles and publishes manifests; answers status and metrics.
pub struct ControlPlane {
    params: CompileParams,
    dataplane: DataplaneParams,
    manifests: Vec<PathBuf>,
    publisher: Publisher,
    observed: Observed,
    state: Mutex<State>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl ControlPlane {
    /// Compiles `objects` as the initial configuration and tells the slow path; the
    /// workers start with the tables returned.
    ///
    /// # Errors
    /// The tables cannot be built (e.g. a Maglev table too small for a route).
    pub fn new(
        params: ControlParams,
        publisher: Publisher,
        observed: Observed,
        objects: &ObjectSet,
    ) -> Result<(ControlPlane, Arc<Tables>), Refusal> {
        let built = apply::build(objects, &params.compile, &params.dataplane)?;
        let tables = Arc::new(built.tables);
        publisher.tell_slow_path(&tables);
        let plane = ControlPlane {
            params: params.compile,
            dataplane: params.dataplane,
            manifests: params.manifests,
            publisher,
            observed,
            state: Mutex::new(State {
                status_yaml: built.status_yaml,
                status_json: built.status_json,
                tables: Arc::clone(&tables),
                totals: Totals::new(&tables),
                generation: 1,
            }),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        };
        Ok((plane, tables))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every VIP the running configuration serves (listeners' and default VIPs), which
    /// the slow path answers ARP, ND and ping for.
    pub fn vips(&self) -> Vec<IpAddr> {
        self.publisher.vips(&self.tables())
    }

    /// The status of the running configuration, as `udplb check` prints it.
    pub fn status_yaml(&self) -> String {
        self.state().status_yaml.clone()
    }

    /// The same as JSON.
    pub fn status_json(&self) -> String {
        self.state().status_json.clone()
    }

    /// The running tables.
    pub fn tables(&self) -> Arc<Tables> {
        Arc::clone(&self.state().tables)
    }

    /// Sums every worker's counters (identity-keyed entity totals included).
    pub fn sums(&self) -> Sums {
        self.state().totals.sum(&self.observed.reports)
    }

    /// Everything the appliance counts, now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let sums = self.sums();
        // Read before the snapshot below locks the state for its generation.
        let shared_endpoints =
            u64::try_from(self.tables().shared_endpoints().len()).unwrap_or(u64::MAX);
        let o = &self.observed;
        MetricsSnapshot {
            generation: self.state().generation,
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
            ports: o.ports.as_ref().map(|p| p.samples()).unwrap_or_default(),
            fast_path: sums.fast_path,
            loop_drops: sums.loop_drops,
            loop_counters: sums.loop_counters,
            slow_path: o.slow_path.snapshot(),
            neighbors: u64::try_from(o.neighbors.load(Ordering::Relaxed)).unwrap_or(u64::MAX),
            entities: sums.entities,
            shared_endpoints,
            appliance: None,
        }
    }
}

impl MgmtHandler for ControlPlane {
    type Refusal = Refusal;

    fn handle(&self, command: MgmtCommand) -> Result<MgmtReply, MgmtError<Refusal>> {
        let applied = |result: Result<String, Refusal>| {
            result
                .map(|status_yaml| MgmtReply::Applied { status_yaml })
                .map_err(MgmtError::Refused)
        };
        match command {
            MgmtCommand::ApplyManifests { yaml } => applied(self.apply_yaml(&yaml)),
            MgmtCommand::Reload(_) => applied(self.reload_files()),
            MgmtCommand::Status => Ok(MgmtReply::Status {
                yaml: self.status_yaml(),
            }),
            MgmtCommand::Metrics(format) => Ok(MgmtReply::Metrics {
                format,
                body: self.snapshot().render(format),
            }),
            // The control plane alone knows no ports or workers: the appliance's handler
            // (runtime) checks them and answers these.
            MgmtCommand::Health => Ok(MgmtReply::Health {
                healthy: true,
                reasons: Vec::new(),
            }),
            command @ (MgmtCommand::Drain { .. }
            | MgmtCommand::Undrain
            | MgmtCommand::DrainStatus) => Err(MgmtError::Unsupported {
                command: command.name(),
            }),
        }
    }
}

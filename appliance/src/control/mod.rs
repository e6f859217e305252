//! The control plane: Gateway API manifests in, published tables, status and metrics out.
//!
//! Manifests come from files (at start, on change, on SIGHUP) or from `PUT /v1/manifests`,
//! as the settings say (`source.rs`: one source of truth; an API-pushed set is persisted,
//! `persist.rs`). A set is validated, compiled and its tables built (`apply.rs`), guarded
//! (no accidental wipe, no-op when nothing changes), and only then published whole
//! (`publish.rs`): to every worker, its VIPs to the slow path, its backends' next hops to
//! be resolved. A refused set leaves the running configuration untouched. Counters are summed per scrape (`totals.rs`) and rendered by
//! [`crate::metrics`]. The control plane answers the management commands
//! ([`MgmtHandler`]); what it talks to is passed in as typed links ([`Publisher`],
//! [`Observed`]), so it is tested without DPDK.

mod apply;
mod initial;
mod persist;
mod publish;
mod source;
mod totals;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use config::{CompileParams, Digest, ObjectSet};
use pipelines::tables::{DataplaneParams, Tables};

pub use apply::{ChangeResult, Refusal};
pub use initial::{initial_set, Initial, StartError};
pub use persist::{PersistError, StateDir, API_SET_FILE};
pub use publish::{Publisher, SlowPathLink};
pub use source::{Active, Origin, SourceMode, Sources};
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
    /// Where manifests come from (files, API, both) and where API sets persist.
    pub sources: Sources,
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
    /// Digests of the running compile: what a new set is compared with.
    forwarding_digest: Digest,
    status_digest: Digest,
    /// Listeners that carry traffic (`VIP:port` with a route and backends).
    carrying: BTreeSet<SocketAddr>,
    /// Where the running set came from.
    active: Active,
}

/// Compiles and publishes manifests; answers status and metrics.
pub struct ControlPlane {
    params: CompileParams,
    dataplane: DataplaneParams,
    sources: Sources,
    publisher: Publisher,
    observed: Observed,
    state: Mutex<State>,
    /// Set once the appliance stops: no change commits after that.
    commit_gate: Mutex<bool>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl ControlPlane {
    /// Compiles `objects` as the initial configuration (from the files, or from the API
    /// when the sources are `api` only) and tells the slow path; the workers start with
    /// the tables returned.
    ///
    /// # Errors
    /// The tables cannot be built (e.g. a Maglev table too small for a route).
    pub fn new(
        params: ControlParams,
        publisher: Publisher,
        observed: Observed,
        objects: &ObjectSet,
    ) -> Result<(ControlPlane, Arc<Tables>), Refusal> {
        let origin = if params.sources.mode == SourceMode::Api {
            Origin::Persisted
        } else {
            Origin::StartFiles
        };
        ControlPlane::start(params, publisher, observed, objects, origin)
    }

    /// [`ControlPlane::new`] from the set [`initial_set`] found.
    ///
    /// # Errors
    /// The tables cannot be built.
    pub fn with_initial(
        params: ControlParams,
        publisher: Publisher,
        observed: Observed,
        initial: &Initial,
    ) -> Result<(ControlPlane, Arc<Tables>), Refusal> {
        ControlPlane::start(
            params,
            publisher,
            observed,
            &initial.objects,
            initial.origin,
        )
    }

    fn start(
        params: ControlParams,
        publisher: Publisher,
        observed: Observed,
        objects: &ObjectSet,
        origin: Origin,
    ) -> Result<(ControlPlane, Arc<Tables>), Refusal> {
        let mut built = apply::build(objects, &params.compile, &params.dataplane, None)?;
        let tables = Arc::new(match built.tables.take() {
            Some(tables) => tables,
            None => Tables::build(&built.forwarding, &params.dataplane)?,
        });
        publisher.tell_slow_path(&tables);
        log::info!("{}", apply::change_line(origin, "applied", &built, 1));
        let plane = ControlPlane {
            params: params.compile,
            dataplane: params.dataplane,
            sources: params.sources,
            publisher,
            observed,
            state: Mutex::new(State {
                status_yaml: built.status_yaml,
                status_json: built.status_json,
                tables: Arc::clone(&tables),
                totals: Totals::new(&tables),
                generation: 1,
                forwarding_digest: built.forwarding_digest,
                status_digest: built.status_digest,
                carrying: built.carrying,
                active: origin.active(),
            }),
            commit_gate: Mutex::new(false),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        };
        Ok((plane, tables))
    }

    /// Where the running set came from.
    pub fn active_source(&self) -> Active {
        self.state().active
    }

    /// The settings' manifest sources.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// Collects retired counters and releases the tables no worker can report any more
    /// (the management loop calls this every second; publishing and scraping do too).
    pub fn tick(&self) {
        let mut st = self.state();
        let current = st.tables.generation();
        st.totals.collect(&self.observed.reports, current);
    }

    /// Tables generations still alive anywhere in the process: the running one, those
    /// still queued for or used by a worker, and those held to name retired counters.
    pub fn live_generations(&self) -> usize {
        self.state().totals.live_generations()
    }

    /// Generations whose tables the counter totals hold (to name retired counters).
    pub fn held_generations(&self) -> usize {
        self.state().totals.held_generations()
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
        let mut st = self.state();
        let current = st.tables.generation();
        st.totals.sum(&self.observed.reports, current)
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
        let applied =
            |result: ChangeResult| result.map(|status_yaml| MgmtReply::Applied { status_yaml });
        match command {
            MgmtCommand::ApplyManifests {
                yaml,
                confirm_remove_all,
            } => applied(self.apply_yaml(&yaml, confirm_remove_all)),
            MgmtCommand::UseFiles { confirm_remove_all } => {
                applied(self.reload_files(Origin::BackToFiles, confirm_remove_all))
            }
            MgmtCommand::Reload(_) => applied(self.reload_files(Origin::Files, false)),
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

    fn close(&self) {
        *self.commit_gate.lock().unwrap_or_else(|e| e.into_inner()) = true;
    }
}

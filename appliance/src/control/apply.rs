//! Applying a manifest set: load → validate → compile (`config`) → build tables
//! (`pipelines`), all before anything is published; a refused set changes nothing.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use config::{CompileParams, ObjectSet};
use pipelines::tables::{DataplaneParams, TableError, Tables};

use super::ControlPlane;

/// Why a manifest set was refused; the running configuration is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Unreadable, not YAML, or against the Gateway API's rules: `config`'s problem list.
    #[error(transparent)]
    Manifests(#[from] config::LoadError),
    /// Valid, but its forwarding tables cannot be built (e.g. a Maglev table too small
    /// for a route's backends).
    #[error(transparent)]
    Tables(#[from] TableError),
}

/// A compiled configuration, ready to publish.
pub(super) struct Built {
    pub(super) tables: Tables,
    pub(super) status_yaml: String,
    pub(super) status_json: String,
}

/// Compiles `objects` and builds their tables.
pub(super) fn build(
    objects: &ObjectSet,
    params: &CompileParams,
    dataplane: &DataplaneParams,
) -> Result<Built, Refusal> {
    let compiled = config::compile(objects, params);
    let tables = Tables::build(&compiled.forwarding, dataplane)?;
    Ok(Built {
        tables,
        status_yaml: config::status_yaml(&compiled.status),
        status_json: config::status_json(&compiled.status),
    })
}

/// Where `PUT /v1/manifests` bodies say they come from, in problem locations.
const API_SOURCE: &str = "PUT /v1/manifests";

impl ControlPlane {
    /// Validates, compiles and publishes `objects`; returns the status YAML.
    ///
    /// # Errors
    /// Why the set was refused; the running configuration is unchanged.
    pub fn apply(&self, objects: &ObjectSet) -> Result<String, Refusal> {
        let built = self.counted(build(objects, &self.params, &self.dataplane))?;
        let tables = Arc::new(built.tables);
        let mut st = self.state();
        self.publisher.publish(&tables);
        st.totals.published(&tables);
        st.tables = tables;
        st.status_yaml.clone_from(&built.status_yaml);
        st.status_json = built.status_json;
        st.generation += 1;
        drop(st);
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        Ok(built.status_yaml)
    }

    /// Applies the YAML body of `PUT /v1/manifests`.
    ///
    /// # Errors
    /// The precise load, validation or build errors.
    pub fn apply_yaml(&self, yaml: &str) -> Result<String, Refusal> {
        let objects = self.counted(config::load_str(API_SOURCE, yaml).map_err(Refusal::from))?;
        self.apply(&objects)
    }

    /// Reloads the manifest files named in the settings.
    ///
    /// # Errors
    /// The precise load, validation or build errors.
    pub fn reload_files(&self) -> Result<String, Refusal> {
        let objects = self.counted(config::load_paths(&self.manifests).map_err(Refusal::from))?;
        self.apply(&objects)
    }

    /// Counts a refusal in `udplb_config_reloads_total{result="failed"}`.
    fn counted<T>(&self, result: Result<T, Refusal>) -> Result<T, Refusal> {
        if result.is_err() {
            self.reloads_failed.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

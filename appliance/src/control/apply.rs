//! Applying a manifest set: load → validate → compile (`config`) → build tables
//! (`pipelines`), all before anything is published; a refused set changes nothing.
//!
//! Then the guards, under the commit lock:
//! - the source must be admitted (`source.rs`);
//! - a set that removes every listener carrying traffic (a `VIP:port` with a route and
//!   backends) needs a confirmation, which only a person can give (`?confirm=remove-all`;
//!   files never can: a truncated file must not wipe the appliance);
//! - a set that compiles to the running forwarding config publishes no tables (same
//!   forwarding digest); if its status digest matches too, nothing changes at all.
//!
//! Every change, refusal and no-op is logged at INFO (or WARN) with its source, object
//! counts and short digests.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use config::{CompileParams, Digest, ObjectSet};
use pipelines::spec::ForwardingConfig;
use pipelines::tables::{DataplaneParams, TableError, Tables};

use super::source::{Active, Origin};
use super::ControlPlane;
use crate::mgmt::MgmtError;

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

/// What a command that changes the configuration answers with.
pub type ChangeResult = Result<String, MgmtError<Refusal>>;

/// A compiled set, ready to commit.
pub(super) struct Built {
    /// `None` when the forwarding config equals the running one (nothing to publish).
    pub(super) tables: Option<Tables>,
    pub(super) forwarding: ForwardingConfig,
    pub(super) forwarding_digest: Digest,
    pub(super) status_digest: Digest,
    pub(super) status_yaml: String,
    pub(super) status_json: String,
    pub(super) carrying: BTreeSet<SocketAddr>,
    pub(super) counts: String,
}

/// Compiles `objects` and builds their tables, unless their forwarding digest is
/// `running` (the tables would be the same).
pub(super) fn build(
    objects: &ObjectSet,
    params: &CompileParams,
    dataplane: &DataplaneParams,
    running: Option<Digest>,
) -> Result<Built, Refusal> {
    let compiled = config::compile(objects, params);
    let forwarding_digest = compiled.forwarding_digest();
    let tables = if running == Some(forwarding_digest) {
        None
    } else {
        Some(Tables::build(&compiled.forwarding, dataplane)?)
    };
    Ok(Built {
        tables,
        forwarding_digest,
        status_digest: compiled.status_digest(),
        status_yaml: config::status_yaml(&compiled.status),
        status_json: config::status_json(&compiled.status),
        carrying: carrying(&compiled.forwarding),
        counts: object_counts(objects),
        forwarding: compiled.forwarding,
    })
}

/// The listeners that carry traffic: a route with at least one backend.
pub(super) fn carrying(forwarding: &ForwardingConfig) -> BTreeSet<SocketAddr> {
    forwarding
        .listeners
        .iter()
        .filter(|l| l.route.as_ref().is_some_and(|r| !r.backends.is_empty()))
        .map(|l| SocketAddr::new(l.vip, l.port))
        .collect()
}

/// `objects=N (gatewayclasses a, gateways b, ...)` for the log.
pub(super) fn object_counts(objects: &ObjectSet) -> String {
    let kinds = [
        ("gatewayclasses", objects.gateway_classes.len()),
        ("gateways", objects.gateways.len()),
        ("udproutes", objects.udp_routes.len()),
        ("services", objects.services.len()),
        ("endpointslices", objects.endpoint_slices.len()),
        ("referencegrants", objects.reference_grants.len()),
        (
            "policies",
            objects.udp_backend_policies.len() + objects.udp_traffic_policies.len(),
        ),
    ];
    let detail: Vec<String> = kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!("objects={} ({})", objects.len(), detail.join(", "))
}

/// The INFO line of one change: source, result, counts, listeners, generation and short
/// digests.
pub(super) fn change_line(origin: Origin, result: &str, built: &Built, generation: u64) -> String {
    format!(
        "config {result}: source={origin} {} listeners={} generation={generation} \
         forwarding={} status={}",
        built.counts,
        built.carrying.len(),
        built.forwarding_digest.short(),
        built.status_digest.short()
    )
}

/// Whether a body holds nothing but blanks, comments and document markers.
pub(super) fn is_blank(yaml: &str) -> bool {
    yaml.lines().all(|line| {
        let t = line.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Where `PUT /v1/manifests` bodies say they come from, in problem locations.
pub(super) const API_SOURCE: &str = "PUT /v1/manifests";

impl ControlPlane {
    /// Validates, compiles and, if the guards allow, publishes `objects` from `origin`;
    /// `text` is the body to persist (API sets). Returns the status YAML.
    ///
    /// # Errors
    /// Why nothing changed (see [`MgmtError`]); a refused set is counted as a failed
    /// reload.
    pub(super) fn change(
        &self,
        objects: &ObjectSet,
        origin: Origin,
        confirm_remove_all: bool,
        text: Option<&str>,
    ) -> ChangeResult {
        let running = self.state().forwarding_digest;
        let built =
            build(objects, &self.params, &self.dataplane, Some(running)).map_err(|refusal| {
                log::warn!(
                    "config refused: source={origin} {}: {refusal}",
                    object_counts(objects)
                );
                MgmtError::Refused(refusal)
            });
        let built = self.counted(built)?;
        let result = self.commit(built, origin, confirm_remove_all, text);
        self.counted(result)
    }

    fn commit(
        &self,
        mut built: Built,
        origin: Origin,
        confirm_remove_all: bool,
        text: Option<&str>,
    ) -> ChangeResult {
        // Nothing commits once the appliance is stopping.
        let gate = self.commit_gate.lock().unwrap_or_else(|e| e.into_inner());
        if *gate {
            return Err(MgmtError::ShuttingDown);
        }
        let mut st = self.state();
        self.sources
            .admits(origin, st.active)
            .map_err(MgmtError::WrongSource)?;
        let removes_all = !st.carrying.is_empty() && built.carrying.is_disjoint(&st.carrying);
        if removes_all && !(confirm_remove_all && origin.can_confirm()) {
            let listeners: Vec<String> = st.carrying.iter().map(ToString::to_string).collect();
            log::warn!(
                "{}; refused: it removes every listener that carries traffic ({})",
                change_line(origin, "refused", &built, st.generation),
                listeners.join(", ")
            );
            return Err(MgmtError::RemovesAllListeners { listeners });
        }
        let same_forwarding = built.forwarding_digest == st.forwarding_digest;
        let same_status = built.status_digest == st.status_digest;
        let new_active = origin.active();
        if same_forwarding && same_status && st.active == new_active {
            log::info!(
                "{}",
                change_line(origin, "unchanged", &built, st.generation)
            );
            return Ok(built.status_yaml);
        }
        // Persist before publishing: a crash in between restarts with the new set.
        match (new_active, &self.sources.state) {
            (Active::Api, Some(state)) if origin == Origin::Api => {
                state
                    .save(text.unwrap_or_default())
                    .map_err(|e| MgmtError::Persist(e.to_string()))?;
            }
            (Active::Files, Some(state)) if st.active == Active::Api => {
                state
                    .remove()
                    .map_err(|e| MgmtError::Persist(e.to_string()))?;
            }
            _ => {}
        }
        let result = if same_forwarding && same_status {
            "applied (source only, tables unchanged)"
        } else if same_forwarding {
            "applied (status only, tables unchanged)"
        } else {
            let tables = match built.tables.take() {
                Some(tables) => tables,
                // Built against an older running digest: build now.
                None => Tables::build(&built.forwarding, &self.dataplane)
                    .map_err(|e| MgmtError::Refused(Refusal::Tables(e)))?,
            };
            let tables = Arc::new(tables);
            self.publisher.publish(&tables);
            st.totals.published(&tables);
            st.tables = tables;
            st.generation += 1;
            st.forwarding_digest = built.forwarding_digest;
            st.carrying.clone_from(&built.carrying);
            "applied"
        };
        st.status_digest = built.status_digest;
        st.status_yaml.clone_from(&built.status_yaml);
        st.status_json = std::mem::take(&mut built.status_json);
        st.active = new_active;
        let generation = st.generation;
        let current = st.tables.generation();
        st.totals.collect(&self.observed.reports, current);
        drop(st);
        drop(gate);
        log::info!("{}", change_line(origin, result, &built, generation));
        self.reloads_ok.fetch_add(1, Ordering::Relaxed);
        Ok(built.status_yaml)
    }

    /// Applies the YAML body of `PUT /v1/manifests`.
    ///
    /// # Errors
    /// [`MgmtError::EmptySet`] for a blank body without confirmation; otherwise as
    /// [`ControlPlane::change`].
    pub fn apply_yaml(&self, yaml: &str, confirm_remove_all: bool) -> ChangeResult {
        if is_blank(yaml) && !confirm_remove_all {
            log::warn!("config refused: source=api: empty body (no confirmation)");
            return self.counted(Err(MgmtError::EmptySet));
        }
        let objects = config::load_str(API_SOURCE, yaml).map_err(|e| {
            log::warn!("config refused: source=api: {e}");
            MgmtError::Refused(Refusal::from(e))
        });
        let objects = self.counted(objects)?;
        self.change(&objects, Origin::Api, confirm_remove_all, Some(yaml))
    }

    /// Reloads the manifest files named in the settings: a file change or SIGHUP
    /// (`Origin::Files`), or `POST /v1/reload` (`Origin::BackToFiles`).
    ///
    /// # Errors
    /// As [`ControlPlane::change`].
    pub fn reload_files(&self, origin: Origin, confirm_remove_all: bool) -> ChangeResult {
        // Refuse early (without reading the files) when the source is not admitted.
        let active = self.state().active;
        self.sources
            .admits(origin, active)
            .map_err(MgmtError::WrongSource)?;
        let objects = config::load_paths(&self.sources.paths).map_err(|e| {
            log::warn!("config refused: source={origin}: {e}");
            MgmtError::Refused(Refusal::from(e))
        });
        let objects = self.counted(objects)?;
        self.change(&objects, origin, confirm_remove_all, None)
    }

    /// Counts a refusal in `udplb_config_reloads_total{result="failed"}`.
    fn counted<T>(&self, result: Result<T, MgmtError<Refusal>>) -> Result<T, MgmtError<Refusal>> {
        if let Err(e) = &result {
            if !matches!(e, MgmtError::ShuttingDown | MgmtError::WrongSource(_)) {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_bodies_are_recognised() {
        for blank in ["", "\n", "  \n\t\n", "# nothing\n---\n# more\n...\n", "---"] {
            assert!(is_blank(blank), "{blank:?}");
        }
        for content in ["kind: Gateway", "---\nkind: List\nitems: []\n", "{}"] {
            assert!(!is_blank(content), "{content:?}");
        }
    }

    const SET: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: udplb}
spec: {controllerName: udplb.io/appliance}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.0.10}]
  listeners: [{name: dns, port: 53, protocol: UDP}]
";

    #[test]
    fn the_change_line_names_source_result_counts_and_digests() {
        let objects = config::load_str("t", SET).expect("valid");
        let built = build(
            &objects,
            &CompileParams::default(),
            &DataplaneParams::default(),
            None,
        )
        .expect("builds");
        let line = change_line(Origin::Api, "applied", &built, 7);
        let want = format!(
            "config applied: source=api objects=2 (gatewayclasses 1, gateways 1) listeners=0 \
             generation=7 forwarding={} status={}",
            built.forwarding_digest.short(),
            built.status_digest.short()
        );
        assert_eq!(line, want);
        assert_eq!(built.forwarding_digest.short().len(), 12);
        assert!(built.tables.is_some());
        // Against its own digest nothing is built.
        let again = build(
            &objects,
            &CompileParams::default(),
            &DataplaneParams::default(),
            Some(built.forwarding_digest),
        )
        .expect("builds");
        assert!(again.tables.is_none());
        assert_eq!(
            change_line(Origin::Persisted, "applied", &again, 1),
            want.replace("source=api", "source=persisted API set (start)")
                .replace("generation=7", "generation=1")
        );
    }
}

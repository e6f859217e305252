//! Where manifests come from: one source of truth per appliance.
//!
//! `manifests.source` in the settings says it:
//!
//! | mode | the running set comes from | `PUT /v1/manifests` | a file change, SIGHUP |
//! |---|---|---|---|
//! | `files` | the manifest files | refused (409) | reloads |
//! | `api` | the last accepted PUT, persisted | applies, persists | — |
//! | `both` | the files until a PUT; then the PUT's set, pinned | applies, persists, pins | reloads while the files serve; while a PUT's set is pinned: logged, not applied |
//!
//! With `both`, `POST /v1/reload` forgets the API set (and its persisted copy) and serves
//! the files again. Nothing reverts an API-pushed set silently: not a `touch`, not a
//! restart (the set is read back from `manifests.state_dir`).

use std::fmt;
use std::path::PathBuf;

use super::persist::StateDir;

/// `manifests.source`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// Files only; the API is read-only for manifests.
    Files,
    /// The API only; no files.
    Api,
    /// Files, until an API PUT pins the API's set.
    #[default]
    Both,
}

impl SourceMode {
    /// The spelling in `appliance.yaml`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceMode::Files => "files",
            SourceMode::Api => "api",
            SourceMode::Both => "both",
        }
    }
}

/// The manifest sources of one appliance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// Which sources count.
    pub mode: SourceMode,
    /// Manifest files and directories (`files`, `both`).
    pub paths: Vec<PathBuf>,
    /// Where an API-pushed set is persisted (`api`, `both`); `None`: not persisted.
    pub state: Option<StateDir>,
}

/// Which source the running set came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Active {
    /// The manifest files (or nothing yet).
    Files,
    /// `PUT /v1/manifests` (now, or persisted from before a restart).
    Api,
}

/// Where one change came from, for the log and the decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The manifest files at start.
    StartFiles,
    /// The persisted API set at start.
    Persisted,
    /// A file change or SIGHUP.
    Files,
    /// `POST /v1/reload`: back to the files.
    BackToFiles,
    /// `PUT /v1/manifests`.
    Api,
}

impl Origin {
    /// The source the running set has once this change is applied.
    pub fn active(self) -> Active {
        match self {
            Origin::StartFiles | Origin::Files | Origin::BackToFiles => Active::Files,
            Origin::Persisted | Origin::Api => Active::Api,
        }
    }

    /// Whether a person confirmed, or can confirm, a full removal with this change (files
    /// cannot: a truncated file must never wipe the appliance).
    pub fn can_confirm(self) -> bool {
        matches!(self, Origin::Api | Origin::BackToFiles)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::StartFiles => "files (start)",
            Origin::Persisted => "persisted API set (start)",
            Origin::Files => "files",
            Origin::BackToFiles => "files (POST /v1/reload)",
            Origin::Api => "api",
        })
    }
}

impl Sources {
    /// Whether `origin` may change the running set, which came from `active`; the error
    /// says why not, and what to do instead.
    ///
    /// # Errors
    /// The message for the log, or for a 409 answer.
    pub fn admits(&self, origin: Origin, active: Active) -> Result<(), String> {
        match (self.mode, origin) {
            (SourceMode::Files, Origin::Api) => Err(
                "manifests.source is files: this appliance takes its manifests from its files \
                 only (edit them, or set manifests.source to api or both)"
                    .into(),
            ),
            (SourceMode::Api, Origin::Files | Origin::BackToFiles | Origin::StartFiles) => Err(
                "manifests.source is api: this appliance has no manifest files; PUT \
                 /v1/manifests replaces its set"
                    .into(),
            ),
            (SourceMode::Both, Origin::Files) if active == Active::Api => Err(
                "the manifest files changed, but the set pushed by PUT /v1/manifests stays \
                 pinned (manifests.source: both); POST /v1/reload serves the files again"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Whether files are read at all (and watched).
    pub fn uses_files(&self) -> bool {
        self.mode != SourceMode::Api && !self.paths.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(mode: SourceMode) -> Sources {
        Sources {
            mode,
            paths: vec!["m/".into()],
            state: None,
        }
    }

    #[test]
    fn each_mode_admits_its_sources() {
        let files = sources(SourceMode::Files);
        assert!(files.admits(Origin::Files, Active::Files).is_ok());
        assert!(files.admits(Origin::BackToFiles, Active::Files).is_ok());
        let err = files
            .admits(Origin::Api, Active::Files)
            .expect_err("no PUT");
        assert!(err.starts_with("manifests.source is files"), "{err}");

        let api = sources(SourceMode::Api);
        assert!(api.admits(Origin::Api, Active::Api).is_ok());
        assert!(api.admits(Origin::Files, Active::Api).is_err());
        assert!(api.admits(Origin::BackToFiles, Active::Api).is_err());

        let both = sources(SourceMode::Both);
        assert!(both.admits(Origin::Files, Active::Files).is_ok());
        assert!(both.admits(Origin::Api, Active::Files).is_ok());
        // Once a PUT is pinned, file changes do not revert it; POST /v1/reload does.
        let err = both.admits(Origin::Files, Active::Api).expect_err("pinned");
        assert!(err.contains("POST /v1/reload"), "{err}");
        assert!(both.admits(Origin::BackToFiles, Active::Api).is_ok());
        assert!(both.admits(Origin::Api, Active::Api).is_ok());
    }

    #[test]
    fn only_people_confirm() {
        assert!(Origin::Api.can_confirm());
        assert!(Origin::BackToFiles.can_confirm());
        assert!(!Origin::Files.can_confirm());
        assert!(!Origin::StartFiles.can_confirm());
        assert!(!Origin::Persisted.can_confirm());
    }
}

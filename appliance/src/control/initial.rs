//! The set an appliance starts with, from its sources: the persisted API set when there
//! is one (`api`, `both`), else the manifest files (`files`, `both`), else nothing.
//!
//! A persisted set that cannot be read or is invalid stops the start: falling back to the
//! files would silently revert what the API last accepted. The message names the file;
//! fix or remove it (the files then serve, with `both`).

use config::ObjectSet;

use super::persist::PersistError;
use super::source::{Origin, SourceMode, Sources};

/// The set to start with and where it came from.
#[derive(Debug)]
pub struct Initial {
    /// The objects.
    pub objects: ObjectSet,
    /// `StartFiles` or `Persisted`.
    pub origin: Origin,
}

/// Why there is no set to start with.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The manifest files are invalid.
    #[error("manifests: {0}")]
    Files(config::LoadError),
    /// The persisted API set cannot be read.
    #[error(transparent)]
    Unreadable(#[from] PersistError),
    /// The persisted API set is invalid.
    #[error(
        "manifests.state_dir: the persisted API set is invalid; fix or remove {path} (the \
         manifest files then serve, with manifests.source: both):\n{source}"
    )]
    Persisted {
        /// The persisted file.
        path: String,
        /// Its problems.
        source: config::LoadError,
    },
}

/// Loads the set an appliance with `sources` starts with.
///
/// # Errors
/// See [`StartError`].
pub fn initial_set(sources: &Sources) -> Result<Initial, StartError> {
    if sources.mode != SourceMode::Files {
        if let Some(state) = &sources.state {
            if let Some(text) = state.load()? {
                let path = state.api_set().display().to_string();
                let objects = config::load_str(&path, &text)
                    .map_err(|source| StartError::Persisted { path, source })?;
                return Ok(Initial {
                    objects,
                    origin: Origin::Persisted,
                });
            }
        }
    }
    let objects = if sources.uses_files() {
        config::load_paths(&sources.paths).map_err(StartError::Files)?
    } else {
        ObjectSet::default()
    };
    let origin = if sources.mode == SourceMode::Api {
        Origin::Persisted
    } else {
        Origin::StartFiles
    };
    Ok(Initial { objects, origin })
}

//! `manifests` (where Gateway API manifests come from) and the management API's access
//! rules: the token files and the listen address they protect.
//!
//! `manifests` takes two forms:
//!
//! ```yaml
//! manifests: [/etc/udplb/manifests/]            # short: source both, not persisted
//! manifests:
//!   source: both                                # files | api | both (default both)
//!   paths: [/etc/udplb/manifests/]              # files, directories (files, both)
//!   state_dir: /var/lib/udplb                   # the API-pushed set persists here
//! ```

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::validate::Validator;
use super::{ManagementSettings, Settings, SettingsError};
use crate::control::{SourceMode, Sources, StateDir};
use crate::mgmt::Tokens;

/// `manifests`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestSettings {
    /// `source`: files, api or both.
    pub source: SourceMode,
    /// `paths`: manifest files and directories.
    pub paths: Vec<PathBuf>,
    /// `state_dir`: where an API-pushed set is persisted; none = not persisted.
    pub state_dir: Option<PathBuf>,
}

/// The mapping form, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Mapping {
    #[serde(default)]
    source: SourceMode,
    #[serde(default)]
    paths: Vec<PathBuf>,
    #[serde(default)]
    state_dir: Option<PathBuf>,
}

impl<'de> Deserialize<'de> for ManifestSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> Visitor<'de> for Either {
            type Value = ManifestSettings;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of paths, or a mapping with source, paths and state_dir")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let paths = Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ManifestSettings {
                    source: SourceMode::Both,
                    paths,
                    state_dir: None,
                })
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let m = Mapping::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(ManifestSettings {
                    source: m.source,
                    paths: m.paths,
                    state_dir: m.state_dir,
                })
            }
        }
        d.deserialize_any(Either)
    }
}

impl ManifestSettings {
    /// The control plane's view.
    pub fn sources(&self) -> Sources {
        Sources {
            mode: self.source,
            paths: self.paths.clone(),
            state: self.state_dir.as_ref().map(StateDir::new),
        }
    }

    /// Relative paths resolved against `base` (the settings file's directory).
    pub(super) fn resolve(&mut self, base: &Path) {
        for path in &mut self.paths {
            *path = base.join(&*path);
        }
        if let Some(dir) = &mut self.state_dir {
            *dir = base.join(&*dir);
        }
    }
}

impl Settings {
    /// The rules of `manifests` and `management`.
    pub(super) fn validate_management(&self, v: &mut Validator) {
        let m = &self.manifests;
        match m.source {
            SourceMode::Files if m.paths.is_empty() => {
                v.fail("manifests.paths", "required with source files");
            }
            SourceMode::Files if m.state_dir.is_some() => v.fail(
                "manifests.state_dir",
                "only used with source api or both (files are their own record)",
            ),
            SourceMode::Api if !m.paths.is_empty() => v.fail(
                "manifests.paths",
                "not read with source api (use source both to serve files until a PUT)",
            ),
            SourceMode::Api if m.state_dir.is_none() => v.fail(
                "manifests.state_dir",
                "required with source api: the set PUT /v1/manifests accepts must survive a \
                 restart",
            ),
            _ => {}
        }
        let listen = self.management.listen.ip();
        if !listen.is_loopback() && self.management.token_file.is_none() {
            v.fail(
                "management.token_file",
                format!(
                    "required when management.listen ({listen}) is not a loopback address: \
                     anyone who reaches it could replace the configuration"
                ),
            );
        }
    }
}

impl ManagementSettings {
    /// Reads the bearer token from `token_file` (surrounding whitespace removed).
    ///
    /// # Errors
    /// [`SettingsError::Token`] when the file cannot be read, is readable by group or
    /// others, is empty, or holds characters that cannot appear in an `Authorization`
    /// header.
    pub fn read_token(&self) -> Result<Option<String>, SettingsError> {
        read_token_file(self.token_file.as_deref(), "management.token_file")
    }

    /// Both tokens (`token_file`, `read_token_file`); SIGHUP reads them again.
    ///
    /// # Errors
    /// As [`ManagementSettings::read_token`], naming the field.
    pub fn read_tokens(&self) -> Result<Tokens, SettingsError> {
        Ok(Tokens {
            write: self.read_token()?,
            read: read_token_file(
                self.read_token_file.as_deref(),
                "management.read_token_file",
            )?,
        })
    }
}

fn read_token_file(
    path: Option<&Path>,
    field: &'static str,
) -> Result<Option<String>, SettingsError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let fail = |message: String| SettingsError::Token {
        field,
        path: path.to_owned(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    let mode = meta.permissions().mode();
    // As ssh does with keys: a secret readable by others is refused.
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "readable by group or others (mode {:04o}); chmod 600 it",
            mode & 0o7777
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(fail(
            "the token may only hold visible ASCII characters".into(),
        ));
    }
    Ok(Some(token.to_owned()))
}

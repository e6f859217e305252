//! `udplb check PATH...`: load, validate, compile, and print the computed status.

use std::path::PathBuf;

use crate::compile::{compile, CompileParams};
use crate::load::load_paths;
use crate::status::{status_json, status_yaml};

/// Output format of the status documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Multi-document YAML.
    #[default]
    Yaml,
    /// One JSON array.
    Json,
}

/// Options of `udplb check`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Output format.
    pub output: OutputFormat,
    /// Controller name and default VIPs.
    pub params: CompileParams,
}

/// What `udplb check` prints and returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    /// The status documents (empty when the input could not be loaded).
    pub stdout: String,
    /// A one-line summary, or every load problem (one per line).
    pub stderr_summary: String,
    /// 0: all accepted and resolved; 1: some condition false; 2: unreadable or invalid input.
    pub exit_code: i32,
}

/// Runs the check on files and directories.
pub fn run(paths: &[PathBuf], opts: &CheckOptions) -> CheckOutcome {
    let set = match load_paths(paths) {
        Ok(set) => set,
        Err(e) => {
            return CheckOutcome {
                stdout: String::new(),
                stderr_summary: e.to_string(),
                exit_code: 2,
            }
        }
    };
    let compiled = compile(&set, &opts.params);
    let stdout = match opts.output {
        OutputFormat::Yaml => status_yaml(&compiled.status),
        OutputFormat::Json => status_json(&compiled.status),
    };
    CheckOutcome {
        stdout,
        stderr_summary: compiled.status.summary(),
        exit_code: if compiled.status.all_ok() { 0 } else { 1 },
    }
}

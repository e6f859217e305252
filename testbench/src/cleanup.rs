//! Removing what interrupted runs left behind.
//!
//! A run killed by a signal (Ctrl-C, CI timeout) never reaches its destructors. Its
//! namespaces, run directory and the DPDK runtime directories of the programs it started
//! (`/var/run/dpdk/udplb-<TAP name>` for udplb, `udplb-testpmd-<TAP name>-…` for
//! testpmd, `udplb-gen-<run stem>` for the generator) carry its pid (see
//! [`crate::names`]); whatever belongs to a pid that is no longer alive is removed here:
//! processes inside killed, namespaces deleted, directories removed (also DPDK runtime
//! directories whose `--file-prefix` carries the run's name). Runs of live processes are
//! never touched.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{self, SHORT_TIMEOUT};
use crate::names::{RunId, PREFIX};
use crate::netns::{kill_all_in, list_netns};

/// What [`remove_stale`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Namespaces deleted.
    pub namespaces: Vec<String>,
    /// Run directories and DPDK runtime directories deleted.
    pub dirs: Vec<PathBuf>,
}

/// Where the EAL puts its runtime directories when run as root.
pub const DPDK_RUNTIME: &str = "/var/run/dpdk";

/// The pid of the testbench run that made DPDK runtime directory `name`, if it is one.
fn dpdk_dir_pid(name: &str) -> Option<u32> {
    if let Some(stem) = name.strip_prefix("udplb-gen-") {
        return RunId::parse(stem).map(|id| id.pid);
    }
    RunId::pid_of_ifname(name, "udplb-testpmd-ulbt")
        .or_else(|| RunId::pid_of_ifname(name, "udplb-ulbt"))
}

/// Whether process `pid` exists.
pub fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Names of testbench namespaces whose creating process is gone.
///
/// # Errors
/// As [`list_netns`].
pub fn stale_namespaces() -> Result<Vec<String>> {
    Ok(list_netns()?
        .into_iter()
        .filter(|name| RunId::parse(name).is_some_and(|id| !pid_alive(id.pid)))
        .collect())
}

/// Removes every namespace and run directory of dead runs.
///
/// # Errors
/// The first failure to list or delete; what was removed before stays removed.
pub fn remove_stale() -> Result<CleanupReport> {
    let mut report = CleanupReport::default();
    for name in stale_namespaces()? {
        kill_all_in(&name, Duration::from_secs(5))?;
        exec::run(
            Command::new("ip").args(["netns", "del", &name]),
            None,
            SHORT_TIMEOUT,
        )?;
        report.namespaces.push(name);
    }
    let tmp = std::env::temp_dir();
    remove_stale_dirs(&tmp, &mut report)?;
    // DPDK runtime directories of runs that name their --file-prefix after the run (the
    // scale-out scenario's appliances): EAL makes them even with --no-shconf.
    let dpdk = Path::new(DPDK_RUNTIME);
    if dpdk.is_dir() {
        remove_stale_dirs(dpdk, &mut report)?;
        // …and those named after an interface of the run (udplb, testpmd) or its stem
        // (the generator).
        let entries = std::fs::read_dir(dpdk)
            .map_err(|e| Error::io(format!("listing {}", dpdk.display()), e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if dpdk_dir_pid(name).is_some_and(|pid| !pid_alive(pid)) {
                let path = entry.path();
                std::fs::remove_dir_all(&path)
                    .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
                report.dirs.push(path);
            }
        }
    }
    Ok(report)
}

/// Removes the entries of `parent` named after a dead run.
fn remove_stale_dirs(parent: &Path, report: &mut CleanupReport) -> Result<()> {
    let entries = std::fs::read_dir(parent)
        .map_err(|e| Error::io(format!("listing {}", parent.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PREFIX) {
            continue;
        }
        if RunId::parse(name).is_some_and(|id| !pid_alive(id.pid)) {
            let path = entry.path();
            std::fs::remove_dir_all(&path)
                .map_err(|e| Error::io(format!("removing {}", path.display()), e))?;
            report.dirs.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpdk_runtime_directories_name_their_run() {
        assert_eq!(dpdk_dir_pid("udplb-gen-ulbtb-4242-3"), Some(4242));
        assert_eq!(dpdk_dir_pid("udplb-ulbt0039u2"), Some(4242));
        assert_eq!(dpdk_dir_pid("udplb-testpmd-ulbt0039u2-io"), Some(4242));
        assert_eq!(dpdk_dir_pid("rte"), None);
        assert_eq!(dpdk_dir_pid("udplb-gen-other"), None);
    }

    #[test]
    fn own_pid_is_alive() {
        assert!(pid_alive(std::process::id()));
        // Above the kernel's pid_max ceiling (2^22), no process can exist.
        assert!(!pid_alive(4_194_305));
    }
}

//! `dpdk-testpmd` in a topology's lb namespace: the DPDK process that does nothing but
//! move packets. Tests use it as a stand-in DPDK application (a `net_tap` port, or the
//! vhost-user peer of a virtio port).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{self, Process};
use crate::topology::Topology;

/// Where Debian's `dpdk` package installs it.
pub const TESTPMD: &str = "/usr/bin/dpdk-testpmd";

/// How long start-up (port probe, TAP creation, first statistics) may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `dpdk-testpmd`; killed on drop, and its DPDK runtime directory removed (EAL
/// makes `/var/run/dpdk/<file-prefix>` even with `--no-shconf`).
#[derive(Debug)]
pub struct Testpmd {
    process: Process,
    runtime_dir: PathBuf,
}

impl Testpmd {
    /// Starts testpmd in `topo`'s lb namespace on lcores 0-1 (plus `eal_extra`), without
    /// hugepages (256 MiB), shared config or PCI, with the devices `vdevs`, 8,192 mbufs,
    /// statistics printed every second, and `app_args` (e.g. `--forward-mode=io`). `name`
    /// tells several apart: log `testpmd-<name>.log`, file prefix
    /// `udplb-testpmd-<TAP name>-<name>`. Returns at once; see [`Testpmd::wait_forwarding`].
    ///
    /// # Errors
    /// [`Error::Spawn`] if testpmd is missing.
    pub fn spawn(
        topo: &Topology,
        name: &str,
        eal_extra: &[&str],
        vdevs: &[String],
        app_args: &[&str],
    ) -> Result<Testpmd> {
        let prefix = format!("udplb-testpmd-{}-{name}", topo.tap_name());
        let mut args: Vec<&str> = vec!["-l", "0-1"];
        args.extend_from_slice(eal_extra);
        args.extend_from_slice(&[
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
            "--no-pci",
            "--log-level=lib.eal:error",
            "--file-prefix",
            &prefix,
        ]);
        for vdev in vdevs {
            args.extend_from_slice(&["--vdev", vdev]);
        }
        args.push("--");
        args.extend_from_slice(app_args);
        args.extend_from_slice(&["--total-num-mbufs=8192", "--stats-period=1"]);
        let runtime_dir = Path::new("/var/run/dpdk").join(&prefix);
        let process = topo.spawn_in_lb(TESTPMD, &args, &format!("testpmd-{name}.log"))?;
        Ok(Testpmd {
            process,
            runtime_dir,
        })
    }

    /// testpmd with one `net_tap` port on the topology's TAP, forwarding in `mode` (`io`,
    /// `macswap`, `txonly`, …); returns once the TAP is bridged and testpmd forwards.
    ///
    /// # Errors
    /// As [`Testpmd::spawn`]; [`Error::Invalid`] with the cause and its log if the TAP
    /// does not appear or forwarding does not start within 30 s.
    pub fn on_tap(topo: &Topology, mode: &str) -> Result<Testpmd> {
        let vdev = format!("net_tap0,iface={}", topo.tap_name());
        let testpmd = Testpmd::spawn(
            topo,
            mode,
            &[],
            &[vdev],
            &[&format!("--forward-mode={mode}")],
        )?;
        topo.attach_tap(topo.tap_name(), START_TIMEOUT)
            .map_err(|e| testpmd.with_log(e))?;
        testpmd.wait_forwarding()?;
        Ok(testpmd)
    }

    /// Waits (30 s at most) for the first statistics block: every port has started, and
    /// `net_tap` has given the kernel side of its TAP a MAC. (The TAP exists before DPDK
    /// starts the port; frames sent earlier are dropped.)
    ///
    /// # Errors
    /// [`Error::Invalid`] with the timeout and its log.
    pub fn wait_forwarding(&self) -> Result<()> {
        exec::wait_for("testpmd to forward", START_TIMEOUT, || {
            Ok(self.process.log().contains("Port statistics").then_some(()))
        })
        .map_err(|e| self.with_log(e))
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The MAC testpmd gave port 0.
    pub fn port_mac(&self) -> Option<String> {
        port_mac(&self.log())
    }

    /// The largest figure it has printed so far after `label` (its statistics are
    /// cumulative, e.g. `RX-packets:`, `TX-packets:`, `Tx-pps:`).
    pub fn counter(&self, label: &str) -> Option<u64> {
        max_counter(&self.log(), label)
    }

    /// `e` with the log appended, for error messages.
    fn with_log(&self, e: Error) -> Error {
        Error::invalid("testpmd", format!("{e}; log:\n{}", self.log()))
    }
}

impl Drop for Testpmd {
    fn drop(&mut self) {
        self.process.kill();
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}

/// The MAC in testpmd's `Port 0: 02:…` line.
fn port_mac(log: &str) -> Option<String> {
    log.lines().find_map(|l| {
        let mac = l.trim().strip_prefix("Port 0: ")?.trim();
        (mac.len() == 17 && mac.matches(':').count() == 5).then(|| mac.to_owned())
    })
}

/// The largest number printed after `label` in `log`.
pub fn max_counter(log: &str, label: &str) -> Option<u64> {
    log.split(label)
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_parsing() {
        let log = "Configuring Port 0 (socket 0)\nPort 0: 8E:2B:7A:10:0C:01\nChecking link\n  RX-packets: 10  RX-missed: 0\n  Rx-pps: 5   Rx-bps: 1\n  Tx-pps: 7\n  RX-packets: 42\n  Tx-pps: 3\n";
        assert_eq!(port_mac(log).as_deref(), Some("8E:2B:7A:10:0C:01"));
        assert_eq!(port_mac("Port 0: link up"), None);
        assert_eq!(max_counter(log, "RX-packets:"), Some(42));
        assert_eq!(max_counter(log, "Tx-pps:"), Some(7));
        assert_eq!(max_counter("", "Tx-pps:"), None);
        let virtio = "  TX-packets: 3   TX-errors: 0\n  TX-packets: 41    TX-errors: 0\n";
        assert_eq!(max_counter(virtio, "TX-packets:"), Some(41));
    }
}

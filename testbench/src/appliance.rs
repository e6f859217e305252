//! Runs the real `udplb` binary in a topology's lb namespace, on a DPDK `net_tap` port,
//! and talks to its management API (loopback of the lb namespace, reached with `curl`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::exec::Process;
use crate::metrics::Metrics;
use crate::topology::Topology;

/// Management API address inside the lb namespace (each namespace has its own loopback).
pub const API: &str = "127.0.0.1:9180";

/// How to start udplb.
#[derive(Clone, Debug)]
pub struct ApplianceOptions {
    /// `fullnat` or `preserve-client`.
    pub nat_mode: String,
    /// Gateway API manifests (multi-document YAML) written to `manifests/all.yaml`.
    pub manifests: String,
    /// Extra top-level settings lines appended to the generated `appliance.yaml`.
    pub extra_settings: String,
    /// Flow idle timeout.
    pub idle_timeout: String,
    /// Flow table capacity (all workers together).
    pub flow_capacity: u32,
    /// New flows per second per worker before the flood guard engages (0: no guard).
    pub new_flow_rate_limit: u32,
    /// Worker sleep after empty polls, µs. The testbench's default of 100 spares the
    /// shared test machine's CPUs; 0 polls without sleeping, as deployed.
    pub idle_backoff_us: u32,
    /// The DPDK device of the appliance's port; `None` (the default) is the topology's
    /// TAP (`net_tap0,iface=<topology TAP>`), which [`Appliance::start`] bridges. Any
    /// other device (e.g. `net_virtio_user0,path=<socket>`) is the caller's to connect.
    pub device: Option<String>,
    /// A second port, facing the backends on their own link
    /// ([`TopologyBuilder::separate_backend_link`](crate::topology::TopologyBuilder::separate_backend_link)),
    /// e.g. `net_af_xdp1,iface=<topology backend veth>`: it gets the backend gateway
    /// addresses and the first port the others. `None` (the default): one port holds
    /// every address.
    pub backend_device: Option<String>,
    /// CPUs udplb may run on (`taskset -c`, e.g. `"0,1"`); `None` (the default): those of
    /// this process. Its worker lcores must be among them.
    pub cpus: Option<String>,
    /// `manifests: {source: both, paths: [manifests], state_dir: state}` instead of the
    /// short form: a set PUT through the API is persisted (in `<dir>/state`) and survives
    /// a restart.
    pub persist_api: bool,
    /// The appliance port's MAC (`ports[0].mac`); `None`: the device's own (net_tap makes
    /// up a new one at every start). A fixed MAC keeps the neighbors' caches valid across
    /// restarts, as a real NIC does.
    pub mac: Option<String>,
    /// The first port's MTU (`ports[0].mtu`); `None`: the default, 1500.
    pub mtu: Option<u16>,
}

impl ApplianceOptions {
    /// Full NAT with `manifests`, 30 s idle timeout.
    pub fn new(manifests: impl Into<String>) -> ApplianceOptions {
        ApplianceOptions {
            nat_mode: "fullnat".into(),
            manifests: manifests.into(),
            extra_settings: String::new(),
            idle_timeout: "30s".into(),
            flow_capacity: 65_536,
            new_flow_rate_limit: 0,
            idle_backoff_us: 100,
            device: None,
            backend_device: None,
            cpus: None,
            persist_api: false,
            mac: None,
            mtu: None,
        }
    }

    /// The port's DPDK device (vdev args or PCI address): the override, else the TAP.
    pub fn device(&self, topo: &Topology) -> String {
        self.device
            .clone()
            .unwrap_or_else(|| format!("net_tap0,iface={}", topo.tap_name()))
    }

    /// Whether the port is a DPDK `net_tap` that the testbench bridges itself.
    pub fn is_tap(&self) -> bool {
        self.device
            .as_deref()
            .is_none_or(|d| d.starts_with("net_tap"))
    }

    /// Whether a port is attached through the kernel (`net_af_xdp`, `net_af_packet`), so
    /// it sees what the veth peer's senders hand over, checksum offload included.
    pub fn is_kernel_attached(&self) -> bool {
        [&self.device, &self.backend_device]
            .into_iter()
            .flatten()
            .any(|d| d.starts_with("net_af_xdp") || d.starts_with("net_af_packet"))
    }
}

/// A running udplb; stopped with SIGTERM (then killed) on drop.
pub struct Appliance<'t> {
    topo: &'t Topology,
    process: Process,
    dir: PathBuf,
}

/// The udplb binary next to the running test or tool binary (`target/<profile>/udplb`).
///
/// # Errors
/// [`Error::Invalid`] when it has not been built (`cargo build -p appliance`).
pub fn udplb_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| Error::io("current_exe", e))?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test binaries live in target/<profile>/deps.
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join("udplb");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(Error::invalid(
            "udplb binary",
            format!(
                "{} not found: build it first (cargo build -p appliance)",
                bin.display()
            ),
        ))
    }
}

/// The `appliance.yaml` the bench uses: one port (the topology's TAP unless
/// [`ApplianceOptions::device`] says otherwise) with the topology's gateway addresses (the
/// backend gateways on a second port with [`ApplianceOptions::backend_device`]), the
/// addressing's SNAT addresses, one worker.
pub fn settings_yaml(topo: &Topology, opts: &ApplianceOptions) -> String {
    let a = topo.addressing();
    let backend_gateways = [a.backend_gateway_v4, a.backend_gateway_v6];
    let mut s = String::new();
    let _ = writeln!(s, "ports:");
    let name = if opts.is_tap() { "tap0" } else { "port0" };
    let _ = writeln!(s, "  - name: {name}");
    let _ = writeln!(s, "    device: \"{}\"", opts.device(topo));
    if let Some(mac) = &opts.mac {
        let _ = writeln!(s, "    mac: \"{mac}\"");
    }
    if let Some(mtu) = opts.mtu {
        let _ = writeln!(s, "    mtu: {mtu}");
    }
    let _ = writeln!(s, "    addresses:");
    for addr in a.appliance_addrs() {
        if opts.backend_device.is_none() || !backend_gateways.contains(&addr) {
            let _ = writeln!(s, "      - \"{}/{}\"", addr.addr, addr.prefix_len);
        }
    }
    if let Some(device) = &opts.backend_device {
        let _ = writeln!(s, "  - name: backends");
        let _ = writeln!(s, "    device: \"{device}\"");
        let _ = writeln!(s, "    addresses:");
        for addr in backend_gateways {
            let _ = writeln!(s, "      - \"{}/{}\"", addr.addr, addr.prefix_len);
        }
    }
    let _ = writeln!(s, "snat:");
    let _ = writeln!(s, "  ipv4: {}", a.snat_v4);
    let _ = writeln!(s, "  ipv6: \"{}\"", a.snat_v6);
    let _ = writeln!(
        s,
        "workers: {{lcores: [1], main_lcore: 0, idle_backoff_us: {}}}",
        opts.idle_backoff_us
    );
    let _ = writeln!(
        s,
        "flows: {{capacity: {}, idle_timeout: {}, new_flow_rate_limit: {}}}",
        opts.flow_capacity, opts.idle_timeout, opts.new_flow_rate_limit
    );
    let _ = writeln!(s, "nat_mode: {}", opts.nat_mode);
    let _ = writeln!(s, "management: {{listen: \"{API}\"}}");
    if opts.persist_api {
        let _ = writeln!(
            s,
            "manifests: {{source: both, paths: [manifests], state_dir: state}}"
        );
    } else {
        let _ = writeln!(s, "manifests: [manifests]");
    }
    let _ = writeln!(
        s,
        "eal_args: [--no-huge, -m, \"256\", --no-shconf, --no-pci, --file-prefix, \"udplb-{}\", \"--log-level=lib.eal:error\"]",
        topo.tap_name()
    );
    s.push_str(&opts.extra_settings);
    s
}

impl<'t> Appliance<'t> {
    /// Writes the settings and manifests, starts udplb in the lb namespace, bridges its
    /// TAP (only when the port is the default TAP) and waits until it reports ready.
    ///
    /// # Errors
    /// udplb is missing, exits, or does not become ready within 60 s.
    pub fn start(topo: &'t Topology, opts: &ApplianceOptions) -> Result<Appliance<'t>> {
        let bin = udplb_binary()?;
        let dir = topo.run_dir().join("udplb");
        let manifests = dir.join("manifests");
        std::fs::create_dir_all(&manifests).map_err(|e| Error::io("create udplb dir", e))?;
        std::fs::write(manifests.join("all.yaml"), &opts.manifests)
            .map_err(|e| Error::io("write manifests", e))?;
        let settings = dir.join("appliance.yaml");
        std::fs::write(&settings, settings_yaml(topo, opts))
            .map_err(|e| Error::io("write appliance.yaml", e))?;
        if opts.is_kernel_attached() {
            topo.disable_tx_checksum_offload()?;
        }
        let settings_arg = settings.to_string_lossy().into_owned();
        // A restart (after `kill`) logs to a fresh file, so that waiting for its start-up
        // lines never finds the previous run's.
        let log = (0..)
            .map(|i| {
                if i == 0 {
                    "udplb.log".to_owned()
                } else {
                    format!("udplb.{i}.log")
                }
            })
            .find(|name| !topo.log_path(name).exists())
            .unwrap_or_else(|| "udplb.log".to_owned());
        let bin_arg = bin.to_string_lossy().into_owned();
        let process = match &opts.cpus {
            Some(cpus) => topo.spawn_in_lb(
                "taskset",
                &["-c", cpus, &bin_arg, "run", "-c", &settings_arg],
                &log,
            )?,
            None => topo.spawn_in_lb(&bin, &["run", "-c", &settings_arg], &log)?,
        };
        let mut app = Appliance { topo, process, dir };
        if opts.is_tap() {
            topo.attach_tap(topo.tap_name(), Duration::from_secs(30))?;
            // As soon as the port has started (and taken its MAC), give the kernel side of
            // the TAP its own MAC, before the slow path's first neighbor probes go out.
            app.wait_log("driver net_tap", Duration::from_secs(60))?;
            topo.detach_tap_mac(topo.tap_name())?;
        }
        app.wait_ready(Duration::from_secs(60))?;
        Ok(app)
    }

    fn wait_log(&mut self, needle: &str, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        while !self.process.log().contains(needle) {
            if !self.process.is_running() || start.elapsed() > timeout {
                return Err(Error::invalid(
                    "udplb",
                    format!("no {needle:?} in its log:\n{}", self.process.log()),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if !self.process.is_running() {
                return Err(Error::invalid(
                    "udplb",
                    format!("exited during start-up:\n{}", self.process.log()),
                ));
            }
            if self.process.log().contains("udplb ready") {
                if let Ok((200, _)) = self.get("/healthz") {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                return Err(Error::invalid(
                    "udplb",
                    format!("not ready after {timeout:?}:\n{}", self.process.log()),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Its process id (for `/proc/<pid>`).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Kills it with SIGKILL (no shutdown at all, as a crash or the OOM killer would) and
    /// reaps it.
    pub fn kill(mut self) {
        self.process.kill();
    }

    /// Where its settings and manifests live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn curl(&self, args: &[&str]) -> Result<(u16, String)> {
        let mut all = vec!["-sS", "--max-time", "20", "-w", "\n%{http_code}"];
        all.extend_from_slice(args);
        let out = self
            .topo
            .lb_ns()
            .run("curl", &all, Duration::from_secs(25))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        let code = code
            .trim()
            .parse()
            .map_err(|_| Error::invalid("curl", format!("no HTTP status in {text:?}")))?;
        Ok((code, body.to_owned()))
    }

    /// `GET path` on the management API.
    ///
    /// # Errors
    /// curl fails (the API is down).
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        self.curl(&[&format!("http://{API}{path}")])
    }

    /// `PUT /v1/manifests` with `yaml`.
    ///
    /// # Errors
    /// curl fails (the API is down).
    pub fn put_manifests(&self, yaml: &str) -> Result<(u16, String)> {
        let file = self.dir.join("put.yaml");
        std::fs::write(&file, yaml).map_err(|e| Error::io("write put.yaml", e))?;
        let data = format!("@{}", file.display());
        self.curl(&[
            "-X",
            "PUT",
            "--data-binary",
            &data,
            &format!("http://{API}/v1/manifests"),
        ])
    }

    /// `PUT /v1/manifests` with the body in `file` (written once, sent many times).
    ///
    /// # Errors
    /// curl fails (the API is down).
    pub fn put_manifests_file(&self, file: &Path) -> Result<(u16, String)> {
        let data = format!("@{}", file.display());
        self.curl(&[
            "-X",
            "PUT",
            "--data-binary",
            &data,
            &format!("http://{API}/v1/manifests"),
        ])
    }

    /// Every sample of `/metrics`, to query by name and labels.
    ///
    /// # Errors
    /// The API is down or does not answer 200.
    pub fn metrics(&self) -> Result<Metrics> {
        match self.get("/metrics")? {
            (200, text) => Ok(Metrics::parse(&text)),
            (code, text) => Err(Error::invalid(
                "udplb /metrics",
                format!("HTTP {code}: {text}"),
            )),
        }
    }

    /// The value of the metric line that starts with `prefix` (name and labels), summed
    /// over every matching line.
    ///
    /// # Errors
    /// The API is down.
    pub fn metric(&self, prefix: &str) -> Result<u64> {
        let (_, text) = self.get("/metrics")?;
        Ok(sum_metric(&text, prefix))
    }

    /// Stops udplb with SIGTERM and returns its exit status and log.
    ///
    /// # Errors
    /// It does not exit within 20 s.
    pub fn stop(self) -> Result<(std::process::ExitStatus, String)> {
        self.stop_report().map(|s| (s.status, s.log))
    }

    /// Stops udplb with SIGTERM and reports how it ended, including whether it left its
    /// DPDK runtime directory behind (looked at before the testbench removes it).
    ///
    /// # Errors
    /// It does not exit within 20 s.
    pub fn stop_report(mut self) -> Result<Stopped> {
        let status = self.process.stop("TERM", Duration::from_secs(20))?;
        let runtime_dir = runtime_dir(self.topo);
        Ok(Stopped {
            status,
            log: self.process.log(),
            runtime_dir_left: runtime_dir.exists(),
            runtime_dir,
        })
    }
}

/// How a udplb ended ([`Appliance::stop_report`]).
#[derive(Debug)]
pub struct Stopped {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// Its whole log.
    pub log: String,
    /// Its DPDK runtime directory (`/var/run/dpdk/<file-prefix>`).
    pub runtime_dir: PathBuf,
    /// Whether that directory still existed after udplb exited.
    pub runtime_dir_left: bool,
}

impl Drop for Appliance<'_> {
    fn drop(&mut self) {
        // EAL makes /var/run/dpdk/<file-prefix> even with --no-shconf: leave nothing behind.
        let _ = std::fs::remove_dir_all(runtime_dir(self.topo));
    }
}

/// The DPDK runtime directory of the udplb that `settings_yaml` configures.
fn runtime_dir(topo: &Topology) -> PathBuf {
    PathBuf::from(format!("/var/run/dpdk/udplb-{}", topo.tap_name()))
}

/// Sums the values of the metric lines starting with `prefix`.
// Prometheus values are floats; udplb's are non-negative integers, so the saturating
// float-to-integer conversion is exact.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn sum_metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.starts_with(prefix))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_metric_lines() {
        let text = "# HELP x y\nudplb_drops_total{reason=\"a\"} 3\nudplb_drops_total{reason=\"b\"} 4\nudplb_x 9\n";
        assert_eq!(sum_metric(text, "udplb_drops_total"), 7);
        assert_eq!(sum_metric(text, "udplb_drops_total{reason=\"b\"}"), 4);
        assert_eq!(sum_metric(text, "udplb_y"), 0);
    }

    #[test]
    fn only_tap_devices_are_bridged_by_start() {
        let mut opts = ApplianceOptions::new("");
        assert!(opts.is_tap(), "the default port is the topology's TAP");
        opts.device = Some("net_tap0,iface=other".into());
        assert!(opts.is_tap());
        opts.device = Some("net_virtio_user0,path=/tmp/x.sock,queues=1".into());
        assert!(!opts.is_tap());
    }
}

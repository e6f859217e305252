//! One appliance of the scale-out fabric: its namespace with an edge veth and a backends
//! veth (DPDK `net_af_packet` ports), a management veth (kernel) to the router, its BIRD
//! (deploy/bird/udplb-appliance.conf) and the real `udplb` with `announce:`.
//!
//! Dropping a node kills udplb and BIRD, removes udplb's DPDK runtime directory
//! (`/var/run/dpdk/<file-prefix>`, which EAL makes even with `--no-shconf`) and deletes the
//! namespace, and with it the veths and the liveness TAP.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use super::bird::{self, Bird};
use super::fabric::{address, namespace, tx_checksum_off, veth};
use super::plan::{self, ApplianceAddrs, Names};
use super::HaMode;
use crate::error::{Error, Result};
use crate::exec::{Process, SHORT_TIMEOUT};
use crate::metrics::Metrics;
use crate::netns::Netns;

/// The management API inside each appliance namespace.
pub const API: &str = "127.0.0.1:9180";

/// The write token's file in each appliance's directory: `udplb drain` sends it (and
/// would otherwise read /etc/udplb/token, the host's, when that exists).
pub const TOKEN_FILE: &str = "token";

/// Frames in each `net_af_packet` ring (DPDK's default: 512). The kernel fills the RX
/// ring while the worker is not scheduled and drops what does not fit, uncounted by
/// udplb (DPDK 22.11 does not report those drops); 4,096 frames hold about a second of
/// one appliance's share of the demo's traffic, so a loaded machine's scheduling delays
/// do not become losses.
pub const AF_PACKET_FRAMES: u32 = 4096;

/// The metric that counts client datagrams forwarded per listener.
pub const FORWARDED: &str = "udplb_listener_packets_total";

/// The appliance settings the scenario varies.
#[derive(Clone, Debug)]
pub struct NodeSettings {
    /// `workers.idle_backoff_us`: idle workers sleep, so four appliances share two CPUs.
    pub idle_backoff_us: u32,
    /// `workers.heartbeat_timeout`.
    pub heartbeat_timeout: String,
    /// `flows.idle_timeout` (a drain ends when every flow went idle).
    pub idle_timeout: String,
    /// `drain.deadline`.
    pub drain_deadline: String,
    /// `announce.interval`.
    pub announce_interval: String,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            idle_backoff_us: 500,
            heartbeat_timeout: "1s".into(),
            idle_timeout: "2s".into(),
            drain_deadline: "5s".into(),
            announce_interval: "100ms".into(),
        }
    }
}

/// A running appliance.
pub struct Node {
    k: usize,
    addrs: ApplianceAddrs,
    dir: PathBuf,
    runtime_dir: PathBuf,
    // Drop order: udplb, then BIRD, then the namespace.
    udplb: Process,
    bird: Bird,
    ns: Netns,
}

/// The appliance.yaml of appliance `a` in `mode`.
pub fn settings_yaml(
    names: &Names,
    a: &ApplianceAddrs,
    mode: HaMode,
    s: &NodeSettings,
    dir: &Path,
) -> Result<String> {
    let k = a.k;
    // Odd appliances poll on CPU 1, even ones on CPU 0: the workers share the machine.
    let (worker, main) = if k % 2 == 1 { (1, 0) } else { (0, 1) };
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# appliance {k} of the scale-out scenario ({mode}); see deploy/udplb-appliance.yaml"
    );
    let _ = writeln!(y, "ports:");
    let _ = writeln!(
        y,
        "  - {{name: edge, device: \"net_af_packet0,iface={},framecnt={AF_PACKET_FRAMES}\", addresses: [\"{}/{}\"]}}",
        names.edge_if(k)?,
        a.edge,
        plan::LINK_PREFIX
    );
    let _ = writeln!(
        y,
        "  - {{name: backends, device: \"net_af_packet1,iface={},framecnt={AF_PACKET_FRAMES}\", addresses: [\"{}/{}\"]}}",
        names.backends_if(k)?,
        a.backend_port,
        plan::LINK_PREFIX
    );
    let _ = writeln!(y, "routes:");
    let _ = writeln!(
        y,
        "  - {{prefix: 0.0.0.0/0, via: {}, port: edge}}",
        a.router_edge
    );
    if mode == HaMode::FullNat {
        let _ = writeln!(y, "snat: {{ipv4: {}}}", a.snat);
    }
    let _ = writeln!(y, "nat_mode: {}", mode.as_str());
    let _ = writeln!(y, "maglev: {{seed: 0x7564706c62000001}}");
    let _ = writeln!(
        y,
        "workers: {{lcores: [{worker}], main_lcore: {main}, idle_backoff_us: {}, heartbeat_timeout: {}}}",
        s.idle_backoff_us, s.heartbeat_timeout
    );
    let _ = writeln!(
        y,
        "flows: {{capacity: 65536, idle_timeout: {}}}",
        s.idle_timeout
    );
    let _ = writeln!(
        y,
        "management: {{listen: \"{API}\", token_file: \"{}\"}}",
        dir.join(TOKEN_FILE).display()
    );
    let _ = writeln!(y, "manifests: [manifests]");
    let _ = writeln!(
        y,
        "eal_args: [--no-huge, -m, \"256\", --no-shconf, --no-pci, --file-prefix, \"{}\", \"--log-level=lib.eal:error\"]",
        names.dpdk_prefix(k)
    );
    let _ = writeln!(y, "drain: {{deadline: {}}}", s.drain_deadline);
    let _ = writeln!(y, "announce:");
    let _ = writeln!(
        y,
        "  bird: {{socket: \"{}\", include: \"{}\", timeout: 2s}}",
        dir.join("bird.ctl").display(),
        dir.join("inc/vips.conf").display()
    );
    let _ = writeln!(y, "  liveness_interface: {}", names.liveness_if(k)?);
    let _ = writeln!(y, "  interval: {}", s.announce_interval);
    let _ = writeln!(y, "  stop_grace: 1s");
    if mode == HaMode::PreserveClient {
        let _ = writeln!(y, "  return_routes: [0.0.0.0/0]");
    }
    Ok(y)
}

/// Writes appliance `k`'s write token to `path`, mode 0600 (udplb refuses a token
/// others can read). Not a secret: the API listens on the namespace's loopback.
fn write_token(path: &Path, k: usize) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    writeln!(f, "ha-appliance-{k}-{}", std::process::id())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

impl Node {
    /// Creates appliance `k`'s namespace and links into `router`, starts its BIRD and its
    /// udplb (which announces once ready); does not wait for udplb.
    ///
    /// # Errors
    /// Any command fails; BIRD does not come up.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        names: &Names,
        k: usize,
        router: &Netns,
        run_dir: &Path,
        udplb: &Path,
        mode: HaMode,
        settings: &NodeSettings,
        manifests: &str,
    ) -> Result<Node> {
        let a = plan::appliance(k);
        let ns = namespace(&names.appliance_ns(k))?;
        // Edge: the router's side has the gateway address; udplb's port has its own.
        let r_edge = names.router_edge_if(k)?;
        veth(router, &r_edge, &ns, &names.edge_if(k)?)?;
        address(router, &r_edge, a.router_edge, plan::LINK_PREFIX)?;
        tx_checksum_off(router, &r_edge)?;
        // Backends: a port on the router's bridge.
        let r_back = names.router_appliance_backend_if(k)?;
        veth(router, &r_back, &ns, &names.backends_if(k)?)?;
        router.ip(&["link", "set", &r_back, "master", &names.backend_bridge()?])?;
        // Management: kernel addresses on both sides, BGP and BFD.
        let r_mgmt = names.router_mgmt_if(k)?;
        let mgmt = names.mgmt_if(k)?;
        veth(router, &r_mgmt, &ns, &mgmt)?;
        address(router, &r_mgmt, a.router_mgmt, plan::MGMT_PREFIX)?;
        address(&ns, &mgmt, a.mgmt, plan::MGMT_PREFIX)?;

        let dir = run_dir.join(format!("a{k}"));
        for d in [dir.join("inc"), dir.join("manifests")] {
            std::fs::create_dir_all(&d)
                .map_err(|e| Error::io(format!("creating {}", d.display()), e))?;
        }
        let log = dir.join("bird.log");
        let conf = bird::appliance_conf(&a, &mgmt, &dir.join("inc"), &log)?;
        let bird = Bird::start(&ns, &dir, "bird", &conf, &log)?;

        std::fs::write(dir.join("manifests/all.yaml"), manifests)
            .map_err(|e| Error::io("writing the manifests", e))?;
        write_token(&dir.join(TOKEN_FILE), k)?;
        let yaml = settings_yaml(names, &a, mode, settings, &dir)?;
        let settings_path = dir.join("appliance.yaml");
        std::fs::write(&settings_path, yaml)
            .map_err(|e| Error::io(format!("writing {}", settings_path.display()), e))?;
        let udplb = ns.spawn(
            udplb,
            &["run", "-c", &settings_path.to_string_lossy()],
            &dir.join("udplb.log"),
        )?;
        Ok(Node {
            k,
            addrs: a,
            dir,
            runtime_dir: names.dpdk_runtime_dir(k),
            udplb,
            bird,
            ns,
        })
    }

    /// Its index.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Its addresses.
    pub fn addrs(&self) -> &ApplianceAddrs {
        &self.addrs
    }

    /// Its namespace.
    pub fn ns(&self) -> &Netns {
        &self.ns
    }

    /// Its directory (settings, manifests, logs, BIRD's files).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its BIRD.
    pub fn bird(&self) -> &Bird {
        &self.bird
    }

    /// udplb's log so far.
    pub fn log(&self) -> String {
        self.udplb.log()
    }

    /// Whether udplb still runs.
    pub fn udplb_running(&mut self) -> bool {
        self.udplb.is_running()
    }

    /// Waits until udplb logs `udplb ready` and `/healthz` answers 200.
    ///
    /// # Errors
    /// udplb exits, or is not ready within `timeout` (with its log).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if !self.udplb.is_running() {
                return Err(Error::invalid(
                    format!("udplb of appliance {}", self.k),
                    format!("exited during start-up:\n{}", self.udplb.log()),
                ));
            }
            if self.udplb.log().contains("udplb ready")
                && matches!(self.get("/healthz"), Ok((200, _)))
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(Error::invalid(
                    format!("udplb of appliance {}", self.k),
                    format!("not ready after {timeout:?}:\n{}", self.udplb.log()),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `GET path` on its management API: status code and body.
    ///
    /// # Errors
    /// curl fails (udplb is not listening).
    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        let out = self.ns.run(
            "curl",
            &[
                "-sS",
                "--max-time",
                "5",
                "-w",
                "\n%{http_code}",
                &format!("http://{API}{path}"),
            ],
            SHORT_TIMEOUT,
        )?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
        let code = code
            .trim()
            .parse()
            .map_err(|_| Error::invalid("curl", format!("no HTTP status in {text:?}")))?;
        Ok((code, body.to_owned()))
    }

    /// Its metrics.
    ///
    /// # Errors
    /// The API does not answer 200.
    pub fn metrics(&self) -> Result<Metrics> {
        match self.get("/metrics")? {
            (200, text) => Ok(Metrics::parse(&text)),
            (code, text) => Err(Error::invalid(
                format!("appliance {} /metrics", self.k),
                format!("HTTP {code}: {text}"),
            )),
        }
    }

    /// Client datagrams it forwarded so far (every listener).
    ///
    /// # Errors
    /// As [`Node::metrics`].
    pub fn forwarded(&self) -> Result<u64> {
        Ok(self.metrics()?.sum(FORWARDED, &[]))
    }

    /// SIGKILLs udplb without waiting for the kernel to finish tearing it down (its
    /// BIRD keeps running: it must withdraw by itself).
    pub fn sigkill_udplb(&mut self) {
        self.udplb.sigkill();
    }

    /// Waits at most `timeout` for udplb to be gone (reaped).
    ///
    /// # Errors
    /// It still runs after `timeout`.
    pub fn reap_udplb(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.udplb.wait_timeout(timeout)
    }

    /// Starts `udplb drain --wait --deadline <deadline>` inside the namespace, in the
    /// background; its log is `drain.log`.
    ///
    /// # Errors
    /// It cannot start.
    pub fn spawn_drain(&self, udplb: &Path, deadline: &str) -> Result<Process> {
        self.ns.spawn(
            udplb,
            &[
                "drain",
                "--api",
                API,
                "--token-file",
                &self.dir.join(TOKEN_FILE).to_string_lossy(),
                "--deadline",
                deadline,
                "--wait",
            ],
            &self.dir.join("drain.log"),
        )
    }

    /// Stops udplb with SIGTERM (graceful: withdraw, then stop), killing it after
    /// `timeout`.
    ///
    /// # Errors
    /// It did not exit in time.
    pub fn stop_udplb(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.udplb.stop("TERM", timeout)
    }

    /// Whether its DPDK runtime directory exists.
    pub fn runtime_dir(&self) -> &Path {
        &self.runtime_dir
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.udplb.kill();
        self.bird.stop(Duration::from_millis(500));
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::RunId;

    #[test]
    fn settings_per_mode() {
        let names = Names::new(RunId { pid: 77, seq: 1 });
        let dir = Path::new("/tmp/x/a2");
        let s = NodeSettings::default();
        let pc = settings_yaml(&names, &plan::appliance(2), HaMode::PreserveClient, &s, dir)
            .expect("renders");
        assert!(pc.contains("return_routes: [0.0.0.0/0]"), "{pc}");
        assert!(!pc.contains("snat:"));
        assert!(pc.contains("nat_mode: preserve-client"));
        assert!(pc.contains("via: 198.18.12.1"));
        assert!(pc.contains("lcores: [0], main_lcore: 1"));
        let fnat =
            settings_yaml(&names, &plan::appliance(1), HaMode::FullNat, &s, dir).expect("renders");
        assert!(fnat.contains("snat: {ipv4: 198.18.128.21}"));
        assert!(!fnat.contains("return_routes"));
        let dsr =
            settings_yaml(&names, &plan::appliance(3), HaMode::Dsr, &s, dir).expect("renders");
        assert!(dsr.contains("nat_mode: dsr"));
        assert!(dsr.contains(&format!(",framecnt={AF_PACKET_FRAMES}\"")));
        assert!(!dsr.contains("snat:") && !dsr.contains("return_routes"));
        assert!(dsr.contains(&format!("--file-prefix, \"{}\"", names.dpdk_prefix(3))));
    }
}

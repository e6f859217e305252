//! BIRD 2 in the scale-out fabric: the configurations are `deploy/bird/router.conf` and
//! `deploy/bird/udplb-appliance.conf` themselves (compiled in), with only what differs
//! in a namespace replaced — the log file, the appliance's addresses, interface names and
//! include directory. Each replaced text must occur exactly once in the deploy file, so a
//! change there that the testbench does not know about fails loudly instead of running
//! a different configuration.
//!
//! Each BIRD runs in the foreground (`bird -f`) as a [`Process`] of the testbench with its
//! own control socket and pid file in the run directory (`-s`, `-P`), so it is killed with
//! its namespace and leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::plan::{ApplianceAddrs, MGMT_IF_PREFIX};
use crate::error::{Error, Result};
use crate::exec::{self, Process, SHORT_TIMEOUT};
use crate::netns::Netns;

/// `deploy/bird/router.conf`.
pub const ROUTER_CONF: &str = include_str!("../../../deploy/bird/router.conf");

/// `deploy/bird/udplb-appliance.conf`.
pub const APPLIANCE_CONF: &str = include_str!("../../../deploy/bird/udplb-appliance.conf");

/// BFD's timers in deploy/bird/ (3 × 100 ms: a dead host or management link noticed in
/// 0.3 s).
pub const DEPLOY_BFD: &str =
    "min rx interval 100 ms; min tx interval 100 ms; idle tx interval 1 s; multiplier 3;";

/// BFD's timers in the scenario: 10 × 300 ms. The scenario never kills a host or a
/// management link (udplb's death is withdrawn through the liveness interface, not by
/// BFD), and on a shared 2-vCPU machine under build load the deploy timers saw false
/// session losses, each of which withdraws an appliance for a second or more.
pub const SCENARIO_BFD: &str =
    "min rx interval 300 ms; min tx interval 300 ms; idle tx interval 1 s; multiplier 10;";

/// Replaces each `(from, to)` in `template`; every `from` must occur exactly once.
///
/// # Errors
/// [`Error::Invalid`] naming `file` and the text that was not found exactly once.
pub fn substitute(file: &str, template: &str, pairs: &[(&str, String)]) -> Result<String> {
    let mut text = template.to_owned();
    for (from, to) in pairs {
        let n = text.matches(from).count();
        if n != 1 {
            return Err(Error::invalid(
                file,
                format!("expected {from:?} exactly once, found it {n} times"),
            ));
        }
        text = text.replacen(from, to, 1);
    }
    Ok(text)
}

/// The router's configuration: deploy/bird/router.conf logging to `log`, with BFD on the
/// management interfaces ([`MGMT_IF_PREFIX`]).
///
/// # Errors
/// The deploy file no longer has the replaced lines.
pub fn router_conf(log: &Path) -> Result<String> {
    substitute(
        "deploy/bird/router.conf",
        ROUTER_CONF,
        &[
            ("log syslog all;", format!("log \"{}\" all;", log.display())),
            (
                "interface \"lb*\"",
                format!("interface \"{MGMT_IF_PREFIX}*\""),
            ),
            (DEPLOY_BFD, SCENARIO_BFD.to_owned()),
        ],
    )
}

/// Appliance `a`'s configuration: deploy/bird/udplb-appliance.conf with its addresses, its
/// management interface `mgmt_if`, the include directory `include_dir` (where udplb
/// writes its file) and logging to `log`.
///
/// # Errors
/// The deploy file no longer has the replaced lines.
pub fn appliance_conf(
    a: &ApplianceAddrs,
    mgmt_if: &str,
    include_dir: &Path,
    log: &Path,
) -> Result<String> {
    substitute(
        "deploy/bird/udplb-appliance.conf",
        APPLIANCE_CONF,
        &[
            ("log syslog all;", format!("log \"{}\" all;", log.display())),
            ("router id 198.18.21.2;", format!("router id {};", a.mgmt)),
            (
                "define VIP_NH4 = 198.18.11.2;",
                format!("define VIP_NH4 = {};", a.edge),
            ),
            (
                "define RETURN_NH4 = 198.18.128.2;",
                format!("define RETURN_NH4 = {};", a.backend_port),
            ),
            ("interface \"mgmt0\"", format!("interface \"{mgmt_if}\"")),
            (DEPLOY_BFD, SCENARIO_BFD.to_owned()),
            (
                "include \"/run/udplb/bird/*.conf\";",
                format!("include \"{}/*.conf\";", include_dir.display()),
            ),
            ("local 198.18.21.2;", format!("local {};", a.mgmt)),
            (
                "neighbor 198.18.21.1 as ROUTER_ASN;",
                format!("neighbor {} as ROUTER_ASN;", a.router_mgmt),
            ),
        ],
    )
}

/// A BIRD process in a namespace; killed on drop.
#[derive(Debug)]
pub struct Bird {
    process: Process,
    socket: PathBuf,
    log: PathBuf,
}

impl Bird {
    /// Writes `conf` to `<dir>/<name>.conf` and starts `bird -f` (at nice -10) in `ns` with its socket
    /// `<dir>/<name>.ctl` and pid file `<dir>/<name>.pid`; waits until the control socket
    /// answers.
    ///
    /// # Errors
    /// The file cannot be written, BIRD cannot start (missing `bird2`: `scripts/setup`),
    /// refuses the configuration or does not answer within 10 s.
    pub fn start(ns: &Netns, dir: &Path, name: &str, conf: &str, log: &Path) -> Result<Bird> {
        let conf_path = dir.join(format!("{name}.conf"));
        std::fs::write(&conf_path, conf)
            .map_err(|e| Error::io(format!("writing {}", conf_path.display()), e))?;
        let socket = dir.join(format!("{name}.ctl"));
        let pid = dir.join(format!("{name}.pid"));
        let stderr = dir.join(format!("{name}.stderr"));
        // A routing daemon's control plane comes first on a router; here it shares two
        // CPUs with the data planes and other builds.
        let process = ns.spawn(
            "nice",
            &[
                "-n",
                "-10",
                "bird",
                "-f",
                "-c",
                &conf_path.to_string_lossy(),
                "-s",
                &socket.to_string_lossy(),
                "-P",
                &pid.to_string_lossy(),
            ],
            &stderr,
        )?;
        let mut bird = Bird {
            process,
            socket,
            log: log.to_owned(),
        };
        let ready = exec::wait_for(
            &format!("BIRD {name} to answer on its control socket"),
            SHORT_TIMEOUT,
            || Ok(bird.birdc(&["show", "status"]).ok()),
        );
        if let Err(e) = ready {
            let exited = !bird.process.is_running();
            return Err(Error::invalid(
                format!("BIRD {name}"),
                format!(
                    "{e} (exited: {exited}); stderr:\n{}\nlog:\n{}",
                    bird.process.log(),
                    bird.log_text()
                ),
            ));
        }
        Ok(bird)
    }

    /// Runs `birdc -s <socket> args…` and returns what it printed.
    ///
    /// # Errors
    /// birdc fails or takes more than 10 s.
    pub fn birdc(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("birdc");
        cmd.arg("-s").arg(&self.socket).args(args);
        let out = exec::run(&mut cmd, None, SHORT_TIMEOUT)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether the BGP protocol `name` is `Established`.
    pub fn established(&self, name: &str) -> bool {
        self.birdc(&["show", "protocols", name])
            .is_ok_and(|text| text.contains("Established"))
    }

    /// Its log file so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Stops it with SIGTERM (BIRD then closes its sessions with a Cease), killing it
    /// after `timeout`.
    pub fn stop(&mut self, timeout: Duration) {
        let _ = self.process.stop("TERM", timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::plan;

    #[test]
    fn substitution_needs_exactly_one_occurrence() {
        let ok = substitute("f", "a b c", &[("b", "x".into())]).expect("once");
        assert_eq!(ok, "a x c");
        let none = substitute("f", "a b c", &[("z", "x".into())]).expect_err("missing");
        assert!(
            none.to_string().contains("\"z\" exactly once, found it 0"),
            "{none}"
        );
        let twice = substitute("f", "b b", &[("b", "x".into())]).expect_err("twice");
        assert!(twice.to_string().contains("found it 2"), "{twice}");
    }

    #[test]
    fn the_deploy_files_render() {
        let router = router_conf(Path::new("/tmp/r.log")).expect("router renders");
        assert!(router.contains("log \"/tmp/r.log\" all;"));
        assert!(router.contains(&format!("interface \"{MGMT_IF_PREFIX}*\"")));
        assert!(router.contains("merge paths on"));
        assert!(router.contains(SCENARIO_BFD) && !router.contains(DEPLOY_BFD));
        let a = plan::appliance(3);
        let conf = appliance_conf(&a, "hdm3x", Path::new("/tmp/inc"), Path::new("/tmp/a3.log"))
            .expect("appliance renders");
        for want in [
            "router id 198.18.21.10;",
            "define VIP_NH4 = 198.18.13.2;",
            "define RETURN_NH4 = 198.18.128.13;",
            "interface \"hdm3x\"",
            "include \"/tmp/inc/*.conf\";",
            "local 198.18.21.10;",
            "neighbor 198.18.21.9 as ROUTER_ASN;",
        ] {
            assert!(conf.contains(want), "{want} missing:\n{conf}");
        }
        assert!(!conf.contains("syslog"));
        assert!(conf.contains(SCENARIO_BFD) && !conf.contains(DEPLOY_BFD));
    }
}

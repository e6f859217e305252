//! Owned network namespaces and running programs inside them.
//!
//! A [`Netns`] is created by [`Netns::create`] and deleted when dropped: first every
//! process still inside it is killed (so nothing keeps the namespace alive after its
//! name is gone), then `ip netns del` removes it and, with it, its interfaces.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{self, Process, SHORT_TIMEOUT};

/// How long teardown waits for killed processes to leave a namespace.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A network namespace owned by this process.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates the namespace `name` and brings its loopback up.
    ///
    /// # Errors
    /// [`Error::Command`] if `ip netns add` fails (e.g. the name exists, or not root).
    pub fn create(name: &str) -> Result<Netns> {
        exec::run(
            Command::new("ip").args(["netns", "add", name]),
            None,
            SHORT_TIMEOUT,
        )?;
        // From here on, Drop removes the namespace even if set-up fails.
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs `program` inside this namespace (`ip netns exec`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Runs `program args…` inside the namespace to completion, bounded by `timeout`.
    ///
    /// # Errors
    /// As [`exec::run`].
    pub fn run(&self, program: &str, args: &[&str], timeout: Duration) -> Result<Output> {
        let mut cmd = self.command(program);
        cmd.args(args);
        exec::run(&mut cmd, None, timeout)
    }

    /// Runs `ip -n <ns> args…`.
    ///
    /// # Errors
    /// As [`exec::run`].
    pub fn ip(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new("ip");
        cmd.args(["-n", &self.name]).args(args);
        exec::run(&mut cmd, None, SHORT_TIMEOUT)
    }

    /// Sets sysctls inside the namespace, e.g. `[("net.ipv4.ip_forward", "1")]`, with
    /// one `sysctl` run.
    ///
    /// # Errors
    /// As [`exec::run`].
    pub fn sysctl(&self, settings: &[(&str, &str)]) -> Result<()> {
        let pairs: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut args = vec!["-qw"];
        args.extend(pairs.iter().map(String::as_str));
        self.run("sysctl", &args, SHORT_TIMEOUT).map(drop)
    }

    /// Starts a long-running `program args…` inside the namespace, logging to `log`.
    ///
    /// # Errors
    /// As [`Process::spawn`].
    pub fn spawn(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        log: &Path,
    ) -> Result<Process> {
        let mut cmd = self.command(program);
        cmd.args(args);
        Process::spawn(cmd, log)
    }

    /// Starts a UDP server like [`Netns::spawn`] and waits, at most `timeout`, until it
    /// has bound `sockets` sockets on `port` (see [`Netns::wait_udp_bound`]).
    ///
    /// # Errors
    /// As [`Process::spawn`]; [`Error::Timeout`] with the server's log if it does not bind
    /// in time (it is then killed).
    pub fn spawn_udp_server(
        &self,
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
        log: &Path,
        port: u16,
        sockets: usize,
        timeout: Duration,
    ) -> Result<Process> {
        let mut process = self.spawn(program, args, log)?;
        if let Err(e) = self.wait_udp_bound(port, sockets, timeout) {
            process.kill();
            return Err(Error::Timeout {
                what: format!(
                    "`{}` to listen ({e}); log:\n{}",
                    process.command(),
                    process.log()
                ),
                timeout,
            });
        }
        Ok(process)
    }

    /// Whether `iface` exists in the namespace.
    pub fn has_link(&self, iface: &str) -> bool {
        self.ip(&["link", "show", "dev", iface]).is_ok()
    }

    /// The MAC address of `iface`.
    ///
    /// # Errors
    /// [`Error::Command`] if it does not exist, [`Error::Parse`] on odd output.
    pub fn mac(&self, iface: &str) -> Result<[u8; 6]> {
        let out = self.ip(&["-br", "link", "show", "dev", iface])?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .find_map(parse_mac)
            .ok_or_else(|| Error::Parse {
                tool: "ip -br link".into(),
                detail: format!("no MAC address in {text:?}"),
            })
    }

    /// Process ids running inside the namespace (`ip netns pids`).
    ///
    /// # Errors
    /// As [`exec::run`].
    pub fn pids(&self) -> Result<Vec<u32>> {
        pids_of(&self.name)
    }

    /// Waits, at most `timeout`, until at least `sockets` UDP sockets in the namespace
    /// are bound to `port` (IPv4 or IPv6, any address), reading `/proc/net/udp{,6}` from
    /// inside. A server listening on several addresses is ready when all are bound.
    ///
    /// # Errors
    /// [`Error::Timeout`] if they are not all bound in time.
    pub fn wait_udp_bound(&self, port: u16, sockets: usize, timeout: Duration) -> Result<()> {
        exec::wait_for(
            &format!("{sockets} UDP socket(s) on port {port} in {}", self.name),
            timeout,
            || {
                let out = self.run("cat", &["/proc/net/udp", "/proc/net/udp6"], SHORT_TIMEOUT)?;
                let bound = udp_sockets_on(&String::from_utf8_lossy(&out.stdout), port);
                Ok((bound >= sockets).then_some(()))
            },
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Errors are ignored: Drop must not panic, and `testbench cleanup` catches leftovers.
        let _ = kill_all_in(&self.name, TEARDOWN_TIMEOUT);
        let _ = exec::run(
            Command::new("ip").args(["netns", "del", &self.name]),
            None,
            SHORT_TIMEOUT,
        );
    }
}

/// Pids inside the namespace named `name`.
pub(crate) fn pids_of(name: &str) -> Result<Vec<u32>> {
    let out = exec::run(
        Command::new("ip").args(["netns", "pids", name]),
        None,
        SHORT_TIMEOUT,
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// SIGKILLs every process in the namespace `name` and waits, bounded, until none is left.
pub(crate) fn kill_all_in(name: &str, timeout: Duration) -> Result<()> {
    exec::wait_for(&format!("processes in {name} to exit"), timeout, || {
        let pids = pids_of(name)?;
        if pids.is_empty() {
            return Ok(Some(()));
        }
        let mut kill = Command::new("kill");
        kill.arg("-KILL").args(pids.iter().map(u32::to_string));
        // Some may exit meanwhile; the next poll sees what is left.
        let _ = exec::run_unchecked(&mut kill, None, SHORT_TIMEOUT);
        Ok(None)
    })
}

/// Names of all namespaces (`ip netns list`).
///
/// # Errors
/// As [`exec::run`].
pub fn list_netns() -> Result<Vec<String>> {
    let out = exec::run(
        Command::new("ip").args(["netns", "list"]),
        None,
        SHORT_TIMEOUT,
    )?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

fn parse_mac(word: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = word.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// How many sockets a `/proc/net/udp`-format table lists with local port `port`.
fn udp_sockets_on(table: &str, port: u16) -> usize {
    let wanted = format!("{port:04X}");
    table
        .lines()
        .filter(|line| {
            line.split_whitespace()
                .nth(1)
                .and_then(|local| local.rsplit_once(':'))
                .is_some_and(|(_, p)| p == wanted)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_macs() {
        assert_eq!(
            parse_mac("02:fc:00:00:0a:FF"),
            Some([0x02, 0xfc, 0, 0, 0x0a, 0xff])
        );
        assert_eq!(parse_mac("UP"), None);
        assert_eq!(parse_mac("02:fc:00:00:0a"), None);
        assert_eq!(parse_mac("02:fc:00:00:0a:ff:01"), None);
    }

    #[test]
    fn finds_bound_udp_ports() {
        let table = "  sl  local_address rem_address   st\n\
            \x20 12: 0B01A8C6:0035 00000000:0000 07 00000000:00000000\n\
            \x20 13: 00000000000000000000000000000000:1B58 00000000000000000000000000000000:0000 07\n";
        assert_eq!(udp_sockets_on(table, 53), 1);
        assert_eq!(udp_sockets_on(table, 7000), 1);
        assert_eq!(udp_sockets_on(&format!("{table}{table}"), 53), 2);
        assert_eq!(udp_sockets_on(table, 54), 0);
        assert_eq!(udp_sockets_on("garbage", 53), 0);
    }
}

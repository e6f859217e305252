//! Running external programs with a bound on time, and owning long-running ones.
//!
//! Every command the bench runs goes through [`run`], which kills it when its timeout
//! expires, so no test can hang on a stuck `ip` or `dig`. Long-running programs
//! (dnsmasq, echo servers, the appliance) are held by a [`Process`] that kills and reaps
//! them when dropped, also during a panic.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default bound for short administrative commands (`ip`, `sysctl`, `kill`).
pub const SHORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a running child is checked for exit.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How often [`wait_for`] re-evaluates its condition (each try may run a command).
const CONDITION_POLL: Duration = Duration::from_millis(10);

/// Renders a command line for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, feeding it `stdin`, and returns its output if it succeeded.
///
/// # Errors
/// [`Error::Spawn`] if it cannot start, [`Error::Timeout`] if it runs longer than
/// `timeout` (it is then killed and reaped), [`Error::Command`] on a non-zero exit.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let output = run_unchecked(cmd, stdin, timeout)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(Error::Command {
            command: describe(cmd),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Like [`run`], but a non-zero exit is returned as output, not as an error.
///
/// # Errors
/// [`Error::Spawn`] or [`Error::Timeout`].
pub fn run_unchecked(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    // Pipes are drained by threads so a chatty child never blocks on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A child that exits early closes its end; that surfaces as its exit status.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let status = match wait_until(&mut child, Instant::now() + timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            kill_and_reap(&mut child);
            return Err(Error::Timeout {
                what: command,
                timeout,
            });
        }
        Err(source) => {
            kill_and_reap(&mut child);
            return Err(Error::io(format!("waiting for `{command}`"), source));
        }
    };
    Ok(Output {
        status,
        stdout: stdout.map(join_drain).unwrap_or_default(),
        stderr: stderr.map(join_drain).unwrap_or_default(),
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn join_drain(handle: thread::JoinHandle<Vec<u8>>) -> Vec<u8> {
    handle.join().unwrap_or_default()
}

/// Polls `child` until it exits or `deadline` passes (`Ok(None)`).
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL_INTERVAL);
    }
}

fn kill_and_reap(child: &mut Child) {
    // Both fail only if the child is already gone, which is the goal.
    let _ = child.kill();
    let _ = child.wait();
}

/// Polls `condition` until it returns `Some`, for at most `timeout`.
///
/// # Errors
/// [`Error::Timeout`] naming `what` if the condition never held; the last error the
/// condition returned, if it failed on its final attempt.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = condition();
        if let Ok(Some(value)) = attempt {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return match attempt {
                Err(e) => Err(e),
                _ => Err(Error::Timeout {
                    what: what.to_owned(),
                    timeout,
                }),
            };
        }
        thread::sleep(CONDITION_POLL);
    }
}

/// A long-running child program, killed (SIGKILL) and reaped when dropped.
///
/// Its stdout and stderr go to a log file, whose path [`Process::log_path`] gives, so a
/// failing test can print what the program said.
#[derive(Debug)]
pub struct Process {
    child: Child,
    command: String,
    log: PathBuf,
}

impl Process {
    /// Starts `cmd` with stdout and stderr appended to `log` and stdin closed.
    ///
    /// # Errors
    /// [`Error::Io`] if the log cannot be created, [`Error::Spawn`] if the program
    /// cannot start.
    pub fn spawn(mut cmd: Command, log: &Path) -> Result<Process> {
        let command = describe(&cmd);
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("creating log {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io(format!("duplicating log {}", log.display()), e))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|source| Error::Spawn {
            command: command.clone(),
            source,
        })?;
        Ok(Process {
            child,
            command,
            log: log.to_owned(),
        })
    }

    /// The process id (also the id inside the namespace: `ip netns exec` execs in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The command line it was started with.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Where its stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The log so far (lossy UTF-8); empty if it cannot be read.
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Whether it still runs (it is reaped if it exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits at most `timeout` for it to exit on its own.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it still runs (it is left running), [`Error::Io`] if
    /// waiting fails.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        match wait_until(&mut self.child, Instant::now() + timeout) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err(Error::Timeout {
                what: format!("`{}` to exit", self.command),
                timeout,
            }),
            Err(e) => Err(Error::io(format!("waiting for `{}`", self.command), e)),
        }
    }

    /// Sends SIGKILL without waiting: the kernel tears the process down (closing its
    /// files, releasing its memory) while the caller watches what that causes; reap it
    /// with [`Process::wait_timeout`] or [`Process::kill`].
    pub fn sigkill(&mut self) {
        // Fails only if the child is already gone.
        let _ = self.child.kill();
    }

    /// Kills it with SIGKILL and reaps it. Idempotent.
    pub fn kill(&mut self) {
        kill_and_reap(&mut self.child);
    }

    /// Sends `signal` (e.g. `"TERM"`) and waits at most `timeout` for the exit; kills it
    /// if it does not go.
    ///
    /// # Errors
    /// [`Error::Timeout`] if it ignored the signal (it was then killed).
    pub fn stop(&mut self, signal: &str, timeout: Duration) -> Result<ExitStatus> {
        if !self.is_running() {
            return self.wait_timeout(Duration::ZERO);
        }
        let mut kill = Command::new("kill");
        kill.arg(format!("-{signal}")).arg(self.pid().to_string());
        // The process may exit between the check and the signal; the wait below decides.
        let _ = run_unchecked(&mut kill, None, SHORT_TIMEOUT);
        let result = self.wait_timeout(timeout);
        if result.is_err() {
            self.kill();
        }
        result
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_returns_stdout_and_feeds_stdin() {
        let mut cat = Command::new("cat");
        let out = run(&mut cat, Some(b"hello"), SHORT_TIMEOUT).expect("cat runs");
        assert_eq!(out.stdout, b"hello");
    }

    #[test]
    fn run_reports_failure_with_stderr() {
        let mut sh = Command::new("sh");
        sh.args(["-c", "echo oops >&2; exit 3"]);
        match run(&mut sh, None, SHORT_TIMEOUT) {
            Err(Error::Command { stderr, status, .. }) => {
                assert_eq!(stderr, "oops");
                assert!(status.contains('3'), "{status}");
            }
            other => panic!("expected a command error, got {other:?}"),
        }
    }

    #[test]
    fn run_kills_on_timeout() {
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let err = run(&mut sleep, None, Duration::from_millis(50)).expect_err("must time out");
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let mut cmd = Command::new("/nonexistent/udplb-testbench-tool");
        let err = run(&mut cmd, None, SHORT_TIMEOUT).expect_err("cannot start");
        assert!(matches!(err, Error::Spawn { .. }), "{err}");
    }

    #[test]
    fn wait_for_returns_value_or_times_out() {
        let mut n = 0;
        let v = wait_for("counter", SHORT_TIMEOUT, || {
            n += 1;
            Ok((n == 3).then_some(n))
        })
        .expect("reaches 3");
        assert_eq!(v, 3);
        let err = wait_for::<()>("never", Duration::from_millis(20), || Ok(None))
            .expect_err("never holds");
        assert!(matches!(err, Error::Timeout { .. }));
    }
}

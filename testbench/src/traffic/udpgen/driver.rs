//! Runs `testbench udpgen` in a namespace and talks to it: one [`Job`] line in, one
//! [`JobReport`] line out.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::{Hello, Job, JobReport};
use crate::error::{Error, Result};
use crate::names::RunId;
use crate::netns::Netns;

/// How long the EAL and the port may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack over a job's own bound before the generator counts as hung.
const JOB_SLACK: Duration = Duration::from_secs(10);
/// How long a stopping generator may take to close its port.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running generator; stopped (input closed, then killed if it lingers) on drop, and
/// its DPDK runtime directory removed.
#[derive(Debug)]
pub struct Generator {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    hello: Hello,
    log: PathBuf,
    runtime_dir: PathBuf,
}

impl Generator {
    /// Starts `tools udpgen` in `ns` on `device` (e.g. `net_af_xdp0,iface=eth0`), pinned
    /// to `lcore`, its stderr in `log`; returns once its port is up.
    ///
    /// # Errors
    /// It cannot be started, or exits or stays silent for 30 s (the log is in the error).
    pub fn start(
        ns: &Netns,
        tools: &Path,
        device: &str,
        lcore: u32,
        log: &Path,
    ) -> Result<Generator> {
        let prefix = format!("udplb-gen-{}", RunId::next().stem());
        let err = std::fs::File::create(log)
            .map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let mut cmd: Command = ns.command(tools);
        cmd.args(["udpgen", "--device", device, "--lcore"])
            .arg(lcore.to_string())
            .args(["--file-prefix", &prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err);
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            command: format!("{} udpgen --device {device}", tools.display()),
            source,
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let (tx, lines) = mpsc::channel();
        if let Some(out) = stdout {
            std::thread::spawn(move || {
                for line in BufReader::new(out)
                    .lines()
                    .map_while(std::result::Result::ok)
                {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut gen = Generator {
            child,
            stdin,
            lines,
            hello: Hello {
                mac: [0; 6],
                driver: String::new(),
            },
            log: log.to_owned(),
            runtime_dir: Path::new("/var/run/dpdk").join(&prefix),
        };
        let line = gen.next_line(START_TIMEOUT, "its port to come up")?;
        gen.hello =
            serde_json::from_str(&line).map_err(|e| gen.failed(&format!("hello {line:?}: {e}")))?;
        Ok(gen)
    }

    /// Its port's MAC and driver.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// Its process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `job` and returns its report.
    ///
    /// # Errors
    /// The generator is gone or does not answer within the job's bound plus 10 s; a
    /// report that is not JSON.
    pub fn run(&mut self, job: &Job) -> Result<JobReport> {
        let line = serde_json::to_string(job).map_err(|e| Error::invalid("job", e.to_string()))?;
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::invalid("udpgen", "already stopped"))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| self.failed(&format!("writing a job: {e}")))?;
        let answer = self.next_line(
            Duration::from_millis(job.max_ms) + JOB_SLACK,
            "a job report",
        )?;
        serde_json::from_str(&answer).map_err(|e| self.failed(&format!("report {answer:?}: {e}")))
    }

    /// Closes its input and waits (10 s at most) for it to close its port and exit.
    ///
    /// # Errors
    /// It did not exit cleanly (it is killed).
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break None,
            }
        };
        let _ = std::fs::remove_dir_all(&self.runtime_dir);
        match status {
            Some(s) if s.success() => Ok(()),
            Some(s) => Err(self.failed(&format!("exited with {s}"))),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(self.failed("did not stop within 10 s"))
            }
        }
    }

    fn next_line(&mut self, timeout: Duration, what: &str) -> Result<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Ok(line),
            Err(RecvTimeoutError::Timeout) => {
                Err(self.failed(&format!("no answer within {timeout:?} waiting for {what}")))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let _ = self.child.wait();
                Err(self.failed(&format!("exited while waiting for {what}")))
            }
        }
    }

    fn failed(&self, why: &str) -> Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Error::invalid("udpgen", format!("{why}; its log:\n{log}"))
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.shutdown();
        }
    }
}

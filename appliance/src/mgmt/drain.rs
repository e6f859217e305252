//! `udplb drain`: the command-line side of `POST/GET/DELETE /v1/drain`.

use std::time::{Duration, Instant};

use super::client::request;

/// What `udplb drain` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainAction {
    /// Start (or extend) a drain, optionally with a deadline (`30s`).
    Start {
        /// The deadline as written; `None`: the appliance's `drain.deadline`.
        deadline: Option<String>,
        /// Wait until drained (or the deadline passes).
        wait: bool,
    },
    /// Cancel a drain.
    Cancel,
    /// Print the state.
    Status,
}

/// The write token `udplb drain` sends when `--token-file` is not given and this file
/// exists: where `scripts/install` puts `management.token_file`.
pub const DEFAULT_TOKEN_FILE: &str = "/etc/udplb/token";

/// How often `--wait` asks.
const POLL: Duration = Duration::from_millis(200);
/// How long `--wait` waits past the deadline the appliance reports (it finishes the
/// drain at its next evaluation).
const SLACK: Duration = Duration::from_secs(5);

/// A field of the drain report (`state: draining` → `draining`).
fn field<'a>(report: &'a str, name: &str) -> Option<&'a str> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// Runs `action` against the API at `api`; prints the appliance's drain report.
///
/// # Errors
/// The API cannot be reached or answers with an error; `--wait` saw no end.
pub fn run(api: &str, token: Option<&str>, action: &DrainAction) -> Result<(), String> {
    let call = |method: &str, path: &str| -> Result<String, String> {
        let (code, body) = request(api, method, path, None, token).map_err(|e| e.to_string())?;
        if code == 200 {
            Ok(body)
        } else {
            Err(format!("{method} {path}: HTTP {code}: {}", body.trim_end()))
        }
    };
    match action {
        DrainAction::Status => {
            print!("{}", call("GET", "/v1/drain")?);
            Ok(())
        }
        DrainAction::Cancel => {
            print!("{}", call("DELETE", "/v1/drain")?);
            Ok(())
        }
        DrainAction::Start { deadline, wait } => {
            let path = match deadline {
                Some(d) => {
                    let d: pipelines::spec::HumanDuration =
                        d.parse().map_err(|e| format!("--deadline: {e}"))?;
                    format!("/v1/drain?deadline={d}")
                }
                None => "/v1/drain".to_owned(),
            };
            let mut report = call("POST", &path)?;
            print!("{report}");
            if !wait {
                return Ok(());
            }
            let started = Instant::now();
            let limit = field(&report, "deadline_in_ms")
                .and_then(|ms| ms.parse::<u64>().ok())
                .map_or(Duration::from_secs(24 * 3600), Duration::from_millis)
                + SLACK;
            let mut last_flows = field(&report, "flows_remaining").map(str::to_owned);
            while field(&report, "state") != Some("drained") {
                if started.elapsed() > limit {
                    return Err(format!(
                        "not drained {limit:?} after the request:\n{report}"
                    ));
                }
                std::thread::sleep(POLL);
                report = call("GET", "/v1/drain")?;
                let flows = field(&report, "flows_remaining").map(str::to_owned);
                if flows != last_flows {
                    eprintln!(
                        "draining: {} flows remaining",
                        flows.as_deref().unwrap_or("?")
                    );
                    last_flows = flows;
                }
            }
            print!("{report}");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_fields() {
        let r = "state: draining\nflows_remaining: 3\ndeadline_in_ms: 2500\n";
        assert_eq!(field(r, "state"), Some("draining"));
        assert_eq!(field(r, "flows_remaining"), Some("3"));
        assert_eq!(field(r, "deadline_in_ms"), Some("2500"));
        assert_eq!(field(r, "ended_by"), None);
    }
}

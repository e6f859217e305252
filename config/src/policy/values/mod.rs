//! The values of a policy, judged: defaults filled in, ranges and consistency checked.
//!
//! A policy with any bad value is `Invalid` as a whole (it is not applied anywhere), and
//! its status lists every problem as `<field>: <what is wrong>`. Keywords and durations
//! are parsed by the `pipelines::spec` types, so they take the spellings of the Gateway
//! annotations and of `appliance.yaml`, with the same messages.//!
//! `backend` judges a `UDPBackendPolicy` (its health checks; `probe` their payloads and
//! DNS questions), `traffic` a `UDPTrafficPolicy`.

use std::time::Duration;

use pipelines::spec::HumanDuration;

use super::model::PolicyTargetReference;

mod backend;
mod probe;
mod traffic;

pub(crate) use backend::{backend, BackendSettings};
pub(crate) use traffic::{traffic, TrafficSettings};

/// Problems of one policy, each `<field>: <message>`.
#[derive(Default)]
pub(super) struct Problems(Vec<String>);

impl Problems {
    pub(super) fn add(&mut self, field: &str, message: impl std::fmt::Display) {
        self.0.push(format!("{field}: {message}"));
    }

    pub(super) fn range(
        &mut self,
        field: &str,
        value: Option<i64>,
        default: i64,
        lo: i64,
        hi: i64,
    ) -> i64 {
        match value {
            None => default,
            Some(v) if (lo..=hi).contains(&v) => v,
            Some(v) => {
                self.add(field, format!("{v} is out of range {lo}..={hi}"));
                default
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        text: Option<&str>,
        default: Duration,
        (lo, hi): (Duration, Duration),
    ) -> Duration {
        let Some(text) = text else {
            return default;
        };
        match text.parse::<HumanDuration>() {
            Ok(HumanDuration(d)) if (lo..=hi).contains(&d) => d,
            Ok(HumanDuration(d)) => {
                self.add(
                    field,
                    format!(
                        "{} is out of range ({} to {})",
                        HumanDuration(d),
                        HumanDuration(lo),
                        HumanDuration(hi)
                    ),
                );
                default
            }
            Err(e) => {
                self.add(field, e);
                default
            }
        }
    }

    pub(super) fn finish<T>(self, value: T) -> Result<T, Vec<String>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A target's group and kind, for messages.
pub(super) fn group_kind(t: &PolicyTargetReference) -> String {
    if t.group.is_empty() {
        format!("kind {}", t.kind)
    } else {
        format!("{}/{}", t.group, t.kind)
    }
}

//! The running appliance's answer to management commands: the control plane's, plus what
//! only the whole appliance knows — health (ports, workers, configuration applied), drain,
//! announcement — from the [`Supervisor`].
//!
//! `GET /v1/status` gets one more YAML document after the Gateway API ones,
//! `kind: ApplianceStatus`; `GET /metrics` gets the health, heartbeat, drain and VIP
//! gauges. A configuration change wakes the supervisor, so the gate follows it at once.
//!
//! The management server runs the commands that change the configuration through this
//! handler on its serial thread, and the others (health, drain, status, metrics) inline;
//! [`MgmtHandler::close`] reaches the control plane's commit gate.

use std::sync::Arc;
use std::time::Instant;

use super::supervise::Supervisor;
use crate::control::{ControlPlane, Refusal};
use crate::mgmt::{MgmtCommand, MgmtError, MgmtHandler, MgmtReply};

/// The appliance's [`MgmtHandler`].
pub struct ApplianceHandler {
    plane: Arc<ControlPlane>,
    supervisor: Arc<Supervisor>,
}

impl ApplianceHandler {
    /// Answers with `plane` and `supervisor`.
    pub fn new(plane: Arc<ControlPlane>, supervisor: Arc<Supervisor>) -> ApplianceHandler {
        ApplianceHandler { plane, supervisor }
    }
}

impl MgmtHandler for ApplianceHandler {
    type Refusal = Refusal;

    fn handle(&self, command: MgmtCommand) -> Result<MgmtReply, MgmtError<Refusal>> {
        let now = Instant::now();
        match command {
            c @ (MgmtCommand::ApplyManifests { .. }
            | MgmtCommand::UseFiles { .. }
            | MgmtCommand::Reload(_)) => {
                let reply = self.plane.handle(c);
                if reply.is_ok() {
                    self.supervisor.wake();
                }
                reply
            }
            MgmtCommand::Status => Ok(MgmtReply::Status {
                yaml: format!(
                    "{}{}",
                    self.plane.status_yaml(),
                    self.supervisor.status_document(now)
                ),
            }),
            MgmtCommand::Metrics(format) => {
                let mut snapshot = self.plane.snapshot();
                snapshot.appliance = Some(self.supervisor.sample(now));
                Ok(MgmtReply::Metrics {
                    format,
                    body: snapshot.render(format),
                })
            }
            MgmtCommand::Health => {
                let health = self.supervisor.health(now);
                Ok(MgmtReply::Health {
                    healthy: health.is_healthy(),
                    reasons: health.reasons(),
                })
            }
            MgmtCommand::Drain { deadline } => {
                Ok(MgmtReply::Drain(self.supervisor.drain(now, deadline)))
            }
            MgmtCommand::Undrain => Ok(MgmtReply::Drain(self.supervisor.undrain(now))),
            MgmtCommand::DrainStatus => Ok(MgmtReply::Drain(self.supervisor.drain_report(now))),
        }
    }

    /// The stop closes the control plane's commit gate (drain and health keep answering).
    fn close(&self) {
        self.plane.close();
    }
}

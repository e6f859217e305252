//! What one mode of the scale-out scenario measured ([`HaOutcome`]): the issue's `HA` line
//! and the details printed after it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::analysis::Figures;
use super::scenario::{DRAINED, JOINER, KILLED};
use super::HaMode;

/// What one mode measured.
#[derive(Clone, Debug)]
pub struct HaOutcome {
    /// The mode.
    pub mode: HaMode,
    /// Appliances serving at the start.
    pub appliances: usize,
    /// The record's figures.
    pub figures: Figures,
    /// From the SIGKILL to the router's route without the killed appliance.
    pub failover: Duration,
    /// From the SIGKILL to the process reaped (its memory, sockets and TAP released);
    /// measured after `failover`, so at least as long.
    pub exit_time: Duration,
    /// From the fourth appliance's start to its next hop in the router.
    pub join_time: Duration,
    /// From the drain command to the router's route without that appliance.
    pub withdraw_time: Duration,
    /// From the drain command to `udplb drain --wait` reporting drained.
    pub drain_time: Duration,
    /// Why the drain ended (`idle`: no flow left; `deadline`), as udplb reported it.
    pub drain_ended_by: String,
    /// Datagrams each appliance forwarded in the steady window (`/metrics`).
    pub spread: BTreeMap<usize, u64>,
    /// Sessions per appliance by the router's own choice, in the steady window.
    pub router_split: BTreeMap<usize, usize>,
    /// Sessions the router moved to another appliance at the kill.
    pub moved_kill: usize,
    /// Sessions the router moved at the join, and of those, to the new appliance.
    pub moved_join: (usize, usize),
    /// Sessions the router moved at the drain.
    pub moved_drain: usize,
    /// Datagrams the joined appliance forwarded in its settled window.
    pub joiner_forwarded: u64,
    /// Datagrams the drained appliance forwarded after reporting drained.
    pub forwarded_after_drained: u64,
    /// Full NAT: sessions whose backend saw an appliance other than the router's choice
    /// (a check of the `ip route get` attribution); `None` in the other modes.
    pub attribution_mismatch: Option<usize>,
    /// Preserve-client: next hops of the router's table-100 return route in the steady
    /// window.
    pub return_hops: usize,
    /// Late replies, foreign datagrams, send and receive errors of the client.
    pub client_errors: (u64, u64, u64, u64),
    /// BGP or BFD session losses the router's BIRD logged (not caused by the scenario).
    pub session_losses: usize,
    /// 1-minute load average before and after.
    pub load: (f64, f64),
    /// Wall time of the whole mode.
    pub elapsed: Duration,
    /// What the fabric left behind after its removal (should be empty).
    pub leftovers: Vec<String>,
    /// The timeline, losses over time, route changes and daemon complaints.
    pub diagnostics: String,
    /// Drops counted by the kernel and the appliances at the end of the run
    /// ([`Fabric::drop_report`]).
    pub drops: String,
}

impl HaOutcome {
    /// The line, exactly.
    pub fn line(&self) -> String {
        let f = &self.figures;
        format!(
            "HA mode={} appliances={} sessions={} answered={} failover_s={:.3} backend_changed_kill={} backend_changed_join={} drain_lost={}",
            self.mode,
            self.appliances,
            f.sessions,
            f.answered,
            self.failover.as_secs_f64(),
            f.backend_changed_kill,
            f.backend_changed_join,
            f.drain_lost
        )
    }

    /// Everything else, in `key=value` lines prefixed by the mode.
    pub fn details(&self) -> Vec<String> {
        let f = &self.figures;
        let m = self.mode;
        let map = |m: &BTreeMap<usize, u64>| {
            m.iter()
                .map(|(k, v)| format!("a{k}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let split = self
            .router_split
            .iter()
            .map(|(k, v)| format!("a{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut out = vec![
            format!(
                "  {m} spread: forwarded_steady={} (requests {}) router_sessions={split} return_hops={}",
                map(&self.spread),
                f.steady_requests,
                self.return_hops
            ),
            format!(
                "  {m} kill a{KILLED}: failover_ms={:.1} (process reaped {:.1}) lost_in_failover={}/{} sessions_moved={} backend_changed={} source_changed={}",
                self.failover.as_secs_f64() * 1e3,
                self.exit_time.as_secs_f64() * 1e3,
                f.failover_lost,
                f.failover_requests,
                self.moved_kill,
                f.backend_changed_kill,
                f.source_changed_kill
            ),
            format!(
                "  {m} join a{JOINER}: start_to_route_ms={} sessions_moved={} to_a{JOINER}={} a{JOINER}_forwarded={} backend_changed={} source_changed={}",
                self.join_time.as_millis(),
                self.moved_join.0,
                self.moved_join.1,
                self.joiner_forwarded,
                f.backend_changed_join,
                f.source_changed_join
            ),
            format!(
                "  {m} drain a{DRAINED}: withdrawn_ms={:.1} drained_ms={} ended_by={} sessions_moved={} lost={}/{} forwarded_after_drained={}",
                self.withdraw_time.as_secs_f64() * 1e3,
                self.drain_time.as_millis(),
                self.drain_ended_by,
                self.moved_drain,
                f.drain_lost,
                f.drain_requests,
                self.forwarded_after_drained
            ),
            format!(
                "  {m} run: scored_requests={} unanswered={} late={} foreign={} send_errors={} recv_errors={} session_losses={} load={:.2}->{:.2} elapsed_s={:.1} leftovers={}",
                f.scored_requests,
                f.scored_lost,
                self.client_errors.0,
                self.client_errors.1,
                self.client_errors.2,
                self.client_errors.3,
                self.session_losses,
                self.load.0,
                self.load.1,
                self.elapsed.as_secs_f64(),
                self.leftovers.len()
            ),
        ];
        out.push(format!("  {m} drops: {}", self.drops));
        if let Some(n) = self.attribution_mismatch {
            out.push(format!(
                "  {m} check: sessions whose SNAT address disagrees with the router's choice={n}"
            ));
        }
        out
    }
}

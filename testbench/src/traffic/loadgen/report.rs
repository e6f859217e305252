//! What a load generator run reports: per flow, and totals.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::Mode;
use crate::traffic::latency::{Latency, Recorder};

/// How many distinct server-seen addresses a flow report keeps.
const MAX_SEEN_AS: usize = 4;

/// What happened to one flow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowReport {
    /// Flow number.
    pub flow: u32,
    /// Its source address and port (as bound).
    pub source: Option<SocketAddr>,
    /// Its destination.
    pub target: Option<SocketAddr>,
    /// Datagrams sent.
    pub sent: u64,
    /// Replies matched to their request.
    pub received: u64,
    /// Requests whose reply did not come in time (request/response only).
    pub lost: u64,
    /// Replies that came after their timeout (then counted in `lost` too).
    pub late: u64,
    /// Send errors, ICMP errors (refused / unreachable) and undecodable replies.
    pub errors: u64,
    /// Replies per answering server name.
    pub backends: BTreeMap<String, u64>,
    /// Source addresses the servers reported seeing for this flow (at most 4).
    pub seen_as: BTreeSet<SocketAddr>,
}

impl FlowReport {
    /// Counts a reply: from `server` (when the reply names it), which saw the flow as
    /// `peer` (when the reply says).
    pub(super) fn answered(&mut self, server: Option<&str>, peer: Option<SocketAddr>) {
        self.received += 1;
        if let Some(server) = server {
            *self.backends.entry(server.to_owned()).or_default() += 1;
        }
        if let Some(peer) = peer {
            if self.seen_as.len() < MAX_SEEN_AS {
                self.seen_as.insert(peer);
            }
        }
    }

    /// The backend that answered, if exactly one did.
    pub fn backend(&self) -> Option<&str> {
        let mut names = self.backends.keys();
        match (names.next(), names.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    }
}

/// Totals over all flows, and the flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The mode run.
    pub mode: Mode,
    /// Datagrams sent.
    pub sent: u64,
    /// Replies matched.
    pub received: u64,
    /// Requests without a timely reply.
    pub lost: u64,
    /// Late replies.
    pub late: u64,
    /// Errors of all kinds.
    pub errors: u64,
    /// Whether every flow sent its `count` before `max_duration_ms` ran out.
    pub complete: bool,
    /// Wall-clock duration of the sending phase, seconds.
    pub elapsed_s: f64,
    /// `sent / elapsed_s`.
    pub send_rate_pps: f64,
    /// Round-trip times (request/response only).
    pub latency: Option<Latency>,
    /// Per answering server: flows that it alone answered, and replies.
    pub backends: BTreeMap<String, BackendTally>,
    /// Per flow, by flow number.
    pub flows: Vec<FlowReport>,
}

/// One server's share.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendTally {
    /// Flows answered only by this server.
    pub flows: u64,
    /// Replies from it.
    pub replies: u64,
}

impl Report {
    /// Flows answered by exactly one server, as a share of all flows with any reply, per
    /// server.
    pub fn flow_shares(&self) -> BTreeMap<String, f64> {
        let answered = self.flows.iter().filter(|f| f.received > 0).count().max(1) as f64;
        self.backends
            .iter()
            .map(|(name, t)| (name.clone(), t.flows as f64 / answered))
            .collect()
    }

    /// Flows that were answered by more than one server.
    pub fn split_flows(&self) -> Vec<&FlowReport> {
        self.flows.iter().filter(|f| f.backends.len() > 1).collect()
    }
}

/// Totals over `flows`, attributing each flow to the backend that alone answered it.
pub(super) fn summarise(
    mode: Mode,
    flows: Vec<FlowReport>,
    latency: Recorder,
    complete: bool,
    elapsed_s: f64,
) -> Report {
    let mut backends: BTreeMap<String, BackendTally> = BTreeMap::new();
    for f in &flows {
        for (name, n) in &f.backends {
            backends.entry(name.clone()).or_default().replies += n;
        }
        if let Some(one) = f.backend() {
            backends.entry(one.to_owned()).or_default().flows += 1;
        }
    }
    let sum = |get: fn(&FlowReport) -> u64| flows.iter().map(get).sum::<u64>();
    let sent = sum(|f| f.sent);
    Report {
        mode,
        sent,
        received: sum(|f| f.received),
        lost: sum(|f| f.lost),
        late: sum(|f| f.late),
        errors: sum(|f| f.errors),
        complete,
        elapsed_s,
        send_rate_pps: if elapsed_s > 0.0 {
            sent as f64 / elapsed_s
        } else {
            0.0
        },
        latency: latency.summary(),
        backends,
        flows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_attributes_flows_to_their_only_backend() {
        let mut one = FlowReport {
            flow: 0,
            sent: 3,
            received: 3,
            ..FlowReport::default()
        };
        one.backends.insert("backend-0".into(), 3);
        let mut split = FlowReport {
            flow: 1,
            sent: 2,
            received: 2,
            ..FlowReport::default()
        };
        split.backends.insert("backend-0".into(), 1);
        split.backends.insert("backend-1".into(), 1);
        let silent = FlowReport {
            flow: 2,
            sent: 2,
            lost: 2,
            ..FlowReport::default()
        };
        let flows = vec![one, split, silent];
        let r = summarise(Mode::RequestResponse, flows, Recorder::default(), true, 2.0);
        assert_eq!((r.sent, r.received, r.lost), (7, 5, 2));
        assert_eq!(r.send_rate_pps, 3.5);
        assert_eq!(
            r.backends["backend-0"],
            BackendTally {
                flows: 1,
                replies: 4
            }
        );
        assert_eq!(
            r.backends["backend-1"],
            BackendTally {
                flows: 0,
                replies: 1
            }
        );
        assert_eq!(r.split_flows().len(), 1);
        assert_eq!(r.flow_shares()["backend-0"], 0.5);
        assert_eq!(r.latency, None);
    }
}

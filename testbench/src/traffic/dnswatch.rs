//! A DNS client at a steady rate that records every query's fate with its time: for
//! measuring how long queries go unanswered while a backend fails (backend health).
//!
//! `flows` sockets, each on its own source port (from `first_port` on, or kernel-chosen)
//! and connected to `target`, take turns:
//! one query `whoami.test TXT` every `interval_ms` over all flows, for `duration_ms`.
//! A query is answered when a response with its ID arrives within `timeout_ms`; the
//! answer names the backend (dnsmasq's TXT record). An ICMP error (the connected socket's
//! `ECONNREFUSED`) or no answer in time leaves it unanswered. The log is the list of
//! queries, in sending order.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::proto;
use crate::error::{Error, Result};

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// The DNS server (the VIP).
    pub target: SocketAddr,
    /// Source address.
    pub source: IpAddr,
    /// Sockets (distinct source ports).
    pub flows: u32,
    /// Source port of flow 0, the others follow (the same flows again in a later run);
    /// `None`: kernel-chosen.
    pub first_port: Option<u16>,
    /// Time between two queries (over all flows), milliseconds.
    pub interval_ms: u64,
    /// How long a query waits for its answer, milliseconds.
    pub timeout_ms: u64,
    /// How long to send, milliseconds.
    pub duration_ms: u64,
}

/// One query's fate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The flow (socket) it went out on.
    pub flow: u32,
    /// When it was sent, in ms since the start.
    pub sent_ms: u64,
    /// Its round trip, if answered in time.
    pub rtt_ms: Option<u64>,
    /// The backend that answered (the TXT record).
    pub backend: Option<String>,
}

/// Every query, in sending order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLog {
    /// The queries.
    pub queries: Vec<Query>,
}

impl WatchLog {
    /// The longest time a flow went without an answer while it kept asking: for each run
    /// of unanswered queries of one flow, from the first of them to the next answered
    /// query of that flow (or to the flow's last query when none came), in ms; the
    /// largest, with the time its run started.
    pub fn longest_unanswered(&self) -> Option<(u64, u64)> {
        let mut by_flow: BTreeMap<u32, Vec<&Query>> = BTreeMap::new();
        for q in &self.queries {
            by_flow.entry(q.flow).or_default().push(q);
        }
        let mut worst: Option<(u64, u64)> = None;
        for queries in by_flow.values() {
            let mut run_start: Option<u64> = None;
            for q in queries {
                match (q.rtt_ms.is_some(), run_start) {
                    (false, None) => run_start = Some(q.sent_ms),
                    (true, Some(start)) => {
                        let gap = q.sent_ms - start;
                        if worst.is_none_or(|(g, _)| gap > g) {
                            worst = Some((gap, start));
                        }
                        run_start = None;
                    }
                    _ => {}
                }
            }
            if let (Some(start), Some(last)) = (run_start, queries.last()) {
                let gap = last.sent_ms - start;
                if worst.is_none_or(|(g, _)| gap > g) {
                    worst = Some((gap, start));
                }
            }
        }
        worst
    }

    /// The send time of the last unanswered query, if any.
    pub fn last_unanswered_ms(&self) -> Option<u64> {
        self.queries
            .iter()
            .filter(|q| q.rtt_ms.is_none())
            .map(|q| q.sent_ms)
            .max()
    }

    /// Answers per backend among the queries sent at or after `from_ms`.
    pub fn answers_by_backend(&self, from_ms: u64) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for q in self.queries.iter().filter(|q| q.sent_ms >= from_ms) {
            if let Some(b) = &q.backend {
                *out.entry(b.clone()).or_default() += 1;
            }
        }
        out
    }
}

/// A query waiting for its answer.
struct Pending {
    index: usize,
    id: u16,
    sent: Instant,
}

/// Runs the client.
///
/// # Errors
/// [`Error::Invalid`] for a bad configuration; I/O errors opening the sockets.
pub fn run(config: &WatchConfig) -> Result<WatchLog> {
    if config.flows == 0 || config.interval_ms == 0 || config.duration_ms > 600_000 {
        return Err(Error::invalid(
            "dns-watch",
            "flows and interval must be positive, duration at most 10 minutes",
        ));
    }
    let mut sockets = Vec::new();
    for i in 0..config.flows {
        let port = match config.first_port {
            Some(first) => u16::try_from(u32::from(first) + i)
                .map_err(|_| Error::invalid("dns-watch", "first_port + flows beyond 65535"))?,
            None => 0,
        };
        let s = UdpSocket::bind(SocketAddr::new(config.source, port))
            .map_err(|e| Error::io("dns-watch bind", e))?;
        s.connect(config.target)
            .map_err(|e| Error::io("dns-watch connect", e))?;
        s.set_nonblocking(true)
            .map_err(|e| Error::io("dns-watch nonblocking", e))?;
        sockets.push(s);
    }
    let interval = Duration::from_millis(config.interval_ms);
    let timeout = Duration::from_millis(config.timeout_ms);
    let start = Instant::now();
    let end = start + Duration::from_millis(config.duration_ms);
    let mut log = WatchLog::default();
    let mut pending: Vec<Option<Pending>> = (0..config.flows).map(|_| None).collect();
    let mut next_send = start;
    let mut next_flow = 0usize;
    let mut id: u16 = 0;
    let mut query = Vec::new();
    let mut buf = [0u8; 2048];
    let ms = |t: Instant| u64::try_from(t.duration_since(start).as_millis()).unwrap_or(u64::MAX);
    loop {
        let now = Instant::now();
        if now >= end && pending.iter().all(Option::is_none) {
            break;
        }
        if now >= next_send && now < end {
            let flow = next_flow;
            next_flow = (next_flow + 1) % sockets.len();
            next_send += interval;
            // The flow's previous query, if still waiting, has had its turn.
            pending[flow] = None;
            id = id.wrapping_add(1);
            proto::encode_dns_query(id, &mut query);
            let index = log.queries.len();
            log.queries.push(Query {
                flow: u32::try_from(flow).unwrap_or(u32::MAX),
                sent_ms: ms(now),
                rtt_ms: None,
                backend: None,
            });
            if sockets[flow].send(&query).is_ok() {
                pending[flow] = Some(Pending {
                    index,
                    id,
                    sent: now,
                });
            }
        }
        for (flow, socket) in sockets.iter().enumerate() {
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => {
                        let reply = &buf[..n];
                        let Some(p) = &pending[flow] else { continue };
                        if proto::dns_response_id(reply) != Some(p.id) {
                            continue;
                        }
                        let q = &mut log.queries[p.index];
                        let rtt = Instant::now().duration_since(p.sent);
                        if rtt <= timeout {
                            q.rtt_ms = Some(u64::try_from(rtt.as_millis()).unwrap_or(u64::MAX));
                            q.backend = txt(reply);
                        }
                        pending[flow] = None;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // ICMP unreachable: the query stays unanswered.
                    Err(_) => {
                        pending[flow] = None;
                        break;
                    }
                }
            }
        }
        for p in &mut pending {
            if p.as_ref()
                .is_some_and(|p| now.duration_since(p.sent) > timeout)
            {
                *p = None;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(log)
}

/// The first TXT string of the answer section of a response to our one-question query.
fn txt(reply: &[u8]) -> Option<String> {
    // Skip the header and the question (name, type, class).
    let mut i = 12;
    while *reply.get(i)? != 0 {
        i += 1 + usize::from(*reply.get(i)?);
    }
    i += 1 + 4;
    // The answer: a name (a pointer, or labels), type, class, TTL, length, data.
    if reply.get(i)? & 0xc0 == 0xc0 {
        i += 2;
    } else {
        while *reply.get(i)? != 0 {
            i += 1 + usize::from(*reply.get(i)?);
        }
        i += 1;
    }
    let rtype = u16::from_be_bytes([*reply.get(i)?, *reply.get(i + 1)?]);
    if rtype != 16 {
        return None;
    }
    i += 10;
    let len = usize::from(*reply.get(i)?);
    let text = reply.get(i + 1..i + 1 + len)?;
    Some(String::from_utf8_lossy(text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(flow: u32, sent_ms: u64, answered: bool) -> Query {
        Query {
            flow,
            sent_ms,
            rtt_ms: answered.then_some(1),
            backend: answered.then(|| format!("b{flow}")),
        }
    }

    #[test]
    fn longest_unanswered_run_per_flow() {
        let log = WatchLog {
            queries: vec![
                q(0, 0, true),
                q(1, 50, true),
                q(0, 100, false),
                q(1, 150, false),
                q(0, 200, false),
                q(1, 250, true),
                q(0, 300, false),
                q(1, 350, true),
                q(0, 400, true),
            ],
        };
        // Flow 0: unanswered from 100 until 400; flow 1: from 150 until 250.
        assert_eq!(log.longest_unanswered(), Some((300, 100)));
        assert_eq!(log.last_unanswered_ms(), Some(300));
        assert_eq!(log.answers_by_backend(250).get("b1"), Some(&2));
        assert_eq!(WatchLog::default().longest_unanswered(), None);
    }

    #[test]
    fn txt_answers_are_read() {
        let mut query = Vec::new();
        proto::encode_dns_query(7, &mut query);
        let mut reply = query.clone();
        reply[2] |= 0x80;
        reply[7] = 1; // one answer
        reply.extend_from_slice(&[0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0, 0, 10, 9]);
        reply.extend_from_slice(b"backend-1");
        assert_eq!(txt(&reply).as_deref(), Some("backend-1"));
        assert_eq!(txt(&reply[..reply.len() - 2]), None);
        assert_eq!(txt(&query[..5]), None);
    }
}

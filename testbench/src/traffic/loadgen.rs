//! A multi-flow UDP load generator.
//!
//! A *flow* is one UDP socket with its own source address and port, connected to one
//! target. Flow `i` uses source `sources[i % sources.len()]`, target
//! `targets[i % targets.len()]` and, with `first_port`, source port `first_port + i`
//! (otherwise the kernel picks a distinct ephemeral port). Flows are spread over
//! `threads` threads, which go round-robin over their flows `count` times, paced to
//! `rate` datagrams per second in total, and stop at `max_duration_ms` whatever is left.
//!
//! * [`Mode::RequestResponse`]: each datagram waits (up to `reply_timeout_ms`) for its
//!   reply before the flow's next one; the report says per flow which backend answered,
//!   the address the backend saw, loss, and the round-trip percentiles and distribution.
//!   With a thread per outstanding request this is the closed-loop latency client of
//!   both the tests and `testbench bench-peers`.
//! * [`Mode::Blast`]: one-way, as fast as allowed; replies are ignored. Pair it with an
//!   echo server in sink mode and read its counters with [`super::echo::query_stats`].
//!
//! Requests are our echo protocol ([`Payload::Echo`]) or a DNS query ([`Payload::Dns`]),
//! for DNS servers and proxies.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::latency::{Latency, Recorder};
use super::proto;
use crate::error::{Error, Result};

/// How flows use their sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Send, wait for the echo, repeat.
    RequestResponse,
    /// Send only.
    Blast,
}

/// What each request carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Payload {
    /// Our echo request ([`proto::encode_request`]) of `payload_size` bytes; a reply names
    /// the backend and the source address it saw.
    #[default]
    Echo,
    /// A DNS query `whoami.test TXT` ([`proto::encode_dns_query`]); a reply matches by id
    /// and is attributed to no backend. `payload_size` does not apply.
    Dns,
}

/// What to generate. Serialised as JSON when the driver runs `testbench loadgen` in a
/// namespace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadgenConfig {
    /// Destinations (usually just the VIP:port); flows are spread over them.
    pub targets: Vec<SocketAddr>,
    /// Source addresses; flows are spread over them. Each must match its targets' family.
    pub sources: Vec<IpAddr>,
    /// Number of flows.
    pub flows: u32,
    /// Source port of flow 0, the others follow; `None`: kernel-chosen ports.
    pub first_port: Option<u16>,
    /// Request/response or one-way.
    pub mode: Mode,
    /// Datagrams per flow.
    pub count: u64,
    /// Total datagrams per second over all flows; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Hard bound on the run, in milliseconds.
    pub max_duration_ms: u64,
    /// How long a request waits for its reply, in milliseconds.
    pub reply_timeout_ms: u64,
    /// UDP payload size in bytes (at least 16 are sent).
    pub payload_size: usize,
    /// Sending threads.
    pub threads: u32,
    /// What each request carries.
    #[serde(default)]
    pub payload: Payload,
}

impl LoadgenConfig {
    /// `flows` flows from `source` to `target`, 1 request each, 1 s reply timeout, 60 s cap,
    /// 64-byte echo payloads, 2 threads, unpaced.
    pub fn new(target: SocketAddr, source: IpAddr, flows: u32) -> LoadgenConfig {
        LoadgenConfig {
            targets: vec![target],
            sources: vec![source],
            flows,
            first_port: None,
            mode: Mode::RequestResponse,
            count: 1,
            rate: None,
            max_duration_ms: 60_000,
            reply_timeout_ms: 1_000,
            payload_size: 64,
            threads: 2,
            payload: Payload::Echo,
        }
    }

    /// Checks the configuration and lays out the flows.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field at fault.
    pub fn plan(&self) -> Result<Vec<FlowPlan>> {
        let bad = |field: &str, detail: String| Error::invalid(format!("loadgen {field}"), detail);
        if self.targets.is_empty() || self.sources.is_empty() {
            return Err(bad("targets/sources", "need at least one of each".into()));
        }
        if self.flows == 0 || self.threads == 0 {
            return Err(bad("flows/threads", "must be at least 1".into()));
        }
        if self.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(bad(
                "rate",
                format!("{:?} is not a positive number", self.rate),
            ));
        }
        if self.payload_size > 65_507 {
            return Err(bad(
                "payload_size",
                format!("{} exceeds 65507", self.payload_size),
            ));
        }
        (0..self.flows)
            .map(|i| {
                let n = i as usize;
                let target = self.targets[n % self.targets.len()];
                let ip = self.sources[n % self.sources.len()];
                if ip.is_ipv4() != target.is_ipv4() {
                    return Err(bad(
                        "sources",
                        format!("flow {i}: source {ip} and target {target} differ in family"),
                    ));
                }
                let port = match self.first_port {
                    None => 0,
                    Some(p) => u16::try_from(u32::from(p) + i)
                        .map_err(|_| bad("first_port", format!("flow {i} passes port 65535")))?,
                };
                Ok(FlowPlan {
                    flow: i,
                    source: SocketAddr::new(ip, port),
                    target,
                })
            })
            .collect()
    }
}

/// One flow's addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowPlan {
    /// Flow number.
    pub flow: u32,
    /// Source (port 0: kernel-chosen).
    pub source: SocketAddr,
    /// Destination.
    pub target: SocketAddr,
}

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

/// Runs the load and reports.
///
/// # Errors
/// [`Error::Invalid`] for a bad config; [`Error::Io`] if a socket cannot be bound or
/// connected (naming the flow). Loss and ICMP errors are counted, not errors.
pub fn run(config: &LoadgenConfig) -> Result<Report> {
    let plan = config.plan()?;
    let mut flows = plan
        .iter()
        .map(|p| Flow::open(p, config.payload_size))
        .collect::<Result<Vec<_>>>()?;
    let threads = config.threads.min(config.flows) as usize;
    let deadline = Instant::now() + Duration::from_millis(config.max_duration_ms);
    let per_thread_rate = config.rate.map(|r| r / threads as f64);
    let start = Instant::now();
    let mut latency = Recorder::default();
    let mut complete = true;
    let mut groups: Vec<Vec<&mut Flow>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, flow) in flows.iter_mut().enumerate() {
        groups[i % threads].push(flow);
    }
    thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|group| scope.spawn(move || drive(group, config, per_thread_rate, deadline)))
            .collect();
        for handle in handles {
            match handle.join() {
                Ok((rec, done)) => {
                    latency.merge(rec);
                    complete &= done;
                }
                Err(_) => complete = false,
            }
        }
    });
    let elapsed_s = start.elapsed().as_secs_f64();
    let reports = flows.into_iter().map(|f| f.report).collect();
    Ok(summarise(
        config.mode,
        reports,
        latency,
        complete,
        elapsed_s,
    ))
}

fn summarise(
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

/// A flow's socket, buffers and tallies.
struct Flow {
    socket: UdpSocket,
    report: FlowReport,
    request: Vec<u8>,
}

impl Flow {
    fn open(plan: &FlowPlan, payload_size: usize) -> Result<Flow> {
        let what = |verb: &str| format!("flow {}: {verb} {}", plan.flow, plan.source);
        let socket = UdpSocket::bind(plan.source).map_err(|e| Error::io(what("binding"), e))?;
        socket
            .connect(plan.target)
            .map_err(|e| Error::io(format!("{} to {}", what("connecting"), plan.target), e))?;
        let source = socket.local_addr().ok();
        Ok(Flow {
            socket,
            report: FlowReport {
                flow: plan.flow,
                source,
                target: Some(plan.target),
                ..FlowReport::default()
            },
            request: Vec::with_capacity(payload_size.max(proto::REQUEST_HEADER_LEN)),
        })
    }
}

/// One thread's loop; returns its latency samples and whether it finished its counts.
fn drive(
    mut flows: Vec<&mut Flow>,
    config: &LoadgenConfig,
    rate: Option<f64>,
    deadline: Instant,
) -> (Recorder, bool) {
    let mut pacer = Pacer::new(rate);
    let mut latency = Recorder::default();
    let mut reply = vec![0u8; 65_536];
    let timeout = Duration::from_millis(config.reply_timeout_ms.max(1));
    for seq in 0..config.count {
        for flow in flows.iter_mut() {
            if Instant::now() >= deadline {
                return (latency, false);
            }
            pacer.wait(deadline);
            match config.payload {
                Payload::Echo => proto::encode_request(
                    flow.report.flow,
                    seq,
                    config.payload_size,
                    &mut flow.request,
                ),
                Payload::Dns => proto::encode_dns_query(dns_id(seq), &mut flow.request),
            }
            let sent_at = Instant::now();
            if flow.socket.send(&flow.request).is_err() {
                // ICMP feedback from an earlier datagram, or a full queue.
                flow.report.errors += 1;
                continue;
            }
            flow.report.sent += 1;
            if config.mode == Mode::RequestResponse {
                await_reply(
                    flow,
                    config.payload,
                    seq,
                    sent_at,
                    timeout,
                    &mut reply,
                    &mut latency,
                );
            }
        }
    }
    (latency, true)
}

/// Waits for the reply to (`flow`, `seq`), counting stale and foreign datagrams.
fn await_reply(
    flow: &mut Flow,
    payload: Payload,
    seq: u64,
    sent_at: Instant,
    timeout: Duration,
    buf: &mut [u8],
    latency: &mut Recorder,
) {
    let report = &mut flow.report;
    loop {
        let left = timeout.saturating_sub(sent_at.elapsed());
        if left.is_zero() || flow.socket.set_read_timeout(Some(left)).is_err() {
            report.lost += 1;
            return;
        }
        let len = match flow.socket.recv(buf) {
            Ok(len) => len,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                report.lost += 1;
                return;
            }
            Err(_) => {
                // ICMP unreachable / refused: no reply will come.
                report.errors += 1;
                report.lost += 1;
                return;
            }
        };
        match classify(payload, &buf[..len], report.flow, seq) {
            Answer::Reply { server, peer } => {
                latency.record(u64::try_from(sent_at.elapsed().as_nanos()).unwrap_or(u64::MAX));
                report.received += 1;
                if let Some(server) = server {
                    *report.backends.entry(server.to_owned()).or_default() += 1;
                }
                if let Some(peer) = peer {
                    if report.seen_as.len() < MAX_SEEN_AS {
                        report.seen_as.insert(peer);
                    }
                }
                return;
            }
            Answer::Late => report.late += 1,
            Answer::Foreign => report.errors += 1,
        }
    }
}

/// A datagram read from a flow's socket while it waits for request `seq`.
#[derive(Debug, PartialEq, Eq)]
enum Answer<'a> {
    /// The reply to `seq`: who answered and the source address it saw, where the payload
    /// says.
    Reply {
        server: Option<&'a str>,
        peer: Option<SocketAddr>,
    },
    /// A reply to an earlier request of this flow.
    Late,
    /// Anything else.
    Foreign,
}

fn classify(payload: Payload, datagram: &[u8], flow: u32, seq: u64) -> Answer<'_> {
    match payload {
        Payload::Echo => {
            let Some(echo) = proto::decode_reply(datagram) else {
                return Answer::Foreign;
            };
            match proto::decode_request(echo.payload) {
                Some((f, s)) if f == flow && s == seq => Answer::Reply {
                    server: Some(echo.server),
                    peer: Some(echo.peer),
                },
                Some((f, s)) if f == flow && s < seq => Answer::Late,
                _ => Answer::Foreign,
            }
        }
        Payload::Dns => match proto::dns_response_id(datagram) {
            Some(id) if id == dns_id(seq) => Answer::Reply {
                server: None,
                peer: None,
            },
            // Each flow has its own socket: another id is an earlier request's.
            Some(_) => Answer::Late,
            None => Answer::Foreign,
        },
    }
}

/// The DNS id of request `seq`: its low 16 bits, so consecutive requests of a flow differ.
fn dns_id(seq: u64) -> u16 {
    let [.., hi, lo] = seq.to_be_bytes();
    u16::from_be_bytes([hi, lo])
}

/// Spaces sends evenly at a fixed rate, catching up after a stall instead of bursting
/// beyond one interval's worth.
struct Pacer {
    interval: Option<Duration>,
    next: Instant,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Pacer {
        Pacer {
            interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)),
            next: Instant::now(),
        }
    }

    fn wait(&mut self, deadline: Instant) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = Instant::now();
        if self.next > now {
            thread::sleep((self.next.min(deadline)) - now);
        } else if now - self.next > interval * 64 {
            // Far behind (a stall): resume from now rather than send a burst.
            self.next = now;
        }
        self.next += interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> LoadgenConfig {
        let mut c = LoadgenConfig::new(
            "198.18.0.10:7000".parse().unwrap(),
            "198.19.0.100".parse().unwrap(),
            4,
        );
        c.targets.push("198.18.0.11:7000".parse().unwrap());
        c.sources.push("198.19.0.101".parse().unwrap());
        c.sources.push("198.19.0.102".parse().unwrap());
        c.first_port = Some(40_000);
        c
    }

    #[test]
    fn flows_spread_over_sources_targets_and_ports() {
        let plan = config().plan().expect("valid");
        let got: Vec<(String, String)> = plan
            .iter()
            .map(|p| (p.source.to_string(), p.target.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                ("198.19.0.100:40000", "198.18.0.10:7000"),
                ("198.19.0.101:40001", "198.18.0.11:7000"),
                ("198.19.0.102:40002", "198.18.0.10:7000"),
                ("198.19.0.100:40003", "198.18.0.11:7000"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
    }

    #[test]
    fn bad_configs_name_the_field() {
        let mut c = config();
        c.first_port = Some(65_534);
        let err = c.plan().expect_err("port overflow");
        assert!(err.to_string().contains("first_port"), "{err}");

        let mut c = config();
        c.sources = vec!["2001:2:0:100::100".parse().unwrap()];
        let err = c.plan().expect_err("family mismatch");
        assert!(err.to_string().contains("differ in family"), "{err}");

        let mut c = config();
        c.rate = Some(0.0);
        assert!(c.plan().is_err());
        c.rate = Some(f64::NAN);
        assert!(c.plan().is_err());

        let mut c = config();
        c.flows = 0;
        assert!(c.plan().is_err());
    }

    #[test]
    fn config_json_round_trip_and_unknown_fields() {
        let c = config();
        let json = serde_json::to_string(&c).expect("serialises");
        assert!(json.contains("\"mode\":\"request-response\""), "{json}");
        assert!(json.contains("\"payload\":\"echo\""), "{json}");
        let back: LoadgenConfig = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, c);
        let extra = json.replacen('{', "{\"bogus\":1,", 1);
        assert!(serde_json::from_str::<LoadgenConfig>(&extra).is_err());
        let unset = json.replace(",\"payload\":\"echo\"", "");
        let back: LoadgenConfig = serde_json::from_str(&unset).expect("payload is optional");
        assert_eq!(back.payload, Payload::Echo);
        let dns = json.replace("\"payload\":\"echo\"", "\"payload\":\"dns\"");
        let back: LoadgenConfig = serde_json::from_str(&dns).expect("parses");
        assert_eq!(back.payload, Payload::Dns);
    }

    #[test]
    fn echo_replies_match_their_flow_and_sequence() {
        let mut req = Vec::new();
        proto::encode_request(3, 7, 64, &mut req);
        let peer: SocketAddr = "198.18.0.2:40000".parse().unwrap();
        let local: SocketAddr = "198.18.1.11:7777".parse().unwrap();
        let mut reply = Vec::new();
        proto::encode_reply("backend-0", peer, local, &req, &mut reply);
        assert_eq!(
            classify(Payload::Echo, &reply, 3, 7),
            Answer::Reply {
                server: Some("backend-0"),
                peer: Some(peer)
            }
        );
        assert_eq!(classify(Payload::Echo, &reply, 3, 8), Answer::Late);
        assert_eq!(classify(Payload::Echo, &reply, 4, 7), Answer::Foreign);
        assert_eq!(classify(Payload::Echo, &req, 3, 7), Answer::Foreign);
    }

    #[test]
    fn dns_replies_match_by_id() {
        let mut query = Vec::new();
        proto::encode_dns_query(dns_id(0x1_0203), &mut query);
        assert_eq!(&query[..2], &[0x02, 0x03], "the id is the low 16 bits");
        let mut reply = query.clone();
        reply[2] |= 0x80;
        let answered = Answer::Reply {
            server: None,
            peer: None,
        };
        assert_eq!(classify(Payload::Dns, &reply, 0, 0x1_0203), answered);
        assert_eq!(classify(Payload::Dns, &reply, 0, 0x1_0204), Answer::Late);
        assert_eq!(
            classify(Payload::Dns, &query, 0, 0x1_0203),
            Answer::Foreign,
            "a query is no reply"
        );
    }

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

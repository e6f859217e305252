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

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use self::reply::{classify, dns_id, Answer};
pub use self::report::{BackendTally, FlowReport, Report};
use super::latency::Recorder;
use super::proto;
use crate::error::{Error, Result};

mod reply;
mod report;

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
    Ok(report::summarise(
        config.mode,
        reports,
        latency,
        complete,
        elapsed_s,
    ))
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
                report.answered(server, peer);
                return;
            }
            Answer::Late => report.late += 1,
            Answer::Foreign => report.errors += 1,
        }
    }
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
}

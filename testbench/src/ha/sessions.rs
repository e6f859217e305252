//! The session client of the scale-out scenario (`testbench sessions`): N UDP
//! pseudo-sessions kept alive at once, each a socket with its own fixed source port,
//! sending one echo request per round (every `interval_ms`, spread evenly over the
//! round), and a record of who answered each request.
//!
//! A request is *answered* when its echo reply arrives within `reply_timeout_ms` of its
//! sending; the reply names the backend and the source address the backend saw
//! ([`proto::encode_reply`]). The record keeps, per session and round, the backend that
//! answered (or none), every change of the address the backend saw, and per round the
//! wall-clock times of its first and last request, so that the driver can place its own
//! events (a kill, a join, a drain) among the rounds.
//!
//! One thread: it sends what is due, then reads the sockets of sessions with a request
//! outstanding (non-blocking), then sleeps up to a millisecond. The run ends at a round
//! boundary when `stop_file` exists or after `max_duration_ms`; outstanding requests then
//! get their reply timeout before the record is written.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::traffic::proto;

/// Characters that stand for backends in [`SessionRecord::answers`], in order of first
/// appearance ([`SessionsRecord::backends`]).
pub const BACKEND_CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// A request that got no answer (in time).
pub const UNANSWERED: u8 = b'.';

/// An answer from a backend beyond the [`BACKEND_CHARS`] alphabet.
pub const UNKNOWN_BACKEND: u8 = b'?';

/// Size of every request (the echo protocol's header and padding).
const REQUEST_SIZE: usize = 32;

/// Longest sleep between two looks at the sockets.
const TICK: Duration = Duration::from_millis(1);

/// What the client does. Serialised as JSON when the driver starts it in a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// The VIP and port.
    pub target: SocketAddr,
    /// The client's address.
    pub source: IpAddr,
    /// Source port of session 0; session `i` uses `first_port + i`.
    pub first_port: u16,
    /// Number of sessions.
    pub sessions: u32,
    /// One request per session every this many milliseconds.
    pub interval_ms: u64,
    /// How long a request waits for its reply.
    pub reply_timeout_ms: u64,
    /// Hard bound on the run.
    pub max_duration_ms: u64,
    /// The run ends (at the next round) once this file exists.
    pub stop_file: PathBuf,
}

impl SessionsConfig {
    /// Checks the configuration.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, detail: String| Error::invalid(format!("sessions {field}"), detail);
        if self.sessions == 0 || self.sessions > 20_000 {
            return Err(bad(
                "sessions",
                format!("{} not in 1..=20000", self.sessions),
            ));
        }
        if u32::from(self.first_port) == 0 || u32::from(self.first_port) + self.sessions > 65_536 {
            return Err(bad(
                "first_port",
                format!(
                    "{} + {} sessions passes port 65535",
                    self.first_port, self.sessions
                ),
            ));
        }
        if self.interval_ms == 0 || self.reply_timeout_ms == 0 {
            return Err(bad(
                "interval_ms/reply_timeout_ms",
                "must be at least 1".into(),
            ));
        }
        if self.source.is_ipv4() != self.target.is_ipv4() {
            return Err(bad(
                "source",
                format!(
                    "{} and target {} differ in family",
                    self.source, self.target
                ),
            ));
        }
        Ok(())
    }
}

/// When a round's requests were sent (wall clock, µs since the Unix epoch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// The round's first request.
    pub first_us: u64,
    /// Its last request.
    pub last_us: u64,
}

/// One session's history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Its source port.
    pub port: u16,
    /// One character per round: [`UNANSWERED`], or the backend that answered
    /// ([`BACKEND_CHARS`] indexes [`SessionsRecord::backends`]).
    pub answers: String,
    /// Each change of the source address the backend saw: (round, address). The first
    /// entry is the first address seen.
    pub peers: Vec<(u64, SocketAddr)>,
}

/// What a run recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsRecord {
    /// The round interval, ms.
    pub interval_ms: u64,
    /// The reply timeout, ms.
    pub reply_timeout_ms: u64,
    /// Every round, in order.
    pub rounds: Vec<Round>,
    /// Backend names, in order of first answer.
    pub backends: Vec<String>,
    /// Every session, by index.
    pub sessions: Vec<SessionRecord>,
    /// Replies that came after their timeout.
    pub late: u64,
    /// Datagrams that were no reply to this session's requests.
    pub foreign: u64,
    /// Requests the socket refused (counted unanswered).
    pub send_errors: u64,
    /// Socket errors on receive.
    pub recv_errors: u64,
}

impl SessionsRecord {
    /// The backend that answered session `s` in round `r`; `None` if unanswered.
    pub fn answer(&self, s: usize, r: usize) -> Option<&str> {
        let c = *self.sessions.get(s)?.answers.as_bytes().get(r)?;
        if c == UNANSWERED {
            return None;
        }
        let i = BACKEND_CHARS.iter().position(|&b| b == c);
        Some(
            i.and_then(|i| self.backends.get(i))
                .map_or("?", String::as_str),
        )
    }
}

/// Microseconds since the Unix epoch (the clock the driver stamps its events with).
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One session's socket and outstanding requests.
struct Session {
    socket: UdpSocket,
    /// (round, sent at), oldest first.
    outstanding: VecDeque<(u64, Instant)>,
    answers: Vec<u8>,
    peers: Vec<(u64, SocketAddr)>,
}

/// Runs the sessions until the stop file appears or the bound passes; returns the record.
///
/// # Errors
/// [`Error::Invalid`] for a bad configuration; [`Error::Io`] if a socket cannot be bound
/// (naming the port).
pub fn run(config: &SessionsConfig) -> Result<SessionsRecord> {
    config.validate()?;
    let mut sessions = (0..config.sessions)
        .map(|i| open(config, i))
        .collect::<Result<Vec<_>>>()?;
    let n = sessions.len();
    let interval = Duration::from_millis(config.interval_ms);
    let timeout = Duration::from_millis(config.reply_timeout_ms);
    let start = Instant::now();
    let deadline = start + Duration::from_millis(config.max_duration_ms);
    let mut record = SessionsRecord {
        interval_ms: config.interval_ms,
        reply_timeout_ms: config.reply_timeout_ms,
        ..SessionsRecord::default()
    };
    let mut request = Vec::with_capacity(REQUEST_SIZE);
    let mut buf = vec![0u8; 2048];
    let mut pending: Vec<usize> = Vec::new();
    let mut round: u64 = 0;
    let mut next = 0usize;
    let mut round_base = start;
    loop {
        let now = Instant::now();
        if next == 0 {
            if now >= deadline || config.stop_file.exists() {
                break;
            }
            record.rounds.push(Round {
                first_us: unix_us(),
                last_us: 0,
            });
            for s in &mut sessions {
                s.answers.push(UNANSWERED);
            }
        }
        // Session i is due `i/n` of the way through its round.
        let elapsed = now.saturating_duration_since(round_base).as_nanos();
        let due = usize::try_from(elapsed * n as u128 / interval.as_nanos().max(1) + 1)
            .unwrap_or(usize::MAX)
            .min(n);
        while next < due {
            let s = &mut sessions[next];
            proto::encode_request(
                u32::try_from(next).unwrap_or(u32::MAX),
                round,
                REQUEST_SIZE,
                &mut request,
            );
            if s.socket.send_to(&request, config.target).is_ok() {
                if s.outstanding.is_empty() {
                    pending.push(next);
                }
                s.outstanding.push_back((round, Instant::now()));
            } else {
                record.send_errors += 1;
            }
            next += 1;
        }
        if next == n {
            if let Some(r) = record.rounds.last_mut() {
                r.last_us = unix_us();
            }
            round += 1;
            next = 0;
            round_base += interval;
            // Far behind (the process was stalled): start the next round now rather
            // than send several rounds at once.
            if round_base + interval < Instant::now() {
                round_base = Instant::now();
            }
        }
        sweep(
            &mut sessions,
            &mut pending,
            &mut record,
            config.target,
            timeout,
            &mut buf,
        );
        let next_due = round_base
            + Duration::from_nanos(
                u64::try_from(interval.as_nanos() * next as u128 / n as u128).unwrap_or(0),
            );
        let pause = next_due.saturating_duration_since(Instant::now()).min(TICK);
        thread::sleep(pause.max(Duration::from_micros(100)));
    }
    // Every outstanding request gets its full timeout.
    let end = Instant::now() + timeout;
    while !pending.is_empty() && Instant::now() < end {
        sweep(
            &mut sessions,
            &mut pending,
            &mut record,
            config.target,
            timeout,
            &mut buf,
        );
        thread::sleep(TICK);
    }
    record.sessions = sessions
        .into_iter()
        .enumerate()
        .map(|(i, s)| SessionRecord {
            port: config
                .first_port
                .saturating_add(u16::try_from(i).unwrap_or(u16::MAX)),
            answers: String::from_utf8_lossy(&s.answers).into_owned(),
            peers: s.peers,
        })
        .collect();
    Ok(record)
}

fn open(config: &SessionsConfig, i: u32) -> Result<Session> {
    let port = u16::try_from(u32::from(config.first_port) + i)
        .map_err(|_| Error::invalid("sessions first_port", "passes 65535"))?;
    let local = SocketAddr::new(config.source, port);
    let socket = UdpSocket::bind(local).map_err(|e| Error::io(format!("binding {local}"), e))?;
    // Not connected: a connected socket gets a random flow hash (`sk_txhash`) that its
    // datagrams carry across veths, and the router's multipath choice would then use it
    // instead of hashing the addresses and ports as on a wire.
    socket
        .set_nonblocking(true)
        .map_err(|e| Error::io(format!("configuring {local}"), e))?;
    Ok(Session {
        socket,
        outstanding: VecDeque::new(),
        answers: Vec::new(),
        peers: Vec::new(),
    })
}

/// Reads every reply waiting on the sockets of sessions with outstanding requests (from
/// `target` only), and forgets requests older than `timeout`.
fn sweep(
    sessions: &mut [Session],
    pending: &mut Vec<usize>,
    record: &mut SessionsRecord,
    target: SocketAddr,
    timeout: Duration,
    buf: &mut [u8],
) {
    pending.retain(|&i| {
        let s = &mut sessions[i];
        loop {
            match s.socket.recv_from(buf) {
                Ok((len, from)) if from == target => {
                    take_reply(s, i, &buf[..len], record, timeout);
                }
                Ok(_) => record.foreign += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Any other error: the request stays unanswered.
                Err(_) => {
                    record.recv_errors += 1;
                    break;
                }
            }
        }
        let now = Instant::now();
        while s
            .outstanding
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > timeout)
        {
            s.outstanding.pop_front();
        }
        !s.outstanding.is_empty()
    });
}

fn take_reply(
    s: &mut Session,
    index: usize,
    datagram: &[u8],
    record: &mut SessionsRecord,
    timeout: Duration,
) {
    let Some(reply) = proto::decode_reply(datagram) else {
        record.foreign += 1;
        return;
    };
    let Some((flow, seq)) = proto::decode_request(reply.payload) else {
        record.foreign += 1;
        return;
    };
    if usize::try_from(flow).ok() != Some(index) {
        record.foreign += 1;
        return;
    }
    let Some(pos) = s.outstanding.iter().position(|(r, _)| *r == seq) else {
        // Already timed out (or a duplicate).
        record.late += 1;
        return;
    };
    let (_, sent) = s.outstanding[pos];
    if sent.elapsed() > timeout {
        record.late += 1;
        return;
    }
    s.outstanding.remove(pos);
    let backend = match record.backends.iter().position(|b| b == reply.server) {
        Some(i) => i,
        None => {
            record.backends.push(reply.server.to_owned());
            record.backends.len() - 1
        }
    };
    let c = BACKEND_CHARS
        .get(backend)
        .copied()
        .unwrap_or(UNKNOWN_BACKEND);
    if let Some(slot) = usize::try_from(seq).ok().and_then(|r| s.answers.get_mut(r)) {
        *slot = c;
    }
    if s.peers.last().is_none_or(|(_, p)| *p != reply.peer) {
        s.peers.push((seq, reply.peer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SessionsConfig {
        SessionsConfig {
            target: "198.19.0.10:7000".parse().unwrap(),
            source: "198.19.1.100".parse().unwrap(),
            first_port: 20_000,
            sessions: 1000,
            interval_ms: 100,
            reply_timeout_ms: 1000,
            max_duration_ms: 60_000,
            stop_file: "/nonexistent".into(),
        }
    }

    #[test]
    fn configs_are_checked() {
        assert!(config().validate().is_ok());
        let mut c = config();
        c.first_port = 65_000;
        assert!(c.validate().is_err());
        let mut c = config();
        c.sessions = 0;
        assert!(c.validate().is_err());
        let mut c = config();
        c.source = "2001:2::1".parse().unwrap();
        assert!(c.validate().is_err());
    }

    #[test]
    fn answers_name_backends() {
        let record = SessionsRecord {
            backends: vec!["backend-3".into(), "backend-0".into()],
            sessions: vec![SessionRecord {
                port: 20_000,
                answers: "0.1?".into(),
                peers: vec![],
            }],
            ..SessionsRecord::default()
        };
        assert_eq!(record.answer(0, 0), Some("backend-3"));
        assert_eq!(record.answer(0, 1), None);
        assert_eq!(record.answer(0, 2), Some("backend-0"));
        assert_eq!(record.answer(0, 3), Some("?"));
        assert_eq!(record.answer(0, 4), None);
        assert_eq!(record.answer(1, 0), None);
    }

    /// Against a local echo server on loopback: every request of every round answered,
    /// by the one backend, which saw each session's own port.
    #[test]
    fn loopback_sessions_are_answered() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let target = server.local_addr().expect("addr");
        server
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let stop = std::env::temp_dir().join(format!("ulbtb-sessions-{}", std::process::id()));
        let _ = std::fs::remove_file(&stop);
        let done = std::sync::atomic::AtomicBool::new(false);
        let record = thread::scope(|scope| {
            scope.spawn(|| {
                let mut buf = [0u8; 2048];
                let mut out = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok((len, peer)) = server.recv_from(&mut buf) {
                        proto::encode_reply("b", peer, target, &buf[..len], &mut out);
                        let _ = server.send_to(&out, peer);
                    }
                }
            });
            // Blocks of 20 fixed ports: the first block nobody else holds.
            let record = (0..20u16)
                .map(|i| SessionsConfig {
                    target,
                    source: "127.0.0.1".parse().unwrap(),
                    first_port: 41_000 + i * 100,
                    sessions: 20,
                    interval_ms: 20,
                    reply_timeout_ms: 10_000,
                    max_duration_ms: 100,
                    stop_file: stop.clone(),
                })
                .find_map(|c| run(&c).ok());
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            record
        });
        let record = record.expect("a free block of 20 ports");
        assert!(!record.rounds.is_empty());
        for s in &record.sessions {
            assert_eq!(s.answers.len(), record.rounds.len());
            assert!(s.answers.bytes().all(|c| c == b'0'), "{}", s.answers);
            assert_eq!(s.peers.len(), 1);
            assert_eq!(s.peers[0].1.port(), s.port);
        }
        assert_eq!(record.backends, ["b"]);
        assert!(record.rounds.iter().all(|r| r.first_us <= r.last_us));
    }
}

//! A UDP echo server that says who it is and whom it saw.
//!
//! Each datagram is answered with [`super::proto::encode_reply`]: the server's name,
//! the source address it saw (so client-IP preservation can be checked), the address it
//! received on, then the payload. In sink mode nothing is answered, for one-way load;
//! both modes count what they receive and answer [`super::proto::STATS_REQUEST`].

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::proto::{self, EchoStats};
use crate::error::{Error, Result};

/// How often a serving thread looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Largest datagram handled.
const MAX_DATAGRAM: usize = 65_535;

/// What to serve.
#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// The name put in every reply (see [`proto::valid_server_name`]).
    pub name: String,
    /// Addresses to bind, one socket (and thread) each.
    pub listen: Vec<SocketAddr>,
    /// Count only, do not reply.
    pub sink: bool,
    /// Each socket's receive buffer (`SO_RCVBUF`, bytes; the kernel caps it at
    /// `net.core.rmem_max`); `None`: the system default (~208 KiB, a few hundred small
    /// datagrams, which a server descheduled for 100 ms at a few thousand per second
    /// overflows).
    pub recv_buffer: Option<usize>,
}

/// Counters shared by the serving threads.
#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    replied: AtomicU64,
    peers: Mutex<(BTreeMap<SocketAddr, u64>, u64)>,
}

impl Counters {
    fn note_peer(&self, peer: SocketAddr) {
        let mut guard = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let (peers, untracked) = &mut *guard;
        if let Some(n) = peers.get_mut(&peer) {
            *n += 1;
        } else if peers.len() < proto::MAX_TRACKED_PEERS {
            peers.insert(peer, 1);
        } else {
            *untracked += 1;
        }
    }

    fn snapshot(&self, name: &str) -> EchoStats {
        let guard = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        EchoStats {
            name: name.to_owned(),
            received: self.received.load(Ordering::Relaxed),
            replied: self.replied.load(Ordering::Relaxed),
            peers: guard.0.clone(),
            untracked: guard.1,
        }
    }
}

/// Binds every address, then serves until `stop` is set.
///
/// # Errors
/// [`Error::Invalid`] for a bad name or no address; [`Error::Io`] if an address cannot be
/// bound (naming it).
pub fn serve(config: &EchoConfig, stop: &AtomicBool) -> Result<()> {
    if !proto::valid_server_name(&config.name) {
        return Err(Error::invalid(
            "echo --name",
            format!("{:?} must be printable ASCII without spaces", config.name),
        ));
    }
    if config.listen.is_empty() {
        return Err(Error::invalid("echo --listen", "give at least one address"));
    }
    let sockets = config
        .listen
        .iter()
        .map(|addr| {
            let socket =
                UdpSocket::bind(addr).map_err(|e| Error::io(format!("binding {addr}"), e))?;
            socket
                .set_read_timeout(Some(STOP_POLL))
                .map_err(|e| Error::io(format!("configuring {addr}"), e))?;
            if let Some(bytes) = config.recv_buffer {
                socket2::SockRef::from(&socket)
                    .set_recv_buffer_size(bytes)
                    .map_err(|e| Error::io(format!("setting the receive buffer of {addr}"), e))?;
            }
            Ok((socket, *addr))
        })
        .collect::<Result<Vec<_>>>()?;
    let counters = Arc::new(Counters::default());
    thread::scope(|scope| {
        for (socket, local) in sockets {
            let counters = Arc::clone(&counters);
            scope.spawn(move || serve_socket(&socket, local, config, &counters, stop));
        }
    });
    Ok(())
}

fn serve_socket(
    socket: &UdpSocket,
    local: SocketAddr,
    config: &EchoConfig,
    counters: &Counters,
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(MAX_DATAGRAM + 128);
    while !stop.load(Ordering::Relaxed) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            // Timeouts let us see the stop flag; other errors (ICMP feedback) are transient.
            Err(_) => continue,
        };
        let payload = &buf[..len];
        if payload == proto::STATS_REQUEST {
            if let Ok(json) = serde_json::to_vec(&counters.snapshot(&config.name)) {
                let _ = socket.send_to(&json, peer);
            }
            continue;
        }
        counters.received.fetch_add(1, Ordering::Relaxed);
        counters.note_peer(peer);
        if config.sink {
            continue;
        }
        proto::encode_reply(&config.name, peer, local, payload, &mut out);
        if socket.send_to(&out, peer).is_ok() {
            counters.replied.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Asks the echo server at `server` for its statistics, retrying within `timeout`.
///
/// # Errors
/// [`Error::Io`] on socket errors, [`Error::Timeout`] without an answer, [`Error::Parse`]
/// for an answer that is not [`EchoStats`].
pub fn query_stats(server: SocketAddr, timeout: Duration) -> Result<EchoStats> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind).map_err(|e| Error::io("binding a stats socket", e))?;
    socket
        .connect(server)
        .map_err(|e| Error::io(format!("connecting to {server}"), e))?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while Instant::now() < deadline {
        // A lost request or reply is retried; the attempt timeout bounds each try.
        let _ = socket.send(proto::STATS_REQUEST);
        let attempt = (deadline - Instant::now()).min(Duration::from_millis(300));
        socket
            .set_read_timeout(Some(attempt.max(Duration::from_millis(1))))
            .map_err(|e| Error::io("configuring the stats socket", e))?;
        if let Ok(len) = socket.recv(&mut buf) {
            return serde_json::from_slice(&buf[..len]).map_err(|e| Error::Parse {
                tool: format!("echo server {server}"),
                detail: e.to_string(),
            });
        }
    }
    Err(Error::Timeout {
        what: format!("statistics from echo server {server}"),
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_beyond_the_limit_are_counted_apart() {
        let c = Counters::default();
        for i in 0..proto::MAX_TRACKED_PEERS + 3 {
            let port = u16::try_from(i % 65_536).expect("below 2^16");
            let last = if i < 65_536 { 100 } else { 101 };
            c.note_peer(([198, 19, 0, last], port).into());
        }
        c.note_peer(([198, 19, 0, 100], 7).into());
        let s = c.snapshot("b");
        assert_eq!(s.peers.len(), proto::MAX_TRACKED_PEERS);
        assert_eq!(s.untracked, 3);
        assert_eq!(s.peers[&([198, 19, 0, 100], 7).into()], 2);
    }

    #[test]
    fn bad_configs_are_refused_before_binding() {
        let stop = AtomicBool::new(true);
        let no_name = EchoConfig {
            name: "two words".into(),
            listen: vec!["198.18.1.11:7000".parse().unwrap()],
            sink: false,
            recv_buffer: None,
        };
        assert!(matches!(serve(&no_name, &stop), Err(Error::Invalid { .. })));
        let no_addr = EchoConfig {
            name: "b".into(),
            listen: vec![],
            sink: false,
            recv_buffer: None,
        };
        assert!(matches!(serve(&no_addr, &stop), Err(Error::Invalid { .. })));
    }
}

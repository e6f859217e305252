//! Stable digests of what a compile produced: the forwarding config and the status.
//!
//! The appliance compares them to tell whether a new set changes anything (a set whose
//! forwarding digest equals the running one needs no new tables; one whose status digest
//! also matches is a no-op) and logs them ("config digest"). They are SHA-256 over a
//! canonical encoding, so they are the same on every machine and every run, never
//! depend on a process-seeded hasher (Rust's `DefaultHasher` is not stable across
//! releases), and change only when the content does, or when the encoding's version
//! (the first bytes hashed) is bumped.
//!
//! - Forwarding: a length-prefixed binary encoding of every field of
//!   [`ForwardingConfig`], in its order (the compile step normalizes it). The encoder
//!   destructures every struct and matches every enum exhaustively, so a field or variant
//!   added to `pipelines::spec` does not compile until it is encoded here.
//! - Status: the compact JSON of [`StatusReport::documents`], what `udplb check --output
//!   json` prints, without the whitespace.

use std::fmt;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use pipelines::spec::{
    BackendSpec, ForwardingConfig, HashKey, ListenerKey, ListenerOptions, ListenerSpec, NatMode,
    RouteKey, RouteSpec, ServiceKey,
};
use sha2::{Digest as _, Sha256};

use crate::status::StatusReport;

/// Version tag of the forwarding encoding; bump it when the encoding changes.
const FORWARDING_V1: &[u8] = b"udplb.forwarding.v1\0";
/// Version tag of the status encoding; bump it when the encoding changes.
const STATUS_V1: &[u8] = b"udplb.status.v1\0";

/// A SHA-256 digest. `Display` is lowercase hex (64 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The first 12 hex digits, for log lines.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The digest of a forwarding config (every field, in order).
pub fn forwarding_digest(config: &ForwardingConfig) -> Digest {
    let mut e = Encoder(Sha256::new());
    e.bytes(FORWARDING_V1);
    let ForwardingConfig { listeners } = config;
    e.len(listeners.len());
    for l in listeners {
        e.listener(l);
    }
    Digest(e.0.finalize().into())
}

/// The digest of a status report: its documents as compact JSON.
pub fn status_digest(status: &StatusReport) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(STATUS_V1);
    // Writing plain structs of strings and numbers into a hasher cannot fail; should it,
    // the error text is hashed instead, which still depends on the content only.
    if let Err(e) = serde_json::to_writer(&mut hasher, &status.documents()) {
        let _ = write!(hasher, "\0unserializable: {e}");
    }
    Digest(hasher.finalize().into())
}

/// Feeds fields to the hash, each unambiguously delimited.
struct Encoder(Sha256);

impl Encoder {
    fn bytes(&mut self, b: &[u8]) {
        self.0.update(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.update([v]);
    }
    fn u64(&mut self, v: u64) {
        self.0.update(v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.bytes(s.as_bytes());
    }
    fn ip(&mut self, ip: &IpAddr) {
        match ip {
            IpAddr::V4(a) => {
                self.u8(4);
                self.bytes(&a.octets());
            }
            IpAddr::V6(a) => {
                self.u8(6);
                self.bytes(&a.octets());
            }
        }
    }
    fn port(&mut self, p: u16) {
        self.bytes(&p.to_le_bytes());
    }
    fn socket(&mut self, s: &SocketAddr) {
        self.ip(&s.ip());
        self.port(s.port());
    }

    fn listener(&mut self, l: &ListenerSpec) {
        let ListenerSpec {
            vip,
            port,
            key,
            options,
            route,
        } = l;
        self.ip(vip);
        self.port(*port);
        let ListenerKey {
            namespace,
            gateway,
            listener,
        } = key;
        self.str(namespace);
        self.str(gateway);
        self.str(listener);
        self.options(options);
        match route {
            None => self.u8(0),
            Some(r) => {
                self.u8(1);
                self.route(r);
            }
        }
    }

    fn options(&mut self, o: &ListenerOptions) {
        let ListenerOptions {
            nat_mode,
            idle_timeout,
            hash_key,
        } = o;
        self.u8(match nat_mode {
            None => 0,
            Some(NatMode::FullNat) => 1,
            Some(NatMode::PreserveClient) => 2,
            Some(NatMode::Dsr) => 3,
        });
        match idle_timeout {
            None => self.u8(0),
            Some(d) => {
                self.u8(1);
                self.u64(d.as_secs());
                self.u64(u64::from(d.subsec_nanos()));
            }
        }
        self.u8(match hash_key {
            None => 0,
            Some(HashKey::FiveTuple) => 1,
            Some(HashKey::SourceIpPort) => 2,
            Some(HashKey::SourceIp) => 3,
        });
    }

    fn route(&mut self, r: &RouteSpec) {
        let RouteSpec {
            key,
            backends,
            dropped_weight,
        } = r;
        let RouteKey { namespace, name } = key;
        self.str(namespace);
        self.str(name);
        self.len(backends.len());
        for b in backends {
            let BackendSpec {
                addr,
                service,
                weight,
                draining,
            } = b;
            self.socket(addr);
            let ServiceKey {
                namespace,
                name,
                port,
            } = service;
            self.str(namespace);
            self.str(name);
            self.port(*port);
            self.u64(*weight);
            self.u8(u8::from(*draining));
        }
        self.u64(*dropped_weight);
    }
}

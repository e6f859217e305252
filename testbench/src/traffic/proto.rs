//! The datagram formats the load generator speaks: our echo protocol (shared with the echo
//! server) and a DNS query a DNS server or proxy answers.
//!
//! ```text
//! request  = "ULBQ" flow:u32be seq:u64be padding…           (any payload is echoed)
//! reply    = "ECHO " server " " peer " " local "\n" payload  (payload = the request)
//! stats    = "ULB-STATS"  →  reply: EchoStats as JSON
//! dns      = id:u16be flags=0x0100 qd=1 … "whoami.test" TXT IN  →  reply with the same id, QR set
//! ```
//!
//! `peer` is the source address the server saw: the client's own address when the
//! appliance preserves it, the SNAT address in full-NAT mode.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::dns::WHOAMI;

/// Leading bytes of a load-generator request.
pub const REQUEST_MAGIC: &[u8; 4] = b"ULBQ";

/// Length of a request header; payloads are at least this long.
pub const REQUEST_HEADER_LEN: usize = 16;

/// Leading bytes of an echo reply.
pub const REPLY_MAGIC: &[u8; 5] = b"ECHO ";

/// The exact payload that asks an echo server for its [`EchoStats`].
pub const STATS_REQUEST: &[u8] = b"ULB-STATS";

/// Writes a request for (`flow`, `seq`) into `buf`, padded with `0x5a` to `size` bytes
/// (at least [`REQUEST_HEADER_LEN`]).
pub fn encode_request(flow: u32, seq: u64, size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(REQUEST_MAGIC);
    buf.extend_from_slice(&flow.to_be_bytes());
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.resize(size.max(REQUEST_HEADER_LEN), 0x5a);
}

/// Reads (`flow`, `seq`) from a request; `None` if it is not one.
pub fn decode_request(payload: &[u8]) -> Option<(u32, u64)> {
    let rest = payload.strip_prefix(REQUEST_MAGIC)?;
    let flow = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let seq = u64::from_be_bytes(rest.get(4..12)?.try_into().ok()?);
    Some((flow, seq))
}

/// Writes the reply of server `name` to a datagram from `peer` received on `local`.
pub fn encode_reply(
    name: &str,
    peer: SocketAddr,
    local: SocketAddr,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    use std::io::Write;
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = writeln!(out, "ECHO {name} {peer} {local}");
    out.extend_from_slice(payload);
}

/// A decoded echo reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// The name of the server that answered.
    pub server: &'a str,
    /// The source address the server saw.
    pub peer: SocketAddr,
    /// The address the server received on.
    pub local: SocketAddr,
    /// The echoed request.
    pub payload: &'a [u8],
}

/// Decodes an echo reply; `None` if it is malformed.
pub fn decode_reply(buf: &[u8]) -> Option<EchoReply<'_>> {
    let rest = buf.strip_prefix(REPLY_MAGIC)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&rest[..nl]).ok()?;
    let mut words = header.split(' ');
    let server = words.next().filter(|s| !s.is_empty())?;
    let peer = words.next()?.parse().ok()?;
    let local = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    Some(EchoReply {
        server,
        peer,
        local,
        payload: &rest[nl + 1..],
    })
}

/// Writes a DNS query (recursion desired) for [`WHOAMI`] `TXT` with `id` into `buf`.
pub fn encode_dns_query(id: u16, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(&id.to_be_bytes());
    // Flags RD; one question, no other records.
    buf.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in WHOAMI.split('.') {
        // The labels of WHOAMI are short ASCII words.
        buf.push(u8::try_from(label.len()).unwrap_or(0));
        buf.extend_from_slice(label.as_bytes());
    }
    // Root label, QTYPE TXT (16), QCLASS IN (1).
    buf.extend_from_slice(&[0, 0, 16, 0, 1]);
}

/// The id of a DNS response (a full header with the QR bit set); `None` for anything
/// else, including a query.
pub fn dns_response_id(buf: &[u8]) -> Option<u16> {
    let header = buf.get(..12)?;
    (header[2] & 0x80 != 0).then(|| u16::from_be_bytes([header[0], header[1]]))
}

/// Whether `name` can be an echo server name: non-empty printable ASCII without spaces.
pub fn valid_server_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())
}

/// What an echo server has seen, as returned for [`STATS_REQUEST`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoStats {
    /// Server name.
    pub name: String,
    /// Datagrams received (stats requests excluded).
    pub received: u64,
    /// Replies sent.
    pub replied: u64,
    /// Datagrams per source address seen, for up to [`MAX_TRACKED_PEERS`] sources.
    pub peers: BTreeMap<SocketAddr, u64>,
    /// Datagrams from sources beyond that limit.
    pub untracked: u64,
}

/// How many distinct sources an echo server counts individually.
pub const MAX_TRACKED_PEERS: usize = 65_536;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let mut buf = Vec::new();
        encode_request(0x0102_0304, 5, 20, &mut buf);
        assert_eq!(
            buf,
            [b'U', b'L', b'B', b'Q', 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 5, 0x5a, 0x5a, 0x5a, 0x5a]
        );
        assert_eq!(decode_request(&buf), Some((0x0102_0304, 5)));
        encode_request(1, 2, 0, &mut buf);
        assert_eq!(buf.len(), REQUEST_HEADER_LEN);
    }

    #[test]
    fn short_or_foreign_requests_are_rejected() {
        assert_eq!(decode_request(b"ULBQ\0\0\0\x01\0\0"), None);
        assert_eq!(decode_request(b"XLBQ\0\0\0\x01\0\0\0\0\0\0\0\x02"), None);
    }

    #[test]
    fn reply_round_trip() {
        let peer: SocketAddr = "[2001:2:0:100::100]:40000".parse().unwrap();
        let local: SocketAddr = "198.18.1.11:7000".parse().unwrap();
        let mut out = Vec::new();
        encode_reply("backend-1", peer, local, b"hi\nthere", &mut out);
        assert_eq!(
            out,
            b"ECHO backend-1 [2001:2:0:100::100]:40000 198.18.1.11:7000\nhi\nthere"
        );
        let reply = decode_reply(&out).expect("decodes");
        assert_eq!(reply.server, "backend-1");
        assert_eq!(reply.peer, peer);
        assert_eq!(reply.local, local);
        assert_eq!(reply.payload, b"hi\nthere");
    }

    #[test]
    fn malformed_replies_are_rejected() {
        assert!(decode_reply(b"ECHO b 1.2.3.4:5 1.2.3.4:6").is_none()); // no newline
        assert!(decode_reply(b"ECHO b nonsense 1.2.3.4:6\n").is_none());
        assert!(decode_reply(b"ECHO b 1.2.3.4:5 1.2.3.4:6 extra\n").is_none());
        assert!(decode_reply(b"ECHO  1.2.3.4:5 1.2.3.4:6\n").is_none());
        assert!(decode_reply(b"").is_none());
    }

    #[test]
    fn dns_query_and_response_id() {
        let mut query = Vec::new();
        encode_dns_query(0x0203, &mut query);
        assert_eq!(&query[..4], &[0x02, 0x03, 0x01, 0x00]);
        assert_eq!(&query[12..], b"\x06whoami\x04test\x00\x00\x10\x00\x01");
        assert_eq!(dns_response_id(&query), None, "a query is no response");
        let mut response = query.clone();
        response[2] |= 0x80;
        assert_eq!(dns_response_id(&response), Some(0x0203));
        assert_eq!(dns_response_id(&response[..11]), None, "short header");
    }

    #[test]
    fn server_names() {
        assert!(valid_server_name("backend-0"));
        assert!(!valid_server_name("a b"));
        assert!(!valid_server_name(""));
        assert!(!valid_server_name("a\n"));
    }
}

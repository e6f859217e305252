//! Which request a datagram read from a flow's socket answers.

use std::net::SocketAddr;

use super::Payload;
use crate::traffic::proto;

/// A datagram read from a flow's socket while it waits for request `seq`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Answer<'a> {
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

/// What `datagram` is to flow `flow` while it waits for the reply to request `seq`.
pub(super) fn classify(payload: Payload, datagram: &[u8], flow: u32, seq: u64) -> Answer<'_> {
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
pub(super) fn dns_id(seq: u64) -> u16 {
    let [.., hi, lo] = seq.to_be_bytes();
    u16::from_be_bytes([hi, lo])
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

//! What a probe carries and how an answer is judged: the UDP payload or the DNS query of
//! an active check ([`encode`]), and the verdict on a datagram from the endpoint
//! ([`judge`]).
//!
//! Design note: the DNS message is built and read here, minimally (one question out; the
//! header and the echoed question back), rather than with a DNS crate: none is in the
//! tree, the check needs 12 header bytes and a question, and reading only what we need
//! keeps a hostile answer from reaching a general parser. Names come validated from the
//! config (labels of 1..=63 bytes, at most 253 characters).

use pipelines::spec::{ExpectedReply, PayloadMatch, ProbeSpec};

/// DNS header length (RFC 1035 §4.1.1).
const DNS_HEADER_LEN: usize = 12;
/// QR bit: the message is a response.
const DNS_QR: u16 = 0x8000;
/// RD bit: recursion desired.
const DNS_RD: u16 = 0x0100;
/// Class IN.
const DNS_CLASS_IN: u16 = 1;

/// The verdict on one datagram from a probed endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judged {
    /// The probe passes.
    Pass,
    /// The probe fails, with the reason for status.
    Fail(String),
    /// Not an answer to this probe (another ID, no match yet): wait for the timeout.
    Ignore,
}

/// The payload of a probe of `spec`; `id` is the DNS message ID (unused for UDP).
pub fn encode(spec: &ProbeSpec, id: u16) -> Vec<u8> {
    match spec {
        ProbeSpec::Udp { send, .. } => send.clone(),
        ProbeSpec::Dns {
            name,
            qtype,
            recursion_desired,
            ..
        } => {
            let mut m = Vec::with_capacity(DNS_HEADER_LEN + name.len() + 6);
            let flags = if *recursion_desired { DNS_RD } else { 0 };
            for word in [id, flags, 1, 0, 0, 0] {
                m.extend_from_slice(&word.to_be_bytes());
            }
            write_name(&mut m, name);
            m.extend_from_slice(&qtype.to_be_bytes());
            m.extend_from_slice(&DNS_CLASS_IN.to_be_bytes());
            m
        }
    }
}

/// Labels in wire form, then the root label. The config bounds every label to 63 bytes;
/// a longer one is cut rather than written as a compression pointer.
fn write_name(m: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        // At most 63: fits a byte.
        m.push(u8::try_from(bytes.len()).unwrap_or(63));
        m.extend_from_slice(bytes);
    }
    m.push(0);
}

/// Judges `reply`, a datagram from the endpoint to the probe's source port, for a probe
/// of `spec` sent with DNS ID `id`.
pub fn judge(spec: &ProbeSpec, id: u16, reply: &[u8]) -> Judged {
    match spec {
        // A weak check passes on any answer: the port is open.
        ProbeSpec::Udp { expect: None, .. } => Judged::Pass,
        ProbeSpec::Udp {
            expect: Some(e), ..
        } => {
            if matches(e, reply) {
                Judged::Pass
            } else {
                Judged::Ignore
            }
        }
        ProbeSpec::Dns {
            name,
            qtype,
            rcodes,
            ..
        } => judge_dns(id, name, *qtype, *rcodes, reply),
    }
}

/// Whether `reply` matches the expected payload.
pub fn matches(e: &ExpectedReply, reply: &[u8]) -> bool {
    match e.matching {
        PayloadMatch::Exact => reply == e.payload.as_slice(),
        PayloadMatch::Prefix => reply.starts_with(&e.payload),
        PayloadMatch::Contains => {
            !e.payload.is_empty() && reply.windows(e.payload.len()).any(|w| w == e.payload)
        }
    }
}

fn judge_dns(
    id: u16,
    name: &str,
    qtype: u16,
    rcodes: pipelines::spec::RcodeSet,
    reply: &[u8],
) -> Judged {
    let word = |i: usize| {
        reply
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let (Some(got_id), Some(flags)) = (word(0), word(2)) else {
        return Judged::Ignore;
    };
    // Another probe's answer, or a query: not ours.
    if got_id != id || flags & DNS_QR == 0 {
        return Judged::Ignore;
    }
    if reply.len() < DNS_HEADER_LEN {
        return Judged::Fail("DNS reply shorter than its header".into());
    }
    // A server that echoes a question must echo ours (RFC 1035 §7.3); FORMERR and the
    // like may carry none.
    if word(4).is_some_and(|qd| qd > 0) && !echoes_question(&reply[DNS_HEADER_LEN..], name, qtype) {
        return Judged::Fail("DNS reply for another question".into());
    }
    // The low 4 bits: always below 16.
    let rcode = u8::try_from(flags & 0x000f).unwrap_or(u8::MAX);
    if rcodes.contains(rcode) {
        Judged::Pass
    } else {
        Judged::Fail(format!("DNS rcode {}", rcode_name(rcode)))
    }
}

/// Whether the question section starts with `name` (ASCII case-insensitive, RFC 4343),
/// `qtype`, class IN.
fn echoes_question(section: &[u8], name: &str, qtype: u16) -> bool {
    let mut want = Vec::with_capacity(name.len() + 2);
    write_name(&mut want, name);
    want.extend_from_slice(&qtype.to_be_bytes());
    want.extend_from_slice(&DNS_CLASS_IN.to_be_bytes());
    section
        .get(..want.len())
        .is_some_and(|got| got.eq_ignore_ascii_case(&want))
}

/// RFC 1035 / RFC 2136 names of the rcodes a check can expect.
pub fn rcode_name(rcode: u8) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    NAMES
        .get(usize::from(rcode))
        .map_or_else(|| format!("RCODE{rcode}"), |n| (*n).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipelines::spec::RcodeSet;

    fn dns(rcodes: u16) -> ProbeSpec {
        ProbeSpec::Dns {
            name: "health.example".into(),
            qtype: 16,
            rcodes: RcodeSet(rcodes),
            recursion_desired: true,
        }
    }

    /// A response to `query` with `rcode`, echoing the question.
    fn answer(query: &[u8], rcode: u16) -> Vec<u8> {
        let mut r = query.to_vec();
        let flags = u16::from_be_bytes([r[2], r[3]]) | DNS_QR | rcode;
        r[2..4].copy_from_slice(&flags.to_be_bytes());
        r
    }

    #[test]
    fn dns_query_bytes() {
        let q = encode(&dns(1), 0xbeef);
        let want: Vec<u8> = [
            &[0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x06health\x07example\x00",
            &[0, 16, 0, 1],
        ]
        .concat();
        assert_eq!(q, want);
        let ProbeSpec::Dns { name, .. } = dns(1) else {
            unreachable!()
        };
        let no_rd = encode(
            &ProbeSpec::Dns {
                name: format!("{name}."),
                qtype: 1,
                rcodes: RcodeSet(1),
                recursion_desired: false,
            },
            1,
        );
        assert_eq!(&no_rd[2..4], &[0, 0]);
        assert_eq!(&no_rd[12..28], b"\x06health\x07example\x00");
    }

    #[test]
    fn dns_replies_are_judged_by_id_question_and_rcode() {
        let spec = dns((1 << 0) | (1 << 3)); // NOERROR, NXDOMAIN
        let q = encode(&spec, 7);
        assert_eq!(judge(&spec, 7, &answer(&q, 0)), Judged::Pass);
        assert_eq!(judge(&spec, 7, &answer(&q, 3)), Judged::Pass);
        assert_eq!(
            judge(&spec, 7, &answer(&q, 2)),
            Judged::Fail("DNS rcode SERVFAIL".into())
        );
        assert_eq!(
            judge(&spec, 7, &answer(&q, 5)),
            Judged::Fail("DNS rcode REFUSED".into())
        );
        // Another ID, a query, or too short to say: not an answer to this probe.
        assert_eq!(judge(&spec, 8, &answer(&q, 0)), Judged::Ignore);
        assert_eq!(judge(&spec, 7, &q), Judged::Ignore);
        assert_eq!(judge(&spec, 7, &[0, 7, 0x80]), Judged::Ignore);
        // Header only, no question: judged by the rcode.
        let header = answer(&q, 1)[..12].to_vec();
        let mut no_question = header.clone();
        no_question[4..6].copy_from_slice(&[0, 0]);
        assert_eq!(
            judge(&spec, 7, &no_question),
            Judged::Fail("DNS rcode FORMERR".into())
        );
        // A question section that says it is there but is not.
        assert_eq!(
            judge(&spec, 7, &header),
            Judged::Fail("DNS reply for another question".into())
        );
        // Case does not matter; another type does.
        let mut upper = answer(&q, 0);
        upper[13..19].copy_from_slice(b"HEALTH");
        assert_eq!(judge(&spec, 7, &upper), Judged::Pass);
        let mut other_type = answer(&q, 0);
        let n = other_type.len();
        other_type[n - 3] = 1;
        assert_eq!(
            judge(&spec, 7, &other_type),
            Judged::Fail("DNS reply for another question".into())
        );
        // A 12-byte header that claims to be ours but is shorter than one.
        assert_eq!(
            judge(&spec, 7, &answer(&q, 0)[..11]),
            Judged::Fail("DNS reply shorter than its header".into())
        );
    }

    #[test]
    fn udp_replies_match_exactly_by_prefix_or_contained() {
        let spec = |matching, payload: &[u8]| ProbeSpec::Udp {
            send: b"health?".to_vec(),
            expect: Some(ExpectedReply {
                matching,
                payload: payload.to_vec(),
            }),
        };
        assert_eq!(encode(&spec(PayloadMatch::Exact, b"ok"), 9), b"health?");
        let cases: [(PayloadMatch, &[u8], &[u8], bool); 9] = [
            (PayloadMatch::Exact, b"ok", b"ok", true),
            (PayloadMatch::Exact, b"ok", b"ok!", false),
            (PayloadMatch::Exact, b"ok", b"o", false),
            (PayloadMatch::Prefix, b"ok", b"ok then", true),
            (PayloadMatch::Prefix, b"ok", b"not ok", false),
            (PayloadMatch::Contains, b"ok", b"not ok", true),
            (PayloadMatch::Contains, b"ok", b"o k", false),
            (PayloadMatch::Contains, b"ok", b"", false),
            (PayloadMatch::Prefix, b"ok", b"", false),
        ];
        for (m, want, got, pass) in cases {
            let verdict = judge(&spec(m, want), 0, got);
            let expected = if pass { Judged::Pass } else { Judged::Ignore };
            assert_eq!(verdict, expected, "{m:?} {want:?} {got:?}");
        }
        let weak = ProbeSpec::Udp {
            send: b"x".to_vec(),
            expect: None,
        };
        assert_eq!(judge(&weak, 0, b"anything"), Judged::Pass);
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_name(0), "NOERROR");
        assert_eq!(rcode_name(10), "NOTZONE");
        assert_eq!(rcode_name(11), "RCODE11");
    }
}

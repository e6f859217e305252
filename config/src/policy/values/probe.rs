//! What a probe sends and expects: payloads (text, hex or base64, bounded) and DNS
//! questions (name, type, accepted rcodes).

use pipelines::spec::{ProbeSpec, RcodeSet};

use super::Problems;
use crate::policy::model::{DnsProbe, Payload};
use crate::policy::payload;

/// Largest probe payload and expected reply, in bytes.
pub const MAX_PAYLOAD_BYTES: usize = 512;

/// The bytes of a payload: exactly one of `text`, `hex`, `base64`; 1..=512 bytes.
pub(super) fn bytes(p: &mut Problems, at: &str, payload: &Payload) -> Vec<u8> {
    let decoded = match (&payload.text, &payload.hex, &payload.base64) {
        (Some(t), None, None) => Ok(t.as_bytes().to_vec()),
        (None, Some(h), None) => payload::hex(h).map_err(|e| (format!("{at}.hex"), e)),
        (None, None, Some(b)) => payload::base64(b).map_err(|e| (format!("{at}.base64"), e)),
        _ => Err((
            at.to_owned(),
            "needs exactly one of text, hex, base64".to_owned(),
        )),
    };
    match decoded {
        Ok(b) if (1..=MAX_PAYLOAD_BYTES).contains(&b.len()) => b,
        Ok(b) => {
            p.add(
                at,
                format!(
                    "{} bytes; between 1 and {MAX_PAYLOAD_BYTES} are allowed",
                    b.len()
                ),
            );
            Vec::new()
        }
        Err((field, message)) => {
            p.add(&field, message);
            Vec::new()
        }
    }
}

/// DNS types by name (RFC 1035, 3596, 2782, 8659), for the common checks.
const QTYPES: [(&str, u16); 11] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("PTR", 12),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("SRV", 33),
    ("ANY", 255),
    ("CAA", 257),
];

/// DNS response codes by name (RFC 1035, 2136).
const RCODES: [&str; 11] = [
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",
];

/// A DNS question and the rcodes that pass.
pub(super) fn dns_probe(p: &mut Problems, at: &str, dns: &DnsProbe) -> ProbeSpec {
    let name = dns.name.strip_suffix('.').unwrap_or(&dns.name).to_owned();
    if let Err(e) = check_dns_name(&name) {
        p.add(&format!("{at}.name"), format!("{:?} {e}", dns.name));
    }
    let qtype = match dns.qtype.as_deref() {
        None => 1,
        Some(t) => qtype(t).unwrap_or_else(|| {
            p.add(
                &format!("{at}.type"),
                format!(
                    "{t:?} is not one of {} or TYPE<1..65535>",
                    QTYPES.map(|(n, _)| n).join(", ")
                ),
            );
            1
        }),
    };
    let mut rcodes = RcodeSet::default();
    match &dns.rcodes {
        None => rcodes.0 = 1,
        Some(list) if list.is_empty() => {
            p.add(&format!("{at}.rcodes"), "must name at least one rcode")
        }
        Some(list) => {
            for (i, r) in list.iter().enumerate() {
                match RCODES.iter().position(|n| n == r) {
                    Some(bit) => rcodes.0 |= 1 << bit,
                    None => p.add(
                        &format!("{at}.rcodes[{i}]"),
                        format!("{r:?} is not one of {}", RCODES.join(", ")),
                    ),
                }
            }
        }
    }
    ProbeSpec::Dns {
        name,
        qtype,
        rcodes,
        recursion_desired: dns.recursion_desired.unwrap_or(false),
    }
}

/// A DNS type by name, or `TYPE<n>`.
pub(super) fn qtype(text: &str) -> Option<u16> {
    if let Some((_, v)) = QTYPES.iter().find(|(n, _)| *n == text) {
        return Some(*v);
    }
    let n: u16 = text.strip_prefix("TYPE")?.parse().ok()?;
    (n != 0).then_some(n)
}

/// A domain name without its final dot: 1..=253 characters, labels of 1..=63 letters,
/// digits, `-` or `_`.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("must have 1 to 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("has a label that is empty or longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("may hold only letters, digits, '-', '_' and '.'");
        }
    }
    Ok(())
}

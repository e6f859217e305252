//! ICMP errors about UDP datagrams: reading them, verifying them and rewriting them in
//! place, for the fast path's translation (RFC 5508 §3, RFC 4787 REQ-11, RFC 4443).
//!
//! An error quotes the datagram it is about (the *embedded* datagram: its IP header and at
//! least the first 8 bytes after it, the UDP header). Translating an error about a NATed
//! flow means rewriting the outer IP header (addresses, TTL), the embedded IP header
//! (addresses, and its header checksum for IPv4, incrementally: the quote is what some
//! router saw, TTL included), the embedded UDP header (ports, and its checksum
//! incrementally when the quote holds the whole 8-byte header and the checksum is in use;
//! it is never verified, the quote is usually truncated), and the ICMP checksum, which
//! covers the whole message (and for ICMPv6 a pseudo-header of the outer addresses): it
//! is verified before anything is done and recomputed after.
//!
//! Errors translated: IPv4 destination unreachable (every code, including 4
//! fragmentation needed, whose next-hop MTU is kept), time exceeded, parameter problem;
//! ICMPv6 destination unreachable, packet too big (MTU kept), time exceeded, parameter
//! problem. The MTU is kept because udplb adds no header to what it forwards: the path
//! MTU the client learns for the VIP is the one to the backend. Anything else (echo,
//! neighbor discovery, errors quoting anything but UDP, such as ICMP about ICMP) is not
//! an [`IcmpError`] here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, NetSlice, SlicedPacket};

use crate::checksum;
use crate::parse::FlowKey;

/// An ICMP or ICMPv6 error about a UDP datagram, located in its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpError {
    /// Outer source (the backend, the client, or a router on the way).
    pub src: IpAddr,
    /// Outer destination.
    pub dst: IpAddr,
    /// Outer TTL / hop limit.
    pub ttl: u8,
    /// ICMP type.
    pub kind: u8,
    /// ICMP code.
    pub code: u8,
    /// Offset of the outer IP header.
    pub l3_off: u16,
    /// Offset of the ICMP header.
    pub icmp_off: u16,
    /// Length of the ICMP message (to the end of the outer IP payload).
    pub icmp_len: u16,
    /// Offset of the embedded IP header.
    pub inner_l3: u16,
    /// Offset of the embedded UDP header.
    pub inner_l4: u16,
    /// The embedded datagram's addresses and ports, as quoted.
    pub inner: FlowKey,
    /// The quote holds the whole UDP header (so its checksum can be updated).
    pub inner_udp_complete: bool,
}

impl IcmpError {
    /// IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.dst.is_ipv6()
    }

    /// A port or host unreachable (ICMPv6: port or address unreachable): the passive
    /// health signal about the datagram's destination.
    pub fn is_unreachable(&self) -> bool {
        if self.is_ipv6() {
            self.kind == 1 && matches!(self.code, 3 | 4)
        } else {
            self.kind == 3 && matches!(self.code, 1 | 3)
        }
    }
}

const ICMP_HEADER: usize = 8;
const PROTO_UDP: u8 = 17;
const IPV6_FRAGMENT: u8 = 44;

/// Reads an ICMP error about a UDP datagram of the same family. `None` for anything else
/// (another ICMP message, an error quoting another protocol or too little of the datagram
/// to hold its ports, a malformed quote). Never panics.
pub fn parse_error(frame: &[u8]) -> Option<IcmpError> {
    let sliced = SlicedPacket::from_ethernet(frame).ok()?;
    let base = frame.as_ptr() as usize;
    let (src, dst, ttl, l3, payload, v6) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                h.ttl(),
                h.slice().as_ptr() as usize - base,
                v4.payload(),
                false,
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                h.hop_limit(),
                h.slice().as_ptr() as usize - base,
                v6.payload(),
                true,
            )
        }
        _ => return None,
    };
    let want = if v6 {
        IpNumber::IPV6_ICMP
    } else {
        IpNumber::ICMP
    };
    if payload.fragmented || payload.ip_number != want {
        return None;
    }
    let msg = payload.payload;
    let icmp_off = msg.as_ptr() as usize - base;
    let (&kind, &code) = (msg.first()?, msg.get(1)?);
    let error = if v6 {
        matches!(kind, 1..=4)
    } else {
        matches!(kind, 3 | 11 | 12)
    };
    if !error {
        return None;
    }
    let quote = msg.get(ICMP_HEADER..)?;
    let (isrc, idst, inner_hl) = if v6 {
        inner_ipv6(quote)?
    } else {
        inner_ipv4(quote)?
    };
    let udp = quote.get(inner_hl..)?;
    let ports = udp.get(..4)?;
    let inner_l3 = icmp_off + ICMP_HEADER;
    Some(IcmpError {
        src,
        dst,
        ttl,
        kind,
        code,
        l3_off: u16::try_from(l3).ok()?,
        icmp_off: u16::try_from(icmp_off).ok()?,
        icmp_len: u16::try_from(msg.len()).ok()?,
        inner_l3: u16::try_from(inner_l3).ok()?,
        inner_l4: u16::try_from(inner_l3 + inner_hl).ok()?,
        inner: FlowKey {
            src: isrc,
            dst: idst,
            src_port: u16::from_be_bytes([ports[0], ports[1]]),
            dst_port: u16::from_be_bytes([ports[2], ports[3]]),
        },
        inner_udp_complete: udp.len() >= 8,
    })
}

/// The embedded IPv4 header: UDP, not a later fragment. (source, destination, length).
fn inner_ipv4(q: &[u8]) -> Option<(IpAddr, IpAddr, usize)> {
    let h = q.get(..20)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    let frag_offset = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    if h[0] >> 4 != 4 || ihl < 20 || q.len() < ihl || h[9] != PROTO_UDP || frag_offset != 0 {
        return None;
    }
    let a = |r: std::ops::Range<usize>| -> Option<IpAddr> {
        let b: [u8; 4] = h.get(r)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(b)))
    };
    Some((a(12..16)?, a(16..20)?, ihl))
}

/// The embedded IPv6 header: UDP right after it or after a fragment header of a first
/// fragment. (source, destination, length up to the UDP header).
fn inner_ipv6(q: &[u8]) -> Option<(IpAddr, IpAddr, usize)> {
    let h = q.get(..40)?;
    if h[0] >> 4 != 6 {
        return None;
    }
    let len = match h[6] {
        PROTO_UDP => 40,
        IPV6_FRAGMENT => {
            let f = q.get(40..48)?;
            let offset = u16::from_be_bytes([f[2], f[3]]) >> 3;
            if f[0] != PROTO_UDP || offset != 0 {
                return None;
            }
            48
        }
        _ => return None,
    };
    let a = |r: std::ops::Range<usize>| -> Option<IpAddr> {
        let b: [u8; 16] = h.get(r)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(b)))
    };
    Some((a(8..24)?, a(24..40)?, len))
}

/// The one's-complement sum of an ICMP message as its checksum covers it (ICMPv6: with
/// the pseudo-header of `src`, `dst`), folded.
fn message_sum(msg: &[u8], src: IpAddr, dst: IpAddr) -> u16 {
    let mut sum = 0u32;
    if let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) {
        sum = checksum::sum_words(sum, &s.octets());
        sum = checksum::sum_words(sum, &d.octets());
        let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
        sum += (len >> 16) + (len & 0xffff) + 58;
    }
    checksum::fold(checksum::sum_words(sum, msg))
}

/// Whether the error's ICMP checksum is right (over the whole message as the outer IP
/// length bounds it).
pub fn checksum_ok(frame: &[u8], e: &IcmpError) -> bool {
    let start = usize::from(e.icmp_off);
    frame
        .get(start..start + usize::from(e.icmp_len))
        .is_some_and(|m| message_sum(m, e.src, e.dst) == 0xffff)
}

/// The addresses and ports a translated error gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// New outer source.
    pub src: IpAddr,
    /// New outer destination.
    pub dst: IpAddr,
    /// New embedded datagram's addresses and ports.
    pub inner: FlowKey,
    /// Decrement the outer TTL / hop limit (the caller checked it is above 1).
    pub decrement_ttl: bool,
}

fn octets(ip: IpAddr) -> ([u8; 16], usize) {
    match ip {
        IpAddr::V4(a) => {
            let mut o = [0u8; 16];
            o[..4].copy_from_slice(&a.octets());
            (o, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// Rewrites the error in `frame` to `t` and fixes every checksum (see the module docs).
/// `None` (frame unchanged or partly changed: drop it) only if `e` does not describe
/// `frame` or the families mix.
pub fn rewrite(frame: &mut [u8], e: &IcmpError, t: &Translation) -> Option<()> {
    let v6 = e.is_ipv6();
    if [t.src, t.dst, t.inner.src, t.inner.dst]
        .iter()
        .any(|a| a.is_ipv6() != v6)
    {
        return None;
    }
    // Embedded IP header: addresses (and the IPv4 header checksum, incrementally).
    let il3 = usize::from(e.inner_l3);
    let (asrc, alen) = (if v6 { 8 } else { 12 }, if v6 { 16 } else { 4 });
    let mut old = [0u8; 36];
    let mut new = [0u8; 36];
    {
        let h = frame.get_mut(il3..il3 + if v6 { 40 } else { 20 })?;
        old[..2 * alen].copy_from_slice(&h[asrc..asrc + 2 * alen]);
        let (s, _) = octets(t.inner.src);
        let (d, _) = octets(t.inner.dst);
        new[..alen].copy_from_slice(&s[..alen]);
        new[alen..2 * alen].copy_from_slice(&d[..alen]);
        h[asrc..asrc + 2 * alen].copy_from_slice(&new[..2 * alen]);
        if !v6 {
            let c = u16::from_be_bytes([h[10], h[11]]);
            let c = checksum::update(c, &old[..8], &new[..8]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
        }
    }
    // Embedded UDP header: ports, and the checksum (pseudo-header addresses and ports).
    let il4 = usize::from(e.inner_l4);
    let n = 2 * alen;
    {
        let msg_end = usize::from(e.icmp_off) + usize::from(e.icmp_len);
        let u = frame.get_mut(il4..(il4 + 8).min(msg_end))?;
        old[n..n + 4].copy_from_slice(u.get(..4)?);
        new[n..n + 2].copy_from_slice(&t.inner.src_port.to_be_bytes());
        new[n + 2..n + 4].copy_from_slice(&t.inner.dst_port.to_be_bytes());
        u[..4].copy_from_slice(&new[n..n + 4]);
        if e.inner_udp_complete {
            let c = u16::from_be_bytes([u[6], u[7]]);
            if c != 0 {
                let c = checksum::udp_wire(checksum::update(c, &old[..n + 4], &new[..n + 4]));
                u[6..8].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
    // Outer header: addresses, TTL, and the IPv4 header checksum in full.
    let l3 = usize::from(e.l3_off);
    let (s, _) = octets(t.src);
    let (d, _) = octets(t.dst);
    if v6 {
        let h = frame.get_mut(l3..l3 + 40)?;
        h[8..24].copy_from_slice(&s);
        h[24..40].copy_from_slice(&d);
        if t.decrement_ttl {
            h[7] = h[7].saturating_sub(1);
        }
    } else {
        let ihl = usize::from(*frame.get(l3)? & 0x0f) * 4;
        let h = frame.get_mut(l3..l3 + ihl)?;
        h[12..16].copy_from_slice(&s[..4]);
        h[16..20].copy_from_slice(&d[..4]);
        if t.decrement_ttl {
            h[8] = h[8].saturating_sub(1);
        }
        let c = checksum::ipv4_header_checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }
    // The ICMP checksum over the rewritten message.
    let start = usize::from(e.icmp_off);
    let msg = frame.get_mut(start..start + usize::from(e.icmp_len))?;
    msg[2..4].copy_from_slice(&[0, 0]);
    let c = !message_sum(msg, t.src, t.dst);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    Some(())
}

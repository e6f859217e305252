//! The ICMP errors the slow path sends about datagrams the fast path could not forward:
//! destination unreachable for a rejected flow ([`SlowPathMsg::Reject`]), time exceeded
//! and Frag Needed / Packet Too Big ([`SlowPathMsg::IcmpError`]). One builder for all
//! three, one set of checks, one rate limit.
//!
//! | error | ICMPv4 | ICMPv6 | from |
//! |---|---|---|---|
//! | reject | 3 / 13 (administratively prohibited, RFC 1812) | 1 / 1 (RFC 4443) | the VIP |
//! | time exceeded | 11 / 0 | 3 / 0 | the datagram's destination if it is ours (a VIP, an own or SNAT address), else the input port's own address of that family |
//! | too big | 3 / 4, next-hop MTU in bytes 6..8 (RFC 1191) | 2 / 0, MTU (RFC 4443 §3.2, RFC 8201) | as time exceeded |
//!
//! Each goes back on the port the datagram came in on, to the frame's source MAC (the
//! previous hop), to the datagram's source. IPv4 quotes the IP header and the first 8
//! bytes of the payload (RFC 792), IPv6 as much of the datagram as keeps the error within
//! 1280 bytes (RFC 4443 §2.4(c)); the quote is the datagram as received, byte for byte.
//! No error goes to a non-unicast or own source, about an IPv4 datagram that is not UDP or
//! is a later fragment (RFC 1122 §3.2.2, RFC 1812 §4.3.2.7): the fast path already asks
//! only about those, the checks here keep a bad message from becoming a bad error.
//!
//! Rate: a token bucket per destination address ([`super::per_source`], default 10/s,
//! burst 10, 4096 addresses) and one for all together (`reject_rate_per_sec`, the
//! appliance's `slow_path.icmp_rate_limit`, default 100/s, burst 10).
//!
//! [`SlowPathMsg::Reject`]: super::SlowPathMsg::Reject
//! [`SlowPathMsg::IcmpError`]: super::SlowPathMsg::IcmpError

use std::net::IpAddr;
use std::time::Instant;

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, Ipv6Packet};

use super::config::{is_host_address, is_unicast_mac};
use super::counters::SlowPathCounters;
use super::emit::{self, ErrorHeader, Link};
use super::input::Fate::{self, Done, Ignored, Malformed};
use super::{FrameSink, SlowPath};

/// UDP header plus the first payload bytes: RFC 792 quotes "the first 64 bits".
const V4_QUOTE_AFTER_HEADER: usize = 8;

/// An ICMP error the fast path asks for (see `pipelines::HostReason`); the frame travels
/// with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpError {
    /// The datagram's TTL / hop limit would reach 0 here (`HostReason::TimeExceeded`).
    TimeExceeded,
    /// The datagram is larger than the out port's MTU and may not be fragmented
    /// (`HostReason::TooBig`).
    TooBig {
        /// The out port's MTU, sent as the next-hop / path MTU.
        mtu: u16,
    },
}

/// What the slow path answers with an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// A new flow in a route's dropped share.
    Reject,
    /// What the fast path asked for.
    Error(IcmpError),
}

impl Kind {
    fn header_v4(self) -> ErrorHeader {
        let (msg_type, code, word) = match self {
            Kind::Reject => (3, 13, 0),
            Kind::Error(IcmpError::TimeExceeded) => (11, 0, 0),
            // RFC 1191: the next-hop MTU is the low-order 16 bits.
            Kind::Error(IcmpError::TooBig { mtu }) => (3, 4, u32::from(mtu)),
        };
        ErrorHeader {
            msg_type,
            code,
            word,
        }
    }

    fn header_v6(self) -> ErrorHeader {
        let (msg_type, code, word) = match self {
            Kind::Reject => (1, 1, 0),
            Kind::Error(IcmpError::TimeExceeded) => (3, 0, 0),
            Kind::Error(IcmpError::TooBig { mtu }) => (2, 0, u32::from(mtu)),
        };
        ErrorHeader {
            msg_type,
            code,
            word,
        }
    }
}

impl SlowPath {
    /// Answers the datagram in `frame`, received on `port`, with the ICMP error `kind`.
    pub(super) fn on_icmp_error(
        &mut self,
        port: u16,
        frame: &[u8],
        kind: Kind,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Fate {
        let Some(state) = self.ports.get(&port) else {
            return Ignored;
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Malformed;
        };
        let link = Link {
            src: state.mac,
            dst: eth.src_addr(),
        };
        if !is_unicast_mac(link.dst) {
            return Ignored;
        }
        let l3 = eth.payload();
        let (client, dst, quote_len) = match eth.ethertype() {
            EthernetProtocol::Ipv4 => {
                let Ok(ip) = Ipv4Packet::new_checked(l3) else {
                    return Malformed;
                };
                if ip.version() != 4 || !ip.verify_checksum() {
                    return Malformed;
                }
                if ip.next_header() != IpProtocol::Udp || ip.frag_offset() != 0 {
                    return Ignored;
                }
                let quote = usize::from(ip.header_len()) + V4_QUOTE_AFTER_HEADER;
                let total = usize::from(ip.total_len());
                (
                    IpAddr::from(ip.src_addr()),
                    IpAddr::from(ip.dst_addr()),
                    quote.min(total),
                )
            }
            EthernetProtocol::Ipv6 => {
                let Ok(ip) = Ipv6Packet::new_checked(l3) else {
                    return Malformed;
                };
                if ip.version() != 6 {
                    return Malformed;
                }
                (
                    IpAddr::from(ip.src_addr()),
                    IpAddr::from(ip.dst_addr()),
                    ip.total_len(),
                )
            }
            _ => return Ignored,
        };
        if !is_host_address(client) || state.answers_for(client) {
            return Ignored;
        }
        let Some(from) = self.error_source(port, kind, client, dst) else {
            return Ignored;
        };
        let (sent, limited) = match kind {
            Kind::Reject => (
                &self.counters.rejects_sent,
                &self.counters.rejects_rate_limited,
            ),
            Kind::Error(IcmpError::TimeExceeded) => (
                &self.counters.time_exceeded_sent,
                &self.counters.icmp_errors_rate_limited,
            ),
            Kind::Error(IcmpError::TooBig { .. }) => (
                &self.counters.too_big_sent,
                &self.counters.icmp_errors_rate_limited,
            ),
        };
        // Per source first, so one source's flood spends none of the shared budget.
        if !(self.per_source.allow(client, now) && self.rejects.allow(now)) {
            SlowPathCounters::bump(limited);
            return Done;
        }
        SlowPathCounters::bump(sent);
        let quote = &l3[..quote_len];
        match (from, client) {
            (IpAddr::V4(from), IpAddr::V4(to)) => {
                emit::icmp_error_v4(&mut self.tx, link, from, to, kind.header_v4(), quote);
            }
            (IpAddr::V6(from), IpAddr::V6(to)) => {
                emit::icmp_error_v6(&mut self.tx, link, from, to, kind.header_v6(), quote);
            }
            // `error_source` answers in the client's family.
            _ => return Ignored,
        }
        self.transmit(port, sink);
        Done
    }

    /// The source of an error about a datagram from `client` to `dst` received on
    /// `port`: the VIP for a reject (which must be one this port answers for); otherwise
    /// `dst` when it is ours on any port (a VIP, own or SNAT address), else the input
    /// port's own address of the family (the one whose prefix holds `client`, or its
    /// first). `None` when there is none.
    fn error_source(&self, port: u16, kind: Kind, client: IpAddr, dst: IpAddr) -> Option<IpAddr> {
        let state = self.ports.get(&port)?;
        if kind == Kind::Reject {
            return state.answers_for(dst).then_some(dst);
        }
        if self.ports.values().any(|p| p.answers_for(dst)) {
            return Some(dst);
        }
        match client {
            IpAddr::V4(c) => state.source_v4_for(c).map(IpAddr::from),
            IpAddr::V6(c) => state.source_v6_for(c).map(IpAddr::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_code_and_word_per_kind_and_family() {
        let too_big = Kind::Error(IcmpError::TooBig { mtu: 1400 });
        let te = Kind::Error(IcmpError::TimeExceeded);
        let v4 = |k: Kind| {
            let h = k.header_v4();
            (h.msg_type, h.code, h.word)
        };
        let v6 = |k: Kind| {
            let h = k.header_v6();
            (h.msg_type, h.code, h.word)
        };
        assert_eq!(v4(Kind::Reject), (3, 13, 0));
        assert_eq!(v4(te), (11, 0, 0));
        assert_eq!(v4(too_big), (3, 4, 1400));
        assert_eq!(v6(Kind::Reject), (1, 1, 0));
        assert_eq!(v6(te), (3, 0, 0));
        assert_eq!(v6(too_big), (2, 0, 1400));
    }
}

//! Incoming frames: checked parsing, answers for own, VIP and SNAT addresses, neighbor
//! snooping (ICMP errors about datagrams are `icmp_errors`). Every frame ends in a [`Fate`] that
//! the caller counts; nothing here can panic on bad input (smoltcp's checked views).

use std::net::{IpAddr, Ipv6Addr};
use std::time::Instant;

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv4Packet, Ipv6Packet,
    NdiscNeighborFlags, NdiscRepr, RawHardwareAddress,
};

use super::config::{is_host_address, is_unicast_mac};
use super::counters::SlowPathCounters;
use super::emit::{self, Link, ND_HOP_LIMIT};
use super::neighbors::{Create, Learned};
use super::{FrameSink, SlowPath};

/// RFC 4291 all-nodes group, the destination of unsolicited advertisements.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The fate of one frame, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Answered, learned from, or deliberately rate-limited.
    Done,
    /// Well-formed but nothing to do.
    Ignored,
    /// Failed a length, version, checksum or protocol validity check.
    Malformed,
}

use Fate::{Done, Ignored, Malformed};

/// A link-layer option as an Ethernet MAC, if it is one.
fn lladdr_mac(raw: Option<RawHardwareAddress>) -> Option<EthernetAddress> {
    let raw = raw?;
    let bytes: [u8; 6] = raw.as_bytes().try_into().ok()?;
    Some(EthernetAddress(bytes)).filter(|m| is_unicast_mac(*m))
}

impl SlowPath {
    /// A frame the fast path passed up on `port`.
    pub(super) fn on_frame(
        &mut self,
        port: u16,
        frame: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Fate {
        let Some(state) = self.ports.get(&port) else {
            return Ignored;
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Malformed;
        };
        let (src_mac, dst_mac) = (eth.src_addr(), eth.dst_addr());
        // Our own frames looped back, and frames for another station, need nothing.
        if src_mac == state.mac || !is_unicast_mac(src_mac) {
            return Ignored;
        }
        if dst_mac != state.mac && !dst_mac.is_multicast() {
            return Ignored;
        }
        if let Some(fate) = self.probe_answer(port, frame) {
            return fate;
        }
        match eth.ethertype() {
            EthernetProtocol::Arp => self.on_arp(port, src_mac, eth.payload(), now, sink),
            EthernetProtocol::Ipv4 => self.on_ipv4(port, src_mac, eth.payload(), sink),
            EthernetProtocol::Ipv6 => self.on_ipv6(port, src_mac, eth.payload(), now, sink),
            _ => Ignored,
        }
    }

    /// Records a neighbor and counts what happened; true if it is now known and current.
    fn learn(
        &mut self,
        port: u16,
        ip: IpAddr,
        mac: EthernetAddress,
        now: Instant,
        create: Create,
    ) -> bool {
        match self
            .neighbors
            .learn(port, ip, mac.0, now, create, &self.tuning)
        {
            Learned::Changed => {
                SlowPathCounters::bump(&self.counters.resolutions_learned);
                true
            }
            Learned::Confirmed => true,
            Learned::Unchanged => false,
            Learned::Full => {
                SlowPathCounters::bump(&self.counters.neighbors_table_full);
                false
            }
        }
    }

    fn on_arp(
        &mut self,
        port: u16,
        src_mac: EthernetAddress,
        payload: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Fate {
        let Ok(packet) = ArpPacket::new_checked(payload) else {
            return Malformed;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_protocol_addr: tpa,
            ..
        }) = ArpRepr::parse(&packet)
        else {
            return Malformed;
        };
        let Some(state) = self.ports.get(&port) else {
            return Ignored;
        };
        let (mac, ours, on_link) = (
            state.mac,
            state.answers_for(tpa.into()),
            state.on_link(spa.into()),
        );
        let is_request = operation == ArpOperation::Request;

        // RFC 826: update the sender if known; add it only when it asked for us.
        // An all-zero sender address is an RFC 5227 probe: nothing to learn.
        let learned = is_host_address(spa.into())
            && is_unicast_mac(sha)
            && self.learn(
                port,
                spa.into(),
                sha,
                now,
                if is_request && ours && on_link {
                    Create::Allowed
                } else {
                    Create::OnlyKnown
                },
            );

        if !(is_request && ours) {
            return if learned { Done } else { Ignored };
        }
        let reply = ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: mac,
            source_protocol_addr: tpa,
            target_hardware_addr: sha,
            target_protocol_addr: spa,
        };
        emit::arp(
            &mut self.tx,
            Link {
                src: mac,
                dst: src_mac,
            },
            &reply,
        );
        SlowPathCounters::bump(&self.counters.arp_replies);
        self.transmit(port, sink);
        Done
    }

    fn on_ipv4(
        &mut self,
        port: u16,
        src_mac: EthernetAddress,
        payload: &[u8],
        sink: &mut dyn FrameSink,
    ) -> Fate {
        let Ok(ip) = Ipv4Packet::new_checked(payload) else {
            return Malformed;
        };
        if ip.version() != 4 || !ip.verify_checksum() {
            return Malformed;
        }
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let Some(state) = self.ports.get(&port) else {
            return Ignored;
        };
        let mac = state.mac;
        if ip.next_header() != IpProtocol::Icmp
            || ip.more_frags()
            || ip.frag_offset() != 0
            || !state.answers_for(dst.into())
            || !is_host_address(src.into())
        {
            return Ignored;
        }
        let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
            return Malformed;
        };
        if icmp.msg_type() != Icmpv4Message::EchoRequest {
            return Ignored;
        }
        if icmp.msg_code() != 0 || !icmp.verify_checksum() {
            return Malformed;
        }
        let link = Link {
            src: mac,
            dst: src_mac,
        };
        emit::echo_reply_v4(
            &mut self.tx,
            link,
            dst,
            src,
            icmp.echo_ident(),
            icmp.echo_seq_no(),
            icmp.data(),
        );
        SlowPathCounters::bump(&self.counters.echo_replies);
        self.transmit(port, sink);
        Done
    }

    fn on_ipv6(
        &mut self,
        port: u16,
        src_mac: EthernetAddress,
        payload: &[u8],
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Fate {
        let Ok(ip) = Ipv6Packet::new_checked(payload) else {
            return Malformed;
        };
        if ip.version() != 6 {
            return Malformed;
        }
        if ip.next_header() != IpProtocol::Icmpv6 {
            return Ignored;
        }
        let (src, dst, hop_limit, body) =
            (ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.payload());
        let Some(&msg_type) = body.first() else {
            return Malformed;
        };
        let msg = Icmpv6Message::from(msg_type);
        if !matches!(
            msg,
            Icmpv6Message::EchoRequest
                | Icmpv6Message::NeighborSolicit
                | Icmpv6Message::NeighborAdvert
        ) {
            return Ignored;
        }
        let Ok(icmp) = Icmpv6Packet::new_checked(body) else {
            return Malformed;
        };
        if icmp.msg_code() != 0 || !icmp.verify_checksum(&src, &dst) {
            return Malformed;
        }
        if msg == Icmpv6Message::EchoRequest {
            return self.on_echo_v6(port, src_mac, src, dst, &icmp, sink);
        }
        // RFC 4861 §7.1: ND from off-link (hop limit decremented) is invalid.
        if hop_limit != ND_HOP_LIMIT {
            return Malformed;
        }
        match NdiscRepr::parse(&icmp) {
            Ok(NdiscRepr::NeighborSolicit {
                target_addr,
                lladdr,
            }) => self.on_neighbor_solicit(port, src_mac, src, target_addr, lladdr, now, sink),
            Ok(NdiscRepr::NeighborAdvert {
                flags,
                target_addr,
                lladdr,
            }) => self.on_neighbor_advert(port, target_addr, flags, lladdr, now),
            Ok(_) => Ignored,
            Err(_) => Malformed,
        }
    }

    fn on_echo_v6(
        &mut self,
        port: u16,
        src_mac: EthernetAddress,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        icmp: &Icmpv6Packet<&[u8]>,
        sink: &mut dyn FrameSink,
    ) -> Fate {
        let Some(state) = self.ports.get(&port) else {
            return Ignored;
        };
        if !state.answers_for(dst.into()) || !is_host_address(src.into()) {
            return Ignored;
        }
        let link = Link {
            src: state.mac,
            dst: src_mac,
        };
        emit::echo_reply_v6(
            &mut self.tx,
            link,
            dst,
            src,
            icmp.echo_ident(),
            icmp.echo_seq_no(),
            icmp.payload(),
        );
        SlowPathCounters::bump(&self.counters.echo_replies);
        self.transmit(port, sink);
        Done
    }

    #[allow(clippy::too_many_arguments)]
    fn on_neighbor_solicit(
        &mut self,
        port: u16,
        src_mac: EthernetAddress,
        src: Ipv6Addr,
        target: Ipv6Addr,
        lladdr: Option<RawHardwareAddress>,
        now: Instant,
        sink: &mut dyn FrameSink,
    ) -> Fate {
        if target.is_multicast() {
            return Malformed;
        }
        let Some(state) = self.ports.get(&port) else {
            return Ignored;
        };
        let (mac, ours, on_link) = (
            state.mac,
            state.answers_for(target.into()),
            state.on_link(src.into()),
        );
        let sender_mac = lladdr_mac(lladdr);
        let dad = src.is_unspecified();
        // RFC 4861 §7.2.3: learn the sender from its source link-layer option.
        let learned = match sender_mac {
            Some(sll) if !dad => self.learn(
                port,
                src.into(),
                sll,
                now,
                if ours && on_link {
                    Create::Allowed
                } else {
                    Create::OnlyKnown
                },
            ),
            _ => false,
        };
        if !ours {
            return if learned { Done } else { Ignored };
        }
        // RFC 4861 §7.2.4: a solicitation from the unspecified address (duplicate address
        // detection) is answered to all-nodes, unsolicited.
        let (dst_ip, dst_mac, solicited) = if dad {
            (ALL_NODES, emit::multicast_mac(ALL_NODES), false)
        } else {
            (src, sender_mac.unwrap_or(src_mac), true)
        };
        emit::neighbor_advert(
            &mut self.tx,
            Link {
                src: mac,
                dst: dst_mac,
            },
            target,
            dst_ip,
            solicited,
        );
        SlowPathCounters::bump(&self.counters.nd_replies);
        self.transmit(port, sink);
        Done
    }

    fn on_neighbor_advert(
        &mut self,
        port: u16,
        target: Ipv6Addr,
        flags: NdiscNeighborFlags,
        lladdr: Option<RawHardwareAddress>,
        now: Instant,
    ) -> Fate {
        if target.is_multicast() {
            return Malformed;
        }
        let Some(tll) = lladdr_mac(lladdr) else {
            return Ignored;
        };
        // RFC 4861 §7.2.5: without the override flag, a known entry keeps its MAC.
        let keeps_mac = !flags.contains(NdiscNeighborFlags::OVERRIDE)
            && self
                .neighbors
                .lookup(target.into())
                .is_some_and(|(_, m)| m != tll.0);
        if !keeps_mac && self.learn(port, target.into(), tll, now, Create::OnlyKnown) {
            Done
        } else {
            Ignored
        }
    }
}

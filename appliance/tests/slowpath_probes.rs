//! Health probes through the slow path: sent from the port's own address to the next
//! hop's MAC (or a resolution started and the checker told), answers to probe ports and
//! ICMP unreachable quoting probes handed to the checker, everything else left to the
//! host stack. Frames built and read with etherparse.
#![allow(clippy::tests_outside_test_module)]

mod slowpath_support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use appliance::backend_health::{ProbeDatagram, ProbeEvent, ProbeTap};
use appliance::slowpath::{SlowPath, SlowPathCounters, SlowPathMsg};
use crossbeam_channel::Receiver;
use etherparse::icmpv4::DestUnreachableHeader;
use etherparse::{Icmpv4Type, PacketBuilder, SlicedPacket, TransportSlice};
use pipelines::net::PortRange;
use slowpath_support::*;

const PROBE_PORTS: PortRange = PortRange {
    first: 1,
    last: 1023,
};

fn harness() -> (Harness, Receiver<ProbeEvent>) {
    let (tx, rx) = crossbeam_channel::bounded(16);
    let counters = Arc::new(SlowPathCounters::default());
    let sp = SlowPath::new(config(), Arc::clone(&counters))
        .expect("config")
        .with_probes(ProbeTap {
            ports: PROBE_PORTS,
            events: tx,
        });
    let h = Harness {
        sp,
        counters,
        now: Instant::now(),
    };
    (h, rx)
}

fn probe(target: IpAddr, next_hop: IpAddr) -> ProbeDatagram {
    ProbeDatagram {
        port: PORT,
        next_hop,
        target: SocketAddr::new(target, 53),
        src_port: 1000,
        payload: b"health".to_vec(),
    }
}

#[test]
fn a_probe_goes_from_the_own_address_to_the_next_hop_mac() {
    let (mut h, events) = harness();
    // STATIC4 is a static neighbor: sent at once.
    let out = h.send(SlowPathMsg::Probe(probe(STATIC4.into(), STATIC4.into())));
    assert_eq!(out.len(), 1);
    let (port, frame) = &out[0];
    assert_eq!(*port, PORT);
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let Some(etherparse::LinkSlice::Ethernet2(eth)) = &p.link else {
        panic!("ethernet")
    };
    assert_eq!((eth.source(), eth.destination()), (OUR_MAC, STATIC_MAC));
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        panic!("ipv4")
    };
    assert_eq!(ip.header().source(), OWN4.octets());
    assert_eq!(ip.header().destination(), STATIC4.octets());
    let Some(TransportSlice::Udp(udp)) = &p.transport else {
        panic!("udp")
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (1000, 53));
    assert_eq!(udp.payload(), b"health");
    assert!(events.try_recv().is_err(), "nothing to report");
}

#[test]
fn an_unresolved_next_hop_is_resolved_and_the_checker_told() {
    let (mut h, events) = harness();
    let out = h.send(SlowPathMsg::Probe(probe(PEER4.into(), PEER4.into())));
    // An ARP request for the next hop, no probe.
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0].1[12..14], &[0x08, 0x06]);
    assert_eq!(
        events.try_recv().expect("told"),
        ProbeEvent::Unsent {
            to: SocketAddr::new(PEER4.into(), 53),
            from_port: 1000,
            why: "next hop unresolved",
        }
    );
    // An IPv6 probe through an IPv4 next hop has no source.
    let _ = h.send(SlowPathMsg::Probe(probe(PEER6.into(), STATIC4.into())));
    assert!(matches!(
        events.try_recv(),
        Ok(ProbeEvent::Unsent {
            why: "no own address of that family on the port",
            ..
        })
    ));
}

fn reply(to: IpAddr, to_port: u16) -> Vec<u8> {
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(STATIC_MAC, OUR_MAC);
    let IpAddr::V4(to) = to else { unreachable!() };
    b.ipv4(STATIC4.octets(), to.octets(), 64)
        .udp(53, to_port)
        .write(&mut out, b"answer")
        .expect("writes");
    out
}

#[test]
fn answers_and_unreachables_go_to_the_checker_other_frames_to_the_host_stack() {
    let (mut h, events) = harness();
    let sent = h.send(SlowPathMsg::Probe(probe(STATIC4.into(), STATIC4.into())));
    let handled_before = h.counters.snapshot();
    assert!(h
        .send(SlowPathMsg::Frame {
            port: PORT,
            frame: reply(OWN4.into(), 1000),
        })
        .is_empty());
    assert_eq!(
        events.try_recv().expect("reply"),
        ProbeEvent::Reply {
            from: SocketAddr::new(STATIC4.into(), 53),
            to_port: 1000,
            payload: b"answer".to_vec(),
        }
    );
    // To a VIP port outside the probe range, or to an address that is not ours: not a
    // probe answer (the host stack ignores UDP).
    for frame in [reply(OWN4.into(), 5353), reply(PEER4.into(), 1000)] {
        let _ = h.send(SlowPathMsg::Frame { port: PORT, frame });
        assert!(events.try_recv().is_err());
    }
    // ICMP port unreachable quoting the probe.
    let quote = &sent[0].1[14..14 + 28];
    let mut icmp = Vec::new();
    PacketBuilder::ethernet2(STATIC_MAC, OUR_MAC)
        .ipv4(STATIC4.octets(), OWN4.octets(), 64)
        .icmpv4(Icmpv4Type::DestinationUnreachable(
            DestUnreachableHeader::Port,
        ))
        .write(&mut icmp, quote)
        .expect("writes");
    let _ = h.send(SlowPathMsg::Frame {
        port: PORT,
        frame: icmp,
    });
    assert_eq!(
        events.try_recv().expect("unreachable"),
        ProbeEvent::Unreachable {
            to: SocketAddr::new(STATIC4.into(), 53),
            from_port: 1000,
            what: "port unreachable",
        }
    );
    // Probe frames count as handled, never as malformed or ignored.
    let after = h.counters.snapshot();
    assert_eq!(after.malformed, handled_before.malformed);
    assert_eq!(after.frames_handled, handled_before.frames_handled + 4);
}

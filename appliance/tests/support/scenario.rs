//! The worker scenario on `pipelines::testkit`'s two-port topology (port 0 faces clients,
//! routed via 198.18.0.1; port 1 faces backends 198.18.1.0/24; SNAT 198.18.1.253):
//! Gateway 198.18.2.1 with `dns` :53 full NAT → 198.18.1.1:5353, `game` :54
//! preserve-client → 198.18.1.3:5353, `far` :56 full NAT → 198.18.1.4:5353 (a backend
//! without a neighbor entry until a test publishes one).
//!
//! The exchanges are written once against [`Harness`] and run by both rigs: the DPDK one
//! (`worker_ring.rs`: ring ports, a worker on an lcore, root) and the in-memory one
//! (`worker_loop.rs`: `MemoryIo`, the loop stepped by hand, any user).

use std::fmt::Debug;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use appliance::slowpath::SlowPathMsg;
use appliance::worker::WorkerReport;
use pipelines::net::MacAddr;
use pipelines::tables::Tables;
use pipelines::{testkit, DropReason, HostReason};

use super::{listener, service, Listener};

/// The VIP.
pub const VIP: [u8; 4] = [198, 18, 2, 1];
/// The SNAT address.
pub const SNAT: [u8; 4] = [198, 18, 1, 253];
/// A client behind the client-side router.
pub const CLIENT: &str = "198.19.0.100:40000";
/// Backend 4 has no neighbor entry until a test publishes one.
pub const UNRESOLVED_BACKEND: [u8; 4] = [198, 18, 1, 4];
/// The MAC the slow path would learn for backend 4.
pub const FAR_MAC: MacAddr = MacAddr([0x0a, 0, 0, 0, 1, 4]);
/// The listeners.
pub const LISTENERS: &[Listener] = &[
    listener("dns", 53, &[service("dns", &["198.18.1.1"], 5353)]),
    Listener {
        name: "game",
        port: 54,
        preserve_client: true,
        backends: &[service("game", &["198.18.1.3"], 5353)],
    },
    listener("far", 56, &[service("far", &["198.18.1.4"], 5353)]),
];

/// What the exchanges need from a running worker.
pub trait Harness {
    /// The frame buffer of the worker's I/O.
    type Buf: AsRef<[u8]> + Debug;
    /// Puts `frame` on the worker's port `port`.
    fn send(&mut self, port: usize, frame: &[u8]);
    /// The one frame port `port` transmitted next (the worker runs first).
    fn receive(&mut self, port: usize) -> Vec<u8>;
    /// The one message the worker handed to the slow path next (the worker runs first).
    fn slow_path_msg(&mut self) -> SlowPathMsg<Self::Buf>;
    /// Publishes a neighbor snapshot, as the slow path does.
    fn publish(&mut self, neighbors: Vec<(IpAddr, MacAddr)>);
    /// Lets the worker take the `received` frames sent so far.
    fn settle(&mut self, received: u64);
}

/// The compiled scenario.
pub fn tables() -> Arc<Tables> {
    super::tables("198.18.2.1", LISTENERS)
}

/// A socket address from text.
pub fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// Backend `n` (198.18.1.`n`:5353).
pub fn backend(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, n], 5353))
}

/// Neighbors known from the start: the client-side router and backends 1–3.
pub fn static_neighbors() -> Vec<(IpAddr, MacAddr)> {
    let mut v = vec![(IpAddr::from([198, 18, 0, 1]), testkit::ROUTER_MAC)];
    v.extend((1..=3).map(|n| (IpAddr::from([198, 18, 1, n]), testkit::backend_mac(n))));
    v
}

/// [`static_neighbors`] and backend 4, as the slow path publishes them once resolved.
pub fn with_far_backend() -> Vec<(IpAddr, MacAddr)> {
    let mut known = static_neighbors();
    known.push((IpAddr::from(UNRESOLVED_BACKEND), FAR_MAC));
    known
}

/// A client datagram to the VIP's `port`, arriving on port 0.
pub fn to_vip(port: u16, payload: &[u8]) -> Vec<u8> {
    testkit::udp_frame(
        sa(CLIENT),
        SocketAddr::from((VIP, port)),
        64,
        &[],
        testkit::PORT0_MAC,
        payload,
    )
}

/// A datagram from backend `n`'s port 5353 to `dst`, arriving on port 1.
pub fn from_backend(n: u8, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    testkit::udp_frame(backend(n), dst, 64, &[], testkit::PORT1_MAC, payload)
}

/// An ARP request from the client-side router for the VIP.
pub fn arp_request_for_vip() -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&testkit::ROUTER_MAC.0);
    f.extend_from_slice(&[0x08, 0x06]); // ARP
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]); // Ethernet/IPv4, request
    f.extend_from_slice(&testkit::ROUTER_MAC.0);
    f.extend_from_slice(&[198, 18, 0, 1]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&VIP);
    f
}

/// A frame the worker sent, decoded with every checksum verified.
pub fn decoded(frame: &[u8]) -> testkit::Decoded {
    testkit::decode_verified(frame)
        .unwrap_or_else(|e| panic!("invalid frame out of the worker: {e}"))
}

/// Full NAT both ways: client → backend from the SNAT address, the backend's answer back
/// from the VIP, and a second datagram on the same SNAT port.
pub fn full_nat_exchange(h: &mut impl Harness) {
    let vip = SocketAddr::from((VIP, 53));
    h.send(0, &to_vip(53, b"query"));
    let out = decoded(&h.receive(1));
    assert_eq!(out.dst, backend(1), "to the backend's address and port");
    assert_eq!(out.src.ip(), IpAddr::from(SNAT), "from the SNAT address");
    let snat_port = out.src.port();
    assert!(
        (1024..=65535).contains(&snat_port),
        "SNAT port {snat_port} from the pool"
    );
    assert_eq!(out.src_mac, testkit::PORT1_MAC, "from port 1's MAC");
    assert_eq!(out.dst_mac, testkit::backend_mac(1), "to the backend's MAC");
    assert_eq!(out.ttl, 63);
    assert_eq!(out.payload, b"query");

    // The backend answers the SNAT address: back to the client, from the VIP.
    h.send(
        1,
        &from_backend(1, SocketAddr::from((SNAT, snat_port)), b"answer"),
    );
    let back = decoded(&h.receive(0));
    assert_eq!((back.src, back.dst), (vip, sa(CLIENT)));
    assert_eq!(back.src_mac, testkit::PORT0_MAC);
    assert_eq!(
        back.dst_mac,
        testkit::ROUTER_MAC,
        "via the client-side router"
    );
    assert_eq!(back.payload, b"answer");

    // A second datagram of the same flow keeps its SNAT port and creates no flow.
    h.send(0, &to_vip(53, b"again"));
    let again = decoded(&h.receive(1));
    assert_eq!(
        (again.src, again.dst),
        (SocketAddr::from((SNAT, snat_port)), backend(1))
    );
}

/// The report after [`full_nat_exchange`].
pub fn full_nat_report(r: &WorkerReport) {
    assert_eq!(r.counters.rx_packets, 3);
    assert_eq!(r.counters.tx_packets, 3);
    assert_eq!(r.counters.flows_created, 1);
    assert_eq!(r.counters.drops_total(), 0);
    assert_eq!(r.drops.tx_refused, 0);
}

/// Preserve-client both ways: the client's address kept towards the backend, the
/// backend's direct answer sent back from the VIP.
pub fn preserve_client_exchange(h: &mut impl Harness) {
    let vip = SocketAddr::from((VIP, 54));
    h.send(0, &to_vip(54, b"join"));
    let out = decoded(&h.receive(1));
    assert_eq!(
        (out.src, out.dst),
        (sa(CLIENT), backend(3)),
        "the client's address is kept"
    );
    assert_eq!(
        (out.src_mac, out.dst_mac),
        (testkit::PORT1_MAC, testkit::backend_mac(3))
    );

    // The backend answers the client directly, routed through the appliance.
    h.send(1, &from_backend(3, sa(CLIENT), b"state"));
    let back = decoded(&h.receive(0));
    assert_eq!((back.src, back.dst), (vip, sa(CLIENT)), "from the VIP");
    assert_eq!(
        (back.src_mac, back.dst_mac),
        (testkit::PORT0_MAC, testkit::ROUTER_MAC)
    );
}

/// The report after [`preserve_client_exchange`].
pub fn preserve_client_report(r: &WorkerReport) {
    assert_eq!(
        (r.counters.rx_packets, r.counters.tx_packets),
        (2, 2),
        "{r:?}"
    );
    assert_eq!(r.counters.flows_created, 1);
}

/// ARP goes to the slow path untouched; a datagram to an unresolved backend is held, a
/// resolution asked for, and it goes out when the neighbor is published.
pub fn slow_path_exchange(h: &mut impl Harness) {
    let arp = arp_request_for_vip();
    h.send(0, &arp);
    match h.slow_path_msg() {
        SlowPathMsg::Frame { port, frame } => {
            assert_eq!(port, 0, "arrived on port 0");
            assert_eq!(frame.as_ref(), &arp[..], "handed over untouched");
        }
        other => panic!("expected the ARP frame, got {other:?}"),
    }

    // Backend 4 has no neighbor: the worker asks the slow path and holds the datagram.
    h.send(0, &to_vip(56, b"far"));
    match h.slow_path_msg() {
        SlowPathMsg::Resolve { port, next_hop } => {
            assert_eq!(
                (port, next_hop),
                (1, IpAddr::from(UNRESOLVED_BACKEND)),
                "resolve backend 4 on port 1"
            );
        }
        other => panic!("expected a resolve request, got {other:?}"),
    }
    // What the slow path would publish once ARP answered: the held datagram goes out.
    h.publish(with_far_backend());
    let out = decoded(&h.receive(1));
    assert_eq!(out.dst, SocketAddr::from((UNRESOLVED_BACKEND, 5353)));
    assert_eq!(out.dst_mac, FAR_MAC, "the MAC just resolved");
    assert_eq!(out.payload, b"far");
}

/// The report after [`slow_path_exchange`].
pub fn slow_path_report(r: &WorkerReport) {
    assert_eq!(r.counters.host_count(HostReason::Arp), 1);
    assert_eq!(r.events.held, 1, "one datagram held for resolution");
    assert_eq!(r.drops.hold_expired, 0);
    assert_eq!(r.drops.host_overflow, 0);
    assert_eq!(r.counters.tx_packets, 1, "{r:?}");
}

/// Three datagrams the fast path drops, each for its own reason.
pub fn drops_exchange(h: &mut impl Harness) {
    // A listener port that does not exist.
    h.send(0, &to_vip(99, b"x"));
    // A corrupted IPv4 header checksum (bytes 24–25 of an untagged frame).
    let mut bad = to_vip(53, b"y");
    bad[24] ^= 0xff;
    h.send(0, &bad);
    // A backend reply to an SNAT port no flow owns.
    h.send(1, &from_backend(1, SocketAddr::from((SNAT, 4242)), b"z"));
    h.settle(3);
}

/// The report after [`drops_exchange`].
pub fn drops_report(r: &WorkerReport) {
    assert_eq!(r.counters.rx_packets, 3);
    assert_eq!(r.counters.tx_packets, 0);
    assert_eq!(r.counters.drop_count(DropReason::NoListener), 1);
    assert_eq!(r.counters.drop_count(DropReason::BadIpv4Checksum), 1);
    assert_eq!(r.counters.drop_count(DropReason::NoReverseFlow), 1);
    assert_eq!(r.counters.drops_total(), 3);
    assert_eq!(r.counters.flows_created, 0);
    assert_eq!(r.events.handed_off, 0, "a single worker keeps its strays");
}

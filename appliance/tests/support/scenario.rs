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
use pipelines::net::{IpNet, MacAddr, Network, StaticRoute};
use pipelines::refragment::split_ipv4;
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
    /// The `n` frames port `port` transmitted next, in order (the worker runs first).
    fn receive_n(&mut self, port: usize, n: usize) -> Vec<Vec<u8>>;
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

/// `testkit::network(offload)` with port 1's MTU set to `mtu`.
pub fn network(offload: bool, mtu: u16) -> Network {
    let base = testkit::network(offload);
    let mut ports = base.ports().to_vec();
    ports[1].mtu = mtu;
    let route = |prefix: &str, len, next_hop: &str| StaticRoute {
        prefix: IpNet::new(prefix.parse().expect("fixture"), len).expect("fixture"),
        next_hop: next_hop.parse().expect("fixture"),
        port: 0,
    };
    Network::new(
        ports,
        vec![
            route("198.19.0.0", 16, "198.18.0.1"),
            route("2001:2:0:9::", 64, "2001:2::1"),
        ],
        *base.snat(),
    )
    .expect("fixture network")
}

/// An IPv4 `frame` (no VLAN tag) with its DF bit set or cleared, header checksum fixed.
pub fn with_df(mut frame: Vec<u8>, df: bool) -> Vec<u8> {
    if df {
        frame[20] |= 0x40;
    } else {
        frame[20] &= !0x40;
    }
    frame[24..26].fill(0);
    let sum = ipv4_header_checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// The IPv4 header checksum of `header` (its checksum field zeroed), by etherparse.
fn ipv4_header_checksum(header: &[u8]) -> u16 {
    etherparse::Ipv4HeaderSlice::from_slice(header)
        .expect("ipv4")
        .to_header()
        .calc_header_checksum()
}

/// A client datagram to the `dns` listener with a `len`-byte payload (different at every
/// position), split as a sender with a 1500-byte MTU would: the payload and the frames
/// in offset order.
pub fn fragmented_to_vip(len: usize, df: bool) -> (Vec<u8>, Vec<Vec<u8>>) {
    let payload: Vec<u8> = (0..len)
        .map(|i| u8::try_from(i * 7 % 251).unwrap())
        .collect();
    let whole = with_df(to_vip(53, &payload), df);
    let mut frags = Vec::new();
    split_ipv4(&whole, 14, 1500, |h, d| frags.push([h, d].concat())).expect("splits");
    (payload, frags)
}

/// The IPv4 fragments in `frames` (any order) reassembled into one frame (the first
/// fragment's Ethernet and IP header, length and checksum fixed) and decoded with every
/// checksum verified; checked on the way: no hole, no overlap, only the last without MF,
/// the others a multiple of 8 bytes, every piece's header checksum valid.
pub fn reassembled(frames: &[Vec<u8>]) -> testkit::Decoded {
    let mut pieces: Vec<(usize, bool, &[u8])> = frames
        .iter()
        .map(|f| {
            let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).expect("ipv4");
            let h = ip.to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "header checksum"
            );
            let hl = usize::from(ip.ihl()) * 4;
            let end = 14 + usize::from(ip.total_len());
            assert_eq!(end, f.len(), "no padding at these sizes");
            let off = usize::from(ip.fragments_offset().value()) * 8;
            (off, ip.more_fragments(), &f[14 + hl..end])
        })
        .collect();
    pieces.sort_by_key(|p| p.0);
    let first = frames
        .iter()
        .find(|f| f[20] & 0x1f == 0 && f[21] == 0)
        .expect("a first fragment");
    let mut data = Vec::new();
    for (i, (off, more, bytes)) in pieces.iter().enumerate() {
        assert_eq!(
            *off,
            data.len(),
            "piece {i} starts where the previous ended"
        );
        assert_eq!(*more, i + 1 < pieces.len(), "MF of piece {i}");
        if *more {
            assert_eq!(bytes.len() % 8, 0, "a multiple of 8 bytes");
        }
        data.extend_from_slice(bytes);
    }
    let mut frame = first[..34].to_vec();
    frame.extend_from_slice(&data);
    let total = u16::try_from(frame.len() - 14).unwrap();
    frame[16..18].copy_from_slice(&total.to_be_bytes());
    frame[20..22].fill(0);
    frame[24..26].fill(0);
    let sum = ipv4_header_checksum(&frame[14..34]);
    frame[24..26].copy_from_slice(&sum.to_be_bytes());
    decoded(&frame)
}

/// Port 1's MTU for [`fragments_exchange`].
pub const FRAGMENT_MTU: u16 = 1280;

/// A datagram in two fragments, the later one first: it is held, then sent after the
/// first; port 1's MTU ([`FRAGMENT_MTU`]) splits the first fragment again. What comes
/// out reassembles into the datagram, translated.
pub fn fragments_exchange(h: &mut impl Harness) {
    let (payload, frags) = fragmented_to_vip(2500, false);
    assert_eq!(frags.len(), 2);
    h.send(0, &frags[1]);
    h.settle(1);
    h.send(0, &frags[0]);
    // 1480 data bytes → 1256 + 224; the held 1028 fit 1280.
    let out = h.receive_n(1, 3);
    let first_offset = u16::from_be_bytes([out[0][20], out[0][21]]) & 0x1fff;
    assert_eq!(first_offset, 0, "the first fragment's pieces go first");
    let d = reassembled(&out);
    assert_eq!((d.dst, d.src.ip()), (backend(1), IpAddr::from(SNAT)));
    assert_eq!(
        (d.src_mac, d.dst_mac),
        (testkit::PORT1_MAC, testkit::backend_mac(1))
    );
    assert_eq!(
        d.payload, payload,
        "checksum verified over the reassembled datagram"
    );
}

/// The report after [`fragments_exchange`].
pub fn fragments_report(r: &WorkerReport) {
    assert_eq!(r.counters.fragments_held, 1);
    assert_eq!(r.counters.fragments_forwarded, 2);
    assert_eq!(r.counters.fragments_waiting, 0);
    assert_eq!(r.events.fragments_rerun, 1);
    assert_eq!((r.events.refragmented, r.events.refragment_pieces), (1, 2));
    assert_eq!(r.drops, Default::default());
    assert_eq!(r.counters.drops_total(), 0);
}

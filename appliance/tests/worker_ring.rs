//! The real worker loop (`appliance::worker::run`) on lcore 1 between two pairs of ring
//! ports: crafted datagrams go in on the "client" and "backend" wires, the test reads what
//! the worker transmitted and what it handed to the slow path, then stops the worker and
//! checks its report and that every mbuf went back to the pool.
//!
//! Topology (`pipelines::testkit`): appliance port 0 faces clients (routed via
//! 198.18.0.1), port 1 faces backends 198.18.1.0/24; SNAT 198.18.1.253; VIP 198.18.2.1.
//! One EAL per test binary; tests share lcore 1, so they run one at a time.
#![allow(clippy::tests_outside_test_module)]

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use appliance::dpdk::{
    ring_port_pair, Eal, LcoreJob, Mbuf, MbufBurst, Mempool, Port, QueueId, SocketId,
};
use appliance::slowpath::{SlowPathCounters, SlowPathMsg};
use appliance::worker::{self, WorkerReport, WorkerSetup};
use crossbeam_channel::{Receiver, Sender};
use pipelines::neighbor::Neighbors;
use pipelines::net::MacAddr;
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{self, decode_verified, udp_frame, Decoded};
use pipelines::{DropReason, FastPath, FastPathParams, HostReason};

const VIP: [u8; 4] = [198, 18, 2, 1];
const SNAT: [u8; 4] = [198, 18, 1, 253];
const CLIENT: &str = "198.19.0.100:40000";
/// Backend 4 has no neighbor entry until a test publishes one.
const UNRESOLVED_BACKEND: [u8; 4] = [198, 18, 1, 4];

/// Gateway 198.18.2.1: `dns` :53 full NAT → 198.18.1.1:5353; `game` :54 preserve-client
/// → 198.18.1.3:5353; `far` :56 full NAT → 198.18.1.4:5353 (not in the neighbor table).
const MANIFESTS: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: udplb}
spec: {controllerName: udplb.io/appliance}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
  annotations: {udplb.io/listener.game.nat-mode: preserve-client}
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.2.1}]
  listeners:
  - {name: dns, port: 53, protocol: UDP}
  - {name: game, port: 54, protocol: UDP}
  - {name: far, port: 56, protocol: UDP}
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: dns, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: dns}]
  rules: [{backendRefs: [{name: dns, port: 53}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: game, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: game}]
  rules: [{backendRefs: [{name: game, port: 53}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: far, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: far}]
  rules: [{backendRefs: [{name: far, port: 53}]}]
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: default}
spec: {ports: [{name: dns, protocol: UDP, port: 53}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns, namespace: default, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: [{addresses: [198.18.1.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: game, namespace: default}
spec: {ports: [{name: dns, protocol: UDP, port: 53}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: game, namespace: default, labels: {kubernetes.io/service-name: game}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: [{addresses: [198.18.1.3]}]
---
apiVersion: v1
kind: Service
metadata: {name: far, namespace: default}
spec: {ports: [{name: dns, protocol: UDP, port: 53}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: far, namespace: default, labels: {kubernetes.io/service-name: far}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: [{addresses: [198.18.1.4]}]
";

fn eal() -> Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    *EAL.get_or_init(|| {
        let prefix = format!("udplb-wr-{}", std::process::id());
        let args: Vec<String> = [
            "-l",
            "0,1",
            "--no-huge",
            "-m",
            "256",
            "--no-shconf",
            "--no-pci",
            "--file-prefix",
            &prefix,
            "--log-level=lib.eal:error",
        ]
        .map(str::to_owned)
        .to_vec();
        let eal = Eal::init(&args).expect("rte_eal_init (run as root)");
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
        eal
    })
}

/// Tests share the one worker lcore: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn backend(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 1, n], 5353))
}

/// Neighbors known from the start: the client-side router and backends 1–3.
fn static_neighbors() -> Vec<(IpAddr, MacAddr)> {
    let mut v = vec![(IpAddr::from([198, 18, 0, 1]), testkit::ROUTER_MAC)];
    v.extend((1..=3).map(|n| (IpAddr::from([198, 18, 1, n]), testkit::backend_mac(n))));
    v
}

/// A running worker between two ring port pairs, and the test's ends of every channel.
struct Rig {
    pool: Mempool,
    /// The appliance's ports 0 (clients) and 1 (backends), kept for stop and drop.
    appliance: Vec<Port>,
    /// The test's ends: `wires[p]` sends to and receives from appliance port `p`.
    wires: Vec<Port>,
    job: Option<LcoreJob<()>>,
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<WorkerReport>>,
    slowpath: Receiver<SlowPathMsg<Mbuf>>,
    neighbors: Sender<Arc<Neighbors>>,
    _tables: Sender<Arc<Tables>>,
    _inject: Sender<(u16, Mbuf)>,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    fn start() -> Rig {
        let serial = serial();
        let eal = eal();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let pool = Mempool::new(
            &format!("wr{n}"),
            1023,
            0,
            Mempool::DEFAULT_DATA_ROOM,
            SocketId::ANY,
        )
        .expect("mempool");
        let mut appliance = Vec::new();
        let mut wires = Vec::new();
        for p in 0..2 {
            let (a, b) = ring_port_pair(
                &format!("net_ring_wr{n}_{p}a"),
                &format!("net_ring_wr{n}_{p}b"),
                1,
                256,
                SocketId::ANY,
            )
            .expect("ring port pair");
            let mut a = a.mempool(&pool).build().expect("appliance port");
            let mut b = b.mempool(&pool).build().expect("wire port");
            a.start().expect("start appliance port");
            b.start().expect("start wire port");
            appliance.push(a);
            wires.push(b);
        }

        let objects = config::load_str("worker_ring.yaml", MANIFESTS).expect("manifests load");
        let compiled = config::compile(&objects, &config::CompileParams::default());
        assert_eq!(
            compiled.forwarding.listeners.len(),
            3,
            "three listeners compiled: {:#?}",
            compiled.forwarding
        );
        let tables = Arc::new(
            Tables::build(&compiled.forwarding, &DataplaneParams::default()).expect("tables"),
        );
        let network = Arc::new(testkit::network(false));
        let snat_ports = network.snat().ports;

        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(WorkerReport::default()));
        let (sp_tx, sp_rx) = crossbeam_channel::bounded(64);
        let (tables_tx, tables_rx) = crossbeam_channel::unbounded();
        let (nb_tx, nb_rx) = crossbeam_channel::unbounded();
        let (inject_tx, inject_rx) = crossbeam_channel::bounded(4);
        let setup = WorkerSetup {
            fast_path: FastPath::new(FastPathParams {
                flow_capacity: 1024,
                ..FastPathParams::new(0, 1, snat_ports)
            })
            .expect("pipeline worker"),
            rx: appliance
                .iter()
                .map(|p| p.rx_queue(QueueId(0)).expect("rx queue"))
                .collect(),
            tx: appliance
                .iter()
                .map(|p| p.tx_queue(QueueId(0)).expect("tx queue"))
                .collect(),
            network,
            tables,
            tables_rx,
            neighbors: Arc::new(Neighbors::new(static_neighbors())),
            neighbors_rx: nb_rx,
            slowpath: sp_tx,
            slowpath_counters: Arc::new(SlowPathCounters::default()),
            report: Arc::clone(&report),
            inject_rx,
            stop: Arc::clone(&stop),
            idle_backoff: Duration::from_micros(50),
            epoch: Instant::now(),
        };
        let lcore = *eal.worker_lcores().first().expect("worker lcore 1");
        let job = eal
            .launch(lcore, move || worker::run(setup))
            .expect("launch the worker");
        Rig {
            pool,
            appliance,
            wires,
            job: Some(job),
            stop,
            report,
            slowpath: sp_rx,
            neighbors: nb_tx,
            _tables: tables_tx,
            _inject: inject_tx,
            _serial: serial,
        }
    }

    /// Sends one frame into appliance port `port`.
    fn send(&self, port: usize, frame: &[u8]) {
        let mut tx = self.wires[port].tx_queue(QueueId(0)).expect("wire tx");
        let mut burst = MbufBurst::new();
        burst
            .push(Mbuf::from_bytes(&self.pool, frame).expect("mbuf"))
            .expect("burst room");
        assert_eq!(tx.tx_burst(&mut burst), 1, "the ring took the frame");
    }

    /// The next frame appliance port `port` transmitted (bounded wait).
    fn receive(&self, port: usize) -> Vec<u8> {
        let mut rx = self.wires[port].rx_queue(QueueId(0)).expect("wire rx");
        let mut burst = MbufBurst::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if rx.rx_burst(&mut burst) > 0 {
                assert_eq!(burst.len(), 1, "exactly one frame expected on port {port}");
                let m = burst.pop().expect("one frame");
                return m.data().to_vec();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("no frame on port {port} within 5 s");
    }

    /// Nothing more came out of either appliance port (after the worker stopped).
    fn assert_wires_quiet(&self) {
        let mut burst = MbufBurst::new();
        for (p, wire) in self.wires.iter().enumerate() {
            let mut rx = wire.rx_queue(QueueId(0)).expect("wire rx");
            assert_eq!(rx.rx_burst(&mut burst), 0, "unexpected frame on port {p}");
        }
    }

    /// The next message the worker sent to the slow path (bounded wait).
    fn slow_path_msg(&self) -> SlowPathMsg<Mbuf> {
        self.slowpath
            .recv_timeout(Duration::from_secs(5))
            .expect("a slow-path message within 5 s")
    }

    /// Stops the worker, checks the mbuf accounting and returns its final report.
    fn finish(mut self) -> WorkerReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            job.wait().expect("the worker exits");
        }
        self.assert_wires_quiet();
        let extra: Vec<_> = self.slowpath.try_iter().collect();
        assert!(extra.is_empty(), "unexpected slow-path messages: {extra:?}");
        let report = std::mem::take(&mut *self.report.lock().expect("report"));
        for p in self.appliance.iter_mut().chain(self.wires.iter_mut()) {
            p.stop().ok();
        }
        let pool = self.pool.clone();
        drop(self);
        assert_eq!(pool.in_use(), 0, "every mbuf returned to the pool");
        report
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // On a failed assertion: never leave the worker running on the shared lcore.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            let _ = job.wait();
        }
    }
}

fn decoded(frame: &[u8]) -> Decoded {
    decode_verified(frame).unwrap_or_else(|e| panic!("invalid frame out of the worker: {e}"))
}

#[test]
fn full_nat_forward_and_reverse_through_the_worker_loop() {
    let rig = Rig::start();
    let vip = SocketAddr::from((VIP, 53));
    rig.send(
        0,
        &udp_frame(sa(CLIENT), vip, 64, &[], testkit::PORT0_MAC, b"query"),
    );
    let out = decoded(&rig.receive(1));
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
    rig.send(
        1,
        &udp_frame(
            backend(1),
            SocketAddr::from((SNAT, snat_port)),
            64,
            &[],
            testkit::PORT1_MAC,
            b"answer",
        ),
    );
    let back = decoded(&rig.receive(0));
    assert_eq!((back.src, back.dst), (vip, sa(CLIENT)));
    assert_eq!(back.src_mac, testkit::PORT0_MAC);
    assert_eq!(
        back.dst_mac,
        testkit::ROUTER_MAC,
        "via the client-side router"
    );
    assert_eq!(back.payload, b"answer");

    // A second datagram of the same flow keeps its SNAT port and creates no flow.
    rig.send(
        0,
        &udp_frame(sa(CLIENT), vip, 64, &[], testkit::PORT0_MAC, b"again"),
    );
    let again = decoded(&rig.receive(1));
    assert_eq!(
        (again.src, again.dst),
        (SocketAddr::from((SNAT, snat_port)), backend(1))
    );

    let r = rig.finish();
    assert_eq!(r.counters.rx_packets, 3);
    assert_eq!(r.counters.tx_packets, 3);
    assert_eq!(r.counters.flows_created, 1);
    assert_eq!(r.counters.drops_total(), 0);
    assert_eq!(r.tx_refused, 0);
}

#[test]
fn preserve_client_forward_and_reverse_through_the_worker_loop() {
    let rig = Rig::start();
    let vip = SocketAddr::from((VIP, 54));
    rig.send(
        0,
        &udp_frame(sa(CLIENT), vip, 64, &[], testkit::PORT0_MAC, b"join"),
    );
    let out = decoded(&rig.receive(1));
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
    rig.send(
        1,
        &udp_frame(
            backend(3),
            sa(CLIENT),
            64,
            &[],
            testkit::PORT1_MAC,
            b"state",
        ),
    );
    let back = decoded(&rig.receive(0));
    assert_eq!((back.src, back.dst), (vip, sa(CLIENT)), "from the VIP");
    assert_eq!(
        (back.src_mac, back.dst_mac),
        (testkit::PORT0_MAC, testkit::ROUTER_MAC)
    );

    let r = rig.finish();
    assert_eq!(
        (r.counters.rx_packets, r.counters.tx_packets),
        (2, 2),
        "{r:?}"
    );
    assert_eq!(r.counters.flows_created, 1);
}

/// An ARP request from the client-side router for the VIP.
fn arp_request_for_vip() -> Vec<u8> {
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

#[test]
fn slow_path_gets_arp_and_resolves_held_datagrams() {
    let rig = Rig::start();
    let arp = arp_request_for_vip();
    rig.send(0, &arp);
    match rig.slow_path_msg() {
        SlowPathMsg::Frame { port, frame } => {
            assert_eq!(port, 0, "arrived on port 0");
            assert_eq!(frame.data(), &arp[..], "handed over untouched");
        }
        other => panic!("expected the ARP frame, got {other:?}"),
    }

    // Backend 4 has no neighbor: the worker asks the slow path and holds the datagram.
    let vip = SocketAddr::from((VIP, 56));
    rig.send(
        0,
        &udp_frame(sa(CLIENT), vip, 64, &[], testkit::PORT0_MAC, b"far"),
    );
    match rig.slow_path_msg() {
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
    let far_mac = MacAddr([0x0a, 0, 0, 0, 1, 4]);
    let mut known = static_neighbors();
    known.push((IpAddr::from(UNRESOLVED_BACKEND), far_mac));
    rig.neighbors
        .send(Arc::new(Neighbors::new(known)))
        .expect("worker listens for neighbors");
    let out = decoded(&rig.receive(1));
    assert_eq!(out.dst, SocketAddr::from((UNRESOLVED_BACKEND, 5353)));
    assert_eq!(out.dst_mac, far_mac, "the MAC just resolved");
    assert_eq!(out.payload, b"far");

    let r = rig.finish();
    assert_eq!(r.counters.host_count(HostReason::Arp), 1);
    assert_eq!(r.held, 1, "one datagram held for resolution");
    assert_eq!(r.hold_expired, 0);
    assert_eq!(r.host_overflow, 0);
    assert_eq!(r.counters.tx_packets, 1, "{r:?}");
}

#[test]
fn drops_are_counted_by_reason_and_freed() {
    let rig = Rig::start();
    // A listener port that does not exist.
    rig.send(
        0,
        &udp_frame(
            sa(CLIENT),
            SocketAddr::from((VIP, 99)),
            64,
            &[],
            testkit::PORT0_MAC,
            b"x",
        ),
    );
    // A corrupted IPv4 header checksum (bytes 24–25 of an untagged frame).
    let mut bad = udp_frame(
        sa(CLIENT),
        SocketAddr::from((VIP, 53)),
        64,
        &[],
        testkit::PORT0_MAC,
        b"y",
    );
    bad[24] ^= 0xff;
    rig.send(0, &bad);
    // A backend reply to an SNAT port no flow owns.
    rig.send(
        1,
        &udp_frame(
            backend(1),
            SocketAddr::from((SNAT, 4242)),
            64,
            &[],
            testkit::PORT1_MAC,
            b"z",
        ),
    );
    // Wait (bounded) until the worker's periodic report shows all three.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if rig.report.lock().expect("report").counters.rx_packets >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = rig.finish();
    assert_eq!(r.counters.rx_packets, 3);
    assert_eq!(r.counters.tx_packets, 0);
    assert_eq!(r.counters.drop_count(DropReason::NoListener), 1);
    assert_eq!(r.counters.drop_count(DropReason::BadIpv4Checksum), 1);
    assert_eq!(r.counters.drop_count(DropReason::NoReverseFlow), 1);
    assert_eq!(r.counters.drops_total(), 3);
    assert_eq!(r.counters.flows_created, 0);
    assert_eq!(r.handed_off, 0, "a single worker keeps its strays");
}

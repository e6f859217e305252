//! Two real workers on ring ports, every packet on the "wrong" worker: a full-NAT reply
//! is handed to the owner of its SNAT port; a preserve-client reply is translated by the
//! worker it lands on (its endpoint serves one listener); a preserve-client flow to an
//! endpoint shared by two VIPs lives on its client's owner worker, and both its request
//! and its reply are handed there. The worker loop's handoff is generic by worker index,
//! so no mode needs more from it.
#![allow(clippy::tests_outside_test_module)]

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::dpdk::{ring_port_pair, Eal, Mbuf, MbufBurst, Mempool, Port, QueueId, SocketId};
use appliance::slowpath::SlowPathCounters;
use appliance::worker::{self, Handoff, WorkerReport, WorkerSetup};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use pipelines::neighbor::Neighbors;
use pipelines::net::{ChecksumCaps, IpNet, MacAddr, Network, PortConfig, PortRange, SnatConfig};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::{FastPath, FastPathParams};

const APPLIANCE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

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
  annotations:
    udplb.io/listener.pc.nat-mode: preserve-client
    udplb.io/listener.shared.nat-mode: preserve-client
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.0.10}]
  listeners:
    - {name: dns, port: 53, protocol: UDP}
    - {name: pc, port: 54, protocol: UDP}
    - {name: shared, port: 55, protocol: UDP}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw2
  namespace: default
  annotations: {udplb.io/nat-mode: preserve-client}
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.0.11}]
  listeners: [{name: shared, port: 55, protocol: UDP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {name: dns, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: dns}]
  rules: [{backendRefs: [{name: dns, port: 53}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {name: pc, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: pc}]
  rules: [{backendRefs: [{name: pc, port: 54}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {name: shared, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: shared}, {name: gw2, sectionName: shared}]
  rules: [{backendRefs: [{name: shared, port: 55}]}]
---
apiVersion: v1
kind: Service
metadata: {name: pc, namespace: default}
spec: {ports: [{name: pc, protocol: UDP, port: 54}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pc, namespace: default, labels: {kubernetes.io/service-name: pc}}
addressType: IPv4
ports: [{name: pc, protocol: UDP, port: 54}]
endpoints: [{addresses: [198.18.1.12]}]
---
apiVersion: v1
kind: Service
metadata: {name: shared, namespace: default}
spec: {ports: [{name: shared, protocol: UDP, port: 55}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: shared, namespace: default, labels: {kubernetes.io/service-name: shared}}
addressType: IPv4
ports: [{name: shared, protocol: UDP, port: 55}]
endpoints: [{addresses: [198.18.1.13]}]
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
ports: [{name: dns, protocol: UDP, port: 53}]
endpoints: [{addresses: [198.18.1.11]}]
";

fn eal() -> Eal {
    // Two worker lcores (1 and 2) share CPU 1, so the test runs on a 2-core machine.
    let args: Vec<String> = [
        "--lcores",
        "0@0,1@1,2@1",
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-pci",
        "--log-level=lib.eal:error",
        "--file-prefix",
        &format!("udplb-handoff-{}", std::process::id()),
    ]
    .map(str::to_owned)
    .to_vec();
    let eal = Eal::init(&args).expect("rte_eal_init (run as root)");
    let _ = std::fs::remove_dir_all(format!(
        "/var/run/dpdk/udplb-handoff-{}",
        std::process::id()
    ));
    eal
}

fn frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), src_mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, APPLIANCE_MAC)
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).expect("frame");
    v
}

fn send(pool: &Mempool, port: &Port, queue: u16, bytes: &[u8]) {
    let mut tx = port.tx_queue(QueueId(queue)).expect("tx queue");
    let mut burst = MbufBurst::new();
    burst
        .push(Mbuf::from_bytes(pool, bytes).expect("mbuf"))
        .expect("room");
    assert_eq!(tx.tx_burst(&mut burst), 1);
}

/// Waits (bounded) for one frame on any RX queue of `port`.
fn receive(port: &Port, queues: u16) -> Vec<u8> {
    let mut rxs: Vec<_> = (0..queues)
        .map(|q| port.rx_queue(QueueId(q)).expect("rx queue"))
        .collect();
    let mut burst = MbufBurst::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        for rx in &mut rxs {
            if rx.rx_burst(&mut burst) > 0 {
                let m = burst.pop().expect("one frame");
                assert!(burst.is_empty(), "exactly one frame expected");
                return m.data().to_vec();
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("no frame within 5 s");
}

fn addrs(frame: &[u8]) -> (IpAddr, u16, IpAddr, u16) {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let (s, d) = match p.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::from(ip.header().source_addr()),
            IpAddr::from(ip.header().destination_addr()),
        ),
        _ => panic!("not IPv4"),
    };
    match p.transport {
        Some(TransportSlice::Udp(u)) => (s, u.source_port(), d, u.destination_port()),
        _ => panic!("not UDP"),
    }
}

#[test]
fn every_mode_serves_packets_that_land_on_the_wrong_worker() {
    let eal = eal();
    let pool = Mempool::new(
        "handoff",
        1023,
        0,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .expect("mempool");
    let (a, b) =
        ring_port_pair("net_ring_hoa", "net_ring_hob", 2, 256, SocketId::ANY).expect("ring pair");
    let mut appliance_port = a
        .mempool(&pool)
        .rx_queues(2)
        .tx_queues(2)
        .build()
        .expect("port a");
    let mut wire = b
        .mempool(&pool)
        .rx_queues(2)
        .tx_queues(2)
        .build()
        .expect("port b");
    appliance_port.start().expect("start a");
    wire.start().expect("start b");

    let objects = config::load_str("handoff.yaml", MANIFESTS).expect("manifests");
    let compiled = config::compile(&objects, &config::CompileParams::default());
    let tables =
        Arc::new(Tables::build(&compiled.forwarding, &DataplaneParams::default()).expect("tables"));
    let net = |a: [u8; 4], len| IpNet::new(IpAddr::from(a), len).expect("prefix");
    let pool_ports = PortRange {
        first: 1024,
        last: 65535,
    };
    let network = Arc::new(
        Network::new(
            vec![PortConfig {
                mac: MacAddr(APPLIANCE_MAC),
                addresses: vec![
                    net([198, 18, 0, 1], 24),
                    net([198, 18, 1, 1], 24),
                    net([198, 19, 0, 1], 24),
                ],
                checksum: ChecksumCaps::empty(),
                unfinished_rx_checksums: false,
                mtu: pipelines::net::DEFAULT_MTU,
            }],
            vec![],
            SnatConfig {
                ipv4: Some([198, 18, 0, 2].into()),
                ipv6: None,
                ports: pool_ports,
            },
        )
        .expect("network"),
    );
    let neighbors = Arc::new(Neighbors::new([
        (IpAddr::from([198, 19, 0, 100]), MacAddr(CLIENT_MAC)),
        (IpAddr::from([198, 18, 1, 11]), MacAddr(BACKEND_MAC)),
        (IpAddr::from([198, 18, 1, 12]), MacAddr(BACKEND_MAC)),
        (IpAddr::from([198, 18, 1, 13]), MacAddr(BACKEND_MAC)),
    ]));
    assert_eq!(tables.shared_endpoints().len(), 1, "198.18.1.13:55");
    let stop = Arc::new(AtomicBool::new(false));
    let (sp_tx, _sp_rx) = crossbeam_channel::bounded(64);
    let counters = Arc::new(SlowPathCounters::default());
    let epoch = Instant::now();
    let mut reports = Vec::new();
    let mut jobs = Vec::new();
    let mut keep_channels = Vec::new();
    for (id, handoff) in Handoff::mesh(2, 64).into_iter().enumerate() {
        let id16 = u16::try_from(id).expect("id");
        let report = Arc::new(Mutex::new(WorkerReport::default()));
        reports.push(Arc::clone(&report));
        let (tables_tx, tables_rx) = crossbeam_channel::unbounded();
        let (nb_tx, nb_rx) = crossbeam_channel::unbounded();
        let (inject_tx, inject_rx) = crossbeam_channel::bounded(4);
        keep_channels.push((tables_tx, nb_tx, inject_tx));
        let setup = WorkerSetup {
            fast_path: FastPath::new(FastPathParams {
                flow_capacity: 1024,
                ..FastPathParams::new(id16, 2, pool_ports)
            })
            .expect("worker"),
            rx: vec![appliance_port.rx_queue(QueueId(id16)).expect("rx")],
            tx: vec![appliance_port.tx_queue(QueueId(id16)).expect("tx")],
            network: Arc::clone(&network),
            tables: Arc::clone(&tables),
            tables_rx,
            neighbors: Arc::clone(&neighbors),
            neighbors_rx: nb_rx,
            slowpath: sp_tx.clone(),
            slowpath_counters: Arc::clone(&counters),
            report,
            inject_rx,
            stop: Arc::clone(&stop),
            idle_backoff: Duration::from_micros(50),
            epoch,
        };
        let lcore = eal.worker_lcores()[id];
        jobs.push(
            eal.launch(lcore, move || worker::run_with_handoff(setup, handoff))
                .expect("launch"),
        );
    }

    // Client → VIP on queue 0: worker 0 creates the flow and allocates an SNAT port from
    // its partition.
    send(
        &pool,
        &wire,
        0,
        &frame(
            ([198, 19, 0, 100], 40000),
            ([198, 18, 0, 10], 53),
            CLIENT_MAC,
            b"query",
        ),
    );
    let out = receive(&wire, 2);
    let (src, snat_port, dst, dport) = addrs(&out);
    assert_eq!(
        (src, dst, dport),
        (
            IpAddr::from([198, 18, 0, 2]),
            IpAddr::from([198, 18, 1, 11]),
            53
        )
    );
    assert_eq!(
        pool_ports.owner(snat_port, 2),
        Some(0),
        "worker 0 owns the flow"
    );

    // The backend's reply arrives on queue 1: worker 1 has no flow and hands it over.
    send(
        &pool,
        &wire,
        1,
        &frame(
            ([198, 18, 1, 11], 53),
            ([198, 18, 0, 2], snat_port),
            BACKEND_MAC,
            b"answer",
        ),
    );
    let back = receive(&wire, 2);
    assert_eq!(
        addrs(&back),
        (
            IpAddr::from([198, 18, 0, 10]),
            53,
            IpAddr::from([198, 19, 0, 100]),
            40000
        ),
        "the reply goes back translated, from the VIP"
    );
    assert_eq!(&back[..6], &CLIENT_MAC, "to the client's MAC");

    // Preserve-client, an endpoint of one listener: worker 0 forwards, worker 1 gets the
    // reply without the flow and translates it from the tables.
    let client = ([198, 19, 0, 100], 40001);
    send(
        &pool,
        &wire,
        0,
        &frame(client, ([198, 18, 0, 10], 54), CLIENT_MAC, b"pc query"),
    );
    let out = receive(&wire, 2);
    assert_eq!(
        addrs(&out),
        (
            IpAddr::from(client.0),
            client.1,
            IpAddr::from([198, 18, 1, 12]),
            54
        )
    );
    send(
        &pool,
        &wire,
        1,
        &frame(([198, 18, 1, 12], 54), client, BACKEND_MAC, b"pc answer"),
    );
    let back = receive(&wire, 2);
    assert_eq!(
        addrs(&back),
        (
            IpAddr::from([198, 18, 0, 10]),
            54,
            IpAddr::from(client.0),
            client.1
        )
    );

    // Preserve-client, an endpoint shared by two VIPs: the flow lives on the client's
    // owner; the request and the reply both arrive on the other worker and are handed
    // over, and the reply leaves from the VIP the client used.
    let client = ([198, 19, 0, 100], 40002);
    let owner = pipelines::fastpath::steer::client_owner(IpAddr::from(client.0), client.1, 2);
    let other = 1 - owner;
    send(
        &pool,
        &wire,
        other,
        &frame(client, ([198, 18, 0, 11], 55), CLIENT_MAC, b"shared query"),
    );
    let out = receive(&wire, 2);
    assert_eq!(
        addrs(&out),
        (
            IpAddr::from(client.0),
            client.1,
            IpAddr::from([198, 18, 1, 13]),
            55
        )
    );
    send(
        &pool,
        &wire,
        other,
        &frame(
            ([198, 18, 1, 13], 55),
            client,
            BACKEND_MAC,
            b"shared answer",
        ),
    );
    let back = receive(&wire, 2);
    assert_eq!(
        addrs(&back),
        (
            IpAddr::from([198, 18, 0, 11]),
            55,
            IpAddr::from(client.0),
            client.1
        ),
        "from the VIP the client used, not the other one"
    );

    stop.store(true, Ordering::Relaxed);
    for j in jobs {
        j.wait().expect("worker exits");
    }
    let r1 = reports[1].lock().expect("report");
    let r0 = reports[0].lock().expect("report");
    let [ro, rx] = if owner == 0 { [&r0, &r1] } else { [&r1, &r0] };
    assert_eq!(
        (r1.handed_off, r1.counters.handoff),
        (1 + u64::from(owner == 0) * 2, r1.handed_off),
        "worker 1 handed over the full-NAT reply (and the shared flow's packets if it \
         does not own the client)"
    );
    assert_eq!(
        rx.handed_off,
        2 + u64::from(other == 1),
        "{}",
        rx.handed_off
    );
    assert_eq!(ro.counters.handoff, u64::from(owner == 1));
    assert_eq!(r0.counters.drops_total() + r1.counters.drops_total(), 0);
    assert_eq!(
        r1.counters.stateless_replies, 1,
        "the pc reply, on worker 1"
    );
    assert_eq!(
        r0.counters.tx_packets + r1.counters.tx_packets,
        6,
        "three requests and three replies"
    );
    assert_eq!(
        ro.counters.flows_created,
        1 + u64::from(owner == 0) * 2,
        "the shared flow on its owner (worker 0 also holds the full-NAT and pc flows)"
    );
    drop((r0, r1));
    drop(keep_channels);
    appliance_port.stop().ok();
    wire.stop().ok();
    drop((appliance_port, wire));
    assert_eq!(pool.in_use(), 0, "every mbuf returned to the pool");
}

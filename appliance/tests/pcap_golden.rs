//! Golden test of the real worker loop on a DPDK `net_pcap` port: the test writes an input
//! pcap of client datagrams (2000 flows, two datagrams each) to a VIP whose route weighs
//! two backends 3:1, runs `appliance::worker::run` on lcore 1 until the input is consumed,
//! then decodes the output pcap independently and checks every frame (backend, SNAT
//! address, MACs from the static neighbors, checksums, flow pinning) and the split.
//!
//! The per-backend summary is deterministic (seeded Maglev and flow hash) and kept in
//! `tests/golden/pcap_golden.json`; `UDPLB_BLESS=1` rewrites it after an intended change.
#![allow(clippy::tests_outside_test_module)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::dpdk::{Eal, Mempool, PortBuilder, QueueId, SocketId};
use appliance::slowpath::SlowPathCounters;
use appliance::worker::{self, WorkerReport, WorkerSetup};
use pipelines::neighbor::Neighbors;
use pipelines::net::{
    ChecksumCaps, IpNet, MacAddr, Network, PortConfig, PortRange, SnatConfig, StaticRoute,
};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{decode_verified, udp_frame};
use pipelines::{FastPath, FastPathParams};

const FLOWS: u32 = 2000;
const ROUNDS: u32 = 2;
const VIP: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 2, 1)), 53);
const SNAT: [u8; 4] = [198, 18, 1, 253];
/// The MAC DPDK's net_pcap gives its first port ("\x02pcap\0"); the input frames are
/// addressed to it, as a sender on the link would (the fast path drops frames for other
/// MACs as `not_for_us`).
const PCAP_PORT_MAC: MacAddr = MacAddr([0x02, 0x70, 0x63, 0x61, 0x70, 0x00]);
const HEAVY: ([u8; 4], MacAddr) = ([198, 18, 1, 1], MacAddr([0x0a, 0, 0, 0, 1, 1]));
const LIGHT: ([u8; 4], MacAddr) = ([198, 18, 1, 2], MacAddr([0x0a, 0, 0, 0, 1, 2]));
const GOLDEN: &str = "tests/golden/pcap_golden.json";

/// Gateway 198.18.2.1:53, one route: Service `heavy` (weight 3) and `light` (weight 1).
const MANIFESTS: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: udplb}
spec: {controllerName: udplb.io/appliance}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.2.1}]
  listeners: [{name: dns, port: 53, protocol: UDP}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: dns, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs:
    - {name: heavy, port: 53, weight: 3}
    - {name: light, port: 53, weight: 1}
---
apiVersion: v1
kind: Service
metadata: {name: heavy, namespace: default}
spec: {ports: [{name: dns, protocol: UDP, port: 53}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: heavy, namespace: default, labels: {kubernetes.io/service-name: heavy}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: [{addresses: [198.18.1.1]}]
---
apiVersion: v1
kind: Service
metadata: {name: light, namespace: default}
spec: {ports: [{name: dns, protocol: UDP, port: 53}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: light, namespace: default, labels: {kubernetes.io/service-name: light}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: [{addresses: [198.18.1.2]}]
";

/// Removes the test's directory however the test ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Client `i`: 198.19.x.y:(10000 + i), behind the client-side router.
fn client(i: u32) -> SocketAddr {
    let [_, _, hi, lo] = i.to_be_bytes();
    SocketAddr::from((
        [198, 19, hi, lo],
        10000 + u16::try_from(i).expect("flow index"),
    ))
}

/// Writes `frames` as a classic pcap file (microsecond timestamps, Ethernet link type).
fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (i, f) in frames.iter().enumerate() {
        let len = u32::try_from(f.len()).expect("frame length");
        out.extend_from_slice(&1u32.to_le_bytes()); // seconds
        out.extend_from_slice(&u32::try_from(i).expect("index").to_le_bytes()); // µs
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(f);
    }
    std::fs::write(path, out).expect("write the input pcap");
}

/// Reads the records of a classic pcap file (either byte order, µs or ns timestamps).
fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).expect("read the output pcap");
    assert!(data.len() >= 24, "pcap global header present");
    let magic = u32::from_le_bytes(data[0..4].try_into().expect("4 bytes"));
    let little = match magic {
        0xa1b2_c3d4 | 0xa1b2_3c4d => true,
        0xd4c3_b2a1 | 0x4d3c_b2a1 => false,
        m => panic!("not a pcap file (magic {m:#x})"),
    };
    let u32_at = |off: usize| -> u32 {
        let b: [u8; 4] = data[off..off + 4].try_into().expect("4 bytes");
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    assert_eq!(u32_at(20), 1, "Ethernet link type");
    let mut frames = Vec::new();
    let mut off = 24;
    while off < data.len() {
        assert!(off + 16 <= data.len(), "truncated record header at {off}");
        let caplen = u32_at(off + 8) as usize;
        let origlen = u32_at(off + 12) as usize;
        assert_eq!(caplen, origlen, "whole frames captured");
        let start = off + 16;
        assert!(start + caplen <= data.len(), "truncated record at {off}");
        frames.push(data[start..start + caplen].to_vec());
        off = start + caplen;
    }
    frames
}

#[test]
fn pcap_of_many_flows_is_split_three_to_one_with_valid_frames() {
    let pid = std::process::id();
    let dir = TempDir(std::env::temp_dir().join(format!("udplb-pcap-{pid}")));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let input = dir.0.join("in.pcap");
    let output = dir.0.join("out.pcap");

    // Every flow once, then every flow again: the second round must follow the first.
    let mut frames = Vec::new();
    for round in 0..ROUNDS {
        for i in 0..FLOWS {
            let payload = [i.to_be_bytes(), round.to_be_bytes()].concat();
            frames.push(udp_frame(client(i), VIP, 64, &[], PCAP_PORT_MAC, &payload));
        }
    }
    write_pcap(&input, &frames);

    let prefix = format!("udplb-pcap-{pid}");
    let vdev = format!(
        "net_pcap0,rx_pcap={},tx_pcap={}",
        input.display(),
        output.display()
    );
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
        "--vdev",
        &vdev,
    ]
    .map(str::to_owned)
    .to_vec();
    let eal = Eal::init(&args).expect("rte_eal_init (run as root)");
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));

    let pool = Mempool::new(
        "pcapgold",
        4095,
        0,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .expect("mempool");
    let mut port = PortBuilder::by_name("net_pcap0")
        .expect("net_pcap0 probed")
        .mempool(&pool)
        .build()
        .expect("pcap port");
    port.start().expect("start the pcap port");
    let port_mac = MacAddr(port.mac_addr().expect("port MAC"));
    assert_eq!(
        port_mac, PCAP_PORT_MAC,
        "the input frames are addressed to net_pcap's default MAC"
    );

    let objects = config::load_str("pcap_golden.yaml", MANIFESTS).expect("manifests load");
    let compiled = config::compile(&objects, &config::CompileParams::default());
    let tables =
        Arc::new(Tables::build(&compiled.forwarding, &DataplaneParams::default()).expect("tables"));
    let net = |a: [u8; 4], len| IpNet::new(IpAddr::from(a), len).expect("prefix");
    let snat_ports = PortRange {
        first: 1024,
        last: 65535,
    };
    let network = Arc::new(
        Network::new(
            vec![PortConfig {
                mac: port_mac,
                addresses: vec![net([198, 18, 0, 254], 24), net([198, 18, 1, 254], 24)],
                checksum: ChecksumCaps::empty(),
                unfinished_rx_checksums: false,
                mtu: pipelines::net::DEFAULT_MTU,
            }],
            vec![StaticRoute {
                prefix: net([198, 19, 0, 0], 16),
                next_hop: IpAddr::from([198, 18, 0, 1]),
                port: 0,
            }],
            SnatConfig {
                ipv4: Some(SNAT.into()),
                ipv6: None,
                ports: snat_ports,
            },
        )
        .expect("network"),
    );
    let neighbors = Arc::new(Neighbors::new([
        (IpAddr::from(HEAVY.0), HEAVY.1),
        (IpAddr::from(LIGHT.0), LIGHT.1),
    ]));

    let stop = Arc::new(AtomicBool::new(false));
    let report = Arc::new(Mutex::new(WorkerReport::default()));
    let (sp_tx, sp_rx) = crossbeam_channel::bounded(64);
    let (_tables_tx, tables_rx) = crossbeam_channel::unbounded();
    let (_nb_tx, nb_rx) = crossbeam_channel::unbounded();
    let (_inject_tx, inject_rx) = crossbeam_channel::bounded(4);
    let setup = WorkerSetup {
        fast_path: FastPath::new(FastPathParams {
            flow_capacity: 4 * FLOWS,
            ..FastPathParams::new(0, 1, snat_ports)
        })
        .expect("pipeline worker"),
        rx: vec![port.rx_queue(QueueId(0)).expect("rx queue")],
        tx: vec![port.tx_queue(QueueId(0)).expect("tx queue")],
        network,
        tables,
        tables_rx,
        neighbors,
        neighbors_rx: nb_rx,
        slowpath: sp_tx,
        slowpath_counters: Arc::new(SlowPathCounters::default()),
        report: Arc::clone(&report),
        inject_rx,
        stop: Arc::clone(&stop),
        idle_backoff: Duration::from_micros(100),
        epoch: Instant::now(),
    };
    let lcore = *eal.worker_lcores().first().expect("worker lcore 1");
    let job = eal
        .launch(lcore, move || worker::run(setup))
        .expect("launch the worker");

    // Run until the worker reports the whole input seen (bounded).
    let total = u64::from(FLOWS * ROUNDS);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if report.lock().expect("report").counters.rx_packets >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    job.wait().expect("the worker exits");
    let r = std::mem::take(&mut *report.lock().expect("report"));
    assert_eq!(r.counters.rx_packets, total, "the whole input was read");
    assert_eq!(r.counters.tx_packets, total, "{r:?}");
    assert_eq!(r.counters.flows_created, u64::from(FLOWS));
    assert_eq!(r.counters.drops_total(), 0);
    assert_eq!(r.tx_refused, 0);
    assert!(
        sp_rx.try_iter().next().is_none(),
        "nothing for the slow path"
    );
    // Stopping the port closes the output file.
    port.stop().expect("stop the pcap port");
    drop(port);
    assert_eq!(pool.in_use(), 0, "every mbuf returned to the pool");

    let out = read_pcap(&output);
    assert_eq!(out.len(), frames.len(), "one output frame per input frame");
    let macs = BTreeMap::from([
        (SocketAddr::from((HEAVY.0, 5353)), HEAVY.1),
        (SocketAddr::from((LIGHT.0, 5353)), LIGHT.1),
    ]);
    // Flow index → (backend, SNAT port) of its first datagram.
    let mut pinned: BTreeMap<u32, (SocketAddr, u16)> = BTreeMap::new();
    let mut per_backend: BTreeMap<SocketAddr, (u64, u64)> = BTreeMap::new();
    for (n, frame) in out.iter().enumerate() {
        let d = decode_verified(frame).unwrap_or_else(|e| panic!("output frame {n}: {e}"));
        let want_mac = *macs
            .get(&d.dst)
            .unwrap_or_else(|| panic!("frame {n} to {}, not a backend", d.dst));
        assert_eq!(d.dst_mac, want_mac, "frame {n}: the backend's static MAC");
        assert_eq!(d.src_mac, port_mac, "frame {n}: the port's MAC");
        assert_eq!(d.src.ip(), IpAddr::from(SNAT), "frame {n}: SNAT address");
        assert_eq!(d.ttl, 63, "frame {n}: TTL decremented");
        let (flow, _round) = d.payload.split_at(4);
        let flow = u32::from_be_bytes(flow.try_into().expect("payload"));
        let counts = per_backend.entry(d.dst).or_default();
        counts.1 += 1;
        match pinned.get(&flow) {
            Some(&first) => assert_eq!(
                first,
                (d.dst, d.src.port()),
                "flow {flow}: same backend and SNAT port every time"
            ),
            None => {
                pinned.insert(flow, (d.dst, d.src.port()));
                counts.0 += 1;
            }
        }
    }
    assert_eq!(pinned.len(), FLOWS as usize, "every flow came out");
    let heavy_flows = per_backend
        .get(&SocketAddr::from((HEAVY.0, 5353)))
        .map_or(0, |c| c.0);
    let share = heavy_flows as f64 / f64::from(FLOWS);
    assert!(
        (share - 0.75).abs() <= 0.05,
        "weight 3 of 4 should take 75 % ± 5 of the flows, took {:.1} %",
        share * 100.0
    );

    let summary = serde_json::json!({
        "flows": FLOWS,
        "packets": out.len(),
        "snat_address": IpAddr::from(SNAT).to_string(),
        "source_mac": port_mac.to_string(),
        "backends": per_backend
            .iter()
            .map(|(addr, (flows, packets))| {
                (addr.to_string(), serde_json::json!({
                    "flows": flows,
                    "packets": packets,
                    "mac": macs[addr].to_string(),
                }))
            })
            .collect::<serde_json::Map<_, _>>(),
    });
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("UDPLB_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&summary).expect("json") + "\n";
        std::fs::write(&golden, text).expect("write the golden summary");
    }
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (UDPLB_BLESS=1 creates it)", golden.display())),
    )
    .expect("golden summary is JSON");
    assert_eq!(
        summary,
        want,
        "output summary differs from {GOLDEN}:\n{}",
        serde_json::to_string_pretty(&summary).expect("json")
    );
}

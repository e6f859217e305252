//! Throughput of the real worker loop (`appliance::worker::run`) on one core, with real
//! packet contents.
//!
//! Lcore 1 runs the worker between the two rings of a `rte_eth_from_rings` port (its RX
//! ring and its TX ring). The main lcore is the feeder: it takes what the worker sent,
//! overwrites each mbuf with the next prepared client datagram (many flows, 64-byte
//! frames on the wire, valid checksums, to a full-NAT VIP with two backends) and queues
//! it on the worker's RX ring again. No mbuf is allocated or freed in the steady state,
//! and the feeder's copying runs on the other core.
//!
//! To show the harness is not the limit, the same feeder first drives a bare I/O loop
//! (`rx_burst` → `tx_burst`, no processing) on lcore 1: `harness_io_mpps`. Then the
//! worker: `udplb_worker_mpps`. Both count packets received on the worker's port per
//! second (`rte_eth_stats`), after a warm-up that creates every flow.
//!
//! ```text
//! cargo run --release -p appliance --example worker_throughput -- [--seconds 3] [--flows 10000]
//! ```
//!
//! Needs root (DPDK); uses `--no-huge -m 512`, lcores 0 and 1.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use appliance::dpdk::{ring_port_pair, Eal, Mbuf, MbufBurst, Mempool, Port, QueueId, SocketId};
use appliance::slowpath::SlowPathCounters;
use appliance::worker::{self, WorkerReport, WorkerSetup};
use pipelines::neighbor::Neighbors;
use pipelines::net::{ChecksumCaps, IpNet, MacAddr, Network, PortConfig, PortRange, SnatConfig};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::{FastPath, FastPathParams};

/// Slots of each ring, and mbufs in circulation (the worker's RX ring starts full): deep
/// enough that a feeder briefly descheduled on a shared machine does not starve the worker.
const RING: u16 = 4096;
const WARM_UP: Duration = Duration::from_millis(500);
/// Full NAT gives each flow one SNAT port (1024–65535 on one address): more flows would
/// be dropped, and every drop takes an mbuf out of circulation.
const MAX_FLOWS: u32 = 60_000;

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
  rules: [{backendRefs: [{name: dns, port: 53}]}]
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
endpoints: [{addresses: [198.18.1.1, 198.18.1.2]}]
";

struct Options {
    seconds: f64,
    flows: u32,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 3.0,
        flows: 10_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().ok_or(format!("{a} needs a value"))?;
        match a.as_str() {
            "--seconds" => {
                o.seconds = value
                    .parse()
                    .ok()
                    .filter(|s: &f64| (0.1..=20.0).contains(s))
                    .ok_or("--seconds: a number from 0.1 to 20")?;
            }
            "--flows" => {
                o.flows = value
                    .parse()
                    .ok()
                    .filter(|f| (1..=MAX_FLOWS).contains(f))
                    .ok_or(format!("--flows: 1 to {MAX_FLOWS}"))?;
            }
            _ => return Err(format!("unknown argument {a} (--seconds S, --flows N)")),
        }
    }
    Ok(o)
}

/// The worker port's MAC as the fast path knows it: the frames are addressed to it.
const PORT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

/// 64-byte frames on the wire (60 without FCS): client `i` → VIP 198.18.2.1:53.
fn frames(flows: u32) -> Vec<Vec<u8>> {
    (0..flows)
        .map(|i| {
            let [_, a, b, c] = i.to_be_bytes();
            let client = SocketAddr::from(([198, 19, b, c], 1024 + u16::from(a)));
            pipelines::testkit::udp_frame(
                client,
                SocketAddr::from(([198, 18, 2, 1], 53)),
                64,
                &[],
                PORT_MAC,
                &[0x5a; 18],
            )
        })
        .collect()
}

/// What runs on lcore 1 for one measurement.
enum Loop {
    /// `rx_burst` → `tx_burst`, retrying what the ring refused: the harness's ceiling.
    Io,
    /// The appliance's worker.
    Worker(Box<WorkerSetup>),
}

/// Keeps the worker's RX ring full until `until`: returns what the worker sent, each mbuf
/// rewritten with the next prepared frame.
struct Feeder {
    frames: Vec<Vec<u8>>,
    next: usize,
    burst: MbufBurst,
    mismatched: u64,
}

impl Feeder {
    fn run(&mut self, wire: &Port, until: Instant) {
        let mut rx = wire.rx_queue(QueueId(0)).expect("wire rx queue");
        let mut tx = wire.tx_queue(QueueId(0)).expect("wire tx queue");
        let mut rounds = 0u32;
        loop {
            rounds = rounds.wrapping_add(1);
            if rounds.is_multiple_of(1024) && Instant::now() >= until {
                return;
            }
            let before = self.burst.len();
            if rx.rx_burst(&mut self.burst) == 0 && before == 0 {
                continue;
            }
            for m in &mut self.burst.as_mut_slice()[before..] {
                let frame = &self.frames[self.next];
                self.next = (self.next + 1) % self.frames.len();
                let data = m.data_mut();
                if data.len() == frame.len() {
                    data.copy_from_slice(frame);
                } else {
                    self.mismatched += 1;
                }
            }
            tx.tx_burst(&mut self.burst);
        }
    }
}

/// Runs `work` on lcore 1 for `seconds` after the warm-up; returns received packets/s.
fn measure(
    eal: Eal,
    port: &Port,
    wire: &Port,
    feeder: &mut Feeder,
    work: Loop,
    seconds: f64,
) -> (f64, Option<WorkerReport>) {
    let stop = Arc::new(AtomicBool::new(false));
    let lcore = *eal
        .worker_lcores()
        .first()
        .expect("lcore 1 is a worker lcore");
    let job = match work {
        Loop::Io => {
            let mut rx = port.rx_queue(QueueId(0)).expect("rx queue");
            let mut tx = port.tx_queue(QueueId(0)).expect("tx queue");
            let stop = Arc::clone(&stop);
            eal.launch(lcore, move || {
                let mut burst = MbufBurst::new();
                while !stop.load(Ordering::Relaxed) {
                    rx.rx_burst(&mut burst);
                    tx.tx_burst(&mut burst);
                }
                burst.free_all();
                None
            })
        }
        Loop::Worker(mut setup) => {
            setup.stop = Arc::clone(&stop);
            let report = Arc::clone(&setup.report);
            eal.launch(lcore, move || {
                worker::run(*setup);
                let r = std::mem::take(&mut *report.lock().unwrap_or_else(|e| e.into_inner()));
                Some(r)
            })
        }
    }
    .expect("launch on lcore 1");
    let start = Instant::now();
    feeder.run(wire, start + WARM_UP);
    let first = port.stats().expect("stats").ipackets;
    let t0 = Instant::now();
    feeder.run(wire, t0 + Duration::from_secs_f64(seconds));
    let last = port.stats().expect("stats").ipackets;
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let report = job.wait().expect("lcore 1 job");
    #[allow(clippy::cast_precision_loss)]
    let pps = (last - first) as f64 / elapsed;
    (pps, report)
}

fn main() -> ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("worker_throughput: {e}");
            return ExitCode::from(2);
        }
    };
    let prefix = format!("udplb-bench-{}", std::process::id());
    let args: Vec<String> = [
        "-l",
        "0,1",
        "--no-huge",
        "-m",
        "512",
        "--no-shconf",
        "--no-pci",
        "--file-prefix",
        &prefix,
        "--log-level=lib.eal:error",
    ]
    .map(str::to_owned)
    .to_vec();
    let eal = match Eal::init(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("worker_throughput: rte_eal_init: {e} (run as root)");
            return ExitCode::FAILURE;
        }
    };
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let pool = Mempool::new(
        "bench",
        8191,
        256,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .expect("mempool");
    let (a, b) = ring_port_pair(
        "net_ring_bench_a",
        "net_ring_bench_b",
        1,
        u32::from(RING),
        SocketId::ANY,
    )
    .expect("ring port pair");
    let mut port = a.mempool(&pool).build().expect("worker port");
    let mut wire = b.mempool(&pool).build().expect("feeder port");
    port.start().expect("start");
    wire.start().expect("start");

    let objects = config::load_str("bench.yaml", MANIFESTS).expect("manifests");
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
                mac: PORT_MAC,
                // Clients on-link, so replies would need no router; backends on-link.
                addresses: vec![net([198, 18, 1, 254], 24), net([198, 18, 0, 254], 15)],
                checksum: ChecksumCaps::empty(),
                unfinished_rx_checksums: false,
                mtu: pipelines::net::DEFAULT_MTU,
            }],
            vec![],
            SnatConfig {
                ipv4: Some([198, 18, 1, 253].into()),
                ipv6: None,
                ports: snat_ports,
            },
        )
        .expect("network"),
    );
    let neighbors = Arc::new(Neighbors::new([
        (
            IpAddr::from([198, 18, 1, 1]),
            MacAddr([0x0a, 0, 0, 0, 1, 1]),
        ),
        (
            IpAddr::from([198, 18, 1, 2]),
            MacAddr([0x0a, 0, 0, 0, 1, 2]),
        ),
    ]));

    // The worker's RX ring starts full of fresh datagrams.
    let mut feeder = Feeder {
        frames: frames(o.flows),
        next: 0,
        burst: MbufBurst::new(),
        mismatched: 0,
    };
    {
        let mut tx = wire.tx_queue(QueueId(0)).expect("wire tx");
        let mut burst = MbufBurst::new();
        for _ in 0..RING {
            let frame = &feeder.frames[feeder.next];
            feeder.next = (feeder.next + 1) % feeder.frames.len();
            let m = Mbuf::from_bytes(&pool, frame).expect("mbuf");
            if let Err(m) = burst.push(m) {
                tx.tx_burst(&mut burst);
                burst.free_all();
                burst.push(m).ok();
            }
        }
        tx.tx_burst(&mut burst);
        burst.free_all();
    }

    let (io_pps, _) = measure(eal, &port, &wire, &mut feeder, Loop::Io, o.seconds);

    let (_tables_tx, tables_rx) = crossbeam_channel::unbounded();
    let (_nb_tx, nb_rx) = crossbeam_channel::unbounded();
    let (_inject_tx, inject_rx) = crossbeam_channel::bounded(4);
    let (sp_tx, _sp_rx) = crossbeam_channel::bounded(1024);
    let setup = WorkerSetup {
        fast_path: FastPath::new(FastPathParams {
            flow_capacity: o.flows.saturating_mul(2).max(1024),
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
        report: Arc::new(Mutex::new(WorkerReport::default())),
        inject_rx,
        stop: Arc::new(AtomicBool::new(false)),
        idle_backoff: Duration::ZERO,
        epoch: Instant::now(),
    };
    let (worker_pps, report) = measure(
        eal,
        &port,
        &wire,
        &mut feeder,
        Loop::Worker(Box::new(setup)),
        o.seconds,
    );
    let r = report.unwrap_or_default();
    let c = &r.counters;
    eprintln!(
        "worker report: rx {} tx {} drops {} flows_created {} tx_refused {} feeder_mismatched {}",
        c.rx_packets,
        c.tx_packets,
        c.drops_total(),
        c.flows_created,
        r.tx_refused,
        feeder.mismatched
    );
    let honest = c.drops_total() == 0
        && r.tx_refused == 0
        && c.tx_packets == c.rx_packets
        && c.flows_created == u64::from(o.flows)
        && feeder.mismatched == 0;

    feeder.burst.free_all();
    port.stop().ok();
    wire.stop().ok();
    drop((port, wire));
    let leaked = pool.in_use();
    println!(
        "udplb_worker_mpps={:.3} harness_io_mpps={:.3} flows={} seconds={}",
        worker_pps / 1e6,
        io_pps / 1e6,
        o.flows,
        o.seconds
    );
    if !honest || leaked != 0 {
        eprintln!("worker_throughput: not every datagram was forwarded, or {leaked} mbufs leaked");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

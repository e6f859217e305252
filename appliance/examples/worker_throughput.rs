//! Throughput of the real worker loop (`appliance::worker`, on `DpdkIo`) on one core, with
//! real packet contents.
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
//! `--rounds R` counts instructions instead: no lcore is launched; the feeder and R worker
//! rounds (`Worker::poll`, on a clock driven 2 µs per round) take turns on the main
//! thread, for callgrind: `valgrind --tool=callgrind --toggle-collect='*Worker*::poll'
//! …/worker_throughput --rounds 20000`, then instructions per packet = the collected total
//! / the frames received (printed).
//!
//! Needs root (DPDK); uses `--no-huge -m 512`, lcores 0 and 1. The EAL, ring ports and
//! manifests come from the tests' shared fixtures (`tests/support`).

// The tests' fixtures, shared with this example.
#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance::dpdk::{Eal, Mbuf, MbufBurst, Mempool, Port, QueueId, RxQueue, SocketId, TxQueue};
use appliance::worker::{DpdkIo, WorkerReport, WorkerSetup};
use pipelines::neighbor::Neighbors;
use pipelines::net::MacAddr;
use support::{net4, service};

/// Slots of each ring, and mbufs in circulation (the worker's RX ring starts full): deep
/// enough that a feeder briefly descheduled on a shared machine does not starve the worker.
const RING: u16 = 4096;
const WARM_UP: Duration = Duration::from_millis(500);
/// Full NAT gives each flow one SNAT port (1024–65535 on one address): more flows would
/// be dropped, and every drop takes an mbuf out of circulation.
const MAX_FLOWS: u32 = 60_000;

/// Gateway 198.18.2.1:53, full NAT to two backends.
const LISTENERS: &[support::Listener] = &[support::listener(
    "dns",
    53,
    &[service("dns", &["198.18.1.1", "198.18.1.2"], 5353)],
)];

struct Options {
    seconds: f64,
    flows: u32,
    /// Instruction-count mode: this many worker rounds, on the main thread only.
    rounds: Option<u32>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 3.0,
        flows: 10_000,
        rounds: None,
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
            "--rounds" => {
                o.rounds = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|r| (1..=10_000_000).contains(r))
                        .ok_or("--rounds: 1 to 10000000")?,
                );
            }
            _ => {
                return Err(format!(
                    "unknown argument {a} (--seconds S, --flows N, --rounds R)"
                ))
            }
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
    /// The appliance's worker (its stop flag is the measurement's).
    Worker(Box<WorkerSetup<DpdkIo>>),
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
            self.step(&mut rx, &mut tx);
        }
    }

    /// Takes what the worker sent, rewrites it and queues it on the worker's RX ring.
    fn step(&mut self, rx: &mut RxQueue, tx: &mut TxQueue) {
        let before = self.burst.len();
        if rx.rx_burst(&mut self.burst) == 0 && before == 0 {
            return;
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

/// Instruction-count mode (`--rounds R`): the feeder and `rounds` worker rounds
/// (`Worker::poll`) take turns on the main thread, so a profiler that runs one thread at a
/// time (callgrind: `--toggle-collect='*Worker*::poll'`) sees the loop at work; returns the
/// frames the worker received.
fn inline_rounds(
    port: &Port,
    wire: &Port,
    feeder: &mut Feeder,
    setup: WorkerSetup<DpdkIo>,
    rounds: u32,
) -> (u64, WorkerReport) {
    let report = Arc::clone(setup.report());
    let mut worker = setup.into_worker();
    let mut rx = wire.rx_queue(QueueId(0)).expect("wire rx queue");
    let mut tx = wire.tx_queue(QueueId(0)).expect("wire tx queue");
    let before = port.stats().expect("stats").ipackets;
    let mut received = 0u64;
    // A driven clock, as fast as at line rate (32 frames per 2 µs round), so the loop's
    // timed work (the 1 ms flow sweep, the 100 ms report) weighs what it does at speed,
    // not what it would under a profiler's slowed-down clock.
    let start = Instant::now();
    for round in 0..rounds {
        let clock = start + Duration::from_micros(2 * u64::from(round));
        received += worker.poll(clock) as u64;
        feeder.step(&mut rx, &mut tx);
    }
    assert_eq!(
        port.stats().expect("stats").ipackets - before,
        received,
        "the port counted what the worker received"
    );
    worker.finish();
    let r = std::mem::take(&mut *report.lock().unwrap_or_else(|e| e.into_inner()));
    (received, r)
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
    let stop = match &work {
        Loop::Io => Arc::new(AtomicBool::new(false)),
        Loop::Worker(setup) => Arc::clone(setup.stop_flag()),
    };
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
        Loop::Worker(setup) => {
            let report = Arc::clone(setup.report());
            eal.launch(lcore, move || {
                setup.run();
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
    let args = support::dpdk::eal_args("bench", "0,1", 512, &[]);
    let eal = match support::dpdk::init_eal(&args) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("worker_throughput: rte_eal_init: {e} (run as root)");
            return ExitCode::FAILURE;
        }
    };
    let pool = Mempool::new(
        "bench",
        8191,
        256,
        Mempool::DEFAULT_DATA_ROOM,
        SocketId::ANY,
    )
    .expect("mempool");
    let (mut port, mut wire) = support::dpdk::ring_pair("bench", &pool, 1, u32::from(RING));

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

    let io_pps = if o.rounds.is_some() {
        0.0
    } else {
        measure(eal, &port, &wire, &mut feeder, Loop::Io, o.seconds).0
    };

    // Clients on-link, so replies would need no router; backends on-link.
    let network = support::one_port_network(
        PORT_MAC,
        vec![net4([198, 18, 1, 254], 24), net4([198, 18, 0, 254], 15)],
        vec![],
        [198, 18, 1, 253],
    );
    let neighbors = Neighbors::new([
        (
            IpAddr::from([198, 18, 1, 1]),
            MacAddr([0x0a, 0, 0, 0, 1, 1]),
        ),
        (
            IpAddr::from([198, 18, 1, 2]),
            MacAddr([0x0a, 0, 0, 0, 1, 2]),
        ),
    ]);
    let (sp_tx, _sp_rx) = crossbeam_channel::bounded(1024);
    let setup = support::dpdk::solo_worker(
        &port,
        o.flows.saturating_mul(2).max(1024),
        network,
        support::tables("198.18.2.1", LISTENERS),
        neighbors,
        sp_tx,
    )
    .build();
    let (worker_pps, r) = match o.rounds {
        Some(rounds) => {
            let (received, r) = inline_rounds(&port, &wire, &mut feeder, setup, rounds);
            eprintln!("inline rounds: {rounds}, frames received: {received}");
            (0.0, r)
        }
        None => {
            let (pps, report) = measure(
                eal,
                &port,
                &wire,
                &mut feeder,
                Loop::Worker(Box::new(setup)),
                o.seconds,
            );
            (pps, report.unwrap_or_default())
        }
    };
    let c = &r.counters;
    eprintln!(
        "worker report: rx {} tx {} drops {} flows_created {} tx_refused {} feeder_mismatched {}",
        c.rx_packets,
        c.tx_packets,
        c.drops_total(),
        c.flows_created,
        r.drops.tx_refused,
        feeder.mismatched
    );
    // Inline rounds may stop before every flow was seen.
    let flows_ok = o.rounds.is_some() || c.flows_created == u64::from(o.flows);
    let honest = c.drops_total() == 0
        && r.drops.total() == 0
        && c.tx_packets == c.rx_packets
        && flows_ok
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

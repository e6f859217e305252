//! DPDK fixtures (root only: the EAL needs it): the EAL once per test binary, without
//! hugepages, PCI or a shared configuration, with a `--file-prefix` unique to the process
//! and its runtime directory removed at once; mempools with unique names; started ring
//! port pairs; sending and receiving frames.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use std::sync::Arc;

use appliance::dpdk::{
    ring_port_pair, DpdkError, Eal, Mbuf, MbufBurst, Mempool, Port, QueueId, SocketId,
};
use appliance::slowpath::{SlowPathCounters, SlowPathMsg};
use appliance::worker::{DpdkIo, WorkerBuilder, WorkerSetup};
use crossbeam_channel::Sender;
use pipelines::neighbor::Neighbors;
use pipelines::net::Network;
use pipelines::tables::Tables;

/// The EAL arguments of a test process: `--lcores LCORES`, no hugepages (`-m MEMORY_MB`),
/// no PCI, no shared configuration, `--file-prefix udplb-TAG-PID`, quiet EAL logs, and
/// `extra` (e.g. `--vdev` arguments).
pub fn eal_args(tag: &str, lcores: &str, memory_mb: u32, extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--lcores",
        lcores,
        "--no-huge",
        "-m",
        &memory_mb.to_string(),
        "--no-shconf",
        "--no-pci",
        "--log-level=lib.eal:error",
        "--file-prefix",
        &format!("udplb-{tag}-{}", std::process::id()),
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend_from_slice(extra);
    args
}

/// Initialises the EAL with `args` and removes the runtime directory it created
/// (`/var/run/dpdk/<file-prefix>` as root): the prefix is this process's alone, and with
/// `--no-shconf` nothing in it is needed after init.
///
/// # Errors
/// [`Eal::init`]'s (not root, EAL already initialised or cleaned up, bad arguments).
pub fn init_eal(args: &[String]) -> Result<Eal, DpdkError> {
    let eal = Eal::init(args)?;
    if let Some(dir) = eal.runtime_dir() {
        match std::fs::remove_dir_all(dir.path()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cannot remove {}: {e}", dir.path().display()),
        }
    }
    Ok(eal)
}

/// The test binary's EAL, initialised by the first call with [`eal_args`]`(tag, lcores,
/// 256, extra)`; later calls return it whatever they pass (one EAL per process: DPDK cannot
/// start twice).
pub fn eal(tag: &str, lcores: &str, extra: &[String]) -> Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    *EAL.get_or_init(|| {
        init_eal(&eal_args(tag, lcores, 256, extra)).expect("rte_eal_init (needs root)")
    })
}

/// A mempool of `mbufs` mbufs named `tag` plus a number unique in the process.
pub fn pool(tag: &str, mbufs: u32) -> Mempool {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("{tag}{}", NEXT.fetch_add(1, Ordering::Relaxed));
    Mempool::new(&name, mbufs, 0, Mempool::DEFAULT_DATA_ROOM, SocketId::ANY).expect("mempool")
}

/// Two started ring ports joined back to back (`net_ring_TAG_a`, `net_ring_TAG_b`), with
/// `queues` RX and TX queues each of `ring_size` slots, RX filled from `pool`.
pub fn ring_pair(tag: &str, pool: &Mempool, queues: u16, ring_size: u32) -> (Port, Port) {
    let (a, b) = ring_port_pair(
        &format!("net_ring_{tag}_a"),
        &format!("net_ring_{tag}_b"),
        queues,
        ring_size,
        SocketId::ANY,
    )
    .expect("ring port pair");
    let build = |p: appliance::dpdk::PortBuilder| {
        let mut port = p
            .mempool(pool)
            .rx_queues(queues)
            .tx_queues(queues)
            .build()
            .expect("ring port");
        port.start().expect("start the ring port");
        port
    };
    (build(a), build(b))
}

/// Sends `frame` on TX queue `queue` of `port`, asserting the ring took it.
pub fn send(pool: &Mempool, port: &Port, queue: u16, frame: &[u8]) {
    let mut tx = port.tx_queue(QueueId(queue)).expect("tx queue");
    let mut burst = MbufBurst::new();
    burst
        .push(Mbuf::from_bytes(pool, frame).expect("mbuf"))
        .expect("burst room");
    assert_eq!(tx.tx_burst(&mut burst), 1, "the ring took the frame");
}

/// The next frame on any of the first `queues` RX queues of `port`, asserting it came
/// alone (bounded wait: 5 s).
pub fn receive(port: &Port, queues: u16) -> Vec<u8> {
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
    panic!("no frame on {} within 5 s", port.name());
}

/// The next `n` frames on RX queue 0 of `port`, in order, asserting no more came in the
/// same bursts (bounded wait: 5 s).
pub fn receive_n(port: &Port, n: usize) -> Vec<Vec<u8>> {
    let mut rx = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut burst = MbufBurst::new();
    let mut out = Vec::new();
    let start = Instant::now();
    while out.len() < n && start.elapsed() < Duration::from_secs(5) {
        if rx.rx_burst(&mut burst) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        out.extend(burst.drain().map(|m| m.data().to_vec()));
    }
    assert_eq!(out.len(), n, "frames on {}", port.name());
    out
}

/// True when none of the first `queues` RX queues of `port` holds a frame now.
pub fn quiet(port: &Port, queues: u16) -> bool {
    let mut burst = MbufBurst::new();
    (0..queues).all(|q| {
        port.rx_queue(QueueId(q))
            .expect("rx queue")
            .rx_burst(&mut burst)
            == 0
    })
}

/// A worker alone on queue 0 of `port` with `flow_capacity` flows, its neighbors known
/// from the start, handing the slow path's share to `slowpath`.
pub fn solo_worker(
    port: &Port,
    flow_capacity: u32,
    network: Network,
    tables: Arc<Tables>,
    neighbors: Neighbors,
    slowpath: Sender<SlowPathMsg<Mbuf>>,
) -> WorkerBuilder<DpdkIo> {
    let io = DpdkIo::claim(std::slice::from_ref(port), QueueId(0)).expect("queues");
    WorkerSetup::builder(
        super::fast_path(0, 1, flow_capacity),
        io,
        Arc::new(network),
        tables,
    )
    .neighbors(Arc::new(neighbors))
    .slow_path(slowpath, Arc::new(SlowPathCounters::default()))
}

//! The poll-mode worker: one per lcore, `rx_burst` → `pipelines` → `tx_burst`.
//!
//! Each worker owns one RX and one TX queue on every port, its `pipelines::FastPath` (flow
//! table, SNAT partition, counters) and reusable bursts: nothing is allocated and nothing
//! is locked per packet. New tables and neighbor snapshots arrive as `Arc`s over channels
//! and are picked up between bursts. Counters are copied out every [`REPORT_INTERVAL`]
//! with a `try_lock`, so the management thread never stalls a worker.
//!
//! Modules, one concern each:
//! - [`io`](PacketIo): the trait the loop polls through ([`PacketIo`], [`PacketBuf`],
//!   [`PacketBurst`]);
//! - `dpdk_io`: [`DpdkIo`], DPDK queues and mbufs (production);
//! - `memory_io`: [`MemoryIo`], bounded in-memory queues and [`Wire`]s (tests: the same
//!   loop under `cargo test`, as any user, without EAL);
//! - `poll`: the loop itself, [`Worker`], generic over the I/O;
//! - `handoff`: [`Handoff`], full-NAT replies passed to the worker owning their flow;
//! - `heartbeat`: [`Heartbeat`], the time of the last round and the tables generation,
//!   which `/healthz` and the announcement gate check;
//! - `hold`: datagrams held for neighbor resolution ([`HOLD_TIME`], [`HOLD_CAPACITY`]);
//! - `fragments`: fragments held in the fast path's hold slots until their first
//!   fragment is decided, and IPv4 datagrams split for a smaller egress MTU;
//! - `idle`: [`IdleBackoff`], the adaptive sleep of a worker that receives nothing;
//! - `report`: [`WorkerReport`] and the loop's tallies ([`LoopDrops`], [`LoopCounters`]).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use appliance::worker::{MemoryIo, MemoryPool, WorkerSetup};
//! # fn f(fast_path: pipelines::FastPath, network: Arc<pipelines::net::Network>,
//! #      tables: Arc<pipelines::tables::Tables>) {
//! let pool = MemoryPool::new();
//! let (io, wires) = MemoryIo::new(2, 64, &pool);
//! let setup = WorkerSetup::builder(fast_path, io, network, tables).build();
//! let report = Arc::clone(setup.report());
//! let mut worker = setup.into_worker();
//! wires[0].send(b"...");
//! worker.poll(std::time::Instant::now()); // one round; or setup.launch(eal, lcore) / spawn()
//! # }
//! ```

mod dpdk_io;
mod fragments;
mod handoff;
mod heartbeat;
mod hold;
mod idle;
mod io;
mod memory_io;
mod poll;
mod report;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use pipelines::health::Health;
use pipelines::neighbor::Neighbors;
use pipelines::net::Network;
use pipelines::tables::Tables;
use pipelines::FastPath;

pub use dpdk_io::DpdkIo;
pub use handoff::Handoff;
pub use heartbeat::Heartbeat;
pub use hold::{HOLD_CAPACITY, HOLD_TIME};
pub use idle::{IdleBackoff, DEEP_CAP, DEEP_IDLE, FIRST_SLEEP, SPIN};
pub use io::{OffloadRefused, PacketBuf, PacketBurst, PacketIo, BURST};
pub use memory_io::{MemoryBuf, MemoryBurst, MemoryIo, MemoryPool, Wire};
pub use poll::{Worker, MAINTAIN_INTERVAL, REPORT_INTERVAL};
pub use report::{LoopCounters, LoopDrops, ReportSlot, WorkerReport};

use crate::dpdk::{self, Eal, LcoreId, LcoreJob};
use crate::slowpath::{SlowPathCounters, SlowPathMsg};

/// Everything a worker runs with; moved onto its lcore (or thread). Build it with
/// [`WorkerSetup::builder`].
pub struct WorkerSetup<Io: PacketIo> {
    /// The fast path (flow table, SNAT partition, counters).
    fast_path: FastPath,
    /// The ports.
    io: Io,
    /// The static network (ports, routes, SNAT).
    network: Arc<Network>,
    /// Current tables; newer ones arrive on `tables_rx`.
    tables: Arc<Tables>,
    tables_rx: Receiver<Arc<Tables>>,
    /// Current neighbors; newer snapshots arrive on `neighbors_rx`.
    neighbors: Arc<Neighbors>,
    neighbors_rx: Receiver<Arc<Neighbors>>,
    /// Newer backend health snapshots (`crate::backend_health`).
    health_rx: Receiver<Arc<Health>>,
    /// The slow path's input, and the counters its overflow goes to.
    slowpath: Sender<SlowPathMsg<Io::Buf>>,
    slowpath_counters: Arc<SlowPathCounters>,
    /// Where counters are copied out.
    report: ReportSlot,
    /// Frames the slow path sends: `(port, frame)`, transmitted on this worker's queues.
    inject_rx: Receiver<(u16, Io::Buf)>,
    /// Other workers (full NAT).
    handoff: Handoff<Io::Buf>,
    /// Set to stop the worker.
    stop: Arc<AtomicBool>,
    /// Refreshed every round: proof that the worker polls.
    heartbeat: Arc<Heartbeat>,
    /// Longest sleep of the adaptive idle back-off (0: pure polling).
    idle_backoff: Duration,
    /// Most frames taken from a port per receive (1 to [`BURST`]).
    burst: usize,
    /// Monotonic origin of the fast path's timestamps (shared by all workers).
    epoch: Instant,
}

/// Builds a [`WorkerSetup`]: the fast path, ports, network and tables are required; the
/// rest has defaults that make a worker alone (see each method).
pub struct WorkerBuilder<Io: PacketIo> {
    setup: WorkerSetup<Io>,
}

impl<Io: PacketIo> WorkerSetup<Io> {
    /// Starts a builder for a worker running `fast_path` on the ports of `io`, in
    /// `network`, with `tables`.
    pub fn builder(
        fast_path: FastPath,
        io: Io,
        network: Arc<Network>,
        tables: Arc<Tables>,
    ) -> WorkerBuilder<Io> {
        // Without a slow path, what it would get is dropped and counted as overflow.
        let (slowpath, _) = crossbeam_channel::bounded(0);
        WorkerBuilder {
            setup: WorkerSetup {
                fast_path,
                io,
                network,
                tables,
                tables_rx: crossbeam_channel::never(),
                neighbors: Arc::new(Neighbors::new([])),
                neighbors_rx: crossbeam_channel::never(),
                health_rx: crossbeam_channel::never(),
                slowpath,
                slowpath_counters: Arc::new(SlowPathCounters::default()),
                report: ReportSlot::default(),
                inject_rx: crossbeam_channel::never(),
                handoff: Handoff::solo(),
                stop: Arc::new(AtomicBool::new(false)),
                heartbeat: Heartbeat::new(Instant::now()),
                idle_backoff: Duration::ZERO,
                burst: BURST,
                epoch: Instant::now(),
            },
        }
    }

    /// Where the worker copies its counters (the default slot unless
    /// [`WorkerBuilder::report`] gave one).
    pub fn report(&self) -> &ReportSlot {
        &self.report
    }

    /// The flag that stops [`Worker::run`].
    pub fn stop_flag(&self) -> &Arc<AtomicBool> {
        &self.stop
    }

    /// The worker's heartbeat (its own unless [`WorkerBuilder::heartbeat`] gave one).
    pub fn heartbeat(&self) -> &Arc<Heartbeat> {
        &self.heartbeat
    }

    /// The loop state, to [`Worker::run`] or step with [`Worker::poll`].
    pub fn into_worker(self) -> Worker<Io> {
        Worker::new(self)
    }

    /// Runs the worker loop on this thread until the stop flag is set.
    pub fn run(self) {
        self.into_worker().run();
    }
}

impl<Io> WorkerSetup<Io>
where
    Io: PacketIo + Send + 'static,
    Io::Burst: Send,
{
    /// Runs the worker loop on EAL worker lcore `lcore` until the stop flag is set.
    ///
    /// # Errors
    /// [`Eal::launch`]'s: `lcore` is not an enabled worker lcore, or is busy.
    pub fn launch(self, eal: &Eal, lcore: LcoreId) -> dpdk::Result<LcoreJob<()>> {
        eal.launch(lcore, move || self.run())
    }

    /// Runs the worker loop on a new thread until the stop flag is set (tests and tools;
    /// production workers run on lcores, [`WorkerSetup::launch`]).
    ///
    /// # Errors
    /// The thread could not be created.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("udplb-worker".into())
            .spawn(move || self.run())
    }
}

impl<Io: PacketIo> WorkerBuilder<Io> {
    /// Newer tables from the management thread (default: none ever come).
    pub fn table_updates(mut self, rx: Receiver<Arc<Tables>>) -> Self {
        self.setup.tables_rx = rx;
        self
    }

    /// The neighbors known at start (default: none).
    pub fn neighbors(mut self, neighbors: Arc<Neighbors>) -> Self {
        self.setup.neighbors = neighbors;
        self
    }

    /// Newer neighbor snapshots from the slow path (default: none ever come).
    pub fn neighbor_updates(mut self, rx: Receiver<Arc<Neighbors>>) -> Self {
        self.setup.neighbors_rx = rx;
        self
    }

    /// Newer backend health snapshots (default: none ever come; nothing excluded).
    pub fn health_updates(mut self, rx: Receiver<Arc<Health>>) -> Self {
        self.setup.health_rx = rx;
        self
    }

    /// The slow path's input and the counters its channel overflow goes to (default: no
    /// slow path; what it would get is dropped and counted as `slow_path_overflow`).
    pub fn slow_path(
        mut self,
        tx: Sender<SlowPathMsg<Io::Buf>>,
        counters: Arc<SlowPathCounters>,
    ) -> Self {
        self.setup.slowpath = tx;
        self.setup.slowpath_counters = counters;
        self
    }

    /// Frames the slow path sends, `(port, frame)`, to transmit on this worker's TX
    /// queues so no queue is shared (default: none).
    pub fn inject(mut self, rx: Receiver<(u16, Io::Buf)>) -> Self {
        self.setup.inject_rx = rx;
        self
    }

    /// This worker's ends of the hand-off mesh (default: [`Handoff::solo`]).
    pub fn handoff(mut self, handoff: Handoff<Io::Buf>) -> Self {
        self.setup.handoff = handoff;
        self
    }

    /// Where to copy the counters (default: a slot of its own, [`WorkerSetup::report`]).
    pub fn report(mut self, slot: ReportSlot) -> Self {
        self.setup.report = slot;
        self
    }

    /// The stop flag, shared with whoever stops the worker (default: one of its own,
    /// [`WorkerSetup::stop_flag`]).
    pub fn stop(mut self, flag: Arc<AtomicBool>) -> Self {
        self.setup.stop = flag;
        self
    }

    /// Where the worker stamps every round and the tables it adopts (default: one of
    /// its own, [`WorkerSetup::heartbeat`]).
    pub fn heartbeat(mut self, heartbeat: Arc<Heartbeat>) -> Self {
        self.setup.heartbeat = heartbeat;
        self
    }

    /// Cap of the adaptive idle back-off ([`IdleBackoff`]; default 0: pure polling, as the
    /// in-memory tests step the loop themselves).
    pub fn idle_backoff(mut self, backoff: Duration) -> Self {
        self.setup.idle_backoff = backoff;
        self
    }

    /// Most frames taken from a port per receive (`workers.burst`; default and maximum
    /// [`BURST`], at least 1).
    pub fn burst(mut self, frames: usize) -> Self {
        self.setup.burst = frames.clamp(1, BURST);
        self
    }

    /// Origin of the fast path's timestamps, shared by the workers (default: when the
    /// builder was made).
    pub fn epoch(mut self, epoch: Instant) -> Self {
        self.setup.epoch = epoch;
        self
    }

    /// The setup.
    pub fn build(self) -> WorkerSetup<Io> {
        self.setup
    }
}

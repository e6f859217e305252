//! The real worker loop on its DPDK binding (`DpdkIo`, launched on lcore 1) between two
//! pairs of ring ports: crafted datagrams go in on the "client" and "backend" wires, the
//! test reads what the worker transmitted and what it handed to the slow path, then stops
//! the worker and checks its report and that every mbuf went back to the pool. The
//! exchanges are `support::scenario`'s, which `worker_loop.rs` also runs without root on
//! in-memory queues (with more scenarios); these test the binding (mbufs, queues, lcores).
//!
//! One EAL per test binary; tests share lcore 1, so they run one at a time. Needs root
//! (DPDK EAL): `#[ignore]`d, run with `--include-ignored`.
#![allow(clippy::tests_outside_test_module)]

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use appliance::dpdk::{LcoreJob, Mbuf, Mempool, Port, QueueId};
use appliance::slowpath::{SlowPathCounters, SlowPathMsg};
use appliance::worker::{DpdkIo, ReportSlot, WorkerReport, WorkerSetup};
use crossbeam_channel::{Receiver, Sender};
use pipelines::neighbor::Neighbors;
use pipelines::net::MacAddr;
use support::scenario::{self, static_neighbors, Harness};

/// Tests share the one worker lcore: one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
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
    report: ReportSlot,
    slowpath: Receiver<SlowPathMsg<Mbuf>>,
    neighbors: Sender<Arc<Neighbors>>,
    _serial: MutexGuard<'static, ()>,
}

impl Rig {
    fn start() -> Rig {
        Rig::start_with(pipelines::net::DEFAULT_MTU)
    }

    /// A rig whose port 1 has MTU `mtu`.
    fn start_with(mtu: u16) -> Rig {
        let serial = serial();
        let eal = support::dpdk::eal("wr", "0,1", &[]);
        let pool = support::dpdk::pool("wr", 1023);
        let mut appliance = Vec::new();
        let mut wires = Vec::new();
        for p in 0..2 {
            let tag = format!("{}_{p}", pool.name());
            let (a, b) = support::dpdk::ring_pair(&tag, &pool, 1, 256);
            appliance.push(a);
            wires.push(b);
        }
        let (sp_tx, sp_rx) = crossbeam_channel::bounded(64);
        let (nb_tx, nb_rx) = crossbeam_channel::unbounded();
        let io = DpdkIo::claim(&appliance, QueueId(0)).expect("queues");
        let setup = WorkerSetup::builder(
            support::fast_path(0, 1, 1024),
            io,
            Arc::new(scenario::network(false, mtu)),
            scenario::tables(),
        )
        .neighbors(Arc::new(Neighbors::new(static_neighbors())))
        .neighbor_updates(nb_rx)
        .slow_path(sp_tx, Arc::new(SlowPathCounters::default()))
        .idle_backoff(Duration::from_micros(50))
        .build();
        let (report, stop) = (Arc::clone(setup.report()), Arc::clone(setup.stop_flag()));
        let lcore = *eal.worker_lcores().first().expect("worker lcore 1");
        let job = setup.launch(&eal, lcore).expect("launch the worker");
        Rig {
            pool,
            appliance,
            wires,
            job: Some(job),
            stop,
            report,
            slowpath: sp_rx,
            neighbors: nb_tx,
            _serial: serial,
        }
    }

    /// Stops the worker, checks the mbuf accounting and returns its final report.
    fn finish(mut self) -> WorkerReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(job) = self.job.take() {
            job.wait().expect("the worker exits");
        }
        for (p, wire) in self.wires.iter().enumerate() {
            assert!(
                support::dpdk::quiet(wire, 1),
                "unexpected frame on port {p}"
            );
        }
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

impl Harness for Rig {
    type Buf = Mbuf;

    fn send(&mut self, port: usize, frame: &[u8]) {
        support::dpdk::send(&self.pool, &self.wires[port], 0, frame);
    }

    fn receive(&mut self, port: usize) -> Vec<u8> {
        support::dpdk::receive(&self.wires[port], 1)
    }

    fn receive_n(&mut self, port: usize, n: usize) -> Vec<Vec<u8>> {
        support::dpdk::receive_n(&self.wires[port], n)
    }

    fn slow_path_msg(&mut self) -> SlowPathMsg<Mbuf> {
        self.slowpath
            .recv_timeout(Duration::from_secs(5))
            .expect("a slow-path message within 5 s")
    }

    fn publish(&mut self, neighbors: Vec<(IpAddr, MacAddr)>) {
        self.neighbors
            .send(Arc::new(Neighbors::new(neighbors)))
            .expect("worker listens for neighbors");
    }

    /// Waits (bounded) until the worker's periodic report shows `received` frames.
    fn settle(&mut self, received: u64) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.report.lock().expect("report").counters.rx_packets >= received {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
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

#[test]
#[ignore = "needs root: DPDK EAL (ring ports, worker on lcore 1)"]
fn full_nat_forward_and_reverse_through_the_worker_loop() {
    let mut rig = Rig::start();
    scenario::full_nat_exchange(&mut rig);
    scenario::full_nat_report(&rig.finish());
}

#[test]
#[ignore = "needs root: DPDK EAL (ring ports, worker on lcore 1)"]
fn preserve_client_forward_and_reverse_through_the_worker_loop() {
    let mut rig = Rig::start();
    scenario::preserve_client_exchange(&mut rig);
    scenario::preserve_client_report(&rig.finish());
}

#[test]
#[ignore = "needs root: DPDK EAL (ring ports, worker on lcore 1)"]
fn slow_path_gets_arp_and_resolves_held_datagrams() {
    let mut rig = Rig::start();
    scenario::slow_path_exchange(&mut rig);
    scenario::slow_path_report(&rig.finish());
}

#[test]
#[ignore = "needs root: DPDK EAL (ring ports, worker on lcore 1)"]
fn drops_are_counted_by_reason_and_freed() {
    let mut rig = Rig::start();
    scenario::drops_exchange(&mut rig);
    scenario::drops_report(&rig.finish());
}

#[test]
#[ignore = "needs root: DPDK EAL (ring ports, worker on lcore 1)"]
fn fragments_held_in_slots_and_split_into_new_mbufs() {
    let mut rig = Rig::start_with(scenario::FRAGMENT_MTU);
    scenario::fragments_exchange(&mut rig);
    scenario::fragments_report(&rig.finish());
}

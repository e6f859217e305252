//! The poll loop: `rx_burst` → `pipelines::FastPath::process_burst` → act on each verdict
//! → `tx_burst`, generic over the [`PacketIo`].
//!
//! One round ([`Worker::poll`]): adopt the newest tables; on a new neighbor snapshot,
//! run the held datagrams again; poll every port; take the replies other workers passed
//! here; run the fragments the fast path released from their hold slots; queue the slow
//! path's frames; flush the TX bursts; every [`MAINTAIN_INTERVAL`] sweep the flow table,
//! expire held datagrams and free timed-out fragments, and every
//! [`REPORT_INTERVAL`] copy the counters out with a `try_lock`. Every round stamps the
//! worker's [`Heartbeat`](super::Heartbeat). [`Worker::run`] repeats
//! rounds until the stop flag is set. Time is passed in, so a test drives the clock.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipelines::{Context, DropReason, HostReason, Verdict};

use super::fragments::{self, FragmentHolds};
use super::hold::{Held, HeldFrame, HOLD_NANOS};
use super::idle::{IdleBackoff, TIMER_SLACK_NS};
use super::io::{PacketBuf, PacketBurst, PacketIo, BURST};
use super::report::{LoopCounters, LoopDrops, WorkerReport};
use super::WorkerSetup;
use crate::slowpath::{IcmpError, SlowPathMsg};

/// How often a worker copies its counters out.
pub const REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// How often a worker sweeps its flow table (bounded work per sweep) and expires held
/// datagrams.
pub const MAINTAIN_INTERVAL: Duration = Duration::from_millis(1);

/// Where the frames of the burst being handled come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Received now (from a port or another worker).
    Fresh,
    /// Taken from the hold queue: `Worker::deadlines` holds their first deadlines.
    Held,
}

/// A worker's loop state around its [`WorkerSetup`]: the reusable bursts, the hold queue
/// and the loop's tallies. Build it with [`WorkerSetup::into_worker`], then [`Worker::run`]
/// it (production) or step it with [`Worker::poll`] (tests).
pub struct Worker<Io: PacketIo> {
    setup: WorkerSetup<Io>,
    /// The burst being handled (received, released or handed over).
    rx_burst: Io::Burst,
    /// `tx_bursts[p]` collects what goes out on port `p` this round.
    tx_bursts: Vec<Io::Burst>,
    /// For an [`Origin::Held`] burst: the first deadline of each of its frames.
    deadlines: [u64; BURST],
    held: Held<Io::Buf>,
    /// Fragments held for their datagram's first fragment (`Verdict::Hold`).
    frags: FragmentHolds<Io::Buf>,
    drops: LoopDrops,
    events: LoopCounters,
    last_maintain: Instant,
    last_report: Instant,
}

impl<Io: PacketIo> Worker<Io> {
    pub(super) fn new(setup: WorkerSetup<Io>) -> Worker<Io> {
        let ports = setup.io.ports();
        let start = setup.epoch;
        setup.heartbeat.adopted(setup.tables.generation());
        Worker {
            rx_burst: Io::Burst::default(),
            tx_bursts: (0..ports).map(|_| Io::Burst::default()).collect(),
            deadlines: [0; BURST],
            held: Held::new(),
            frags: FragmentHolds::new(setup.fast_path.params().fragment_holds),
            drops: LoopDrops::default(),
            events: LoopCounters::default(),
            last_maintain: start,
            last_report: start,
            setup,
        }
    }

    /// Runs rounds until the stop flag is set, then publishes the final report. Every
    /// buffer the worker holds is freed or handed on before it returns.
    pub fn run(mut self) {
        let mut backoff = IdleBackoff::new(self.setup.idle_backoff, Instant::now());
        if backoff.enabled() {
            // Short sleeps stay short (best effort: the default slack only delays more).
            let _ = nix::sys::prctl::set_timerslack(TIMER_SLACK_NS);
        }
        while !self.setup.stop.load(Ordering::Relaxed) {
            let clock = Instant::now();
            let received = self.poll(clock);
            if let Some(sleep) = backoff.after_round(received, clock) {
                std::thread::sleep(sleep);
            }
        }
        self.finish();
    }

    /// Publishes the final report (waiting for the lock, so it is never lost) and drops
    /// the worker, freeing what it holds.
    pub fn finish(mut self) {
        let slot = Arc::clone(&self.setup.report);
        let mut r = slot.lock().unwrap_or_else(|e| e.into_inner());
        self.fill_report(&mut r);
    }

    /// One round at time `clock`; returns how many frames it received (from ports and
    /// other workers).
    pub fn poll(&mut self, clock: Instant) -> usize {
        // Burst boundary: adopt the newest tables, health and neighbors, if any.
        if let Some(t) = self.setup.tables_rx.try_iter().last() {
            self.setup.tables = t;
            self.setup.fast_path.adopt(&self.setup.tables);
            self.setup.heartbeat.adopted(self.setup.tables.generation());
        }
        if let Some(h) = self.setup.health_rx.try_iter().last() {
            self.setup.fast_path.set_health(h);
        }
        self.setup.heartbeat.beat(clock);
        let now = nanos_since(self.setup.epoch, clock);
        if let Some(n) = self.setup.neighbors_rx.try_iter().last() {
            self.setup.neighbors = n;
            self.release_held(now);
        }
        let mut received = 0;
        // Port ids are u16 (DPDK's): the range bounds them, no conversion can overflow.
        for in_port in (0..=u16::MAX).take(self.tx_bursts.len()) {
            let n = self
                .setup
                .io
                .rx_burst(in_port, &mut self.rx_burst, self.setup.burst);
            if n == 0 {
                continue;
            }
            received += n;
            self.handle_burst(now, in_port, Origin::Fresh);
        }
        received += self.take_handoffs(now);
        self.run_released(now);
        // Frames from the slow path ride along with the forwarded ones.
        for _ in 0..BURST {
            let Ok((port, buf)) = self.setup.inject_rx.try_recv() else {
                break;
            };
            enqueue(
                &mut self.setup.io,
                &mut self.tx_bursts,
                port,
                buf,
                &mut self.drops,
            );
        }
        for (port, burst) in (0..=u16::MAX).zip(self.tx_bursts.iter_mut()) {
            if !burst.is_empty() {
                self.drops.tx_refused += flush(&mut self.setup.io, port, burst);
            }
        }
        if clock.duration_since(self.last_maintain) >= MAINTAIN_INTERVAL {
            self.last_maintain = clock;
            self.setup.fast_path.maintain(now);
            // Timed-out fragments are freed now; any released to run go next round.
            self.frags.release(self.setup.fast_path.take_released());
            self.drops.hold_expired += self.held.expire(now);
            if clock.duration_since(self.last_report) >= REPORT_INTERVAL {
                self.last_report = clock;
                let slot = Arc::clone(&self.setup.report);
                let guard = slot.try_lock();
                if let Ok(mut r) = guard {
                    self.fill_report(&mut r);
                }
            }
        }
        received
    }

    fn fill_report(&mut self, r: &mut WorkerReport) {
        let fp = &mut self.setup.fast_path;
        r.counters.clone_from(fp.counters());
        r.retired.extend(fp.take_retired());
        r.generation = self.setup.tables.generation();
        r.drops = self.drops;
        r.events = self.events;
    }

    /// New neighbors: held datagrams try again, at most a burst's worth per snapshot (the
    /// rest wait for the next one or expire), one burst per run of frames from the same
    /// input port.
    fn release_held(&mut self, now: u64) {
        let mut again = self.held.len();
        let (mut port, mut taken) = (0, 0);
        while again > 0 {
            again -= 1;
            let Some(f) = self.held.pop() else {
                break;
            };
            if f.deadline < now {
                self.drops.hold_expired += 1;
                continue;
            }
            if taken == BURST {
                self.held.unpop(f);
                break;
            }
            if f.in_port != port && !self.rx_burst.is_empty() {
                self.handle_burst(now, port, Origin::Held);
            }
            port = f.in_port;
            taken += 1;
            let slot = self.rx_burst.len();
            match self.rx_burst.push(f.buf) {
                Ok(()) => self.deadlines[slot] = f.deadline,
                Err(buf) => {
                    self.held.unpop(HeldFrame { buf, ..f });
                    break;
                }
            }
        }
        if !self.rx_burst.is_empty() {
            self.handle_burst(now, port, Origin::Held);
        }
    }

    /// Replies other workers passed here (full NAT, several workers), at most a burst's
    /// worth, one burst per run of frames from the same input port; returns how many.
    fn take_handoffs(&mut self, now: u64) -> usize {
        let mut received = 0;
        let mut port = 0;
        for _ in 0..BURST {
            let Some((p, buf)) = self.setup.handoff.try_recv() else {
                break;
            };
            if p != port && !self.rx_burst.is_empty() {
                received += self.rx_burst.len();
                self.handle_burst(now, port, Origin::Fresh);
            }
            port = p;
            if self.rx_burst.push(buf).is_err() {
                break;
            }
        }
        if !self.rx_burst.is_empty() {
            received += self.rx_burst.len();
            self.handle_burst(now, port, Origin::Fresh);
        }
        received
    }

    /// Fragments whose datagram's first fragment has been decided run through the fast
    /// path again, one burst per run of frames from the same input port (they follow
    /// their first fragment now, so they are not held again); expired ones are freed.
    /// Bounded by the hold slots: what a re-run releases waits for the next round. One
    /// compare per round when no fragment is held (the usual case).
    fn run_released(&mut self, now: u64) {
        if self.frags.is_idle() {
            return;
        }
        self.frags.release(self.setup.fast_path.take_released());
        let mut port = 0;
        for _ in 0..self.setup.fast_path.params().fragment_holds {
            let Some((p, buf)) = self.frags.next_again() else {
                break;
            };
            if (p != port || self.rx_burst.is_full()) && !self.rx_burst.is_empty() {
                self.handle_burst(now, port, Origin::Fresh);
            }
            port = p;
            self.events.fragments_rerun += 1;
            // Not full: emptied just above when it was.
            if let Err(buf) = self.rx_burst.push(buf) {
                drop(buf);
            }
        }
        if !self.rx_burst.is_empty() {
            self.handle_burst(now, port, Origin::Fresh);
        }
    }

    /// Runs `rx_burst` through the fast path and acts on every verdict; empties it.
    fn handle_burst(&mut self, now: u64, in_port: u16, origin: Origin) {
        let Worker {
            setup: s,
            rx_burst,
            tx_bursts,
            deadlines,
            held,
            frags,
            drops,
            events,
            ..
        } = self;
        let mut verdicts = [Verdict::Drop(DropReason::NotUdp); BURST];
        let ctx = Context {
            tables: &s.tables,
            network: &s.network,
            neighbors: &s.neighbors,
        };
        let n = {
            // Empty slices are `Default`: a fixed array of views, no allocation.
            let mut packets: [&mut [u8]; BURST] = Default::default();
            let mut n = 0;
            for (view, buf) in packets.iter_mut().zip(rx_burst.bufs_mut()) {
                *view = buf.data_mut();
                n += 1;
            }
            s.fast_path
                .process_burst(&ctx, now, in_port, &mut packets[..n], &mut verdicts[..n]);
            n
        };
        // A frame's index is only needed to re-hold it (rare): taken from what is left,
        // so the common path pays nothing for it.
        let mut frames = rx_burst.drain().zip(&verdicts[..n]);
        while let Some((mut buf, &verdict)) = frames.next() {
            match verdict {
                Verdict::Tx { port, offload } => {
                    if let Some(o) = offload {
                        if buf.request_tx_checksum(&o).is_err() {
                            // Header lengths beyond what the NIC takes: cannot offload,
                            // and the checksum fields hold partial sums. Drop it.
                            drops.tx_refused += 1;
                            continue;
                        }
                    }
                    enqueue(&mut s.io, tx_bursts, port, buf, drops);
                }
                Verdict::ToHost(reason) => {
                    let msg = match reason {
                        HostReason::Resolve { next_hop, port } => {
                            // Hold the datagram (untouched) until the neighbor is known;
                            // held again, it keeps its first deadline.
                            let deadline = match origin {
                                Origin::Held => deadlines[n - 1 - frames.len()],
                                Origin::Fresh => now.saturating_add(HOLD_NANOS),
                            };
                            let frame = HeldFrame {
                                deadline,
                                in_port,
                                buf,
                            };
                            match held.hold(frame) {
                                Ok(()) => events.held += 1,
                                Err(_) => drops.hold_expired += 1,
                            }
                            SlowPathMsg::Resolve { port, next_hop }
                        }
                        HostReason::Reject => SlowPathMsg::Reject {
                            port: in_port,
                            frame: buf,
                        },
                        HostReason::TimeExceeded | HostReason::TooBig { .. } => {
                            SlowPathMsg::IcmpError {
                                port: in_port,
                                error: match reason {
                                    HostReason::TooBig { mtu } => IcmpError::TooBig { mtu },
                                    _ => IcmpError::TimeExceeded,
                                },
                                frame: buf,
                            }
                        }
                        _ => SlowPathMsg::Frame {
                            port: in_port,
                            frame: buf,
                        },
                    };
                    if !s.slowpath_counters.try_send(&s.slowpath, msg) {
                        drops.host_overflow += 1;
                    }
                }
                Verdict::Handoff { worker } => {
                    // Another worker's flow: the packet is untouched, pass it on.
                    if s.handoff.pass(worker, in_port, buf) {
                        events.handed_off += 1;
                    } else {
                        drops.handoff_overflow += 1;
                    }
                }
                // A fragment before its first fragment: kept, untouched, until released.
                Verdict::Hold { slot } => frags.hold(slot, in_port, buf),
                Verdict::Fragment { port, mtu } => {
                    split(&mut s.io, tx_bursts, port, mtu, buf, drops, events);
                }
                Verdict::Drop(_) => drop(buf),
            }
        }
    }
}

/// Queues `buf` for transmission on `port`, flushing the burst when it is full.
fn enqueue<Io: PacketIo>(
    io: &mut Io,
    tx_bursts: &mut [Io::Burst],
    port: u16,
    buf: Io::Buf,
    drops: &mut LoopDrops,
) {
    let Some(burst) = tx_bursts.get_mut(usize::from(port)) else {
        drops.tx_refused += 1;
        return;
    };
    if burst.is_full() {
        drops.tx_refused += flush(io, port, burst);
    }
    if burst.push(buf).is_err() {
        drops.tx_refused += 1;
    }
}

/// Sends the IPv4 datagram in `buf` (rewritten, every checksum final) on `port` in
/// pieces of at most `mtu` bytes of IP, each in a new buffer; `buf` is freed.
fn split<Io: PacketIo>(
    io: &mut Io,
    tx_bursts: &mut [Io::Burst],
    port: u16,
    mtu: u16,
    mut buf: Io::Buf,
    drops: &mut LoopDrops,
    events: &mut LoopCounters,
) {
    let mut complete = true;
    let mut pieces = 0;
    let split = fragments::split(buf.data_mut(), mtu, |head, data| {
        // Once a piece is missing the datagram cannot be reassembled: send no more.
        if !complete {
            return;
        }
        match io.new_frame(head, data) {
            Some(piece) => {
                pieces += 1;
                enqueue(io, tx_bursts, port, piece, drops);
            }
            None => complete = false,
        }
    });
    if split.is_ok() && complete {
        events.refragmented += 1;
    } else {
        drops.refragment_failed += 1;
    }
    events.refragment_pieces += pieces;
}

/// Transmits a burst; frees and counts what the queue refused.
fn flush<Io: PacketIo>(io: &mut Io, port: u16, burst: &mut Io::Burst) -> u64 {
    io.tx_burst(port, burst);
    // At most BURST: the conversion cannot fail.
    u64::try_from(burst.free_all()).unwrap_or(u64::MAX)
}

fn nanos_since(epoch: Instant, now: Instant) -> u64 {
    u64::try_from(now.duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

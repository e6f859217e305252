//! The worker's I/O in memory, for tests and tools: no DPDK, no EAL, any user.
//!
//! Each port is a pair of bounded queues, like a ring port: the test's [`Wire`] for port
//! `p` sends frames to the worker and receives what it transmitted. A full TX queue
//! refuses the rest of a burst, as a full ring does, so TX refusal is testable. Buffers
//! come from a [`MemoryPool`] that counts those alive, so a test can check that every
//! buffer the worker took was returned, as the DPDK tests check the mempool.
//!
//! Checksum offload requests are recorded in the buffer ([`MemoryBuf::offload`]) and held
//! to the same field widths as an mbuf's, but no checksum is finished: a test reads the
//! request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use pipelines::OffloadRequest;

use super::io::{OffloadRefused, PacketBuf, PacketBurst, PacketIo, BURST};
use crate::dpdk::Mbuf;

/// Hands out [`MemoryBuf`]s and counts those not yet dropped. Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct MemoryPool {
    in_use: Arc<AtomicUsize>,
}

impl MemoryPool {
    /// An empty pool.
    pub fn new() -> MemoryPool {
        MemoryPool::default()
    }

    /// A buffer holding a copy of `frame`.
    pub fn buf(&self, frame: &[u8]) -> MemoryBuf {
        self.buf_of(&[frame])
    }

    /// A buffer holding the concatenation of `parts`.
    fn buf_of(&self, parts: &[&[u8]]) -> MemoryBuf {
        self.in_use.fetch_add(1, Ordering::Relaxed);
        MemoryBuf {
            data: parts.concat(),
            offload: None,
            in_use: Arc::clone(&self.in_use),
        }
    }

    /// Buffers handed out and not dropped yet.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }
}

/// A frame in memory, with the checksum offload request the worker attached, if any.
#[derive(Debug)]
pub struct MemoryBuf {
    data: Vec<u8>,
    offload: Option<OffloadRequest>,
    in_use: Arc<AtomicUsize>,
}

impl MemoryBuf {
    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The checksum offload request attached for transmission.
    pub fn offload(&self) -> Option<OffloadRequest> {
        self.offload
    }
}

impl Drop for MemoryBuf {
    fn drop(&mut self) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AsRef<[u8]> for MemoryBuf {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl PacketBuf for MemoryBuf {
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    fn request_tx_checksum(&mut self, o: &OffloadRequest) -> Result<(), OffloadRefused> {
        if o.l2_len > Mbuf::MAX_L2_LEN || o.l3_len > Mbuf::MAX_L3_LEN {
            return Err(OffloadRefused {
                l2_len: o.l2_len,
                l3_len: o.l3_len,
            });
        }
        self.offload = Some(*o);
        Ok(())
    }
}

/// Up to [`BURST`] [`MemoryBuf`]s.
#[derive(Debug)]
pub struct MemoryBurst {
    bufs: Vec<MemoryBuf>,
}

impl Default for MemoryBurst {
    fn default() -> Self {
        MemoryBurst {
            bufs: Vec::with_capacity(BURST),
        }
    }
}

impl PacketBurst for MemoryBurst {
    type Buf = MemoryBuf;

    fn len(&self) -> usize {
        self.bufs.len()
    }

    fn push(&mut self, buf: MemoryBuf) -> Result<(), MemoryBuf> {
        if self.is_full() {
            return Err(buf);
        }
        self.bufs.push(buf);
        Ok(())
    }

    fn bufs_mut(&mut self) -> &mut [MemoryBuf] {
        &mut self.bufs
    }

    fn drain(&mut self) -> impl ExactSizeIterator<Item = MemoryBuf> + '_ {
        self.bufs.drain(..)
    }

    fn free_all(&mut self) -> usize {
        let n = self.bufs.len();
        self.bufs.clear();
        n
    }
}

/// One port's queues as the worker sees them.
#[derive(Debug)]
struct MemoryPort {
    rx: Receiver<MemoryBuf>,
    tx: Sender<MemoryBuf>,
}

/// A worker's ports in memory (see the module documentation).
#[derive(Debug)]
pub struct MemoryIo {
    ports: Vec<MemoryPort>,
    /// Where [`PacketIo::new_frame`] takes buffers from.
    pool: MemoryPool,
}

/// The far end of one [`MemoryIo`] port: what a test sends into the worker and reads out.
#[derive(Clone, Debug)]
pub struct Wire {
    to_worker: Sender<MemoryBuf>,
    from_worker: Receiver<MemoryBuf>,
    pool: MemoryPool,
}

impl MemoryIo {
    /// `ports` ports whose RX and TX queues hold `depth` frames each, with buffers from
    /// `pool`; returns the worker's side and the test's [`Wire`] per port.
    pub fn new(ports: u16, depth: usize, pool: &MemoryPool) -> (MemoryIo, Vec<Wire>) {
        let (ports, wires) = (0..ports)
            .map(|_| {
                let (to_worker, rx) = crossbeam_channel::bounded(depth);
                let (tx, from_worker) = crossbeam_channel::bounded(depth);
                (
                    MemoryPort { rx, tx },
                    Wire {
                        to_worker,
                        from_worker,
                        pool: pool.clone(),
                    },
                )
            })
            .unzip();
        (
            MemoryIo {
                ports,
                pool: pool.clone(),
            },
            wires,
        )
    }
}

impl PacketIo for MemoryIo {
    type Buf = MemoryBuf;
    type Burst = MemoryBurst;

    fn ports(&self) -> usize {
        self.ports.len()
    }

    fn rx_burst(&mut self, port: u16, out: &mut MemoryBurst, max: usize) -> usize {
        let Some(p) = self.ports.get(usize::from(port)) else {
            return 0;
        };
        let mut n = 0;
        while n < max && !out.is_full() {
            let Ok(buf) = p.rx.try_recv() else { break };
            out.bufs.push(buf);
            n += 1;
        }
        n
    }

    fn tx_burst(&mut self, port: u16, burst: &mut MemoryBurst) -> usize {
        let Some(p) = self.ports.get(usize::from(port)) else {
            return 0;
        };
        let mut sent = 0;
        let mut rest = std::mem::take(&mut burst.bufs).into_iter();
        for buf in rest.by_ref() {
            match p.tx.try_send(buf) {
                Ok(()) => sent += 1,
                Err(TrySendError::Full(buf) | TrySendError::Disconnected(buf)) => {
                    burst.bufs.push(buf);
                    break;
                }
            }
        }
        burst.bufs.extend(rest);
        sent
    }

    fn new_frame(&mut self, head: &[u8], tail: &[u8]) -> Option<MemoryBuf> {
        Some(self.pool.buf_of(&[head, tail]))
    }
}

impl Wire {
    /// Puts a copy of `frame` on the worker's RX queue; false when the queue is full.
    pub fn send(&self, frame: &[u8]) -> bool {
        self.to_worker.try_send(self.pool.buf(frame)).is_ok()
    }

    /// The next frame the worker transmitted on this port, if any.
    pub fn recv(&self) -> Option<MemoryBuf> {
        self.from_worker.try_recv().ok()
    }

    /// The next frame the worker transmitted, waiting at most `timeout` (for a worker on
    /// another thread).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<MemoryBuf> {
        self.from_worker.recv_timeout(timeout).ok()
    }

    /// Every frame transmitted and not read yet.
    pub fn drain(&self) -> Vec<MemoryBuf> {
        self.from_worker.try_iter().collect()
    }
}

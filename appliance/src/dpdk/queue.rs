//! RX and TX queue handles: one per queue, owned by the worker that polls it.

use std::sync::Arc;

use super::burst::MbufBurst;
use super::ffi;
use super::ids::{PortId, QueueId};
use super::port::PortShared;

/// The receive side of one queue of a started port.
#[derive(Debug)]
pub struct RxQueue {
    port: Arc<PortShared>,
    queue: QueueId,
    segmented_drops: u64,
}

/// The transmit side of one queue of a started port.
#[derive(Debug)]
pub struct TxQueue {
    port: Arc<PortShared>,
    queue: QueueId,
}

impl RxQueue {
    pub(crate) fn new(port: Arc<PortShared>, queue: QueueId) -> Self {
        RxQueue {
            port,
            queue,
            segmented_drops: 0,
        }
    }

    /// The port.
    pub fn port(&self) -> PortId {
        self.port.id
    }

    /// The queue number.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Receives up to the free room of `out` (`rte_eth_rx_burst`), appending to it; returns
    /// how many mbufs were added. Chained (multi-segment) mbufs are freed at once and counted
    /// in [`RxQueue::segmented_drops`]. Allocates nothing.
    pub fn rx_burst(&mut self, out: &mut MbufBurst) -> usize {
        self.rx_burst_up_to(out, usize::MAX)
    }

    /// As [`RxQueue::rx_burst`], receiving at most `max` mbufs (the `workers.burst`
    /// setting).
    pub fn rx_burst_up_to(&mut self, out: &mut MbufBurst, max: usize) -> usize {
        let (slots, room) = out.spare();
        let room = room.min(u16::try_from(max).unwrap_or(u16::MAX));
        if room == 0 {
            return 0;
        }
        // SAFETY: this handle is the only one for (port, queue) and the port is started (a
        // handle exists only for a started port, which cannot be stopped while handles live);
        // `slots` has room for `room` pointers.
        let n = usize::from(unsafe {
            ffi::rte_eth_rx_burst(self.port.id.0, self.queue.0, slots, room)
        });
        // SAFETY: the PMD wrote `n` (<= room) mbufs it hands over to us.
        unsafe { out.commit_spare(n) };
        let start = out.len() - n;
        if out.as_slice()[start..].iter().any(|m| m.is_segmented()) {
            let dropped = out.free_where(|m| m.is_segmented());
            self.segmented_drops += dropped as u64;
            return n - dropped;
        }
        n
    }

    /// Multi-segment mbufs received and dropped so far.
    pub fn segmented_drops(&self) -> u64 {
        self.segmented_drops
    }
}

impl TxQueue {
    pub(crate) fn new(port: Arc<PortShared>, queue: QueueId) -> Self {
        TxQueue { port, queue }
    }

    /// The port.
    pub fn port(&self) -> PortId {
        self.port.id
    }

    /// The queue number.
    pub fn queue(&self) -> QueueId {
        self.queue
    }

    /// Sends the mbufs of `burst` from the front (`rte_eth_tx_prepare` when checksum
    /// offload is on, then `rte_eth_tx_burst`) and returns how many went out. The unsent ones
    /// stay in `burst`, in order: retry, or free and count them (`burst.free_all()`).
    pub fn tx_burst(&mut self, burst: &mut MbufBurst) -> usize {
        let (slots, len) = burst.held();
        if len == 0 {
            return 0;
        }
        let (port, queue) = (self.port.id.0, self.queue.0);
        let ready = if self.port.tx_prepare {
            // SAFETY: exclusive handle of a started port's queue; `slots` holds `len` owned
            // mbufs, which prepare may modify (header fix-ups) but does not take.
            unsafe { ffi::rte_eth_tx_prepare(port, queue, slots, len) }
        } else {
            len
        };
        // SAFETY: as above; the PMD takes ownership of the first `sent` mbufs.
        let sent = usize::from(unsafe { ffi::rte_eth_tx_burst(port, queue, slots, ready) });
        // SAFETY: the first `sent` mbufs now belong to the PMD.
        unsafe { burst.forget_front(sent) };
        sent
    }
}

impl Drop for RxQueue {
    fn drop(&mut self) {
        self.port.release_rx(self.queue);
    }
}

impl Drop for TxQueue {
    fn drop(&mut self) {
        self.port.release_tx(self.queue);
    }
}

//! What the worker loop needs from its ports: bursts of owned frame buffers in and out.
//!
//! The loop ([`super::Worker`]) is generic over [`PacketIo`], so the same code runs on DPDK
//! queues in production ([`super::DpdkIo`]: mbufs, no allocation per packet) and on
//! in-memory queues in tests ([`super::MemoryIo`]: any user, no EAL). Each I/O picks its
//! own buffer and burst types, so the DPDK path keeps its native `MbufBurst` (the array a
//! PMD writes into) and pays nothing for the abstraction once monomorphised.

use pipelines::OffloadRequest;

/// Packets per burst: what one `rx_burst` returns at most and a TX burst holds, DPDK's
/// customary 32. Every [`PacketBurst`] holds exactly this many.
pub const BURST: usize = 32;

/// An owned frame buffer (an mbuf, or bytes in memory).
pub trait PacketBuf: Send + 'static {
    /// The frame's bytes, writable: what the fast path parses and rewrites in place.
    fn data_mut(&mut self) -> &mut [u8];

    /// Asks the port to finish checksums on transmit (the fast path's `Verdict::Tx`
    /// offload request), replacing any earlier request.
    ///
    /// # Errors
    /// [`OffloadRefused`] when the buffer's offload metadata cannot describe the headers
    /// (lengths beyond its fields); the checksum fields then hold partial sums, so the
    /// frame must not be sent.
    fn request_tx_checksum(&mut self, request: &OffloadRequest) -> Result<(), OffloadRefused>;
}

/// A checksum offload request the buffer cannot carry (see
/// [`PacketBuf::request_tx_checksum`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("checksum offload refused: l2_len {l2_len}, l3_len {l3_len} beyond the buffer's fields")]
pub struct OffloadRefused {
    /// The Ethernet (+ VLAN) header length asked for.
    pub l2_len: u16,
    /// The IP header length asked for.
    pub l3_len: u16,
}

/// A reusable fixed-capacity array of [`BURST`] owned buffers, kept in order.
pub trait PacketBurst: Default + Send {
    /// The buffers it holds.
    type Buf: PacketBuf;

    /// Buffers held.
    fn len(&self) -> usize;

    /// Whether it holds no buffer.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no more buffers fit.
    fn is_full(&self) -> bool {
        self.len() >= BURST
    }

    /// Adds `buf` at the end.
    ///
    /// # Errors
    /// Hands `buf` back when the burst is full.
    fn push(&mut self, buf: Self::Buf) -> Result<(), Self::Buf>;

    /// The buffers, in order, for in-place rewriting.
    fn bufs_mut(&mut self) -> &mut [Self::Buf];

    /// Takes every buffer out in order, leaving the burst empty; buffers not taken from
    /// the iterator are freed when it drops.
    fn drain(&mut self) -> impl ExactSizeIterator<Item = Self::Buf> + '_;

    /// Frees every buffer held and returns how many (the count of a drop counter).
    fn free_all(&mut self) -> usize;
}

/// A worker's ports: one RX and one TX queue on each, numbered `0..ports()` as in the
/// fast path's `Network`.
pub trait PacketIo {
    /// The frame buffer.
    type Buf: PacketBuf;
    /// The burst of frame buffers the queues fill and empty.
    type Burst: PacketBurst<Buf = Self::Buf>;

    /// Number of ports.
    fn ports(&self) -> usize;

    /// Receives at most `max` buffers into the free room of `out` from `port`, appending;
    /// returns how many were added (0 for a port it does not have).
    fn rx_burst(&mut self, port: u16, out: &mut Self::Burst, max: usize) -> usize;

    /// Sends from the front of `burst` on `port` and returns how many went out. Unsent
    /// buffers stay in `burst`, in order (the caller frees and counts them); a port it
    /// does not have sends nothing.
    fn tx_burst(&mut self, port: u16, burst: &mut Self::Burst) -> usize;

    /// A new buffer holding `head` followed by `tail`: one piece of a datagram split for
    /// a smaller egress MTU (`Verdict::Fragment`, rare). `None` when no buffer is free or
    /// the frame does not fit one.
    fn new_frame(&mut self, head: &[u8], tail: &[u8]) -> Option<Self::Buf>;
}

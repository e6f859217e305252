//! The worker's I/O in production: one DPDK RX and TX queue per port, mbufs in
//! [`MbufBurst`]s that the PMD fills directly. Thin: every call forwards to the binding, so
//! the monomorphised loop is what it was before the I/O was a trait.

use pipelines::OffloadRequest;

use super::io::{OffloadRefused, PacketBuf, PacketBurst, PacketIo, BURST};
use crate::dpdk::{self, Mbuf, MbufBurst, Mempool, Port, QueueId, RxQueue, TxChecksum, TxQueue};

// The loop's fixed arrays are sized by BURST; the mbuf burst must hold exactly that many.
const _: () = assert!(MbufBurst::CAPACITY == BURST);

/// A worker's queues: `rx[p]` polls port `p`, `tx[p]` transmits on it.
#[derive(Debug)]
pub struct DpdkIo {
    rx: Vec<RxQueue>,
    tx: Vec<TxQueue>,
    /// Where the pieces of split datagrams come from (the ports' RX pool).
    pool: Option<Mempool>,
}

impl DpdkIo {
    /// The worker's queues, one RX and one TX per port, in port order, and the pool the
    /// pieces of split datagrams are allocated from (none: such datagrams are dropped).
    pub fn new(rx: Vec<RxQueue>, tx: Vec<TxQueue>, pool: Option<Mempool>) -> DpdkIo {
        DpdkIo { rx, tx, pool }
    }

    /// Claims RX and TX queue `queue` of every port in `ports` (a worker's share of
    /// started ports); split datagrams take their buffers from the first port's RX pool.
    ///
    /// # Errors
    /// A queue already claimed or out of range, or a port not started
    /// ([`Port::rx_queue`], [`Port::tx_queue`]).
    pub fn claim(ports: &[Port], queue: QueueId) -> dpdk::Result<DpdkIo> {
        Ok(DpdkIo {
            rx: ports
                .iter()
                .map(|p| p.rx_queue(queue))
                .collect::<dpdk::Result<_>>()?,
            tx: ports
                .iter()
                .map(|p| p.tx_queue(queue))
                .collect::<dpdk::Result<_>>()?,
            pool: ports.iter().find_map(|p| p.mempool().cloned()),
        })
    }
}

impl PacketIo for DpdkIo {
    type Buf = Mbuf;
    type Burst = MbufBurst;

    fn ports(&self) -> usize {
        self.rx.len()
    }

    #[inline]
    fn rx_burst(&mut self, port: u16, out: &mut MbufBurst, max: usize) -> usize {
        self.rx
            .get_mut(usize::from(port))
            .map_or(0, |q| q.rx_burst_up_to(out, max))
    }

    #[inline]
    fn tx_burst(&mut self, port: u16, burst: &mut MbufBurst) -> usize {
        self.tx
            .get_mut(usize::from(port))
            .map_or(0, |q| q.tx_burst(burst))
    }

    fn new_frame(&mut self, head: &[u8], tail: &[u8]) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(self.pool.as_ref()?).ok()?;
        let room = m.append(head.len() + tail.len()).ok()?;
        let (h, t) = room.split_at_mut(head.len());
        h.copy_from_slice(head);
        t.copy_from_slice(tail);
        Some(m)
    }
}

impl PacketBuf for Mbuf {
    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }

    fn request_tx_checksum(&mut self, o: &OffloadRequest) -> Result<(), OffloadRefused> {
        let sum = if o.ipv6 {
            TxChecksum::Ipv6 {
                udp: o.udp_checksum,
            }
        } else {
            TxChecksum::Ipv4 {
                header: o.ipv4_checksum,
                udp: o.udp_checksum,
            }
        };
        self.set_tx_checksum(sum, o.l2_len, o.l3_len)
            .map_err(|_| OffloadRefused {
                l2_len: o.l2_len,
                l3_len: o.l3_len,
            })
    }
}

impl PacketBurst for MbufBurst {
    type Buf = Mbuf;

    #[inline]
    fn len(&self) -> usize {
        MbufBurst::len(self)
    }

    #[inline]
    fn is_empty(&self) -> bool {
        MbufBurst::is_empty(self)
    }

    #[inline]
    fn is_full(&self) -> bool {
        MbufBurst::is_full(self)
    }

    #[inline]
    fn push(&mut self, buf: Mbuf) -> Result<(), Mbuf> {
        MbufBurst::push(self, buf)
    }

    #[inline]
    fn bufs_mut(&mut self) -> &mut [Mbuf] {
        self.as_mut_slice()
    }

    #[inline]
    fn drain(&mut self) -> impl ExactSizeIterator<Item = Mbuf> + '_ {
        MbufBurst::drain(self)
    }

    #[inline]
    fn free_all(&mut self) -> usize {
        MbufBurst::free_all(self)
    }
}

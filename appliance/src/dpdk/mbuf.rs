//! An owned packet buffer (`struct rte_mbuf`), returned to its pool on drop.
//!
//! Multi-segment (chained) mbufs are not supported: ports are configured without scattered
//! RX, `RxQueue::rx_burst` drops and counts any chained mbuf a PMD still delivers, and the
//! accessors here only see the first segment.

use std::ptr::NonNull;
use std::slice;

use super::error::{DpdkError, Result};
use super::ffi;
use super::mempool::Mempool;

/// Which checksums the NIC should compute for an outgoing UDP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxChecksum {
    /// IPv4: the header checksum and/or the UDP checksum.
    Ipv4 {
        /// Compute the IPv4 header checksum (`RTE_MBUF_F_TX_IP_CKSUM`).
        header: bool,
        /// Compute the UDP checksum (`RTE_MBUF_F_TX_UDP_CKSUM`).
        udp: bool,
    },
    /// IPv6 (no header checksum): the UDP checksum.
    Ipv6 {
        /// Compute the UDP checksum (`RTE_MBUF_F_TX_UDP_CKSUM`).
        udp: bool,
    },
}

impl TxChecksum {
    /// The `ol_flags` bits that request these checksums.
    pub fn ol_flags(self) -> u64 {
        let udp_flag = |udp: bool| if udp { ffi::RTE_MBUF_F_TX_UDP_CKSUM } else { 0 };
        match self {
            TxChecksum::Ipv4 { header, udp } => {
                ffi::RTE_MBUF_F_TX_IPV4
                    | if header {
                        ffi::RTE_MBUF_F_TX_IP_CKSUM
                    } else {
                        0
                    }
                    | udp_flag(udp)
            }
            TxChecksum::Ipv6 { udp } => ffi::RTE_MBUF_F_TX_IPV6 | udp_flag(udp),
        }
    }
}

/// An owned, single-segment packet mbuf.
#[repr(transparent)]
#[derive(Debug)]
pub struct Mbuf {
    // repr(transparent) over a non-null pointer: an array of `*mut rte_mbuf` filled by a PMD
    // is an array of `Mbuf` (see `MbufBurst`).
    raw: NonNull<ffi::rte_mbuf>,
}

// SAFETY: an Mbuf is the only owner of its rte_mbuf (refcount 1, never shared), and returning
// it to its mempool is thread-safe, so ownership may move between threads.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Largest `l2_len` a TX offload request can carry (a 7-bit field).
    pub const MAX_L2_LEN: u16 = (1 << 7) - 1;
    /// Largest `l3_len` a TX offload request can carry (a 9-bit field).
    pub const MAX_L3_LEN: u16 = (1 << 9) - 1;

    /// Takes an empty mbuf from `pool`.
    ///
    /// # Errors
    /// [`DpdkError::NoMbuf`] when the pool is exhausted.
    pub fn alloc(pool: &Mempool) -> Result<Mbuf> {
        // SAFETY: the pool is alive for the call (borrowed) and mbufs never outlive it: a pool
        // with mbufs out is never freed (see `Mempool`).
        let raw = unsafe { ffi::rte_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(raw)
            .map(|raw| Mbuf { raw })
            .ok_or_else(|| DpdkError::NoMbuf(pool.name().to_owned()))
    }

    /// An mbuf from `pool` holding a copy of `bytes` (tests, the slow path).
    ///
    /// # Errors
    /// [`DpdkError::NoMbuf`], or [`DpdkError::InvalidArgument`] if `bytes` does not fit.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Result<Mbuf> {
        let mut mbuf = Mbuf::alloc(pool)?;
        mbuf.append(bytes.len())?.copy_from_slice(bytes);
        Ok(mbuf)
    }

    /// Wraps a raw mbuf received from DPDK.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else owns or frees.
    pub(crate) unsafe fn from_raw(raw: NonNull<ffi::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Gives up ownership without freeing (the caller, e.g. a PMD, now owns it).
    pub(crate) fn into_raw(self) -> NonNull<ffi::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    fn get(&self) -> &ffi::rte_mbuf {
        // SAFETY: `raw` is a valid mbuf owned by `self` for as long as `self` lives.
        unsafe { self.raw.as_ref() }
    }

    /// Bytes of packet data in this (only) segment.
    pub fn len(&self) -> usize {
        usize::from(self.get().data_len)
    }

    /// Whether the mbuf holds no data.
    pub fn is_empty(&self) -> bool {
        self.get().data_len == 0
    }

    /// Whether this mbuf starts a chain (unsupported; such mbufs are dropped at RX).
    pub fn is_segmented(&self) -> bool {
        self.get().nb_segs != 1
    }

    /// The packet bytes.
    pub fn data(&self) -> &[u8] {
        let m = self.get();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer (an mbuf
        // invariant DPDK maintains and every mutator here keeps), and `&self` keeps it alive
        // and unaliased by writers.
        unsafe {
            slice::from_raw_parts(
                m.buf_addr.cast::<u8>().add(usize::from(m.data_off)),
                usize::from(m.data_len),
            )
        }
    }

    /// The packet bytes, writable (what the fast path rewrites in place).
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.get();
        let (addr, off, len) = (m.buf_addr, m.data_off, m.data_len);
        // SAFETY: as in `data`; `&mut self` makes this the only reference to the bytes.
        unsafe {
            slice::from_raw_parts_mut(addr.cast::<u8>().add(usize::from(off)), usize::from(len))
        }
    }

    /// Free bytes before the data.
    pub fn headroom(&self) -> usize {
        // SAFETY: valid mbuf owned by self.
        usize::from(unsafe { ffi::rte_pktmbuf_headroom(self.raw.as_ptr()) })
    }

    /// Free bytes after the data.
    pub fn tailroom(&self) -> usize {
        // SAFETY: valid mbuf owned by self.
        usize::from(unsafe { ffi::rte_pktmbuf_tailroom(self.raw.as_ptr()) })
    }

    /// Grows the data by `n` bytes at the end and returns them (unset contents).
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] if the tailroom is smaller than `n`.
    pub fn append(&mut self, n: usize) -> Result<&mut [u8]> {
        let len = self.room_check("append", n, self.tailroom())?;
        // SAFETY: valid mbuf owned by self; len fits the tailroom (checked), so DPDK returns
        // a pointer to `len` bytes inside the buffer.
        let ptr = unsafe { ffi::rte_pktmbuf_append(self.raw.as_ptr(), len) };
        Self::region(ptr, n, "rte_pktmbuf_append")
    }

    /// Grows the data by `n` bytes at the front (into the headroom) and returns them.
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] if the headroom is smaller than `n`.
    pub fn prepend(&mut self, n: usize) -> Result<&mut [u8]> {
        let len = self.room_check("prepend", n, self.headroom())?;
        // SAFETY: as in `append`, with the headroom.
        let ptr = unsafe { ffi::rte_pktmbuf_prepend(self.raw.as_ptr(), len) };
        Self::region(ptr, n, "rte_pktmbuf_prepend")
    }

    /// Removes `n` bytes from the end.
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] if the packet is shorter than `n`.
    pub fn trim(&mut self, n: usize) -> Result<()> {
        let len = self.room_check("trim", n, self.len())?;
        // SAFETY: valid mbuf owned by self; len <= data_len (checked).
        let ret = unsafe { ffi::rte_pktmbuf_trim(self.raw.as_ptr(), len) };
        super::error::check("rte_pktmbuf_trim", ret).map(drop)
    }

    /// Removes `n` bytes from the front (e.g. a header).
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] if the packet is shorter than `n`.
    pub fn trim_front(&mut self, n: usize) -> Result<()> {
        let len = self.room_check("trim_front", n, self.len())?;
        // SAFETY: valid mbuf owned by self; len <= data_len (checked).
        let ptr = unsafe { ffi::rte_pktmbuf_adj(self.raw.as_ptr(), len) };
        Self::region(ptr, 0, "rte_pktmbuf_adj").map(drop)
    }

    fn room_check(&self, what: &'static str, n: usize, room: usize) -> Result<u16> {
        match u16::try_from(n) {
            Ok(len) if n <= room => Ok(len),
            _ => Err(DpdkError::InvalidArgument {
                what,
                reason: format!("{n} bytes requested, {room} available"),
            }),
        }
    }

    fn region<'a>(
        ptr: *mut std::ffi::c_char,
        n: usize,
        call: &'static str,
    ) -> Result<&'a mut [u8]> {
        if ptr.is_null() {
            return Err(DpdkError::call(call, libc::EINVAL));
        }
        // SAFETY: DPDK returned a pointer to `n` bytes inside the buffer of an mbuf that the
        // caller borrows mutably for 'a.
        Ok(unsafe { slice::from_raw_parts_mut(ptr.cast::<u8>(), n) })
    }

    /// Requests checksum offload for this packet: `l2_len` bytes of Ethernet (+ VLAN) header
    /// precede `l3_len` bytes of IP header. Replaces any earlier TX offload request. Only
    /// effective on a port whose [`super::ChecksumOffload`] includes these checksums; with
    /// UDP offload the UDP checksum field must hold the pseudo-header sum unless the PMD's
    /// TX prepare step fills it (`TxQueue::tx_burst` runs it).
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] if `l2_len` > 127 or `l3_len` > 511 (the bit-field widths).
    pub fn set_tx_checksum(
        &mut self,
        checksum: TxChecksum,
        l2_len: u16,
        l3_len: u16,
    ) -> Result<()> {
        if l2_len > Self::MAX_L2_LEN || l3_len > Self::MAX_L3_LEN {
            return Err(DpdkError::InvalidArgument {
                what: "tx offload header lengths",
                reason: format!(
                    "l2_len {l2_len} (max {}), l3_len {l3_len} (max {})",
                    Self::MAX_L2_LEN,
                    Self::MAX_L3_LEN
                ),
            });
        }
        // SAFETY: valid mbuf owned by self; the shim writes ol_flags and two bit-fields.
        unsafe {
            ffi::udplb_mbuf_set_tx_offload(self.raw.as_ptr(), checksum.ol_flags(), l2_len, l3_len)
        };
        Ok(())
    }

    /// The offload flags (`ol_flags`): RX results and TX requests (`RTE_MBUF_F_*`).
    pub fn ol_flags(&self) -> u64 {
        self.get().ol_flags
    }

    /// The `(l2_len, l3_len)` set for TX offload.
    pub fn tx_header_lens(&self) -> (u16, u16) {
        // SAFETY: valid mbuf owned by self; the shim reads two bit-fields.
        unsafe {
            (
                ffi::udplb_mbuf_l2_len(self.raw.as_ptr()),
                ffi::udplb_mbuf_l3_len(self.raw.as_ptr()),
            )
        }
    }

    /// The port the packet was received on (as the PMD recorded it).
    pub fn rx_port(&self) -> u16 {
        self.get().port
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; after this call it is back in its pool and `self` is gone.
        unsafe { ffi::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl AsRef<[u8]> for Mbuf {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

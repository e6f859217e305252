//! A fixed-capacity array of owned mbufs: what one `rx_burst`/`tx_burst` moves, reused from
//! burst to burst so the worker loop allocates nothing.

use std::ffi::c_uint;
use std::ptr::{self, NonNull};
use std::slice;

use super::ffi;
use super::mbuf::Mbuf;

/// Up to [`MbufBurst::CAPACITY`] owned mbufs. Dropping the burst (or [`MbufBurst::free_all`])
/// returns the mbufs it still holds to their pools.
#[derive(Debug)]
pub struct MbufBurst {
    /// `slots[..len]` are owned, non-null mbufs; the rest is unused.
    slots: [*mut ffi::rte_mbuf; MbufBurst::CAPACITY],
    len: usize,
}

// SAFETY: the burst exclusively owns the mbufs in `slots[..len]` (like a Vec<Mbuf>), and
// Mbuf is Send.
unsafe impl Send for MbufBurst {}

impl Default for MbufBurst {
    fn default() -> Self {
        Self::new()
    }
}

impl MbufBurst {
    /// Packets per burst: DPDK's customary 32.
    pub const CAPACITY: usize = 32;

    /// An empty burst.
    pub fn new() -> Self {
        MbufBurst {
            slots: [ptr::null_mut(); Self::CAPACITY],
            len: 0,
        }
    }

    /// Mbufs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the burst holds no mbuf.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no more mbufs fit.
    pub fn is_full(&self) -> bool {
        self.len == Self::CAPACITY
    }

    /// Adds `mbuf` at the end, or hands it back when the burst is full.
    ///
    /// # Errors
    /// Returns the mbuf when the burst is full.
    pub fn push(&mut self, mbuf: Mbuf) -> std::result::Result<(), Mbuf> {
        if self.is_full() {
            return Err(mbuf);
        }
        self.slots[self.len] = mbuf.into_raw().as_ptr();
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        self.len = self.len.checked_sub(1)?;
        let raw = NonNull::new(self.slots[self.len])?;
        // SAFETY: slots[..len] held owned non-null mbufs; this one just left the burst.
        Some(unsafe { Mbuf::from_raw(raw) })
    }

    /// The mbufs, in order.
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout of
        // `*mut rte_mbuf`, and slots[..len] are owned non-null mbufs borrowed with `self`.
        unsafe { slice::from_raw_parts(self.slots.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// The mbufs, in order, for in-place rewriting (`mbuf.data_mut()`).
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in `as_slice`; `&mut self` makes the borrow exclusive, and a slice of
        // Mbuf cannot move ownership out (no mem::take on a non-Default type).
        unsafe { slice::from_raw_parts_mut(self.slots.as_mut_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Takes every mbuf out in order, leaving the burst empty. Mbufs not consumed from the
    /// iterator are freed when it drops.
    pub fn drain(&mut self) -> Drain<'_> {
        let end = self.len;
        // Emptied first, so a leaked Drain leaks mbufs rather than freeing them twice.
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end,
        }
    }

    /// Frees every mbuf held (`rte_pktmbuf_free_bulk`) and returns how many: the count of a
    /// drop counter, e.g. for packets `tx_burst` could not send.
    pub fn free_all(&mut self) -> usize {
        let n = self.len;
        self.len = 0;
        free_slots(&mut self.slots[..n]);
        n
    }

    /// Where a PMD may write new mbufs: the unused tail, and its length.
    pub(crate) fn spare(&mut self) -> (*mut *mut ffi::rte_mbuf, u16) {
        let room = Self::CAPACITY - self.len;
        (self.slots[self.len..].as_mut_ptr(), burst_len(room))
    }

    /// Records that a PMD wrote `n` owned mbufs into [`MbufBurst::spare`].
    ///
    /// # Safety
    /// The first `n` spare slots must now hold valid mbufs owned by nobody else.
    pub(crate) unsafe fn commit_spare(&mut self, n: usize) {
        debug_assert!(self.len + n <= Self::CAPACITY);
        self.len += n;
    }

    /// The held mbufs as the pointer array `rte_eth_tx_burst` takes.
    pub(crate) fn held(&mut self) -> (*mut *mut ffi::rte_mbuf, u16) {
        (self.slots.as_mut_ptr(), burst_len(self.len))
    }

    /// Forgets the first `n` mbufs (a PMD took them) and moves the rest to the front.
    ///
    /// # Safety
    /// The first `n` mbufs must now be owned by someone else (sent).
    pub(crate) unsafe fn forget_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.slots.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Frees the mbufs for which `drop_it` returns true, keeping the others in order; returns
    /// how many were freed.
    pub fn free_where(&mut self, mut drop_it: impl FnMut(&Mbuf) -> bool) -> usize {
        let mut kept = 0;
        let mut freed = 0;
        for i in 0..self.len {
            let raw = self.slots[i];
            // SAFETY: slots[..len] are owned non-null mbufs; `view` is only borrowed here
            // and forgotten below, so ownership stays with the burst.
            let view =
                std::mem::ManuallyDrop::new(unsafe { Mbuf::from_raw(NonNull::new_unchecked(raw)) });
            if drop_it(&view) {
                free_slots(&mut [raw]);
                freed += 1;
            } else {
                self.slots[kept] = raw;
                kept += 1;
            }
        }
        self.len = kept;
        freed
    }
}

impl Drop for MbufBurst {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// A count of mbufs in a burst (at most [`MbufBurst::CAPACITY`] = 32) as the `u16` DPDK's
/// burst calls take; the bound makes the conversion exact.
fn burst_len(n: usize) -> u16 {
    u16::try_from(n.min(MbufBurst::CAPACITY)).unwrap_or(0)
}

fn free_slots(slots: &mut [*mut ffi::rte_mbuf]) {
    if slots.is_empty() {
        return;
    }
    let count = c_uint::from(burst_len(slots.len()));
    // SAFETY: every pointer is an owned mbuf that its holder has just given up.
    unsafe { ffi::rte_pktmbuf_free_bulk(slots.as_mut_ptr(), count) }
}

/// Iterator returned by [`MbufBurst::drain`].
#[derive(Debug)]
pub struct Drain<'a> {
    burst: &'a mut MbufBurst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.end {
            return None;
        }
        let raw = self.burst.slots[self.next];
        self.next += 1;
        // SAFETY: slots[next..end] are owned non-null mbufs the burst gave to this Drain;
        // each is handed out once.
        Some(unsafe { Mbuf::from_raw(NonNull::new_unchecked(raw)) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Drain<'_> {}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        free_slots(&mut self.burst.slots[self.next..self.end]);
    }
}

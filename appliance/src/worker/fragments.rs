//! The worker's side of IP fragments: buffers the fast path holds in numbered slots
//! (`Verdict::Hold`) until their datagram's first fragment is decided, and the split of
//! an IPv4 datagram larger than its out port's MTU (`Verdict::Fragment`).
//!
//! The fast path keeps the metadata (which slot belongs to which datagram, deadlines) and
//! names the slots to act on in `FastPath::take_released`: `Run` → the buffer goes
//! through the fast path again with the port it arrived on (it follows its first fragment
//! now), `Expired` → it is freed (the fast path counted `fragment_timeout`). The slots are
//! an array of `fragment_holds` entries and the re-run queue is as long, both allocated
//! once: nothing is allocated per packet, and every buffer is either in a slot, in the
//! queue, or gone (dropping the worker frees what is left).

use std::collections::VecDeque;

use pipelines::fragment::Release;
use pipelines::refragment::{self, SplitError};

/// Buffers of held fragments by hold slot, and those released to run again.
#[derive(Debug)]
pub(super) struct FragmentHolds<B> {
    /// `slots[s]`: the input port and buffer held in slot `s`.
    slots: Vec<Option<(u16, B)>>,
    /// Released to run again, oldest first.
    again: VecDeque<(u16, B)>,
    /// Slots in use.
    held: usize,
}

impl<B> FragmentHolds<B> {
    /// `slots` hold slots (`FastPathParams::fragment_holds`).
    pub fn new(slots: u16) -> FragmentHolds<B> {
        let n = usize::from(slots);
        FragmentHolds {
            slots: (0..n).map(|_| None).collect(),
            again: VecDeque::with_capacity(n),
            held: 0,
        }
    }

    /// Keeps `buf`, received on `in_port`, in `slot`. The fast path hands out each slot
    /// once until it releases it; a slot it names beyond the array (never) frees the
    /// buffer, and one still occupied (never) gives up its old buffer: the fast path's
    /// view of the slot is the one that will be released.
    pub fn hold(&mut self, slot: u16, in_port: u16, buf: B) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            let old = s.replace((in_port, buf));
            debug_assert!(old.is_none(), "hold slot {slot} given twice");
            if old.is_none() {
                self.held += 1;
            }
        }
    }

    /// Acts on the fast path's released slots: `Run` moves the buffer to the re-run
    /// queue, `Expired` frees it. Returns how many buffers were freed.
    pub fn release(&mut self, released: impl Iterator<Item = Release>) -> u64 {
        let mut freed = 0;
        for r in released {
            let (Release::Run { slot } | Release::Expired { slot }) = r;
            let Some(held) = self.slots.get_mut(usize::from(slot)).and_then(Option::take) else {
                continue;
            };
            self.held -= 1;
            match r {
                Release::Run { .. } => self.again.push_back(held),
                Release::Expired { .. } => freed += 1,
            }
        }
        freed
    }

    /// The oldest released fragment to run again, with its input port.
    pub fn next_again(&mut self) -> Option<(u16, B)> {
        self.again.pop_front()
    }

    /// Whether it holds nothing, in slots or to run again: then the fast path has no
    /// slot to release either (it releases only slots it handed out, which are here), so
    /// the loop need not ask it each round.
    pub fn is_idle(&self) -> bool {
        self.held == 0 && self.again.is_empty()
    }

    /// Buffers held in slots now.
    #[cfg(test)]
    fn held(&self) -> usize {
        let n = self.slots.iter().filter(|s| s.is_some()).count();
        assert_eq!(n, self.held);
        n
    }
}

/// Where the IP header starts: after the Ethernet header and up to two VLAN tags (the
/// fast path accepts no more).
fn l3_offset(frame: &[u8]) -> Option<usize> {
    let mut at = 12;
    for _ in 0..3 {
        let ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
        if ethertype != 0x8100 && ethertype != 0x88a8 {
            return Some(at + 2);
        }
        at += 4;
    }
    None
}

/// Splits the IPv4 datagram in `frame` (rewritten by the fast path, no DF) into frames of
/// at most `mtu` bytes of IP, calling `piece(head, data)` for each in order (see
/// [`refragment::split_ipv4`]); returns how many.
///
/// # Errors
/// The frame cannot be split (not IPv4, DF set, an MTU below 68): nothing is emitted.
pub(super) fn split(
    frame: &[u8],
    mtu: u16,
    piece: impl FnMut(&[u8], &[u8]),
) -> Result<usize, SplitError> {
    let l3 = l3_offset(frame).ok_or(SplitError::Malformed)?;
    refragment::split_ipv4(frame, l3, mtu, piece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_slots_run_again_in_order_or_are_freed() {
        let mut h = FragmentHolds::new(4);
        h.hold(2, 1, "a");
        h.hold(0, 0, "b");
        h.hold(3, 1, "c");
        // Slot beyond the array: the buffer is not kept.
        h.hold(9, 0, "lost");
        assert_eq!(h.held(), 3);
        let freed = h.release(
            [
                Release::Run { slot: 0 },
                Release::Expired { slot: 3 },
                Release::Run { slot: 2 },
                // Empty and out-of-range slots are ignored.
                Release::Run { slot: 1 },
                Release::Expired { slot: 7 },
            ]
            .into_iter(),
        );
        assert_eq!(freed, 1);
        assert_eq!(h.held(), 0);
        assert!(!h.is_idle(), "two to run again");
        assert_eq!(h.next_again(), Some((0, "b")));
        assert_eq!(h.next_again(), Some((1, "a")));
        assert_eq!(h.next_again(), None);
        assert!(h.is_idle());
    }

    #[test]
    fn ip_header_after_zero_one_or_two_vlan_tags() {
        let mut f = vec![0u8; 30];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(l3_offset(&f), Some(14));
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        f[16..18].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(l3_offset(&f), Some(18));
        f[12..14].copy_from_slice(&[0x88, 0xa8]);
        f[16..18].copy_from_slice(&[0x81, 0x00]);
        f[20..22].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(l3_offset(&f), Some(22));
        f[20..22].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(l3_offset(&f), None, "three tags");
        assert_eq!(l3_offset(&f[..13]), None, "cut short");
    }
}

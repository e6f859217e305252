//! Datagrams waiting for their next hop to be resolved, like a kernel's ARP queue.
//!
//! A `Resolve` verdict holds the datagram, untouched, with the port it came in on; when
//! the slow path publishes new neighbors the worker runs the held datagrams through the
//! fast path again (as if they arrived on that port). A datagram keeps the deadline of
//! its *first* hold ([`HOLD_TIME`] after it), however often it is held again, so a next
//! hop that never resolves costs it at most that long. Fixed capacity, allocated once.

use std::collections::VecDeque;
use std::time::Duration;

/// How many datagrams a worker holds for neighbor resolution.
pub const HOLD_CAPACITY: usize = 256;
/// How long a datagram waits for its neighbor, from its first hold.
pub const HOLD_TIME: Duration = Duration::from_secs(3);
/// [`HOLD_TIME`] in the fast path's nanoseconds.
pub(super) const HOLD_NANOS: u64 = HOLD_TIME.as_secs() * 1_000_000_000;

/// One held datagram.
#[derive(Debug)]
pub(super) struct HeldFrame<B> {
    /// Fast-path time after which it is dropped.
    pub deadline: u64,
    /// The port it arrived on.
    pub in_port: u16,
    /// The untouched frame.
    pub buf: B,
}

/// The hold queue, oldest first.
#[derive(Debug)]
pub(super) struct Held<B> {
    queue: VecDeque<HeldFrame<B>>,
}

impl<B> Held<B> {
    pub fn new() -> Held<B> {
        Held {
            queue: VecDeque::with_capacity(HOLD_CAPACITY),
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Holds a frame at the back; hands it back when the queue is full.
    pub fn hold(&mut self, frame: HeldFrame<B>) -> Result<(), HeldFrame<B>> {
        if self.queue.len() >= HOLD_CAPACITY {
            return Err(frame);
        }
        self.queue.push_back(frame);
        Ok(())
    }

    /// Takes the oldest frame.
    pub fn pop(&mut self) -> Option<HeldFrame<B>> {
        self.queue.pop_front()
    }

    /// Puts a frame just taken back at the front.
    pub fn unpop(&mut self, frame: HeldFrame<B>) {
        self.queue.push_front(frame);
    }

    /// Drops every frame whose deadline is before `now` (wherever it is in the queue: a
    /// frame held again keeps its first deadline behind younger ones); returns how many.
    pub fn expire(&mut self, now: u64) -> u64 {
        let before = self.queue.len();
        self.queue.retain(|f| f.deadline >= now);
        // At most HOLD_CAPACITY: the conversion cannot fail.
        u64::try_from(before - self.queue.len()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(deadline: u64, tag: u8) -> HeldFrame<u8> {
        HeldFrame {
            deadline,
            in_port: 0,
            buf: tag,
        }
    }

    #[test]
    fn expiry_drops_late_frames_anywhere_in_the_queue() {
        let mut h = Held::new();
        h.hold(frame(10, 1)).unwrap();
        h.hold(frame(30, 2)).unwrap();
        // Held again with its first deadline, behind a younger frame.
        h.hold(frame(5, 3)).unwrap();
        assert_eq!(h.expire(10), 1, "deadline 5 is past, 10 is not yet");
        assert_eq!(h.expire(11), 1);
        assert_eq!(h.len(), 1);
        assert_eq!(h.pop().map(|f| f.buf), Some(2));
    }

    #[test]
    fn capacity_is_bounded_and_unpop_restores_the_order() {
        let mut h = Held::new();
        for i in 0..HOLD_CAPACITY {
            h.hold(frame(1, u8::try_from(i % 256).unwrap())).unwrap();
        }
        let refused = h.hold(frame(1, 9)).expect_err("full");
        assert_eq!(refused.buf, 9);
        let first = h.pop().unwrap();
        assert_eq!(first.buf, 0);
        h.unpop(first);
        assert_eq!(h.pop().map(|f| f.buf), Some(0));
    }

    #[test]
    fn hold_time_in_nanoseconds() {
        assert_eq!(u128::from(HOLD_NANOS), HOLD_TIME.as_nanos());
    }
}

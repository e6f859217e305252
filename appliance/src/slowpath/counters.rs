//! Slow-path counters: atomics shared between the slow-path thread (the only writer of all
//! but `channel_overflow`), the workers (which count their failed hand-overs) and the
//! metrics exporter (which reads a [`SlowPathStats`] snapshot).

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Sender, TrySendError};

use super::SlowPathMsg;

/// Declares the atomic counter block and its plain snapshot from one field list, so the
/// two can never drift apart.
macro_rules! counters {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// Live slow-path counters. Share one `Arc<SlowPathCounters>` between the slow
        /// path, every worker and the metrics exporter. All updates are `Relaxed`: each
        /// counter is independent and only ever grows.
        #[derive(Debug, Default)]
        pub struct SlowPathCounters {
            $($(#[doc = $doc])+ pub $name: AtomicU64,)+
        }

        /// A point-in-time copy of [`SlowPathCounters`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct SlowPathStats {
            $($(#[doc = $doc])+ pub $name: u64,)+
        }

        impl SlowPathCounters {
            /// Reads every counter (each one atomically, the set not as a whole).
            pub fn snapshot(&self) -> SlowPathStats {
                SlowPathStats { $($name: self.$name.load(Ordering::Relaxed),)+ }
            }

            /// `(name, value)` pairs in declaration order, for the metrics exporter.
            pub fn named(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)+]
            }
        }
    };
}

counters! {
    /// `Frame` messages taken from the channel (whatever became of them).
    frames_handled,
    /// Frames given to the [`FrameSink`](super::FrameSink).
    frames_sent,
    /// ARP replies sent for own addresses and VIPs.
    arp_replies,
    /// Neighbor advertisements sent for own addresses and VIPs.
    nd_replies,
    /// ICMP and ICMPv6 echo replies sent.
    echo_replies,
    /// ARP requests and neighbor solicitations sent (first resolutions and refreshes).
    resolutions_sent,
    /// Neighbor entries created or changed from ARP/NDP.
    resolutions_learned,
    /// Resolutions abandoned after the configured number of unanswered probes.
    resolutions_failed,
    /// Learned entries removed because their refreshes went unanswered.
    neighbors_expired,
    /// New entries not learned because the table was at capacity.
    neighbors_table_full,
    /// ICMP destination-unreachable messages sent for rejected flows.
    rejects_sent,
    /// Rejects not answered because the token bucket was empty.
    rejects_rate_limited,
    /// Well-formed frames that needed no answer (not for us, unsupported type, VLAN…).
    ignored,
    /// Frames that failed a length, version or checksum check.
    malformed,
    /// Messages a worker could not hand over because the channel was full or closed.
    channel_overflow,
}

impl SlowPathCounters {
    /// Hands `msg` to the slow path without blocking; on failure the message is dropped
    /// (its frame buffer freed by `Drop`), `channel_overflow` is incremented and `false`
    /// returned. This is the only way workers should send.
    pub fn try_send<B>(&self, tx: &Sender<SlowPathMsg<B>>, msg: SlowPathMsg<B>) -> bool {
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.channel_overflow.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    pub(super) fn bump(counter: &AtomicU64) {
        Self::add(counter, 1);
    }

    pub(super) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_send_counts_overflow_and_drops_the_message() {
        let counters = SlowPathCounters::default();
        let (tx, rx) = crossbeam_channel::bounded::<SlowPathMsg<Vec<u8>>>(1);
        assert!(counters.try_send(&tx, SlowPathMsg::Shutdown));
        assert!(!counters.try_send(&tx, SlowPathMsg::Shutdown));
        assert_eq!(counters.snapshot().channel_overflow, 1);
        drop(rx);
        assert!(!counters.try_send(&tx, SlowPathMsg::Shutdown));
        assert_eq!(counters.snapshot().channel_overflow, 2);
    }

    #[test]
    fn named_lists_every_counter_once() {
        let counters = SlowPathCounters::default();
        SlowPathCounters::bump(&counters.malformed);
        let named = counters.named();
        assert_eq!(named.len(), 15);
        assert!(named.contains(&("malformed", 1)));
        assert_eq!(counters.snapshot().malformed, 1);
    }
}

//! Slow-path counters: atomics shared between the slow-path thread (the only writer of all
//! but `channel_overflow` and `frames_unsent`), the workers (which count their failed
//! hand-overs), the frame sink and the metrics exporter (which reads a [`SlowPathStats`]
//! snapshot). Declared once with `pipelines::counters!`: adding a counter is one line.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Sender, TrySendError};

use super::SlowPathMsg;

pipelines::counters! {
    /// Live slow-path counters. Share one `Arc<SlowPathCounters>` between the slow path,
    /// every worker and the metrics exporter. All updates are `Relaxed`: each counter is
    /// independent and only ever grows. The metric names are the `event` labels of
    /// `udplb_slow_path_total`.
    pub shared struct SlowPathCounters => SlowPathStats {
        /// `Frame` messages taken from the channel (whatever became of them).
        frames_handled: counter("frames_handled", "Frame messages taken from the channel."),
        /// Frames given to the [`FrameSink`](super::FrameSink).
        frames_sent: counter("frames_sent", "Frames given to the frame sink."),
        /// ARP replies sent for own addresses and VIPs.
        arp_replies: counter("arp_replies", "ARP replies sent."),
        /// Neighbor advertisements sent for own addresses and VIPs.
        nd_replies: counter("nd_replies", "Neighbor advertisements sent."),
        /// ICMP and ICMPv6 echo replies sent.
        echo_replies: counter("echo_replies", "ICMP and ICMPv6 echo replies sent."),
        /// ARP requests and neighbor solicitations sent (first resolutions and refreshes).
        resolutions_sent: counter("resolutions_sent", "ARP requests and neighbor solicitations sent."),
        /// Neighbor entries created or changed from ARP/NDP.
        resolutions_learned: counter("resolutions_learned", "Neighbor entries created or changed."),
        /// Resolutions abandoned after the configured number of unanswered probes.
        resolutions_failed: counter("resolutions_failed", "Resolutions abandoned unanswered."),
        /// Learned entries removed because their refreshes went unanswered.
        neighbors_expired: counter("neighbors_expired", "Learned neighbors removed when silent."),
        /// New entries not learned because the table was at capacity.
        neighbors_table_full: counter("neighbors_table_full", "Neighbors not learned: table full."),
        /// ICMP destination-unreachable messages sent for rejected flows.
        rejects_sent: counter("rejects_sent", "ICMP destination-unreachable messages sent."),
        /// Rejects not answered because the token bucket was empty.
        rejects_rate_limited: counter("rejects_rate_limited", "Rejects not sent: rate limit."),
        /// ICMP time exceeded sent for datagrams whose TTL / hop limit ran out here.
        time_exceeded_sent: counter("time_exceeded_sent", "ICMP time exceeded messages sent."),
        /// ICMP Frag Needed / ICMPv6 Packet Too Big sent for datagrams larger than the
        /// out port's MTU that may not be fragmented.
        too_big_sent: counter("too_big_sent", "ICMP Frag Needed and Packet Too Big messages sent."),
        /// Time exceeded and too big not sent: the rate limit (per source or in all).
        icmp_errors_rate_limited: counter(
            "icmp_errors_rate_limited",
            "Time exceeded and too big messages not sent: rate limit."
        ),
        /// Well-formed frames that needed no answer (not for us, unsupported type, VLAN…).
        ignored: counter("ignored", "Well-formed frames that needed no answer."),
        /// Frames that failed a length, version or checksum check.
        malformed: counter("malformed", "Frames that failed a length, version or checksum check."),
        /// Messages a worker could not hand over because the channel was full or closed.
        channel_overflow: counter("channel_overflow", "Messages lost: the channel was full."),
        /// Frames the [`FrameSink`](super::FrameSink) could not pass on for transmission
        /// (counted by the sink: no buffer, or the transmitting worker's queue full).
        frames_unsent: counter("frames_unsent", "Frames the sink could not pass on."),
    }
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
    fn every_counter_has_one_metric_and_reads_back() {
        // A distinct value per counter through its field name; a counter missing from
        // the snapshot or the metrics, or two fields under one name, would show.
        let mut stats = SlowPathStats::default();
        for (i, d) in SlowPathStats::METRICS.iter().enumerate() {
            *stats.counter_mut(d.field).expect("every declared field") =
                u64::try_from(i + 1).expect("small");
        }
        let metrics: Vec<(&str, u64)> = stats.metrics().map(|m| (m.name, m.value)).collect();
        let n = SlowPathStats::METRICS.len();
        assert_eq!(metrics.len(), n);
        let mut names: Vec<&str> = metrics.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "metric names are unique");
        let values: Vec<u64> = metrics.iter().map(|(_, v)| *v).collect();
        assert_eq!(
            values,
            (1..=n)
                .map(|i| u64::try_from(i).expect("small"))
                .collect::<Vec<_>>()
        );

        let counters = SlowPathCounters::default();
        SlowPathCounters::bump(&counters.malformed);
        let snapshot = counters.snapshot();
        assert_eq!(snapshot.malformed, 1);
        assert!(snapshot
            .metrics()
            .any(|m| m.name == "malformed" && m.value == 1));
        assert_eq!(snapshot.metrics().map(|m| m.value).sum::<u64>(), 1);
    }
}

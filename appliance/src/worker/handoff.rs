//! Full-NAT replies passed to the worker that owns their flow.
//!
//! RSS steers a backend's reply by its own hash, not by which worker allocated the SNAT
//! port it is addressed to. The fast path recognises such a reply (`Verdict::Handoff`,
//! the owner from `PortRange::owner`) and the worker passes it to the owner over a
//! bounded channel, untouched, with the port it arrived on (the owner's fast path checks
//! the frame against that port); the owner processes it with its own flow table. A full
//! channel never blocks: the reply is dropped and counted.

use crossbeam_channel::{Receiver, Sender};

/// One worker's ends of the hand-off channels; `B` is the frame buffer.
#[derive(Debug)]
pub struct Handoff<B> {
    /// This worker's index.
    worker_id: u16,
    /// Replies other workers pass to this one: `(input port, frame)`.
    rx: Receiver<(u16, B)>,
    /// `to[w]` reaches worker `w` (this worker's own entry is unused).
    to: Vec<Sender<(u16, B)>>,
}

impl<B> Handoff<B> {
    /// Channels for `workers` workers, each bounded to `depth` frames; element `w` is
    /// worker `w`'s.
    pub fn mesh(workers: u16, depth: usize) -> Vec<Handoff<B>> {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers)
            .map(|_| crossbeam_channel::bounded::<(u16, B)>(depth))
            .unzip();
        (0..workers)
            .zip(rxs)
            .map(|(worker_id, rx)| Handoff {
                worker_id,
                rx,
                to: txs.clone(),
            })
            .collect()
    }

    /// A worker alone: nothing to receive, nobody to pass to (a `Handoff` verdict is
    /// counted as `handoff_overflow`).
    pub fn solo() -> Handoff<B> {
        Handoff {
            worker_id: 0,
            rx: crossbeam_channel::never(),
            to: Vec::new(),
        }
    }

    /// This worker's index.
    pub fn worker_id(&self) -> u16 {
        self.worker_id
    }

    /// Passes `frame`, received on `in_port`, to `worker`; false (the frame dropped) when
    /// that is this worker, an unknown one, or its channel is full.
    pub(super) fn pass(&self, worker: u16, in_port: u16, frame: B) -> bool {
        match self.to.get(usize::from(worker)) {
            Some(tx) if worker != self.worker_id => tx.try_send((in_port, frame)).is_ok(),
            _ => false,
        }
    }

    /// The next reply another worker passed here, if any.
    pub(super) fn try_recv(&self) -> Option<(u16, B)> {
        self.rx.try_recv().ok()
    }
}

//! Health probes through the slow path (see `crate::backend_health`): sends the probes
//! the checker hands over, from the port's own address, to the next hop's MAC; passes
//! answers and ICMP errors about probes back to the checker. Kept apart from the host
//! stack's own answers: only frames to a probe source port or quoting one are taken.

use std::net::IpAddr;
use std::time::Instant;

use super::input::Fate;
use super::{FrameSink, SlowPath};
use crate::backend_health::{wire, ProbeDatagram, ProbeEvent, ProbeTap};

impl SlowPath {
    /// Sends health probes from now on, and passes what answers them to `tap.events`.
    #[must_use]
    pub fn with_probes(mut self, tap: ProbeTap) -> Self {
        self.probe_tap = Some(tap);
        self
    }

    /// Sends one probe; tells the checker when it cannot (no own address of the family
    /// on the port, next hop not resolved yet: a resolution is started).
    pub(super) fn on_probe(&mut self, p: ProbeDatagram, now: Instant, sink: &mut dyn FrameSink) {
        let why = match self.probe_source(&p) {
            Err(why) => why,
            Ok((src, mac)) => match self.neighbors.lookup(p.next_hop) {
                Some((_, dst_mac)) => {
                    if wire::probe_frame(
                        &mut self.tx,
                        (mac, dst_mac),
                        src,
                        p.src_port,
                        p.target,
                        &p.payload,
                    ) {
                        self.transmit(p.port, sink);
                        return;
                    }
                    "next hop of another address family"
                }
                None => {
                    self.on_resolve(p.port, p.next_hop, now, sink);
                    "next hop unresolved"
                }
            },
        };
        self.tell_checker(ProbeEvent::Unsent {
            to: p.target,
            from_port: p.src_port,
            why,
        });
    }

    /// The probe's source address and MAC: the port's own address whose prefix holds
    /// the next hop.
    fn probe_source(&self, p: &ProbeDatagram) -> Result<(IpAddr, [u8; 6]), &'static str> {
        let state = self.ports.get(&p.port).ok_or("no such port")?;
        let src = match p.target.ip() {
            IpAddr::V4(_) => match p.next_hop {
                IpAddr::V4(h) => state.source_v4_for(h).map(IpAddr::V4),
                IpAddr::V6(_) => None,
            },
            IpAddr::V6(_) => match p.next_hop {
                IpAddr::V6(h) => state.source_v6_for(h).map(IpAddr::V6),
                IpAddr::V4(_) => None,
            },
        };
        let src = src.ok_or("no own address of that family on the port")?;
        Ok((src, state.mac.0))
    }

    /// A frame about a probe (an answer to a probe port, an ICMP unreachable quoting
    /// one), for one of the port's addresses: handed to the checker. `None`: not about
    /// a probe, the host stack goes on.
    pub(super) fn probe_answer(&mut self, port: u16, frame: &[u8]) -> Option<Fate> {
        let tap = self.probe_tap.as_ref()?;
        let (event, to) = wire::classify(frame, tap.ports)?;
        if !self.ports.get(&port)?.answers_for(to) {
            return None;
        }
        self.tell_checker(event);
        Some(Fate::Done)
    }

    fn tell_checker(&self, event: ProbeEvent) {
        if let Some(tap) = &self.probe_tap {
            // A full channel loses the event: the probe fails at its deadline.
            let _ = tap.events.try_send(event);
        }
    }
}

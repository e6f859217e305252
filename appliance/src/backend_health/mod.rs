//! Backend health: which endpoints of a policed Service take no new flows.
//!
//! From the `UDPBackendPolicy` checks the configuration compiles
//! (`pipelines::spec::HealthCheckSpec`):
//! - **active**: UDP or DNS probes sent by the appliance through its own ports (the slow
//!   path, [`wire::probe_frame`]) from its address on the port facing the endpoint and a
//!   source port outside the SNAT pool ([`checker::probe_ports`]), so the fast path hands
//!   the answers and ICMP errors about them to the slow path, which passes them here
//!   ([`wire::classify`], [`ProbeEvent`]); judged by [`probe`], counted in a row by
//!   [`state::ActiveState`];
//! - **passive**: the workers' per-backend `icmp_unreachable` and `reply_packets` counters
//!   ([`PassiveSource`]), ejections capped per Service ([`state::PassiveState`]);
//! - both add up to a `pipelines::health::Health` snapshot (panic per Service decided
//!   there), published to every worker when it changes ([`spawn`]), and a [`HealthReport`]
//!   for status and metrics.
//!
//! Not to be confused with [`crate::health`], the appliance's own liveness (`/healthz`).
//!
//! Modules, one concern each: `probe` (payloads, judging answers), `wire` (frames),
//! `state` (one endpoint's state machines), `checker` (schedule, probes in flight,
//! snapshot), `report` (status and metrics view), `run` (the thread and its links),
//! `passive` (the counters' source).

pub mod checker;
mod passive;
pub mod probe;
mod report;
mod run;
pub mod state;
pub mod wire;

pub use checker::{probe_ports, Checker, HealthCounters, Outgoing};
pub use passive::PassiveSource;
pub use report::{
    ActiveReport, EndpointReport, HealthReport, PassiveReport, ServiceReport, WEAK_NOTE,
};
pub use run::{spawn, HealthLinks, ProbeDatagram, ProbeTap, ReportSlot};
pub use wire::ProbeEvent;

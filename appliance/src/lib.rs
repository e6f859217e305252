//! The udplb appliance: DPDK ports and poll-mode workers running the `pipelines` fast path,
//! a smoltcp slow path for ARP/ND/ICMP, and a management thread that loads Gateway API
//! manifests (`config`) and swaps compiled tables atomically.
//!
//! Layers: `dpdk` (the only unsafe code: a thin binding to the system DPDK) → `worker`
//! (rx burst → `pipelines` → tx burst, through a `PacketIo`: DPDK queues in production,
//! in-memory queues in tests) ← `control` (compile → publish; counter sums) ← `mgmt`
//! (commands from files, signals and HTTP), `slowpath` (host stack), `metrics`
//! (Prometheus/OpenMetrics exposition), `settings` (appliance.yaml), `runtime` (start-up,
//! serve, shutdown). Scale-out: `health` (can this appliance serve?), `drain` (withdraw,
//! finish the flows, report), `announce` (VIPs over BGP through BIRD, failing closed).
#![deny(unsafe_code)]

pub mod announce;
pub mod control;
#[allow(unsafe_code)]
pub mod dpdk;
pub mod drain;
pub mod health;
pub mod metrics;
pub mod mgmt;
pub mod runtime;
pub mod settings;
pub mod slowpath;
pub mod worker;

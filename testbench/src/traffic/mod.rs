//! The traffic the bench sends and serves: our UDP echo server and load generator (one
//! client for throughput and for latency), their wire format, latency percentiles, DNS
//! (dnsmasq backends, `dig`, a steady DNS client that logs every query's fate), hand-made
//! raw frames, the driver that runs the tools inside namespaces, and the DPDK one-way
//! generator (`udpgen`) for the benchmark.

pub mod dns;
pub mod dnswatch;
pub mod echo;
pub mod latency;
pub mod loadgen;
pub mod proto;
pub mod raw;
pub mod tools;
pub mod udpgen;

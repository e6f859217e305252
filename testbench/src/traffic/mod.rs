//! The traffic the bench sends and serves: our UDP echo server and load generator (one
//! client for throughput and for latency), their wire format, latency percentiles, DNS
//! (dnsmasq backends, `dig`, a steady DNS client that logs every query's fate), hand-made raw frames, and the driver that runs the tools
//! inside namespaces.

pub mod dns;
pub mod dnswatch;
pub mod echo;
pub mod latency;
pub mod loadgen;
pub mod proto;
pub mod raw;
pub mod tools;

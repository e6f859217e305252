//! udplb fast path: parse, classify, Maglev flow pinning, NAT rewrite — I/O-free.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub mod counters;
pub mod flow;
pub mod hash;
pub mod maglev;
pub mod neighbor;
pub mod net;
pub mod parse;
pub mod spec;
pub mod tables;
pub mod testkit;
pub mod verdict;
pub mod wire;
pub mod worker;

pub use verdict::{DropReason, HostReason, OffloadRequest, Verdict};
pub use worker::{Context, Timestamp, Worker, WorkerParams};

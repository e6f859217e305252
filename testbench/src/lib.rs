//! udplb testbench: network namespaces, real clients and servers, end-to-end tests.
//!
//! The testbench drives the appliance only from outside, the way an operator sees it:
//! over kernel interfaces in network namespaces, with real DNS software and our own UDP
//! tools. It builds everything an end-to-end test needs *except* the appliance itself.
//!
//! * [`Topology`] — one lb namespace with a bridge; N client and M backend namespaces on
//!   veths into it; the appliance joins by TAP ([`Topology::attach_tap`], for DPDK
//!   `net_tap`) or by veth ([`Topology::appliance_veth`], for `net_af_packet` /
//!   `net_af_xdp`). Addresses come from [`Addressing`] (benchmark ranges only).
//!   [`TopologyBuilder::kernel_router`] makes the lb kernel route instead, to test the
//!   bench without udplb. Drop removes everything, also on panic; `testbench cleanup`
//!   ([`cleanup::remove_stale`]) removes what killed runs left.
//! * [`Dnsmasq`] and [`dig`] — a DNS server per backend answering `whoami.test` with its
//!   own name, and the client that reads it.
//! * [`Tools`] — our `echo` server (replies with its name and the client address it saw)
//!   and multi-flow `loadgen` (per-flow backend, loss, latency percentiles; or one-way
//!   blast), run as `testbench` subcommands inside namespaces.
//! * [`raw::send_frames`] — hand-made Ethernet frames, for malformed-traffic tests.
//!
//! Every external command is bounded in time ([`exec::run`]); every long-running child is
//! a [`Process`] that is killed and reaped on drop. Names carry the pid and a counter
//! ([`names::RunId`]), so tests run in parallel without colliding.
//!
//! Tests that need root call [`skip_unless_root`] first and return early (with a message)
//! when it says so.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod addressing;
pub mod appliance;
// TODO(redesign): bench.rs is being split into bench/ modules in parallel; its eleven
// float/usize casts are fixed there, then this allow goes.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]
pub mod bench;
pub mod cleanup;
pub mod demo;
pub mod dns;
pub mod echo;
pub mod error;
pub mod exec;
pub mod latency;
pub mod loadgen;
pub mod manifests;
pub mod names;
pub mod netns;
pub mod proto;
pub mod raw;
pub mod tools;
pub mod topology;

pub use addressing::{Addressing, IfAddr};
pub use dns::{dig, DigQuery, DigReply, Dnsmasq};
pub use error::{Error, Result};
pub use exec::Process;
pub use loadgen::{LoadgenConfig, Mode, Report};
pub use netns::Netns;
pub use proto::EchoStats;
pub use tools::{EchoServer, RunningLoadgen, Tools};
pub use topology::{Host, Role, Topology, TopologyBuilder};

/// Whether this process runs with effective uid 0 (needed for namespaces).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// For tests: returns true (after printing why) when `test` must be skipped because the
/// process is not root.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        false
    } else {
        eprintln!("skipping {test}: needs root (network namespaces)");
        true
    }
}

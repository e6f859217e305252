//! udplb testbench: network namespaces, real clients and servers, end-to-end tests and
//! benchmarks.
//!
//! The testbench drives the appliance only from outside, the way an operator sees it:
//! over kernel interfaces in network namespaces, with real DNS software and our own UDP
//! tools.
//!
//! * The environment: [`Topology`] — one lb namespace with a bridge; N client and M
//!   backend namespaces on veths into it; the appliance joins by TAP
//!   ([`Topology::attach_tap`], for DPDK `net_tap`) or by veth
//!   ([`Topology::appliance_veth`], for `net_af_packet` / `net_af_xdp`). Addresses come
//!   from [`Addressing`] (benchmark ranges only). [`TopologyBuilder::kernel_router`] makes
//!   the lb kernel route instead, to test the bench without udplb. Drop removes
//!   everything, also on panic; `testbench cleanup` ([`cleanup::remove_stale`]) removes
//!   what killed runs left. [`counters`] reads the kernel's packet counters in a
//!   namespace.
//! * [`appliance`] — the real `udplb` in the lb namespace, its management API and metrics.
//! * [`traffic`] — what is sent and served: [`Dnsmasq`] and [`dig`] (a DNS server per
//!   backend answering `whoami.test` with its own name, and the client that reads it);
//!   [`Tools`] — our `echo` server (replies with its name and the client address it saw)
//!   and multi-flow `loadgen` (per-flow backend, loss, latency percentiles and
//!   distribution, echo or DNS requests; or one-way blast), run as `testbench`
//!   subcommands inside namespaces; [`traffic::raw::send_frames`] — hand-made Ethernet
//!   frames, for malformed-traffic tests.
//! * [`mod@bench`] — `testbench bench-peers`: udplb side by side with nginx, nftables and
//!   dnsdist, and the `dpdk-testpmd` driver.
//!
//! Every external command is bounded in time ([`exec::run`]); every long-running child is
//! a [`Process`] that is killed and reaped on drop. Names carry the pid and a counter
//! ([`names::RunId`]), so tests run in parallel without colliding.
//!
//! Almost everything needs root (network namespaces); tests that do are marked
//! `#[ignore = "needs root: …"]`, so that `cargo test` as another user reports them as
//! ignored, and `cargo test -- --include-ignored` runs them.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod addressing;
pub mod appliance;
pub mod bench;
pub mod cleanup;
pub mod counters;
pub mod demo;
pub mod error;
pub mod exec;
pub mod manifests;
pub mod metrics;
pub mod names;
pub mod netns;
pub mod reliability;
pub mod topology;
pub mod traffic;

pub use addressing::{Addressing, IfAddr};
pub use error::{Error, Result};
pub use exec::Process;
pub use netns::Netns;
pub use topology::{Host, Role, Topology, TopologyBuilder};
pub use traffic::dns::{dig, DigQuery, DigReply, Dnsmasq};
pub use traffic::loadgen::{LoadgenConfig, Mode, Payload, Report};
pub use traffic::proto::EchoStats;
pub use traffic::tools::{EchoServer, RunningLoadgen, Tools};

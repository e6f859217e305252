//! `testbench udpgen`: a DPDK UDP generator for one-way load that is not the bottleneck.
//!
//! The kernel socket generator (`loadgen`) pays a system call and a socket per flow; this
//! one builds frames in DPDK mbufs ([`frames`]: flow `i` of a source address × port space,
//! valid IPv4/IPv6 and UDP checksums, a copy and a few stores per datagram) and hands them
//! to a kernel-attached port (`net_af_xdp` or `net_af_packet` on the client's interface),
//! so every datagram may come from a different 5-tuple without any socket.
//!
//! It runs on one lcore (the EAL pins it to that CPU) and takes [`Job`]s, one JSON line
//! each, on stdin; it answers each with a [`JobReport`] line on stdout, after a first
//! [`Hello`] line (its MAC and driver) once the port runs. End of input stops it: the
//! port is closed (removing the XDP program `net_af_xdp` attached to the interface) and
//! the EAL's runtime directory removed. [`driver::Generator`] runs it in a namespace.
//!
//! Pacing: with a rate, datagram `k` is not sent before `k / rate` seconds from the start
//! of the job (a busy loop on the monotonic clock); without one, as fast as the port takes
//! them. A burst the port refuses in part is retried, never dropped, so `sent` is what
//! the port accepted.

pub mod driver;
pub mod frames;
mod port;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub use self::frames::{FlowSpace, FrameSpec, Frames};
pub use self::port::serve;

/// One run of the generator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Destination MAC (the next hop).
    pub dst_mac: [u8; 6],
    /// The flows' sources.
    pub space: FlowSpace,
    /// Destinations; flow `i` goes to `targets[i % n]`.
    pub targets: Vec<SocketAddr>,
    /// Frame length without FCS (60 = a 64-byte frame on the wire).
    pub frame_len: usize,
    /// Flow number of datagram 0.
    pub first_flow: u64,
    /// Datagram `k` belongs to flow `first_flow + k % flows` (at least 1). With
    /// `flows == count` every datagram opens a flow of its own.
    pub flows: u64,
    /// Datagrams to send.
    pub count: u64,
    /// Datagrams per second; `None`: as fast as the port takes them.
    pub rate: Option<f64>,
    /// Hard bound of the job, milliseconds.
    pub max_ms: u64,
}

/// What a job did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    /// Datagrams the port accepted.
    pub sent: u64,
    /// From the first datagram to the last accepted, seconds.
    pub elapsed_s: f64,
    /// `sent / elapsed_s`.
    pub sent_pps: f64,
    /// Bursts the port took only in part (the rest was retried).
    pub tx_partial: u64,
    /// Times no mbuf was free (the port still held them).
    pub alloc_failures: u64,
    /// Frames received on the port meanwhile (freed).
    pub received: u64,
    /// Whether the job ended at its time bound before `count` (the normal end of an
    /// unpaced job given a large count).
    pub cut_at_bound: bool,
    /// The port's own `opackets` / `oerrors` over the job.
    pub port_opackets: u64,
    /// See `port_opackets`.
    pub port_oerrors: u64,
    /// Why the job was refused.
    pub error: Option<String>,
}

/// The generator's first line: its port is up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The port's MAC (the source MAC of every frame).
    pub mac: [u8; 6],
    /// The DPDK driver name, e.g. `net_af_xdp`.
    pub driver: String,
}

/// How `testbench udpgen` starts.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// The DPDK device, e.g. `net_af_xdp0,iface=eth0,start_queue=0,queue_count=1`.
    pub device: String,
    /// The lcore (= CPU) it runs on.
    pub lcore: u32,
    /// DPDK `--file-prefix`, unique per process.
    pub file_prefix: String,
}

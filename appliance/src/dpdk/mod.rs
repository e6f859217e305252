//! Thin binding to the system DPDK (Debian 12: 22.11, pkg-config `libdpdk`). The only module
//! of the workspace with `unsafe` code; every block states why it is sound.
//!
//! `build.rs` generates [`ffi`] with bindgen and compiles `shim.c`; this module wraps it:
//!
//! - [`Eal`]: initialised once per process; lcores, [`Eal::launch`] of closures on worker
//!   lcores, [`Eal::register_thread`], [`Eal::cleanup`] (refused while DPDK objects live).
//! - [`Mempool`] and the owned [`Mbuf`] (freed on drop; single segment only).
//! - [`Device`] strings → EAL arguments ([`eal_args_for`]) → [`PortBuilder`] → [`Port`]
//!   (queues, symmetric RSS masked by the device, [`ChecksumOffload`] capability, MTU, MAC,
//!   link, [`PortStats`], xstats) → one [`RxQueue`]/[`TxQueue`] handle per queue.
//! - [`MbufBurst`]: a reusable fixed array of owned mbufs for `rx_burst`/`tx_burst`, so the
//!   worker loop allocates nothing.
//! - [`ring_port_pair`]: two ports joined back to back by rings, for in-process tests.
//!
//! Lifetimes DPDK leaves to the programmer are enforced here: a port is closed only when its
//! queue handles are gone, a mempool is freed only when no mbuf of it is out (else leaked and
//! logged), and the EAL is cleaned up only when no mempool or port remains.

mod burst;
mod device;
mod eal;
mod error;
mod ffi;
mod ids;
mod mbuf;
mod mempool;
mod port;
mod queue;
mod ring;

pub use burst::{Drain, MbufBurst};
pub use device::{eal_args_for, Device, InvalidDevice};
pub use eal::{Eal, LcoreJob, RegisteredThread, RuntimeDir};
pub use error::{DpdkError, Result};
pub use ids::{LcoreId, PortId, QueueId, SocketId};
pub use mbuf::{Mbuf, TxChecksum};
pub use mempool::Mempool;
pub use port::{
    symmetric_rss_key, ChecksumOffload, LinkStatus, Port, PortBuilder, PortStats, RSS_IP_UDP,
};
pub use queue::{RxQueue, TxQueue};
pub use ring::ring_port_pair;

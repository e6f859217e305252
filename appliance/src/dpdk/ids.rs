//! Typed identifiers, so a queue number is never passed where a port number is expected.

use std::fmt;

use super::ffi;

/// An ethdev port number (`uint16_t port_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// A queue number within one port (`uint16_t queue_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u16);

/// A logical core as the EAL numbers it (`unsigned lcore_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LcoreId(pub u32);

/// A NUMA socket, or [`SocketId::ANY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub i32);

impl SocketId {
    /// No preference (`SOCKET_ID_ANY`).
    pub const ANY: SocketId = SocketId(ffi::SOCKET_ID_ANY);
}

macro_rules! display_inner {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    )*};
}
display_inner!(PortId, QueueId, LcoreId, SocketId);

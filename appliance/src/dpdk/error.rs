//! The error type of the DPDK binding: which call failed, and DPDK's reason.

use std::ffi::CStr;

use super::ffi;
use super::ids::LcoreId;

/// A failed DPDK operation. Packet-level faults are never errors: they are counted drops.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// A DPDK call returned a negative value or NULL; `errno` is the positive error number
    /// (from the return value or `rte_errno`).
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function that failed, e.g. `rte_eth_dev_configure`.
        call: &'static str,
        /// Positive errno value.
        errno: i32,
        /// DPDK's text for `errno` (`rte_strerror`).
        message: String,
    },
    /// `Eal::init` was called when the EAL is already running in this process.
    #[error("the EAL is already initialised in this process")]
    EalAlreadyInitialised,
    /// A DPDK object was requested before `Eal::init` succeeded.
    #[error("the EAL is not initialised (call Eal::init first)")]
    EalNotInitialised,
    /// `Eal::cleanup` ran: DPDK cannot be used again in this process.
    #[error("the EAL was cleaned up; DPDK cannot be used again in this process")]
    EalCleanedUp,
    /// An argument is outside what DPDK or the device accepts.
    #[error("invalid {what}: {reason}")]
    InvalidArgument {
        /// The argument or builder field, e.g. `rx_queues`.
        what: &'static str,
        /// Why it was rejected, with the limit that applies.
        reason: String,
    },
    /// No ethdev has this name (the device was not given to the EAL, or failed to probe).
    #[error("no DPDK port named {0:?} (was its device passed to the EAL with -a/--vdev?)")]
    NoSuchPort(String),
    /// The object cannot be released or stopped while something still uses it.
    #[error("{0}")]
    Busy(String),
    /// The mempool had no free mbuf.
    #[error("mempool {0:?} has no free mbuf")]
    NoMbuf(String),
    /// The closure launched on an lcore panicked.
    #[error("the function launched on lcore {0} panicked")]
    LcorePanicked(LcoreId),
}

/// Result alias of the DPDK binding.
pub type Result<T> = std::result::Result<T, DpdkError>;

impl DpdkError {
    /// Builds a [`DpdkError::Call`] from a positive errno value.
    pub(crate) fn call(call: &'static str, errno: i32) -> Self {
        let errno = errno.abs();
        // SAFETY: rte_strerror accepts any integer and returns a pointer to a static or
        // thread-local NUL-terminated string, which we copy before any other DPDK call.
        let message = unsafe { CStr::from_ptr(ffi::rte_strerror(errno)) }
            .to_string_lossy()
            .into_owned();
        DpdkError::Call {
            call,
            errno,
            message,
        }
    }

    /// Builds a [`DpdkError::Call`] from the calling thread's `rte_errno`, for calls that
    /// signal failure with NULL or -1.
    pub(crate) fn from_rte_errno(call: &'static str) -> Self {
        // SAFETY: reads a thread-local integer; no preconditions.
        let errno = unsafe { ffi::udplb_rte_errno() };
        Self::call(call, errno)
    }

    /// The errno of a failed DPDK call, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            DpdkError::Call { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// Turns DPDK's "negative errno on failure" convention into a `Result`.
pub(crate) fn check(call: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(DpdkError::call(call, ret))
    } else {
        Ok(ret)
    }
}

/// Like [`check`] for calls that return -1 and set `rte_errno`.
pub(crate) fn check_errno(call: &'static str, ret: i32) -> Result<i32> {
    if ret < 0 {
        Err(DpdkError::from_rte_errno(call))
    } else {
        Ok(ret)
    }
}

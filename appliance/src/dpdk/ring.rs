//! Two ethdev ports joined back to back by rings (`rte_eth_from_rings`): what one port
//! sends, the other receives. For in-process tests of the worker loop without a NIC.

use std::ffi::{c_uint, c_void, CString};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use super::eal;
use super::error::{check_errno, DpdkError, Result};
use super::ffi;
use super::ids::{PortId, SocketId};
use super::port::PortBuilder;

/// Ring names must be unique in the process; a counter keeps them unique and short.
static NEXT_RING: AtomicU32 = AtomicU32::new(0);

/// The rings under a ring port pair. Freed (after draining the mbufs still queued) once both
/// ports are gone.
#[derive(Debug)]
pub(crate) struct RingBacking {
    rings: Vec<NonNull<ffi::rte_ring>>,
    /// Set once creation succeeded and the EAL counts this object.
    _counted: Option<Counted>,
}

// SAFETY: rte_ring is a lock-free queue built for use across threads; this struct only
// frees the rings, after every port using them is closed.
unsafe impl Send for RingBacking {}
// SAFETY: see Send; no method takes `&self` to touch the rings.
unsafe impl Sync for RingBacking {}

impl RingBacking {
    fn create(count: usize, ring_size: u32, socket: SocketId) -> Result<RingBacking> {
        let mut backing = RingBacking {
            rings: Vec::with_capacity(count),
            _counted: None,
        };
        for _ in 0..count {
            let name = format!("udplb_ring{}", NEXT_RING.fetch_add(1, Ordering::Relaxed));
            let c_name = CString::new(name).map_err(|e| DpdkError::InvalidArgument {
                what: "ring name",
                reason: e.to_string(),
            })?;
            let flags = ffi::RING_F_SP_ENQ | ffi::RING_F_SC_DEQ | ffi::RING_F_EXACT_SZ;
            // SAFETY: c_name is a valid C string for the call (DPDK copies it); size and
            // flags are validated by DPDK.
            let raw = unsafe { ffi::rte_ring_create(c_name.as_ptr(), ring_size, socket.0, flags) };
            // On failure `backing` drops and frees the rings created so far.
            backing.rings.push(
                NonNull::new(raw).ok_or_else(|| DpdkError::from_rte_errno("rte_ring_create"))?,
            );
        }
        Ok(backing)
    }
}

impl Drop for RingBacking {
    fn drop(&mut self) {
        for ring in &self.rings {
            // Bounded: the ring holds at most its size, and nobody enqueues any more.
            loop {
                let mut obj: *mut c_void = ptr::null_mut();
                // SAFETY: the ring is alive and no port uses it any more (both are closed
                // before the last Arc<RingBacking> drops).
                if unsafe { ffi::rte_ring_dequeue(ring.as_ptr(), &mut obj) } != 0 {
                    break;
                }
                // SAFETY: ring ports only queue mbufs, each owned by the ring until now.
                unsafe { ffi::rte_pktmbuf_free(obj.cast()) };
            }
            // SAFETY: the ring is empty and unused; freed once.
            unsafe { ffi::rte_ring_free(ring.as_ptr()) };
        }
    }
}

/// Owns the vdev that `rte_eth_from_rings` created: removes it (closing the port if still
/// open) on drop, then releases the rings.
#[derive(Debug)]
pub(crate) struct RingVdev {
    name: CString,
    _backing: Arc<RingBacking>,
    _counted: Counted,
}

impl Drop for RingVdev {
    fn drop(&mut self) {
        // SAFETY: the vdev was created by rte_eth_from_rings under this name; the port (if
        // still open) is stopped and unused, since its last handle is gone.
        let ret = unsafe { ffi::rte_vdev_uninit(self.name.as_ptr()) };
        if ret < 0 {
            log::warn!("rte_vdev_uninit({:?}) failed: {ret}", self.name);
        }
    }
}

/// Keeps `Eal::cleanup` away while ring memory exists.
#[derive(Debug)]
struct Counted;

impl Drop for Counted {
    fn drop(&mut self) {
        eal::object_released();
    }
}

/// Creates two ring-backed ports named `name_a` and `name_b` (both must start with
/// `net_ring`, the driver's name, and be unique), each with `queues` RX and TX queues of
/// `ring_size` slots: A's TX queue q feeds B's RX queue q and the other way round. Returns
/// builders to configure and start as any other port.
///
/// # Errors
/// [`DpdkError::InvalidArgument`] for a bad name or count; ring or vdev creation failures.
pub fn ring_port_pair(
    name_a: &str,
    name_b: &str,
    queues: u16,
    ring_size: u32,
    socket: SocketId,
) -> Result<(PortBuilder, PortBuilder)> {
    let mut c_names = Vec::with_capacity(2);
    for name in [name_a, name_b] {
        if !name.starts_with("net_ring") || name.len() >= ffi::RTE_ETH_NAME_MAX_LEN as usize {
            return Err(DpdkError::InvalidArgument {
                what: "ring port name",
                reason: format!(
                    "{name:?} must start with \"net_ring\" and be shorter than 64 bytes"
                ),
            });
        }
        c_names.push(CString::new(name).map_err(|_| DpdkError::InvalidArgument {
            what: "ring port name",
            reason: format!("{name:?} contains a NUL byte"),
        })?);
    }
    if queues == 0 || name_a == name_b {
        return Err(DpdkError::InvalidArgument {
            what: "ring port pair",
            reason: format!(
                "needs at least one queue ({queues}) and two names ({name_a}, {name_b})"
            ),
        });
    }
    let q = usize::from(queues);
    let mut backing = eal::create_object(|| RingBacking::create(2 * q, ring_size, socket))?;
    backing._counted = Some(Counted);
    let backing = Arc::new(backing);
    let (a_to_b, b_to_a) = backing.rings.split_at(q);
    let raw = |rings: &[NonNull<ffi::rte_ring>]| -> Vec<*mut ffi::rte_ring> {
        rings.iter().map(|r| r.as_ptr()).collect()
    };
    let mut builders = Vec::with_capacity(2);
    for (c_name, rx, tx) in [
        (&c_names[0], raw(b_to_a), raw(a_to_b)),
        (&c_names[1], raw(a_to_b), raw(b_to_a)),
    ] {
        let counted = eal::create_object(|| Ok(Counted))?;
        let n = c_uint::from(queues);
        let numa = c_uint::try_from(socket.0).unwrap_or(0);
        // SAFETY: the name is a valid C string; rx and tx each hold `queues` valid rings that
        // outlive the port (RingVdev keeps `backing` until the vdev is removed).
        let ret = unsafe {
            ffi::rte_eth_from_rings(c_name.as_ptr(), rx.as_ptr(), n, tx.as_ptr(), n, numa)
        };
        let port = u16::try_from(check_errno("rte_eth_from_rings", ret)?)
            .map_err(|_| DpdkError::call("rte_eth_from_rings", libc::ERANGE))?;
        let vdev = RingVdev {
            name: c_name.clone(),
            _backing: Arc::clone(&backing),
            _counted: counted,
        };
        builders.push(PortBuilder::for_ring_vdev(PortId(port), vdev)?);
    }
    let b = builders
        .pop()
        .ok_or(DpdkError::NoSuchPort(name_b.to_owned()))?;
    let a = builders
        .pop()
        .ok_or(DpdkError::NoSuchPort(name_a.to_owned()))?;
    Ok((a, b))
}

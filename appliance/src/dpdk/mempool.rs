//! Packet mbuf pools (`rte_pktmbuf_pool_create`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::Arc;

use super::eal;
use super::error::{DpdkError, Result};
use super::ffi;
use super::ids::SocketId;

/// A pool of packet mbufs. Cloning shares the pool; it is freed when the last clone drops,
/// unless mbufs are still out (then it is leaked, logged, and [`super::Eal::cleanup`] stays
/// refused), since freeing it would leave those mbufs dangling.
#[derive(Debug, Clone)]
pub struct Mempool {
    inner: Arc<PoolInner>,
}

#[derive(Debug)]
struct PoolInner {
    raw: NonNull<ffi::rte_mempool>,
    name: String,
    data_room: u16,
}

// SAFETY: a DPDK mempool is built for concurrent use: get/put go through a multi-producer,
// multi-consumer ring (plus per-lcore caches owned by their lcore), and the counters we read
// are atomic snapshots.
unsafe impl Send for PoolInner {}
// SAFETY: see `Send`; every method takes `&self` and DPDK synchronises internally.
unsafe impl Sync for PoolInner {}

const _: () = assert!(ffi::RTE_MBUF_DEFAULT_BUF_SIZE <= u16::MAX as u32);

impl Mempool {
    /// Data room per mbuf that holds a 2048-byte frame after the 128-byte headroom
    /// (`RTE_MBUF_DEFAULT_BUF_SIZE`).
    // A bindgen u32 constant (2176), checked to fit at compile time below.
    #[allow(clippy::cast_possible_truncation)]
    pub const DEFAULT_DATA_ROOM: u16 = ffi::RTE_MBUF_DEFAULT_BUF_SIZE as u16;

    /// Creates a pool of `n_mbufs` mbufs, each with `data_room` bytes of buffer (headroom
    /// included), a per-lcore cache of `cache` mbufs, on `socket`. `name` must be unique in
    /// the process.
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] for a bad name or a data room smaller than the
    /// headroom; `EEXIST` for a name in use; `ENOMEM` when memory is short; EAL state errors.
    pub fn new(
        name: &str,
        n_mbufs: u32,
        cache: u32,
        data_room: u16,
        socket: SocketId,
    ) -> Result<Mempool> {
        // DPDK prefixes the name with "MP_" for the pool's ring and memzone.
        if name.is_empty() || name.len() + 3 >= ffi::RTE_MEMPOOL_NAMESIZE as usize {
            return Err(DpdkError::InvalidArgument {
                what: "mempool name",
                reason: format!(
                    "{name:?} must have 1 to {} bytes",
                    ffi::RTE_MEMPOOL_NAMESIZE - 4
                ),
            });
        }
        let c_name = CString::new(name).map_err(|_| DpdkError::InvalidArgument {
            what: "mempool name",
            reason: format!("{name:?} contains a NUL byte"),
        })?;
        if u32::from(data_room) <= ffi::RTE_PKTMBUF_HEADROOM {
            return Err(DpdkError::InvalidArgument {
                what: "mempool data_room",
                reason: format!(
                    "{data_room} bytes leave no room after the {}-byte headroom",
                    ffi::RTE_PKTMBUF_HEADROOM
                ),
            });
        }
        let raw = eal::create_object(|| {
            // SAFETY: c_name is a valid C string for the call; DPDK copies it. Other
            // arguments are plain integers that DPDK validates.
            let raw = unsafe {
                ffi::rte_pktmbuf_pool_create(
                    c_name.as_ptr(),
                    n_mbufs,
                    cache,
                    0,
                    data_room,
                    socket.0,
                )
            };
            NonNull::new(raw).ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create"))
        })?;
        Ok(Mempool {
            inner: Arc::new(PoolInner {
                raw,
                name: name.to_owned(),
                data_room,
            }),
        })
    }

    /// The name the pool was created with.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Packet bytes one mbuf holds after its headroom: the largest frame a single-segment
    /// mbuf of this pool can carry.
    pub fn frame_room(&self) -> usize {
        usize::from(self.inner.data_room) - ffi::RTE_PKTMBUF_HEADROOM as usize
    }

    /// Mbufs free in the pool, per-lcore caches included (`rte_mempool_avail_count`).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is alive while `self` is; the count is a racy but safe snapshot.
        unsafe { ffi::rte_mempool_avail_count(self.inner.raw.as_ptr()) }
    }

    /// Mbufs taken from the pool and not yet returned (`rte_mempool_in_use_count`): 0 at
    /// shutdown means nothing leaked.
    pub fn in_use(&self) -> u32 {
        // SAFETY: as for `available`.
        unsafe { ffi::rte_mempool_in_use_count(self.inner.raw.as_ptr()) }
    }

    /// The raw pool, for allocation and queue setup inside this module.
    pub(crate) fn as_ptr(&self) -> *mut ffi::rte_mempool {
        self.inner.raw.as_ptr()
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        // SAFETY: the pool is alive until freed below.
        let in_use = unsafe { ffi::rte_mempool_in_use_count(self.raw.as_ptr()) };
        if in_use != 0 {
            log::warn!(
                "mempool {:?} dropped with {in_use} mbufs still in use: leaking it",
                self.name
            );
            return;
        }
        // SAFETY: this is the last handle (Arc), no mbuf of the pool is outstanding, and
        // ports that use the pool hold a clone, so none can refer to it any more.
        unsafe { ffi::rte_mempool_free(self.raw.as_ptr()) };
        eal::object_released();
    }
}

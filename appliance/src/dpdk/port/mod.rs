//! Ethernet ports: a typed builder (queues, rings, RSS, checksum offload, MTU, MAC), the
//! port's lifecycle (start, stop, close on drop) and its counters.

mod builder;
mod caps;

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::eal;
use super::error::{check, DpdkError, Result};
use super::ffi;
use super::ids::{PortId, QueueId};
use super::mempool::Mempool;
use super::queue::{RxQueue, TxQueue};
use super::ring::RingVdev;

pub use builder::{symmetric_rss_key, PortBuilder, RSS_IP_UDP};
pub use caps::{ChecksumOffload, LinkStatus, PortStats};

/// Ports that have a live [`Port`]: a second owner could reconfigure or close a port while
/// the first one's queues are polled.
static OPEN_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// What a port and its queue handles share; the port is stopped and closed when the last of
/// them drops, then its ring vdev (if any), mempool and RSS key are released.
#[derive(Debug)]
pub(crate) struct PortShared {
    pub(crate) id: PortId,
    name: String,
    rx_claimed: Box<[AtomicBool]>,
    tx_claimed: Box<[AtomicBool]>,
    /// Run `rte_eth_tx_prepare` before sending (offloads that may need header fix-ups).
    pub(crate) tx_prepare: bool,
    _rss_key: Box<[u8]>,
    mempool: Option<Mempool>,
    _ring_vdev: Option<RingVdev>,
}

impl PortShared {
    /// Marks queue `q` of `claims` free again (called when its handle drops).
    pub(crate) fn release_rx(&self, q: QueueId) {
        self.rx_claimed[usize::from(q.0)].store(false, Ordering::Release);
    }

    /// See [`PortShared::release_rx`].
    pub(crate) fn release_tx(&self, q: QueueId) {
        self.tx_claimed[usize::from(q.0)].store(false, Ordering::Release);
    }
}

impl Drop for PortShared {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone, so no thread polls the port's queues; stopping an
        // already stopped port is harmless.
        let ret = unsafe { ffi::rte_eth_dev_stop(self.id.0) };
        if ret < 0 {
            log::warn!("rte_eth_dev_stop({}) failed: {ret}", self.name);
        }
        // SAFETY: the port is stopped and unused; nothing refers to it after this.
        let ret = unsafe { ffi::rte_eth_dev_close(self.id.0) };
        if ret < 0 {
            log::warn!("rte_eth_dev_close({}) failed: {ret}", self.name);
        }
        OPEN_PORTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id.0);
        eal::object_released();
    }
}

/// A configured ethdev port. Stopped and closed when it and all its queue handles are gone.
#[derive(Debug)]
pub struct Port {
    shared: Arc<PortShared>,
    started: bool,
    offload: ChecksumOffload,
    supported_offload: ChecksumOffload,
    rss_hf: u64,
    rx_ring: u16,
    tx_ring: u16,
    /// RX and TX queue counts, as configured.
    queues: (u16, u16),
    driver: String,
}

impl Port {
    /// The port number.
    pub fn id(&self) -> PortId {
        self.shared.id
    }

    /// The ethdev name (e.g. `net_tap0`, `0000:01:00.0`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The PMD's name (e.g. `net_ring`).
    pub fn driver(&self) -> &str {
        &self.driver
    }

    /// The checksum offloads enabled on this port (requested ∩ supported).
    pub fn checksum_offload(&self) -> ChecksumOffload {
        self.offload
    }

    /// The checksum offloads the device supports.
    pub fn supported_checksum_offload(&self) -> ChecksumOffload {
        self.supported_offload
    }

    /// The RSS hash functions enabled (`RTE_ETH_RSS_*` bits; 0 means no RSS).
    pub fn rss_hash_functions(&self) -> u64 {
        self.rss_hf
    }

    /// Descriptors per RX and TX queue, after adjustment to the device's limits.
    pub fn ring_sizes(&self) -> (u16, u16) {
        (self.rx_ring, self.tx_ring)
    }

    /// Number of RX and TX queues.
    pub fn queue_counts(&self) -> (u16, u16) {
        self.queues
    }

    /// Whether [`Port::start`] ran (and no [`Port::stop`] since).
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Starts the port (`rte_eth_dev_start`).
    ///
    /// # Errors
    /// The `rte_eth_dev_start` failure.
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: a configured port with queues set up; DPDK validates the id.
        let ret = unsafe { ffi::rte_eth_dev_start(self.id().0) };
        check("rte_eth_dev_start", ret)?;
        self.started = true;
        Ok(())
    }

    /// Stops the port (`rte_eth_dev_stop`); it can be started again.
    ///
    /// # Errors
    /// [`DpdkError::Busy`] while RX/TX queue handles exist (a worker may be polling), or
    /// the `rte_eth_dev_stop` failure.
    pub fn stop(&mut self) -> Result<()> {
        if Arc::strong_count(&self.shared) > 1 {
            return Err(DpdkError::Busy(format!(
                "port {}: drop its queue handles before stopping it",
                self.name()
            )));
        }
        // SAFETY: no queue handle exists (checked above), so nobody polls the port.
        let ret = unsafe { ffi::rte_eth_dev_stop(self.id().0) };
        check("rte_eth_dev_stop", ret)?;
        self.started = false;
        Ok(())
    }

    /// The RX queue `q`, to poll from one thread. Each queue has at most one handle.
    ///
    /// # Errors
    /// [`DpdkError::Busy`] if the port is not started or the queue is already taken;
    /// [`DpdkError::InvalidArgument`] for a queue the port does not have.
    pub fn rx_queue(&self, q: QueueId) -> Result<RxQueue> {
        self.claim(&self.shared.rx_claimed, q, "rx queue")?;
        Ok(RxQueue::new(Arc::clone(&self.shared), q))
    }

    /// The pool its RX queues fill their descriptors from, if it has RX queues.
    pub fn mempool(&self) -> Option<&Mempool> {
        self.shared.mempool.as_ref()
    }

    /// The TX queue `q`, to send from one thread. Each queue has at most one handle.
    ///
    /// # Errors
    /// As for [`Port::rx_queue`].
    pub fn tx_queue(&self, q: QueueId) -> Result<TxQueue> {
        self.claim(&self.shared.tx_claimed, q, "tx queue")?;
        Ok(TxQueue::new(Arc::clone(&self.shared), q))
    }

    fn claim(&self, claims: &[AtomicBool], q: QueueId, what: &'static str) -> Result<()> {
        if !self.started {
            return Err(DpdkError::Busy(format!(
                "port {}: start it before taking queues",
                self.name()
            )));
        }
        let slot = claims
            .get(usize::from(q.0))
            .ok_or_else(|| DpdkError::InvalidArgument {
                what,
                reason: format!(
                    "port {} has {} of them, not queue {q}",
                    self.name(),
                    claims.len()
                ),
            })?;
        if slot.swap(true, Ordering::AcqRel) {
            return Err(DpdkError::Busy(format!(
                "port {}: {what} {q} is already taken",
                self.name()
            )));
        }
        Ok(())
    }

    /// The MAC address (`rte_eth_macaddr_get`).
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn mac_addr(&self) -> Result<[u8; 6]> {
        let mut mac = ffi::rte_ether_addr::default();
        // SAFETY: valid out-pointer for the call.
        let ret = unsafe { ffi::rte_eth_macaddr_get(self.id().0, &mut mac) };
        check("rte_eth_macaddr_get", ret)?;
        Ok(mac.addr_bytes)
    }

    /// Sets the MAC address (`rte_eth_dev_default_mac_addr_set`).
    ///
    /// # Errors
    /// The DPDK failure (e.g. `ENOTSUP` on a PMD that cannot change it).
    pub fn set_mac_addr(&mut self, mac: [u8; 6]) -> Result<()> {
        let mut addr = ffi::rte_ether_addr { addr_bytes: mac };
        // SAFETY: valid pointer to an rte_ether_addr for the call; DPDK copies it.
        let ret = unsafe { ffi::rte_eth_dev_default_mac_addr_set(self.id().0, &mut addr) };
        check("rte_eth_dev_default_mac_addr_set", ret).map(drop)
    }

    /// The MTU (`rte_eth_dev_get_mtu`).
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn mtu(&self) -> Result<u16> {
        let mut mtu = 0u16;
        // SAFETY: valid out-pointer for the call.
        let ret = unsafe { ffi::rte_eth_dev_get_mtu(self.id().0, &mut mtu) };
        check("rte_eth_dev_get_mtu", ret)?;
        Ok(mtu)
    }

    /// Enables or disables promiscuous mode. A PMD without the notion (`ENOTSUP`) is fine
    /// when disabling.
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn set_promiscuous(&mut self, on: bool) -> Result<()> {
        let id = self.id().0;
        // SAFETY: DPDK validates the port id; no pointers involved.
        let ret = unsafe {
            if on {
                ffi::rte_eth_promiscuous_enable(id)
            } else {
                ffi::rte_eth_promiscuous_disable(id)
            }
        };
        if !on && ret == -libc::ENOTSUP {
            return Ok(());
        }
        check("rte_eth_promiscuous_enable/disable", ret).map(drop)
    }

    /// Whether promiscuous mode is on.
    pub fn is_promiscuous(&self) -> bool {
        // SAFETY: DPDK validates the port id.
        unsafe { ffi::rte_eth_promiscuous_get(self.id().0) == 1 }
    }

    /// The link state, without waiting for autonegotiation.
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn link(&self) -> Result<LinkStatus> {
        let mut link = ffi::rte_eth_link::default();
        // SAFETY: valid out-pointer for the call.
        let ret = unsafe { ffi::rte_eth_link_get_nowait(self.id().0, &mut link) };
        check("rte_eth_link_get_nowait", ret)?;
        Ok(LinkStatus {
            up: u32::from(link.link_status()) == ffi::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: u32::from(link.link_duplex()) == ffi::RTE_ETH_LINK_FULL_DUPLEX,
        })
    }

    /// The port counters (`rte_eth_stats_get`); safe to read while workers run.
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = ffi::rte_eth_stats::default();
        // SAFETY: valid out-pointer for the call.
        let ret = unsafe { ffi::rte_eth_stats_get(self.id().0, &mut s) };
        check("rte_eth_stats_get", ret)?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Resets the port counters.
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn reset_stats(&self) -> Result<()> {
        // SAFETY: DPDK validates the port id.
        let ret = unsafe { ffi::rte_eth_stats_reset(self.id().0) };
        check("rte_eth_stats_reset", ret).map(drop)
    }

    /// Extended counters by name (`rte_eth_xstats_get_names` + `rte_eth_xstats_get`):
    /// the generic `rx_good_packets`, per-queue `rx_q0_packets`, ... plus the PMD's own.
    ///
    /// # Errors
    /// The DPDK failure.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        let id = self.id().0;
        // SAFETY: a NULL array with size 0 asks only for the count.
        let n = check("rte_eth_xstats_get_names", unsafe {
            ffi::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0)
        })?;
        let cap = n.unsigned_abs();
        let mut names = vec![ffi::rte_eth_xstat_name::default(); cap as usize];
        let mut values = vec![ffi::rte_eth_xstat::default(); cap as usize];
        // SAFETY: `names` has room for `cap` entries.
        let got_names = check("rte_eth_xstats_get_names", unsafe {
            ffi::rte_eth_xstats_get_names(id, names.as_mut_ptr(), cap)
        })?;
        // SAFETY: `values` has room for `cap` entries.
        let got_values = check("rte_eth_xstats_get", unsafe {
            ffi::rte_eth_xstats_get(id, values.as_mut_ptr(), cap)
        })?;
        if got_names.unsigned_abs() > cap || got_values.unsigned_abs() > cap {
            // The set grew between the calls (a queue was added): report it, do not guess.
            return Err(DpdkError::call("rte_eth_xstats_get", libc::EAGAIN));
        }
        names.truncate(got_names.unsigned_abs() as usize);
        values.truncate(got_values.unsigned_abs() as usize);
        let mut out = Vec::with_capacity(values.len());
        for v in &values {
            let Some(name) = usize::try_from(v.id).ok().and_then(|i| names.get(i)) else {
                continue;
            };
            // SAFETY: DPDK NUL-terminates every name within its fixed-size array.
            let name = unsafe { CStr::from_ptr(name.name.as_ptr()) };
            out.push((name.to_string_lossy().into_owned(), v.value));
        }
        Ok(out)
    }
}

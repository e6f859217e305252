//! Ethernet ports: a typed builder (queues, rings, RSS, checksum offload, MTU, MAC), the
//! port's lifecycle (start, stop, close on drop) and its counters.

use std::collections::BTreeSet;
use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::device::Device;
use super::eal;
use super::error::{check, DpdkError, Result};
use super::ffi;
use super::ids::{PortId, QueueId, SocketId};
use super::mempool::Mempool;
use super::queue::{RxQueue, TxQueue};
use super::ring::RingVdev;

/// The symmetric Toeplitz key pattern: with 0x6d5a repeated, (src, dst) and (dst, src) hash
/// alike, so both directions of a flow land on the same queue.
const SYMMETRIC_RSS_KEY_PAIR: [u8; 2] = [0x6d, 0x5a];
/// Ports that have a live [`Port`]: a second owner could reconfigure or close a port while
/// the first one's queues are polled.
static OPEN_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// The RSS hash functions we ask for (IPv4/IPv6, with and without UDP ports), before masking
/// with what the device supports.
pub const RSS_IP_UDP: u64 = ffi::RTE_ETH_RSS_IP as u64 | ffi::RTE_ETH_RSS_UDP as u64;
/// Key length when the device does not state one (the common 40-byte Toeplitz key).
const DEFAULT_RSS_KEY_LEN: usize = 40;
/// Ethernet header plus FCS and one VLAN tag: the frame overhead on top of the MTU.
const FRAME_OVERHEAD: usize = 14 + 4 + 4;

/// Which transmit checksums a port computes in hardware: a capability value the fast path
/// consults to choose between software checksums and offload flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChecksumOffload {
    /// IPv4 header checksum (`RTE_ETH_TX_OFFLOAD_IPV4_CKSUM`).
    pub ipv4_header: bool,
    /// UDP checksum over IPv4 and IPv6 (`RTE_ETH_TX_OFFLOAD_UDP_CKSUM`).
    pub udp: bool,
}

impl ChecksumOffload {
    /// Nothing offloaded: every checksum is computed in software.
    pub const NONE: ChecksumOffload = ChecksumOffload {
        ipv4_header: false,
        udp: false,
    };

    fn from_tx_offloads(bits: u64) -> Self {
        ChecksumOffload {
            ipv4_header: bits & u64::from(ffi::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0,
            udp: bits & u64::from(ffi::RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0,
        }
    }

    fn tx_offloads(self) -> u64 {
        let mut bits = 0;
        if self.ipv4_header {
            bits |= u64::from(ffi::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
        }
        if self.udp {
            bits |= u64::from(ffi::RTE_ETH_TX_OFFLOAD_UDP_CKSUM);
        }
        bits
    }
}

/// Port counters (`rte_eth_stats`), summed over queues by the PMD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because RX queues were full (we polled too slowly).
    pub imissed: u64,
    /// Erroneous received packets.
    pub ierrors: u64,
    /// Failed transmissions.
    pub oerrors: u64,
    /// RX mbuf allocation failures (the pool ran dry).
    pub rx_nombuf: u64,
}

/// Link state (`rte_eth_link_get_nowait`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Whether the link is up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Configures a port. Obtain one for a configured [`Device`] with [`PortBuilder::new`] (or
/// from [`super::ring_port_pair`]), set what differs from the defaults (1 RX and 1 TX queue,
/// 1024 descriptors each, RSS on, checksum offload requested, promiscuous off), then
/// [`PortBuilder::build`].
#[derive(Debug)]
pub struct PortBuilder {
    id: PortId,
    name: String,
    rx_queues: u16,
    tx_queues: u16,
    rx_ring: u16,
    tx_ring: u16,
    mempool: Option<Mempool>,
    rss: bool,
    tx_checksum: bool,
    mtu: Option<u16>,
    mac: Option<[u8; 6]>,
    promiscuous: bool,
    socket: Option<SocketId>,
    ring_vdev: Option<RingVdev>,
}

fn port_by_name(name: &str) -> Result<PortId> {
    let c_name = CString::new(name).map_err(|_| DpdkError::NoSuchPort(name.to_owned()))?;
    let mut id = 0u16;
    // SAFETY: c_name is a valid C string and `id` a valid out-pointer for the call.
    let ret = unsafe { ffi::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut id) };
    if ret < 0 {
        return Err(DpdkError::NoSuchPort(name.to_owned()));
    }
    Ok(PortId(id))
}

fn dev_info(id: PortId) -> Result<ffi::rte_eth_dev_info> {
    let mut info = ffi::rte_eth_dev_info::default();
    // SAFETY: `info` is a valid, writable rte_eth_dev_info; DPDK validates the port id.
    let ret = unsafe { ffi::rte_eth_dev_info_get(id.0, &mut info) };
    check("rte_eth_dev_info_get", ret)?;
    Ok(info)
}

/// A symmetric Toeplitz key of `len` bytes (0x6d5a repeated).
pub fn symmetric_rss_key(len: usize) -> Vec<u8> {
    SYMMETRIC_RSS_KEY_PAIR
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

impl PortBuilder {
    /// A builder for the port of `device`, which must have been given to the EAL (see
    /// [`super::eal_args_for`]).
    ///
    /// # Errors
    /// [`DpdkError::NoSuchPort`] if no port has the device's name; EAL state errors.
    pub fn new(device: &Device) -> Result<PortBuilder> {
        Self::by_name(device.port_name())
    }

    /// A builder for the port named `name` (`rte_eth_dev_get_port_by_name`).
    ///
    /// # Errors
    /// [`DpdkError::NoSuchPort`] if no port has that name; EAL state errors.
    pub fn by_name(name: &str) -> Result<PortBuilder> {
        eal::running()?;
        Ok(Self::with_id(port_by_name(name)?, name.to_owned()))
    }

    pub(crate) fn for_ring_vdev(id: PortId, vdev: RingVdev) -> Result<PortBuilder> {
        let name = port_name(id)?;
        let mut builder = Self::with_id(id, name);
        builder.ring_vdev = Some(vdev);
        Ok(builder)
    }

    fn with_id(id: PortId, name: String) -> PortBuilder {
        PortBuilder {
            id,
            name,
            rx_queues: 1,
            tx_queues: 1,
            rx_ring: 1024,
            tx_ring: 1024,
            mempool: None,
            rss: true,
            tx_checksum: true,
            mtu: None,
            mac: None,
            promiscuous: false,
            socket: None,
            ring_vdev: None,
        }
    }

    /// The port being configured.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// RX queues (one per worker).
    pub fn rx_queues(mut self, n: u16) -> Self {
        self.rx_queues = n;
        self
    }

    /// TX queues (one per worker).
    pub fn tx_queues(mut self, n: u16) -> Self {
        self.tx_queues = n;
        self
    }

    /// Descriptors per RX queue (adjusted to the device's limits).
    pub fn rx_ring_size(mut self, n: u16) -> Self {
        self.rx_ring = n;
        self
    }

    /// Descriptors per TX queue (adjusted to the device's limits).
    pub fn tx_ring_size(mut self, n: u16) -> Self {
        self.tx_ring = n;
        self
    }

    /// The pool RX queues fill their descriptors from (required when there are RX queues).
    pub fn mempool(mut self, pool: &Mempool) -> Self {
        self.mempool = Some(pool.clone());
        self
    }

    /// Spread flows over RX queues with a symmetric key, on the IP/UDP hash functions the
    /// device supports (only used with more than one RX queue).
    pub fn rss(mut self, on: bool) -> Self {
        self.rss = on;
        self
    }

    /// Ask for IPv4 header and UDP checksum offload; only what the device supports is
    /// enabled ([`Port::checksum_offload`] says what).
    pub fn tx_checksum_offload(mut self, on: bool) -> Self {
        self.tx_checksum = on;
        self
    }

    /// Sets the MTU (L3 bytes); the frame must fit one mbuf of the pool.
    pub fn mtu(mut self, mtu: u16) -> Self {
        self.mtu = Some(mtu);
        self
    }

    /// Sets the port's MAC address.
    pub fn mac_addr(mut self, mac: [u8; 6]) -> Self {
        self.mac = Some(mac);
        self
    }

    /// Receive frames for any destination MAC.
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }

    /// NUMA socket of the queues' memory (default: the port's own socket).
    pub fn socket(mut self, socket: SocketId) -> Self {
        self.socket = Some(socket);
        self
    }

    /// Configures the device and sets up its queues; the port is returned stopped.
    ///
    /// # Errors
    /// [`DpdkError::InvalidArgument`] naming the field (queue counts beyond the device's,
    /// MTU out of range or larger than an mbuf, missing mempool); DPDK failures naming the
    /// call.
    pub fn build(self) -> Result<Port> {
        eal::create_object(|| self.configure())
    }

    fn invalid(&self, what: &'static str, reason: String) -> DpdkError {
        DpdkError::InvalidArgument {
            what,
            reason: format!("port {}: {reason}", self.name),
        }
    }

    fn configure(self) -> Result<Port> {
        let id = self.id;
        if !OPEN_PORTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.0)
        {
            return Err(DpdkError::Busy(format!(
                "port {} is already open",
                self.name
            )));
        }
        let built = self.configure_unique();
        if built.is_err() {
            OPEN_PORTS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id.0);
        }
        built
    }

    fn configure_unique(self) -> Result<Port> {
        let info = dev_info(self.id)?;
        if self.rx_queues == 0 && self.tx_queues == 0 {
            return Err(self.invalid(
                "rx_queues/tx_queues",
                "a port needs at least one queue".into(),
            ));
        }
        if self.rx_queues > info.max_rx_queues {
            let reason = format!(
                "{} requested, the device has {}",
                self.rx_queues, info.max_rx_queues
            );
            return Err(self.invalid("rx_queues", reason));
        }
        if self.tx_queues > info.max_tx_queues {
            let reason = format!(
                "{} requested, the device has {}",
                self.tx_queues, info.max_tx_queues
            );
            return Err(self.invalid("tx_queues", reason));
        }
        let pool = match (&self.mempool, self.rx_queues) {
            (None, n) if n > 0 => {
                return Err(self.invalid("mempool", "RX queues need a mempool".into()))
            }
            (pool, _) => pool.clone(),
        };
        let mut conf = ffi::rte_eth_conf::default();
        if let Some(mtu) = self.mtu {
            if mtu < info.min_mtu || mtu > info.max_mtu {
                let reason = format!(
                    "{mtu} outside the device's {}..={}",
                    info.min_mtu, info.max_mtu
                );
                return Err(self.invalid("mtu", reason));
            }
            if let Some(pool) = &pool {
                if usize::from(mtu) + FRAME_OVERHEAD > pool.frame_room() {
                    let reason = format!(
                        "{mtu} needs frames larger than the {} bytes an mbuf of {} holds \
                         (multi-segment mbufs are not supported)",
                        pool.frame_room(),
                        pool.name()
                    );
                    return Err(self.invalid("mtu", reason));
                }
            }
            conf.rxmode.mtu = u32::from(mtu);
        }

        // The key must outlive the port: some PMDs read it again at every start.
        let key_len = match usize::from(info.hash_key_size) {
            0 => DEFAULT_RSS_KEY_LEN,
            n => n,
        };
        let mut rss_key = symmetric_rss_key(key_len).into_boxed_slice();
        let rss_hf = if self.rss && self.rx_queues > 1 {
            RSS_IP_UDP & info.flow_type_rss_offloads
        } else {
            0
        };
        if rss_hf != 0 {
            conf.rxmode.mq_mode = ffi::RTE_ETH_MQ_RX_RSS;
            let rss = &mut conf.rx_adv_conf.rss_conf;
            rss.rss_key = rss_key.as_mut_ptr();
            rss.rss_key_len = u8::try_from(key_len).unwrap_or(u8::MAX);
            rss.rss_hf = rss_hf;
        }
        let supported = ChecksumOffload::from_tx_offloads(info.tx_offload_capa);
        let offload = if self.tx_checksum {
            supported
        } else {
            ChecksumOffload::NONE
        };
        conf.txmode.offloads = offload.tx_offloads();

        // SAFETY: `conf` is a fully initialised rte_eth_conf that DPDK copies; the RSS key
        // it points to lives in `rss_key`, kept by the Port for the port's lifetime.
        let ret =
            unsafe { ffi::rte_eth_dev_configure(self.id.0, self.rx_queues, self.tx_queues, &conf) };
        check("rte_eth_dev_configure", ret)?;

        let (mut rx_ring, mut tx_ring) = (self.rx_ring, self.tx_ring);
        // SAFETY: valid out-pointers to two u16 for the call.
        let ret =
            unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(self.id.0, &mut rx_ring, &mut tx_ring) };
        check("rte_eth_dev_adjust_nb_rx_tx_desc", ret)?;

        let socket = match self.socket {
            Some(s) => s,
            // SAFETY: DPDK validates the port id.
            None => SocketId(unsafe { ffi::rte_eth_dev_socket_id(self.id.0) }),
        };
        // SOCKET_ID_ANY (-1) is passed as the unsigned value DPDK compares against.
        let socket_arg = u32::try_from(socket.0).unwrap_or(ffi::SOCKET_ID_ANY.cast_unsigned());
        for q in 0..self.rx_queues {
            let pool_ptr = pool.as_ref().map_or(std::ptr::null_mut(), Mempool::as_ptr);
            // SAFETY: default rxconf (NULL) and a mempool that the Port keeps alive (it holds
            // a clone) for as long as the queue can fill descriptors from it.
            let ret = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    self.id.0,
                    q,
                    rx_ring,
                    socket_arg,
                    std::ptr::null(),
                    pool_ptr,
                )
            };
            check("rte_eth_rx_queue_setup", ret)?;
        }
        for q in 0..self.tx_queues {
            // SAFETY: default txconf (NULL); DPDK validates the rest.
            let ret = unsafe {
                ffi::rte_eth_tx_queue_setup(self.id.0, q, tx_ring, socket_arg, std::ptr::null())
            };
            check("rte_eth_tx_queue_setup", ret)?;
        }

        let mut port = Port {
            shared: Arc::new(PortShared {
                id: self.id,
                name: self.name,
                rx_claimed: (0..self.rx_queues)
                    .map(|_| AtomicBool::new(false))
                    .collect(),
                tx_claimed: (0..self.tx_queues)
                    .map(|_| AtomicBool::new(false))
                    .collect(),
                tx_prepare: offload != ChecksumOffload::NONE,
                _rss_key: rss_key,
                mempool: pool,
                _ring_vdev: self.ring_vdev,
            }),
            started: false,
            offload,
            supported_offload: supported,
            rss_hf,
            rx_ring,
            tx_ring,
            queues: (self.rx_queues, self.tx_queues),
            driver: driver_name(&info),
        };
        if let Some(mac) = self.mac {
            port.set_mac_addr(mac)?;
        }
        port.set_promiscuous(self.promiscuous)?;
        Ok(port)
    }
}

fn driver_name(info: &ffi::rte_eth_dev_info) -> String {
    if info.driver_name.is_null() {
        return String::new();
    }
    // SAFETY: a non-null driver_name is a static NUL-terminated string of the PMD.
    unsafe { CStr::from_ptr(info.driver_name) }
        .to_string_lossy()
        .into_owned()
}

fn port_name(id: PortId) -> Result<String> {
    let mut buf = [0 as c_char; ffi::RTE_ETH_NAME_MAX_LEN as usize];
    // SAFETY: `buf` has RTE_ETH_NAME_MAX_LEN bytes, the size DPDK writes at most.
    let ret = unsafe { ffi::rte_eth_dev_get_name_by_port(id.0, buf.as_mut_ptr()) };
    check("rte_eth_dev_get_name_by_port", ret)?;
    // SAFETY: on success DPDK wrote a NUL-terminated name into `buf`.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

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

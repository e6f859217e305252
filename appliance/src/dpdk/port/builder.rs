//! The typed port builder: queues, rings, RSS (a symmetric Toeplitz key), checksum
//! offload, MTU, MAC, promiscuity; `build` configures the ethdev and returns the [`Port`].

use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::super::device::Device;
use super::super::eal;
use super::super::error::{check, DpdkError, Result};
use super::super::ffi;
use super::super::ids::{PortId, SocketId};
use super::super::mempool::Mempool;
use super::super::ring::RingVdev;

use super::{ChecksumOffload, Port, PortShared, OPEN_PORTS};

/// The symmetric Toeplitz key pattern: with 0x6d5a repeated, (src, dst) and (dst, src) hash
/// alike, so both directions of a flow land on the same queue.
const SYMMETRIC_RSS_KEY_PAIR: [u8; 2] = [0x6d, 0x5a];
/// The RSS hash functions we ask for (IPv4/IPv6, with and without UDP ports), before masking
/// with what the device supports.
pub const RSS_IP_UDP: u64 = ffi::RTE_ETH_RSS_IP as u64 | ffi::RTE_ETH_RSS_UDP as u64;
/// Key length when the device does not state one (the common 40-byte Toeplitz key).
const DEFAULT_RSS_KEY_LEN: usize = 40;
/// Ethernet header plus FCS and one VLAN tag: the frame overhead on top of the MTU.
const FRAME_OVERHEAD: usize = 14 + 4 + 4;

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

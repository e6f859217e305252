//! What a port can do and what it reports: checksum offload capabilities, counters, link.

use super::super::ffi;

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

    pub(super) fn from_tx_offloads(bits: u64) -> Self {
        ChecksumOffload {
            ipv4_header: bits & u64::from(ffi::RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0,
            udp: bits & u64::from(ffi::RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0,
        }
    }

    pub(super) fn tx_offloads(self) -> u64 {
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

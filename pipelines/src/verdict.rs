//! What the fast path decides for each packet: [`Verdict`], with a closed [`DropReason`]
//! and [`HostReason`] so that every outcome has its own counter.

use std::net::IpAddr;

/// The decision for one packet. `Copy`, so a burst of verdicts is a plain array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit the (rewritten) packet on `port`.
    Tx {
        /// Output port index (into [`crate::net::Network::ports`]).
        port: u16,
        /// Checksum work left to the NIC, when the port offers it.
        offload: Option<OffloadRequest>,
    },
    /// Hand the packet, unmodified, to the slow path (host stack).
    ToHost(HostReason),
    /// Drop the packet; the reason has been counted.
    Drop(DropReason),
    /// The packet belongs to a flow that lives on another worker: pass it, untouched and
    /// with the port it arrived on, to `worker`, which processes it as if it had
    /// received it (counted as `handoff`, not as a drop). The owner never hands the same
    /// packet on again. Two cases (see [`crate::fastpath::steer`]):
    /// - a FullNAT reply to an SNAT port of another worker's partition;
    /// - a datagram of a preserve-client listener whose flows live on their client's
    ///   owner worker (a listener with an endpoint that serves several preserve-client
    ///   listeners), in either direction.
    Handoff {
        /// The worker owning the flow ([`crate::net::PortRange::owner`] for an SNAT port,
        /// [`crate::fastpath::steer::client_owner`] for a steered listener).
        worker: u16,
    },
}

/// Checksum work the fast path left for the NIC (DPDK `ol_flags` and `l2_len`/`l3_len`).
///
/// When `udp_checksum` is set the UDP checksum field holds the pseudo-header sum that
/// `rte_ipv4_phdr_cksum` / `rte_ipv6_phdr_cksum` compute; when `ipv4_checksum` is set the
/// IPv4 header checksum field is zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OffloadRequest {
    /// Ethernet header length including VLAN tags.
    pub l2_len: u16,
    /// IP header length including IPv4 options / IPv6 extension headers.
    pub l3_len: u16,
    /// The packet is IPv6 (`RTE_MBUF_F_TX_IPV6`), else IPv4 (`RTE_MBUF_F_TX_IPV4`).
    pub ipv6: bool,
    /// Request `RTE_MBUF_F_TX_IP_CKSUM`.
    pub ipv4_checksum: bool,
    /// Request `RTE_MBUF_F_TX_UDP_CKSUM`.
    pub udp_checksum: bool,
}

/// Why a packet goes to the slow path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostReason {
    /// ARP request or reply.
    Arp,
    /// ICMPv4 or ICMPv6 (including neighbor discovery), for any destination.
    Icmp,
    /// Non-UDP traffic, or UDP outside any listener and SNAT range, addressed to one of the
    /// appliance's own addresses or a VIP.
    OwnAddress,
    /// The next hop of a forwarded packet has no neighbor entry: the slow path should
    /// resolve `next_hop` (ARP / ND) on `port` and may drop or queue this packet.
    Resolve {
        /// The address to resolve.
        next_hop: IpAddr,
        /// The port the route sends it through (where to ask).
        port: u16,
    },
    /// A new flow fell into the route's dropped-weight share: the slow path answers with
    /// ICMP destination unreachable from the VIP (rate-limited).
    Reject,
}

impl HostReason {
    /// Number of kinds (size of the counter array).
    pub const COUNT: usize = 5;
    /// Counter names, indexed by [`HostReason::index`].
    pub const NAMES: [&'static str; Self::COUNT] =
        ["arp", "icmp", "own_address", "resolve", "reject"];

    /// Counter index of this reason.
    pub fn index(self) -> usize {
        match self {
            HostReason::Arp => 0,
            HostReason::Icmp => 1,
            HostReason::OwnAddress => 2,
            HostReason::Resolve { .. } => 3,
            HostReason::Reject => 4,
        }
    }
}

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// Every reason the fast path drops a packet. Closed: a new reason is a new
        /// variant, a new counter and a new test.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in counter order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons (size of the counter array).
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name for metrics.
            pub fn name(self) -> &'static str {
                match self {
                    $(DropReason::$variant => $name,)*
                }
            }

            /// Counter index.
            pub fn index(self) -> usize {
                self as usize
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet II header.
    TruncatedEthernet = "truncated_ethernet",
    /// A VLAN tag is cut short.
    TruncatedVlan = "truncated_vlan",
    /// More than two VLAN tags, or MACsec: not supported.
    UnsupportedLink = "unsupported_link",
    /// EtherType is neither IPv4, IPv6, ARP nor VLAN.
    NonIp = "non_ip",
    /// The IP header is cut short.
    TruncatedIp = "truncated_ip",
    /// IP header fields are invalid (version, IHL, ...).
    MalformedIp = "malformed_ip",
    /// IP total / payload length disagrees with the frame.
    BadIpLength = "bad_ip_length",
    /// The IPv4 header checksum is wrong (it is verified: 20–60 bytes, cheap).
    BadIpv4Checksum = "bad_ipv4_checksum",
    /// An IPv6 extension header is malformed or cut short.
    MalformedIpv6Ext = "malformed_ipv6_ext",
    /// The UDP header is cut short, or its length field disagrees with the IP payload.
    TruncatedUdp = "truncated_udp",
    /// UDP source or destination port 0.
    MalformedUdp = "malformed_udp",
    /// The UDP checksum field holds only the pseudo-header sum and the datagram fails
    /// verification: a sender on the same host left it for TX checksum offload, and a veth
    /// handed it on unfinished. Checked only on ports that can see this (kernel-attached:
    /// `PortConfig::unfinished_rx_checksums`); the fix is on the sender's side
    /// (`ethtool -K <veth> tx off`).
    UnfinishedUdpChecksum = "unfinished_udp_checksum",
    /// An IP fragment: there is no reassembly (later fragments carry no ports).
    Fragment = "fragment",
    /// Non-UDP, non-ICMP traffic not addressed to the appliance.
    NotUdp = "not_udp",
    /// UDP not addressed to the appliance that matches no flow (transit traffic), or
    /// that claims a preserve-client backend's source address but arrived on another
    /// port than the one the appliance reaches that backend through.
    Stray = "stray",
    /// TTL / hop limit would reach zero.
    TtlExpired = "ttl_expired",
    /// UDP to a VIP on a port without a listener.
    NoListener = "no_listener",
    /// The listener has no attached route.
    NoRoute = "no_route",
    /// The route has no backend that takes new flows (all weight 0 or draining).
    NoBackend = "no_backend",
    /// Dropped-weight share, for a source the slow path cannot answer (not unicast).
    DroppedShare = "dropped_share",
    /// A FullNAT listener has no SNAT address of the packet's family.
    NoSnatAddress = "no_snat_address",
    /// This worker's SNAT port partition is exhausted.
    SnatExhausted = "snat_exhausted",
    /// FullNAT needs a flow entry to own an SNAT port; none could be created (flow table
    /// full, or new-flow rate guard), so the datagram cannot be translated reversibly.
    FullNatNoState = "fullnat_no_state",
    /// A reply that can only be translated through its flow, and that flow is not here
    /// although this worker owns it: a datagram to an SNAT address and a pool port of
    /// this worker's partition (other workers' ports are `Verdict::Handoff`), or a
    /// preserve-client reply from an endpoint shared by several listeners whose client
    /// this worker owns (the flow expired, or was never created: table full, rate guard).
    NoReverseFlow = "no_reverse_flow",
    /// No route to the rewritten destination.
    Unroutable = "unroutable",
    /// The destination MAC is neither the input port's own, broadcast, nor a multicast
    /// group the appliance joined (IPv6 all-nodes, the solicited-node groups of its own
    /// IPv6 addresses, VIPs and SNAT address): a port that delivers every frame (pcap,
    /// AF_PACKET, a promiscuous NIC, a bridge flooding unknown unicast) must not forward
    /// traffic addressed to another host.
    NotForUs = "not_for_us",
    /// A DSR listener's backend is not on-link: the route to it has a gateway, so a frame
    /// addressed to its MAC cannot reach it (DSR only rewrites the Ethernet header).
    DsrNotOnLink = "dsr_not_on_link",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_dense() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn verdict_is_small() {
        assert!(std::mem::size_of::<Verdict>() <= 24);
    }
}

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
    /// An IP fragment that arrived before its datagram's first fragment: the appliance
    /// keeps the buffer (and the port it arrived on) in its hold slot `slot`, untouched,
    /// until [`crate::FastPath::take_released`] names that slot: `Run` (the first
    /// fragment has arrived: pass the buffer through the fast path again, with its input
    /// port) or `Expired` (its datagram timed out: free it, it has been counted). The fast
    /// path keeps only metadata (see [`crate::fragment`]); slots are below
    /// [`crate::FastPathParams::fragment_holds`].
    Hold {
        /// The hold slot.
        slot: u16,
    },
    /// Like `Tx`, but the rewritten IPv4 datagram (no DF bit) is larger than `port`'s MTU:
    /// split it with [`crate::refragment::split_ipv4`] into fragments of at most `mtu`
    /// bytes and send those on `port`. Every checksum is final (no offload is requested,
    /// the UDP checksum covers the whole datagram).
    Fragment {
        /// Output port index.
        port: u16,
        /// The port's MTU (largest IP packet).
        mtu: u16,
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
    /// The datagram's TTL / hop limit would reach 0 when forwarded: the slow path sends
    /// ICMP time exceeded in transit (IPv4 type 11 code 0, ICMPv6 type 3 code 0) to the
    /// datagram's source, rate-limited (see the crate docs, "ICMP the slow path sends").
    /// Only for a unicast source and a datagram that is not a later fragment; otherwise
    /// the fast path drops it as `ttl_expired`.
    TimeExceeded,
    /// The datagram is larger than the output port's MTU and may not be fragmented on the
    /// way (IPv4 with DF set, or any IPv6): the slow path sends IPv4 destination
    /// unreachable code 4 "fragmentation needed" with next-hop MTU `mtu` (RFC 1191), or
    /// ICMPv6 packet too big with MTU `mtu` (RFC 4443 §3.2, RFC 8201), to the datagram's
    /// source, rate-limited.
    TooBig {
        /// The output port's MTU.
        mtu: u16,
    },
}

impl HostReason {
    /// Number of kinds (size of the counter array).
    pub const COUNT: usize = 7;
    /// Counter names, indexed by [`HostReason::index`].
    pub const NAMES: [&'static str; Self::COUNT] = [
        "arp",
        "icmp",
        "own_address",
        "resolve",
        "reject",
        "time_exceeded",
        "too_big",
    ];

    /// Counter index of this reason.
    pub fn index(self) -> usize {
        match self {
            HostReason::Arp => 0,
            HostReason::Icmp => 1,
            HostReason::OwnAddress => 2,
            HostReason::Resolve { .. } => 3,
            HostReason::Reject => 4,
            HostReason::TimeExceeded => 5,
            HostReason::TooBig { .. } => 6,
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
    /// An IP fragment that cannot be forwarded: not of a UDP datagram (only UDP is
    /// followed fragment by fragment), a first fragment too short to carry the UDP header
    /// (8 bytes), or one that would end beyond the 65,535-byte datagram limit.
    Fragment = "fragment",
    /// No fragment-table entry could be made for a fragmented datagram (the worker's
    /// table is full of live entries): the fragment is dropped, so none of its datagram
    /// goes through half-translated.
    FragmentTableFull = "fragment_table_full",
    /// A fragment arrived before its datagram's first fragment and could not be held:
    /// the datagram already holds the most fragments allowed, or every hold slot of the
    /// worker is in use.
    FragmentHoldFull = "fragment_hold_full",
    /// A held fragment whose datagram's first fragment did not arrive in time (counted
    /// when the hold expires; the appliance frees the buffer).
    FragmentTimeout = "fragment_timeout",
    /// Non-UDP, non-ICMP traffic not addressed to the appliance.
    NotUdp = "not_udp",
    /// UDP not addressed to the appliance that matches no flow (transit traffic), or
    /// that claims a preserve-client backend's source address but arrived on another
    /// port than the one the appliance reaches that backend through.
    Stray = "stray",
    /// TTL / hop limit would reach zero and no ICMP time exceeded may be sent about the
    /// packet (a later fragment, an ICMP error, a non-unicast source); otherwise it goes
    /// to the host (`time_exceeded`).
    TtlExpired = "ttl_expired",
    /// Larger than the output port's MTU and no ICMP error may be sent about it (an ICMP
    /// error, a later IPv4 fragment with DF, a non-unicast source); otherwise it goes to
    /// the host (`too_big`) or is fragmented (`Verdict::Fragment`).
    TooBig = "too_big",
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
    /// An ICMP error about a UDP datagram that matches no flow here (nor a
    /// preserve-client endpoint or listener that translates it without one), and that is
    /// not addressed to the appliance itself.
    IcmpNoFlow = "icmp_no_flow",
    /// An ICMP error (about a UDP datagram) whose ICMP checksum is wrong.
    IcmpBadChecksum = "icmp_bad_checksum",
    /// An ICMP error that matches a flow, but whose outer destination is not the address
    /// the flow's datagrams came from (the SNAT address, the client, the VIP), or that
    /// arrived on another port than the side of the flow it claims to come from.
    IcmpMismatch = "icmp_mismatch",
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

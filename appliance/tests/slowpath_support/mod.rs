//! Shared fixtures for the slow-path tests: one port with own addresses, VIPs and SNAT
//! addresses (on-link, not own) from the benchmarking ranges, frame builders (etherparse or literal bytes, never the code under
//! test) and an independent Internet checksum.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use appliance::slowpath::{
    PortAddresses, SlowPath, SlowPathConfig, SlowPathCounters, SlowPathMsg, SlowPathStats,
    SlowPathTuning, StaticNeighbor,
};
use etherparse::icmpv6::NeighborAdvertisementHeader;
use etherparse::{Icmpv6Type, PacketBuilder};

pub const PORT: u16 = 0;
pub const OUR_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];
pub const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];
pub const ROUTER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0xfe];
pub const STATIC_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x53];
pub const BROADCAST: [u8; 6] = [0xff; 6];

pub const OWN4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
/// Inside OWN4's prefix, but not an own address: the backends' link holds it.
pub const SNAT4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const PEER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 50);
pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
pub const STATIC4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 53);
pub const OWN6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 1);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 0x10);
pub const SNAT6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 2);
pub const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x50);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0x12, 0x3456);

pub fn config() -> SlowPathConfig {
    let port = PortAddresses {
        mac: OUR_MAC,
        own: vec![(IpAddr::V4(OWN4), 24), (IpAddr::V6(OWN6), 64)],
        vips: vec![IpAddr::V4(VIP4), IpAddr::V6(VIP6)],
        snat: vec![IpAddr::V4(SNAT4), IpAddr::V6(SNAT6)],
    };
    SlowPathConfig {
        ports: [(PORT, port)].into_iter().collect(),
        static_neighbors: vec![StaticNeighbor {
            port: PORT,
            ip: IpAddr::V4(STATIC4),
            mac: STATIC_MAC,
        }],
        tuning: SlowPathTuning::default(),
    }
}

/// A slow path stepped by hand, with a clock the test moves.
pub struct Harness {
    pub sp: SlowPath,
    pub counters: Arc<SlowPathCounters>,
    pub now: Instant,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(config())
    }

    pub fn with(config: SlowPathConfig) -> Self {
        let counters = Arc::new(SlowPathCounters::default());
        let sp = SlowPath::new(config, Arc::clone(&counters)).expect("valid test config");
        Self {
            sp,
            counters,
            now: Instant::now(),
        }
    }

    /// Handles one message and returns the frames it sent.
    pub fn send(&mut self, msg: SlowPathMsg<Vec<u8>>) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        self.sp.handle(msg, self.now, &mut out);
        out
    }

    pub fn frame(&mut self, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        self.send(SlowPathMsg::Frame { port: PORT, frame })
    }

    pub fn reject(&mut self, frame: Vec<u8>) -> Vec<(u16, Vec<u8>)> {
        self.send(SlowPathMsg::Reject { port: PORT, frame })
    }

    pub fn resolve(&mut self, next_hop: IpAddr) -> Vec<(u16, Vec<u8>)> {
        self.send(SlowPathMsg::Resolve {
            port: PORT,
            next_hop,
        })
    }

    /// Moves the clock and polls.
    pub fn advance(&mut self, by: Duration) -> Vec<(u16, Vec<u8>)> {
        self.now += by;
        let mut out = Vec::new();
        self.sp.poll(self.now, &mut out);
        out
    }

    pub fn stats(&self) -> SlowPathStats {
        self.counters.snapshot()
    }
}

/// Exactly one frame, on our port.
pub fn only(mut out: Vec<(u16, Vec<u8>)>) -> Vec<u8> {
    assert_eq!(out.len(), 1, "expected one frame, got {out:?}");
    let (port, frame) = out.remove(0);
    assert_eq!(port, PORT);
    frame
}

/// RFC 1071 one's-complement sum, folded; written here so tests do not trust the code
/// under test (or smoltcp) for checksums.
pub fn ones_complement_sum(chunks: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for chunk in chunks {
        let mut pairs = chunk.chunks_exact(2);
        for p in &mut pairs {
            sum += u64::from(u16::from_be_bytes([p[0], p[1]]));
        }
        if let [last] = pairs.remainder() {
            sum += u64::from(*last) << 8;
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).expect("folded to 16 bits")
}

/// A valid checksum makes the sum over the covered bytes 0xffff.
pub fn assert_ipv4_header_checksum(ip: &[u8]) {
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    assert_eq!(
        ones_complement_sum(&[&ip[..ihl]]),
        0xffff,
        "IPv4 header checksum"
    );
}

pub fn assert_icmpv4_checksum(icmp: &[u8]) {
    assert_eq!(ones_complement_sum(&[icmp]), 0xffff, "ICMPv4 checksum");
}

pub fn assert_icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) {
    let len = u32::try_from(icmp.len()).unwrap().to_be_bytes();
    let pseudo_tail = [len[0], len[1], len[2], len[3], 0, 0, 0, 58];
    let sum = ones_complement_sum(&[&src.octets(), &dst.octets(), &pseudo_tail, icmp]);
    assert_eq!(sum, 0xffff, "ICMPv6 checksum");
}

/// An Ethernet + ARP frame, literal bytes, padded to 60.
pub fn arp_frame(
    eth_dst: [u8; 6],
    op: u16,
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&eth_dst);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(&sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(&tha);
    f.extend_from_slice(&tpa.octets());
    f.resize(60, 0);
    f
}

pub fn echo4(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .icmpv4_echo_request(id, seq);
    let mut f = Vec::new();
    b.write(&mut f, data).unwrap();
    f
}

pub fn echo6(src: Ipv6Addr, dst: Ipv6Addr, id: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .icmpv6_echo_request(id, seq);
    let mut f = Vec::new();
    b.write(&mut f, data).unwrap();
    f
}

/// An NDP link-layer address option (type 1 source, 2 target).
pub fn lladdr_option(kind: u8, mac: [u8; 6]) -> Vec<u8> {
    let mut o = vec![kind, 1];
    o.extend_from_slice(&mac);
    o
}

/// A neighbor solicitation with hop limit 255 and the given options after the target.
pub fn ns(
    eth_src: [u8; 6],
    eth_dst: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    options: &[u8],
) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    body.extend_from_slice(options);
    let b = PacketBuilder::ethernet2(eth_src, eth_dst)
        .ipv6(src.octets(), dst.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborSolicitation);
    let mut f = Vec::new();
    b.write(&mut f, &body).unwrap();
    f
}

/// A solicited, overriding neighbor advertisement with a target link-layer option.
pub fn na(eth_src: [u8; 6], src: Ipv6Addr, target: Ipv6Addr, tll: [u8; 6]) -> Vec<u8> {
    let mut body = target.octets().to_vec();
    body.extend_from_slice(&lladdr_option(2, tll));
    let header = NeighborAdvertisementHeader {
        router: false,
        solicited: true,
        r#override: true,
    };
    let b = PacketBuilder::ethernet2(eth_src, OUR_MAC)
        .ipv6(src.octets(), OWN6.octets(), 255)
        .icmpv6(Icmpv6Type::NeighborAdvertisement(header));
    let mut f = Vec::new();
    b.write(&mut f, &body).unwrap();
    f
}

pub fn udp4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(40000, 53);
    let mut f = Vec::new();
    b.write(&mut f, payload).unwrap();
    f
}

pub fn udp6(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(PEER_MAC, OUR_MAC)
        .ipv6(src.octets(), dst.octets(), 64)
        .udp(40000, 53);
    let mut f = Vec::new();
    b.write(&mut f, payload).unwrap();
    f
}

//! The generator's datagrams: flow `i` of a [`FlowSpace`] as a complete Ethernet frame with
//! valid IPv4 (or IPv6) and UDP checksums, written with a copy and a few stores.
//!
//! Per target a template frame is built once, with the one's-complement sums of every
//! checksummed word except the source address and port. A datagram is the template with
//! its source address and port patched in and both checksums finished from those partial
//! sums, so a million distinct 5-tuples cost no more than one.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Ethernet header length (no VLAN tag).
const ETH_LEN: usize = 14;
/// IPv4 header length (no options).
const IPV4_LEN: usize = 20;
/// IPv6 header length (no extension headers).
const IPV6_LEN: usize = 40;
/// UDP header length.
const UDP_LEN: usize = 8;
/// Largest frame written (a 1500-byte IP packet; the FCS is the NIC's).
pub const MAX_FRAME: usize = 1514;
/// Smallest frame on the wire is 64 bytes with its 4-byte FCS.
pub const MIN_FRAME: usize = 60;
/// The frame check sequence the NIC appends: wire size = frame + FCS.
pub const FCS: usize = 4;
/// IP time to live / hop limit of every datagram.
const TTL: u8 = 64;
/// Repeated to fill payloads.
const PAYLOAD_PATTERN: &[u8] = b"udplb-gen ";

/// The source side of the flows: `sources` consecutive addresses from `first_source`
/// times `ports` consecutive ports from `first_port`. Flow `i` has address index
/// `i % sources` and port index `(i / sources) % ports`: consecutive datagrams of a
/// many-flow run come from different addresses, as from many clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowSpace {
    /// First source address.
    pub first_source: IpAddr,
    /// Consecutive source addresses (at least 1).
    pub sources: u32,
    /// First source port.
    pub first_port: u16,
    /// Consecutive source ports (at least 1).
    pub ports: u16,
}

impl FlowSpace {
    /// One flow: `source`, port `port`.
    pub fn single(source: IpAddr, port: u16) -> FlowSpace {
        FlowSpace {
            first_source: source,
            sources: 1,
            first_port: port,
            ports: 1,
        }
    }

    /// Distinct (address, port) pairs.
    pub fn size(&self) -> u64 {
        u64::from(self.sources) * u64::from(self.ports)
    }

    /// The source address and port of flow `flow` (taken modulo [`FlowSpace::size`]).
    pub fn tuple(&self, flow: u64) -> (IpAddr, u16) {
        let flow = flow % self.size().max(1);
        let sources = u64::from(self.sources.max(1));
        // Both quotients are below their u32/u16 bounds by construction of the modulo.
        let addr_index = u128::from(flow % sources);
        let port_index = u16::try_from(flow / sources).unwrap_or(0);
        let addr = match self.first_source {
            IpAddr::V4(a) => {
                let base = u128::from(u32::from(a));
                IpAddr::V4(u32::try_from(base + addr_index).unwrap_or(u32::MAX).into())
            }
            IpAddr::V6(a) => IpAddr::V6((u128::from(a).wrapping_add(addr_index)).into()),
        };
        (addr, self.first_port.wrapping_add(port_index))
    }

    fn validate(&self) -> Result<(), String> {
        if self.sources == 0 || self.ports == 0 {
            return Err("sources and ports must be at least 1".into());
        }
        if u32::from(self.first_port) + u32::from(self.ports) - 1 > u32::from(u16::MAX) {
            return Err(format!(
                "ports {}..+{} run past 65535",
                self.first_port, self.ports
            ));
        }
        if self.first_port == 0 {
            return Err("source port 0 is not a valid source".into());
        }
        if let IpAddr::V4(a) = self.first_source {
            if u64::from(u32::from(a)) + u64::from(self.sources) - 1 > u64::from(u32::MAX) {
                return Err(format!(
                    "{} sources from {a} run past 255.255.255.255",
                    self.sources
                ));
            }
        }
        Ok(())
    }
}

/// What to build: Ethernet addresses, the flows' sources, the destinations (flow `i` goes
/// to `targets[i % n]`) and the frame length without FCS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameSpec {
    /// Source MAC (the generator's port).
    pub src_mac: [u8; 6],
    /// Destination MAC (the next hop: the peer's or the gateway's).
    pub dst_mac: [u8; 6],
    /// The flows' sources.
    pub space: FlowSpace,
    /// Destinations, all of the sources' family.
    pub targets: Vec<SocketAddr>,
    /// Frame length without FCS, [`MIN_FRAME`]..=[`MAX_FRAME`] (60 = a 64-byte frame on
    /// the wire).
    pub frame_len: usize,
}

/// One destination's template and partial checksums.
#[derive(Clone, Debug)]
struct Template {
    bytes: Vec<u8>,
    /// Sum of the IPv4 header words with checksum and source address zero (IPv4 only).
    ip_partial: u32,
    /// Sum of the UDP pseudo-header, header and payload words with checksum, source
    /// address and source port zero.
    udp_partial: u32,
}

/// Frames of a [`FrameSpec`], ready to be written.
#[derive(Clone, Debug)]
pub struct Frames {
    templates: Vec<Template>,
    space: FlowSpace,
    v6: bool,
    len: usize,
}

/// One's-complement sum of big-endian 16-bit words (odd tail padded with zero).
fn sum_words(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(2);
    let mut sum: u32 = chunks
        .by_ref()
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// Folds a 32-bit sum to 16 bits, end-around carry included.
fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).unwrap_or(u16::MAX)
}

/// The words of an address, summed.
fn sum_addr(addr: IpAddr) -> u32 {
    match addr {
        IpAddr::V4(a) => sum_words(&a.octets()),
        IpAddr::V6(a) => sum_words(&a.octets()),
    }
}

impl Frames {
    /// Templates for every target of `spec`.
    ///
    /// # Errors
    /// A message naming what is wrong: no targets, mixed families, a frame length out of
    /// range, or a flow space that runs out of addresses or ports.
    pub fn new(spec: &FrameSpec) -> Result<Frames, String> {
        spec.space.validate()?;
        let v6 = spec.space.first_source.is_ipv6();
        if spec.targets.is_empty() {
            return Err("no targets".into());
        }
        if let Some(t) = spec.targets.iter().find(|t| t.is_ipv6() != v6) {
            return Err(format!(
                "target {t} is not of the sources' family ({})",
                spec.space.first_source
            ));
        }
        if !(MIN_FRAME..=MAX_FRAME).contains(&spec.frame_len) {
            return Err(format!(
                "frame length {} outside {MIN_FRAME}..={MAX_FRAME} (without FCS)",
                spec.frame_len
            ));
        }
        let templates = spec
            .targets
            .iter()
            .map(|t| template(spec, *t, v6))
            .collect();
        Ok(Frames {
            templates,
            space: spec.space,
            v6,
            len: spec.frame_len,
        })
    }

    /// Bytes of every frame (without FCS).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: a frame has at least [`MIN_FRAME`] bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The flows' sources.
    pub fn space(&self) -> &FlowSpace {
        &self.space
    }

    /// Writes flow `flow`'s frame into `out`, which must be [`Frames::len`] bytes long.
    ///
    /// # Panics
    /// If `out` has another length (a caller bug).
    pub fn write(&self, flow: u64, out: &mut [u8]) {
        let n = self.templates.len() as u64;
        // Below the number of templates, so it fits.
        let t = &self.templates[usize::try_from(flow % n).unwrap_or(0)];
        out.copy_from_slice(&t.bytes);
        let (src, sport) = self.space.tuple(flow);
        let src_sum = sum_addr(src);
        let (src_at, udp_at) = if self.v6 {
            (ETH_LEN + 8, ETH_LEN + IPV6_LEN)
        } else {
            (ETH_LEN + 12, ETH_LEN + IPV4_LEN)
        };
        match src {
            IpAddr::V4(a) => out[src_at..src_at + 4].copy_from_slice(&a.octets()),
            IpAddr::V6(a) => out[src_at..src_at + 16].copy_from_slice(&a.octets()),
        }
        out[udp_at..udp_at + 2].copy_from_slice(&sport.to_be_bytes());
        if !self.v6 {
            let ip = !fold(t.ip_partial + src_sum);
            out[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&ip.to_be_bytes());
        }
        let udp = match !fold(t.udp_partial + src_sum + u32::from(sport)) {
            // 0 means "no checksum" over IPv4 and is forbidden over IPv6: send its
            // one's-complement twin.
            0 => 0xffff,
            c => c,
        };
        out[udp_at + 6..udp_at + 8].copy_from_slice(&udp.to_be_bytes());
    }
}

/// The frame to `target` with source address and port zero, and its partial sums.
fn template(spec: &FrameSpec, target: SocketAddr, v6: bool) -> Template {
    let len = spec.frame_len;
    let ip_len = if v6 { IPV6_LEN } else { IPV4_LEN };
    let mut b = vec![0u8; len];
    b[0..6].copy_from_slice(&spec.dst_mac);
    b[6..12].copy_from_slice(&spec.src_mac);
    let udp_at = ETH_LEN + ip_len;
    let udp_len = len - udp_at;
    // Frames are at most 1514 bytes, so every length fits 16 bits.
    let udp_len16 = u16::try_from(udp_len).unwrap_or(u16::MAX);
    let ethertype: u16 = if v6 { 0x86dd } else { 0x0800 };
    b[12..14].copy_from_slice(&ethertype.to_be_bytes());
    let ip = &mut b[ETH_LEN..udp_at];
    if v6 {
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&udp_len16.to_be_bytes());
        ip[6] = 17;
        ip[7] = TTL;
        if let IpAddr::V6(d) = target.ip() {
            ip[24..40].copy_from_slice(&d.octets());
        }
    } else {
        ip[0] = 0x45;
        let total = u16::try_from(IPV4_LEN + udp_len).unwrap_or(u16::MAX);
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        // Don't fragment; identification 0 (RFC 6864: atomic datagrams).
        ip[6] = 0x40;
        ip[8] = TTL;
        ip[9] = 17;
        if let IpAddr::V4(d) = target.ip() {
            ip[16..20].copy_from_slice(&d.octets());
        }
    }
    let udp = &mut b[udp_at..];
    udp[2..4].copy_from_slice(&target.port().to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len16.to_be_bytes());
    for (i, byte) in udp[UDP_LEN..].iter_mut().enumerate() {
        *byte = PAYLOAD_PATTERN[i % PAYLOAD_PATTERN.len()];
    }
    let ip_partial = if v6 {
        0
    } else {
        sum_words(&b[ETH_LEN..udp_at])
    };
    // Pseudo-header (source left out), then the UDP header and payload as they stand
    // (source port and checksum are zero).
    let udp_partial = sum_addr(target.ip()) + 17 + u32::from(udp_len16) + sum_words(&b[udp_at..]);
    Template {
        bytes: b,
        ip_partial,
        udp_partial,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    use etherparse::{Ipv4Header, NetSlice, SlicedPacket, TransportSlice};

    use super::*;

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x10];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x20];

    fn spec(space: FlowSpace, targets: &[SocketAddr], frame_len: usize) -> FrameSpec {
        FrameSpec {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            space,
            targets: targets.to_vec(),
            frame_len,
        }
    }

    /// Parses `frame` with etherparse, checks both checksums with etherparse's own
    /// routines, and returns its 5-tuple (protocol is always UDP) and payload length.
    fn verified_tuple(frame: &[u8]) -> ((IpAddr, u16, IpAddr, u16), usize) {
        let p = SlicedPacket::from_ethernet(frame).expect("parses");
        let link = p.link.as_ref().expect("ethernet");
        let eth = link.to_header().expect("ethernet header");
        let eth = match eth {
            etherparse::LinkHeader::Ethernet2(e) => e,
            other => panic!("not Ethernet II: {other:?}"),
        };
        assert_eq!((eth.source, eth.destination), (SRC_MAC, DST_MAC));
        let Some(TransportSlice::Udp(udp)) = &p.transport else {
            panic!("not UDP")
        };
        let uh = udp.to_header();
        let payload = udp.payload();
        assert_ne!(uh.checksum, 0, "every datagram carries a UDP checksum");
        let (src, dst) = match &p.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h: Ipv4Header = v4.header().to_header();
                assert_eq!(
                    v4.header().header_checksum(),
                    h.calc_header_checksum(),
                    "IPv4 header checksum"
                );
                assert_eq!(h.time_to_live, TTL);
                let want = uh
                    .calc_checksum_ipv4_raw(h.source, h.destination, payload)
                    .expect("checksum");
                assert_eq!(uh.checksum, want, "UDP checksum over IPv4");
                (IpAddr::from(h.source), IpAddr::from(h.destination))
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let want = uh
                    .calc_checksum_ipv6_raw(h.source(), h.destination(), payload)
                    .expect("checksum");
                assert_eq!(uh.checksum, want, "UDP checksum over IPv6");
                (IpAddr::from(h.source()), IpAddr::from(h.destination()))
            }
            other => panic!("not IP: {other:?}"),
        };
        (
            (src, uh.source_port, dst, uh.destination_port),
            payload.len(),
        )
    }

    #[test]
    fn many_flows_are_distinct_5_tuples_with_valid_checksums() {
        let vip = SocketAddr::from(([198, 18, 0, 10], 7777));
        let space = FlowSpace {
            first_source: Ipv4Addr::new(198, 19, 64, 0).into(),
            sources: 256,
            first_port: 10_000,
            ports: 512,
        };
        for frame_len in [MIN_FRAME, 508, MAX_FRAME] {
            let frames = Frames::new(&spec(space, &[vip], frame_len)).expect("valid spec");
            let mut buf = vec![0u8; frames.len()];
            let mut seen = BTreeSet::new();
            let step = if frame_len == MIN_FRAME { 1 } else { 97 };
            for flow in (0..space.size()).step_by(step) {
                frames.write(flow, &mut buf);
                let (tuple, payload) = verified_tuple(&buf);
                assert_eq!(payload, frame_len - 42);
                assert_eq!((tuple.2, tuple.3), (vip.ip(), vip.port()));
                assert!(seen.insert(tuple), "flow {flow} repeats {tuple:?}");
            }
            if frame_len == MIN_FRAME {
                assert_eq!(seen.len(), 131_072, "every flow of the space is distinct");
                let addrs: BTreeSet<_> = seen.iter().map(|t| t.0).collect();
                let ports: BTreeSet<_> = seen.iter().map(|t| t.1).collect();
                assert_eq!((addrs.len(), ports.len()), (256, 512));
                assert_eq!(ports.first().copied(), Some(10_000));
                assert_eq!(ports.last().copied(), Some(10_511));
            }
        }
    }

    #[test]
    fn flows_wrap_and_spread_over_targets() {
        let targets = [
            SocketAddr::from(([198, 18, 1, 11], 7777)),
            SocketAddr::from(([198, 18, 1, 12], 7777)),
            SocketAddr::from(([198, 18, 1, 13], 7777)),
        ];
        let space = FlowSpace::single(Ipv4Addr::new(198, 19, 0, 100).into(), 9);
        let frames = Frames::new(&spec(space, &targets, 60)).expect("valid");
        let mut buf = vec![0u8; 60];
        let mut dsts = Vec::new();
        for flow in 0..6 {
            frames.write(flow, &mut buf);
            let (t, _) = verified_tuple(&buf);
            assert_eq!((t.0, t.1), (space.first_source, 9), "one source flow");
            dsts.push(t.2);
        }
        let want: Vec<IpAddr> = targets.iter().chain(&targets).map(|t| t.ip()).collect();
        assert_eq!(dsts, want);
        // Flow numbers beyond the space wrap to the same tuple.
        assert_eq!(space.tuple(0), space.tuple(5));
    }

    #[test]
    fn ipv6_frames_are_valid_and_distinct() {
        let vip = SocketAddr::from((Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0x10), 53));
        let space = FlowSpace {
            first_source: Ipv6Addr::new(0x2001, 2, 0, 0x100, 0, 0, 0, 0x1000).into(),
            sources: 300,
            first_port: 65_000,
            ports: 536,
        };
        let frames = Frames::new(&spec(space, &[vip], 80)).expect("valid spec");
        let mut buf = vec![0u8; 80];
        let mut seen = BTreeSet::new();
        for flow in (0..space.size()).step_by(7) {
            frames.write(flow, &mut buf);
            let (tuple, payload) = verified_tuple(&buf);
            assert_eq!(payload, 80 - 62);
            assert!(seen.insert(tuple));
        }
        assert_eq!(seen.len() as u64, space.size().div_ceil(7));
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        let v4 = SocketAddr::from(([198, 18, 0, 10], 7777));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 7777));
        let one = FlowSpace::single(Ipv4Addr::new(198, 19, 0, 100).into(), 9);
        let err = |s: FrameSpec| Frames::new(&s).expect_err("refused");
        assert!(err(spec(one, &[], 60)).contains("no targets"));
        assert!(err(spec(one, &[v6], 60)).contains("family"));
        assert!(err(spec(one, &[v4], 59)).contains("frame length"));
        assert!(err(spec(one, &[v4], 1515)).contains("frame length"));
        let ports = FlowSpace {
            first_port: 65_000,
            ports: 1_000,
            ..one
        };
        assert!(err(spec(ports, &[v4], 60)).contains("65535"));
        let addrs = FlowSpace {
            first_source: Ipv4Addr::new(255, 255, 255, 0).into(),
            sources: 300,
            ..one
        };
        assert!(err(spec(addrs, &[v4], 60)).contains("255.255.255.255"));
        let none = FlowSpace { sources: 0, ..one };
        assert!(err(spec(none, &[v4], 60)).contains("at least 1"));
    }
}

//! Helpers shared by the fragment, ICMP and health tests: a rig of one or more workers on
//! the `testkit` topology, frame builders for IP fragments and ICMP errors, and an
//! independent fragmenter, reassembler and checksum (written here from the RFCs, not
//! taken from the crate, so they check it rather than repeat it).

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use pipelines::fragment::Release;
use pipelines::health::Health;
use pipelines::neighbor::Neighbors;
use pipelines::net::{MacAddr, Network, PortRange};
use pipelines::spec::ForwardingConfig;
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit;
use pipelines::{Context, FastPath, FastPathParams, Verdict};

pub const SEC: u64 = 1_000_000_000;

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub const CLIENT4: &str = "198.19.0.7:40000";
pub const VIP4: &str = "198.18.2.1:53";
pub const PC4: &str = "198.18.2.1:54";
pub const DSR4: &str = "198.18.2.1:60";
pub const SNAT4: &str = "198.18.1.253";
pub const CLIENT6: &str = "[2001:2:0:9::7]:40000";
pub const VIP6: &str = "[2001:2:0:2::1]:53";
pub const PC6: &str = "[2001:2:0:2::1]:54";
pub const DSR6: &str = "[2001:2:0:2::1]:60";
pub const SNAT6: &str = "2001:2:0:1::fd";
/// A router on the client side (IPv4, IPv6): it sends errors about replies.
pub const ROUTER4: &str = "198.18.0.1";
pub const ROUTER6: &str = "2001:2::1";

/// Workers sharing tables, network and neighbors, as the appliance's do.
pub struct Rig {
    pub tables: Tables,
    pub network: Network,
    pub neighbors: Neighbors,
    pub workers: Vec<FastPath>,
}

pub fn params(worker: u16, workers: u16) -> FastPathParams {
    let mut p = FastPathParams::new(
        worker,
        workers,
        PortRange {
            first: 1024,
            last: 65535,
        },
    );
    p.flow_capacity = 4096;
    p
}

impl Rig {
    pub fn new(workers: u16) -> Rig {
        Rig::with(testkit::config(), testkit::network(false), workers, |_| {})
    }

    pub fn with(
        cfg: ForwardingConfig,
        network: Network,
        workers: u16,
        tune: impl Fn(&mut FastPathParams),
    ) -> Rig {
        Rig {
            tables: Tables::build(&cfg, &DataplaneParams::default()).unwrap(),
            network,
            neighbors: testkit::neighbors(4),
            workers: (0..workers)
                .map(|w| {
                    let mut p = params(w, workers);
                    tune(&mut p);
                    FastPath::new(p).unwrap()
                })
                .collect(),
        }
    }

    /// Runs `frame` on worker `w`, arriving on the port its MAC addresses (as a switch
    /// delivers it).
    pub fn run_on(&mut self, w: usize, frame: &mut [u8], now: u64) -> Verdict {
        let port = testkit::arrival_port(frame);
        self.run_port(w, port, frame, now)
    }

    pub fn run_port(&mut self, w: usize, port: u16, frame: &mut [u8], now: u64) -> Verdict {
        let ctx = Context {
            tables: &self.tables,
            network: &self.network,
            neighbors: &self.neighbors,
        };
        self.workers[w].process(&ctx, now, port, frame)
    }

    /// Worker 0.
    pub fn run(&mut self, frame: &mut [u8], now: u64) -> Verdict {
        self.run_on(0, frame, now)
    }

    /// Runs `frame` on worker `w` and follows `Handoff` verdicts (keeping the arrival
    /// port, as the appliance does); returns the last worker, the verdict and the hops.
    pub fn deliver(&mut self, w: usize, frame: &mut [u8], now: u64) -> (usize, Verdict, usize) {
        let port = testkit::arrival_port(frame);
        let mut at = w;
        let mut hops = 0;
        loop {
            match self.run_port(at, port, frame, now) {
                Verdict::Handoff { worker } => {
                    assert_ne!(usize::from(worker), at, "handed to itself");
                    at = usize::from(worker);
                    hops += 1;
                    assert!(hops <= self.workers.len() + 1, "handoff loop");
                }
                v => return (at, v, hops),
            }
        }
    }

    pub fn set_health(&mut self, h: &Arc<Health>) {
        for w in &mut self.workers {
            w.set_health(Arc::clone(h));
        }
    }

    pub fn released(&mut self, w: usize) -> Vec<Release> {
        self.workers[w].take_released().collect()
    }
}

pub fn tx_port(v: Verdict) -> u16 {
    match v {
        Verdict::Tx {
            port,
            offload: None,
        } => port,
        other => panic!("expected Tx without offload, got {other:?}"),
    }
}

/// RFC 1071: the one's-complement sum of `data` as 16-bit big-endian words, folded.
pub fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        acc += u32::from(w);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

/// The checksum that makes `data` (with its checksum field zeroed) sum to 0xffff.
pub fn internet_checksum(acc: u32, data: &[u8]) -> u16 {
    !u16::try_from(ones_sum(acc, data)).unwrap()
}

fn v6_pseudo(src: IpAddr, dst: IpAddr, len: usize, next: u8) -> u32 {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("IPv6 pseudo-header of IPv4 addresses")
    };
    let mut acc = ones_sum(0, &s.octets());
    acc = ones_sum(acc, &d.octets());
    let len = u32::try_from(len).unwrap();
    acc = ones_sum(acc, &len.to_be_bytes());
    ones_sum(acc, &[0, next])
}

/// Whether the ICMP message of the frame (IP header at 14, no VLAN) has a right
/// checksum, computed independently.
pub fn icmp_checksum_ok(frame: &[u8]) -> bool {
    match frame[12..14] {
        [0x08, 0x00] => {
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            ones_sum(0, &frame[14 + ihl..14 + total]) == 0xffff
        }
        _ => {
            let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
            let src = IpAddr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
            let dst = IpAddr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
            ones_sum(v6_pseudo(src, dst, len, 58), &frame[54..54 + len]) == 0xffff
        }
    }
}

/// Whether the IPv4 header at `at` has a right checksum.
pub fn ipv4_header_ok(frame: &[u8], at: usize) -> bool {
    let ihl = usize::from(frame[at] & 0x0f) * 4;
    ones_sum(0, &frame[at..at + ihl]) == 0xffff
}

fn ethernet(dst: MacAddr, src: MacAddr, v6: bool) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst.0);
    f.extend_from_slice(&src.0);
    f.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    f
}

fn ipv4_header(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    proto: u8,
    id: u16,
    flags: u16,
    len: usize,
) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 header of IPv6 addresses")
    };
    let total = u16::try_from(20 + len).unwrap();
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&flags.to_be_bytes());
    h.extend_from_slice(&[ttl, proto, 0, 0]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    let c = internet_checksum(0, &h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header(src: IpAddr, dst: IpAddr, hop: u8, next: u8, len: usize) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("IPv6 header of IPv4 addresses")
    };
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    h.extend_from_slice(&[next, hop]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    h
}

/// The IP packet of a frame without VLAN tags.
pub fn l3(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// Splits a whole UDP datagram frame (from `testkit::udp_frame`, no VLAN tags) into IP
/// fragments carrying at most `chunk` data bytes each (a multiple of 8), with
/// identification `id` (RFC 791 §3.2 / RFC 8200 §4.5, done here independently).
pub fn fragments(frame: &[u8], chunk: usize, id: u32) -> Vec<Vec<u8>> {
    assert_eq!(chunk % 8, 0);
    let dst_mac = MacAddr(frame[0..6].try_into().unwrap());
    let src_mac = MacAddr(frame[6..12].try_into().unwrap());
    let v6 = frame[12..14] == [0x86, 0xdd];
    let (src, dst, ttl, data) = if v6 {
        let s = IpAddr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap());
        let d = IpAddr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap());
        (s, d, frame[21], &frame[54..])
    } else {
        let s = IpAddr::from(<[u8; 4]>::try_from(&frame[26..30]).unwrap());
        let d = IpAddr::from(<[u8; 4]>::try_from(&frame[30..34]).unwrap());
        (s, d, frame[22], &frame[34..])
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len = chunk.min(data.len() - at);
        let more = at + len < data.len();
        let mut f = ethernet(dst_mac, src_mac, v6);
        let off = u16::try_from(at / 8).unwrap();
        if v6 {
            f.extend(ipv6_header(src, dst, ttl, 44, 8 + len));
            f.extend_from_slice(&[17, 0]);
            f.extend_from_slice(&(off << 3 | u16::from(more)).to_be_bytes());
            f.extend_from_slice(&id.to_be_bytes());
        } else {
            let flags = off | if more { 0x2000 } else { 0 };
            f.extend(ipv4_header(
                src,
                dst,
                ttl,
                17,
                u16::try_from(id).unwrap(),
                flags,
                len,
            ));
        }
        f.extend_from_slice(&data[at..at + len]);
        out.push(f);
        at += len;
    }
    out
}

/// One output fragment, read independently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    pub dst_mac: MacAddr,
    pub src_mac: MacAddr,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub id: u32,
    pub offset: usize,
    pub more: bool,
    pub data: Vec<u8>,
}

/// Reads a fragment frame (no VLAN tags), checking its IPv4 header checksum.
pub fn piece(frame: &[u8]) -> Piece {
    let dst_mac = MacAddr(frame[0..6].try_into().unwrap());
    let src_mac = MacAddr(frame[6..12].try_into().unwrap());
    if frame[12..14] == [0x86, 0xdd] {
        assert_eq!(frame[20], 44, "a fragment header follows");
        let fh = &frame[54..62];
        let w = u16::from_be_bytes([fh[2], fh[3]]);
        let len = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
        Piece {
            dst_mac,
            src_mac,
            src: IpAddr::from(<[u8; 16]>::try_from(&frame[22..38]).unwrap()),
            dst: IpAddr::from(<[u8; 16]>::try_from(&frame[38..54]).unwrap()),
            ttl: frame[21],
            id: u32::from_be_bytes(fh[4..8].try_into().unwrap()),
            offset: usize::from(w >> 3) * 8,
            more: w & 1 != 0,
            data: frame[62..54 + len].to_vec(),
        }
    } else {
        assert!(ipv4_header_ok(frame, 14), "IPv4 header checksum");
        let flags = u16::from_be_bytes([frame[20], frame[21]]);
        let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        Piece {
            dst_mac,
            src_mac,
            src: IpAddr::from(<[u8; 4]>::try_from(&frame[26..30]).unwrap()),
            dst: IpAddr::from(<[u8; 4]>::try_from(&frame[30..34]).unwrap()),
            ttl: frame[22],
            id: u32::from(u16::from_be_bytes([frame[18], frame[19]])),
            offset: usize::from(flags & 0x1fff) * 8,
            more: flags & 0x2000 != 0,
            data: frame[34..14 + total].to_vec(),
        }
    }
}

/// Reassembles fragments (any order) into one whole UDP datagram frame, and decodes it
/// with the testkit's independent verifier (etherparse's checksum code).
pub fn reassemble(frames: &[Vec<u8>]) -> testkit::Decoded {
    let mut ps: Vec<Piece> = frames.iter().map(|f| piece(f)).collect();
    ps.sort_by_key(|p| p.offset);
    let mut data = Vec::new();
    for p in &ps {
        assert_eq!(p.offset, data.len(), "no gap, no overlap");
        assert_eq!((p.src, p.dst, p.id), (ps[0].src, ps[0].dst, ps[0].id));
        data.extend_from_slice(&p.data);
    }
    assert!(
        !ps.last().unwrap().more,
        "the last fragment ends the datagram"
    );
    let first = &ps[0];
    let v6 = first.src.is_ipv6();
    let mut f = ethernet(first.dst_mac, first.src_mac, v6);
    if v6 {
        f.extend(ipv6_header(first.src, first.dst, first.ttl, 17, data.len()));
    } else {
        f.extend(ipv4_header(
            first.src,
            first.dst,
            first.ttl,
            17,
            0,
            0,
            data.len(),
        ));
    }
    f.extend_from_slice(&data);
    testkit::decode_verified(&f).unwrap_or_else(|e| panic!("reassembled datagram: {e}"))
}

/// An ICMP (v4) or ICMPv6 error frame `src → dst` of `kind`/`code`, with the 4 bytes
/// after the checksum `rest` (unused, MTU, pointer), quoting `quote`, from `src_mac` to
/// `dst_mac`; checksums computed here.
#[allow(clippy::too_many_arguments)]
pub fn icmp_error(
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    kind: u8,
    code: u8,
    rest: [u8; 4],
    quote: &[u8],
    src_mac: MacAddr,
    dst_mac: MacAddr,
) -> Vec<u8> {
    let v6 = src.is_ipv6();
    let mut msg = vec![kind, code, 0, 0];
    msg.extend_from_slice(&rest);
    msg.extend_from_slice(quote);
    let c = if v6 {
        internet_checksum(v6_pseudo(src, dst, msg.len(), 58), &msg)
    } else {
        internet_checksum(0, &msg)
    };
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = ethernet(dst_mac, src_mac, v6);
    if v6 {
        f.extend(ipv6_header(src, dst, ttl, 58, msg.len()));
    } else {
        f.extend(ipv4_header(src, dst, ttl, 1, 7, 0, msg.len()));
    }
    f.extend_from_slice(&msg);
    f
}

/// What an error quotes of a datagram frame (no VLAN tags): its IP header and the first
/// `after` bytes after it (IPv4: RFC 792's 8; ICMPv6: as much as fits).
pub fn quote(frame: &[u8], after: usize) -> Vec<u8> {
    let ip = l3(frame);
    let hl = if frame[12..14] == [0x86, 0xdd] {
        40
    } else {
        usize::from(ip[0] & 0x0f) * 4
    };
    ip[..(hl + after).min(ip.len())].to_vec()
}

/// An echo request (not an error) `src → dst`.
pub fn echo(src: IpAddr, dst: IpAddr, dst_mac: MacAddr) -> Vec<u8> {
    let kind = if src.is_ipv6() { 128 } else { 8 };
    icmp_error(
        src,
        dst,
        64,
        kind,
        0,
        [0, 1, 0, 1],
        b"ping",
        testkit::CLIENT_SIDE_MAC,
        dst_mac,
    )
}

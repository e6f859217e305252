//! In-place rewrite of a forwarded datagram: addresses, ports, TTL / hop limit, MACs and
//! checksums.
//!
//! Design note: checksums are updated with RFC 1624 deltas over the words that changed
//! (never recomputed over the payload), an IPv4 UDP checksum of 0 stays 0 (no checksum),
//! and a port with checksum offload gets the pseudo-header sum instead and an
//! [`OffloadRequest`] in the verdict. The buffer is written only when the verdict is `Tx`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::forward::is_unicast;
use super::hop::HopCache;
use super::Context;
use crate::checksum;
use crate::net::{ChecksumCaps, MacAddr};
use crate::parse::ParsedUdp;
use crate::verdict::{DropReason, HostReason, OffloadRequest, Verdict};
use crate::wire::{Ethernet, Ipv4, Ipv6, Udp};

/// The new addresses and ports of a rewritten datagram.
#[derive(Clone, Copy, Debug)]
pub(super) struct Rewrite {
    pub(super) src: IpAddr,
    pub(super) src_port: u16,
    pub(super) dst: IpAddr,
    pub(super) dst_port: u16,
}

pub(super) fn ip_from16(a: &[u8; 16], v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(*a))
    } else {
        IpAddr::V4(Ipv4Addr::new(a[12], a[13], a[14], a[15]))
    }
}

/// Routes, resolves and rewrites a datagram to `rw`; the packet is modified only when the
/// verdict is `Tx`.
pub(super) fn transmit(
    ctx: &Context<'_>,
    hops: &mut HopCache,
    pkt: &mut [u8],
    p: &ParsedUdp,
    rw: &Rewrite,
) -> Verdict {
    if pkt.len() - usize::from(p.l3_off) > usize::from(ctx.network.min_mtu()) {
        return transmit_large(ctx, hops, pkt, p, rw);
    }
    let hop = match hops.resolve(ctx, rw.dst) {
        Ok(h) => h,
        Err(v) => return v,
    };
    match rewrite(pkt, p, rw, hop.dst_mac, hop.src_mac, hop.caps) {
        Some(offload) => Verdict::Tx {
            port: hop.port,
            offload,
        },
        // Unreachable after a successful parse; never panic on it.
        None => Verdict::Drop(DropReason::TruncatedIp),
    }
}

/// [`transmit`] for a datagram larger than some port's MTU (out of line: the common
/// packet fits every port, one compare). If it does not fit its out port: `Frag Needed` /
/// `Packet Too Big` from the slow path (IPv4 with DF, IPv6), or rewritten in software for
/// the appliance to split (IPv4 without DF: a router fragments). Untouched unless the
/// verdict is `Tx` or `Fragment`.
#[cold]
#[inline(never)]
fn transmit_large(
    ctx: &Context<'_>,
    hops: &mut HopCache,
    pkt: &mut [u8],
    p: &ParsedUdp,
    rw: &Rewrite,
) -> Verdict {
    let hop = match hops.resolve(ctx, rw.dst) {
        Ok(h) => h,
        Err(v) => return v,
    };
    let mtu = ctx.network.mtu(hop.port);
    let fits = pkt.len() - usize::from(p.l3_off) <= usize::from(mtu);
    if !fits {
        if let Some(v) = refuse_too_big(pkt, usize::from(p.l3_off), p.flow.src, mtu) {
            return v;
        }
    }
    // Fragmenting needs every checksum final: no offload then.
    let caps = if fits {
        hop.caps
    } else {
        ChecksumCaps::empty()
    };
    match rewrite(pkt, p, rw, hop.dst_mac, hop.src_mac, caps) {
        Some(offload) if fits => Verdict::Tx {
            port: hop.port,
            offload,
        },
        Some(_) => Verdict::Fragment {
            port: hop.port,
            mtu,
        },
        None => Verdict::Drop(DropReason::TruncatedIp),
    }
}

/// The verdict for an IP packet at `l3` of `pkt` that does not fit `mtu` and may not be
/// fragmented on the way (IPv6, IPv4 with DF): an ICMP error from the slow path when the
/// source can receive one, else `too_big`. `None`: IPv4 without DF, to be fragmented.
pub(super) fn refuse_too_big(pkt: &[u8], l3: usize, src: IpAddr, mtu: u16) -> Option<Verdict> {
    let df = match src {
        IpAddr::V4(_) => pkt.get(l3 + 6).is_some_and(|f| f & 0x40 != 0),
        IpAddr::V6(_) => true,
    };
    if !df {
        return None;
    }
    Some(if is_unicast(src) {
        Verdict::ToHost(HostReason::TooBig { mtu })
    } else {
        Verdict::Drop(DropReason::TooBig)
    })
}

/// Rewrites addresses, ports, TTL, MACs and checksums in place (always inlined: the cold
/// `transmit_large` calls it too). Returns the offload request (`Some(None)` when everything was done in software), or `None` if the offsets
/// do not fit the buffer.
#[inline(always)]
fn rewrite(
    pkt: &mut [u8],
    p: &ParsedUdp,
    rw: &Rewrite,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    caps: ChecksumCaps,
) -> Option<Option<OffloadRequest>> {
    let l3 = usize::from(p.l3_off);
    let l4 = usize::from(p.l4_off);
    if pkt.len() < l4 {
        return None;
    }
    let frame_len = pkt.len();
    let (head, l4buf) = pkt.split_at_mut(l4);
    let mut udp = Udp::new_checked(l4buf).ok()?;
    let old_ports = [udp.src_port(), udp.dst_port()];
    let new_ports = [rw.src_port, rw.dst_port];
    let udp_check = udp.checksum();
    // IPv4 UDP checksum 0 = none: stays 0 and the NIC is not asked to compute it.
    let has_udp_check = udp_check != 0 || p.is_ipv6();
    // A first fragment holds only part of the datagram its checksum covers: a NIC would
    // sum the wrong bytes, so its checksum is updated in software.
    let offload_udp = has_udp_check
        && caps.contains(ChecksumCaps::UDP)
        && l4 + usize::from(p.udp_len) <= frame_len;
    let l3_len = u16::try_from(l4 - l3).ok()?;
    let mut old_words = [0u8; 36];
    let mut new_words = [0u8; 36];
    let offload = match (rw.src, rw.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Ipv4::new_checked(head.get_mut(l3..)?).ok()?;
            old_words[..4].copy_from_slice(&ip.src());
            old_words[4..8].copy_from_slice(&ip.dst());
            new_words[..4].copy_from_slice(&s.octets());
            new_words[4..8].copy_from_slice(&d.octets());
            ip.rewrite_for_forwarding(s.octets(), d.octets());
            let offload_ip = caps.contains(ChecksumCaps::IPV4);
            if offload_ip {
                ip.set_checksum(0);
            }
            for (i, (o, n)) in old_ports.iter().zip(new_ports).enumerate() {
                old_words[8 + 2 * i..10 + 2 * i].copy_from_slice(&o.to_be_bytes());
                new_words[8 + 2 * i..10 + 2 * i].copy_from_slice(&n.to_be_bytes());
            }
            if offload_udp {
                udp.set_checksum(checksum::pseudo_header_sum(
                    rw.src,
                    rw.dst,
                    u32::from(p.udp_len),
                ));
            } else if has_udp_check {
                udp.set_checksum(checksum::udp_wire(checksum::update(
                    udp_check,
                    &old_words[..12],
                    &new_words[..12],
                )));
            }
            (offload_ip || offload_udp).then_some(OffloadRequest {
                l2_len: p.l3_off,
                l3_len,
                ipv6: false,
                ipv4_checksum: offload_ip,
                udp_checksum: offload_udp,
            })
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = Ipv6::new_checked(head.get_mut(l3..)?).ok()?;
            old_words[..16].copy_from_slice(&ip.src());
            old_words[16..32].copy_from_slice(&ip.dst());
            new_words[..16].copy_from_slice(&s.octets());
            new_words[16..32].copy_from_slice(&d.octets());
            ip.set_src(s.octets());
            ip.set_dst(d.octets());
            ip.decrement_hop_limit();
            // Only one port changes per direction in preserve-client, but the words are
            // cheap: fold both.
            let mut old_p = [0u8; 4];
            let mut new_p = [0u8; 4];
            old_p[..2].copy_from_slice(&old_ports[0].to_be_bytes());
            old_p[2..].copy_from_slice(&old_ports[1].to_be_bytes());
            new_p[..2].copy_from_slice(&new_ports[0].to_be_bytes());
            new_p[2..].copy_from_slice(&new_ports[1].to_be_bytes());
            old_words[32..].copy_from_slice(&old_p);
            new_words[32..].copy_from_slice(&new_p);
            if offload_udp {
                udp.set_checksum(checksum::pseudo_header_sum(
                    rw.src,
                    rw.dst,
                    u32::from(p.udp_len),
                ));
            } else {
                udp.set_checksum(checksum::udp_wire(checksum::update(
                    udp_check, &old_words, &new_words,
                )));
            }
            offload_udp.then_some(OffloadRequest {
                l2_len: p.l3_off,
                l3_len,
                ipv6: true,
                ipv4_checksum: false,
                udp_checksum: true,
            })
        }
        // Families never mix: tables keep other-family backends out of Maglev.
        _ => return None,
    };
    udp.set_src_port(rw.src_port);
    udp.set_dst_port(rw.dst_port);
    let mut eth = Ethernet::new_checked(&mut head[..]).ok()?;
    eth.set_dst(dst_mac.0);
    eth.set_src(src_mac.0);
    Some(offload)
}

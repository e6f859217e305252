//! IP fragments of UDP datagrams, both directions: the first fragment decides like any
//! datagram, the later ones follow it through the worker's [`crate::fragment::FragTable`].
//!
//! Per fragment (out of line, cold):
//! 1. Read it ([`crate::parse::fragment`]); only fragments of UDP datagrams go on.
//! 2. Ownership (see [`super::steer`]): a fragment on another worker than
//!    [`super::steer::fragment_owner`], with no entry for its datagram here and not
//!    marked as handed on by the owner, is handed to the owner, untouched.
//! 3. The first fragment runs through the normal UDP path (its UDP header gives the
//!    ports; the rewrite updates its UDP checksum incrementally, which is exactly right
//!    for the reassembled datagram, see the crate README). Its verdict becomes the
//!    datagram's [`Decision`]: `Tx` → the output (port, MACs, addresses, TTL decrement)
//!    read back from the rewritten frame; `Handoff` → the same worker (the first fragment
//!    is marked); a drop → the same reason; the host → the same for `own_address`, and a
//!    drop for the reasons the slow path answers with an ICMP error about the first
//!    fragment only (RFC 1812 §4.3.2.7: none about later fragments); `Resolve` → still
//!    pending (the first fragment is held for its neighbor and runs again).
//! 4. A later fragment follows the decision: rewritten at layer 3 (addresses, TTL, IPv4
//!    header checksum) and layer 2, or handed, dropped, given to the host alike; while
//!    pending it is held.
//!
//! Entity counters count the first fragment (packets and bytes of the datagram's first
//! fragment); `fragments_forwarded` counts every fragment sent.

use super::forward::is_unicast;
use super::steer::fragment_owner;
use super::{Context, FastPath, Timestamp};
use crate::checksum;
use crate::fragment::{Decision, FragKey, Out};
use crate::hash::ip16;
use crate::parse::{self, Parsed, ParsedFragment};
use crate::verdict::{DropReason, HostReason, Verdict};

/// A first fragment on its way through the UDP path.
#[derive(Clone, Copy, Debug)]
struct FirstFragment {
    fragment: ParsedFragment,
    entry: u32,
    marked: bool,
}

impl FastPath {
    /// A frame [`crate::parse::parse`] classified as a fragment.
    #[cold]
    #[inline(never)]
    pub(super) fn fragment(
        &mut self,
        ctx: &Context<'_>,
        now: Timestamp,
        pkt: &mut [u8],
    ) -> Verdict {
        let f = match parse::fragment(pkt) {
            Ok(f) => f,
            Err(r) => return Verdict::Drop(r),
        };
        let key = FragKey {
            src: ip16(f.src),
            dst: ip16(f.dst),
            id: f.id,
            ipv6: f.is_ipv6(),
        };
        let marked = self.marked(pkt);
        let mut timed_out = 0;
        let found = self.frags.find(&key, now, &mut timed_out);
        self.counters.drops[DropReason::FragmentTimeout.index()] += timed_out;
        if found.is_none() && !marked {
            let owner = fragment_owner(f.src, f.dst, f.id, self.params.workers);
            if owner != self.params.worker_id {
                return Verdict::Handoff { worker: owner };
            }
        }
        let entry = match found {
            Some(i) => i,
            None => match self.frags.insert(&key, now, &mut timed_out) {
                Some(i) => i,
                None => return Verdict::Drop(DropReason::FragmentTableFull),
            },
        };
        self.counters.drops[DropReason::FragmentTimeout.index()] += timed_out;
        match f.first {
            Some(udp) => {
                // Decided as the datagram it starts: through the one UDP path (counted
                // there, and counted again by our caller: taken back).
                let len = pkt.len() as u64;
                let v = self.process_parsed(ctx, now, pkt, Parsed::Udp(udp), None);
                self.uncount(v, len);
                let first = FirstFragment {
                    fragment: f,
                    entry,
                    marked,
                };
                self.first_fragment_done(ctx, pkt, &first, v)
            }
            None => {
                let v = self.later_fragment(ctx, pkt, &f, entry);
                if matches!(v, Verdict::Tx { .. } | Verdict::Fragment { .. }) {
                    self.counters.fragments_forwarded += 1;
                }
                v
            }
        }
    }

    /// The UDP path's verdict `v` for a first fragment becomes its datagram's decision.
    fn first_fragment_done(
        &mut self,
        ctx: &Context<'_>,
        pkt: &mut [u8],
        first: &FirstFragment,
        mut v: Verdict,
    ) -> Verdict {
        let f = &first.fragment;
        let decision = match v {
            Verdict::Tx { port, .. } | Verdict::Fragment { port, .. } => {
                self.counters.fragments_forwarded += 1;
                match read_back(pkt, f, port) {
                    Some(out) => Decision::Forward(out),
                    None => Decision::Drop(DropReason::TruncatedIp),
                }
            }
            // Handed on once already (by the fragment owner): the tables of the two
            // workers disagree for a moment; never hand a packet around.
            Verdict::Handoff { .. } if first.marked => {
                v = Verdict::Drop(DropReason::NoReverseFlow);
                Decision::Drop(DropReason::NoReverseFlow)
            }
            Verdict::Handoff { worker } => {
                self.mark(ctx, pkt);
                Decision::Handoff(worker)
            }
            Verdict::Drop(r) => Decision::Drop(r),
            Verdict::ToHost(HostReason::Resolve { .. }) => Decision::Pending,
            Verdict::ToHost(HostReason::Reject) => Decision::Drop(DropReason::DroppedShare),
            Verdict::ToHost(HostReason::TimeExceeded) => Decision::Drop(DropReason::TtlExpired),
            Verdict::ToHost(HostReason::TooBig { .. }) => Decision::Drop(DropReason::TooBig),
            Verdict::ToHost(r) => Decision::Host(r),
            // Not a verdict of the UDP path.
            Verdict::Hold { .. } => Decision::Drop(DropReason::Fragment),
        };
        self.frags.decide(first.entry, decision);
        if decision != Decision::Pending {
            self.frags
                .account(first.entry, f.offset, f.data_len, f.more);
        }
        v
    }

    /// A later fragment: follows the recorded decision, or is held.
    fn later_fragment(
        &mut self,
        ctx: &Context<'_>,
        pkt: &mut [u8],
        f: &ParsedFragment,
        entry: u32,
    ) -> Verdict {
        let v = match self.frags.decision(entry) {
            Decision::Pending => {
                return match self.frags.hold(entry) {
                    Some(slot) => Verdict::Hold { slot },
                    None => Verdict::Drop(DropReason::FragmentHoldFull),
                };
            }
            Decision::Forward(out) => later_out(ctx, pkt, f, &out),
            Decision::Handoff(worker) => {
                self.mark(ctx, pkt);
                Verdict::Handoff { worker }
            }
            Decision::Drop(r) => Verdict::Drop(r),
            Decision::Host(r) => Verdict::ToHost(r),
        };
        self.frags.account(entry, f.offset, f.data_len, f.more);
        v
    }

    /// Whether the frame's source MAC is the input port's own: a fragment the owner
    /// worker handed on (see [`super::steer`]).
    pub(super) fn marked(&self, pkt: &[u8]) -> bool {
        pkt.get(6..12)
            .and_then(|m| m.first_chunk::<6>())
            .is_some_and(|m| super::classify::mac_key(m) == self.rx_mac)
    }

    /// Marks a fragment handed on by its owner.
    pub(super) fn mark(&self, ctx: &Context<'_>, pkt: &mut [u8]) {
        if let (Some(port), Some(src)) = (
            ctx.network.ports().get(usize::from(self.rx_port)),
            pkt.get_mut(6..12),
        ) {
            src.copy_from_slice(&port.mac.0);
        }
    }
}

/// What the rewritten first fragment looks like, for its followers.
fn read_back(pkt: &[u8], f: &ParsedFragment, port: u16) -> Option<Out> {
    let l3 = usize::from(f.l3_off);
    let mut out = Out {
        port,
        ..Out::default()
    };
    out.dst_mac.copy_from_slice(pkt.get(0..6)?);
    out.src_mac.copy_from_slice(pkt.get(6..12)?);
    let ttl = if f.is_ipv6() {
        out.src.copy_from_slice(pkt.get(l3 + 8..l3 + 24)?);
        out.dst.copy_from_slice(pkt.get(l3 + 24..l3 + 40)?);
        *pkt.get(l3 + 7)?
    } else {
        out.src[10..12].copy_from_slice(&[0xff, 0xff]);
        out.dst[10..12].copy_from_slice(&[0xff, 0xff]);
        out.src[12..].copy_from_slice(pkt.get(l3 + 12..l3 + 16)?);
        out.dst[12..].copy_from_slice(pkt.get(l3 + 16..l3 + 20)?);
        *pkt.get(l3 + 8)?
    };
    out.decrement_ttl = ttl != f.ttl;
    Some(out)
}

/// Rewrites a later fragment as its first fragment was: MACs, addresses, TTL / hop
/// limit (IPv4 header checksum recomputed: 20–60 bytes). Untouched unless the verdict is
/// `Tx` or `Fragment`.
fn later_out(ctx: &Context<'_>, pkt: &mut [u8], f: &ParsedFragment, out: &Out) -> Verdict {
    if out.decrement_ttl && f.ttl <= 1 {
        // No ICMP error about a later fragment.
        return Verdict::Drop(DropReason::TtlExpired);
    }
    let Some(port) = ctx.network.ports().get(usize::from(out.port)) else {
        return Verdict::Drop(DropReason::Unroutable);
    };
    let l3 = usize::from(f.l3_off);
    let too_big = pkt.len().saturating_sub(l3) > usize::from(port.mtu);
    if too_big && (f.is_ipv6() || f.dont_fragment) {
        // IPv6 is never fragmented on the way; ICMPv6 errors may quote any fragment.
        return if f.is_ipv6() && is_unicast(f.src) {
            Verdict::ToHost(HostReason::TooBig { mtu: port.mtu })
        } else {
            Verdict::Drop(DropReason::TooBig)
        };
    }
    if rewrite_l3(pkt, f, out).is_none() {
        return Verdict::Drop(DropReason::TruncatedIp);
    }
    if too_big {
        Verdict::Fragment {
            port: out.port,
            mtu: port.mtu,
        }
    } else {
        Verdict::Tx {
            port: out.port,
            offload: None,
        }
    }
}

fn rewrite_l3(pkt: &mut [u8], f: &ParsedFragment, out: &Out) -> Option<()> {
    let l3 = usize::from(f.l3_off);
    if f.is_ipv6() {
        let ip = pkt.get_mut(l3..l3 + 40)?;
        ip[8..24].copy_from_slice(&out.src);
        ip[24..40].copy_from_slice(&out.dst);
        if out.decrement_ttl {
            ip[7] -= 1;
        }
    } else {
        let ihl = usize::from(*pkt.get(l3)? & 0x0f) * 4;
        let ip = pkt.get_mut(l3..l3 + ihl)?;
        ip[12..16].copy_from_slice(&out.src[12..]);
        ip[16..20].copy_from_slice(&out.dst[12..]);
        if out.decrement_ttl {
            ip[8] -= 1;
        }
        let c = checksum::ipv4_header_checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let eth = pkt.get_mut(0..12)?;
    eth[..6].copy_from_slice(&out.dst_mac);
    eth[6..].copy_from_slice(&out.src_mac);
    Some(())
}

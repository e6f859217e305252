//! Splitting an IPv4 datagram (or fragment) that is larger than the output port's MTU:
//! what the appliance does with a [`crate::Verdict::Fragment`], as a router must for a
//! datagram without DF (RFC 791 §3.2, RFC 1812 §4.2.2.7). A pure function over bytes, so
//! the appliance only allocates the buffers and copies.
//!
//! Each piece is the frame's link header (Ethernet and VLAN tags, unchanged), an IPv4
//! header and a slice of the data. The first piece keeps every option; later pieces keep
//! only the options whose copied flag is set (RFC 791: security, source routes), padded
//! with end-of-options to a 4-byte boundary. Offsets and the more-fragments flag are those
//! of a fragment of the original datagram (splitting a fragment yields fragments of the
//! same datagram); every piece but the last carries a multiple of 8 data bytes; header
//! checksums are computed in full. The UDP header and checksum travel unchanged in the
//! first piece: the checksum covers the whole datagram, which the receiver reassembles.

use crate::checksum;

/// Why a frame cannot be split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// Not an IPv4 packet at `l3_off`, or its header or length do not fit the frame.
    #[error("not a well-formed IPv4 packet")]
    Malformed,
    /// The DF bit is set: the sender asked not to fragment (send Frag Needed instead).
    #[error("the DF bit is set")]
    DontFragment,
    /// The MTU cannot carry a header and 8 data bytes (IPv4 requires ≥ 68).
    #[error("MTU {0} is too small to fragment into")]
    MtuTooSmall(u16),
}

/// Largest link header (Ethernet with two VLAN tags) plus the largest IPv4 header.
pub const MAX_PIECE_HEADER: usize = 14 + 8 + 60;

/// Splits the IPv4 packet at `l3_off` of `frame` into pieces of at most `mtu` bytes of IP,
/// calling `emit(header, data)` for each in order: the frame of a piece is `header`
/// followed by `data` (copy both into one buffer). Returns the number of pieces (1 if it
/// already fits: `emit` then gets the frame as it is). The IP packet ends at its total
/// length; anything after it in the frame (padding) is not copied.
///
/// # Errors
/// [`SplitError`]; `emit` is not called then.
pub fn split_ipv4(
    frame: &[u8],
    l3_off: usize,
    mtu: u16,
    mut emit: impl FnMut(&[u8], &[u8]),
) -> Result<usize, SplitError> {
    let ip = frame.get(l3_off..).ok_or(SplitError::Malformed)?;
    let ver_ihl = *ip.first().ok_or(SplitError::Malformed)?;
    let ihl = usize::from(ver_ihl & 0x0f) * 4;
    if ver_ihl >> 4 != 4 || ihl < 20 || ip.len() < ihl {
        return Err(SplitError::Malformed);
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    if total < ihl || total > ip.len() {
        return Err(SplitError::Malformed);
    }
    let mtu = usize::from(mtu);
    if total <= mtu {
        emit(&frame[..l3_off + total], &[]);
        return Ok(1);
    }
    let flags = u16::from_be_bytes([ip[6], ip[7]]);
    if flags & 0x4000 != 0 {
        return Err(SplitError::DontFragment);
    }
    let orig_more = flags & 0x2000 != 0;
    let orig_offset = usize::from(flags & 0x1fff) * 8;
    // Options copied into later pieces.
    let mut later_opts = [0u8; 40];
    let later_opts_len = copied_options(&ip[20..ihl], &mut later_opts);
    let later_ihl = 20 + later_opts_len;
    if mtu < ihl + 8 || mtu < later_ihl + 8 {
        return Err(SplitError::MtuTooSmall(
            u16::try_from(mtu).unwrap_or(u16::MAX),
        ));
    }
    let data = &ip[ihl..total];
    let mut header = [0u8; MAX_PIECE_HEADER];
    let mut at = 0;
    let mut pieces = 0;
    while at < data.len() {
        let hl = if at == 0 { ihl } else { later_ihl };
        let room = (mtu - hl) & !7;
        let len = room.min(data.len() - at);
        let last = at + len == data.len();
        let h = &mut header[..l3_off + hl];
        h[..l3_off].copy_from_slice(&frame[..l3_off]);
        let iph = &mut h[l3_off..];
        iph[..20].copy_from_slice(&ip[..20]);
        if at == 0 {
            iph[20..].copy_from_slice(&ip[20..ihl]);
        } else {
            iph[20..].copy_from_slice(&later_opts[..later_opts_len]);
        }
        // Sizes are bounded by the 65,535-byte total: the conversions cannot fail.
        let word = |v: usize| u16::try_from(v).unwrap_or(u16::MAX);
        iph[0] = 0x40 | u8::try_from(hl / 4).unwrap_or(15);
        iph[2..4].copy_from_slice(&word(hl + len).to_be_bytes());
        let more = !last || orig_more;
        let off = word((orig_offset + at) / 8) | if more { 0x2000 } else { 0 };
        iph[6..8].copy_from_slice(&off.to_be_bytes());
        let c = checksum::ipv4_header_checksum(iph);
        iph[10..12].copy_from_slice(&c.to_be_bytes());
        emit(h, &data[at..at + len]);
        at += len;
        pieces += 1;
    }
    Ok(pieces)
}

/// Writes the options of `opts` whose copied flag is set into `out`, padded with
/// end-of-options to a multiple of 4; returns the length. Malformed options end the walk.
fn copied_options(opts: &[u8], out: &mut [u8; 40]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < opts.len() {
        let kind = opts[i];
        let len = match kind {
            0 => break,
            1 => 1,
            _ => match opts.get(i + 1) {
                Some(&l) if usize::from(l) >= 2 && i + usize::from(l) <= opts.len() => {
                    usize::from(l)
                }
                _ => break,
            },
        };
        if kind & 0x80 != 0 && n + len <= out.len() {
            out[n..n + len].copy_from_slice(&opts[i..i + len]);
            n += len;
        }
        i += len;
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    padded
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 frame: Ethernet, header with `opts`, `data` bytes (0, 1, 2, ...).
    fn frame(opts: &[u8], data: usize, flags: u16) -> Vec<u8> {
        let ihl = 20 + opts.len();
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let total = u16::try_from(ihl + data).unwrap();
        let mut ip = vec![
            0x40 | u8::try_from(ihl / 4).unwrap(),
            0,
            0,
            0,
            0x12,
            0x34,
            0,
            0,
            64,
            17,
            0,
            0,
            198,
            18,
            0,
            1,
            198,
            18,
            1,
            2,
        ];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[6..8].copy_from_slice(&flags.to_be_bytes());
        ip.extend_from_slice(opts);
        let c = checksum::ipv4_header_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend((0..data).map(|i| u8::try_from(i % 251).unwrap()));
        f
    }

    fn pieces(f: &[u8], mtu: u16) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let n = split_ipv4(f, 14, mtu, |h, d| {
            let mut v = h.to_vec();
            v.extend_from_slice(d);
            out.push(v);
        })
        .unwrap();
        assert_eq!(n, out.len());
        out
    }

    #[test]
    fn splits_into_8_byte_aligned_pieces_that_reassemble() {
        let f = frame(&[], 3000, 0);
        let p = pieces(&f, 1500);
        assert_eq!(p.len(), 3);
        let mut data = Vec::new();
        for (i, piece) in p.iter().enumerate() {
            let ip = &piece[14..];
            assert_eq!(checksum::ipv4_header_sum(&ip[..20]), 0, "checksum");
            assert!(ip.len() <= 1500);
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert_eq!(total, ip.len());
            let flags = u16::from_be_bytes([ip[6], ip[7]]);
            assert_eq!(
                usize::from(flags & 0x1fff) * 8,
                data.len(),
                "offset of piece {i}"
            );
            assert_eq!(flags & 0x2000 != 0, i + 1 < p.len(), "MF of piece {i}");
            if i + 1 < p.len() {
                assert_eq!((total - 20) % 8, 0);
            }
            assert_eq!(&ip[4..6], &[0x12, 0x34], "same identification");
            data.extend_from_slice(&ip[20..]);
        }
        assert_eq!(data, &f[34..]);
    }

    #[test]
    fn a_fragment_splits_into_fragments_of_the_same_datagram() {
        // A middle fragment at offset 1480 (185 units), more following.
        let f = frame(&[], 1480, 0x2000 | 185);
        let p = pieces(&f, 576);
        let offs: Vec<(u16, bool)> = p
            .iter()
            .map(|x| {
                let fl = u16::from_be_bytes([x[20], x[21]]);
                ((fl & 0x1fff) * 8, fl & 0x2000 != 0)
            })
            .collect();
        assert_eq!(offs, [(1480, true), (2032, true), (2584, true)]);
    }

    #[test]
    fn later_pieces_keep_only_copied_options() {
        // NOP, a copied option (type 0x83 loose source route, len 7), a non-copied one
        // (type 0x07 record route, len 7), end.
        let opts = [1, 0x83, 7, 4, 0, 0, 0, 0, 0x07, 7, 4, 0, 0, 0, 0, 0];
        let f = frame(&opts, 200, 0);
        let p = pieces(&f, 100);
        assert_eq!(p[0][14] & 0x0f, 9, "first piece keeps all options");
        assert_eq!(&p[0][34..50], &opts);
        for later in &p[1..] {
            assert_eq!(later[14] & 0x0f, 7, "copied option, padded");
            assert_eq!(&later[34..42], &[0x83, 7, 4, 0, 0, 0, 0, 0]);
            assert_eq!(checksum::ipv4_header_sum(&later[14..42]), 0);
        }
        let data: Vec<u8> = p
            .iter()
            .flat_map(|x| x[14 + usize::from(x[14] & 0x0f) * 4..].to_vec())
            .collect();
        assert_eq!(data, &f[50..]);
    }

    #[test]
    fn refuses_df_tiny_mtus_and_garbage_and_passes_what_fits() {
        let f = frame(&[], 100, 0x4000);
        assert_eq!(
            split_ipv4(&f, 14, 68, |_, _| {}),
            Err(SplitError::DontFragment)
        );
        let f = frame(&[], 100, 0);
        assert_eq!(
            split_ipv4(&f, 14, 27, |_, _| {}),
            Err(SplitError::MtuTooSmall(27))
        );
        assert_eq!(
            split_ipv4(&f[..30], 14, 68, |_, _| {}),
            Err(SplitError::Malformed)
        );
        assert_eq!(
            split_ipv4(&f, 40, 68, |_, _| {}),
            Err(SplitError::Malformed)
        );
        assert_eq!(pieces(&f, 1500), std::slice::from_ref(&f));
    }
}

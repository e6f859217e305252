//! Open-addressing indexes by (address, port), at most half full, so every probe ends at
//! an empty slot: slot value = entry position + 1, 0 = empty. Keyed with the tables'
//! seed, like every hash that must agree across appliances.

use std::net::IpAddr;

use super::TableError;
use crate::hash::{hash_words, ip16, ip_words, slot};

/// The hash a key's probe starts from.
#[inline]
fn addr_port_hash(seed: u64, ip: IpAddr, port: u16) -> u64 {
    let [a, b] = ip_words(&ip16(ip));
    hash_words(seed, &[a, b, u64::from(port)])
}

/// An index over `keys`.
pub(super) fn open_index(
    keys: impl ExactSizeIterator<Item = (IpAddr, u16)>,
    seed: u64,
    what: &'static str,
) -> Result<Vec<u32>, TableError> {
    let slots = (keys.len() * 2).next_power_of_two().max(8);
    let mut index = vec![0u32; slots];
    for (i, (ip, port)) in keys.enumerate() {
        let mut pos = slot(addr_port_hash(seed, ip, port), slots - 1);
        while index[pos] != 0 {
            pos = (pos + 1) & (slots - 1);
        }
        index[pos] = u32::try_from(i + 1).map_err(|_| TableError::TooMany { what })?;
    }
    Ok(index)
}

/// The position of the entry on `(ip, port)`'s probe path that `is` accepts (given the
/// entry's position). No allocation.
#[inline]
pub(super) fn probe(
    index: &[u32],
    seed: u64,
    ip: IpAddr,
    port: u16,
    is: impl Fn(usize) -> bool,
) -> Option<u32> {
    let mask = index.len() - 1;
    let mut pos = slot(addr_port_hash(seed, ip, port), mask);
    // At most half full: an empty slot ends every probe.
    for _ in 0..index.len() {
        let e = index[pos];
        if e == 0 {
            return None;
        }
        if is((e - 1) as usize) {
            return Some(e - 1);
        }
        pos = (pos + 1) & mask;
    }
    None
}

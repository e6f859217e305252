//! Which worker a flow lives on, when the receiving worker cannot serve a packet itself.
//!
//! RSS spreads packets over workers by their own header hash, so a reply (backend →
//! client or SNAT address) rarely lands on the worker that saw the client. Per mode:
//!
//! - **FullNAT**: the flow lives where its SNAT port was allocated; replies to another
//!   worker's partition are handed to it ([`crate::net::PortRange::owner`], in `classify`).
//! - **Preserve-client, endpoint serving one listener** (the common case): no steering.
//!   The flow lives where RSS put the client's datagrams; a reply is translated wherever
//!   it lands: from the flow if this worker has it (refreshing its idle timer), otherwise
//!   from the tables alone (source becomes the listener's VIP and port;
//!   [`crate::tables::Tables::lookup_endpoint`]). Any appliance with the same tables
//!   translates it the same way.
//! - **Preserve-client, endpoint shared by several listeners**: the reply does not say
//!   which VIP the client used, so it needs the flow. The listeners such an endpoint
//!   serves are *steered*: their flows live on [`client_owner`], a hash of the client's
//!   address and port that both directions can compute (the client is the source of a
//!   forward datagram and the destination of a reply). A forward datagram on another
//!   worker is handed to the owner (a flow it still held from before the listener became
//!   steered is forgotten, so the owner takes over); a reply from a shared endpoint is
//!   handed to the owner too. The owner computes itself, so a packet is handed on at most
//!   once, whatever tables either worker holds: the rule does not depend on the tables.
//! - **DSR**: replies never reach the appliance; forward datagrams are served where they
//!   land.
//!
//! Fragments (see [`crate::fragment`]): RSS hashes fragments on their addresses only, and
//! later fragments carry no ports, so the worker that can follow a datagram is chosen
//! from what every fragment carries: [`fragment_owner`] (source, destination,
//! identification). A fragment elsewhere, with no entry for its datagram there, is handed
//! to that owner untouched. The owner decides the first fragment like any datagram; when
//! that is a `Handoff` (a FullNAT reply to another worker's SNAT port, a steered
//! listener), the owner records it and passes the first fragment and every later one to
//! that worker, marked as coming from the owner (their Ethernet source address is set to
//! the input port's own MAC, which no frame from the wire carries), so that worker keeps
//! them (holding later fragments that overtake the first) instead of handing them back.
//! A fragment therefore moves at most twice.

use std::net::IpAddr;

use crate::hash::{hash_words, ip16, ip_words};

/// Seed of [`client_owner`]: fixed, so every worker (and every build) agrees.
const OWNER_SEED: u64 = 0x7374_6565_7200_0001;

/// The worker (of `workers`) that owns the flows of the client `ip`:`port` in steered
/// listeners. Depends on nothing else, so any worker computes the same owner for a
/// forward datagram (client = source) and for its reply (client = destination).
#[inline]
pub fn client_owner(ip: IpAddr, port: u16, workers: u16) -> u16 {
    if workers < 2 {
        return 0;
    }
    let [a, b] = ip_words(&ip16(ip));
    let h = hash_words(OWNER_SEED, &[a, b, u64::from(port)]);
    // The remainder is below `workers`, a u16.
    u16::try_from(h % u64::from(workers)).unwrap_or(0)
}

/// Seed of [`fragment_owner`].
const FRAGMENT_SEED: u64 = 0x6672_6167_0000_0001;

/// The worker (of `workers`) that follows the fragmented datagram (`src`, `dst`, `id`):
/// computed from what every fragment carries, so all its fragments meet there.
#[inline]
pub fn fragment_owner(src: IpAddr, dst: IpAddr, id: u32, workers: u16) -> u16 {
    if workers < 2 {
        return 0;
    }
    let [a, b] = ip_words(&ip16(src));
    let [c, d] = ip_words(&ip16(dst));
    let h = hash_words(FRAGMENT_SEED, &[a, b, c, d, u64::from(id)]);
    u16::try_from(h % u64::from(workers)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_in_range_spread_and_stable() {
        let mut per_worker = [0u32; 3];
        for i in 0..3000u16 {
            let [hi, lo] = i.to_be_bytes();
            let ip = IpAddr::from([198, 19, hi, lo]);
            let w = client_owner(ip, 40000 + i, 3);
            assert_eq!(w, client_owner(ip, 40000 + i, 3), "deterministic");
            per_worker[usize::from(w)] += 1;
        }
        for n in per_worker {
            assert!((800..1200).contains(&n), "{per_worker:?}");
        }
        let ip = IpAddr::from([198, 19, 0, 1]);
        assert_eq!(client_owner(ip, 1, 1), 0);
        assert_eq!(client_owner(ip, 1, 0), 0);
    }

    #[test]
    fn fragment_owners_spread_by_identification() {
        let (a, b) = (IpAddr::from([198, 19, 0, 1]), IpAddr::from([198, 18, 2, 1]));
        let mut per_worker = [0u32; 2];
        for id in 0..2000 {
            let w = fragment_owner(a, b, id, 2);
            assert_eq!(w, fragment_owner(a, b, id, 2));
            per_worker[usize::from(w)] += 1;
        }
        assert!(
            per_worker.iter().all(|&n| (900..1100).contains(&n)),
            "{per_worker:?}"
        );
        assert_eq!(fragment_owner(a, b, 5, 1), 0);
    }
}

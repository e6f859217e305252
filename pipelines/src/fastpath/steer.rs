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
}

//! The scale-out scenario (`testbench demo-ha`, `scripts/demo-ha`, `tests/e2e_ha.rs`):
//! three udplb appliances announce one VIP over BGP (BIRD, `announce:`) to a router
//! running BIRD with ECMP and L4 hashing; a client keeps N UDP sessions alive through the
//! VIP to backends that answer with their names. Per NAT mode it measures the spread over
//! the appliances, a SIGKILL (failover time, sessions that changed backend), a fourth
//! appliance joining (sessions that changed backend) and a graceful drain (datagrams
//! lost), and prints
//!
//! ```text
//! HA mode=M appliances=3 sessions=N answered=N failover_s=F backend_changed_kill=K backend_changed_join=J drain_lost=D
//! ```
//!
//! * [`plan`] — addresses and names; [`bird`] — the deploy/ BIRD configurations in
//!   namespaces; [`fabric`] — router, client, backends and the router's view;
//!   [`node`] — one appliance (namespace, links, BIRD, udplb).
//! * [`sessions`] — the session client (`testbench sessions`); [`analysis`] — the
//!   figures from its record, with their definitions; [`scenario`] — the phases.

pub mod analysis;
pub mod bird;
pub mod fabric;
pub mod node;
pub mod outcome;
pub mod plan;
pub mod scenario;
pub mod sessions;

pub use outcome::HaOutcome;
pub use scenario::{run_demo, run_mode, HaOptions};

use std::fmt;

/// The NAT mode the appliances run in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HaMode {
    /// Direct server return.
    Dsr,
    /// Client address preserved; replies come back through any appliance.
    PreserveClient,
    /// Full NAT: each appliance its own SNAT address.
    FullNat,
}

impl HaMode {
    /// Every mode, in the order the demo runs them.
    pub const ALL: [HaMode; 3] = [HaMode::Dsr, HaMode::PreserveClient, HaMode::FullNat];

    /// The spelling of `nat_mode` in appliance.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            HaMode::Dsr => "dsr",
            HaMode::PreserveClient => "preserve-client",
            HaMode::FullNat => "fullnat",
        }
    }

    /// Parses [`HaMode::as_str`]'s spelling.
    pub fn parse(s: &str) -> Option<HaMode> {
        HaMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl fmt::Display for HaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_spellings_round_trip() {
        for m in HaMode::ALL {
            assert_eq!(HaMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(HaMode::parse("full-nat"), None);
    }
}

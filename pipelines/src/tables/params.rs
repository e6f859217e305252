//! Appliance-wide parameters of the tables and their defaults (the one definition of
//! each: the appliance's settings default to these).

use std::time::Duration;

use crate::spec::{HashKey, NatMode};

#[cfg(doc)]
use crate::spec::DEFAULT_UNREPLIED_TIMEOUT;

/// The default Maglev seed: fixed, so every appliance agrees out of the box. The
/// appliance's settings default to it, and so do [`DataplaneParams::default`], the tests and
/// the benchmarks, which therefore exercise the product's rings.
pub const DEFAULT_MAGLEV_SEED: u64 = 0x7564_706c_6200_0001;

/// The default Maglev table size per route (prime; 100 × 655 backends).
pub const DEFAULT_MAGLEV_SIZE: u32 = 65537;

/// The default flow idle timeout (of replied flows; unreplied flows default to the
/// shorter of this and [`DEFAULT_UNREPLIED_TIMEOUT`], see
/// [`crate::spec::ListenerOptions::flow_timeouts`]).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Appliance-wide parameters of the data plane (from the appliance's own settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataplaneParams {
    /// Maglev table size per route: a prime ≥ 100 × backends.
    pub maglev_size: u32,
    /// Seed of every data-plane hash that must agree across appliances.
    pub maglev_seed: u64,
    /// NAT mode of listeners that do not override it.
    pub default_nat_mode: NatMode,
    /// Idle timeout of replied flows of listeners that do not override it. (Unreplied
    /// flows default to [`DEFAULT_UNREPLIED_TIMEOUT`], capped by this.)
    pub default_idle_timeout: Duration,
    /// Hash key of listeners that do not override it.
    pub default_hash_key: HashKey,
}

impl Default for DataplaneParams {
    fn default() -> Self {
        DataplaneParams {
            maglev_size: DEFAULT_MAGLEV_SIZE,
            maglev_seed: DEFAULT_MAGLEV_SEED,
            default_nat_mode: NatMode::default(),
            default_idle_timeout: DEFAULT_IDLE_TIMEOUT,
            default_hash_key: HashKey::default(),
        }
    }
}

//! udplb's policies, attached the Gateway API way (GEP-713).
//!
//! - [`model`]: the `udplb.io/v1alpha1` kinds `UDPBackendPolicy` (targets Services: health
//!   checks) and `UDPTrafficPolicy` (targets Gateways, listeners and UDPRoutes: NAT mode,
//!   hash key, timeouts, Maglev table size), as read.
//! - `values`: their values judged (defaults, ranges); a bad value makes the policy
//!   `Invalid`.
//! - `attach`: targets resolved to ancestors, conflicts (the oldest policy wins a target),
//!   precedence (route over listener over Gateway), and the policies' status.

mod attach;
pub mod model;
mod payload;
pub(crate) mod values;

pub(crate) use attach::{evaluate, Evaluation, GatewayView, ListenerView, ParentView, Topology};

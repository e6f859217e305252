//! udplb control plane: Gateway API objects in, status and a forwarding spec out.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

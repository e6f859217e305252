//! udplb control plane: Gateway API objects in, status and a forwarding spec out.
//!
//! This crate is a pure compile step: it never sees packets, sockets or threads.
//!
//! 1. [`load()`] reads YAML (files, directories, multi-document streams, kubectl `List`s)
//!    into an [`ObjectSet`] (Gateway API objects, Services, EndpointSlices, and udplb's
//!    [`policy`] kinds), rejecting malformed or out-of-schema objects with a
//!    [`ValidationError`] that lists every problem with file, document, object and
//!    field path ([`validate`]).
//! 2. [`compile()`] applies the Gateway API attachment and reference rules and GEP-713
//!    policy attachment, and returns a [`Compiled`]: the data plane's
//!    [`pipelines::spec::ForwardingConfig`] and a [`StatusReport`] spelled as the Gateway
//!    API spells status, GatewayClass and policy status included ([`class`], [`policy`]).
//! 3. [`check::run`] is `udplb check`; [`status_yaml`] renders the same documents for the
//!    management API; [`forwarding_yaml`] renders the forwarding spec for diagnostics.
//! 4. [`digest`]: stable SHA-256 digests of the forwarding config and the status, to tell
//!    whether a new set changes anything.
//!
//! ```
//! use config::{compile, load::load_str, CompileParams};
//! let yaml = "
//! apiVersion: gateway.networking.k8s.io/v1
//! kind: GatewayClass
//! metadata: {name: udplb}
//! spec: {controllerName: udplb.io/appliance}
//! ---
//! apiVersion: gateway.networking.k8s.io/v1
//! kind: Gateway
//! metadata: {name: gw, namespace: default}
//! spec:
//!   gatewayClassName: udplb
//!   addresses: [{value: 198.18.0.10}]
//!   listeners: [{name: dns, port: 53, protocol: UDP}]
//! ";
//! let set = load_str("example.yaml", yaml).expect("valid");
//! let compiled = compile(&set, &CompileParams::default());
//! assert_eq!(compiled.forwarding.listeners.len(), 1);
//! assert!(compiled.status.all_ok());
//! ```
//!
//! Decisions where the Gateway API is silent are listed in `config/README.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attach;
mod backends;
pub mod check;
pub mod class;
mod compile;
pub mod digest;
mod effective;
mod index;
pub mod load;
pub mod model;
pub mod options;
pub mod policy;
mod render;
pub mod status;
pub mod time;
pub mod validate;
mod yaml;

pub use compile::{
    compile, CompileParams, Compiled, DEFAULT_CONTROLLER_NAME, TRAFFIC_POLICY_AFFECTED,
};
pub use digest::{forwarding_digest, status_digest, Digest};
pub use load::{
    load, load_paths, load_str, LoadError, ObjectSet, Source, MAX_MANIFEST_BYTES, MAX_SET_BYTES,
};
pub use render::{forwarding_json, forwarding_yaml};
pub use status::{status_json, status_yaml, StatusReport};
pub use validate::ValidationError;
pub use yaml::{integers_outside_i64, Overflow};

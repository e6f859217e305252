//! udplb fast path (I/O-free). See `pipelines/README.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod spec;

//! udplb testbench: network namespaces, real clients and servers.
#![forbid(unsafe_code)]

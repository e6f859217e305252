//! Thin binding to the system DPDK (22.11). The only module with `unsafe` code.

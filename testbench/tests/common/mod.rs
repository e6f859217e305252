//! Helpers shared by the testbench's integration tests.
#![allow(dead_code)]

use std::process::Command;

use testbench::exec::{self, SHORT_TIMEOUT};
use testbench::Tools;

/// The testbench binary built for this test run.
pub fn tools() -> Tools {
    Tools::new(env!("CARGO_BIN_EXE_testbench"))
}

/// Names of the interfaces in the root namespace.
pub fn root_links() -> Vec<String> {
    let out = exec::run(
        Command::new("ip").args(["-o", "link", "show"]),
        None,
        SHORT_TIMEOUT,
    )
    .expect("ip link show");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// `ip -o link show dev <iface>` inside `ns`, one line.
pub fn link_line(ns: &testbench::Netns, iface: &str) -> String {
    let out = ns
        .ip(&["-o", "link", "show", "dev", iface])
        .expect("link exists");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kernel-routed topology with one client and `backends` backends.
pub fn routed(backends: usize) -> testbench::Topology {
    testbench::Topology::builder()
        .kernel_router(true)
        .backends(backends)
        .build()
        .expect("topology builds")
}

/// An echo server (or sink) on `port` of every backend, logging to `echo-<name>.log`.
pub fn echo_on_all(
    topo: &testbench::Topology,
    tools: &Tools,
    port: u16,
    sink: bool,
) -> Vec<testbench::EchoServer> {
    topo.backends()
        .iter()
        .map(|b| {
            let log = topo.log_path(&format!("echo-{}.log", b.name()));
            tools.start_echo(b, port, sink, &log).expect("echo starts")
        })
        .collect()
}

/// `flows` flows from the first client's IPv4 address to `port` on every backend (flow
/// `i` to backend `i % backends`), with [`testbench::LoadgenConfig::new`]'s defaults.
pub fn to_every_backend(
    topo: &testbench::Topology,
    port: u16,
    flows: u32,
) -> testbench::LoadgenConfig {
    let targets = backend_targets(topo, port);
    let mut config = testbench::LoadgenConfig::new(targets[0], topo.client(0).ipv4().into(), flows);
    config.targets = targets;
    config
}

/// `port` on every backend's IPv4 address, in backend order.
pub fn backend_targets(topo: &testbench::Topology, port: u16) -> Vec<std::net::SocketAddr> {
    topo.backends()
        .iter()
        .map(|b| std::net::SocketAddr::new(b.ipv4().into(), port))
        .collect()
}

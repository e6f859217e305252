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

//! `testbench cleanup` removes what dead runs left, and nothing of live ones.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

use std::process::Command;
use std::time::Duration;

use testbench::exec::{self, Process, SHORT_TIMEOUT};
use testbench::names::RunId;
use testbench::netns::list_netns;
use testbench::Topology;

/// The pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("reap true");
    pid
}

#[test]
#[ignore = "needs root: network namespaces"]
fn cleanup_removes_leftovers_of_dead_runs_only() {
    let live = Topology::builder()
        .backends(1)
        .build()
        .expect("topology builds");

    // A run whose process died without cleaning up: a namespace with a process still
    // inside, and its run directory.
    let dead = RunId {
        pid: dead_pid(),
        seq: 0,
    };
    let ns = dead.netns("lb");
    exec::run(
        Command::new("ip").args(["netns", "add", &ns]),
        None,
        SHORT_TIMEOUT,
    )
    .expect("ip netns add");
    let dir = std::env::temp_dir().join(dead.stem());
    std::fs::create_dir_all(&dir).expect("run dir");
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns, "sleep", "600"]);
    let mut orphan = Process::spawn(cmd, &dir.join("sleep.log")).expect("sleep starts");

    let out = exec::run(
        Command::new(env!("CARGO_BIN_EXE_testbench")).arg("cleanup"),
        None,
        Duration::from_secs(60),
    )
    .expect("testbench cleanup");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("removed namespace {ns}")), "{text}");

    let listed = list_netns().expect("ip netns list");
    assert!(!listed.contains(&ns), "dead run's namespace removed");
    assert!(!dir.exists(), "dead run's directory removed");
    orphan
        .wait_timeout(Duration::from_secs(5))
        .expect("the process inside was killed");
    for name in live.namespaces() {
        assert!(listed.iter().any(|n| n == name), "live run's {name} kept");
    }
    assert!(live.run_dir().is_dir(), "live run's directory kept");
}

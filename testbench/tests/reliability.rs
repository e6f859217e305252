//! Short versions of the soak and chaos runs (`scripts/soak`, `scripts/chaos` run the
//! long ones): re-PUTs every 100 ms under pinned traffic for 75 s, and three kill -9
//! restarts that must come back serving the last set the API accepted.

#![allow(clippy::tests_outside_test_module)]

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use testbench::reliability::{chaos, soak, ChaosOptions, SoakOptions};

/// The two runs take turns: each measures udplb on a 2-core machine, and the other's
/// restarts and load would be in its figures.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn tools() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_testbench"))
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap)"]
fn soak_short_rss_flat_no_loss_no_failed_put() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = soak(&SoakOptions {
        duration: Duration::from_secs(75),
        put_interval: Duration::from_millis(100),
        flows: 32,
        rate: 200.0,
        tools: tools(),
    })
    .expect("soak runs");
    println!("{}", report.line());
    assert!(report.puts >= 400, "{}", report.line());
    assert!(report.datagrams >= 10_000, "{}", report.line());
    assert!(report.passed(), "{}", report.line());
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap)"]
fn chaos_short_restarts_serve_the_last_accepted_set() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let report = chaos(&ChaosOptions {
        kills: 3,
        tools: tools(),
    })
    .expect("chaos runs");
    println!("{}", report.line());
    assert!(report.passed(), "{}", report.line());
}

//! What the load generator itself reaches through the kernel stand-in: the ceiling any
//! appliance figure measured with it should be read against. Prints figures, asserts
//! only correctness. Run with
//! `cargo test -p testbench --test throughput -- --ignored --nocapture`.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::SocketAddr;

use testbench::traffic::loadgen::Mode;
use testbench::LoadgenConfig;

const PORT: u16 = 7000;

#[test]
#[ignore = "needs root: network namespaces; a benchmark (~20 s)"]
fn loadgen_ceiling_through_the_kernel_router() {
    let topo = common::routed(1);
    let tools = common::tools();
    let backend = topo.backend(0);
    let server = SocketAddr::new(backend.ipv4().into(), PORT);
    let client = topo.client(0);

    let sink = tools
        .start_echo(backend, PORT, true, &topo.log_path("sink.log"))
        .expect("sink starts");
    for (flows, threads) in [(1, 1), (64, 1), (64, 2)] {
        let before = tools
            .echo_stats(backend.ns(), server)
            .expect("stats")
            .received;
        let mut config = LoadgenConfig::new(server, client.ipv4().into(), flows);
        config.mode = Mode::Blast;
        config.count = 400_000 / u64::from(flows);
        config.threads = threads;
        config.max_duration_ms = 10_000;
        let r = tools
            .loadgen(client.ns(), &config, &topo.log_path("blast.log"))
            .expect("loadgen runs");
        let after = tools
            .echo_stats(backend.ns(), server)
            .expect("stats")
            .received;
        println!(
            "blast   flows={flows:<3} threads={threads}: sent {} in {:.2} s = {:.0} pps; \
             sink got {} ({:.1} %)",
            r.sent,
            r.elapsed_s,
            r.send_rate_pps,
            after - before,
            100.0 * (after - before) as f64 / r.sent.max(1) as f64
        );
        assert!(after - before <= r.sent);
    }
    drop(sink);

    let _echo = tools
        .start_echo(backend, PORT, false, &topo.log_path("echo.log"))
        .expect("echo starts");
    for (flows, threads) in [(1, 1), (64, 2)] {
        let mut config = LoadgenConfig::new(server, client.ipv4().into(), flows);
        config.count = 40_000 / u64::from(flows);
        config.threads = threads;
        config.max_duration_ms = 10_000;
        let r = tools
            .loadgen(client.ns(), &config, &topo.log_path("rr.log"))
            .expect("loadgen runs");
        let l = r.latency.as_ref().expect("latency");
        println!(
            "req/rsp flows={flows:<3} threads={threads}: {} replies in {:.2} s = {:.0}/s; \
             lost {}; rtt p50 {:.0} µs p99 {:.0} µs p999 {:.0} µs",
            r.received,
            r.elapsed_s,
            r.received as f64 / r.elapsed_s,
            r.lost,
            l.p50_us,
            l.p99_us,
            l.p999_us
        );
        assert_eq!(r.received + r.lost, r.sent);
    }
}

//! The attachment the appliance will use, with a real DPDK process: `dpdk-testpmd` on a
//! `net_tap` port in the lb namespace stands in for udplb. Its TAP is bridged by
//! `attach_tap`, and frames from a client reach the DPDK port.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

use std::time::Duration;

use testbench::bench::testpmd::Testpmd;
use testbench::topology::BRIDGE;
use testbench::traffic::raw;
use testbench::{exec, Topology};

#[test]
#[ignore = "needs root: network namespaces, DPDK (dpdk-testpmd)"]
fn dpdk_net_tap_joins_the_bridge_and_receives_client_frames() {
    let topo = Topology::builder()
        .backends(1)
        .build()
        .expect("topology builds");
    // Returns once the TAP DPDK made is bridged and testpmd forwards: the TAP exists
    // before DPDK starts the port, and frames sent earlier are dropped.
    let testpmd = Testpmd::on_tap(&topo, "macswap").expect("testpmd starts and forwards");
    let out = topo
        .lb_ns()
        .ip(&["-o", "link", "show", "dev", topo.tap_name()])
        .expect("tap exists");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains(&format!("master {BRIDGE}")), "{line}");
    let before = testpmd.counter("RX-packets:").unwrap_or(0);

    // Broadcast frames (a made-up EtherType) from the client cross the bridge to DPDK.
    let client = topo.client(0);
    let mut frame = vec![0xff; 6];
    frame.extend(client.mac().expect("client mac"));
    frame.extend([0x88, 0xb5]); // local experimental EtherType
    frame.extend([0xa5; 46]);
    let frames = vec![frame; 5];
    raw::send_frames(client.ns(), "eth0", &frames).expect("frames sent");
    exec::wait_for("testpmd to count 5 frames", Duration::from_secs(10), || {
        Ok((testpmd.counter("RX-packets:").unwrap_or(0) >= before + 5).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", testpmd.log()));
}

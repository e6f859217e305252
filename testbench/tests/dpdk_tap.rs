//! The attachment the appliance will use, with a real DPDK process: `dpdk-testpmd` on a
//! `net_tap` port in the lb namespace stands in for udplb. Its TAP is bridged by
//! `attach_tap`, and frames from a client reach the DPDK port.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

use std::path::Path;
use std::time::Duration;

use testbench::topology::BRIDGE;
use testbench::traffic::raw;
use testbench::{exec, skip_unless_root, Topology};

/// The largest `RX-packets:` figure testpmd has printed so far.
fn rx_packets(log: &str) -> u64 {
    log.split("RX-packets:")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn dpdk_net_tap_joins_the_bridge_and_receives_client_frames() {
    if skip_unless_root("dpdk_net_tap_joins_the_bridge_and_receives_client_frames") {
        return;
    }
    if !Path::new("/usr/bin/dpdk-testpmd").exists() {
        eprintln!("skipping: dpdk-testpmd is not installed (package dpdk)");
        return;
    }
    let topo = Topology::builder()
        .backends(1)
        .build()
        .expect("topology builds");
    let vdev = format!("net_tap0,iface={}", topo.tap_name());
    let prefix = format!("udplb-tb-{}", topo.tap_name());
    // EAL makes its runtime directory even with --no-shconf; remove it whatever happens.
    struct RemoveDir(String);
    impl Drop for RemoveDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.0));
        }
    }
    let _runtime = RemoveDir(prefix.clone());
    let testpmd = topo
        .spawn_in_lb(
            "dpdk-testpmd",
            &[
                "-l",
                "0-1",
                "--no-huge",
                "-m",
                "256",
                "--no-shconf",
                "--no-pci",
                "--log-level=lib.eal:error",
                "--file-prefix",
                &prefix,
                "--vdev",
                &vdev,
                "--",
                "--forward-mode=macswap",
                "--total-num-mbufs=4096",
                "--stats-period=1",
            ],
            "testpmd.log",
        )
        .expect("testpmd starts");
    topo.attach_tap(topo.tap_name(), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", testpmd.log()));
    let out = topo
        .lb_ns()
        .ip(&["-o", "link", "show", "dev", topo.tap_name()])
        .expect("tap exists");
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(line.contains(&format!("master {BRIDGE}")), "{line}");

    // The TAP exists before DPDK starts the port; frames sent earlier are dropped. The
    // first statistics block means forwarding has started.
    exec::wait_for(
        "testpmd to start forwarding",
        Duration::from_secs(30),
        || Ok(testpmd.log().contains("Port statistics").then_some(())),
    )
    .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", testpmd.log()));
    let before = rx_packets(&testpmd.log());

    // Broadcast frames (a made-up EtherType) from the client cross the bridge to DPDK.
    let client = topo.client(0);
    let mut frame = vec![0xff; 6];
    frame.extend(client.mac().expect("client mac"));
    frame.extend([0x88, 0xb5]); // local experimental EtherType
    frame.extend([0xa5; 46]);
    let frames = vec![frame; 5];
    raw::send_frames(client.ns(), "eth0", &frames).expect("frames sent");
    exec::wait_for("testpmd to count 5 frames", Duration::from_secs(10), || {
        Ok((rx_packets(&testpmd.log()) >= before + 5).then_some(()))
    })
    .unwrap_or_else(|e| panic!("{e}\ntestpmd log:\n{}", testpmd.log()));
}

#[test]
fn rx_counter_parsing() {
    let log = "  RX-packets: 0   RX-missed: 0\n  RX-packets: 7          RX-missed: 0\n";
    assert_eq!(rx_packets(log), 7);
    assert_eq!(rx_packets("nothing"), 0);
}

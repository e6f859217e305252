//! The topology builds what it promises and removes all of it, also on panic.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::panic;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use testbench::netns::list_netns;
use testbench::topology::BRIDGE;
use testbench::{Error, Topology};

/// What a topology created, recorded so it can be checked after the topology is gone.
struct Footprint {
    namespaces: Vec<String>,
    ifnames: Vec<String>,
    run_dir: PathBuf,
}

fn footprint(topo: &Topology) -> Footprint {
    Footprint {
        namespaces: topo.namespaces().iter().map(|s| s.to_string()).collect(),
        ifnames: vec![topo.tap_name().to_owned(), topo.appliance_veth().to_owned()],
        run_dir: topo.run_dir().to_owned(),
    }
}

fn assert_gone(f: &Footprint) {
    let left: Vec<String> = list_netns()
        .expect("ip netns list")
        .into_iter()
        .filter(|n| f.namespaces.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let links = common::root_links();
    for name in &f.ifnames {
        assert!(
            !links.contains(name),
            "interface {name} leaked into the root namespace"
        );
    }
}

#[test]
#[ignore = "needs root: network namespaces"]
fn up_and_down_leaves_nothing_behind() {
    let links_before = common::root_links();
    let topo = Topology::builder()
        .clients(2)
        .backends(3)
        .build()
        .expect("topology builds");
    let f = footprint(&topo);
    let listed = list_netns().expect("ip netns list");
    for ns in &f.namespaces {
        assert!(listed.contains(ns), "{ns} missing from {listed:?}");
    }
    assert_eq!(f.namespaces.len(), 1 + 2 + 3);
    assert!(f.run_dir.is_dir());
    // Every host port and the appliance veth's peer are on the bridge.
    let lb = topo.lb_ns();
    let peer = format!("ulbp{}", &topo.appliance_veth()[4..]);
    for port in ["c0", "c1", "b0", "b1", "b2", peer.as_str()] {
        let line = common::link_line(lb, port);
        assert!(line.contains(&format!("master {BRIDGE}")), "{port}: {line}");
    }
    // Addresses land where the plan says.
    let b2 = topo.backend(2);
    assert_eq!(b2.ipv4().to_string(), "198.18.1.13");
    let out = b2
        .ns()
        .ip(&["-o", "addr", "show", "dev", "eth0"])
        .expect("addr");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("198.18.1.13/24"), "{text}");
    assert!(text.contains("2001:2:0:1::13/64"), "{text}");
    let routes = topo.client(1).ns().ip(&["-4", "route"]).expect("routes");
    let routes = String::from_utf8_lossy(&routes.stdout);
    assert!(routes.contains("198.18.0.0/24 via 198.19.0.1"), "{routes}");
    assert_eq!(topo.client(1).ipv4().to_string(), "198.19.0.101");

    drop(topo);
    assert_gone(&f);
    assert!(!f.run_dir.exists(), "run directory left behind");
    // Nothing new in the root namespace either (others may add links meanwhile, so
    // only names of ours would count).
    let after = common::root_links();
    let new: Vec<&String> = after
        .iter()
        .filter(|l| !links_before.contains(l) && l.starts_with("ulb"))
        .collect();
    assert!(new.is_empty(), "new root interfaces: {new:?}");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn panic_still_removes_everything() {
    let seen: Mutex<Option<Footprint>> = Mutex::new(None);
    let result = panic::catch_unwind(panic::AssertUnwindSafe(|| {
        let topo = Topology::with_kernel_router().expect("topology builds");
        // A process inside must not keep anything alive either.
        let _sleeper = topo
            .backend(0)
            .ns()
            .spawn("sleep", &["600"], &topo.log_path("sleep.log"))
            .expect("sleep starts");
        *seen.lock().unwrap() = Some(footprint(&topo));
        panic!("simulated test failure");
    }));
    assert!(result.is_err());
    let f = seen.into_inner().unwrap().expect("recorded");
    assert_gone(&f);
    // Logs of a failed run are kept for the developer; this test removes them.
    assert!(f.run_dir.is_dir(), "logs of a failed run are kept");
    std::fs::remove_dir_all(&f.run_dir).expect("remove kept logs");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn kernel_router_holds_the_appliance_addresses() {
    let topo = Topology::with_kernel_router().expect("topology builds");
    assert!(topo.is_kernel_router());
    let out = topo
        .lb_ns()
        .ip(&["-o", "addr", "show", "dev", BRIDGE])
        .expect("addr");
    let text = String::from_utf8_lossy(&out.stdout);
    for addr in topo.addressing().appliance_addrs() {
        assert!(text.contains(&addr.to_string()), "{addr} missing: {text}");
    }
    let fwd = topo
        .lb_ns()
        .run(
            "sysctl",
            &["-n", "net.ipv4.ip_forward"],
            Duration::from_secs(5),
        )
        .expect("sysctl");
    assert_eq!(String::from_utf8_lossy(&fwd.stdout).trim(), "1");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn attach_tap_waits_for_the_interface_then_bridges_it() {
    let topo = Topology::builder()
        .backends(1)
        .build()
        .expect("topology builds");
    let tap = topo.tap_name().to_owned();
    let lb_name = topo.lb_ns().name().to_owned();
    // Stand in for DPDK: the TAP appears a little after the attach call starts waiting.
    let creator = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut cmd = std::process::Command::new("ip");
        cmd.args(["-n", &lb_name, "tuntap", "add", "dev", &tap, "mode", "tap"]);
        testbench::exec::run(&mut cmd, None, Duration::from_secs(5)).map(drop)
    });
    topo.attach_tap(topo.tap_name(), Duration::from_secs(10))
        .expect("tap attached");
    creator.join().expect("creator thread").expect("tuntap add");
    let line = common::link_line(topo.lb_ns(), topo.tap_name());
    assert!(line.contains(&format!("master {BRIDGE}")), "{line}");

    let started = Instant::now();
    let err = topo
        .attach_tap("ulbtnone", Duration::from_millis(200))
        .expect_err("no such interface");
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the wait is bounded"
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn appliance_veth_is_left_for_dpdk() {
    let topo = Topology::builder()
        .backends(1)
        .build()
        .expect("topology builds");
    let line = common::link_line(topo.lb_ns(), topo.appliance_veth());
    assert!(
        !line.contains("master"),
        "the DPDK end is not bridged: {line}"
    );
    assert!(line.contains("state UP") || line.contains(",UP"), "{line}");
    assert!(topo.appliance_veth().len() <= 15);
}

#[test]
fn bad_parameters_are_refused_before_anything_is_created() {
    // No root needed: validation happens first.
    let err = Topology::builder()
        .backends(0)
        .build()
        .expect_err("no backends");
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    let plan = testbench::Addressing {
        vip_v4: "10.0.0.10".parse().expect("address"),
        ..testbench::Addressing::default()
    };
    let err = Topology::builder()
        .addressing(plan)
        .build()
        .expect_err("non-benchmark VIP");
    assert!(err.to_string().contains("vip_v4"), "{err}");
}

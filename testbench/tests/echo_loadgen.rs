//! Our echo server and load generator, through the kernel stand-in.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use etherparse::PacketBuilder;
use testbench::traffic::loadgen::Mode;
use testbench::traffic::raw;
use testbench::{LoadgenConfig, Topology};

const PORT: u16 = 7000;

#[test]
#[ignore = "needs root: network namespaces"]
fn loadgen_reports_which_backend_answered_each_flow() {
    let topo = Topology::builder()
        .kernel_router(true)
        .ips_per_client(2)
        .build()
        .expect("topology builds");
    let tools = common::tools();
    let _servers = common::echo_on_all(&topo, &tools, PORT, false);
    // Without an appliance, "which backend" is decided by the target: flow i goes to
    // backend i % 3, from source address i % 2.
    let client = topo.client(0);
    let mut config = common::to_every_backend(&topo, PORT, 30);
    config.sources = client.ipv4_all();
    config.count = 5;
    config.first_port = Some(41_000);
    let report = tools
        .loadgen(client.ns(), &config, &topo.log_path("loadgen.log"))
        .expect("loadgen runs");

    assert!(report.complete);
    assert_eq!((report.sent, report.received, report.lost), (150, 150, 0));
    assert_eq!(report.errors, 0);
    for flow in &report.flows {
        let i = flow.flow as usize;
        assert_eq!(flow.backend(), Some(topo.backend(i % 3).name()), "flow {i}");
        assert_eq!(flow.received, 5);
        let source = flow.source.expect("bound");
        assert_eq!(source.ip(), client.ipv4_all()[i % 2]);
        assert_eq!(
            source.port(),
            41_000 + u16::try_from(flow.flow).expect("few flows")
        );
        // No NAT on the way: the server saw the flow's own address.
        assert_eq!(flow.seen_as, BTreeSet::from([source]), "flow {i}");
    }
    for b in topo.backends() {
        let tally = &report.backends[b.name()];
        assert_eq!((tally.flows, tally.replies), (10, 50), "{}", b.name());
    }
    let latency = report.latency.expect("request/response measures latency");
    assert_eq!(latency.samples, 150);
    assert!(latency.min_us > 0.0);
    assert!(latency.p50_us <= latency.p99_us && latency.p99_us <= latency.p999_us);
    assert!(latency.p999_us <= latency.max_us);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn ipv6_flows_and_lost_requests_are_reported() {
    let topo = common::routed(1);
    let tools = common::tools();
    let backend = topo.backend(0);
    let _echo = tools
        .start_echo(backend, PORT, false, &topo.log_path("echo.log"))
        .expect("echo starts");
    let client = topo.client(0);
    let mut config = LoadgenConfig::new(
        SocketAddr::new(backend.ipv6().into(), PORT),
        client.ipv6().into(),
        4,
    );
    // Flows 1 and 3 aim at a port nobody serves: every request is lost.
    config
        .targets
        .push(SocketAddr::new(backend.ipv6().into(), PORT + 1));
    config.count = 3;
    config.reply_timeout_ms = 200;
    let report = tools
        .loadgen(client.ns(), &config, &topo.log_path("loadgen.log"))
        .expect("loadgen runs");
    for flow in &report.flows {
        if flow.flow % 2 == 0 {
            assert_eq!((flow.received, flow.lost), (3, 0), "{flow:?}");
            assert_eq!(flow.backend(), Some(backend.name()));
            let seen: Vec<IpAddr> = flow.seen_as.iter().map(SocketAddr::ip).collect();
            assert_eq!(seen, vec![IpAddr::from(client.ipv6())]);
        } else {
            assert_eq!(flow.received, 0, "{flow:?}");
            // Every request that went out is lost; port unreachable shows as errors.
            assert_eq!(flow.lost, flow.sent, "{flow:?}");
            assert!(flow.errors >= 1, "{flow:?}");
            assert!(flow.backend().is_none());
        }
    }
    assert_eq!(report.received, 6);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn blast_is_counted_by_a_sink() {
    let topo = common::routed(1);
    let tools = common::tools();
    let backend = topo.backend(0);
    let server = SocketAddr::new(backend.ipv4().into(), PORT);
    let _sink = tools
        .start_echo(backend, PORT, true, &topo.log_path("sink.log"))
        .expect("sink starts");
    let client = topo.client(0);
    let mut config = LoadgenConfig::new(server, client.ipv4().into(), 8);
    config.mode = Mode::Blast;
    config.count = 250;
    // Paced well below what a veth pair carries, so the kernel drops nothing.
    config.rate = Some(20_000.0);
    let report = tools
        .loadgen(client.ns(), &config, &topo.log_path("blast.log"))
        .expect("loadgen runs");
    assert!(report.complete);
    assert_eq!((report.sent, report.errors), (2000, 0));
    assert_eq!(report.received, 0, "blast does not read replies");
    assert!(report.latency.is_none());
    assert!(report.send_rate_pps > 0.0);

    let stats = tools.echo_stats(backend.ns(), server).expect("stats");
    assert_eq!(stats.name, backend.name());
    assert_eq!(stats.received, report.sent);
    assert_eq!(stats.replied, 0, "a sink never replies");
    let sources: BTreeSet<SocketAddr> = report.flows.iter().filter_map(|f| f.source).collect();
    assert_eq!(
        stats.peers.keys().copied().collect::<BTreeSet<_>>(),
        sources
    );
    assert!(stats.peers.values().all(|&n| n == 250));
}

#[test]
#[ignore = "needs root: network namespaces"]
fn parallel_topologies_do_not_collide() {
    let tools = common::tools();
    let results: Vec<(Vec<String>, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let tools = tools.clone();
                scope.spawn(move || {
                    let topo = common::routed(1);
                    let _echo = tools
                        .start_echo(topo.backend(0), PORT, false, &topo.log_path("echo.log"))
                        .expect("echo starts");
                    let target = SocketAddr::new(topo.backend(0).ipv4().into(), PORT);
                    let mut config = LoadgenConfig::new(target, topo.client(0).ipv4().into(), 5);
                    config.count = 20;
                    let report = tools
                        .loadgen(topo.client(0).ns(), &config, &topo.log_path("lg.log"))
                        .expect("loadgen runs");
                    assert_eq!((report.sent, report.received), (100, 100));
                    let names = topo.namespaces().iter().map(|s| s.to_string()).collect();
                    (names, topo.tap_name().to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let all: BTreeSet<&String> = results.iter().flat_map(|(ns, _)| ns).collect();
    assert_eq!(all.len(), 3 * 3, "same addresses, distinct namespaces");
    let taps: BTreeSet<&String> = results.iter().map(|(_, tap)| tap).collect();
    assert_eq!(taps.len(), 3);
}

#[test]
#[ignore = "needs root: network namespaces"]
fn raw_frames_reach_the_wire_as_written() {
    let topo = common::routed(1);
    let tools = common::tools();
    let backend = topo.backend(0);
    let client = topo.client(0);
    let server = SocketAddr::new(backend.ipv4().into(), PORT);
    let _sink = tools
        .start_echo(backend, PORT, true, &topo.log_path("sink.log"))
        .expect("sink starts");
    // Hand-made UDP/IPv4 frames addressed straight to the backend's MAC, one with a
    // broken UDP checksum, which the backend's kernel must drop.
    let dst_mac = backend.mac().expect("backend mac");
    let src_mac = client.mac().expect("client mac");
    let frame = |src_port: u16| {
        let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
            .ipv4(client.ipv4().octets(), backend.ipv4().octets(), 64)
            .udp(src_port, PORT);
        let payload = b"raw hello";
        let mut out = Vec::with_capacity(builder.size(payload.len()));
        builder.write(&mut out, payload).expect("frame builds");
        out
    };
    let good = frame(45_000);
    let mut bad = frame(45_001);
    let last = bad.len() - 1;
    bad[last] ^= 0xff; // payload change without checksum update
    let sent =
        raw::send_frames(client.ns(), "eth0", &[good.clone(), bad, good]).expect("frames sent");
    assert_eq!(sent, 3);
    let stats = testbench::exec::wait_for(
        "the sink to count the raw frames",
        std::time::Duration::from_secs(5),
        || {
            let s = tools.echo_stats(backend.ns(), server)?;
            Ok((s.received >= 2).then_some(s))
        },
    )
    .expect("frames arrive");
    let from: SocketAddr = (client.ipv4(), 45_000).into();
    assert_eq!(stats.peers.get(&from), Some(&2));
    assert_eq!(
        stats.received, 2,
        "the corrupted frame is dropped: {stats:?}"
    );
}

#[test]
#[ignore = "needs root: network namespaces"]
fn thousands_of_flows_fit_under_the_open_file_limit() {
    let topo = Topology::with_kernel_router().expect("topology builds");
    let tools = common::tools();
    let _servers = common::echo_on_all(&topo, &tools, PORT, false);
    let client = topo.client(0);
    // More sockets than the usual default limit of 1024 open files: the driver raises it.
    let mut config = common::to_every_backend(&topo, PORT, 2_500);
    config.count = 2;
    let report = tools
        .loadgen(client.ns(), &config, &topo.log_path("loadgen.log"))
        .expect("loadgen runs");
    assert!(report.complete);
    assert_eq!((report.sent, report.received), (5_000, 5_000));
    let ports: BTreeSet<u16> = report
        .flows
        .iter()
        .filter_map(|f| f.source.map(|s| s.port()))
        .collect();
    assert_eq!(ports.len(), 2_500, "every flow has its own source port");
    let shares = report.flow_shares();
    for (i, b) in topo.backends().iter().enumerate() {
        let expected = (2_500 + 2 - i) / 3; // flows i, i+3, … below 2500
        assert_eq!(
            report.backends[b.name()].flows,
            expected as u64,
            "{}",
            b.name()
        );
        assert!((shares[b.name()] - expected as f64 / 2_500.0).abs() < 1e-9);
    }
}

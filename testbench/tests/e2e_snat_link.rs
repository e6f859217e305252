//! Full NAT with the SNAT address on the backends' link (issue 14): a backend sends its
//! reply to an address in its own subnet, so it resolves that address itself with ARP/NDP,
//! and the appliance must answer on the port facing the backends. Run over the DPDK TAP
//! (one port holding every prefix) and over AF_XDP (two ports: a veth into the clients'
//! link and one into the backends' link), IPv4 and IPv6.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use testbench::appliance::{Appliance, ApplianceOptions};
use testbench::manifests::{self, Endpoint, Parent};
use testbench::LoadgenConfig;
use testbench::{Addressing, Topology};

const ECHO_PORT: u16 = 7777;
const FLOWS: u32 = 100;
const PER_FLOW: u64 = 3;

/// The default plan with the SNAT addresses moved to the backend subnet (next to the
/// backend gateways 198.18.1.1 and 2001:2:0:1::1, not equal to them).
fn snat_on_backend_link() -> Addressing {
    Addressing {
        snat_v4: Ipv4Addr::new(198, 18, 1, 2),
        snat_v6: Ipv6Addr::new(0x2001, 2, 0, 1, 0, 0, 0, 2),
        ..Addressing::default()
    }
}

/// One Gateway on both VIPs, full NAT, spread over both addresses of every backend.
fn echo_manifests(topo: &Topology) -> String {
    let a = topo.addressing();
    let vips = [IpAddr::from(a.vip_v4), IpAddr::from(a.vip_v6)];
    let mut docs = vec![
        manifests::gateway_class(),
        manifests::gateway("gw", &vips, &[("echo", ECHO_PORT)], &[]),
    ];
    let mut refs = Vec::new();
    for (i, b) in topo.backends().iter().enumerate() {
        let svc = format!("b{i}");
        docs.push(manifests::service(
            &svc,
            ECHO_PORT,
            &[
                Endpoint::ready(b.ipv4().into()),
                Endpoint::ready(b.ipv6().into()),
            ],
        ));
        refs.push(svc);
    }
    let backend_refs: Vec<(&str, u16, u32)> =
        refs.iter().map(|s| (s.as_str(), ECHO_PORT, 1)).collect();
    docs.push(manifests::route(
        "echo",
        "2026-01-01T00:00:00Z",
        &[Parent {
            gateway: "gw",
            section: None,
            port: None,
        }],
        &backend_refs,
    ));
    manifests::join(&docs)
}

fn loadgen(topo: &Topology, target: SocketAddr, flows: u32, count: u64) -> testbench::Report {
    let source = if target.is_ipv4() {
        topo.client(0).ipv4().into()
    } else {
        topo.client(0).ipv6().into()
    };
    let mut cfg = LoadgenConfig::new(target, source, flows);
    cfg.count = count;
    cfg.reply_timeout_ms = 1000;
    cfg.max_duration_ms = 60_000;
    cfg.rate = Some(2000.0);
    common::tools()
        .loadgen(topo.client(0).ns(), &cfg, &topo.log_path("loadgen.log"))
        .expect("loadgen runs")
}

/// The MAC udplb reports for its port `name` (`port NAME (DEVICE): driver D, mac M, …`).
fn port_mac(log: &str, name: &str) -> String {
    let prefix = format!("port {name} (");
    log.lines()
        .filter_map(|l| l.split_once(&prefix).map(|(_, rest)| rest))
        .find_map(|rest| rest.split_once(", mac ").map(|(_, m)| m))
        .and_then(|m| m.split(',').next())
        .unwrap_or_else(|| panic!("no MAC for port {name} in the log:\n{log}"))
        .to_owned()
}

/// `ip neigh show ADDR` in a backend: (state, lladdr).
fn neighbor(topo: &Topology, backend: usize, addr: IpAddr) -> (String, String) {
    let family = if addr.is_ipv4() { "-4" } else { "-6" };
    let out = topo
        .backend(backend)
        .ns()
        .ip(&[family, "neigh", "show", &addr.to_string()])
        .expect("ip neigh");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let words: Vec<&str> = text.split_whitespace().collect();
    let state = words.last().copied().unwrap_or("none").to_owned();
    let lladdr = words
        .iter()
        .position(|w| *w == "lladdr")
        .and_then(|i| words.get(i + 1))
        .copied()
        .unwrap_or("none")
        .to_owned();
    (state, lladdr)
}

/// Runs full-NAT load through both VIPs and checks that every datagram was answered, that
/// the backends saw the SNAT address, and that each backend resolved the SNAT address to
/// the MAC of the appliance port `answering_port`; then runs `more` and stops udplb,
/// which must exit cleanly and remove its DPDK runtime directory.
fn replies_come_back(
    topo: &Topology,
    opts: ApplianceOptions,
    answering_port: &str,
    label: &str,
    more: &dyn Fn(&Appliance<'_>) -> Vec<String>,
) {
    let _echo = common::echo_on_all(topo, &common::tools(), ECHO_PORT, false);
    let app = Appliance::start(topo, &opts).expect("udplb starts");
    let a = topo.addressing().clone();
    let mac = port_mac(&app.log(), answering_port);
    let mut results = Vec::new();
    for (vip, snat) in [
        (IpAddr::from(a.vip_v4), IpAddr::from(a.snat_v4)),
        (IpAddr::from(a.vip_v6), IpAddr::from(a.snat_v6)),
    ] {
        let target = SocketAddr::new(vip, ECHO_PORT);
        let report = loadgen(topo, target, FLOWS, PER_FLOW);
        let want = u64::from(FLOWS) * PER_FLOW;
        results.push(format!(
            "{label} {vip}: {}/{} answered",
            report.received, report.sent
        ));
        assert_eq!(
            (report.sent, report.received, report.lost),
            (want, want, 0),
            "{label} {vip}: every datagram answered\n{}",
            app.log()
        );
        for f in &report.flows {
            for seen in &f.seen_as {
                assert_eq!(seen.ip(), snat, "{label}: flow {} not full NAT", f.flow);
            }
        }
        for i in 0..topo.backends().len() {
            let (state, lladdr) = neighbor(topo, i, snat);
            assert!(
                ["REACHABLE", "STALE", "DELAY", "PROBE"].contains(&state.as_str()),
                "{label}: backend-{i} neighbor {snat} is {state}"
            );
            assert_eq!(lladdr, mac, "{label}: backend-{i} resolved {snat}");
            results.push(format!(
                "{label} backend-{i} neigh {snat}: {state} {lladdr}"
            ));
        }
    }
    let arp = app
        .metric("udplb_slow_path_total{event=\"arp_replies\"}")
        .expect("metrics");
    let nd = app
        .metric("udplb_slow_path_total{event=\"nd_replies\"}")
        .expect("metrics");
    assert!(
        arp >= 1 && nd >= 1,
        "{label}: arp_replies {arp}, nd_replies {nd}"
    );
    results.extend(more(&app));
    let stopped = app.stop_report().expect("udplb stops");
    let log = &stopped.log;
    assert!(
        stopped.status.success(),
        "udplb exit {:?}:\n{log}",
        stopped.status
    );
    assert!(
        log.contains("shutdown complete: 0 mbufs outstanding"),
        "{log}"
    );
    // udplb removes its DPDK runtime directory itself on a clean exit.
    assert!(
        !stopped.runtime_dir_left,
        "{} left behind:\n{log}",
        stopped.runtime_dir.display()
    );
    for line in results {
        println!("{line}");
    }
}

#[test]
#[ignore = "needs root: network namespaces, TAP and DPDK"]
fn snat_on_backend_link_is_answered_over_tap() {
    let topo = Topology::builder()
        .backends(2)
        .addressing(snat_on_backend_link())
        .build()
        .expect("topology builds");
    let opts = ApplianceOptions::new(echo_manifests(&topo));
    replies_come_back(&topo, opts, "tap0", "tap", &|_| Vec::new());
}

#[test]
#[ignore = "needs root: network namespaces, veths and DPDK net_af_xdp"]
fn snat_on_backend_link_is_answered_over_af_xdp() {
    let topo = Topology::builder()
        .backends(2)
        .addressing(snat_on_backend_link())
        .separate_backend_link(true)
        .build()
        .expect("topology builds");
    let backend_veth = topo.backend_veth().expect("backend link").to_owned();
    let mut opts = ApplianceOptions::new(echo_manifests(&topo));
    opts.device = Some(format!("net_af_xdp0,iface={}", topo.appliance_veth()));
    opts.backend_device = Some(format!("net_af_xdp1,iface={backend_veth}"));
    replies_come_back(&topo, opts, "backends", "af_xdp", &|app| {
        unfinished_checksums_are_counted(&topo, app)
    });
}

/// With TX checksum offload back on at the client, its datagrams reach the AF_XDP port
/// with only their pseudo-header checksum: udplb drops and counts every one of them
/// (`unfinished_udp_checksum`) instead of forwarding them invalid.
fn unfinished_checksums_are_counted(topo: &Topology, app: &Appliance<'_>) -> Vec<String> {
    const SENT: u32 = 20;
    let metric = "udplb_drops_total{reason=\"unfinished_udp_checksum\"}";
    let before = app.metric(metric).expect("metrics");
    let ethtool = |on: &str| {
        topo.client(0)
            .ns()
            .run(
                "ethtool",
                &["-K", "eth0", "tx", on],
                Duration::from_secs(10),
            )
            .expect("ethtool")
    };
    ethtool("on");
    let target = SocketAddr::new(topo.addressing().vip_v4.into(), ECHO_PORT);
    let report = loadgen(topo, target, SENT, 1);
    ethtool("off");
    let counted = app.metric(metric).expect("metrics") - before;
    assert_eq!(
        report.received, 0,
        "unfinished datagrams must not be answered"
    );
    assert_eq!(
        counted,
        u64::from(SENT),
        "every unfinished datagram counted"
    );
    vec![format!(
        "af_xdp with client TX offload on: {counted}/{} datagrams counted as \
         unfinished_udp_checksum, {} answered",
        report.sent, report.received
    )]
}

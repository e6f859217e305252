//! udplb on kernel-attached ports, the recommended port for edge hosts that are VMs
//! without a DPDK-capable NIC: `net_af_xdp` with two ports (one on the clients' link, one
//! on the backends' link, as `appliance/examples/appliance-af-xdp.yaml`) in full NAT, and
//! `net_af_packet` with one port in client-IP preservation. Real dnsmasq answers `dig`
//! through the VIP and our echo server answers load-generator flows, IPv4 and IPv6; udplb's
//! counters agree with what was sent; the XDP program is on the veths while udplb runs
//! and gone once it stops. Plus a check that the example settings file is valid.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use appliance::dpdk::Device;
use appliance::settings::Settings;
use testbench::appliance::{Appliance, ApplianceOptions};
use testbench::manifests::{self, Endpoint, Parent};
use testbench::traffic::dns::DNS_PORT;
use testbench::{dig, DigQuery, Dnsmasq, LoadgenConfig, Topology};

const ECHO_PORT: u16 = 7777;
const FLOWS: u32 = 100;
const PER_FLOW: u64 = 4;
const DIGS: u16 = 12;

/// The kernel-attached layouts under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// `net_af_xdp`, a port per link, full NAT.
    AfXdpTwoPorts,
    /// `net_af_packet`, one port for both links, client-IP preservation.
    AfPacketOnePort,
}

/// One Gateway on both VIPs with listeners `dns` (53) and `echo` (7777), a route each to
/// a Service of every backend's two addresses.
fn dns_and_echo_manifests(topo: &Topology) -> String {
    let a = topo.addressing();
    let vips = [IpAddr::from(a.vip_v4), IpAddr::from(a.vip_v6)];
    let eps: Vec<Endpoint> = topo.backends().iter().flat_map(Endpoint::both_of).collect();
    let parent = |section| Parent {
        gateway: "gw",
        section: Some(section),
        port: None,
    };
    manifests::join(&[
        manifests::gateway_class(),
        manifests::gateway("gw", &vips, &[("dns", DNS_PORT), ("echo", ECHO_PORT)], &[]),
        manifests::route(
            "dns",
            "2026-01-01T00:00:00Z",
            &[parent("dns")],
            &[("dns", DNS_PORT, 1)],
        ),
        manifests::route(
            "echo",
            "2026-01-01T00:00:01Z",
            &[parent("echo")],
            &[("echo", ECHO_PORT, 1)],
        ),
        manifests::service("dns", DNS_PORT, &eps),
        manifests::service("echo", ECHO_PORT, &eps),
    ])
}

/// `ip -d link show` of `veth` in the lb namespace: whether an XDP program is attached.
fn xdp_attached(topo: &Topology, veth: &str) -> bool {
    let out = topo
        .lb_ns()
        .ip(&["-d", "link", "show", "dev", veth])
        .expect("ip link");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("prog/xdp") || text.contains(" xdp")
}

/// dig `whoami.test TXT` through `vip` from source port `port`, retried while the first
/// datagrams to a backend wait for its neighbor entry; the answering backend's name.
fn whoami(topo: &Topology, app: &Appliance<'_>, vip: IpAddr, port: u16) -> String {
    let client = topo.client(0);
    let src = if vip.is_ipv4() {
        IpAddr::from(client.ipv4())
    } else {
        client.ipv6().into()
    };
    let q = DigQuery::whoami(vip).source(SocketAddr::new(src, port));
    for _ in 0..5 {
        if let Some(txt) = dig(client.ns(), &q).expect("dig runs").txt() {
            return txt.to_owned();
        }
    }
    panic!("no DNS answer via {vip} from port {port}:\n{}", app.log());
}

fn loadgen(topo: &Topology, target: SocketAddr) -> testbench::Report {
    let client = topo.client(0);
    let source = if target.is_ipv4() {
        client.ipv4().into()
    } else {
        client.ipv6().into()
    };
    let mut cfg = LoadgenConfig::new(target, source, FLOWS);
    cfg.count = PER_FLOW;
    cfg.reply_timeout_ms = 1000;
    cfg.max_duration_ms = 60_000;
    cfg.rate = Some(2000.0);
    common::tools()
        .loadgen(client.ns(), &cfg, &topo.log_path("loadgen.log"))
        .expect("loadgen runs")
}

/// The sum of udplb's `name` samples whose labels include `labels`.
fn metric(app: &Appliance<'_>, name: &str, labels: &[(&str, &str)]) -> u64 {
    app.metrics().expect("metrics").sum(name, labels)
}

/// Runs DNS and echo through udplb on `layout` and checks answers, counters and a clean
/// exit.
fn dns_and_echo_over(layout: Layout) {
    let topo = Topology::builder()
        .backends(3)
        .separate_backend_link(layout == Layout::AfXdpTwoPorts)
        .build()
        .expect("topology builds");
    let tools = common::tools();
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT).expect("dnsmasq starts");
    let _echo = common::echo_on_all(&topo, &tools, ECHO_PORT, false);
    let mut opts = ApplianceOptions::new(dns_and_echo_manifests(&topo));
    let client_veth = topo.appliance_veth().to_owned();
    let mut veths = vec![client_veth.clone()];
    match layout {
        Layout::AfXdpTwoPorts => {
            let backend_veth = topo.backend_veth().expect("backend link").to_owned();
            opts.device = Some(format!(
                "net_af_xdp0,iface={client_veth},start_queue=0,queue_count=1"
            ));
            opts.backend_device = Some(format!(
                "net_af_xdp1,iface={backend_veth},start_queue=0,queue_count=1"
            ));
            veths.push(backend_veth);
        }
        Layout::AfPacketOnePort => {
            opts.device = Some(format!("net_af_packet0,iface={client_veth}"));
            opts.nat_mode = "preserve-client".into();
        }
    }
    let app = Appliance::start(&topo, &opts).expect("udplb starts");
    let label = format!("{layout:?}");
    for veth in &veths {
        assert_eq!(
            xdp_attached(&topo, veth),
            layout == Layout::AfXdpTwoPorts,
            "{label}: XDP program on {veth} while udplb runs"
        );
    }

    let a = topo.addressing().clone();
    let client = topo.client(0);
    for (vip, snat, client_addr) in [
        (
            IpAddr::from(a.vip_v4),
            IpAddr::from(a.snat_v4),
            IpAddr::from(client.ipv4()),
        ),
        (
            IpAddr::from(a.vip_v6),
            IpAddr::from(a.snat_v6),
            IpAddr::from(client.ipv6()),
        ),
    ] {
        // DNS: every query answered by a dnsmasq, spread over the backends.
        let answered: BTreeSet<String> = (0..DIGS)
            .map(|i| whoami(&topo, &app, vip, 31_000 + i))
            .collect();
        assert!(
            answered.len() >= 2 && answered.iter().all(|n| n.starts_with("backend-")),
            "{label} {vip}: answers from {answered:?}"
        );

        // Echo: every datagram answered; udplb's counters agree exactly.
        let target = SocketAddr::new(vip, ECHO_PORT);
        let listener = [("listener", "echo")];
        let before = (
            metric(&app, "udplb_listener_packets_total", &listener),
            metric(&app, "udplb_listener_reply_packets_total", &listener),
            metric(&app, "udplb_backend_packets_total", &listener),
        );
        let report = loadgen(&topo, target);
        let want = u64::from(FLOWS) * PER_FLOW;
        assert_eq!(
            (report.sent, report.received, report.lost),
            (want, want, 0),
            "{label} {vip}: every echo answered\n{}",
            app.log()
        );
        let seen_as = if layout == Layout::AfXdpTwoPorts {
            snat
        } else {
            client_addr
        };
        for f in &report.flows {
            assert!(
                f.seen_as.iter().all(|s| s.ip() == seen_as),
                "{label}: flow {} seen as {:?}, not {seen_as}",
                f.flow,
                f.seen_as
            );
        }
        // Workers publish their counters every 100 ms.
        std::thread::sleep(Duration::from_millis(400));
        let after = (
            metric(&app, "udplb_listener_packets_total", &listener),
            metric(&app, "udplb_listener_reply_packets_total", &listener),
            metric(&app, "udplb_backend_packets_total", &listener),
        );
        assert_eq!(
            (after.0 - before.0, after.1 - before.1, after.2 - before.2),
            (want, want, want),
            "{label} {vip}: listener requests, replies and backend requests counted"
        );
        println!(
            "{label} {vip}: {DIGS} digs answered by {answered:?}; {}/{} echoes answered, \
             udplb counted {} requests and {} replies",
            report.received,
            report.sent,
            after.0 - before.0,
            after.1 - before.1
        );
    }
    assert_eq!(
        metric(
            &app,
            "udplb_drops_total",
            &[("reason", "unfinished_udp_checksum")]
        ),
        0,
        "{label}: senders' checksums are complete (TX offload off)"
    );

    let stopped = app.stop_report().expect("udplb stops");
    let log = &stopped.log;
    assert!(
        stopped.status.success(),
        "{label}: exit {:?}:\n{log}",
        stopped.status
    );
    assert!(
        log.contains("shutdown complete: 0 mbufs outstanding"),
        "{label}: {log}"
    );
    assert!(
        !stopped.runtime_dir_left,
        "{label}: {} left behind",
        stopped.runtime_dir.display()
    );
    for veth in &veths {
        assert!(
            !xdp_attached(&topo, veth),
            "{label}: XDP program left on {veth} after udplb stopped"
        );
    }
}

#[test]
#[ignore = "needs root: network namespaces, veths and DPDK net_af_xdp"]
fn dns_and_echo_over_af_xdp_on_two_ports() {
    dns_and_echo_over(Layout::AfXdpTwoPorts);
}

#[test]
#[ignore = "needs root: network namespaces, veths and DPDK net_af_packet"]
fn dns_and_echo_over_af_packet_on_one_port() {
    dns_and_echo_over(Layout::AfPacketOnePort);
}

#[test]
fn af_xdp_example_is_valid_with_a_queue_per_worker() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../appliance/examples/appliance-af-xdp.yaml");
    let s = Settings::from_file(&path).expect("appliance-af-xdp.yaml is valid");
    let queues = s.queues_per_port();
    assert_eq!(usize::from(queues), s.workers.lcores.len());
    assert_eq!(s.ports.len(), 2);
    for (i, port) in s.ports.iter().enumerate() {
        let Device::Vdev { name, args } = &port.device else {
            panic!("ports[{i}] is not a vdev: {:?}", port.device)
        };
        assert_eq!(name, &format!("net_af_xdp{i}"));
        let args: Vec<&str> = args.as_deref().unwrap_or("").split(',').collect();
        assert!(args.iter().any(|a| a.starts_with("iface=eth")), "{args:?}");
        assert!(args.contains(&"start_queue=0"), "{args:?}");
        // One AF_XDP queue per worker: udplb gives each worker a queue of every port.
        assert!(
            args.contains(&format!("queue_count={queues}").as_str()),
            "{args:?}"
        );
    }
    // Full NAT replies come back to an SNAT address on the backends' link.
    assert_eq!(s.snat.ipv4, Some("198.18.1.2".parse().expect("ip")));
    assert_eq!(s.eal_args, ["--in-memory"]);
}

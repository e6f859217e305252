//! dnsmasq backends answer dig through the kernel stand-in, over IPv4 and IPv6.
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use testbench::traffic::dns::{DNS_PORT, WHOAMI};
use testbench::{dig, DigQuery, DigReply, Dnsmasq, LoadgenConfig, Payload, Topology};

fn start_all(topo: &Topology) -> Vec<Dnsmasq> {
    Dnsmasq::start_on_backends(topo, DNS_PORT).expect("dnsmasq starts")
}

#[test]
#[ignore = "needs root: network namespaces"]
fn every_backend_names_itself_over_ipv4_and_ipv6() {
    let topo = Topology::with_kernel_router().expect("topology builds");
    let servers = start_all(&topo);
    let client = topo.client(0);
    for (backend, server) in topo.backends().iter().zip(&servers) {
        assert_eq!(server.backend(), backend.name());
        for addr in [IpAddr::from(backend.ipv4()), backend.ipv6().into()] {
            let reply = dig(client.ns(), &DigQuery::whoami(addr)).expect("dig runs");
            assert_eq!(
                reply.txt(),
                Some(backend.name()),
                "TXT from {addr}: {reply}"
            );
        }
        let a = dig(
            client.ns(),
            &DigQuery::whoami(backend.ipv4().into()).rtype("A"),
        )
        .expect("dig runs");
        assert_eq!(a.addresses(), vec![IpAddr::from(backend.ipv4())], "{a}");
        let aaaa = dig(
            client.ns(),
            &DigQuery::whoami(backend.ipv6().into()).rtype("AAAA"),
        )
        .expect("dig runs");
        assert_eq!(
            aaaa.addresses(),
            vec![IpAddr::from(backend.ipv6())],
            "{aaaa}"
        );
    }
    // Routed, not bridged: the backend saw the client's own address.
    let log = servers[0].log();
    assert!(
        log.contains(&format!("from {}", client.ipv4())),
        "dnsmasq log lacks the client address:\n{log}"
    );
    assert!(log.contains(WHOAMI), "{log}");
}

#[test]
#[ignore = "needs root: network namespaces"]
fn explicit_source_ports_are_used() {
    let topo = common::routed(1);
    let _servers = start_all(&topo);
    let client = topo.client(0);
    let backend = topo.backend(0);
    for (src, dst) in [
        (IpAddr::from(client.ipv4()), IpAddr::from(backend.ipv4())),
        (client.ipv6().into(), backend.ipv6().into()),
    ] {
        let query = DigQuery::whoami(dst).source(SocketAddr::new(src, 40_123));
        let reply = dig(client.ns(), &query).expect("dig runs");
        assert_eq!(reply.txt(), Some(backend.name()), "{reply}");
    }
    // A source address the client does not own is a usage error, not silence.
    let foreign = DigQuery::whoami(backend.ipv4().into())
        .source("198.19.0.250:40000".parse().expect("address"));
    assert!(dig(client.ns(), &foreign).is_err());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn a_closed_port_is_no_answer() {
    let topo = common::routed(1);
    let _servers = start_all(&topo);
    let query = DigQuery::whoami(topo.backend(0).ipv4().into())
        .port(5353)
        .timeout(Duration::from_secs(1));
    let reply = dig(topo.client(0).ns(), &query).expect("dig runs");
    assert!(matches!(reply, DigReply::NoAnswer(_)), "{reply}");
    assert!(!reply.answered());
}

#[test]
#[ignore = "needs root: network namespaces"]
fn the_load_generator_measures_dns_round_trips() {
    let topo = Topology::with_kernel_router().expect("topology builds");
    let _servers = start_all(&topo);
    let client = topo.client(0);
    // Six flows over the three dnsmasqs, IPv4 and IPv6 alike, five queries each.
    for v6 in [false, true] {
        let target = |b: &testbench::Host| -> SocketAddr {
            let ip: IpAddr = if v6 { b.ipv6().into() } else { b.ipv4().into() };
            SocketAddr::new(ip, DNS_PORT)
        };
        let source: IpAddr = if v6 {
            client.ipv6().into()
        } else {
            client.ipv4().into()
        };
        let mut config = LoadgenConfig::new(target(topo.backend(0)), source, 6);
        config.targets = topo.backends().iter().map(target).collect();
        config.payload = Payload::Dns;
        config.count = 5;
        let report = common::tools()
            .loadgen(client.ns(), &config, &topo.log_path("dns-loadgen.log"))
            .expect("loadgen runs");
        assert!(report.complete, "{report:?}");
        assert_eq!(
            (report.sent, report.received, report.lost, report.errors),
            (30, 30, 0, 0),
            "v6 {v6}"
        );
        let latency = report.latency.expect("round trips measured");
        assert_eq!(latency.samples, 30);
        assert_eq!(latency.cdf.len(), 30, "one point per sample below 300");
        assert!(report.backends.is_empty(), "DNS replies name no backend");
    }
}

//! Throughput, each figure with its accounting:
//!
//! * the load generator alone through the kernel stand-in: the ceiling any appliance
//!   figure measured with it should be read against;
//! * one-way load through udplb, where every datagram the generator sent is accounted for
//!   by a counter: forwarded (udplb's listener and backend counters, which must agree,
//!   and the backends' UDP layer), or dropped where a kernel or udplb counter says so.
//!
//! Prints figures. Run with
//! `cargo test -p testbench --test throughput -- --ignored --nocapture` (as root).
// An integration-test crate is test-only as a whole; no `mod tests` wrapper needed.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use testbench::appliance::{Appliance, ApplianceOptions};
use testbench::counters::{self, LinkStats};
use testbench::manifests::{self, Endpoint};
use testbench::metrics::Metrics;
use testbench::{LoadgenConfig, Mode, Topology};

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

/// Drop reasons a well-formed UDP datagram to a listener cannot get: what they count in a
/// window are other frames (neighbor discovery, multicast, …), not the load's.
const NOT_THE_LOADS: &[&str] = &[
    "truncated_ethernet",
    "truncated_vlan",
    "unsupported_link",
    "non_ip",
    "not_udp",
    "stray",
    "not_for_us",
];

/// Every counter on the path client → udplb → backends, read at one moment.
struct Ledger {
    udplb: Metrics,
    client: LinkStats,
    /// Every interface of the lb namespace: the TAP and the bridge's veths.
    lb: BTreeMap<String, LinkStats>,
    /// Per backend: its interface, and datagrams that reached its UDP layer.
    backends: Vec<(LinkStats, u64)>,
}

impl Ledger {
    fn read(topo: &Topology, app: &Appliance<'_>) -> Ledger {
        Ledger {
            udplb: app.metrics().expect("udplb metrics"),
            client: counters::link_stats(topo.client(0).ns(), "eth0").expect("client eth0"),
            lb: counters::all_link_stats(topo.lb_ns()).expect("lb links"),
            backends: topo
                .backends()
                .iter()
                .map(|b| {
                    (
                        counters::link_stats(b.ns(), "eth0").expect("backend eth0"),
                        counters::udp_arrivals(b.ns()).expect("backend UDP counters"),
                    )
                })
                .collect(),
        }
    }
}

/// What happened to a load between two [`Ledger`]s.
#[derive(Debug)]
struct Accounting {
    /// Datagrams udplb forwarded on the listener.
    forwarded: u64,
    /// Per backend (topology order): what udplb sent it, and what reached its UDP layer.
    per_backend: Vec<(u64, u64)>,
    /// Counted drops before udplb's decision: kernel (client veth, TAP queue), DPDK port,
    /// udplb's fast path.
    dropped_before: BTreeMap<String, u64>,
    /// Counted drops after it: udplb's transmit, TAP, veths towards the backends.
    dropped_after: BTreeMap<String, u64>,
}

impl Accounting {
    fn between(topo: &Topology, before: &Ledger, after: &Ledger) -> Accounting {
        let delta = |name: &str, labels: &[(&str, &str)]| {
            after.udplb.sum(name, labels) - before.udplb.sum(name, labels)
        };
        let tap = topo.tap_name();
        let link = |name: &String| after.lb[name] - before.lb[name];
        let mut dropped_before = BTreeMap::new();
        let mut dropped_after = BTreeMap::new();
        dropped_before.insert(
            "client eth0 tx".to_owned(),
            (after.client - before.client).tx_dropped,
        );
        for name in after.lb.keys().filter(|n| before.lb.contains_key(*n)) {
            let d = link(name);
            if name == tap {
                // Towards DPDK: the queue was full. From DPDK: not accepted.
                dropped_before.insert(format!("{name} tx (towards udplb)"), d.tx_dropped);
                dropped_after.insert(format!("{name} rx (from udplb)"), d.rx_dropped);
            } else {
                // The bridge's veths towards the backends (a client's veth drops count on
                // the client's side, as tx of its eth0).
                dropped_after.insert(format!("{name} tx"), d.tx_dropped);
            }
        }
        for port_drop in [
            "udplb_port_rx_missed_total",
            "udplb_port_rx_errors_total",
            "udplb_port_rx_nombuf_total",
        ] {
            dropped_before.insert(port_drop.to_owned(), delta(port_drop, &[]));
        }
        let reasons: Vec<String> = after
            .udplb
            .matching("udplb_drops_total", &[])
            .filter_map(|s| s.labels.get("reason").cloned())
            .collect();
        for reason in reasons {
            let n = delta("udplb_drops_total", &[("reason", &reason)]);
            if reason == "tx_refused" {
                dropped_after.insert(format!("udplb drop {reason}"), n);
            } else if !NOT_THE_LOADS.contains(&reason.as_str()) {
                dropped_before.insert(format!("udplb drop {reason}"), n);
            }
        }
        dropped_after.insert(
            "udplb_port_tx_errors_total".to_owned(),
            delta("udplb_port_tx_errors_total", &[]),
        );
        let per_backend = topo
            .backends()
            .iter()
            .zip(after.backends.iter().zip(&before.backends))
            .map(|(b, ((link_a, udp_a), (link_b, udp_b)))| {
                dropped_after.insert(
                    format!("{} eth0 rx", b.name()),
                    (*link_a - *link_b).rx_dropped,
                );
                let addr = SocketAddr::new(b.ipv4().into(), PORT).to_string();
                (
                    delta("udplb_backend_packets_total", &[("backend", &addr)]),
                    udp_a - udp_b,
                )
            })
            .collect();
        dropped_before.retain(|_, n| *n > 0);
        dropped_after.retain(|_, n| *n > 0);
        Accounting {
            forwarded: delta("udplb_listener_packets_total", &[("listener", "blast")]),
            per_backend,
            dropped_before,
            dropped_after,
        }
    }

    /// Whether every datagram of `sent` is accounted for (see
    /// [`Accounting::assert_accounts_for`]).
    fn closes(&self, sent: u64) -> bool {
        let to_backends: u64 = self.per_backend.iter().map(|(sent, _)| sent).sum();
        let arrived: u64 = self.per_backend.iter().map(|(_, got)| got).sum();
        self.forwarded == to_backends
            && sent == self.forwarded + self.dropped_before.values().sum::<u64>()
            && to_backends == arrived + self.dropped_after.values().sum::<u64>()
    }

    /// Every datagram of `sent` is forwarded or dropped where a counter says so, and
    /// every forwarded one reached its backend or was dropped where a counter says so.
    fn assert_accounts_for(&self, sent: u64) {
        let to_backends: u64 = self.per_backend.iter().map(|(sent, _)| sent).sum();
        let arrived: u64 = self.per_backend.iter().map(|(_, got)| got).sum();
        let before: u64 = self.dropped_before.values().sum();
        let after: u64 = self.dropped_after.values().sum();
        assert_eq!(
            self.forwarded, to_backends,
            "udplb's listener and backend counters disagree: {self:#?}"
        );
        assert_eq!(
            sent,
            self.forwarded + before,
            "sent = forwarded by udplb + counted drops before it: {self:#?}"
        );
        assert_eq!(
            to_backends,
            arrived + after,
            "forwarded = arrived at the backends + counted drops after udplb: {self:#?}"
        );
        for (i, (sent_to, got)) in self.per_backend.iter().enumerate() {
            assert!(
                got <= sent_to,
                "backend-{i} got more than udplb sent it: {self:#?}"
            );
            if after == 0 {
                assert_eq!(got, sent_to, "backend-{i}: {self:#?}");
            }
        }
    }
}

/// The accounting of `sent` datagrams since `before`, once it closes: queues drain and
/// datagrams held for neighbor resolution leave or expire (udplb holds them 3 s at most).
/// After 10 s, whatever it is.
fn settle(topo: &Topology, app: &Appliance<'_>, before: &Ledger, sent: u64) -> Accounting {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let acc = Accounting::between(topo, before, &Ledger::read(topo, app));
        if acc.closes(sent) || Instant::now() >= deadline {
            return acc;
        }
    }
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap); a benchmark (~20 s)"]
fn udplb_accounts_for_every_datagram_of_a_blast() {
    let topo = Topology::builder()
        .backends(3)
        .build()
        .expect("topology builds");
    let tools = common::tools();
    let _sinks = common::echo_on_all(&topo, &tools, PORT, true);
    let vip: IpAddr = topo.addressing().vip_v4.into();
    let sinks: Vec<Endpoint> = topo
        .backends()
        .iter()
        .map(|b| Endpoint::ready(b.ipv4().into()))
        .collect();
    let m = manifests::gateway_with_route(
        "blast",
        &[vip],
        &[("blast", PORT)],
        &[],
        PORT,
        &[("sinks", 1, sinks)],
    );
    let app = Appliance::start(&topo, &ApplianceOptions::new(m)).expect("udplb starts");
    let client = topo.client(0);
    let target = SocketAddr::new(vip, PORT);
    let blast = |flows: u32, count: u64, threads: u32, rate: Option<f64>| {
        let mut config = LoadgenConfig::new(target, client.ipv4().into(), flows);
        config.mode = Mode::Blast;
        config.count = count;
        config.threads = threads;
        config.rate = rate;
        config.max_duration_ms = 10_000;
        tools
            .loadgen(client.ns(), &config, &topo.log_path("blast.log"))
            .expect("loadgen runs")
    };
    // Resolve the backends' addresses first (datagrams wait meanwhile, or expire).
    let before = Ledger::read(&topo, &app);
    let warm = blast(64, 1, 1, Some(1_000.0));
    settle(&topo, &app, &before, warm.sent).assert_accounts_for(warm.sent);

    // (flows, threads, offered rate, datagrams): unpaced, where the TAP's queue towards
    // DPDK overflows, and paced within what udplb forwards.
    for (flows, threads, rate, total) in [
        (1, 1, None, 200_000),
        (64, 2, Some(20_000.0), 100_000),
        (64, 2, None, 200_000),
    ] {
        let before = Ledger::read(&topo, &app);
        let r = blast(flows, total / u64::from(flows), threads, rate);
        let acc = settle(&topo, &app, &before, r.sent);
        println!(
            "udplb blast flows={flows:<3} threads={threads} rate={rate:?}: sent {} in {:.2} s = \
             {:.0} pps ({} send errors); udplb forwarded {} ({:.1} %); dropped before udplb \
             {:?}, after {:?}",
            r.sent,
            r.elapsed_s,
            r.send_rate_pps,
            r.errors,
            acc.forwarded,
            100.0 * acc.forwarded as f64 / r.sent.max(1) as f64,
            acc.dropped_before,
            acc.dropped_after
        );
        assert!(acc.forwarded > 0, "udplb forwarded nothing: {acc:#?}");
        acc.assert_accounts_for(r.sent);
    }
    let (status, log) = app.stop().expect("udplb stops");
    assert!(status.success(), "udplb exit {status:?}:\n{log}");
}

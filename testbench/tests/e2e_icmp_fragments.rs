//! End-to-end, issue 12 (appliance side): the real `udplb` on a `net_tap` port with the
//! DNS example (full NAT, VIPs 198.18.0.10 and 2001:2::10 port 53, three dnsmasq
//! backends), and real clients in the client namespace:
//! - a ~3 KB TXT answer (`dig +bufsize=4096 +notcp +ignore`) comes back whole over UDP,
//!   in IP fragments the appliance forwarded (IPv4 and IPv6);
//! - with `ports[].mtu` 1400, an IPv4 datagram without DF larger than that is split by the
//!   appliance and reassembled by a backend's kernel (delivered to its UDP layer: the
//!   checksum holds); one with DF (IPv4) or any (IPv6) makes the appliance send Frag
//!   Needed / Packet Too Big from the VIP, and the sender's kernel learns the path MTU
//!   (`IP_MTU` / `IPV6_MTU` of its socket, `ip route get`);
//! - `traceroute -U` with one hop: the datagram with TTL 1 is answered with time exceeded
//!   from the VIP.
#![allow(clippy::tests_outside_test_module)]

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use testbench::appliance::{Appliance, ApplianceOptions};
use testbench::demo::read_manifest_dir;
use testbench::traffic::dns::DNS_PORT;
use testbench::{dig, DigQuery, Dnsmasq, Topology};

/// The big TXT record's name.
const BIG: &str = "big.test";
/// Its 12 strings of 250 characters: 3,000 bytes of text.
const STRINGS: usize = 12;

fn topology() -> Topology {
    Topology::builder()
        .clients(1)
        .backends(3)
        .build()
        .expect("topology builds")
}

fn dns_example() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/examples/dns");
    read_manifest_dir(dir.as_ref()).expect("config/examples/dns")
}

/// String `i` of the big record: 250 letters, different per string.
fn big_string(i: usize) -> String {
    let letter = char::from(b'a' + u8::try_from(i % 26).expect("small"));
    std::iter::repeat_n(letter, 250).collect()
}

fn big_text() -> String {
    (0..STRINGS).map(big_string).collect()
}

fn vips(topo: &Topology) -> [IpAddr; 2] {
    [
        topo.addressing().vip_v4.into(),
        topo.addressing().vip_v6.into(),
    ]
}

/// Waits (bounded) until the metric `prefix` reaches `at_least`; returns its value.
fn metric_at_least(app: &Appliance<'_>, prefix: &str, at_least: u64) -> u64 {
    let start = Instant::now();
    loop {
        let v = app.metric(prefix).expect("metrics");
        if v >= at_least || start.elapsed() > Duration::from_secs(5) {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap), dnsmasq, dig"]
fn a_3kb_dns_answer_comes_back_in_fragments() {
    let topo = topology();
    let strings: Vec<String> = (0..STRINGS).map(big_string).collect();
    let extra = [
        format!("--txt-record={BIG},{}", strings.join(",")),
        "--edns-packet-max=4096".to_owned(),
    ];
    let _dns = Dnsmasq::start_on_backends_with(&topo, DNS_PORT, &extra).expect("dnsmasq");
    let app = Appliance::start(&topo, &ApplianceOptions::new(dns_example())).expect("udplb");
    let mut forwarded = 0;
    for vip in vips(&topo) {
        let mut q = DigQuery::whoami(vip).bufsize(4096);
        q.name = BIG.to_owned();
        // The first query may be spent on resolving the backend: a few tries, bounded.
        let mut answer = None;
        for _ in 0..5 {
            let reply = dig(topo.client(0).ns(), &q).expect("dig runs");
            if let Some(txt) = reply.txt() {
                answer = Some(txt.to_owned());
                break;
            }
        }
        let answer = answer.unwrap_or_else(|| panic!("no answer for {BIG} from {vip}"));
        assert_eq!(answer.len(), 3000, "{vip}: the whole record");
        assert_eq!(answer, big_text(), "{vip}: every string, in order");
        // The ~3.1 KB reply left the backend in 3 fragments (1500-byte MTU), each
        // forwarded by the fast path.
        forwarded = metric_at_least(&app, "udplb_fragments_forwarded_total", forwarded + 3);
        eprintln!(
            "{vip}: {} bytes of TXT, fragments forwarded so far {forwarded}",
            answer.len()
        );
        assert!(
            forwarded >= 3,
            "{vip}: the reply was not forwarded in fragments ({forwarded})"
        );
    }
    assert_eq!(
        app.metric("udplb_drops_total{reason=\"fragment")
            .expect("metrics"),
        0,
        "no fragment dropped (malformed, table full, hold full, timeout)"
    );
    let (status, log) = app.stop().expect("udplb stops");
    assert!(status.success(), "udplb exit {status:?}:\n{log}");
}

/// Sends DF datagrams of `size` bytes of payload to `vip`:`port` from a connected socket
/// until the kernel's path MTU for it drops below 1500 (at most 20 tries, 100 ms apart),
/// then prints it.
const PMTU_PROBE: &str = r#"
import errno, socket, sys, time
vip, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
v6 = ":" in vip
s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM)
if v6:
    level, discover, mtu_opt = socket.IPPROTO_IPV6, 23, 24  # IPV6_MTU_DISCOVER, IPV6_MTU
else:
    level, discover, mtu_opt = socket.IPPROTO_IP, 10, 14  # IP_MTU_DISCOVER, IP_MTU
s.setsockopt(level, discover, 2)  # IP(V6)_PMTUDISC_DO: DF, never fragment locally
s.connect((vip, port))
mtu = s.getsockopt(level, mtu_opt)
for _ in range(20):
    try:
        s.send(b"x" * size)
    except OSError as e:
        if e.errno != errno.EMSGSIZE:
            raise
    time.sleep(0.1)
    mtu = s.getsockopt(level, mtu_opt)
    if mtu < 1500:
        break
print(mtu)
"#;

/// Sends one datagram of `size` bytes to `vip`:`port` with DF clear (IPv4).
const NO_DF_SEND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: no DF
s.sendto(b"y" * int(sys.argv[3]), (sys.argv[1], int(sys.argv[2])))
"#;

/// Datagrams that reached the UDP layer of every backend.
fn backend_arrivals(topo: &Topology) -> u64 {
    topo.backends()
        .iter()
        .map(|b| testbench::counters::udp_arrivals(b.ns()).expect("/proc/net/snmp"))
        .sum()
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap), dnsmasq, python3"]
fn a_df_datagram_larger_than_the_port_mtu_teaches_the_sender_the_path_mtu() {
    let topo = topology();
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT).expect("dnsmasq");
    let opts = ApplianceOptions {
        mtu: Some(1400),
        ..ApplianceOptions::new(dns_example())
    };
    let app = Appliance::start(&topo, &opts).expect("udplb");
    let client = topo.client(0).ns();

    // First, before the client knows the path MTU: 1,478 bytes of IPv4 without DF are
    // split by the appliance, and a backend's kernel reassembles them into a datagram
    // with a valid UDP checksum (else it would count a checksum error, not a delivery).
    let before = backend_arrivals(&topo);
    let vip4 = topo.addressing().vip_v4.to_string();
    client
        .run(
            "python3",
            &["-c", NO_DF_SEND, &vip4, "53", "1450"],
            Duration::from_secs(10),
        )
        .expect("send without DF");
    let split = metric_at_least(&app, "udplb_refragmented_total", 1);
    assert_eq!(split, 1, "one datagram split");
    assert_eq!(
        app.metric("udplb_refragment_pieces_total")
            .expect("metrics"),
        2
    );
    let start = Instant::now();
    while backend_arrivals(&topo) == before && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        backend_arrivals(&topo) - before,
        1,
        "the split datagram reached a backend's UDP layer"
    );
    eprintln!("{vip4}: a 1478-byte datagram without DF split in 2, delivered");

    for vip in vips(&topo) {
        let vip_text = vip.to_string();
        // 1450 bytes of payload: 1478 (IPv4) / 1498 (IPv6) bytes of IP, over 1400.
        let out = client
            .run(
                "python3",
                &["-c", PMTU_PROBE, &vip_text, "53", "1450"],
                Duration::from_secs(10),
            )
            .expect("probe runs");
        let learned = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(learned, "1400", "{vip}: the sender's path MTU");
        // The kernel keeps it for the destination (the route cache).
        let family = if vip.is_ipv4() { "-4" } else { "-6" };
        let route = client
            .ip(&[family, "route", "get", &vip_text])
            .expect("ip route get");
        let route = String::from_utf8_lossy(&route.stdout).into_owned();
        assert!(route.contains("mtu 1400"), "{vip}: {route}");
        eprintln!("{vip}: path MTU learned {learned}; {}", route.trim());
    }
    let sent = metric_at_least(&app, "udplb_slow_path_total{event=\"too_big_sent\"}", 2);
    assert!(
        sent >= 2,
        "one Frag Needed and one Packet Too Big at least: {sent}"
    );
    eprintln!("too_big_sent {sent}");
    assert_eq!(
        app.metric("udplb_host_packets_total{reason=\"too_big\"}")
            .expect("metrics")
            .min(1),
        1
    );
    let (status, log) = app.stop().expect("udplb stops");
    assert!(status.success(), "udplb exit {status:?}:\n{log}");
}

#[test]
#[ignore = "needs root: network namespaces, DPDK (udplb on net_tap), traceroute"]
fn a_datagram_with_ttl_1_gets_time_exceeded_from_the_vip() {
    let topo = topology();
    let _dns = Dnsmasq::start_on_backends(&topo, DNS_PORT).expect("dnsmasq");
    let app = Appliance::start(&topo, &ApplianceOptions::new(dns_example())).expect("udplb");
    let client = topo.client(0).ns();
    for vip in vips(&topo) {
        let vip_text = vip.to_string();
        let family = if vip.is_ipv4() { "-4" } else { "-6" };
        // UDP to the listener's port, one hop only, three probes, 2 s each at most.
        let out = client
            .run(
                "traceroute",
                &[
                    family, "-U", "-p", "53", "-n", "-m", "1", "-q", "3", "-w", "2", &vip_text,
                ],
                Duration::from_secs(15),
            )
            .expect("traceroute runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let hop = text
            .lines()
            .find(|l| l.trim_start().starts_with("1 "))
            .unwrap_or_else(|| panic!("{vip}: no hop line in {text:?}"));
        let fields: Vec<&str> = hop.split_whitespace().collect();
        assert_eq!(fields.get(1), Some(&vip_text.as_str()), "{vip}: {hop}");
        assert!(!hop.contains('*'), "{vip}: every probe answered: {hop}");
        eprintln!("{vip}: traceroute {}", hop.trim());
    }
    let sent = metric_at_least(
        &app,
        "udplb_slow_path_total{event=\"time_exceeded_sent\"}",
        6,
    );
    assert!(sent >= 6, "three per family: {sent}");
    eprintln!("time_exceeded_sent {sent}");
    let (status, log) = app.stop().expect("udplb stops");
    assert!(status.success(), "udplb exit {status:?}:\n{log}");
}

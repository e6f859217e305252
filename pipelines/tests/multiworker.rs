//! Every NAT mode with two workers: no datagram is lost in either direction, whichever
//! worker a packet lands on.
//!
//! Two `FastPath`s (workers 0 and 1 of 2) share the tables, network and neighbors, as the
//! appliance's workers do. A steering harness delivers each packet to a worker chosen by
//! a policy (an RSS-like hash of the packet's addresses, or adversarially: every reply to
//! the worker that did not forward the request), follows `Handoff` verdicts to the named
//! worker (at most once per packet), and checks that every client datagram reaches a
//! backend of its listener with the mode's addresses, and every backend reply reaches the
//! client from the VIP (DSR: forward only; the backend answers the client directly).
//! Hundreds of flows over both families, FullNAT, preserve-client (endpoints serving one
//! listener, and endpoints shared by two VIPs) and DSR, with a tables swap in the middle
//! that re-pins, re-weights, makes an endpoint shared and another one unshared.

// An integration-test crate is all tests; the lint targets library code.
#![allow(clippy::tests_outside_test_module)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use pipelines::neighbor::Neighbors;
use pipelines::net::{MacAddr, Network, PortRange};
use pipelines::spec::{ForwardingConfig, ListenerSpec, NatMode, WEIGHT_SCALE};
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{self, decode_verified, udp_frame};
use pipelines::{Context, FastPath, FastPathParams, Verdict};

const SEC: u64 = 1_000_000_000;
const WORKERS: u16 = 2;
/// Clients per listener.
const CLIENTS: u16 = 40;

fn b4(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::from([198, 18, 1, n]), port)
}

fn b6(n: u8, port: u16) -> SocketAddr {
    SocketAddr::new(format!("2001:2:0:1::{n:x}").parse().unwrap(), port)
}

/// A listener with its own listener and route names (`name`).
fn listener(
    name: &str,
    vip: &str,
    port: u16,
    mode: NatMode,
    backends: &[SocketAddr],
) -> ListenerSpec {
    let weighted: Vec<(SocketAddr, u64)> = backends.iter().map(|b| (*b, WEIGHT_SCALE)).collect();
    let mut l = testkit::listener(vip, port, mode, &weighted);
    l.key.listener = name.into();
    if let Some(r) = &mut l.route {
        r.key.name = name.into();
    }
    l
}

/// Before the swap. Preserve-client `pc-a`/`pc-b` (and their IPv6 twins) share endpoint
/// 5 (port 7000); `pc-a` also has endpoint 6, which only it uses. `pc` uses endpoints 3
/// and 4 alone.
fn config_before() -> ForwardingConfig {
    use NatMode::{Dsr, FullNat, PreserveClient};
    let mut c = ForwardingConfig {
        listeners: vec![
            listener(
                "fn4",
                "198.18.2.1",
                53,
                FullNat,
                &[b4(1, 5353), b4(2, 5353)],
            ),
            listener(
                "fn6",
                "2001:2:0:2::1",
                53,
                FullNat,
                &[b6(1, 5353), b6(2, 5353)],
            ),
            listener(
                "pc4",
                "198.18.2.1",
                54,
                PreserveClient,
                &[b4(3, 5353), b4(4, 5353)],
            ),
            listener(
                "pc6",
                "2001:2:0:2::1",
                54,
                PreserveClient,
                &[b6(3, 5353), b6(4, 5353)],
            ),
            listener(
                "pc-a4",
                "198.18.2.1",
                70,
                PreserveClient,
                &[b4(5, 7000), b4(6, 7000)],
            ),
            listener("pc-b4", "198.18.2.2", 70, PreserveClient, &[b4(5, 7000)]),
            listener(
                "pc-a6",
                "2001:2:0:2::1",
                70,
                PreserveClient,
                &[b6(5, 7000), b6(6, 7000)],
            ),
            listener("pc-b6", "2001:2:0:2::2", 70, PreserveClient, &[b6(5, 7000)]),
            listener("dsr4", "198.18.2.1", 60, Dsr, &[b4(7, 60), b4(8, 60)]),
            listener("dsr6", "2001:2:0:2::1", 60, Dsr, &[b6(7, 60), b6(8, 60)]),
        ],
        ..ForwardingConfig::default()
    };
    c.normalize();
    c
}

/// After the swap: `fn4` loses backend 2 (its flows re-pin, keeping their SNAT port);
/// `fn6`'s backend 2 takes no new flows (pinned flows stay); a new listener `pc-c4`
/// shares `pc4`'s endpoint 3 (so `pc4` becomes steered and its flows move to their
/// owner); `pc-b6` leaves (so endpoint 5 serves only `pc-a6`, which is no longer
/// steered); `dsr4` loses backend 7.
fn config_after() -> ForwardingConfig {
    let mut c = config_before();
    c.listeners.retain(|l| l.key.listener != "pc-b6");
    for l in &mut c.listeners {
        let r = l.route.as_mut().unwrap();
        match l.key.listener.as_str() {
            "fn4" => r.backends.retain(|b| b.addr != b4(2, 5353)),
            "fn6" => r.backends[1].weight = 0,
            "dsr4" => r.backends.retain(|b| b.addr != b4(7, 60)),
            _ => {}
        }
    }
    c.listeners.push(listener(
        "pc-c4",
        "198.18.2.3",
        54,
        NatMode::PreserveClient,
        &[b4(3, 5353)],
    ));
    c.normalize();
    c
}

/// Which worker a packet is delivered to first.
#[derive(Clone, Copy, Debug)]
enum Policy {
    /// A hash of the packet's addresses and ports, as RSS would do.
    Rss,
    /// Requests by RSS; every reply to the worker that did *not* forward its request.
    RepliesToTheOther,
    /// Every request to worker 1, every reply to worker 0.
    Fixed,
}

struct Cluster {
    tables: Tables,
    network: Network,
    neighbors: Neighbors,
    workers: Vec<FastPath>,
    handed_off: u64,
}

impl Cluster {
    fn new(cfg: &ForwardingConfig) -> Cluster {
        let pool = PortRange {
            first: 1024,
            last: 65535,
        };
        Cluster {
            tables: Tables::build(cfg, &DataplaneParams::default()).unwrap(),
            network: testkit::network(false),
            neighbors: testkit::neighbors(9),
            workers: (0..WORKERS)
                .map(|w| {
                    let mut p = FastPathParams::new(w, WORKERS, pool);
                    p.flow_capacity = 4096;
                    FastPath::new(p).unwrap()
                })
                .collect(),
            handed_off: 0,
        }
    }

    /// Processes `frame` on worker `w` (on the port a switch delivers it to), following a
    /// handoff to the named worker. Returns the worker that decided and its verdict.
    fn deliver(&mut self, mut w: usize, frame: &mut [u8], now: u64) -> (usize, Verdict) {
        let port = testkit::arrival_port(frame);
        let mut handed = false;
        loop {
            let ctx = Context {
                tables: &self.tables,
                network: &self.network,
                neighbors: &self.neighbors,
            };
            match self.workers[w].process(&ctx, now, port, frame) {
                Verdict::Handoff { worker } => {
                    let worker = usize::from(worker);
                    assert!(!handed, "a packet is handed off at most once");
                    assert_ne!(worker, w, "never to itself");
                    handed = true;
                    self.handed_off += 1;
                    w = worker;
                }
                v => return (w, v),
            }
        }
    }
}

fn rss(frame: &[u8]) -> usize {
    let d = decode_verified(frame).unwrap();
    let mut h = DefaultHasher::new();
    (d.src, d.dst).hash(&mut h);
    usize::try_from(h.finish() % u64::from(WORKERS)).unwrap()
}

/// One client's session with one listener.
struct Session {
    client: SocketAddr,
    vip: SocketAddr,
    listener: String,
    mode: NatMode,
    /// The backend it was last forwarded to, and the source the backend saw.
    backend: Option<SocketAddr>,
    seen_src: Option<SocketAddr>,
    /// The worker that forwarded its last request.
    worker: usize,
}

/// Sessions of `CLIENTS` clients with each of `listeners`, numbered from `*next`. Every
/// client address and port is used once: two sessions from one client ip:port to two
/// VIPs of one shared endpoint would have identical replies (a documented limit).
fn sessions(cfg: &ForwardingConfig, listeners: &[&str], next: &mut u16) -> Vec<Session> {
    let mut out = Vec::new();
    for l in &cfg.listeners {
        if !listeners.contains(&l.key.listener.as_str()) {
            continue;
        }
        for _ in 0..CLIENTS {
            *next += 1;
            let n = *next;
            let [hi, lo] = n.to_be_bytes();
            let client = if l.vip.is_ipv4() {
                SocketAddr::new(IpAddr::from([198, 19, hi, lo]), 20000 + n)
            } else {
                SocketAddr::new(format!("2001:2:0:9::{n:x}").parse().unwrap(), 20000 + n)
            };
            out.push(Session {
                client,
                vip: SocketAddr::new(l.vip, l.port),
                listener: l.key.listener.clone(),
                mode: l.options.nat_mode.unwrap(),
                backend: None,
                seen_src: None,
                worker: 0,
            });
        }
    }
    out
}

/// The route's backends of listener `name` in `cfg`.
fn route_backends(cfg: &ForwardingConfig, name: &str) -> Vec<SocketAddr> {
    let l = cfg
        .listeners
        .iter()
        .find(|l| l.key.listener == name)
        .unwrap();
    l.route
        .as_ref()
        .unwrap()
        .backends
        .iter()
        .map(|b| b.addr)
        .collect()
}

fn last_octet(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    }
}

/// Sends one request of `s` and checks where and how it left.
fn request(c: &mut Cluster, cfg: &ForwardingConfig, policy: Policy, s: &mut Session, now: u64) {
    let payload = format!("q {} {now}", s.client).into_bytes();
    let input = udp_frame(s.client, s.vip, 64, &[], testkit::PORT0_MAC, &payload);
    let mut f = input.clone();
    let first = match policy {
        Policy::Rss | Policy::RepliesToTheOther => rss(&f),
        Policy::Fixed => 1,
    };
    let (w, v) = c.deliver(first, &mut f, now);
    assert!(
        matches!(v, Verdict::Tx { port: 1, .. }),
        "{policy:?} {} → {} ({}): {v:?}",
        s.client,
        s.vip,
        s.listener
    );
    s.worker = w;
    let allowed = route_backends(cfg, &s.listener);
    let backend = if s.mode == NatMode::Dsr {
        // Only the MACs changed; the backend is known by its MAC.
        assert_eq!(&f[6..12], &testkit::PORT1_MAC.0);
        assert_eq!(
            &f[12..],
            &input[12..],
            "DSR keeps every byte after the MACs"
        );
        let mac = MacAddr(f[..6].try_into().unwrap());
        *allowed
            .iter()
            .find(|b| testkit::backend_mac(last_octet(b.ip())) == mac)
            .unwrap_or_else(|| panic!("{mac} is no backend of {}", s.listener))
    } else {
        let d = decode_verified(&f).unwrap();
        assert!(allowed.contains(&d.dst), "{} not in {}", d.dst, s.listener);
        assert_eq!(d.payload, payload);
        assert_eq!(d.dst_mac, testkit::backend_mac(last_octet(d.dst.ip())));
        match s.mode {
            NatMode::PreserveClient => assert_eq!(d.src, s.client),
            _ => {
                assert_eq!(Some(d.src.ip()), c.network.snat_addr(d.src.is_ipv6()));
                if let Some(prev) = s.seen_src {
                    assert_eq!(d.src, prev, "a FullNAT flow keeps its SNAT port");
                }
            }
        }
        s.seen_src = Some(d.src);
        d.dst
    };
    if let Some(prev) = s.backend {
        if allowed.contains(&prev) {
            assert_eq!(backend, prev, "{}: pinned to its backend", s.client);
        }
    }
    s.backend = Some(backend);
}

/// Sends the backend's reply to the last request of `s` and checks it reaches the
/// client from the VIP.
fn reply(c: &mut Cluster, policy: Policy, s: &Session, now: u64) {
    let (backend, to) = (s.backend.unwrap(), s.seen_src.unwrap());
    let payload = format!("a {} {now}", s.client).into_bytes();
    let mut f = udp_frame(backend, to, 64, &[], testkit::PORT1_MAC, &payload);
    let first = match policy {
        Policy::Rss => rss(&f),
        Policy::RepliesToTheOther => 1 - s.worker,
        Policy::Fixed => 0,
    };
    let (_, v) = c.deliver(first, &mut f, now);
    assert!(
        matches!(v, Verdict::Tx { port: 0, .. }),
        "{policy:?} reply {backend} → {to} ({}): {v:?}",
        s.listener
    );
    let d = decode_verified(&f).unwrap();
    assert_eq!((d.src, d.dst), (s.vip, s.client), "{}", s.listener);
    assert_eq!(d.payload, payload);
    assert_eq!(
        (d.src_mac, d.dst_mac),
        (testkit::PORT0_MAC, testkit::ROUTER_MAC)
    );
}

fn run(policy: Policy) {
    let before = config_before();
    let after = config_after();
    let mut c = Cluster::new(&before);
    assert_eq!(
        c.tables.shared_endpoints().len(),
        2,
        "endpoint 5 of each family"
    );
    let mut next = 0;
    let mut all = sessions(
        &before,
        &[
            "fn4", "fn6", "pc4", "pc6", "pc-a4", "pc-b4", "pc-a6", "pc-b6", "dsr4", "dsr6",
        ],
        &mut next,
    );
    let (mut requests, mut replies) = (0u64, 0u64);
    // Two rounds before the swap: requests then replies, then replies first (every
    // flow exists by then).
    for round in 1..=2u64 {
        for s in &mut all {
            request(&mut c, &before, policy, s, round * SEC);
            requests += 1;
        }
        for s in all.iter().filter(|s| s.mode != NatMode::Dsr) {
            reply(&mut c, policy, s, round * SEC);
            replies += 1;
        }
    }

    c.tables = Tables::build(&after, &DataplaneParams::default()).unwrap();
    assert_eq!(
        c.tables
            .shared_endpoints()
            .iter()
            .map(|e| e.addr)
            .collect::<Vec<_>>(),
        [b4(3, 5353), b4(5, 7000)]
    );
    all.retain(|s| s.listener != "pc-b6");
    all.extend(sessions(&after, &["pc-c4"], &mut next));
    // After the swap: each flow's next request first (it re-pins and moves flows of
    // listeners that became steered to their owner), then the replies; then a round of
    // replies before requests.
    for round in 3..=4u64 {
        let now = round * SEC;
        if round == 4 {
            for s in all.iter().filter(|s| s.mode != NatMode::Dsr) {
                reply(&mut c, policy, s, now);
                replies += 1;
            }
        }
        for s in &mut all {
            request(&mut c, &after, policy, s, now);
            requests += 1;
        }
        for s in all.iter().filter(|s| s.mode != NatMode::Dsr) {
            reply(&mut c, policy, s, now);
            replies += 1;
        }
    }

    let mut total = pipelines::counters::Counters::default();
    for w in &c.workers {
        total.merge(w.counters());
    }
    assert_eq!(total.drops_total(), 0, "{policy:?}: nothing dropped");
    assert_eq!(total.to_host.iter().sum::<u64>(), 0);
    assert_eq!(
        total.tx_packets,
        requests + replies,
        "{policy:?}: every packet sent"
    );
    assert_eq!(total.handoff, c.handed_off);
    assert!(requests > 1500 && replies > 1000, "{requests} {replies}");
    // Not vacuous: both mechanisms were used, and both workers held flows.
    assert!(total.stateless_replies > 0, "{policy:?}: stateless replies");
    assert!(c.handed_off > 0, "{policy:?}: handoffs");
    assert!(c.workers.iter().all(|w| w.flows_len() > 0));
    assert!(total.flows_repinned > 0, "fn4 and dsr4 lost a backend");
}

#[test]
fn two_workers_rss_steering_lose_nothing() {
    run(Policy::Rss);
}

#[test]
fn two_workers_replies_on_the_other_worker_lose_nothing() {
    run(Policy::RepliesToTheOther);
}

#[test]
fn two_workers_fixed_steering_lose_nothing() {
    run(Policy::Fixed);
}

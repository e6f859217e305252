//! Two real workers on their DPDK binding (`DpdkIo`) on ring ports: a full-NAT reply that
//! arrives on the worker that does not own its flow is handed to the owner and goes out
//! translated. The same scenario runs without root on in-memory queues in
//! `worker_loop.rs`; this one tests the binding (two lcores, queue pairs, mbufs handed
//! between lcores). Needs root (DPDK EAL): `#[ignore]`d, run with `--include-ignored`.
#![allow(clippy::tests_outside_test_module)]

mod support;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use appliance::dpdk::QueueId;
use appliance::slowpath::SlowPathCounters;
use appliance::worker::{DpdkIo, Handoff, WorkerSetup};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use pipelines::neighbor::Neighbors;
use pipelines::net::MacAddr;
use pipelines::{FastPath, FastPathParams};
use support::{listener, net4, service, SNAT_PORTS};

const APPLIANCE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
const BACKEND_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];

/// Gateway 198.18.0.10, `dns` :53 full NAT → 198.18.1.11:53.
const LISTENERS: &[support::Listener] =
    &[listener("dns", 53, &[service("dns", &["198.18.1.11"], 53)])];

fn frame(src: ([u8; 4], u16), dst: ([u8; 4], u16), src_mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(src_mac, APPLIANCE_MAC)
        .ipv4(src.0, dst.0, 64)
        .udp(src.1, dst.1);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, payload).expect("frame");
    v
}

fn addrs(frame: &[u8]) -> (IpAddr, u16, IpAddr, u16) {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let (s, d) = match p.net {
        Some(NetSlice::Ipv4(ip)) => (
            IpAddr::from(ip.header().source_addr()),
            IpAddr::from(ip.header().destination_addr()),
        ),
        _ => panic!("not IPv4"),
    };
    match p.transport {
        Some(TransportSlice::Udp(u)) => (s, u.source_port(), d, u.destination_port()),
        _ => panic!("not UDP"),
    }
}

#[test]
#[ignore = "needs root: DPDK EAL (ring ports, two workers on lcores 1 and 2)"]
fn full_nat_reply_on_the_wrong_worker_is_handed_to_the_owner() {
    // Two worker lcores (1 and 2) share CPU 1, so the test runs on a 2-core machine.
    let eal = support::dpdk::eal("handoff", "0@0,1@1,2@1", &[]);
    let pool = support::dpdk::pool("handoff", 1023);
    let (appliance_port, wire) = support::dpdk::ring_pair("hoa", &pool, 2, 256);

    let tables = support::tables("198.18.0.10", LISTENERS);
    let network = Arc::new(support::one_port_network(
        MacAddr(APPLIANCE_MAC),
        vec![
            net4([198, 18, 0, 1], 24),
            net4([198, 18, 1, 1], 24),
            net4([198, 19, 0, 1], 24),
        ],
        vec![],
        [198, 18, 0, 2],
    ));
    let neighbors = Arc::new(Neighbors::new([
        (IpAddr::from([198, 19, 0, 100]), MacAddr(CLIENT_MAC)),
        (IpAddr::from([198, 18, 1, 11]), MacAddr(BACKEND_MAC)),
    ]));
    let stop = Arc::new(AtomicBool::new(false));
    let (sp_tx, _sp_rx) = crossbeam_channel::bounded(64);
    let counters = Arc::new(SlowPathCounters::default());
    let mut reports = Vec::new();
    let mut jobs = Vec::new();
    for (id, handoff) in (0..2).zip(Handoff::mesh(2, 64)) {
        let fast_path = FastPath::new(FastPathParams {
            flow_capacity: 1024,
            ..FastPathParams::new(id, 2, SNAT_PORTS)
        })
        .expect("fast path");
        let io = DpdkIo::claim(std::slice::from_ref(&appliance_port), QueueId(id)).expect("queues");
        let setup = WorkerSetup::builder(fast_path, io, Arc::clone(&network), Arc::clone(&tables))
            .neighbors(Arc::clone(&neighbors))
            .slow_path(sp_tx.clone(), Arc::clone(&counters))
            .handoff(handoff)
            .stop(Arc::clone(&stop))
            .idle_backoff(std::time::Duration::from_micros(50))
            .build();
        reports.push(Arc::clone(setup.report()));
        let lcore = eal.worker_lcores()[usize::from(id)];
        jobs.push(setup.launch(&eal, lcore).expect("launch"));
    }

    // Client → VIP on queue 0: worker 0 creates the flow and allocates an SNAT port from
    // its partition.
    support::dpdk::send(
        &pool,
        &wire,
        0,
        &frame(
            ([198, 19, 0, 100], 40000),
            ([198, 18, 0, 10], 53),
            CLIENT_MAC,
            b"query",
        ),
    );
    let out = support::dpdk::receive(&wire, 2);
    let (src, snat_port, dst, dport) = addrs(&out);
    assert_eq!(
        (src, dst, dport),
        (
            IpAddr::from([198, 18, 0, 2]),
            IpAddr::from([198, 18, 1, 11]),
            53
        )
    );
    assert_eq!(
        SNAT_PORTS.owner(snat_port, 2),
        Some(0),
        "worker 0 owns the flow"
    );

    // The backend's reply arrives on queue 1: worker 1 has no flow and hands it over.
    support::dpdk::send(
        &pool,
        &wire,
        1,
        &frame(
            ([198, 18, 1, 11], 53),
            ([198, 18, 0, 2], snat_port),
            BACKEND_MAC,
            b"answer",
        ),
    );
    let back = support::dpdk::receive(&wire, 2);
    assert_eq!(
        addrs(&back),
        (
            IpAddr::from([198, 18, 0, 10]),
            53,
            IpAddr::from([198, 19, 0, 100]),
            40000
        ),
        "the reply goes back translated, from the VIP"
    );
    assert_eq!(&back[..6], &CLIENT_MAC, "to the client's MAC");

    stop.store(true, Ordering::Relaxed);
    for j in jobs {
        j.wait().expect("worker exits");
    }
    let r1 = reports[1].lock().expect("report");
    assert_eq!(r1.events.handed_off, 1, "worker 1 handed the reply over");
    assert_eq!(
        (r1.counters.handoff, r1.counters.drops_total()),
        (1, 0),
        "the fast path said Handoff, not a drop"
    );
    let r0 = reports[0].lock().expect("report");
    assert_eq!(
        r0.counters.tx_packets, 2,
        "worker 0 sent the query and the reply"
    );
    drop((r0, r1));
    let (mut appliance_port, mut wire) = (appliance_port, wire);
    appliance_port.stop().ok();
    wire.stop().ok();
    drop((appliance_port, wire));
    assert_eq!(pool.in_use(), 0, "every mbuf returned to the pool");
}

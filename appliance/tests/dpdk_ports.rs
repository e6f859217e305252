//! In-process DPDK port tests: one EAL per test binary (no hugepages, no shared config, no
//! PCI), ring-backed port pairs and a `net_null` vdev, a mempool per test, and a check that
//! every mbuf went back to its pool. Needs root (DPDK EAL): every test is `#[ignore]`d,
//! run them with `--include-ignored`.

mod support;

use appliance::dpdk::{
    eal_args_for, ring_port_pair, ChecksumOffload, Device, DpdkError, Eal, Mbuf, MbufBurst,
    Mempool, Port, PortBuilder, QueueId, SocketId, TxChecksum, RSS_IP_UDP,
};
use etherparse::PacketBuilder;

const NULL_DEVICE: &str = "net_null0";

fn eal() -> Eal {
    let null: Device = NULL_DEVICE.parse().expect("valid vdev");
    support::dpdk::eal("ports", "0", &eal_args_for(&[null]))
}

fn pool(name: &str) -> Mempool {
    eal();
    Mempool::new(name, 511, 0, Mempool::DEFAULT_DATA_ROOM, SocketId::ANY).expect("mempool")
}

/// A started pair of ring ports with one queue each, RX filled from `pool`.
fn started_pair(tag: &str, pool: &Mempool, ring_size: u32) -> (Port, Port) {
    support::dpdk::ring_pair(tag, pool, 1, ring_size)
}

/// An Ethernet/IPv4/UDP frame from 198.18.0.1:1000+i to 198.18.0.2:53 with payload `[i; 6]`.
fn udp4_frame(i: u8) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([198, 18, 0, 1], [198, 18, 0, 2], 64)
        .udp(1000 + u16::from(i), 53);
    let payload = [i; 6];
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, &payload).expect("frame");
    out
}

fn send_all(pool: &Mempool, port: &Port, frames: &[Vec<u8>]) -> usize {
    let mut tx = port.tx_queue(QueueId(0)).expect("tx queue");
    let mut burst = MbufBurst::new();
    for f in frames {
        burst
            .push(Mbuf::from_bytes(pool, f).expect("mbuf"))
            .expect("burst room");
    }
    let sent = tx.tx_burst(&mut burst);
    assert_eq!(
        burst.len(),
        frames.len() - sent,
        "unsent mbufs stay in the burst"
    );
    sent
}

/// The `(what, reason)` of a [`DpdkError::InvalidArgument`]; panics on anything else.
fn invalid<T>(r: Result<T, DpdkError>) -> (&'static str, String) {
    match r {
        Err(DpdkError::InvalidArgument { what, reason }) => (what, reason),
        Err(e) => panic!("expected InvalidArgument, got {e:?}"),
        Ok(_) => panic!("expected InvalidArgument, got Ok"),
    }
}

/// Receives everything queued on `port` (bounded: at most 8 bursts).
fn receive_all(port: &Port) -> Vec<Vec<u8>> {
    let mut rx = port.rx_queue(QueueId(0)).expect("rx queue");
    let mut out = Vec::new();
    let mut burst = MbufBurst::new();
    for _ in 0..8 {
        if rx.rx_burst(&mut burst) == 0 {
            break;
        }
        out.extend(burst.drain().map(|m| m.data().to_vec()));
    }
    assert_eq!(rx.segmented_drops(), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn ring_pair_carries_crafted_packets_both_ways_and_counts_them() {
        let pool = pool("t_both_ways");
        let (a, b) = started_pair("both", &pool, 256);
        assert_eq!(a.driver(), "net_ring");

        let forward: Vec<Vec<u8>> = (0..5).map(udp4_frame).collect();
        assert_eq!(send_all(&pool, &a, &forward), 5);
        assert_eq!(
            receive_all(&b),
            forward,
            "B receives A's frames, bytes and order intact"
        );
        assert!(
            receive_all(&a).is_empty(),
            "nothing loops back to the sender"
        );

        let reverse: Vec<Vec<u8>> = (10..13).map(udp4_frame).collect();
        assert_eq!(send_all(&pool, &b, &reverse), 3);
        assert_eq!(receive_all(&a), reverse);

        let (sa, sb) = (a.stats().expect("stats a"), b.stats().expect("stats b"));
        assert_eq!((sa.opackets, sa.ipackets, sa.oerrors), (5, 3, 0));
        assert_eq!((sb.opackets, sb.ipackets, sb.oerrors), (3, 5, 0));

        let xa = a.xstats().expect("xstats");
        let get = |name: &str| xa.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(get("tx_good_packets"), Some(5), "{xa:?}");
        assert_eq!(get("rx_good_packets"), Some(3), "{xa:?}");

        a.reset_stats().expect("reset");
        assert_eq!(a.stats().expect("stats").opackets, 0);
        drop((a, b));
        assert_eq!(pool.in_use(), 0, "every mbuf is back in its pool");
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn tx_checksum_offload_request_travels_with_the_mbuf() {
        let pool = pool("t_offload");
        let (a, b) = started_pair("offl", &pool, 64);
        // The ring PMD offers no checksum offload: the port says so, and the fast path must
        // then compute checksums in software.
        assert_eq!(a.supported_checksum_offload(), ChecksumOffload::NONE);
        assert_eq!(a.checksum_offload(), ChecksumOffload::NONE);

        let mut m = Mbuf::from_bytes(&pool, &udp4_frame(1)).expect("mbuf");
        assert_eq!(m.ol_flags(), 0);
        m.set_tx_checksum(
            TxChecksum::Ipv4 {
                header: true,
                udp: true,
            },
            14,
            20,
        )
        .expect("lengths fit");
        let v4 = TxChecksum::Ipv4 {
            header: true,
            udp: true,
        }
        .ol_flags();
        assert_eq!(m.ol_flags(), v4);
        assert_eq!(m.tx_header_lens(), (14, 20));

        let mut burst = MbufBurst::new();
        burst.push(m).expect("room");
        let mut tx = a.tx_queue(QueueId(0)).expect("tx");
        assert_eq!(tx.tx_burst(&mut burst), 1);
        let mut rx = b.rx_queue(QueueId(0)).expect("rx");
        assert_eq!(rx.rx_burst(&mut burst), 1);
        let mut got = burst.pop().expect("one mbuf");
        assert_eq!(got.ol_flags(), v4, "flags survive the ring");
        assert_eq!(got.tx_header_lens(), (14, 20));

        // A new request replaces the old one instead of adding to it.
        got.set_tx_checksum(TxChecksum::Ipv6 { udp: true }, 18, 40)
            .expect("lengths fit");
        assert_eq!(got.ol_flags(), TxChecksum::Ipv6 { udp: true }.ol_flags());
        assert_ne!(got.ol_flags() & v4, v4);
        assert_eq!(got.tx_header_lens(), (18, 40));

        let err = got
            .set_tx_checksum(TxChecksum::Ipv6 { udp: true }, 128, 40)
            .expect_err("l2_len has 7 bits");
        assert!(matches!(err, DpdkError::InvalidArgument { .. }), "{err}");
        assert_eq!(
            got.tx_header_lens(),
            (18, 40),
            "a rejected request changes nothing"
        );
        drop((got, rx, tx, a, b));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn a_full_ring_leaves_unsent_mbufs_to_the_caller_to_free_and_count() {
        let pool = pool("t_full_ring");
        let (a, b) = started_pair("full", &pool, 16);
        let frames: Vec<Vec<u8>> = (0..32).map(udp4_frame).collect();
        let mut tx = a.tx_queue(QueueId(0)).expect("tx");
        let mut burst = MbufBurst::new();
        for f in &frames {
            burst
                .push(Mbuf::from_bytes(&pool, f).expect("mbuf"))
                .expect("room");
        }
        assert!(burst.is_full());
        let back = burst
            .push(Mbuf::from_bytes(&pool, b"33rd").expect("mbuf"))
            .expect_err("a full burst hands the mbuf back");
        assert_eq!(back.data(), b"33rd", "the 33rd is the one handed back");
        drop(back);
        assert_eq!(tx.tx_burst(&mut burst), 16, "the ring holds 16");
        assert_eq!(burst.len(), 16);
        assert_eq!(
            burst.as_slice()[0].data(),
            &frames[16][..],
            "unsent keep their order"
        );
        // The ring PMD does not count refused packets (oerrors stays 0): the count returned by
        // free_all is the only record of them, which is why the worker must keep it.
        assert_eq!(burst.free_all(), 16);
        assert_eq!(a.stats().expect("stats").opackets, 16);
        drop(tx);
        assert_eq!(receive_all(&b), frames[..16].to_vec());
        drop((a, b));
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn mbufs_in_rings_at_close_are_returned_to_the_pool() {
        let pool = pool("t_close_full");
        let (a, b) = started_pair("close", &pool, 64);
        assert_eq!(send_all(&pool, &a, &[udp4_frame(1), udp4_frame(2)]), 2);
        assert_eq!(pool.in_use(), 2, "two mbufs wait in the ring");
        drop((a, b));
        assert_eq!(pool.in_use(), 0, "closing the pair drains its rings");
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn mbuf_edits_keep_data_and_bounds() {
        let pool = pool("t_mbuf_edit");
        let mut m = Mbuf::from_bytes(&pool, &[1, 2, 3, 4]).expect("mbuf");
        assert_eq!((m.len(), m.headroom()), (4, 128));
        assert!(!m.is_segmented());
        m.prepend(2).expect("headroom").copy_from_slice(&[8, 9]);
        m.append(1).expect("tailroom")[0] = 5;
        assert_eq!(m.data(), &[8, 9, 1, 2, 3, 4, 5]);
        m.data_mut()[0] = 7;
        m.trim(2).expect("trim");
        m.trim_front(1).expect("trim front");
        assert_eq!(m.data(), &[9, 1, 2, 3]);
        assert_eq!(
            invalid(m.trim(5)),
            ("trim", "5 bytes requested, 4 available".to_owned()),
            "cannot trim more than the data"
        );
        assert_eq!(
            invalid(m.prepend(200)),
            ("prepend", "200 bytes requested, 127 available".to_owned()),
            "headroom is 127 bytes now"
        );
        let room = m.tailroom();
        assert_eq!(
            invalid(m.append(room + 1)),
            (
                "append",
                format!("{} bytes requested, {room} available", room + 1)
            )
        );
        assert_eq!(m.data(), &[9, 1, 2, 3], "failed edits change nothing");
        let fresh_room = Mbuf::alloc(&pool).expect("mbuf").tailroom();
        assert_eq!(
            invalid(Mbuf::from_bytes(&pool, &vec![0; 4096])),
            (
                "append",
                format!("4096 bytes requested, {fresh_room} available")
            ),
            "too long for one mbuf"
        );
        drop(m);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn burst_drain_pop_and_free_where_release_every_mbuf() {
        let pool = pool("t_burst");
        let mut burst = MbufBurst::new();
        for i in 0..10u8 {
            burst
                .push(Mbuf::from_bytes(&pool, &[i]).expect("mbuf"))
                .expect("room");
        }
        assert_eq!(pool.in_use(), 10);
        for m in burst.as_mut_slice() {
            m.data_mut()[0] += 100;
        }
        let freed = burst.free_where(|m| m.data()[0] % 2 == 1);
        assert_eq!((freed, burst.len(), pool.in_use()), (5, 5, 5));
        let kept: Vec<u8> = burst.as_slice().iter().map(|m| m.data()[0]).collect();
        assert_eq!(kept, [100, 102, 104, 106, 108]);
        assert_eq!(burst.pop().map(|m| m.data()[0]), Some(108));
        let mut drain = burst.drain();
        assert_eq!(drain.next().map(|m| m.data()[0]), Some(100));
        drop(drain); // the three not taken are freed
        assert!(burst.is_empty());
        assert_eq!(pool.in_use(), 0);
        for _ in 0..3 {
            burst.push(Mbuf::alloc(&pool).expect("mbuf")).expect("room");
        }
        assert_eq!(pool.in_use(), 3);
        drop(burst);
        assert_eq!(pool.in_use(), 0, "dropping a burst frees what it holds");
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn queues_are_claimed_once_and_a_port_with_queue_handles_cannot_stop() {
        let pool = pool("t_claims");
        let (mut a, _b) = started_pair("claim", &pool, 64);
        let rx = a.rx_queue(QueueId(0)).expect("first claim");
        assert!(matches!(a.rx_queue(QueueId(0)), Err(DpdkError::Busy(_))));
        assert!(matches!(
            a.rx_queue(QueueId(1)),
            Err(DpdkError::InvalidArgument { .. })
        ));
        assert!(matches!(a.stop(), Err(DpdkError::Busy(_))));
        drop(rx);
        a.stop().expect("no handle left");
        assert!(!a.is_started());
        assert!(
            matches!(a.tx_queue(QueueId(0)), Err(DpdkError::Busy(_))),
            "not started"
        );
        a.start().expect("restart");
        let _tx = a.tx_queue(QueueId(0)).expect("claim after restart");
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn rss_is_masked_to_nothing_on_a_device_without_it() {
        let pool = pool("t_rss_none");
        let (a, b) =
            ring_port_pair("net_ring_rss_a", "net_ring_rss_b", 2, 64, SocketId::ANY).expect("pair");
        // Unmasked, rte_eth_dev_configure would refuse RSS on the ring PMD (EINVAL).
        let a = a
            .rx_queues(2)
            .tx_queues(2)
            .mempool(&pool)
            .build()
            .expect("configures");
        assert_eq!(a.rss_hash_functions(), 0);
        assert_eq!(a.queue_counts(), (2, 2));
        let b = b
            .rx_queues(2)
            .tx_queues(2)
            .rss(false)
            .mempool(&pool)
            .build()
            .expect("b");
        assert_eq!(b.rss_hash_functions(), 0);
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn builder_rejects_what_the_device_cannot_do_naming_the_field() {
        let pool = pool("t_builder_err");
        let (a, _b) =
            ring_port_pair("net_ring_err_a", "net_ring_err_b", 1, 64, SocketId::ANY).expect("pair");
        let err = a
            .rx_queues(100)
            .mempool(&pool)
            .build()
            .expect_err("too many queues");
        assert!(
            matches!(
                err,
                DpdkError::InvalidArgument {
                    what: "rx_queues",
                    ..
                }
            ),
            "{err}"
        );
        let (a, _b) =
            ring_port_pair("net_ring_err_c", "net_ring_err_d", 1, 64, SocketId::ANY).expect("pair");
        let err = a.build().expect_err("no mempool");
        assert!(
            matches!(
                err,
                DpdkError::InvalidArgument {
                    what: "mempool",
                    ..
                }
            ),
            "{err}"
        );
        let (a, _b) =
            ring_port_pair("net_ring_err_e", "net_ring_err_f", 1, 64, SocketId::ANY).expect("pair");
        let err = a
            .mempool(&pool)
            .mtu(9000)
            .build()
            .expect_err("9000 > one mbuf");
        assert!(
            matches!(err, DpdkError::InvalidArgument { what: "mtu", .. }),
            "{err}"
        );
        assert!(matches!(
            PortBuilder::by_name("net_ring_missing"),
            Err(DpdkError::NoSuchPort(_))
        ));
        assert_eq!(
            invalid(ring_port_pair("ring_a", "ring_b", 1, 64, SocketId::ANY)),
            (
                "ring port name",
                r#""ring_a" must start with "net_ring" and be shorter than 64 bytes"#.to_owned()
            ),
            "driver prefix"
        );
        assert_eq!(
            invalid(Mempool::new(
                "a_name_that_is_far_too_long",
                63,
                0,
                2176,
                SocketId::ANY
            )),
            (
                "mempool name",
                r#""a_name_that_is_far_too_long" must have 1 to 22 bytes"#.to_owned()
            )
        );
        assert_eq!(
            invalid(Mempool::new("t_tiny_room", 63, 0, 64, SocketId::ANY)),
            (
                "mempool data_room",
                "64 bytes leave no room after the 128-byte headroom".to_owned()
            )
        );
        assert!(matches!(
            Mempool::new("t_builder_err", 63, 0, 2176, SocketId::ANY),
            Err(DpdkError::Call {
                call: "rte_pktmbuf_pool_create",
                errno: libc::EEXIST,
                ..
            })
        ));
        assert!(matches!(
            Eal::init(&[]),
            Err(DpdkError::EalAlreadyInitialised)
        ));
        assert!(Eal::get().is_some());
    }

    #[test]
    #[ignore = "needs root: DPDK EAL (mempools, ring and net_null ports)"]
    fn null_vdev_is_found_by_device_string_with_rss_masked_by_the_device() {
        let pool = pool("t_null");
        let device: Device = NULL_DEVICE.parse().expect("device");
        let mut port = PortBuilder::new(&device)
            .expect("port from the EAL's --vdev")
            .rx_queues(2)
            .tx_queues(2)
            .mempool(&pool)
            .mac_addr([2, 0x18, 0, 0, 0, 7])
            .build()
            .expect("build");
        assert_eq!(port.name(), NULL_DEVICE);
        assert_eq!(port.queue_counts(), (2, 2));
        let wanted = port.rss_hash_functions();
        assert_ne!(wanted, 0, "net_null reports RSS hash functions");
        assert_eq!(wanted & !RSS_IP_UDP, 0, "only IP/UDP hashing is enabled");
        assert_eq!(port.mac_addr().expect("mac"), [2, 0x18, 0, 0, 0, 7]);
        let err = PortBuilder::new(&device)
            .expect("same port")
            .mempool(&pool)
            .build()
            .expect_err("one owner per port");
        assert!(matches!(err, DpdkError::Busy(_)), "{err}");

        port.start().expect("start");
        assert!(port.link().expect("link").up);
        let mut rx = port.rx_queue(QueueId(1)).expect("rx q1");
        let mut burst = MbufBurst::new();
        let n = rx.rx_burst(&mut burst);
        assert!(n > 0, "net_null always has packets");
        assert_eq!(burst.len(), n);
        assert!(pool.in_use() >= u32::try_from(n).expect("a burst"));
        drop(burst);
        drop(rx);
        port.stop().expect("stop");
        assert!(port.stats().expect("stats").ipackets >= n as u64);
    }
}

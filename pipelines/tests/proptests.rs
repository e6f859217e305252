//! Property tests: Maglev balance, weights, disruption and determinism; any valid datagram
//! rewritten both ways parses back with valid checksums and the expected addresses; and
//! `process` never panics on arbitrary or mutated input (the fuzz target: cargo-fuzz needs
//! nightly, so proptest stands in, with many cases).

// An integration-test crate is all tests; the lint targets library code.
#![allow(clippy::tests_outside_test_module)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use pipelines::maglev::{self, Endpoint, Maglev};
use pipelines::net::PortRange;
use pipelines::tables::{DataplaneParams, Tables};
use pipelines::testkit::{self, decode_verified, udp_frame};
use pipelines::{Context, FastPath, FastPathParams, Verdict};
use proptest::prelude::*;

const M: u32 = 65537;

fn endpoint(n: u32, weight: u64) -> Endpoint {
    let mut id = [0u8; 18];
    id[10] = 0xff;
    id[11] = 0xff;
    id[12..16].copy_from_slice(&Ipv4Addr::from(0xc612_0000 | n).octets());
    id[16..].copy_from_slice(&5353u16.to_be_bytes());
    Endpoint {
        id,
        weight,
        value: n + 1,
    }
}

fn counts(m: &Maglev, n: usize) -> Vec<u64> {
    let mut c = vec![0u64; n + 1];
    for &s in m.slots() {
        if s != maglev::NO_BACKEND && s != maglev::DROP {
            c[s as usize - 1] += 1;
        }
    }
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Equal weights, table ≥ 100 × backends: every backend within 1 % of M/N.
    #[test]
    fn maglev_balance_within_one_percent(n in 1usize..=100, seed: u64) {
        let eps: Vec<_> = (0..u32::try_from(n).unwrap()).map(|i| endpoint(i, 1)).collect();
        let m = Maglev::build(&eps, M, seed);
        let expected = f64::from(M) / n as f64;
        for (i, &c) in counts(&m, n)[..n].iter().enumerate() {
            let err = (c as f64 - expected).abs() / expected;
            prop_assert!(err <= 0.01, "backend {i}: {c} slots, expected {expected:.1}");
        }
    }

    /// Weighted: each backend's share within 1 % of its weight's share (weights up to
    /// 10:1, so every expected share is ≥ 100 slots).
    #[test]
    fn maglev_weights_within_one_percent(
        weights in prop::collection::vec(1u64..=10, 2..=40),
        scale in 1u64..=720_720,
        seed: u64,
    ) {
        let n = weights.len();
        let eps: Vec<_> = weights.iter().enumerate().map(|(i, &w)| endpoint(u32::try_from(i).unwrap(), w * scale)).collect();
        let m = Maglev::build(&eps, M, seed);
        let total: u64 = weights.iter().sum();
        for (i, &c) in counts(&m, n)[..n].iter().enumerate() {
            let expected = f64::from(M) * weights[i] as f64 / total as f64;
            let err = (c as f64 - expected).abs() / expected;
            prop_assert!(err <= 0.01, "backend {i} w={}: {c} slots, expected {expected:.1}", weights[i]);
        }
    }

    /// Removing one of N backends moves its ≈ M/N slots, plus a bounded number of
    /// survivors' slots: total moved ≤ 2 × M/N (bound from the Maglev paper §3.4 and
    /// Katran's integration test, which report a few % of extra churn).
    #[test]
    fn maglev_removal_moves_about_one_nth(n in 3usize..=50, victim in 0usize..50, seed: u64) {
        let victim = victim % n;
        let eps: Vec<_> = (0..u32::try_from(n).unwrap()).map(|i| endpoint(i, 1)).collect();
        let before = Maglev::build(&eps, M, seed);
        let mut rest = eps.clone();
        rest.remove(victim);
        let after = Maglev::build(&rest, M, seed);
        let moved = maglev::diff(&before, |v| v, &after, |v| v);
        let victim_slots = usize::try_from(counts(&before, n)[victim]).unwrap();
        let survivors_moved = moved.len() - victim_slots;
        prop_assert!(moved.len() >= victim_slots);
        prop_assert!(
            moved.len() as f64 <= 2.0 * f64::from(M) / n as f64,
            "moved {} of {M} with N={n}", moved.len()
        );
        // Every slot of the removed backend moved to a survivor.
        for (i, &s) in before.slots().iter().enumerate() {
            if s == u32::try_from(victim).unwrap() + 1 {
                prop_assert!(after.slots()[i] != s);
            }
        }
        let _ = survivors_moved;
    }

    /// Same endpoints, size and seed: identical tables; a different seed: different.
    #[test]
    fn maglev_deterministic(n in 2usize..=30, seed: u64) {
        let eps: Vec<_> = (0..u32::try_from(n).unwrap()).map(|i| endpoint(i, 1 + u64::from(i % 3))).collect();
        let a = Maglev::build(&eps, 4099, seed);
        let b = Maglev::build(&eps, 4099, seed);
        prop_assert_eq!(&a, &b);
        let c = Maglev::build(&eps, 4099, seed ^ 1);
        prop_assert_ne!(a, c);
    }
}

/// Two appliances given the same configuration build identical tables.
#[test]
fn identical_configs_build_identical_maglev_tables() {
    let a = Tables::build(&testkit::config(), &DataplaneParams::default()).unwrap();
    let b = Tables::build(&testkit::config(), &DataplaneParams::default()).unwrap();
    for (la, lb) in a.listeners().iter().zip(b.listeners()) {
        assert_eq!(la.route, lb.route);
    }
}

struct Rig {
    tables: Tables,
    network: pipelines::net::Network,
    neighbors: pipelines::neighbor::Neighbors,
    worker: FastPath,
}

impl Rig {
    fn new() -> Rig {
        let mut p = FastPathParams::new(
            0,
            1,
            PortRange {
                first: 1024,
                last: 65535,
            },
        );
        p.flow_capacity = 64;
        // A small prime table keeps per-case setup cheap (≥ 100 × the 3 slot owners).
        let params = DataplaneParams {
            maglev_size: 1009,
            ..DataplaneParams::default()
        };
        Rig {
            tables: Tables::build(&testkit::config(), &params).unwrap(),
            network: testkit::network(false),
            neighbors: testkit::neighbors(4),
            worker: FastPath::new(p).unwrap(),
        }
    }

    fn run(&mut self, f: &mut [u8], now: u64) -> Verdict {
        let ctx = Context {
            tables: &self.tables,
            network: &self.network,
            neighbors: &self.neighbors,
        };
        // Delivered on the port it is addressed to, as a switch would.
        self.worker.process(&ctx, now, testkit::arrival_port(f), f)
    }
}

fn client_strategy() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u16>(), 1u16..).prop_map(|(h, p)| SocketAddr::from((
            Ipv4Addr::new(198, 19, h.to_be_bytes()[0], h.to_be_bytes()[1]),
            p
        ))),
        (any::<u32>(), 1u16..).prop_map(|(h, p)| SocketAddr::from((
            Ipv6Addr::new(
                0x2001,
                2,
                0,
                9,
                0,
                0,
                u16::from_be_bytes([h.to_be_bytes()[0], h.to_be_bytes()[1]]),
                u16::from_be_bytes([h.to_be_bytes()[2], h.to_be_bytes()[3]])
            ),
            p
        ))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any valid datagram to a listener is rewritten to a valid datagram to a backend,
    /// and the backend's reply to a valid datagram from the VIP to the client.
    #[test]
    fn rewrite_round_trip_is_valid(
        client in client_strategy(),
        mode in 0u8..3,
        vlans in prop::collection::vec(1u16..4095, 0..=2),
        ttl in 2u8..=255,
        payload in prop::collection::vec(any::<u8>(), 0..200),
        zero_checksum in any::<bool>(),
    ) {
        let mut rig = Rig::new();
        let v6 = client.is_ipv6();
        let (preserve, dsr) = (mode == 1, mode == 2);
        let vip_ip: IpAddr = if v6 { "2001:2:0:2::1".parse().unwrap() } else { "198.18.2.1".parse().unwrap() };
        let vip = SocketAddr::new(vip_ip, [53, 54, 60][usize::from(mode)]);
        let mut f = udp_frame(client, vip, ttl, &vlans, testkit::PORT0_MAC, &payload);
        if zero_checksum && !v6 {
            let l4 = 14 + 4 * vlans.len() + 20;
            f[l4 + 6] = 0;
            f[l4 + 7] = 0;
        }
        let input = f.clone();
        let v = rig.run(&mut f, 1);
        prop_assert!(matches!(v, Verdict::Tx { port: 1, offload: None }), "{v:?}");
        if dsr {
            // Only the MACs change; the backend answers the client directly.
            prop_assert_eq!(&f[12..], &input[12..]);
            prop_assert_eq!(&f[6..12], &testkit::PORT1_MAC.0);
            let macs = [testkit::backend_mac(1).0, testkit::backend_mac(2).0];
            prop_assert!(macs.iter().any(|m| m[..] == f[..6]));
            return Ok(());
        }
        let d = decode_verified(&f).map_err(TestCaseError::fail)?;
        prop_assert_eq!(d.ttl, ttl - 1);
        prop_assert_eq!(&d.payload, &payload);
        prop_assert_eq!(&d.vlans, &vlans);
        prop_assert_eq!(d.udp_checksum == 0, zero_checksum && !v6);
        let backends = if preserve {
            vec![if v6 { testkit::backend6(3) } else { testkit::backend4(3) }]
        } else if v6 {
            vec![testkit::backend6(1), testkit::backend6(2)]
        } else {
            vec![testkit::backend4(1), testkit::backend4(2)]
        };
        prop_assert!(backends.contains(&d.dst));
        if preserve {
            prop_assert_eq!(d.src, client);
        } else {
            prop_assert_eq!(Some(d.src.ip()), rig.network.snat_addr(v6));
        }
        let mut r = udp_frame(d.dst, d.src, ttl, &vlans, testkit::PORT1_MAC, &payload);
        let v = rig.run(&mut r, 2);
        prop_assert!(matches!(v, Verdict::Tx { port: 0, offload: None }), "{v:?}");
        let dr = decode_verified(&r).map_err(TestCaseError::fail)?;
        prop_assert_eq!((dr.src, dr.dst, dr.ttl), (vip, client, ttl - 1));
    }
}

fn valid_frame() -> impl Strategy<Value = Vec<u8>> {
    (
        client_strategy(),
        prop::sample::select(vec![53u16, 54, 60]),
        prop::collection::vec(1u16..4095, 0..=2),
        0u8..=255,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(client, port, vlans, ttl, payload)| {
            let vip: IpAddr = if client.is_ipv6() {
                "2001:2:0:2::1".parse().unwrap()
            } else {
                "198.18.2.1".parse().unwrap()
            };
            udp_frame(
                client,
                SocketAddr::new(vip, port),
                ttl,
                &vlans,
                testkit::PORT0_MAC,
                &payload,
            )
        })
}

fn check_accounting(rig: &Rig) -> Result<(), TestCaseError> {
    let c = rig.worker.counters();
    let host: u64 = c.to_host.iter().sum();
    // A held fragment is counted as held when it arrives; `fragment_timeout` counts it
    // again if it expires (its final fate), so that reason is not a per-packet outcome.
    let timed_out = c.drop_count(pipelines::DropReason::FragmentTimeout);
    prop_assert_eq!(
        c.rx_packets,
        c.tx_packets + c.drops_total() - timed_out + host + c.handoff + c.fragments_held
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic, and every packet gets exactly one counted outcome.
    #[test]
    fn process_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut rig = Rig::new();
        let mut b = bytes;
        // As they come (mostly not for us), then addressed to the port, so the parser
        // sees every one of them too.
        let mut addressed = b.clone();
        if let Some(dst) = addressed.get_mut(..6) {
            dst.copy_from_slice(&testkit::PORT0_MAC.0);
        }
        rig.run(&mut b, 1);
        rig.run(&mut addressed, 1);
        check_accounting(&rig)?;
    }

    /// Valid frames with random byte flips and truncation never panic.
    #[test]
    fn process_never_panics_on_mutated_frames(
        frame in valid_frame(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut rig = Rig::new();
        let mut f = frame;
        for (i, x) in flips {
            let i = i.index(f.len());
            f[i] ^= x;
        }
        if truncate {
            let n = cut.index(f.len() + 1);
            f.truncate(n);
        }
        let mut twice = f.clone();
        rig.run(&mut f, 1);
        // A second pass (now with a possible flow) must not panic either.
        rig.run(&mut twice, 2);
        check_accounting(&rig)?;
    }
}

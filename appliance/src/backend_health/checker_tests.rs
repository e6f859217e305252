//! The scheduler on a fake clock: thresholds through probes, timeouts, weak checks, panic,
//! the passive ejection cap, configuration changes, bounds.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use pipelines::net::PortRange;
use pipelines::spec::{
    ActiveCheckSpec, HealthCheckSpec, PassiveCheckSpec, PolicyKey, ProbeSpec, RcodeSet, ServiceKey,
};

use super::super::state::PassiveSample;
use super::super::wire::ProbeEvent;
use super::*;

const MS: Duration = Duration::from_millis(1);
const PORTS: PortRange = PortRange {
    first: 1000,
    last: 1023,
};

fn ep(i: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 18, 1, i)), 53)
}

fn dns_probe() -> ProbeSpec {
    ProbeSpec::Dns {
        name: "health.example".into(),
        qtype: 1,
        rcodes: RcodeSet(1),
        recursion_desired: false,
    }
}

fn active(probe: ProbeSpec) -> ActiveCheckSpec {
    ActiveCheckSpec {
        probe,
        interval: 200 * MS,
        timeout: 100 * MS,
        healthy_threshold: 1,
        unhealthy_threshold: 3,
        port: None,
    }
}

fn check(
    n: u8,
    active: Option<ActiveCheckSpec>,
    passive: Option<PassiveCheckSpec>,
) -> HealthCheckSpec {
    HealthCheckSpec {
        service: ServiceKey {
            namespace: "ns".into(),
            name: "dns".into(),
            port: 53,
        },
        policy: PolicyKey {
            namespace: "ns".into(),
            name: "p".into(),
        },
        endpoints: (1..=n).map(ep).collect(),
        active,
        passive,
        panic_threshold_percent: 50,
    }
}

/// A DNS answer with `rcode` to the query `o`, from its target.
fn answer(o: &Outgoing, rcode: u8) -> ProbeEvent {
    let mut r = o.payload.clone();
    r[2] |= 0x80;
    r[3] |= rcode;
    ProbeEvent::Reply {
        from: o.target,
        to_port: o.src_port,
        payload: r,
    }
}

/// Polls every 10 ms from `t` for `span`, answering the probes to endpoints `up` with
/// NOERROR; returns the time reached.
fn run(c: &mut Checker, mut t: Instant, span: Duration, up: &[SocketAddr]) -> Instant {
    let end = t + span;
    while t < end {
        for o in c.poll(t) {
            if up.contains(&o.target) {
                c.on_event(answer(&o, 0), t);
            }
        }
        t += 10 * MS;
    }
    t
}

#[test]
fn an_endpoint_that_stops_answering_is_excluded_after_the_threshold_and_comes_back() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    c.set_checks(vec![check(3, Some(active(dns_probe())), None)], t0);
    // All answer: nothing excluded, nothing published (the first snapshot is empty).
    let t = run(&mut c, t0, 1000 * MS, &[ep(1), ep(2), ep(3)]);
    assert!(c.publish().is_none());
    assert!(c.endpoints().values().all(|e| e.active.healthy));
    // ep(2) stops: three timeouts in a row. After two intervals it is still healthy.
    let t = run(&mut c, t, 400 * MS, &[ep(1), ep(3)]);
    assert!(c.publish().is_none(), "two failures are not enough");
    let t = run(&mut c, t, 400 * MS, &[ep(1), ep(3)]);
    let h = c.publish().expect("ep(2) excluded");
    assert_eq!(h.excluded(), [ep(2)]);
    let e = &c.endpoints()[&ep(2)];
    assert!(!e.active.healthy && e.active.failures >= 3);
    assert_eq!(
        e.active.last.as_ref().map(|r| r.reason.as_str()),
        Some("no answer within 100ms")
    );
    // One pass brings it back (healthy_threshold 1).
    let _ = run(&mut c, t, 300 * MS, &[ep(1), ep(2), ep(3)]);
    assert!(c.publish().expect("back").is_empty());
    let n = c.counters();
    assert!(n.failed_timeout >= 3 && n.passed > 10, "{n:?}");
    assert_eq!(n.published, 2);
}

#[test]
fn a_wrong_rcode_fails_at_once_and_other_ids_are_ignored() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    let mut a = active(dns_probe());
    a.unhealthy_threshold = 1;
    c.set_checks(vec![check(1, Some(a), None)], t0);
    let out = c.poll(t0);
    assert_eq!(out.len(), 1);
    let o = &out[0];
    // Another ID, another source, another port: ignored.
    let mut other = o.clone();
    other.payload[0] ^= 0xff;
    c.on_event(answer(&other, 0), t0);
    let mut elsewhere = o.clone();
    elsewhere.target.set_port(54);
    c.on_event(answer(&elsewhere, 0), t0);
    let mut wrong_port = o.clone();
    wrong_port.src_port += 1;
    c.on_event(answer(&wrong_port, 0), t0);
    assert_eq!(c.in_flight(), 1);
    // SERVFAIL: fails now.
    c.on_event(answer(o, 2), t0 + MS);
    assert_eq!(c.in_flight(), 0);
    let e = &c.endpoints()[&ep(1)];
    assert!(!e.active.healthy);
    assert_eq!(
        e.active.last.as_ref().map(|r| r.reason.as_str()),
        Some("DNS rcode SERVFAIL")
    );
    assert_eq!(c.counters().failed_reply, 1);
    // Panic threshold 50 %: one of one unhealthy is more than half, so nothing is
    // excluded and the Service panics.
    let h = c.publish().expect("changed");
    assert!(h.is_empty());
    assert_eq!(h.panicking().len(), 1);
}

#[test]
fn weak_checks_pass_at_the_timeout_and_fail_on_icmp_unreachable() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    let weak = ProbeSpec::Udp {
        send: b"ping".to_vec(),
        expect: None,
    };
    let mut a = active(weak);
    a.unhealthy_threshold = 2;
    a.port = Some(7);
    c.set_checks(vec![check(4, Some(a), None)], t0);
    let mut t = t0;
    let mut failed = 0;
    while t < t0 + 1000 * MS {
        for o in c.poll(t) {
            assert_eq!(o.target.port(), 7, "the check's port");
            assert_eq!(o.payload, b"ping");
            if o.target.ip() == ep(4).ip() {
                failed += 1;
                c.on_event(
                    ProbeEvent::Unreachable {
                        to: o.target,
                        from_port: o.src_port,
                        what: "port unreachable",
                    },
                    t,
                );
            }
        }
        t += 10 * MS;
    }
    assert!(failed >= 2);
    let e4 = &c.endpoints()[&ep(4)];
    assert!(!e4.active.healthy);
    assert_eq!(
        e4.active.last.as_ref().map(|r| r.reason.as_str()),
        Some("ICMP port unreachable")
    );
    let e1 = &c.endpoints()[&ep(1)];
    assert!(e1.active.healthy && e1.active.passes >= 3);
    assert_eq!(
        e1.active.last.as_ref().map(|r| r.reason.as_str()),
        Some("no ICMP unreachable (weak check)")
    );
    // One of four is not more than half: excluded.
    assert_eq!(c.publish().expect("changed").excluded(), [ep(4)]);
}

#[test]
fn unsent_probes_fail_at_their_deadline_saying_why() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    let mut a = active(ProbeSpec::Udp {
        send: b"x".to_vec(),
        expect: None,
    });
    a.unhealthy_threshold = 1;
    c.set_checks(vec![check(1, Some(a), None)], t0);
    let o = c.poll(t0).pop().expect("a probe");
    c.on_event(
        ProbeEvent::Unsent {
            to: o.target,
            from_port: o.src_port,
            why: "next hop unresolved",
        },
        t0,
    );
    assert!(c.poll(t0 + 99 * MS).is_empty());
    assert!(c.endpoints()[&ep(1)].active.healthy);
    let _ = c.poll(t0 + 100 * MS);
    let e = &c.endpoints()[&ep(1)];
    assert!(
        !e.active.healthy,
        "a weak check fails when nothing was sent"
    );
    assert_eq!(
        e.active.last.as_ref().map(|r| r.reason.as_str()),
        Some("not sent: next hop unresolved")
    );
    assert_eq!(c.counters().failed_unsent, 1);
}

#[test]
fn probes_in_flight_are_bounded_and_ports_reused_only_when_free() {
    let t0 = Instant::now();
    // Two source ports for five endpoints.
    let mut c = Checker::new(Some(PortRange {
        first: 1000,
        last: 1001,
    }));
    let mut a = active(dns_probe());
    a.interval = 100 * MS;
    a.timeout = 100 * MS;
    c.set_checks(vec![check(5, Some(a), None)], t0);
    let mut t = t0;
    for _ in 0..100 {
        let out = c.poll(t);
        assert!(c.in_flight() <= 2);
        let ports: std::collections::BTreeSet<u16> = out.iter().map(|o| o.src_port).collect();
        assert_eq!(ports.len(), out.len(), "one port per probe in flight");
        t += 7 * MS;
    }
    assert!(c.counters().no_source_port > 0);
    assert!(c.endpoints().values().all(|e| e.in_flight <= MAX_IN_FLIGHT));
    // Without any probe port, every probe fails saying why.
    let mut none = Checker::new(None);
    let mut a = active(dns_probe());
    a.unhealthy_threshold = 1;
    none.set_checks(vec![check(1, Some(a), None)], t0);
    assert!(none.poll(t0).is_empty());
    assert_eq!(
        none.endpoints()[&ep(1)]
            .active
            .last
            .as_ref()
            .map(|r| r.reason.as_str()),
        Some("not sent: no source port outside the SNAT pool")
    );
}

#[test]
fn a_configuration_change_keeps_same_checks_and_drops_the_rest() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    let mut a = active(dns_probe());
    a.unhealthy_threshold = 1;
    c.set_checks(vec![check(2, Some(a.clone()), None)], t0);
    let mut t = t0;
    // ep(1) answers, ep(2) fails.
    while t < t0 + 300 * MS {
        for o in c.poll(t) {
            if o.target == ep(1) {
                c.on_event(answer(&o, 0), t);
            }
        }
        t += 10 * MS;
    }
    assert!(!c.endpoints()[&ep(2)].active.healthy);
    assert_eq!(c.publish().expect("ep(2) out").excluded(), [ep(2)]);
    // The same check with one more endpoint: state kept.
    c.set_checks(vec![check(3, Some(a.clone()), None)], t);
    assert!(!c.endpoints()[&ep(2)].active.healthy);
    assert!(c.endpoints()[&ep(3)].active.healthy);
    // Probes of ep(1) in flight survive; a changed check forgets everything.
    let _ = c.poll(t + 200 * MS);
    let mut b = a;
    b.timeout = 50 * MS;
    c.set_checks(vec![check(2, Some(b), None)], t + 200 * MS);
    assert_eq!(c.in_flight(), 0);
    assert!(c.endpoints().values().all(|e| e.active.healthy));
    // Checks removed: nothing left, nothing excluded.
    c.set_checks(Vec::new(), t + 300 * MS);
    assert!(c.endpoints().is_empty() && c.next_wakeup().is_none());
    let h = c.publish().expect("ep(2) was excluded");
    assert!(h.is_empty() && h.panicking().is_empty());
}

fn passive(max_percent: u8) -> PassiveCheckSpec {
    PassiveCheckSpec {
        consecutive_failures: 3,
        base_ejection_time: Duration::from_secs(10),
        max_ejection_percent: max_percent,
    }
}

fn sample(entries: &[(SocketAddr, u64, u64)]) -> BTreeMap<SocketAddr, PassiveSample> {
    entries
        .iter()
        .map(|&(a, icmp, replies)| {
            (
                a,
                PassiveSample {
                    icmp_unreachable: icmp,
                    reply_packets: replies,
                },
            )
        })
        .collect()
}

#[test]
fn passive_ejection_is_capped_per_service_and_ends_after_its_time() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    // Ten endpoints, 10 %: one ejected at a time.
    c.set_checks(vec![check(10, None, Some(passive(10)))], t0);
    c.sample_passive(&sample(&[]), t0);
    // ep(1) and ep(2) refuse three in a row; ep(3) also answers.
    let bad = sample(&[(ep(1), 3, 0), (ep(2), 3, 0), (ep(3), 3, 1)]);
    c.sample_passive(&bad, t0 + 100 * MS);
    let h = c.publish().expect("one ejected");
    assert_eq!(h.excluded(), [ep(1)]);
    let n = c.counters();
    assert_eq!((n.ejections, n.ejections_capped), (1, 1));
    assert!(!c.endpoints()[&ep(3)].unhealthy(), "replies reset");
    // Still capped while ep(1) is out.
    c.sample_passive(&bad, t0 + 5000 * MS);
    assert_eq!(c.counters().ejections_capped, 2);
    assert!(c.publish().is_none());
    // ep(1)'s 10 s are over: it returns, and ep(2), still failing, takes the slot.
    let t = t0 + 100 * MS + Duration::from_secs(10);
    c.sample_passive(&bad, t);
    assert_eq!(c.publish().expect("swapped").excluded(), [ep(2)]);
    assert_eq!(c.next_ejection_end(), Some(t + Duration::from_secs(10)));
}

#[test]
fn passive_ejection_respects_the_panic_threshold() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    // Three endpoints, 100 % may be ejected, panic above 50 %.
    c.set_checks(vec![check(3, None, Some(passive(100)))], t0);
    c.sample_passive(&sample(&[]), t0);
    c.sample_passive(&sample(&[(ep(1), 5, 0)]), t0 + 100 * MS);
    assert_eq!(c.publish().expect("ejected").excluded(), [ep(1)]);
    c.sample_passive(&sample(&[(ep(1), 5, 0), (ep(2), 5, 0)]), t0 + 200 * MS);
    let h = c.publish().expect("panic");
    assert!(h.is_empty(), "two of three is more than half: use them all");
    assert_eq!(h.panicking().len(), 1);
    assert!(c.endpoints()[&ep(2)].unhealthy());
}

#[test]
fn probe_ports_lie_outside_the_snat_pool() {
    let r = |first, last| PortRange { first, last };
    assert_eq!(probe_ports(r(1024, 65535)), Some(r(1, 1023)));
    assert_eq!(probe_ports(r(1, 65535)), None);
    assert_eq!(probe_ports(r(1, 60000)), Some(r(61440, 65535)));
    assert_eq!(probe_ports(r(2000, 3000)), Some(r(61440, 65535)));
    assert_eq!(probe_ports(r(2, 65535)), Some(r(1, 1)));
}

#[test]
fn an_endpoint_named_by_two_checks_is_checked_once_without_harm() {
    let t0 = Instant::now();
    let mut c = Checker::new(Some(PORTS));
    let a = check(2, Some(active(dns_probe())), Some(passive(100)));
    let mut b = a.clone();
    b.service.port = 54;
    c.set_checks(vec![a, b], t0);
    assert_eq!(c.endpoints().len(), 2);
    c.sample_passive(&sample(&[]), t0);
    c.sample_passive(&sample(&[(ep(1), 9, 0)]), t0 + 100 * MS);
    assert_eq!(c.counters().ejections, 1, "ejected once, under one check");
    let out = c.poll(t0 + 1000 * MS);
    assert_eq!(out.len(), 2, "one probe per endpoint: {out:?}");
    assert!(c.publish().is_some());
}

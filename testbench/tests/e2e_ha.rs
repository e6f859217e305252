//! Scale out and survive (README.md, "Scale out"), shorter than `scripts/demo-ha`: a
//! router namespace running BIRD (deploy/bird/router.conf) with ECMP and L4 hashing, three
//! udplb appliances each with its own BIRD (deploy/bird/udplb-appliance.conf) announcing
//! one VIP, four echo backends, 200 sessions at 100 ms. In each NAT mode: the sessions
//! spread over the three appliances and are all answered; a SIGKILL is out of the
//! router's route within 3 s, and no session changes backend; a fourth appliance joins
//! and no session changes backend; a drain loses no datagram; everything is removed.
//!
//! Needs root, `bird2` (`scripts/setup`) and a built `udplb` (`cargo build -p appliance`).
//! About a minute and a half for the three modes.

#![allow(clippy::tests_outside_test_module)]

use std::fmt::Write as _;
use std::time::Duration;

use testbench::ha::scenario::{DRAINED, JOINER, KILLED};
use testbench::ha::{run_mode, HaMode, HaOptions, HaOutcome};

/// What must hold for `o`; every failure, as text.
fn check(o: &HaOutcome) -> String {
    let f = &o.figures;
    let mut bad = String::new();
    let mut want = |ok: bool, what: &str| {
        if !ok {
            let _ = writeln!(bad, "{}: {what}", o.mode);
        }
    };
    want(f.sessions == 200, "200 sessions");
    want(
        f.answered == f.sessions,
        "every session answered outside the failover window",
    );
    want(f.scored_lost == 0, "no scored request lost");
    want(
        (1..=3).all(|k| o.spread.get(&k).is_some_and(|&n| n > 0)),
        "each of the three appliances forwarded in the steady window",
    );
    want(
        o.failover <= Duration::from_secs(3),
        "the killed appliance out of the router's route within 3 s",
    );
    want(
        o.moved_kill > 0,
        "the kill moved sessions (else it proves nothing)",
    );
    want(
        f.after_kill_rounds > 0 && f.after_join_rounds > 0,
        "settled windows",
    );
    // Seeded Maglev: every appliance picks the same backend, in every mode.
    want(
        f.backend_changed_kill == 0,
        "no session changed backend at the kill",
    );
    want(
        f.backend_changed_join == 0,
        "no session changed backend at the join",
    );
    want(
        o.moved_join.1 > 0 && o.joiner_forwarded > 0,
        "the joining appliance took sessions and forwarded them",
    );
    want(o.moved_drain > 0, "the drain moved sessions");
    want(f.drain_lost == 0, "no datagram lost in the drain");
    want(
        o.forwarded_after_drained == 0,
        "nothing reached the drained appliance after it reported drained",
    );
    match o.mode {
        // A moved full-NAT session is a new flow from another appliance's SNAT address:
        // exactly the sessions the router moved (the attribution is checked too).
        HaMode::FullNat => {
            want(
                f.source_changed_kill == o.moved_kill,
                "full NAT: a new source address for exactly the sessions moved at the kill",
            );
            want(
                f.source_changed_join == o.moved_join.0,
                "full NAT: a new source address for exactly the sessions moved at the join",
            );
            want(
                o.attribution_mismatch == Some(0),
                "full NAT: the SNAT address the backend saw is the router's choice",
            );
        }
        // The client's own address reaches the backends whatever the appliance.
        HaMode::Dsr | HaMode::PreserveClient => {
            want(
                f.source_changed_kill == 0 && f.source_changed_join == 0,
                "the backends always see the client's address",
            );
        }
    }
    if o.mode == HaMode::PreserveClient {
        want(o.return_hops == 3, "three return routes in table 100");
    } else {
        want(
            o.drain_ended_by == "idle",
            "the drain ended with no flow left",
        );
    }
    want(
        o.session_losses == 0,
        "no BGP or BFD session lost (the scenario never kills a host or a link)",
    );
    want(
        o.leftovers.is_empty(),
        &format!("nothing left: {:?}", o.leftovers),
    );
    bad
}

#[test]
#[ignore = "needs root: network namespaces, BIRD 2 (bird2), DPDK net_af_packet ports, TAP devices"]
fn three_appliances_behind_ecmp_survive_kill_join_and_drain_in_every_mode() {
    let tools = env!("CARGO_BIN_EXE_testbench").into();
    let udplb = testbench::appliance::udplb_binary().expect("udplb built");
    let opts = HaOptions::ci(tools, udplb);
    let mut failures = String::new();
    for mode in HaMode::ALL {
        match run_mode(mode, &opts) {
            Ok(o) => {
                for line in o.details() {
                    println!("{line}");
                }
                println!("{}", o.line());
                let bad = check(&o);
                if !bad.is_empty() {
                    println!("{}", o.diagnostics);
                }
                failures.push_str(&bad);
            }
            Err(e) => {
                let _ = writeln!(failures, "{mode}: did not run: {e}");
            }
        }
    }
    assert!(
        failures.is_empty(),
        "killed a{KILLED}, joined a{JOINER}, drained a{DRAINED}:\n{failures}"
    );
}

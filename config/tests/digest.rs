//! Digests of the compiled result: stable, order-independent, and sensitive to every
//! field of the forwarding config.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    use config::{compile, load_paths, load_str, CompileParams, Compiled};
    use pipelines::spec::{
        ActiveCheckSpec, ExpectedReply, ForwardingConfig, HashKey, HealthCheckSpec, NatMode,
        PassiveCheckSpec, PayloadMatch, PolicyKey, ProbeSpec, RcodeSet,
    };

    fn dns_example_text() -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/dns");
        ["gateway.yaml", "route.yaml", "service.yaml"]
            .iter()
            .map(|f| fs::read_to_string(dir.join(f)).expect("example"))
            .collect()
    }

    fn compiled(text: &str) -> Compiled {
        compile(
            &load_str("set.yaml", text).expect("valid"),
            &CompileParams::default(),
        )
    }

    #[test]
    fn digests_are_stable_across_runs_machines_and_releases() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/dns");
        let c = compile(
            &load_paths(&[dir]).expect("example"),
            &CompileParams::default(),
        );
        // Literal values: a process-seeded or release-dependent hasher would change them.
        // The status one is also what this gives (the hash of a version tag and the
        // compact JSON of `udplb check --output json`):
        //   udplb check config/examples/dns/ --output json | python3 -c 'import json,sys,
        //   hashlib; print(hashlib.sha256(b"udplb.status.v1\0" + json.dumps(json.load(
        //   sys.stdin), separators=(",", ":"), ensure_ascii=False).encode()).hexdigest())'
        assert_eq!(
            c.forwarding_digest().to_string(),
            "eef94449a53b8263d7607da6535d654fa895126a840551d9a2cdefb8ae0ca1b3"
        );
        assert_eq!(
            c.status_digest().to_string(),
            "155dcf928af31bfd4197e66078091c4c88588866d1a9b2f8dc9b7f5f5b5110d1"
        );
        assert_eq!(c.forwarding_digest().short().len(), 12);
        assert!(c
            .forwarding_digest()
            .to_string()
            .starts_with(&c.forwarding_digest().short()));
    }

    #[test]
    fn document_order_does_not_change_the_digests() {
        let docs = dns_example_text();
        let forward = compiled(&docs.join("---\n"));
        let mut reversed = docs.clone();
        reversed.reverse();
        let backward = compiled(&reversed.join("---\n"));
        assert_eq!(forward.forwarding_digest(), backward.forwarding_digest());
        assert_eq!(forward.status_digest(), backward.status_digest());
    }

    #[test]
    fn a_status_only_change_keeps_the_forwarding_digest() {
        let docs = dns_example_text().join("---\n");
        let before = compiled(&docs);
        let bumped = docs.replacen(
            "kind: UDPRoute\nmetadata:\n",
            "kind: UDPRoute\nmetadata:\n  generation: 7\n",
            1,
        );
        assert_ne!(
            bumped, docs,
            "the example's route metadata moved; adjust the test"
        );
        let after = compiled(&bumped);
        assert_eq!(before.forwarding, after.forwarding);
        assert_eq!(before.forwarding_digest(), after.forwarding_digest());
        assert_ne!(before.status_digest(), after.status_digest());
    }

    #[test]
    fn every_field_of_the_forwarding_config_changes_the_digest() {
        let mut base = compiled(&dns_example_text().join("---\n")).forwarding;
        assert!(!base.listeners.is_empty());
        let service = base.listeners[0].route.as_ref().expect("route").backends[0]
            .service
            .clone();
        let endpoint = base.listeners[0].route.as_ref().expect("route").backends[0].addr;
        let active = |probe| ActiveCheckSpec {
            probe,
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(1),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
            port: None,
        };
        base.health_checks = vec![
            HealthCheckSpec {
                service: service.clone(),
                policy: PolicyKey {
                    namespace: "default".into(),
                    name: "health".into(),
                },
                endpoints: vec![endpoint],
                active: Some(active(ProbeSpec::Udp {
                    send: b"ping".to_vec(),
                    expect: Some(ExpectedReply {
                        matching: PayloadMatch::Exact,
                        payload: b"pong".to_vec(),
                    }),
                })),
                passive: Some(PassiveCheckSpec {
                    consecutive_failures: 5,
                    base_ejection_time: Duration::from_secs(30),
                    max_ejection_percent: 10,
                }),
                panic_threshold_percent: 50,
            },
            HealthCheckSpec {
                service: pipelines::spec::ServiceKey {
                    port: service.port + 1,
                    ..service
                },
                policy: PolicyKey {
                    namespace: "default".into(),
                    name: "dns".into(),
                },
                endpoints: Vec::new(),
                active: Some(active(ProbeSpec::Dns {
                    name: "health.example".into(),
                    qtype: 1,
                    rcodes: RcodeSet(1),
                    recursion_desired: false,
                })),
                passive: None,
                panic_threshold_percent: 0,
            },
        ];
        fn active_of(c: &mut ForwardingConfig, i: usize) -> &mut ActiveCheckSpec {
            c.health_checks[i].active.as_mut().expect("active")
        }
        fn udp_of(c: &mut ForwardingConfig) -> (&mut Vec<u8>, &mut Option<ExpectedReply>) {
            match &mut active_of(c, 0).probe {
                ProbeSpec::Udp { send, expect } => (send, expect),
                ProbeSpec::Dns { .. } => unreachable!("the first check is UDP"),
            }
        }
        fn dns_of(c: &mut ForwardingConfig) -> (&mut String, &mut u16, &mut RcodeSet, &mut bool) {
            match &mut active_of(c, 1).probe {
                ProbeSpec::Dns {
                    name,
                    qtype,
                    rcodes,
                    recursion_desired,
                } => (name, qtype, rcodes, recursion_desired),
                ProbeSpec::Udp { .. } => unreachable!("the second check is DNS"),
            }
        }
        fn passive_of(c: &mut ForwardingConfig) -> &mut PassiveCheckSpec {
            c.health_checks[0].passive.as_mut().expect("passive")
        }
        type Edit = fn(&mut ForwardingConfig);
        let edits: [(&str, Edit); 43] = [
            ("vip", |c| {
                c.listeners[0].vip = "198.18.9.9".parse().expect("ip")
            }),
            ("port", |c| c.listeners[0].port += 1),
            ("namespace", |c| c.listeners[0].key.namespace.push('x')),
            ("gateway", |c| c.listeners[0].key.gateway.push('x')),
            ("listener", |c| c.listeners[0].key.listener.push('x')),
            ("nat mode", |c| {
                c.listeners[0].options.nat_mode = Some(NatMode::PreserveClient)
            }),
            ("nat mode dsr", |c| {
                c.listeners[0].options.nat_mode = Some(NatMode::Dsr)
            }),
            ("idle timeout", |c| {
                c.listeners[0].options.idle_timeout = Some(Duration::from_millis(1500))
            }),
            ("hash key", |c| {
                c.listeners[0].options.hash_key = Some(HashKey::SourceIp)
            }),
            ("no route", |c| c.listeners[0].route = None),
            ("route name", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.key.name.push('x');
                }
            }),
            ("backend addr", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.backends[0].addr.set_port(5353);
                }
            }),
            ("backend service", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.backends[0].service.port += 1;
                }
            }),
            ("weight", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.backends[0].weight += 1;
                }
            }),
            ("draining", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.backends[0].draining = !r.backends[0].draining;
                }
            }),
            ("dropped weight", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.dropped_weight += 1;
                }
            }),
            ("one listener fewer", |c| {
                c.listeners.pop();
            }),
            ("unreplied timeout", |c| {
                c.listeners[0].options.unreplied_timeout = Some(Duration::from_secs(10))
            }),
            ("maglev size", |c| {
                c.listeners[0].options.maglev_size = Some(65_537)
            }),
            ("backend idle timeout", |c| {
                if let Some(r) = &mut c.listeners[0].route {
                    r.backends[0].idle_timeout = Some(Duration::from_secs(10_800));
                }
            }),
            ("no health checks", |c| c.health_checks.clear()),
            ("health check service", |c| {
                c.health_checks[0].service.name.push('x')
            }),
            ("health check policy", |c| {
                c.health_checks[0].policy.name.push('x')
            }),
            ("health check endpoints", |c| {
                c.health_checks[0].endpoints.clear()
            }),
            ("no active check", |c| c.health_checks[0].active = None),
            ("interval", |c| {
                active_of(c, 0).interval += Duration::from_secs(1)
            }),
            ("timeout", |c| {
                active_of(c, 0).timeout += Duration::from_millis(1)
            }),
            ("healthy threshold", |c| {
                active_of(c, 0).healthy_threshold += 1
            }),
            ("unhealthy threshold", |c| {
                active_of(c, 0).unhealthy_threshold += 1
            }),
            ("probe port", |c| active_of(c, 0).port = Some(5353)),
            ("udp payload", |c| udp_of(c).0.push(b'!')),
            ("no expected reply", |c| *udp_of(c).1 = None),
            ("match", |c| {
                if let Some(e) = udp_of(c).1 {
                    e.matching = PayloadMatch::Prefix;
                }
            }),
            ("expected payload", |c| {
                if let Some(e) = udp_of(c).1 {
                    e.payload.push(b'!');
                }
            }),
            ("dns name", |c| dns_of(c).0.push('x')),
            ("qtype", |c| *dns_of(c).1 = 28),
            ("rcodes", |c| dns_of(c).2 .0 |= 8),
            ("rd", |c| *dns_of(c).3 = true),
            ("no passive check", |c| c.health_checks[0].passive = None),
            ("consecutive failures", |c| {
                passive_of(c).consecutive_failures += 1
            }),
            ("base ejection", |c| {
                passive_of(c).base_ejection_time += Duration::from_secs(1)
            }),
            ("max ejection", |c| passive_of(c).max_ejection_percent += 1),
            ("panic threshold", |c| {
                c.health_checks[0].panic_threshold_percent += 1
            }),
        ];
        let mut seen = vec![(String::from("base"), config::forwarding_digest(&base))];
        for (what, edit) in edits {
            let mut changed = base.clone();
            edit(&mut changed);
            assert_ne!(changed, base, "{what}: the edit changed nothing");
            let d = config::forwarding_digest(&changed);
            if let Some((other, _)) = seen.iter().find(|(_, s)| *s == d) {
                panic!("{what} has the digest of {other}");
            }
            seen.push((what.to_owned(), d));
        }
    }
}

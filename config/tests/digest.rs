//! Digests of the compiled result: stable, order-independent, and sensitive to every
//! field of the forwarding config.

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::time::Duration;

    use config::{compile, load_paths, load_str, CompileParams, Compiled};
    use pipelines::spec::{ForwardingConfig, HashKey, NatMode};

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
            "1a7f9e28fe88a8e2b5c3eb4f3d44ab029d9c9a1b64b9e2904ae55bb291db74a1"
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
        let base = compiled(&dns_example_text().join("---\n")).forwarding;
        assert!(!base.listeners.is_empty());
        type Edit = fn(&mut ForwardingConfig);
        let edits: [(&str, Edit); 17] = [
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

//! Policies end to end: the exit status of `udplb check`, the documents the management
//! API prints, the 16-ancestor limit, and the Maglev sizes the fast path will build.

mod support;

#[cfg(test)]
mod tests {
    use crate::support::{check_fixture, fixtures_dir};
    use std::fs;
    use std::path::PathBuf;

    use config::check::{run, CheckOptions, OutputFormat};
    use config::{compile, load_paths, load_str, status_json, status_yaml, CompileParams};
    use pipelines::spec::HashKey;
    use pipelines::tables::{DataplaneParams, Tables};
    use serde::Deserialize;

    fn fixture(name: &str) -> PathBuf {
        fixtures_dir().join(name).join("input.yaml")
    }

    #[test]
    fn a_policy_not_accepted_is_unhealthy() {
        for healthy in [
            "policy-backend-accepted",
            "policy-traffic-gateway",
            "policy-traffic-listener-section",
            "policy-precedence",
            "policy-overrides-annotations",
            "policy-backend-weak-udp-check",
            "policy-backend-dns-check",
            "session-affinity-client-ip",
            "session-affinity-mixed",
            "session-affinity-policy-override",
        ] {
            let out = check_fixture(healthy);
            assert_eq!(out.exit_code, 0, "{healthy}: {}", out.stderr_summary);
        }
        let accepted = check_fixture("policy-backend-accepted");
        assert_eq!(
            accepted.stderr_summary,
            "1 gatewayclass(es), 1 gateway(s), 1 UDPRoute(s), 1 policy(ies): all accepted"
        );
        let conflicts = check_fixture("policy-conflicts");
        assert_eq!(conflicts.exit_code, 1);
        assert_eq!(
            conflicts.stderr_summary,
            "1 gatewayclass(es), 1 gateway(s), 1 UDPRoute(s), 8 policy(ies): 4 condition(s) \
             not healthy, first: UDPBackendPolicy apps/dns-port-again ancestor Gateway \
             apps/gw: Accepted=False (Conflicted)"
        );
        let missing = check_fixture("policy-target-not-found");
        assert_eq!(missing.exit_code, 1);
        assert!(
            missing.stderr_summary.ends_with(
                "first: UDPBackendPolicy apps/missing-service ancestor Service apps/dnz: \
                 Accepted=False (TargetNotFound)"
            ),
            "{}",
            missing.stderr_summary
        );
        let invalid = check_fixture("policy-invalid-values");
        assert_eq!(invalid.exit_code, 1);
        assert!(
            invalid.stderr_summary.contains("Accepted=False (Invalid)"),
            "{}",
            invalid.stderr_summary
        );
    }

    /// What `GET /v1/status` serves is `status_yaml` / `status_json` of the compile: the
    /// policies follow the routes, as `udplb check` prints them, in both formats.
    #[test]
    fn policies_are_status_documents_in_yaml_and_json() {
        let set = load_paths(&[fixture("policy-precedence")]).expect("loads");
        let status = compile(&set, &CompileParams::default()).status;
        let yaml: Vec<serde_json::Value> =
            serde_norway::Deserializer::from_str(&status_yaml(&status))
                .map(|d| serde_json::Value::deserialize(d).expect("YAML"))
                .collect();
        let json: Vec<serde_json::Value> =
            serde_json::from_str(&status_json(&status)).expect("JSON");
        assert_eq!(yaml, json);
        let kinds: Vec<(&str, &str)> = json
            .iter()
            .map(|d| {
                (
                    d["kind"].as_str().expect("kind"),
                    d["metadata"]["name"].as_str().expect("name"),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("GatewayClass", "udplb"),
                ("Gateway", "gw"),
                ("UDPRoute", "game-route"),
                ("UDPRoute", "late"),
                ("UDPRoute", "voice-route"),
                ("UDPTrafficPolicy", "game-listener"),
                ("UDPTrafficPolicy", "gateway-wide"),
                ("UDPTrafficPolicy", "late-route"),
                ("UDPTrafficPolicy", "voice-route"),
            ]
        );
        let policy = &json[5];
        assert_eq!(policy["apiVersion"], "udplb.io/v1alpha1");
        assert_eq!(policy["metadata"]["namespace"], "apps");
        let ancestor = &policy["status"]["ancestors"][0];
        assert_eq!(ancestor["controllerName"], "udplb.io/appliance");
        assert_eq!(
            ancestor["ancestorRef"],
            serde_json::json!({"group": "gateway.networking.k8s.io", "kind": "Gateway",
                "namespace": "apps", "name": "gw", "sectionName": "game"})
        );
        assert_eq!(ancestor["conditions"][0]["type"], "Accepted");
        assert_eq!(ancestor["conditions"][0]["status"], "True");

        let json_check = run(
            &[fixture("policy-precedence")],
            &CheckOptions {
                output: OutputFormat::Json,
                ..CheckOptions::default()
            },
        );
        assert_eq!(
            serde_json::from_str::<Vec<serde_json::Value>>(&json_check.stdout).expect("JSON"),
            json
        );
    }

    /// A policy whose targets have more ancestors than status lists (16) is not applied
    /// anywhere, and says so on the 16 it lists.
    #[test]
    fn more_than_sixteen_ancestors_make_a_policy_invalid() {
        let listeners: Vec<String> = (0..17)
            .map(|i| format!("    - {{name: l{i}, protocol: UDP, port: {}}}", 6000 + i))
            .collect();
        let parents: Vec<String> = (0..17)
            .map(|i| format!("{{name: gw, sectionName: l{i}}}"))
            .collect();
        let yaml = format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: udplb}}
spec: {{controllerName: udplb.io/appliance}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: apps}}
spec:
  gatewayClassName: udplb
  addresses: [{{value: 198.18.0.120}}]
  listeners:
{}
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {{name: wide, namespace: apps}}
spec:
  parentRefs: [{}]
  rules: [{{backendRefs: [{{name: svc, port: 53}}]}}]
---
apiVersion: udplb.io/v1alpha1
kind: UDPTrafficPolicy
metadata: {{name: wide, namespace: apps}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: UDPRoute, name: wide}}]
  hashKey: source-ip
",
            listeners.join("\n"),
            parents.join(", ")
        );
        let set = load_str("wide.yaml", &yaml).expect("loads");
        let compiled = compile(&set, &CompileParams::default());
        let ancestors = &compiled.status.policies[0].status.ancestors;
        assert_eq!(ancestors.len(), 16);
        for a in ancestors {
            let c = &a.conditions[0];
            assert_eq!((c.status.as_str(), c.reason.as_str()), ("False", "Invalid"));
            assert!(
                c.message
                    .contains("the policy has 17 ancestors and status lists at most 16"),
                "{}",
                c.message
            );
        }
        assert_eq!(compiled.forwarding.listeners.len(), 17);
        assert!(compiled
            .forwarding
            .listeners
            .iter()
            .all(|l| l.options.hash_key.is_none()));
        // With 16 listeners it applies everywhere.
        let fewer = yaml
            .replace("    - {name: l16, protocol: UDP, port: 6016}\n", "")
            .replace(", {name: gw, sectionName: l16}", "");
        let compiled = compile(
            &load_str("w.yaml", &fewer).expect("loads"),
            &CompileParams::default(),
        );
        let ancestors = &compiled.status.policies[0].status.ancestors;
        assert_eq!(ancestors.len(), 16);
        assert!(ancestors.iter().all(|a| a.conditions[0].is_true()));
        assert_eq!(compiled.forwarding.listeners.len(), 16);
        assert!(compiled
            .forwarding
            .listeners
            .iter()
            .all(|l| l.options.hash_key == Some(HashKey::SourceIp)));
    }

    /// Whatever the policies say, the compiled config builds tables: a listener Maglev
    /// size is always prime and large enough for its route (too small ones are refused in
    /// status, not passed on).
    #[test]
    fn every_fixture_builds_tables_with_the_sizes_it_asks_for() {
        let root = fixtures_dir();
        let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
            .expect("fixtures")
            .map(|e| e.expect("entry").path())
            .collect();
        dirs.sort();
        let mut sized = 0;
        for dir in dirs {
            let set = load_paths(&[dir.join("input.yaml")]).expect("loads");
            let compiled = compile(&set, &CompileParams::default());
            let tables = Tables::build(&compiled.forwarding, &DataplaneParams::default())
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for (spec, built) in compiled.forwarding.listeners.iter().zip(tables.listeners()) {
                let (Some(size), Some(route)) = (spec.options.maglev_size, &built.route) else {
                    continue;
                };
                assert_eq!(
                    route.maglev.slots().len(),
                    size as usize,
                    "{}",
                    dir.display()
                );
                sized += 1;
            }
        }
        assert!(sized >= 2, "the fixtures exercise listener sizes ({sized})");
    }

    /// The smallest size a route accepts is the first prime at or above 100 × its Maglev
    /// entries; one below it is refused in status and the appliance size is used.
    #[test]
    fn the_size_limit_is_the_one_tables_enforce() {
        let yaml = fs::read_to_string(fixture("policy-invalid-values")).expect("fixture");
        // 3 endpoints need 300 slots: 307 is the first prime above.
        for (size, accepted) in [(307, true), (293, false)] {
            let text = yaml.replace("maglevTableSize: 211", &format!("maglevTableSize: {size}"));
            let compiled = compile(
                &load_str("s.yaml", &text).expect("loads"),
                &CompileParams::default(),
            );
            let report = compiled
                .status
                .policies
                .iter()
                .find(|p| p.name == "too-small")
                .expect("policy");
            let on_gw = &report.status.ancestors[0].conditions[0];
            assert_eq!(on_gw.is_true(), accepted, "{size}: {}", on_gw.message);
            let dns = &compiled.forwarding.listeners[0];
            assert_eq!(dns.key.gateway, "gw");
            assert_eq!(dns.options.maglev_size, accepted.then_some(size));
            Tables::build(&compiled.forwarding, &DataplaneParams::default())
                .unwrap_or_else(|e| panic!("{size}: {e}"));
        }
    }
}

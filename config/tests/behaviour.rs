//! Whole-crate behaviours: order independence, version equivalence, the shipped examples
//! and `udplb check` exit codes.

mod support;

#[cfg(test)]
mod tests {
    use crate::support::{check_fixture, fixture_params, fixtures_dir, manifest_dir};
    use std::fs;
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use config::check::{run, CheckOptions, OutputFormat};
    use config::{compile, load_paths, load_str, status_yaml, CompileParams, Compiled};
    use pipelines::spec::WEIGHT_SCALE;
    use proptest::prelude::*;

    /// Every fixture's input, split into its YAML documents.
    fn fixture_documents() -> &'static Vec<(String, Vec<String>)> {
        static DOCS: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
        DOCS.get_or_init(|| {
            let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures_dir())
                .expect("fixtures")
                .map(|e| e.expect("entry").path())
                .collect();
            dirs.sort();
            dirs.iter()
                .map(|d| {
                    let text = fs::read_to_string(d.join("input.yaml")).expect("input.yaml");
                    let docs = format!("\n{text}")
                        .split("\n---\n")
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    (d.display().to_string(), docs)
                })
                .collect()
        })
    }

    fn compile_docs(name: &str, docs: &[&String]) -> Compiled {
        let text = docs
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join("\n---\n");
        let set = load_str(name, &text).unwrap_or_else(|e| panic!("{name}: {e}"));
        compile(&set, &fixture_params())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Document order never changes the forwarding config or the status.
        #[test]
        fn shuffling_documents_changes_nothing(
            (index, order) in (0..fixture_documents().len()).prop_flat_map(|i| {
                let n = fixture_documents()[i].1.len();
                (Just(i), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
            })
        ) {
            let (name, docs) = &fixture_documents()[index];
            let original = compile_docs(name, &docs.iter().collect::<Vec<_>>());
            let shuffled = compile_docs(name, &order.iter().map(|&i| &docs[i]).collect::<Vec<_>>());
            prop_assert_eq!(original, shuffled);
        }
    }

    #[test]
    fn v1_and_v1alpha2_parse_to_the_same_model() {
        let route = |version: &str| {
            format!(
            "apiVersion: gateway.networking.k8s.io/{version}
kind: UDPRoute
metadata: {{name: dns, namespace: default, generation: 4}}
spec:
  parentRefs: [{{name: gw, sectionName: dns, port: 53}}]
  rules: [{{name: only, backendRefs: [{{name: a, port: 53, weight: 3}}, {{name: b, namespace: x, port: 53}}]}}]
"
        )
        };
        let v1 = load_str("r.yaml", &route("v1")).expect("v1");
        let alpha = load_str("r.yaml", &route("v1alpha2")).expect("v1alpha2");
        assert_eq!(v1.udp_routes.len(), 1);
        assert_eq!(v1.udp_routes[0].spec, alpha.udp_routes[0].spec);
        assert_eq!(v1.udp_routes[0].meta, alpha.udp_routes[0].meta);
        assert_eq!(
            alpha.udp_routes[0].api_version,
            "gateway.networking.k8s.io/v1alpha2"
        );
    }

    #[test]
    fn bare_parent_ref_gets_defaults_in_status() {
        let set =
            load_paths(&[manifest_dir().join("tests/fixtures/attach-all-listeners/input.yaml")])
                .expect("loads");
        let compiled = compile(&set, &fixture_params());
        let route = &compiled.status.routes[0];
        let parent = &route.status.parents[0].parent_ref;
        assert_eq!(
            (
                parent.group.as_str(),
                parent.kind.as_str(),
                parent.namespace.as_str()
            ),
            ("gateway.networking.k8s.io", "Gateway", "infra")
        );
        assert_eq!(
            route.status.parents[0].controller_name,
            "udplb.io/appliance"
        );
    }

    #[test]
    fn dns_example_passes_check_and_serves_both_families() {
        let dir = manifest_dir().join("examples/dns");
        let outcome = run(std::slice::from_ref(&dir), &CheckOptions::default());
        assert_eq!(
            outcome.exit_code, 0,
            "{}\n{}",
            outcome.stderr_summary, outcome.stdout
        );
        assert_eq!(
            outcome.stderr_summary,
            "1 gatewayclass(es), 1 gateway(s), 1 UDPRoute(s): all accepted"
        );

        let compiled = compile(
            &load_paths(&[dir]).expect("loads"),
            &CompileParams::default(),
        );
        assert_eq!(compiled.status, {
            let out = status_yaml(&compiled.status);
            assert_eq!(out, outcome.stdout, "check prints status_yaml");
            compiled.status.clone()
        });
        let listeners = &compiled.forwarding.listeners;
        let vips: Vec<String> = listeners
            .iter()
            .map(|l| format!("{}:{}", l.vip, l.port))
            .collect();
        assert_eq!(vips, ["198.18.0.10:53", "2001:2::10:53"]);
        for l in listeners {
            let route = l.route.as_ref().expect("route attached");
            assert_eq!(route.dropped_weight, 0);
            let want: Vec<SocketAddr> = if l.vip.is_ipv4() {
                ["198.18.1.11:53", "198.18.1.12:53", "198.18.1.13:53"]
                    .iter()
                    .map(|a| a.parse().expect("literal"))
                    .collect()
            } else {
                [
                    "[2001:2:0:1::11]:53",
                    "[2001:2:0:1::12]:53",
                    "[2001:2:0:1::13]:53",
                ]
                .iter()
                .map(|a| a.parse().expect("literal"))
                .collect()
            };
            let got: Vec<SocketAddr> = route.backends.iter().map(|b| b.addr).collect();
            assert_eq!(got, want);
            assert!(route
                .backends
                .iter()
                .all(|b| b.weight == WEIGHT_SCALE / 3 && !b.draining));
            assert_eq!(
                l.options.idle_timeout,
                Some(std::time::Duration::from_secs(30))
            );
        }
    }

    #[test]
    fn game_example_splits_70_30() {
        let dir = manifest_dir().join("examples/game");
        let outcome = run(std::slice::from_ref(&dir), &CheckOptions::default());
        assert_eq!(outcome.exit_code, 0, "{}", outcome.stderr_summary);
        let compiled = compile(
            &load_paths(&[dir]).expect("loads"),
            &CompileParams::default(),
        );
        let route = compiled.forwarding.listeners[0]
            .route
            .as_ref()
            .expect("route");
        let weights: Vec<u64> = route.backends.iter().map(|b| b.weight).collect();
        assert_eq!(
            weights,
            [35 * WEIGHT_SCALE, 35 * WEIGHT_SCALE, 30 * WEIGHT_SCALE]
        );
        assert_eq!(compiled.forwarding.listeners[0].port, 7777);
    }

    #[test]
    fn check_exit_codes() {
        let fixtures = fixtures_dir();
        let bad_status = run(
            &[fixtures.join("missing-service/input.yaml")],
            &CheckOptions::default(),
        );
        assert_eq!(bad_status.exit_code, 1);
        assert!(
            bad_status
                .stderr_summary
                .contains("ResolvedRefs=False (BackendNotFound)"),
            "{}",
            bad_status.stderr_summary
        );
        let unreadable = run(&[fixtures.join("no-such-dir")], &CheckOptions::default());
        assert_eq!(unreadable.exit_code, 2);
        assert!(unreadable.stdout.is_empty());

        let dir = std::env::temp_dir().join(format!("udplb-config-test-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("broken.yaml");
        fs::write(
            &file,
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: x}]}\n",
        )
        .expect("write");
        let invalid = run(std::slice::from_ref(&dir), &CheckOptions::default());
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(invalid.exit_code, 2);
        assert!(
            invalid
                .stderr_summary
                .contains("broken.yaml: document 1: Service default/a: spec.ports[0].port"),
            "{}",
            invalid.stderr_summary
        );
    }

    /// GatewayClass conditions count in the exit status: an unsupported CRD bundle version
    /// or a refused class is unhealthy (1); a supported version is healthy (0), and so is
    /// a version left Unknown because the input has no CRDs.
    #[test]
    fn gateway_class_conditions_decide_the_exit_code() {
        let check = check_fixture;

        let unsupported = check("crds-unsupported-version");
        assert_eq!(unsupported.exit_code, 1, "{}", unsupported.stderr_summary);
        assert_eq!(
            unsupported.stderr_summary,
            "1 gatewayclass(es), 1 gateway(s), 1 UDPRoute(s): 1 condition(s) not healthy, \
             first: GatewayClass udplb: SupportedVersion=False (UnsupportedVersion)"
        );

        let refused = check("gatewayclass-invalid-parameters");
        assert_eq!(refused.exit_code, 1, "{}", refused.stderr_summary);
        assert!(
            refused
                .stderr_summary
                .ends_with("first: GatewayClass udplb-tuned: Accepted=False (InvalidParameters)"),
            "{}",
            refused.stderr_summary
        );

        for healthy in [
            "crds-supported-version",
            "kubectl-dump-cluster",
            "gatewayclass-unused",
            "gatewayclass-two-of-ours",
        ] {
            let out = check(healthy);
            assert_eq!(out.exit_code, 0, "{healthy}: {}", out.stderr_summary);
            assert!(out.stdout.contains("kind: GatewayClass"), "{healthy}");
        }
        let unused = check("gatewayclass-unused");
        assert_eq!(
            unused.stderr_summary,
            "1 gatewayclass(es), 0 gateway(s), 0 UDPRoute(s): all accepted"
        );
    }

    /// Only Gateway API CRDs are kept, with the fields udplb reads; the rest of a CRD is
    /// ignored however large.
    #[test]
    fn only_gateway_api_crds_are_kept() {
        let set =
            load_paths(&[manifest_dir().join("tests/fixtures/crds-supported-version/input.yaml")])
                .expect("loads");
        let mut kinds: Vec<(&str, &str, Option<&str>)> = set
            .custom_resource_definitions
            .iter()
            .map(|c| (c.group.as_str(), c.kind.as_str(), c.bundle_version()))
            .collect();
        kinds.sort_unstable();
        let g = "gateway.networking.k8s.io";
        assert_eq!(
            kinds,
            [
                (g, "Gateway", Some("v1.6.1")),
                (g, "GatewayClass", Some("v1.6.1")),
                (g, "ReferenceGrant", Some("v1.6.1")),
                (g, "UDPRoute", Some("v1.6.1")),
                (
                    "gateway.networking.x-k8s.io",
                    "XBackendTrafficPolicy",
                    Some("v1.6.1")
                ),
            ]
        );
        assert_eq!(set.custom_resource_definitions[0].meta.namespace, "");
    }

    #[test]
    fn json_output_has_the_same_content_as_yaml() {
        let dir = manifest_dir().join("tests/fixtures/weighted-70-30-0/input.yaml");
        let yaml = run(std::slice::from_ref(&dir), &CheckOptions::default());
        let json = run(
            &[dir],
            &CheckOptions {
                output: OutputFormat::Json,
                ..CheckOptions::default()
            },
        );
        let from_yaml: Vec<serde_json::Value> = serde_norway::Deserializer::from_str(&yaml.stdout)
            .map(|d| serde::Deserialize::deserialize(d).expect("yaml"))
            .collect();
        let from_json: Vec<serde_json::Value> =
            serde_json::from_str(&json.stdout).expect("json array");
        assert_eq!(from_yaml, from_json);
        assert_eq!(from_json.len(), 3);
        // GatewayClass first, cluster-scoped, with supportedFeatures as a list of objects.
        assert_eq!(from_json[0]["kind"], "GatewayClass");
        assert!(from_json[0]["metadata"].get("namespace").is_none());
        assert_eq!(
            from_json[0]["status"]["supportedFeatures"],
            serde_json::json!([{"name": "Gateway"}, {"name": "ReferenceGrant"}, {"name": "UDPRoute"}])
        );
    }

    #[test]
    fn controller_name_is_a_parameter() {
        let dir = manifest_dir().join("examples/dns");
        let other = run(
            &[dir],
            &CheckOptions {
                params: CompileParams {
                    controller_name: "example.com/someone-else".into(),
                    ..CompileParams::default()
                },
                ..CheckOptions::default()
            },
        );
        assert_eq!(other.exit_code, 0);
        assert_eq!(
            other.stderr_summary,
            "0 gatewayclass(es), 0 gateway(s), 1 UDPRoute(s) (1 not attached to a Gateway of ours): all accepted"
        );
    }
}

//! Bad input: every problem names file, document, object and field; nothing panics.

#[cfg(test)]
mod tests {
    use config::load::{load_str, LoadError};
    use proptest::prelude::*;

    fn problems(source: &str, yaml: &str) -> Vec<String> {
        match load_str(source, yaml) {
            Ok(_) => panic!("expected an error for:\n{yaml}"),
            Err(LoadError::Invalid(e)) => e.problems.iter().map(ToString::to_string).collect(),
            Err(other) => panic!("unexpected error {other}"),
        }
    }

    const ROUTE_HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {name: dns, namespace: default}
spec:
  parentRefs: [{name: gw}]
";

    #[test]
    fn out_of_range_weight_names_everything() {
        let yaml = format!(
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: x}}\n---\n{ROUTE_HEAD}  rules:\n    - backendRefs:\n        - {{name: a, port: 53}}\n        - {{name: b, port: 53, weight: 1000001}}\n"
    );
        assert_eq!(
        problems("dns.yaml", &yaml),
        ["dns.yaml: document 2: UDPRoute default/dns: spec.rules[0].backendRefs[1].weight: 1000001 is out of range 0..=1000000"]
    );
    }

    #[test]
    fn every_problem_is_listed_not_just_the_first() {
        let yaml = format!(
        "{ROUTE_HEAD}  rules:\n    - backendRefs:\n        - {{name: a, weight: -1}}\n        - {{name: b, port: 65536}}\n"
    );
        assert_eq!(
        problems("r.yaml", &yaml),
        [
            "r.yaml: document 1: UDPRoute default/dns: spec.rules[0].backendRefs[0].weight: -1 is out of range 0..=1000000",
            "r.yaml: document 1: UDPRoute default/dns: spec.rules[0].backendRefs[0].port: Must have port for Service reference",
            "r.yaml: document 1: UDPRoute default/dns: spec.rules[0].backendRefs[1].port: 65536 is out of range 1..=65535",
        ]
    );
    }

    #[test]
    fn wrong_type_names_field_path() {
        let yaml =
            format!("{ROUTE_HEAD}  rules: [{{backendRefs: [{{name: a, port: fifty-three}}]}}]\n");
        let p = problems("t.yaml", &yaml);
        assert_eq!(p.len(), 1);
        assert!(
        p[0].starts_with("t.yaml: document 1: UDPRoute default/dns: spec.rules[0].backendRefs[0].port: invalid type"),
        "{}",
        p[0]
    );
    }

    #[test]
    fn unknown_field_is_rejected() {
        let yaml = format!("{ROUTE_HEAD}  rules: [{{backendRef: [{{name: a, port: 53}}]}}]\n");
        let p = problems("u.yaml", &yaml);
        assert!(
            p[0].contains(
                "UDPRoute default/dns: spec.rules[0].backendRef: unknown field `backendRef`"
            ),
            "{}",
            p[0]
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_document() {
        let p = problems(
            "bad.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\nkind: [unclosed\n",
        );
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("bad.yaml: document 2: not valid YAML"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn list_items_are_located() {
        let yaml = "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Service\n    metadata: {name: ok}\n  - apiVersion: v1\n    kind: Service\n    metadata: {name: bad, namespace: ns}\n    spec: {ports: [{port: 0}]}\n";
        assert_eq!(
        problems("list.yaml", yaml),
        ["list.yaml: document 1, items[1]: Service ns/bad: spec.ports[0].port: 0 is out of range 1..=65535"]
    );
    }

    #[test]
    fn rule_counts_per_version() {
        let rule = "    - backendRefs: [{name: a, port: 53}]\n";
        let v1_two = format!("{ROUTE_HEAD}  rules:\n{rule}{rule}");
        assert!(problems("v1.yaml", &v1_two)[0].contains(
            "spec.rules: has 2 rule(s); UDPRoute gateway.networking.k8s.io/v1 allows exactly one"
        ));
        let v1_zero = format!("{ROUTE_HEAD}  rules: []\n");
        assert!(problems("v1.yaml", &v1_zero)[0].contains("spec.rules: has 0 rule(s)"));
        let alpha = ROUTE_HEAD.replace("/v1\n", "/v1alpha2\n");
        let sixteen = format!("{alpha}  rules:\n{}", rule.repeat(16));
        assert!(load_str("a.yaml", &sixteen).is_ok());
        let seventeen = format!("{alpha}  rules:\n{}", rule.repeat(17));
        assert!(problems("a.yaml", &seventeen)[0]
            .contains("spec.rules: has 17 item(s); between 1 and 16 are allowed"));
        let many_refs = format!(
            "{ROUTE_HEAD}  rules:\n    - backendRefs:\n{}",
            "        - {name: a, port: 53}\n".repeat(17)
        );
        assert!(
            problems("b.yaml", &many_refs)[0].contains("spec.rules[0].backendRefs: has 17 item(s)")
        );
        let no_refs = format!("{ROUTE_HEAD}  rules: [{{backendRefs: []}}]\n");
        assert!(
            problems("b.yaml", &no_refs)[0].contains("spec.rules[0].backendRefs: has 0 item(s)")
        );
    }

    #[test]
    fn duplicate_parent_refs_need_unique_section_names() {
        let head = ROUTE_HEAD.replace("  parentRefs: [{name: gw}]\n", "");
        let rules = "  rules: [{backendRefs: [{name: a, port: 53}]}]\n";
        let one_missing =
            format!("{head}  parentRefs: [{{name: gw, sectionName: a}}, {{name: gw}}]\n{rules}");
        assert!(problems("p.yaml", &one_missing)[0]
            .contains("spec.parentRefs[1].sectionName: sectionName must be specified"));
        let same = format!(
        "{head}  parentRefs: [{{name: gw, sectionName: a}}, {{name: gw, sectionName: a}}]\n{rules}"
    );
        assert!(problems("p.yaml", &same)[0]
            .contains("spec.parentRefs[1].sectionName: sectionName must be unique"));
        let distinct = format!("{head}  parentRefs: [{{name: gw, sectionName: a}}, {{name: gw, sectionName: b}}, {{name: other}}]\n{rules}");
        assert!(load_str("p.yaml", &distinct).is_ok());
        let bad_port = format!("{head}  parentRefs: [{{name: gw, port: 0}}]\n{rules}");
        assert!(problems("p.yaml", &bad_port)[0]
            .contains("spec.parentRefs[0].port: 0 is out of range 1..=65535"));
    }

    #[test]
    fn gateway_schema_rules() {
        let yaml = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra, annotations: {udplb.io/nat-mode: snat}}
spec:
  gatewayClassName: udplb
  addresses: [{value: 198.18.0.1}, {value: 198.18.0.1}, {value: not-an-ip}]
  listeners:
    - {name: a, protocol: UDP, port: 53, hostname: example.com}
    - {name: a, protocol: UDP, port: 54, tls: {mode: Terminate}}
    - name: c
      protocol: UDP
      port: 70000
      allowedRoutes: {namespaces: {from: Selector}}
";
        assert_eq!(
        problems("gw.yaml", yaml),
        [
            "gw.yaml: document 1: Gateway infra/gw: spec.listeners[0].hostname: hostname must not be specified for protocol UDP",
            "gw.yaml: document 1: Gateway infra/gw: spec.listeners[1].name: Listener name must be unique: \"a\" is repeated",
            "gw.yaml: document 1: Gateway infra/gw: spec.listeners[1].tls: tls must not be specified for protocol UDP",
            "gw.yaml: document 1: Gateway infra/gw: spec.listeners[2].port: 70000 is out of range 1..=65535",
            "gw.yaml: document 1: Gateway infra/gw: spec.listeners[2].allowedRoutes.namespaces.selector: required when from is Selector",
            "gw.yaml: document 1: Gateway infra/gw: spec.addresses[1].value: \"198.18.0.1\" is repeated; addresses must be unique",
            "gw.yaml: document 1: Gateway infra/gw: spec.addresses[2].value: \"not-an-ip\" is not an IP address",
            "gw.yaml: document 1: Gateway infra/gw: metadata.annotations[\"udplb.io/nat-mode\"]: \"snat\" is not one of fullnat, preserve-client, dsr",
        ]
    );
        let no_listeners = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec: {gatewayClassName: x, listeners: []}\n";
        assert!(problems("gw.yaml", no_listeners)[0]
            .contains("spec.listeners: has 0 item(s); between 1 and 64"));
    }

    #[test]
    fn duplicates_and_missing_names() {
        let svc = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n";
        let p = problems("d.yaml", &format!("{svc}---\n{svc}"));
        assert_eq!(
            p,
            ["d.yaml: document 2: Service default/a: defined twice; first at d.yaml: document 1"]
        );
        let p = problems(
            "n.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n",
        );
        assert_eq!(
            p,
            ["n.yaml: document 1: Service x/<unnamed>: metadata.name: required"]
        );
        let p = problems("k.yaml", "apiVersion: v1\nmetadata: {name: a}\n");
        assert_eq!(p, ["k.yaml: document 1: kind: required string"]);
    }

    #[test]
    fn unknown_kinds_are_skipped() {
        let set = load_str(
        "x.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {anything: [1]}\n---\n# only a comment\n",
    )
    .expect("unknown kinds are not errors");
        assert!(set.is_empty());
    }

    #[test]
    fn gateway_class_spec_is_strict() {
        let class = |spec: &str| {
            format!("apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: c}}\nspec: {spec}\n")
        };
        assert_eq!(
            problems("c.yaml", &class("{controllerName: udplb.io/appliance, parameterRef: {}}")),
            ["c.yaml: document 1: GatewayClass c: spec.parameterRef: unknown field `parameterRef`, expected one of `controllerName`, `parametersRef`, `description`"]
        );
        let p = problems(
            "c.yaml",
            &class("{controllerName: udplb.io/appliance, parametersRef: {group: \"\", kind: ConfigMap}}"),
        );
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with(
                "c.yaml: document 1: GatewayClass c: spec.parametersRef: missing field `name`"
            ),
            "{}",
            p[0]
        );
    }

    #[test]
    fn custom_resource_definitions_are_read_leniently_but_need_their_identity() {
        // Unknown fields anywhere in a CRD are ignored; a CRD of another project is skipped.
        let set = load_str(
            "crd.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: udproutes.gateway.networking.k8s.io\n  annotations: {gateway.networking.k8s.io/bundle-version: v1.6.0}\n  managedFields: [{manager: kubectl}]\nspec:\n  group: gateway.networking.k8s.io\n  names: {kind: UDPRoute, plural: udproutes, whatever: 1}\n  scope: Namespaced\n  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n  preserveUnknownFields: false\nstatus: {storedVersions: [v1]}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com, names: {kind: Widget}}\n",
        )
        .expect("CRDs load");
        assert_eq!(set.custom_resource_definitions.len(), 1);
        assert_eq!(set.custom_resource_definitions[0].kind, "UDPRoute");
        assert_eq!(
            set.custom_resource_definitions[0].bundle_version(),
            Some("v1.6.0")
        );

        let p = problems(
            "crd.yaml",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gateways.gateway.networking.k8s.io}\nspec: {names: {kind: Gateway}}\n",
        );
        assert_eq!(
            p,
            ["crd.yaml: document 1: CustomResourceDefinition gateways.gateway.networking.k8s.io: spec: missing field `group`"]
        );
        let p = problems(
            "crd.yaml",
            "apiVersion: apiextensions.k8s.io/v1beta1\nkind: CustomResourceDefinition\nmetadata: {name: gateways.gateway.networking.k8s.io}\nspec: {group: gateway.networking.k8s.io, names: {kind: Gateway}}\n",
        );
        assert_eq!(
            p,
            ["crd.yaml: document 1: CustomResourceDefinition gateways.gateway.networking.k8s.io: apiVersion: apiextensions.k8s.io/v1beta1 is not supported for CustomResourceDefinition (supported: apiextensions.k8s.io/v1)"]
        );
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gateways.gateway.networking.k8s.io}\nspec: {group: gateway.networking.k8s.io, names: {kind: Gateway}}\n";
        assert_eq!(
            problems("crd.yaml", &format!("{crd}---\n{crd}")),
            ["crd.yaml: document 2: CustomResourceDefinition gateways.gateway.networking.k8s.io: defined twice; first at crd.yaml: document 1"]
        );
    }

    #[test]
    fn integers_beyond_64_bits_are_out_of_range_and_name_the_field() {
        // Before: "invalid value: integer `18446744073709551616` as u128, expected any YAML
        // value", with no field, and the rest of the stream unread.
        let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: infra}\nspec:\n  gatewayClassName: udplb\n  listeners: [{name: a, port: 53, protocol: UDP}, {name: b, port: 18446744073709551616, protocol: UDP}]\n";
        let route = format!(
            "{ROUTE_HEAD}  rules: [{{backendRefs: [{{name: a, port: 9223372036854775808, weight: 99999999999999999999999}}]}}]\n"
        );
        let service = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: s, generation: 18446744073709551616}\n  spec: {ports: [{port: 53, targetPort: -9223372036854775809}]}\n";
        assert_eq!(
            problems("big.yaml", &format!("{gateway}---\n{route}---\n{service}")),
            [
                "big.yaml: document 1: Gateway infra/gw: spec.listeners[1].port: 18446744073709551616 is out of range 1..=65535",
                "big.yaml: document 2: UDPRoute default/dns: spec.rules[0].backendRefs[0].port: 9223372036854775808 is out of range 1..=65535",
                "big.yaml: document 3, items[0]: Service default/s: metadata.generation: 18446744073709551616 is out of range 0..=9223372036854775807",
            ]
        );
        // A weight alone, and a field without a documented range.
        let route = format!(
            "{ROUTE_HEAD}  rules: [{{backendRefs: [{{name: a, port: 53, weight: 340282366920938463463374607431768211455}}]}}]\n"
        );
        assert_eq!(
            problems("w.yaml", &route),
            ["w.yaml: document 1: UDPRoute default/dns: spec.rules[0].backendRefs[0].weight: 340282366920938463463374607431768211455 is out of range 0..=1000000"]
        );
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 53, targetPort: -9223372036854775809}]}\n";
        assert_eq!(
            problems("s.yaml", service),
            ["s.yaml: document 1: Service default/s: spec.ports[0].targetPort: -9223372036854775809 is out of range 1..=65535"]
        );
        let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e, labels: {a: 18446744073709551616}}\naddressType: IPv4\n";
        assert_eq!(
            problems("e.yaml", slice),
            ["e.yaml: document 1: EndpointSlice default/e: metadata.labels.a: 18446744073709551616 is out of range -9223372036854775808..=9223372036854775807 (integers are 64-bit)"]
        );
        // The session affinity timeout is read, so it has a range.
        let service = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 53}], sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 18446744073709551616}}}\n";
        assert_eq!(
            problems("a.yaml", service),
            ["a.yaml: document 1: Service default/s: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 18446744073709551616 is out of range 1..=86400"]
        );
        // Fields udplb ignores may hold anything.
        let set = load_str(
            "ok.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: [{port: 53}], healthCheckNodePort: 18446744073709551616}\nstatus: {x: -99999999999999999999}\n",
        )
        .expect("ignored fields are ignored");
        assert_eq!(set.services.len(), 1);
    }

    const TRAFFIC_HEAD: &str = "apiVersion: udplb.io/v1alpha1
kind: UDPTrafficPolicy
metadata: {name: t, namespace: apps}
";
    const BACKEND_HEAD: &str = "apiVersion: udplb.io/v1alpha1
kind: UDPBackendPolicy
metadata: {name: b, namespace: apps}
";

    #[test]
    fn policy_schemas_are_strict_and_name_the_field() {
        // A typo, a wrong type, missing fields: the shape is checked at load, with the
        // field path, like Gateway API objects.
        let yaml = format!(
            "{TRAFFIC_HEAD}spec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: gw}}]\n  idleTimout: 1m\n---\n{BACKEND_HEAD}spec:\n  targetRefs: [{{group: \"\", kind: Service, name: dns}}]\n  healthCheck: {{active: {{type: UDP, interval: 3, udp: {{send: {{text: x}}}}}}}}\n---\n{BACKEND_HEAD}spec:\n  targetRefs: [{{group: \"\", kind: Service, name: dns}}]\n---\n{TRAFFIC_HEAD}spec:\n  targetRefs: [{{kind: Gateway, name: gw}}]\n---\n{TRAFFIC_HEAD}spec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: Gateway, name: gw, namespace: other}}]\n"
        );
        let p = problems("p.yaml", &yaml);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(
            p[0].starts_with("p.yaml: document 1: UDPTrafficPolicy apps/t: spec.idleTimout: unknown field `idleTimout`, expected one of"),
            "{}",
            p[0]
        );
        assert!(
            p[1].starts_with("p.yaml: document 2: UDPBackendPolicy apps/b: spec.healthCheck.active.interval: invalid type: integer `3`, expected a string"),
            "{}",
            p[1]
        );
        assert!(
            p[2].starts_with(
                "p.yaml: document 3: UDPBackendPolicy apps/b: spec: missing field `healthCheck`"
            ),
            "{}",
            p[2]
        );
        assert!(
            p[3].starts_with("p.yaml: document 4: UDPTrafficPolicy apps/t: spec.targetRefs[0]: missing field `group`"),
            "{}",
            p[3]
        );
        assert!(
            p[4].starts_with("p.yaml: document 5: UDPTrafficPolicy apps/t: spec.targetRefs[0].namespace: unknown field `namespace`"),
            "{}",
            p[4]
        );
        // No top-level extras either, and only v1alpha1.
        let extra = format!(
            "{TRAFFIC_HEAD}spec: {{targetRefs: [{{group: g, kind: k, name: n}}]}}\nstatuss: {{}}\n"
        );
        assert!(problems("x.yaml", &extra)[0]
            .contains("UDPTrafficPolicy apps/t: statuss: unknown field `statuss`"));
        let version = TRAFFIC_HEAD.replace("v1alpha1", "v1");
        assert_eq!(
            problems("v.yaml", &format!("{version}spec: {{targetRefs: []}}\n")),
            ["v.yaml: document 1: UDPTrafficPolicy apps/t: apiVersion: udplb.io/v1 is not supported for UDPTrafficPolicy (supported: udplb.io/v1alpha1)"]
        );
        // Another group's kind of the same name is not ours: skipped.
        let theirs = TRAFFIC_HEAD.replace("udplb.io/v1alpha1", "example.com/v1");
        assert!(load_str("o.yaml", &format!("{theirs}spec: {{}}\n"))
            .expect("skipped")
            .is_empty());
    }

    #[test]
    fn policy_target_refs_follow_the_gep_713_rules() {
        let refs =
            |list: &str| format!("{TRAFFIC_HEAD}spec:\n  idleTimeout: 1m\n  targetRefs: {list}\n");
        let gw = "{group: gateway.networking.k8s.io, kind: Gateway, name: gw";
        assert_eq!(
            problems("r.yaml", &refs("[]")),
            ["r.yaml: document 1: UDPTrafficPolicy apps/t: spec.targetRefs: has 0 item(s); between 1 and 16 are allowed"]
        );
        let seventeen: Vec<String> = (0..17)
            .map(|i| format!("{gw}, sectionName: l{i}}}"))
            .collect();
        assert!(
            problems("r.yaml", &refs(&format!("[{}]", seventeen.join(", "))))[0]
                .ends_with("spec.targetRefs: has 17 item(s); between 1 and 16 are allowed")
        );
        assert_eq!(
            problems("r.yaml", &refs(&format!("[{gw}, sectionName: a}}, {gw}}}, {gw}, sectionName: a}}]"))),
            [
                "r.yaml: document 1: UDPTrafficPolicy apps/t: spec.targetRefs[1].sectionName: sectionName must be specified when targetRefs includes 2 or more references to the same target (Gateway gw)",
                "r.yaml: document 1: UDPTrafficPolicy apps/t: spec.targetRefs[2]: targetRefs must be unique: Gateway gw section \"a\" is repeated",
            ]
        );
        assert_eq!(
            problems("r.yaml", &refs(&format!("[{gw}}}, {gw}}}]"))),
            ["r.yaml: document 1: UDPTrafficPolicy apps/t: spec.targetRefs[1]: targetRefs must be unique: Gateway gw is repeated"]
        );
        assert_eq!(
            problems("r.yaml", &refs("[{group: \"\", kind: Service, name: \"\", sectionName: \"\"}]")),
            [
                "r.yaml: document 1: UDPTrafficPolicy apps/t: spec.targetRefs[0].name: must not be empty",
                "r.yaml: document 1: UDPTrafficPolicy apps/t: spec.targetRefs[0].sectionName: must not be empty",
            ]
        );
        // Two listeners of one Gateway, and a Gateway and a route of the same name.
        let fine = refs(&format!(
            "[{gw}, sectionName: a}}, {gw}, sectionName: b}}, {{group: gateway.networking.k8s.io, kind: UDPRoute, name: gw}}]"
        ));
        assert_eq!(
            load_str("r.yaml", &fine)
                .expect("valid")
                .udp_traffic_policies
                .len(),
            1
        );
        // Values are not judged at load: a bad one makes the policy Invalid in status.
        let bad_value = format!("{BACKEND_HEAD}spec:\n  targetRefs: [{{group: \"\", kind: Service, name: dns}}]\n  healthCheck: {{panicThreshold: 900}}\n");
        assert_eq!(
            load_str("b.yaml", &bad_value)
                .expect("loads")
                .udp_backend_policies
                .len(),
            1
        );
        // A policy is defined once per namespace/name, like every object.
        assert_eq!(
            problems("d.yaml", &format!("{fine}---\n{fine}")),
            ["d.yaml: document 2: UDPTrafficPolicy apps/t: defined twice; first at d.yaml: document 1"]
        );
    }

    #[test]
    fn session_affinity_follows_the_kubernetes_schema() {
        let service = |spec: &str| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {{ports: [{{port: 53}}], {spec}}}\n")
        };
        assert!(load_str("s.yaml", &service("sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 86400}}")).is_ok());
        assert!(load_str("s.yaml", &service("sessionAffinity: None")).is_ok());
        assert_eq!(
            problems("s.yaml", &service("sessionAffinity: Sticky")),
            ["s.yaml: document 1: Service default/s: spec.sessionAffinity: \"Sticky\" is not one of None, ClientIP"]
        );
        assert_eq!(
            problems("s.yaml", &service("sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}")),
            ["s.yaml: document 1: Service default/s: spec.sessionAffinityConfig.clientIP.timeoutSeconds: 0 is out of range 1..=86400"]
        );
        assert_eq!(
            problems("s.yaml", &service("sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}")),
            ["s.yaml: document 1: Service default/s: spec.sessionAffinityConfig: must not be set when sessionAffinity is None"]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Arbitrary text never panics the loader.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC*") {
            let _ = load_str("fuzz.yaml", &text);
        }

        /// Arbitrary bytes (lossily decoded) never panic the loader.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = load_str("fuzz.yaml", &String::from_utf8_lossy(&bytes));
        }

        /// Mutations of a valid manifest never panic the loader.
        #[test]
        fn mutated_manifests_never_panic(pos in 0usize..400, insert in "[\\[\\]{}:,\\-\\n a-z0-9\"']{0,6}") {
            let base = format!("{ROUTE_HEAD}  rules: [{{backendRefs: [{{name: a, port: 53, weight: 7}}]}}]\n---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: s, labels: {{kubernetes.io/service-name: a}}}}\naddressType: IPv4\nendpoints: [{{addresses: [198.18.0.1]}}]\n");
            let mut at = pos.min(base.len());
            while !base.is_char_boundary(at) { at -= 1; }
            let text = format!("{}{}{}", &base[..at], insert, &base[at..]);
            let _ = load_str("mutated.yaml", &text);
        }
    }
}

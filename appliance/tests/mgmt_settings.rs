//! `appliance.yaml`: the shipped examples parse, unknown fields and bad values are errors that
//! name the field, and every semantic rule reports its field path.

#![allow(clippy::tests_outside_test_module)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use appliance::control::SourceMode;
use appliance::settings::{Device, Settings, SettingsError, SnatReach};
use pipelines::spec::{HashKey, NatMode};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

/// A valid base document; tests append or replace sections.
const BASE: &str = "\
ports:
  - name: lan
    device: net_tap0,iface=udplb0
    addresses: [198.18.0.1/24, \"2001:2::1/64\"]
default_vips: [198.18.0.10]
snat: {ipv4: 198.18.0.2}
";

fn error_text(doc: &str) -> String {
    match Settings::from_str(doc) {
        Ok(_) => panic!("expected an error for:\n{doc}"),
        Err(e) => e.to_string(),
    }
}

/// The error of `BASE` plus `extra`, which must be exactly one semantic error.
fn single_invalid(extra: &str) -> String {
    match Settings::from_str(&format!("{BASE}{extra}")) {
        Err(SettingsError::Invalid(errors)) => {
            assert_eq!(errors.len(), 1, "expected one error, got {errors:?}");
            errors[0].to_string()
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn base_document_is_valid() {
    Settings::from_str(BASE).expect("BASE must be valid");
}

#[test]
fn tap_example_parses_with_the_testbench_topology() {
    let path = example("appliance-tap.yaml");
    let s = Settings::from_file(&path).expect("appliance-tap.yaml");
    assert_eq!(s.ports.len(), 1);
    let port = &s.ports[0];
    assert_eq!(
        port.device,
        Device::Vdev {
            name: "net_tap0".into(),
            args: Some("iface=udplb0".into())
        }
    );
    let addrs: Vec<String> = port.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(
        addrs,
        [
            "198.18.0.1/24",
            "198.18.1.1/24",
            "198.19.0.1/24",
            "2001:2::1/64",
            "2001:2:0:1::1/64",
            "2001:2:0:100::1/64"
        ]
    );
    assert_eq!(s.default_vips, [ip("198.18.0.10"), ip("2001:2::10")]);
    assert_eq!(s.snat.ipv4, Some("198.18.0.2".parse().expect("ip")));
    assert_eq!(s.snat.ipv6, Some("2001:2::2".parse().expect("ip")));
    assert_eq!(s.eal_args[..3], ["--no-huge", "-m", "512"]);
    // Relative manifest paths resolve against the settings file's directory.
    assert_eq!(
        s.manifests.paths,
        [example("").join("../../config/examples/dns/")]
    );
    assert_eq!(s.manifests.source, SourceMode::Both, "the short form");
    assert_eq!(s.manifests.state_dir, None);
    assert_eq!(s.management.listen.to_string(), "127.0.0.1:9180");
}

#[test]
fn pci_example_parses() {
    let s = Settings::from_file(&example("appliance-pci.yaml")).expect("appliance-pci.yaml");
    assert!(matches!(s.ports[0].device, Device::Pci { .. }));
    assert_eq!(s.workers.lcores, [2, 3]);
    assert_eq!(s.queues_per_port(), 2);
    assert_eq!(s.routes.len(), 3);
    assert_eq!(s.flows.idle_timeout.0, Duration::from_secs(60));
    assert_eq!(s.nat_mode, NatMode::FullNat);
    assert_eq!(s.hash_key, HashKey::FiveTuple);
    assert_eq!(
        s.management.token_file.as_deref(),
        Some(Path::new("/etc/udplb/token"))
    );
    assert_eq!(s.manifests.source, SourceMode::Both);
    assert_eq!(s.manifests.paths, [PathBuf::from("/etc/udplb/manifests/")]);
    assert_eq!(
        s.manifests.state_dir.as_deref(),
        Some(Path::new("/var/lib/udplb"))
    );
    // The SNAT addresses sit on the backends' link: port "backends" answers for them.
    assert_eq!(s.ports[1].name, "backends");
    for snat in [ip("198.18.128.2"), ip("2001:2:0:80::2")] {
        assert_eq!(s.snat_reach(snat), Some(SnatReach::OnLink { port: 1 }));
    }
    let eal = s.eal_arguments();
    assert_eq!(
        eal,
        [
            "-l",
            "1,2,3",
            "--main-lcore",
            "1",
            "-a",
            "0000:03:00.0",
            "-a",
            "0000:03:00.1",
            "--in-memory",
            "-n",
            "4"
        ]
    );
}

#[test]
fn unknown_fields_are_named() {
    let top = error_text(&format!("{BASE}worker: {{lcores: [1]}}\n"));
    assert!(top.contains("unknown field `worker`"), "{top}");
    let nested = error_text(&format!("{BASE}flows: {{idle_timeot: 30s}}\n"));
    assert!(
        nested.starts_with("flows: unknown field `idle_timeot`"),
        "{nested}"
    );
    let in_list = error_text(
        "ports:\n  - name: a\n    device: net_null0\n  - name: b\n    device: net_null1\n    mtuu: 9000\n",
    );
    assert!(
        in_list.starts_with("ports[1]: unknown field `mtuu`"),
        "{in_list}"
    );
}

#[test]
fn bad_values_are_named_with_their_path() {
    let cases = [
        (
            "ports:\n  - name: a\n    device: net_null0\n  - name: b\n    device: net_null1\n    addresses: [198.18.0.1/33]\n",
            "ports[1].addresses[0]: \"198.18.0.1/33\": prefix length out of range",
        ),
        (
            "ports:\n  - {name: a, device: eth0}\n",
            "ports[0].device: \"eth0\": expected a PCI address",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, mac: \"02:00:00:00:00\"}\n",
            "ports[0].mac: \"02:00:00:00:00\": expected a MAC address",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\nflows: {idle_timeout: 30}\n",
            "flows.idle_timeout: \"30\": expected a number and a unit",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\nsnat: {ports: 2000-1000}\n",
            "snat.ports: \"2000-1000\": the first port is above the last",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\nnat_mode: snat\n",
            "nat_mode: \"snat\" is not one of fullnat, preserve-client, dsr",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\nhash_key: 4-tuple\n",
            "hash_key: \"4-tuple\" is not one of 5-tuple, source-ip-port, source-ip",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\ndefault_vips: [198.18.0.300]\n",
            "default_vips[0]: invalid IP address syntax",
        ),
    ];
    for (doc, expected) in cases {
        let text = error_text(doc);
        assert!(
            text.starts_with(expected),
            "for\n{doc}\nexpected {expected:?}\ngot {text:?}"
        );
    }
}

#[test]
fn each_rule_reports_its_field() {
    let cases = [
        (
            "maglev: {table_size: 65536}\n",
            "maglev.table_size: 65536 is not prime (the next prime is 65537)",
        ),
        (
            "maglev: {table_size: 16777259}\n",
            "maglev.table_size: 16777259 is too large (at most 16777216)",
        ),
        (
            "routes: [{prefix: 0.0.0.0/0, via: 198.18.0.254, port: wan}]\n",
            "routes[0].port: no port named \"wan\"",
        ),
        (
            "routes: [{prefix: 0.0.0.0/0, via: 198.19.0.254, port: lan}]\n",
            "routes[0].via: 198.19.0.254 is not inside any address prefix of port \"lan\"",
        ),
        (
            "routes: [{prefix: 198.19.0.1/16, via: 198.18.0.254, port: lan}]\n",
            "routes[0].prefix: 198.19.0.1/16: host bits are set (did you mean 198.19.0.0/16?)",
        ),
        (
            "routes: [{prefix: \"::/0\", via: 198.18.0.254, port: lan}]\n",
            "routes[0].via: 198.18.0.254 is not of the same IP family as prefix ::/0",
        ),
        (
            "workers: {lcores: []}\n",
            "workers.lcores: at least one worker lcore is required",
        ),
        (
            "workers: {lcores: [1, 2, 1]}\n",
            "workers.lcores[2]: lcore 1 is listed twice",
        ),
        (
            "workers: {lcores: [0]}\n",
            "workers.lcores[0]: lcore 0 is the main lcore (workers.main_lcore)",
        ),
        (
            "workers: {burst: 0}\n",
            "workers.burst: 0 is out of range (1 to 32)",
        ),
        (
            "workers: {idle_backoff_us: 2000000}\n",
            "workers.idle_backoff_us: 2000000 is out of range (0 to 1000000)",
        ),
        (
            "flows: {capacity: 0}\n",
            "flows.capacity: 0 is out of range (1 to 268435456)",
        ),
        (
            "flows: {idle_timeout: 0s}\n",
            "flows.idle_timeout: 0s is out of range (1ms to 24h)",
        ),
        (
            "flows: {idle_timeout: 25h}\n",
            "flows.idle_timeout: 25h is out of range (1ms to 24h)",
        ),
        (
            "controller_name: udplb\n",
            "controller_name: \"udplb\": expected DOMAIN/PATH, e.g. \"udplb.io/appliance\"",
        ),
        (
            "slow_path: {queue_depth: 0}\n",
            "slow_path.queue_depth: 0 is out of range (1 to 1048576)",
        ),
        (
            "eal_args: [--no-huge, -l, \"0-3\"]\n",
            "eal_args[1]: \"-l\" is derived from workers.lcores; remove it",
        ),
        (
            "eal_args: [\"--vdev=net_null0\"]\n",
            "eal_args[0]: \"--vdev=net_null0\" is derived from ports[].device; remove it",
        ),
        (
            "neighbors: [{ip: 198.18.0.5, mac: \"01:00:5e:00:00:01\"}]\n",
            "neighbors[0].mac: 01:00:5e:00:00:01 is not a unicast address",
        ),
        (
            "neighbors: [{ip: 198.18.0.5, mac: \"02:00:00:00:00:05\"}, {ip: 198.18.0.5, mac: \"02:00:00:00:00:06\"}]\n",
            "neighbors[1].ip: 198.18.0.5 is already listed at neighbors[0]",
        ),
        (
            "neighbors: [{ip: 224.0.0.1, mac: \"02:00:00:00:00:05\"}]\n",
            "neighbors[0].ip: 224.0.0.1 is a multicast address",
        ),
    ];
    for (extra, expected) in cases {
        assert_eq!(single_invalid(extra), expected, "for {extra}");
    }
}

#[test]
fn port_rules_report_their_field() {
    let cases = [
        ("ports: []\n", "ports: at least one port is required"),
        (
            "ports:\n  - {name: \"lan 1\", device: net_null0}\n",
            "ports[0].name: \"lan 1\": use letters, digits, '_', '-' or '.' (it is a metrics label)",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\n  - {name: a, device: net_null1}\n",
            "ports[1].name: \"a\" is already the name of ports[0]",
        ),
        (
            "ports:\n  - {name: a, device: \"net_tap0,iface=x\"}\n  - {name: b, device: \"net_tap0,iface=y\"}\n",
            "ports[1].device: \"net_tap0\" is already the device of ports[0]",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, mac: \"ff:ff:ff:ff:ff:ff\"}\n",
            "ports[0].mac: ff:ff:ff:ff:ff:ff is not a unicast address",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, mtu: 60}\n",
            "ports[0].mtu: 60 is out of range (68 to 9702)",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, mtu: 1000, addresses: [\"2001:2::1/64\"]}\n",
            "ports[0].mtu: 1000 is out of range (1280 to 9702; the port has IPv6 addresses)",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, addresses: [198.18.0.1/24]}\n  - {name: b, device: net_null1, addresses: [198.18.0.1/16]}\n",
            "ports[1].addresses[0]: 198.18.0.1 is already assigned at ports[0].addresses[0]",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, addresses: [0.0.0.0/0]}\n",
            "ports[0].addresses[0]: 0.0.0.0 is the unspecified address",
        ),
        (
            "ports:\n  - {name: a, device: net_null0, addresses: [198.18.0.1/24]}\ndefault_vips: [198.18.0.1]\nsnat: {ipv4: 198.18.0.2}\n",
            "default_vips[0]: 198.18.0.1 is already assigned at ports[0].addresses[0]",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\ndefault_vips: [\"2001:2::10\"]\n",
            "snat.ipv6: required: nat_mode is fullnat and default_vips has an IPv6 address",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\nsnat: {ipv4: 127.0.0.1}\n",
            "snat.ipv4: 127.0.0.1 is a loopback address",
        ),
        (
            "ports:\n  - {name: a, device: net_null0}\nsnat: {ports: 0-100}\n",
            "snat.ports: port 0 cannot be a source port",
        ),
    ];
    for (doc, expected) in cases {
        match Settings::from_str(doc) {
            Err(SettingsError::Invalid(errors)) => {
                let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
                assert_eq!(texts, [expected], "for {doc}");
            }
            other => panic!("expected Invalid for {doc}, got {other:?}"),
        }
    }
}

#[test]
fn preserve_client_and_dsr_need_no_snat_and_all_errors_are_listed() {
    let s = Settings::from_str(
        "ports:\n  - {name: a, device: net_null0}\ndefault_vips: [198.18.0.10]\nnat_mode: preserve-client\nhash_key: source-ip\n",
    )
    .expect("preserve-client without snat");
    assert_eq!(s.nat_mode, NatMode::PreserveClient);
    assert_eq!(s.hash_key, HashKey::SourceIp);
    // DSR rewrites no address either.
    let s = Settings::from_str(
        "ports:\n  - {name: a, device: net_null0}\ndefault_vips: [198.18.0.10, \"2001:2::10\"]\nnat_mode: dsr\n",
    )
    .expect("dsr without snat");
    assert_eq!(s.nat_mode, NatMode::Dsr);

    let text = error_text(&format!(
        "{BASE}maglev: {{table_size: 100}}\nworkers: {{burst: 0}}\n"
    ));
    assert_eq!(
        text,
        "workers.burst: 0 is out of range (1 to 32)\n\
         maglev.table_size: 100 is not prime (the next prime is 101)"
    );
}

#[test]
fn from_file_names_the_file_and_token_file_is_read() {
    let dir = std::env::temp_dir().join(format!("udplb-settings-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = RemoveDir(dir.clone());

    let missing = dir.join("missing.yaml");
    let err = Settings::from_file(&missing).expect_err("missing file");
    assert!(matches!(err, SettingsError::Read { .. }));
    assert!(err.to_string().starts_with(&missing.display().to_string()));

    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, format!("{BASE}bogus: 1\n")).expect("write");
    let text = Settings::from_file(&bad).expect_err("bad").to_string();
    assert!(
        text.starts_with(&format!("{}: unknown field `bogus`", bad.display())),
        "{text}"
    );

    let good = dir.join("appliance.yaml");
    std::fs::write(
        &good,
        format!("{BASE}management: {{token_file: token}}\nmanifests: [m/, /abs.yaml]\n"),
    )
    .expect("write");
    let s = Settings::from_file(&good).expect("good");
    assert_eq!(
        s.manifests.paths,
        [dir.join("m/"), PathBuf::from("/abs.yaml")]
    );
    assert_eq!(s.management.token_file, Some(dir.join("token")));
    let err = s.management.read_token().expect_err("no token file yet");
    assert!(
        err.to_string().starts_with("management.token_file: "),
        "{err}"
    );
    write_secret(&dir.join("token"), "  \n");
    let err = s.management.read_token().expect_err("empty token");
    assert!(err.to_string().ends_with("the file is empty"), "{err}");
    write_secret(&dir.join("token"), "s3cret-token\n");
    assert_eq!(
        s.management.read_token().expect("token"),
        Some("s3cret-token".to_owned())
    );
}

/// Writes a token file readable by its owner only.
fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// As ssh does with keys: a token file readable by group or others is refused, naming the
/// field; both token files are read, and read again when asked (SIGHUP).
#[test]
fn token_files_must_be_private_and_are_read_again() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("udplb-settings-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let _cleanup = RemoveDir(dir.clone());
    let good = dir.join("appliance.yaml");
    std::fs::write(
        &good,
        format!("{BASE}management: {{token_file: w, read_token_file: r}}\n"),
    )
    .expect("write");
    let s = Settings::from_file(&good).expect("settings");
    write_secret(&dir.join("w"), "write-1\n");
    write_secret(&dir.join("r"), "read-1\n");
    let tokens = s.management.read_tokens().expect("tokens");
    assert_eq!(
        (tokens.write.as_deref(), tokens.read.as_deref()),
        (Some("write-1"), Some("read-1"))
    );
    // Rotation: the file changes, the next read sees it.
    write_secret(&dir.join("w"), "write-2\n");
    assert_eq!(
        s.management.read_tokens().expect("tokens").write.as_deref(),
        Some("write-2")
    );
    for (file, field) in [
        ("w", "management.token_file"),
        ("r", "management.read_token_file"),
    ] {
        std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o640))
            .expect("chmod");
        let err = s.management.read_tokens().expect_err("group-readable");
        assert_eq!(
            err.to_string(),
            format!(
                "{field}: {}: readable by group or others (mode 0640); chmod 600 it",
                dir.join(file).display()
            )
        );
        write_secret(&dir.join(file), "again\n");
    }
}

#[test]
fn a_non_loopback_api_needs_a_token() {
    assert_eq!(
        error_text(&format!(
            "{BASE}management: {{listen: \"198.18.0.1:9180\"}}\n"
        )),
        "management.token_file: required when management.listen (198.18.0.1) is not a loopback \
         address: anyone who reaches it could replace the configuration"
    );
    assert_eq!(
        error_text(&format!("{BASE}management: {{listen: \"[::]:9180\"}}\n")),
        "management.token_file: required when management.listen (::) is not a loopback \
         address: anyone who reaches it could replace the configuration"
    );
    for ok in [
        "management: {listen: \"127.0.0.1:9180\"}\n",
        "management: {listen: \"[::1]:9180\"}\n",
        "management: {listen: \"198.18.0.1:9180\", token_file: /etc/udplb/token}\n",
    ] {
        Settings::from_str(&format!("{BASE}{ok}")).expect(ok);
    }
}

#[test]
fn manifests_take_a_list_or_a_mapping_with_their_rules() {
    let s = Settings::from_str(&format!(
        "{BASE}manifests: {{source: api, state_dir: /var/lib/udplb}}\n"
    ))
    .expect("api");
    assert_eq!(s.manifests.source, SourceMode::Api);
    let s = Settings::from_str(&format!(
        "{BASE}manifests: {{source: files, paths: [m/]}}\n"
    ))
    .expect("files");
    assert_eq!(s.manifests.paths, [PathBuf::from("m/")]);
    let s = Settings::from_str(BASE).expect("none");
    assert_eq!(s.manifests.source, SourceMode::Both);
    assert!(s.manifests.paths.is_empty());
    for (doc, want) in [
        (
            "manifests: {source: files}",
            "manifests.paths: required with source files",
        ),
        (
            "manifests: {source: api}",
            "manifests.state_dir: required with source api: the set PUT /v1/manifests accepts \
             must survive a restart",
        ),
        (
            "manifests: {source: api, paths: [m/], state_dir: s}",
            "manifests.paths: not read with source api (use source both to serve files until \
             a PUT)",
        ),
        (
            "manifests: {source: files, paths: [m/], state_dir: s}",
            "manifests.state_dir: only used with source api or both (files are their own \
             record)",
        ),
    ] {
        assert_eq!(error_text(&format!("{BASE}{doc}\n")), want, "{doc}");
    }
    let err = Settings::from_str(&format!("{BASE}manifests: {{source: git}}\n"))
        .expect_err("unknown source")
        .to_string();
    assert!(
        err.starts_with("manifests.source: unknown variant `git`"),
        "{err}"
    );
    let err = Settings::from_str(&format!("{BASE}manifests: {{path: [m/]}}\n"))
        .expect_err("unknown field")
        .to_string();
    assert!(err.starts_with("manifests: unknown field `path`"), "{err}");
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const SNAT_UNREACHABLE: &str = "is inside no port's address prefix and no route covers it, so \
    backends' replies to it cannot reach the appliance: put it inside the prefix of the port \
    facing the backends (that port then answers ARP/NDP for it), or add a route covering it \
    and have the network route it to this appliance";

#[test]
fn snat_address_outside_every_prefix_and_route_is_refused() {
    let doc = "ports:\n  - {name: lan, device: net_null0, addresses: [198.18.0.1/24, \"2001:2::1/64\"]}\n\
               snat: {ipv4: 198.19.5.5, ipv6: \"2001:2:0:9::5\"}\n";
    match Settings::from_str(doc) {
        Err(SettingsError::Invalid(errors)) => {
            let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(
                texts,
                [
                    format!("snat.ipv4: 198.19.5.5 {SNAT_UNREACHABLE}"),
                    format!("snat.ipv6: 2001:2:0:9::5 {SNAT_UNREACHABLE}"),
                ]
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    // A route of the other family does not cover it.
    let doc = doc.replace("ipv6: \"2001:2:0:9::5\"", "ipv6: \"2001:2::2\"")
        + "routes: [{prefix: \"::/0\", via: \"2001:2::fe\", port: lan}]\n";
    match Settings::from_str(&doc) {
        Err(SettingsError::Invalid(errors)) => {
            let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert_eq!(texts, [format!("snat.ipv4: 198.19.5.5 {SNAT_UNREACHABLE}")]);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn snat_address_on_a_link_is_owned_by_the_port_with_the_longest_prefix() {
    let s = Settings::from_str(
        "ports:\n\
         \x20 - {name: edge, device: net_null0, addresses: [198.18.0.1/16, \"2001:2::1/48\"]}\n\
         \x20 - {name: backends, device: net_null1, addresses: [198.18.128.1/24, \"2001:2:0:80::1/64\"]}\n\
         snat: {ipv4: 198.18.128.2, ipv6: \"2001:2:0:80::2\"}\n",
    )
    .expect("on-link SNAT addresses are accepted");
    assert_eq!(
        s.snat_addresses(),
        [
            ("snat.ipv4", ip("198.18.128.2")),
            ("snat.ipv6", ip("2001:2:0:80::2"))
        ]
    );
    for (_, snat) in s.snat_addresses() {
        assert_eq!(s.snat_reach(snat), Some(SnatReach::OnLink { port: 1 }));
    }
    // Equal to an own address: that port, which answers for it anyway.
    let own = Settings::from_str(&BASE.replace("198.18.0.2", "198.18.0.1"))
        .expect("SNAT equal to an own address is accepted");
    assert_eq!(
        own.snat_reach(ip("198.18.0.1")),
        Some(SnatReach::OnLink { port: 0 })
    );
}

#[test]
fn snat_address_covered_only_by_a_route_is_accepted_without_an_owner() {
    let s = Settings::from_str(
        "ports:\n  - {name: lan, device: net_null0, addresses: [198.18.0.1/24]}\n\
         routes:\n\
         \x20 - {prefix: 0.0.0.0/0, via: 198.18.0.254, port: lan}\n\
         \x20 - {prefix: 198.19.0.0/16, via: 198.18.0.253, port: lan}\n\
         snat: {ipv4: 198.19.5.5}\n",
    )
    .expect("a routed SNAT address is accepted");
    assert_eq!(
        s.snat_reach(ip("198.19.5.5")),
        Some(SnatReach::Routed { route: 1 }),
        "the longest covering route"
    );
}

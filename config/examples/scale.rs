//! Scale benchmark of the config crate: generates a synthetic manifest set as YAML text,
//! then measures what a `PUT /v1/manifests` does with it (load = parse + validate,
//! compile, status rendering as YAML and JSON, digests) and prints one line with the
//! times and the peak RSS.
//!
//! ```sh
//! cargo run --release -p config --example scale -- --routes 20000 --services 20000 --endpoints 10000
//! cargo run --release -p config --example scale -- --routes 2500 --write /tmp/set.yaml
//! cargo run --release -p config --example scale -- --routes 10000 --list  # one kubectl List
//! ```
//!
//! The set: one GatewayClass; Gateways in namespace `gw`, each with one IPv4 VIP and 64
//! UDP listeners admitting routes from every namespace; one UDPRoute per listener (by
//! sectionName) in 50 namespaces; one Service per route (wrapping around when there are
//! fewer Services) with one EndpointSlice each, the endpoints spread evenly over them;
//! every 10th route also refers to a Service of the next namespace, allowed by a
//! ReferenceGrant there. Fields are written in kubectl's block style, with the fields
//! udplb reads and a few it does not; 20,000 routes make 15.7 MiB, under the 16 MiB cap
//! of one manifest text (`config::MAX_MANIFEST_BYTES`). The result is checked (every
//! route carries traffic, every condition healthy) so that a broken set cannot be timed.
//!
//! `scripts/bench-config` runs this at several scales and prints medians.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

const NAMESPACES: usize = 50;
const LISTENERS_PER_GATEWAY: usize = 64;

struct Args {
    routes: usize,
    services: usize,
    endpoints: usize,
    write: Option<PathBuf>,
    list: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        routes: 2500,
        services: 0,
        endpoints: 0,
        write: None,
        list: false,
    };
    let mut services = None;
    let mut endpoints = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--routes" => args.routes = number(value()?)?,
            "--services" => services = Some(number(value()?)?),
            "--endpoints" => endpoints = Some(number(value()?)?),
            "--write" => args.write = Some(PathBuf::from(value()?)),
            "--list" => args.list = true,
            "-h" | "--help" => {
                return Err(
                    "usage: scale [--routes N] [--services N (default: routes)] \
                            [--endpoints N (default: routes/2)] [--list] [--write FILE]"
                        .into(),
                )
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    args.services = services.unwrap_or(args.routes);
    args.endpoints = endpoints.unwrap_or(args.routes / 2);
    if args.routes == 0 || args.services == 0 {
        return Err("--routes and --services must be at least 1".into());
    }
    Ok(args)
}

fn ns(i: usize) -> String {
    format!("team-{:02}", i % NAMESPACES)
}

/// Namespace and name of the i-th Service.
fn service(i: usize) -> (String, String) {
    (ns(i), format!("svc-{i:06}"))
}

/// The i-th IPv4 address after `base` (a /16 of 198.18.0.0/15).
fn addr(base: u8, i: usize) -> String {
    format!("198.{}.{}.{}", base, (i / 250) % 256, i % 250 + 1)
}

/// The manifest set as multi-document YAML, in the block style kubectl prints.
fn generate(a: &Args) -> String {
    let mut y = String::with_capacity(a.routes * 900 + a.endpoints * 80);
    let gateways = a.routes.div_ceil(LISTENERS_PER_GATEWAY);
    y.push_str(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n\
         metadata:\n  name: udplb\nspec:\n  controllerName: udplb.io/appliance\n",
    );
    for n in 0..NAMESPACES {
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n  labels:\n    team: t{n}\n",
            ns(n)
        );
        // Routes of namespace n may refer to Services of namespace n + 1.
        let _ = write!(
            y,
            "---\napiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n\
             metadata:\n  name: from-neighbour\n  namespace: {}\nspec:\n  from:\n  \
             - group: gateway.networking.k8s.io\n    kind: UDPRoute\n    namespace: {}\n  \
             to:\n  - group: \"\"\n    kind: Service\n",
            ns(n + 1),
            ns(n)
        );
    }
    for g in 0..gateways {
        let _ = write!(
            y,
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  \
             name: gw-{g:04}\n  namespace: gw\n  creationTimestamp: \"2024-05-01T12:00:00Z\"\n\
             spec:\n  gatewayClassName: udplb\n  addresses:\n  - type: IPAddress\n    value: {}\n  \
             listeners:\n",
            addr(18, g)
        );
        for l in 0..LISTENERS_PER_GATEWAY {
            let _ = write!(
                y,
                "  - name: l{l:02}\n    port: {}\n    protocol: UDP\n    allowedRoutes:\n      \
                 namespaces:\n        from: All\n",
                10_000 + l
            );
        }
    }
    for r in 0..a.routes {
        let (g, l) = (r / LISTENERS_PER_GATEWAY, r % LISTENERS_PER_GATEWAY);
        let (sns, sname) = service(r % a.services);
        let _ = write!(
            y,
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: UDPRoute\nmetadata:\n  \
             name: route-{r:06}\n  namespace: {sns}\nspec:\n  parentRefs:\n  \
             - name: gw-{g:04}\n    namespace: gw\n    sectionName: l{l:02}\n  rules:\n  \
             - backendRefs:\n    - name: {sname}\n      port: 53\n      weight: 90\n"
        );
        if r % 10 == 0 {
            // A cross-namespace ref, granted by the next namespace's ReferenceGrant.
            let (ons, oname) = service((r + 1) % a.services);
            if ons == ns(r % a.services + 1) {
                let _ = write!(
                    y,
                    "    - name: {oname}\n      namespace: {ons}\n      port: 53\n      weight: 10\n"
                );
            }
        }
    }
    for s in 0..a.services {
        let (sns, sname) = service(s);
        let _ = write!(
            y,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {sname}\n  namespace: {sns}\n\
             spec:\n  ports:\n  - name: dns\n    port: 53\n    protocol: UDP\n    \
             targetPort: 5353\n"
        );
        let first = s * a.endpoints / a.services;
        let last = (s + 1) * a.endpoints / a.services;
        let _ = write!(
            y,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
             name: {sname}-abcde\n  namespace: {sns}\n  labels:\n    \
             kubernetes.io/service-name: {sname}\naddressType: IPv4\nports:\n\
             - name: dns\n  port: 5353\n  protocol: UDP\nendpoints:{}\n",
            if first == last { " []" } else { "" }
        );
        for e in first..last {
            let _ = write!(
                y,
                "- addresses:\n  - {}\n  conditions:\n    ready: true\n",
                addr(19, e)
            );
        }
    }
    y
}

/// The same objects as one `kind: List` document, as `kubectl get -o yaml` prints them.
fn as_list(stream: &str) -> String {
    let mut out = String::with_capacity(stream.len() * 9 / 8);
    out.push_str("apiVersion: v1\nkind: List\nitems:\n");
    for doc in stream.split("---\n").filter(|d| !d.is_empty()) {
        for (i, line) in doc.lines().enumerate() {
            out.push_str(if i == 0 { "- " } else { "  " });
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Peak resident set size of this process so far, in MiB (`VmHWM`).
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let yaml = generate(&args);
    let yaml = if args.list { as_list(&yaml) } else { yaml };
    if let Some(path) = &args.write {
        if let Err(e) = std::fs::write(path, &yaml) {
            eprintln!("cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    let rss_generated = peak_rss_mib();

    let start = Instant::now();
    let set = match config::load_str("scale.yaml", &yaml) {
        Ok(set) => set,
        Err(e) => {
            eprintln!("the generated set does not load: {e}");
            return ExitCode::FAILURE;
        }
    };
    let loaded = Instant::now();
    let rss_loaded = peak_rss_mib();
    let compiled = config::compile(&set, &config::CompileParams::default());
    let compiled_at = Instant::now();
    let rss_compiled = peak_rss_mib();
    let status_yaml = config::status_yaml(&compiled.status);
    let yaml_rendered = Instant::now();
    let status_json = config::status_json(&compiled.status);
    let rendered = Instant::now();
    let forwarding_digest = compiled.forwarding_digest();
    let status_digest = compiled.status_digest();
    let digested = Instant::now();

    let carrying = compiled
        .forwarding
        .listeners
        .iter()
        .filter(|l| l.route.is_some())
        .count();
    if carrying != args.routes || !compiled.status.all_ok() {
        eprintln!(
            "the generated set compiled wrong: {carrying} of {} listeners carry a route; {}",
            args.routes,
            compiled.status.summary()
        );
        return ExitCode::FAILURE;
    }
    let secs = |a: Instant, b: Instant| (b - a).as_secs_f64();
    println!(
        "routes={} services={} endpoints={} objects={} yaml_mib={:.1} load_s={:.3} \
         compile_s={:.3} status_s={:.3} total_s={:.3} peak_rss_mib={:.0} text_rss_mib={:.0} \
         load_rss_mib={:.0} compile_rss_mib={:.0} status_bytes={} status_yaml_s={:.3} digest_s={:.3} \
         forwarding_digest={} status_digest={}",
        args.routes,
        args.services,
        args.endpoints,
        set.len(),
        yaml.len() as f64 / f64::from(1 << 20),
        secs(start, loaded),
        secs(loaded, compiled_at),
        secs(compiled_at, rendered),
        secs(start, rendered),
        peak_rss_mib(),
        rss_generated,
        rss_loaded,
        rss_compiled,
        status_yaml.len() + status_json.len(),
        secs(compiled_at, yaml_rendered),
        secs(rendered, digested),
        forwarding_digest.short(),
        status_digest.short(),
    );
    ExitCode::SUCCESS
}

//! The control plane against its commands, without DPDK: bounded generations, no-op
//! re-applies, no accidental wipe (empty bodies, every carrying listener removed, a
//! truncated file), one source of truth (a PUT is not reverted by a file change and
//! survives a restart), size caps from the watcher's side.

#![allow(clippy::tests_outside_test_module)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use appliance::control::{
    initial_set, Active, ControlParams, ControlPlane, Initial, Observed, Origin, Publisher,
    SourceMode, Sources, StartError, StateDir,
};
use appliance::mgmt::{MgmtCommand, MgmtError, MgmtHandler, MgmtReply, ReloadReason};
use appliance::worker::{ReportSlot, WorkerReport};
use crossbeam_channel::Receiver;
use pipelines::tables::{DataplaneParams, Tables};

/// A Gateway with listeners on `ports` (UDP), a route to a Service with two endpoints of
/// weights `weight` and 1 on the first listener.
fn set(ports: &[u16], weight: u32) -> String {
    let listeners: Vec<String> = ports
        .iter()
        .map(|p| format!("{{name: l{p}, port: {p}, protocol: UDP}}"))
        .collect();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: udplb}}
spec: {{controllerName: udplb.io/appliance}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: udplb
  addresses: [{{value: 198.18.0.10}}]
  listeners: [{}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {{name: r, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: l{}}}]
  rules:
    - backendRefs:
        - {{name: a, port: 53, weight: {weight}}}
        - {{name: b, port: 53, weight: 1}}
{}{}",
        listeners.join(", "),
        ports[0],
        service("a", "198.18.1.11"),
        service("b", "198.18.1.12"),
    )
}

fn service(name: &str, ip: &str) -> String {
    format!(
        "---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{ports: [{{port: 53, protocol: UDP}}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{port: 53, protocol: UDP}}]
endpoints: [{{addresses: [\"{ip}\"], conditions: {{ready: true}}}}]
"
    )
}

/// The control plane with one simulated worker: its tables channel and its report.
struct Rig {
    plane: ControlPlane,
    tables_rx: Receiver<Arc<Tables>>,
    report: ReportSlot,
    /// What the simulated worker runs.
    running: Mutex<Arc<Tables>>,
}

impl Rig {
    fn new(sources: Sources, initial: &str) -> Rig {
        let objects = config::load_str("initial", initial).expect("valid initial set");
        Rig::with_initial(
            sources,
            &Initial {
                objects,
                origin: Origin::StartFiles,
            },
        )
    }

    /// Started from what `initial_set` found for `sources`.
    fn start(sources: &Sources) -> Rig {
        Rig::with_initial(sources.clone(), &initial_set(sources).expect("initial set"))
    }

    fn with_initial(sources: Sources, initial: &Initial) -> Rig {
        let (tx, tables_rx) = crossbeam_channel::unbounded();
        let report: ReportSlot = Arc::new(Mutex::new(WorkerReport::default()));
        let (plane, tables) = ControlPlane::with_initial(
            params(sources),
            Publisher {
                workers: vec![tx],
                ..Publisher::default()
            },
            Observed {
                reports: vec![Arc::clone(&report)],
                ..Observed::default()
            },
            initial,
        )
        .expect("control plane");
        report.lock().expect("report").generation = tables.generation();
        Rig {
            plane,
            tables_rx,
            report,
            running: Mutex::new(tables),
        }
    }

    /// What a worker does between bursts: adopt the newest tables, report its
    /// generation (and, with real counters, retire the old ones).
    fn worker_poll(&self) {
        if let Some(t) = self.tables_rx.try_iter().last() {
            self.report.lock().expect("report").generation = t.generation();
            *self.running.lock().expect("running") = t;
        }
    }

    fn put(
        &self,
        yaml: &str,
        confirm: bool,
    ) -> Result<MgmtReply, MgmtError<appliance::control::Refusal>> {
        self.plane.handle(MgmtCommand::ApplyManifests {
            yaml: yaml.to_owned(),
            confirm_remove_all: confirm,
        })
    }

    fn generation(&self) -> u64 {
        self.plane.snapshot().generation
    }

    fn failed(&self) -> u64 {
        self.plane.snapshot().reloads_failed
    }
}

fn params(sources: Sources) -> ControlParams {
    ControlParams {
        dataplane: DataplaneParams {
            maglev_size: 1021,
            ..DataplaneParams::default()
        },
        sources,
        ..ControlParams::default()
    }
}

fn api_only(state: Option<StateDir>) -> Sources {
    Sources {
        mode: SourceMode::Both,
        paths: Vec::new(),
        state,
    }
}

/// Issue 10: re-PUTting the same set kept 16 generations of tables (1.3 GB each at 5,000
/// routes). Now an identical set is a no-op (nothing built, nothing published), and
/// alternating sets keep only what the worker still uses.
#[test]
fn generations_stay_bounded_under_repeated_puts() {
    let a = set(&[53], 3);
    let b = set(&[53], 5);
    let rig = Rig::new(api_only(None), &a);
    for _ in 0..20 {
        let reply = rig.put(&a, false).expect("identical set accepted");
        assert!(matches!(reply, MgmtReply::Applied { .. }));
        rig.worker_poll();
    }
    assert_eq!(rig.generation(), 1, "an identical set publishes nothing");
    assert!(
        rig.tables_rx.is_empty(),
        "no tables were sent to the worker"
    );
    assert_eq!(rig.plane.live_generations(), 1);

    for i in 0..40 {
        rig.put(if i % 2 == 0 { &b } else { &a }, false)
            .expect("alternating sets accepted");
        rig.worker_poll();
        rig.plane.tick();
        assert!(
            rig.plane.live_generations() <= 2,
            "after PUT {i}: {} generations alive",
            rig.plane.live_generations()
        );
        assert_eq!(rig.plane.held_generations(), 1, "after PUT {i}");
    }
    assert_eq!(rig.generation(), 41);
    // A worker that lags keeps its generation alive, and only that one.
    rig.put(&b, false).expect("b");
    rig.put(&a, false).expect("a");
    rig.plane.tick();
    assert_eq!(
        rig.plane.held_generations(),
        3,
        "the lagging worker's and the two since"
    );
    rig.worker_poll();
    rig.plane.tick();
    assert_eq!(rig.plane.held_generations(), 1);
    assert_eq!(rig.plane.live_generations(), 1);
}

/// A set whose forwarding is the same but whose status differs publishes no tables and
/// updates the status.
#[test]
fn a_status_only_change_publishes_no_tables() {
    let a = set(&[53], 3);
    let rig = Rig::new(api_only(None), &a);
    let spare = format!(
        "{a}---\napiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {{name: \
         spare}}\nspec: {{controllerName: udplb.io/appliance}}\n"
    );
    let Ok(MgmtReply::Applied { status_yaml }) = rig.put(&spare, false) else {
        panic!("status-only change refused");
    };
    assert!(status_yaml.contains("name: spare"), "{status_yaml}");
    assert_eq!(rig.generation(), 1, "no new tables");
    assert!(rig.tables_rx.is_empty());
    assert_eq!(rig.plane.status_yaml(), status_yaml);
}

/// Issue 10: an empty body wiped every VIP. Now it is refused (400) unless confirmed.
#[test]
fn an_empty_body_is_refused_unless_confirmed() {
    let a = set(&[53], 3);
    let rig = Rig::new(api_only(None), &a);
    let before = rig.plane.status_yaml();
    for empty in ["", "\n  \n", "# kubectl failed\n---\n"] {
        let err = rig.put(empty, false).expect_err("empty refused");
        assert!(matches!(err, MgmtError::EmptySet), "{empty:?}: {err}");
        assert!(err.to_string().contains("?confirm=remove-all"), "{err}");
    }
    assert_eq!(rig.plane.status_yaml(), before);
    assert_eq!(rig.generation(), 1);
    assert_eq!(rig.failed(), 3);
    rig.put("", true).expect("a confirmed empty set");
    assert_eq!(rig.generation(), 2);
    assert!(rig.plane.tables().listeners().is_empty());
}

/// Removing every listener that carries traffic needs the confirmation; removing some
/// does not.
#[test]
fn removing_every_carrying_listener_needs_confirmation() {
    let two = set(&[53, 54], 3);
    let rig = Rig::new(api_only(None), &two);
    // Route moves from :53 to :54 — :53 keeps no route, but :54 now carries: allowed?
    // No: :54 did not carry before, so every carrying listener (:53) disappears.
    let moved = set(&[54], 3);
    let err = rig
        .put(&moved, false)
        .expect_err("every carrying listener removed");
    let MgmtError::RemovesAllListeners { listeners } = &err else {
        panic!("{err}");
    };
    assert_eq!(listeners, &["198.18.0.10:53".to_owned()]);
    assert!(err.to_string().contains("?confirm=remove-all"), "{err}");
    // A kubectl List with no items is not "empty" but removes everything: same guard.
    let none = "apiVersion: v1\nkind: List\nitems: []\n";
    assert!(matches!(
        rig.put(none, false),
        Err(MgmtError::RemovesAllListeners { .. })
    ));
    assert_eq!(rig.generation(), 1);
    // Keeping :53 while dropping the idle :54 is an ordinary change.
    rig.put(&set(&[53], 3), false)
        .expect("partial removal allowed");
    assert_eq!(rig.generation(), 2);
    rig.put(&moved, true).expect("confirmed");
    assert_eq!(rig.generation(), 3);
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("udplb-control-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn reload(rig: &Rig) -> Result<MgmtReply, MgmtError<appliance::control::Refusal>> {
    rig.plane
        .handle(MgmtCommand::Reload(ReloadReason::FilesChanged(Vec::new())))
}

fn files(mode: SourceMode, file: &Path, state: Option<&Path>) -> Sources {
    Sources {
        mode,
        paths: vec![file.to_owned()],
        state: state.map(StateDir::new),
    }
}

/// Issue 10: a manifest file caught truncated (0 bytes, or cut at a `---`) was applied as
/// a deletion while status still said ResolvedRefs True. Now the reload is refused,
/// counted, and status keeps describing the running set.
#[test]
fn a_truncated_file_never_wipes_and_status_stays_true() {
    let dir = TempDir::new("truncated");
    let file = dir.0.join("all.yaml");
    let full = set(&[53], 3);
    std::fs::write(&file, &full).expect("write");
    let sources = files(SourceMode::Files, &file, None);
    let rig = Rig::start(&sources);
    let status = rig.plane.status_yaml();
    assert!(status.contains("ResolvedRefs"), "{status}");
    // Cut at the first document boundary: only the GatewayClass is left.
    let cut = &full[..full.find("---").expect("documents")];
    for text in ["", cut] {
        std::fs::write(&file, text).expect("truncate");
        let err = reload(&rig).expect_err("refused");
        assert!(
            matches!(err, MgmtError::RemovesAllListeners { .. }),
            "{err}"
        );
        assert_eq!(rig.plane.status_yaml(), status, "status of the running set");
    }
    assert_eq!(rig.generation(), 1);
    assert_eq!(rig.failed(), 2);
    // Files cannot confirm; POST /v1/reload?confirm=remove-all can.
    let err = rig
        .plane
        .handle(MgmtCommand::UseFiles {
            confirm_remove_all: false,
        })
        .expect_err("unconfirmed");
    assert!(matches!(err, MgmtError::RemovesAllListeners { .. }));
    rig.plane
        .handle(MgmtCommand::UseFiles {
            confirm_remove_all: true,
        })
        .expect("confirmed by a person");
    assert_eq!(rig.generation(), 2);
}

/// A manifest file over the cap is refused by the reload with the cap in the message,
/// counted, and the running set kept.
#[test]
fn an_oversized_file_is_refused_and_the_running_set_kept() {
    let dir = TempDir::new("oversized");
    let file = dir.0.join("all.yaml");
    std::fs::write(&file, set(&[53], 3)).expect("write");
    let sources = files(SourceMode::Files, &file, None);
    let rig = Rig::start(&sources);
    let status = rig.plane.status_yaml();
    let mut big = set(&[53], 3);
    big.push_str(&format!("# {}\n", "x".repeat(config::MAX_MANIFEST_BYTES)));
    std::fs::write(&file, &big).expect("write big");
    let err = reload(&rig).expect_err("over the cap");
    assert!(
        err.to_string().contains("over the limit of 16777216 bytes"),
        "{err}"
    );
    assert_eq!(rig.plane.status_yaml(), status);
    assert_eq!(rig.failed(), 1);
}

/// Issue 10: a PUT was silently reverted by any `touch` of a manifest file. With
/// `source: both` the PUT's set is pinned: a file change is logged and not applied;
/// POST /v1/reload serves the files again and forgets the persisted set.
#[test]
fn a_put_is_not_reverted_by_a_file_change() {
    let dir = TempDir::new("pinned");
    let file = dir.0.join("all.yaml");
    let state = dir.0.join("state");
    std::fs::write(&file, set(&[53], 3)).expect("write");
    let sources = files(SourceMode::Both, &file, Some(&state));
    let rig = Rig::start(&sources);
    assert_eq!(rig.plane.active_source(), Active::Files);
    let pushed = set(&[53], 9);
    rig.put(&pushed, false).expect("PUT");
    assert_eq!(rig.plane.active_source(), Active::Api);
    let after_put = rig.plane.status_yaml();
    let generation = rig.generation();
    // touch, and a real change: neither reverts the PUT.
    std::fs::write(&file, set(&[53], 4)).expect("rewrite");
    let err = reload(&rig).expect_err("pinned");
    assert!(matches!(err, MgmtError::WrongSource(_)), "{err}");
    assert!(err.to_string().contains("POST /v1/reload"), "{err}");
    assert_eq!(rig.generation(), generation);
    assert_eq!(rig.plane.status_yaml(), after_put);
    assert_eq!(
        StateDir::new(&state).load().expect("load").as_deref(),
        Some(pushed.as_str()),
        "persisted"
    );
    // Back to the files, on purpose.
    rig.plane
        .handle(MgmtCommand::UseFiles {
            confirm_remove_all: false,
        })
        .expect("back to files");
    assert_eq!(rig.plane.active_source(), Active::Files);
    assert_eq!(
        StateDir::new(&state).load().expect("load"),
        None,
        "forgotten"
    );
    assert_eq!(rig.generation(), generation + 1);
}

/// With `source: files` the API cannot replace the set.
#[test]
fn files_only_refuses_puts() {
    let dir = TempDir::new("files-only");
    let file = dir.0.join("all.yaml");
    std::fs::write(&file, set(&[53], 3)).expect("write");
    let sources = files(SourceMode::Files, &file, None);
    let rig = Rig::start(&sources);
    let err = rig.put(&set(&[53], 9), false).expect_err("files only");
    assert!(matches!(err, MgmtError::WrongSource(_)), "{err}");
    assert_eq!(rig.generation(), 1);
}

/// Issue 10: a PUT config was lost on restart. It is persisted and read back at start,
/// before the files; an invalid persisted set stops the start with its path.
#[test]
fn an_api_set_survives_a_restart() {
    let dir = TempDir::new("restart");
    let file = dir.0.join("all.yaml");
    let state = dir.0.join("state");
    std::fs::write(&file, set(&[53], 3)).expect("write");
    let sources = files(SourceMode::Both, &file, Some(&state));
    let first = Rig::start(&sources);
    first.put(&set(&[53, 54], 9), false).expect("PUT");
    let status = first.plane.status_yaml();
    drop(first);

    let initial = initial_set(&sources).expect("restart");
    assert_eq!(initial.origin, Origin::Persisted);
    let second = Rig::with_initial(sources.clone(), &initial);
    assert_eq!(
        second.plane.status_yaml(),
        status,
        "the PUT's set, not the files'"
    );
    assert_eq!(second.plane.active_source(), Active::Api);
    drop(second);

    std::fs::write(StateDir::new(&state).api_set(), "kind: Gateway\nspec: 3\n").expect("corrupt");
    let err = initial_set(&sources).expect_err("invalid persisted set");
    assert!(matches!(err, StartError::Persisted { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&StateDir::new(&state).api_set().display().to_string()),
        "{err}"
    );
}

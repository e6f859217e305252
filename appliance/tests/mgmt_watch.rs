//! The manifest watcher reports file changes, additions and removals, and stops cleanly.

#![allow(clippy::tests_outside_test_module)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use appliance::mgmt::{Fingerprint, ManifestWatcher, MgmtEvent, ReloadReason};
use crossbeam_channel::Receiver;

/// A scratch directory removed on drop, unique per process and test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("udplb-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write manifest");
}

/// The next reload event, waiting at most 10 s (a bound against hangs, not a timing check).
fn next_change(events: &Receiver<MgmtEvent>) -> Vec<PathBuf> {
    match events.recv_timeout(Duration::from_secs(10)) {
        Ok(MgmtEvent::Reload(ReloadReason::FilesChanged(paths))) => paths,
        other => panic!("expected FilesChanged, got {other:?}"),
    }
}

#[test]
fn watcher_reports_changed_added_and_removed_files() {
    let dir = TempDir::new("watch");
    let manifests = dir.path("manifests");
    std::fs::create_dir_all(manifests.join("nested")).expect("mkdir");
    // Subdirectories are not loaded, so not watched either.
    write(&manifests.join("nested/ignored.yaml"), "kind: Gateway\n");
    let gateway = manifests.join("gateway.yaml");
    let single = dir.path("single.yaml");
    write(&gateway, "kind: Gateway\n");

    let (tx, events) = crossbeam_channel::unbounded();
    let watcher = ManifestWatcher::start(
        vec![manifests.clone(), single.clone()],
        Duration::from_millis(20),
        tx,
    )
    .expect("start watcher");

    write(&gateway, "kind: Gateway\nmetadata: {name: gw}\n");
    assert_eq!(next_change(&events), std::slice::from_ref(&gateway));

    write(
        &manifests.join("nested/ignored.yaml"),
        "kind: Gateway # changed\n",
    );
    let route = manifests.join("route.yml");
    write(&route, "kind: UDPRoute\n");
    assert_eq!(next_change(&events), std::slice::from_ref(&route));

    // A watched single file that appears.
    write(&single, "kind: Service\n");
    assert_eq!(next_change(&events), std::slice::from_ref(&single));

    std::fs::remove_file(&gateway).expect("remove");
    assert_eq!(next_change(&events), [gateway]);

    // Replaced by rename with the same size: the inode differs.
    let tmp = manifests.join(".route.yml.tmp");
    write(&tmp, "kind: UDPRoutX\n");
    std::fs::rename(&tmp, &route).expect("rename");
    let changed = next_change(&events);
    assert!(changed.contains(&route), "{changed:?}");

    watcher.stop();
    assert!(
        events.recv_timeout(Duration::from_millis(100)).is_err(),
        "the sender is gone once the watcher stopped"
    );
}

#[test]
fn fingerprint_ignores_non_manifest_files() {
    let dir = TempDir::new("fingerprint");
    write(&dir.path("a.yaml"), "kind: Gateway\n");
    let paths = vec![dir.0.clone()];
    let before = Fingerprint::of(&paths);
    write(&dir.path("notes.txt"), "scratch");
    write(&dir.path(".a.yaml.swp"), "editor state");
    write(&dir.path("c.json"), "{}");
    assert_eq!(Fingerprint::of(&paths), before);
    write(&dir.path("b.yml"), "kind: Service\n");
    let after = Fingerprint::of(&paths);
    assert_eq!(before.changed_paths(&after), [dir.path("b.yml")]);
    assert_eq!(after.changed_paths(&before), [dir.path("b.yml")]);
}

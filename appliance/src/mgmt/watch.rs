//! Polls manifest files and directories for changes (no inotify: polling is portable,
//! catches changes on any file system, and costs a few `stat` calls per second).
//!
//! A change is reported only once it has settled: the same sizes, modification times and
//! inodes for [`SETTLE`] in a row. A file caught between truncate and write (0 bytes, or
//! cut at a `---`) is therefore not read while its writer is still at work; a writer that
//! stops half-way is caught by the control plane's guard (a set that removes every
//! listener carrying traffic is never applied from files).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::events::{MgmtEvent, ReloadReason};

/// How many files of one directory are tracked at most.
const MAX_FILES: usize = 10_000;

/// How long the manifest files must stay unchanged before a change is reported.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What is known about one manifest file; any difference counts as a change. The inode
/// catches files replaced by rename (editors, Kubernetes ConfigMap volumes).
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileState {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The state of every manifest file under the watched paths, sorted by path. A watched
/// path that does not exist is recorded as absent, so its appearance is a change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint(Vec<(PathBuf, Option<FileState>)>);

impl Fingerprint {
    /// Takes the fingerprint of `paths`: files as given, and in directories the files ending
    /// in `.yaml` or `.yml` (not in subdirectories), which are the ones `config` loads.
    pub fn of(paths: &[PathBuf]) -> Fingerprint {
        let mut entries = Vec::new();
        for path in paths {
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => collect_dir(path, &mut entries),
                Ok(meta) => entries.push((path.clone(), Some(state(&meta)))),
                Err(_) => entries.push((path.clone(), None)),
            }
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|a, b| a.0 == b.0);
        Fingerprint(entries)
    }

    /// The paths that differ between `self` (older) and `newer`: changed, added or removed.
    pub fn changed_paths(&self, newer: &Fingerprint) -> Vec<PathBuf> {
        let mut changed: Vec<PathBuf> = newer
            .0
            .iter()
            .filter(|entry| !self.0.contains(entry))
            .map(|(p, _)| p.clone())
            .collect();
        changed.extend(
            self.0
                .iter()
                .filter(|(p, _)| !newer.0.iter().any(|(q, _)| q == p))
                .map(|(p, _)| p.clone()),
        );
        changed.sort();
        changed
    }
}

fn state(meta: &std::fs::Metadata) -> FileState {
    FileState {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode: meta.ino(),
    }
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml"))
}

fn collect_dir(dir: &Path, out: &mut Vec<(PathBuf, Option<FileState>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(MAX_FILES) {
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() && is_manifest(&path) => {
                out.push((path, Some(state(&meta))));
            }
            _ => {}
        }
    }
}

/// A thread that polls manifest paths and calls back on every change.
pub struct ManifestWatcher {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl ManifestWatcher {
    /// Takes a fingerprint of `paths` now, then every `interval` takes a new one; once it
    /// differs from the last reported one and has stayed the same for `settle`, calls
    /// `on_change(ReloadReason::FilesChanged(paths))`.
    ///
    /// # Errors
    /// If the thread cannot be created.
    pub fn spawn(
        paths: Vec<PathBuf>,
        interval: Duration,
        settle: Duration,
        mut on_change: impl FnMut(ReloadReason) + Send + 'static,
    ) -> std::io::Result<ManifestWatcher> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let mut settling = Settling::new(Fingerprint::of(&paths), settle);
        let thread = std::thread::Builder::new()
            .name("udplb-watch".into())
            .spawn(move || loop {
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                if let Some(changed) = settling.observe(Fingerprint::of(&paths), Instant::now()) {
                    on_change(ReloadReason::FilesChanged(changed));
                }
            })?;
        Ok(ManifestWatcher {
            stop,
            thread: Some(thread),
        })
    }

    /// [`ManifestWatcher::spawn`] with the [`SETTLE`] time, sending `MgmtEvent::Reload`
    /// into `events`.
    ///
    /// # Errors
    /// If the thread cannot be created.
    pub fn start(
        paths: Vec<PathBuf>,
        interval: Duration,
        events: Sender<MgmtEvent>,
    ) -> std::io::Result<ManifestWatcher> {
        ManifestWatcher::spawn(paths, interval, SETTLE, move |reason| {
            // A closed channel means the main loop is gone; nothing is left to tell.
            let _ = events.send(MgmtEvent::Reload(reason));
        })
    }

    /// Stops polling and joins the thread.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.stop.try_send(());
            let _ = thread.join();
        }
    }
}

impl Drop for ManifestWatcher {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Reports a changed fingerprint once it has stayed the same for the settle time.
#[derive(Debug)]
pub struct Settling {
    reported: Fingerprint,
    pending: Option<(Fingerprint, Instant)>,
    settle: Duration,
}

impl Settling {
    /// Starts from the fingerprint `now` (already applied).
    pub fn new(now: Fingerprint, settle: Duration) -> Settling {
        Settling {
            reported: now,
            pending: None,
            settle,
        }
    }

    /// Takes a fingerprint seen at `at`; returns the changed paths when a change has
    /// settled (the same fingerprint for `settle`).
    pub fn observe(&mut self, seen: Fingerprint, at: Instant) -> Option<Vec<PathBuf>> {
        if seen == self.reported {
            // Changed and changed back before settling: nothing to do.
            self.pending = None;
            return None;
        }
        match &self.pending {
            Some((pending, since)) if *pending == seen => {
                if at.duration_since(*since) < self.settle {
                    return None;
                }
            }
            _ => {
                self.pending = Some((seen, at));
                return None;
            }
        }
        self.pending = None;
        let changed = self.reported.changed_paths(&seen);
        self.reported = seen;
        Some(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(len: u64) -> Fingerprint {
        Fingerprint(vec![(
            PathBuf::from("m.yaml"),
            Some(FileState {
                modified: None,
                len,
                inode: 1,
            }),
        )])
    }

    /// A file being written (0 bytes, then growing) is not reported until it has stayed
    /// the same for the settle time.
    #[test]
    fn a_change_is_reported_once_settled() {
        let settle = Duration::from_secs(1);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = Settling::new(print(100), settle);
        assert_eq!(s.observe(print(100), at(0)), None, "unchanged");
        assert_eq!(s.observe(print(0), at(100)), None, "truncated: pending");
        assert_eq!(
            s.observe(print(40), at(600)),
            None,
            "growing: pending again"
        );
        assert_eq!(
            s.observe(print(40), at(1500)),
            None,
            "not settled for 1 s yet"
        );
        assert_eq!(
            s.observe(print(40), at(1600)),
            Some(vec![PathBuf::from("m.yaml")]),
            "settled"
        );
        assert_eq!(s.observe(print(40), at(5000)), None, "reported once");
        // Changed and back before settling: nothing.
        assert_eq!(s.observe(print(0), at(6000)), None);
        assert_eq!(s.observe(print(40), at(6100)), None);
        assert_eq!(s.observe(print(40), at(9000)), None);
    }
}

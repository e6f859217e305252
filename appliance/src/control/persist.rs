//! The API-pushed manifest set on disk, so that it survives a restart.
//!
//! One file, `<state_dir>/api-manifests.yaml`, holds the body of the last accepted
//! `PUT /v1/manifests` exactly as it came. It is replaced atomically: the new text goes
//! to a temporary file in the same directory, which is flushed to disk (`fsync`) and then
//! renamed over the old one, and the directory is flushed too. A reader (udplb at start,
//! after a crash or a `kill -9` at any point) therefore finds either the previous set or
//! the new one, never a mix or a truncated file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file name of the persisted set inside the state directory.
pub const API_SET_FILE: &str = "api-manifests.yaml";

/// Why the persisted set could not be written, read or removed.
#[derive(Debug, thiserror::Error)]
#[error("manifests.state_dir: {}: {source}", path.display())]
pub struct PersistError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What the operating system said.
    pub source: io::Error,
}

/// The state directory (`manifests.state_dir`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory at `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The persisted API set's path.
    pub fn api_set(&self) -> PathBuf {
        self.dir.join(API_SET_FILE)
    }

    /// Replaces the persisted set with `text`, atomically (temporary file, `fsync`,
    /// `rename`, `fsync` of the directory). The file is readable by root only: it holds
    /// backend addresses.
    ///
    /// # Errors
    /// Creating, writing, flushing or renaming failed; the previous set is untouched.
    pub fn save(&self, text: &str) -> Result<(), PersistError> {
        let err = |path: &Path| {
            let path = path.to_owned();
            move |source| PersistError { path, source }
        };
        fs::create_dir_all(&self.dir).map_err(err(&self.dir))?;
        let target = self.api_set();
        let tmp = self
            .dir
            .join(format!(".{API_SET_FILE}.{}.tmp", std::process::id()));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })();
        if let Err(source) = written {
            let _ = fs::remove_file(&tmp);
            return Err(PersistError { path: tmp, source });
        }
        if let Err(source) = fs::rename(&tmp, &target) {
            let _ = fs::remove_file(&tmp);
            return Err(PersistError {
                path: target,
                source,
            });
        }
        sync_dir(&self.dir).map_err(err(&self.dir))
    }

    /// The persisted set, if there is one.
    ///
    /// # Errors
    /// It exists but cannot be read (or is not UTF-8).
    pub fn load(&self) -> Result<Option<String>, PersistError> {
        let path = self.api_set();
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PersistError { path, source }),
        }
    }

    /// Forgets the persisted set (`POST /v1/reload`).
    ///
    /// # Errors
    /// It exists and cannot be removed.
    pub fn remove(&self) -> Result<(), PersistError> {
        let path = self.api_set();
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir).map_err(|source| PersistError {
                path: self.dir.clone(),
                source,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PersistError { path, source }),
        }
    }
}

/// Flushes a directory's entries (a rename is durable only once its directory is).
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("udplb-persist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn saves_loads_replaces_and_removes() {
        let dir = scratch("roundtrip");
        let state = StateDir::new(dir.join("nested"));
        assert_eq!(state.load().expect("load"), None, "nothing persisted yet");
        state.save("kind: Gateway\n").expect("save");
        assert_eq!(
            state.load().expect("load").as_deref(),
            Some("kind: Gateway\n")
        );
        let mode = fs::metadata(state.api_set())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by root only: {mode:o}");
        state.save("kind: Service\n").expect("replace");
        assert_eq!(
            state.load().expect("load").as_deref(),
            Some("kind: Service\n")
        );
        // Only the set itself is left: no temporary file.
        let names: Vec<_> = fs::read_dir(state.dir())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [API_SET_FILE]);
        state.remove().expect("remove");
        assert_eq!(state.load().expect("load"), None);
        state.remove().expect("removing nothing is fine");
        let _ = fs::remove_dir_all(&dir);
    }

    /// A reader racing the writer sees the old text or the new one, whole, never a
    /// truncated or mixed file.
    #[test]
    fn a_concurrent_reader_never_sees_a_partial_file() {
        let dir = scratch("atomic");
        let state = StateDir::new(&dir);
        let a = "a".repeat(256 << 10);
        let b = "b".repeat(300 << 10);
        state.save(&a).expect("first");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (state, stop, a, b) = (state.clone(), stop.clone(), a.clone(), b.clone());
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || reads < 50 {
                    let seen = state.load().expect("readable").expect("always present");
                    assert!(
                        seen == a || seen == b,
                        "partial file of {} bytes",
                        seen.len()
                    );
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..40 {
            state.save(if i % 2 == 0 { &b } else { &a }).expect("save");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().expect("reader") >= 50);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_name_the_setting_and_the_path() {
        let dir = scratch("error");
        fs::create_dir_all(&dir).expect("mkdir");
        // A file where the directory should be.
        let blocker = dir.join("file");
        fs::write(&blocker, "x").expect("write");
        let err = StateDir::new(&blocker)
            .save("x")
            .expect_err("not a directory");
        assert!(
            err.to_string()
                .starts_with(&format!("manifests.state_dir: {}: ", blocker.display())),
            "{err}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

//! Reading objects: files, directories, multi-document YAML and kubectl `List`s.
//!
//! Each document is parsed into a YAML value, dispatched on `apiVersion`/`kind`, decoded
//! into the typed model with the field path of any error, then validated
//! ([`crate::validate`]). Problems are collected across every document and file, so one
//! run reports all of them; a set with any problem is rejected whole.
//!
//! [`load`] is the one validator: `udplb check` (files), the appliance's file watcher and
//! its `PUT /v1/manifests` (a text) all go through it, so the same input gives the same
//! list of problems whichever way it arrives.
//!
//! Sizes are capped before anything is parsed ([`MAX_MANIFEST_BYTES`] per file or text,
//! [`MAX_SET_BYTES`] per set): parsing needs up to about 100 bytes of memory per byte of
//! YAML (a flow list of one-digit numbers), so the cap is what bounds memory.
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::validate::ValidationError;

mod decode;
mod documents;
mod set;

pub use set::ObjectSet;

use documents::parse_str;
use set::duplicates;

/// Largest manifest file, and largest text ([`load_str`], the appliance's
/// `PUT /v1/manifests` body): 16 MiB. A realistic set of 20,000 UDPRoutes, 20,000
/// Services and 10,000 endpoints is 15.7 MiB of YAML and needs about 250 MB to load,
/// compile and render its status; a pathological 16 MiB document (a flow list of
/// one-digit numbers) needs about 1.7 GB to parse. `config/README.md` has the figures.
pub const MAX_MANIFEST_BYTES: usize = 16 << 20;

/// Largest set read by one [`load`] (all its files and texts together): 64 MiB. Parsing
/// memory is per document and freed after it, so this bounds what stays: the typed
/// objects (a few times the YAML size) and the compiled result.
pub const MAX_SET_BYTES: usize = 64 << 20;

/// One input of a set: a file or directory, or a text (such as an HTTP body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source<'a> {
    /// A file, or a directory whose `*.yaml` and `*.yml` files are read in name order
    /// (not recursively).
    Path(&'a Path),
    /// YAML text; `name` stands for the file name in problems.
    Text {
        /// The name used in problems, e.g. `PUT /v1/manifests`.
        name: &'a str,
        /// One or more YAML documents.
        text: &'a str,
    },
}

/// Why a set of objects could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file or directory could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file or text is over [`MAX_MANIFEST_BYTES`]; nothing was parsed.
    #[error(
        "{name}: {size} bytes is over the limit of {limit} bytes ({} MiB) for one manifest \
         file or body",
        limit >> 20
    )]
    FileTooLarge {
        /// The file, or the name of the text.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// [`MAX_MANIFEST_BYTES`].
        limit: usize,
    },
    /// The files and texts of one set add up to more than [`MAX_SET_BYTES`]; nothing was
    /// parsed.
    #[error(
        "the manifests add up to {size} bytes (at {name}), over the limit of {limit} bytes \
         ({} MiB) for one set",
        limit >> 20
    )]
    SetTooLarge {
        /// The file or text that went over.
        name: String,
        /// The total up to and including it, in bytes.
        size: u64,
        /// [`MAX_SET_BYTES`].
        limit: usize,
    },
    /// The input is not valid YAML, has the wrong shape, or breaks a schema rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Loads a set from files, directories and texts: the one validator behind
/// [`load_paths`], [`load_str`], `udplb check` and the appliance.
///
/// Sizes are checked first, from file metadata, before anything is read; a file that
/// grows past the cap while it is read is caught by a bounded read. Then every document
/// of every source is parsed, decoded and validated, and every problem is collected:
/// parse, schema and field problems in input order, then objects defined twice.
///
/// # Errors
/// [`LoadError::Io`] for an unreadable path; [`LoadError::FileTooLarge`] and
/// [`LoadError::SetTooLarge`] over the caps; [`LoadError::Invalid`] listing every problem.
pub fn load(sources: &[Source<'_>]) -> Result<ObjectSet, LoadError> {
    enum Input<'a> {
        File(PathBuf),
        Text(&'a str, &'a str),
    }
    let mut inputs = Vec::new();
    let mut total = 0u64;
    let mut count = |name: &dyn Fn() -> String, size: u64| {
        if size > MAX_MANIFEST_BYTES as u64 {
            return Err(LoadError::FileTooLarge {
                name: name(),
                size,
                limit: MAX_MANIFEST_BYTES,
            });
        }
        total = total.saturating_add(size);
        if total > MAX_SET_BYTES as u64 {
            return Err(LoadError::SetTooLarge {
                name: name(),
                size: total,
                limit: MAX_SET_BYTES,
            });
        }
        Ok(())
    };
    for source in sources {
        match *source {
            Source::Text { name, text } => {
                count(&|| name.to_owned(), text.len() as u64)?;
                inputs.push(Input::Text(name, text));
            }
            Source::Path(path) => {
                for file in files(path)? {
                    let size = fs::metadata(&file)
                        .map_err(|source| LoadError::Io {
                            path: file.clone(),
                            source,
                        })?
                        .len();
                    count(&|| display(&file), size)?;
                    inputs.push(Input::File(file));
                }
            }
        }
    }
    let mut set = ObjectSet::default();
    let mut problems = Vec::new();
    // Files may have grown since their sizes were added up: count what is read too.
    let mut read = 0u64;
    for input in inputs {
        match input {
            Input::Text(name, text) => parse_str(name, text, &mut set, &mut problems),
            Input::File(file) => {
                let text = read_capped(&file)?;
                read += text.len() as u64;
                if read > MAX_SET_BYTES as u64 {
                    return Err(LoadError::SetTooLarge {
                        name: display(&file),
                        size: read,
                        limit: MAX_SET_BYTES,
                    });
                }
                parse_str(&display(&file), &text, &mut set, &mut problems);
            }
        }
    }
    problems.extend(duplicates(set.metas()));
    if problems.is_empty() {
        Ok(set)
    } else {
        Err(ValidationError { problems }.into())
    }
}

/// The files a path stands for: itself, or a directory's `*.yaml` and `*.yml` files in
/// name order.
fn files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !fs::metadata(path).map_err(io_err)?.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(path).map_err(io_err)? {
        let p = entry.map_err(io_err)?.path();
        let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if yaml && p.is_file() {
            found.push(p);
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a file as UTF-8, never more than [`MAX_MANIFEST_BYTES`] + 1 bytes of it (it may
/// have grown since its size was checked).
fn read_capped(file: &Path) -> Result<String, LoadError> {
    let io_err = |source| LoadError::Io {
        path: file.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(file)
        .map_err(io_err)?
        .take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    // The size first: a read cut at the cap may end inside a character.
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(LoadError::FileTooLarge {
            name: display(file),
            size: bytes.len() as u64,
            limit: MAX_MANIFEST_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// Loads files and directories (non-recursive: the `*.yaml` and `*.yml` files in them,
/// in name order) into one set: [`load`] of [`Source::Path`]s.
///
/// # Errors
/// As [`load`].
pub fn load_paths(paths: &[PathBuf]) -> Result<ObjectSet, LoadError> {
    let sources: Vec<Source<'_>> = paths.iter().map(|p| Source::Path(p)).collect();
    load(&sources)
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

/// Loads one YAML text (one or more documents); `source_name` is used in errors: [`load`]
/// of one [`Source::Text`].
///
/// # Errors
/// As [`load`].
pub fn load_str(source_name: &str, text: &str) -> Result<ObjectSet, LoadError> {
    load(&[Source::Text {
        name: source_name,
        text,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_even_when_the_size_lies() {
        // A character device reports size 0 and never ends: only the bounded read stops.
        let err = read_capped(Path::new("/dev/zero")).expect_err("endless input");
        match err {
            LoadError::FileTooLarge { name, size, limit } => {
                assert_eq!(name, "/dev/zero");
                assert_eq!(size, MAX_MANIFEST_BYTES as u64 + 1);
                assert_eq!(limit, MAX_MANIFEST_BYTES);
            }
            other => panic!("expected FileTooLarge, got {other}"),
        }
    }
}

//! Golden tests: each directory under `tests/fixtures/` holds input manifests (every
//! `*.yaml` except `expected-*`), `expected-status.yaml` (the documents `udplb check`
//! prints) and `expected-forwarding.yaml` (see `config::forwarding_yaml`). Both are
//! compared structurally (parsed to values), so formatting does not matter.
//!
//! `UDPLB_BLESS=1 cargo test -p config --test golden` rewrites the expected files; review
//! the diff by hand before committing it.

mod support;

#[cfg(test)]
mod tests {
    use crate::support::{fixture_params, fixtures_dir};
    use std::fs;
    use std::path::{Path, PathBuf};

    use config::{compile, forwarding_yaml, load_paths, status_yaml};
    use serde::Deserialize;

    fn documents(text: &str) -> Vec<serde_json::Value> {
        serde_norway::Deserializer::from_str(text)
            .map(|d| serde_json::Value::deserialize(d).expect("expected file is YAML"))
            .filter(|v| !v.is_null())
            .collect()
    }

    fn inputs(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .expect("fixture dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                name.ends_with(".yaml") && !name.starts_with("expected-")
            })
            .collect();
        files.sort();
        files
    }

    fn compare(dir: &Path, file: &str, actual: &str, bless: bool, failures: &mut Vec<String>) {
        let path = dir.join(file);
        if bless {
            fs::write(&path, actual).expect("write expected");
            return;
        }
        let expected = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UDPLB_BLESS=1)", path.display()));
        if documents(&expected) != documents(actual) {
            failures.push(format!(
                "{}: mismatch\n--- expected\n{expected}\n--- actual\n{actual}",
                path.display()
            ));
        }
    }

    #[test]
    fn fixtures_match_expected_status_and_forwarding() {
        let root = fixtures_dir();
        let bless = std::env::var_os("UDPLB_BLESS").is_some();
        let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
            .expect("fixtures dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        assert!(
            dirs.len() >= 25,
            "expected the full fixture set, found {}",
            dirs.len()
        );
        let mut failures = Vec::new();
        for dir in &dirs {
            let set = load_paths(&inputs(dir))
                .unwrap_or_else(|e| panic!("{}: input does not load: {e}", dir.display()));
            let compiled = compile(&set, &fixture_params());
            compare(
                dir,
                "expected-status.yaml",
                &status_yaml(&compiled.status),
                bless,
                &mut failures,
            );
            compare(
                dir,
                "expected-forwarding.yaml",
                &forwarding_yaml(&compiled.forwarding),
                bless,
                &mut failures,
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }
}

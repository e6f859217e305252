//! The loader as the one validator: size caps, and the same problems whether a set comes
//! as files (`udplb check`, the file watcher) or as a text (`PUT /v1/manifests`).

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::{Path, PathBuf};

    use config::check::{self, CheckOptions};
    use config::load::{load, load_paths, load_str, LoadError, Source};
    use config::{MAX_MANIFEST_BYTES, MAX_SET_BYTES};

    /// A directory of this test's own, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "udplb-config-loading-{name}-{}",
                std::process::id()
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: udplb}\nspec: {controllerName: udplb.io/appliance}\n";

    /// Inputs with several problems of different stages (parse, schema, duplicates).
    fn bad_inputs() -> Vec<(&'static str, String)> {
        let gateway = "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  gatewayClassName: udplb\n  listeners: [{name: dns, port: 70000, protocol: UDP}]\n";
        let service =
            "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 53}]}\n";
        vec![
            // The case: a GatewayClass defined twice, next to another problem.
            ("class-twice", format!("{CLASS}---\n{gateway}---\n{CLASS}")),
            (
                "service-twice-in-a-list",
                format!(
                    "apiVersion: v1\nkind: List\nitems:\n- {}\n- {}\n---\n{gateway}",
                    service.replace('\n', "\n  "),
                    service.replace('\n', "\n  ")
                ),
            ),
            (
                "big-port-and-twice",
                format!(
                    "{CLASS}---\n{}---\n{CLASS}",
                    gateway.replace("70000", "18446744073709551616")
                ),
            ),
            (
                "bad-yaml-after-a-duplicate",
                format!("{service}---\n{service}---\nkind: [unclosed\n"),
            ),
        ]
    }

    fn error_text(r: Result<config::ObjectSet, LoadError>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_text_and_a_file_give_check_s_list_of_problems() {
        let dir = TempDir::new("same");
        for (name, yaml) in bad_inputs() {
            let file = dir.path().join(format!("{name}.yaml"));
            fs::write(&file, &yaml).expect("write");
            let checked = check::run(std::slice::from_ref(&file), &CheckOptions::default());
            assert_eq!(checked.exit_code, 2, "{name}");
            let as_text = error_text(load_str(&file.display().to_string(), &yaml));
            assert_eq!(as_text, checked.stderr_summary, "{name}");
            // Every stage's problem is there, duplicates included.
            assert!(as_text.contains("defined twice"), "{name}: {as_text}");
            assert!(
                as_text.lines().count() > 2,
                "{name}: expected several problems: {as_text}"
            );
        }
    }

    #[test]
    fn duplicates_across_files_and_texts_are_all_reported() {
        let dir = TempDir::new("across");
        let one = dir.path().join("1.yaml");
        let two = dir.path().join("2.yaml");
        // 1.yaml defines the class twice; 2.yaml a third time, plus a problem of its own.
        fs::write(&one, format!("{CLASS}---\n{CLASS}")).expect("write");
        fs::write(
            &two,
            format!("{CLASS}---\napiVersion: v1\nkind: Service\nmetadata: {{name: s}}\nspec: {{ports: [{{port: 0}}]}}\n"),
        )
        .expect("write");
        let text = error_text(load_paths(&[dir.path().to_path_buf()]));
        let first = format!("first at {}: document 1", one.display());
        assert_eq!(
            text.lines().skip(1).map(str::trim).collect::<Vec<_>>(),
            [
                format!("{}: document 2: Service default/s: spec.ports[0].port: 0 is out of range 1..=65535", two.display()),
                format!("{}: document 2: GatewayClass udplb: defined twice; {first}", one.display()),
                format!("{}: document 1: GatewayClass udplb: defined twice; {first}", two.display()),
            ]
        );
        // The same through texts.
        let one_text = fs::read_to_string(&one).expect("read");
        let two_text = fs::read_to_string(&two).expect("read");
        let texts = [
            Source::Text {
                name: &one.display().to_string(),
                text: &one_text,
            },
            Source::Text {
                name: &two.display().to_string(),
                text: &two_text,
            },
        ];
        assert_eq!(error_text(load(&texts)), text);
    }

    #[test]
    fn merge_refuses_duplicates_and_leaves_the_set_unchanged() {
        let service =
            |name: &str| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\n");
        let mut set = load_str("a.yaml", &format!("{CLASS}---\n{}", service("a"))).expect("valid");
        let before = set.clone();
        let clash = load_str("b.yaml", &format!("{}---\n{CLASS}", service("b"))).expect("valid");
        let err = set.merge(clash).expect_err("the class is defined twice");
        assert_eq!(
            err.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["b.yaml: document 2: GatewayClass udplb: defined twice; first at a.yaml: document 1"]
        );
        assert_eq!(set, before);
        set.merge(load_str("c.yaml", &service("c")).expect("valid"))
            .expect("no duplicate");
        assert_eq!(set.len(), 3);
        assert_eq!(set.services.len(), 2);
    }

    #[test]
    fn an_oversized_file_is_refused_from_its_size_without_reading_it() {
        let dir = TempDir::new("big");
        let small = dir.path().join("a.yaml");
        fs::write(&small, CLASS).expect("write");
        // A sparse 2 GiB file: reading it would take 2 GiB of memory.
        let huge = dir.path().join("b.yaml");
        fs::File::create(&huge)
            .and_then(|f| f.set_len(2 << 30))
            .expect("sparse file");
        let err = load_paths(&[dir.path().to_path_buf()]).expect_err("over the cap");
        match &err {
            LoadError::FileTooLarge { name, size, limit } => {
                assert_eq!(name, &huge.display().to_string());
                // The size comes from the metadata, not from a (bounded) read.
                assert_eq!(*size, 2 << 30);
                assert_eq!(*limit, MAX_MANIFEST_BYTES);
            }
            other => panic!("expected FileTooLarge, got {other}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "{}: 2147483648 bytes is over the limit of 16777216 bytes (16 MiB) for one manifest file or body",
                huge.display()
            )
        );
        // One byte over is over; at the cap is not refused for its size.
        fs::File::create(&huge)
            .and_then(|f| f.set_len(MAX_MANIFEST_BYTES as u64 + 1))
            .expect("sparse file");
        assert!(matches!(
            load_paths(std::slice::from_ref(&huge)),
            Err(LoadError::FileTooLarge { .. })
        ));
        fs::File::create(&huge)
            .and_then(|f| f.set_len(MAX_MANIFEST_BYTES as u64))
            .expect("sparse file");
        assert!(matches!(
            load_paths(std::slice::from_ref(&huge)),
            Err(LoadError::Invalid(_))
        ));
    }

    #[test]
    fn an_oversized_text_is_refused() {
        let mut text = String::from(CLASS);
        text.push_str(&"#".repeat(MAX_MANIFEST_BYTES + 1 - text.len()));
        let err = load_str("PUT /v1/manifests", &text).expect_err("over the cap");
        assert_eq!(
            err.to_string(),
            "PUT /v1/manifests: 16777217 bytes is over the limit of 16777216 bytes (16 MiB) for one manifest file or body"
        );
        text.pop();
        assert!(load_str("PUT /v1/manifests", &text).is_ok(), "at the cap");
    }

    #[test]
    fn a_set_over_the_total_cap_is_refused_before_reading() {
        let dir = TempDir::new("set");
        let files = MAX_SET_BYTES / MAX_MANIFEST_BYTES + 1;
        for i in 0..files {
            fs::File::create(dir.path().join(format!("{i}.yaml")))
                .and_then(|f| f.set_len(MAX_MANIFEST_BYTES as u64))
                .expect("sparse file");
        }
        let err = load_paths(&[dir.path().to_path_buf()]).expect_err("over the set cap");
        let last = dir.path().join(format!("{}.yaml", files - 1));
        assert_eq!(
            err.to_string(),
            format!(
                "the manifests add up to {} bytes (at {}), over the limit of 67108864 bytes (64 MiB) for one set",
                files * MAX_MANIFEST_BYTES,
                last.display()
            )
        );
    }
}

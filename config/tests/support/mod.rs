//! What the config integration tests share: where the fixtures are, the compile
//! parameters they are written for, and `udplb check` of one of them.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use config::check::{run, CheckOptions, CheckOutcome};
use config::CompileParams;

/// The crate's directory (fixtures and examples are below it).
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures`: one directory per behaviour.
pub fn fixtures_dir() -> PathBuf {
    manifest_dir().join("tests/fixtures")
}

/// The parameters every fixture is compiled with: default VIPs for Gateways without
/// addresses (the golden files name them).
pub fn fixture_params() -> CompileParams {
    CompileParams {
        default_vips: vec![
            "198.18.0.1".parse::<IpAddr>().expect("literal"),
            "2001:2::1".parse::<IpAddr>().expect("literal"),
        ],
        ..CompileParams::default()
    }
}

/// `udplb check` of fixture `name`'s input, with the default options.
pub fn check_fixture(name: &str) -> CheckOutcome {
    run(
        &[fixtures_dir().join(name).join("input.yaml")],
        &CheckOptions::default(),
    )
}

//! The release profile the Lambda artefact is built with keeps panics unwinding.
//!
//! `http::dispatch` answers a panicking handler with a 500 and the execution environment
//! keeps serving, which needs unwinding. `cargo lambda build` (what `sam build` runs) adds
//! `panic = "abort"` to a release profile that does not name a panic strategy, so leaving
//! the line out would turn every panic in AWS into a dead environment while every test here,
//! built without cargo lambda, still passed.

use custdata_tests::workspace_root;

/// The `key = value` lines of one `[table]` of a TOML file, as written.
fn table_lines(toml: &str, table: &str) -> Vec<String> {
    let header = format!("[{table}]");
    toml.lines()
        .map(str::trim)
        .skip_while(|line| *line != header)
        .skip(1)
        .take_while(|line| !line.starts_with('['))
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn the_release_profile_names_unwind_as_its_panic_strategy() {
    let manifest =
        std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("Cargo.toml");
    let release = table_lines(&manifest, "profile.release");
    assert!(!release.is_empty(), "Cargo.toml has a [profile.release]");
    assert!(
        release.iter().any(|line| line == "panic = \"unwind\""),
        "[profile.release] must say panic = \"unwind\": {release:?}"
    );
}

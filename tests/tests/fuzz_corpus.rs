//! Every input the fuzzers kept — the corpus of each cargo-fuzz target under `fuzz/corpus/`
//! and every crash they found, kept under `fuzz/regressions/` — replayed through the same
//! entry points on stable Rust, so a fixed crash stays fixed.

use std::path::Path;

use custdata::fuzz::TARGETS;
use custdata_tests::workspace_root;

fn inputs(directory: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return Vec::new();
    };
    let mut found: Vec<(String, Vec<u8>)> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_file())
        .map(|entry| {
            let bytes = std::fs::read(entry.path()).expect("a readable input");
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    found.sort();
    found
}

#[test]
fn every_kept_input_and_every_crash_found_passes_its_target() {
    let fuzz = workspace_root().join("fuzz");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{name}.rs"))
                .exists(),
            "custdata::fuzz::{name} has a cargo-fuzz target"
        );
        let corpus = inputs(&fuzz.join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} holds at least the seeds"
        );
        let crashes = inputs(&fuzz.join("regressions").join(name));
        for (file, input) in corpus.iter().chain(&crashes) {
            let outcome = std::panic::catch_unwind(|| target(input));
            assert!(outcome.is_ok(), "{name}: the input {file} breaks a rule");
            replayed += 1;
        }
    }
    println!("replayed {replayed} fuzz inputs");
}

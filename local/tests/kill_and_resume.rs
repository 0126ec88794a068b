//! SIGKILL in the middle of a load, then a restart: this package's own binary as a child
//! process, on the embedded store. An AIXON import (the server resumes it from its
//! checkpoint) and an MXO staging load (the client re-sends what was not acknowledged) end
//! with every input row stored once with its values: 0 lost, 0 duplicated, 0 wrong.
//! `bench-kill-resume` runs the same at 1,000,000 rows.

use std::path::Path;

use custdata_tests::kill_resume::{self, ResumeReport};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_custdata-local"))
}

fn assert_whole(report: &ResumeReport) {
    println!("{report:?}");
    assert!(
        report.done_at_kill > 0 && report.done_at_kill < report.rows,
        "the kill came mid-load: {report:?}"
    );
    assert_eq!(
        (report.intact, report.lost, report.duplicated, report.wrong),
        (report.rows, 0, 0, 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aixon_import_killed_midway_resumes_after_restart_and_loses_nothing() {
    assert_whole(&kill_resume::aixon_import(binary(), 6_000, 0.3).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mxo_staging_load_killed_midway_is_finished_by_resending_and_loses_nothing() {
    assert_whole(&kill_resume::mxo_staging(binary(), 20_000, 1_000, 0.5).await);
}

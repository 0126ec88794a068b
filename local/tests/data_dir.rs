//! The data directory is private whatever the umask: this package's own binary started
//! under umask 022 (the usual one, which leaves new files readable by everyone) writes its
//! database, secrets and blobs, and every file it made is 0600, every directory 0700. (The
//! blob files themselves, deleted once imported, are checked by `custdata::files`' tests.)

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use custdata_tests::aixon::{create_cell, presigned_patch, wait_until_finished};
use custdata_tests::kill_resume::LocalProcess;

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_custdata-local"))
}

/// Every path under `root` (itself included) with its permission bits.
fn modes(root: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        let metadata = std::fs::symlink_metadata(&path).expect("metadata");
        if metadata.is_dir() {
            for entry in std::fs::read_dir(&path).expect("a directory") {
                pending.push(entry.expect("an entry").path());
            }
        }
        found.push((
            path,
            metadata.is_dir(),
            metadata.permissions().mode() & 0o777,
        ));
    }
    found
}

fn assert_private(root: &Path) {
    let found = modes(root);
    let open: Vec<_> = found
        .iter()
        .filter(|(_, is_dir, mode)| *mode != if *is_dir { 0o700 } else { 0o600 })
        .map(|(path, _, mode)| format!("{} {mode:o}", path.display()))
        .collect();
    assert!(open.is_empty(), "not private: {open:#?}");
    for name in ["custdata.redb", "blobs", "signing.key"] {
        assert!(
            found.iter().any(|(path, _, _)| path == &root.join(name)),
            "{name} was written"
        );
    }
    // The bodies themselves are deleted once imported; the directories they went through
    // (one per tenant and cell) remain.
    let cells = root.join("blobs").join("objects").join("aixon");
    assert!(
        found
            .iter()
            .any(|(path, is_dir, _)| *is_dir && path.starts_with(&cells) && path != &cells),
        "blobs were written too: {found:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_file_of_the_data_directory_is_private_under_umask_022() {
    let dir = tempfile::tempdir().expect("a directory");
    let data_dir = dir.path().join("data");
    let server = LocalProcess::start_with_umask(binary(), &data_dir, Some(0o022)).await;
    let client = reqwest::Client::new();
    let key = server.credentials.aixon.api_key.clone();
    // An inline body and a presigned upload: both are stored as blobs, then imported.
    let (cell, created) = create_cell(
        &client,
        &server.base_url,
        &key,
        "private",
        "customuid,txt_region\nc-1,north\n",
    )
    .await;
    let body = "customuid,txt_region\nc-2,south\n";
    let patched = presigned_patch(
        &client,
        &server.base_url,
        &key,
        &cell,
        body.into(),
        body.len() as u64,
    )
    .await;
    for update in [created, patched] {
        let status = wait_until_finished(
            &client,
            &server.base_url,
            &key,
            &cell,
            &update,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(status["status"], "DONE", "{status}");
    }
    assert_private(&data_dir);
    server.stop();
    assert_private(&data_dir);
}

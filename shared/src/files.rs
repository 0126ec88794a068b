//! Files in the data directory: every one readable by its owner only, whatever the umask.
//! Files are created 0600 and directories 0700 (the mode is given at creation, so there is
//! no moment when they are open to others); the data directory and the database file are
//! also tightened when they already exist, so a directory from an older version becomes
//! private on the next start.

use std::io::Write;
use std::path::Path;

/// Mode of every file custdata creates in the data directory.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of every directory custdata creates in the data directory.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Writes a file readable by its owner only, atomically (temp file + rename).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let temp = path.with_extension("partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    let mut file = options.open(&temp).map_err(fail)?;
    file.write_all(contents).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&temp, path).map_err(fail)
}

/// Sets `path`'s mode (no-op off Unix).
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}

/// A directory and its missing parents, created 0700; `path` itself is made 0700 when it
/// already existed. For the data directory and the blob store's root.
pub fn private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder.create(path)?;
    set_mode(path, PRIVATE_DIR_MODE)
}

/// [`private_dir`] without the tightening, for the many directories the blob store creates
/// as it writes (one `mkdir` for a new directory, nothing more for an existing one).
pub async fn create_private_dirs(path: &Path) -> std::io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(PRIVATE_DIR_MODE);
    builder.create(path).await
}

/// A new file for writing, created 0600; fails if it exists.
pub async fn create_private_file(path: &Path) -> std::io::Result<tokio::fs::File> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    options.open(path).await
}

/// Makes sure a file exists and is 0600 before another library opens it: created empty
/// (0600) when absent, tightened when present. The embedded database file is made so before
/// redb opens it (redb initialises an empty file as a new database).
pub fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    drop(options.open(path)?);
    set_mode(path, PRIVATE_FILE_MODE)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn an_existing_open_directory_and_file_are_made_private() {
        let dir = tempfile::tempdir().expect("dir");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("mkdir");
        set_mode(&data, 0o755).expect("chmod");
        let file = data.join("custdata.redb");
        std::fs::write(&file, b"kept").expect("write");
        set_mode(&file, 0o644).expect("chmod");
        private_dir(&data).expect("private dir");
        private_file(&file).expect("private file");
        assert_eq!((mode(&data), mode(&file)), (0o700, 0o600));
        assert_eq!(
            std::fs::read(&file).expect("read"),
            b"kept",
            "contents kept"
        );
    }

    #[tokio::test]
    async fn new_directories_and_files_are_private() {
        let dir = tempfile::tempdir().expect("dir");
        let nested = dir.path().join("a").join("b");
        create_private_dirs(&nested).await.expect("dirs");
        let file = nested.join("f");
        drop(create_private_file(&file).await.expect("file"));
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&file), 0o600);
    }
}

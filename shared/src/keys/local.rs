//! The keys of a data directory: `hash.key` (the identifier-hash key, hex) and `signing.key`
//! (the signing keys, JSON), each created 0600 on first use.
//!
//! Migration: before the keys were split, `signing.key` held one hex key that both signed
//! and keyed the identifier hashes. When `hash.key` is missing and `signing.key` is in that
//! old form, `hash.key` becomes a copy of it (so every stored identifier hash still
//! matches), and `signing.key` is replaced by fresh signing keys: cursors and upload URLs
//! handed out before the upgrade are refused once, nothing stored changes.

use std::path::Path;

use super::{HashKey, Home, Keyring, SigningKeys};

/// The identifier-hash key's file in the data directory.
pub const HASH_KEY_FILE: &str = "hash.key";
/// The signing keys' file in the data directory.
pub const SIGNING_KEYS_FILE: &str = "signing.key";

fn read(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

fn hash_key_of(path: &Path, text: &str) -> Result<HashKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|_| format!("{} is not hex", path.display()))?;
    HashKey::new(bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The old form of `signing.key`: one hex key (not JSON).
fn is_single_hex_key(text: &str) -> bool {
    !text.trim_start().starts_with('{')
}

/// The data directory's keys, created on first use and migrated from the single old key
/// (see the module's documentation). Refuses to start when `hash.key` is lost while
/// `signing.key` already holds split keys: a new hash key would orphan every identifier
/// lookup and let erased customers back in.
pub fn keys_of_data_dir(data_dir: &Path) -> Result<(HashKey, Keyring), String> {
    crate::files::private_dir(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let hash_path = data_dir.join(HASH_KEY_FILE);
    let signing_path = data_dir.join(SIGNING_KEYS_FILE);
    let signing_text = read(&signing_path)?;
    let hash_key = match (read(&hash_path)?, &signing_text) {
        (Some(text), _) => hash_key_of(&hash_path, &text)?,
        (None, Some(old)) if is_single_hex_key(old) => {
            let key = hash_key_of(&signing_path, old)?;
            crate::files::write_private(&hash_path, old.trim().as_bytes())?;
            tracing::info!("hash.key created from the single key of an older signing.key");
            key
        }
        (None, Some(_)) => {
            return Err(format!(
                "{} is missing while {} holds signing keys: the key of this data directory's \
                 identifier hashes is lost. Restore it from a backup; a new one would orphan \
                 every identifier lookup and lift every suppression.",
                hash_path.display(),
                signing_path.display()
            ));
        }
        (None, None) => {
            let mut bytes = vec![0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
            crate::files::write_private(&hash_path, hex::encode(&bytes).as_bytes())?;
            HashKey::new(bytes)?
        }
    };
    let signing = match signing_text {
        Some(text) if !is_single_hex_key(&text) => {
            SigningKeys::parse(&text).map_err(|e| format!("{}: {e}", signing_path.display()))?
        }
        _ => {
            let fresh = SigningKeys::generate();
            crate::files::write_private(&signing_path, fresh.to_json().as_bytes())?;
            fresh
        }
    };
    Ok((
        hash_key,
        Keyring::with_home(signing, Home::File(signing_path)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: &[&str] = &["p"];

    #[test]
    fn a_fresh_directory_gets_both_keys_and_keeps_them() {
        let dir = tempfile::tempdir().expect("dir");
        let (hash, ring) = keys_of_data_dir(dir.path()).expect("created");
        let (again_hash, again_ring) = keys_of_data_dir(dir.path()).expect("read");
        assert_eq!(hash.hash("x"), again_hash.hash("x"));
        assert_eq!(ring.keys(), again_ring.keys());
        #[cfg(unix)]
        for file in [HASH_KEY_FILE, SIGNING_KEYS_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(file))
                .expect("meta")
                .permissions();
            assert_eq!(mode.mode() & 0o777, 0o600, "{file}");
        }
    }

    #[test]
    fn an_old_single_key_becomes_the_hash_key_and_signing_keys_are_new() {
        let dir = tempfile::tempdir().expect("dir");
        let old = "ab".repeat(32);
        std::fs::write(dir.path().join(SIGNING_KEYS_FILE), format!("{old}\n")).expect("old");
        let (hash, ring) = keys_of_data_dir(dir.path()).expect("migrated");
        let before = HashKey::new(hex::decode(&old).expect("hex")).expect("key");
        assert_eq!(
            hash.hash("id\u{0}email\u{0}a@b"),
            before.hash("id\u{0}email\u{0}a@b")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(HASH_KEY_FILE)).expect("hash.key"),
            old
        );
        assert_eq!(ring.keys().current_id, "1");
        let (id, tag) = ring.sign(PARTS);
        let (_, reread) = keys_of_data_dir(dir.path()).expect("again");
        assert_eq!(reread.verify(&id, PARTS, &tag, 0), Ok(()));
    }

    #[tokio::test]
    async fn a_rotation_is_written_to_signing_key_and_the_hash_key_stays() {
        let dir = tempfile::tempdir().expect("dir");
        let (hash, ring) = keys_of_data_dir(dir.path()).expect("created");
        let (id, tag) = ring.sign(PARTS);
        ring.rotate(1_000, 600).await.expect("rotates");
        let (hash_after, reread) = keys_of_data_dir(dir.path()).expect("read");
        assert_eq!(hash.hash("x"), hash_after.hash("x"));
        assert_eq!(reread.keys().current_id, "2");
        assert_eq!(reread.verify(&id, PARTS, &tag, 1_599), Ok(()));
        assert!(reread.verify(&id, PARTS, &tag, 1_600).is_err());
    }

    #[test]
    fn a_lost_hash_key_beside_split_signing_keys_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        keys_of_data_dir(dir.path()).expect("created");
        std::fs::remove_file(dir.path().join(HASH_KEY_FILE)).expect("rm");
        let refused = keys_of_data_dir(dir.path()).expect_err("refused");
        assert!(refused.contains("Restore it from a backup"), "{refused}");
    }
}

//! The deployment's two kinds of key, each with one job (ARCHITECTURE.md, principle 10).
//!
//! - The **hash key** ([`HashKey`]) keys every hash that stands in for an identifier: the
//!   identifier index, AIXON and Monetate row keys, suppressions. It never rotates: a new
//!   one would orphan every identifier lookup and let every erased customer back in.
//! - The **signing keys** ([`SigningKeys`], shared as a [`Keyring`]) sign what custdata
//!   hands out and later takes back: query cursors and the local store's upload URLs. Each
//!   signed artefact names the id of the key that signed it; after a rotation the previous
//!   key is still accepted until its stated end (the grace period), then refused.
//!
//! Tokens and API keys are not signed: they are random secrets stored as hashes
//! ([`crate::tenancy`]), so neither key touches them.
//!
//! Where the keys live: the data directory locally ([`local`]), Secrets Manager in AWS
//! ([`secrets`]), read once when the process starts.

pub mod local;
pub mod secrets;

use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The fewest bytes a key may have: 256 bits.
pub const MIN_KEY_BYTES: usize = 32;
/// How long the previous signing key stays valid after a rotation unless told otherwise:
/// longer than any signed artefact is meant to live (an upload URL lives an hour).
pub const DEFAULT_GRACE_SECONDS: i64 = 86_400;
/// The longest grace period a rotation may give (30 days).
pub const MAX_GRACE_SECONDS: i64 = 30 * 86_400;

/// The key of every identifier hash: one per deployment, never rotated.
#[derive(Clone)]
pub struct HashKey(Arc<Vec<u8>>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A hash key of at least [`MIN_KEY_BYTES`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<HashKey, String> {
        let bytes = bytes.into();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(format!(
                "the identifier-hash key must be at least {MIN_KEY_BYTES} bytes, not {}",
                bytes.len()
            ));
        }
        Ok(HashKey(Arc::new(bytes)))
    }

    /// HMAC-SHA256 of a value, hex: stable per deployment, meaningless without the key.
    pub fn hash(&self, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// The signing keys as stored (a JSON object): the current key, and the previous one with the
/// time (epoch seconds) until which it is still accepted. A key's bytes are its string's
/// UTF-8 bytes, so Secrets Manager's generated strings serve as they are.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    pub current_id: String,
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<i64>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current_id", &self.current_id)
            .field("previous_id", &self.previous_id)
            .field("previous_until", &self.previous_until)
            .finish_non_exhaustive()
    }
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the signature does not match")]
    Mismatch,
    #[error("it was signed with a key this deployment does not have (key id {0:?})")]
    UnknownKey(String),
    #[error("it was signed with a retired key (key id {0:?}), accepted only until {1}")]
    Retired(String, String),
}

/// A new random key: 32 random bytes as 64 hex characters (used as the characters' bytes).
fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn check_key(id: &str, key: &str) -> Result<(), String> {
    let id_ok = !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(format!(
            "signing key id {id:?} must be 1 to 32 letters, digits, '-' or '_'"
        ));
    }
    if key.len() < MIN_KEY_BYTES {
        return Err(format!(
            "signing key {id:?} must be at least {MIN_KEY_BYTES} bytes, not {}",
            key.len()
        ));
    }
    Ok(())
}

/// HMAC-SHA256 over the key id and the parts, each followed by a NUL.
fn tag(key: &str, id: &str, parts: &[&str]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    for part in std::iter::once(id).chain(parts.iter().copied()) {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().to_vec()
}

impl SigningKeys {
    /// One key and no previous one.
    pub fn single(id: &str, key: &str) -> Result<SigningKeys, String> {
        check_key(id, key)?;
        Ok(SigningKeys {
            current_id: id.to_string(),
            current: key.to_string(),
            previous_id: None,
            previous: None,
            previous_until: None,
        })
    }

    /// A fresh random key with id `1`.
    pub fn generate() -> SigningKeys {
        SigningKeys::single("1", &random_key()).expect("a generated key is valid")
    }

    /// Reads the stored JSON form, checking every key.
    pub fn parse(text: &str) -> Result<SigningKeys, String> {
        let keys: SigningKeys = serde_json::from_str(text).map_err(|e| {
            format!("the signing keys are not a JSON object of current_id and current: {e}")
        })?;
        check_key(&keys.current_id, &keys.current)?;
        match (&keys.previous_id, &keys.previous, keys.previous_until) {
            (None, None, None) => {}
            (Some(id), Some(key), Some(_)) => {
                check_key(id, key)?;
                if *id == keys.current_id {
                    return Err(format!(
                        "the previous signing key has the current id {id:?}"
                    ));
                }
            }
            _ => {
                return Err(
                    "previous_id, previous and previous_until go together: all or none".into(),
                );
            }
        }
        Ok(keys)
    }

    /// The stored JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain strings and numbers serialize")
    }

    /// The keys after a rotation at `now` (epoch seconds): a new random current key, and the
    /// current one accepted for `grace_seconds` more. A previous key still in its grace is
    /// dropped: two rotations within one grace period end the first one early.
    pub fn rotated(&self, now: i64, grace_seconds: i64) -> SigningKeys {
        let next_id = self
            .current_id
            .parse::<u64>()
            .map(|n| (n + 1).to_string())
            .unwrap_or_else(|_| format!("k{}", uuid::Uuid::new_v4().simple()));
        SigningKeys {
            current_id: next_id,
            current: random_key(),
            previous_id: Some(self.current_id.clone()),
            previous: Some(self.current.clone()),
            previous_until: Some(now + grace_seconds),
        }
    }

    /// Signs the parts with the current key: its id and the tag.
    pub fn sign(&self, parts: &[&str]) -> (String, Vec<u8>) {
        (
            self.current_id.clone(),
            tag(&self.current, &self.current_id, parts),
        )
    }

    /// Checks a tag made by [`SigningKeys::sign`] with the key `id`, at `now` (epoch seconds):
    /// the current key always, the previous one until its grace ends.
    pub fn verify(&self, id: &str, parts: &[&str], given: &[u8], now: i64) -> Result<(), Refusal> {
        let key = if id == self.current_id {
            &self.current
        } else {
            match (&self.previous_id, &self.previous, self.previous_until) {
                (Some(previous_id), Some(key), Some(until)) if previous_id == id => {
                    if now >= until {
                        return Err(Refusal::Retired(
                            id.to_string(),
                            crate::clock::iso8601_millis(until * 1000),
                        ));
                    }
                    key
                }
                _ => return Err(Refusal::UnknownKey(id.to_string())),
            }
        };
        let expected = tag(key, id, parts);
        if subtle::ConstantTimeEq::ct_eq(expected.as_slice(), given).into() {
            Ok(())
        } else {
            Err(Refusal::Mismatch)
        }
    }
}

/// Where a keyring's rotations are written.
enum Home {
    /// Nowhere: tests, and the admin CLI's own cursors.
    Memory,
    /// `signing.key` of a data directory.
    File(std::path::PathBuf),
    /// A Secrets Manager secret (a rotation puts a new version).
    Secret(secrets::SecretHome),
}

/// The signing keys one process uses, shared by everything that signs (cursors, upload
/// URLs) so that a rotation reaches all of them at once.
#[derive(Clone)]
pub struct Keyring {
    keys: Arc<RwLock<SigningKeys>>,
    home: Arc<Home>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Keyring").field(&self.keys()).finish()
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    pub current_key_id: String,
    pub previous_key_id: String,
    /// Epoch seconds until which the previous key is accepted.
    pub previous_accepted_until: i64,
    /// The same, ISO 8601.
    pub previous_accepted_until_iso: String,
}

impl Keyring {
    fn with_home(keys: SigningKeys, home: Home) -> Keyring {
        Keyring {
            keys: Arc::new(RwLock::new(keys)),
            home: Arc::new(home),
        }
    }

    /// Keys kept in memory only; a rotation changes this process alone.
    pub fn in_memory(keys: SigningKeys) -> Keyring {
        Keyring::with_home(keys, Home::Memory)
    }

    /// One key, in memory: tests and short-lived processes.
    pub fn single(id: &str, key: &str) -> Result<Keyring, String> {
        Ok(Keyring::in_memory(SigningKeys::single(id, key)?))
    }

    /// Runs `f` on the keys as they are now (a rotation waits for it).
    fn with_keys<T>(&self, f: impl FnOnce(&SigningKeys) -> T) -> T {
        match self.keys.read() {
            Ok(keys) => f(&keys),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// A snapshot of the keys.
    pub fn keys(&self) -> SigningKeys {
        self.with_keys(SigningKeys::clone)
    }

    /// Signs the parts with the current key: its id and the tag.
    pub fn sign(&self, parts: &[&str]) -> (String, Vec<u8>) {
        self.with_keys(|keys| keys.sign(parts))
    }

    /// Checks a tag: see [`SigningKeys::verify`].
    pub fn verify(&self, id: &str, parts: &[&str], given: &[u8], now: i64) -> Result<(), Refusal> {
        self.with_keys(|keys| keys.verify(id, parts, given, now))
    }

    /// Rotates at `now` (epoch seconds) with the previous key accepted for `grace_seconds`:
    /// the new keys are written where they live first, then used by this process.
    pub async fn rotate(&self, now: i64, grace_seconds: i64) -> Result<Rotation, String> {
        if !(0..=MAX_GRACE_SECONDS).contains(&grace_seconds) {
            return Err(format!(
                "the grace period is 0 to {MAX_GRACE_SECONDS} seconds, not {grace_seconds}"
            ));
        }
        let rotated = self.keys().rotated(now, grace_seconds);
        match self.home.as_ref() {
            Home::Memory => {}
            Home::File(path) => crate::files::write_private(path, rotated.to_json().as_bytes())?,
            Home::Secret(home) => home.put(&rotated.to_json()).await?,
        }
        let until = now + grace_seconds;
        let rotation = Rotation {
            current_key_id: rotated.current_id.clone(),
            previous_key_id: rotated.previous_id.clone().unwrap_or_default(),
            previous_accepted_until: until,
            previous_accepted_until_iso: crate::clock::iso8601_millis(until * 1000),
        };
        match self.keys.write() {
            Ok(mut keys) => *keys = rotated,
            Err(poisoned) => *poisoned.into_inner() = rotated,
        }
        Ok(rotation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTS: &[&str] = &["tenant#x", "row#5"];

    #[test]
    fn the_previous_key_is_accepted_until_its_grace_ends_then_refused() {
        let before = SigningKeys::generate();
        let (old_id, old_tag) = before.sign(PARTS);
        let after = before.rotated(1_000, 600);
        assert_eq!(after.current_id, "2");
        assert_eq!(after.previous_id.as_deref(), Some("1"));
        let (new_id, new_tag) = after.sign(PARTS);
        assert_eq!(new_id, "2");

        assert_eq!(after.verify(&old_id, PARTS, &old_tag, 1_599), Ok(()));
        assert!(matches!(
            after.verify(&old_id, PARTS, &old_tag, 1_600),
            Err(Refusal::Retired(..))
        ));
        assert_eq!(after.verify(&new_id, PARTS, &new_tag, 1_000_000), Ok(()));
        // A tag is bound to its parts and to the key id it names.
        assert_eq!(
            after.verify(&old_id, &["tenant#y", "row#5"], &old_tag, 1_000),
            Err(Refusal::Mismatch)
        );
        assert_eq!(
            after.verify(&new_id, PARTS, &old_tag, 1_000),
            Err(Refusal::Mismatch)
        );
        // A second rotation forgets the first key at once.
        let again = after.rotated(1_100, 600);
        assert_eq!(
            again.verify(&old_id, PARTS, &old_tag, 1_100),
            Err(Refusal::UnknownKey("1".into()))
        );
        assert_eq!(again.verify(&new_id, PARTS, &new_tag, 1_699), Ok(()));
    }

    #[test]
    fn the_stored_form_round_trips_and_bad_forms_are_refused() {
        let keys = SigningKeys::generate().rotated(5, 10);
        assert_eq!(SigningKeys::parse(&keys.to_json()), Ok(keys));
        // What Secrets Manager generates from template.yaml's template.
        let generated = format!(r#"{{"current_id":"1","current":"{}"}}"#, "a".repeat(64));
        assert_eq!(
            SigningKeys::parse(&generated).map(|k| k.current_id),
            Ok("1".into())
        );
        for bad in [
            "deadbeef",
            r#"{"current_id":"1","current":"short"}"#,
            &format!(r#"{{"current_id":"a b","current":"{}"}}"#, "a".repeat(64)),
            &format!(
                r#"{{"current_id":"1","current":"{}","previous_id":"0"}}"#,
                "a".repeat(64)
            ),
        ] {
            assert!(SigningKeys::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_hash_key_is_at_least_32_bytes_and_hashes_stably() {
        assert!(HashKey::new(b"short".to_vec()).is_err());
        let key = HashKey::new(vec![7u8; 32]).expect("32 bytes");
        assert_eq!(key.hash("x"), key.hash("x"));
        assert_ne!(
            key.hash("x"),
            HashKey::new(vec![8u8; 32]).expect("k").hash("x")
        );
    }

    #[tokio::test]
    async fn a_rotation_reaches_every_clone_of_a_keyring() {
        let ring = Keyring::in_memory(SigningKeys::generate());
        let clone = ring.clone();
        let (id, old) = ring.sign(PARTS);
        let rotation = ring.rotate(100, 60).await.expect("rotates");
        assert_eq!(rotation.previous_key_id, id);
        assert_eq!(clone.sign(PARTS).0, rotation.current_key_id);
        assert_eq!(clone.verify(&id, PARTS, &old, 159), Ok(()));
        assert!(clone.verify(&id, PARTS, &old, 160).is_err());
        assert!(ring.rotate(200, -1).await.is_err());
    }
}

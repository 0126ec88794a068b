//! The blob store port: large objects (uploads, import files) streamed in and out.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::io::AsyncRead;

/// A streamed object body; never the whole object in memory.
pub type BlobReader = Pin<Box<dyn AsyncRead + Send>>;

/// What is known of a stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
}

/// A URL a plain HTTP client can PUT an object to, without credentials, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresignedUpload {
    pub url: String,
    pub method: String,
    /// Headers the client must send with exactly these values.
    pub headers: Vec<(String, String)>,
    /// Epoch seconds after which the URL is refused.
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(
        "invalid object key {0:?}: keys are non-empty '/'-separated segments without '.' or '..' segments"
    )]
    InvalidKey(String),
    #[error("the upload URL is not valid: {0}")]
    PresignRejected(String),
    #[error("the upload URL expired")]
    PresignExpired,
    /// A presigned upload URL takes one body: an object of its key exists already.
    #[error(
        "this upload URL has been used already: it takes one body, and the first one it received is kept; ask for a new URL to send another"
    )]
    PresignUsed,
    #[error("reading the body failed: {0}")]
    Body(std::io::Error),
    #[error("blob store unavailable: {0}")]
    Unavailable(String),
}

/// The blob store port.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores the body under `key`, streaming it; returns the bytes written. Replaces any
    /// object of that key only once the whole body has arrived.
    async fn put(&self, key: &str, content_type: &str, body: BlobReader) -> Result<u64, BlobError>;

    /// Opens the object for streamed reading.
    async fn get(&self, key: &str) -> Result<Option<(BlobMeta, BlobReader)>, BlobError>;

    /// A URL to PUT the object to with the given content type, valid for `expires_in`, and
    /// single-use: the PUT creates the object only while no object of that key exists (S3:
    /// `If-None-Match: *`, one of the signed headers; embedded: a create-only link), so a
    /// second PUT — after the first, or racing it — is refused and never replaces a body.
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, BlobError>;

    /// Deletes the object; deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Every object whose key starts with `prefix`, in key order.
    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError>;
}

/// Checks an object key the same way in every adapter (S3 accepts more; we don't need it).
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let valid = !key.is_empty()
        && key.len() <= 900
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.=/#@+".contains(c));
    if valid {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_a_directory_are_refused() {
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a b", "a\\b",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        validate_key("tenant-1/aixon/uploads/u-1.csv").expect("plain key");
    }
}

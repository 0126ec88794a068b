//! The blob store on files under one directory, with presigned uploads the local server accepts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::clock::SharedClock;
use crate::keys::Keyring;
use crate::storage::blob::validate_key;
use crate::storage::{BlobError, BlobMeta, BlobReader, BlobStore, PresignedUpload};

/// Blobs as files under a directory, with presigned uploads served by the local server.
#[derive(Clone)]
pub struct EmbeddedBlobs {
    root: PathBuf,
    clock: SharedClock,
    /// Signs upload URLs; each URL names the key that signed it.
    keys: Keyring,
    /// Base URL of the server that accepts presigned uploads (the local server).
    upload_base_url: Arc<std::sync::RwLock<String>>,
}

/// Path of the local server's presigned-upload route.
pub const PRESIGNED_UPLOAD_PATH: &str = "/custdata/v1/blob-uploads";

impl EmbeddedBlobs {
    pub fn open(
        root: &Path,
        clock: SharedClock,
        keys: Keyring,
        upload_base_url: &str,
    ) -> Result<Self, BlobError> {
        let unavailable = |e: std::io::Error| BlobError::Unavailable(e.to_string());
        crate::files::private_dir(root).map_err(unavailable)?;
        crate::files::private_dir(&root.join(".partial")).map_err(unavailable)?;
        Ok(EmbeddedBlobs {
            root: root.to_path_buf(),
            clock,
            keys,
            upload_base_url: Arc::new(std::sync::RwLock::new(
                upload_base_url.trim_end_matches('/').to_string(),
            )),
        })
    }

    /// Sets the base URL once the server knows its port.
    pub fn set_upload_base_url(&self, base_url: &str) {
        if let Ok(mut current) = self.upload_base_url.write() {
            *current = base_url.trim_end_matches('/').to_string();
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, BlobError> {
        validate_key(key)?;
        Ok(self.root.join("objects").join(key))
    }

    /// The signed fields of an upload URL.
    fn signed_parts(key: &str, content_type: &str, expires_at: i64) -> [String; 3] {
        [key.into(), content_type.into(), expires_at.to_string()]
    }

    /// Stores a body PUT to a presigned URL after checking the URL's signature and expiry
    /// and that the request's content type is the one signed.
    pub async fn accept_presigned(
        &self,
        query: &str,
        content_type: Option<&str>,
        body: BlobReader,
    ) -> Result<u64, BlobError> {
        let params: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let field = |name: &str| {
            params.get(name).cloned().ok_or_else(|| {
                BlobError::PresignRejected(format!("query parameter {name} is missing"))
            })
        };
        let key = field("key")?;
        let signed_type = field("content-type")?;
        let expires_at: i64 = field("expires")?
            .parse()
            .map_err(|_| BlobError::PresignRejected("expires is not an integer".into()))?;
        let key_id = field("key-id")?;
        let signature = hex::decode(field("signature")?)
            .map_err(|_| BlobError::PresignRejected("the signature is not hex".into()))?;
        let now = self.clock.now_seconds();
        let parts = Self::signed_parts(&key, &signed_type, expires_at);
        self.keys
            .verify(
                &key_id,
                &parts.each_ref().map(String::as_str),
                &signature,
                now,
            )
            .map_err(|refusal| BlobError::PresignRejected(refusal.to_string()))?;
        if now >= expires_at {
            return Err(BlobError::PresignExpired);
        }
        if content_type != Some(signed_type.as_str()) {
            return Err(BlobError::PresignRejected(format!(
                "Content-Type must be {signed_type}"
            )));
        }
        self.put_new(&key, body).await
    }

    /// Stores the body only if no object of `key` exists: the conditional write that makes a
    /// presigned URL single-use (S3's `If-None-Match: *`). The body is written aside, then
    /// hard-linked into place, which fails when the name exists: of two racing PUTs exactly
    /// one stores its body, and an existing object is never replaced.
    async fn put_new(&self, key: &str, body: BlobReader) -> Result<u64, BlobError> {
        let path = self.path_of(key)?;
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            // Read (and drop) the body anyway: answering mid-upload resets the connection.
            let mut body = body;
            let _ = tokio::io::copy(&mut body, &mut tokio::io::sink()).await;
            return Err(BlobError::PresignUsed);
        }
        let (partial, written) = self.write_partial(&path, body).await?;
        let linked = tokio::fs::hard_link(&partial, &path).await;
        let _ = tokio::fs::remove_file(&partial).await;
        match linked {
            Ok(()) => Ok(written),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(BlobError::PresignUsed)
            }
            Err(error) => Err(BlobError::Unavailable(error.to_string())),
        }
    }

    /// Streams the body into a new file beside the objects (synced), so that a reader never
    /// sees half a body; the caller moves it into place.
    async fn write_partial(
        &self,
        path: &Path,
        mut body: BlobReader,
    ) -> Result<(PathBuf, u64), BlobError> {
        let unavailable = |e: std::io::Error| BlobError::Unavailable(e.to_string());
        if let Some(parent) = path.parent() {
            crate::files::create_private_dirs(parent)
                .await
                .map_err(unavailable)?;
        }
        let partial = self
            .root
            .join(".partial")
            .join(uuid::Uuid::new_v4().to_string());
        let mut file = crate::files::create_private_file(&partial)
            .await
            .map_err(unavailable)?;
        let copied = tokio::io::copy(&mut body, &mut file).await;
        let written = match copied {
            Ok(written) => written,
            Err(error) => {
                drop(file);
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(BlobError::Body(error));
            }
        };
        file.flush().await.map_err(unavailable)?;
        file.sync_all().await.map_err(unavailable)?;
        Ok((partial, written))
    }
}

#[async_trait]
impl BlobStore for EmbeddedBlobs {
    async fn put(
        &self,
        key: &str,
        _content_type: &str,
        body: BlobReader,
    ) -> Result<u64, BlobError> {
        let path = self.path_of(key)?;
        let (partial, written) = self.write_partial(&path, body).await?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        Ok(written)
    }

    async fn get(&self, key: &str) -> Result<Option<(BlobMeta, BlobReader)>, BlobError> {
        let path = self.path_of(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(file) => {
                let size = file
                    .metadata()
                    .await
                    .map_err(|e| BlobError::Unavailable(e.to_string()))?
                    .len();
                let reader: BlobReader =
                    Box::pin(tokio::io::BufReader::with_capacity(64 * 1024, file));
                Ok(Some((
                    BlobMeta {
                        key: key.to_string(),
                        size,
                    },
                    reader,
                )))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(BlobError::Unavailable(error.to_string())),
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, BlobError> {
        validate_key(key)?;
        let expires_at = self.clock.now_seconds() + expires_in.as_secs() as i64;
        let parts = Self::signed_parts(key, content_type, expires_at);
        let (key_id, signature) = self.keys.sign(&parts.each_ref().map(String::as_str));
        let base = self
            .upload_base_url
            .read()
            .map(|url| url.clone())
            .unwrap_or_default();
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("key", key)
            .append_pair("content-type", content_type)
            .append_pair("expires", &expires_at.to_string())
            .append_pair("key-id", &key_id)
            .append_pair("signature", &hex::encode(signature))
            .finish();
        Ok(PresignedUpload {
            url: format!("{base}{PRESIGNED_UPLOAD_PATH}?{query}"),
            method: "PUT".into(),
            // Sent for parity with S3's URLs; this store refuses a second body either way.
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("if-none-match".into(), "*".into()),
            ],
            expires_at,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path_of(key)?).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(BlobError::Unavailable(error.to_string())),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let objects = self.root.join("objects");
        tokio::task::spawn_blocking({
            let prefix = prefix.to_string();
            move || {
                let mut found = Vec::new();
                let mut pending = vec![objects.clone()];
                while let Some(dir) = pending.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(entries) => entries,
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(error) => return Err(BlobError::Unavailable(error.to_string())),
                    };
                    for entry in entries {
                        let entry = entry.map_err(|e| BlobError::Unavailable(e.to_string()))?;
                        let meta = entry
                            .metadata()
                            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
                        let path = entry.path();
                        if meta.is_dir() {
                            pending.push(path);
                            continue;
                        }
                        let key = path
                            .strip_prefix(&objects)
                            .map(|relative| {
                                relative
                                    .to_string_lossy()
                                    .replace(std::path::MAIN_SEPARATOR, "/")
                            })
                            .unwrap_or_default();
                        if key.starts_with(&prefix) {
                            found.push(BlobMeta {
                                key,
                                size: meta.len(),
                            });
                        }
                    }
                }
                found.sort_by(|a, b| a.key.cmp(&b.key));
                Ok(found)
            }
        })
        .await
        .map_err(|e| BlobError::Unavailable(e.to_string()))?
    }
}

//! The application context every handler receives: the storage ports, the clock and the
//! settings, built once per process.

#[cfg(feature = "embedded")]
use std::path::Path;
use std::sync::Arc;

use crate::clock::{SharedClock, SystemClock};
use crate::customers::CustomerStore;
use crate::keys::secrets::{HASH_KEY_SECRET_ENV, SIGNING_KEYS_SECRET_ENV};
use crate::keys::{HashKey, Keyring};
use crate::storage::aws::AwsStores;
#[cfg(feature = "embedded")]
use crate::storage::embedded::{EmbeddedBlobs, EmbeddedTable};
use crate::storage::{BlobStore, CursorSigner, ItemTable};

/// Settings read from the environment, with documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Lifetime of MXO bearer tokens (`CUSTDATA_MXO_TOKEN_TTL_SECONDS`, default 3600).
    pub mxo_token_ttl_seconds: i64,
    /// Lambda's limits on a request, its answer and its time, applied where the code runs:
    /// always in Lambda, locally with `custdata-local --lambda-limits`. `None` leaves each
    /// route's own body limit and no limit on answers or time.
    pub lambda_limits: Option<LambdaLimits>,
    /// How long one import run may work before leaving the rest to the next run (the
    /// import function's timeout is 900 s; the local server runs short slices so it can
    /// stop promptly).
    pub import_budget: std::time::Duration,
    /// How far a Monetate assertion's `iat` may be from the server's clock, either way
    /// (`CUSTDATA_MONETATE_IAT_SKEW_SECONDS`, default 300).
    pub monetate_iat_skew_seconds: i64,
}

/// The largest body custdata takes inline in Lambda: the invocation payload is at most
/// 6 MB, including the event's JSON around the body and its escaping.
pub const LAMBDA_INLINE_BODY_LIMIT: usize = 5_000_000;

/// What Lambda allows one synchronous invocation (behind API Gateway's HTTP API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LambdaLimits {
    /// Request bodies above it are refused (413) before a handler runs.
    pub inline_body: usize,
    /// Answers whose invocation payload (the body as a JSON string, escaped, or base64)
    /// would exceed it are replaced by an error naming a smaller page.
    pub response_payload: usize,
    /// Reads still working after this long (or nearer the invocation's deadline) are
    /// answered with an error naming a smaller page.
    pub time: std::time::Duration,
}

/// Lambda's own figures: a 6 MB (6,291,456-byte) response payload less room for the status
/// and headers around the body; API Gateway's 30 s integration timeout less a second to
/// answer in.
pub const LAMBDA_LIMITS: LambdaLimits = LambdaLimits {
    inline_body: LAMBDA_INLINE_BODY_LIMIT,
    response_payload: 6_291_456 - 16 * 1024,
    time: std::time::Duration::from_secs(29),
};

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mxo_token_ttl_seconds: 3600,
            lambda_limits: None,
            import_budget: std::time::Duration::from_secs(780),
            monetate_iat_skew_seconds: 300,
        }
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, String> {
        let mut settings = Settings::default();
        if let Ok(raw) = std::env::var("CUSTDATA_MXO_TOKEN_TTL_SECONDS") {
            settings.mxo_token_ttl_seconds = raw
                .parse()
                .ok()
                .filter(|ttl| (60..=86_400).contains(ttl))
                .ok_or_else(|| {
                    format!("CUSTDATA_MXO_TOKEN_TTL_SECONDS must be 60 to 86400, got {raw:?}")
                })?;
        }
        if let Ok(raw) = std::env::var("CUSTDATA_MONETATE_IAT_SKEW_SECONDS") {
            settings.monetate_iat_skew_seconds = raw
                .parse()
                .ok()
                .filter(|skew| (1..=3600).contains(skew))
                .ok_or_else(|| {
                    format!("CUSTDATA_MONETATE_IAT_SKEW_SECONDS must be 1 to 3600, got {raw:?}")
                })?;
        }
        Ok(settings)
    }
}

/// What every handler works with.
pub struct App {
    pub table: Arc<dyn ItemTable>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: SharedClock,
    pub settings: Settings,
    /// Keys the hashes that stand in for identifiers (index entries, AIXON and Monetate row
    /// keys, suppressions). Never rotated.
    pub hash_key: HashKey,
    /// Signs cursors and upload URLs; the stores share it, so a rotation reaches them too.
    pub signing: Keyring,
}

impl App {
    /// A keyed hash (HMAC-SHA256, hex) of a value: stable per deployment, meaningless without
    /// the deployment's hash key, so it can be kept where the value itself must not be.
    pub fn keyed_hash(&self, value: &str) -> String {
        self.hash_key.hash(value)
    }

    /// The customer store over this app's table and hash key.
    pub fn customers(&self) -> CustomerStore<'_> {
        CustomerStore {
            table: self.table.as_ref(),
            hash_key: &self.hash_key,
        }
    }

    /// The same app over another item table: tests wrap the real one to inject faults.
    pub fn with_table(&self, table: Arc<dyn ItemTable>) -> App {
        App {
            table,
            blobs: self.blobs.clone(),
            clock: self.clock.clone(),
            settings: self.settings.clone(),
            hash_key: self.hash_key.clone(),
            signing: self.signing.clone(),
        }
    }
}

impl App {
    /// The same app over another blob store: tests wrap the real one to inject faults.
    pub fn with_blobs(&self, blobs: Arc<dyn BlobStore>) -> App {
        App {
            blobs,
            ..self.with_table(self.table.clone())
        }
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn required_env(name: &str) -> Result<String, String> {
    std::env::var(name)
        .map_err(|_| format!("environment variable {name} is not set (template.yaml sets it)"))
}

impl App {
    /// The production app: DynamoDB and S3 named by `CUSTDATA_TABLE` and `CUSTDATA_BUCKET`,
    /// the hash key and the signing keys read once from the Secrets Manager secrets named by
    /// `CUSTDATA_HASH_KEY_SECRET_ARN` and `CUSTDATA_SIGNING_KEYS_SECRET_ARN`.
    pub async fn from_env() -> Result<App, String> {
        let table = required_env("CUSTDATA_TABLE")?;
        let bucket = required_env("CUSTDATA_BUCKET")?;
        let hash_secret = required_env(HASH_KEY_SECRET_ENV)?;
        let signing_secret = required_env(SIGNING_KEYS_SECRET_ENV)?;
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let (hash_key, signing) =
            crate::keys::secrets::read_keys(&config, &hash_secret, &signing_secret).await?;
        let clock: SharedClock = Arc::new(SystemClock);
        let stores = AwsStores::from_env(
            &config,
            &table,
            &bucket,
            clock.clone(),
            CursorSigner::new(signing.clone()),
        );
        Ok(App {
            table: Arc::new(stores.table),
            blobs: Arc::new(stores.blobs),
            clock,
            settings: Settings::from_env()?,
            hash_key,
            signing,
        })
    }

    /// The embedded app on a data directory: `custdata.redb`, `blobs/`, `hash.key` and
    /// `signing.key` (created on first use, see [`crate::keys::local`]; the directory and
    /// everything in it readable by the owner only, whatever the umask). Returns the concrete blob store
    /// too, because the local server serves its presigned uploads.
    #[cfg(feature = "embedded")]
    pub fn embedded(
        data_dir: &Path,
        clock: SharedClock,
        upload_base_url: &str,
    ) -> Result<(App, EmbeddedBlobs), String> {
        let (hash_key, signing) = crate::keys::local::keys_of_data_dir(data_dir)?;
        let table = EmbeddedTable::open(
            &data_dir.join("custdata.redb"),
            clock.clone(),
            CursorSigner::new(signing.clone()),
        )
        .map_err(|e| e.to_string())?;
        let blobs = EmbeddedBlobs::open(
            &data_dir.join("blobs"),
            clock.clone(),
            signing.clone(),
            upload_base_url,
        )
        .map_err(|e| e.to_string())?;
        let app = App {
            table: Arc::new(table),
            blobs: Arc::new(blobs.clone()),
            clock,
            settings: Settings::from_env()?,
            hash_key,
            signing,
        };
        Ok((app, blobs))
    }
}

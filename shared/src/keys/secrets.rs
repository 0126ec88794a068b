//! The keys in AWS Secrets Manager: template.yaml creates two secrets and hands each function
//! their ARNs (never their values); a function reads both once, when it starts.
//!
//! - the hash key's secret holds a string whose UTF-8 bytes are the key;
//! - the signing keys' secret holds [`SigningKeys`]' JSON. A rotation puts a new version of
//!   it (`custdata-admin --aws signing-key rotate`); functions read it when they next start.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::DisplayErrorContext;

use super::{HashKey, Home, Keyring, SigningKeys};

/// Names the hash key's secret (its ARN; template.yaml sets it).
pub const HASH_KEY_SECRET_ENV: &str = "CUSTDATA_HASH_KEY_SECRET_ARN";
/// Names the signing keys' secret (its ARN; template.yaml sets it).
pub const SIGNING_KEYS_SECRET_ENV: &str = "CUSTDATA_SIGNING_KEYS_SECRET_ARN";

/// A secret that a keyring's rotations are written to.
pub struct SecretHome {
    client: Client,
    secret_id: String,
}

impl SecretHome {
    /// Puts `value` as the secret's new current version.
    pub(super) async fn put(&self, value: &str) -> Result<(), String> {
        self.client
            .put_secret_value()
            .secret_id(&self.secret_id)
            .secret_string(value)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                format!(
                    "cannot put a new version of secret {}: {}",
                    self.secret_id,
                    DisplayErrorContext(e)
                )
            })
    }
}

async fn secret_string(client: &Client, secret_id: &str) -> Result<String, String> {
    let answer = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| format!("cannot read secret {secret_id}: {}", DisplayErrorContext(e)))?;
    answer
        .secret_string()
        .map(str::to_string)
        .ok_or_else(|| format!("secret {secret_id} holds no string"))
}

/// The identifier-hash key from its secret.
pub async fn read_hash_key(
    config: &aws_config::SdkConfig,
    secret_id: &str,
) -> Result<HashKey, String> {
    let text = secret_string(&Client::new(config), secret_id).await?;
    HashKey::new(text.into_bytes()).map_err(|e| format!("secret {secret_id}: {e}"))
}

/// The signing keys from their secret; rotations put new versions of it.
pub async fn read_signing_keys(
    config: &aws_config::SdkConfig,
    secret_id: &str,
) -> Result<Keyring, String> {
    let client = Client::new(config);
    let text = secret_string(&client, secret_id).await?;
    let keys = SigningKeys::parse(&text).map_err(|e| format!("secret {secret_id}: {e}"))?;
    Ok(Keyring::with_home(
        keys,
        Home::Secret(SecretHome {
            client,
            secret_id: secret_id.to_string(),
        }),
    ))
}

/// Both keys, read concurrently (a function's start waits for them).
pub async fn read_keys(
    config: &aws_config::SdkConfig,
    hash_secret: &str,
    signing_secret: &str,
) -> Result<(HashKey, Keyring), String> {
    let (hash, signing) = tokio::join!(
        read_hash_key(config, hash_secret),
        read_signing_keys(config, signing_secret)
    );
    Ok((hash?, signing?))
}

/// Creates a secret with a value, or leaves an existing one of that name alone: its ARN and
/// whether it was created. For emulators and tests (template.yaml creates the real ones).
pub async fn create_secret(
    config: &aws_config::SdkConfig,
    name: &str,
    value: &str,
) -> Result<(String, bool), String> {
    let client = Client::new(config);
    match client
        .create_secret()
        .name(name)
        .secret_string(value)
        .send()
        .await
    {
        Ok(created) => Ok((created.arn().unwrap_or(name).to_string(), true)),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_exists_exception()) =>
        {
            let described = client
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .map_err(|e| {
                    format!("cannot describe secret {name}: {}", DisplayErrorContext(e))
                })?;
            Ok((described.arn().unwrap_or(name).to_string(), false))
        }
        Err(error) => Err(format!(
            "cannot create secret {name}: {}",
            DisplayErrorContext(error)
        )),
    }
}

/// The two secrets of an emulated deployment, named after its table (`<table>-hash-key`,
/// `<table>-signing-keys`) and created as template.yaml's are (random values) unless they
/// exist: their ARNs, and what was done.
pub async fn bootstrap(
    config: &aws_config::SdkConfig,
    table: &str,
) -> Result<(String, String, Vec<String>), String> {
    let hash_name = format!("{table}-hash-key");
    let signing_name = format!("{table}-signing-keys");
    let (hash_arn, hash_created) = create_secret(config, &hash_name, &super::random_key()).await?;
    let (signing_arn, signing_created) =
        create_secret(config, &signing_name, &SigningKeys::generate().to_json()).await?;
    let said = |name: &str, created: bool| {
        if created {
            format!("created secret {name}")
        } else {
            format!("secret {name} exists")
        }
    };
    Ok((
        hash_arn,
        signing_arn,
        vec![
            said(&hash_name, hash_created),
            said(&signing_name, signing_created),
        ],
    ))
}

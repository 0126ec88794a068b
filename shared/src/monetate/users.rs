//! Monetate API users and their RSA public keys.
//!
//! An API user is a tenant credential of kind `monetate-user` (its username is global, as
//! Monetate's are, so an assertion's `username` claim finds the tenant). Its public keys are
//! items of the tenant; a key is never deleted, only deactivated, so tokens issued for it
//! answer 403 (revoked) rather than 401 (unknown).

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey, PublicEncryptingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::TenantId;
use crate::storage::{Condition, Item, ItemTable, Query, StorageError, Update, keys, read_all};
use crate::tenancy::{
    CredentialKind, list_credentials, new_id, revoke_credential, store_credential,
};

/// RSA modulus sizes a registered key may have: 2048 bits is the least NIST still accepts;
/// above 4096 verification only gets slower.
pub const ACCEPTED_KEY_BITS: [usize; 3] = [2048, 3072, 4096];
/// Keys per API user (active or not): enough to rotate, few enough to try each.
pub const MAX_KEYS_PER_USER: usize = 10;
/// API users per tenant.
pub const MAX_USERS: usize = 100;
/// Characters of a username.
pub const MAX_USERNAME_CHARS: usize = 64;
/// Bytes of a PEM public key (a 4096-bit key is about 800).
pub const MAX_PEM_BYTES: usize = 4096;

/// A registered public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub key_id: String,
    pub username: String,
    pub public_key_pem: String,
    pub bits: usize,
    pub active: bool,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<i64>,
}

/// An API user as listed: its keys without their PEM text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiUser {
    pub username: String,
    pub created_at: i64,
    pub keys: Vec<serde_json::Value>,
}

impl PublicKey {
    fn summary(&self) -> serde_json::Value {
        json!({
            "key_id": self.key_id,
            "bits": self.bits,
            "active": self.active,
            "created_at": self.created_at,
            "deactivated_at": self.deactivated_at,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> UserError {
    UserError::Invalid {
        field,
        message: message.into(),
    }
}

/// Checks a PEM public key: an RSA SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`, what
/// `openssl rsa -pubout` writes) of an accepted size. Returns its size in bits.
pub fn check_public_key(pem_text: &str) -> Result<usize, UserError> {
    const FIELD: &str = "public_key_pem";
    if pem_text.len() > MAX_PEM_BYTES {
        return Err(invalid(FIELD, format!("at most {MAX_PEM_BYTES} bytes")));
    }
    let parsed = pem::parse(pem_text.trim())
        .map_err(|error| invalid(FIELD, format!("not a PEM document: {error}")))?;
    match parsed.tag() {
        "PUBLIC KEY" => {}
        "RSA PUBLIC KEY" => {
            return Err(invalid(
                FIELD,
                "a PKCS#1 key; send the SubjectPublicKeyInfo form (openssl rsa -RSAPublicKey_in -in key.pem -pubout)",
            ));
        }
        tag if tag.contains("PRIVATE") => {
            return Err(invalid(
                FIELD,
                "this is a private key: register only the public half (openssl rsa -in private.pem -pubout); keep the private key to yourself",
            ));
        }
        tag => return Err(invalid(FIELD, format!("a {tag:?} PEM, not a PUBLIC KEY"))),
    }
    let key = PublicEncryptingKey::from_der(parsed.contents())
        .map_err(|_| invalid(FIELD, "not an RSA public key"))?;
    let bits = key.key_size_bits();
    if !ACCEPTED_KEY_BITS.contains(&bits) {
        return Err(invalid(
            FIELD,
            format!("an RSA key of {bits} bits; accepted sizes are 2048, 3072 and 4096"),
        ));
    }
    jsonwebtoken::DecodingKey::from_rsa_pem(pem_text.trim().as_bytes())
        .map_err(|error| invalid(FIELD, format!("not usable to verify signatures: {error}")))?;
    Ok(bits)
}

fn check_username(username: &str) -> Result<(), UserError> {
    let valid = (1..=MAX_USERNAME_CHARS).contains(&username.chars().count())
        && username.starts_with(|c: char| c.is_ascii_alphanumeric())
        && username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "username",
            format!(
                "1-{MAX_USERNAME_CHARS} characters of letters, digits, '-', '_', '.', '@', starting with a letter or digit"
            ),
        ))
    }
}

/// A new key pair, for a development tenant: PKCS#8 private and SubjectPublicKeyInfo
/// public PEM.
pub struct GeneratedKeyPair {
    pub private_key_pem: String,
    pub public_key_pem: String,
}

pub fn generate_key_pair() -> Result<GeneratedKeyPair, String> {
    let private = PrivateDecryptingKey::generate(KeySize::Rsa2048)
        .map_err(|_| "RSA key generation failed".to_string())?;
    let private_der: Pkcs8V1Der = private
        .as_der()
        .map_err(|_| "the private key cannot be encoded".to_string())?;
    let public_der: PublicKeyX509Der = private
        .public_key()
        .as_der()
        .map_err(|_| "the public key cannot be encoded".to_string())?;
    Ok(GeneratedKeyPair {
        private_key_pem: pem::encode(&pem::Pem::new("PRIVATE KEY", private_der.as_ref())),
        public_key_pem: pem::encode(&pem::Pem::new("PUBLIC KEY", public_der.as_ref())),
    })
}

/// Whether the tenant has this API user.
async fn user_exists(
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: &str,
) -> Result<bool, StorageError> {
    let key = keys::tenant_credential(tenant, CredentialKind::MonetateUser.as_str(), username);
    Ok(table.get(&key).await?.is_some())
}

/// Creates an API user (a generated `api-…` username unless one is given), with a first
/// public key when one is given. Usernames are global: another tenant's is a conflict.
pub async fn create_user(
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: Option<&str>,
    public_key_pem: Option<&str>,
    now_millis: i64,
) -> Result<ApiUser, UserError> {
    let username = match username {
        Some(given) => {
            check_username(given)?;
            given.to_string()
        }
        None => new_id("api-"),
    };
    if let Some(pem_text) = public_key_pem {
        check_public_key(pem_text)?;
    }
    let existing = list_credentials(table, tenant).await?;
    let users = existing
        .iter()
        .filter(|credential| credential.kind == CredentialKind::MonetateUser.as_str())
        .count();
    if users >= MAX_USERS {
        return Err(invalid(
            "username",
            format!("a tenant has at most {MAX_USERS} API users"),
        ));
    }
    match store_credential(
        table,
        tenant,
        CredentialKind::MonetateUser,
        &username,
        "",
        None,
        now_millis,
    )
    .await
    {
        Ok(()) => {}
        Err(StorageError::TransactionCanceled { .. }) => {
            return Err(UserError::Conflict(format!(
                "the username {username:?} is taken"
            )));
        }
        Err(other) => return Err(other.into()),
    }
    let mut keys = Vec::new();
    if let Some(pem_text) = public_key_pem {
        keys.push(
            add_key(table, tenant, &username, pem_text, now_millis)
                .await?
                .summary(),
        );
    }
    Ok(ApiUser {
        username,
        created_at: now_millis,
        keys,
    })
}

/// Registers a public key for an API user of the tenant.
pub async fn add_key(
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: &str,
    public_key_pem: &str,
    now_millis: i64,
) -> Result<PublicKey, UserError> {
    let bits = check_public_key(public_key_pem)?;
    if !user_exists(table, tenant, username).await? {
        return Err(UserError::NotFound(format!("no API user {username:?}")));
    }
    if keys_of(table, tenant, username).await?.len() >= MAX_KEYS_PER_USER {
        return Err(invalid(
            "public_key_pem",
            format!("an API user has at most {MAX_KEYS_PER_USER} keys"),
        ));
    }
    let key = PublicKey {
        key_id: new_id("key-"),
        username: username.to_string(),
        public_key_pem: public_key_pem.trim().to_string(),
        bits,
        active: true,
        created_at: now_millis,
        deactivated_at: None,
    };
    let stored = keys::monetate_key(tenant, &key.key_id);
    table
        .put(
            Item::new(stored.pk, stored.sk)
                .with("username", username)
                .with("key", json!(key)),
            Condition::NotExists,
        )
        .await?;
    Ok(key)
}

fn key_of(item: &Item) -> Option<PublicKey> {
    serde_json::from_value(item.get("key")?.clone()).ok()
}

/// Every key (active or not) of an API user.
pub async fn keys_of(
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: &str,
) -> Result<Vec<PublicKey>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::monetate_keys_pk(tenant)).limit(1000),
    )
    .await?;
    Ok(items
        .iter()
        .filter(|item| item.str("username") == Some(username))
        .filter_map(key_of)
        .collect())
}

/// One key by id.
pub async fn key(
    table: &dyn ItemTable,
    tenant: &TenantId,
    key_id: &str,
) -> Result<Option<PublicKey>, StorageError> {
    let item = table.get(&keys::monetate_key(tenant, key_id)).await?;
    Ok(item.as_ref().and_then(key_of))
}

/// Every API user of the tenant with its keys.
pub async fn list_users(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Vec<ApiUser>, StorageError> {
    let mut users = Vec::new();
    for credential in list_credentials(table, tenant).await? {
        if credential.kind != CredentialKind::MonetateUser.as_str() {
            continue;
        }
        let keys = keys_of(table, tenant, &credential.id).await?;
        users.push(ApiUser {
            keys: keys.iter().map(PublicKey::summary).collect(),
            username: credential.id,
            created_at: credential.created_at,
        });
    }
    Ok(users)
}

/// Deactivates a key of an API user: assertions signed with it and tokens issued for it
/// are refused with 403 from now on.
pub async fn deactivate_key(
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: &str,
    key_id: &str,
    now_millis: i64,
) -> Result<serde_json::Value, UserError> {
    let Some(mut key) = key(table, tenant, key_id)
        .await?
        .filter(|key| key.username == username)
    else {
        return Err(UserError::NotFound(format!(
            "API user {username:?} has no key {key_id:?}"
        )));
    };
    if key.active {
        key.active = false;
        key.deactivated_at = Some(now_millis);
        table
            .update(
                &keys::monetate_key(tenant, key_id),
                Update::default().set("key", json!(key)),
                Condition::equals("username", username),
            )
            .await?;
    }
    Ok(key.summary())
}

/// Removes an API user: its keys are deactivated first, so its live tokens stop working.
pub async fn remove_user(
    table: &dyn ItemTable,
    tenant: &TenantId,
    username: &str,
    now_millis: i64,
) -> Result<bool, UserError> {
    for key in keys_of(table, tenant, username).await? {
        deactivate_key(table, tenant, username, &key.key_id, now_millis).await?;
    }
    Ok(revoke_credential(table, tenant, CredentialKind::MonetateUser, username).await?)
}

/// Gives a new tenant's first API user a generated key pair and puts the private half in
/// its credentials (for the development tenant and `custdata-admin tenant create`).
pub async fn provision_key_pair(
    table: &dyn ItemTable,
    bundle: &mut crate::tenancy::CredentialBundle,
    now_millis: i64,
) -> Result<(), String> {
    let tenant = TenantId::parse(&bundle.tenant)?;
    let pair = generate_key_pair()?;
    add_key(
        table,
        &tenant,
        &bundle.monetate.api_username,
        &pair.public_key_pem,
        now_millis,
    )
    .await
    .map_err(|error| error.to_string())?;
    bundle.monetate.private_key_pem = pair.private_key_pem;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rsa_subject_public_key_info_of_an_accepted_size_is_registered() {
        let pair = generate_key_pair().expect("a key pair");
        assert_eq!(check_public_key(&pair.public_key_pem).ok(), Some(2048));
        let refusal = |pem_text: &str| check_public_key(pem_text).unwrap_err().to_string();
        assert!(refusal(&pair.private_key_pem).contains("private key"));
        assert!(refusal("hello").contains("not a PEM"));
        let pkcs1 = pem::encode(&pem::Pem::new("RSA PUBLIC KEY", vec![1, 2, 3]));
        assert!(refusal(&pkcs1).contains("PKCS#1"));
        let garbage = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![1, 2, 3]));
        assert!(refusal(&garbage).contains("not an RSA public key"));
        let small = PrivateDecryptingKey::generate(KeySize::Rsa3072)
            .expect("a key")
            .public_key()
            .as_der()
            .map(|der: PublicKeyX509Der| pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref())))
            .expect("encodes");
        assert_eq!(check_public_key(&small).ok(), Some(3072));
    }
}

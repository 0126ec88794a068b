//! Tenants and their credentials, and the one authenticate step every request goes
//! through to become a tenant.
//!
//! Every secret custdata issues is generated here with 256 bits of entropy, so a single
//! SHA-256 is an adequate stored hash (a slow password hash only pays off for secrets a
//! person chose, which custdata never accepts). Secrets are shown once, when issued.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::TenantId;
use crate::retry::{self, Attempt};
use crate::storage::{
    Condition, Item, ItemTable, Query, StorageError, TransactAction, keys, read_all,
};

/// The kinds of credential, one per vendor mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialKind {
    /// MXO OAuth2 client: `client_id` (public) + `client_secret`.
    MxoClient,
    /// An MXO bearer token issued by `POST /one/oauth2token`.
    MxoToken,
    /// A Monetate API user (its public keys are registered separately).
    MonetateUser,
    /// A Monetate access token issued by `GET /api/auth/v0/refresh/` for a signed assertion.
    MonetateToken,
    /// An AIXON `x-api-key`.
    AixonApiKey,
    /// An Optimove Login user: `username` (public) + `password`.
    OptimoveUser,
    /// An Optimove `X-API-KEY`.
    OptimoveApiKey,
    /// An Optimove `Authorization-Token` issued by Login (sliding expiry).
    OptimoveToken,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 8] = [
        CredentialKind::MxoClient,
        CredentialKind::MxoToken,
        CredentialKind::MonetateUser,
        CredentialKind::MonetateToken,
        CredentialKind::AixonApiKey,
        CredentialKind::OptimoveUser,
        CredentialKind::OptimoveApiKey,
        CredentialKind::OptimoveToken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::MxoClient => "mxo-client",
            CredentialKind::MxoToken => "mxo-token",
            CredentialKind::MonetateUser => "monetate-user",
            CredentialKind::MonetateToken => "monetate-token",
            CredentialKind::AixonApiKey => "aixon-api-key",
            CredentialKind::OptimoveUser => "optimove-user",
            CredentialKind::OptimoveApiKey => "optimove-api-key",
            CredentialKind::OptimoveToken => "optimove-token",
        }
    }

    pub fn parse(raw: &str) -> Option<CredentialKind> {
        CredentialKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }

    /// Whether the presented value is itself the secret (looked up by its hash) rather than
    /// a public id with a separate secret.
    fn bearer(self) -> bool {
        matches!(
            self,
            CredentialKind::MxoToken
                | CredentialKind::MonetateToken
                | CredentialKind::AixonApiKey
                | CredentialKind::OptimoveApiKey
                | CredentialKind::OptimoveToken
        )
    }
}

/// What a request presented, already taken out of the vendor's header or body.
#[derive(Clone, PartialEq, Eq)]
pub enum Presented<'a> {
    /// A public id and its secret (MXO client credentials, Optimove Login).
    IdAndSecret {
        kind: CredentialKind,
        id: &'a str,
        secret: &'a str,
    },
    /// A bearer secret (API keys, issued tokens).
    Bearer {
        kind: CredentialKind,
        secret: &'a str,
    },
    /// A public id whose possession the caller proves otherwise: a Monetate username, by
    /// an assertion signed with one of the user's registered keys.
    PublicId { kind: CredentialKind, id: &'a str },
}

impl fmt::Debug for Presented<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Presented::IdAndSecret { kind, .. } => write!(f, "IdAndSecret({})", kind.as_str()),
            Presented::Bearer { kind, .. } => write!(f, "Bearer({})", kind.as_str()),
            Presented::PublicId { kind, .. } => write!(f, "PublicId({})", kind.as_str()),
        }
    }
}

/// Who a request is: one tenant, through one credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub kind: CredentialKind,
    pub credential_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthError {
    /// Unknown, wrong, revoked or expired: deliberately one case, so a caller cannot tell which.
    #[error("the credential is not valid")]
    Invalid,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Hex SHA-256 of a secret: how secrets are stored and looked up.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new random secret: 32 bytes, URL-safe base64.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new short random id with a readable prefix, e.g. `cid-3f9a0c…`.
pub fn new_id(prefix: &str) -> String {
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

fn lookup_id(presented: &Presented<'_>) -> (CredentialKind, String) {
    match presented {
        Presented::IdAndSecret { kind, id, .. } | Presented::PublicId { kind, id } => {
            (*kind, (*id).to_string())
        }
        Presented::Bearer { kind, secret } => (*kind, secret_hash(secret)),
    }
}

/// Resolves a presented credential to its tenant, or refuses it. Every authenticated
/// handler calls this (through its surface's auth module) before anything else.
#[tracing::instrument(skip_all, fields(presented = ?presented))]
pub async fn authenticate(
    table: &dyn ItemTable,
    presented: Presented<'_>,
) -> Result<Principal, AuthError> {
    let (kind, lookup) = lookup_id(&presented);
    // Only a kind without a secret may be named by its id alone.
    let proven_elsewhere = matches!(presented, Presented::PublicId { .. });
    if proven_elsewhere && kind != CredentialKind::MonetateUser {
        return Err(AuthError::Invalid);
    }
    if lookup.is_empty() || lookup.len() > 256 {
        return Err(AuthError::Invalid);
    }
    let Some(entry) = table
        .get(&keys::credential_index(kind.as_str(), &lookup))
        .await?
    else {
        return Err(AuthError::Invalid);
    };
    if let Presented::IdAndSecret { secret, .. } = presented {
        let stored = entry.str("secret_sha256").unwrap_or_default();
        let matches: bool =
            subtle::ConstantTimeEq::ct_eq(stored.as_bytes(), secret_hash(secret).as_bytes()).into();
        // A kind without a stored secret (a Monetate user) never passes this way.
        if stored.is_empty() || !matches {
            return Err(AuthError::Invalid);
        }
    }
    let tenant = entry
        .str("tenant")
        .and_then(|raw| TenantId::parse(raw).ok())
        .ok_or(AuthError::Invalid)?;
    let credential_id = entry.str("credential_id").unwrap_or_default().to_string();
    crate::logs::note_tenant(&tenant);
    Ok(Principal {
        tenant,
        kind,
        credential_id,
    })
}

/// A newly issued credential: the secret is only ever in this value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedCredential {
    pub kind: CredentialKind,
    /// The public id (client id, username) or, for bearer kinds, a short id to revoke it by.
    pub id: String,
    pub secret: String,
}

/// Stores a credential for a tenant: the tenant's own record and the global index entry, in
/// one transaction so neither exists without the other. `expires_at` bounds tokens.
pub async fn store_credential(
    table: &dyn ItemTable,
    tenant: &TenantId,
    kind: CredentialKind,
    id: &str,
    secret: &str,
    expires_at: Option<i64>,
    created_at_millis: i64,
) -> Result<(), StorageError> {
    let (index, own) = credential_items(tenant, kind, id, secret, expires_at, created_at_millis);
    table.transact(new_credential(index, own)).await
}

/// The puts of a new credential's index entry and record, neither replacing anything.
fn new_credential(index: Item, own: Item) -> Vec<TransactAction> {
    [index, own]
        .into_iter()
        .map(|item| TransactAction::Put {
            item,
            condition: Condition::NotExists,
        })
        .collect()
}

/// The credential a token is issued to: revoking it revokes the token (see
/// [`revoke_credential`]).
#[derive(Debug, Clone, Copy)]
pub struct Issuer<'a> {
    pub kind: CredentialKind,
    pub id: &'a str,
}

impl Issuer<'_> {
    fn tag(&self) -> String {
        format!("{}#{}", self.kind.as_str(), self.id)
    }
}

/// What an issuer's tokens are: MXO tokens of an MXO client, Optimove tokens of a Login
/// user. (A Monetate token names its key, and is refused once the key is deactivated.)
fn tokens_issued_by(kind: CredentialKind) -> Option<CredentialKind> {
    match kind {
        CredentialKind::MxoClient => Some(CredentialKind::MxoToken),
        CredentialKind::OptimoveUser => Some(CredentialKind::OptimoveToken),
        _ => None,
    }
}

/// Refused when the issuer is revoked before the token commits.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the credential the token is for was revoked")]
    IssuerRevoked,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Stores a token for the credential that asked for it, on condition that this credential
/// is still live: a revocation committing first makes the token refused, one committing
/// after finds the token by its `issued_by` and revokes it too.
#[allow(clippy::too_many_arguments)]
pub async fn store_token(
    table: &dyn ItemTable,
    tenant: &TenantId,
    kind: CredentialKind,
    id: &str,
    token: &str,
    expires_at: i64,
    created_at_millis: i64,
    issuer: Issuer<'_>,
) -> Result<(), IssueError> {
    let (index, own) =
        credential_items(tenant, kind, id, token, Some(expires_at), created_at_millis);
    let mut actions = new_credential(index, own.with("issued_by", issuer.tag()));
    actions.push(TransactAction::Check {
        key: keys::tenant_credential(tenant, issuer.kind.as_str(), issuer.id),
        condition: Condition::Exists,
    });
    // Concurrent requests of one issuer check the same item, which DynamoDB reports as a
    // transaction conflict: that is contention, retried, never a refusal.
    let actions = &actions;
    retry::optimistic("credential-issue", || async move {
        match table.transact(actions.clone()).await {
            Ok(()) => Ok(Attempt::Done(())),
            // A fresh random token cannot exist already: the issuer is what failed.
            Err(StorageError::TransactionCanceled { .. }) => Err(IssueError::IssuerRevoked),
            Err(StorageError::Contention(_)) => Ok(Attempt::Contended),
            Err(other) => Err(other.into()),
        }
    })
    .await
}

impl From<retry::Exhausted> for IssueError {
    fn from(exhausted: retry::Exhausted) -> Self {
        IssueError::Storage(exhausted.into())
    }
}

/// A credential's global index entry and the tenant's own record of it.
fn credential_items(
    tenant: &TenantId,
    kind: CredentialKind,
    id: &str,
    secret: &str,
    expires_at: Option<i64>,
    created_at_millis: i64,
) -> (Item, Item) {
    let lookup = if kind.bearer() {
        secret_hash(secret)
    } else {
        id.to_string()
    };
    let index_key = keys::credential_index(kind.as_str(), &lookup);
    let mut index = Item::new(index_key.pk, index_key.sk)
        .with("tenant", tenant.as_str())
        .with("credential_id", id)
        .with("kind", kind.as_str());
    if !kind.bearer() && !secret.is_empty() {
        index = index.with("secret_sha256", secret_hash(secret));
    }
    let own_key = keys::tenant_credential(tenant, kind.as_str(), id);
    let mut own = Item::new(own_key.pk, own_key.sk)
        .with("kind", kind.as_str())
        .with("credential_id", id)
        .with("lookup", lookup)
        .with("created_at", created_at_millis);
    if let Some(at) = expires_at {
        index = index.expiring_at(at);
        own = own.expiring_at(at);
    }
    (index, own)
}

/// Issues a fresh credential of a kind that has a secret.
pub async fn issue_credential(
    table: &dyn ItemTable,
    tenant: &TenantId,
    kind: CredentialKind,
    now_millis: i64,
) -> Result<IssuedCredential, StorageError> {
    let (id, secret) = match kind {
        CredentialKind::MxoClient => (new_id("cid-"), new_secret()),
        CredentialKind::OptimoveUser => (new_id("user-"), new_secret()),
        CredentialKind::MonetateUser => (new_id("api-"), String::new()),
        CredentialKind::MxoToken
        | CredentialKind::MonetateToken
        | CredentialKind::AixonApiKey
        | CredentialKind::OptimoveApiKey
        | CredentialKind::OptimoveToken => (new_id("key-"), new_secret()),
    };
    store_credential(table, tenant, kind, &id, &secret, None, now_millis).await?;
    Ok(IssuedCredential { kind, id, secret })
}

/// One credential as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialSummary {
    pub kind: String,
    pub id: String,
    pub created_at: i64,
}

/// Every live credential of a tenant.
pub async fn list_credentials(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Vec<CredentialSummary>, StorageError> {
    let query = Query::partition(keys::tenant_pk(tenant))
        .prefix(keys::TENANT_CREDENTIAL_PREFIX)
        .limit(1000);
    let items = read_all(table, query).await?;
    Ok(items
        .iter()
        .map(|item| CredentialSummary {
            kind: item.str("kind").unwrap_or_default().to_string(),
            id: item.str("credential_id").unwrap_or_default().to_string(),
            created_at: item.i64("created_at").unwrap_or_default(),
        })
        .collect())
}

/// Revokes a credential: both items go in one transaction; then every token it was issued
/// (MXO tokens of a client, Optimove tokens of a user), so no session outlives it. Returns
/// false when the tenant has no such credential (so one tenant can never revoke another's).
pub async fn revoke_credential(
    table: &dyn ItemTable,
    tenant: &TenantId,
    kind: CredentialKind,
    id: &str,
) -> Result<bool, StorageError> {
    let revoked = delete_credential(table, tenant, kind, id).await?;
    // Also after a lost answer (`false` on a retry), tokens left behind are revoked.
    if let Some(token_kind) = tokens_issued_by(kind) {
        let tag = Issuer { kind, id }.tag();
        let query = Query::partition(keys::tenant_pk(tenant))
            .prefix(keys::tenant_credential_kind_prefix(token_kind.as_str()))
            .limit(1000);
        for token in read_all(table, query).await? {
            if token.str("issued_by") == Some(tag.as_str())
                && let Some(token_id) = token.str("credential_id")
            {
                delete_credential(table, tenant, token_kind, token_id).await?;
            }
        }
    }
    Ok(revoked)
}

/// Deletes a credential's record and index entry together; false when there is none.
async fn delete_credential(
    table: &dyn ItemTable,
    tenant: &TenantId,
    kind: CredentialKind,
    id: &str,
) -> Result<bool, StorageError> {
    let own_key = keys::tenant_credential(tenant, kind.as_str(), id);
    let Some(own) = table.get(&own_key).await? else {
        return Ok(false);
    };
    let lookup = own.str("lookup").unwrap_or_default().to_string();
    table
        .transact(vec![
            TransactAction::Delete {
                key: own_key,
                condition: Condition::Exists,
            },
            TransactAction::Delete {
                key: keys::credential_index(kind.as_str(), &lookup),
                condition: Condition::equals("tenant", tenant.as_str()),
            },
        ])
        .await
        .map(|()| true)
        .or_else(|error| match error {
            StorageError::TransactionCanceled { .. } => Ok(false),
            other => Err(other),
        })
}

/// A tenant's profile: its id, name and the vendor-facing identifiers paths carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantProfile {
    pub tenant: TenantId,
    pub name: String,
    /// MXO workspace id, as Datastores paths carry it (base64-looking, e.g. `ZGV2`).
    pub mxo_workspace_id: String,
    /// MXO site key, as Customer API paths carry it (`ONE-XXXXXXXXXX-1001`).
    pub mxo_site_key: String,
    /// Monetate retailer short name, as Data API paths carry it.
    pub monetate_retailer: String,
    pub created_at: i64,
}

impl TenantProfile {
    fn to_item(&self) -> Item {
        let key = keys::tenant_profile(&self.tenant);
        Item::new(key.pk, key.sk).with("profile", json!(self))
    }
}

pub async fn load_profile(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Option<TenantProfile>, StorageError> {
    let item = table.get(&keys::tenant_profile(tenant)).await?;
    Ok(item
        .and_then(|item| item.get("profile").cloned())
        .and_then(|profile| serde_json::from_value(profile).ok()))
}

/// Every credential a new tenant starts with, in the shape of `dev-credentials.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialBundle {
    pub base_url: String,
    pub tenant: String,
    pub mxo: MxoCredentials,
    pub monetate: MonetateCredentials,
    pub aixon: AixonCredentials,
    pub optimove: OptimoveCredentials,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MxoCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub workspace_id: String,
    pub site_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonetateCredentials {
    pub retailer: String,
    pub api_username: String,
    /// The private half of the user's first key pair (PKCS#8 PEM), generated by
    /// `monetate::users::provision_key_pair`, which registers the public half. Empty when
    /// the tenant was made without one (tests make their own pairs).
    pub private_key_pem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AixonCredentials {
    pub api_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptimoveCredentials {
    pub username: String,
    pub password: String,
    pub api_key: String,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TenantError {
    #[error("{0}")]
    InvalidName(String),
    #[error("tenant {0} already exists")]
    Exists(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Turns a tenant name into an id: lower-case letters, digits and dashes.
pub fn tenant_id_from_name(name: &str) -> Result<TenantId, TenantError> {
    let mut id = String::new();
    for c in name.trim().chars() {
        match c {
            'a'..='z' | '0'..='9' => id.push(c),
            'A'..='Z' => id.push(c.to_ascii_lowercase()),
            _ if !id.ends_with('-') && !id.is_empty() => id.push('-'),
            _ => {}
        }
    }
    let id = id.trim_end_matches('-');
    TenantId::parse(id).map_err(|_| {
        TenantError::InvalidName(format!(
            "tenant name {name:?} must give an id of 1-40 characters (letters, digits, dashes) starting with a letter"
        ))
    })
}

/// Creates a tenant with one credential for every vendor mechanism. Fails if the tenant exists.
pub async fn create_tenant(
    table: &dyn ItemTable,
    name: &str,
    base_url: &str,
    now_millis: i64,
) -> Result<CredentialBundle, TenantError> {
    let tenant = tenant_id_from_name(name)?;
    let site_number = 1000 + (now_millis.rem_euclid(9000));
    let profile = TenantProfile {
        tenant: tenant.clone(),
        name: name.trim().to_string(),
        mxo_workspace_id: URL_SAFE_NO_PAD.encode(tenant.as_str()),
        mxo_site_key: format!(
            "ONE-{}-{site_number}",
            new_id("")
                .to_uppercase()
                .chars()
                .take(10)
                .collect::<String>()
        ),
        monetate_retailer: tenant.as_str().to_string(),
        created_at: now_millis,
    };
    let list_key = keys::tenant_list_entry(&tenant);
    let created = table
        .transact(vec![
            TransactAction::Put {
                item: profile.to_item(),
                condition: Condition::NotExists,
            },
            TransactAction::Put {
                item: Item::new(list_key.pk, list_key.sk)
                    .with("name", profile.name.clone())
                    .with("created_at", now_millis),
                condition: Condition::NotExists,
            },
        ])
        .await;
    match created {
        Ok(()) => {}
        Err(StorageError::TransactionCanceled { .. }) => {
            return Err(TenantError::Exists(tenant.to_string()));
        }
        Err(other) => return Err(other.into()),
    }
    Ok(bundle_for(table, profile, base_url, now_millis).await?)
}

/// Issues a fresh set of credentials, one per mechanism, for an existing tenant (the local
/// server uses it when its credentials file was lost: secrets cannot be read back).
pub async fn issue_bundle(
    table: &dyn ItemTable,
    tenant: &str,
    base_url: &str,
    now_millis: i64,
) -> Result<CredentialBundle, TenantError> {
    let tenant = TenantId::parse(tenant).map_err(TenantError::InvalidName)?;
    let profile = load_profile(table, &tenant)
        .await?
        .ok_or_else(|| TenantError::InvalidName(format!("no tenant {tenant}")))?;
    Ok(bundle_for(table, profile, base_url, now_millis).await?)
}

async fn bundle_for(
    table: &dyn ItemTable,
    profile: TenantProfile,
    base_url: &str,
    now_millis: i64,
) -> Result<CredentialBundle, StorageError> {
    let tenant = &profile.tenant;
    let mxo = issue_credential(table, tenant, CredentialKind::MxoClient, now_millis).await?;
    let monetate =
        issue_credential(table, tenant, CredentialKind::MonetateUser, now_millis).await?;
    let aixon = issue_credential(table, tenant, CredentialKind::AixonApiKey, now_millis).await?;
    let optimove_user =
        issue_credential(table, tenant, CredentialKind::OptimoveUser, now_millis).await?;
    let optimove_key =
        issue_credential(table, tenant, CredentialKind::OptimoveApiKey, now_millis).await?;
    Ok(CredentialBundle {
        base_url: base_url.to_string(),
        tenant: tenant.to_string(),
        mxo: MxoCredentials {
            client_id: mxo.id,
            client_secret: mxo.secret,
            workspace_id: profile.mxo_workspace_id,
            site_key: profile.mxo_site_key,
        },
        monetate: MonetateCredentials {
            retailer: profile.monetate_retailer,
            api_username: monetate.id,
            private_key_pem: String::new(),
        },
        aixon: AixonCredentials {
            api_key: aixon.secret,
        },
        optimove: OptimoveCredentials {
            username: optimove_user.id,
            password: optimove_user.secret,
            api_key: optimove_key.secret,
        },
    })
}

/// A tenant as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSummary {
    pub tenant: String,
    pub name: String,
    pub created_at: i64,
}

pub async fn list_tenants(table: &dyn ItemTable) -> Result<Vec<TenantSummary>, StorageError> {
    let items = read_all(table, Query::partition(keys::TENANT_LIST_PK).limit(1000)).await?;
    Ok(items
        .iter()
        .map(|item| TenantSummary {
            tenant: item.sk.clone(),
            name: item.str("name").unwrap_or_default().to_string(),
            created_at: item.i64("created_at").unwrap_or_default(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_come_from_names_and_refuse_what_cannot_key_storage() {
        assert_eq!(
            tenant_id_from_name("Acme Retail EU").map(|t| t.to_string()),
            Ok("acme-retail-eu".into())
        );
        assert!(tenant_id_from_name("  ").is_err());
        assert!(tenant_id_from_name("9lives").is_err());
        assert!(TenantId::parse("a#b").is_err());
    }
}

//! Issuing, storing, listing and revoking a tenant's credentials and the tokens they are
//! issued: each one a tenant record plus a global index entry, written and deleted together.

use serde::Serialize;

use super::authenticate::{CredentialKind, new_id, new_secret, secret_hash};
use crate::domain::TenantId;
use crate::retry::{self, Attempt};
use crate::storage::{
    Condition, Item, ItemTable, Query, StorageError, TransactAction, keys, read_all,
};

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

//! Credential kinds and secrets, and the one authenticate step every request goes through
//! to become a tenant: what a request presented, resolved to a [`Principal`] or refused.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::TenantId;
use crate::storage::{ItemTable, StorageError, keys};

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
    pub(super) fn bearer(self) -> bool {
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

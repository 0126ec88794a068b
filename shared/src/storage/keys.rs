//! The key design of the one table. Every item's `pk` begins with its tenant id, except the
//! global credential index, which is how a request's credential finds its tenant before the
//! tenant is known.
//!
//! | item type | pk | sk | written by | read by |
//! |---|---|---|---|---|
//! | tenant profile | `T#{tenant}` | `PROFILE` | admin CLI, local bootstrap | auth, admin |
//! | tenant list entry | `TENANTS` (global) | `{tenant}` | admin CLI | `tenant list` |
//! | credential of a tenant | `T#{tenant}` | `CRED#{kind}#{credential id}` | admin CLI | admin `credential list`, revoke |
//! | credential index | `CRED#{kind}#{lookup id}` (global) | `CRED` | admin CLI | authenticate (get by key) |
//! | MXO access token | `T#{tenant}#MXOTOKEN#{token hash}` | `TOKEN` | mxo-token | MXO bearer check |
//!
//! Lookup ids of secrets are SHA-256 hashes, never the secret itself. Surfaces add their
//! own item types here, one row each, keeping the tenant prefix.

use crate::tenancy::TenantId;

use super::Key;

/// Partition of everything a tenant owns directly.
pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

/// A tenant-owned partition for one purpose, e.g. `T#acme#MXOTOKEN#...`.
pub fn tenant_scoped_pk(tenant: &TenantId, scope: &str) -> String {
    format!("T#{tenant}#{scope}")
}

pub fn tenant_profile(tenant: &TenantId) -> Key {
    Key::new(tenant_pk(tenant), "PROFILE")
}

/// The global list of tenants (small: one item per tenant).
pub const TENANT_LIST_PK: &str = "TENANTS";

pub fn tenant_list_entry(tenant: &TenantId) -> Key {
    Key::new(TENANT_LIST_PK, tenant.as_str())
}

/// A tenant's own record of one credential (for listing and revoking).
pub fn tenant_credential(tenant: &TenantId, kind: &str, credential_id: &str) -> Key {
    Key::new(tenant_pk(tenant), format!("CRED#{kind}#{credential_id}"))
}

/// Prefix of [`tenant_credential`] sort keys.
pub const TENANT_CREDENTIAL_PREFIX: &str = "CRED#";

/// The global index entry that resolves a credential to its tenant.
pub fn credential_index(kind: &str, lookup_id: &str) -> Key {
    Key::new(format!("CRED#{kind}#{lookup_id}"), "CRED")
}

pub fn mxo_token(tenant: &TenantId, token_hash: &str) -> Key {
    Key::new(
        tenant_scoped_pk(tenant, &format!("MXOTOKEN#{token_hash}")),
        "TOKEN",
    )
}

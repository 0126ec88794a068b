//! Tenants and their credentials, and the one authenticate step every request goes
//! through to become a tenant.
//!
//! Every secret custdata issues is generated here with 256 bits of entropy, so a single
//! SHA-256 is an adequate stored hash (a slow password hash only pays off for secrets a
//! person chose, which custdata never accepts). Secrets are shown once, when issued.
//!
//! [`authenticate`](mod@authenticate) holds the credential kinds, secrets and the
//! authenticate step, [`credentials`] issues, stores, lists and revokes credentials and
//! tokens, and [`tenants`] creates and lists tenants with their profiles and bundles.

mod authenticate;
mod credentials;
mod tenants;

pub use authenticate::{
    AuthError, CredentialKind, Presented, Principal, authenticate, new_id, new_secret, secret_hash,
};
pub use credentials::{
    CredentialSummary, IssueError, IssuedCredential, Issuer, issue_credential, list_credentials,
    revoke_credential, store_credential, store_token,
};
pub use tenants::{
    AixonCredentials, CredentialBundle, MonetateCredentials, MxoCredentials, OptimoveCredentials,
    TenantError, TenantProfile, TenantSummary, create_tenant, issue_bundle, list_tenants,
    load_profile, tenant_id_from_name,
};

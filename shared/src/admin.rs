//! Operator commands: create and list tenants, issue, list and revoke credentials.
//!
//! The admin CLI runs them directly against the embedded store or DynamoDB; when the local
//! server holds the embedded store open (redb allows one process per file), the CLI sends the
//! same command to the server's local-only admin route, authorized by the admin token the
//! server wrote into its data directory.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::customers::{self, CustomerRef, Identifier, Tid};
use crate::domain::TenantId;
use crate::http::{
    ApiError, CustdataCode, MxoCode, Request, Response, Vendor, body_bytes, error_response, header,
    json_response,
};
use crate::monetate::users::{self, UserError};
use crate::mxo::customer::structures::{self, SaveError};
use crate::tenancy::{
    CredentialKind, TenantError, create_tenant, issue_credential, list_credentials, list_tenants,
    load_profile, revoke_credential,
};

/// The local server's admin route (not in template.yaml: deployed stacks are administered
/// with `custdata-admin --aws`).
pub const ADMIN_ROUTE: &str = "/custdata/v1/admin/commands";

/// One operator command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum AdminCommand {
    CreateTenant {
        name: String,
    },
    ListTenants,
    IssueCredential {
        tenant: String,
        kind: String,
    },
    ListCredentials {
        tenant: String,
    },
    RevokeCredential {
        tenant: String,
        kind: String,
        id: String,
    },
    /// Saves an MXO pull structure (checked as the admin route checks it).
    PutStructure {
        tenant: String,
        name: String,
        definition: Value,
    },
    ListStructures {
        tenant: String,
    },
    DeleteStructure {
        tenant: String,
        name: String,
    },
    /// Lifts the suppression of an erased customer, by tid or by one identifier.
    LiftSuppression {
        tenant: String,
        #[serde(default)]
        tid: Option<String>,
        #[serde(default)]
        api_name: Option<String>,
        #[serde(default)]
        value: Option<String>,
    },
    /// The background status of an erasure.
    ErasureStatus {
        tenant: String,
        tid: String,
    },
    /// A Monetate API user, with a first public key given or generated (then the private
    /// half is in the answer, and nowhere else).
    MonetateCreateUser {
        tenant: String,
        #[serde(default)]
        username: Option<String>,
        #[serde(default)]
        public_key_pem: Option<String>,
        #[serde(default)]
        generate_key: bool,
    },
    MonetateAddKey {
        tenant: String,
        username: String,
        public_key_pem: String,
    },
    MonetateListUsers {
        tenant: String,
    },
    MonetateDeactivateKey {
        tenant: String,
        username: String,
        key_id: String,
    },
    /// A tenant's Optimove rate limit: calls per client per window of seconds.
    OptimoveRateLimit {
        tenant: String,
        calls: i64,
        per_seconds: i64,
    },
    /// Rotates the signing keys: a new key signs from now on, the previous one is still
    /// accepted for the grace period (default [`crate::keys::DEFAULT_GRACE_SECONDS`]).
    /// The identifier-hash key never rotates.
    RotateSigningKey {
        #[serde(default)]
        grace_seconds: Option<i64>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
    /// The new signing keys could not be written where they live.
    #[error("{0}")]
    Keys(String),
}

impl From<UserError> for AdminError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Invalid { .. } => AdminError::Invalid(error.to_string()),
            UserError::NotFound(message) => AdminError::NotFound(message),
            UserError::Conflict(message) => AdminError::Conflict(message),
            UserError::Storage(storage) => AdminError::Storage(storage),
        }
    }
}

impl From<TenantError> for AdminError {
    fn from(error: TenantError) -> Self {
        match error {
            TenantError::InvalidName(message) => AdminError::Invalid(message),
            TenantError::Exists(_) => AdminError::Conflict(error.to_string()),
            TenantError::Storage(storage) => AdminError::Storage(storage),
        }
    }
}

async fn existing_tenant(app: &App, raw: &str) -> Result<TenantId, AdminError> {
    let tenant = TenantId::parse(raw).map_err(AdminError::Invalid)?;
    match load_profile(app.table.as_ref(), &tenant).await? {
        Some(_) => Ok(tenant),
        None => Err(AdminError::NotFound(format!("no tenant {tenant}"))),
    }
}

fn kind(raw: &str) -> Result<CredentialKind, AdminError> {
    CredentialKind::parse(raw).filter(|kind| !matches!(kind, CredentialKind::MxoToken | CredentialKind::MonetateToken | CredentialKind::OptimoveToken)).ok_or_else(|| {
        AdminError::Invalid(format!(
            "unknown credential kind {raw:?}; one of mxo-client, monetate-user, aixon-api-key, optimove-user, optimove-api-key"
        ))
    })
}

/// Runs a command; the result is what the CLI prints.
pub async fn execute(
    app: &App,
    base_url: &str,
    command: AdminCommand,
) -> Result<Value, AdminError> {
    let table = app.table.as_ref();
    let now = app.clock.now_millis();
    match command {
        AdminCommand::CreateTenant { name } => {
            let mut bundle = create_tenant(table, &name, base_url, now).await?;
            users::provision_key_pair(table, &mut bundle, now)
                .await
                .map_err(AdminError::Invalid)?;
            Ok(json!(bundle))
        }
        AdminCommand::ListTenants => Ok(json!(list_tenants(table).await?)),
        AdminCommand::IssueCredential { tenant, kind: raw } => {
            let tenant = existing_tenant(app, &tenant).await?;
            Ok(json!(
                issue_credential(table, &tenant, kind(&raw)?, now).await?
            ))
        }
        AdminCommand::ListCredentials { tenant } => {
            let tenant = existing_tenant(app, &tenant).await?;
            Ok(json!(list_credentials(table, &tenant).await?))
        }
        AdminCommand::RevokeCredential {
            tenant,
            kind: raw,
            id,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            let revoked = match kind(&raw)? {
                // Its keys are deactivated too, so its live tokens stop working.
                CredentialKind::MonetateUser => {
                    users::remove_user(table, &tenant, &id, now).await?
                }
                kind => revoke_credential(table, &tenant, kind, &id).await?,
            };
            if revoked {
                Ok(json!({"revoked": id}))
            } else {
                Err(AdminError::NotFound(format!(
                    "tenant {tenant} has no {raw} credential {id}"
                )))
            }
        }
        AdminCommand::PutStructure {
            tenant,
            name,
            definition,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            match structures::save(app.customers(), &tenant, &name, &definition, now).await {
                Ok(saved) => Ok(json!(saved)),
                Err(SaveError::Invalid(problems)) => Err(AdminError::Invalid(
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field.as_deref().unwrap_or("body"), p.rule))
                        .collect::<Vec<_>>()
                        .join("; "),
                )),
                Err(SaveError::Storage(error)) => Err(error.into()),
            }
        }
        AdminCommand::ListStructures { tenant } => {
            let tenant = existing_tenant(app, &tenant).await?;
            Ok(json!(structures::list(table, &tenant).await?))
        }
        AdminCommand::DeleteStructure { tenant, name } => {
            let tenant = existing_tenant(app, &tenant).await?;
            if structures::remove(table, &tenant, &name).await? {
                Ok(json!({"deleted": name}))
            } else {
                Err(AdminError::NotFound(format!(
                    "tenant {tenant} has no structure {name}"
                )))
            }
        }
        AdminCommand::LiftSuppression {
            tenant,
            tid,
            api_name,
            value,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            let identifiers = match (api_name, value) {
                (Some(api_name), Some(value)) => vec![Identifier::new(api_name, value)],
                (None, None) => Vec::new(),
                _ => {
                    return Err(AdminError::Invalid(
                        "an identifier needs both apiName and value".into(),
                    ));
                }
            };
            if tid.is_none() && identifiers.is_empty() {
                return Err(AdminError::Invalid(
                    "name the customer by tid or by apiName and value".into(),
                ));
            }
            // A string that is no tid names no customer, so it has no suppression to lift.
            let tid = tid.as_deref().map(Tid::parse);
            if tid == Some(None) && identifiers.is_empty() {
                return Err(AdminError::NotFound("no such suppression".into()));
            }
            let named = CustomerRef {
                tid: tid.flatten(),
                identifiers,
            };
            if customers::lift_suppression(app.customers(), &tenant, &named)
                .await
                .map_err(|error| AdminError::Invalid(error.to_string()))?
            {
                Ok(json!({"lifted": true}))
            } else {
                Err(AdminError::NotFound("no such suppression".into()))
            }
        }
        AdminCommand::RotateSigningKey { grace_seconds } => {
            let grace = grace_seconds.unwrap_or(crate::keys::DEFAULT_GRACE_SECONDS);
            if !(0..=crate::keys::MAX_GRACE_SECONDS).contains(&grace) {
                return Err(AdminError::Invalid(format!(
                    "grace_seconds is 0 to {}, not {grace}",
                    crate::keys::MAX_GRACE_SECONDS
                )));
            }
            let rotation = app
                .signing
                .rotate(app.clock.now_seconds(), grace)
                .await
                .map_err(AdminError::Keys)?;
            Ok(json!(rotation))
        }
        AdminCommand::MonetateCreateUser {
            tenant,
            username,
            public_key_pem,
            generate_key,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            let pair = if generate_key {
                Some(users::generate_key_pair().map_err(AdminError::Invalid)?)
            } else {
                None
            };
            let public = pair
                .as_ref()
                .map(|pair| pair.public_key_pem.as_str())
                .or(public_key_pem.as_deref());
            let user = users::create_user(table, &tenant, username.as_deref(), public, now).await?;
            let mut shown = json!(user);
            if let Some(pair) = pair {
                shown["private_key_pem"] = json!(pair.private_key_pem);
            }
            Ok(shown)
        }
        AdminCommand::MonetateAddKey {
            tenant,
            username,
            public_key_pem,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            let key = users::add_key(table, &tenant, &username, &public_key_pem, now).await?;
            Ok(json!({"key_id": key.key_id, "bits": key.bits, "active": key.active}))
        }
        AdminCommand::MonetateListUsers { tenant } => {
            let tenant = existing_tenant(app, &tenant).await?;
            Ok(json!(users::list_users(table, &tenant).await?))
        }
        AdminCommand::MonetateDeactivateKey {
            tenant,
            username,
            key_id,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            Ok(users::deactivate_key(table, &tenant, &username, &key_id, now).await?)
        }
        AdminCommand::OptimoveRateLimit {
            tenant,
            calls,
            per_seconds,
        } => {
            let tenant = existing_tenant(app, &tenant).await?;
            if !(1..=1_000_000).contains(&calls) || !(1..=86_400).contains(&per_seconds) {
                return Err(AdminError::Invalid(
                    "calls is 1 to 1,000,000 and per_seconds 1 to 86,400".into(),
                ));
            }
            let limit = crate::ratelimit::WindowLimit {
                calls,
                window_seconds: per_seconds,
            };
            crate::optimove::set_rate_limit(app, &tenant, limit).await?;
            Ok(json!({"tenant": tenant, "calls": calls, "per_seconds": per_seconds}))
        }
        AdminCommand::ErasureStatus { tenant, tid } => {
            let tenant = existing_tenant(app, &tenant).await?;
            // A string that is no tid names no customer, so nothing of it was erased.
            let status = match Tid::parse(&tid) {
                Some(parsed) => {
                    customers::erasure_status(app.customers(), &tenant, &parsed).await?
                }
                None => None,
            };
            status.ok_or_else(|| AdminError::NotFound(format!("no erasure of tid {tid}")))
        }
    }
}

/// The local server's admin route: `POST` an [`AdminCommand`] with `Authorization: Bearer <admin token>`.
pub async fn handle_admin_request(
    app: &App,
    admin_token: &str,
    base_url: &str,
    request: Request,
) -> Response {
    let presented = header(&request, "authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    let authorized: bool = presented.as_bytes().ct_eq(admin_token.as_bytes()).into();
    let outcome = if !authorized || admin_token.is_empty() {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            CustdataCode::Unauthorized,
            "the admin token (in the data directory's admin-token file) is required",
        ))
    } else {
        match serde_json::from_slice::<AdminCommand>(body_bytes(&request)) {
            Err(error) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                CustdataCode::InvalidCommand,
                format!("not an admin command: {error}"),
            )),
            Ok(command) => execute(app, base_url, command)
                .await
                .map_err(|error| match error {
                    AdminError::Invalid(message) => {
                        ApiError::new(StatusCode::BAD_REQUEST, CustdataCode::Invalid, message)
                    }
                    AdminError::NotFound(message) => {
                        ApiError::new(StatusCode::NOT_FOUND, CustdataCode::NotFound, message)
                    }
                    AdminError::Conflict(message) => {
                        ApiError::new(StatusCode::CONFLICT, CustdataCode::Conflict, message)
                    }
                    AdminError::Storage(storage) => storage.into(),
                    AdminError::Keys(message) => {
                        tracing::error!(%message, "signing key rotation failed");
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            MxoCode::General,
                            "the new signing keys could not be written; the old ones stay",
                        )
                    }
                }),
        }
    };
    match outcome {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(error) => error_response(Vendor::Custdata, &error),
    }
}

//! The bearer check every MXO API call goes through.

use http::StatusCode;

use crate::app::App;
use crate::domain::TenantId;
use crate::http::{ApiError, MxoCode, Request, header};
use crate::tenancy::{AuthError, CredentialKind, Presented, Principal, authenticate, load_profile};

/// The 401 of an MXO call with a missing, forged, expired or revoked token.
pub fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        MxoCode::General,
        "Invalid OAuth 2.0 token",
    )
    .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
}

/// Resolves `Authorization: Bearer <token>` to the tenant that was issued the token.
pub async fn bearer_principal(app: &App, request: &Request) -> Result<Principal, ApiError> {
    let token = header(request, "authorization")
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .ok_or_else(invalid_token)?;
    match authenticate(
        app.table.as_ref(),
        Presented::Bearer {
            kind: CredentialKind::MxoToken,
            secret: token,
        },
    )
    .await
    {
        Ok(principal) => Ok(principal),
        Err(AuthError::Invalid) => Err(invalid_token()),
        Err(AuthError::Storage(error)) => Err(error.into()),
    }
}

/// Authenticates the bearer token and checks that the path's workspace id (or, as leniency,
/// site key) is the token's tenant's. A mismatch answers `mismatch_status`: the contract
/// gives 401 on list/create and 404 elsewhere, and either way nothing is revealed.
pub async fn workspace_tenant(
    app: &App,
    request: &Request,
    workspace: &str,
    mismatch_status: StatusCode,
) -> Result<TenantId, ApiError> {
    let principal = bearer_principal(app, request).await?;
    let profile = load_profile(app.table.as_ref(), &principal.tenant).await?;
    let owned = profile.is_some_and(|profile| {
        profile.mxo_workspace_id == workspace || profile.mxo_site_key == workspace
    });
    if owned {
        return Ok(principal.tenant);
    }
    if mismatch_status == StatusCode::UNAUTHORIZED {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            MxoCode::General,
            "the token is not valid for this workspace",
        )
        .with_header("www-authenticate", "Bearer error=\"invalid_token\""));
    }
    Err(ApiError::new(
        mismatch_status,
        MxoCode::General,
        format!("no workspace {workspace:?}"),
    ))
}

//! Monetate Auth API v0: `GET /api/auth/v0/refresh/` exchanges an assertion (a JWT the API
//! user signed with its private key) for an access token; Data API calls then send
//! `Authorization: Token <token>`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::users::{self, PublicKey};
use super::{bad_request, envelope};
use crate::app::App;
use crate::http::{ApiError, Request, Response, header, query_parameters};
use crate::tenancy::{
    AuthError, CredentialKind, Presented, TenantId, authenticate, new_id, new_secret,
    store_credential,
};

/// Token lifetimes the `ttl` parameter may ask for (contract decision 2).
pub const DEFAULT_TTL_SECONDS: i64 = 3600;
pub const MIN_TTL_SECONDS: i64 = 600;
pub const MAX_TTL_SECONDS: i64 = 43_200;
/// Bytes of an assertion: a 4096-bit signature is 683 characters of base64.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
}

fn revoked() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
        "the key has been deactivated",
    )
}

/// The value of `Authorization: <scheme> <credentials>`, the scheme compared without case.
fn credentials<'a>(request: &'a Request, scheme: &str) -> Result<&'a str, ApiError> {
    let value = header(request, "authorization").ok_or_else(|| {
        unauthorized(format!(
            "the Authorization header is required: {scheme} <…>"
        ))
    })?;
    let (given, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if !given.eq_ignore_ascii_case(scheme) || rest.trim().is_empty() {
        return Err(unauthorized(format!(
            "the Authorization header must be \"{scheme} <…>\""
        )));
    }
    Ok(rest.trim())
}

/// One part of a compact JWS, decoded as JSON, before anything is trusted.
fn unverified_part(assertion: &str, index: usize, name: &str) -> Result<Value, ApiError> {
    assertion
        .split('.')
        .nth(index)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .filter(Value::is_object)
        .ok_or_else(|| {
            unauthorized(format!(
                "the assertion is not a JWT: its {name} is not base64url JSON"
            ))
        })
}

fn accepted_algorithm(header: &Value) -> Result<Algorithm, ApiError> {
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => Ok(Algorithm::RS256),
        Some("RS384") => Ok(Algorithm::RS384),
        Some("RS512") => Ok(Algorithm::RS512),
        other => Err(unauthorized(format!(
            "alg {} is not accepted; sign with RS256, RS384 or RS512",
            other.map_or("(missing)".to_string(), |alg| format!("{alg:?}"))
        ))),
    }
}

/// The key among `keys` whose signature the assertion carries, and its verified claims.
fn verified_by<'k>(
    assertion: &str,
    algorithm: Algorithm,
    keys: &'k [PublicKey],
) -> Option<(&'k PublicKey, Value)> {
    let mut validation = Validation::new(algorithm);
    // Monetate assertions carry only `username` and `iat`; `iat` is checked below.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    keys.iter().find_map(|key| {
        let decoding = DecodingKey::from_rsa_pem(key.public_key_pem.as_bytes()).ok()?;
        jsonwebtoken::decode::<Value>(assertion, &decoding, &validation)
            .ok()
            .map(|data| (key, data.claims))
    })
}

fn ttl(request: &Request) -> Result<i64, ApiError> {
    let Some(raw) = query_parameters(request).remove("ttl") else {
        return Ok(DEFAULT_TTL_SECONDS);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|ttl| (MIN_TTL_SECONDS..=MAX_TTL_SECONDS).contains(ttl))
        .ok_or_else(|| {
            let rule =
                format!("an integer number of seconds from {MIN_TTL_SECONDS} to {MAX_TTL_SECONDS}");
            bad_request(format!("ttl {raw:?} is not {rule}")).with_problem(None, Some("ttl"), rule)
        })
}

/// `GET /api/auth/v0/refresh/`: verifies the assertion and issues an access token.
#[tracing::instrument(skip_all)]
pub async fn refresh(app: &App, request: &Request) -> Result<Response, ApiError> {
    let ttl = ttl(request)?;
    let assertion = credentials(request, "JWT")?;
    if assertion.len() > MAX_ASSERTION_BYTES {
        return Err(unauthorized(format!(
            "the assertion is longer than {MAX_ASSERTION_BYTES} bytes"
        )));
    }
    let algorithm = accepted_algorithm(&unverified_part(assertion, 0, "header")?)?;
    let username = unverified_part(assertion, 1, "payload")?
        .get("username")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| unauthorized("the assertion has no username claim"))?;
    let presented = Presented::PublicId {
        kind: CredentialKind::MonetateUser,
        id: &username,
    };
    let tenant = match authenticate(app.table.as_ref(), presented).await {
        Ok(principal) => principal.tenant,
        Err(AuthError::Invalid) => return Err(unauthorized("unknown API user")),
        Err(AuthError::Storage(error)) => return Err(error.into()),
    };
    let keys = users::keys_of(app, &tenant, &username).await?;
    let (key, claims) = verified_by(assertion, algorithm, &keys).ok_or_else(|| {
        unauthorized(
            "the signature does not verify with any public key registered to this API user",
        )
    })?;
    if !key.active {
        return Err(revoked());
    }
    let now_millis = app.clock.now_millis();
    let now = now_millis as f64 / 1000.0;
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_f64)
        .ok_or_else(|| unauthorized("the assertion's iat claim is missing or not a number"))?;
    let skew = app.settings.monetate_iat_skew_seconds as f64;
    if (now - issued_at).abs() > skew {
        return Err(unauthorized(format!(
            "the assertion's iat is {:.0} s from the server's clock; at most {skew:.0} s either way is accepted",
            now - issued_at
        )));
    }
    let token = new_secret();
    let token_id = format!("{}.{}", key.key_id, new_id("tok-"));
    store_credential(
        app.table.as_ref(),
        &tenant,
        CredentialKind::MonetateToken,
        &token_id,
        &token,
        Some(now_millis / 1000 + ttl),
        now_millis,
    )
    .await?;
    tracing::info!(%tenant, "issued a Monetate token");
    Ok(envelope(
        StatusCode::OK,
        json!({
            "issued_at": now,
            "token": token,
            "expires_in": ttl,
            "expires_at": now + ttl as f64,
        }),
    ))
}

/// Who a Data API call is: the tenant, the API user and the key its token was issued for.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub username: String,
    pub key_id: String,
}

/// Resolves `Authorization: Token <token>`: 401 for a missing, unknown or expired token,
/// 403 when its key has been deactivated since.
pub async fn caller(app: &App, request: &Request) -> Result<Caller, ApiError> {
    let token = credentials(request, "Token")?;
    let presented = Presented::Bearer {
        kind: CredentialKind::MonetateToken,
        secret: token,
    };
    let principal = match authenticate(app.table.as_ref(), presented).await {
        Ok(principal) => principal,
        Err(AuthError::Invalid) => {
            return Err(unauthorized(
                "the token is not valid or has expired; get a new one from /api/auth/v0/refresh/",
            ));
        }
        Err(AuthError::Storage(error)) => return Err(error.into()),
    };
    let key_id = principal
        .credential_id
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let key = users::key(app, &principal.tenant, &key_id).await?;
    match key {
        Some(key) if key.active => Ok(Caller {
            tenant: principal.tenant,
            username: key.username,
            key_id,
        }),
        _ => Err(revoked()),
    }
}

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
use crate::domain::TenantId;
use crate::http::{ApiError, CustdataCode, Request, Response, header, query_parameters};
use crate::tenancy::{
    AuthError, CredentialKind, Presented, authenticate, new_id, new_secret, store_credential,
};

/// Token lifetimes the `ttl` parameter may ask for (contract decision 2).
pub const DEFAULT_TTL_SECONDS: i64 = 3600;
pub const MIN_TTL_SECONDS: i64 = 600;
pub const MAX_TTL_SECONDS: i64 = 43_200;
/// Bytes of an assertion: a 4096-bit signature is 683 characters of base64.
pub const MAX_ASSERTION_BYTES: usize = 8 * 1024;

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        CustdataCode::Unauthorized,
        message,
    )
}

fn revoked() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        CustdataCode::Forbidden,
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
    // Monetate assertions carry `username` and `iat`; the times (`iat`, and `exp` and `nbf`
    // when present) are checked by `check_times` on the injected clock, not the library's.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
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

/// A refusal of one time claim: 401, the claim named as the field, the rule as the message.
fn claim_refused(claim: &str, rule: String) -> ApiError {
    unauthorized(rule.clone()).with_problem(None, Some(claim), rule)
}

/// A time claim as seconds since the epoch: absent is `None`, anything but a number is refused.
fn time_claim(claims: &Value, claim: &str) -> Result<Option<f64>, ApiError> {
    match claims.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| {
            claim_refused(
                claim,
                format!(
                    "the assertion's {claim} claim must be a number of seconds since the epoch"
                ),
            )
        }),
    }
}

/// The verified claims' times against the server's clock, each allowed `skew` seconds:
/// `iat` (required) near now, `exp` (when present) not passed, `nbf` (when present) reached.
fn check_times(claims: &Value, now: f64, skew: f64) -> Result<(), ApiError> {
    let issued_at = time_claim(claims, "iat")?.ok_or_else(|| {
        claim_refused(
            "iat",
            "the assertion's iat claim is missing; it is required".to_string(),
        )
    })?;
    if (now - issued_at).abs() > skew {
        return Err(claim_refused(
            "iat",
            format!(
                "the assertion's iat is {:.0} s from the server's clock; at most {skew:.0} s either way is accepted",
                now - issued_at
            ),
        ));
    }
    if let Some(expires) = time_claim(claims, "exp")?
        && now - expires > skew
    {
        return Err(claim_refused(
            "exp",
            format!(
                "the assertion expired (exp) {:.0} s ago; an assertion is accepted until at most {skew:.0} s after its exp",
                now - expires
            ),
        ));
    }
    if let Some(not_before) = time_claim(claims, "nbf")?
        && not_before - now > skew
    {
        return Err(claim_refused(
            "nbf",
            format!(
                "the assertion is not valid before (nbf) {:.0} s from now; it is accepted from at most {skew:.0} s before its nbf",
                not_before - now
            ),
        ));
    }
    Ok(())
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
    let keys = users::keys_of(app.table.as_ref(), &tenant, &username).await?;
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
    check_times(&claims, now, app.settings.monetate_iat_skew_seconds as f64)?;
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
    let key = users::key(app.table.as_ref(), &principal.tenant, &key_id).await?;
    match key {
        Some(key) if key.active => Ok(Caller {
            tenant: principal.tenant,
            username: key.username,
            key_id,
        }),
        _ => Err(revoked()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_800_000_000.0;
    const SKEW: f64 = 300.0;

    fn refused_claim(claims: Value) -> Option<String> {
        check_times(&claims, NOW, SKEW)
            .err()
            .and_then(|error| error.problems.first().and_then(|p| p.field.clone()))
    }

    #[test]
    fn exp_and_nbf_within_the_skew_are_accepted() {
        let claims = json!({"iat": NOW, "exp": NOW - 299.0, "nbf": NOW + 299.0});
        assert!(check_times(&claims, NOW, SKEW).is_ok());
        assert!(check_times(&json!({"iat": NOW}), NOW, SKEW).is_ok());
    }

    #[test]
    fn an_exp_past_beyond_the_skew_is_refused_naming_exp() {
        let error =
            check_times(&json!({"iat": NOW, "exp": NOW - 301.0}), NOW, SKEW).expect_err("expired");
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
        assert!(error.message.contains("exp") && error.message.contains("300 s"));
        assert_eq!(
            refused_claim(json!({"iat": NOW, "exp": NOW - 301.0})).as_deref(),
            Some("exp")
        );
    }

    #[test]
    fn an_nbf_ahead_beyond_the_skew_is_refused_naming_nbf() {
        assert_eq!(
            refused_claim(json!({"iat": NOW, "nbf": NOW + 3600.0})).as_deref(),
            Some("nbf")
        );
    }

    #[test]
    fn a_time_claim_that_is_not_a_number_is_refused() {
        assert_eq!(
            refused_claim(json!({"iat": NOW, "exp": "soon"})).as_deref(),
            Some("exp")
        );
        assert_eq!(refused_claim(json!({"iat": "now"})).as_deref(), Some("iat"));
        assert_eq!(refused_claim(json!({})).as_deref(), Some("iat"));
    }
}

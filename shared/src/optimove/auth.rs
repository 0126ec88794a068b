//! Optimove authentication: `Login` for an `Authorization-Token` that stays valid 20 minutes
//! from the last call (sliding, across Lambda instances: the expiry is on the token's item
//! and every call moves it with one conditional update), or an `X-API-KEY` without login.

use http::StatusCode;
use serde_json::{Value, json};

use super::{bad_request, field};
use crate::app::App;
use crate::http::{ApiError, Request, Response, header, json_body, json_response};
use crate::ratelimit;
use crate::storage::{Comparison, Condition, StorageError, Update, keys};
use crate::tenancy::{
    AuthError, CredentialKind, IssueError, Issuer, Presented, TenantId, authenticate, new_id,
    new_secret, secret_hash, store_token,
};

/// A token lives this long after the last call made with it.
pub const TOKEN_IDLE_SECONDS: i64 = 20 * 60;
/// An expired token's item is kept this much longer, so that it answers 403 "expired" (the
/// vendor's cue to log in again) rather than 401 "unknown".
const EXPIRED_TOKEN_KEPT_SECONDS: i64 = 86_400;
/// Logins per user: at most one per this many milliseconds (contract decision 8).
pub const LOGIN_INTERVAL_MILLIS: i64 = 1_000;
/// The body of the 403 for an expired token, exactly (contract decision 2).
pub const EXPIRED_BODY: &str = "Authorization-Token Expired";

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
}

/// Who a call is: the tenant and the client the rate limit counts (a Login user, or an API
/// key).
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    pub client: String,
}

/// `POST /current/general/login` with `{"Username", "Password"}` (names in any case): the
/// token as a JSON string.
pub async fn login(app: &App, request: &Request) -> Result<Response, ApiError> {
    let body = json_body(request)?;
    let text = |name: &str| {
        field(&body, name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (username, password) = (text("Username"), text("Password"));
    for (name, value) in [("Username", username), ("Password", password)] {
        if value.is_empty() {
            return Err(bad_request(format!("{name} is required")).with_problem(
                None,
                Some(name),
                "a non-empty string",
            ));
        }
    }
    let presented = Presented::IdAndSecret {
        kind: CredentialKind::OptimoveUser,
        id: username,
        secret: password,
    };
    let principal = match authenticate(app.table.as_ref(), presented).await {
        Ok(principal) => principal,
        Err(AuthError::Invalid) => return Err(unauthorized("wrong username or password")),
        Err(AuthError::Storage(error)) => return Err(error.into()),
    };
    let tenant = &principal.tenant;
    let now = app.clock.now_millis();
    let throttle = keys::optimove_login(tenant, username);
    if !ratelimit::take_interval(app.table.as_ref(), &throttle, now, LOGIN_INTERVAL_MILLIS).await? {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "at most one login per second per user; a token stays valid 20 minutes from its last use",
        )
        .with_header("retry-after", "1"));
    }
    let token = new_secret();
    let token_id = format!("{username}.{}", new_id("tok-"));
    let kept_until = now / 1000 + TOKEN_IDLE_SECONDS + EXPIRED_TOKEN_KEPT_SECONDS;
    let issuer = Issuer {
        kind: CredentialKind::OptimoveUser,
        id: &principal.credential_id,
    };
    match store_token(
        app.table.as_ref(),
        tenant,
        CredentialKind::OptimoveToken,
        &token_id,
        &token,
        kept_until,
        now,
        issuer,
    )
    .await
    {
        Ok(()) => {}
        Err(IssueError::IssuerRevoked) => return Err(unauthorized("wrong username or password")),
        Err(IssueError::Storage(error)) => return Err(error.into()),
    }
    app.table
        .update(
            &token_key(&token),
            Update::default().set("valid_until", now + TOKEN_IDLE_SECONDS * 1000),
            Condition::Exists,
        )
        .await?;
    Ok(json_response(StatusCode::OK, &json!(token)))
}

fn token_key(token: &str) -> crate::storage::Key {
    keys::credential_index(CredentialKind::OptimoveToken.as_str(), &secret_hash(token))
}

/// Why a call is refused before it runs.
pub enum Refused {
    Error(ApiError),
    /// The vendor's exact 403: the client logs in again.
    Expired,
}

impl From<StorageError> for Refused {
    fn from(error: StorageError) -> Self {
        Refused::Error(error.into())
    }
}

/// The expiry answer, as the vendor sends it: 403, `text/plain`, the exact text.
pub fn expired_response() -> Response {
    let mut response = http::Response::new(lambda_http::Body::Text(EXPIRED_BODY.into()));
    *response.status_mut() = StatusCode::FORBIDDEN;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}

/// Resolves `X-API-KEY` or `Authorization-Token`; a token's 20 minutes start again.
pub async fn caller(app: &App, request: &Request) -> Result<Caller, Refused> {
    if let Some(key) = header(request, "x-api-key").map(str::trim) {
        let presented = Presented::Bearer {
            kind: CredentialKind::OptimoveApiKey,
            secret: key,
        };
        return match authenticate(app.table.as_ref(), presented).await {
            Ok(principal) => Ok(Caller {
                tenant: principal.tenant,
                client: format!("key:{}", principal.credential_id),
            }),
            Err(AuthError::Invalid) => {
                Err(Refused::Error(unauthorized("the X-API-KEY is not valid")))
            }
            Err(AuthError::Storage(error)) => Err(error.into()),
        };
    }
    let Some(token) = header(request, "authorization-token")
        .map(str::trim)
        .filter(|token| !token.is_empty() && token.len() <= 512)
    else {
        return Err(Refused::Error(unauthorized(
            "send Authorization-Token (from /current/general/login) or X-API-KEY",
        )));
    };
    let now = app.clock.now_millis();
    let slide = Update::default()
        .set("valid_until", now + TOKEN_IDLE_SECONDS * 1000)
        .expiring_at(now / 1000 + TOKEN_IDLE_SECONDS + EXPIRED_TOKEN_KEPT_SECONDS);
    let live = Condition::compare("valid_until", Comparison::Ge, now);
    match app.table.update(&token_key(token), slide, live).await {
        Ok(item) => {
            let tenant = item
                .str("tenant")
                .and_then(|raw| TenantId::parse(raw).ok())
                .ok_or_else(|| Refused::Error(unauthorized("the token is not valid")))?;
            let user = item
                .str("credential_id")
                .and_then(|id| id.split_once('.'))
                .map(|(user, _)| user.to_string())
                .unwrap_or_default();
            Ok(Caller {
                tenant,
                client: format!("user:{user}"),
            })
        }
        Err(StorageError::ConditionFailed { .. }) => {
            match app.table.get(&token_key(token)).await? {
                Some(_) => Err(Refused::Expired),
                None => Err(Refused::Error(unauthorized("the token is not valid"))),
            }
        }
        Err(other) => Err(other.into()),
    }
}

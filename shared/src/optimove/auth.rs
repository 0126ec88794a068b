//! Optimove authentication: `Login` for an `Authorization-Token` that stays valid 20 minutes
//! from the last call (sliding, across Lambda instances: the expiry is on the token's item
//! and every call moves it with one conditional update), or an `X-API-KEY` without login.

use http::StatusCode;
use serde_json::{Value, json};

use super::{bad_request, field};
use crate::app::App;
use crate::domain::TenantId;
use crate::http::{ApiError, CustdataCode, Request, Response, header, json_body, json_response};
use crate::ratelimit::{self, WindowLimit};
use crate::storage::{Comparison, Condition, StorageError, Update, keys};
use crate::tenancy::{
    AuthError, CredentialKind, IssueError, Issuer, Presented, authenticate, new_id, new_secret,
    secret_hash, store_token,
};

/// A token lives this long after the last call made with it.
pub const TOKEN_IDLE_SECONDS: i64 = 20 * 60;
/// An expired token's item is kept this much longer, so that it answers 403 "expired" (the
/// vendor's cue to log in again) rather than 401 "unknown".
const EXPIRED_TOKEN_KEPT_SECONDS: i64 = 86_400;
/// Failed logins of one username within a minute; the next login (correct or not) is 429
/// until the minute ends (contract decision 8: only failures are throttled).
pub const MAX_FAILED_LOGINS: i64 = 5;
const FAILED_LOGINS: WindowLimit = WindowLimit {
    calls: MAX_FAILED_LOGINS,
    window_seconds: 60,
};
/// The body of the 403 for an expired token, exactly (contract decision 2).
pub const EXPIRED_BODY: &str = "Authorization-Token Expired";

fn unauthorized(message: impl Into<String>) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        CustdataCode::Unauthorized,
        message,
    )
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
    let now = app.clock.now_millis();
    let failures = keys::optimove_login_failures_pk(&app.keyed_hash(username));
    let table = app.table.as_ref();
    if let Some(seconds) =
        ratelimit::window_used_up(table, failures.clone(), "failed", now, FAILED_LOGINS).await?
    {
        crate::metrics::rate_limited(crate::metrics::RateLimit::OptimoveFailedLogins);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            CustdataCode::TooManyRequests,
            format!(
                "{MAX_FAILED_LOGINS} failed logins of this user within a minute; try again in {seconds} s"
            ),
        )
        .with_header("retry-after", seconds.to_string()));
    }
    let presented = Presented::IdAndSecret {
        kind: CredentialKind::OptimoveUser,
        id: username,
        secret: password,
    };
    let principal = match authenticate(table, presented).await {
        Ok(principal) => principal,
        Err(AuthError::Invalid) => {
            // Counted after the fact; a full window only refuses the next attempt.
            let _ =
                ratelimit::take_in_window(table, failures, "failed", now, FAILED_LOGINS).await?;
            return Err(unauthorized("wrong username or password"));
        }
        Err(AuthError::Storage(error)) => return Err(error.into()),
    };
    let token = match live_token(app, &principal.tenant, username, password, now).await? {
        Some(token) => token,
        None => new_token(app, &principal, username, password, now).await?,
    };
    Ok(json_response(StatusCode::OK, &json!(token)))
}

/// The user's token, if it is still live (its 20 minutes start again): a correct login
/// while a token lives hands back that token rather than a new one or a 429.
async fn live_token(
    app: &App,
    tenant: &TenantId,
    username: &str,
    password: &str,
    now: i64,
) -> Result<Option<String>, StorageError> {
    let Some(item) = app
        .table
        .get(&keys::optimove_login(tenant, username))
        .await?
    else {
        return Ok(None);
    };
    let (Some(token_id), Some(sealed)) = (item.str("token_id"), item.str("sealed_token")) else {
        return Ok(None);
    };
    // Another password (a reissued user) opens it to a token that does not exist.
    let Some(token) = sealing::open(password, token_id, sealed) else {
        return Ok(None);
    };
    Ok(slide(app, &token, now).await?.map(|_| token))
}

/// Issues a token to the user and keeps it, sealed under the password, as the live one.
async fn new_token(
    app: &App,
    principal: &crate::tenancy::Principal,
    username: &str,
    password: &str,
    now: i64,
) -> Result<String, ApiError> {
    let tenant = &principal.tenant;
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
    if let Some(sealed) = sealing::seal(password, &token_id, &token) {
        app.table
            .update(
                &keys::optimove_login(tenant, username),
                Update::default()
                    .set("token_id", token_id.as_str())
                    .set("sealed_token", sealed)
                    .expiring_at(now / 1000 + TOKEN_IDLE_SECONDS + EXPIRED_TOKEN_KEPT_SECONDS),
                Condition::Always,
            )
            .await?;
    }
    Ok(token)
}

/// Moves a live token's expiry to 20 minutes from `now`: its index item, or `None` when the
/// token is expired or unknown.
async fn slide(
    app: &App,
    token: &str,
    now: i64,
) -> Result<Option<crate::storage::Item>, StorageError> {
    let slide = Update::default()
        .set("valid_until", now + TOKEN_IDLE_SECONDS * 1000)
        .expiring_at(now / 1000 + TOKEN_IDLE_SECONDS + EXPIRED_TOKEN_KEPT_SECONDS);
    let live = Condition::compare("valid_until", Comparison::Ge, now);
    match app.table.update(&token_key(token), slide, live).await {
        Ok(item) => Ok(Some(item)),
        Err(StorageError::ConditionFailed { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// A live token kept so that only its user's password opens it: the token's 32 bytes XOR
/// HMAC-SHA256(password, token id). The password is a generated 256-bit secret and the
/// token id is new with every token, so no pad is used twice; the store never holds a
/// token a reader of the table could use.
mod sealing {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    fn pad(password: &str, token_id: &str) -> Vec<u8> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(password.as_bytes()).expect("HMAC takes any key");
        mac.update(b"optimove-live-token\0");
        mac.update(token_id.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    fn xor(bytes: &[u8], pad: &[u8]) -> Option<Vec<u8>> {
        (bytes.len() == pad.len()).then(|| bytes.iter().zip(pad).map(|(b, p)| b ^ p).collect())
    }

    /// The token sealed (hex), if it is a token of this server's shape.
    pub fn seal(password: &str, token_id: &str, token: &str) -> Option<String> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        xor(&raw, &pad(password, token_id)).map(hex::encode)
    }

    /// The token a sealed value holds under this password.
    pub fn open(password: &str, token_id: &str, sealed: &str) -> Option<String> {
        let raw = hex::decode(sealed).ok()?;
        xor(&raw, &pad(password, token_id)).map(|token| URL_SAFE_NO_PAD.encode(token))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_sealed_token_opens_only_under_its_password_and_id() {
            let token = crate::tenancy::new_secret();
            let sealed = seal("password", "user.tok-1", &token).expect("sealed");
            assert_ne!(sealed, hex::encode(URL_SAFE_NO_PAD.decode(&token).unwrap()));
            assert_eq!(open("password", "user.tok-1", &sealed), Some(token.clone()));
            assert_ne!(open("other", "user.tok-1", &sealed), Some(token.clone()));
            assert_ne!(open("password", "user.tok-2", &sealed), Some(token));
        }
    }
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
    match slide(app, token, now).await? {
        Some(item) => {
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
        None => match app.table.get(&token_key(token)).await? {
            Some(_) => Err(Refused::Expired),
            None => Err(Refused::Error(unauthorized("the token is not valid"))),
        },
    }
}

//! `POST /one/oauth2token`: OAuth2 client credentials (RFC 6749 §4.4) as MXO serves them.
//!
//! The client authenticates with HTTP Basic (`client_id:client_secret`) or, as leniency the
//! RFC allows, with `client_id`/`client_secret` form fields. The answer is a bearer token
//! with an expiry; the token is stored (hashed) as a credential of the tenant, so it can be
//! checked on every MXO call and dies with its TTL.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::StatusCode;
use serde::Serialize;
use std::collections::HashMap;

use crate::app::App;
use crate::http::{
    ApiError, Family, OAuthCode, Request, Response, Vendor, body_bytes, header, json_response,
    media_type, route_key, route_not_served,
};
use crate::tenancy::{
    AuthError, CredentialKind, IssueError, Issuer, Presented, authenticate, new_id, new_secret,
    store_token,
};

/// The token endpoint's one route.
const TOKEN: &str = "POST /one/oauth2token";

/// The token endpoint's family (binary `mxo-token`).
pub static FAMILY: Family = Family {
    name: "mxo-token",
    vendor: Vendor::MxoOAuth,
    routes: &[TOKEN],
    max_body_bytes: 16 * 1024,
    handler: |app, request| {
        Box::pin(async move {
            match route_key(&request) {
                Some(TOKEN) => handle(&app, request).await,
                _ => Err(route_not_served(&request)),
            }
        })
    },
};

/// The token response of RFC 6749 §5.1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

fn invalid_request(message: impl Into<String>, field: &str) -> ApiError {
    let message = message.into();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        OAuthCode::InvalidRequest,
        message.clone(),
    )
    .with_problem(None, Some(field), message)
}

fn invalid_client(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, OAuthCode::InvalidClient, message)
        .with_header("www-authenticate", "Basic realm=\"custdata\"")
}

/// Client id and secret from a Basic header; the RFC form-encodes both before joining them.
fn basic_credentials(value: &str) -> Result<(String, String), ApiError> {
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
        .ok_or_else(|| invalid_client("the Authorization header must use the Basic scheme"))?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            invalid_client("the Basic credentials are not base64 of client_id:client_secret")
        })?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| invalid_client("the Basic credentials lack the ':' separator"))?;
    let unescape = |raw: &str| {
        url::form_urlencoded::parse(format!("v={raw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Ok((
        unescape(id).unwrap_or_default(),
        unescape(secret).unwrap_or_default(),
    ))
}

/// Issues a bearer token for a client's credentials.
#[tracing::instrument(skip_all)]
pub async fn handle(app: &App, request: Request) -> Result<Response, ApiError> {
    if media_type(&request).as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
            "Content-Type",
        ));
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(body_bytes(&request)) {
        if form.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(invalid_request(
                format!("parameter {name} is repeated"),
                &name,
            ));
        }
    }
    match form.get("grant_type").map(String::as_str) {
        None => return Err(invalid_request("grant_type is required", "grant_type")),
        Some("client_credentials") => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                OAuthCode::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported; use client_credentials"),
            )
            .with_problem(None, Some("grant_type"), "must be client_credentials"));
        }
    }
    let from_form = match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
        (None, None) => None,
        _ => {
            return Err(invalid_request(
                "client_id and client_secret go together",
                "client_secret",
            ));
        }
    };
    let (client_id, client_secret) = match (header(&request, "authorization"), from_form) {
        (Some(_), Some(_)) => {
            return Err(invalid_request(
                "send the client credentials either in the Authorization header or in the body, not both",
                "Authorization",
            ));
        }
        (Some(value), None) => basic_credentials(value)?,
        (None, Some(pair)) => pair,
        (None, None) => {
            return Err(invalid_client(
                "client authentication is required (HTTP Basic)",
            ));
        }
    };
    let presented = Presented::IdAndSecret {
        kind: CredentialKind::MxoClient,
        id: &client_id,
        secret: &client_secret,
    };
    let principal = match authenticate(app.table.as_ref(), presented).await {
        Ok(principal) => principal,
        Err(AuthError::Invalid) => return Err(invalid_client("unknown client or wrong secret")),
        Err(AuthError::Storage(error)) => return Err(error.into()),
    };
    let token = new_secret();
    let ttl = app.settings.mxo_token_ttl_seconds;
    let now = app.clock.now_millis();
    let issuer = Issuer {
        kind: CredentialKind::MxoClient,
        id: &principal.credential_id,
    };
    match store_token(
        app.table.as_ref(),
        &principal.tenant,
        CredentialKind::MxoToken,
        &new_id("tok-"),
        &token,
        now / 1000 + ttl,
        now,
        issuer,
    )
    .await
    {
        Ok(()) => {}
        Err(IssueError::IssuerRevoked) => return Err(invalid_client("the client was revoked")),
        Err(IssueError::Storage(error)) => return Err(error.into()),
    }
    tracing::info!(tenant = %principal.tenant, "issued an MXO token");
    let mut response = json_response(
        StatusCode::OK,
        &TokenResponse {
            access_token: token,
            token_type: "bearer".into(),
            expires_in: ttl,
        },
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response.headers_mut().insert(
        http::header::PRAGMA,
        http::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}

//! Revocation ends sessions: revoking an MXO client or an Optimove Login user through the
//! admin route makes every token it obtained before fail at once, on both adapters; a
//! second tenant's client and its tokens are untouched; concurrent token requests of one
//! client all succeed.

use custdata::tenancy::CredentialBundle;
use custdata_tests::{TestApp, admin, create_tenant, mxo_token_for, on_both_adapters};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn revoke(app: &TestApp, tenant: &str, kind: &str, id: &str) -> (u16, Value) {
    let command = json!({"command": "revoke-credential", "tenant": tenant, "kind": kind, "id": id});
    admin(app, command).await
}

/// The status of listing the tenant's datastores with an MXO bearer token.
async fn mxo_list(app: &TestApp, bundle: &CredentialBundle, token: &str) -> StatusCode {
    app.client
        .get(app.url(&format!("/datastores/1.0.0/{}", bundle.mxo.workspace_id)))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
        .status()
}

async fn optimove_login(app: &TestApp, bundle: &CredentialBundle) -> reqwest::Response {
    app.client
        .post(app.url("/current/general/login"))
        .json(&json!({"Username": bundle.optimove.username, "Password": bundle.optimove.password}))
        .send()
        .await
        .expect("login")
}

async fn optimove_token(app: &TestApp, bundle: &CredentialBundle) -> String {
    let response = optimove_login(app, bundle).await;
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.expect("JSON");
    token.as_str().expect("a token").to_string()
}

async fn optimove_call(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/current/general/GetLastDataUpdate"))
        .header("Authorization-Token", token)
        .send()
        .await
        .expect("request")
        .status()
}

async fn revoking_an_mxo_client_ends_its_tokens(app: TestApp) {
    let bundle = create_tenant(&app, "acme").await;
    let other = create_tenant(&app, "other").await;
    let first = mxo_token_for(&app, &bundle.mxo.client_id, &bundle.mxo.client_secret).await;
    let second = mxo_token_for(&app, &bundle.mxo.client_id, &bundle.mxo.client_secret).await;
    let others = mxo_token_for(&app, &other.mxo.client_id, &other.mxo.client_secret).await;
    for token in [&first, &second] {
        assert_eq!(mxo_list(&app, &bundle, token).await, StatusCode::OK);
    }

    let (status, body) = revoke(&app, &bundle.tenant, "mxo-client", &bundle.mxo.client_id).await;
    assert_eq!(status, 200, "{body}");
    for token in [&first, &second] {
        assert_eq!(
            mxo_list(&app, &bundle, token).await,
            StatusCode::UNAUTHORIZED,
            "a token of the revoked client still works"
        );
    }
    let refused = app
        .client
        .post(app.url("/one/oauth2token"))
        .basic_auth(&bundle.mxo.client_id, Some(&bundle.mxo.client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(mxo_list(&app, &other, &others).await, StatusCode::OK);
}

async fn revoking_an_optimove_user_ends_its_tokens(app: TestApp) {
    let bundle = create_tenant(&app, "acme").await;
    let other = create_tenant(&app, "other").await;
    let first = optimove_token(&app, &bundle).await;
    let second = optimove_token(&app, &bundle).await;
    let others = optimove_token(&app, &other).await;
    for token in [&first, &second] {
        assert_eq!(optimove_call(&app, token).await, StatusCode::OK);
    }

    let (status, body) = revoke(
        &app,
        &bundle.tenant,
        "optimove-user",
        &bundle.optimove.username,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for token in [&first, &second] {
        assert_eq!(
            optimove_call(&app, token).await,
            StatusCode::UNAUTHORIZED,
            "a token of the revoked user still works"
        );
    }
    assert_eq!(
        optimove_login(&app, &bundle).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(optimove_call(&app, &others).await, StatusCode::OK);
}

/// Every token request checks its client in the same transaction: concurrent requests of
/// one client all get a token (contention is retried, never answered 503 or 401).
async fn concurrent_token_requests_of_one_client_all_succeed(app: TestApp) {
    let bundle = create_tenant(&app, "acme").await;
    let requests =
        (0..16).map(|_| mxo_token_for(&app, &bundle.mxo.client_id, &bundle.mxo.client_secret));
    let tokens = futures::future::join_all(requests).await;
    for token in &tokens {
        assert_eq!(mxo_list(&app, &bundle, token).await, StatusCode::OK);
    }
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), 16);
}

on_both_adapters!(
    concurrent_token_requests_of_one_client_all_succeed,
    revoking_an_mxo_client_ends_its_tokens,
    revoking_an_optimove_user_ends_its_tokens,
);

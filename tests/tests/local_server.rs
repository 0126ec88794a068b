//! Black-box tests of custdata-local over HTTP: routing from template.yaml, the plumbing
//! every route shares, the development tenant, restarts, and the MXO token endpoint.

use std::sync::Arc;

use custdata::admin::ADMIN_ROUTE;
use custdata::clock::{Clock, ManualClock};
use custdata::http::{ErrorCode, MxoCode};
use custdata::mxo::auth::bearer_principal;
use custdata::storage::keys;
use custdata::tenancy::{CredentialBundle, CredentialKind, secret_hash};
use custdata_local::{ADMIN_TOKEN_FILE, Config, DEV_CREDENTIALS_FILE};
use custdata_tests::{TestApp, basic, spawn_app};
use serde_json::{Value, json};

/// A token request as an MXO client sends it.
fn token_request(
    app: &TestApp,
    authorization: Option<String>,
    body: &str,
) -> reqwest::RequestBuilder {
    let request = app
        .client
        .post(app.url("/one/oauth2token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_string());
    match authorization {
        Some(value) => request.header("authorization", value),
        None => request,
    }
}

fn dev(app: &TestApp) -> &CredentialBundle {
    &app.server.credentials
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.expect("a JSON body")
}

#[tokio::test]
async fn first_start_writes_development_credentials_for_every_vendor_mechanism() {
    let app = spawn_app().await;
    let path = app.server.data_dir.join(DEV_CREDENTIALS_FILE);
    let file: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("dev-credentials.json")).expect("JSON");
    assert_eq!(file["base_url"], app.server.base_url.as_str());
    assert_eq!(file["tenant"], "dev");
    for (vendor, fields) in [
        (
            "mxo",
            &["client_id", "client_secret", "workspace_id", "site_key"][..],
        ),
        (
            "monetate",
            &["retailer", "api_username", "private_key_pem"][..],
        ),
        ("aixon", &["api_key"][..]),
        ("optimove", &["username", "password", "api_key"][..]),
    ] {
        for field in fields {
            assert!(
                file[vendor][field].is_string(),
                "{vendor}.{field} missing in {file}"
            );
        }
    }
    assert!(
        file["mxo"]["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 40)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "credentials are readable by the owner only"
        );
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404_and_a_wrong_method_a_405() {
    let app = spawn_app().await;
    let missing = app
        .client
        .get(app.url("/no/such/route"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
    let body = json_of(missing).await;
    assert_eq!(body["error"]["code"], "NOT_FOUND");

    let wrong = app
        .client
        .get(app.url("/one/oauth2token"))
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), 405);
    assert_eq!(
        wrong.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_eq!(json_of(wrong).await["error"]["code"], "METHOD_NOT_ALLOWED");

    // The routes only this server serves answer the same way.
    for (path, allowed) in [
        (custdata::admin::ADMIN_ROUTE, "POST"),
        (custdata::storage::embedded::PRESIGNED_UPLOAD_PATH, "PUT"),
        ("/custdata/v1/openapi", "GET"),
    ] {
        let wrong = app
            .client
            .delete(app.url(path))
            .send()
            .await
            .expect("request");
        assert_eq!(wrong.status(), 405, "{path}");
        assert_eq!(
            wrong.headers().get("allow").and_then(|v| v.to_str().ok()),
            Some(allowed)
        );
    }
}

#[tokio::test]
async fn the_mxo_token_endpoint_issues_a_bearer_token_and_stores_it_hashed() {
    let app = spawn_app().await;
    let mxo = &dev(&app).mxo;
    let response = token_request(
        &app,
        Some(basic(&mxo.client_id, &mxo.client_secret)),
        "grant_type=client_credentials",
    )
    .header("x-request-id", "client-chosen-id")
    .send()
    .await
    .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("client-chosen-id")
    );
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body = json_of(response).await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().expect("a token").to_string();

    let stored = app
        .server
        .app
        .table
        .get(&keys::credential_index(
            CredentialKind::MxoToken.as_str(),
            &secret_hash(&token),
        ))
        .await
        .expect("read")
        .expect("the token's hash is stored");
    assert_eq!(stored.str("tenant"), Some("dev"));
    assert_eq!(stored.expires_at, Some(app.clock.now_seconds() + 3600));
    assert!(
        !serde_json::to_string(&stored.attrs)
            .expect("json")
            .contains(&token),
        "the token itself is never stored"
    );

    let request = http_request_with_bearer(&token);
    let principal = bearer_principal(&app.server.app, &request)
        .await
        .expect("the token authenticates");
    assert_eq!(principal.tenant.as_str(), "dev");
    app.clock.advance_seconds(3601);
    let expired = bearer_principal(&app.server.app, &request)
        .await
        .expect_err("an expired token is refused");
    assert_eq!(expired.status, 401);
    assert_eq!(expired.code, ErrorCode::Mxo(MxoCode::General));
}

fn http_request_with_bearer(token: &str) -> custdata::http::Request {
    let mut request = custdata::http::Request::new(lambda_http::Body::Empty);
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

#[tokio::test]
async fn client_credentials_are_also_accepted_as_form_fields() {
    let app = spawn_app().await;
    let mxo = &dev(&app).mxo;
    let body = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        mxo.client_id, mxo.client_secret
    );
    let response = token_request(&app, None, &body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
}

type RefusalCase<'a> = (Option<String>, &'a str, Option<&'a str>, u16, &'a str);

#[tokio::test]
async fn token_requests_are_refused_in_the_oauth_error_shape() {
    let app = spawn_app().await;
    let mxo = &dev(&app).mxo;
    let good = || Some(basic(&mxo.client_id, &mxo.client_secret));
    // (Authorization, body, Content-Type, expected status, expected OAuth error)
    let cases: Vec<RefusalCase> = vec![
        (
            Some(basic(&mxo.client_id, "wrong")),
            "grant_type=client_credentials",
            None,
            401,
            "invalid_client",
        ),
        (
            Some(basic("cid-unknown", &mxo.client_secret)),
            "grant_type=client_credentials",
            None,
            401,
            "invalid_client",
        ),
        (
            Some("Basic !!!".into()),
            "grant_type=client_credentials",
            None,
            401,
            "invalid_client",
        ),
        (
            Some("Bearer abc".into()),
            "grant_type=client_credentials",
            None,
            401,
            "invalid_client",
        ),
        (
            None,
            "grant_type=client_credentials",
            None,
            401,
            "invalid_client",
        ),
        (good(), "", None, 400, "invalid_request"),
        (
            good(),
            "grant_type=password",
            None,
            400,
            "unsupported_grant_type",
        ),
        (
            good(),
            "grant_type=client_credentials&grant_type=client_credentials",
            None,
            400,
            "invalid_request",
        ),
        (
            good(),
            "grant_type=client_credentials",
            Some("application/json"),
            400,
            "invalid_request",
        ),
    ];
    for (authorization, body, content_type, status, error) in cases {
        let mut request = app
            .client
            .post(app.url("/one/oauth2token"))
            .body(body.to_string());
        request = request.header(
            "content-type",
            content_type.unwrap_or("application/x-www-form-urlencoded"),
        );
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), status, "{authorization:?} {body:?}");
        if status == 401 {
            assert_eq!(
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Basic realm=\"custdata\"")
            );
        }
        let json = json_of(response).await;
        assert_eq!(json["error"], error, "{authorization:?} {body:?}: {json}");
        assert!(
            json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[tokio::test]
async fn a_body_over_the_route_limit_is_refused_with_413_before_the_handler() {
    let app = spawn_app().await;
    let huge = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(20 * 1024)
    );
    let response = token_request(&app, None, &huge)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 413);
    assert!(response.headers().contains_key("x-request-id"));
    let body = json_of(response).await;
    assert_eq!(body["error"], "PAYLOAD_TOO_LARGE");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("16384 bytes")),
        "{body}"
    );
}

#[tokio::test]
async fn one_tenants_client_secret_does_not_open_another_tenants_client() {
    let app = spawn_app().await;
    let created = app
        .client
        .post(app.url(ADMIN_ROUTE))
        .bearer_auth(
            std::fs::read_to_string(app.server.data_dir.join(ADMIN_TOKEN_FILE))
                .expect("admin token"),
        )
        .json(&json!({"command": "create-tenant", "name": "Other"}))
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), 200);
    let other: CredentialBundle = created.json().await.expect("a credential bundle");
    let mxo = &dev(&app).mxo;
    let crossed = token_request(
        &app,
        Some(basic(&mxo.client_id, &other.mxo.client_secret)),
        "grant_type=client_credentials",
    )
    .send()
    .await
    .expect("request");
    assert_eq!(crossed.status(), 401);
    let own = token_request(
        &app,
        Some(basic(&other.mxo.client_id, &other.mxo.client_secret)),
        "grant_type=client_credentials",
    )
    .send()
    .await
    .expect("request");
    let token = json_of(own).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let principal = bearer_principal(&app.server.app, &http_request_with_bearer(&token))
        .await
        .expect("principal");
    assert_eq!(principal.tenant.as_str(), "other");
}

#[tokio::test]
async fn the_admin_route_refuses_a_missing_or_wrong_admin_token() {
    let app = spawn_app().await;
    for token in ["", "wrong"] {
        let response = app
            .client
            .post(app.url(ADMIN_ROUTE))
            .bearer_auth(token)
            .json(&json!({"command": "list-tenants"}))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 401);
    }
}

#[tokio::test]
async fn a_restart_keeps_data_and_credentials() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = ManualClock::at_millis(1_790_000_000_000);
    let config = || Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(clock.clone()),
        backend: custdata_local::Backend::Embedded,
        run_scheduled_tasks: false,
        lambda_limits: false,
    };
    let first = custdata_local::start(config()).await.expect("first start");
    let credentials = first.credentials.clone();
    first.shutdown().await;

    let second = custdata_local::start(config()).await.expect("second start");
    assert_eq!(
        second.credentials.mxo, credentials.mxo,
        "the same credentials after a restart"
    );
    assert_eq!(second.credentials.base_url, second.base_url);
    let response = reqwest::Client::new()
        .post(format!("{}/one/oauth2token", second.base_url))
        .header(
            "authorization",
            basic(&credentials.mxo.client_id, &credentials.mxo.client_secret),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let tenants = custdata::tenancy::list_tenants(second.app.table.as_ref())
        .await
        .expect("tenants");
    assert_eq!(
        tenants
            .iter()
            .map(|t| t.tenant.as_str())
            .collect::<Vec<_>>(),
        vec!["dev"]
    );
    second.shutdown().await;
}

/// A handler that panics (there is none today: the fuzzers look for one) stands in for a
/// defect: its request is answered 500 in the vendor's shape, and the process goes on.
static PANICS: custdata::http::Family = custdata::http::Family {
    name: "panics",
    vendor: custdata::http::Vendor::Mxo,
    routes: &["POST /one/oauth2token"],
    max_body_bytes: 1024,
    handler: |_, _| Box::pin(async { panic!("a defect in a handler") }),
};

#[tokio::test]
async fn a_handler_that_panics_answers_500_and_the_process_serves_the_next_request() {
    let app = spawn_app().await;
    let request = || {
        let request = http::Request::builder()
            .method("POST")
            .uri("https://api.example/one/oauth2token")
            .body(lambda_http::Body::Empty)
            .expect("a request");
        custdata::http::with_route_key(request, "POST /one/oauth2token")
    };
    for _ in 0..2 {
        let answer = custdata::http::dispatch(app.server.app.clone(), &PANICS, request()).await;
        assert_eq!(answer.status(), 500);
        let lambda_http::Body::Text(body) = answer.body() else {
            panic!("a JSON body");
        };
        let body: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert!(
            body.to_string().contains("other requests are served"),
            "{body}"
        );
    }
    let served = custdata::http::dispatch(
        app.server.app.clone(),
        &custdata::mxo::token::FAMILY,
        request(),
    )
    .await;
    assert_eq!(
        served.status(),
        400,
        "the next request is answered by its handler (no grant_type)"
    );
}

#[tokio::test]
async fn the_health_route_answers_without_a_credential() {
    let app = spawn_app().await;
    let answer = app
        .client
        .get(app.url(custdata::health::PATH))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("x-request-id"));
    let body = json_of(answer).await;
    assert_eq!(
        (&body["status"], &body["store"]),
        (&"ok".into(), &"reachable".into())
    );
    assert!(body["storeMillis"].as_f64().is_some(), "{body}");
}

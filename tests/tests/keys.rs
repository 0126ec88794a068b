//! Rotating the signing key (issue 16, item 8), on both adapters: what the old key signed — a
//! paging cursor, an upload URL — is accepted for the grace period and refused after it,
//! while identifier lookups and suppressions, keyed by the hash key, never notice.

use std::time::Duration;

use custdata::storage::PresignedUpload;
use custdata_tests::{Adapter, TestApp, admin, on_both_adapters};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BASE: &str = "/one/oauth2/rt/api/3.1.0/customer";
/// The grace period the test's rotation gives (shorter than an upload URL's hour).
const GRACE: i64 = 600;

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Records one activity of the customer named by a customer key: the status and the answer.
async fn activity(
    app: &TestApp,
    token: &str,
    customer_key: &str,
    code: &str,
) -> (StatusCode, Value) {
    let site = &app.server.credentials.mxo.site_key;
    let body = json!({
        "customerContext": {
            "baseTouchpointUri": "https://bank.example",
            "identifiers": [{"apiName": "customerKey", "value": customer_key}]
        },
        "activities": [{"propositionCode": "atm", "dynamicPropositionCode": code, "activityTypeCode": "withdrawal"}]
    });
    send(
        app,
        token,
        Method::POST,
        &format!("{BASE}/{site}/activity"),
        Some(body),
    )
    .await
}

/// One page of a customer's activity log (one activity), from a cursor or the start.
async fn page(app: &TestApp, token: &str, tid: &str, cursor: Option<&str>) -> (StatusCode, Value) {
    let site = &app.server.credentials.mxo.site_key;
    let mut path = format!("/custdata/v1/mxo/{site}/customers/{tid}/activities?limit=1");
    if let Some(cursor) = cursor {
        path.push_str(&format!("&cursor={}", urlencoding::encode(cursor)));
    }
    send(app, token, Method::GET, &path, None).await
}

async fn upload_url(app: &TestApp, name: &str) -> PresignedUpload {
    app.server
        .app
        .blobs
        .presign_put(
            &format!("rotation/{name}.csv"),
            "text/csv",
            Duration::from_secs(3600),
        )
        .await
        .expect("an upload URL")
}

async fn upload(app: &TestApp, url: &PresignedUpload) -> (StatusCode, String) {
    let mut put = app.client.put(&url.url);
    for (name, value) in &url.headers {
        put = put.header(name.as_str(), value.as_str());
    }
    let response = put.body("customuid\nc1\n").send().await.expect("upload");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

async fn a_rotated_signing_key_is_accepted_for_its_grace_and_identifiers_never_change(
    app: TestApp,
) {
    let token = app.mxo_token().await;
    let mut tid = String::new();
    for code in ["a", "b", "c"] {
        let (status, body) = activity(&app, &token, "C-1", code).await;
        assert_eq!(status, 200, "{body}");
        tid = body["tid"].as_str().expect("a tid").to_string();
    }
    assert_eq!(activity(&app, &token, "C-2", "a").await.0, 200);
    let site = app.server.credentials.mxo.site_key.clone();
    let erase = json!({"identifier": {"apiName": "customerKey", "value": "C-2"}});
    let (status, body) = send(
        &app,
        &token,
        Method::DELETE,
        &format!("{BASE}/{site}"),
        Some(erase),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Signed with the first key: a cursor and two upload URLs.
    let (status, first) = page(&app, &token, &tid, None).await;
    assert_eq!(status, 200, "{first}");
    let old_cursor = first["next"].as_str().expect("a cursor").to_string();
    assert!(old_cursor.starts_with("1."), "names its key: {old_cursor}");
    let used_in_grace = upload_url(&app, "in-grace").await;
    let used_after_grace = upload_url(&app, "after-grace").await;

    let (status, rotation) = admin(
        &app,
        json!({"command": "rotate-signing-key", "grace_seconds": GRACE}),
    )
    .await;
    assert_eq!(status, 200, "{rotation}");
    assert_eq!(
        (
            rotation["previous_key_id"].as_str(),
            rotation["current_key_id"].as_str()
        ),
        (Some("1"), Some("2"))
    );

    // Within the grace period the old key's cursor and URL still work.
    let (status, second) = page(&app, &token, &tid, Some(&old_cursor)).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["activities"].as_array().map(Vec::len), Some(1));
    assert_ne!(
        second["activities"], first["activities"],
        "the cursor continued"
    );
    let new_cursor = second["next"].as_str().expect("a cursor").to_string();
    assert!(
        new_cursor.starts_with("2."),
        "signed with the new key: {new_cursor}"
    );
    let (status, answer) = upload(&app, &used_in_grace).await;
    assert!(status.is_success(), "{status} {answer}");

    for moment in ["in the grace period", "after it"] {
        // Identifier lookups and suppressions are keyed by the hash key: unchanged.
        let (status, again) = activity(&app, &token, "C-1", "d").await;
        assert_eq!(
            (status, again["tid"].as_str()),
            (StatusCode::OK, Some(tid.as_str())),
            "{moment}"
        );
        let (status, refused) = activity(&app, &token, "C-2", "b").await;
        assert_eq!(
            status, 400,
            "an erased customer stays out {moment}: {refused}"
        );
        assert!(refused.to_string().contains("suppressed"), "{refused}");
        if moment == "in the grace period" {
            app.clock.advance_seconds(GRACE);
        }
    }

    // After the grace period the old key's cursor and URL are refused; the new key's work.
    let (status, refused) = page(&app, &token, &tid, Some(&old_cursor)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(page(&app, &token, &tid, Some(&new_cursor)).await.0, 200);
    if app.adapter == Adapter::Embedded {
        // (S3's URLs are signed by AWS credentials, not by custdata's keys.)
        let (status, answer) = upload(&app, &used_after_grace).await;
        assert!(status.is_client_error(), "{status} {answer}");
        assert!(answer.contains("retired"), "{answer}");
        let (status, answer) = upload(&app, &upload_url(&app, "new-key").await).await;
        assert!(status.is_success(), "{status} {answer}");
    }
}

on_both_adapters!(a_rotated_signing_key_is_accepted_for_its_grace_and_identifiers_never_change);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_rotation_keeps_the_hash_key_and_both_signing_keys() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = custdata_tests::test_clock();
    let start = || {
        custdata_local::start(custdata_local::Config {
            port: 0,
            data_dir: dir.path().to_path_buf(),
            clock: std::sync::Arc::new(clock.clone()),
            backend: custdata_local::Backend::Embedded,
            run_scheduled_tasks: false,
            lambda_limits: false,
        })
    };
    let server = start().await.expect("starts");
    let hashed = server.app.keyed_hash("id\u{0}customerKey\u{0}C-1");
    let before = server.app.signing.keys();
    let (id, tag) = before.sign(&["p"]);
    server
        .app
        .signing
        .rotate(custdata::clock::Clock::now_seconds(&clock), GRACE)
        .await
        .expect("rotates");
    server.shutdown().await;

    let server = start().await.expect("restarts");
    assert_eq!(server.app.keyed_hash("id\u{0}customerKey\u{0}C-1"), hashed);
    let after = server.app.signing.keys();
    assert_eq!(after.current_id, "2");
    assert_eq!(
        after.verify(
            &id,
            &["p"],
            &tag,
            custdata::clock::Clock::now_seconds(&clock)
        ),
        Ok(())
    );
    server.shutdown().await;
}

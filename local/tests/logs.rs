//! What the real `custdata-local` writes to its log, at the most verbose level it allows:
//! a known e-mail address goes through every surface's write routes (and the reads that
//! name it in the path or the query), and neither the address nor any raw path holding it
//! appears in the log; the route templates, the tenant and the statuses do.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use custdata::tenancy::CredentialBundle;
use custdata_tests::monetate::assertion;
use custdata_tests::{ChildGuard, free_port, mxo_token_at, wait_for_port};
use jsonwebtoken::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_custdata-local"))
}

/// One request: its status, and the route template the log must name for it.
struct Sent {
    route: &'static str,
    status: u16,
}

struct Client {
    http: reqwest::Client,
    base_url: String,
    sent: Vec<Sent>,
}

impl Client {
    async fn send(
        &mut self,
        route: &'static str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("an answer");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        assert!(status < 500, "{route}: {status} {text}");
        self.sent.push(Sent { route, status });
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_email_sent_through_every_surface_never_reaches_the_log() {
    let dir = tempfile::tempdir().expect("a data directory");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let port = free_port();
    let data_dir = dir.path().join("data");
    let _server = ChildGuard(
        Command::new(binary())
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(&data_dir)
            // The most verbose filter there is; dependencies stay capped at info.
            .env("RUST_LOG", "trace")
            .stdout(Stdio::from(log.try_clone().expect("the log, twice")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("custdata-local starts"),
    );
    let server_file = data_dir.join(custdata_local::SERVER_FILE);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !server_file.exists() {
        assert!(Instant::now() < deadline, "custdata-local did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    wait_for_port(port, 60).await;
    let credentials: CredentialBundle = serde_json::from_slice(
        &std::fs::read(data_dir.join(custdata_local::DEV_CREDENTIALS_FILE)).expect("credentials"),
    )
    .expect("a credential bundle");
    let tenant = credentials.tenant.clone();
    let email = format!(
        "jane.logcheck-{}@example.com",
        uuid::Uuid::new_v4().simple()
    );
    let in_path = urlencoding::encode(&email).into_owned();
    let mut client = Client {
        http: reqwest::Client::new(),
        base_url: format!("http://127.0.0.1:{port}"),
        sent: Vec::new(),
    };
    let json_type = ("content-type", "application/json");

    // MXO datastores: the e-mail is a row's primary key, staged, taken live, looked up.
    let mxo = &credentials.mxo;
    let token = mxo_token_at(
        &client.http,
        &client.base_url,
        &mxo.client_id,
        &mxo.client_secret,
    )
    .await;
    let bearer = format!("Bearer {token}");
    let auth = ("authorization", bearer.as_str());
    let ws = &mxo.workspace_id;
    client
        .send(
            "POST /datastores/1.0.0/{workspaceId}",
            Method::POST,
            &format!("/datastores/1.0.0/{ws}"),
            &[auth, json_type],
            Some(json!({"name": "Contacts", "apiName": "contacts", "primaryKey": "email",
                "definitions": [{"name": "email", "type": "TEXT"}, {"name": "note", "type": "TEXT"}]})
            .to_string()),
        )
        .await;
    let row = json!([{"email": email, "note": format!("write to {email}")}]).to_string();
    client
        .send(
            "POST /datastores/1.0.0/{workspaceId}/{apiName}/{target}",
            Method::POST,
            &format!("/datastores/1.0.0/{ws}/contacts/staging"),
            &[auth, json_type],
            Some(row.clone()),
        )
        .await;
    let reference = client
        .send(
            "GET /datastores/1.0.0/{workspaceId}/{apiName}/{target}/reference",
            Method::GET,
            &format!("/datastores/1.0.0/{ws}/contacts/staging/reference"),
            &[auth],
            None,
        )
        .await["referenceId"]
        .as_str()
        .expect("a reference")
        .to_string();
    client
        .send(
            "POST /datastores/1.0.0/{workspaceId}/{apiName}/golive/{stagingReference}",
            Method::POST,
            &format!("/datastores/1.0.0/{ws}/contacts/golive/{reference}"),
            &[auth],
            None,
        )
        .await;
    client
        .send(
            "POST /datastores/1.0.0/{workspaceId}/{apiName}/{target}",
            Method::POST,
            &format!("/datastores/1.0.0/{ws}/contacts/live"),
            &[auth, json_type],
            Some(row),
        )
        .await;
    client
        .send(
            "GET /datastores/1.0.0/{workspaceId}/{apiName}/{target}",
            Method::GET,
            &format!("/datastores/1.0.0/{ws}/contacts/live?pk={in_path}"),
            &[auth],
            None,
        )
        .await;

    // MXO customer: an activity whose customer is named by the e-mail.
    let site = &mxo.site_key;
    client
        .send(
            "POST /one/oauth2/rt/api/3.1.0/customer/{sk}/activity",
            Method::POST,
            &format!("/one/oauth2/rt/api/3.1.0/customer/{site}/activity"),
            &[auth, json_type],
            Some(
                json!({"customerContext": {"baseTouchpointUri": "https://shop.example",
                    "identifiers": [{"apiName": "email", "value": email}]},
                "activities": [{"propositionCode": "news", "activityTypeCode": "signup"}]})
                .to_string(),
            ),
        )
        .await;

    // AIXON: a cell whose row is the e-mail's, read and erased by it in the path.
    let key = credentials.aixon.api_key.clone();
    let api_key = ("x-api-key", key.as_str());
    let created = client
        .send(
            "PUT /api_upload/v1/csv-upload",
            Method::PUT,
            "/api_upload/v1/csv-upload",
            &[
                api_key,
                ("content-type", "text/csv"),
                ("x-node-description", "contacts"),
            ],
            Some(format!(
                "customuid,email,txt_note\n{email},{email},hello {email}\n"
            )),
        )
        .await;
    let cell = created["message"]["RESOURCE_ID"]
        .as_str()
        .expect("a cell")
        .to_string();
    client
        .send(
            "PATCH /api_upload/v1/csv-upload/{resourceId}",
            Method::PATCH,
            &format!("/api_upload/v1/csv-upload/{cell}"),
            &[api_key, ("content-type", "text/csv")],
            Some(format!(
                "customuid,email,txt_note\n{email},{email},again {email}\n"
            )),
        )
        .await;
    client
        .send(
            "GET /custdata/v1/aixon/csv-upload/{resourceId}/rows/{customuid}",
            Method::GET,
            &format!("/custdata/v1/aixon/csv-upload/{cell}/rows/{in_path}"),
            &[api_key],
            None,
        )
        .await;

    // Monetate: a schema keyed by the e-mail, a row, and the spot check by it.
    let monetate = &credentials.monetate;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let signed = assertion(
        &monetate.private_key_pem,
        &monetate.api_username,
        now,
        Algorithm::RS256,
    );
    let jwt = format!("JWT {signed}");
    let exchanged = client
        .send(
            "GET /api/auth/v0/refresh/",
            Method::GET,
            "/api/auth/v0/refresh/",
            &[("authorization", jwt.as_str())],
            None,
        )
        .await;
    let monetate_token = format!(
        "Token {}",
        exchanged["data"]["token"]
            .as_str()
            .expect("a Monetate token")
    );
    let token_auth = ("authorization", monetate_token.as_str());
    let retailer = &monetate.retailer;
    client
        .send(
            "POST /api/data/v1/{retailer}/production/schema/",
            Method::POST,
            &format!("/api/data/v1/{retailer}/production/schema/"),
            &[token_auth, json_type],
            Some(
                json!({"name": "contacts", "type": "attribute", "fields": {
                "email": {"data_type": "STRING", "identifier": true, "unique_key": true},
                "note": {"data_type": "STRING"}}})
                .to_string(),
            ),
        )
        .await;
    client
        .send(
            "POST /api/data/v1/{retailer}/production/data/{schemaName}/",
            Method::POST,
            &format!("/api/data/v1/{retailer}/production/data/contacts/"),
            &[token_auth, json_type],
            Some(json!([{"email": email, "note": format!("hi {email}")}]).to_string()),
        )
        .await;
    client
        .send(
            "GET /api/data/v1/{retailer}/production/data/{schemaName}/",
            Method::GET,
            &format!("/api/data/v1/{retailer}/production/data/contacts/?id={in_path}"),
            &[token_auth],
            None,
        )
        .await;

    // Optimove: the e-mail as a customer id, upserted and read back by it in the path.
    let optimove_key = credentials.optimove.api_key.clone();
    let optimove = ("x-api-key", optimove_key.as_str());
    client
        .send(
            "ANY /current/{category}/{function}",
            Method::POST,
            "/current/customers/AddCustomerAttribute",
            &[optimove, json_type],
            Some(json!({"Name": "Note", "Type": "STRING"}).to_string()),
        )
        .await;
    client
        .send(
            "ANY /current/{category}/{function}",
            Method::PUT,
            "/current/customers/UpsertCustomer",
            &[optimove, json_type],
            Some(json!({"CustomerId": email, "Attributes": [{"RealFieldName": "Note", "Value": email}]})
                .to_string()),
        )
        .await;
    client
        .send(
            "GET /custdata/v1/optimove/customers/{customerId}",
            Method::GET,
            &format!("/custdata/v1/optimove/customers/{in_path}"),
            &[optimove],
            None,
        )
        .await;

    // Erasure by the e-mail, in the path (AIXON) and in the body (MXO).
    client
        .send(
            "DELETE /custdata/v1/aixon/customers/{customuid}",
            Method::DELETE,
            &format!("/custdata/v1/aixon/customers/{in_path}"),
            &[api_key],
            None,
        )
        .await;
    client
        .send(
            "DELETE /one/oauth2/rt/api/3.1.0/customer/{sk}",
            Method::DELETE,
            &format!("/one/oauth2/rt/api/3.1.0/customer/{site}"),
            &[auth, json_type],
            Some(json!({"identifier": {"apiName": "email", "value": email}}).to_string()),
        )
        .await;

    // The worker imports the AIXON bodies meanwhile; give it a few ticks to log too.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let log = std::fs::read_to_string(&log_path).expect("the log");
    let (local, _) = email.split_once('@').expect("an address");
    for secret in [email.as_str(), in_path.as_str(), local] {
        assert!(!log.contains(secret), "{secret:?} is in the log:\n{log}");
    }
    for sent in &client.sent {
        assert!(
            log.contains(&format!("route={}", sent.route))
                || log.contains(&format!("route=\"{}\"", sent.route)),
            "{} is not in the log:\n{log}",
            sent.route
        );
        assert!(
            log.contains(&format!("status={}", sent.status)),
            "status {} ({}) is not in the log",
            sent.status,
            sent.route
        );
    }
    assert!(
        log.contains(&format!("tenant={tenant}")) || log.contains(&format!("tenant=\"{tenant}\"")),
        "{log}"
    );
    assert!(log.contains("request_id="), "{log}");
}

//! Monetate Auth and Data API over HTTP: the seed's flow (key pair, public key registered,
//! assertion signed, token fetched, data posted, record spot-checked), every refusal of the
//! token exchange, every schema and row rule, the 1 request/s spot check, and tenant
//! isolation on every route. Every case runs on the embedded store and on DynamoDB in the
//! emulator.

use custdata::customers::{self, CustomerRef, Identifier};
use custdata::domain::TenantId;
use custdata::monetate::users::{GeneratedKeyPair, generate_key_pair};
use custdata::tenancy::CredentialBundle;
use custdata_tests::monetate::{assertion, now, refresh, token};
use custdata_tests::{TestApp, create_tenant, on_both_adapters, raw_request};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

/// A Data API client of one tenant, holding a token of its first API user.
struct Monetate<'a> {
    app: &'a TestApp,
    bundle: CredentialBundle,
    token: String,
}

impl<'a> Monetate<'a> {
    /// What the dev tenant's assertions are made of: its API username and private key.
    fn signer(&self) -> (&str, &str) {
        let monetate = &self.bundle.monetate;
        (
            monetate.api_username.as_str(),
            monetate.private_key_pem.as_str(),
        )
    }

    async fn dev(app: &'a TestApp) -> Monetate<'a> {
        Monetate::with(app, app.server.credentials.clone()).await
    }

    async fn of(app: &'a TestApp, name: &str) -> Monetate<'a> {
        Monetate::with(app, create_tenant(app, name).await).await
    }

    async fn with(app: &'a TestApp, bundle: CredentialBundle) -> Monetate<'a> {
        let token = token(
            app,
            &bundle.monetate.private_key_pem,
            &bundle.monetate.api_username,
        )
        .await;
        Monetate { app, bundle, token }
    }

    fn retailer(&self) -> &str {
        &self.bundle.monetate.retailer
    }

    fn tenant(&self) -> TenantId {
        TenantId::parse(&self.bundle.tenant).expect("tenant")
    }

    /// A Data API path of this tenant's retailer.
    fn data_path(&self, rest: &str) -> String {
        format!("/api/data/v1/{}/production/{rest}", self.retailer())
    }

    fn extension_path(&self, rest: &str) -> String {
        format!("/custdata/v1/monetate/{}/{rest}", self.retailer())
    }

    async fn send_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .request(method, self.app.url(path))
            .header("authorization", format!("Token {token}"));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON envelope");
        assert_eq!(
            body["meta"]["code"], status,
            "meta.code is the status: {body}"
        );
        (status, body)
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.send_as(&self.token, method, path, body).await
    }

    /// A new API user of this tenant with a fresh key pair, through the extension.
    async fn new_user(&self, username: &str) -> (u16, Value, GeneratedKeyPair) {
        let pair = generate_key_pair().expect("a key pair");
        let body = json!({"username": username, "public_key_pem": pair.public_key_pem});
        let (status, created) = self
            .send(Method::POST, &self.extension_path("api-users"), Some(&body))
            .await;
        (status, created, pair)
    }

    async fn create_schema(&self, schema: &Value) -> (u16, Value) {
        self.send(Method::POST, &self.data_path("schema/"), Some(schema))
            .await
    }

    async fn post_rows(&self, schema: &str, rows: Value) -> (u16, Value) {
        let body = json!({"schema_rows": rows, "_sent_time": "2026-11-23T08:00:00Z"});
        self.send(
            Method::POST,
            &self.data_path(&format!("data/{schema}/")),
            Some(&body),
        )
        .await
    }

    /// A spot check, after moving the clock past the limit's second.
    async fn spot_check(&self, schema: &str, id: &str) -> (u16, Value) {
        self.app.clock.advance_millis(1_000);
        self.send(
            Method::GET,
            &self.data_path(&format!("data/{schema}/?id={id}")),
            None,
        )
        .await
    }
}

/// The customer-attributes schema most tests use.
fn crm_schema() -> Value {
    json!({
        "name": "crm",
        "type": "attribute",
        "fields": {
            "customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true},
            "tier": {"data_type": "STRING"},
            "ltv": {"data_type": "NUMBER"},
            "opted_in": {"data_type": "BOOLEAN"},
            "signup": {"data_type": "DATETIME"},
            "tags": {"data_type": "MULTI_STRING"}
        }
    })
}

/// An event schema without a unique key: every row is appended.
fn events_schema() -> Value {
    json!({
        "name": "web-events",
        "type": "event",
        "fields": {
            "visitor": {"data_type": "STRING", "identifier": true},
            "at": {"data_type": "DATETIME", "event_time": true, "required": true},
            "page": {"data_type": "STRING"}
        }
    })
}

/// The seed's steps 1 and 2: a key pair made, its public half registered for a new API user,
/// an assertion signed with it and exchanged for a token; a client holding that token.
async fn seed_token(app: &TestApp) -> Monetate<'_> {
    let admin = Monetate::dev(app).await;
    // 1. The client makes a key pair and registers the public half for a new API user.
    let (status, created, pair) = admin.new_user("api-123-acme").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["data"]["username"], "api-123-acme");
    assert_eq!(created["data"]["keys"][0]["bits"], 2048);
    // 2. It signs {username, iat: time.time()} with RS256 and asks for a token.
    let issued_at = now(app) + 0.25;
    let signed = assertion(
        &pair.private_key_pem,
        "api-123-acme",
        issued_at,
        Algorithm::RS256,
    );
    let (status, body) = refresh(app, &signed, "").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["meta"],
        json!({"code": 200, "errors": [], "warnings": []})
    );
    let data = &body["data"];
    assert_eq!(data["expires_in"], 3600);
    let issued = data["issued_at"].as_f64().expect("issued_at is a number");
    assert_eq!(data["expires_at"].as_f64(), Some(issued + 3600.0));
    Monetate {
        app,
        bundle: admin.bundle.clone(),
        token: data["token"].as_str().expect("token").to_string(),
    }
}

/// The seed's step 3: the customer-attributes schema, then two rows of it.
async fn seed_rows(client: &Monetate<'_>) {
    // 3. A schema, then data.
    let (status, schema) = client.create_schema(&crm_schema()).await;
    assert_eq!(status, 201, "{schema}");
    assert_eq!(schema["data"]["name"], "crm");
    assert!(schema["data"]["id"].as_i64().is_some());
    let (status, posted) = client
        .post_rows(
            "crm",
            json!([
                {"customer_id": "c-1", "tier": "gold", "ltv": 1250.5, "opted_in": true,
                 "signup": "2024-05-01T10:00:00Z", "tags": "vip,early\\,adopter"},
                {"customer_id": "c-2", "tier": "silver"}
            ]),
        )
        .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(
        posted["data"]["schema_rows"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(posted["data"]["schema_rows"][1]["ltv"], Value::Null);
}

async fn a_registered_key_pair_signs_an_assertion_exchanged_for_an_hour_long_token(app: TestApp) {
    let client = seed_token(&app).await;
    let (status, schemas) = client
        .send(Method::GET, &client.data_path("schema/"), None)
        .await;
    assert_eq!(status, 200, "the token is accepted: {schemas}");
}

async fn a_posted_row_is_read_back_by_spot_check_at_the_canonical_and_the_seeds_path(app: TestApp) {
    let client = seed_token(&app).await;
    seed_rows(&client).await;
    // 4. The record, spot-checked at the canonical path and at the seed's.
    let (status, found) = client.spot_check("crm", "c-1").await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["data"]["schema_rows"][0]["tier"], "gold");
    assert_eq!(
        found["data"]["schema_rows"][0]["tags"],
        "vip,early\\,adopter"
    );
    app.clock.advance_millis(1_000);
    let (status, found) = client
        .send(
            Method::GET,
            "/api/data/v1/crm/production/data/?id=c-2",
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["data"]["schema_rows"][0]["customer_id"], "c-2");
}

async fn a_post_is_logged_as_a_complete_upload_and_reaches_the_shared_customer_store(app: TestApp) {
    let client = seed_token(&app).await;
    seed_rows(&client).await;
    // The upload log and the shared customer store saw it too.
    let (status, uploads) = client
        .send(Method::GET, &client.data_path("upload/crm/"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(uploads["data"][0]["status"], "COMPLETE");
    assert_eq!(uploads["data"][0]["row_count"], 2);
    let customer = customers::find(
        app.server.app.customers(),
        &client.tenant(),
        &CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key("c-1")],
        },
    )
    .await
    .expect("reads")
    .expect("the customer exists");
    assert_eq!(customer.attributes["tier"], "gold");
    assert_eq!(customer.attributes["tags"], json!(["vip", "early,adopter"]));
}

/// A refused token exchange or request: the status, an empty `data`, and a message saying why.
fn expect_refusal(status: u16, body: &Value, wanted: u16, says: &str) {
    assert_eq!(status, wanted, "{body}");
    assert_eq!(body["meta"]["code"], wanted);
    assert_eq!(body["data"], json!({}));
    let message = body["meta"]["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

async fn an_assertion_signed_with_none_or_hs256_is_refused_and_one_with_rs384_or_rs512_accepted(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let at = now(&app);
    // Algorithms: none and HS256 are refused before any key is tried; RS384/512 pass.
    let unsigned = format!(
        "{}.{}.",
        base64_url(r#"{"alg":"none","typ":"JWT"}"#),
        base64_url(&json!({"username": user, "iat": at}).to_string())
    );
    let (status, body) = refresh(&app, &unsigned, "").await;
    expect_refusal(status, &body, 401, "\"none\" is not accepted");
    let hmac = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"username": user, "iat": at}),
        &EncodingKey::from_secret(b"a shared secret"),
    )
    .expect("signs");
    let (status, body) = refresh(&app, &hmac, "").await;
    expect_refusal(status, &body, 401, "\"HS256\" is not accepted");
    for algorithm in [Algorithm::RS384, Algorithm::RS512] {
        let (status, body) = refresh(&app, &assertion(key, user, at, algorithm), "").await;
        assert_eq!(status, 200, "{algorithm:?}: {body}");
    }
}

async fn an_assertion_issued_over_five_minutes_away_is_refused_and_an_integer_iat_accepted(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let at = now(&app);
    // Integer iat is as good as float; stale and future ones are not.
    let integer = jsonwebtoken::encode(
        &Header::new(Algorithm::RS256),
        &json!({"username": user, "iat": at as i64}),
        &EncodingKey::from_rsa_pem(key.as_bytes()).expect("key"),
    )
    .expect("signs");
    assert_eq!(refresh(&app, &integer, "").await.0, 200);
    let (status, body) = refresh(
        &app,
        &assertion(key, user, at - 301.0, Algorithm::RS256),
        "",
    )
    .await;
    expect_refusal(status, &body, 401, "iat");
    let (status, body) = refresh(
        &app,
        &assertion(key, user, at + 301.0, Algorithm::RS256),
        "",
    )
    .await;
    expect_refusal(status, &body, 401, "iat");
}

async fn an_expired_or_not_yet_valid_assertion_is_refused_naming_its_claim(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let at = now(&app);
    // exp and nbf, when present, hold with the same skew: an expired assertion or one not
    // yet valid is refused naming the claim; within the skew both pass.
    let signed = |claims: Value| {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(key.as_bytes()).expect("key"),
        )
        .expect("signs")
    };
    let (status, body) = refresh(
        &app,
        &signed(json!({"username": user, "iat": at, "exp": at - 301.0})),
        "",
    )
    .await;
    expect_refusal(status, &body, 401, "expired (exp)");
    assert_eq!(body["meta"]["errors"][0]["field"], "exp", "{body}");
    let (status, body) = refresh(
        &app,
        &signed(json!({"username": user, "iat": at, "nbf": at + 3600.0})),
        "",
    )
    .await;
    expect_refusal(status, &body, 401, "not valid before (nbf)");
    assert_eq!(body["meta"]["errors"][0]["field"], "nbf", "{body}");
    let (status, body) = refresh(
        &app,
        &signed(json!({"username": user, "iat": at, "exp": at - 299.0, "nbf": at + 299.0})),
        "",
    )
    .await;
    assert_eq!(status, 200, "exp and nbf within the skew: {body}");
}

async fn an_assertion_of_a_wrong_key_or_an_unknown_user_or_no_jwt_at_all_is_refused(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let at = now(&app);
    // A wrong key, an unknown user, a garbled or missing header, the wrong scheme.
    let stranger = generate_key_pair().expect("a key pair");
    let (status, body) = refresh(
        &app,
        &assertion(&stranger.private_key_pem, user, at, Algorithm::RS256),
        "",
    )
    .await;
    expect_refusal(status, &body, 401, "signature");
    let (status, body) = refresh(
        &app,
        &assertion(key, "api-nobody", at, Algorithm::RS256),
        "",
    )
    .await;
    expect_refusal(status, &body, 401, "unknown API user");
    let (status, body) = refresh(&app, "not.a.jwt", "").await;
    expect_refusal(status, &body, 401, "not a JWT");
    for header in [None, Some("Bearer abc")] {
        let mut request = app.client.get(app.url("/api/auth/v0/refresh/"));
        if let Some(value) = header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON");
        expect_refusal(status, &body, 401, "JWT");
    }
}

async fn a_token_is_issued_for_a_ttl_of_600_to_43200_seconds_and_no_other(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let at = now(&app);
    // ttl: 600 to 43200 integer seconds.
    let good = assertion(key, user, at, Algorithm::RS256);
    for (query, wanted) in [
        ("?ttl=599", 400),
        ("?ttl=43201", 400),
        ("?ttl=abc", 400),
        ("?ttl=600", 200),
        ("?ttl=43200", 200),
    ] {
        let (status, body) = refresh(&app, &good, query).await;
        assert_eq!(status, wanted, "{query}: {body}");
        if wanted == 400 {
            assert_eq!(body["meta"]["errors"][0]["field"], "ttl");
        }
    }
}

async fn each_token_expires_on_its_own(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let at = now(&app);
    let good = assertion(key, user, at, Algorithm::RS256);
    // Tokens are independent: each expires on its own.
    let (_, short) = refresh(&app, &good, "?ttl=600").await;
    let (_, long) = refresh(&app, &good, "?ttl=1200").await;
    let short = short["data"]["token"].as_str().expect("token").to_string();
    let long = long["data"]["token"].as_str().expect("token").to_string();
    let schemas = client.data_path("schema/");
    assert_eq!(
        client.send_as(&short, Method::GET, &schemas, None).await.0,
        200
    );
    app.clock.advance_seconds(601);
    let (status, body) = client.send_as(&short, Method::GET, &schemas, None).await;
    expect_refusal(status, &body, 401, "expired");
    assert_eq!(
        client.send_as(&long, Method::GET, &schemas, None).await.0,
        200
    );
}

async fn a_deactivated_key_is_refused_with_403_for_its_assertions_and_its_live_tokens(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let (user, key) = client.signer();
    let schemas = client.data_path("schema/");
    // A deactivated key: its assertions and its live tokens answer 403.
    let at = now(&app);
    let fresh = assertion(key, user, at, Algorithm::RS256);
    let (_, issued) = refresh(&app, &fresh, "").await;
    let live = issued["data"]["token"].as_str().expect("token").to_string();
    let (_, users) = client
        .send(Method::GET, &client.extension_path("api-users"), None)
        .await;
    let key_id = users["data"][0]["keys"][0]["key_id"]
        .as_str()
        .expect("key id")
        .to_string();
    let deactivate = client.extension_path(&format!("api-users/{user}/keys/{key_id}/deactivate"));
    let (status, body) = client.send(Method::POST, &deactivate, None).await;
    assert_eq!(
        (status, &body["data"]["active"]),
        (200, &json!(false)),
        "{body}"
    );
    let (status, body) = refresh(&app, &fresh, "").await;
    expect_refusal(status, &body, 403, "deactivated");
    let (status, body) = client.send_as(&live, Method::GET, &schemas, None).await;
    expect_refusal(status, &body, 403, "deactivated");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

async fn a_schema_breaking_a_rule_is_refused_naming_the_field_and_the_rule(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let field = |data_type: &str| json!({"data_type": data_type});
    let id_field = json!({"data_type": "STRING", "identifier": true});
    let many: serde_json::Map<String, Value> = (0..41)
        .map(|i| {
            (
                format!("f{i}"),
                if i == 0 {
                    id_field.clone()
                } else {
                    field("STRING")
                },
            )
        })
        .collect();
    let cases = [
        (
            json!({"name": "9lives", "fields": {"id": id_field}}),
            "name",
            "starting with a letter",
        ),
        (
            json!({"name": "a".repeat(65), "fields": {"id": id_field}}),
            "name",
            "1-64",
        ),
        (json!({"name": "many", "fields": many}), "fields", "1 to 40"),
        (json!({"name": "none", "fields": {}}), "fields", "1 to 40"),
        (
            json!({"name": "typed", "fields": {"id": id_field, "x": field("INTEGER")}}),
            "fields.x.data_type",
            "one of STRING",
        ),
        (
            json!({"name": "noid", "fields": {"x": field("STRING")}}),
            "fields",
            "exactly one field has identifier",
        ),
        (
            json!({"name": "twoid", "fields": {"a": id_field, "b": id_field}}),
            "fields",
            "exactly one field has identifier",
        ),
        (
            json!({"name": "numid", "fields": {"a": {"data_type": "NUMBER", "identifier": true}}}),
            "fields.a.data_type",
            "STRING",
        ),
        (
            json!({"name": "twouk", "fields": {"a": id_field, "b": {"data_type": "STRING", "unique_key": true}, "c": {"data_type": "STRING", "unique_key": true}}}),
            "fields",
            "at most one field has unique_key",
        ),
        (
            json!({"name": "ev", "type": "event", "fields": {"a": id_field}}),
            "fields",
            "exactly one event_time",
        ),
        (
            json!({"name": "kind", "type": "widget", "fields": {"a": id_field}}),
            "type",
            "one of agil_one",
        ),
        (
            json!({"name": "flag", "fields": {"a": {"data_type": "STRING", "identifier": "yes"}}}),
            "fields.a.identifier",
            "true or false",
        ),
    ];
    for (schema, field_name, says) in cases {
        let (status, body) = client.create_schema(&schema).await;
        assert_eq!(status, 400, "{schema}: {body}");
        let errors = body["meta"]["errors"].as_array().expect("errors");
        assert!(
            errors.iter().any(|e| e["field"] == field_name
                && e["message"].as_str().unwrap_or_default().contains(says)),
            "{schema}: wanted {field_name} / {says:?} in {errors:?}"
        );
    }
}

async fn a_hyphenated_schema_name_is_accepted_and_a_name_is_taken_once_per_retailer(app: TestApp) {
    let client = Monetate::dev(&app).await;
    // Hyphens are accepted (contract decision 3); a name is unique per retailer.
    assert_eq!(client.create_schema(&events_schema()).await.0, 201);
    let (status, body) = client.create_schema(&events_schema()).await;
    assert_eq!(status, 400);
    assert!(
        body["meta"]["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("already exists")
    );
}

/// The event schema, created, then a `referrer` field added to it by PATCH; its path.
async fn web_events_with_a_referrer(client: &Monetate<'_>) -> String {
    assert_eq!(client.create_schema(&events_schema()).await.0, 201);
    let path = client.data_path("schema/web-events/");
    let (status, body) = client
        .send(
            Method::PATCH,
            &path,
            Some(&json!({"fields": {"referrer": {"data_type": "STRING"}}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["fields"]["referrer"]["data_type"], "STRING");
    path
}

async fn a_schema_patch_adds_fields_or_sets_the_named_identifier_but_never_both_nor_changes_a_field(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    // PATCH adds fields, or sets named_identifier; never both, never changes a field.
    let path = web_events_with_a_referrer(&client).await;
    for (change, field_name) in [
        (
            json!({"fields": {"page": {"data_type": "NUMBER"}}}),
            "fields.page",
        ),
        (
            json!({"fields": {"other": {"data_type": "STRING", "identifier": true}}}),
            "fields.other",
        ),
        (
            json!({"fields": {"x": {"data_type": "STRING"}}, "named_identifier": "v"}),
            "body",
        ),
        (
            json!({"named_identifier": "not valid!"}),
            "named_identifier",
        ),
    ] {
        let (status, body) = client.send(Method::PATCH, &path, Some(&change)).await;
        assert_eq!(status, 400, "{change}: {body}");
        assert_eq!(body["meta"]["errors"][0]["field"], field_name, "{body}");
    }
    let (status, body) = client
        .send(
            Method::PATCH,
            &path,
            Some(&json!({"named_identifier": "visitor_id"})),
        )
        .await;
    assert_eq!(
        (status, &body["data"]["named_identifier"]),
        (200, &json!("visitor_id"))
    );
}

async fn a_schema_is_read_back_by_name_and_in_the_list_and_an_unknown_name_is_not_found(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let path = web_events_with_a_referrer(&client).await;
    // Read back: one schema, by name and in the list; unknown names are 404.
    let (status, body) = client
        .send(
            Method::GET,
            &format!("{path}?row_count=true&latest_upload=true"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["fields"].as_object().map(|f| f.len()), Some(4));
    assert_eq!(body["data"]["row_count"], 0);
    assert_eq!(body["data"]["last_file_upload"], Value::Null);
    let (_, list) = client
        .send(Method::GET, &client.data_path("schema/"), None)
        .await;
    assert_eq!(
        (
            list["meta"]["count"].clone(),
            list["data"][0]["name"].clone()
        ),
        (json!(1), json!("web-events"))
    );
    let (status, _) = client
        .send(Method::GET, &client.data_path("schema/nope/"), None)
        .await;
    assert_eq!(status, 404);
}

async fn the_eleven_schema_types_are_listed_and_an_unknown_type_is_not_found(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let (_, types) = client
        .send(Method::GET, &client.data_path("schematype/"), None)
        .await;
    assert_eq!(types["meta"]["count"], 11);
    assert_eq!(
        client
            .send(Method::GET, &client.data_path("schematype/event/"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        client
            .send(Method::GET, &client.data_path("schematype/widget/"), None)
            .await
            .0,
        404
    );
}

async fn a_schema_list_asked_for_a_row_count_that_is_not_a_boolean_is_refused_naming_row_count(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    // Refused whether the list is empty or not: the flags are checked before any schema is read.
    for schemas in [0, 1] {
        if schemas == 1 {
            assert_eq!(client.create_schema(&events_schema()).await.0, 201);
        }
        let (status, body) = client
            .send(
                Method::GET,
                &client.data_path("schema/?row_count=maybe"),
                None,
            )
            .await;
        assert_eq!(
            (status, &body["meta"]["errors"][0]["field"]),
            (400, &json!("row_count")),
            "with {schemas} schemas: {body}"
        );
    }
}

/// The customer-attributes schema, created, then `rows` posted to it.
async fn crm_with(client: &Monetate<'_>, rows: Value) {
    assert_eq!(client.create_schema(&crm_schema()).await.0, 201);
    let (status, body) = client.post_rows("crm", rows).await;
    assert_eq!(status, 201, "{body}");
}

async fn a_batch_with_bad_rows_is_refused_naming_each_row_and_field_and_writes_nothing(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    assert_eq!(client.create_schema(&crm_schema()).await.0, 201);
    // Every bad row is named with its field; the good row of the batch is not written.
    let (status, body) = client
        .post_rows(
            "crm",
            json!([
                {"customer_id": "ok-1", "tier": "gold"},
                {"tier": "silver"},
                {"customer_id": "c-3", "ltv": "lots"},
                {"customer_id": "c-4", "opted_in": "perhaps"},
                {"customer_id": "c-5", "signup": "yesterday"},
                {"customer_id": " c-6"},
                {"customer_id": "c-7", "colour": "red"},
                {"customer_id": "c-8", "tier": ""},
                "not a row"
            ]),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let errors = body["meta"]["errors"].as_array().expect("errors");
    let expected = [
        (2, json!("customer_id"), "required value missing"),
        (3, json!("ltv"), "NUMBER"),
        (4, json!("opted_in"), "true or false"),
        (5, json!("signup"), "ISO-8601"),
        (6, json!("customer_id"), "whitespace"),
        (7, json!("colour"), "not a field of schema crm"),
        (8, json!("tier"), "must not be empty"),
        (9, Value::Null, "a row is an object"),
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:?}");
    for ((row, field, says), error) in expected.iter().zip(errors) {
        assert_eq!(
            (&error["row"], &error["field"]),
            (&json!(row), field),
            "{error}"
        );
        assert!(
            error["message"].as_str().unwrap_or_default().contains(says),
            "{error}"
        );
    }
    assert_eq!(
        client.spot_check("crm", "ok-1").await.0,
        404,
        "nothing was written"
    );
    let (_, uploads) = client
        .send(Method::GET, &client.data_path("upload/crm/"), None)
        .await;
    assert_eq!(uploads["data"][0]["status"], "VALIDATION_ERROR");
    assert_eq!(
        uploads["data"][0]["validation_errors"]
            .as_array()
            .map(Vec::len),
        Some(8)
    );
}

async fn a_post_without_rows_or_with_an_unknown_key_or_to_an_unknown_schema_is_refused(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    assert_eq!(client.create_schema(&crm_schema()).await.0, 201);
    // Body rules: no rows, a missing array, an unknown key.
    for body in [
        json!({"schema_rows": []}),
        json!({"rows": []}),
        json!({"schema_rows": [{}], "extra": 1}),
    ] {
        let (status, refused) = client
            .send(Method::POST, &client.data_path("data/crm/"), Some(&body))
            .await;
        assert_eq!(status, 400, "{body}: {refused}");
    }
    assert_eq!(client.post_rows("nope", json!([{"a": 1}])).await.0, 404);
}

async fn a_row_with_a_unique_key_replaces_its_row_and_its_values_are_normalised(app: TestApp) {
    let client = Monetate::dev(&app).await;
    assert_eq!(client.create_schema(&crm_schema()).await.0, 201);
    // A unique key replaces its row (also within one body); types are normalised.
    let (status, body) = client
        .post_rows(
            "crm",
            json!([
                {"customer_id": "c-1", "tier": "bronze", "ltv": "12", "opted_in": "TRUE", "signup": "2024-05-01"},
                {"customer_id": "c-1", "tier": "silver", "ltv": "12.5"}
            ]),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["data"]["schema_rows"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(client.post_rows("crm", json!([{"customer_id": "c-1", "tier": "gold", "signup": "2024-05-01T12:00:00+02:00"}])).await.0, 201);
    let (status, found) = client.spot_check("crm", "c-1").await;
    assert_eq!(status, 200);
    assert_eq!(
        found["data"]["schema_rows"],
        json!([{"customer_id": "c-1", "tier": "gold", "ltv": null, "opted_in": null, "signup": "2024-05-01T10:00:00Z", "tags": null}])
    );
}

async fn rows_of_a_schema_without_a_unique_key_are_all_appended_and_all_spot_checked(app: TestApp) {
    let client = Monetate::dev(&app).await;
    assert_eq!(client.create_schema(&events_schema()).await.0, 201);
    // Without a unique key every row is appended; the spot check returns them all.
    for page in ["/", "/cart"] {
        app.clock.advance_millis(1);
        let (status, body) = client
            .post_rows(
                "web-events",
                json!([{"visitor": "v-1", "at": "2026-11-23T08:00:00Z", "page": page}]),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, found) = client.spot_check("web-events", "v-1").await;
    assert_eq!(status, 200);
    let pages: Vec<&Value> = found["data"]["schema_rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| &row["page"])
        .collect();
    assert_eq!(pages, [&json!("/"), &json!("/cart")]);
    let (_, schema) = client
        .send(
            Method::GET,
            &client.data_path("schema/web-events/?row_count=true"),
            None,
        )
        .await;
    assert_eq!(schema["data"]["row_count"], 2);
}

async fn the_lookup_extension_reads_several_ids_at_once_without_the_spot_checks_limit(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    crm_with(&client, json!([{"customer_id": "c-1", "tier": "gold"}])).await;
    // The spot check's second has just been used: the lookup is not held back by it.
    assert_eq!(client.spot_check("crm", "c-1").await.0, 200);
    // The lookup extension reads several ids at once, without the spot check's limit.
    let (status, body) = client
        .send(
            Method::POST,
            &client.extension_path("data/crm/lookup"),
            Some(&json!({"ids": ["c-1", "c-404"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["schema_rows"][0]["customer_id"], "c-1");
    assert_eq!(body["data"]["missing"], json!(["c-404"]));
}

async fn a_default_catalog_names_an_existing_schema_and_a_bulk_set_refuses_a_repeated_account(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    assert_eq!(client.create_schema(&crm_schema()).await.0, 201);
    // Default catalogs name an existing schema id.
    let crm_id = found_schema_id(&client, "crm").await;
    let (status, body) = client
        .send(
            Method::POST,
            &client.data_path("defaultcatalog/"),
            Some(&json!({"account": "123", "schema": crm_id.to_string()})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = client
        .send(
            Method::POST,
            &client.data_path("defaultcatalog/"),
            Some(&json!({"account": "124", "schema": "999"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = client
        .send(
            Method::POST,
            &client.data_path("bulk-defaultcatalog/"),
            Some(&json!({"defaultaccountcatalogs": [{"account": "125", "schema": crm_id}, {"account": "125", "schema": crm_id}]})),
        )
        .await;
    assert_eq!(
        (status, &body["meta"]["errors"][0]["row"]),
        (400, &json!(2)),
        "{body}"
    );
    let (_, list) = client
        .send(Method::GET, &client.data_path("defaultcatalog/"), None)
        .await;
    assert_eq!(
        list["data"],
        json!([{"account": "123", "schema": crm_id.to_string()}])
    );
}

async fn found_schema_id(client: &Monetate<'_>, name: &str) -> i64 {
    let (_, body) = client
        .send(
            Method::GET,
            &client.data_path(&format!("schema/{name}/")),
            None,
        )
        .await;
    body["data"]["id"].as_i64().expect("schema id")
}

/// The spot check of `c-1`, just answered: the API user's second has begun. Its path.
async fn a_spot_check_answered(client: &Monetate<'_>) -> String {
    crm_with(client, json!([{"customer_id": "c-1"}])).await;
    let path = client.data_path("data/crm/?id=c-1");
    assert_eq!(client.send(Method::GET, &path, None).await.0, 200);
    path
}

async fn a_second_spot_check_within_the_second_is_refused_with_retry_after_and_answered_a_second_after_the_first(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let path = a_spot_check_answered(&client).await;
    // The second call within the second is refused, with Retry-After.
    app.clock.advance_millis(999);
    let response = app
        .client
        .get(app.url(&path))
        .header("authorization", format!("Token {}", client.token))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["meta"]["code"], 429);
    assert!(
        body["meta"]["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("one request per second")
    );
    // A second after the last answered call, it answers again.
    app.clock.advance_millis(1);
    assert_eq!(client.send(Method::GET, &path, None).await.0, 200);
}

async fn another_api_user_of_the_tenant_is_not_held_back_by_the_first_users_spot_check(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let path = a_spot_check_answered(&client).await;
    // The limit is per API user: another user of the tenant is not held back.
    let (status, _, pair) = client.new_user("api-second").await;
    assert_eq!(status, 201);
    let second = token(&app, &pair.private_key_pem, "api-second").await;
    assert_eq!(
        client.send_as(&second, Method::GET, &path, None).await.0,
        200
    );
    // While the first user still is.
    assert_eq!(client.send(Method::GET, &path, None).await.0, 429);
}

async fn a_spot_check_without_an_id_is_refused_naming_id_and_counts_against_the_limit(
    app: TestApp,
) {
    let client = Monetate::dev(&app).await;
    let path = a_spot_check_answered(&client).await;
    // A missing id is 400 (it still counts against the limit).
    app.clock.advance_millis(1_000);
    let (status, body) = client
        .send(Method::GET, &client.data_path("data/crm/"), None)
        .await;
    assert_eq!(
        (status, &body["meta"]["errors"][0]["field"]),
        (400, &json!("id")),
        "{body}"
    );
    assert_eq!(client.send(Method::GET, &path, None).await.0, 429);
}

async fn an_api_user_with_a_bad_username_or_key_is_refused_naming_the_field(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let users = client.extension_path("api-users");
    let pair = generate_key_pair().expect("a key pair");
    let cases = [
        (
            json!({"username": "bad name"}),
            "username",
            "letters, digits",
        ),
        (
            json!({"public_key_pem": "not pem"}),
            "public_key_pem",
            "not a PEM",
        ),
        (
            json!({"public_key_pem": pair.private_key_pem}),
            "public_key_pem",
            "private key",
        ),
    ];
    for (body, field, says) in cases {
        let (status, refused) = client.send(Method::POST, &users, Some(&body)).await;
        assert_eq!(status, 400, "{body}: {refused}");
        assert_eq!(refused["meta"]["errors"][0]["field"], field);
        assert!(
            refused["meta"]["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{refused}"
        );
    }
}

/// An API user `later`, created without a key; the path of the API-user list.
async fn a_user_without_a_key(client: &Monetate<'_>) -> String {
    let users = client.extension_path("api-users");
    let (status, created) = client
        .send(Method::POST, &users, Some(&json!({"username": "later"})))
        .await;
    assert_eq!((status, &created["data"]["keys"]), (201, &json!([])));
    users
}

async fn an_api_user_made_without_a_key_is_given_one_later_and_signs_in_with_it(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let pair = generate_key_pair().expect("a key pair");
    // A user without a key, then a key added.
    let users = a_user_without_a_key(&client).await;
    let (status, key) = client
        .send(
            Method::POST,
            &client.extension_path("api-users/later/keys"),
            Some(&json!({"public_key_pem": pair.public_key_pem})),
        )
        .await;
    assert_eq!((status, &key["data"]["bits"]), (201, &json!(2048)), "{key}");
    token(&app, &pair.private_key_pem, "later").await;
    let (_, listed) = client.send(Method::GET, &users, None).await;
    assert_eq!(listed["meta"]["count"], 2);
}

async fn a_username_is_taken_once(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let users = a_user_without_a_key(&client).await;
    assert_eq!(
        client
            .send(Method::POST, &users, Some(&json!({"username": "later"})))
            .await
            .0,
        409
    );
}

async fn a_key_for_an_unknown_api_user_is_not_found(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let pair = generate_key_pair().expect("a key pair");
    assert_eq!(
        client
            .send(
                Method::POST,
                &client.extension_path("api-users/nobody/keys"),
                Some(&json!({"public_key_pem": pair.public_key_pem}))
            )
            .await
            .0,
        404
    );
}

/// Tenant A (the development tenant, with a `crm` row `c-1` of tier gold) and tenant B,
/// each holding a token; A's API user and its key id.
struct TwoRetailers<'a> {
    a: Monetate<'a>,
    b: Monetate<'a>,
    a_user: String,
    a_key: String,
}

async fn two_retailers(app: &TestApp) -> TwoRetailers<'_> {
    let a = Monetate::dev(app).await;
    crm_with(&a, json!([{"customer_id": "c-1", "tier": "gold"}])).await;
    let b = Monetate::of(app, "Other Retailer").await;
    let (_, users) = a
        .send(Method::GET, &a.extension_path("api-users"), None)
        .await;
    let a_user = a.bundle.monetate.api_username.clone();
    let a_key = users["data"][0]["keys"][0]["key_id"]
        .as_str()
        .expect("key")
        .to_string();
    TwoRetailers {
        a,
        b,
        a_user,
        a_key,
    }
}

impl TwoRetailers<'_> {
    /// Every Data API and extension route, pointed at A's retailer and names: 18 routes.
    fn routes_of_a(&self) -> Vec<(Method, String, Option<Value>)> {
        let (a, a_user, a_key) = (&self.a, &self.a_user, &self.a_key);
        let pair = generate_key_pair().expect("a key pair");
        let routes = vec![
            (Method::GET, a.data_path("schema/"), None),
            (
                Method::POST,
                a.data_path("schema/"),
                Some(
                    json!({"name": "x", "fields": {"i": {"data_type": "STRING", "identifier": true}}}),
                ),
            ),
            (Method::GET, a.data_path("schema/crm/"), None),
            (
                Method::PATCH,
                a.data_path("schema/crm/"),
                Some(json!({"named_identifier": "x"})),
            ),
            (Method::GET, a.data_path("schematype/"), None),
            (Method::GET, a.data_path("schematype/event/"), None),
            (Method::GET, a.data_path("upload/crm/"), None),
            (
                Method::POST,
                a.data_path("data/crm/"),
                Some(json!({"schema_rows": [{"customer_id": "c-1", "tier": "stolen"}]})),
            ),
            (Method::GET, a.data_path("data/crm/?id=c-1"), None),
            (
                Method::GET,
                "/api/data/v1/crm/production/data/?id=c-1".to_string(),
                None,
            ),
            (Method::GET, a.data_path("defaultcatalog/"), None),
            (
                Method::POST,
                a.data_path("defaultcatalog/"),
                Some(json!({"account": "1", "schema": "1"})),
            ),
            (
                Method::POST,
                a.data_path("bulk-defaultcatalog/"),
                Some(json!({"defaultaccountcatalogs": [{"account": "1", "schema": "1"}]})),
            ),
            (Method::GET, a.extension_path("api-users"), None),
            (
                Method::POST,
                a.extension_path("api-users"),
                Some(json!({"public_key_pem": pair.public_key_pem})),
            ),
            (
                Method::POST,
                a.extension_path(&format!("api-users/{a_user}/keys")),
                Some(json!({"public_key_pem": pair.public_key_pem})),
            ),
            (
                Method::POST,
                a.extension_path(&format!("api-users/{a_user}/keys/{a_key}/deactivate")),
                None,
            ),
            (
                Method::POST,
                a.extension_path("data/crm/lookup"),
                Some(json!({"ids": ["c-1"]})),
            ),
        ];
        assert_eq!(routes.len(), 18);
        routes
    }

    /// B's token on every route of A: 404.
    async fn b_is_not_found_on_every_route_of_a(&self) {
        let app = self.a.app;
        for (method, path, body) in &self.routes_of_a() {
            app.clock.advance_millis(1_000);
            let (status, refused) = self.b.send(method.clone(), path, body.as_ref()).await;
            assert_eq!(status, 404, "B on {method} {path}: {refused}");
        }
    }

    /// Every route of A without a token, or with a made-up one: 401.
    async fn no_token_or_a_made_up_one_is_refused_on_every_route_of_a(&self) {
        let app = self.a.app;
        for (method, path, body) in &self.routes_of_a() {
            app.clock.advance_millis(1_000);
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 401, "no token on {method} {path}");
            let (status, _) = self
                .b
                .send_as("made-up", method.clone(), path, body.as_ref())
                .await;
            assert_eq!(status, 401, "forged token on {method} {path}");
        }
    }

    /// B's own retailer path with A's names finds nothing of A's.
    async fn b_finds_nothing_of_a_under_its_own_retailer(&self) {
        let (app, b) = (self.a.app, &self.b);
        app.clock.advance_millis(1_000);
        assert_eq!(
            b.send(Method::GET, &b.data_path("data/crm/?id=c-1"), None)
                .await
                .0,
            404
        );
        let (_, listed) = b.send(Method::GET, &b.data_path("schema/"), None).await;
        assert_eq!(listed["data"], json!([]));
        let deactivate = b.extension_path(&format!(
            "api-users/{}/keys/{}/deactivate",
            self.a_user, self.a_key
        ));
        assert_eq!(b.send(Method::POST, &deactivate, None).await.0, 404);
    }

    /// A's items, without the spot check's rate-limit counters.
    async fn items_of_a(&self) -> Vec<(String, String, String)> {
        self.a
            .app
            .server
            .app
            .table
            .scan_prefix(&format!("T#{}", self.a.tenant()))
            .await
            .expect("scan")
            .into_iter()
            .filter(|item| !item.pk.ends_with("#MONRATE"))
            .map(|item| {
                (
                    item.pk.clone(),
                    item.sk.clone(),
                    json!(item.attrs).to_string(),
                )
            })
            .collect()
    }
}

async fn another_retailers_token_is_not_found_on_every_route_of_a_retailer(app: TestApp) {
    let retailers = two_retailers(&app).await;
    retailers.b_is_not_found_on_every_route_of_a().await;
}

async fn every_route_of_a_retailer_without_a_token_or_with_a_made_up_one_is_refused_401(
    app: TestApp,
) {
    let retailers = two_retailers(&app).await;
    retailers
        .no_token_or_a_made_up_one_is_refused_on_every_route_of_a()
        .await;
}

async fn another_retailer_finds_none_of_a_retailers_rows_schemas_or_keys_under_its_own_path(
    app: TestApp,
) {
    let retailers = two_retailers(&app).await;
    retailers
        .b_finds_nothing_of_a_under_its_own_retailer()
        .await;
}

/// Tenant B's token on every route, pointed at tenant A's retailer and names, and no token
/// or a made-up one: refused, and A's data unchanged.
async fn a_retailers_data_is_unchanged_by_every_refused_attempt_on_it(app: TestApp) {
    let retailers = two_retailers(&app).await;
    let before = retailers.items_of_a().await;
    retailers.b_is_not_found_on_every_route_of_a().await;
    retailers
        .no_token_or_a_made_up_one_is_refused_on_every_route_of_a()
        .await;
    retailers
        .b_finds_nothing_of_a_under_its_own_retailer()
        .await;
    // A's assertion can't get into B either: the token's tenant is the user's.
    let after = retailers.items_of_a().await;
    assert_eq!(before, after, "tenant A's data changed");
    let (status, found) = retailers.a.spot_check("crm", "c-1").await;
    assert_eq!(
        (status, &found["data"]["schema_rows"][0]["tier"]),
        (200, &json!("gold"))
    );
}

/// Schema names in paths, each refused with 400 naming `schemaName` and a rule containing
/// `rule` on every route that takes one; then nothing was written.
async fn bad_schema_names_are_refused_on_every_route(app: &TestApp, names: &[&str], rule: &str) {
    let client = Monetate::dev(app).await;
    crm_with(&client, json!([{"customer_id": "c-1", "tier": "gold"}])).await;
    let authorization = format!("Token {}", client.token);
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/json"),
    ];
    let rows = json!({"schema_rows": [{"customer_id": "c-1", "tier": "lead"}]}).to_string();
    for name in names {
        let cases = [
            ("GET", client.data_path(&format!("schema/{name}/"))),
            ("PATCH", client.data_path(&format!("schema/{name}/"))),
            ("POST", client.data_path(&format!("data/{name}/"))),
            ("GET", client.data_path(&format!("data/{name}/?id=c-1"))),
            ("GET", client.data_path(&format!("upload/{name}/"))),
            (
                "POST",
                client.extension_path(&format!("data/{name}/lookup")),
            ),
        ];
        for (method, path) in cases {
            let (status, body) = raw_request(app, method, &path, &headers, &rows).await;
            assert_eq!(status, 400, "{method} {path}: {body}");
            assert_eq!(body["meta"]["code"], 400, "{body}");
            assert_eq!(body["data"], json!({}), "{body}");
            let error = &body["meta"]["errors"][0];
            assert_eq!(error["field"], "schemaName", "{method} {path}: {body}");
            let message = error["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(rule),
                "{method} {path}: the rule {rule:?} is named: {message}"
            );
        }
    }
    let (status, found) = client.spot_check("crm", "c-1").await;
    assert_eq!(
        (status, &found["data"]["schema_rows"][0]["tier"]),
        (200, &json!("gold")),
        "the row is unchanged: {found}"
    );
    let (_, schemas) = client
        .send(Method::GET, &client.data_path("schema/"), None)
        .await;
    assert_eq!(schemas["meta"]["count"], 1, "{schemas}");
}

/// Dot segments (plain or percent-encoded), a slash or a control character.
async fn a_schema_name_that_is_a_dot_segment_or_holds_a_slash_or_control_character_is_refused_on_every_route_and_nothing_is_written(
    app: TestApp,
) {
    bad_schema_names_are_refused_on_every_route(
        &app,
        &["..", "%2e%2e", ".", "%2E", "a%2Fb", "a%00b"],
        "'.' or '..'",
    )
    .await;
}

async fn a_schema_name_outside_the_schema_name_grammar_is_refused_on_every_route_and_nothing_is_written(
    app: TestApp,
) {
    bad_schema_names_are_refused_on_every_route(&app, &["crm.v2"], "starting with a letter").await;
}

/// The Data API spec's own examples, as a generated client sends and reads them: the
/// SchemaPatch example (which repeats the schema's name and type), the product SchemaType
/// example's fields, and DefaultAccountCatalogCreatedResponse's one-entry `data`.
async fn the_specs_own_examples_are_answered_in_the_specs_shapes(app: TestApp) {
    let client = Monetate::dev(&app).await;
    let catalog = json!({
        "name": "catalog",
        "type": "event",
        "fields": {
            "visitor_id": {"data_type": "STRING", "identifier": true},
            "seen": {"data_type": "DATETIME", "event_time": true}
        }
    });
    let (status, body) = client.create_schema(&catalog).await;
    assert_eq!(status, 201, "{body}");
    let path = client.data_path("schema/catalog/");
    // The SchemaPatch example: name and type equal to the schema's own are accepted.
    let example = json!({"name": "catalog", "type": "event", "fields": {"new_field2": {"data_type": "STRING"}}});
    let (status, body) = client.send(Method::PATCH, &path, Some(&example)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["fields"]["new_field2"]["data_type"], "STRING");
    assert_eq!(body["data"]["name"], "catalog");
    // A different name or type would change the schema: 400 naming the field and the rule.
    for (change, field_name) in [
        (
            json!({"name": "other", "fields": {"f1": {"data_type": "STRING"}}}),
            "name",
        ),
        (
            json!({"type": "attribute", "fields": {"f2": {"data_type": "STRING"}}}),
            "type",
        ),
    ] {
        let (status, body) = client.send(Method::PATCH, &path, Some(&change)).await;
        assert_eq!(status, 400, "{change}: {body}");
        let error = &body["meta"]["errors"][0];
        assert_eq!(error["field"], field_name, "{body}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains("must equal the schema's own")),
            "{body}"
        );
    }
    let (_, body) = client.send(Method::GET, &path, None).await;
    assert_eq!(
        body["data"]["fields"].as_object().map(|f| f.len()),
        Some(3),
        "only the example's field was added: {body}"
    );
    // SchemaType requires `fields`; the product type lists the vendor's 40.
    let (status, body) = client
        .send(Method::GET, &client.data_path("schematype/product/"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let fields = body["data"]["fields"].as_object().expect("fields");
    assert_eq!(fields.len(), 40, "{body}");
    assert_eq!(
        fields["id"],
        json!({"data_type": "STRING", "identifier": true, "unique_key": true, "event_time": false, "required": true})
    );
    for (name, data_type, required) in [
        ("title", "STRING", true),
        ("price", "NUMBER", true),
        ("availability_date", "DATETIME", false),
        ("adult", "BOOLEAN", false),
        ("tax", "STRING", false),
    ] {
        assert_eq!(fields[name]["data_type"], data_type, "{name}");
        assert_eq!(fields[name]["required"], required, "{name}");
        assert_eq!(fields[name]["identifier"], false, "{name}");
    }
    let (_, types) = client
        .send(Method::GET, &client.data_path("schematype/"), None)
        .await;
    let types = types["data"].as_array().expect("a list");
    assert_eq!(types.len(), 11);
    assert!(
        types
            .iter()
            .all(|t| t["name"].is_string() && t["fields"].is_object()),
        "{types:?}"
    );
    // Set Account Default: `data` is the entry itself, not a list.
    let id = found_schema_id(&client, "catalog").await.to_string();
    let (status, body) = client
        .send(
            Method::POST,
            &client.data_path("defaultcatalog/"),
            Some(&json!({"account": "123", "schema": id})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["data"], json!({"account": "123", "schema": id}));
}

on_both_adapters!(
    a_registered_key_pair_signs_an_assertion_exchanged_for_an_hour_long_token,
    a_posted_row_is_read_back_by_spot_check_at_the_canonical_and_the_seeds_path,
    a_post_is_logged_as_a_complete_upload_and_reaches_the_shared_customer_store,
    an_assertion_signed_with_none_or_hs256_is_refused_and_one_with_rs384_or_rs512_accepted,
    an_assertion_issued_over_five_minutes_away_is_refused_and_an_integer_iat_accepted,
    an_expired_or_not_yet_valid_assertion_is_refused_naming_its_claim,
    an_assertion_of_a_wrong_key_or_an_unknown_user_or_no_jwt_at_all_is_refused,
    a_token_is_issued_for_a_ttl_of_600_to_43200_seconds_and_no_other,
    each_token_expires_on_its_own,
    a_deactivated_key_is_refused_with_403_for_its_assertions_and_its_live_tokens,
    a_schema_breaking_a_rule_is_refused_naming_the_field_and_the_rule,
    a_hyphenated_schema_name_is_accepted_and_a_name_is_taken_once_per_retailer,
    a_schema_patch_adds_fields_or_sets_the_named_identifier_but_never_both_nor_changes_a_field,
    a_schema_is_read_back_by_name_and_in_the_list_and_an_unknown_name_is_not_found,
    the_eleven_schema_types_are_listed_and_an_unknown_type_is_not_found,
    a_schema_list_asked_for_a_row_count_that_is_not_a_boolean_is_refused_naming_row_count,
    a_batch_with_bad_rows_is_refused_naming_each_row_and_field_and_writes_nothing,
    a_post_without_rows_or_with_an_unknown_key_or_to_an_unknown_schema_is_refused,
    a_row_with_a_unique_key_replaces_its_row_and_its_values_are_normalised,
    rows_of_a_schema_without_a_unique_key_are_all_appended_and_all_spot_checked,
    the_lookup_extension_reads_several_ids_at_once_without_the_spot_checks_limit,
    a_default_catalog_names_an_existing_schema_and_a_bulk_set_refuses_a_repeated_account,
    a_second_spot_check_within_the_second_is_refused_with_retry_after_and_answered_a_second_after_the_first,
    another_api_user_of_the_tenant_is_not_held_back_by_the_first_users_spot_check,
    a_spot_check_without_an_id_is_refused_naming_id_and_counts_against_the_limit,
    an_api_user_with_a_bad_username_or_key_is_refused_naming_the_field,
    an_api_user_made_without_a_key_is_given_one_later_and_signs_in_with_it,
    a_username_is_taken_once,
    a_key_for_an_unknown_api_user_is_not_found,
    another_retailers_token_is_not_found_on_every_route_of_a_retailer,
    every_route_of_a_retailer_without_a_token_or_with_a_made_up_one_is_refused_401,
    another_retailer_finds_none_of_a_retailers_rows_schemas_or_keys_under_its_own_path,
    a_retailers_data_is_unchanged_by_every_refused_attempt_on_it,
    a_schema_name_that_is_a_dot_segment_or_holds_a_slash_or_control_character_is_refused_on_every_route_and_nothing_is_written,
    a_schema_name_outside_the_schema_name_grammar_is_refused_on_every_route_and_nothing_is_written,
    the_specs_own_examples_are_answered_in_the_specs_shapes,
);

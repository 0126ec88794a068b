//! Optimove over HTTP: Login and its sliding 20-minute token (on a manual clock), the exact
//! 403 on expiry, API keys, login throttling, the per-client rate limit, case-insensitive
//! names, XML, the functions over the shared customer store with their per-customer
//! errors, unsupported functions, and tenant isolation. Every case runs on the embedded
//! store and on DynamoDB in the emulator.

use custdata::admin::{AdminCommand, execute};
use custdata::customers::{self, CustomerRef, Identifier, Upsert};
use custdata::tenancy::CredentialBundle;
use custdata_tests::{TestApp, create_tenant, on_both_adapters};
use reqwest::{Method, Response};
use serde_json::{Value, json};

/// How a call authenticates.
#[derive(Clone)]
enum Auth {
    Token(String),
    Key(String),
    Nothing,
}

struct Optimove<'a> {
    app: &'a TestApp,
    bundle: CredentialBundle,
}

impl<'a> Optimove<'a> {
    fn dev(app: &'a TestApp) -> Optimove<'a> {
        Optimove {
            app,
            bundle: app.server.credentials.clone(),
        }
    }

    async fn of(app: &'a TestApp, name: &str) -> Optimove<'a> {
        Optimove {
            app,
            bundle: create_tenant(app, name).await,
        }
    }

    async fn login_at(&self, path: &str, body: &Value) -> Response {
        self.app
            .client
            .post(self.app.url(path))
            .json(body)
            .send()
            .await
            .expect("login request")
    }

    /// The user's token (its live one, if it has one).
    async fn token(&self) -> String {
        let optimove = &self.bundle.optimove;
        let response = self
            .login_at(
                "/current/general/login",
                &json!({"Username": optimove.username, "Password": optimove.password}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let token: Value = response.json().await.expect("a JSON string");
        token
            .as_str()
            .expect("the token is a JSON string")
            .to_string()
    }

    fn key(&self) -> Auth {
        Auth::Key(self.bundle.optimove.api_key.clone())
    }

    async fn call(
        &self,
        auth: &Auth,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.app.client.request(method, self.app.url(path));
        request = match auth {
            Auth::Token(token) => request.header("Authorization-Token", token),
            Auth::Key(key) => request.header("X-API-KEY", key),
            Auth::Nothing => request,
        };
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request")
    }

    async fn json(
        &self,
        auth: &Auth,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let response = self.call(auth, method, path, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON body"))
    }
}

const LAST_UPDATE: &str = "/current/general/GetLastDataUpdate";
const ADD_ATTRIBUTE: &str = "/current/customers/AddCustomerAttribute";
const UPSERT_CUSTOMER: &str = "/current/customers/UpsertCustomer";
const UPDATE_ATTRIBUTES: &str = "/current/customers/UpdateCustomerAttributes";
const ATTRIBUTE_LIST: &str = "/current/model/GetCustomerAttributeList";

/// The day `days` days from the clock's now, as Optimove writes dates.
fn day(app: &TestApp, days: i64) -> String {
    chrono::DateTime::from_timestamp_millis(
        custdata::clock::Clock::now_millis(&app.clock) + days * 86_400_000,
    )
    .expect("a date")
    .format("%Y-%m-%d")
    .to_string()
}

impl Optimove<'_> {
    /// A login of this tenant's user with `password`: its status and JSON body.
    async fn login_with(&self, password: &str) -> (u16, Value) {
        let response = self
            .login_at(
                "/current/general/login",
                &json!({"Username": self.bundle.optimove.username, "Password": password}),
            )
            .await;
        (
            response.status().as_u16(),
            response.json::<Value>().await.expect("JSON"),
        )
    }

    /// AddCustomerAttribute with the API key.
    async fn add_attribute(&self, body: &Value) -> (u16, Value) {
        self.json(&self.key(), Method::POST, ADD_ATTRIBUTE, Some(body))
            .await
    }
}

async fn login_answers_a_json_string_token_under_any_spelling_and_again_within_the_second(
    app: TestApp,
) {
    let client = Optimove::dev(&app);
    let optimove = client.bundle.optimove.clone();
    // Login under the usual spellings; the token comes back as a JSON string.
    for path in [
        "/current/general/login",
        "/current/General/Login",
        "/current/GENERAL/LOGIN",
    ] {
        let response = client
            .login_at(
                path,
                &json!({"username": optimove.username, "PASSWORD": optimove.password}),
            )
            .await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .contains("application/json")
        );
        let text = response.text().await.expect("body");
        assert!(text.starts_with('"') && text.ends_with('"'), "{text}");
    }
    // A correct login is never throttled: within the second it is 200 as well.
    let again = client
        .login_at(
            "/current/general/login",
            &json!({"Username": optimove.username, "Password": optimove.password}),
        )
        .await;
    assert_eq!(again.status(), 200);
}

async fn a_login_with_a_wrong_password_is_401_and_one_without_a_username_400(app: TestApp) {
    let client = Optimove::dev(&app);
    let (status, body) = client.login_with("wrong").await;
    assert_eq!((status, &body["status"]), (401, &json!(401)), "{body}");
    let response = client
        .login_at("/current/general/login", &json!({"Password": "x"}))
        .await;
    assert_eq!(response.status(), 400);
}

async fn a_token_used_every_19_minutes_lives_on_and_20_silent_minutes_expire_it_with_the_exact_403(
    app: TestApp,
) {
    let client = Optimove::dev(&app);
    // Sliding: a call at 19 minutes extends; 20 minutes of silence expire the token.
    let token = Auth::Token(client.token().await);
    for _ in 0..3 {
        app.clock.advance_seconds(19 * 60);
        assert_eq!(
            client
                .call(&token, Method::GET, LAST_UPDATE, None)
                .await
                .status(),
            200
        );
    }
    app.clock.advance_seconds(20 * 60 + 1);
    let expired = client.call(&token, Method::GET, LAST_UPDATE, None).await;
    assert_eq!(expired.status(), 403);
    assert_eq!(expired.headers()["content-type"], "text/plain");
    assert_eq!(
        expired.text().await.expect("body"),
        "Authorization-Token Expired"
    );
}

async fn an_unknown_token_an_unknown_key_or_no_credential_is_401_unauthorized(app: TestApp) {
    let client = Optimove::dev(&app);
    // Unknown and missing credentials are 401.
    for auth in [
        Auth::Token("made-up".into()),
        Auth::Key("made-up".into()),
        Auth::Nothing,
    ] {
        let (status, body) = client.json(&auth, Method::GET, LAST_UPDATE, None).await;
        assert_eq!(
            (status, &body["error"]),
            (401, &json!("Unauthorized")),
            "{body}"
        );
    }
}

async fn the_api_key_needs_no_login_and_the_last_data_update_is_yesterday(app: TestApp) {
    let client = Optimove::dev(&app);
    // The API key needs no login.
    let (status, body) = client
        .json(&client.key(), Method::GET, LAST_UPDATE, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"Date": day(&app, -1)}));
}

/// The development tenant's API key, after its first 50 calls of a 10-second window were
/// answered and its 51st refused.
async fn a_spent_window(app: &TestApp) -> (Optimove<'_>, Auth) {
    let client = Optimove::dev(app);
    let key = client.key();
    // Start at the beginning of a window, so all 51 calls fall in one.
    let now = custdata::clock::Clock::now_millis(&app.clock);
    app.clock.advance_millis(10_000 - now.rem_euclid(10_000));
    for call in 1..=50 {
        assert_eq!(
            client
                .call(&key, Method::GET, LAST_UPDATE, None)
                .await
                .status(),
            200,
            "call {call}"
        );
    }
    let refused = client.call(&key, Method::GET, LAST_UPDATE, None).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "10");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        (&body["status"], &body["error"]),
        (&json!(429), &json!("Too Many Requests"))
    );
    (client, key)
}

async fn the_51st_call_within_ten_seconds_is_refused_429_with_retry_after_10(app: TestApp) {
    let (client, key) = a_spent_window(&app).await;
    // Still refused until the window passes.
    app.clock.advance_seconds(9);
    assert_eq!(
        client
            .call(&key, Method::GET, LAST_UPDATE, None)
            .await
            .status(),
        429
    );
}

async fn a_login_user_of_the_tenant_has_its_own_count_of_calls(app: TestApp) {
    let (client, _) = a_spent_window(&app).await;
    // Another client (the Login user) has its own count.
    let token = Auth::Token(client.token().await);
    assert_eq!(
        client
            .call(&token, Method::GET, LAST_UPDATE, None)
            .await
            .status(),
        200
    );
}

async fn a_refused_client_is_answered_again_in_the_next_window(app: TestApp) {
    let (client, key) = a_spent_window(&app).await;
    // The window passes.
    app.clock.advance_seconds(10);
    assert_eq!(
        client
            .call(&key, Method::GET, LAST_UPDATE, None)
            .await
            .status(),
        200
    );
}

async fn a_tenant_set_to_2000_calls_an_hour_is_answered_past_50_calls_in_ten_seconds(app: TestApp) {
    let client = Optimove::dev(&app);
    let key = client.key();
    // The seed's 2,000 an hour, set for the tenant.
    let command = AdminCommand::OptimoveRateLimit {
        tenant: client.bundle.tenant.clone(),
        calls: 2_000,
        per_seconds: 3_600,
    };
    execute(&app.server.app, "", command).await.expect("set");
    app.clock.advance_seconds(3_600);
    // At the beginning of a 10-second window, so all 55 calls fall in one.
    let now = custdata::clock::Clock::now_millis(&app.clock);
    app.clock.advance_millis(10_000 - now.rem_euclid(10_000));
    for call in 1..=55 {
        assert_eq!(
            client
                .call(&key, Method::GET, LAST_UPDATE, None)
                .await
                .status(),
            200,
            "call {call}"
        );
    }
}

async fn function_and_category_names_are_answered_in_any_case(app: TestApp) {
    let client = Optimove::dev(&app);
    let key = client.key();
    // Function and category names in any case; parameters too (see CustomerAttributes).
    for path in [
        "/current/general/getlastdataupdate",
        "/current/GENERAL/GETLASTDATAUPDATE",
        "/current/model/GetCustomerAttributeList",
    ] {
        assert_eq!(
            client.call(&key, Method::GET, path, None).await.status(),
            200,
            "{path}"
        );
    }
}

async fn a_call_accepting_xml_is_answered_in_xml(app: TestApp) {
    let client = Optimove::dev(&app);
    // XML on request.
    let response = client
        .app
        .client
        .get(app.url(LAST_UPDATE))
        .header("X-API-KEY", &client.bundle.optimove.api_key)
        .header("Accept", "application/xml")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("application/xml")
    );
    let xml = response.text().await.expect("body");
    assert!(
        xml.contains("<GetLastDataUpdate><Date>") && xml.ends_with("</Date></GetLastDataUpdate>"),
        "{xml}"
    );
}

async fn an_empty_list_is_answered_as_an_empty_json_array(app: TestApp) {
    let client = Optimove::dev(&app);
    let (status, list) = client
        .json(&client.key(), Method::GET, ATTRIBUTE_LIST, None)
        .await;
    assert_eq!((status, list), (200, json!([])));
}

async fn an_unknown_function_is_not_found(app: TestApp) {
    let client = Optimove::dev(&app);
    let (status, body) = client
        .json(
            &client.key(),
            Method::GET,
            "/current/customers/GetNothing",
            None,
        )
        .await;
    assert_eq!(status, 404, "{body}");
}

async fn add_promotions_is_refused_as_a_campaign_engine_write_pointing_to_update_customer_attributes(
    app: TestApp,
) {
    let client = Optimove::dev(&app);
    let (status, body) = client
        .json(
            &client.key(),
            Method::POST,
            "/current/integrations/AddPromotions",
            Some(&json!([{"PromoCode": "P1", "PromotionName": "Spring"}])),
        )
        .await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("campaign engine") && message.contains("UpdateCustomerAttributes"),
        "{message}"
    );
}

async fn a_get_function_called_with_post_is_405_allowing_get(app: TestApp) {
    let client = Optimove::dev(&app);
    let response = client
        .call(&client.key(), Method::POST, LAST_UPDATE, Some(&json!({})))
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "GET");
}

/// The development tenant's catalog: `VIP_Level` (VARCHAR(10), default Bronze) and `Score`
/// (INT), added with its API key.
async fn vip_level_and_score(app: &TestApp) -> (Optimove<'_>, Auth) {
    let client = Optimove::dev(app);
    let (status, body) = client
        .add_attribute(
            &json!({"Name": "VIP_Level", "Type": "VARCHAR(10)", "DefaultValue": "Bronze"}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"attributeName": "VIP_Level", "isSuccess": true})
        )
    );
    assert_eq!(
        client
            .add_attribute(&json!({"Name": "Score", "Type": "int"}))
            .await
            .0,
        200
    );
    let key = client.key();
    (client, key)
}

/// UpsertCustomer of `C1`: VIP_Level Gold (named in another case), Score 7.
async fn c1_upserted(client: &Optimove<'_>, key: &Auth) {
    let upsert = json!({"CustomerId": "C1", "Attributes": [{"RealFieldName": "vip_level", "Value": "Gold"}, {"RealFieldName": "Score", "Value": "7"}]});
    let (status, body) = client
        .json(key, Method::PUT, UPSERT_CUSTOMER, Some(&upsert))
        .await;
    assert_eq!(
        (status, &body["isSuccess"], &body["errors"]),
        (200, &json!(true), &json!([])),
        "{body}"
    );
    assert!(body["requestId"].as_str().is_some());
}

/// Read a customer's current attributes through the extension.
async fn read_customer(
    client: &Optimove<'_>,
    key: &Auth,
    customer: &str,
    query: &str,
) -> (u16, Value) {
    let path = format!("/custdata/v1/optimove/customers/{customer}?{query}");
    client.json(key, Method::GET, &path, None).await
}

async fn an_added_attribute_answers_its_name_and_the_list_holds_the_attributes_by_name(
    app: TestApp,
) {
    let (client, key) = vip_level_and_score(&app).await;
    let (_, list) = client.json(&key, Method::GET, ATTRIBUTE_LIST, None).await;
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|a| a["RealFieldName"].as_str())
        .collect();
    assert_eq!(names, ["Score", "VIP_Level"]);
}

async fn an_attribute_taken_of_an_unknown_type_with_a_bad_default_or_a_bad_name_is_refused_with_error_ids_2_to_5(
    app: TestApp,
) {
    let (client, _) = vip_level_and_score(&app).await;
    for (body, error_id) in [
        (json!({"Name": "vip_level", "Type": "INT"}), "2"),
        (json!({"Name": "Other", "Type": "TEXT"}), "3"),
        (
            json!({"Name": "Other", "Type": "INT", "DefaultValue": "abc"}),
            "4",
        ),
        (json!({"Name": "9bad", "Type": "INT"}), "5"),
    ] {
        let (status, refused) = client.add_attribute(&body).await;
        assert_eq!(
            (status, &refused["errorId"], &refused["isSuccess"]),
            (400, &json!(error_id), &json!(false)),
            "{body}: {refused}"
        );
    }
}

async fn an_attribute_update_writes_what_is_valid_and_names_each_customer_and_field_it_did_not_write(
    app: TestApp,
) {
    let (client, key) = vip_level_and_score(&app).await;
    // UpsertCustomer creates; UpdateCustomerAttributes only updates, and says per customer
    // and field what it did not write.
    c1_upserted(&client, &key).await;
    let update = json!({"CustomerNewAttributesValuesList": [
        {"CustomerID": "C1", "Attributes": [{"RealFieldName": "Score", "Value": 9}, {"RealFieldName": "Colour", "Value": "red"}]},
        {"CustomerID": "C404", "Attributes": [{"RealFieldName": "Score", "Value": 1}]},
        {"CustomerID": "C1", "Attributes": [{"RealFieldName": "VIP_Level", "Value": "Platinum-Plus"}]}
    ]});
    let (status, body) = client
        .json(&key, Method::POST, UPDATE_ATTRIBUTES, Some(&update))
        .await;
    assert_eq!((status, &body["isSuccess"]), (200, &json!(false)), "{body}");
    let mut errors: Vec<(String, String, Value)> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["error"].as_str().unwrap_or_default().to_string(),
                e["customerId"].as_str().unwrap_or_default().to_string(),
                e["realFieldName"].clone(),
            )
        })
        .collect();
    errors.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        errors,
        [
            (
                "INVALID_CUSTOMER".to_string(),
                "C404".to_string(),
                Value::Null
            ),
            (
                "INVALID_FIELD".to_string(),
                "C1".to_string(),
                json!("Colour")
            ),
            (
                "INVALID_VALUE".to_string(),
                "C1".to_string(),
                json!("VIP_Level")
            ),
        ]
    );
    // Current values, in the order asked for: the valid Score written, VIP_Level kept.
    let (status, body) =
        read_customer(&client, &key, "C1", "customerattributes=Score;VIP_Level").await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"CustomerID": "C1", "CustomerAttributes": ["9", "Gold"]})
        )
    );
    assert_eq!(
        read_customer(&client, &key, "C404", "CustomerAttributes=Score")
            .await
            .0,
        404,
        "an update creates no customer"
    );
}

async fn an_attribute_update_without_its_list_is_refused_naming_it(app: TestApp) {
    let client = Optimove::dev(&app);
    // A body without the list is 400 naming it.
    let (status, body) = client
        .json(
            &client.key(),
            Method::POST,
            UPDATE_ATTRIBUTES,
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        (status, &body["errors"][0]["field"]),
        (400, &json!("CustomerNewAttributesValuesList"))
    );
}

/// `C2`, created by UpsertCustomer (POST) with a Score of 1 and no VIP_Level.
async fn c2_upserted(client: &Optimove<'_>, key: &Auth) {
    let upsert =
        json!({"CustomerId": "C2", "Attributes": [{"RealFieldName": "Score", "Value": 1}]});
    assert_eq!(
        client
            .json(key, Method::POST, UPSERT_CUSTOMER, Some(&upsert))
            .await
            .0,
        200
    );
}

async fn a_customer_reads_its_attributes_in_the_order_asked_with_the_default_where_it_has_none(
    app: TestApp,
) {
    let (client, key) = vip_level_and_score(&app).await;
    c2_upserted(&client, &key).await;
    // Current values, in the order asked for; defaults where a customer has none.
    let (_, body) = read_customer(
        &client,
        &key,
        "C2",
        "CustomerAttributes=VIP_Level;Score&CustomerAttributesDelimiter=%3B",
    )
    .await;
    assert_eq!(
        body,
        json!({"CustomerID": "C2", "CustomerAttributes": ["Bronze", "1"], "CustomerAttribute": "Bronze;1"})
    );
}

async fn a_read_of_an_unknown_attribute_with_a_bad_delimiter_or_of_eleven_attributes_is_refused_naming_it(
    app: TestApp,
) {
    let (client, key) = vip_level_and_score(&app).await;
    c1_upserted(&client, &key).await;
    let eleven = format!("CustomerAttributes={}", ["Score"; 11].join(";"));
    for (query, field) in [
        ("CustomerAttributes=Nope", "CustomerAttributes"),
        (
            "CustomerAttributes=Score&CustomerAttributesDelimiter=%7C",
            "CustomerAttributesDelimiter",
        ),
        (eleven.as_str(), "CustomerAttributes"),
    ] {
        let (status, body) = read_customer(&client, &key, "C1", query).await;
        assert_eq!(
            (status, &body["errors"][0]["field"]),
            (400, &json!(field)),
            "{query}: {body}"
        );
    }
}

async fn a_read_of_an_unknown_customer_is_not_found(app: TestApp) {
    let (client, key) = vip_level_and_score(&app).await;
    assert_eq!(
        read_customer(&client, &key, "C404", "CustomerAttributes=Score")
            .await
            .0,
        404
    );
}

async fn an_erased_customer_is_brought_back_by_neither_write(app: TestApp) {
    let (client, key) = vip_level_and_score(&app).await;
    c2_upserted(&client, &key).await;
    // An erased customer is suppressed: neither write brings it back.
    let tenant = custdata::domain::TenantId::parse(&client.bundle.tenant).expect("tenant");
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key("C2")],
    };
    let now = custdata::clock::Clock::now_millis(&app.clock);
    customers::erase(app.server.app.customers(), &tenant, &named, now)
        .await
        .expect("erased")
        .expect("it existed");
    let upsert =
        json!({"CustomerId": "C2", "Attributes": [{"RealFieldName": "Score", "Value": 2}]});
    let (status, body) = client
        .json(&key, Method::PUT, UPSERT_CUSTOMER, Some(&upsert))
        .await;
    assert_eq!(
        (status, &body["isSuccess"], &body["errors"][0]["error"]),
        (200, &json!(false), &json!("INVALID_CUSTOMER")),
        "{body}"
    );
    let update = json!({"CustomerNewAttributesValuesList": [{"CustomerID": "C2", "Attributes": [{"RealFieldName": "Score", "Value": 3}]}]});
    let (status, body) = client
        .json(&key, Method::POST, UPDATE_ATTRIBUTES, Some(&update))
        .await;
    assert_eq!(
        (status, &body["isSuccess"], &body["errors"][0]["error"]),
        (200, &json!(false), &json!("INVALID_CUSTOMER")),
        "{body}"
    );
    assert_eq!(
        read_customer(&client, &key, "C2", "CustomerAttributes=Score")
            .await
            .0,
        404
    );
}

/// Brand A (the development tenant) with an attribute `Secret` and a customer `C1` holding
/// "a's" in it; brand B, another tenant.
async fn a_secret_and_another_brand(app: &TestApp) -> (Optimove<'_>, Auth, Optimove<'_>) {
    let a = Optimove::dev(app);
    let key_a = a.key();
    let add = json!({"Name": "Secret", "Type": "VARCHAR(20)"});
    assert_eq!(a.add_attribute(&add).await.0, 200);
    let upsert =
        json!({"CustomerId": "C1", "Attributes": [{"RealFieldName": "Secret", "Value": "a's"}]});
    assert_eq!(
        a.json(&key_a, Method::PUT, UPSERT_CUSTOMER, Some(&upsert))
            .await
            .0,
        200
    );
    let b = Optimove::of(app, "Other Brand").await;
    (a, key_a, b)
}

/// B's API key and B's Login token.
async fn credentials_of(b: &Optimove<'_>) -> [Auth; 2] {
    [b.key(), Auth::Token(b.token().await)]
}

async fn another_brand_by_key_or_token_sees_none_of_a_brands_attributes_or_customers(app: TestApp) {
    let (_, _, b) = a_secret_and_another_brand(&app).await;
    for auth in credentials_of(&b).await {
        let (status, list) = b.json(&auth, Method::GET, ATTRIBUTE_LIST, None).await;
        assert_eq!((status, list), (200, json!([])));
        let (status, _) = b
            .json(
                &auth,
                Method::GET,
                "/custdata/v1/optimove/customers/C1",
                None,
            )
            .await;
        assert_eq!(status, 404);
    }
}

async fn another_brand_by_key_or_token_updates_none_of_a_brands_customers(app: TestApp) {
    let (a, key_a, b) = a_secret_and_another_brand(&app).await;
    for auth in credentials_of(&b).await {
        let update = json!({"CustomerNewAttributesValuesList": [{"CustomerID": "C1", "Attributes": [{"RealFieldName": "Secret", "Value": "b's"}]}]});
        let (status, body) = b
            .json(&auth, Method::POST, UPDATE_ATTRIBUTES, Some(&update))
            .await;
        assert_eq!((status, &body["isSuccess"]), (200, &json!(false)), "{body}");
    }
    let (_, body) = read_customer(&a, &key_a, "C1", "CustomerAttributes=Secret").await;
    assert_eq!(body["CustomerAttributes"], json!(["a's"]));
}

async fn another_brands_catalog_is_its_own_and_its_listing_and_changers_see_none_of_a_brands_customers(
    app: TestApp,
) {
    let (a, key_a, b) = a_secret_and_another_brand(&app).await;
    // B's catalog is its own: the same name is free there.
    let add = json!({"Name": "Secret", "Type": "INT"});
    assert_eq!(b.add_attribute(&add).await.0, 200);
    // B's listing and B's changers see none of A's customers.
    let (status, page) = b
        .json(
            &b.key(),
            Method::GET,
            "/custdata/v1/optimove/customers",
            None,
        )
        .await;
    assert_eq!((status, page), (200, json!([])));
    let today = day(&app, 0);
    let changers = format!(
        "/current/customers/GetCustomerAttributeChangers?StartDate={today}&EndDate={today}&ChangedCustomerAttribute=Secret"
    );
    let (status, found) = b.json(&b.key(), Method::GET, &changers, None).await;
    assert_eq!((status, found), (200, json!([])));
    let (_, found) = a.json(&key_a, Method::GET, &changers, None).await;
    assert_eq!(found[0]["CustomerID"], "C1", "A's own history is there");
    let (_, body) = read_customer(&a, &key_a, "C1", "CustomerAttributes=Secret").await;
    assert_eq!(body["CustomerAttributes"], json!(["a's"]));
}

/// The customer listing: pages in creation order, the boundaries of `$top` and `$skip`, a
/// hole left by an erasure, CustomerAttributes and XML on a page.
/// The development tenant with a `Tier` attribute and 25 customers `C00`..`C24` created in
/// that order; its client, API key, tenant and the time they were written.
async fn listed_customers(app: &TestApp) -> (Optimove<'_>, Auth, custdata::domain::TenantId, i64) {
    let client = Optimove::dev(app);
    let key = client.key();
    let add = json!({"Name": "Tier", "Type": "VARCHAR(10)"});
    assert_eq!(
        client
            .json(
                &key,
                Method::POST,
                "/current/customers/AddCustomerAttribute",
                Some(&add)
            )
            .await
            .0,
        200
    );
    let tenant = custdata::domain::TenantId::parse(&client.bundle.tenant).expect("tenant");
    let upserts: Vec<Upsert> = (0..25)
        .map(|n| Upsert {
            key: Identifier::customer_key(format!("C{n:02}")),
            identifiers: Vec::new(),
            attributes: [("Tier".to_string(), json!(format!("t{n}")))]
                .into_iter()
                .collect(),
            items: Vec::new(),
        })
        .collect();
    let now = custdata::clock::Clock::now_millis(&app.clock);
    customers::upsert_many(app.server.app.customers(), &tenant, &upserts, "test", now)
        .await
        .expect("customers");
    (client, key, tenant, now)
}

/// The customer ids of a listing page.
fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .expect("a list")
        .iter()
        .map(|entry| entry["CustomerID"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The ids of customers `range` of [`listed_customers`].
fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("C{n:02}")).collect()
}

const LISTING: &str = "/custdata/v1/optimove/customers";

async fn pages_of_the_listing_follow_creation_order_and_the_last_one_is_partial(app: TestApp) {
    let (client, key, _, _) = listed_customers(&app).await;
    let list = LISTING;
    let (status, page) = client
        .json(&key, Method::GET, &format!("{list}?$top=10"), None)
        .await;
    assert_eq!((status, ids(&page)), (200, expected(0..10)));
    let (_, page) = client
        .json(&key, Method::GET, &format!("{list}?$TOP=10&$Skip=10"), None)
        .await;
    assert_eq!(ids(&page), expected(10..20));
    let (_, page) = client
        .json(&key, Method::GET, &format!("{list}?$top=10&$skip=20"), None)
        .await;
    assert_eq!(ids(&page), expected(20..25), "the last page is partial");
}

async fn a_skip_at_or_past_the_end_of_the_listing_answers_an_empty_list(app: TestApp) {
    let (client, key, _, _) = listed_customers(&app).await;
    let list = LISTING;
    for skip in [25, 1_000_000] {
        let (status, page) = client
            .json(&key, Method::GET, &format!("{list}?$skip={skip}"), None)
            .await;
        assert_eq!((status, page), (200, json!([])), "$skip={skip}");
    }
}

async fn a_top_over_200000_or_a_count_that_is_not_positive_is_refused_naming_its_parameter(
    app: TestApp,
) {
    let (client, key, _, _) = listed_customers(&app).await;
    let list = LISTING;
    for (query, field) in [
        ("$top=200001", "$top"),
        ("$top=0", "$top"),
        ("$skip=-1", "$skip"),
        ("$top=ten", "$top"),
    ] {
        let (status, body) = client
            .json(&key, Method::GET, &format!("{list}?{query}"), None)
            .await;
        assert_eq!(
            (status, &body["errors"][0]["field"]),
            (400, &json!(field)),
            "{query}: {body}"
        );
    }
    let (status, _) = client
        .json(&key, Method::GET, &format!("{list}?$top=200000"), None)
        .await;
    assert_eq!(status, 200);
}

async fn an_erased_customer_leaves_the_listing_and_the_positions_after_it_move_up(app: TestApp) {
    let (client, key, tenant, now) = listed_customers(&app).await;
    let list = LISTING;
    // An erased customer leaves the listing; positions after it move up by one.
    customers::erase(
        app.server.app.customers(),
        &tenant,
        &CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key("C03")],
        },
        now,
    )
    .await
    .expect("erased")
    .expect("it existed");
    let (_, page) = client
        .json(&key, Method::GET, &format!("{list}?$top=10&$skip=2"), None)
        .await;
    let mut wanted = expected(2..13);
    wanted.retain(|id| id != "C03");
    assert_eq!(ids(&page), wanted);
    let (_, page) = client
        .json(&key, Method::GET, &format!("{list}?$skip=20"), None)
        .await;
    assert_eq!(ids(&page), expected(21..25));
}

async fn a_listing_page_carries_the_attributes_asked_for_and_answers_xml_when_asked(app: TestApp) {
    let (client, key, _, _) = listed_customers(&app).await;
    let list = LISTING;
    // Attributes on a page, and the page as XML.
    let (_, page) = client
        .json(
            &key,
            Method::GET,
            &format!("{list}?$top=2&CustomerAttributes=tier&CustomerAttributesDelimiter=%3A"),
            None,
        )
        .await;
    assert_eq!(
        page,
        json!([
            {"CustomerID": "C00", "CustomerAttributes": ["t0"], "CustomerAttribute": "t0"},
            {"CustomerID": "C01", "CustomerAttributes": ["t1"], "CustomerAttribute": "t1"}
        ])
    );
    let response = app
        .client
        .get(app.url(&format!("{list}?$top=1")))
        .header("X-API-KEY", &client.bundle.optimove.api_key)
        .header("Accept", "application/xml")
        .send()
        .await
        .expect("request");
    let xml = response.text().await.expect("body");
    assert!(
        xml.ends_with("<GetCustomers><Item><CustomerID>C00</CustomerID></Item></GetCustomers>"),
        "{xml}"
    );
}

/// GetCustomerAttributeChangers from the attribute history: a new customer's initial value
/// is null, a rewrite of the same value is no change, the period is whole days, an erased
/// customer's history goes with it.
///
/// The development tenant with an attribute `Tier`: on day 1 C1 gold and C2 silver; on day 2
/// C1 platinum, C2 silver again and C3 bronze. Its client, API key, and the two days.
async fn a_tier_history(app: &TestApp) -> (Optimove<'_>, Auth, String, String) {
    let client = Optimove::dev(app);
    let key = client.key();
    let add = json!({"Name": "Tier", "Type": "VARCHAR(10)"});
    assert_eq!(client.add_attribute(&add).await.0, 200);
    let set = |customer: &'static str, tier: &'static str| {
        let client = &client;
        let key = key.clone();
        async move {
            let body = json!({"CustomerId": customer, "Attributes": [{"RealFieldName": "Tier", "Value": tier}]});
            let (status, answer) = client
                .json(&key, Method::PUT, UPSERT_CUSTOMER, Some(&body))
                .await;
            assert_eq!(
                (status, &answer["isSuccess"]),
                (200, &json!(true)),
                "{answer}"
            );
        }
    };
    let day1 = day(app, 0);
    set("C1", "gold").await;
    set("C2", "silver").await;
    app.clock.advance_seconds(86_400);
    let day2 = day(app, 0);
    set("C1", "platinum").await;
    set("C2", "silver").await;
    set("C3", "bronze").await;
    (client, key, day1, day2)
}

/// GetCustomerAttributeChangers with `query`.
async fn changers(client: &Optimove<'_>, key: &Auth, query: &str) -> (u16, Value) {
    let path = format!("/current/customers/GetCustomerAttributeChangers?{query}");
    client.json(key, Method::GET, &path, None).await
}

/// Each changer's id, initial and final value.
fn pairs(body: &Value) -> Vec<(String, Value, Value)> {
    body.as_array()
        .expect("a list")
        .iter()
        .map(|e| {
            (
                e["CustomerID"].as_str().unwrap_or_default().to_string(),
                e["InitialCustomerAttribute"].clone(),
                e["FinalCustomerAttribute"].clone(),
            )
        })
        .collect()
}

async fn a_new_customers_change_starts_from_null(app: TestApp) {
    let (client, key, day1, _) = a_tier_history(&app).await;
    let (status, body) = changers(
        &client,
        &key,
        &format!("StartDate={day1}&EndDate={day1}&ChangedCustomerAttribute=Tier"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        pairs(&body),
        [
            ("C1".into(), Value::Null, json!("gold")),
            ("C2".into(), Value::Null, json!("silver"))
        ]
    );
}

async fn a_period_of_whole_days_gives_each_changer_its_value_before_and_after_in_either_spelling(
    app: TestApp,
) {
    let (client, key, day1, day2) = a_tier_history(&app).await;
    let (_, body) = changers(
        &client,
        &key,
        &format!("startdate={day1}&enddate={day2}&changedcustomerattributes=tier"),
    )
    .await;
    assert_eq!(
        pairs(&body),
        [
            ("C1".into(), Value::Null, json!("platinum")),
            ("C2".into(), Value::Null, json!("silver")),
            ("C3".into(), Value::Null, json!("bronze")),
        ]
    );
    assert_eq!(
        body[0]["FinalCustomerAttributes"], "platinum",
        "both spellings"
    );
}

async fn a_rewrite_of_the_same_value_is_no_change(app: TestApp) {
    let (client, key, _, day2) = a_tier_history(&app).await;
    let (status, body) = changers(
        &client,
        &key,
        &format!("StartDate={day2}&EndDate={day2}&ChangedCustomerAttribute=Tier"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        pairs(&body),
        [
            ("C1".into(), json!("gold"), json!("platinum")),
            ("C3".into(), Value::Null, json!("bronze")),
        ],
        "C2 wrote silver again"
    );
}

async fn a_page_of_changers_carries_the_attributes_asked_for(app: TestApp) {
    let (client, key, _, day2) = a_tier_history(&app).await;
    let (_, body) = changers(&client, &key, &format!("StartDate={day2}&EndDate={day2}&ChangedCustomerAttribute=Tier&CustomerAttributes=Tier&$top=1")).await;
    assert_eq!(
        pairs(&body),
        [("C1".into(), json!("gold"), json!("platinum"))]
    );
    assert_eq!(body[0]["CustomerAttributes"], json!(["platinum"]));
}

async fn changers_of_no_known_attribute_or_of_a_bad_or_too_long_period_are_refused_naming_the_parameter(
    app: TestApp,
) {
    let (client, key, day1, day2) = a_tier_history(&app).await;
    for (query, field) in [
        (
            format!("StartDate={day2}&EndDate={day2}"),
            "ChangedCustomerAttribute",
        ),
        (
            format!("StartDate={day2}&EndDate={day2}&ChangedCustomerAttribute=Colour"),
            "ChangedCustomerAttribute",
        ),
        (
            "StartDate=yesterday&ChangedCustomerAttribute=Tier".to_string(),
            "StartDate",
        ),
        (
            format!("StartDate={day2}&EndDate={day1}&ChangedCustomerAttribute=Tier"),
            "EndDate",
        ),
        (
            "StartDate=2026-01-01&EndDate=2026-03-01&ChangedCustomerAttribute=Tier".to_string(),
            "EndDate",
        ),
    ] {
        let (status, body) = changers(&client, &key, &query).await;
        assert_eq!(
            (status, &body["errors"][0]["field"]),
            (400, &json!(field)),
            "{query}: {body}"
        );
    }
}

async fn an_erased_customers_attribute_history_is_erased_with_it(app: TestApp) {
    let (client, key, _, day2) = a_tier_history(&app).await;
    // An erased customer's history is erased with it.
    let tenant = custdata::domain::TenantId::parse(&client.bundle.tenant).expect("tenant");
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key("C3")],
    };
    let erased = customers::erase(
        app.server.app.customers(),
        &tenant,
        &named,
        custdata::clock::Clock::now_millis(&app.clock),
    )
    .await
    .expect("erased")
    .expect("it existed");
    let index = app
        .server
        .app
        .table
        .scan_prefix(&format!("T#{tenant}#ATTRCHG#"))
        .await
        .expect("scan");
    assert!(
        index
            .iter()
            .all(|entry| entry.sk != erased.tids[0].as_str()),
        "the day index no longer names the erased customer"
    );
    assert_eq!(index.len(), 3, "C1 on both days, C2 on the first");
    let (_, body) = changers(
        &client,
        &key,
        &format!("StartDate={day2}&EndDate={day2}&ChangedCustomerAttribute=Tier"),
    )
    .await;
    assert_eq!(
        pairs(&body),
        [("C1".into(), json!("gold"), json!("platinum"))]
    );
}

/// Contract decision 8: a client that logs in again while its token lives (nicolasramy
/// logs in every 20 minutes, and stores a 429's body as its token) gets the live token;
/// only failed logins are throttled, five per user per minute.
async fn a_correct_login_returns_the_live_token_and_only_failures_are_throttled(app: TestApp) {
    let client = Optimove::dev(&app);
    let optimove = client.bundle.optimove.clone();
    let path = "/current/general/GetLastDataUpdate";
    let first = client.token().await;
    let second = client.token().await;
    assert_eq!(first, second, "the live token, not a new one");
    for token in [&first, &second] {
        let auth = Auth::Token(token.clone());
        assert_eq!(
            client.call(&auth, Method::GET, path, None).await.status(),
            200
        );
    }
    // Once the token has expired, a login issues a new one.
    app.clock.advance_seconds(20 * 60 + 1);
    let third = client.token().await;
    assert_ne!(third, first);
    let auth = Auth::Token(third.clone());
    assert_eq!(
        client.call(&auth, Method::GET, path, None).await.status(),
        200
    );
    // Failures: five are 401, then the user's logins are 429 until the minute ends —
    // a correct one too, or guessing could go on; another user is not affected.
    let now = custdata::clock::Clock::now_millis(&app.clock);
    app.clock.advance_millis(60_000 - now.rem_euclid(60_000));
    let wrong = json!({"Username": optimove.username, "Password": "wrong"});
    for attempt in 1..=5 {
        let response = client.login_at("/current/general/login", &wrong).await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let refused = client.login_at("/current/general/login", &wrong).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(
        (&body["status"], &body["error"]),
        (&json!(429), &json!("Too Many Requests"))
    );
    let correct = json!({"Username": optimove.username, "Password": optimove.password});
    assert_eq!(
        client
            .login_at("/current/general/login", &correct)
            .await
            .status(),
        429
    );
    let other = Optimove::of(&app, "other").await;
    assert!(!other.token().await.is_empty());
    // The live token keeps working meanwhile, and the next minute logs in again.
    assert_eq!(
        client.call(&auth, Method::GET, path, None).await.status(),
        200
    );
    app.clock.advance_seconds(60);
    assert_eq!(client.token().await, third);
}

/// Every campaign-engine function answers as the vendor documents it: reads check their
/// parameters and give the vendor's empty response (custdata holds no campaigns: `[]`, or
/// an object whose documented fields are null), writes
/// and RegisterEventListener are refused as unsupported, a wrong method is 405.
async fn campaign_functions_check_their_parameters_and_answer_empty(app: TestApp) {
    let client = Optimove::dev(&app);
    let key = client.key();
    let get = |path: &'static str| {
        let client = &client;
        let key = key.clone();
        async move { client.json(&key, Method::GET, path, None).await }
    };
    for (path, empty) in [
        (
            "/current/customers/GetCustomersByAction?RecipientGroupID=1&ActionID=2&Date=2024-01-01",
            json!([]),
        ),
        // An object function answers its documented fields, null: clients read them.
        (
            "/current/actions/GetActionName?ActionID=12",
            json!({"ActionName": null}),
        ),
        (
            "/current/actions/GetCampaignDetails?CampaignID=7",
            json!({"TargetGroupID": null, "CampaignType": null, "Duration": null, "LeadTime": null, "Notes": null, "IsMultiChannel": null, "IsRecurrence": null, "Status": null, "Error": null}),
        ),
        (
            "/current/groups/GetTargetGroupID?TargetGroupName=Winback",
            json!({"TargetGroupID": null}),
        ),
        ("/current/actions/GetAllActions", json!([])),
        (
            "/current/actions/GetActionsByTargetGroup?TargetGroupID=3&Date=2024-01-01",
            json!([]),
        ),
        (
            "/current/groups/GetTargetGroupsByDate?date=2024-01-01",
            json!([]),
        ),
        ("/current/integrations/GetPromotions", json!([])),
        ("/current/model/GetLifecycleStageList", json!([])),
        ("/current/model/GetMicrosegmentList", json!([])),
        ("/current/segments/GetValueSegments", json!([])),
        (
            "/current/segments/GetValueSegmentName?ValueSegmentID=1",
            json!({"ValueSegmentName": null}),
        ),
        (
            "/current/customers/GetCurrentlyTargetedCustomers?$top=100",
            json!([]),
        ),
        (
            "/current/customers/GetCustomerActionsByTargetGroup?TargetGroupID=3&Date=2024-01-01&IncludeControlGroup=True&ChannelID=4",
            json!([]),
        ),
        (
            "/current/customers/GetCustomerFutureValues?LifecycleStageID=1,2,3",
            json!([]),
        ),
        (
            "/current/customers/GetCustomerLastActionExecuted?CustomerID=C-1",
            json!({"ActionID": null, "Date": null, "Duration": null, "TargetGroupID": null}),
        ),
        (
            "/current/customers/GetTargetGroupChangers?StartDate=2024-01-01&EndDate=2024-01-02",
            json!([]),
        ),
    ] {
        let (status, body) = get(path).await;
        assert_eq!((status, &body), (200, &empty), "{path}");
    }
    for (path, field) in [
        (
            "/current/customers/GetCustomersByAction?RecipientGroupID=1&Date=2024-01-01",
            "ActionID",
        ),
        (
            "/current/customers/GetCustomersByAction?RecipientGroupID=one&ActionID=2&Date=2024-01-01",
            "RecipientGroupID",
        ),
        ("/current/actions/GetPromoCodes?Date=01/02/2024", "Date"),
        ("/current/groups/GetTargetGroupName", "TargetGroupID"),
        (
            "/current/customers/GetCustomerActionsByTargetGroup?TargetGroupID=3&Date=2024-01-01&IncludeControlGroup=maybe",
            "IncludeControlGroup",
        ),
        (
            "/current/customers/GetTargetGroupChangers?StartDate=2024-01-02&EndDate=2024-01-01",
            "EndDate",
        ),
        (
            "/current/customers/GetCustomerFutureValues",
            "LifecycleStageID",
        ),
        (
            "/current/customers/GetCustomersByAction?RecipientGroupID=1&ActionID=2&Date=2024-01-01&CustomerAttributes=Nope",
            "CustomerAttributes",
        ),
        (
            "/current/customers/GetCurrentlyTargetedCustomers?$top=0",
            "$top",
        ),
    ] {
        let (status, body) = get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{path}: {body}");
    }
    for function in [
        "RegisterEventListener",
        "UnregisterEventListener",
        "UpdateCampaignMetrics",
    ] {
        let path = format!("/current/general/{function}");
        let (status, body) = client
            .json(&key, Method::POST, &path, Some(&json!({"EventTypeID": 1})))
            .await;
        assert_eq!(
            (status, &body["errors"][0]["field"]),
            (400, &json!(function)),
            "{body}"
        );
    }
    let wrong = client
        .call(
            &key,
            Method::GET,
            "/current/general/RegisterEventListener",
            None,
        )
        .await;
    assert_eq!(wrong.status(), 405);
    let wrong = client
        .call(
            &key,
            Method::POST,
            "/current/model/GetLifecycleStageList",
            Some(&json!({})),
        )
        .await;
    assert_eq!(wrong.status(), 405);
}

on_both_adapters!(
    login_answers_a_json_string_token_under_any_spelling_and_again_within_the_second,
    a_login_with_a_wrong_password_is_401_and_one_without_a_username_400,
    a_token_used_every_19_minutes_lives_on_and_20_silent_minutes_expire_it_with_the_exact_403,
    an_unknown_token_an_unknown_key_or_no_credential_is_401_unauthorized,
    the_api_key_needs_no_login_and_the_last_data_update_is_yesterday,
    a_correct_login_returns_the_live_token_and_only_failures_are_throttled,
    the_51st_call_within_ten_seconds_is_refused_429_with_retry_after_10,
    a_login_user_of_the_tenant_has_its_own_count_of_calls,
    a_refused_client_is_answered_again_in_the_next_window,
    a_tenant_set_to_2000_calls_an_hour_is_answered_past_50_calls_in_ten_seconds,
    function_and_category_names_are_answered_in_any_case,
    a_call_accepting_xml_is_answered_in_xml,
    an_empty_list_is_answered_as_an_empty_json_array,
    an_unknown_function_is_not_found,
    add_promotions_is_refused_as_a_campaign_engine_write_pointing_to_update_customer_attributes,
    a_get_function_called_with_post_is_405_allowing_get,
    an_added_attribute_answers_its_name_and_the_list_holds_the_attributes_by_name,
    an_attribute_taken_of_an_unknown_type_with_a_bad_default_or_a_bad_name_is_refused_with_error_ids_2_to_5,
    an_attribute_update_writes_what_is_valid_and_names_each_customer_and_field_it_did_not_write,
    an_attribute_update_without_its_list_is_refused_naming_it,
    a_customer_reads_its_attributes_in_the_order_asked_with_the_default_where_it_has_none,
    a_read_of_an_unknown_attribute_with_a_bad_delimiter_or_of_eleven_attributes_is_refused_naming_it,
    a_read_of_an_unknown_customer_is_not_found,
    an_erased_customer_is_brought_back_by_neither_write,
    a_new_customers_change_starts_from_null,
    a_period_of_whole_days_gives_each_changer_its_value_before_and_after_in_either_spelling,
    a_rewrite_of_the_same_value_is_no_change,
    a_page_of_changers_carries_the_attributes_asked_for,
    changers_of_no_known_attribute_or_of_a_bad_or_too_long_period_are_refused_naming_the_parameter,
    an_erased_customers_attribute_history_is_erased_with_it,
    pages_of_the_listing_follow_creation_order_and_the_last_one_is_partial,
    a_skip_at_or_past_the_end_of_the_listing_answers_an_empty_list,
    a_top_over_200000_or_a_count_that_is_not_positive_is_refused_naming_its_parameter,
    an_erased_customer_leaves_the_listing_and_the_positions_after_it_move_up,
    a_listing_page_carries_the_attributes_asked_for_and_answers_xml_when_asked,
    another_brand_by_key_or_token_sees_none_of_a_brands_attributes_or_customers,
    another_brand_by_key_or_token_updates_none_of_a_brands_customers,
    another_brands_catalog_is_its_own_and_its_listing_and_changers_see_none_of_a_brands_customers,
    campaign_functions_check_their_parameters_and_answer_empty,
);

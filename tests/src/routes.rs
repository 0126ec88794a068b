//! One well-formed call per route of template.yaml on a tenant's objects, the credentials of
//! every vendor (and malformed ones), and the objects themselves: what the tenant matrix and
//! the HTTP fuzzer drive every route with.

use std::collections::HashMap;
use std::sync::Arc;

use custdata::app::App;
use custdata::clock::Clock;
use custdata::domain::TenantId;
use custdata::optimove::SUPPORTED;
use custdata::template::{Route, Template};
use custdata::tenancy::CredentialBundle;
use custdata_local::{Resolution, Router};
use jsonwebtoken::Algorithm;
use lambda_http::RequestExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::{Adapter, TestApp, aixon as aixon_http, basic, monetate, mxo_token_for};

/// Every value of A's that an answer could leak carries this mark; no request sends it.
pub const MARK: &str = "AMARK";
/// A's customer, known to every surface by this customer key.
pub const CUSTOMER: &str = "crm-a1";
pub const JSON: &str = "application/json";
pub const CSV: &str = "text/csv";

/// The access export: the one route that takes every vendor's credential of a tenant.
pub const EXPORT_PATH: &str = "/custdata/v1/customers/export";

/// Whether a route takes any vendor's credential, not only its binary's vendor's.
pub fn takes_every_vendor(route: &Route) -> bool {
    route.path == EXPORT_PATH
}

/// Whether a call erases a customer (so a second erasure of the same customer finds nothing).
pub fn erases_a_customer(call: &Call) -> bool {
    call.method == Method::DELETE
        && (call.path.contains("/customers/")
            || call.path.starts_with("/one/oauth2/rt/api/3.1.0/customer/"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Mxo,
    Monetate,
    Aixon,
    Optimove,
    /// No credential at all: the health route.
    Public,
}

/// Whose credentials a route's family takes, from its name.
pub fn vendor_of(family: &str) -> Vendor {
    match family.split('-').next() {
        Some("mxo" | "datastore" | "customer") => Vendor::Mxo,
        Some("monetate") => Vendor::Monetate,
        Some("aixon") => Vendor::Aixon,
        Some("optimove") => Vendor::Optimove,
        Some("health") => Vendor::Public,
        _ => panic!("which vendor's credentials does {family} take? Teach vendor_of"),
    }
}

/// One way of presenting (or not) a credential.
#[derive(Clone, Debug)]
pub enum Credential {
    MxoClient {
        id: String,
        secret: String,
    },
    MxoToken(String),
    /// Signed at send time, so the assertion is always fresh.
    MonetateAssertion {
        username: String,
        private_key_pem: String,
    },
    MonetateToken(String),
    AixonKey(String),
    /// Optimove Login's JSON body.
    OptimoveLogin {
        username: String,
        password: String,
    },
    OptimoveToken(String),
    OptimoveKey(String),
    /// A raw header, for malformed values.
    Header(&'static str, &'static str),
    Nothing,
}

impl Credential {
    pub fn vendor(&self) -> Option<Vendor> {
        match self {
            Credential::MxoClient { .. } | Credential::MxoToken(_) => Some(Vendor::Mxo),
            Credential::MonetateAssertion { .. } | Credential::MonetateToken(_) => {
                Some(Vendor::Monetate)
            }
            Credential::AixonKey(_) => Some(Vendor::Aixon),
            Credential::OptimoveLogin { .. }
            | Credential::OptimoveToken(_)
            | Credential::OptimoveKey(_) => Some(Vendor::Optimove),
            Credential::Header(..) | Credential::Nothing => None,
        }
    }
}

/// Malformed credentials in every vendor's header.
pub const MALFORMED: [(&str, &str); 7] = [
    ("authorization", "Basic !!not-base64!!"),
    ("authorization", "Bearer"),
    ("authorization", "Bearer a.b.c"),
    ("authorization", "Token ÿ\u{fe}"),
    ("authorization", "JWT eyJhbGciOiJub25lIn0.e30."),
    ("x-api-key", " "),
    ("authorization-token", "' OR 1=1 --"),
];

/// A tenant signed in on every surface.
pub struct Tenant {
    pub bundle: CredentialBundle,
    pub mxo_token: String,
    pub monetate_token: String,
    pub optimove_token: String,
}

impl Tenant {
    pub async fn sign_in(app: &TestApp, bundle: CredentialBundle) -> Tenant {
        let mxo_token = mxo_token_for(app, &bundle.mxo.client_id, &bundle.mxo.client_secret).await;
        let assertion = monetate::assertion(
            &bundle.monetate.private_key_pem,
            &bundle.monetate.api_username,
            monetate::now(app),
            Algorithm::RS256,
        );
        let (status, body) = monetate::refresh(app, &assertion, "?ttl=43200").await;
        assert_eq!(status, 200, "{body}");
        let monetate_token = body["data"]["token"].as_str().expect("token").to_string();
        app.clock.advance_millis(1_000);
        let login = app
            .client
            .post(app.url("/current/general/login"))
            .json(&json!({"Username": bundle.optimove.username, "Password": bundle.optimove.password}))
            .send()
            .await
            .expect("login");
        assert_eq!(login.status(), 200);
        let optimove_token: Value = login.json().await.expect("a JSON string");
        Tenant {
            mxo_token,
            monetate_token,
            optimove_token: optimove_token.as_str().expect("a token").to_string(),
            bundle,
        }
    }

    pub fn tenant(&self) -> &str {
        &self.bundle.tenant
    }

    /// Every credential the tenant holds, one per kind.
    pub fn credentials(&self) -> Vec<Credential> {
        let b = &self.bundle;
        vec![
            Credential::MxoClient {
                id: b.mxo.client_id.clone(),
                secret: b.mxo.client_secret.clone(),
            },
            Credential::MxoToken(self.mxo_token.clone()),
            Credential::MonetateAssertion {
                username: b.monetate.api_username.clone(),
                private_key_pem: b.monetate.private_key_pem.clone(),
            },
            Credential::MonetateToken(self.monetate_token.clone()),
            Credential::AixonKey(b.aixon.api_key.clone()),
            Credential::OptimoveLogin {
                username: b.optimove.username.clone(),
                password: b.optimove.password.clone(),
            },
            Credential::OptimoveToken(self.optimove_token.clone()),
            Credential::OptimoveKey(b.optimove.api_key.clone()),
        ]
    }

    /// The credential a client of `vendor` uses on a call (the exchange or the API).
    pub fn own(&self, vendor: Vendor, exchange: bool) -> Credential {
        if vendor == Vendor::Public {
            return Credential::Nothing;
        }
        self.credentials()
            .into_iter()
            .filter(|credential| credential.vendor() == Some(vendor))
            .find(|credential| {
                let exchanging = matches!(
                    credential,
                    Credential::MxoClient { .. }
                        | Credential::MonetateAssertion { .. }
                        | Credential::OptimoveLogin { .. }
                );
                exchanging == exchange
            })
            .expect("every vendor has an exchange and an API credential")
    }
}

/// One concrete HTTP call made from a route.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub content_type: Option<&'static str>,
    pub body: Option<String>,
    /// Whether the path names one of A's objects (then even B's own kind must be refused).
    pub names_a: bool,
    /// A token exchange: the credential travels in the body (Optimove) or is the one the
    /// exchange takes (MXO Basic, Monetate assertion).
    pub exchange: bool,
}

/// A's objects, by the path parameter names template.yaml uses.
pub struct Objects {
    pub by_parameter: HashMap<&'static str, String>,
    pub tid: String,
}

impl Objects {
    pub fn get(&self, parameter: &str) -> &str {
        self.by_parameter.get(parameter).unwrap_or_else(|| {
            panic!(
                "no object of tenant A for the path parameter {{{parameter}}}: add one to furnish()"
            )
        })
    }
}

fn fill(path: &str, objects: &Objects, overrides: &[(&str, &str)]) -> (String, bool) {
    let mut names_a = false;
    let filled = path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(parameter) => {
                    names_a = true;
                    overrides
                        .iter()
                        .find(|(name, _)| *name == parameter)
                        .map(|(_, value)| value.to_string())
                        .unwrap_or_else(|| objects.get(parameter).to_string())
                }
                None => segment.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    (filled, names_a)
}

pub fn today(app: &TestApp) -> String {
    chrono::DateTime::from_timestamp_millis(app.clock.now_millis())
        .expect("a date")
        .format("%Y-%m-%d")
        .to_string()
}

/// The calls that exercise one route on A's objects: a well-formed request per route (and
/// per supported function behind Optimove's `ANY` route). Routes this table does not know
/// get a bodiless call, so they are still covered.
pub fn calls_for(route: &Route, objects: &Objects, today: &str) -> Vec<Call> {
    let method = Method::from_bytes(route.method.as_bytes()).expect("a method");
    let tid = objects.tid.as_str();
    let json_body = |value: Value| (Some(JSON), Some(value.to_string()));
    let mut overrides: Vec<(&str, &str)> = Vec::new();
    let mut query = String::new();
    let mut headers = Vec::new();
    let (content_type, body): (Option<&'static str>, Option<String>) = match (
        route.method.as_str(),
        route.path.as_str(),
    ) {
        ("POST", "/one/oauth2token") => (
            Some("application/x-www-form-urlencoded"),
            Some("grant_type=client_credentials".into()),
        ),
        ("POST", "/datastores/1.0.0/{workspaceId}") => json_body(
            json!({"name": "Other", "apiName": "other", "primaryKey": "k", "definitions": [{"name": "k", "type": "TEXT"}]}),
        ),
        ("POST", "/datastores/1.0.0/{workspaceId}/{apiName}/{target}") => json_body(
            json!([{"customerID": "C-A", "productID": "P-stolen", "creditLimit": 1, "expires": 1507676400000_i64}]),
        ),
        ("GET" | "DELETE", "/datastores/1.0.0/{workspaceId}/{apiName}/{target}") => {
            query = "?pk=C-A".into();
            (None, None)
        }
        ("POST", "/custdata/v1/mxo/{sk}/{apiName}/live/lookup") => {
            overrides.push(("sk", objects.get("workspaceId")));
            json_body(json!({"keys": [{"pk": "C-A"}]}))
        }
        ("GET", "/datastores/1.0.0/{workspaceId}/{apiName}/{target}/reference") => {
            overrides.push(("target", "staging"));
            (None, None)
        }
        ("POST", "/one/oauth2/rt/api/3.1.0/customer/{sk}/activity") => json_body(
            json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": CUSTOMER}]},
                       "activities": [{"propositionCode": "atm", "dynamicPropositionCode": "stolen", "activityTypeCode": "withdrawal"}]}),
        ),
        ("POST", "/one/oauth2/rt/api/3.1.0/customer/{sk}/structure") => json_body(
            json!({"structureApiName": "mine", "customerContext": {"baseTouchpointUri": "u", "tid": tid}}),
        ),
        ("PUT", "/custdata/v1/mxo/{sk}/structures/{structureApiName}") => {
            json_body(json!({"attributes": [{"name": "secret", "value": {"attribute": "Secret"}}]}))
        }
        ("DELETE", "/one/oauth2/rt/api/3.1.0/customer/{sk}") => json_body(json!({"tid": tid})),
        ("PUT", "/api_upload/v1/csv-upload") => {
            headers.push(("x-node-description", "stolen".to_string()));
            (
                Some(CSV),
                Some("customuid,txt_region\ncrm-b1,stolen\n".into()),
            )
        }
        ("PATCH" | "POST" | "PUT", "/api_upload/v1/csv-upload/{resourceId}") => (
            Some(CSV),
            Some("customuid,txt_region\ncrm-b1,stolen\n".into()),
        ),
        ("POST", "/custdata/v1/aixon/csv-upload/{resourceId}/uploads") => {
            json_body(json!({"mode": "PATCH", "contentType": "text/csv"}))
        }
        ("GET", "/api/auth/v0/refresh/") => {
            query = "?ttl=600".into();
            (None, None)
        }
        ("POST", "/api/data/v1/{retailer}/production/schema/") => json_body(
            json!({"name": "stolen", "type": "attribute", "fields": {"i": {"data_type": "STRING", "identifier": true}}}),
        ),
        ("PATCH", "/api/data/v1/{retailer}/production/schema/{schemaName}/") => {
            json_body(json!({"fields": {"extra": {"data_type": "STRING"}}}))
        }
        ("POST", "/api/data/v1/{retailer}/production/data/{schemaName}/") => {
            json_body(json!({"schema_rows": [{"customer_id": CUSTOMER, "tier": "stolen"}]}))
        }
        ("GET", "/api/data/v1/{retailer}/production/data/{schemaName}/") => {
            query = format!("?id={CUSTOMER}");
            (None, None)
        }
        ("GET", "/api/data/v1/{retailer}/production/data/") => {
            // The seed's spot-check form names the schema where the retailer goes.
            overrides.push(("retailer", "crm"));
            query = format!("?id={CUSTOMER}");
            (None, None)
        }
        ("POST", "/api/data/v1/{retailer}/production/defaultcatalog/") => {
            json_body(json!({"account": "1", "schema": "1"}))
        }
        ("POST", "/api/data/v1/{retailer}/production/bulk-defaultcatalog/") => {
            json_body(json!({"defaultaccountcatalogs": [{"account": "2", "schema": "1"}]}))
        }
        ("POST", "/custdata/v1/monetate/{retailer}/api-users") => json_body(json!({})),
        ("POST", "/custdata/v1/monetate/{retailer}/api-users/{username}/keys") => {
            let pair = custdata::monetate::users::generate_key_pair().expect("a key pair");
            json_body(json!({"public_key_pem": pair.public_key_pem}))
        }
        ("POST", "/custdata/v1/monetate/{retailer}/data/{schemaName}/lookup") => {
            json_body(json!({"ids": [CUSTOMER]}))
        }
        ("POST", "/current/general/login" | "/current/General/Login") => (Some(JSON), None),
        ("ANY", "/current/{category}/{function}") => {
            return optimove_function_calls(today);
        }
        ("GET", EXPORT_PATH) => {
            query = format!("?apiName=customerKey&value={CUSTOMER}");
            (None, None)
        }
        (
            "GET",
            "/custdata/v1/optimove/customers/{customerId}" | "/custdata/v1/optimove/customers",
        ) => {
            query = "?CustomerAttributes=Secret".into();
            (None, None)
        }
        _ => (None, None),
    };
    let (path, names_a) = fill(&route.path, objects, &overrides);
    let exchange = matches!(
        route.path.as_str(),
        "/one/oauth2token"
            | "/api/auth/v0/refresh/"
            | "/current/general/login"
            | "/current/General/Login"
    );
    vec![Call {
        method,
        path: format!("{path}{query}"),
        headers,
        content_type,
        body,
        names_a,
        exchange,
    }]
}

/// One call per supported Optimove function, under the route `/current/{category}/{function}`.
fn optimove_function_calls(today: &str) -> Vec<Call> {
    SUPPORTED
        .iter()
        .filter(|(name, _)| !name.contains(' '))
        .map(|(name, method)| {
            let (query, body) = match *name {
                "GetCustomerAttributeChangers" => (
                    format!("?StartDate={today}&EndDate={today}&ChangedCustomerAttribute=Secret"),
                    None,
                ),
                "AddCustomerAttribute" => (String::new(), Some(json!({"Name": "Stolen", "Type": "INT"}))),
                "UpdateCustomerAttributes" => (
                    String::new(),
                    Some(json!({"CustomerNewAttributesValuesList": [{"CustomerID": CUSTOMER, "Attributes": [{"RealFieldName": "Secret", "Value": "stolen"}]}]})),
                ),
                "UpsertCustomer" => (
                    String::new(),
                    Some(json!({"CustomerId": CUSTOMER, "Attributes": [{"RealFieldName": "Secret", "Value": "stolen"}]})),
                ),
                _ => (String::new(), None),
            };
            Call {
                method: Method::from_bytes(method.as_bytes()).expect("a method"),
                path: format!("/current/customers/{name}{query}"),
                headers: Vec::new(),
                content_type: body.as_ref().map(|_| JSON),
                body: body.map(|b| b.to_string()),
                names_a: false,
                exchange: *name == "Login",
            }
        })
        .collect()
}

/// Sends a call with a credential; the status and the body as text.
pub async fn send(app: &TestApp, call: &Call, credential: &Credential) -> (u16, String) {
    try_send(app, call, credential)
        .await
        .expect("the server answers")
}

/// [`send`], handing back what went wrong on the way (an unsendable header, a dropped
/// connection) instead of panicking.
pub async fn try_send(
    app: &TestApp,
    call: &Call,
    credential: &Credential,
) -> Result<(u16, String), reqwest::Error> {
    let (headers, body) = presented(call, credential, monetate::now(app));
    let mut request = app.client.request(call.method.clone(), app.url(&call.path));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The headers and body a call carries with a credential; `now` is the epoch second an
/// assertion is signed at.
fn presented(
    call: &Call,
    credential: &Credential,
    now: f64,
) -> (Vec<(String, String)>, Option<String>) {
    let mut headers: Vec<(String, String)> = call
        .headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.clone()))
        .collect();
    let mut body = call.body.clone();
    let mut content_type = call.content_type;
    let mut header = |name: &str, value: String| headers.push((name.to_string(), value));
    match credential {
        Credential::MxoClient { id, secret } => header("authorization", basic(id, secret)),
        Credential::MxoToken(token) => header("authorization", format!("Bearer {token}")),
        Credential::MonetateAssertion {
            username,
            private_key_pem,
        } => {
            let signed = monetate::assertion(private_key_pem, username, now, Algorithm::RS256);
            header("authorization", format!("JWT {signed}"))
        }
        Credential::MonetateToken(token) => header("authorization", format!("Token {token}")),
        Credential::AixonKey(key) => header("x-api-key", key.clone()),
        Credential::OptimoveLogin { username, password } => {
            if call.exchange {
                body = Some(json!({"Username": username, "Password": password}).to_string());
                content_type = Some(JSON);
            }
        }
        Credential::OptimoveToken(token) => header("Authorization-Token", token.clone()),
        Credential::OptimoveKey(key) => header("X-API-KEY", key.clone()),
        Credential::Header(name, value) => header(name, value.to_string()),
        Credential::Nothing => {}
    }
    if let Some(content_type) = content_type {
        header("content-type", content_type.to_string());
    }
    (headers, body)
}

/// Hands a call straight to the handler its route names, on `app` — as a Lambda would,
/// without the local server — so a test can give it an app with an injected fault.
pub async fn dispatch_call(app: Arc<App>, call: &Call, credential: &Credential) -> (u16, String) {
    static ROUTER: std::sync::OnceLock<Router> = std::sync::OnceLock::new();
    let router = ROUTER.get_or_init(|| {
        Router::from_template(&Template::bundled().expect("template.yaml parses"))
            .expect("every route has a handler")
    });
    let (path, query) = call.path.split_once('?').unwrap_or((&call.path, ""));
    let Resolution::Found {
        family,
        route_key,
        path_parameters,
    } = router.resolve(call.method.as_str(), path)
    else {
        panic!("{} {path} is not a route", call.method);
    };
    let now = app.clock.now_millis() as f64 / 1000.0;
    let (headers, body) = presented(call, credential, now);
    let mut request = http::Request::builder()
        .method(call.method.clone())
        .uri(format!("https://api.example{}", call.path));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let request = request
        .body(body.map_or(lambda_http::Body::Empty, lambda_http::Body::from))
        .expect("a request");
    let query: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let request = custdata::http::with_route_key(request, route_key)
        .with_path_parameters(path_parameters)
        .with_query_string_parameters(query);
    let response = custdata::http::dispatch(app, family, request).await;
    let status = response.status().as_u16();
    let text = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        lambda_http::Body::Binary(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        lambda_http::Body::Empty => String::new(),
        _ => String::new(),
    };
    (status, text)
}

/// Creates A's objects on every surface, each holding a value marked with [`MARK`].
pub async fn furnish(app: &TestApp, a: &Tenant) -> Objects {
    let mxo = &a.bundle.mxo;
    let ok = |what: &str, (status, body): (u16, String)| {
        assert!((200..300).contains(&status), "{what}: {status} {body}");
        body
    };
    let call = |method: Method,
                path: String,
                content_type: Option<&'static str>,
                body: Option<Value>| Call {
        method,
        path,
        headers: Vec::new(),
        content_type,
        body: body.map(|b| b.to_string()),
        names_a: true,
        exchange: false,
    };
    let as_mxo = a.own(Vendor::Mxo, false);
    let datastore = format!("/datastores/1.0.0/{}", mxo.workspace_id);
    ok("datastore", send(app, &call(Method::POST, datastore.clone(), Some(JSON), Some(json!({"name": "ProductTerms", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID", "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "creditLimit", "type": "NUMERIC"}, {"name": "expires", "type": "DATETIME"}]}))), &as_mxo).await);
    let rows = json!([{"customerID": "C-A", "productID": format!("P-{MARK}"), "creditLimit": 11000, "expires": 1507676400000_i64}]);
    for target in ["live", "staging"] {
        ok(
            "rows",
            send(
                app,
                &call(
                    Method::POST,
                    format!("{datastore}/terms/{target}"),
                    Some(JSON),
                    Some(rows.clone()),
                ),
                &as_mxo,
            )
            .await,
        );
    }
    let reference = |body: String| -> String {
        let body: Value = serde_json::from_str(&body).expect("JSON");
        body["referenceId"]
            .as_str()
            .expect("referenceId")
            .to_string()
    };
    let live = reference(ok(
        "live reference",
        send(
            app,
            &call(
                Method::GET,
                format!("{datastore}/terms/live/reference"),
                None,
                None,
            ),
            &as_mxo,
        )
        .await,
    ));
    let staged = reference(ok(
        "staging reference",
        send(
            app,
            &call(
                Method::GET,
                format!("{datastore}/terms/staging/reference"),
                None,
                None,
            ),
            &as_mxo,
        )
        .await,
    ));

    let optimove = a.own(Vendor::Optimove, false);
    ok(
        "attribute",
        send(
            app,
            &call(
                Method::POST,
                "/current/customers/AddCustomerAttribute".into(),
                Some(JSON),
                Some(json!({"Name": "Secret", "Type": "VARCHAR(40)"})),
            ),
            &optimove,
        )
        .await,
    );
    let activity = ok("activity", send(app, &call(Method::POST, format!("/one/oauth2/rt/api/3.1.0/customer/{}/activity", mxo.site_key), Some(JSON), Some(json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": CUSTOMER}]}, "activities": [{"propositionCode": "atm", "dynamicPropositionCode": format!("atm-{MARK}"), "activityTypeCode": "withdrawal"}]}))), &as_mxo).await);
    let tid = serde_json::from_str::<Value>(&activity).expect("JSON")["tid"]
        .as_str()
        .expect("tid")
        .to_string();
    ok("upsert", send(app, &call(Method::PUT, "/current/customers/UpsertCustomer".into(), Some(JSON), Some(json!({"CustomerId": CUSTOMER, "Attributes": [{"RealFieldName": "Secret", "Value": format!("{MARK}-secret")}]}))), &optimove).await);
    ok(
        "structure",
        send(
            app,
            &call(
                Method::PUT,
                format!("/custdata/v1/mxo/{}/structures/mine", mxo.site_key),
                Some(JSON),
                Some(json!({"attributes": [{"name": "secret", "value": {"attribute": "Secret"}}]})),
            ),
            &as_mxo,
        )
        .await,
    );

    let key = a.bundle.aixon.api_key.clone();
    let (cell, update) = aixon_http::create_cell(
        &app.client,
        &app.server.base_url,
        &key,
        "mine",
        format!("customuid,txt_region\n{CUSTOMER},{MARK}-north\n"),
    )
    .await;
    import(app, a.tenant(), &cell, &update).await;

    let as_monetate = a.own(Vendor::Monetate, false);
    let retailer = a.bundle.monetate.retailer.clone();
    let data = format!("/api/data/v1/{retailer}/production");
    let schema = ok("schema", send(app, &call(Method::POST, format!("{data}/schema/"), Some(JSON), Some(json!({"name": "crm", "type": "attribute", "fields": {"customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true}, "tier": {"data_type": "STRING"}}}))), &as_monetate).await);
    ok("rows", send(app, &call(Method::POST, format!("{data}/data/crm/"), Some(JSON), Some(json!({"schema_rows": [{"customer_id": CUSTOMER, "tier": format!("{MARK}-gold")}]}))), &as_monetate).await);
    let schema: Value = serde_json::from_str(&schema).expect("JSON");
    let schema_id = schema["data"]["id"].to_string();
    ok(
        "catalog",
        send(
            app,
            &call(
                Method::POST,
                format!("{data}/defaultcatalog/"),
                Some(JSON),
                Some(json!({"account": MARK, "schema": schema_id})),
            ),
            &as_monetate,
        )
        .await,
    );
    let users = ok(
        "users",
        send(
            app,
            &call(
                Method::GET,
                format!("/custdata/v1/monetate/{retailer}/api-users"),
                None,
                None,
            ),
            &as_monetate,
        )
        .await,
    );
    let users: Value = serde_json::from_str(&users).expect("JSON");
    let key_id = users["data"][0]["keys"][0]["key_id"]
        .as_str()
        .expect("a key id")
        .to_string();

    let by_parameter: HashMap<&'static str, String> = [
        ("workspaceId", mxo.workspace_id.clone()),
        ("apiName", "terms".to_string()),
        ("target", "live".to_string()),
        ("stagingReference", staged),
        ("tableReference", live),
        ("sk", mxo.site_key.clone()),
        ("tid", tid.clone()),
        ("structureApiName", "mine".to_string()),
        ("resourceId", cell),
        ("updateId", update),
        ("customuid", CUSTOMER.to_string()),
        ("retailer", retailer),
        ("schemaName", "crm".to_string()),
        ("schemaType", "attribute".to_string()),
        ("username", a.bundle.monetate.api_username.clone()),
        ("keyId", key_id),
        ("customerId", CUSTOMER.to_string()),
    ]
    .into_iter()
    .collect();
    Objects { by_parameter, tid }
}

/// Runs A's queued AIXON import to the end, as the import function would.
pub async fn import(app: &TestApp, tenant: &str, cell: &str, update: &str) {
    let tenant = TenantId::parse(tenant).expect("tenant");
    match app.adapter {
        Adapter::Aws => {
            let key = custdata::storage::keys::aixon_blob(&tenant, cell, update);
            custdata::aixon::import::handle_event(
                app.server.app.clone(),
                aixon_http::s3_event("custdata-test", &key),
            )
            .await
            .expect("the import runs");
        }
        Adapter::Embedded => {
            let deadline = std::time::Instant::now() + app.server.app.settings.import_budget;
            custdata::aixon::import::import_cell(&app.server.app, &tenant, cell, deadline)
                .await
                .expect("the import runs");
        }
    }
}

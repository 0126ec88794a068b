//! Optimove (contracts/optimove.md): Login or API-key authentication, a per-client rate
//! limit, and the functions custdata can answer from the shared customer store. Functions
//! are found by name, without regard to case, under any category (contract decision 3).
//!
//! This module holds the families, the rate limit and the dispatch of a call by function
//! name; `customer_functions` holds the functions answered from the customer store, and
//! [`campaign`] those over the campaign engine custdata does not have.

pub mod attributes;
pub mod auth;
pub mod campaign;
mod customer_functions;
pub mod xml;

pub use customer_functions::{DEFAULT_TOP, MAX_CHANGER_DAYS, MAX_TOP};

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use self::auth::{Caller, Refused};
use self::customer_functions::{
    add_attribute, attribute_changers, attribute_list, change_of, customer_attributes,
    last_data_update, list_customers, paging, requested_attributes, write,
};
use crate::app::App;
use crate::domain::TenantId;
use crate::http::{
    ApiError, CustdataCode, Family, Request, Response, Vendor, header, json_body, json_response,
    path_parameter, query_parameters, route_key, route_not_served,
};
use crate::idempotency;
use crate::ratelimit::{self, WindowLimit};
use crate::storage::{Condition, Item, keys};

/// Request bodies: UpdateCustomerAttributes takes 1,000 customers of 10 attributes.
pub const MAX_BODY_BYTES: usize = 5_000_000;
/// The rate limit when a tenant has not set its own (contract decision 1): 50 calls per 10
/// seconds per client. The seed's 2,000 per hour is the other common setting.
pub const DEFAULT_RATE_LIMIT: WindowLimit = WindowLimit {
    calls: 50,
    window_seconds: 10,
};
/// `CustomerAttributes`: names per call.
pub const MAX_CUSTOMER_ATTRIBUTES: usize = 10;

// Login as the vendor documents it and as its clients spell it.
const LOGIN: &str = "POST /current/general/login";
const LOGIN_CAPITALISED: &str = "POST /current/General/Login";

/// `POST /current/general/login` (binary `optimove-login`).
pub static LOGIN_FAMILY: Family = Family {
    name: "optimove-login",
    vendor: Vendor::Optimove,
    routes: &[LOGIN, LOGIN_CAPITALISED],
    max_body_bytes: 16 * 1024,
    handler: |app, request| {
        Box::pin(async move {
            match route_key(&request) {
                Some(LOGIN | LOGIN_CAPITALISED) => auth::login(&app, &request).await,
                _ => Err(route_not_served(&request)),
            }
        })
    },
};

// Every function, by name under any category, and the `/custdata/v1/optimove` extensions,
// as template.yaml writes them: the route keys `FUNCTIONS_FAMILY` dispatches on.
const FUNCTION: &str = "ANY /current/{category}/{function}";
const CUSTOMER_ATTRIBUTES: &str = "GET /custdata/v1/optimove/customers/{customerId}";
const ERASE_CUSTOMER: &str = "DELETE /custdata/v1/optimove/customers/{customerId}";
const LIST_CUSTOMERS: &str = "GET /custdata/v1/optimove/customers";

/// Every other function and the `/custdata/v1/optimove` extensions (binary
/// `optimove-functions`).
pub static FUNCTIONS_FAMILY: Family = Family {
    name: "optimove-functions",
    vendor: Vendor::Optimove,
    routes: &[
        FUNCTION,
        CUSTOMER_ATTRIBUTES,
        ERASE_CUSTOMER,
        LIST_CUSTOMERS,
    ],
    max_body_bytes: MAX_BODY_BYTES,
    handler: |app, request| Box::pin(functions(app, request)),
};

/// The functions custdata answers, with their HTTP method.
pub const SUPPORTED: [(&str, &str); 8] = [
    ("Login", "POST"),
    ("GetLastDataUpdate", "GET"),
    ("GetCustomerAttributeList", "GET"),
    ("AddCustomerAttribute", "POST"),
    ("UpdateCustomerAttributes", "POST"),
    ("UpsertCustomer", "PUT"),
    ("GetCustomerAttributeChangers", "GET"),
    ("GetCustomerAttributes (custdata extension)", "GET"),
];

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, CustdataCode::BadRequest, message)
}

/// A field of a JSON object, its name compared without case.
pub fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    object
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
}

/// Query parameters by lower-cased name (Optimove parameter names are not case-sensitive).
fn parameters(request: &Request) -> HashMap<String, String> {
    query_parameters(request)
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect()
}

/// The answer to a GET in the format the client asked for: XML for `Accept:
/// application/xml`, JSON otherwise.
fn answer(request: &Request, function: &str, value: &Value) -> Response {
    let wants_xml = request.method() == Method::GET
        && header(request, "accept").is_some_and(|accept| {
            accept.to_ascii_lowercase().contains("application/xml")
                || accept.to_ascii_lowercase().contains("text/xml")
        });
    if !wants_xml {
        return json_response(StatusCode::OK, value);
    }
    let mut response = http::Response::new(lambda_http::Body::Text(xml::render(function, value)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    response
}

/// The tenant's rate limit: its own setting, else the default.
pub async fn rate_limit(app: &App, tenant: &TenantId) -> Result<WindowLimit, ApiError> {
    let setting = app.table.get(&keys::optimove_rate_setting(tenant)).await?;
    Ok(setting
        .and_then(|item| {
            Some(WindowLimit {
                calls: item.i64("calls")?,
                window_seconds: item.i64("window_seconds")?,
            })
        })
        .unwrap_or(DEFAULT_RATE_LIMIT))
}

/// Sets a tenant's rate limit (admin).
pub async fn set_rate_limit(
    app: &App,
    tenant: &TenantId,
    limit: WindowLimit,
) -> Result<(), crate::storage::StorageError> {
    let key = keys::optimove_rate_setting(tenant);
    let item = Item::new(key.pk, key.sk)
        .with("calls", limit.calls)
        .with("window_seconds", limit.window_seconds);
    app.table.put(item, Condition::Always).await
}

/// Counts the call against the client's limit; 429 with `Retry-After` beyond it.
async fn count_call(app: &App, caller: &Caller) -> Result<(), ApiError> {
    let limit = rate_limit(app, &caller.tenant).await?;
    let taken = ratelimit::take_in_window(
        app.table.as_ref(),
        keys::optimove_rate_pk(&caller.tenant),
        &caller.client,
        app.clock.now_millis(),
        limit,
    )
    .await?;
    taken.map_err(|retry_after| {
        crate::metrics::rate_limited(crate::metrics::RateLimit::OptimoveCalls);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            CustdataCode::TooManyRequests,
            format!(
                "at most {} calls per {} seconds per client; retry in {retry_after} s",
                limit.calls, limit.window_seconds
            ),
        )
        .with_header("retry-after", retry_after.to_string())
    })
}

/// What a request asks for, by its route key.
enum Route {
    /// A function, by the name the path gives it (compared without case).
    Function(String),
    CustomerAttributes(String),
    EraseCustomer(String),
    ListCustomers,
}

impl Route {
    /// The route the request's route key names, with its path parameters; `None` for a key
    /// this family does not serve.
    fn of(request: &Request) -> Option<Route> {
        let param = |name: &str| path_parameter(request, name);
        Some(match route_key(request)? {
            FUNCTION => Route::Function(param("function")?),
            CUSTOMER_ATTRIBUTES => Route::CustomerAttributes(param("customerId")?),
            ERASE_CUSTOMER => Route::EraseCustomer(param("customerId")?),
            LIST_CUSTOMERS => Route::ListCustomers,
            _ => return None,
        })
    }
}

/// A write to the campaign engine: 400, since nothing it sends could take effect here (a
/// silent success would lose it, and a 404 reads as a wrong base URL).
fn not_supported(name: &str) -> ApiError {
    let supported: Vec<&str> = SUPPORTED.iter().map(|(name, _)| *name).collect();
    ApiError::new(
        StatusCode::BAD_REQUEST,
        CustdataCode::NotSupported,
        format!(
            "{name} writes to Optimove's campaign engine (actions, campaigns, channels, promotions, event listeners), which custdata does not have; nothing was stored. custdata stores customer attributes: {}",
            supported.join(", ")
        ),
    )
    .with_problem(None, Some(name), "not supported: custdata has no campaign engine")
}

/// A read over campaign data custdata does not hold: its parameters checked as the vendor
/// documents them, then the vendor's empty response (inputs valid, no data).
async fn campaign_read(
    app: &App,
    tenant: &TenantId,
    read: &campaign::Read,
    request: &Request,
) -> Result<Response, ApiError> {
    check_method(request, read.name, &[Method::GET])?;
    campaign::check(read, &parameters(request))?;
    paging(request)?;
    if read.customer_attributes {
        let catalog = attributes::catalog(app.table.as_ref(), tenant).await?;
        requested_attributes(request, &catalog)?;
    }
    Ok(answer(request, read.name, &read.empty_answer()))
}

fn check_method(request: &Request, name: &str, allowed: &[Method]) -> Result<(), ApiError> {
    if allowed.contains(request.method()) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        CustdataCode::MethodNotAllowed,
        format!("{name} is called with {}", names.join(" or ")),
    )
    .with_header("allow", names.join(", ")))
}

async fn functions(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    // The route first: a key this family does not serve is a defect, whoever asks.
    let route = Route::of(&request).ok_or_else(|| route_not_served(&request))?;
    if let Route::Function(name) = &route
        && name.eq_ignore_ascii_case("login")
    {
        check_method(&request, "Login", &[Method::POST])?;
        return auth::login(&app, &request).await;
    }
    let caller = match auth::caller(&app, &request).await {
        Ok(caller) => caller,
        Err(Refused::Expired) => return Ok(auth::expired_response()),
        Err(Refused::Error(error)) => return Err(error),
    };
    count_call(&app, &caller).await?;
    idempotency::once(&app, &caller.tenant, Vendor::Optimove, &request, || {
        serve(&app, &caller.tenant, route, &request)
    })
    .await
}

/// One request of the tenant's: an extension route, or a function by its name.
async fn serve(
    app: &App,
    tenant: &TenantId,
    route: Route,
    request: &Request,
) -> Result<Response, ApiError> {
    match route {
        Route::Function(name) => call(app, tenant, &name, request).await,
        Route::CustomerAttributes(customer) => {
            customer_attributes(app, tenant, &customer, request).await
        }
        Route::EraseCustomer(customer) => {
            match crate::privacy::erase_customer_key(
                app.customers(),
                tenant,
                &customer,
                app.clock.now_millis(),
            )
            .await?
            {
                Some(erased) => Ok(json_response(StatusCode::OK, &json!(erased))),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    CustdataCode::NotFound,
                    "no customer with this CustomerID",
                )),
            }
        }
        Route::ListCustomers => list_customers(app, tenant, request).await,
    }
}

/// One function of the tenant's, by its name.
async fn call(
    app: &App,
    tenant: &TenantId,
    name: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    match name.to_ascii_lowercase().as_str() {
        "getlastdataupdate" => {
            check_method(request, "GetLastDataUpdate", &[Method::GET])?;
            Ok(answer(request, "GetLastDataUpdate", &last_data_update(app)))
        }
        "getcustomerattributelist" => {
            check_method(request, "GetCustomerAttributeList", &[Method::GET])?;
            let list = attribute_list(app, tenant).await?;
            Ok(answer(request, "GetCustomerAttributeList", &list))
        }
        "addcustomerattribute" => {
            check_method(request, "AddCustomerAttribute", &[Method::POST])?;
            add_attribute(app, tenant, request).await
        }
        "updatecustomerattributes" => {
            check_method(request, "UpdateCustomerAttributes", &[Method::POST])?;
            let body = json_body(request)?;
            let list =
                field(&body, "CustomerNewAttributesValuesList")
                    .and_then(Value::as_array)
                    .filter(|list| (1..=attributes::MAX_UPDATE_CUSTOMERS).contains(&list.len()))
                    .ok_or_else(|| {
                        let rule = format!("1 to {} customers", attributes::MAX_UPDATE_CUSTOMERS);
                        bad_request(format!("CustomerNewAttributesValuesList is {rule}"))
                            .with_problem(None, Some("CustomerNewAttributesValuesList"), rule)
                    })?;
            let changes = list
                .iter()
                .enumerate()
                .map(|(index, entry)| change_of(entry, "CustomerID", index + 1))
                .collect::<Result<Vec<_>, _>>()?;
            write(app, tenant, &changes, true).await
        }
        "upsertcustomer" => {
            check_method(request, "UpsertCustomer", &[Method::PUT, Method::POST])?;
            let change = change_of(&json_body(request)?, "CustomerId", 1)?;
            write(app, tenant, &[change], false).await
        }
        "getcustomerattributechangers" => {
            check_method(request, "GetCustomerAttributeChangers", &[Method::GET])?;
            attribute_changers(app, tenant, request).await
        }
        _ => {
            if let Some(read) = campaign::find_read(name) {
                return campaign_read(app, tenant, read, request).await;
            }
            match campaign::find_write(name) {
                Some((known, method)) => {
                    let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST);
                    check_method(request, known, &[method])?;
                    Err(not_supported(known))
                }
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    CustdataCode::NotFound,
                    format!("there is no function {name:?}"),
                )),
            }
        }
    }
}

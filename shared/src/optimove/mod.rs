//! Optimove (contracts/optimove.md): Login or API-key authentication, a per-client rate
//! limit, and the functions custdata can answer from the shared customer store. Functions
//! are found by name, without regard to case, under any category (contract decision 3).

pub mod attributes;
pub mod auth;
pub mod campaign;
pub mod xml;

use std::collections::HashMap;
use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use self::attributes::Change;
use self::auth::{Caller, Refused};
use crate::app::App;
use crate::customers::{self, CustomerRef, Identifier};
use crate::domain::TenantId;
use crate::http::{
    ApiError, Family, Request, Response, Vendor, header, json_body, json_response, path_parameter,
    query_parameters, route_key, route_not_served,
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
    ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
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
            "TOO_MANY_REQUESTS",
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
        "NOT_SUPPORTED",
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
        let catalog = attributes::catalog(app, tenant).await?;
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
        "METHOD_NOT_ALLOWED",
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
            match crate::privacy::erase_customer_key(app, tenant, &customer).await? {
                Some(erased) => Ok(json_response(StatusCode::OK, &json!(erased))),
                None => Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
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
                    "NOT_FOUND",
                    format!("there is no function {name:?}"),
                )),
            }
        }
    }
}

/// The last day whose data is complete: custdata's data is live, so that is yesterday (UTC),
/// never today.
fn last_data_update(app: &App) -> Value {
    let yesterday = app.clock.now_millis() - 86_400_000;
    let date = crate::clock::iso8601_millis(yesterday);
    json!({"Date": date.get(..10).unwrap_or_default()})
}

async fn attribute_list(app: &App, tenant: &TenantId) -> Result<Value, ApiError> {
    let catalog = attributes::catalog(app, tenant).await?;
    Ok(Value::Array(
        catalog
            .iter()
            .map(|attribute| {
                let description = match attribute.declared {
                    Some(kind) => format!("{} attribute added through the API", kind.label()),
                    None => format!("attribute from the {} surface", attribute.surface),
                };
                json!({"RealFieldName": attribute.name, "Description": description})
            })
            .collect(),
    ))
}

async fn add_attribute(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let body = json_body(request)?;
    let text = |name: &str| {
        field(&body, name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let name = text("Name").trim().to_string();
    let added = attributes::add(
        app,
        tenant,
        &name,
        text("Type"),
        field(&body, "DefaultValue"),
    )
    .await?;
    Ok(match added {
        Ok(()) => json_response(
            StatusCode::OK,
            &json!({"attributeName": name, "isSuccess": true}),
        ),
        Err(refused) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"attributeName": name, "isSuccess": false, "errorId": refused.error_id, "errorMsg": refused.message}),
        ),
    })
}

/// One customer's changes from `{"<id_field>": "…", "Attributes": [{"RealFieldName", "Value"}]}`.
fn change_of(entry: &Value, id_field: &str, row: usize) -> Result<Change, ApiError> {
    let customer = match field(entry, id_field) {
        Some(Value::String(text)) => text.trim().to_string(),
        Some(Value::Number(number)) => number.to_string(),
        _ => {
            return Err(bad_request(format!("{id_field} is required")).with_problem(
                Some(row),
                Some(id_field),
                "the customer's id, a string",
            ));
        }
    };
    let list = field(entry, "Attributes")
        .and_then(Value::as_array)
        .filter(|list| (1..=attributes::MAX_ATTRIBUTES_PER_CUSTOMER).contains(&list.len()))
        .ok_or_else(|| {
            let rule = format!(
                "1 to {} entries of {{RealFieldName, Value}}",
                attributes::MAX_ATTRIBUTES_PER_CUSTOMER
            );
            bad_request(format!("Attributes is {rule}")).with_problem(
                Some(row),
                Some("Attributes"),
                rule,
            )
        })?;
    let mut values = Vec::with_capacity(list.len());
    for attribute in list {
        let name = field(attribute, "RealFieldName").and_then(Value::as_str);
        let Some(name) = name.filter(|name| !name.trim().is_empty()) else {
            return Err(
                bad_request("every attribute names its RealFieldName").with_problem(
                    Some(row),
                    Some("RealFieldName"),
                    "required",
                ),
            );
        };
        let value = field(attribute, "Value").cloned().unwrap_or(Value::Null);
        values.push((name.trim().to_string(), value));
    }
    Ok(Change { customer, values })
}

/// Writes changes; the answer lists every customer and field that was not written.
async fn write(
    app: &App,
    tenant: &TenantId,
    changes: &[Change],
    only_existing: bool,
) -> Result<Response, ApiError> {
    let catalog = attributes::catalog(app, tenant).await?;
    let (upserts, mut errors) = attributes::check_changes(&catalog, changes);
    attributes::apply(app, tenant, upserts, only_existing, &mut errors).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "isSuccess": errors.is_empty(),
            "requestId": uuid::Uuid::new_v4().to_string(),
            "errors": errors,
        }),
    ))
}

/// `CustomerAttributes` (1-10 names of the catalog, `;`-separated) and its delimiter.
fn requested_attributes(
    request: &Request,
    catalog: &[attributes::Attribute],
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let parameters = parameters(request);
    let Some(raw) = parameters.get("customerattributes") else {
        return Ok((Vec::new(), None));
    };
    let names: Vec<String> = raw
        .split(';')
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() || names.len() > MAX_CUSTOMER_ATTRIBUTES {
        let rule = format!("1 to {MAX_CUSTOMER_ATTRIBUTES} attribute names separated by ';'");
        return Err(
            bad_request(format!("CustomerAttributes is {rule}")).with_problem(
                None,
                Some("CustomerAttributes"),
                rule,
            ),
        );
    }
    if let Some(unknown) = names
        .iter()
        .find(|name| attributes::named(catalog, name).is_none())
    {
        return Err(bad_request(format!(
            "CustomerAttributes names {unknown:?}, which GetCustomerAttributeList does not list"
        ))
        .with_problem(
            None,
            Some("CustomerAttributes"),
            "names from GetCustomerAttributeList",
        ));
    }
    let delimiter = match parameters
        .get("customerattributesdelimiter")
        .map(String::as_str)
    {
        None => None,
        Some(d) if matches!(d, "," | ":" | ";" | "\t") => Some(d.to_string()),
        Some(other) => {
            return Err(bad_request(format!(
                "CustomerAttributesDelimiter {other:?} is not one of , : ; or tab"
            ))
            .with_problem(None, Some("CustomerAttributesDelimiter"), ", : ; or tab"));
        }
    };
    Ok((names, delimiter))
}

/// The `CustomerAttributes` array (and, with an explicit delimiter, the joined
/// `CustomerAttribute` string: contract decision 5) added to an entry.
fn with_attributes(mut entry: Value, values: Vec<Value>, delimiter: Option<&str>) -> Value {
    if let Some(delimiter) = delimiter {
        let joined: Vec<String> = values
            .iter()
            .map(|value| value.as_str().unwrap_or_default().to_string())
            .collect();
        entry["CustomerAttribute"] = json!(joined.join(delimiter));
    }
    entry["CustomerAttributes"] = Value::Array(values);
    entry
}

/// The extension `GET /custdata/v1/optimove/customers/{customerId}?CustomerAttributes=…`.
async fn customer_attributes(
    app: &App,
    tenant: &TenantId,
    customer_id: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let catalog = attributes::catalog(app, tenant).await?;
    let (names, delimiter) = requested_attributes(request, &catalog)?;
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key(customer_id)],
    };
    let customer = customers::find(app, tenant, &named).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no customer with this CustomerID",
        )
    })?;
    let names = if names.is_empty() {
        catalog
            .iter()
            .map(|a| a.name.clone())
            .take(MAX_CUSTOMER_ATTRIBUTES)
            .collect()
    } else {
        names
    };
    let values = attributes::values_of(&catalog, Some(&customer), &names);
    let entry = with_attributes(
        json!({"CustomerID": customer_id}),
        values,
        delimiter.as_deref(),
    );
    Ok(answer(request, "GetCustomerAttributes", &entry))
}

/// Page size limits of the customer functions.
pub const DEFAULT_TOP: usize = 10_000;
pub const MAX_TOP: usize = 200_000;

/// `$top` (1 to 200,000, default 10,000) and `$skip` (0 or more).
fn paging(request: &Request) -> Result<(usize, usize), ApiError> {
    let parameters = parameters(request);
    let number = |name: &str, default: usize, range: std::ops::RangeInclusive<usize>| {
        let Some(raw) = parameters.get(&name.to_ascii_lowercase()) else {
            return Ok(default);
        };
        raw.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                let rule = format!("an integer from {} to {}", range.start(), range.end());
                bad_request(format!("{name} {raw:?} is not {rule}")).with_problem(
                    None,
                    Some(name),
                    rule,
                )
            })
    };
    Ok((
        number("$top", DEFAULT_TOP, 1..=MAX_TOP)?,
        number("$skip", 0, 0..=usize::MAX)?,
    ))
}

/// The listing extension `GET /custdata/v1/optimove/customers?$top&$skip&CustomerAttributes`:
/// the whole customer base in creation order, a page at a time; a deep page costs what the
/// first one does (see `customers::list_page`).
async fn list_customers(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let (top, skip) = paging(request)?;
    let catalog = attributes::catalog(app, tenant).await?;
    let (names, delimiter) = requested_attributes(request, &catalog)?;
    let page = customers::list_page(app, tenant, skip, top).await?;
    // Profiles are read only where the page needs them, in batched reads.
    let wanted: Vec<&str> = page
        .iter()
        .filter(|listed| !names.is_empty() || listed.customer_key.is_none())
        .map(|listed| listed.tid.as_str())
        .collect();
    let profiles = customers::by_tids(app, tenant, &wanted).await?;
    let entries: Vec<Value> = page
        .iter()
        .map(|listed| {
            let customer = profiles.get(&listed.tid);
            let id = listed.customer_key.clone().or_else(|| {
                customer.and_then(|c| c.identifier(customers::CUSTOMER_KEY).map(str::to_string))
            });
            let entry = json!({"CustomerID": id});
            if names.is_empty() {
                entry
            } else {
                let values = attributes::values_of(&catalog, customer, &names);
                with_attributes(entry, values, delimiter.as_deref())
            }
        })
        .collect();
    Ok(answer(request, "GetCustomers", &Value::Array(entries)))
}

/// Days one GetCustomerAttributeChangers call may span.
pub const MAX_CHANGER_DAYS: i64 = 31;

/// A `YYYY-MM-DD` parameter, or yesterday (the last complete day) when absent.
fn date_parameter(
    parameters: &HashMap<String, String>,
    name: &str,
    app: &App,
) -> Result<chrono::NaiveDate, ApiError> {
    match parameters.get(&name.to_ascii_lowercase()) {
        None => {
            let yesterday = last_data_update(app);
            Ok(chrono::NaiveDate::parse_from_str(
                yesterday["Date"].as_str().unwrap_or_default(),
                "%Y-%m-%d",
            )
            .unwrap_or_default())
        }
        Some(raw) => chrono::NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| {
            bad_request(format!("{name} {raw:?} is not a date (YYYY-MM-DD)")).with_problem(
                None,
                Some(name),
                "a date, YYYY-MM-DD",
            )
        }),
    }
}

/// `customers/GetCustomerAttributeChangers`: customers whose attribute changed between
/// StartDate and EndDate (whole days, UTC), with the value before and after, from the
/// attribute history every surface's writes keep.
async fn attribute_changers(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let parameters = parameters(request);
    let (top, skip) = paging(request)?;
    let start = date_parameter(&parameters, "StartDate", app)?;
    let end = date_parameter(&parameters, "EndDate", app)?;
    let span = (end - start).num_days();
    if !(0..MAX_CHANGER_DAYS).contains(&span) {
        let rule = format!("StartDate ≤ EndDate, at most {MAX_CHANGER_DAYS} days");
        return Err(
            bad_request(format!("the period is not {rule}")).with_problem(
                None,
                Some("EndDate"),
                rule,
            ),
        );
    }
    let catalog = attributes::catalog(app, tenant).await?;
    let asked = parameters
        .get("changedcustomerattribute")
        .or_else(|| parameters.get("changedcustomerattributes"))
        .map(|name| name.trim().to_string())
        .unwrap_or_default();
    let Some(attribute) = attributes::named(&catalog, &asked) else {
        return Err(bad_request(format!(
            "ChangedCustomerAttribute {asked:?} is not an attribute of GetCustomerAttributeList"
        ))
        .with_problem(
            None,
            Some("ChangedCustomerAttribute"),
            "one name from GetCustomerAttributeList",
        ));
    };
    let (names, delimiter) = requested_attributes(request, &catalog)?;
    let days: Vec<String> = start
        .iter_days()
        .take(span as usize + 1)
        .map(|day| day.format("%Y-%m-%d").to_string())
        .collect();
    let millis = |date: chrono::NaiveDate| {
        date.and_hms_opt(0, 0, 0)
            .map(|time| time.and_utc().timestamp_millis())
            .unwrap_or_default()
    };
    let from = millis(start);
    let to = millis(end) + 86_400_000;
    let mut changes =
        customers::attribute_changers(app, tenant, &attribute.name, &days, from, to).await?;
    changes.sort_by(|a, b| {
        a.customer
            .identifier(customers::CUSTOMER_KEY)
            .cmp(&b.customer.identifier(customers::CUSTOMER_KEY))
    });
    let entries: Vec<Value> = changes
        .iter()
        .skip(skip)
        .take(top)
        .map(|change| {
            let initial = attributes::as_text(&change.initial);
            let last = attributes::as_text(&change.last);
            // Both spellings clients use (contract decision 4).
            let entry = json!({
                "CustomerID": change.customer.identifier(customers::CUSTOMER_KEY),
                "InitialCustomerAttribute": initial,
                "FinalCustomerAttribute": last,
                "InitialCustomerAttributes": initial,
                "FinalCustomerAttributes": last,
            });
            if names.is_empty() {
                entry
            } else {
                let values = attributes::values_of(&catalog, Some(&change.customer), &names);
                with_attributes(entry, values, delimiter.as_deref())
            }
        })
        .collect();
    Ok(answer(
        request,
        "GetCustomerAttributeChangers",
        &Value::Array(entries),
    ))
}

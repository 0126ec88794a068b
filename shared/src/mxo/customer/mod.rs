//! MXO Customer API 3.1.0 (`/one/oauth2/rt/api/3.1.0/customer/{sk}…`) on the shared
//! customer store: activity, structures (and their admin routes), erasure. Three functions,
//! one per operation, as the vendor's operations differ in load and permissions.

pub mod structures;

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use self::structures::{Evaluator, SaveError, Subject};
use crate::app::App;
use crate::customers::{self, Activity, CustomerError, CustomerRef, Identifier, Tid};
use crate::domain::TenantId;
use crate::http::{
    ApiError, Family, MxoCode, Request, Response, Vendor, body_bytes, empty_response, json_body,
    json_response, path_parameter, query_parameters, route_key,
};
use crate::idempotency;
use crate::mxo::auth::bearer_principal;
use crate::mxo::not_served;
use crate::tenancy::load_profile;

/// Activities per request.
pub const MAX_ACTIVITIES: usize = 100;
/// Dynamic proposition codes.
pub const MAX_DYNAMIC_PROPOSITION_CHARS: usize = 255;
/// Codes and identifier values (not published; generous, but bounded).
pub const MAX_CODE_CHARS: usize = 500;
/// Clock skew tolerated before a timestamp counts as in the future.
pub const FUTURE_SKEW_MILLIS: i64 = 5 * 60 * 1000;

// The routes of the three families, as template.yaml writes them: the route keys their
// handlers dispatch on.
const RECORD_ACTIVITY: &str = "POST /one/oauth2/rt/api/3.1.0/customer/{sk}/activity";
const ACTIVITY_LOG: &str = "GET /custdata/v1/mxo/{sk}/customers/{tid}/activities";
const EVALUATE_STRUCTURE: &str = "POST /one/oauth2/rt/api/3.1.0/customer/{sk}/structure";
const SAVE_STRUCTURE: &str = "PUT /custdata/v1/mxo/{sk}/structures/{structureApiName}";
const GET_STRUCTURE: &str = "GET /custdata/v1/mxo/{sk}/structures/{structureApiName}";
const REMOVE_STRUCTURE: &str = "DELETE /custdata/v1/mxo/{sk}/structures/{structureApiName}";
const ERASE_CUSTOMER: &str = "DELETE /one/oauth2/rt/api/3.1.0/customer/{sk}";
const SUPPRESSIONS: &str = "GET /custdata/v1/mxo/{sk}/suppressions";
const EXPORT: &str = "GET /custdata/v1/customers/export";

/// `POST …/customer/{sk}/activity` and `GET /custdata/v1/mxo/{sk}/customers/{tid}/activities`.
pub static ACTIVITY_FAMILY: Family = Family {
    name: "customer-activity",
    vendor: Vendor::Mxo,
    routes: &[RECORD_ACTIVITY, ACTIVITY_LOG],
    max_body_bytes: 1024 * 1024,
    handler: |app, request| Box::pin(activity(app, request)),
};

/// `POST …/customer/{sk}/structure` and `PUT|GET|DELETE /custdata/v1/mxo/{sk}/structures/{structureApiName}`.
pub static STRUCTURE_FAMILY: Family = Family {
    name: "customer-structure",
    vendor: Vendor::Mxo,
    routes: &[
        EVALUATE_STRUCTURE,
        SAVE_STRUCTURE,
        GET_STRUCTURE,
        REMOVE_STRUCTURE,
    ],
    max_body_bytes: 256 * 1024,
    handler: |app, request| Box::pin(structure(app, request)),
};

/// `DELETE …/customer/{sk}`, `GET /custdata/v1/mxo/{sk}/suppressions` and the access export.
pub static DELETE_FAMILY: Family = Family {
    name: "customer-delete",
    vendor: Vendor::Mxo,
    routes: &[ERASE_CUSTOMER, SUPPRESSIONS, EXPORT],
    max_body_bytes: 16 * 1024,
    handler: |app, request| Box::pin(erase(app, request)),
};

fn general(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, MxoCode::General, message)
}

/// The token's tenant, if the path's site key (or, as leniency, workspace id) is its own;
/// another tenant's site key is 400 INVALID_SITEKEY, never its data.
async fn site_tenant(app: &App, request: &Request) -> Result<TenantId, ApiError> {
    let principal = bearer_principal(app, request).await?;
    let site_key = path_parameter(request, "sk").unwrap_or_default();
    let profile = load_profile(app.table.as_ref(), &principal.tenant).await?;
    if profile.is_some_and(|p| p.mxo_site_key == site_key || p.mxo_workspace_id == site_key) {
        Ok(principal.tenant)
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            MxoCode::InvalidSitekey,
            format!("{site_key:?} is not the site key of this token's site"),
        ))
    }
}

fn bounded_text(value: Option<&Value>, field: &str) -> Result<Option<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.chars().count() <= MAX_CODE_CHARS => {
            Ok(Some(text.clone()))
        }
        Some(Value::String(_)) => Err(general(format!(
            "{field} exceeds {MAX_CODE_CHARS} characters"
        ))),
        Some(_) => Err(general(format!("{field} must be a string"))),
    }
}

/// The customer a `customerContext` (or a DeleteRequest) names: a tid and/or identifiers.
fn customer_ref(
    tid: Option<&Value>,
    identifiers: &[Value],
    field: &str,
) -> Result<CustomerRef, ApiError> {
    let tid = match bounded_text(tid, &format!("{field}tid"))? {
        Some(tid) => Some(Tid::from_uuid(uuid::Uuid::parse_str(&tid).map_err(
            |_| general(format!("{field}tid must be a UUID, got {tid:?}")),
        )?)),
        None => None,
    };
    if identifiers.len() > customers::MAX_IDENTIFIERS {
        return Err(general(format!(
            "at most {} identifiers",
            customers::MAX_IDENTIFIERS
        )));
    }
    let mut parsed = Vec::with_capacity(identifiers.len());
    for (index, identifier) in identifiers.iter().enumerate() {
        let name = format!("{field}identifiers[{index}]");
        let api_name = bounded_text(identifier.get("apiName"), &format!("{name}.apiName"))?
            .filter(|a| !a.is_empty());
        let value = bounded_text(identifier.get("value"), &format!("{name}.value"))?
            .filter(|v| !v.is_empty());
        match (api_name, value) {
            (Some(api_name), Some(value)) => parsed.push(Identifier::new(api_name, value)),
            _ => {
                return Err(general(format!(
                    "{name} needs a non-empty apiName and value"
                )));
            }
        }
    }
    parsed.sort();
    parsed.dedup();
    if tid.is_none() && parsed.is_empty() {
        return Err(general(
            "the request must name the customer by tid or by an identifier (customer key)",
        ));
    }
    Ok(CustomerRef {
        tid,
        identifiers: parsed,
    })
}

fn customer_context(body: &Value) -> Result<(&Value, CustomerRef), ApiError> {
    let context = body
        .get("customerContext")
        .filter(|c| c.is_object())
        .ok_or_else(|| general("customerContext is required"))?;
    let touchpoint = context
        .get("baseTouchpointUri")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    if touchpoint.is_none() {
        return Err(general("customerContext.baseTouchpointUri is required"));
    }
    let identifiers = match context.get("identifiers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(general(
                "customerContext.identifiers must be an array of {apiName, value}",
            ));
        }
    };
    let named = customer_ref(context.get("tid"), &identifiers, "customerContext.")?;
    Ok((context, named))
}

fn customer_error(error: CustomerError) -> ApiError {
    match error {
        CustomerError::Suppressed(_) => general(error.to_string()),
        CustomerError::Conflict(_) => {
            ApiError::new(StatusCode::CONFLICT, MxoCode::General, error.to_string())
        }
        CustomerError::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            MxoCode::General,
            error.to_string(),
        )
        .with_header("retry-after", "1"),
        CustomerError::Storage(storage) => storage.into(),
    }
}

/// One activity, or the ActivityError the vendor gives for it.
fn parse_activity(raw: &Value, now_millis: i64) -> Result<Activity, ApiError> {
    let fault = |code: MxoCode, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, code, message).with_detail("activity", raw.clone())
    };
    let code = |field: &str, error_code: MxoCode| -> Result<String, ApiError> {
        match raw.get(field) {
            Some(Value::String(text))
                if !text.is_empty() && text.chars().count() <= MAX_CODE_CHARS =>
            {
                Ok(text.clone())
            }
            Some(Value::String(text)) if !text.is_empty() => Err(fault(
                error_code,
                format!("{field} exceeds {MAX_CODE_CHARS} characters"),
            )),
            _ => Err(fault(
                error_code,
                format!("{field} is required: a non-empty string"),
            )),
        }
    };
    if !raw.is_object() {
        return Err(fault(
            MxoCode::General,
            "an activity must be a JSON object".into(),
        ));
    }
    let proposition_code = code("propositionCode", MxoCode::InvalidPropositionCode)?;
    let activity_type_code = code("activityTypeCode", MxoCode::InvalidActivityTypeCode)?;
    let dynamic_proposition_code = match raw.get("dynamicPropositionCode") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().count() <= MAX_DYNAMIC_PROPOSITION_CHARS => {
            Some(text.clone())
        }
        Some(Value::String(text)) => {
            return Err(fault(
                MxoCode::InvalidPropositionCode,
                format!(
                    "dynamicPropositionCode exceeds {MAX_DYNAMIC_PROPOSITION_CHARS} characters ({})",
                    text.chars().count()
                ),
            ));
        }
        Some(_) => {
            return Err(fault(
                MxoCode::InvalidPropositionCode,
                "dynamicPropositionCode must be a string".into(),
            ));
        }
    };
    let timestamp = match raw.get("timestamp") {
        None | Some(Value::Null) => now_millis,
        Some(Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|at| at.timestamp_millis())
            .map_err(|_| {
                fault(
                    MxoCode::InvalidDateTime,
                    format!("timestamp {text:?} is not an RFC 3339 date-time"),
                )
            })?,
        Some(_) => {
            return Err(fault(
                MxoCode::InvalidDateTime,
                "timestamp must be an RFC 3339 string".into(),
            ));
        }
    };
    if timestamp < 0 {
        return Err(fault(
            MxoCode::InvalidDateTime,
            "timestamp is before 1970".into(),
        ));
    }
    if timestamp > now_millis + FUTURE_SKEW_MILLIS {
        return Err(fault(
            MxoCode::InvalidDateTime,
            "timestamp is in the future; historical activity is allowed, future activity is not"
                .into(),
        ));
    }
    Ok(Activity {
        proposition_code,
        activity_type_code,
        dynamic_proposition_code,
        timestamp,
    })
}

async fn activity(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let reads_the_log = match route_key(&request) {
        Some(RECORD_ACTIVITY) => false,
        Some(ACTIVITY_LOG) => true,
        _ => return Err(not_served(&request)),
    };
    let tenant = site_tenant(&app, &request).await?;
    if reads_the_log {
        return activity_log(&app, &tenant, &request).await;
    }
    idempotency::once(&app, &tenant, Vendor::Mxo, &request, || {
        record_activity(&app, &tenant, &request)
    })
    .await
}

/// `POST …/customer/{sk}/activity`: every activity checked, then all stored.
async fn record_activity(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let body = json_body(request)?;
    let (_, named) = customer_context(&body)?;
    let raw = body
        .get("activities")
        .and_then(Value::as_array)
        .ok_or_else(|| general("activities is required: an array of 1 to 100 activities"))?;
    if raw.is_empty() || raw.len() > MAX_ACTIVITIES {
        return Err(general(format!(
            "activities holds 1 to {MAX_ACTIVITIES} activities, got {}",
            raw.len()
        )));
    }
    let now = app.clock.now_millis();
    // All or nothing: every activity is checked before anything is stored.
    let activities = raw
        .iter()
        .map(|activity| parse_activity(activity, now))
        .collect::<Result<Vec<_>, _>>()?;
    let customer = customers::record_activities(app.customers(), tenant, &named, &activities, now)
        .await
        .map_err(customer_error)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"tid": customer.tid, "errors": []}),
    ))
}

/// `GET /custdata/v1/mxo/{sk}/customers/{tid}/activities?limit=&cursor=`: newest first.
async fn activity_log(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let tid = path_parameter(request, "tid").unwrap_or_default();
    let Ok(tid) = uuid::Uuid::parse_str(&tid).map(Tid::from_uuid) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            MxoCode::CustomerNotFound,
            format!("no customer with tid {tid:?}"),
        ));
    };
    let query = query_parameters(request);
    let limit = match query.get("limit") {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| general("limit is 1 to 1000"))?,
    };
    let named = CustomerRef {
        tid: Some(tid.clone()),
        identifiers: Vec::new(),
    };
    if customers::find(app.customers(), tenant, &named)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            MxoCode::CustomerNotFound,
            format!("no customer with tid {tid}"),
        ));
    }
    let (activities, next) = customers::activity_page(
        app.customers(),
        tenant,
        &tid,
        limit,
        query.get("cursor").cloned(),
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"activities": activities, "next": next}),
    ))
}

/// What a request of `customer-structure` asks for, by its route key.
#[derive(Clone, Copy)]
enum StructureRoute {
    Evaluate,
    Admin(StructureAdmin),
}

/// The structure admin routes (`/custdata/v1/mxo/{sk}/structures/{structureApiName}`).
#[derive(Clone, Copy)]
enum StructureAdmin {
    Save,
    Get,
    Remove,
}

async fn structure(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let route = match route_key(&request) {
        Some(EVALUATE_STRUCTURE) => StructureRoute::Evaluate,
        Some(SAVE_STRUCTURE) => StructureRoute::Admin(StructureAdmin::Save),
        Some(GET_STRUCTURE) => StructureRoute::Admin(StructureAdmin::Get),
        Some(REMOVE_STRUCTURE) => StructureRoute::Admin(StructureAdmin::Remove),
        _ => return Err(not_served(&request)),
    };
    let tenant = site_tenant(&app, &request).await?;
    idempotency::once(&app, &tenant, Vendor::Mxo, &request, || {
        serve_structure(&app, &tenant, route, &request)
    })
    .await
}

/// One `customer-structure` request, for the token's site.
async fn serve_structure(
    app: &App,
    tenant: &TenantId,
    route: StructureRoute,
    request: &Request,
) -> Result<Response, ApiError> {
    match route {
        StructureRoute::Evaluate => evaluate_structure(app, tenant, request).await,
        StructureRoute::Admin(admin) => {
            let api_name = path_parameter(request, "structureApiName").unwrap_or_default();
            structure_admin(app, tenant, &api_name, admin, request).await
        }
    }
}

/// `POST …/customer/{sk}/structure`, for the token's site.
async fn evaluate_structure(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let body = json_body(request)?;
    let api_name = body
        .get("structureApiName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                MxoCode::InvalidApiName,
                "structureApiName is required",
            )
        })?;
    let definition = structures::load(app.table.as_ref(), tenant, api_name)
        .await?
        .ok_or_else(|| no_structure(api_name))?;
    let (context, named) = customer_context(&body)?;
    let mut properties = HashMap::new();
    for (index, property) in context
        .get("properties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = property.get("name").and_then(Value::as_str);
        let value = property.get("value");
        let value = match value {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            Some(Value::Bool(flag)) => flag.to_string(),
            _ => String::new(),
        };
        match name {
            Some(name) if !name.is_empty() => {
                properties.insert(name.to_string(), value);
            }
            _ => {
                return Err(general(format!(
                    "customerContext.properties[{index}] needs a name"
                )));
            }
        }
    }
    let customer = customers::find(app.customers(), tenant, &named).await?;
    let subject = Subject {
        tenant,
        customer: customer.as_ref(),
        identifiers: &named.identifiers,
        properties: &properties,
        now_millis: app.clock.now_millis(),
    };
    let result = Evaluator::new(app.table.as_ref(), subject)
        .evaluate(&definition)
        .await?;
    // `tid` is a string in the vendor's StructureResponse: omitted, never null, for a
    // customer custdata does not know and the request did not name by tid.
    let mut response = json!({"structureApiName": api_name, "structure": result});
    if let Some(tid) = customer
        .as_ref()
        .map(|c| c.tid.clone())
        .or(named.tid.clone())
    {
        response["tid"] = json!(tid);
    }
    Ok(json_response(StatusCode::OK, &response))
}

fn no_structure(api_name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        MxoCode::InvalidApiName,
        format!("no pull structure {api_name:?}"),
    )
    .with_detail("structureApiName", api_name)
}

/// `PUT|GET|DELETE /custdata/v1/mxo/{sk}/structures/{structureApiName}`.
async fn structure_admin(
    app: &App,
    tenant: &TenantId,
    api_name: &str,
    admin: StructureAdmin,
    request: &Request,
) -> Result<Response, ApiError> {
    match admin {
        StructureAdmin::Save => {
            match structures::save(
                app.customers(),
                tenant,
                api_name,
                &json_body(request)?,
                app.clock.now_millis(),
            )
            .await
            {
                Ok(definition) => Ok(json_response(StatusCode::OK, &definition)),
                Err(SaveError::Invalid(problems)) => {
                    let summary = problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field.as_deref().unwrap_or("body"), p.rule))
                        .collect::<Vec<_>>()
                        .join("; ");
                    let mut error = general(summary).with_detail("structureApiName", api_name);
                    error.problems = problems;
                    Err(error)
                }
                Err(SaveError::Storage(error)) => Err(error.into()),
            }
        }
        StructureAdmin::Get => {
            match structures::load(app.table.as_ref(), tenant, api_name).await? {
                Some(definition) => Ok(json_response(StatusCode::OK, &definition)),
                None => Err(no_structure(api_name)),
            }
        }
        StructureAdmin::Remove => {
            match structures::remove(app.table.as_ref(), tenant, api_name).await? {
                true => Ok(empty_response(StatusCode::OK)),
                false => Err(no_structure(api_name)),
            }
        }
    }
}

/// What a request of `customer-delete` on a site asks for, by its route key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SiteDeleteRoute {
    EraseCustomer,
    Suppressions,
}

async fn erase(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let route = match route_key(&request) {
        Some(ERASE_CUSTOMER) => SiteDeleteRoute::EraseCustomer,
        Some(SUPPRESSIONS) => SiteDeleteRoute::Suppressions,
        // The one route of this function without a site key: the access export.
        Some(EXPORT) => return crate::privacy::route::export(app, request).await,
        _ => return Err(not_served(&request)),
    };
    let tenant = site_tenant(&app, &request).await?;
    idempotency::once(&app, &tenant, Vendor::Mxo, &request, || {
        erase_customer(&app, &tenant, route, &request)
    })
    .await
}

/// `DELETE …/customer/{sk}` and the suppressions listing, for the token's site.
async fn erase_customer(
    app: &App,
    tenant: &TenantId,
    route: SiteDeleteRoute,
    request: &Request,
) -> Result<Response, ApiError> {
    if route == SiteDeleteRoute::Suppressions {
        // `GET /custdata/v1/mxo/{sk}/suppressions`: keyed hashes and dates, no personal data.
        let suppressions = customers::suppressions(app.customers(), tenant).await?;
        return Ok(json_response(
            StatusCode::OK,
            &json!({"suppressions": suppressions}),
        ));
    }
    let body: Value = if body_bytes(request).is_empty() {
        json!({})
    } else {
        json_body(request)?
    };
    let query = query_parameters(request);
    // Leniency: some HTTP stacks strip a DELETE's body, so the query may carry the same.
    let tid = body
        .get("tid")
        .cloned()
        .or_else(|| query.get("tid").map(|tid| json!(tid)));
    let identifier = body.get("identifier").cloned().or_else(|| {
        match (query.get("apiName"), query.get("value")) {
            (Some(api_name), Some(value)) => Some(json!({"apiName": api_name, "value": value})),
            _ => None,
        }
    });
    let named = customer_ref(tid.as_ref(), identifier.as_slice(), "")?;
    let described = match (&named.tid, named.identifiers.first()) {
        (Some(tid), _) => format!("tid={tid}"),
        (None, Some(identifier)) => format!("{}={}", identifier.api_name, identifier.value),
        (None, None) => String::new(),
    };
    match crate::privacy::erase(app.customers(), tenant, &named, app.clock.now_millis())
        .await
        .map_err(customer_error)?
    {
        Some(erased) => Ok(json_response(StatusCode::OK, &json!(erased))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            MxoCode::CustomerNotFound,
            format!("no customer for {described}"),
        )),
    }
}

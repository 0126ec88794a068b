//! `GET /custdata/v1/customers/export?apiName=…&value=…` (or `?tid=…`): everything custdata
//! holds about one customer, for an access request. None of the four vendors has such a
//! route, so whoever holds any vendor's credential of the tenant may ask: an MXO bearer
//! token, a Monetate token, an AIXON API key, an Optimove token or API key.

use std::sync::Arc;

use http::StatusCode;

use crate::app::App;
use crate::customers::{CustomerRef, Identifier, Tid};
use crate::domain::TenantId;
use crate::http::{
    ApiError, CustdataCode, MxoCode, Request, Response, header, json_response, query_parameters,
};
use crate::optimove::auth::Refused;

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        CustdataCode::Unauthorized,
        "send any vendor's credential of the tenant: Authorization: Bearer (MXO) or Token \
         (Monetate), Authorization-Token (Optimove), or x-api-key (AIXON or Optimove)",
    )
}

/// The tenant of whichever vendor's credential the request carries.
async fn any_vendor_tenant(app: &App, request: &Request) -> Result<TenantId, ApiError> {
    let authorization = header(request, "authorization").unwrap_or_default();
    if authorization.starts_with("Bearer ") || authorization.starts_with("bearer ") {
        return Ok(crate::mxo::auth::bearer_principal(app, request)
            .await?
            .tenant);
    }
    if authorization.starts_with("Token ") {
        return Ok(crate::monetate::auth::caller(app, request).await?.tenant);
    }
    if header(request, "authorization-token").is_some() {
        return match crate::optimove::auth::caller(app, request).await {
            Ok(caller) => Ok(caller.tenant),
            Err(Refused::Error(error)) => Err(error),
            Err(Refused::Expired) => Err(unauthorized()),
        };
    }
    if header(request, "x-api-key").is_some() {
        // One header, two vendors' keys: an AIXON key, else an Optimove one.
        if let Ok(tenant) = crate::aixon::api_key_tenant(app, request).await {
            return Ok(tenant);
        }
        return match crate::optimove::auth::caller(app, request).await {
            Ok(caller) => Ok(caller.tenant),
            Err(_) => Err(unauthorized()),
        };
    }
    Err(unauthorized())
}

fn bad_query(field: &str, rule: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        MxoCode::General,
        format!("query parameter {field}: {rule}"),
    )
    .with_problem(None, Some(field), rule)
}

/// The customer the query names: a tid, or an identifier by `apiName` and `value`.
fn named(request: &Request) -> Result<CustomerRef, ApiError> {
    let query = query_parameters(request);
    let text = |name: &str| query.get(name).map(|value| value.trim().to_string());
    for name in ["tid", "apiName", "value"] {
        if text(name).is_some_and(|value| value.is_empty() || value.chars().count() > 512) {
            return Err(bad_query(name, "1 to 512 characters"));
        }
    }
    match (text("tid"), text("apiName"), text("value")) {
        (Some(tid), None, None) => Ok(CustomerRef {
            tid: Some(Tid::parse(&tid).ok_or_else(|| bad_query("tid", "1 to 512 characters"))?),
            identifiers: Vec::new(),
        }),
        (None, Some(api_name), Some(value)) => Ok(CustomerRef {
            tid: None,
            identifiers: vec![Identifier::new(api_name, value)],
        }),
        (None, Some(_), None) => Err(bad_query("value", "required with apiName")),
        (None, None, Some(_)) => Err(bad_query("apiName", "required with value")),
        _ => Err(bad_query(
            "apiName",
            "name the customer by apiName and value, or by tid alone",
        )),
    }
}

/// The export route's handler.
pub async fn export(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let tenant = any_vendor_tenant(&app, &request).await?;
    let named = named(&request)?;
    match super::export(app.customers(), &tenant, &named).await? {
        Some(document) => Ok(json_response(StatusCode::OK, &document)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            CustdataCode::CustomerNotFound,
            "no surface holds anything of this customer",
        )),
    }
}

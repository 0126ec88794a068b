//! The functions and extensions custdata answers from the shared customer store: the last
//! data update, the attribute catalog and attribute writes, a customer's attributes, the
//! paged customer list and the attribute changers of a period.

use std::collections::HashMap;

use http::StatusCode;
use serde_json::{Value, json};

use super::attributes::Change;
use super::{MAX_CUSTOMER_ATTRIBUTES, answer, attributes, bad_request, field, parameters};
use crate::app::App;
use crate::customers::{self, CustomerRef, Identifier, Tid};
use crate::domain::TenantId;
use crate::http::{ApiError, CustdataCode, Request, Response, json_body, json_response};

/// The last day whose data is complete: custdata's data is live, so that is yesterday (UTC),
/// never today.
pub(super) fn last_data_update(app: &App) -> Value {
    let yesterday = app.clock.now_millis() - 86_400_000;
    let date = crate::clock::iso8601_millis(yesterday);
    json!({"Date": date.get(..10).unwrap_or_default()})
}

pub(super) async fn attribute_list(app: &App, tenant: &TenantId) -> Result<Value, ApiError> {
    let catalog = attributes::catalog(app.table.as_ref(), tenant).await?;
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

pub(super) async fn add_attribute(
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
        app.table.as_ref(),
        tenant,
        &name,
        text("Type"),
        field(&body, "DefaultValue"),
        app.clock.now_millis(),
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
pub(super) fn change_of(entry: &Value, id_field: &str, row: usize) -> Result<Change, ApiError> {
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
pub(super) async fn write(
    app: &App,
    tenant: &TenantId,
    changes: &[Change],
    only_existing: bool,
) -> Result<Response, ApiError> {
    let catalog = attributes::catalog(app.table.as_ref(), tenant).await?;
    let (upserts, mut errors) = attributes::check_changes(&catalog, changes);
    attributes::apply(
        app.customers(),
        tenant,
        upserts,
        only_existing,
        &mut errors,
        app.clock.now_millis(),
    )
    .await?;
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
pub(super) fn requested_attributes(
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
pub(super) async fn customer_attributes(
    app: &App,
    tenant: &TenantId,
    customer_id: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let catalog = attributes::catalog(app.table.as_ref(), tenant).await?;
    let (names, delimiter) = requested_attributes(request, &catalog)?;
    let named = CustomerRef {
        tid: None,
        identifiers: vec![Identifier::customer_key(customer_id)],
    };
    let customer = customers::find(app.customers(), tenant, &named)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                CustdataCode::NotFound,
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
pub(super) fn paging(request: &Request) -> Result<(usize, usize), ApiError> {
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
pub(super) async fn list_customers(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let (top, skip) = paging(request)?;
    let catalog = attributes::catalog(app.table.as_ref(), tenant).await?;
    let (names, delimiter) = requested_attributes(request, &catalog)?;
    let page = customers::list_page(app.customers(), tenant, skip, top).await?;
    // Profiles are read only where the page needs them, in batched reads.
    let wanted: Vec<&Tid> = page
        .iter()
        .filter(|listed| !names.is_empty() || listed.customer_key.is_none())
        .map(|listed| &listed.tid)
        .collect();
    let profiles = customers::by_tids(app.customers(), tenant, &wanted).await?;
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
pub(super) async fn attribute_changers(
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
    let catalog = attributes::catalog(app.table.as_ref(), tenant).await?;
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
        customers::attribute_changers(app.customers(), tenant, &attribute.name, &days, from, to)
            .await?;
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

//! MXO Datastores API 1.0.0 (`/datastores/1.0.0/…`), in three endpoint families:
//!
//! - `datastore-create`: list, create, get and delete datastores (definitions);
//! - `datastore-stage`: records in, read and deleted, in `staging` or `live`, plus the batch
//!   decisioning read extension;
//! - `datastore-golive`: references, go-live and clear — the pointer switches.
//!
//! Grouped by what they touch: definitions change rarely, records carry the volume (and the
//! large body limit), pointer switches are few and must stay cheap.

pub mod model;
pub mod store;

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use self::model::{ApiName, Definition};
use self::store::{DatastoreError, InsertOutcome, ReferenceId, Target};
use crate::app::App;
use crate::domain::TenantId;
use crate::http::{
    ApiError, Family, MxoCode, Request, Response, ScheduledTask, Vendor, empty_response, header,
    json_body, json_response, path_parameter, query_parameters, route_key,
};
use crate::idempotency;
use crate::mxo::auth::workspace_tenant;
use crate::mxo::not_served;

/// Definitions are small; 256 KiB is far above any valid one.
const DEFINITION_BODY_LIMIT: usize = 256 * 1024;
/// Records: Lambda's synchronous payload limit (6 MB) less room for the event envelope.
pub const RECORDS_BODY_LIMIT: usize = 6 * 1000 * 1000;
/// Keys per batch lookup.
pub const MAX_LOOKUP_KEYS: usize = 100;

// The routes of the three families, as template.yaml writes them: the route keys their
// handlers dispatch on.
const LIST: &str = "GET /datastores/1.0.0/{workspaceId}";
const CREATE: &str = "POST /datastores/1.0.0/{workspaceId}";
const GET: &str = "GET /datastores/1.0.0/{workspaceId}/{apiName}";
const DELETE: &str = "DELETE /datastores/1.0.0/{workspaceId}/{apiName}";
const INSERT_RECORDS: &str = "POST /datastores/1.0.0/{workspaceId}/{apiName}/{target}";
const READ_RECORDS: &str = "GET /datastores/1.0.0/{workspaceId}/{apiName}/{target}";
const DELETE_RECORDS: &str = "DELETE /datastores/1.0.0/{workspaceId}/{apiName}/{target}";
const LOOKUP: &str = "POST /custdata/v1/mxo/{sk}/{apiName}/live/lookup";
const REFERENCE: &str = "GET /datastores/1.0.0/{workspaceId}/{apiName}/{target}/reference";
const GO_LIVE: &str = "POST /datastores/1.0.0/{workspaceId}/{apiName}/golive/{stagingReference}";
const CLEAR: &str = "POST /datastores/1.0.0/{workspaceId}/{apiName}/clear/{tableReference}";

/// `GET|POST /datastores/1.0.0/{workspaceId}`, `GET|DELETE …/{apiName}`.
pub static CREATE_FAMILY: Family = Family {
    name: "datastore-create",
    vendor: Vendor::Mxo,
    routes: &[LIST, CREATE, GET, DELETE],
    max_body_bytes: DEFINITION_BODY_LIMIT,
    handler: |app, request| Box::pin(definitions(app, request)),
};

/// `POST|GET|DELETE /datastores/1.0.0/{workspaceId}/{apiName}/{target}` and the lookup extension.
pub static STAGE_FAMILY: Family = Family {
    name: "datastore-stage",
    vendor: Vendor::Mxo,
    routes: &[INSERT_RECORDS, READ_RECORDS, DELETE_RECORDS, LOOKUP],
    max_body_bytes: RECORDS_BODY_LIMIT,
    handler: |app, request| Box::pin(records(app, request)),
};

/// `GET …/{target}/reference`, `POST …/golive/{stagingReference}`, `POST …/clear/{tableReference}`.
pub static GOLIVE_FAMILY: Family = Family {
    name: "datastore-golive",
    vendor: Vendor::Mxo,
    routes: &[REFERENCE, GO_LIVE, CLEAR],
    max_body_bytes: 16 * 1024,
    handler: |app, request| Box::pin(snapshots(app, request)),
};

/// Removes superseded table versions once their grace period has passed (rows per run).
pub const SWEEP_ROWS_PER_RUN: usize = 200_000;

/// The `datastore-sweep` function: scheduled, no route.
pub static SWEEP_TASK: ScheduledTask = ScheduledTask {
    name: "datastore-sweep",
    local_interval: std::time::Duration::from_secs(10),
    run: |app, _event| {
        Box::pin(async move {
            let report = store::sweep_due(
                app.table.as_ref(),
                app.clock.now_seconds(),
                SWEEP_ROWS_PER_RUN,
            )
            .await
            .map_err(|error| error.to_string())?;
            Ok(json!(report))
        })
    },
};

impl From<DatastoreError> for ApiError {
    fn from(error: DatastoreError) -> Self {
        match error {
            DatastoreError::NotFound(message) => {
                ApiError::new(StatusCode::NOT_FOUND, MxoCode::General, message)
            }
            DatastoreError::Invalid(problems) => {
                let summary = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.field.as_deref().unwrap_or("body"), p.rule))
                    .collect::<Vec<_>>()
                    .join("; ");
                let code = if problems
                    .iter()
                    .any(|p| p.field.as_deref() == Some("apiName"))
                {
                    MxoCode::InvalidApiName
                } else {
                    MxoCode::General
                };
                let mut error = ApiError::new(StatusCode::BAD_REQUEST, code, summary);
                error.problems = problems;
                error
            }
            DatastoreError::Busy(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, MxoCode::General, message)
                    .with_header("retry-after", "1")
            }
            DatastoreError::Storage(storage) => storage.into(),
        }
    }
}

fn required_path(request: &Request, name: &str) -> Result<String, ApiError> {
    path_parameter(request, name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            MxoCode::General,
            format!("the path lacks {{{name}}}"),
        )
    })
}

/// The apiName path segment. `http::dispatch` has refused one outside the grammar (400,
/// `crate::names`); should one reach here another way, it names no datastore.
fn api_name_of(request: &Request) -> Result<ApiName, ApiError> {
    let api_name = required_path(request, "apiName")?;
    ApiName::parse(&api_name).ok_or_else(|| {
        DatastoreError::NotFound(format!(
            "no datastore with apiName {api_name:?} in this workspace"
        ))
        .into()
    })
}

/// The reference a path names; what cannot be a reference id is refused like an unknown one.
fn reference_of(request: &Request, name: &str) -> Result<ReferenceId, ApiError> {
    let raw = required_path(request, name)?;
    ReferenceId::parse(&raw).ok_or_else(|| store::unknown_reference(&raw).into())
}

/// A record key from a query or a lookup: TEXT, so at most 500 characters.
fn record_key(value: &str, field: &str, row: Option<usize>) -> Result<(), ApiError> {
    let chars = value.chars().count();
    if chars > model::MAX_TEXT_CHARS {
        let rule = format!(
            "a key is TEXT: at most {} characters, got {chars}",
            model::MAX_TEXT_CHARS
        );
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            MxoCode::General,
            format!("{field}: {rule}"),
        )
        .with_problem(row, Some(field), rule));
    }
    Ok(())
}

fn target_of(request: &Request) -> Result<Target, ApiError> {
    let raw = required_path(request, "target")?;
    Target::parse(&raw).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            MxoCode::General,
            format!("no table {raw:?}: the target is live or staging"),
        )
    })
}

/// What a request of `datastore-create` asks for, by its route key.
#[derive(Clone, Copy)]
enum DefinitionRoute {
    List,
    Create,
    Get,
    Delete,
}

async fn definitions(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let route = match route_key(&request) {
        Some(LIST) => DefinitionRoute::List,
        Some(CREATE) => DefinitionRoute::Create,
        Some(GET) => DefinitionRoute::Get,
        Some(DELETE) => DefinitionRoute::Delete,
        _ => return Err(not_served(&request)),
    };
    let workspace = required_path(&request, "workspaceId")?;
    let listing = matches!(route, DefinitionRoute::List | DefinitionRoute::Create);
    // The contract: a workspace not the token's is 401 on list and create, 404 elsewhere.
    let mismatch = if listing {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::NOT_FOUND
    };
    let tenant = workspace_tenant(&app, &request, &workspace, mismatch).await?;
    idempotency::once(&app, &tenant, Vendor::Mxo, &request, || {
        definition(&app, &tenant, route, &request)
    })
    .await
}

/// List, create, get or delete datastores of the tenant.
async fn definition(
    app: &App,
    tenant: &TenantId,
    route: DefinitionRoute,
    request: &Request,
) -> Result<Response, ApiError> {
    let table = app.table.as_ref();
    match route {
        DefinitionRoute::List => {
            let views: Vec<Value> = store::list(table, tenant)
                .await?
                .iter()
                .map(|state| state.view())
                .collect();
            Ok(json_response(StatusCode::OK, &views))
        }
        DefinitionRoute::Create => {
            let definition =
                Definition::parse(&json_body(request)?).map_err(DatastoreError::Invalid)?;
            store::create(table, tenant, definition, app.clock.now_millis()).await?;
            Ok(empty_response(StatusCode::CREATED))
        }
        DefinitionRoute::Get => {
            let api_name = api_name_of(request)?;
            let state = store::load(table, tenant, &api_name)
                .await?
                .ok_or_else(|| {
                    DatastoreError::NotFound(format!(
                        "no datastore with apiName {api_name:?} in this workspace"
                    ))
                })?;
            Ok(json_response(StatusCode::OK, &state.view()))
        }
        DefinitionRoute::Delete => {
            let api_name = api_name_of(request)?;
            store::delete(table, tenant, &api_name, app.clock.now_millis()).await?;
            Ok(empty_response(StatusCode::OK))
        }
    }
}

/// The absolute URL of a record on this server, as InsertRecord.url gives it.
fn record_url(
    request: &Request,
    workspace: &str,
    api_name: &ApiName,
    target: Target,
    outcome: &InsertOutcome,
) -> String {
    let scheme = header(request, "x-forwarded-proto").unwrap_or("http");
    let host = header(request, "host").unwrap_or("localhost");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("pk", &outcome.primary_key)
        .append_pair("sk", &outcome.secondary_key)
        .finish();
    let workspace = urlencoding::encode(workspace);
    format!(
        "{scheme}://{host}/datastores/1.0.0/{workspace}/{api_name}/{}?{query}",
        target.as_str()
    )
}

/// What a request of `datastore-stage` asks for, by its route key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RecordsRoute {
    Insert,
    Read,
    Delete,
    Lookup,
}

async fn records(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let route = match route_key(&request) {
        Some(INSERT_RECORDS) => RecordsRoute::Insert,
        Some(READ_RECORDS) => RecordsRoute::Read,
        Some(DELETE_RECORDS) => RecordsRoute::Delete,
        Some(LOOKUP) => RecordsRoute::Lookup,
        _ => return Err(not_served(&request)),
    };
    // The lookup extension shares `/custdata/v1/mxo/{sk}/…` with the Customer API's extensions.
    let workspace = match route {
        RecordsRoute::Lookup => required_path(&request, "sk")?,
        _ => required_path(&request, "workspaceId")?,
    };
    let tenant = workspace_tenant(&app, &request, &workspace, StatusCode::NOT_FOUND).await?;
    idempotency::once(&app, &tenant, Vendor::Mxo, &request, || {
        stage(&app, &tenant, &workspace, route, &request)
    })
    .await
}

/// Records in, read or deleted in a target of a datastore; the batch lookup.
async fn stage(
    app: &App,
    tenant: &TenantId,
    workspace: &str,
    route: RecordsRoute,
    request: &Request,
) -> Result<Response, ApiError> {
    let api_name = api_name_of(request)?;
    let table = app.table.as_ref();
    match route {
        RecordsRoute::Lookup => lookup(app, tenant, &api_name, request).await,
        RecordsRoute::Insert => {
            let target = target_of(request)?;
            let body = json_body(request)?;
            let Value::Array(records) = body else {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    MxoCode::General,
                    "the body must be a JSON array of records; nothing was written",
                )
                .with_problem(None, Some("body"), "a JSON array"));
            };
            let outcomes = store::insert(table, tenant, &api_name, target, &records).await?;
            let results: Vec<Value> = outcomes
                .iter()
                .map(|outcome| {
                    // `url` is required on every InsertRecord: a refused record's names where
                    // it would be (reading it finds nothing).
                    let mut result = json!({
                        "primaryKey": outcome.primary_key,
                        "secondaryKey": outcome.secondary_key,
                        "result": outcome.result,
                        "url": record_url(request, workspace, &api_name, target, outcome),
                    });
                    if let Some(message) = &outcome.message {
                        result["message"] = json!(message);
                    }
                    result
                })
                .collect();
            Ok(json_response(StatusCode::OK, &results))
        }
        RecordsRoute::Read | RecordsRoute::Delete => {
            let target = target_of(request)?;
            let query = query_parameters(request);
            let primary_key = query.get("pk").filter(|pk| !pk.is_empty()).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    MxoCode::General,
                    "query parameter pk is required",
                )
                .with_problem(None, Some("pk"), "required")
            })?;
            let secondary_key = query
                .get("sk")
                .map(String::as_str)
                .filter(|sk| !sk.is_empty());
            record_key(primary_key, "pk", None)?;
            if let Some(secondary_key) = secondary_key {
                record_key(secondary_key, "sk", None)?;
            }
            if route == RecordsRoute::Read {
                let rows =
                    store::read(table, tenant, &api_name, target, primary_key, secondary_key)
                        .await?;
                Ok(json_response(StatusCode::OK, &rows))
            } else {
                store::delete_rows(table, tenant, &api_name, target, primary_key, secondary_key)
                    .await?;
                Ok(empty_response(StatusCode::OK))
            }
        }
    }
}

/// `POST /custdata/v1/mxo/{workspaceId}/{apiName}/live/lookup` `{"keys":[{"pk","sk"}]}`:
/// up to 100 keys, all read from one version of the live table.
async fn lookup(
    app: &App,
    tenant: &TenantId,
    api_name: &ApiName,
    request: &Request,
) -> Result<Response, ApiError> {
    let body = json_body(request)?;
    let keys = body.get("keys").and_then(Value::as_array).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            MxoCode::General,
            "the body must be {\"keys\": [{\"pk\": …, \"sk\": …}]}",
        )
        .with_problem(None, Some("keys"), "an array of {pk, sk}")
    })?;
    if keys.len() > MAX_LOOKUP_KEYS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            MxoCode::General,
            format!(
                "at most {MAX_LOOKUP_KEYS} keys per lookup, got {}",
                keys.len()
            ),
        )
        .with_problem(None, Some("keys"), format!("at most {MAX_LOOKUP_KEYS}")));
    }
    let mut lookups = Vec::with_capacity(keys.len());
    for (row, key) in keys.iter().enumerate() {
        let primary_key = key
            .get("pk")
            .and_then(Value::as_str)
            .filter(|pk| !pk.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    MxoCode::General,
                    format!("keys[{row}].pk is required"),
                )
                .with_problem(Some(row), Some("pk"), "a non-empty string")
            })?;
        let secondary_key = match key.get("sk") {
            None | Some(Value::Null) => None,
            Some(Value::String(sk)) if sk.is_empty() => None,
            Some(Value::String(sk)) => Some(sk.as_str()),
            Some(_) => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    MxoCode::General,
                    format!("keys[{row}].sk must be a string"),
                )
                .with_problem(Some(row), Some("sk"), "a string"));
            }
        };
        record_key(primary_key, "pk", Some(row))?;
        if let Some(secondary_key) = secondary_key {
            record_key(secondary_key, "sk", Some(row))?;
        }
        lookups.push((primary_key.to_string(), secondary_key.map(str::to_string)));
    }
    let records = store::lookup_live(app.table.as_ref(), tenant, api_name, &lookups).await?;
    Ok(json_response(StatusCode::OK, &json!({"records": records})))
}

/// What a request of `datastore-golive` asks for, by its route key.
#[derive(Clone, Copy)]
enum SnapshotRoute {
    Reference,
    GoLive,
    Clear,
}

async fn snapshots(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    let route = match route_key(&request) {
        Some(REFERENCE) => SnapshotRoute::Reference,
        Some(GO_LIVE) => SnapshotRoute::GoLive,
        Some(CLEAR) => SnapshotRoute::Clear,
        _ => return Err(not_served(&request)),
    };
    let workspace = required_path(&request, "workspaceId")?;
    let tenant = workspace_tenant(&app, &request, &workspace, StatusCode::NOT_FOUND).await?;
    idempotency::once(&app, &tenant, Vendor::Mxo, &request, || {
        switch_pointer(&app, &tenant, route, &request)
    })
    .await
}

/// Go-live, clear, or a new reference of a target.
async fn switch_pointer(
    app: &App,
    tenant: &TenantId,
    route: SnapshotRoute,
    request: &Request,
) -> Result<Response, ApiError> {
    let api_name = api_name_of(request)?;
    let table = app.table.as_ref();
    let now = app.clock.now_millis();
    match route {
        SnapshotRoute::GoLive => {
            let reference = reference_of(request, "stagingReference")?;
            store::go_live(table, tenant, &api_name, &reference, now).await?;
            Ok(empty_response(StatusCode::OK))
        }
        SnapshotRoute::Clear => {
            let reference = reference_of(request, "tableReference")?;
            store::clear(table, tenant, &api_name, &reference, now).await?;
            Ok(empty_response(StatusCode::OK))
        }
        SnapshotRoute::Reference => {
            let target = target_of(request)?;
            let reference = store::reference(table, tenant, &api_name, target, now).await?;
            Ok(json_response(
                StatusCode::OK,
                &json!({"referenceId": reference}),
            ))
        }
    }
}

//! Monetate Auth API v0 and Data API v1 (contracts/monetate.md): API users sign an
//! assertion with their private key, exchange it for a token, and post rows into schemas
//! they defined. Every answer, success or error, is the `{meta, data}` envelope.

pub mod auth;
pub mod catalog;
pub mod records;
pub mod schemas;
pub mod users;

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Map, Value, json};

use self::auth::Caller;
use self::records::Refusal;
use self::schemas::{SaveError, Schema};
use self::users::UserError;
use crate::app::App;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::http::{
    ApiError, CustdataCode, Family, Request, Response, Vendor, body_bytes, json_body,
    json_response, path_parameter, query_parameters, route_key,
};
use crate::idempotency;
use crate::tenancy::load_profile;

/// The Data API's inline body limit: API Gateway's 10 MB payload (Lambda lowers it to
/// its own 6 MB through `Settings::lambda_limits`).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Entries of the upload log one call lists.
pub const MAX_LISTED_UPLOADS: usize = 100;
/// Rows `row_count` counts before giving up (it reads them).
pub const MAX_COUNTED_ROWS: usize = 100_000;

/// The token exchange's one route.
const REFRESH: &str = "GET /api/auth/v0/refresh/";

/// `GET /api/auth/v0/refresh/` (binary `monetate-auth`).
pub static AUTH_FAMILY: Family = Family {
    name: "monetate-auth",
    vendor: Vendor::Monetate,
    routes: &[REFRESH],
    max_body_bytes: 16 * 1024,
    handler: |app, request| {
        Box::pin(async move {
            match route_key(&request) {
                Some(REFRESH) => auth::refresh(&app, &request).await,
                _ => Err(not_allowed(&request)),
            }
        })
    },
};

// The Data API's routes and the `/custdata/v1/monetate` extensions, as template.yaml writes
// them: the route keys `DATA_FAMILY` dispatches on.
const LIST_SCHEMAS: &str = "GET /api/data/v1/{retailer}/production/schema/";
const CREATE_SCHEMA: &str = "POST /api/data/v1/{retailer}/production/schema/";
const GET_SCHEMA: &str = "GET /api/data/v1/{retailer}/production/schema/{schemaName}/";
const PATCH_SCHEMA: &str = "PATCH /api/data/v1/{retailer}/production/schema/{schemaName}/";
const LIST_SCHEMA_TYPES: &str = "GET /api/data/v1/{retailer}/production/schematype/";
const GET_SCHEMA_TYPE: &str = "GET /api/data/v1/{retailer}/production/schematype/{schemaType}/";
const LIST_UPLOADS: &str = "GET /api/data/v1/{retailer}/production/upload/{schemaName}/";
const POST_ROWS: &str = "POST /api/data/v1/{retailer}/production/data/{schemaName}/";
const SPOT_CHECK: &str = "GET /api/data/v1/{retailer}/production/data/{schemaName}/";
const SPOT_CHECK_ALIAS: &str = "GET /api/data/v1/{retailer}/production/data/";
const LIST_CATALOGS: &str = "GET /api/data/v1/{retailer}/production/defaultcatalog/";
const ADD_CATALOG: &str = "POST /api/data/v1/{retailer}/production/defaultcatalog/";
const BULK_CATALOGS: &str = "POST /api/data/v1/{retailer}/production/bulk-defaultcatalog/";
const LIST_USERS: &str = "GET /custdata/v1/monetate/{retailer}/api-users";
const CREATE_USER: &str = "POST /custdata/v1/monetate/{retailer}/api-users";
const ADD_KEY: &str = "POST /custdata/v1/monetate/{retailer}/api-users/{username}/keys";
const DEACTIVATE_KEY: &str =
    "POST /custdata/v1/monetate/{retailer}/api-users/{username}/keys/{keyId}/deactivate";
const LOOKUP: &str = "POST /custdata/v1/monetate/{retailer}/data/{schemaName}/lookup";
const ERASE: &str = "DELETE /custdata/v1/monetate/{retailer}/customers/{customerId}";

/// Every Data API route and the `/custdata/v1/monetate` extensions (binary `monetate-data`).
pub static DATA_FAMILY: Family = Family {
    name: "monetate-data",
    vendor: Vendor::Monetate,
    routes: &[
        LIST_SCHEMAS,
        CREATE_SCHEMA,
        GET_SCHEMA,
        PATCH_SCHEMA,
        LIST_SCHEMA_TYPES,
        GET_SCHEMA_TYPE,
        LIST_UPLOADS,
        POST_ROWS,
        SPOT_CHECK,
        SPOT_CHECK_ALIAS,
        LIST_CATALOGS,
        ADD_CATALOG,
        BULK_CATALOGS,
        LIST_USERS,
        CREATE_USER,
        ADD_KEY,
        DEACTIVATE_KEY,
        LOOKUP,
        ERASE,
    ],
    max_body_bytes: MAX_BODY_BYTES,
    handler: |app, request| Box::pin(data(app, request)),
};

/// A success in the `{meta, data}` envelope.
pub fn envelope(status: StatusCode, data: Value) -> Response {
    envelope_with(status, data, Map::new(), &[])
}

fn envelope_with(
    status: StatusCode,
    data: Value,
    extra_meta: Map<String, Value>,
    warnings: &[Problem],
) -> Response {
    let warnings: Vec<Value> = warnings
        .iter()
        .map(|p| json!({"row": p.row, "field": p.field, "message": p.rule}))
        .collect();
    let mut meta = json!({"code": status.as_u16(), "errors": [], "warnings": warnings});
    if let Some(meta) = meta.as_object_mut() {
        meta.extend(extra_meta);
    }
    json_response(status, &json!({"meta": meta, "data": data}))
}

/// A list in the envelope: everything in one page, so `next` and `previous` are null.
fn list_envelope(items: Vec<Value>) -> Response {
    let mut meta = Map::new();
    meta.insert("count".into(), json!(items.len()));
    meta.insert("next".into(), Value::Null);
    meta.insert("previous".into(), Value::Null);
    envelope_with(StatusCode::OK, Value::Array(items), meta, &[])
}

pub(crate) fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, CustdataCode::BadRequest, message)
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, CustdataCode::NotFound, message)
}

fn with_problems(mut error: ApiError, problems: Vec<Problem>) -> ApiError {
    error.problems = problems;
    error
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Invalid { field, message } => {
                bad_request(format!("{field}: {message}")).with_problem(None, Some(field), message)
            }
            UserError::NotFound(message) => not_found(message),
            UserError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, CustdataCode::Conflict, message)
            }
            UserError::Storage(storage) => storage.into(),
        }
    }
}

impl From<SaveError> for ApiError {
    fn from(error: SaveError) -> Self {
        match error {
            SaveError::Refused(message) => {
                bad_request(message.clone()).with_problem(None, Some("name"), message)
            }
            SaveError::Storage(storage) => storage.into(),
        }
    }
}

/// What a Data API request asks for.
enum Route {
    ListSchemas,
    CreateSchema,
    GetSchema(String),
    PatchSchema(String),
    ListSchemaTypes,
    GetSchemaType(String),
    ListUploads(String),
    PostRows(String),
    SpotCheck(String),
    /// The seed's `/api/data/v1/{schema-name}/production/data/?id=` (contract decision 1).
    SpotCheckAlias,
    ListCatalogs,
    AddCatalog,
    BulkCatalogs,
    ListUsers,
    CreateUser,
    AddKey(String),
    DeactivateKey(String, String),
    Lookup(String),
    /// The erasure extension: a customer key.
    Erase(String),
}

impl Route {
    /// The route the request's route key names, with its path parameters; `None` for a key
    /// this family does not serve.
    fn of(request: &Request) -> Option<Route> {
        let param = |name: &str| path_parameter(request, name);
        Some(match route_key(request)? {
            LIST_SCHEMAS => Route::ListSchemas,
            CREATE_SCHEMA => Route::CreateSchema,
            GET_SCHEMA => Route::GetSchema(param("schemaName")?),
            PATCH_SCHEMA => Route::PatchSchema(param("schemaName")?),
            LIST_SCHEMA_TYPES => Route::ListSchemaTypes,
            GET_SCHEMA_TYPE => Route::GetSchemaType(param("schemaType")?),
            LIST_UPLOADS => Route::ListUploads(param("schemaName")?),
            POST_ROWS => Route::PostRows(param("schemaName")?),
            SPOT_CHECK => Route::SpotCheck(param("schemaName")?),
            SPOT_CHECK_ALIAS => Route::SpotCheckAlias,
            LIST_CATALOGS => Route::ListCatalogs,
            ADD_CATALOG => Route::AddCatalog,
            BULK_CATALOGS => Route::BulkCatalogs,
            LIST_USERS => Route::ListUsers,
            CREATE_USER => Route::CreateUser,
            ADD_KEY => Route::AddKey(param("username")?),
            DEACTIVATE_KEY => Route::DeactivateKey(param("username")?, param("keyId")?),
            LOOKUP => Route::Lookup(param("schemaName")?),
            ERASE => Route::Erase(param("customerId")?),
            _ => return None,
        })
    }
}

/// Monetate's answer to a method or route it does not serve.
fn not_allowed(request: &Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        CustdataCode::MethodNotAllowed,
        format!("{} is not allowed here", request.method()),
    )
}

/// Checks that the path's retailer is the token's; the seed's spot-check form names a
/// schema where the retailer goes, and is served when it does.
async fn resolve(
    app: &App,
    caller: &Caller,
    route: Route,
    request: &Request,
) -> Result<Route, ApiError> {
    let retailer = path_parameter(request, "retailer").unwrap_or_default();
    let owned = load_profile(app.table.as_ref(), &caller.tenant)
        .await?
        .is_some_and(|profile| profile.monetate_retailer == retailer);
    if let Route::SpotCheckAlias = route {
        if schemas::get(app.table.as_ref(), &caller.tenant, &retailer)
            .await?
            .is_some()
        {
            return Ok(Route::SpotCheck(retailer));
        }
        if owned {
            return Err(
                bad_request("name the schema: /data/{schema-name}/?id=").with_problem(
                    None,
                    Some("schema-name"),
                    "required in the path",
                ),
            );
        }
    }
    if !owned {
        return Err(not_found(format!(
            "this token has no retailer or schema {retailer:?}"
        )));
    }
    Ok(route)
}

async fn data(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    // The route first: a key this family does not serve is a defect, whoever asks.
    let route = Route::of(&request).ok_or_else(|| not_allowed(&request))?;
    let caller = auth::caller(&app, &request).await?;
    let route = resolve(&app, &caller, route, &request).await?;
    idempotency::once(&app, &caller.tenant, Vendor::Monetate, &request, || {
        serve(&app, &caller, route, &request)
    })
    .await
}

/// One Data API request of the caller's retailer.
async fn serve(
    app: &App,
    caller: &Caller,
    route: Route,
    request: &Request,
) -> Result<Response, ApiError> {
    let tenant = &caller.tenant;
    match route {
        Route::ListSchemas => list_schemas(app, tenant, request).await,
        Route::CreateSchema => {
            let schema = schemas::parse_new_schema(&json_body(request)?).map_err(|problems| {
                with_problems(bad_request("the schema is not valid"), problems)
            })?;
            let schema =
                schemas::create(app.table.as_ref(), tenant, schema, app.clock.now_millis()).await?;
            Ok(envelope(StatusCode::CREATED, json!(schema)))
        }
        Route::GetSchema(name) => {
            let (schema, _) = schema(app, tenant, &name).await?;
            let extras = schema_extras(app, tenant, &schema, ExtrasAsked::of(request)?).await?;
            Ok(envelope(StatusCode::OK, schemas::shown(&schema, extras)))
        }
        Route::PatchSchema(name) => {
            let (schema, version) = schema(app, tenant, &name).await?;
            let updated = schemas::patched(&schema, &json_body(request)?).map_err(|problems| {
                with_problems(bad_request("the change is not valid"), problems)
            })?;
            schemas::replace(app.table.as_ref(), tenant, &updated, version).await?;
            Ok(envelope(StatusCode::OK, json!(updated)))
        }
        Route::ListSchemaTypes => Ok(list_envelope(schemas::schema_types())),
        Route::GetSchemaType(name) => schemas::schema_types()
            .into_iter()
            .find(|entry| entry["name"] == name.as_str())
            .map(|entry| envelope(StatusCode::OK, entry))
            .ok_or_else(|| not_found(format!("no schema type {name:?}"))),
        Route::ListUploads(name) => {
            schema(app, tenant, &name).await?;
            let uploads =
                records::uploads(app.table.as_ref(), tenant, &name, MAX_LISTED_UPLOADS).await?;
            Ok(list_envelope(uploads.iter().map(|u| json!(u)).collect()))
        }
        Route::PostRows(name) => post_rows(app, tenant, &name, request).await,
        Route::SpotCheck(name) => spot_check(app, caller, &name, request).await,
        Route::SpotCheckAlias => Err(not_found("no such schema")),
        Route::ListCatalogs => Ok(list_envelope(
            catalog::list(app.table.as_ref(), tenant).await?,
        )),
        Route::AddCatalog => {
            let entry = catalog::parse_entry(&json_body(request)?, None).map_err(|problems| {
                with_problems(bad_request("the entry is not valid"), problems)
            })?;
            // The vendor's DefaultAccountCatalogCreatedResponse: `data` is the one entry.
            let mut shown = save_catalogs(app, tenant, vec![entry]).await?;
            Ok(envelope(
                StatusCode::CREATED,
                shown.pop().unwrap_or_default(),
            ))
        }
        Route::BulkCatalogs => bulk_catalogs(app, tenant, request).await,
        Route::ListUsers => {
            let users = users::list_users(app.table.as_ref(), tenant).await?;
            Ok(list_envelope(users.iter().map(|u| json!(u)).collect()))
        }
        Route::CreateUser => {
            let body = json_body(request)?;
            let text = |name: &str| body.get(name).and_then(Value::as_str);
            let user = users::create_user(
                app.table.as_ref(),
                tenant,
                text("username"),
                text("public_key_pem"),
                app.clock.now_millis(),
            )
            .await?;
            Ok(envelope(StatusCode::CREATED, json!(user)))
        }
        Route::AddKey(username) => {
            let body = json_body(request)?;
            let pem_text = body
                .get("public_key_pem")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad_request("public_key_pem is required").with_problem(
                        None,
                        Some("public_key_pem"),
                        "required: the PEM text of an RSA public key",
                    )
                })?;
            let key = users::add_key(
                app.table.as_ref(),
                tenant,
                &username,
                pem_text,
                app.clock.now_millis(),
            )
            .await?;
            Ok(envelope(
                StatusCode::CREATED,
                json!({"key_id": key.key_id, "bits": key.bits, "active": key.active}),
            ))
        }
        Route::DeactivateKey(username, key_id) => {
            let key = users::deactivate_key(
                app.table.as_ref(),
                tenant,
                &username,
                &key_id,
                app.clock.now_millis(),
            )
            .await?;
            Ok(envelope(StatusCode::OK, key))
        }
        Route::Lookup(name) => lookup(app, tenant, &name, request).await,
        Route::Erase(customer) => {
            match crate::privacy::erase_customer_key(
                app.customers(),
                tenant,
                &customer,
                app.clock.now_millis(),
            )
            .await?
            {
                Some(erased) => Ok(envelope(StatusCode::OK, json!(erased))),
                None => Err(not_found("no customer with this customer key")),
            }
        }
    }
}

async fn schema(app: &App, tenant: &TenantId, name: &str) -> Result<(Schema, i64), ApiError> {
    schemas::get(app.table.as_ref(), tenant, name)
        .await?
        .ok_or_else(|| not_found(format!("no schema {name:?}")))
}

/// A boolean query parameter (`true`/`false`, `1`/`0`), absent meaning false.
fn flag(request: &Request, name: &str) -> Result<bool, ApiError> {
    match query_parameters(request)
        .get(name)
        .map(|v| v.to_ascii_lowercase())
    {
        None => Ok(false),
        Some(value) if value == "true" || value == "1" => Ok(true),
        Some(value) if value == "false" || value == "0" => Ok(false),
        Some(value) => Err(
            bad_request(format!("{name} is true or false, not {value:?}")).with_problem(
                None,
                Some(name),
                "true or false",
            ),
        ),
    }
}

/// What a schema read or list adds to each schema, as its query asks.
#[derive(Debug, Clone, Copy)]
struct ExtrasAsked {
    row_count: bool,
    latest_upload: bool,
}

impl ExtrasAsked {
    /// The query's flags, each checked even where no schema is shown (an empty list too).
    fn of(request: &Request) -> Result<ExtrasAsked, ApiError> {
        flag(request, "usable_in_accounts")?;
        Ok(ExtrasAsked {
            row_count: flag(request, "row_count")?,
            latest_upload: flag(request, "latest_upload")?,
        })
    }
}

/// `row_count` and `last_file_upload` when the query asks for them.
async fn schema_extras(
    app: &App,
    tenant: &TenantId,
    schema: &Schema,
    asked: ExtrasAsked,
) -> Result<Map<String, Value>, ApiError> {
    let mut extras = Map::new();
    if asked.row_count {
        let count =
            records::count_rows(app.table.as_ref(), tenant, &schema.name, MAX_COUNTED_ROWS).await?;
        extras.insert("row_count".into(), json!(count));
    }
    if asked.latest_upload {
        let last = records::uploads(app.table.as_ref(), tenant, &schema.name, 1)
            .await?
            .pop();
        // Both spellings the vendor documents (contract decision 7).
        let shown = last.map(|upload| {
            let mut value = json!(upload);
            value["validation_error"] = json!(upload.validation_errors.join("; "));
            value
        });
        extras.insert("last_file_upload".into(), json!(shown));
    }
    Ok(extras)
}

async fn list_schemas(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let asked = ExtrasAsked::of(request)?;
    let mut shown = Vec::new();
    for schema in schemas::list(app.table.as_ref(), tenant).await? {
        let extras = schema_extras(app, tenant, &schema, asked).await?;
        shown.push(schemas::shown(&schema, extras));
    }
    Ok(list_envelope(shown))
}

fn refused(refusal: Refusal) -> ApiError {
    let listed = if refusal.total > refusal.problems.len() {
        format!(" (the first {} are listed)", refusal.problems.len())
    } else {
        String::new()
    };
    with_problems(
        bad_request(format!(
            "{} rows rejected, {} problems{listed}; nothing was written",
            refusal.rows, refusal.total
        )),
        refusal.problems,
    )
}

async fn post_rows(
    app: &App,
    tenant: &TenantId,
    name: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let (schema, _) = schema(app, tenant, name).await?;
    let body = json_body(request)?;
    let rows = match records::check_body(&schema, &body) {
        Ok(rows) => rows,
        Err(refusal) => {
            records::log_refusal(
                app.table.as_ref(),
                tenant,
                &schema,
                &refusal,
                app.clock.now_millis(),
            )
            .await?;
            return Err(refused(refusal));
        }
    };
    let posted = records::post(
        app.customers(),
        app.clock.as_ref(),
        tenant,
        &schema,
        body_bytes(request),
        rows,
    )
    .await?;
    Ok(envelope_with(
        StatusCode::CREATED,
        json!({"schema_rows": posted.rows}),
        Map::new(),
        &posted.warnings,
    ))
}

async fn spot_check(
    app: &App,
    caller: &Caller,
    name: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    if !records::take_spot_check(
        app.table.as_ref(),
        &caller.tenant,
        &caller.username,
        app.clock.now_millis(),
    )
    .await?
    {
        crate::metrics::rate_limited(crate::metrics::RateLimit::MonetateSpotCheck);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            CustdataCode::TooManyRequests,
            "the spot check answers one request per second per API user; for lookups use POST /custdata/v1/monetate/{retailer}/data/{schema-name}/lookup",
        )
        .with_header("retry-after", "1"));
    }
    let id = query_parameters(request)
        .remove("id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            bad_request("the id query parameter is required").with_problem(
                None,
                Some("id"),
                "required: the record's unique key or identifier",
            )
        })?;
    let (schema, _) = schema(app, &caller.tenant, name).await?;
    let rows = records::find(app.customers(), &caller.tenant, &schema, &id).await?;
    if rows.is_empty() {
        return Err(not_found(format!(
            "schema {name} has no record with this id"
        )));
    }
    Ok(envelope(StatusCode::OK, json!({"schema_rows": rows})))
}

/// The lookup extension: up to 100 ids in one call, without the spot check's limit.
async fn lookup(
    app: &App,
    tenant: &TenantId,
    name: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let (schema, _) = schema(app, tenant, name).await?;
    let body = json_body(request)?;
    let ids: Vec<String> = body
        .get("ids")
        .and_then(Value::as_array)
        .filter(|ids| (1..=records::MAX_LOOKUP_IDS).contains(&ids.len()))
        .and_then(|ids| {
            ids.iter()
                .map(|id| id.as_str().map(str::to_string))
                .collect()
        })
        .ok_or_else(|| {
            let rule = format!("1 to {} strings", records::MAX_LOOKUP_IDS);
            bad_request(format!("ids is {rule}")).with_problem(None, Some("ids"), rule)
        })?;
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for id in ids {
        let found = records::find(app.customers(), tenant, &schema, &id).await?;
        if found.is_empty() {
            missing.push(id);
        }
        rows.extend(found);
    }
    Ok(envelope(
        StatusCode::OK,
        json!({"schema_rows": rows, "missing": missing}),
    ))
}

async fn bulk_catalogs(
    app: &App,
    tenant: &TenantId,
    request: &Request,
) -> Result<Response, ApiError> {
    let body = json_body(request)?;
    let rule = format!("1 to {} entries of {{account, schema}}", catalog::MAX_BULK);
    let entries = body
        .get("defaultaccountcatalogs")
        .and_then(Value::as_array)
        .filter(|entries| (1..=catalog::MAX_BULK).contains(&entries.len()))
        .ok_or_else(|| {
            bad_request(format!("defaultaccountcatalogs is {rule}")).with_problem(
                None,
                Some("defaultaccountcatalogs"),
                rule,
            )
        })?;
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match catalog::parse_entry(entry, Some(index + 1)) {
            Ok(entry)
                if checked
                    .iter()
                    .any(|seen: &catalog::DefaultCatalog| seen.account == entry.account) =>
            {
                problems.push(Problem {
                    row: Some(index + 1),
                    field: Some("account".into()),
                    rule: "an account appears once per call".into(),
                });
            }
            Ok(entry) => checked.push(entry),
            Err(mut found) => problems.append(&mut found),
        }
    }
    if !problems.is_empty() {
        return Err(with_problems(
            bad_request("entries are not valid; nothing was written"),
            problems,
        ));
    }
    let shown = save_catalogs(app, tenant, checked).await?;
    Ok(envelope(StatusCode::CREATED, Value::Array(shown)))
}

async fn save_catalogs(
    app: &App,
    tenant: &TenantId,
    entries: Vec<catalog::DefaultCatalog>,
) -> Result<Vec<Value>, ApiError> {
    let unknown = catalog::unknown_schemas(app.table.as_ref(), tenant, &entries).await?;
    if let Some(first) = unknown.first() {
        return Err(
            not_found(format!("no schema with id {first}")).with_problem(
                None,
                Some("schema"),
                "the id of one of your schemas",
            ),
        );
    }
    catalog::save(app.table.as_ref(), tenant, &entries).await?;
    Ok(entries
        .iter()
        .map(|entry| json!({"account": entry.account, "schema": entry.schema}))
        .collect())
}

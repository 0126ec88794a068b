//! Appier AIXON csv-upload (contracts/aixon.md): data cells of customer data, written
//! through `x-api-key`, in JSON or CSV. A write is checked whole (all or nothing), stored in
//! the blob store and answered as soon as it is durable; the import step applies it to the
//! cell and to the shared customer store (customuid is the tenant's customer key).

pub mod body;
mod column_name;
pub mod columns;
mod customuid;
pub mod header;
pub mod import;
pub mod lease;
pub mod order;
pub mod store;

pub use self::column_name::{ColumnKind, ColumnName};
pub use self::customuid::{CustomUid, MAX_CUSTOMUID_CHARS};

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use self::body::Format;
use self::columns::{Rejection, check_body, fit_header};
use self::header::HeaderFit;
use self::store::{Cell, CreateCellError, Mode, Status, UpdateRecord};
use crate::app::App;
use crate::domain::TenantId;
use crate::http::{
    ApiError, CustdataCode, Family, Request, Response, ScheduledTask, Vendor, body_bytes, header,
    json_response, media_type, path_parameter, route_key,
};
use crate::idempotency;
use crate::storage::{BlobReader, keys};
use crate::tenancy::{CredentialKind, Presented, authenticate};

/// The vendor's request limit; the local server takes bodies this large inline.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Characters of `x-node-description`.
pub const MAX_DESCRIPTION_CHARS: usize = 256;
/// How long a presigned upload URL works.
pub const UPLOAD_URL_SECONDS: u64 = 3600;

// The csv-upload routes and the `/custdata/v1/aixon` extensions, as template.yaml writes
// them: the route keys `UPLOAD_FAMILY` dispatches on.
const LIST: &str = "GET /api_upload/v1/csv-upload";
const CREATE: &str = "PUT /api_upload/v1/csv-upload";
const PATCH: &str = "PATCH /api_upload/v1/csv-upload/{resourceId}";
/// curl without -X sends POST (the seed's examples): served as the non-destructive PATCH.
const POST_AS_PATCH: &str = "POST /api_upload/v1/csv-upload/{resourceId}";
const PUT: &str = "PUT /api_upload/v1/csv-upload/{resourceId}";
const NEW_UPLOAD: &str = "POST /custdata/v1/aixon/csv-upload/{resourceId}/uploads";
const UPDATE_STATUS: &str = "GET /custdata/v1/aixon/csv-upload/{resourceId}/updates/{updateId}";
const READ_ROW: &str = "GET /custdata/v1/aixon/csv-upload/{resourceId}/rows/{customuid}";
const ERASE_CUSTOMER: &str = "DELETE /custdata/v1/aixon/customers/{customuid}";

/// Every csv-upload route and the `/custdata/v1/aixon` extensions.
pub static UPLOAD_FAMILY: Family = Family {
    name: "aixon-upload",
    vendor: Vendor::Aixon,
    routes: &[
        LIST,
        CREATE,
        PATCH,
        POST_AS_PATCH,
        PUT,
        NEW_UPLOAD,
        UPDATE_STATUS,
        READ_ROW,
        ERASE_CUSTOMER,
    ],
    max_body_bytes: MAX_BODY_BYTES,
    handler: |app, request| Box::pin(upload(app, request)),
};

/// Applies queued bodies: S3 events and a schedule in AWS, a timer locally.
pub static IMPORT_TASK: ScheduledTask = ScheduledTask {
    name: "aixon-import",
    local_interval: std::time::Duration::from_millis(500),
    run: |app, event| Box::pin(import::handle_event(app, event)),
};

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, CustdataCode::BadRequest, message)
}

fn not_found(what: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, CustdataCode::NotFound, what)
}

/// The tenant of the request's `x-api-key`.
pub(crate) async fn api_key_tenant(app: &App, request: &Request) -> Result<TenantId, ApiError> {
    let secret = header(request, "x-api-key").unwrap_or_default().trim();
    if secret.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            CustdataCode::Unauthorized,
            "the x-api-key header is required",
        ));
    }
    let presented = Presented::Bearer {
        kind: CredentialKind::AixonApiKey,
        secret,
    };
    Ok(authenticate(app.table.as_ref(), presented).await?.tenant)
}

fn success(message: Value) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"message": message, "status": "success"}),
    )
}

/// What a request asks for, by its route key.
enum Route {
    List,
    Create,
    Update(Mode),
    NewUpload,
    UpdateStatus,
    ReadRow,
    EraseCustomer,
}

impl Route {
    /// The route the request's route key names; `None` for a key this family does not serve.
    fn of(request: &Request) -> Option<Route> {
        Some(match route_key(request)? {
            LIST => Route::List,
            CREATE => Route::Create,
            PUT => Route::Update(Mode::Put),
            PATCH | POST_AS_PATCH => Route::Update(Mode::Patch),
            NEW_UPLOAD => Route::NewUpload,
            UPDATE_STATUS => Route::UpdateStatus,
            READ_ROW => Route::ReadRow,
            ERASE_CUSTOMER => Route::EraseCustomer,
            _ => return None,
        })
    }
}

async fn upload(app: Arc<App>, request: Request) -> Result<Response, ApiError> {
    // The route first: a key this family does not serve is a defect, whoever asks.
    let route = Route::of(&request).ok_or_else(|| {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            CustdataCode::MethodNotAllowed,
            format!("{} is not allowed here", request.method()),
        )
    })?;
    let tenant = api_key_tenant(&app, &request).await?;
    idempotency::once(&app, &tenant, Vendor::Aixon, &request, || {
        route_upload(&app, &tenant, route, &request)
    })
    .await
}

/// Routes a request of the tenant to its work.
async fn route_upload(
    app: &App,
    tenant: &TenantId,
    route: Route,
    request: &Request,
) -> Result<Response, ApiError> {
    let resource = path_parameter(request, "resourceId").unwrap_or_default();
    match route {
        Route::List => list(app, tenant).await,
        Route::Create => create(app, tenant, request).await,
        Route::Update(mode) => update(app, tenant, &resource, mode, request).await,
        Route::NewUpload => new_upload(app, tenant, &resource, request).await,
        Route::UpdateStatus => {
            let update_id = path_parameter(request, "updateId").unwrap_or_default();
            let update = store::get_update(app.table.as_ref(), tenant, &resource, &update_id)
                .await?
                .ok_or_else(|| {
                    not_found(format!("no update {update_id} of data cell {resource}"))
                })?;
            Ok(json_response(StatusCode::OK, &update.to_status()))
        }
        Route::ReadRow => {
            let customuid = path_parameter(request, "customuid").unwrap_or_default();
            // A string that is no customuid names no row.
            let row = match CustomUid::parse(&customuid) {
                Some(customuid) => {
                    store::get_row(
                        app.table.as_ref(),
                        &app.hash_key,
                        tenant,
                        &resource,
                        &customuid,
                    )
                    .await?
                }
                None => None,
            };
            let row = row.ok_or_else(|| {
                not_found(format!(
                    "data cell {resource} has no row for this customuid"
                ))
            })?;
            Ok(json_response(StatusCode::OK, &row))
        }
        Route::EraseCustomer => {
            let customuid = path_parameter(request, "customuid").unwrap_or_default();
            let Some(customuid) = CustomUid::parse(&customuid) else {
                return Err(not_found("no such customer"));
            };
            erase(app, tenant, &customuid).await
        }
    }
}

async fn list(app: &App, tenant: &TenantId) -> Result<Response, ApiError> {
    let mut entries = vec![
        json!({"DESCRIPTION": "GET all csv-upload resources", "SUPPORT_METHODS": ["GET"], "URL": "/api_upload/v1/csv-upload"}),
        json!({"DESCRIPTION": "Create a new CSV Upload node", "SUPPORT_METHODS": ["PUT"], "URL": "/api_upload/v1/csv-upload"}),
    ];
    entries.extend(
        store::list_cells(app.table.as_ref(), tenant)
            .await?
            .into_iter()
            .map(|cell| {
                json!({
                    "DESCRIPTION": format!("Upload csv data {}: {}", cell.id, cell.description),
                    "SUPPORT_METHODS": ["PUT", "PATCH"],
                    "URL": format!("/api_upload/v1/csv-upload/{}", cell.id),
                })
            }),
    );
    Ok(success(Value::Array(entries)))
}

/// The body's format from its content type; 415 for any other.
fn body_format(request: &Request) -> Result<Format, ApiError> {
    let media = media_type(request).unwrap_or_default();
    Format::of_media_type(&media).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            CustdataCode::UnsupportedMediaType,
            format!(
                "Content-Type {media:?} is not taken: send application/json ({{\"header\", \"data\"}}) or text/csv"
            ),
        )
    })
}

fn rejected(rejection: Rejection) -> ApiError {
    let mut error = bad_request(format!(
        "{} rows rejected, {} problems{}; nothing was written",
        rejection.rows_rejected,
        rejection.total,
        if rejection.total > rejection.problems.len() {
            format!(" (the first {} are listed)", rejection.problems.len())
        } else {
            String::new()
        }
    ));
    error.problems = rejection.problems;
    error
}

fn header_refused(problems: Vec<crate::domain::Problem>) -> ApiError {
    let mut error = bad_request("the header does not fit the data cell; nothing was written");
    error.problems = problems;
    error
}

/// Checks an inline body whole; its header if it passes.
fn check_inline(format: Format, request: &Request) -> Result<columns::Checked, ApiError> {
    check_body(format, body_bytes(request), |_| {}).map_err(rejected)
}

async fn create(app: &App, tenant: &TenantId, request: &Request) -> Result<Response, ApiError> {
    let description = header(request, "x-node-description")
        .unwrap_or_default()
        .trim();
    if description.is_empty() || description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(
            bad_request("the x-node-description header names the new data cell").with_problem(
                None,
                Some("x-node-description"),
                format!("required, 1 to {MAX_DESCRIPTION_CHARS} characters"),
            ),
        );
    }
    let format = body_format(request)?;
    let checked = check_inline(format, request)?;
    let cell = store::create_cell(
        app.table.as_ref(),
        tenant,
        description,
        checked.header.names(),
        app.clock.now_millis(),
    )
    .await
    .map_err(|error| match error {
        CreateCellError::TooManyCells => {
            let rule = error.to_string();
            bad_request(rule.clone()).with_problem(None, None, rule)
        }
        CreateCellError::Storage(storage) => storage.into(),
    })?;
    let update = match accept(
        app,
        tenant,
        &cell,
        Mode::Create,
        format,
        checked.rows,
        request,
    )
    .await
    {
        Ok(update) => update,
        Err(error) => {
            // Without its first update the cell is an empty leftover the client never
            // heard of (its retry creates another): take it back.
            if let Err(cleanup) =
                store::delete_cell(app.table.as_ref(), app.blobs.as_ref(), tenant, &cell.id).await
            {
                tracing::warn!(%cleanup, cell = %cell.id, "could not remove a cell whose creation failed");
            }
            return Err(error);
        }
    };
    Ok(success(
        json!({"RESOURCE_ID": cell.id, "STATUS": "CREATED", "UPDATE_ID": update.id}),
    ))
}

async fn update(
    app: &App,
    tenant: &TenantId,
    resource: &str,
    mode: Mode,
    request: &Request,
) -> Result<Response, ApiError> {
    let format = body_format(request)?;
    let checked = match check_body(format, body_bytes(request), |_| {}) {
        Ok(checked) => checked,
        Err(mut rejection) => {
            // Name the columns the header drops too, not only the bad rows.
            let cell = store::get_cell(app.table.as_ref(), tenant, resource).await?;
            if let (Some(cell), Some(header)) = (cell, &rejection.header)
                && let Err(mut dropped) = fit_header(&cell.header, header, mode)
            {
                rejection.total += dropped.len();
                dropped.append(&mut rejection.problems);
                dropped.truncate(columns::MAX_LISTED_PROBLEMS);
                rejection.problems = dropped;
            }
            return Err(rejected(rejection));
        }
    };
    let cell =
        match header::fit_cell_header(app.table.as_ref(), tenant, resource, &checked.header, mode)
            .await?
        {
            HeaderFit::Fits(cell) => cell,
            HeaderFit::NoCell => return Err(not_found(format!("no data cell {resource}"))),
            HeaderFit::Refused(problems) => return Err(header_refused(problems)),
        };
    let update = accept(app, tenant, &cell, mode, format, checked.rows, request).await?;
    Ok(success(
        json!({"RESOURCE_ID": cell.id, "STATUS": "RECEIVED", "UPDATE_ID": update.id}),
    ))
}

/// Queues a checked inline body: its update record, then the body itself in the blob store
/// (whose arrival is what triggers the import). Answered only once both are durable. A body
/// that could not be stored fails its update at once, so that later bodies of the cell need
/// not wait for it ([`order`]).
async fn accept(
    app: &App,
    tenant: &TenantId,
    cell: &Cell,
    mode: Mode,
    format: Format,
    rows: usize,
    request: &Request,
) -> Result<UpdateRecord, ApiError> {
    let id = store::next_update_id(app.table.as_ref(), tenant, &cell.id).await?;
    // Read after the number was taken: the import order relies on it.
    let now = app.clock.now_millis();
    let mut update = UpdateRecord::new(id, &cell.id, mode, format, now);
    update.checked = true;
    update.rows = rows;
    store::put_update(app.table.as_ref(), tenant, &update, None).await?;
    let bytes = body_bytes(request).to_vec();
    let reader: BlobReader = Box::pin(std::io::Cursor::new(bytes));
    let stored = app
        .blobs
        .put(
            &keys::aixon_blob(tenant, &cell.id, &update.id),
            format.media_type(),
            reader,
        )
        .await;
    if let Err(error) = stored {
        if let Err(failing) = store::fail_unarrived(
            app.table.as_ref(),
            tenant,
            &update,
            order::NEVER_ARRIVED,
            app.clock.now_millis(),
        )
        .await
        {
            tracing::warn!(%failing, "could not mark an update whose body was not stored; the import gives it up a minute after it was accepted");
        }
        return Err(error.into());
    }
    Ok(update)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadRequest {
    mode: String,
    #[serde(rename = "contentType")]
    content_type: String,
}

/// The presigned-upload extension: a URL to PUT a body of any size to; the body is checked
/// and applied when it arrives, like an inline PATCH or PUT.
async fn new_upload(
    app: &App,
    tenant: &TenantId,
    resource: &str,
    request: &Request,
) -> Result<Response, ApiError> {
    let asked: UploadRequest = serde_json::from_slice(body_bytes(request)).map_err(|error| {
        bad_request(format!("the body is {{\"mode\": \"PATCH\"|\"PUT\", \"contentType\": \"text/csv\"|\"application/json\"}}: {error}"))
    })?;
    let mode = match asked.mode.to_ascii_uppercase().as_str() {
        "PATCH" => Mode::Patch,
        "PUT" => Mode::Put,
        _ => {
            return Err(bad_request("mode is PATCH or PUT").with_problem(
                None,
                Some("mode"),
                "PATCH or PUT",
            ));
        }
    };
    let format = Format::of_media_type(&asked.content_type).ok_or_else(|| {
        bad_request("contentType is text/csv or application/json").with_problem(
            None,
            Some("contentType"),
            "text/csv or application/json",
        )
    })?;
    let cell = store::get_cell(app.table.as_ref(), tenant, resource)
        .await?
        .ok_or_else(|| not_found(format!("no data cell {resource}")))?;
    let id = store::next_update_id(app.table.as_ref(), tenant, &cell.id).await?;
    // Read after the number was taken: the import order relies on it.
    let now = app.clock.now_millis();
    let mut update = UpdateRecord::new(id, &cell.id, mode, format, now);
    let presigned = app
        .blobs
        .presign_put(
            &keys::aixon_blob(tenant, &cell.id, &update.id),
            format.media_type(),
            std::time::Duration::from_secs(UPLOAD_URL_SECONDS),
        )
        .await?;
    update.status = Status::WaitingForUpload;
    update.upload_expires_at = Some(presigned.expires_at);
    store::put_update(app.table.as_ref(), tenant, &update, None).await?;
    let headers: serde_json::Map<String, Value> = presigned
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), json!(value)))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "UPLOAD_ID": update.id,
            "UPDATE_ID": update.id,
            "RESOURCE_ID": cell.id,
            "UPLOAD_URL": presigned.url,
            "METHOD": presigned.method,
            "HEADERS": headers,
            "EXPIRES_AT": presigned.expires_at,
        }),
    ))
}

/// The erasure extension: the customer leaves every cell and the customer store, and stays
/// suppressed (later rows for it are refused, per row).
async fn erase(app: &App, tenant: &TenantId, customuid: &CustomUid) -> Result<Response, ApiError> {
    let erased = crate::privacy::erase_customer_key(
        app.customers(),
        tenant,
        customuid,
        app.clock.now_millis(),
    )
    .await?
    .ok_or_else(|| not_found("no customer with this customuid"))?;
    Ok(success(json!({
        "CUSTOMUID": customuid,
        "STATUS": "ERASED",
        "CELLS": erased.surfaces.get("aixon").and_then(|aixon| aixon.rows),
        "COMPLETE": erased.complete,
        "SURFACES": erased.surfaces,
    })))
}

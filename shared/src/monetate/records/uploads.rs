//! The file-upload log: one entry per posted or refused body, kept for 30 days.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::UPLOAD_RETENTION_SECONDS;
use super::check::Refusal;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::monetate::schemas::Schema;
use crate::storage::{Condition, Item, ItemTable, Key, Query, StorageError, keys};

/// One entry of the upload log (Monetate's FileUpload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileUpload {
    pub id: String,
    pub status: String,
    pub upload_time: String,
    pub import_start_time: Option<String>,
    pub import_end_time: Option<String>,
    pub row_count: usize,
    pub validation_errors: Vec<String>,
    pub validation_warnings: Vec<String>,
}

pub(super) fn describe(problem: &Problem) -> String {
    let mut text = String::new();
    if let Some(row) = problem.row {
        text.push_str(&format!("row {row}, "));
    }
    if let Some(field) = &problem.field {
        text.push_str(&format!("field {field}: "));
    }
    text.push_str(&problem.rule);
    text
}

/// Logs an upload made at `now_millis` (it is kept for [`UPLOAD_RETENTION_SECONDS`] from then).
pub(super) async fn log_upload(
    table: &dyn ItemTable,
    tenant: &TenantId,
    schema: &Schema,
    upload: &FileUpload,
    now_millis: i64,
) -> Result<(), StorageError> {
    let key = Key::new(keys::monetate_uploads_pk(tenant, &schema.name), &upload.id);
    let item = Item::new(key.pk, key.sk)
        .with("upload", json!(upload))
        .expiring_at(now_millis / 1000 + UPLOAD_RETENTION_SECONDS);
    table.put(item, Condition::Always).await
}

/// A new upload log entry, made at `now`.
pub(super) fn new_upload(now: i64, status: &str, rows: usize) -> FileUpload {
    let time = crate::clock::iso8601_millis(now);
    FileUpload {
        id: format!("{now:013}{}", &crate::tenancy::new_id("")[..8]),
        status: status.to_string(),
        upload_time: time.clone(),
        import_start_time: Some(time),
        import_end_time: None,
        row_count: rows,
        validation_errors: Vec::new(),
        validation_warnings: Vec::new(),
    }
}

/// The upload log of a schema, newest first.
pub async fn uploads(
    table: &dyn ItemTable,
    tenant: &TenantId,
    schema: &str,
    limit: usize,
) -> Result<Vec<FileUpload>, StorageError> {
    let query = Query::partition(keys::monetate_uploads_pk(tenant, schema))
        .descending()
        .limit(limit);
    Ok(table
        .query(query)
        .await?
        .items
        .iter()
        .filter_map(|item| serde_json::from_value(item.get("upload")?.clone()).ok())
        .collect())
}

/// Logs a refused body as a VALIDATION_ERROR upload.
pub async fn log_refusal(
    table: &dyn ItemTable,
    tenant: &TenantId,
    schema: &Schema,
    refusal: &Refusal,
    now_millis: i64,
) -> Result<(), StorageError> {
    let mut upload = new_upload(now_millis, "VALIDATION_ERROR", 0);
    upload.validation_errors = refusal.problems.iter().map(describe).collect();
    upload.import_end_time = upload.import_start_time.clone();
    log_upload(table, tenant, schema, &upload, now_millis).await
}

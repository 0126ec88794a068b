//! The import step: applies accepted bodies from the blob store to the cell's rows and the
//! customer store. In AWS the `aixon-import` function runs it for each S3 object-created
//! event (and on a schedule, for anything an event missed); the local server runs it on a
//! timer. Every run is safe to repeat:
//!
//! - one importer per cell at a time (an expiring lease), working through the cell's
//!   objects in key order — the order the bodies were accepted in;
//! - progress is checkpointed on the update after every chunk of rows; a run that stops
//!   (crash, time budget) is resumed by the next from the row after the checkpoint, and
//!   the chunk in flight is written again with the same values, so nothing is lost and
//!   nothing counts twice;
//! - a finished update's object is deleted (a presigned upload's is replaced by an empty
//!   used mark until its URL has expired, so the URL takes no second body), and an event for
//!   a finished or unknown object does nothing (S3 delivers events at least once, sometimes
//!   late).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::io::SyncIoBridge;

use super::body::{Record, read_records};
use super::columns::{self, Cell, ColumnKind, ColumnName, Header, Row};
use super::header::{self, HeaderFit};
use super::lease::{Lease, LeaseError};
use super::order::{self, Turn};
use super::store::{self, Status, UpdateRecord};
use crate::app::App;
use crate::customers::{self, CustomerError, Identifier, Upsert, UpsertOutcome};
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::storage::{BlobError, Item, StorageError, keys};

/// Rows applied between two checkpoints.
pub const CHUNK_ROWS: usize = 1_000;
/// The surface name attributes are recorded with.
pub const SURFACE: &str = "aixon";

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Customer(#[from] CustomerError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("the body reader stopped: {0}")]
    Reader(String),
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub updates_finished: usize,
    pub rows_processed: usize,
    /// Problems recorded on updates: rows refused or applied without linking an
    /// identifier, and the reasons of bodies refused at their check.
    #[serde(default)]
    pub row_errors: usize,
    /// Updates this run ended `FAILED`: bodies refused at their check, and earlier bodies
    /// given up as never arriving ([`super::order`]).
    #[serde(default)]
    pub updates_failed: usize,
    /// Cells skipped because another importer holds their lease.
    pub cells_busy: usize,
    /// Cells whose next body waits for an earlier one still being stored
    /// ([`super::order`]).
    #[serde(default)]
    pub cells_waiting: usize,
    /// The time budget ran out with work left; the next run continues.
    pub paused: bool,
}

impl ImportReport {
    fn add(&mut self, other: ImportReport) {
        self.updates_finished += other.updates_finished;
        self.rows_processed += other.rows_processed;
        self.row_errors += other.row_errors;
        self.updates_failed += other.updates_failed;
        self.cells_busy += other.cells_busy;
        self.cells_waiting += other.cells_waiting;
        self.paused |= other.paused;
    }
}

/// Runs the import for an event: S3 object-created notifications (`Records`) and
/// EventBridge "Object Created" events import the cells they name; anything else (the
/// schedule, the local timer) imports every cell with queued objects.
pub async fn handle_event(app: Arc<App>, event: Value) -> Result<Value, String> {
    let started = Instant::now();
    let outcome = import_for_event(&app, &event, started + app.settings.import_budget).await;
    let report = outcome.as_ref().cloned().unwrap_or_default();
    crate::metrics::import_finished(&crate::metrics::ImportRun {
        rows: report.rows_processed,
        row_errors: report.row_errors,
        updates_finished: report.updates_finished,
        updates_failed: report.updates_failed,
        failed: outcome.is_err(),
        elapsed: started.elapsed(),
    });
    outcome
        .map(|report| json!(report))
        .map_err(|e| e.to_string())
}

async fn import_for_event(
    app: &App,
    event: &Value,
    deadline: Instant,
) -> Result<ImportReport, ImportError> {
    let keys = object_keys(event);
    if keys.is_empty() {
        return import_pending(app, deadline).await;
    }
    let mut report = ImportReport::default();
    for key in keys {
        if let Some((tenant, cell)) = cell_of_key(&key) {
            report.add(import_cell(app, &tenant, &cell, deadline).await?);
        } else {
            // Not the key itself: outside the queue, it can be any name a client chose.
            tracing::warn!("an event named an object outside the AIXON queue; ignored");
        }
    }
    Ok(report)
}

/// The object keys an S3 notification or EventBridge event names (S3 notifications
/// URL-encode keys, with `+` for spaces).
pub fn object_keys(event: &Value) -> Vec<String> {
    if let Some(records) = event.get("Records").and_then(Value::as_array) {
        return records
            .iter()
            .filter(|record| {
                record
                    .get("eventName")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.starts_with("ObjectCreated"))
            })
            .filter_map(|record| record.pointer("/s3/object/key")?.as_str())
            .map(|key| {
                url::form_urlencoded::parse(format!("k={key}").as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default()
            })
            .collect();
    }
    if event.get("detail-type").and_then(Value::as_str) == Some("Object Created") {
        return event
            .pointer("/detail/object/key")
            .and_then(Value::as_str)
            .map(|key| vec![key.to_string()])
            .unwrap_or_default();
    }
    Vec::new()
}

/// `aixon/{tenant}/{cell}/{update}` → tenant and cell.
fn cell_of_key(key: &str) -> Option<(TenantId, String)> {
    let rest = key.strip_prefix(keys::AIXON_BLOB_PREFIX)?;
    let mut parts = rest.split('/');
    let tenant = TenantId::parse(parts.next()?).ok()?;
    let cell = parts.next()?.to_string();
    let update = parts.next()?;
    (parts.next().is_none() && !cell.is_empty() && !update.is_empty()).then_some((tenant, cell))
}

/// Imports every cell that has queued objects, oldest object first, until the deadline.
pub async fn import_pending(app: &App, deadline: Instant) -> Result<ImportReport, ImportError> {
    let mut cells: Vec<(TenantId, String)> = Vec::new();
    for object in app.blobs.list(keys::AIXON_BLOB_PREFIX).await? {
        if let Some(cell) = cell_of_key(&object.key)
            && !cells.contains(&cell)
            && !kept_upload(app, &cell.0, &cell.1, &object).await?
        {
            cells.push(cell);
        }
    }
    let mut report = ImportReport::default();
    for (tenant, cell) in cells {
        if Instant::now() >= deadline {
            report.paused = true;
            break;
        }
        report.add(import_cell(app, &tenant, &cell, deadline).await?);
    }
    Ok(report)
}

/// How long past its URL's expiry the used mark of a presigned upload stays: more than any
/// difference between custdata's clock and S3's.
pub const USED_UPLOAD_GRACE_SECONDS: i64 = 900;

/// Whether the object is the used mark of a finished presigned upload (nothing to import).
/// A presigned URL is single-use because its PUT creates the object only while none of its
/// key exists; so once such an update is finished, its body is replaced by an empty object
/// rather than deleted, until the URL has expired. Removes the mark once that has passed.
async fn kept_upload(
    app: &App,
    tenant: &TenantId,
    cell: &str,
    object: &crate::storage::BlobMeta,
) -> Result<bool, ImportError> {
    if object.size > 0 {
        return Ok(false);
    }
    let update_id = object.key.rsplit('/').next().unwrap_or_default();
    match store::get_update(app.table.as_ref(), tenant, cell, update_id).await? {
        Some(update) if update.is_finished() => Ok(retire(app, object, &update).await?),
        _ => Ok(false),
    }
}

/// Retires a finished update's object: an inline body is deleted; a presigned upload's
/// object becomes an empty used mark until [`USED_UPLOAD_GRACE_SECONDS`] after its URL
/// expired, so that the URL refuses a second body. `true` when the object stays.
async fn retire(
    app: &App,
    object: &crate::storage::BlobMeta,
    update: &UpdateRecord,
) -> Result<bool, BlobError> {
    let keep_until = update
        .upload_expires_at
        .map(|expires| expires + USED_UPLOAD_GRACE_SECONDS);
    match keep_until {
        Some(until) if app.clock.now_seconds() <= until => {
            if object.size > 0 {
                let empty: crate::storage::BlobReader = Box::pin(tokio::io::empty());
                app.blobs
                    .put(&object.key, &update.media_type, empty)
                    .await?;
            }
            Ok(true)
        }
        _ => {
            app.blobs.delete(&object.key).await?;
            Ok(false)
        }
    }
}

/// Works through one cell's queued objects in order, under the cell's lease.
pub async fn import_cell(
    app: &App,
    tenant: &TenantId,
    cell: &str,
    deadline: Instant,
) -> Result<ImportReport, ImportError> {
    let prefix = format!("{}{tenant}/{cell}/", keys::AIXON_BLOB_PREFIX);
    let mut report = ImportReport::default();
    // Used marks of finished presigned uploads: objects that stay, with nothing to import.
    let mut kept = HashSet::new();
    loop {
        let Some(lease) =
            Lease::acquire(app.table.as_ref(), app.clock.as_ref(), tenant, cell).await?
        else {
            report.cells_busy += 1;
            return Ok(report);
        };
        let outcome =
            drain_queue(app, tenant, cell, &lease, deadline, &mut report, &mut kept).await;
        lease.release().await;
        let waited_with = outcome?;
        // An object accepted while the lease was being released has an event of its own,
        // but that event may have found the lease still held: look once more.
        let queued: Vec<String> = app
            .blobs
            .list(&prefix)
            .await?
            .into_iter()
            .map(|object| object.key)
            .filter(|key| !kept.contains(key))
            .collect();
        if report.paused || queued.is_empty() {
            return Ok(report);
        }
        let Some(waiting) = waited_with.filter(|waiting| waiting.queued == queued) else {
            continue;
        };
        // Still waiting for an earlier body, and none came. Its arrival starts an import of
        // its own; in case it never comes, a run with time left looks again once the wait
        // for it is over (a run without, and the local worker, leave that to the schedule or
        // the next tick).
        let pause = Duration::from_millis(
            u64::try_from(waiting.until_millis - app.clock.now_millis()).unwrap_or(0) + 50,
        );
        if Instant::now() + pause >= deadline {
            report.cells_waiting += 1;
            return Ok(report);
        }
        tokio::time::sleep(pause).await;
        if app.clock.now_millis() < waiting.until_millis {
            // A clock that does not follow real time (a test's): looking again would find
            // the same wait.
            report.cells_waiting += 1;
            return Ok(report);
        }
    }
}

/// The cell's queue when its next body had to wait for an earlier one.
struct Waiting {
    /// The keys that were queued (not kept) then.
    queued: Vec<String>,
    /// When the earlier body is given up, on the app's clock.
    until_millis: i64,
}

/// Imports the cell's queued objects in key order until none is left, the deadline comes
/// (`report.paused`) or the next must wait for an earlier body ([`Waiting`]).
async fn drain_queue(
    app: &App,
    tenant: &TenantId,
    cell: &str,
    lease: &Lease<'_>,
    deadline: Instant,
    report: &mut ImportReport,
    kept: &mut HashSet<String>,
) -> Result<Option<Waiting>, ImportError> {
    let prefix = format!("{}{tenant}/{cell}/", keys::AIXON_BLOB_PREFIX);
    loop {
        let queued: Vec<_> = app
            .blobs
            .list(&prefix)
            .await?
            .into_iter()
            .filter(|object| !kept.contains(&object.key))
            .collect();
        let Some(object) = queued.first().cloned() else {
            return Ok(None);
        };
        let update_id = object
            .key
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let Some(update) = store::get_update(app.table.as_ref(), tenant, cell, &update_id).await?
        else {
            // Not the key: logs carry no storage path.
            tracing::warn!("a queued AIXON object had no update record; removed");
            app.blobs.delete(&object.key).await?;
            continue;
        };
        let already_finished = update.is_finished();
        if !already_finished {
            let verdict =
                order::turn_of(app.table.as_ref(), tenant, &update, app.clock.now_millis()).await?;
            report.updates_failed += verdict.given_up;
            if let Turn::AfterAnEarlierBody { until_millis } = verdict.turn {
                return Ok(Some(Waiting {
                    queued: queued.into_iter().map(|object| object.key).collect(),
                    until_millis,
                }));
            }
        }
        let finished = if already_finished {
            update.clone()
        } else {
            match import_update(app, tenant, &object.key, update, lease, deadline, report).await? {
                Some(finished) => finished,
                None => {
                    report.paused = true;
                    return Ok(None);
                }
            }
        };
        if !(already_finished && finished.upload_expires_at.is_some()) {
            report.updates_finished += 1;
        }
        if retire(app, &object, &finished).await? {
            kept.insert(object.key);
        }
    }
}

/// Imports one update from its object: the finished record, or `None` when the deadline
/// came first.
async fn import_update(
    app: &App,
    tenant: &TenantId,
    object_key: &str,
    mut update: UpdateRecord,
    lease: &Lease<'_>,
    deadline: Instant,
    report: &mut ImportReport,
) -> Result<Option<UpdateRecord>, ImportError> {
    let now = app.clock.now_millis();
    if !update.checked {
        let previous = update.clone();
        match check_upload(app, tenant, object_key, &update).await? {
            Ok(rows) => {
                update.checked = true;
                update.rows = rows;
                update.status = Status::Processing;
            }
            Err(problems) => {
                update.status = Status::Failed;
                update.finished = Some(now);
                report.updates_failed += 1;
                report.row_errors += problems.len();
                update.add_errors(problems);
            }
        }
        store::put_update(app.table.as_ref(), tenant, &update, Some(&previous)).await?;
        if update.status == Status::Failed {
            return Ok(Some(update));
        }
    } else if update.status != Status::Processing {
        let previous = update.clone();
        update.status = Status::Processing;
        store::put_update(app.table.as_ref(), tenant, &update, Some(&previous)).await?;
    }
    let attribute_columns = columns_of(app, object_key, &update).await?;
    customers::register_attributes(
        app.customers(),
        tenant,
        attribute_columns.iter().map(ColumnName::as_str),
        SURFACE,
        now,
    )
    .await?;
    let (chunks, parser) = stream_rows(app, object_key, &update).await?;
    let mut chunks = chunks;
    let mut finished = true;
    while let Some(rows) = chunks.recv().await {
        let previous = update.clone();
        let (applied, problems) = apply_rows(app, tenant, &update, &rows).await?;
        update.rows_done += rows.len();
        update.last_row = rows.last().map_or(update.last_row, |row| row.number);
        update.applied += applied;
        report.row_errors += problems.len();
        update.add_errors(problems);
        store::put_update(app.table.as_ref(), tenant, &update, Some(&previous)).await?;
        report.rows_processed += rows.len();
        lease.renew().await?;
        if Instant::now() >= deadline {
            finished = false;
            break;
        }
    }
    drop(chunks);
    parser
        .await
        .map_err(|e| ImportError::Reader(e.to_string()))?
        .map_err(|e| ImportError::Reader(e.rule))?;
    if !finished {
        return Ok(None);
    }
    let previous = update.clone();
    update.status = Status::Done;
    update.finished = Some(app.clock.now_millis());
    store::put_update(app.table.as_ref(), tenant, &update, Some(&previous)).await?;
    Ok(Some(update))
}

async fn open_blocking(
    app: &App,
    object_key: &str,
) -> Result<SyncIoBridge<crate::storage::BlobReader>, ImportError> {
    let (_, reader) = app
        .blobs
        .get(object_key)
        .await?
        .ok_or_else(|| ImportError::Reader("a queued object vanished".into()))?;
    Ok(SyncIoBridge::new(reader))
}

/// The first pass over an uploaded body: the column rules, and its header against the
/// cell's (PATCH: the same; PUT: every existing column), which a PUT then extends.
async fn check_upload(
    app: &App,
    tenant: &TenantId,
    object_key: &str,
    update: &UpdateRecord,
) -> Result<Result<usize, Vec<Problem>>, ImportError> {
    let reader = open_blocking(app, object_key).await?;
    let format = update.format();
    let checked = tokio::task::spawn_blocking(move || columns::check_body(format, reader, |_| {}))
        .await
        .map_err(|e| ImportError::Reader(e.to_string()))?;
    let checked = match checked {
        Ok(checked) => checked,
        Err(rejection) => return Ok(Err(rejection.problems)),
    };
    match header::fit_cell_header(
        app.table.as_ref(),
        tenant,
        &update.cell,
        &checked.header,
        update.mode,
    )
    .await?
    {
        HeaderFit::Fits(_) => Ok(Ok(checked.rows)),
        HeaderFit::NoCell => Ok(Err(vec![Problem {
            row: None,
            field: None,
            rule: format!("data cell {} no longer exists", update.cell),
        }])),
        HeaderFit::Refused(problems) => Ok(Err(problems)),
    }
}

/// The body's columns that become customer attributes. The body passed the column rules
/// before its import began, so every name parses again; one that did not would be no
/// attribute, as before.
async fn columns_of(
    app: &App,
    object_key: &str,
    update: &UpdateRecord,
) -> Result<Vec<ColumnName>, ImportError> {
    let reader = open_blocking(app, object_key).await?;
    let format = update.format();
    let names = tokio::task::spawn_blocking(move || {
        let mut names = Vec::new();
        let _ = read_records(format, reader, |record| {
            if let Record::Header(header) = record {
                names = header;
            }
            false
        });
        names
    })
    .await
    .map_err(|e| ImportError::Reader(e.to_string()))?;
    Ok(names
        .iter()
        .filter_map(|name| ColumnName::parse(name.trim()).ok())
        .filter(|name| {
            !matches!(
                name.kind(),
                ColumnKind::CustomUid | ColumnKind::Identifier | ColumnKind::MultiIdentifier
            )
        })
        .collect())
}

type RowChunks = tokio::sync::mpsc::Receiver<Vec<Row>>;
type Parser = tokio::task::JoinHandle<Result<(), super::body::Unreadable>>;

/// Reads the body on a blocking thread and hands on chunks of checked rows after the
/// update's checkpoint; at most two chunks wait in memory, whatever the body's size.
async fn stream_rows(
    app: &App,
    object_key: &str,
    update: &UpdateRecord,
) -> Result<(RowChunks, Parser), ImportError> {
    let reader = open_blocking(app, object_key).await?;
    let format = update.format();
    let after = update.last_row;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<Row>>(2);
    let parser = tokio::task::spawn_blocking(move || {
        let mut header: Option<Header> = None;
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        read_records(format, reader, |record| match record {
            Record::Header(names) => {
                header = Header::parse(None, names.iter().map(String::as_str)).ok();
                header.is_some()
            }
            Record::Row { number, values } if number > after => {
                let Some(header) = &header else { return false };
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                // The body passed the rules before; a row cannot fail them now.
                if let Ok(row) = header.check_row(number, &values) {
                    chunk.push(row);
                }
                chunk.len() < CHUNK_ROWS || sender.blocking_send(std::mem::take(&mut chunk)).is_ok()
            }
            _ => true,
        })?;
        if !chunk.is_empty() {
            let _ = sender.blocking_send(chunk);
        }
        Ok(())
    });
    Ok((receiver, parser))
}

/// A row as the customer store takes it: customuid is the customer key, the identifier
/// columns further identifiers, every other column an attribute typed by its prefix; and
/// the cell's own copy of the row, written in the same transaction.
fn upsert_of(app: &App, tenant: &TenantId, update: &UpdateRecord, row: &Row, now: i64) -> Upsert {
    let mut identifiers = Vec::new();
    let mut attributes = BTreeMap::new();
    for (column, value) in &row.cells {
        match (column.kind(), value) {
            (ColumnKind::CustomUid, _) => {}
            (ColumnKind::MultiIdentifier, Cell::Many(values)) => identifiers.extend(
                values
                    .iter()
                    .map(|value| Identifier::new(column.as_str(), value.as_str())),
            ),
            (ColumnKind::Identifier, Cell::Text(value)) => {
                identifiers.push(Identifier::new(column.as_str(), value.as_str()));
            }
            _ => {
                attributes.insert(column.to_string(), json!(value));
            }
        }
    }
    let key = keys::aixon_row(
        tenant,
        &update.cell,
        &store::row_hash(&app.hash_key, &row.customuid),
    );
    let values = serde_json::to_string(&row.cells).unwrap_or_else(|_| "{}".into());
    let item = Item::new(key.pk, key.sk)
        .with("customuid", row.customuid.as_str())
        .with("values", values)
        .with("update", update.id.as_str())
        .with("updated", now);
    Upsert {
        key: Identifier::customer_key(row.customuid.as_str()),
        identifiers,
        attributes,
        items: vec![item],
    }
}

/// Applies a chunk of rows: how many were applied, and the per-row problems (refused
/// rows, identifiers left unlinked).
async fn apply_rows(
    app: &App,
    tenant: &TenantId,
    update: &UpdateRecord,
    rows: &[Row],
) -> Result<(usize, Vec<Problem>), ImportError> {
    let now = app.clock.now_millis();
    let upserts: Vec<Upsert> = rows
        .iter()
        .map(|row| upsert_of(app, tenant, update, row, now))
        .collect();
    let outcomes = customers::upsert_many(app.customers(), tenant, &upserts, SURFACE, now).await?;
    let mut applied = 0;
    let mut problems = Vec::new();
    for (row, outcome) in rows.iter().zip(outcomes) {
        match outcome {
            UpsertOutcome::Applied { not_linked, .. } => {
                applied += 1;
                problems.extend(not_linked.into_iter().map(|identifier| Problem {
                    row: Some(row.number),
                    field: Some(identifier.api_name.clone()),
                    rule: format!(
                        "a value of {} already identifies another customer (or the customer has {} identifiers); the row was applied without linking it",
                        identifier.api_name,
                        customers::MAX_IDENTIFIERS
                    ),
                }));
            }
            UpsertOutcome::Refused(why) => problems.push(Problem {
                row: Some(row.number),
                field: Some("customuid".into()),
                rule: format!("row not applied: {why}"),
            }),
        }
    }
    Ok((applied, problems))
}

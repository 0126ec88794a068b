//! What AIXON keeps: data cells (name and accepted header), updates (one per accepted body,
//! with the import's progress) and each cell's rows. Keys are in `storage::keys`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::body::Format;
use super::column_name::ColumnName;
use super::customuid::CustomUid;
use crate::domain::Problem;
use crate::domain::TenantId;
use crate::keys::HashKey;
use crate::storage::{
    BlobStore, Condition, Item, ItemTable, Query, StorageError, Update, keys, read_all,
};

/// Data cells per tenant.
pub const MAX_CELLS: usize = 1_000;
/// Per-row errors kept on an update (the count says how many there were).
pub const MAX_KEPT_ERRORS: usize = 100;

/// A data cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub id: String,
    pub description: String,
    /// The header the next update must match (PATCH) or extend (PUT): the header of the
    /// last accepted update, applied or not, so a client may send updates back to back.
    pub header: Vec<ColumnName>,
    pub rev: i64,
}

impl Cell {
    /// The cell an item holds; `None` when the item is not a cell (no id, no description, or
    /// a header that is not a list of strings).
    fn from_item(item: &Item) -> Option<Cell> {
        let id = item.str("id")?.to_string();
        let stored: Vec<String> = serde_json::from_value(item.get("header")?.clone()).ok()?;
        let header = stored_header(&stored);
        Some(Cell {
            description: item.str("description")?.to_string(),
            header,
            rev: item.i64("rev").unwrap_or(0),
            id,
        })
    }
}

/// A stored header's names, where a cell's header enters from the table. Each was a
/// [`ColumnName`] when it was stored, so each parses again unless the column grammar has
/// narrowed since. A name that no longer parses names no column, as a stored name that no
/// longer parses does elsewhere: it is left out, with a warning, and the cell stays readable
/// and takes updates of its other columns. The stored header keeps the name until the cell's
/// header is next written (a PUT that adds a column), which writes it without.
fn stored_header(stored: &[String]) -> Vec<ColumnName> {
    let header: Vec<ColumnName> = stored
        .iter()
        .filter_map(|name| ColumnName::parse(name).ok())
        .collect();
    if header.len() < stored.len() {
        // Neither the names (a client chose them) nor the cell: logs carry no identifier.
        tracing::warn!(
            left_out = stored.len() - header.len(),
            "a data cell's stored header has names the column rules no longer allow; they are left out"
        );
    }
    header
}

/// Why a data cell was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateCellError {
    #[error("a tenant has at most {MAX_CELLS} data cells")]
    TooManyCells,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creates a data cell with the header of its first body.
pub async fn create_cell(
    table: &dyn ItemTable,
    tenant: &TenantId,
    description: &str,
    header: &[ColumnName],
    now_millis: i64,
) -> Result<Cell, CreateCellError> {
    if list_cells(table, tenant).await?.len() >= MAX_CELLS {
        return Err(CreateCellError::TooManyCells);
    }
    let id = crate::tenancy::new_id("dc");
    let key = keys::aixon_cell(tenant, &id);
    let item = Item::new(key.pk, key.sk)
        .with("id", id.as_str())
        .with("description", description)
        .with("header", json!(header))
        .with("created", now_millis)
        .with("rev", 1);
    table.put(item, Condition::NotExists).await?;
    Ok(Cell {
        id,
        description: description.to_string(),
        header: header.to_vec(),
        rev: 1,
    })
}

/// Removes a cell with its update records and queued bodies (a cell whose creation failed).
pub async fn delete_cell(
    table: &dyn ItemTable,
    blobs: &dyn BlobStore,
    tenant: &TenantId,
    id: &str,
) -> Result<(), StorageError> {
    let prefix = format!("{}{tenant}/{id}/", keys::AIXON_BLOB_PREFIX);
    if let Ok(queued) = blobs.list(&prefix).await {
        for blob in queued {
            let _ = blobs.delete(&blob.key).await;
        }
    }
    let updates = crate::storage::read_all(
        table,
        crate::storage::Query::partition(keys::aixon_update(tenant, id, "").pk),
    )
    .await?;
    crate::storage::batch::delete_all(table, &updates).await?;
    table
        .delete(&keys::aixon_cell(tenant, id), Condition::Always)
        .await?;
    Ok(())
}

pub async fn get_cell(
    table: &dyn ItemTable,
    tenant: &TenantId,
    id: &str,
) -> Result<Option<Cell>, StorageError> {
    if id.is_empty() || id.len() > 64 {
        return Ok(None);
    }
    Ok(table
        .get(&keys::aixon_cell(tenant, id))
        .await?
        .as_ref()
        .and_then(Cell::from_item))
}

/// The tenant's cells, oldest first.
pub async fn list_cells(
    table: &dyn ItemTable,
    tenant: &TenantId,
) -> Result<Vec<Cell>, StorageError> {
    let items = read_all(
        table,
        Query::partition(keys::aixon_cells_pk(tenant)).prefix(keys::AIXON_CELL_PREFIX),
    )
    .await?;
    let mut cells: Vec<(i64, Cell)> = items
        .iter()
        .filter_map(|item| Some((item.i64("created")?, Cell::from_item(item)?)))
        .collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    Ok(cells.into_iter().map(|(_, cell)| cell).collect())
}

/// Replaces the accepted header if the cell is still at `cell.rev`; `false` when another
/// request changed it first.
pub async fn set_header(
    table: &dyn ItemTable,
    tenant: &TenantId,
    cell: &Cell,
    header: &[ColumnName],
) -> Result<bool, StorageError> {
    match table
        .update(
            &keys::aixon_cell(tenant, &cell.id),
            Update::default()
                .set("header", json!(header))
                .set("rev", cell.rev + 1),
            Condition::equals("rev", cell.rev),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(StorageError::ConditionFailed { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// What an update does to its cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    /// The rows of `PUT /csv-upload` (the cell was created with their header).
    Create,
    /// `PATCH`: the same columns in the same order.
    Patch,
    /// `PUT /{resourceId}`: every existing column, maybe more.
    Put,
}

/// Where an update is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// A presigned upload whose object has not arrived.
    WaitingForUpload,
    Queued,
    Processing,
    Done,
    /// Nothing of the body was applied: an upload refused when it was imported (only
    /// uploads are checked that late), or a body that never reached the blob store.
    Failed,
}

/// One accepted body and its import's progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRecord {
    pub id: String,
    pub cell: String,
    pub mode: Mode,
    pub media_type: String,
    pub status: Status,
    /// The body passed the column rules (inline bodies when accepted, uploads on import).
    pub checked: bool,
    /// Data rows in the body, once checked.
    pub rows: usize,
    /// Rows imported so far, applied or refused; the import resumes after `last_row`.
    pub rows_done: usize,
    pub last_row: usize,
    pub applied: usize,
    pub error_count: usize,
    pub errors: Vec<Problem>,
    pub created: i64,
    pub finished: Option<i64>,
    /// Presigned uploads: when the upload URL stops working.
    pub upload_expires_at: Option<i64>,
}

impl UpdateRecord {
    /// The record an update item holds; `None` for one that no longer reads as a record.
    fn from_item(item: &Item) -> Option<UpdateRecord> {
        serde_json::from_str(item.str("record")?).ok()
    }

    pub fn new(id: String, cell: &str, mode: Mode, format: Format, now_millis: i64) -> Self {
        UpdateRecord {
            id,
            cell: cell.to_string(),
            mode,
            media_type: format.media_type().to_string(),
            status: Status::Queued,
            checked: false,
            rows: 0,
            rows_done: 0,
            last_row: 0,
            applied: 0,
            error_count: 0,
            errors: Vec::new(),
            created: now_millis,
            finished: None,
            upload_expires_at: None,
        }
    }

    /// Done or failed: nothing left to import.
    pub fn is_finished(&self) -> bool {
        matches!(self.status, Status::Done | Status::Failed)
    }

    pub fn format(&self) -> Format {
        Format::of_media_type(&self.media_type).unwrap_or(Format::Csv)
    }

    /// Adds per-row errors, keeping the first [`MAX_KEPT_ERRORS`].
    pub fn add_errors(&mut self, problems: impl IntoIterator<Item = Problem>) {
        for problem in problems {
            self.error_count += 1;
            if self.errors.len() < MAX_KEPT_ERRORS {
                self.errors.push(problem);
            }
        }
    }

    /// The status extension's body.
    pub fn to_status(&self) -> Value {
        json!({
            "status": self.status,
            "mode": self.mode,
            "rows": self.rows,
            "processed": self.rows_done,
            "applied": self.applied,
            "errorCount": self.error_count,
            "errors": self.errors.iter().map(|p| json!({"row": p.row, "column": p.field, "rule": p.rule})).collect::<Vec<_>>(),
            "created": self.created,
            "finished": self.finished,
            "uploadExpiresAt": self.upload_expires_at,
        })
    }
}

/// A new update id for the cell: its sequence number first (one atomic increment on the
/// cell), so ids — and the blob keys made of them, which the import works through in key
/// order — sort in the order the cell's updates were accepted, whatever the clocks say.
pub async fn next_update_id(
    table: &dyn ItemTable,
    tenant: &TenantId,
    cell: &str,
) -> Result<String, StorageError> {
    let item = table
        .update(
            &keys::aixon_cell(tenant, cell),
            Update::default().add("seq", 1),
            Condition::Exists,
        )
        .await?;
    let seq = item.i64("seq").unwrap_or(0);
    let suffix = crate::tenancy::new_id("");
    Ok(format!("{seq:012}{}", &suffix[..8]))
}

/// An update's sequence number in its cell: the first 12 digits of its id.
pub fn update_seq(update_id: &str) -> Option<u64> {
    update_id.get(..12)?.parse().ok()
}

/// The cell's updates accepted before `update_id`, newest first, down to and including the
/// newest that an import finished ([`Status::Done`]): the import of that one already waited
/// for everything before it (see [`super::order`]), so nothing older can hold a body back.
pub async fn updates_back_to_last_done(
    table: &dyn ItemTable,
    tenant: &TenantId,
    cell: &str,
    update_id: &str,
) -> Result<Vec<UpdateRecord>, StorageError> {
    let pk = keys::aixon_update(tenant, cell, "").pk;
    let mut found = Vec::new();
    let mut cursor = None;
    // Most often the record just below is `DONE`: a small first page, as a record can carry
    // up to MAX_KEPT_ERRORS problems.
    let mut page_size = 4;
    loop {
        let page = table
            .query(
                Query::partition(pk.as_str())
                    .between("0", update_id)
                    .descending()
                    .limit(page_size)
                    .after(cursor),
            )
            .await?;
        for item in page.items.iter().filter(|item| item.sk != update_id) {
            let Some(record) = UpdateRecord::from_item(item) else {
                continue;
            };
            let done = record.status == Status::Done;
            found.push(record);
            if done {
                return Ok(found);
            }
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
        page_size = 100;
    }
}

/// Marks a queued update whose body never reached the blob store as failed, with `rule` as
/// its problem; `false` when the record changed meanwhile (it is then left as it is).
pub async fn fail_unarrived(
    table: &dyn ItemTable,
    tenant: &TenantId,
    update: &UpdateRecord,
    rule: &str,
    now_millis: i64,
) -> Result<bool, StorageError> {
    let mut failed = update.clone();
    failed.status = Status::Failed;
    failed.finished = Some(now_millis);
    failed.add_errors([Problem {
        row: None,
        field: None,
        rule: rule.to_string(),
    }]);
    match put_update(table, tenant, &failed, Some(update)).await {
        Ok(()) => Ok(true),
        Err(StorageError::ConditionFailed { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Stores an update record; with `expected` (the record as read), only if nobody else
/// changed it since.
pub async fn put_update(
    table: &dyn ItemTable,
    tenant: &TenantId,
    update: &UpdateRecord,
    expected: Option<&UpdateRecord>,
) -> Result<(), StorageError> {
    let key = keys::aixon_update(tenant, &update.cell, &update.id);
    let body =
        serde_json::to_string(update).map_err(|e| StorageError::Unavailable(e.to_string()))?;
    let condition = match expected {
        None => Condition::NotExists,
        Some(previous) => Condition::All(vec![
            Condition::equals("rows_done", previous.rows_done as i64),
            Condition::equals("status", status_name(previous.status)),
        ]),
    };
    let item = Item::new(key.pk, key.sk)
        .with("record", body)
        .with("rows_done", update.rows_done as i64)
        .with("status", status_name(update.status));
    table.put(item, condition).await
}

fn status_name(status: Status) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub async fn get_update(
    table: &dyn ItemTable,
    tenant: &TenantId,
    cell: &str,
    update_id: &str,
) -> Result<Option<UpdateRecord>, StorageError> {
    if update_id.is_empty() || update_id.len() > 64 || cell.is_empty() || cell.len() > 64 {
        return Ok(None);
    }
    Ok(table
        .get(&keys::aixon_update(tenant, cell, update_id))
        .await?
        .as_ref()
        .and_then(UpdateRecord::from_item))
}

/// The keyed hash a customuid's row is stored under.
pub fn row_hash(hash_key: &HashKey, customuid: &str) -> String {
    hash_key.hash(&format!("aixon-row\u{0}{customuid}"))
}

/// A cell's row of one customer, as the row extension shows it.
pub async fn get_row(
    table: &dyn ItemTable,
    hash_key: &HashKey,
    tenant: &TenantId,
    cell: &str,
    customuid: &CustomUid,
) -> Result<Option<Value>, StorageError> {
    let item = table
        .get(&keys::aixon_row(
            tenant,
            cell,
            &row_hash(hash_key, customuid),
        ))
        .await?;
    Ok(item.as_ref().map(row_view))
}

/// A stored row as the row extension (and an access export) shows it.
pub fn row_view(item: &Item) -> Value {
    let values: Value = item
        .str("values")
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_else(|| json!({}));
    json!({
        "customuid": item.str("customuid"),
        "values": values,
        "updateId": item.str("update"),
        "updated": item.i64("updated"),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app::App;
    use crate::clock::ManualClock;

    fn cell_item(header: Value) -> Item {
        Item::new("pk", "sk")
            .with("id", "dc1")
            .with("description", "the cell")
            .with("header", header)
            .with("created", 1)
            .with("rev", 3)
    }

    fn names(cell: &Cell) -> Vec<&str> {
        cell.header.iter().map(ColumnName::as_str).collect()
    }

    #[test]
    fn a_stored_header_is_read_as_column_names_in_its_order() {
        let cell =
            Cell::from_item(&cell_item(json!(["txt_b", "customuid", "email"]))).expect("a cell");
        assert_eq!(names(&cell), ["txt_b", "customuid", "email"]);
        assert_eq!(
            cell.header[2].kind(),
            crate::aixon::ColumnKind::MultiIdentifier
        );
        assert_eq!((cell.id.as_str(), cell.rev), ("dc1", 3));
        assert_eq!(
            serde_json::to_value(&cell.header).expect("serializes"),
            json!(["txt_b", "customuid", "email"]),
            "written back as it was read"
        );
    }

    #[test]
    fn a_stored_name_that_no_longer_parses_is_left_out_and_the_cell_stays_readable() {
        let cell = Cell::from_item(&cell_item(json!(["customuid", "goal_dance_x", "txt_a"])))
            .expect("still a cell");
        assert_eq!(names(&cell), ["customuid", "txt_a"]);
        assert_eq!(cell.description, "the cell");
    }

    #[test]
    fn a_stored_header_that_is_no_list_of_strings_is_no_cell_as_before() {
        assert_eq!(Cell::from_item(&cell_item(json!(["customuid", 7]))), None);
        assert_eq!(Cell::from_item(&cell_item(json!("customuid"))), None);
        assert_eq!(
            Cell::from_item(
                &Item::new("pk", "sk")
                    .with("id", "dc1")
                    .with("description", "d")
            ),
            None
        );
    }

    #[tokio::test]
    async fn the_updates_below_one_are_read_newest_first_down_to_the_last_done_across_pages() {
        let dir = tempfile::tempdir().expect("a directory");
        let (app, _) = App::embedded(
            dir.path(),
            Arc::new(ManualClock::at_millis(1)),
            "http://127.0.0.1:9",
        )
        .expect("an embedded app");
        let table = app.table.as_ref();
        let tenant = TenantId::parse("acme").expect("a tenant");
        let id = |seq: u64| format!("{seq:012}abcdef01");
        let statuses = [
            Status::Done,
            Status::Done,
            Status::Failed,
            Status::WaitingForUpload,
            Status::Failed,
            Status::Failed,
            Status::Processing,
            Status::Queued,
        ];
        for (seq, status) in (1..).zip(statuses) {
            let mut update = UpdateRecord::new(id(seq), "dc1", Mode::Patch, Format::Csv, 1);
            update.status = status;
            put_update(table, &tenant, &update, None)
                .await
                .expect("stored");
        }

        let found = updates_back_to_last_done(table, &tenant, "dc1", &id(9))
            .await
            .expect("read");
        let seqs: Vec<u64> = found
            .iter()
            .filter_map(|update| update_seq(&update.id))
            .collect();
        assert_eq!(seqs, [8, 7, 6, 5, 4, 3, 2]);
        let below_the_fifth = updates_back_to_last_done(table, &tenant, "dc1", &id(5))
            .await
            .expect("read");
        assert_eq!(
            below_the_fifth.len(),
            3,
            "4, 3 and the DONE 2: {below_the_fifth:?}"
        );
    }
}

//! The sweep: removing the rows of superseded versions once their grace period has passed
//! (far longer than any request: API Gateway gives up after 30 s), and only if nothing names
//! the version any more. The same queue carries customer erasures too long for their request.

use crate::mxo::datastores::model::ApiName;
use serde::Serialize;

use super::{VersionId, all_references, attribute, load};
use crate::domain::TenantId;
use crate::storage::{
    Condition, Item, ItemTable, Key, Query, StorageError, TransactAction, batch, keys,
};

/// How long a superseded version's rows stay readable before the sweep removes them.
pub const SWEEP_GRACE_SECONDS: i64 = 15 * 60;

/// The sweep entry that queues `version` for removal once the grace period from now is over.
pub(super) fn sweep_entry_item(
    tenant: &TenantId,
    api_name: &ApiName,
    version: &VersionId,
    now_seconds: i64,
) -> Item {
    let key = keys::sweep_entry(now_seconds + SWEEP_GRACE_SECONDS, tenant, api_name, version);
    Item::new(key.pk, key.sk)
        .with(attribute::TENANT, tenant.as_str())
        .with(attribute::API_NAME, api_name.as_str())
        .with(attribute::VERSION, version.as_str())
}

/// [`sweep_entry_item`] as a step of a switch's transaction.
pub(super) fn sweep_entry(
    tenant: &TenantId,
    api_name: &ApiName,
    version: &VersionId,
    now_seconds: i64,
) -> TransactAction {
    TransactAction::Put {
        item: sweep_entry_item(tenant, api_name, version, now_seconds),
        condition: Condition::Always,
    }
}

/// What one sweep run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub versions_removed: usize,
    pub rows_deleted: usize,
    /// Customer erasures whose activity history is now gone.
    pub erasures_completed: usize,
    /// True when the row budget ran out with work left (the next run continues).
    pub more: bool,
}

/// Whether anything still names a version: a pointer, or a live or sealed reference.
/// References are read first: a go-live turns a sealed reference live before the pointer
/// moves, so a version cannot slip between the two reads.
async fn in_use(
    table: &dyn ItemTable,
    tenant: &TenantId,
    api_name: &ApiName,
    version: &VersionId,
) -> Result<bool, StorageError> {
    let named = all_references(table, tenant, api_name)
        .await?
        .iter()
        .any(|reference| {
            reference.version.as_ref() == Some(version) && reference.names_a_readable_version()
        });
    let pointed_at = load(table, tenant, api_name)
        .await?
        .is_some_and(|state| state.live_version == *version || state.staging_version == *version);
    Ok(named || pointed_at)
}

/// Deletes the rows of every superseded version whose grace period has passed, up to about
/// `row_budget` rows; a version something still names is never touched.
pub async fn sweep_due(
    table: &dyn ItemTable,
    now_seconds: i64,
    row_budget: usize,
) -> Result<SweepReport, StorageError> {
    let mut report = SweepReport::default();
    let due = Query::partition(keys::SWEEP_PK)
        .between(format!("{:012}", 0), format!("{now_seconds:012}~"))
        .limit(100);
    for entry in table.query(due).await?.items {
        if entry.str("kind") == Some("erasure") {
            // The same queue carries customer erasures too long to finish within their request.
            let budget = row_budget.saturating_sub(report.rows_deleted);
            let (complete, removed) =
                crate::customers::continue_erasure(table, &entry, budget, now_seconds * 1000)
                    .await?;
            report.rows_deleted += removed;
            if complete {
                table.delete(&Key::from(&entry), Condition::Always).await?;
                report.erasures_completed += 1;
                continue;
            }
            report.more = true;
            return Ok(report);
        }
        let (Some(tenant), Some(api_name), Some(version)) = (
            entry
                .str(attribute::TENANT)
                .and_then(|raw| TenantId::parse(raw).ok()),
            entry.str(attribute::API_NAME).and_then(ApiName::parse),
            entry.str(attribute::VERSION).and_then(VersionId::named),
        ) else {
            table.delete(&Key::from(&entry), Condition::Always).await?;
            continue;
        };
        if !in_use(table, &tenant, &api_name, &version).await? {
            for shard in 0..keys::DATASTORE_ROW_SHARDS {
                let pk = keys::datastore_rows_pk(&tenant, &api_name, &version, shard);
                loop {
                    if report.rows_deleted >= row_budget {
                        report.more = true;
                        return Ok(report);
                    }
                    let page = table
                        .query(Query::partition(pk.as_str()).limit(1000))
                        .await?;
                    if page.items.is_empty() {
                        break;
                    }
                    report.rows_deleted += page.items.len();
                    batch::delete_all(table, &page.items).await?;
                }
            }
            report.versions_removed += 1;
        }
        table.delete(&Key::from(&entry), Condition::Always).await?;
    }
    Ok(report)
}

//! The customer store every surface shares (ARCHITECTURE.md principle 8): a tenant's
//! customer, its identifiers, attributes and activity history.
//!
//! - A customer is keyed by its MXO tid (a UUID when custdata or the MXO Customer API makes
//!   it; a [`Tid`], parsed where it enters). Its partition holds the profile, the
//!   activity and the attribute history, so reading the newest activity is one query,
//!   newest first, paged — bounded however long the history is.
//! - Every identifier (MXO identifiers by apiName; the tenant-wide customer key that AIXON's
//!   customuid, Monetate's record id and Optimove's CustomerID resolve to, under the apiName
//!   `customerKey`) has an index entry keyed by a keyed hash of apiName and value, each in
//!   its own partition: resolving many customers is one batched read ([`identity`]).
//! - Erasure turns those entries into tombstones, which refuse later ingestion of that
//!   customer (the entry's own `NotExists` condition does it) until an admin lifts them
//!   ([`erasure`]).
//! - Bulk writes are planned from batched reads and committed as transactions that group
//!   several customers, several in flight ([`upsert`]); a write that meets a concurrent
//!   change is re-read and retried with jittered backoff ([`crate::retry`]).
//!
//! One module per idea: [`identity`] (identifiers, lookup, creation), [`activity`],
//! [`attributes`] and their history, [`upsert`] (the bulk planner), [`listing`] (the
//! creation order Optimove pages through), [`erasure`] and suppression.

mod activity;
mod attributes;
mod erasure;
mod identity;
mod listing;
mod tid;
mod upsert;

pub use activity::{
    Activity, ActivityFilter, MAX_ACTIVITY_COUNTERS, activity_page, record_activities,
};
pub use attributes::{
    AttributeChange, HISTORY_DAYS, attribute_changers, attribute_history, attribute_known,
    register_attributes, set_attributes,
};
pub use erasure::{
    Erased, INLINE_ERASURE_ROWS, continue_erasure, erase, erase_noting, erasure_status,
    lift_suppression, record_surface_rows, remove_customer_partition, suppressions,
};
pub use identity::{
    CUSTOMER_KEY, Customer, CustomerRef, Identifier, MAX_IDENTIFIERS, by_tid, by_tids, find,
    find_or_create, suppressed,
};
pub use listing::{Listed, list_page};
pub use tid::{MAX_TID_CHARS, Tid};
pub use upsert::{Upsert, UpsertOutcome, upsert_many};

use crate::keys::HashKey;
use crate::storage::{ItemTable, StorageError};

/// What the customer store works with: the item table, and the key of the keyed hash its
/// identifier index is built on (identifiers and tids are indexed by hash, never stored as
/// keys). Every function here takes this rather than the whole [`crate::app::App`], so it is
/// plain what a customer write can touch: no blob store, clock or signing keys (the time is a
/// parameter). `App::customers` hands one out.
#[derive(Clone, Copy)]
pub struct CustomerStore<'a> {
    pub table: &'a dyn ItemTable,
    pub hash_key: &'a HashKey,
}

impl CustomerStore<'_> {
    /// The keyed hash of a value (see [`HashKey`]).
    pub fn keyed_hash(&self, value: &str) -> String {
        self.hash_key.hash(value)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CustomerError {
    #[error("the customer was erased on request and is suppressed ({0}); an admin can lift it")]
    Suppressed(String),
    #[error("{0}")]
    Conflict(String),
    /// Concurrent changes kept refusing the write for the whole retry budget: on a healthy
    /// store this does not happen (see [`crate::retry`]).
    #[error("the customer is being changed by other requests; retry")]
    Busy,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<crate::retry::Exhausted> for CustomerError {
    fn from(_: crate::retry::Exhausted) -> Self {
        CustomerError::Busy
    }
}

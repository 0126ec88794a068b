//! The embedded adapters: an ACID redb database file for items and a directory for blobs,
//! both under one data directory. Used by the local server, the admin CLI and tests.
//!
//! redb is synchronous, so reads run on tokio's blocking pool, and writes go through the
//! group-commit writer ([`super::group_commit`]): one write transaction at a time, each
//! call applied with its own all-or-nothing semantics — the atomicity DynamoDB gives a
//! single item write or a TransactWriteItems call — and many calls sharing one sync.
//!
//! [`table`] is the item table on redb, [`blobs`] the blob store on files.

mod blobs;
mod table;

pub use blobs::{EmbeddedBlobs, PRESIGNED_UPLOAD_PATH};
pub use table::{EMBEDDED_CACHE_BYTES, EmbeddedTable};
// The group-commit writer stores items in the table's encoding.
pub(super) use table::{decode, encode};

use crate::storage::StorageError;

fn fault(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

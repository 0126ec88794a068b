//! Retrying a write that met a concurrent change of the same items.
//!
//! Conditional writes and transactions refuse to apply over a change they did not see; the
//! caller then reads again and retries. Contenders that retry at the same moment collide
//! again, so the delays are jittered and grow; the budget (about 20 s in all) is far beyond
//! what contention on a healthy store needs, so only a store that keeps refusing — an
//! unavailable one — exhausts it.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::storage::StorageError;

/// The delays between attempts; `None` when the budget is spent.
pub fn contention_backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(250))
        .with_factor(1.5)
        .with_max_times(100)
        .with_jitter()
        .build()
}

/// Whether a write failed because of a concurrent change (worth reading again and retrying).
pub fn is_contention(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::TransactionCanceled { .. } | StorageError::Contention(_)
    )
}

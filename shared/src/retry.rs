//! Retrying a write that met a concurrent change of the same items.
//!
//! Conditional writes and transactions refuse to apply over a change they did not see; the
//! caller then reads again and retries. Contenders that retry at the same moment collide
//! again, so the delays are jittered and grow; the budget (about 20 s in all) is far beyond
//! what contention on a healthy store needs, so only a store that keeps refusing — an
//! unavailable one — exhausts it.
//!
//! Every retry is counted: a write that retried leaves one `ContentionRetries` metric line
//! when it is over, and `ContentionExhausted` when it gave up ([`crate::metrics`]).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

use crate::metrics::Contention;
use crate::storage::StorageError;

/// The delays between the attempts of one write; `None` when the budget is spent. Each
/// delay taken is a retry, and the `None` is its exhaustion, counted under `operation`.
pub struct Backoff {
    delays: ExponentialBackoff,
    counted: Contention,
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let delay = self.delays.next();
        match delay {
            Some(_) => self.counted.retried(),
            None => self.counted.exhausted(),
        }
        delay
    }
}

/// The delays between attempts of the write `operation` names (a fixed name such as
/// `customer-upsert`: it is a metric dimension); `None` when the budget is spent.
pub fn contention_backoff(operation: &'static str) -> Backoff {
    Backoff {
        delays: ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(1))
            .with_max_delay(Duration::from_millis(250))
            .with_factor(1.5)
            .with_max_times(100)
            .with_jitter()
            .build(),
        counted: Contention::new(operation),
    }
}

/// Whether a write failed because of a concurrent change (worth reading again and retrying).
pub fn is_contention(error: &StorageError) -> bool {
    matches!(
        error,
        StorageError::TransactionCanceled { .. } | StorageError::Contention(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_delay_taken_is_a_retry_and_the_end_of_the_budget_its_exhaustion() {
        let mut delays = contention_backoff("customer-upsert");
        assert!(delays.counted.document().is_none(), "no retry, no line");
        delays.next();
        delays.next();
        let document = delays.counted.document().expect("a line").to_json(1);
        assert_eq!(document["ContentionRetries"], 2);
        assert_eq!(document["ContentionExhausted"], 0);
        assert_eq!(document["Operation"], "customer-upsert");
        let rest = delays.by_ref().count();
        assert!(rest > 10, "the budget is about 100 delays, not {rest}");
        let document = delays.counted.document().expect("a line").to_json(1);
        assert_eq!(document["ContentionRetries"], 2 + rest as u64);
        assert_eq!(document["ContentionExhausted"], 1);
    }
}

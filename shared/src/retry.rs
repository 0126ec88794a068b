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
    operation: &'static str,
    delays: ExponentialBackoff,
    counted: Contention,
}

impl Backoff {
    /// Sleeps the next delay before another attempt; [`Exhausted`] when the budget is spent.
    pub async fn wait(&mut self) -> Result<(), Exhausted> {
        match self.next() {
            Some(delay) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
            None => Err(Exhausted {
                operation: self.operation,
            }),
        }
    }
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
        operation,
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

/// What one attempt of an optimistic write came to: done (with its answer), or beaten by a
/// concurrent change and worth trying again on fresh state.
#[derive(Debug)]
pub enum Attempt<T> {
    Done(T),
    Contended,
}

impl<T> Attempt<T> {
    /// A conditional write's result as an attempt: refused for a concurrent change is
    /// [`Attempt::Contended`], any other failure is the caller's to handle.
    pub fn of_write(result: Result<T, StorageError>) -> Result<Attempt<T>, StorageError> {
        match result {
            Ok(done) => Ok(Attempt::Done(done)),
            Err(error) if is_contention(&error) => Ok(Attempt::Contended),
            Err(other) => Err(other),
        }
    }

    /// The answer of a done attempt changed by `f`; contended stays contended.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Attempt::Done(answer) => Attempt::Done(f(answer)),
            Attempt::Contended => Attempt::Contended,
        }
    }
}

/// The budget of [`contention_backoff`] is spent: the store kept refusing the write. Every
/// surface answers it as busy (503 with `Retry-After`), never as the client's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: the store kept refusing the write under concurrent changes; retry")]
pub struct Exhausted {
    pub operation: &'static str,
}

impl From<Exhausted> for StorageError {
    fn from(exhausted: Exhausted) -> Self {
        StorageError::Contention(exhausted.to_string())
    }
}

/// Runs `attempt` (which reads, decides and writes conditionally) until it is
/// [`Attempt::Done`] or fails; after each [`Attempt::Contended`] it waits a delay of
/// [`contention_backoff`] first, and when the budget is spent it fails with [`Exhausted`].
/// The one retry loop of every optimistic write.
///
/// `attempt` is a closure returning a future rather than an async closure: the future of an
/// async closure cannot be required to be `Send` on stable Rust, and every handler's is.
pub async fn optimistic<T, E, Attempted>(
    operation: &'static str,
    mut attempt: impl FnMut() -> Attempted,
) -> Result<T, E>
where
    E: From<Exhausted>,
    Attempted: Future<Output = Result<Attempt<T>, E>>,
{
    let mut delays = contention_backoff(operation);
    loop {
        match attempt().await? {
            Attempt::Done(answer) => return Ok(answer),
            Attempt::Contended => delays.wait().await?,
        }
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

    #[tokio::test]
    async fn an_attempt_beaten_by_a_concurrent_change_runs_again_until_done() {
        let mut runs = 0;
        let answer: Result<&str, StorageError> = optimistic("test", || {
            runs += 1;
            let contended = runs < 3;
            async move {
                Ok(if contended {
                    Attempt::Contended
                } else {
                    Attempt::Done("written")
                })
            }
        })
        .await;
        assert_eq!(answer, Ok("written"));
        assert_eq!(runs, 3);
    }

    #[tokio::test]
    async fn a_failed_attempt_is_not_retried() {
        let mut runs = 0;
        let answer: Result<(), StorageError> = optimistic("test", || {
            runs += 1;
            async { Err(StorageError::Unavailable("down".into())) }
        })
        .await;
        assert!(matches!(answer, Err(StorageError::Unavailable(_))));
        assert_eq!(runs, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_is_always_beaten_ends_exhausted() {
        let mut runs = 0;
        let answer: Result<(), Exhausted> = optimistic("test", || {
            runs += 1;
            async { Ok(Attempt::Contended) }
        })
        .await;
        assert_eq!(answer, Err(Exhausted { operation: "test" }));
        assert!(runs > 10, "the whole budget is tried, not {runs} attempts");
    }

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

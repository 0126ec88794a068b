//! What the benchmark binaries share: the "redb alone" baseline every ingest figure is
//! printed beside, the count of items a surface writes per row, the DynamoDB request and
//! partition-heat figures of an emulator run, and a child process's memory.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use custdata::storage::metered::{Heat, Metered, RequestCounts};
use rand::Rng;
use redb::{Database, TableDefinition};

/// Value size of the baseline's items: about what a customer-store item weighs.
pub const VALUE_BYTES: usize = 200;
/// Rows per durable commit of the baseline, unless a bench says otherwise.
pub const ROWS_PER_COMMIT: usize = 1_000;

const BASELINE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("items");

/// What [`redb_alone`] measured.
#[derive(Debug, Clone)]
pub struct RedbAlone {
    pub rows: usize,
    pub items_per_row: usize,
    pub rows_per_commit: usize,
    pub value_bytes: usize,
    pub elapsed: Duration,
    pub rows_per_sec: f64,
    pub items_per_sec: f64,
}

impl fmt::Display for RedbAlone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.0} rows/s, {:.0} items/s ({} rows × {} items of {} bytes, random 32-hex (pk, sk) keys, {} row{} per durable commit, {:.1} s)",
            self.rows_per_sec,
            self.items_per_sec,
            self.rows,
            self.items_per_row,
            self.value_bytes,
            self.rows_per_commit,
            if self.rows_per_commit == 1 { "" } else { "s" },
            self.elapsed.as_secs_f64(),
        )
    }
}

/// The baseline of an ingest figure: redb alone, without the project's adapter. Inserts
/// `rows × items_per_row` items into a fresh redb file in a temporary directory under `dir`
/// (the disk the surface writes to) — random 32-hex-character `(pk, sk)` keys, values of
/// `value_bytes` — committing every `rows_per_commit` rows with redb's default durability
/// (`Durability::Immediate`: every commit is synced to disk). The file goes afterwards.
pub fn redb_alone(
    dir: &Path,
    rows: usize,
    items_per_row: usize,
    value_bytes: usize,
    rows_per_commit: usize,
) -> RedbAlone {
    let rows_per_commit = rows_per_commit.max(1);
    let scratch = tempfile::tempdir_in(dir).expect("a directory for the baseline");
    let db = Database::create(scratch.path().join("baseline.redb")).expect("redb file");
    let mut rng = rand::rng();
    let mut value = vec![0u8; value_bytes];
    let started = Instant::now();
    let mut done = 0;
    while done < rows {
        let commit_rows = rows_per_commit.min(rows - done);
        let txn = db.begin_write().expect("write transaction");
        {
            let mut table = txn.open_table(BASELINE).expect("table");
            for _ in 0..commit_rows * items_per_row {
                let pk = format!("{:032x}", rng.random::<u128>());
                let sk = format!("{:032x}", rng.random::<u128>());
                rng.fill(&mut value[..]);
                table
                    .insert((pk.as_str(), sk.as_str()), value.as_slice())
                    .expect("insert");
            }
        }
        txn.commit().expect("commit");
        done += commit_rows;
    }
    let elapsed = started.elapsed();
    let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    RedbAlone {
        rows,
        items_per_row,
        rows_per_commit,
        value_bytes,
        elapsed,
        rows_per_sec: rows as f64 / seconds,
        items_per_sec: (rows * items_per_row) as f64 / seconds,
    }
}

/// The items a surface writes for one row, named: the baseline writes as many.
#[derive(Debug, Clone, Default)]
pub struct ItemsPerRow {
    parts: Vec<(usize, String)>,
}

impl ItemsPerRow {
    /// One named item per row.
    pub fn one(what: &str) -> Self {
        ItemsPerRow::default().and(1, what)
    }

    /// The items of a customer the row creates, with attributes, in the shared customer
    /// store: its profile, its customer-key index entry, one index entry per further
    /// identifier, its listing entry, and its attribute-history item with the day's index
    /// entry (the listing counter, one per transaction, is not counted).
    pub fn new_customer(other_identifiers: usize) -> Self {
        ItemsPerRow::one("profile")
            .and(1, "customer-key index entry")
            .and(other_identifiers, "other identifier index entries")
            .and(1, "listing entry")
            .and(1, "attribute-history item")
            .and(1, "day-index entry")
    }

    /// Adds `count` items of one kind.
    pub fn and(mut self, count: usize, what: &str) -> Self {
        if count > 0 {
            self.parts.push((count, what.to_string()));
        }
        self
    }

    pub fn total(&self) -> usize {
        self.parts.iter().map(|(count, _)| count).sum()
    }
}

impl fmt::Display for ItemsPerRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .parts
            .iter()
            .map(|(count, what)| format!("{count} {what}"))
            .collect();
        write!(f, "{} ({})", self.total(), parts.join(" + "))
    }
}

/// `figure / baseline`, 0 when there is no baseline.
pub fn ratio(figure: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        figure / baseline
    } else {
        0.0
    }
}

/// Counts the requests and partition heat of one measured stretch of an emulator run:
/// started with [`Meter::start`] (which forgets the heat of the set-up), ended with
/// [`Meter::stop`].
pub struct Meter<'a> {
    metered: &'a Metered,
    before: RequestCounts,
    started: Instant,
}

impl<'a> Meter<'a> {
    pub fn start(metered: &'a Metered) -> Self {
        metered.reset_heat();
        Meter {
            metered,
            before: metered.counts(),
            started: Instant::now(),
        }
    }

    /// What the stretch cost for `rows` rows.
    pub fn stop(self, rows: usize) -> Metering {
        Metering {
            rows,
            elapsed: self.started.elapsed(),
            requests: self.metered.counts().since(&self.before),
            heat: self.metered.heat(),
        }
    }
}

/// The requests and partition heat of `rows` rows on the emulator.
#[derive(Debug, Clone)]
pub struct Metering {
    pub rows: usize,
    pub elapsed: Duration,
    pub requests: RequestCounts,
    pub heat: Heat,
}

impl Metering {
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    /// `n` per 1,000 rows.
    pub fn per_1000_rows(&self, n: u64) -> f64 {
        n as f64 * 1000.0 / self.rows.max(1) as f64
    }

    /// Requests per 1,000 rows, reads (BatchGetItem among them) and writes by operation.
    pub fn requests_line(&self) -> String {
        let counts = &self.requests;
        let per = |n: u64| self.per_1000_rows(n);
        format!(
            "{:.1} requests per 1,000 rows: {:.1} reads (GetItem {:.1}, Query {:.1}, BatchGetItem {:.1} carrying {:.1} keys) + {:.1} writes (PutItem {:.1}, UpdateItem {:.1}, DeleteItem {:.1}, BatchWriteItem {:.1} carrying {:.1} items, TransactWriteItems {:.1})",
            per(counts.requests()),
            per(counts.read_requests()),
            per(counts.get),
            per(counts.query),
            per(counts.batch_get),
            per(counts.batch_get_keys),
            per(counts.write_requests()),
            per(counts.put),
            per(counts.update),
            per(counts.delete),
            per(counts.batch_write),
            per(counts.batch_items),
            per(counts.transact),
        )
    }

    /// The hottest write partition's and read partition's share of the item writes (reads),
    /// and the per-tenant ceiling that share projects on DynamoDB, in items and in rows a
    /// second. Two lines: writes, then reads.
    pub fn heat_lines(&self) -> [String; 2] {
        let heat = &self.heat;
        let line = |kind: &str, pk: &str, hottest: u64, all: u64, share: f64, ceiling: f64| {
            if all == 0 {
                return format!("no item {kind}s");
            }
            let per_row = all as f64 / self.rows.max(1) as f64;
            format!(
                "hottest {kind} partition {pk:?}: {hottest} of {all} item {kind}s, share {share:.4}; projected per-tenant ceiling {ceiling:.0} item {kind}s/s ≈ {:.0} rows/s at {:.1} item {kind}s per 1,000 rows",
                ratio(ceiling, per_row),
                self.per_1000_rows(all),
            )
        };
        [
            line(
                "write",
                &heat.hottest_write_pk,
                heat.hottest_writes,
                heat.writes,
                heat.hottest_write_share(),
                heat.write_ceiling_per_second(),
            ),
            line(
                "read",
                &heat.hottest_read_pk,
                heat.hottest_reads,
                heat.reads,
                heat.hottest_read_share(),
                heat.read_ceiling_per_second(),
            ),
        ]
    }
}

/// kB from a line of `/proc/{pid}/status` (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

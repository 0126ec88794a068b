//! Metrics as CloudWatch embedded-metric-format (EMF) lines, the same in Lambda and locally
//! (docs/metrics.md lists every metric).
//!
//! Each event that matters to an operator — an AIXON import run, an erasure, a rate-limit
//! refusal, a write that had to retry over a concurrent change — writes one JSON object:
//!
//! ```json
//! {"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"custdata",
//!   "Dimensions":[["Family","Limit"]],"Metrics":[{"Name":"RateLimited","Unit":"Count"}]}]},
//!  "Family":"optimove-functions","Limit":"optimove-calls","RateLimited":1}
//! ```
//!
//! In Lambda the object is a line of its own on stdout, where CloudWatch Logs extracts the
//! metrics (no API call, no permission beyond writing logs); the local server writes the
//! same object into its readable log. Which of the two is chosen by the log set-up
//! ([`crate::logs::init_json`] sends them to stdout).
//!
//! Dimension values are `&'static str`: names the code defines (a function family, a
//! surface, a limit, an operation), so no tenant, identifier, path or body can become one —
//! tenants are unbounded and each value of a dimension is a metric of its own
//! (docs/decisions.md, "Metrics").

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Number, Value, json};

/// The CloudWatch namespace of every custdata metric.
pub const NAMESPACE: &str = "custdata";

/// The `Family` dimension outside any request or scheduled task (the admin CLI, tests).
pub const NO_FAMILY: &str = "-";

tokio::task_local! {
    /// The function family (or scheduled task) the current task serves.
    static FAMILY: &'static str;
}

/// Runs a request's or scheduled task's work as `family` (a binary name, as
/// `Family::name`): what the metrics it emits carry as their `Family` dimension.
pub async fn in_family<F: Future>(family: &'static str, work: F) -> F::Output {
    FAMILY.scope(family, work).await
}

/// The family the current task serves, [`NO_FAMILY`] outside one.
fn family() -> &'static str {
    FAMILY.try_with(|family| *family).unwrap_or(NO_FAMILY)
}

/// A CloudWatch unit (the subset custdata uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    CountPerSecond,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::CountPerSecond => "Count/Second",
        }
    }
}

/// One EMF document: its dimensions (key and value) and its metric values, all under one
/// dimension set.
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    dimensions: Vec<(&'static str, &'static str)>,
    metrics: Vec<(&'static str, Unit, Number)>,
}

impl Emf {
    /// A document with the current task's `Family` as its first dimension.
    pub fn new() -> Emf {
        Emf::for_family(family())
    }

    /// A document for the given family.
    pub fn for_family(family: &'static str) -> Emf {
        Emf {
            dimensions: vec![("Family", family)],
            metrics: Vec::new(),
        }
    }

    pub fn dimension(mut self, key: &'static str, value: &'static str) -> Emf {
        self.dimensions.push((key, value));
        self
    }

    pub fn count(mut self, name: &'static str, value: u64) -> Emf {
        self.metrics.push((name, Unit::Count, value.into()));
        self
    }

    /// A value with a fractional part (non-finite values are left out: JSON has none).
    pub fn value(mut self, name: &'static str, unit: Unit, value: f64) -> Emf {
        if let Some(number) = Number::from_f64(value) {
            self.metrics.push((name, unit, number));
        }
        self
    }

    /// The document as JSON, stamped `timestamp_millis` (milliseconds since the epoch).
    pub fn to_json(&self, timestamp_millis: i64) -> Value {
        let directive = json!({
            "Namespace": NAMESPACE,
            "Dimensions": [self.dimensions.iter().map(|(key, _)| *key).collect::<Vec<_>>()],
            "Metrics": self.metrics.iter()
                .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                .collect::<Vec<_>>(),
        });
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({"Timestamp": timestamp_millis, "CloudWatchMetrics": [directive]}),
        );
        for (key, value) in &self.dimensions {
            root.insert((*key).into(), json!(value));
        }
        for (name, _, value) in &self.metrics {
            root.insert((*name).into(), Value::Number(value.clone()));
        }
        Value::Object(root)
    }

    /// Writes the document where metrics go (see the module's documentation).
    pub fn emit(&self) {
        let line = self.to_json(now_millis()).to_string();
        if TO_STDOUT.load(Ordering::Relaxed) {
            // One write of the whole line on the locked handle: no log line of another
            // thread can land inside it.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(format!("{line}\n").as_bytes());
            let _ = out.flush();
        } else {
            tracing::info!(target: "custdata::metrics", "{line}");
        }
    }
}

impl Default for Emf {
    fn default() -> Emf {
        Emf::new()
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

static TO_STDOUT: AtomicBool = AtomicBool::new(false);

/// Sends metric lines to stdout as bare JSON objects (Lambda). Without it they are
/// `info` events of the `custdata::metrics` target, in whatever log is set up.
///
/// A tracing event cannot carry them in Lambda: the JSON formatter nests an event's fields
/// under `fields` and writes them as strings, and CloudWatch extracts metrics only from a
/// log event whose root object has `_aws` and the metric members.
pub fn write_to_stdout() {
    TO_STDOUT.store(true, Ordering::Relaxed);
}

/// The `Surface` dimension of the AIXON import.
pub const AIXON: &str = "aixon";

/// What one AIXON import run did (`aixon::import::handle_event`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportRun {
    pub rows: usize,
    /// Problems recorded on updates: rows refused or applied without an identifier, and
    /// the reasons of bodies refused at their check.
    pub row_errors: usize,
    pub updates_finished: usize,
    /// Updates the run ended `FAILED`: bodies refused at their check, and bodies given up
    /// as never arriving.
    pub updates_failed: usize,
    /// The run stopped on an error (storage, blob store, body reader); the event is retried.
    pub failed: bool,
    pub elapsed: Duration,
}

impl ImportRun {
    /// Whether the run did anything worth a metric line (the local importer runs every
    /// half second, and most runs find nothing to do).
    pub fn did_something(&self) -> bool {
        self.rows > 0 || self.updates_finished > 0 || self.updates_failed > 0 || self.failed
    }

    pub fn document(&self) -> Emf {
        let mut emf = Emf::new()
            .dimension("Surface", AIXON)
            .count("ImportRows", self.rows as u64)
            .count("ImportRowErrors", self.row_errors as u64)
            .count("ImportUpdatesFinished", self.updates_finished as u64)
            .count("ImportUpdatesFailed", self.updates_failed as u64)
            .count("ImportRunFailures", u64::from(self.failed));
        let seconds = self.elapsed.as_secs_f64();
        if self.rows > 0 && seconds > 0.0 {
            emf = emf.value(
                "ImportRowsPerSecond",
                Unit::CountPerSecond,
                self.rows as f64 / seconds,
            );
        }
        emf
    }
}

/// An import run finished (successfully or not): one line, unless it found nothing to do.
pub fn import_finished(run: &ImportRun) {
    if run.did_something() {
        run.document().emit();
    }
}

/// The documents of one erasure: `Erasures` once, and `ErasedRows` per surface that had
/// rows of the customer (`Surface`: `aixon`, `monetate`, `datastores`).
pub fn erasure_documents<'a>(
    rows: impl IntoIterator<Item = (&'a &'static str, &'a usize)>,
) -> Vec<Emf> {
    let mut documents = vec![Emf::new().count("Erasures", 1)];
    documents.extend(
        rows.into_iter()
            .filter(|(_, rows)| **rows > 0)
            .map(|(surface, rows)| {
                Emf::new()
                    .dimension("Surface", surface)
                    .count("ErasedRows", *rows as u64)
            }),
    );
    documents
}

/// A customer was erased (`privacy::erase`), with the rows removed per surface.
pub fn erasure(rows: &BTreeMap<&'static str, usize>) {
    for document in erasure_documents(rows) {
        document.emit();
    }
}

/// A limit that answers 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    /// Optimove's calls per client per window (`optimove::count_call`).
    OptimoveCalls,
    /// Optimove's failed logins of one username per minute (`optimove::auth::login`).
    OptimoveFailedLogins,
    /// Monetate's spot check, one per second per API user.
    MonetateSpotCheck,
}

impl RateLimit {
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimit::OptimoveCalls => "optimove-calls",
            RateLimit::OptimoveFailedLogins => "optimove-failed-logins",
            RateLimit::MonetateSpotCheck => "monetate-spot-check",
        }
    }

    pub fn document(self) -> Emf {
        Emf::new()
            .dimension("Limit", self.as_str())
            .count("RateLimited", 1)
    }
}

/// A request was refused with 429 by `limit`.
pub fn rate_limited(limit: RateLimit) {
    limit.document().emit();
}

/// The retries of one write over concurrent changes (`crate::retry`, and the hand-written
/// loops): counted while the write runs, written once when it is over (dropped), and only
/// if it retried at all. `Operation` names the write.
#[derive(Debug)]
pub struct Contention {
    operation: &'static str,
    retries: u64,
    exhausted: bool,
}

impl Contention {
    pub fn new(operation: &'static str) -> Contention {
        Contention {
            operation,
            retries: 0,
            exhausted: false,
        }
    }

    /// The write met a concurrent change and is tried again.
    pub fn retried(&mut self) {
        self.retries += 1;
    }

    /// The write met a concurrent change and gives up.
    pub fn exhausted(&mut self) {
        self.exhausted = true;
    }

    /// The line this write leaves, `None` when it never met a concurrent change.
    pub fn document(&self) -> Option<Emf> {
        (self.retries > 0 || self.exhausted).then(|| {
            Emf::new()
                .dimension("Operation", self.operation)
                .count("ContentionRetries", self.retries)
                .count("ContentionExhausted", u64::from(self.exhausted))
        })
    }
}

impl Drop for Contention {
    fn drop(&mut self) {
        if let Some(document) = self.document() {
            document.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What CloudWatch requires of an EMF document (the specification's MUSTs that a
    /// document can break): `_aws` with a numeric `Timestamp` and directives; each
    /// directive's namespace, dimension sets of at most 30 keys, each key a string member
    /// of the root, and each metric a number at the root; unit names CloudWatch knows.
    fn check_emf(document: &Value) -> Vec<&str> {
        let aws = &document["_aws"];
        assert!(aws["Timestamp"].is_i64(), "Timestamp: {document}");
        let directives = aws["CloudWatchMetrics"].as_array().expect("directives");
        assert!(!directives.is_empty());
        let mut names = Vec::new();
        for directive in directives {
            assert_eq!(directive["Namespace"], NAMESPACE);
            let sets = directive["Dimensions"].as_array().expect("dimension sets");
            for set in sets {
                let keys = set.as_array().expect("a dimension set");
                assert!(!keys.is_empty() && keys.len() <= 30, "{document}");
                for key in keys {
                    let key = key.as_str().expect("a dimension key");
                    let value = document[key].as_str().unwrap_or_else(|| {
                        panic!("dimension {key} is not a string member: {document}")
                    });
                    assert!(!value.is_empty() && value.len() <= 1024);
                }
            }
            let metrics = directive["Metrics"].as_array().expect("metrics");
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().expect("a metric name");
                assert!(
                    ["Count", "Count/Second"].contains(&metric["Unit"].as_str().unwrap()),
                    "{metric}"
                );
                assert!(
                    document[name].is_number(),
                    "metric {name} is not a number at the root: {document}"
                );
                names.push(name);
            }
        }
        names
    }

    fn dimensions(document: &Value) -> Vec<(&str, &str)> {
        document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| {
                let key = key.as_str().unwrap();
                (key, document[key].as_str().unwrap())
            })
            .collect()
    }

    #[test]
    fn an_import_run_is_valid_emf_with_rows_rate_and_errors() {
        let run = ImportRun {
            rows: 2_500,
            row_errors: 3,
            updates_finished: 2,
            updates_failed: 1,
            failed: false,
            elapsed: Duration::from_millis(1_250),
        };
        let document = run.document().to_json(1_700_000_000_000);
        assert_eq!(
            check_emf(&document),
            [
                "ImportRows",
                "ImportRowErrors",
                "ImportUpdatesFinished",
                "ImportUpdatesFailed",
                "ImportRunFailures",
                "ImportRowsPerSecond"
            ]
        );
        assert_eq!(document["ImportRows"], 2_500);
        assert_eq!(document["ImportRowErrors"], 3);
        assert_eq!(document["ImportRunFailures"], 0);
        assert_eq!(document["ImportRowsPerSecond"], 2_000.0);
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        // Outside a task, the family is "-".
        assert_eq!(
            dimensions(&document),
            [("Family", NO_FAMILY), ("Surface", "aixon")]
        );
    }

    #[test]
    fn an_import_run_without_rows_has_no_rate_and_an_idle_run_no_line() {
        let failed = ImportRun {
            failed: true,
            elapsed: Duration::from_secs(1),
            ..ImportRun::default()
        };
        assert!(failed.did_something());
        let document = failed.document().to_json(1);
        assert!(!check_emf(&document).contains(&"ImportRowsPerSecond"));
        assert_eq!(document["ImportRunFailures"], 1);
        assert!(!ImportRun::default().did_something());
    }

    #[tokio::test]
    async fn the_family_is_the_task_s() {
        let document = in_family("aixon-import", async { ImportRun::default().document() })
            .await
            .to_json(1);
        check_emf(&document);
        assert_eq!(document["Family"], "aixon-import");
    }

    #[tokio::test]
    async fn an_erasure_counts_once_and_its_rows_per_surface() {
        let rows = BTreeMap::from([("aixon", 2), ("datastores", 0), ("monetate", 1)]);
        let documents: Vec<Value> =
            in_family("mxo-customer-delete", async { erasure_documents(&rows) })
                .await
                .iter()
                .map(|document| document.to_json(1))
                .collect();
        assert_eq!(documents.len(), 3, "a surface without rows has no line");
        assert_eq!(check_emf(&documents[0]), ["Erasures"]);
        assert_eq!(documents[0]["Erasures"], 1);
        assert_eq!(
            dimensions(&documents[0]),
            [("Family", "mxo-customer-delete")]
        );
        for (document, (surface, count)) in
            documents[1..].iter().zip([("aixon", 2), ("monetate", 1)])
        {
            assert_eq!(check_emf(document), ["ErasedRows"]);
            assert_eq!(document["ErasedRows"], count);
            assert_eq!(
                dimensions(document),
                [("Family", "mxo-customer-delete"), ("Surface", surface)]
            );
        }
    }

    #[test]
    fn a_rate_limit_refusal_names_its_limit() {
        for limit in [
            RateLimit::OptimoveCalls,
            RateLimit::OptimoveFailedLogins,
            RateLimit::MonetateSpotCheck,
        ] {
            let document = limit.document().to_json(1);
            assert_eq!(check_emf(&document), ["RateLimited"]);
            assert_eq!(document["RateLimited"], 1);
            assert_eq!(dimensions(&document)[1], ("Limit", limit.as_str()));
        }
    }

    #[test]
    fn contention_counts_retries_and_exhaustion_and_is_silent_without_either() {
        let mut contention = Contention::new("customer-upsert");
        assert!(contention.document().is_none());
        contention.retried();
        contention.retried();
        let document = contention.document().unwrap().to_json(1);
        assert_eq!(
            check_emf(&document),
            ["ContentionRetries", "ContentionExhausted"]
        );
        assert_eq!(document["ContentionRetries"], 2);
        assert_eq!(document["ContentionExhausted"], 0);
        assert_eq!(dimensions(&document)[1], ("Operation", "customer-upsert"));
        contention.exhausted();
        assert_eq!(
            contention.document().unwrap().to_json(1)["ContentionExhausted"],
            1
        );
    }

    #[test]
    fn a_non_finite_value_is_left_out_rather_than_written_as_null() {
        let document = Emf::for_family("f")
            .count("A", 1)
            .value("B", Unit::CountPerSecond, f64::NAN)
            .to_json(1);
        assert_eq!(check_emf(&document), ["A"]);
        assert!(document.get("B").is_none());
    }
}

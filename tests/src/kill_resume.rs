//! Kill-and-resume: the real `custdata-local` binary as a child process, killed with SIGKILL
//! in the middle of an AIXON import (server-driven, resumed from its checkpoint after the
//! restart) and of an MXO staging load (client-driven: the client re-sends what was not
//! acknowledged), then compared row by row with what a clean run stores: the input itself,
//! since both loads are keyed (a clean run stores each input row exactly once).
//!
//! Used by the bounded test (`local/tests/kill_and_resume.rs`) and by
//! `bench-kill-resume`, which runs it at 1,000,000 rows.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use custdata::app::App;
use custdata::clock::SystemClock;
use custdata::customers::{self, CustomerRef, Identifier};
use custdata::domain::TenantId;
use custdata::mxo::datastores::model::ApiName;
use custdata::storage::{Query, keys, read_all};
use custdata::tenancy::CredentialBundle;
use serde::Serialize;
use serde_json::{Value, json};

use crate::{free_port, wait_for_port};

/// `custdata-local` running on a data directory, killed or stopped by the caller.
pub struct LocalProcess {
    child: Child,
    pub base_url: String,
    pub credentials: CredentialBundle,
}

impl LocalProcess {
    pub async fn start(binary: &Path, data_dir: &Path) -> LocalProcess {
        LocalProcess::start_with_umask(binary, data_dir, None).await
    }

    /// [`LocalProcess::start`] under a umask (through `sh -c 'umask …; exec …'`), or the
    /// test process's own when `None`.
    pub async fn start_with_umask(
        binary: &Path,
        data_dir: &Path,
        umask: Option<u32>,
    ) -> LocalProcess {
        LocalProcess::launch(binary, data_dir, umask, None).await
    }

    /// [`LocalProcess::start`] with what the server writes (stdout and stderr) appended to
    /// `log`, at `RUST_LOG=info`.
    pub async fn start_logging_to(binary: &Path, data_dir: &Path, log: &Path) -> LocalProcess {
        LocalProcess::launch(binary, data_dir, None, Some(log)).await
    }

    async fn launch(
        binary: &Path,
        data_dir: &Path,
        umask: Option<u32>,
        log: Option<&Path>,
    ) -> LocalProcess {
        let output = || match log {
            Some(log) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
                    .expect("the log file opens"),
            ),
            None => Stdio::null(),
        };
        let port = free_port();
        // A killed server leaves its server.json behind; the new one writes it when ready.
        let server_file = data_dir.join(custdata_local::SERVER_FILE);
        let _ = std::fs::remove_file(&server_file);
        let mut command = match umask {
            Some(umask) => {
                let mut command = Command::new("sh");
                command
                    .arg("-c")
                    .arg(format!("umask {umask:03o} && exec \"$0\" \"$@\""))
                    .arg(binary);
                command
            }
            None => Command::new(binary),
        };
        if log.is_some() {
            command.env("RUST_LOG", "info");
        }
        let child = command
            .args(["--port", &port.to_string(), "--data-dir"])
            .arg(data_dir)
            .stdout(output())
            .stderr(output())
            .spawn()
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
        // The port is bound before the store is open: wait for the file written after it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server_file.exists() {
            assert!(
                Instant::now() < deadline,
                "{} did not start",
                binary.display()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_for_port(port, 60).await;
        let credentials = std::fs::read(data_dir.join(custdata_local::DEV_CREDENTIALS_FILE))
            .expect("the development credentials");
        LocalProcess {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            credentials: serde_json::from_slice(&credentials).expect("a credential bundle"),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs, whatever was in flight is cut off.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the graceful exit.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for LocalProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a kill-and-resume run ended with, against the input.
#[derive(Debug, Clone, Serialize)]
pub struct ResumeReport {
    pub surface: &'static str,
    pub rows: usize,
    /// Rows done (acknowledged, or processed by the import) when the kill came.
    pub done_at_kill: usize,
    /// Input rows stored with exactly the input's values.
    pub intact: usize,
    pub lost: usize,
    /// Stored more than once (extra items, or extra customers).
    pub duplicated: usize,
    /// Stored with other values than the input's.
    pub wrong: usize,
    pub seconds: f64,
}

fn region(n: usize) -> &'static str {
    ["north", "south", "central", "east"][n % 4]
}

fn aixon_row(n: usize) -> String {
    format!("crm{n:08},{},{}\n", region(n), n * 3)
}

/// A 1-line header and `rows` rows, written to `path`.
fn write_aixon_file(path: &Path, rows: usize) -> u64 {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("a file"));
    out.write_all(b"customuid,txt_region,num_spending\n")
        .expect("write");
    for n in 0..rows {
        out.write_all(aixon_row(n).as_bytes()).expect("write");
    }
    out.flush().expect("flush");
    std::fs::metadata(path).expect("size").len()
}

async fn update_status(
    client: &reqwest::Client,
    server: &LocalProcess,
    cell: &str,
    update: &str,
) -> Option<Value> {
    let response = client
        .get(format!(
            "{}/custdata/v1/aixon/csv-upload/{cell}/updates/{update}",
            server.base_url
        ))
        .header("x-api-key", &server.credentials.aixon.api_key)
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// Opens the stopped server's store as the server would.
fn open_store(data_dir: &Path) -> Arc<App> {
    let (app, _) = App::embedded(data_dir, Arc::new(SystemClock), "http://127.0.0.1:9")
        .expect("the store opens");
    Arc::new(app)
}

/// Uploads `rows` AIXON rows to a new cell, kills the server when `kill_at` of them are
/// processed (never, when `kill_at` ≥ 1), restarts it, waits for the import to finish and
/// checks every row.
pub async fn aixon_import(binary: &Path, rows: usize, kill_at: f64) -> ResumeReport {
    let dir = tempfile::tempdir().expect("a directory");
    let data_dir: PathBuf = dir.path().join("data");
    let file = dir.path().join("rows.csv");
    let size = write_aixon_file(&file, rows);
    let started = Instant::now();
    let client = reqwest::Client::new();
    let server = LocalProcess::start(binary, &data_dir).await;
    let key = server.credentials.aixon.api_key.clone();
    let (cell, _) = crate::aixon::create_cell(
        &client,
        &server.base_url,
        &key,
        "resume",
        "customuid,txt_region,num_spending\n",
    )
    .await;
    let body = tokio::fs::read(&file).await.expect("the file");
    let update =
        crate::aixon::presigned_patch(&client, &server.base_url, &key, &cell, body.into(), size)
            .await;

    // Kill once the import is under way and short of the end (`kill_at` ≥ 1: a clean run).
    let mut done_at_kill = 0;
    let server = if kill_at < 1.0 {
        let target = ((rows as f64) * kill_at) as u64;
        done_at_kill = loop {
            let processed = update_status(&client, &server, &cell, &update)
                .await
                .and_then(|status| status["processed"].as_u64())
                .unwrap_or(0);
            if processed >= target.max(1) {
                break processed as usize;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        server.kill();
        LocalProcess::start(binary, &data_dir).await
    } else {
        server
    };
    let finished = crate::aixon::wait_until_finished(
        &client,
        &server.base_url,
        &key,
        &cell,
        &update,
        Duration::from_secs(24 * 3600),
    )
    .await;
    assert_eq!(finished["status"], "DONE", "{finished}");
    let seconds = started.elapsed().as_secs_f64();
    server.stop();

    let app = open_store(&data_dir);
    let tenant = TenantId::parse(&app_tenant(&data_dir)).expect("tenant");
    let (mut intact, mut lost, mut wrong) = (0, 0, 0);
    for n in 0..rows {
        let customuid =
            custdata::aixon::CustomUid::parse(&format!("crm{n:08}")).expect("a customuid");
        match custdata::aixon::store::get_row(
            app.table.as_ref(),
            &app.hash_key,
            &tenant,
            &cell,
            &customuid,
        )
        .await
        .expect("a row read")
        {
            None => lost += 1,
            Some(row)
                if row["values"]["txt_region"] == region(n)
                    && number_is(&row["values"]["num_spending"], n * 3) =>
            {
                intact += 1
            }
            Some(_) => wrong += 1,
        }
    }
    let rows_stored = count_items(&app, &tenant, "AIXROW#").await;
    let customers = customer_count(&app, &tenant).await;
    // Every row's customer exists and carries the row's value.
    for n in (0..rows).step_by((rows / 1000).max(1)) {
        let named = CustomerRef {
            tid: None,
            identifiers: vec![Identifier::customer_key(format!("crm{n:08}"))],
        };
        let customer = customers::find(app.customers(), &tenant, &named)
            .await
            .expect("a read")
            .expect("the row's customer");
        assert_eq!(
            customer.attributes.get("txt_region"),
            Some(&json!(region(n)))
        );
        assert!(number_is(&customer.attributes["num_spending"], n * 3));
    }
    ResumeReport {
        surface: "aixon import",
        rows,
        done_at_kill,
        intact,
        lost,
        duplicated: (rows_stored.saturating_sub(rows)) + customers.saturating_sub(rows),
        wrong,
        seconds,
    }
}

/// A number read back as JSON number or text.
fn number_is(value: &Value, expected: usize) -> bool {
    let read = match value {
        Value::String(text) => text.parse::<f64>().ok(),
        other => other.as_f64(),
    };
    read == Some(expected as f64)
}

fn app_tenant(data_dir: &Path) -> String {
    let bundle: CredentialBundle = serde_json::from_slice(
        &std::fs::read(data_dir.join(custdata_local::DEV_CREDENTIALS_FILE)).expect("credentials"),
    )
    .expect("a bundle");
    bundle.tenant
}

/// Items of the tenant in partitions whose kind starts with `kind` (`AIXROW#`, `DSROW#terms#…`).
async fn count_items(app: &App, tenant: &TenantId, kind: &str) -> usize {
    app.table
        .scan_prefix(&keys::tenant_scoped_pk(tenant, kind))
        .await
        .expect("a scan")
        .len()
}

/// Customers in the tenant: their listing entries (the counter counts reserved ordinals,
/// holes included, so it is not a count of customers).
async fn customer_count(app: &App, tenant: &TenantId) -> usize {
    count_items(app, tenant, "LISTORD#").await
}

fn mxo_record(n: usize) -> Value {
    json!({"customerID": format!("C{n:08}"), "productID": "P", "creditLimit": n})
}

/// Loads `rows` records into a datastore's staging table in POSTs of `batch`, kills the
/// server while the POST after `kill_at` of them is in flight (never, when `kill_at` ≥ 1),
/// restarts it and re-sends from the first unacknowledged POST; then checks every record.
pub async fn mxo_staging(binary: &Path, rows: usize, batch: usize, kill_at: f64) -> ResumeReport {
    let dir = tempfile::tempdir().expect("a directory");
    let data_dir = dir.path().join("data");
    let started = Instant::now();
    let client = reqwest::Client::new();
    let mut server = LocalProcess::start(binary, &data_dir).await;
    let token = |server: &LocalProcess| {
        let mxo = server.credentials.mxo.clone();
        let (client, base_url) = (client.clone(), server.base_url.clone());
        async move { crate::mxo_token_at(&client, &base_url, &mxo.client_id, &mxo.client_secret).await }
    };
    let workspace = server.credentials.mxo.workspace_id.clone();
    let mut bearer = token(&server).await;
    let datastore = format!("/datastores/1.0.0/{workspace}");
    let created = client
        .post(format!("{}{datastore}", server.base_url))
        .bearer_auth(&bearer)
        .json(&json!({"name": "Terms", "apiName": "terms", "primaryKey": "customerID", "secondaryKey": "productID",
                      "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "productID", "type": "TEXT"}, {"name": "creditLimit", "type": "NUMERIC"}]}))
        .send()
        .await
        .expect("create");
    assert!(
        created.status().is_success(),
        "create: {}",
        created.status()
    );

    let batches: Vec<Value> = (0..rows)
        .step_by(batch)
        .map(|first| {
            json!(
                (first..(first + batch).min(rows))
                    .map(mxo_record)
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    let kill_after = if kill_at < 1.0 {
        ((batches.len() as f64) * kill_at) as usize
    } else {
        usize::MAX
    };
    let mut acknowledged = 0;
    let mut killed = false;
    let mut done_at_kill = 0;
    while acknowledged < batches.len() {
        let url = format!("{}{datastore}/terms/staging", server.base_url);
        let post = client
            .post(url)
            .bearer_auth(&bearer)
            .json(&batches[acknowledged])
            .send();
        if !killed && acknowledged == kill_after {
            // The kill lands while this POST is being written.
            let in_flight = tokio::spawn(post);
            tokio::time::sleep(Duration::from_millis(5)).await;
            server.kill();
            let _ = in_flight.await;
            killed = true;
            done_at_kill = acknowledged * batch;
            server = LocalProcess::start(binary, &data_dir).await;
            bearer = token(&server).await;
            continue;
        }
        match post.await {
            Ok(response) if response.status().is_success() => acknowledged += 1,
            Ok(response) => panic!("POST {acknowledged}: {}", response.status()),
            Err(error) => panic!("POST {acknowledged}: {error}"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    server.stop();

    let app = open_store(&data_dir);
    let tenant = TenantId::parse(&app_tenant(&data_dir)).expect("tenant");
    let terms = ApiName::parse("terms").expect("a valid apiName");
    let state = custdata::mxo::datastores::store::load(app.table.as_ref(), &tenant, &terms)
        .await
        .expect("a read")
        .expect("the datastore");
    let mut stored = Vec::new();
    for shard in 0..keys::DATASTORE_ROW_SHARDS {
        let pk = keys::datastore_rows_pk(&tenant, "terms", &state.staging_version, shard);
        stored.extend(
            read_all(app.table.as_ref(), Query::partition(pk))
                .await
                .expect("rows"),
        );
    }
    let mut seen = HashSet::new();
    let (mut intact, mut wrong, mut duplicated) = (0, 0, 0);
    for item in &stored {
        let record: Value = item
            .str("record")
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_else(|| json!({}));
        let key = record["customerID"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let n: Option<usize> = key.strip_prefix('C').and_then(|digits| digits.parse().ok());
        if !seen.insert(key.clone()) {
            duplicated += 1;
        } else if n.is_some_and(|n| n < rows && record == mxo_record(n)) {
            intact += 1;
        } else {
            wrong += 1;
        }
    }
    ResumeReport {
        surface: "mxo staging load",
        rows,
        done_at_kill,
        intact,
        lost: rows.saturating_sub(seen.len()),
        duplicated,
        wrong,
        seconds,
    }
}

//! Imports a generated AIXON CSV (1,000,000 rows of realistic columns, about 150 MB) into
//! the local server — the real `custdata-local` binary, as a child process, through the
//! presigned-upload extension — and prints rows/s, MB/s and the server's peak RSS. Baselines,
//! measured in the same run on the same disk: redb alone, writing as many items per row as
//! the import does (1,000 rows per durable commit), and parsing the file with the `csv` crate
//! alone. Then, on the AWS emulator, DynamoDB requests per 1,000 imported rows and the
//! hottest partition's share.
//!
//! `cargo build --release -p custdata-local && cargo run --release -p custdata-bench --bin bench-aixon -- --rows 200000`

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use custdata::aixon::columns::ColumnKind;
use custdata::aixon::import;
use custdata::app::{App, Settings};
use custdata::clock::{Clock, SystemClock};
use custdata::domain::TenantId;
use custdata::storage::metered::Metered;
use custdata::storage::{ItemTable, keys};
use custdata::tenancy::create_tenant;
use custdata_bench::{
    ItemsPerRow, Meter, Metering, ROWS_PER_COMMIT, VALUE_BYTES, ratio, redb_alone, status_kb,
};
use custdata_tests::LocalProcess;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Rows in the generated file (0 skips the local server and the baseline).
    #[arg(long, default_value_t = 1_000_000)]
    rows: usize,
    /// Rows imported on the AWS emulator to count DynamoDB requests (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    emulator_rows: usize,
    /// The custdata-local binary to measure.
    #[arg(long, default_value = "target/release/custdata-local")]
    server: PathBuf,
}

const HEADER: &str = "customuid,emailsha256,idfa,txt_gender,txt_region,num_spending,num_visits,attr_interest,goal_purchase_any,goal_purchase_any_timestamp\n";

/// The items the import writes per row of this file: a new customer with an index entry per
/// identifier column besides customuid (one value each in the generated rows), and the
/// cell's own row.
fn items_per_row() -> ItemsPerRow {
    let identifiers = HEADER
        .trim_end()
        .split(',')
        .filter(|column| {
            matches!(
                ColumnKind::of(column),
                Ok(ColumnKind::MultiIdentifier | ColumnKind::Identifier)
            )
        })
        .count();
    ItemsPerRow::new_customer(identifiers).and(1, "cell row")
}

fn write_row(out: &mut impl Write, n: usize) -> std::io::Result<()> {
    let regions = ["north", "south", "central", "east"];
    let interests = [
        "cooking,writing",
        "reading,biking",
        "travel",
        "music,film,games",
    ];
    writeln!(
        out,
        "crm{n:08},{:064x},{:08X}-{:04X}-4{:03X}-A{:03X}-{:012X},{},{},{},{},\"{}\",{},{}",
        (n as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
        n,
        n % 0xFFFF,
        n % 0xFFF,
        (n / 7) % 0xFFF,
        n * 31,
        ["M", "F"][n % 2],
        regions[n % 4],
        (n * 37) % 10_000,
        n % 50,
        interests[n % 4],
        n % 2,
        if n % 2 == 1 { 1_500_000_000 + n } else { 0 },
    )
}

fn generate(path: &Path, rows: usize) -> u64 {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("file"));
    out.write_all(HEADER.as_bytes()).expect("write");
    for n in 0..rows {
        write_row(&mut out, n).expect("write");
    }
    out.flush().expect("flush");
    std::fs::metadata(path).expect("size").len()
}

/// The `csv` crate alone: every record read and every field touched.
fn parse_only(path: &Path) -> (usize, Duration) {
    let started = Instant::now();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .expect("open");
    let mut record = csv::StringRecord::new();
    let mut rows = 0;
    let mut bytes = 0;
    while reader.read_record(&mut record).expect("csv") {
        rows += 1;
        bytes += record.iter().map(str::len).sum::<usize>();
    }
    std::hint::black_box(bytes);
    (rows, started.elapsed())
}

async fn through_the_local_server(args: &Args, file: &Path, size: u64) -> Value {
    let dir = tempfile::tempdir().expect("dir");
    let server = LocalProcess::start(&args.server, dir.path()).await;
    let key = server.credentials.aixon.api_key.clone();
    let pid = server.pid();
    let client = reqwest::Client::new();
    let (cell, _) =
        custdata_tests::aixon::create_cell(&client, &server.base_url, &key, "bench", HEADER).await;
    let rss_idle_kb = status_kb(pid, "VmRSS:");
    let started = Instant::now();
    let stream =
        tokio_util::io::ReaderStream::new(tokio::fs::File::open(file).await.expect("file"));
    let update = custdata_tests::aixon::presigned_patch(
        &client,
        &server.base_url,
        &key,
        &cell,
        reqwest::Body::wrap_stream(stream),
        size,
    )
    .await;
    let upload_time = started.elapsed();
    let imported = Instant::now();
    let status = custdata_tests::aixon::wait_until_finished(
        &client,
        &server.base_url,
        &key,
        &cell,
        &update,
        Duration::from_secs(24 * 3600),
    )
    .await;
    let import_time = imported.elapsed();
    let total = started.elapsed();
    json!({
        "status": status["status"],
        "rows": status["rows"],
        "applied": status["applied"],
        "errors": status["errorCount"],
        "upload_seconds": upload_time.as_secs_f64(),
        "import_seconds": import_time.as_secs_f64(),
        "rows_per_second": args.rows as f64 / total.as_secs_f64(),
        "mb_per_second": size as f64 / 1e6 / total.as_secs_f64(),
        "peak_rss_mb": status_kb(pid, "VmHWM:") as f64 / 1024.0,
        "idle_rss_mb": rss_idle_kb as f64 / 1024.0,
    })
}

async fn on_the_emulator(rows: usize) -> Metering {
    let clock = Arc::new(SystemClock);
    let stores = custdata_tests::aws_stores(clock.clone()).await;
    let metered = Arc::new(Metered::new(Arc::new(stores.table)));
    let table: Arc<dyn ItemTable> = metered.clone();
    let bundle = create_tenant(table.as_ref(), "bench", "http://bench", clock.now_millis())
        .await
        .expect("tenant");
    let app = Arc::new(App {
        table,
        blobs: Arc::new(stores.blobs),
        clock,
        settings: Settings::default(),
        hash_key: custdata::keys::HashKey::new("bench-key-bench-key-bench-key-32").expect("key"),
        signing: custdata::keys::Keyring::single("1", "bench-signing-key-bench-signing-k")
            .expect("key"),
    });
    let mut body = Vec::from(HEADER.as_bytes());
    for n in 0..rows {
        write_row(&mut body, n).expect("write");
    }
    let request = custdata_tests::aixon::create_request(
        &bundle.aixon.api_key,
        "bench",
        String::from_utf8(body).expect("utf-8"),
    );
    let (_, created) = custdata_tests::aixon::dispatch(app.clone(), request).await;
    let cell = created["message"]["RESOURCE_ID"]
        .as_str()
        .expect("cell")
        .to_string();
    let tenant = TenantId::parse(&bundle.tenant).expect("tenant");
    let meter = Meter::start(&metered);
    let report = import::import_cell(
        &app,
        &tenant,
        &cell,
        Instant::now() + Duration::from_secs(3600),
    )
    .await
    .expect("import");
    let metering = meter.stop(report.rows_processed);
    assert!(
        app.blobs
            .list(&format!("{}{tenant}/{cell}/", keys::AIXON_BLOB_PREFIX))
            .await
            .expect("list")
            .is_empty()
    );
    metering
}

async fn on_the_local_server(args: &Args) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("customers.csv");
    let size = generate(&file, args.rows);
    println!("generated {} rows, {:.1} MB", args.rows, size as f64 / 1e6);
    let items = items_per_row();
    println!("items     written per row:        {items}");
    let (parsed, parse_time) = parse_only(&file);
    let parse_rate = parsed as f64 / parse_time.as_secs_f64();
    println!(
        "baseline  csv crate alone:        {parse_rate:>10.0} rows/s  {:>7.1} MB/s",
        size as f64 / 1e6 / parse_time.as_secs_f64()
    );
    let redb = redb_alone(
        dir.path(),
        args.rows,
        items.total(),
        VALUE_BYTES,
        ROWS_PER_COMMIT,
    );
    println!("baseline  redb alone:             {redb}");
    let local = through_the_local_server(args, &file, size).await;
    let rate = local["rows_per_second"].as_f64().unwrap_or_default();
    println!(
        "custdata  upload + import:        {rate:>10.0} rows/s  {:>7.2} MB/s  (upload {:.1} s, import {:.1} s; {} of {} rows applied, {} errors)",
        local["mb_per_second"].as_f64().unwrap_or_default(),
        local["upload_seconds"].as_f64().unwrap_or_default(),
        local["import_seconds"].as_f64().unwrap_or_default(),
        local["applied"],
        local["rows"],
        local["errors"],
    );
    println!(
        "ratio     custdata / redb alone:  {:.3}",
        ratio(rate, redb.rows_per_sec)
    );
    println!(
        "ratio     custdata / csv alone:   {:.4}",
        ratio(rate, parse_rate)
    );
    println!(
        "memory    custdata-local peak RSS: {:.1} MB (idle before the upload: {:.1} MB)",
        local["peak_rss_mb"].as_f64().unwrap_or_default(),
        local["idle_rss_mb"].as_f64().unwrap_or_default()
    );
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.rows > 0 {
        on_the_local_server(&args).await;
    }
    if args.emulator_rows > 0 {
        let emulator = on_the_emulator(args.emulator_rows).await;
        println!(
            "emulator  {} rows imported on DynamoDB/S3 (moto): {:.0} rows/s",
            emulator.rows,
            emulator.rows_per_sec(),
        );
        println!("emulator  {}", emulator.requests_line());
        for line in emulator.heat_lines() {
            println!("emulator  {line}");
        }
    }
}

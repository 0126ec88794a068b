//! Load on the release `custdata-local` (embedded store, loopback): per scenario, an
//! open-loop run at a fixed rate (1,000 requests/s by default; latency counted from each
//! request's scheduled start, so queueing is included) and a closed-loop run at saturation
//! (`--concurrency` clients back to back), each bounded in time; p50/p99/max latency,
//! throughput, non-2xx answers and the server's RSS. Baseline, side by side: an unrouted
//! path (404 from the router, no handler, no store) under the same load.
//!
//! Scenarios: MXO live read, AIXON row read, Monetate spot check (within its limit of one a
//! second per API user, so at most `--monetate-users` requests/s), MXO activity post,
//! MXO structure request.
//!
//! `cargo build --release -p custdata-local && cargo run --release -p custdata-bench --bin bench-load`

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use custdata_tests::LocalProcess;
use jsonwebtoken::Algorithm;
use reqwest::{Client, Method};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "target/release/custdata-local")]
    server: PathBuf,
    /// Requests per second of the fixed-rate runs.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Seconds per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Clients of the saturation runs.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Monetate API users (each may spot-check once a second; a tenant has at most 100,
    /// the development user among them).
    #[arg(long, default_value_t = 99)]
    monetate_users: usize,
}

/// A request the load sends, built afresh per call (`n` numbers the calls).
type Shape =
    Arc<dyn Fn(usize) -> (Method, String, Vec<(String, String)>, Option<String>) + Send + Sync>;

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u64>,
    non_2xx: usize,
    failed: usize,
    elapsed: Duration,
}

impl Stats {
    fn line(&mut self, name: &str, baseline: Option<&Stats>) -> String {
        self.latencies_us.sort_unstable();
        let at = |q: f64| -> f64 {
            if self.latencies_us.is_empty() {
                return 0.0;
            }
            let index = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
            self.latencies_us[index] as f64 / 1000.0
        };
        let throughput = self.latencies_us.len() as f64 / self.elapsed.as_secs_f64();
        let ratio = baseline
            .filter(|b| !b.latencies_us.is_empty())
            .map(|b| {
                let b50 = b.latencies_us[b.latencies_us.len() / 2] as f64 / 1000.0;
                let b_rate = b.latencies_us.len() as f64 / b.elapsed.as_secs_f64();
                format!(
                    "  | vs baseline: p50 ×{:.2}, throughput ×{:.2}",
                    at(0.5) / b50,
                    throughput / b_rate
                )
            })
            .unwrap_or_default();
        format!(
            "{name:<44} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  non-2xx {:>5}  failed {:>3}{ratio}",
            throughput,
            at(0.5),
            at(0.99),
            at(1.0),
            self.non_2xx,
            self.failed
        )
    }
}

async fn call(client: &Client, base: &str, shape: &Shape, n: usize) -> Result<u16, reqwest::Error> {
    let (method, path, headers, body) = shape(n);
    let mut request = client.request(method, format!("{base}{path}"));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let _ = response.bytes().await?;
    Ok(status)
}

fn record(stats: &std::sync::Mutex<Stats>, started: Instant, outcome: Result<u16, reqwest::Error>) {
    let latency = started.elapsed().as_micros() as u64;
    let mut stats = stats.lock().expect("stats");
    match outcome {
        Ok(status) => {
            stats.latencies_us.push(latency);
            if !(200..300).contains(&status) {
                stats.non_2xx += 1;
            }
        }
        Err(_) => stats.failed += 1,
    }
}

/// Open loop: request `i` is due at `i / rate` seconds; its latency counts from then.
async fn fixed_rate(client: &Client, base: &str, shape: &Shape, rate: u64, seconds: u64) -> Stats {
    let stats = Arc::new(std::sync::Mutex::new(Stats::default()));
    let started = Instant::now();
    let total = rate * seconds;
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + Duration::from_nanos(i * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let (client, base, shape, stats) = (
            client.clone(),
            base.to_string(),
            shape.clone(),
            stats.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let outcome = call(&client, &base, &shape, i as usize).await;
            record(&stats, due, outcome);
        }));
    }
    finish(tasks, stats, started).await
}

/// Waits for a run's requests and hands back what they recorded.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stats: Arc<std::sync::Mutex<Stats>>,
    started: Instant,
) -> Stats {
    for task in tasks {
        let _ = task.await;
    }
    let mut stats = Arc::try_unwrap(stats)
        .ok()
        .expect("one owner")
        .into_inner()
        .expect("stats");
    stats.elapsed = started.elapsed();
    stats
}

/// Closed loop: `clients` callers, each sending its next request when the last is answered.
async fn saturation(
    client: &Client,
    base: &str,
    shape: &Shape,
    clients: usize,
    seconds: u64,
) -> Stats {
    let stats = Arc::new(std::sync::Mutex::new(Stats::default()));
    let counter = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, base, shape, stats, counter) = (
            client.clone(),
            base.to_string(),
            shape.clone(),
            stats.clone(),
            counter.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let outcome = call(&client, &base, &shape, n).await;
                record(&stats, sent, outcome);
            }
        }));
    }
    finish(tasks, stats, started).await
}

fn rss_mb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

async fn expect_ok(response: reqwest::Response, what: &str) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{what}: {status} {body}");
    body
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

const CUSTOMERS: usize = 10_000;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = tempfile::tempdir().expect("a directory");
    let server = LocalProcess::start(&args.server, dir.path()).await;
    let base = server.base_url.clone();
    let client = Client::builder()
        .pool_max_idle_per_host(4096)
        .build()
        .expect("a client");
    let credentials = server.credentials.clone();
    println!(
        "setting up: {CUSTOMERS} datastore records, AIXON rows and customers, {} Monetate users",
        args.monetate_users
    );

    // MXO: a token and a datastore with CUSTOMERS live records.
    let mxo = credentials.mxo.clone();
    let bearer = format!(
        "Bearer {}",
        custdata_tests::mxo_token_at(&client, &base, &mxo.client_id, &mxo.client_secret).await
    );
    let datastore = format!("/datastores/1.0.0/{}", mxo.workspace_id);
    expect_ok(client.post(format!("{base}{datastore}")).header("authorization", &bearer)
        .json(&json!({"name": "Terms", "apiName": "terms", "primaryKey": "customerID", "definitions": [{"name": "customerID", "type": "TEXT"}, {"name": "limit", "type": "NUMERIC"}]}))
        .send().await.expect("create"), "datastore").await;
    for first in (0..CUSTOMERS).step_by(1_000) {
        let rows: Vec<Value> = (first..first + 1_000)
            .map(|n| json!({"customerID": format!("C{n:05}"), "limit": n}))
            .collect();
        expect_ok(
            client
                .post(format!("{base}{datastore}/terms/live"))
                .header("authorization", &bearer)
                .json(&rows)
                .send()
                .await
                .expect("rows"),
            "rows",
        )
        .await;
    }

    // AIXON: CUSTOMERS rows imported (these customers are the activity and structure targets).
    let key = credentials.aixon.api_key.clone();
    let mut csv = String::from("customuid,txt_region\n");
    for n in 0..CUSTOMERS {
        csv.push_str(&format!("C{n:05},r{}\n", n % 4));
    }
    let (cell, update) =
        custdata_tests::aixon::create_cell(&client, &base, &key, "load", csv).await;
    let status = custdata_tests::aixon::wait_until_finished(
        &client,
        &base,
        &key,
        &cell,
        &update,
        Duration::from_secs(600),
    )
    .await;
    assert_eq!(status["status"], "DONE", "{status}");
    // The structure reads an attribute the import registered.
    expect_ok(
        client
            .put(format!(
                "{base}/custdata/v1/mxo/{}/structures/profile",
                mxo.site_key
            ))
            .header("authorization", &bearer)
            .json(
                &json!({"attributes": [{"name": "region", "value": {"attribute": "txt_region"}}]}),
            )
            .send()
            .await
            .expect("structure"),
        "structure",
    )
    .await;

    // Monetate: a schema with CUSTOMERS rows, and API users sharing one key pair.
    let monetate = credentials.monetate.clone();
    let sign = |username: &str| {
        custdata_tests::monetate::assertion(
            &monetate.private_key_pem,
            username,
            now(),
            Algorithm::RS256,
        )
    };
    let refresh = |assertion: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let (status, reply) =
                custdata_tests::monetate::refresh_at(&client, &base, &assertion, "?ttl=43200")
                    .await;
            assert_eq!(status, 200, "a token: {reply}");
            format!(
                "Token {}",
                reply["data"]["token"].as_str().unwrap_or_default()
            )
        }
    };
    let admin_token = refresh(sign(&monetate.api_username)).await;
    let data = format!("/api/data/v1/{}/production", monetate.retailer);
    expect_ok(client.post(format!("{base}{data}/schema/")).header("authorization", &admin_token)
        .json(&json!({"name": "crm", "type": "attribute", "fields": {"customer_id": {"data_type": "STRING", "identifier": true, "unique_key": true}, "tier": {"data_type": "STRING"}}}))
        .send().await.expect("schema"), "schema").await;
    let rows: Vec<Value> = (0..CUSTOMERS)
        .map(|n| json!({"customer_id": format!("C{n:05}"), "tier": format!("t{}", n % 3)}))
        .collect();
    expect_ok(
        client
            .post(format!("{base}{data}/data/crm/"))
            .header("authorization", &admin_token)
            .json(&json!({"schema_rows": rows}))
            .send()
            .await
            .expect("rows"),
        "monetate rows",
    )
    .await;
    let public_key = public_key_of(&monetate.private_key_pem);
    let mut user_tokens = Vec::new();
    for n in 0..args.monetate_users {
        let created = expect_ok(
            client
                .post(format!(
                    "{base}/custdata/v1/monetate/{}/api-users",
                    monetate.retailer
                ))
                .header("authorization", &admin_token)
                .json(&json!({"username": format!("load-{n}"), "public_key_pem": public_key}))
                .send()
                .await
                .expect("user"),
            "user",
        )
        .await;
        let username = created["data"]["username"]
            .as_str()
            .unwrap_or_else(|| panic!("a username: {created}"))
            .to_string();
        user_tokens.push(refresh(sign(&username)).await);
    }
    let user_tokens = Arc::new(user_tokens);
    let pid = server.pid();
    println!("ready; server RSS {:.1} MB\n", rss_mb(pid, "VmRSS:"));

    let site = mxo.site_key.clone();
    let scenarios: Vec<(String, Shape, u64)> = vec![
        (
            "baseline: unrouted path (404, no handler)".into(),
            Arc::new(|_| (Method::GET, "/no-such-route".into(), vec![], None)),
            args.rate,
        ),
        (
            "MXO live read (GET …/terms/live?pk=)".into(),
            {
                let (datastore, bearer) = (datastore.clone(), bearer.clone());
                Arc::new(move |n| {
                    (
                        Method::GET,
                        format!("{datastore}/terms/live?pk=C{:05}", n * 7919 % CUSTOMERS),
                        vec![header("authorization", &bearer)],
                        None,
                    )
                })
            },
            args.rate,
        ),
        (
            "AIXON row read (GET …/rows/{customuid})".into(),
            {
                let (cell, key) = (cell.clone(), key.clone());
                Arc::new(move |n| {
                    (
                        Method::GET,
                        format!(
                            "/custdata/v1/aixon/csv-upload/{cell}/rows/C{:05}",
                            n * 7919 % CUSTOMERS
                        ),
                        vec![header("x-api-key", &key)],
                        None,
                    )
                })
            },
            args.rate,
        ),
        // Each user every 1.1 s: arrival jitter must not bring two of a user's calls within
        // the second the limit counts.
        (
            format!(
                "Monetate spot check ({} users, each every 1.1 s)",
                args.monetate_users
            ),
            {
                let (data, tokens) = (data.clone(), user_tokens.clone());
                Arc::new(move |n| {
                    (
                        Method::GET,
                        format!("{data}/data/crm/?id=C{:05}", n * 7919 % CUSTOMERS),
                        vec![header("authorization", &tokens[n % tokens.len()])],
                        None,
                    )
                })
            },
            (args.monetate_users as u64 * 9 / 10).max(1),
        ),
        (
            "MXO activity post (existing customers)".into(),
            {
                let (site, bearer) = (site.clone(), bearer.clone());
                Arc::new(move |n| {
                    (Method::POST, format!("/one/oauth2/rt/api/3.1.0/customer/{site}/activity"), vec![header("authorization", &bearer)],
                Some(json!({"customerContext": {"baseTouchpointUri": "https://bank.example", "identifiers": [{"apiName": "customerKey", "value": format!("C{:05}", n * 7919 % CUSTOMERS)}]},
                            "activities": [{"propositionCode": "atm", "dynamicPropositionCode": format!("atm-{n}"), "activityTypeCode": "withdrawal"}]}).to_string()))
                })
            },
            args.rate,
        ),
        (
            "MXO structure request".into(),
            {
                let (site, bearer) = (site.clone(), bearer.clone());
                Arc::new(move |n| {
                    (Method::POST, format!("/one/oauth2/rt/api/3.1.0/customer/{site}/structure"), vec![header("authorization", &bearer)],
                Some(json!({"structureApiName": "profile", "customerContext": {"baseTouchpointUri": "u", "identifiers": [{"apiName": "customerKey", "value": format!("C{:05}", n * 7919 % CUSTOMERS)}]}}).to_string()))
                })
            },
            args.rate,
        ),
    ];
    // Connections opened and code paths warmed before anything is measured.
    let _ = fixed_rate(&client, &base, &scenarios[0].1, args.rate, 2).await;
    let mut baseline: Option<(Stats, Stats)> = None;
    for (name, shape, rate) in scenarios {
        let mut at_rate = fixed_rate(&client, &base, &shape, rate, args.seconds).await;
        // The spot check's limit is the load's limit: no saturation run beyond it.
        let mut saturated = if name.starts_with("Monetate") {
            None
        } else {
            Some(saturation(&client, &base, &shape, args.concurrency, args.seconds).await)
        };
        println!(
            "{}",
            at_rate.line(
                &format!("{name} @ {rate}/s"),
                baseline.as_ref().map(|b| &b.0)
            )
        );
        if let Some(saturated) = saturated.as_mut() {
            println!(
                "{}",
                saturated.line(
                    &format!("{name} @ saturation ({})", args.concurrency),
                    baseline.as_ref().map(|b| &b.1)
                )
            );
        }
        println!(
            "    server RSS {:.1} MB (peak {:.1} MB)",
            rss_mb(pid, "VmRSS:"),
            rss_mb(pid, "VmHWM:")
        );
        if baseline.is_none() {
            baseline = Some((at_rate, saturated.unwrap_or_default()));
        }
    }
    server.stop();
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The SubjectPublicKeyInfo PEM of a PKCS#8 RSA private key.
fn public_key_of(private_key_pem: &str) -> String {
    use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
    use aws_lc_rs::rsa::PrivateDecryptingKey;
    let der = pem::parse(private_key_pem).expect("a PEM");
    let key = PrivateDecryptingKey::from_pkcs8(der.contents()).expect("an RSA key");
    let public: PublicKeyX509Der = key.public_key().as_der().expect("DER");
    pem::encode(&pem::Pem::new("PUBLIC KEY", public.as_ref().to_vec()))
}

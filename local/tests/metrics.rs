//! What the real `custdata-local` writes for metrics: an AIXON import and a 429 each leave an
//! embedded-metric-format document in the server's log — the same documents a function
//! writes to stdout in Lambda, where CloudWatch turns them into metrics.

use std::path::Path;
use std::time::{Duration, Instant};

use custdata_tests::LocalProcess;
use serde_json::{Value, json};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_custdata-local"))
}

/// Every EMF document in the log: the JSON object of each `custdata::metrics` event (the
/// readable log puts the time, level and span before it, and span fields may follow).
fn emf_documents(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| {
            let event = &line[line.find("custdata::metrics: ")?..];
            let document = serde_json::Deserializer::from_str(&event[event.find('{')?..])
                .into_iter::<Value>()
                .next()?
                .ok()?;
            document.get("_aws").is_some().then_some(document)
        })
        .collect()
}

/// What CloudWatch needs of a document: the namespace, dimension keys that are string
/// members of the root, metric names that are numbers at the root.
fn assert_valid_emf(document: &Value) {
    let aws = &document["_aws"];
    assert!(aws["Timestamp"].is_i64(), "{document}");
    for directive in aws["CloudWatchMetrics"].as_array().expect("directives") {
        assert_eq!(directive["Namespace"], "custdata", "{document}");
        for set in directive["Dimensions"].as_array().expect("dimension sets") {
            for key in set.as_array().expect("a dimension set") {
                let key = key.as_str().expect("a key");
                assert!(document[key].is_string(), "{key} in {document}");
            }
        }
        for metric in directive["Metrics"].as_array().expect("metrics") {
            let name = metric["Name"].as_str().expect("a name");
            assert!(document[name].is_number(), "{name} in {document}");
        }
    }
}

/// Waits until the log holds a document that `wanted` accepts.
async fn wait_for_document(log: &Path, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(found) = emf_documents(&text).into_iter().find(|doc| wanted(doc)) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} metric in the log:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aixon_import_and_a_429_leave_emf_lines_in_the_local_log() {
    let dir = tempfile::tempdir().expect("a data directory");
    let log = dir.path().join("server.log");
    let server = LocalProcess::start_logging_to(binary(), &dir.path().join("data"), &log).await;
    let http = reqwest::Client::new();
    let tenant = server.credentials.tenant.clone();

    // An AIXON body of three rows, one of which names an identifier another row holds.
    let created = http
        .put(format!("{}/api_upload/v1/csv-upload", server.base_url))
        .header("x-api-key", &server.credentials.aixon.api_key)
        .header("content-type", "text/csv")
        .header("x-node-description", "metrics")
        .body("customuid,email,txt_note\nm-1,one@example.com,a\nm-2,two@example.com,b\nm-3,one@example.com,c\n")
        .send()
        .await
        .expect("an answer");
    assert_eq!(created.status(), 200, "{}", created.text().await.unwrap());

    let import = wait_for_document(&log, "import", |doc| doc.get("ImportRows").is_some()).await;
    assert_valid_emf(&import);
    assert_eq!(import["Family"], "aixon-import", "{import}");
    assert_eq!(import["Surface"], "aixon", "{import}");
    assert_eq!(import["ImportRows"], 3, "{import}");
    assert_eq!(import["ImportUpdatesFinished"], 1, "{import}");
    assert_eq!(import["ImportRunFailures"], 0, "{import}");
    assert!(
        import["ImportRowsPerSecond"].as_f64().unwrap() > 0.0,
        "{import}"
    );
    // The third row's e-mail is the first row's: applied without linking it, one problem.
    assert_eq!(import["ImportRowErrors"], 1, "{import}");

    // Failed logins of one (unknown) username, until the throttle answers 429; a fixed
    // window that turns over part-way only makes it take a few more.
    let username = format!("metrics-{}", uuid::Uuid::new_v4().simple());
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let status = http
            .post(format!("{}/current/general/login", server.base_url))
            .json(&json!({"Username": username, "Password": "wrong"}))
            .send()
            .await
            .expect("an answer")
            .status()
            .as_u16();
        statuses.push(status);
        if status == 429 {
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    let refused =
        wait_for_document(&log, "rate-limit", |doc| doc.get("RateLimited").is_some()).await;
    assert_valid_emf(&refused);
    assert_eq!(refused["Family"], "optimove-login", "{refused}");
    assert_eq!(refused["Limit"], "optimove-failed-logins", "{refused}");
    assert_eq!(refused["RateLimited"], 1, "{refused}");

    // No document carries the tenant, the username or an identifier.
    let text = std::fs::read_to_string(&log).expect("the log");
    for document in emf_documents(&text) {
        let written = document.to_string();
        for secret in [tenant.as_str(), username.as_str(), "one@example.com", "m-1"] {
            assert!(!written.contains(secret), "{secret} in {written}");
        }
    }
}

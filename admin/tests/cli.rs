//! The admin CLI as an operator runs it: against a data directory (while the local server
//! runs on it, and while it does not) and against DynamoDB/S3 on the emulator.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use custdata::keys::secrets::{HASH_KEY_SECRET_ENV, SIGNING_KEYS_SECRET_ENV};
use custdata::tenancy::{CredentialKind, Presented, authenticate};
use custdata_tests::{emulator, test_clock};
use serde_json::Value;

fn admin(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_custdata-admin"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("CUSTDATA_DATA_DIR")
        .output()
        .expect("custdata-admin runs")
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "custdata-admin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_and_credentials_are_managed_while_the_local_server_runs_and_after() {
    let dir = tempfile::tempdir().expect("dir");
    let server = custdata_local::start(custdata_local::Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(test_clock()),
        backend: custdata_local::Backend::Embedded,
        run_scheduled_tasks: false,
        lambda_limits: false,
    })
    .await
    .expect("server");

    let created = json(&admin(dir.path(), &["tenant", "create", "Acme EU"]));
    assert_eq!(created["tenant"], "acme-eu");
    assert_eq!(created["base_url"], server.base_url.as_str());
    for field in ["client_id", "client_secret", "workspace_id", "site_key"] {
        assert!(
            created["mxo"][field]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "mxo.{field}"
        );
    }
    let duplicate = admin(dir.path(), &["tenant", "create", "Acme EU"]);
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));

    let tenants = json(&admin(dir.path(), &["tenant", "list"]));
    let names: Vec<&str> = tenants
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["tenant"].as_str())
        .collect();
    assert_eq!(names, vec!["acme-eu", "dev"]);

    let issued = json(&admin(
        dir.path(),
        &["credential", "issue", "acme-eu", "aixon-api-key"],
    ));
    let key = issued["secret"].as_str().expect("secret").to_string();
    let id = issued["id"].as_str().expect("id").to_string();
    let presented = || Presented::Bearer {
        kind: CredentialKind::AixonApiKey,
        secret: &key,
    };
    let principal = authenticate(server.app.table.as_ref(), presented())
        .await
        .expect("the new key works");
    assert_eq!(principal.tenant.as_str(), "acme-eu");

    let listed = json(&admin(dir.path(), &["credential", "list", "acme-eu"]));
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|c| c["id"] == id.as_str())
    );
    assert!(
        !listed.to_string().contains(&key),
        "listing never shows a secret"
    );

    let wrong_tenant = admin(
        dir.path(),
        &["credential", "revoke", "dev", "aixon-api-key", &id],
    );
    assert!(
        !wrong_tenant.status.success(),
        "one tenant cannot revoke another's credential"
    );
    assert!(
        authenticate(server.app.table.as_ref(), presented())
            .await
            .is_ok()
    );
    json(&admin(
        dir.path(),
        &["credential", "revoke", "acme-eu", "aixon-api-key", &id],
    ));
    assert!(
        authenticate(server.app.table.as_ref(), presented())
            .await
            .is_err(),
        "a revoked key is refused"
    );

    server.shutdown().await;
    let offline = json(&admin(dir.path(), &["tenant", "list"]));
    assert_eq!(
        offline.as_array().map(Vec::len),
        Some(2),
        "works on the data directory directly when no server runs"
    );
}

#[test]
fn a_tenant_is_created_on_dynamodb_with_the_aws_flag() {
    let table = format!("admin-{}", uuid_like());
    let run = |args: &[&str], keys: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_custdata-admin"))
            .args(args)
            .env("AWS_ENDPOINT_URL", &emulator().url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("CUSTDATA_TABLE", &table)
            .env("CUSTDATA_BUCKET", &table)
            .env_remove(HASH_KEY_SECRET_ENV)
            .env_remove(SIGNING_KEYS_SECRET_ENV)
            .envs(keys.iter().copied())
            .output()
            .expect("custdata-admin runs")
    };
    let bootstrap = json(&run(&["aws", "bootstrap"], &[]));
    assert!(
        bootstrap.to_string().contains("created table"),
        "{bootstrap}"
    );
    let again = json(&run(&["aws", "bootstrap"], &[]));
    assert!(
        again.to_string().contains("exists"),
        "bootstrap is idempotent: {again}"
    );
    assert_eq!(again[HASH_KEY_SECRET_ENV], bootstrap[HASH_KEY_SECRET_ENV]);
    let hash_secret = bootstrap[HASH_KEY_SECRET_ENV].as_str().expect("an ARN");
    let signing_secret = bootstrap[SIGNING_KEYS_SECRET_ENV].as_str().expect("an ARN");
    let keys = [
        (HASH_KEY_SECRET_ENV, hash_secret),
        (SIGNING_KEYS_SECRET_ENV, signing_secret),
    ];

    // Without the hash key nothing runs against AWS: identifiers hashed with another key
    // would miss every lookup and suppression.
    let refused = run(&["--aws", "tenant", "list"], &[]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains(HASH_KEY_SECRET_ENV), "{said}");

    let created = json(&run(
        &[
            "--aws",
            "--base-url",
            "https://api.example.test/",
            "tenant",
            "create",
            "Cloud Co",
        ],
        &keys,
    ));
    assert_eq!(created["tenant"], "cloud-co");
    assert_eq!(created["base_url"], "https://api.example.test/");
    let tenants = json(&run(&["--aws", "tenant", "list"], &keys[..1]));
    assert_eq!(tenants[0]["tenant"], "cloud-co");

    // A rotation puts a new version of the signing keys' secret; the hash key stays.
    let refused = run(&["--aws", "signing-key", "rotate"], &keys[..1]);
    assert!(!refused.status.success(), "rotation needs the keys' secret");
    let rotation = json(&run(
        &["--aws", "signing-key", "rotate", "--grace-seconds", "600"],
        &keys,
    ));
    assert_eq!(rotation["previous_key_id"], "1");
    assert_eq!(rotation["current_key_id"], "2");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (hash_before, stored) = runtime.block_on(async {
        let config = custdata_tests::emulator_config().await;
        custdata::keys::secrets::read_keys(&config, hash_secret, signing_secret)
            .await
            .expect("both keys read")
    });
    let stored = stored.keys();
    assert_eq!(
        (stored.current_id.as_str(), stored.previous_id.as_deref()),
        ("2", Some("1"))
    );
    assert_eq!(
        stored.previous_until,
        rotation["previous_accepted_until"].as_i64()
    );
    let hash_after = runtime.block_on(async {
        let config = custdata_tests::emulator_config().await;
        custdata::keys::secrets::read_hash_key(&config, hash_secret)
            .await
            .expect("hash key")
    });
    assert_eq!(hash_before.hash("x"), hash_after.hash("x"));
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structures_are_saved_checked_and_listed_from_the_cli() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.json");
    std::fs::write(
        &good,
        r#"{"attributes": [{"name": "greeting", "value": {"literal": "hello"}}]}"#,
    )
    .expect("file");
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"attributes": [{"name": "tier", "value": {"attribute": "neverWritten"}}]}"#,
    )
    .expect("file");

    json(&admin(dir.path(), &["tenant", "create", "Shop"]));
    let saved = json(&admin(
        dir.path(),
        &[
            "structure",
            "put",
            "shop",
            "welcome",
            good.to_str().expect("path"),
        ],
    ));
    assert_eq!(saved["attributes"][0]["name"], "greeting");
    let refused = admin(
        dir.path(),
        &[
            "structure",
            "put",
            "shop",
            "tiers",
            bad.to_str().expect("path"),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("unknown customer attribute"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        json(&admin(dir.path(), &["structure", "list", "shop"])),
        serde_json::json!(["welcome"])
    );
    json(&admin(
        dir.path(),
        &["structure", "delete", "shop", "welcome"],
    ));
    assert_eq!(
        json(&admin(dir.path(), &["structure", "list", "shop"])),
        serde_json::json!([])
    );
    let lift = admin(
        dir.path(),
        &[
            "suppression",
            "lift",
            "shop",
            "--api-name",
            "customerKey",
            "--value",
            "C-1",
        ],
    );
    assert!(!lift.status.success(), "nothing to lift");
}

//! Test support: a fresh local server per test (`spawn_app`), and the AWS emulator (moto's
//! server on 127.0.0.1) that the tests start themselves, once per test binary.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use custdata::clock::{ManualClock, SharedClock};
use custdata::storage::CursorSigner;
use custdata::storage::aws::AwsStores;
use custdata::template::Template;
use custdata_local::{Backend, Config, Server};

/// The repository root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// A local server on a fresh data directory and a free port.
pub struct TestApp {
    pub server: Server,
    /// Which adapters the server runs on.
    pub adapter: Adapter,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }
}

/// The clock tests start at: a fixed, recent instant.
pub fn test_clock() -> ManualClock {
    ManualClock::at_millis(1_790_000_000_000)
}

/// Which storage adapters a test's server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    Embedded,
    /// DynamoDB and S3 on the emulator, a fresh table and bucket per test.
    Aws,
}

/// Starts a local server on the embedded store, port 0, a fresh data directory and a manual clock.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(Adapter::Embedded).await
}

/// Starts a local server on the given adapters, port 0, a fresh data directory and a manual
/// clock; scheduled tasks do not run by themselves (tests run them).
pub async fn spawn_app_on(adapter: Adapter) -> TestApp {
    spawn_app_limited(adapter, false).await
}

/// [`spawn_app_on`], with Lambda's limits on bodies, answers and time when `lambda_limits`
/// (as `custdata-local --lambda-limits` serves).
pub async fn spawn_app_limited(adapter: Adapter, lambda_limits: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = test_clock();
    let backend = match adapter {
        Adapter::Embedded => Backend::Embedded,
        Adapter::Aws => {
            let stores = aws_stores(Arc::new(clock.clone())).await;
            Backend::Aws {
                sdk: Box::new(emulator_config().await),
                path_style: true,
                table: stores.table.table_name().to_string(),
                bucket: stores.blobs.bucket().to_string(),
            }
        }
    };
    let config = Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(clock.clone()),
        backend,
        run_scheduled_tasks: false,
        lambda_limits,
    };
    let server = custdata_local::start(config)
        .await
        .expect("the local server starts");
    TestApp {
        server,
        adapter,
        client: reqwest::Client::new(),
        clock,
        _dir: dir,
    }
}

/// moto's server, started from the project's virtual environment on a free loopback port.
/// It exits when this process does: it watches its stdin, which only this process holds.
pub struct Emulator {
    pub url: String,
    _child: Mutex<Child>,
}

fn start_emulator() -> Emulator {
    let root = workspace_root();
    let python = root.join("target/venv/bin/python");
    if !python.exists() {
        let status = Command::new("bash")
            .arg(root.join("scripts/ensure-tools.sh"))
            .status()
            .expect("scripts/ensure-tools.sh runs");
        assert!(
            status.success(),
            "scripts/ensure-tools.sh failed: the AWS emulator cannot be installed"
        );
    }
    let mut child = Command::new(&python)
        .arg(root.join("localstack/moto_emulator.py"))
        .args(["--port", "0", "--until-stdin-closes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto starts");
    let stdout = child.stdout.take().expect("moto's stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("moto reports READY");
    let url = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("moto said {line:?}, not READY <url>"))
        .to_string();
    Emulator {
        url,
        _child: Mutex::new(child),
    }
}

/// The emulator of this test binary, started on first use.
pub fn emulator() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(start_emulator)
}

/// The SDK configuration pointing at the emulator with dummy credentials.
pub async fn emulator_config() -> aws_config::SdkConfig {
    sdk_config_for(&emulator().url).await
}

/// The SDK configuration pointing at `endpoint` (the emulator, or a proxy in front of it)
/// with dummy credentials.
pub async fn sdk_config_for(endpoint: &str) -> aws_config::SdkConfig {
    let credentials =
        aws_credential_types::Credentials::new("test", "test", None, None, "custdata-tests");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await
}

/// DynamoDB and S3 adapters on a fresh table and bucket of the emulator, created from
/// template.yaml's definitions.
pub async fn aws_stores(clock: SharedClock) -> AwsStores {
    aws_stores_via(&emulator().url, clock).await
}

/// [`aws_stores`], with the adapters' requests sent to `endpoint`, e.g. a [`CountingProxy`]
/// in front of the emulator.
pub async fn aws_stores_via(endpoint: &str, clock: SharedClock) -> AwsStores {
    let name = format!("custdata-{}", uuid::Uuid::new_v4().simple());
    let config = sdk_config_for(endpoint).await;
    let stores = AwsStores::from_config(
        &config,
        true,
        &name,
        &name,
        clock,
        CursorSigner::new(
            custdata::keys::Keyring::single("1", "conformance-secret-of-32-bytes!!")
                .expect("a key"),
        ),
    );
    let template = Template::bundled().expect("template.yaml parses");
    stores
        .bootstrap(&template.table)
        .await
        .expect("table and bucket are created on the emulator");
    stores
}

/// A TCP proxy in front of the emulator that counts the bytes the emulator sends back: what a
/// client has been sent by the backing store, whatever the client keeps of it. It forwards as
/// fast as the client takes the bytes, so a client that stops reading stops the flow once
/// the sockets' buffers are full.
pub struct CountingProxy {
    /// `http://127.0.0.1:<port>`, to use as the endpoint instead of the emulator's.
    pub url: String,
    from_upstream: Arc<std::sync::atomic::AtomicU64>,
}

impl CountingProxy {
    /// Starts a proxy to the emulator on a free loopback port, serving until the runtime stops.
    pub async fn to_emulator() -> CountingProxy {
        let upstream = emulator()
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("the proxy's address")
        );
        let from_upstream = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = from_upstream.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let requests = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut server_write).await;
                    });
                    let mut buffer = vec![0u8; 16 * 1024];
                    loop {
                        let read = match tokio::io::AsyncReadExt::read(
                            &mut server_read,
                            &mut buffer,
                        )
                        .await
                        {
                            Ok(0) | Err(_) => break,
                            Ok(read) => read,
                        };
                        // Counted before it is written, so the count never lags what the
                        // client can have received.
                        counted.fetch_add(read as u64, std::sync::atomic::Ordering::SeqCst);
                        if tokio::io::AsyncWriteExt::write_all(&mut client_write, &buffer[..read])
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    let _ = tokio::io::AsyncWriteExt::shutdown(&mut client_write).await;
                    requests.abort();
                });
            }
        });
        CountingProxy { url, from_upstream }
    }

    /// Bytes the emulator has sent through this proxy so far, over every connection.
    pub fn bytes_from_upstream(&self) -> u64 {
        self.from_upstream.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A child process (and its process group) stopped when the guard drops.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on 127.0.0.1 (bound and released; the caller binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until something accepts connections on the port, or panics after `seconds`.
pub async fn wait_for_port(port: u16, seconds: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listens on 127.0.0.1:{port} after {seconds} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Sends one HTTP/1.1 request with its path exactly as given: every URL library resolves
/// `.`, `..` and `%2e%2e` segments before sending, so a path that carries them needs its own
/// request line. Answers the status and the body as JSON (`null` when empty).
pub async fn raw_request(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = app
        .server
        .base_url
        .trim_start_matches("http://")
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&authority)
        .await
        .expect("connects");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer read");
    let answer = String::from_utf8_lossy(&answer);
    let (head, rest) = answer.split_once("\r\n\r\n").expect("a header block");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let mut text = String::new();
    if chunked {
        let mut rest = rest;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
            if size == 0 {
                break;
            }
            text.push_str(&after[..size]);
            rest = &after[size + 2..];
        }
    } else {
        text.push_str(rest);
    }
    let body = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"))
    };
    (status, body)
}

/// HTTP Basic credentials as a header value.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Runs each case (an `async fn(TestApp)`) twice: on a server on the embedded store and on
/// one on DynamoDB/S3 in the emulator. One test per case and adapter.
#[macro_export]
macro_rules! on_both_adapters {
    ($($case:ident),+ $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::spawn_app_on($crate::Adapter::Embedded).await).await;
                }
            )+
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case($crate::spawn_app_on($crate::Adapter::Aws).await).await;
                }
            )+
        }
    };
}

impl TestApp {
    /// An MXO bearer token for the development tenant.
    pub async fn mxo_token(&self) -> String {
        let mxo = &self.server.credentials.mxo;
        mxo_token_for(self, &mxo.client_id, &mxo.client_secret).await
    }
}

/// An MXO bearer token for any client of the server's tenants.
pub async fn mxo_token_for(app: &TestApp, client_id: &str, client_secret: &str) -> String {
    mxo_token_at(&app.client, &app.server.base_url, client_id, client_secret).await
}

/// An MXO bearer token from the server at `base_url`.
pub async fn mxo_token_at(
    client: &reqwest::Client,
    base_url: &str,
    client_id: &str,
    client_secret: &str,
) -> String {
    let response = client
        .post(format!("{base_url}/one/oauth2token"))
        .header("authorization", basic(client_id, client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request");
    assert_eq!(response.status(), 200, "token request refused");
    let body: serde_json::Value = response.json().await.expect("JSON");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Sends one command to the local server's admin route with its admin token: the status and
/// the JSON answer.
pub async fn admin(app: &TestApp, command: serde_json::Value) -> (u16, serde_json::Value) {
    let token = std::fs::read_to_string(app.server.data_dir.join(custdata_local::ADMIN_TOKEN_FILE))
        .expect("admin token");
    let response = app
        .client
        .post(app.url(custdata::admin::ADMIN_ROUTE))
        .bearer_auth(token)
        .json(&command)
        .send()
        .await
        .expect("admin request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// Creates another tenant through the admin route; returns its credentials.
pub async fn create_tenant(app: &TestApp, name: &str) -> custdata::tenancy::CredentialBundle {
    let (status, bundle) = admin(
        app,
        serde_json::json!({"command": "create-tenant", "name": name}),
    )
    .await;
    assert_eq!(status, 200, "tenant creation refused: {bundle}");
    serde_json::from_value(bundle).expect("a credential bundle")
}

/// The identifier-hash key the Lambda harness's secrets give the Lambda binary.
pub const LAMBDA_HASH_KEY: &str = "a-hash-key-of-at-least-32-bytes!";
/// The one signing key the Lambda harness's secrets give the Lambda binary.
pub const LAMBDA_SIGNING_KEY: &str = "a-signing-key-of-at-least-32-bytes";

/// The keys of [`LAMBDA_HASH_KEY`] and [`LAMBDA_SIGNING_KEY`].
pub fn lambda_keys() -> (custdata::keys::HashKey, custdata::keys::Keyring) {
    (
        custdata::keys::HashKey::new(LAMBDA_HASH_KEY).expect("a hash key"),
        custdata::keys::Keyring::single("1", LAMBDA_SIGNING_KEY).expect("a signing key"),
    )
}

/// The two key secrets of a deployment on the emulator, named after its table and holding
/// the Lambda harness's keys: their ARNs (hash key, signing keys).
pub async fn lambda_key_secrets(table: &str) -> (String, String) {
    let config = emulator_config().await;
    let (_, signing) = lambda_keys();
    let (hash, _) = custdata::keys::secrets::create_secret(
        &config,
        &format!("{table}-hash-key"),
        LAMBDA_HASH_KEY,
    )
    .await
    .expect("the hash key's secret");
    let (keys, _) = custdata::keys::secrets::create_secret(
        &config,
        &format!("{table}-signing-keys"),
        &signing.keys().to_json(),
    )
    .await
    .expect("the signing keys' secret");
    (hash, keys)
}

/// The Lambda binary, serving one family, running under `cargo lambda watch` (its runtime API
/// emulator, loopback only), with the AWS adapters pointed at the emulator's table and
/// bucket. Both processes stop when this drops.
pub struct LambdaHarness {
    pub port: u16,
    /// When the binary was started (its runtime emulator was already up).
    pub spawned: std::time::Instant,
    _watch: ChildGuard,
    _function: ChildGuard,
}

impl LambdaHarness {
    /// Starts the Lambda binary serving `family` (its `CUSTDATA_FAMILY`).
    pub async fn start(binary: &str, family: &str, table: &str, bucket: &str) -> LambdaHarness {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let (hash_secret, signing_secret) = lambda_key_secrets(table).await;
        let venv_bin = workspace_root().join("target/venv/bin");
        let path = format!(
            "{}:{}",
            venv_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let watch = ChildGuard(
            Command::new(venv_bin.join("cargo-lambda"))
                .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
                .args(["-P", &port.to_string()])
                .env("PATH", &path)
                .current_dir(workspace_root())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("cargo lambda watch starts"),
        );
        wait_for_port(port, 60).await;
        let spawned = std::time::Instant::now();
        let function = ChildGuard(
            Command::new(binary)
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{port}/.rt"),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", "_")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_ENDPOINT_URL", &emulator().url)
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env(custdata::lambda::FAMILY_ENV, family)
                .env("CUSTDATA_TABLE", table)
                .env("CUSTDATA_BUCKET", bucket)
                .env(custdata::keys::secrets::HASH_KEY_SECRET_ENV, &hash_secret)
                .env(
                    custdata::keys::secrets::SIGNING_KEYS_SECRET_ENV,
                    &signing_secret,
                )
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("the Lambda binary starts"),
        );
        LambdaHarness {
            port,
            spawned,
            _watch: watch,
            _function: function,
        }
    }

    /// Invokes the function with API Gateway's event for a request on `route` (`GET
    /// /path/{param}`, as template.yaml writes it) and answers as API Gateway answers the
    /// client. Not through a function URL: its event carries the route key `$default`, which
    /// no family serves (custdata's functions are reached through API Gateway only).
    pub async fn request(
        &self,
        route: &str,
        path: &str,
        path_parameters: serde_json::Value,
        headers: serde_json::Value,
        body: Option<&str>,
    ) -> GatewayAnswer {
        let (method, route) = route.split_once(' ').expect("METHOD /path");
        let mut event = api_gateway_event(method, route, path, path_parameters, headers, None);
        event["body"] = serde_json::json!(body);
        let answer = self.invoke(&event).await;
        GatewayAnswer {
            status: answer["statusCode"].as_u64().unwrap_or(0) as u16,
            headers: answer["headers"].clone(),
            body: answer["body"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Invokes the function with an event, as Lambda's Invoke API does.
    pub async fn invoke(&self, event: &serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
                self.port
            ))
            .json(event)
            .send()
            .await
            .expect("the Lambda answers");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("a JSON result")
    }
}

/// What API Gateway answers a client for a function's response.
#[derive(Debug)]
pub struct GatewayAnswer {
    pub status: u16,
    /// Header names to values, as the function set them.
    pub headers: serde_json::Value,
    pub body: String,
}

impl GatewayAnswer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// An app on the emulator's stores with the Lambda harness's keys, so what it writes is
/// what the Lambda binary under [`LambdaHarness`] reads.
pub fn lambda_app(stores: AwsStores, clock: SharedClock) -> Arc<custdata::app::App> {
    let (hash_key, signing) = lambda_keys();
    Arc::new(custdata::app::App {
        table: Arc::new(stores.table),
        blobs: Arc::new(stores.blobs),
        clock,
        settings: custdata::app::Settings::default(),
        hash_key,
        signing,
    })
}

/// A tenant with a Monetate key pair on a fresh emulator table and bucket, for a function
/// binary under [`LambdaHarness`]: the app, the tenant's credentials, the table and bucket.
pub async fn lambda_tenant(
    name: &str,
) -> (
    Arc<custdata::app::App>,
    custdata::tenancy::CredentialBundle,
    String,
    String,
) {
    use custdata::clock::Clock;
    let clock = Arc::new(custdata::clock::SystemClock);
    let stores = aws_stores(clock.clone()).await;
    let (table, bucket) = (
        stores.table.table_name().to_string(),
        stores.blobs.bucket().to_string(),
    );
    let app = lambda_app(stores, clock.clone());
    let mut tenant =
        custdata::tenancy::create_tenant(app.table.as_ref(), name, "", clock.now_millis())
            .await
            .expect("tenant");
    custdata::monetate::users::provision_key_pair(
        app.table.as_ref(),
        &mut tenant,
        app.clock.now_millis(),
    )
    .await
    .expect("key pair");
    (app, tenant, table, bucket)
}

/// A local server on the embedded store in a temporary directory, on the wall clock, for
/// benchmarks (the directory goes when the returned guard drops).
pub async fn bench_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = Config {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        clock: Arc::new(custdata::clock::SystemClock),
        backend: Backend::Embedded,
        run_scheduled_tasks: false,
        lambda_limits: false,
    };
    let server = custdata_local::start(config)
        .await
        .expect("the local server starts");
    (server, dir)
}

/// The event API Gateway (HTTP API, payload 2.0) hands a function for a request on a
/// route, with the route's path parameters: what `LambdaHarness::invoke` sends when the
/// handler needs them (function URLs carry none).
pub fn api_gateway_event(
    method: &str,
    route: &str,
    path: &str,
    path_parameters: serde_json::Value,
    headers: serde_json::Value,
    body: Option<&serde_json::Value>,
) -> serde_json::Value {
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    let query_parameters: serde_json::Map<String, serde_json::Value> =
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), serde_json::json!(value)))
            .collect();
    serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} {route}"),
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": headers,
        "queryStringParameters": query_parameters,
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "custdata",
            "domainName": "custdata.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "custdata",
            "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "custdata-tests"},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": format!("{method} {route}"),
            "stage": "$default",
            "time": "23/Nov/2026:08:00:00 +0000",
            "timeEpoch": 1_795_420_800_000i64
        },
        "body": body.map(|body| body.to_string()),
        "isBase64Encoded": false
    })
}

pub mod http_fuzz;
pub mod kill_resume;
pub use kill_resume::LocalProcess;
pub mod routes;

/// AIXON over plain HTTP or through `dispatch`, for tests and benchmarks alike.
pub mod aixon {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use custdata::app::App;
    use serde_json::{Value, json};

    /// Creates a data cell (`PUT /api_upload/v1/csv-upload`); its resource and update ids.
    pub async fn create_cell(
        client: &reqwest::Client,
        base_url: &str,
        api_key: &str,
        description: &str,
        body: impl Into<reqwest::Body>,
    ) -> (String, String) {
        let reply: Value = client
            .put(format!("{base_url}/api_upload/v1/csv-upload"))
            .header("x-api-key", api_key)
            .header("content-type", "text/csv")
            .header("x-node-description", description)
            .body(body)
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        let id = |name: &str| {
            reply["message"][name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in {reply}"))
                .to_string()
        };
        (id("RESOURCE_ID"), id("UPDATE_ID"))
    }

    /// Asks the presigned-upload extension for a URL to PATCH a cell with a CSV body, and
    /// PUTs `body` (of `size` bytes) to it; the update's id.
    pub async fn presigned_patch(
        client: &reqwest::Client,
        base_url: &str,
        api_key: &str,
        cell: &str,
        body: reqwest::Body,
        size: u64,
    ) -> String {
        let upload: Value = client
            .post(format!(
                "{base_url}/custdata/v1/aixon/csv-upload/{cell}/uploads"
            ))
            .header("x-api-key", api_key)
            .json(&json!({"mode": "PATCH", "contentType": "text/csv"}))
            .send()
            .await
            .expect("an upload URL")
            .json()
            .await
            .expect("JSON");
        let mut put = client.put(upload["UPLOAD_URL"].as_str().expect("a URL"));
        for (name, value) in upload["HEADERS"].as_object().expect("headers") {
            put = put.header(name.as_str(), value.as_str().expect("a value"));
        }
        let uploaded = put
            .header("content-length", size)
            .body(body)
            .send()
            .await
            .expect("the upload");
        assert!(
            uploaded.status().is_success(),
            "upload: {}",
            uploaded.status()
        );
        upload["UPDATE_ID"].as_str().expect("an update").to_string()
    }

    /// Polls the update-status extension until the update is DONE or FAILED, or `limit`
    /// passes; the last status read.
    pub async fn wait_until_finished(
        client: &reqwest::Client,
        base_url: &str,
        api_key: &str,
        cell: &str,
        update: &str,
        limit: Duration,
    ) -> Value {
        let url = format!("{base_url}/custdata/v1/aixon/csv-upload/{cell}/updates/{update}");
        let started = Instant::now();
        loop {
            let status: Value = client
                .get(&url)
                .header("x-api-key", api_key)
                .send()
                .await
                .expect("status")
                .json()
                .await
                .expect("json");
            let finished = status["status"] == "DONE" || status["status"] == "FAILED";
            if finished || started.elapsed() > limit {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An S3 object-created notification as Lambda receives it (keys URL-encoded).
    pub fn s3_event(bucket: &str, key: &str) -> Value {
        let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes()).collect();
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2026-11-23T05:00:00.000Z",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "aixon-import",
                "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encoded, "size": 1, "sequencer": "0A1B2C3D4E5F678901"}
            }
        }]})
    }

    /// Runs a request through the AIXON family as its Lambda does; status and JSON body.
    pub async fn dispatch(app: Arc<App>, request: custdata::http::Request) -> (u16, Value) {
        let response =
            custdata::http::dispatch(app, &custdata::aixon::UPLOAD_FAMILY, request).await;
        let body = match response.body() {
            lambda_http::Body::Text(text) => serde_json::from_str(text).expect("a JSON body"),
            other => panic!("a text body, got {other:?}"),
        };
        (response.status().as_u16(), body)
    }

    /// `PUT /api_upload/v1/csv-upload` with a CSV body, as API Gateway hands it to Lambda.
    pub fn create_request(
        api_key: &str,
        description: &str,
        csv: String,
    ) -> custdata::http::Request {
        let request = http::Request::builder()
            .method("PUT")
            .uri("https://api.example/api_upload/v1/csv-upload")
            .header("x-api-key", api_key)
            .header("content-type", "text/csv")
            .header("x-node-description", description)
            .body(lambda_http::Body::Text(csv))
            .expect("request");
        custdata::http::with_route_key(request, "PUT /api_upload/v1/csv-upload")
    }
}

/// A Monetate client's side: signing assertions and fetching tokens, as the vendor's
/// sample code does (RS256 over `{"username", "iat": time.time()}`).
pub mod monetate {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::{Value, json};

    use super::TestApp;

    /// An assertion for `username`, signed with a PKCS#8 PEM private key.
    pub fn assertion(
        private_key_pem: &str,
        username: &str,
        iat: f64,
        algorithm: Algorithm,
    ) -> String {
        let key =
            EncodingKey::from_rsa_pem(private_key_pem.as_bytes()).expect("an RSA private key");
        jsonwebtoken::encode(
            &Header::new(algorithm),
            &json!({"username": username, "iat": iat}),
            &key,
        )
        .expect("signs")
    }

    /// The server clock's now as a float, as `time.time()` gives it.
    pub fn now(app: &TestApp) -> f64 {
        use custdata::clock::Clock;
        app.clock.now_millis() as f64 / 1000.0
    }

    /// `GET /api/auth/v0/refresh/` with an assertion: status and body.
    pub async fn refresh(app: &TestApp, assertion: &str, query: &str) -> (u16, Value) {
        refresh_at(&app.client, &app.server.base_url, assertion, query).await
    }

    /// [`refresh`] on the server at `base_url`.
    pub async fn refresh_at(
        client: &reqwest::Client,
        base_url: &str,
        assertion: &str,
        query: &str,
    ) -> (u16, Value) {
        let response = client
            .get(format!("{base_url}/api/auth/v0/refresh/{query}"))
            .header("authorization", format!("JWT {assertion}"))
            .send()
            .await
            .expect("refresh request");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON envelope"))
    }

    /// A token for an API user whose private key is known.
    pub async fn token(app: &TestApp, private_key_pem: &str, username: &str) -> String {
        let signed = assertion(private_key_pem, username, now(app), Algorithm::RS256);
        let (status, body) = refresh(app, &signed, "").await;
        assert_eq!(status, 200, "token refused: {body}");
        body["data"]["token"].as_str().expect("a token").to_string()
    }
}

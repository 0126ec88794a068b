//! custdata-local: one process serving every route of template.yaml on 127.0.0.1, handing
//! each request in-process to exactly the handler its Lambda binary runs
//! ([`custdata::http::dispatch`]), on the embedded store — or, with [`Backend::Aws`], on
//! DynamoDB and S3 (how the HTTP tests run every case on both adapters).

pub mod openapi;
mod router;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use custdata::admin::{ADMIN_ROUTE, handle_admin_request};
use custdata::app::App;
use custdata::clock::SharedClock;
use custdata::http::{
    ApiError, CustdataCode, REQUEST_ID_HEADER, Response, ScheduledTask, Vendor, body_too_large,
    dispatch, error_response, with_route_key,
};
use custdata::storage::aws::AwsStores;
use custdata::storage::embedded::{EmbeddedBlobs, PRESIGNED_UPLOAD_PATH};
use custdata::template::Template;
use custdata::tenancy::{CredentialBundle, TenantError, create_tenant, issue_bundle};
use futures::TryStreamExt;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use lambda_http::RequestExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use router::{Resolution, Router};

/// The port used when neither `--port` nor `CUSTDATA_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 4000;
/// The data directory used when neither `--data-dir` nor `CUSTDATA_DATA_DIR` says otherwise.
pub const DEFAULT_DATA_DIR: &str = ".custdata";
/// The development tenant created on first start.
pub const DEV_TENANT: &str = "dev";
/// File names inside the data directory.
pub const DEV_CREDENTIALS_FILE: &str = "dev-credentials.json";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
pub const SERVER_FILE: &str = "server.json";
/// How long the local import worker works before checking whether the server is stopping.
pub const LOCAL_IMPORT_SLICE: std::time::Duration = std::time::Duration::from_secs(3);

/// Where the records live.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The embedded store in the data directory (the default: nothing to install).
    Embedded,
    /// DynamoDB and S3 (an emulator or a real account) through the production adapters.
    Aws {
        sdk: Box<aws_config::SdkConfig>,
        path_style: bool,
        table: String,
        bucket: String,
    },
}

/// Where and how to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// 0 picks a free port.
    pub port: u16,
    /// Holds the embedded store (if used), the hash and signing keys, the dev credentials and
    /// the admin token.
    pub data_dir: PathBuf,
    /// The system clock in production; tests pass a manual one.
    pub clock: SharedClock,
    pub backend: Backend,
    /// Run the scheduled tasks (the datastore sweep) on their local timers; tests that drive
    /// them by hand turn this off.
    pub run_scheduled_tasks: bool,
    /// Apply Lambda's limits ([`custdata::app::LAMBDA_LIMITS`]) as a deployment would.
    pub lambda_limits: bool,
}

struct State {
    app: Arc<App>,
    /// The embedded blob store, whose presigned uploads this server receives.
    blobs: Option<EmbeddedBlobs>,
    router: Router,
    admin_token: String,
    base_url: String,
    openapi: openapi::Served,
}

/// A running server.
pub struct Server {
    pub base_url: String,
    pub data_dir: PathBuf,
    pub app: Arc<App>,
    pub credentials: CredentialBundle,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Stops accepting, lets requests in flight finish, and returns when done.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let _ = std::fs::remove_file(self.data_dir.join(SERVER_FILE));
    }
}

/// Binds 127.0.0.1, opens the data directory, makes sure the development tenant exists and
/// starts serving in the background.
pub async fn start(config: Config) -> Result<Server, String> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.port)))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", config.port))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let base_url = format!("http://{address}");
    let (app, blobs) = match config.backend {
        Backend::Embedded => {
            let (app, blobs) = App::embedded(&config.data_dir, config.clock.clone(), &base_url)?;
            (app, Some(blobs))
        }
        Backend::Aws {
            sdk,
            path_style,
            table,
            bucket,
        } => {
            // The keys stay in the data directory, as with the embedded store.
            let (hash_key, signing) = custdata::keys::local::keys_of_data_dir(&config.data_dir)?;
            let cursors = custdata::storage::CursorSigner::new(signing.clone());
            let stores = AwsStores::from_config(
                &sdk,
                path_style,
                &table,
                &bucket,
                config.clock.clone(),
                cursors,
            );
            let app = App {
                table: Arc::new(stores.table),
                blobs: Arc::new(stores.blobs),
                clock: config.clock.clone(),
                settings: custdata::app::Settings::from_env()?,
                hash_key,
                signing,
            };
            (app, None)
        }
    };
    if blobs.is_some() {
        // The embedded store is this process's alone: an import lease in it was left by a
        // process that was killed mid-import, and the import resumes now, not in 5 minutes.
        let broken = custdata::aixon::lease::break_leases_of_dead_process(app.table.as_ref())
            .await
            .map_err(|e| format!("cannot clear stale import leases: {e}"))?;
        if broken > 0 {
            tracing::info!(broken, "resuming imports a stopped process left unfinished");
        }
    }
    let mut app = app;
    // Short import slices, so a stopping server is not held up by a long import (the next
    // slice resumes from the checkpoint).
    app.settings.import_budget = LOCAL_IMPORT_SLICE;
    if config.lambda_limits {
        app.settings.lambda_limits = Some(custdata::app::LAMBDA_LIMITS);
    }
    let app = Arc::new(app);
    let router = Router::from_template(&Template::bundled()?)?;
    let credentials = dev_credentials(&app, &config.data_dir, &base_url).await?;
    let admin_token = admin_token(&config.data_dir)?;
    custdata::files::write_private(
        &config.data_dir.join(SERVER_FILE),
        serde_json::json!({"base_url": base_url, "pid": std::process::id()})
            .to_string()
            .as_bytes(),
    )?;
    let state = Arc::new(State {
        app: app.clone(),
        blobs,
        router,
        admin_token,
        base_url: base_url.clone(),
        openapi: openapi::Served::new(&base_url)?,
    });
    let (stop, stopped) = watch::channel(false);
    if config.run_scheduled_tasks {
        for scheduled in custdata::routes::SCHEDULED {
            tokio::spawn(run_on_schedule(scheduled, app.clone(), stopped.clone()));
        }
    }
    let task = tokio::spawn(serve(listener, state, stopped));
    Ok(Server {
        base_url,
        data_dir: config.data_dir,
        app,
        credentials,
        stop,
        task,
    })
}

/// Reads the development credentials, creating the tenant (or fresh credentials for it, if
/// the file was deleted) on first start. The base URL in the file follows the current port.
async fn dev_credentials(
    app: &App,
    data_dir: &Path,
    base_url: &str,
) -> Result<CredentialBundle, String> {
    let path = data_dir.join(DEV_CREDENTIALS_FILE);
    let existing = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CredentialBundle>(&bytes).ok());
    let bundle = match existing {
        Some(mut bundle) => {
            if bundle.base_url == base_url {
                return Ok(bundle);
            }
            bundle.base_url = base_url.to_string();
            bundle
        }
        None => {
            let now = app.clock.now_millis();
            let mut bundle =
                match create_tenant(app.table.as_ref(), DEV_TENANT, base_url, now).await {
                    Ok(bundle) => bundle,
                    Err(TenantError::Exists(_)) => {
                        issue_bundle(app.table.as_ref(), DEV_TENANT, base_url, now)
                            .await
                            .map_err(|e| e.to_string())?
                    }
                    Err(error) => return Err(error.to_string()),
                };
            custdata::monetate::users::provision_key_pair(
                app.table.as_ref(),
                &mut bundle,
                app.clock.now_millis(),
            )
            .await?;
            bundle
        }
    };
    let text = serde_json::to_string_pretty(&bundle).map_err(|e| e.to_string())?;
    custdata::files::write_private(&path, text.as_bytes())?;
    Ok(bundle)
}

fn admin_token(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if let Ok(token) = std::fs::read_to_string(&path) {
        return Ok(token.trim().to_string());
    }
    let token = custdata::tenancy::new_secret();
    custdata::files::write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Runs a scheduled task at its local interval until the server stops (in AWS, an
/// EventBridge schedule in template.yaml runs the same task).
async fn run_on_schedule(
    task: &'static ScheduledTask,
    app: Arc<App>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(task.local_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => match custdata::metrics::in_family(
                task.name,
                (task.run)(app.clone(), serde_json::Value::Null),
            )
            .await
            {
                Ok(report) => tracing::debug!(task = task.name, %report, "scheduled task done"),
                Err(error) => tracing::warn!(task = task.name, %error, "scheduled task failed; retrying at the next tick"),
            },
            _ = stopped.changed() => return,
        }
    }
}

async fn serve(listener: TcpListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                let service = hyper::service::service_fn(move |request| handle(state.clone(), request));
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            _ = stopped.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after 10 s; stopping anyway");
    }
}

type HyperResponse = hyper::Response<Full<Bytes>>;

fn to_hyper(response: Response) -> HyperResponse {
    let (parts, body) = response.into_parts();
    let bytes = match body {
        lambda_http::Body::Text(text) => Bytes::from(text),
        lambda_http::Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

/// An error answered by the server itself (no family involved), with a request id.
fn local_error(vendor: Vendor, error: ApiError) -> HyperResponse {
    with_request_id(error_response(vendor, &error))
}

/// An answer of the server itself, with a request id as every family's answer has.
fn with_request_id(mut response: Response) -> HyperResponse {
    if let Ok(id) = http::HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id);
    }
    to_hyper(response)
}

async fn handle(
    state: Arc<State>,
    request: hyper::Request<Incoming>,
) -> Result<HyperResponse, Infallible> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    if let (PRESIGNED_UPLOAD_PATH, "PUT", Some(blobs)) =
        (path.as_str(), method.as_str(), &state.blobs)
    {
        return Ok(presigned_upload(blobs, request).await);
    }
    if path == ADMIN_ROUTE && method == "POST" {
        let route_key = format!("POST {ADMIN_ROUTE}");
        let request = match read_request(request, 1024 * 1024, route_key, HashMap::new()).await {
            Ok(request) => request,
            Err(limit) => {
                return Ok(local_error(
                    Vendor::Custdata,
                    body_too_large(Vendor::Custdata, limit),
                ));
            }
        };
        return Ok(to_hyper(
            handle_admin_request(&state.app, &state.admin_token, &state.base_url, request).await,
        ));
    }
    if let Some(allowed) = local_only_method(&path).filter(|allowed| *allowed != method) {
        let _ = read_body(request.into_body(), 0).await;
        return Ok(local_error(
            Vendor::Custdata,
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                CustdataCode::MethodNotAllowed,
                format!("{path} allows {allowed}, not {method}"),
            )
            .with_header("allow", allowed),
        ));
    }
    if let Some(answer) = state.openapi.answer(&path) {
        let _ = read_body(request.into_body(), 0).await;
        return Ok(openapi_answer(&method, &path, answer));
    }
    match state.router.resolve(&method, &path) {
        Resolution::NotFound => {
            // Answered without the body, which is read anyway so the answer reaches the client.
            let _ = read_body(request.into_body(), 0).await;
            Ok(local_error(
                Vendor::Custdata,
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    CustdataCode::NotFound,
                    format!("no route for {method} {path}"),
                ),
            ))
        }
        Resolution::WrongMethod(allowed) => {
            let _ = read_body(request.into_body(), 0).await;
            let allow = allowed.join(", ");
            Ok(local_error(
                Vendor::Custdata,
                ApiError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    CustdataCode::MethodNotAllowed,
                    format!("{path} allows {allow}, not {method}"),
                )
                .with_header("allow", allow),
            ))
        }
        Resolution::Found {
            family,
            route_key,
            path_parameters,
        } => match read_request(request, family.max_body_bytes, route_key, path_parameters).await {
            Ok(request) => Ok(to_hyper(dispatch(state.app.clone(), family, request).await)),
            Err(limit) => Ok(local_error(
                family.vendor,
                body_too_large(family.vendor, limit),
            )),
        },
    }
}

/// The one method of a path only this server serves (the admin route, presigned uploads),
/// so that another method answers 405 as a template route's would, not 404.
fn local_only_method(path: &str) -> Option<&'static str> {
    match path {
        ADMIN_ROUTE => Some("POST"),
        PRESIGNED_UPLOAD_PATH => Some("PUT"),
        _ => None,
    }
}

/// The OpenAPI list or a document (`GET` only), or the custdata error naming what exists.
fn openapi_answer(
    method: &str,
    path: &str,
    answer: Result<&serde_json::Value, String>,
) -> HyperResponse {
    let error = match (method, answer) {
        ("GET", Ok(document)) => {
            return with_request_id(custdata::http::json_response(StatusCode::OK, document));
        }
        ("GET", Err(message)) => {
            ApiError::new(StatusCode::NOT_FOUND, CustdataCode::NotFound, message)
        }
        _ => ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            CustdataCode::MethodNotAllowed,
            format!("{path} allows GET, not {method}"),
        )
        .with_header("allow", "GET"),
    };
    local_error(Vendor::Custdata, error)
}

/// Bytes of an over-limit body read (and dropped) before answering 413. Answering while the
/// client is still sending closes the socket with unread data, which resets the connection:
/// the client would see a broken pipe instead of the 413 that names the limit.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The body, if at most `limit` bytes; otherwise `Err(limit)`, after reading (and dropping)
/// the rest up to [`DRAIN_LIMIT`].
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, usize> {
    let mut bytes = Vec::new();
    let mut received = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(limit);
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len();
        if received <= limit {
            bytes.extend_from_slice(&data);
        } else if received > DRAIN_LIMIT {
            break;
        }
    }
    if received > limit {
        return Err(limit);
    }
    Ok(Bytes::from(bytes))
}

/// Reads the body up to `limit` bytes and builds the request API Gateway would hand the
/// Lambda: path and query parameters extracted, text bodies as text. `Err(limit)` when the
/// body is larger (the rest is read and dropped, up to [`DRAIN_LIMIT`]).
async fn read_request(
    request: hyper::Request<Incoming>,
    limit: usize,
    route_key: String,
    path_parameters: HashMap<String, String>,
) -> Result<lambda_http::Request, usize> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, limit).await?;
    let body = if bytes.is_empty() {
        lambda_http::Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => lambda_http::Body::Text(text),
            Err(binary) => lambda_http::Body::Binary(binary.into_bytes()),
        }
    };
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
    {
        query
            .entry(name.into_owned())
            .or_default()
            .push(value.into_owned());
    }
    let raw_path = parts.uri.path().to_string();
    // The route key as API Gateway hands it to the Lambda: what the family dispatches on and
    // the request's log names.
    let request = with_route_key(http::Request::from_parts(parts, body), route_key);
    Ok(request
        .with_path_parameters(path_parameters)
        .with_query_string_parameters(query)
        .with_raw_http_path(raw_path))
}

/// `PUT` to a presigned URL: streamed straight into the blob store, never held in memory.
async fn presigned_upload(
    blobs: &EmbeddedBlobs,
    request: hyper::Request<Incoming>,
) -> HyperResponse {
    let query = request.uri().query().unwrap_or_default().to_string();
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let stream = request
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    let reader = Box::pin(tokio_util::io::StreamReader::new(stream));
    match blobs
        .accept_presigned(&query, content_type.as_deref(), reader)
        .await
    {
        Ok(size) => {
            let mut response = hyper::Response::new(Full::new(Bytes::new()));
            response
                .headers_mut()
                .insert("x-custdata-size", http::HeaderValue::from(size));
            response
        }
        // AIXON's uploads extension is the only one that hands out these URLs.
        Err(error) => local_error(Vendor::Aixon, error.into()),
    }
}

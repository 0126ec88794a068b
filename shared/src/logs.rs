//! What custdata logs about a request, the same in Lambda and locally: the route template,
//! the tenant, the status and the request id — never a raw path, query value, body,
//! identifier or secret (docs/reliability.md, "Logs").
//!
//! Every request runs inside one span (`request_id`, `route`, `family`, `method`, `tenant`);
//! the tenant is filled in when the request's credential resolves to one
//! ([`note_tenant`], called by `tenancy::authenticate`), so every event of the request
//! carries it. Dependencies log at most at `info`, whatever `RUST_LOG` asks: below that,
//! HTTP and SDK crates print requests and bodies.

use tracing::Instrument;
use tracing_subscriber::filter::{FilterExt, Targets, filter_fn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::domain::TenantId;

tokio::task_local! {
    /// The span of the request the current task serves.
    static REQUEST_SPAN: tracing::Span;
}

/// The route template a request matched when none is known (a function URL, a test
/// calling a handler directly): never the raw path.
pub const UNKNOWN_ROUTE: &str = "-";

/// The span a request runs in. `route` is the template (`GET /…/rows/{customuid}`).
pub fn request_span(request_id: &str, route: &str, family: &str, method: &str) -> tracing::Span {
    tracing::info_span!(
        "request",
        request_id,
        route,
        family,
        method,
        tenant = tracing::field::Empty
    )
}

/// Runs a request's work inside its span, where [`note_tenant`] can find it.
pub async fn in_request<F: Future>(span: tracing::Span, work: F) -> F::Output {
    REQUEST_SPAN
        .scope(span.clone(), work.instrument(span))
        .await
}

/// Records the tenant on the current request's span (a no-op outside a request).
pub fn note_tenant(tenant: &TenantId) {
    let _ = REQUEST_SPAN.try_with(|span| {
        span.record("tenant", tenant.as_str());
    });
}

/// Whether an event or span may be logged at its level: custdata's own at any level
/// `RUST_LOG` allows, a dependency's at `info` or above only.
fn within_cap(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("custdata") || *metadata.level() <= tracing::Level::INFO
}

/// `RUST_LOG` as a list of `target=level` directives and a default level (`info`,
/// `custdata=debug,info`); `info` when it is unset or unreadable. `Targets` rather than
/// `EnvFilter`: nothing here filters on spans or fields, and `EnvFilter` links a regex
/// engine into every Lambda artefact.
fn env_filter() -> Targets {
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Logs as JSON lines (CloudWatch), filtered by `RUST_LOG` (default `info`); metrics as
/// embedded-metric-format lines of their own on stdout ([`crate::metrics`]).
pub fn init_json() {
    crate::metrics::write_to_stdout();
    let layer = fmt::layer()
        .json()
        .with_current_span(true)
        .without_time()
        .with_ansi(false)
        .with_filter(env_filter().and(filter_fn(within_cap)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// Readable logs on stderr, for a terminal (local server, admin CLI).
pub fn init_readable() {
    let layer = fmt::layer()
        .compact()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(env_filter().and(filter_fn(within_cap)));
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

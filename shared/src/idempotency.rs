//! `Idempotency-Key` on every write route (an additive extension, as payment APIs have it):
//! the first answer to a key is kept for 24 hours; a retry with the same key and the same
//! request gets that answer again without the work being applied again; the same key with
//! another request is 422; a retry while the first is still being worked on is 409.
//!
//! Each surface authenticates first (the tenant starts the key) and then hands its work to
//! [`once`]. The key is claimed with a conditional put before the work runs, so two requests
//! with one key never both apply. An answer that asks for a retry (5xx, 409, 429) is not
//! kept: the claim is released and a retry applies. Keys and fingerprints are stored as
//! keyed hashes; nothing of the key, the request or the answer is logged.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderValue, Method, StatusCode};
use lambda_http::Body;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::domain::TenantId;
use crate::http::{
    ApiError, CustdataCode, Request, Response, Vendor, body_bytes, error_response, media_type,
};
use crate::storage::batch::write_all;
use crate::storage::{Condition, Item, Query, StorageError, WriteRequest, keys, read_all};

/// The request header, as clients send it.
pub const HEADER: &str = "Idempotency-Key";
/// Set on an answer that is the kept first answer, not a new one.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// The longest key taken.
pub const MAX_KEY_CHARS: usize = 255;
/// How long the first answer to a key is kept.
pub const ANSWER_KEPT_SECONDS: i64 = 24 * 3600;
/// How long a claim holds without an answer: longer than any request runs (API Gateway
/// stops waiting at 30 s), short enough that a crashed request's key is free again soon.
pub const CLAIM_SECONDS: i64 = 120;
/// Bytes of an answer's body kept in its record; a longer body is kept in parts of this
/// size (base64 makes a part about 342 KiB, under the 400 KiB item limit).
pub const BODY_PART_BYTES: usize = 256 * 1024;
/// The headers of a first answer that a replay repeats.
const KEPT_HEADERS: &[&str] = &["content-type", "location", "allow", "www-authenticate"];

const CLAIMED: &str = "claimed";
const ANSWERED: &str = "answered";

/// Runs `work` once per `Idempotency-Key` of the tenant: a write request with the header is
/// claimed, worked and its answer kept; its retries get that answer. A request without the
/// header, or a read, runs `work` as it always did. `vendor` shapes the error answers kept.
pub async fn once<F, Fut>(
    app: &App,
    tenant: &TenantId,
    vendor: Vendor,
    request: &Request,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let Some(key) = key_of(request)? else {
        return work().await;
    };
    let slot = Slot {
        app,
        tenant,
        key_hash: app.keyed_hash(key),
        fingerprint: fingerprint(app, request),
    };
    let claim = match slot.claim().await? {
        Claimed::Ours(claim) => claim,
        Claimed::Answered(response) => {
            tracing::info!(idempotency = "replayed", "a kept answer was given again");
            return Ok(response);
        }
    };
    let outcome = work().await;
    let answer = match &outcome {
        Ok(response) => Answer::of(response),
        Err(error) => Answer::of(&error_response(vendor, error)),
    };
    if asks_for_retry(answer.status) {
        slot.release(&claim).await;
    } else if let Err(error) = slot.keep(&claim, &answer).await {
        // The work is done and its answer is the client's; only a retry after the claim
        // expires could apply it again.
        tracing::warn!(%error, "the answer to an Idempotency-Key could not be kept");
    }
    outcome
}

/// The key of a write request, checked; `None` for a read or a request without the header.
fn key_of(request: &Request) -> Result<Option<&str>, ApiError> {
    let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    if !writes.contains(request.method()) {
        return Ok(None);
    }
    let Some(value) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let rule = format!("1 to {MAX_KEY_CHARS} visible ASCII characters");
    match value.to_str() {
        Ok(key)
            if (1..=MAX_KEY_CHARS).contains(&key.len())
                && key.bytes().all(|byte| byte.is_ascii_graphic()) =>
        {
            Ok(Some(key))
        }
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            CustdataCode::InvalidIdempotencyKey,
            format!("the {HEADER} header holds {rule}"),
        )
        .with_problem(None, Some(HEADER), rule)),
    }
}

/// What makes two requests the same: method, path, query, media type and body, as a keyed
/// hash (a body may hold personal data, and a plain hash of a short one can be guessed).
fn fingerprint(app: &App, request: &Request) -> String {
    let media = media_type(request).unwrap_or_default();
    let parts: [&[u8]; 5] = [
        request.method().as_str().as_bytes(),
        request.uri().path().as_bytes(),
        request.uri().query().unwrap_or_default().as_bytes(),
        media.as_bytes(),
        body_bytes(request),
    ];
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    app.keyed_hash(&hex::encode(digest.finalize()))
}

/// Answers that tell the client to try again are not kept: a retry must be able to apply.
fn asks_for_retry(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// A first answer as kept: status, the headers a replay repeats, the body.
struct Answer {
    status: StatusCode,
    headers: Map<String, Value>,
    body: Vec<u8>,
    text: bool,
}

impl Answer {
    fn of(response: &Response) -> Answer {
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some((name.to_string(), Value::from(value)))
            })
            .collect();
        let (body, text) = match response.body() {
            Body::Text(text) => (text.as_bytes().to_vec(), true),
            Body::Binary(bytes) => (bytes.clone(), false),
            _ => (Vec::new(), false),
        };
        Answer {
            status: response.status(),
            headers,
            body,
            text,
        }
    }

    fn into_response(self) -> Response {
        let body = match (self.text, String::from_utf8(self.body)) {
            (true, Ok(text)) => Body::Text(text),
            (_, Ok(text)) if text.is_empty() => Body::Empty,
            (_, Ok(text)) => Body::Binary(text.into_bytes()),
            (_, Err(error)) => Body::Binary(error.into_bytes()),
        };
        let mut response = http::Response::new(body);
        *response.status_mut() = self.status;
        for (name, value) in &self.headers {
            let value = value.as_str().and_then(|v| HeaderValue::from_str(v).ok());
            if let (Ok(name), Some(value)) = (http::HeaderName::try_from(name.as_str()), value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        response
    }
}

enum Claimed {
    /// This request holds the key (the claim's id); it does the work.
    Ours(String),
    /// The key was answered before: that answer.
    Answered(Response),
}

/// One key of one tenant, for one request.
struct Slot<'a> {
    app: &'a App,
    tenant: &'a TenantId,
    key_hash: String,
    fingerprint: String,
}

impl Slot<'_> {
    fn record_key(&self) -> crate::storage::Key {
        keys::idempotency_record(self.tenant, &self.key_hash)
    }

    /// Claims the key (a put only while no live record exists), or reads what holds it.
    async fn claim(&self) -> Result<Claimed, ApiError> {
        let claim = uuid::Uuid::new_v4().to_string();
        // A record that expires between the refused put and the read is claimed again.
        for _ in 0..3 {
            let key = self.record_key();
            let item = Item::new(key.pk.clone(), key.sk.clone())
                .with("state", CLAIMED)
                .with("claim", claim.as_str())
                .with("fingerprint", self.fingerprint.as_str())
                .expiring_at(self.app.clock.now_seconds() + CLAIM_SECONDS);
            match self.app.table.put(item, Condition::NotExists).await {
                Ok(()) => return Ok(Claimed::Ours(claim)),
                Err(StorageError::ConditionFailed { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            let Some(found) = self.app.table.get(&key).await? else {
                continue;
            };
            if found.str("fingerprint") != Some(self.fingerprint.as_str()) {
                return Err(reused());
            }
            if found.str("state") == Some(ANSWERED) {
                return Ok(Claimed::Answered(self.replay(&found).await?));
            }
            return Err(in_flight());
        }
        Err(in_flight())
    }

    /// Keeps the answer in place of this request's claim (if the claim still holds).
    async fn keep(&self, claim: &str, answer: &Answer) -> Result<(), StorageError> {
        let key = self.record_key();
        let expires = self.app.clock.now_seconds() + ANSWER_KEPT_SECONDS;
        let mut record = Item::new(key.pk, key.sk)
            .with("state", ANSWERED)
            .with("claim", claim)
            .with("fingerprint", self.fingerprint.as_str())
            .with("status", answer.status.as_u16())
            .with("headers", Value::Object(answer.headers.clone()))
            .with("text", answer.text)
            .expiring_at(expires);
        if answer.body.len() <= BODY_PART_BYTES {
            record = record.with("body", BASE64.encode(&answer.body));
        } else {
            let parts: Vec<WriteRequest> = answer
                .body
                .chunks(BODY_PART_BYTES)
                .enumerate()
                .map(|(index, part)| {
                    let key = keys::idempotency_body_part(self.tenant, &self.key_hash, index);
                    WriteRequest::Put(
                        Item::new(key.pk, key.sk)
                            .with("body", BASE64.encode(part))
                            .expiring_at(expires),
                    )
                })
                .collect();
            record = record.with("parts", parts.len());
            write_all(self.app.table.as_ref(), parts).await?;
        }
        self.app
            .table
            .put(record, Condition::equals("claim", claim))
            .await
    }

    /// Gives the key back after an answer that asks for a retry.
    async fn release(&self, claim: &str) {
        let held = Condition::equals("claim", claim);
        match self.app.table.delete(&self.record_key(), held).await {
            Ok(_) | Err(StorageError::ConditionFailed { .. }) => {}
            // The claim expires by itself; until then a retry is told to wait (409).
            Err(error) => tracing::warn!(%error, "an Idempotency-Key claim was not released"),
        }
    }

    /// The kept answer of a record, with its body (read from its parts when it has them).
    async fn replay(&self, record: &Item) -> Result<Response, ApiError> {
        let damaged = || ApiError::internal("a kept idempotent answer is damaged");
        let body = match record.i64("parts") {
            None => BASE64
                .decode(record.str("body").unwrap_or_default())
                .map_err(|_| damaged())?,
            Some(count) => {
                let pk = keys::idempotency_pk(self.tenant, &self.key_hash);
                let query = Query::partition(pk).prefix(keys::IDEMPOTENCY_BODY_PREFIX);
                let parts = read_all(self.app.table.as_ref(), query).await?;
                if parts.len() as i64 != count {
                    return Err(damaged());
                }
                let mut body = Vec::new();
                for part in &parts {
                    body.extend(
                        BASE64
                            .decode(part.str("body").unwrap_or_default())
                            .map_err(|_| damaged())?,
                    );
                }
                body
            }
        };
        let status = record
            .i64("status")
            .and_then(|status| StatusCode::from_u16(u16::try_from(status).ok()?).ok())
            .ok_or_else(damaged)?;
        let headers = record
            .get("headers")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let text = record.get("text").and_then(Value::as_bool).unwrap_or(false);
        Ok(Answer {
            status,
            headers,
            body,
            text,
        }
        .into_response())
    }
}

/// The 422 of a key used before with another request.
fn reused() -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        CustdataCode::IdempotencyKeyReused,
        format!(
            "this {HEADER} was used with another request (method, path, query, content type or body); a new request needs a new key"
        ),
    )
    .with_problem(None, Some(HEADER), "one key, one request")
}

/// The 409 of a key whose first request has not been answered yet.
fn in_flight() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        CustdataCode::IdempotencyKeyInUse,
        format!("a request with this {HEADER} is still being worked on; retry once it is answered"),
    )
    .with_problem(None, Some(HEADER), "answered before it is used again")
    .with_header("retry-after", "1")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::http::json_response;

    fn app(dir: &std::path::Path, clock: &ManualClock) -> App {
        let (app, _) = App::embedded(dir, Arc::new(clock.clone()), "http://127.0.0.1:9")
            .expect("an embedded app");
        app
    }

    fn post(key: &str, body: &str) -> Request {
        http::Request::builder()
            .method(Method::POST)
            .uri("/somewhere")
            .header(HEADER, key)
            .body(Body::Text(body.to_string()))
            .expect("a request")
    }

    /// Runs `once` with work that counts its runs and answers `status` with `body`.
    async fn run(
        app: &App,
        request: &Request,
        runs: &AtomicUsize,
        status: StatusCode,
        body: &Value,
    ) -> Result<Response, ApiError> {
        let tenant = TenantId::parse("acme").expect("a tenant");
        once(app, &tenant, Vendor::Custdata, request, || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok(json_response(status, body))
        })
        .await
    }

    fn text(response: &Response) -> &str {
        match response.body() {
            Body::Text(text) => text,
            _ => "",
        }
    }

    #[tokio::test]
    async fn an_answer_longer_than_an_item_is_kept_in_parts_and_replayed_whole() {
        let dir = tempfile::tempdir().expect("a directory");
        let clock = ManualClock::at_millis(1_790_000_000_000);
        let app = app(dir.path(), &clock);
        let runs = AtomicUsize::new(0);
        let long = Value::from("x".repeat(3 * BODY_PART_BYTES));
        let request = post("long-answer", "{}");
        let first = run(&app, &request, &runs, StatusCode::OK, &long)
            .await
            .expect("answered");
        let again = run(&app, &request, &runs, StatusCode::OK, &long)
            .await
            .expect("replayed");
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(text(&again), text(&first));
        assert_eq!(again.headers()[REPLAYED_HEADER], "true");
        assert_eq!(again.headers()["content-type"], "application/json");
    }

    #[tokio::test]
    async fn an_answer_asking_for_a_retry_frees_the_key_and_a_kept_one_expires_after_a_day() {
        let dir = tempfile::tempdir().expect("a directory");
        let clock = ManualClock::at_millis(1_790_000_000_000);
        let app = app(dir.path(), &clock);
        let runs = AtomicUsize::new(0);
        let request = post("retry-me", "{}");
        let busy = run(
            &app,
            &request,
            &runs,
            StatusCode::SERVICE_UNAVAILABLE,
            &Value::Null,
        );
        assert_eq!(busy.await.expect("answered").status(), 503);
        let done = run(&app, &request, &runs, StatusCode::CREATED, &Value::Null);
        assert_eq!(done.await.expect("answered").status(), 201);
        let kept = run(&app, &request, &runs, StatusCode::OK, &Value::Null);
        assert_eq!(kept.await.expect("replayed").status(), 201);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        clock.advance_seconds(ANSWER_KEPT_SECONDS + 1);
        let later = run(&app, &request, &runs, StatusCode::OK, &Value::Null);
        assert_eq!(later.await.expect("answered").status(), 200);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_key_outside_the_rule_is_refused_without_echoing_it() {
        let dir = tempfile::tempdir().expect("a directory");
        let clock = ManualClock::at_millis(1_790_000_000_000);
        let app = app(dir.path(), &clock);
        let runs = AtomicUsize::new(0);
        for key in ["has space", &"k".repeat(MAX_KEY_CHARS + 1)] {
            let refused = run(&app, &post(key, "{}"), &runs, StatusCode::OK, &Value::Null)
                .await
                .expect_err("refused");
            assert_eq!(refused.status, StatusCode::BAD_REQUEST);
            assert_eq!(refused.problems[0].field.as_deref(), Some(HEADER));
            assert!(!refused.message.contains(key));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 0);
    }
}

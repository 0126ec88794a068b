//! The HTTP-level fuzzer: every route of template.yaml, called with mutated bodies, headers,
//! query strings, path segments and methods on the development tenant's objects, mostly
//! with a valid credential so the mutations reach the handlers.
//!
//! What it holds every answer to: no 5xx, an answer within [`ANSWER_LIMIT`] (no hang, no
//! dropped connection — a panic in a handler would drop it), and after a refused (4xx)
//! write, the tenant's customer data exactly as before (no partial write the answer does
//! not report). Deterministic for a seed.

use std::collections::BTreeMap;
use std::time::Duration;

use custdata::tenancy::CredentialBundle;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use sha2::{Digest, Sha256};

use crate::TestApp;
use crate::routes::{Call, Credential, MALFORMED, Objects, Tenant, calls_for, today, try_send};

/// How long an answer may take before the fuzzer calls it a hang.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(30);

/// Partitions holding customer data; a refused write must leave them as they were.
const DATA_PARTITIONS: [&str; 7] = [
    "#CUST#",
    "#CUSTID#",
    "#DSROW#",
    "#AIXROW#",
    "#MONROW#",
    "#LISTORD#",
    "#ATTRCHG#",
];

/// Fragments mutations splice in: JSON and CSV syntax, extreme numbers, odd text.
const FRAGMENTS: [&str; 24] = [
    "\"",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\n",
    "\r\n",
    "\\u0000",
    "null",
    "-1",
    "1e309",
    "99999999999999999999999",
    "\u{202e}",
    ";",
    "'",
    "<x>",
    "\"\"",
    "true",
    "0.0000001",
    "\t",
    "=cmd|' /C calc'!A0",
    "%",
];

/// Values for query parameters and path segments.
const VALUES: [&str; 14] = [
    "",
    "-1",
    "0",
    "1",
    "200001",
    "99999999999999999999",
    "%ZZ",
    "%00",
    "..",
    "%2e%2e",
    "ü€𝄞",
    "a b",
    "'; DROP TABLE x; --",
    "null",
];

/// Query parameter names the surfaces read.
const PARAMETERS: [&str; 12] = [
    "$top",
    "$skip",
    "ttl",
    "pk",
    "id",
    "limit",
    "cursor",
    "CustomerAttributes",
    "StartDate",
    "EndDate",
    "CustomerAttributesDelimiter",
    "x",
];

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Inputs sent per route (`METHOD path` as template.yaml writes it).
    pub per_route: BTreeMap<String, usize>,
    /// Answers per status code.
    pub statuses: BTreeMap<u16, usize>,
    /// Every broken rule, with the input that broke it.
    pub failures: Vec<String>,
}

impl Report {
    pub fn inputs(&self) -> usize {
        self.per_route.values().sum()
    }
}

fn pick<T: Clone>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())].clone()
}

fn mutate_body(rng: &mut StdRng, body: &[u8]) -> Vec<u8> {
    let mut bytes = body.to_vec();
    match rng.random_range(0..10) {
        0 => {}
        1 => {
            for _ in 0..rng.random_range(1..8) {
                if !bytes.is_empty() {
                    let at = rng.random_range(0..bytes.len());
                    bytes[at] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        2 => bytes.truncate(rng.random_range(0..=bytes.len())),
        3 => {
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..=bytes.len());
                let fragment = pick(rng, &FRAGMENTS).as_bytes();
                bytes.splice(at..at, fragment.iter().copied());
            }
        }
        4 => {
            // A slice repeated until the body is large (up to ~1 MB).
            if !bytes.is_empty() {
                let start = rng.random_range(0..bytes.len());
                let end = rng.random_range(start..=bytes.len());
                let slice = bytes[start..end].to_vec();
                for _ in 0..rng
                    .random_range(1..20_000usize)
                    .min(1_000_000 / slice.len().max(1))
                {
                    bytes.splice(end..end, slice.iter().copied());
                }
            }
        }
        5 => bytes = "[".repeat(rng.random_range(1..200_000)).into_bytes(),
        6 => bytes = vec![b'x'; 7 * 1024 * 1024],
        7 => bytes.clear(),
        8 => {
            bytes = (0..rng.random_range(0..4096))
                .map(|_| rng.random())
                .collect()
        }
        _ => {
            // Numbers and strings swapped for extremes.
            let text = String::from_utf8_lossy(&bytes).into_owned();
            bytes = text
                .replace(|c: char| c.is_ascii_digit(), pick(rng, &["9", "-", "."]))
                .into_bytes();
        }
    }
    bytes
}

fn mutate_call(rng: &mut StdRng, call: &Call) -> Call {
    let mut mutated = call.clone();
    if rng.random_bool(0.1) {
        mutated.method = pick(
            rng,
            &[
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
            ],
        );
    }
    let (path, query) = call.path.split_once('?').unwrap_or((&call.path, ""));
    let mut segments: Vec<String> = path.split('/').map(str::to_string).collect();
    if rng.random_bool(0.1) && segments.len() > 2 {
        let at = rng.random_range(2..segments.len());
        segments[at] = if rng.random_bool(0.2) {
            "a".repeat(rng.random_range(1..10_000))
        } else {
            urlencoding::encode(pick(rng, &VALUES)).into_owned()
        };
    }
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(str::to_string)
        .collect();
    for _ in 0..rng.random_range(0..3) {
        let value = if rng.random_bool(0.1) {
            "9".repeat(rng.random_range(1..5_000))
        } else {
            pick(rng, &VALUES).to_string()
        };
        // Raw, not encoded: malformed escapes are part of the point.
        pairs.push(format!(
            "{}={}",
            pick(rng, &PARAMETERS),
            value.replace(' ', "+")
        ));
    }
    mutated.path = segments.join("/");
    if !pairs.is_empty() {
        mutated.path = format!("{}?{}", mutated.path, pairs.join("&"));
    }
    if rng.random_bool(0.2) {
        mutated.content_type = Some(pick(
            rng,
            &[
                "application/json",
                "text/csv",
                "application/xml",
                "text/plain",
                "multipart/form-data; boundary=x",
                "application/json; charset=latin-1",
                "\u{1}",
            ],
        ));
    }
    if rng.random_bool(0.1) {
        mutated.headers.push((
            "accept",
            pick(rng, &["application/xml", "*/*", "text/csv"]).to_string(),
        ));
    }
    let body = call.body.clone().unwrap_or_default();
    if rng.random_bool(0.9) {
        // Invalid UTF-8 is sent lossily: reqwest bodies here are text, the server sees bytes.
        mutated.body =
            Some(String::from_utf8_lossy(&mutate_body(rng, body.as_bytes())).into_owned());
    }
    mutated
}

/// The call once per path parameter of its route, that parameter 3,000 bytes long.
fn overlong_parameters(route_path: &str, call: &Call) -> Vec<Call> {
    let (path, query) = call.path.split_once('?').unwrap_or((&call.path, ""));
    route_path
        .split('/')
        .enumerate()
        .filter(|(_, segment)| segment.starts_with('{'))
        .map(|(index, _)| {
            let mut segments: Vec<String> = path.split('/').map(str::to_string).collect();
            segments[index] = "a".repeat(3_000);
            let mut mutated = call.clone();
            mutated.path = segments.join("/");
            if !query.is_empty() {
                mutated.path = format!("{}?{query}", mutated.path);
            }
            mutated
        })
        .collect()
}

/// A digest of the tenant's customer data.
async fn data_digest(app: &TestApp, tenant: &str) -> String {
    let items = app
        .server
        .app
        .table
        .scan_prefix(&format!("T#{tenant}#"))
        .await
        // A failed scan must not pass for two equal, empty digests.
        .expect("the tenant's items can be read");
    let mut hash = Sha256::new();
    for item in items.iter().filter(|item| {
        DATA_PARTITIONS
            .iter()
            .any(|part| format!("{}#", item.pk).contains(part))
    }) {
        hash.update(format!(
            "{}\u{0}{}\u{0}{:?}\u{1}",
            item.pk, item.sk, item.attrs
        ));
    }
    hex::encode(hash.finalize())
}

/// Sends `per_call` mutated versions of every route's call, on the objects of the tenant
/// whose credentials `bundle` holds.
pub async fn run(
    app: &TestApp,
    bundle: &CredentialBundle,
    objects: &Objects,
    per_call: usize,
    seed: u64,
) -> Report {
    let template = custdata::template::Template::bundled().expect("template.yaml parses");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = Report::default();
    let today = today(app);
    // Routes that delete go last, so the others still find their objects, and the one that
    // deactivates the Monetate key the tenant signs in with after them.
    let mut routes = template.routes.clone();
    routes.sort_by_key(|route| {
        (
            route.path.ends_with("/deactivate"),
            route.method == "DELETE",
        )
    });
    for route in &routes {
        let vendor = crate::routes::vendor_of(&route.family);
        // Fresh tokens per route: the clock moves a second per input.
        let a = Tenant::sign_in(app, bundle.clone()).await;
        for call in calls_for(route, objects, &today) {
            // Every path parameter once at 3,000 bytes, past both storage key limits.
            for mutated in overlong_parameters(&route.path, &call) {
                app.clock.advance_millis(1_000);
                let answer = try_send(app, &mutated, &a.own(vendor, call.exchange)).await;
                *report
                    .per_route
                    .entry(format!("{} {}", route.method, route.path))
                    .or_default() += 1;
                let shown = format!(
                    "{} {} with a 3,000-byte parameter",
                    mutated.method, route.path
                );
                match answer {
                    Ok((status, body)) => {
                        *report.statuses.entry(status).or_default() += 1;
                        if status >= 500 {
                            report
                                .failures
                                .push(format!("{status} for {shown}: {body}"));
                        }
                    }
                    Err(error) => report
                        .failures
                        .push(format!("the connection failed ({error}): {shown}")),
                }
            }
            for _ in 0..per_call {
                let mutated = mutate_call(&mut rng, &call);
                let credential = if rng.random_bool(0.85) {
                    a.own(vendor, call.exchange)
                } else if rng.random_bool(0.5) {
                    let (name, value) = pick(&mut rng, &MALFORMED);
                    Credential::Header(name, value)
                } else {
                    Credential::Nothing
                };
                app.clock.advance_millis(1_000);
                let write = mutated.method != Method::GET;
                let before = if write {
                    Some(data_digest(app, a.tenant()).await)
                } else {
                    None
                };
                let answer =
                    tokio::time::timeout(ANSWER_LIMIT, try_send(app, &mutated, &credential)).await;
                *report
                    .per_route
                    .entry(format!("{} {}", route.method, route.path))
                    .or_default() += 1;
                let shown = format!(
                    "{} {} (body {} bytes{}, content-type {:?})",
                    mutated.method,
                    mutated.path.chars().take(200).collect::<String>(),
                    mutated.body.as_ref().map_or(0, String::len),
                    mutated
                        .body
                        .as_ref()
                        .map(|b| format!(": {:?}", b.chars().take(120).collect::<String>()))
                        .unwrap_or_default(),
                    mutated.content_type
                );
                let (status, body) = match answer {
                    Ok(Ok(answered)) => answered,
                    // A header value no HTTP client could send: not an input the server sees.
                    Ok(Err(error)) if error.is_builder() => continue,
                    Ok(Err(error)) => {
                        report
                            .failures
                            .push(format!("the connection failed ({error}): {shown}"));
                        continue;
                    }
                    Err(_) => {
                        report
                            .failures
                            .push(format!("no answer within {ANSWER_LIMIT:?}: {shown}"));
                        continue;
                    }
                };
                *report.statuses.entry(status).or_default() += 1;
                if status >= 500 {
                    report.failures.push(format!(
                        "{status} for {shown}: {}",
                        body.chars().take(300).collect::<String>()
                    ));
                }
                if let Some(before) = before
                    && (400..500).contains(&status)
                    && data_digest(app, a.tenant()).await != before
                {
                    report.failures.push(format!(
                        "refused with {status} but customer data changed: {shown}: {body}"
                    ));
                }
            }
        }
    }
    report
}

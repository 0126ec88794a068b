//! Lambda's limits on an answer and on time, applied in [`crate::http::dispatch`] wherever
//! the code runs (always in Lambda, locally with `--lambda-limits`): an answer Lambda could
//! not return, or a read still working when the invocation would be cut off, becomes an error
//! in the vendor's shape that names a page small enough to succeed, instead of the bare 502
//! or 503 API Gateway would give.

use std::future::Future;
use std::time::Duration;

use http::StatusCode;
use lambda_http::{Body, RequestExt};

use crate::app::LambdaLimits;
use crate::http::{ApiError, CustdataCode, Request, Response};

/// Query parameters that set a page's size, by the names the surfaces use: Optimove's
/// `$top` (any case), MXO's activity `limit`.
const PAGE_PARAMETERS: [&str; 3] = ["$top", "top", "limit"];

/// Time kept back before Lambda's deadline, to build and return the error answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1_000);

/// The page parameter a request set, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub name: String,
    pub size: u64,
}

impl Page {
    /// Read from the query string as it came (no map built: this runs on every request).
    pub fn of(request: &Request) -> Option<Page> {
        request
            .query_string_parameters_ref()?
            .iter()
            .find_map(|(name, value)| {
                let known = PAGE_PARAMETERS.contains(&name.to_ascii_lowercase().as_str());
                let size = value.trim().parse::<u64>().ok()?;
                known.then(|| Page {
                    name: name.to_string(),
                    size,
                })
            })
    }

    /// A page `fraction` of this one, rounded down, at least 1.
    fn scaled(&self, fraction: f64) -> u64 {
        ((self.size as f64 * fraction).floor() as u64).max(1)
    }
}

/// What the answer's body weighs in the invocation's response payload: a text body travels
/// as a JSON string (quotes, backslashes and control characters escaped), a binary one in
/// base64.
pub fn payload_bytes(body: &Body) -> usize {
    match body {
        Body::Empty => 0,
        Body::Text(text) => text
            .bytes()
            .map(|byte| match byte {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                0x00..=0x1f => 6,
                _ => 1,
            })
            .sum(),
        Body::Binary(bytes) => bytes.len().div_ceil(3) * 4,
        _ => 0,
    }
}

/// The error that replaces an answer of `weight` bytes over `limit`.
pub fn answer_too_large(weight: usize, limit: usize, page: Option<&Page>) -> ApiError {
    // A tenth below proportional, since records differ in size across pages.
    let advice = match page {
        Some(page) => format!(
            "ask for {}={} or fewer",
            page.name,
            page.scaled(0.9 * limit as f64 / weight as f64)
        ),
        None => "ask for a smaller page ($top or limit)".to_string(),
    };
    ApiError::new(
        StatusCode::BAD_REQUEST,
        CustdataCode::ResponseTooLarge,
        format!(
            "the answer would be {weight} bytes, more than the {limit} a Lambda function can return; {advice}"
        ),
    )
    .with_problem(
        None,
        Some(page.map_or("$top", |page| page.name.as_str())),
        format!("an answer of at most {limit} bytes"),
    )
}

/// The error that answers a read cut off after `budget`.
pub fn took_too_long(budget: Duration, page: Option<&Page>) -> ApiError {
    let advice = match page {
        Some(page) => format!("ask for {}={} or fewer", page.name, page.scaled(0.5)),
        None => "ask for a smaller page ($top or limit)".to_string(),
    };
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        CustdataCode::Timeout,
        format!(
            "the answer was not ready within {:.0} s, the time a Lambda function behind API Gateway has; {advice}",
            budget.as_secs_f64()
        ),
    )
}

/// How long the handler may work: the limit, or less when the invocation's own deadline
/// (Lambda's context) comes sooner. A deadline that is not in the future is no deadline: an
/// emulator (`cargo lambda watch`) sends none, which reads as 0.
pub fn time_budget(request: &Request, limits: &LambdaLimits, now_millis: i64) -> Duration {
    let until_deadline = request
        .lambda_context_ref()
        .map(|context| context.deadline as i64 - now_millis)
        .filter(|millis| *millis > 0)
        .map(|millis| Duration::from_millis(millis as u64).saturating_sub(DEADLINE_MARGIN));
    until_deadline.map_or(limits.time, |left| left.min(limits.time))
}

/// Runs a handler within Lambda's limits. Reads (`GET`, `HEAD`) are cut off at the time
/// budget; writes are not, since a write stopped part-way would leave work the answer does not
/// report (they are bounded by the body limit instead).
pub async fn within(
    limits: &LambdaLimits,
    budget: Duration,
    reads: bool,
    page: Option<Page>,
    work: impl Future<Output = Result<Response, ApiError>>,
) -> Result<Response, ApiError> {
    let answer = if reads {
        tokio::time::timeout(budget, work)
            .await
            .unwrap_or_else(|_| Err(took_too_long(budget, page.as_ref())))?
    } else {
        work.await?
    };
    // Escaping at most sextuples a byte: a body under a sixth of the limit cannot reach it,
    // and is not walked byte by byte on every request.
    let raw = match answer.body() {
        Body::Text(text) => text.len(),
        Body::Binary(bytes) => bytes.len(),
        _ => 0,
    };
    let weight = if raw.saturating_mul(6) > limits.response_payload {
        payload_bytes(answer.body())
    } else {
        raw
    };
    if weight > limits.response_payload {
        return Err(answer_too_large(
            weight,
            limits.response_payload,
            page.as_ref(),
        ));
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_body_weighs_what_its_json_string_does() {
        assert_eq!(payload_bytes(&Body::Text("ab".into())), 2);
        assert_eq!(payload_bytes(&Body::Text("{\"a\":\"\\\"\"}".into())), 16);
        assert_eq!(payload_bytes(&Body::Text("\n\u{1}".into())), 8);
        assert_eq!(payload_bytes(&Body::Binary(vec![0; 4])), 8);
    }

    #[test]
    fn the_advice_scales_the_page_to_fit() {
        let page = Page {
            name: "$top".into(),
            size: 10_000,
        };
        let error = answer_too_large(12_000_000, 6_000_000, Some(&page));
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("$top=4500 or fewer"),
            "{}",
            error.message
        );
        let error = took_too_long(Duration::from_secs(29), Some(&page));
        assert!(
            error.message.contains("$top=5000 or fewer"),
            "{}",
            error.message
        );
        let tiny = Page {
            name: "limit".into(),
            size: 1,
        };
        assert!(
            answer_too_large(10, 1, Some(&tiny))
                .message
                .contains("limit=1 ")
        );
    }

    #[tokio::test]
    async fn a_read_past_its_budget_is_cut_off_and_a_write_is_not() {
        let limits = crate::app::LAMBDA_LIMITS;
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(crate::http::json_response(StatusCode::OK, &"done"))
        };
        let budget = Duration::from_millis(5);
        let read = within(&limits, budget, true, None, slow()).await;
        assert_eq!(
            read.err().map(|error| error.status),
            Some(StatusCode::GATEWAY_TIMEOUT)
        );
        let write = within(&limits, budget, false, None, slow()).await;
        assert_eq!(
            write.ok().map(|answer| answer.status()),
            Some(StatusCode::OK)
        );
    }
}

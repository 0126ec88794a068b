//! custdata: one customer-data API that speaks MXO, Monetate, AIXON and Optimove.
//!
//! Everything lives here; the Lambda binary (`lambda/`) and the local server only build an
//! [`app::App`] and hand requests to [`http::dispatch`]. The features `embedded`, `template`
//! and `test-kit` add what only the local server, the CLI and the tests use.

pub mod admin;
pub mod aixon;
pub mod app;
pub mod clock;
pub mod customers;
pub mod domain;
pub mod files;
#[cfg(feature = "test-kit")]
pub mod fuzz;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod keys;
pub mod lambda;
pub mod lambda_limits;
pub mod logs;
pub mod metrics;
pub mod monetate;
pub mod mxo;
pub mod names;
pub mod optimove;
pub mod privacy;
pub mod ratelimit;
pub mod retry;
pub mod routes;
pub mod storage;
#[cfg(feature = "template")]
pub mod template;
pub mod tenancy;

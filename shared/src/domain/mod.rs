//! The vocabulary every layer shares: the tenant a request belongs to and the problems an
//! input can have. It imports nothing of custdata, so storage, the vendor surfaces and HTTP
//! can all depend on it without depending on each other.

mod problem;
mod tenant;

pub use problem::Problem;
pub use tenant::TenantId;

//! The MXO surfaces: OAuth2 token, Datastores API 1.0.0, Customer API 3.1.0.

pub mod auth;
pub mod customer;
pub mod datastores;
pub mod token;

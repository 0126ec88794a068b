//! Appier AIXON csv-upload (contract: `../shared/contracts/aixon.md`).
//!
//! So far: the column rules and the streamed CSV check ([`columns`]). The routes, the queued
//! imports through the blob store and the customer-store writes are issue 6's remaining work.

pub mod columns;

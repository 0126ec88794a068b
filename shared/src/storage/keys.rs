//! The key design of the one table. Every item's `pk` begins with its tenant id, except the
//! global credential index (how a request's credential finds its tenant before the tenant is
//! known), the tenant list and the sweep queue (whose entries name their tenant).
//!
//! | item type | pk | sk | written by | read by |
//! |---|---|---|---|---|
//! | tenant profile | `T#{tenant}` | `PROFILE` | admin CLI, local bootstrap | auth, admin |
//! | tenant list entry | `TENANTS` (global) | `{tenant}` | admin CLI | `tenant list` |
//! | credential of a tenant | `T#{tenant}` | `CRED#{kind}#{credential id}` | admin CLI | admin `credential list`, revoke |
//! | credential index | `CRED#{kind}#{lookup id}` (global) | `CRED` | admin CLI, token endpoint | authenticate (get by key) |
//! | datastore definition and pointers | `T#{tenant}#DSDEF` | `{apiName}` | datastore-create, -golive | every Datastores route |
//! | datastore reference | `T#{tenant}#DSREF#{apiName}` | `{referenceId}` | datastore-golive | golive, clear |
//! | datastore row | `T#{tenant}#DSROW#{apiName}#{version}#{shard 00-31}` | `{sha256(pk)[..16]}#{sha256(sk)[..16]}` (hex) | datastore-stage | reads, sweep |
//! | sweep work item | `SWEEP` (global) | `{due:012}#{tenant}#{apiName}#{version}` | golive, clear, delete, customer erasure | datastore-sweep |
//! | customer profile | `T#{tenant}#CUST#{tid}` | `PROFILE` | every surface | every surface |
//! | customer activity | `T#{tenant}#CUST#{tid}` | `ACT#{ms:013}#{id}` | customer-activity | structures, audit |
//! | identifier index | `T#{tenant}#CUSTID#{hmac(apiName, value)}` | `ID` | every surface | resolve a customer (batched gets) |
//! | suppression (tombstone of an erased identifier or tid) | `T#{tenant}#CUSTID#{hmac(apiName, value)}` or `…#{hmac(tid)}` | `ID` (attribute `suppressed`, no tid) | customer-delete | every ingestion (the index entry's own `NotExists` refuses it) |
//! | suppression catalogue (for the admin) | `T#{tenant}#SUPPRESSED` | `{hmac(apiName, value)}` | customer-delete | suppressions listing, lift |
//! | attribute catalog | `T#{tenant}#ATTRDEF` | `{name}` | attribute writers | structure validation |
//! | pull structure | `T#{tenant}#STRUCT` | `{structureApiName}` | admin route | customer-structure |
//! | erasure status | `T#{tenant}#ERASURE` | `{hmac(tid)}` | customer-delete | sweep, admin |
//! | AIXON data cell | `T#{tenant}#AIXCELL` | `CELL#{resourceId}` | aixon-upload | aixon-upload, aixon-import |
//! | AIXON import lease of a cell | `T#{tenant}#AIXCELL` | `LEASE#{resourceId}` (expires) | aixon-import | aixon-import |
//! | AIXON update (queued import) | `T#{tenant}#AIXUPD#{resourceId}` | `{updateId}` (time-ordered) | aixon-upload, aixon-import | status extension |
//! | AIXON row of a cell | `T#{tenant}#AIXROW#{resourceId}#{hmac(customuid)[..2]}` | `{hmac(customuid)}` | aixon-import (with the customer) | row extension, erasure |
//! | Monetate public key | `T#{tenant}#MONKEY` | `{keyId}` | admin, api-users extension | monetate-auth, every Data API call |
//! | Monetate schema (and the id sequence) | `T#{tenant}#MONSCHEMA` | `{name}` (`#SEQ`) | monetate-data | monetate-data |
//! | Monetate row | `T#{tenant}#MONROW#{schema}#{shard 0-f}` | `U{hmac(unique key)}` or `I{hmac(identifier)}#{rowId}` | monetate-data | spot check, lookup |
//! | Monetate file upload | `T#{tenant}#MONUPLOAD#{schema}` | `{uploadId}` (time-ordered, expires) | monetate-data | `GET /upload/{schema}/` |
//! | Monetate spot-check limiter | `T#{tenant}#MONRATE` | `{username}` (expires) | monetate-data | monetate-data |
//! | Monetate default catalog | `T#{tenant}#MONCATALOG` | `{account}` | monetate-data | monetate-data |
//! | attribute history of a customer | `T#{tenant}#CUST#{tid}` | `HIST#{ms:013}#{rand}` (expires after 400 days) | every attribute writer, with the profile | GetCustomerAttributeChangers |
//! | customers whose attributes changed on a day | `T#{tenant}#ATTRCHG#{YYYY-MM-DD}#{shard 00-63 of the tid}` | `{tid}` (expires) | every attribute writer, with the profile; erasure deletes them | GetCustomerAttributeChangers |
//! | listing order: next ordinal | `T#{tenant}#LISTORD` | `NEXT` | ordinals reserved in ranges by one atomic add, before the creating transactions | listing |
//! | listing entry of a customer | `T#{tenant}#LISTORD#{ordinal / 10,000:06}#{ordinal % 64:02}` | `{ordinal:012}` | customer creation; erasure deletes it | listing (Optimove paging) |
//! | listing holes per block | `T#{tenant}#LISTHOLES` | `{block:06}` | erasure; a creation that failed after reserving its ordinal | listing |
//! | Optimove user's live token | `T#{tenant}#OPTLOGIN` | `{username}` (expires; the token id and the token sealed under the user's password) | optimove-login | optimove-login |
//! | Optimove failed logins of a username | `OPTLOGINFAIL#{hmac(username)}` (global) | `failed#{window start}` (expires) | optimove-login | optimove-login |
//! | Optimove call counter | `T#{tenant}#OPTRATE` | `{client}#{window start}` (expires) | optimove-functions | optimove-functions |
//! | Optimove settings (rate limit) | `T#{tenant}#OPTSETTINGS` | `RATE` | admin | optimove-functions |
//! | Idempotency-Key claim and first answer | `T#{tenant}#IDEM#{hmac(key)}` | `ANSWER` (expires: 2 min while claimed, 24 h once answered) | every write route given the header | its retries |
//! | a long first answer's body, in parts | `T#{tenant}#IDEM#{hmac(key)}` | `BODY#{part:03}` (expires with the answer) | every write route given the header | its retries |
//!
//! Lookup ids of secrets are SHA-256 hashes, never the secret itself. Surfaces add their
//! own item types here, one row each, keeping the tenant prefix.

use crate::domain::TenantId;

use super::Key;

/// Partition of everything a tenant owns directly.
pub fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

/// A tenant-owned partition for one purpose, e.g. `T#acme#MXOTOKEN#...`.
pub fn tenant_scoped_pk(tenant: &TenantId, scope: &str) -> String {
    format!("T#{tenant}#{scope}")
}

pub fn tenant_profile(tenant: &TenantId) -> Key {
    Key::new(tenant_pk(tenant), "PROFILE")
}

/// The global list of tenants (small: one item per tenant).
pub const TENANT_LIST_PK: &str = "TENANTS";

pub fn tenant_list_entry(tenant: &TenantId) -> Key {
    Key::new(TENANT_LIST_PK, tenant.as_str())
}

/// A tenant's own record of one credential (for listing and revoking).
pub fn tenant_credential(tenant: &TenantId, kind: &str, credential_id: &str) -> Key {
    Key::new(
        tenant_pk(tenant),
        format!("{}{credential_id}", tenant_credential_kind_prefix(kind)),
    )
}

/// Prefix of [`tenant_credential`] sort keys.
pub const TENANT_CREDENTIAL_PREFIX: &str = "CRED#";

/// Prefix of the sort keys of a tenant's credentials of one kind.
pub fn tenant_credential_kind_prefix(kind: &str) -> String {
    format!("{TENANT_CREDENTIAL_PREFIX}{kind}#")
}

/// The global index entry that resolves a credential to its tenant.
pub fn credential_index(kind: &str, lookup_id: &str) -> Key {
    Key::new(format!("CRED#{kind}#{lookup_id}"), "CRED")
}

/// Datastores (MXO): a tenant's definitions, one item per datastore.
pub fn datastore_definitions_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "DSDEF")
}

pub fn datastore_definition(tenant: &TenantId, api_name: &str) -> Key {
    Key::new(datastore_definitions_pk(tenant), api_name)
}

/// The references (snapshots) of one datastore, by reference id.
pub fn datastore_references_pk(tenant: &TenantId, api_name: &str) -> String {
    tenant_scoped_pk(tenant, &format!("DSREF#{api_name}"))
}

pub fn datastore_reference(tenant: &TenantId, api_name: &str, reference: &str) -> Key {
    Key::new(datastore_references_pk(tenant, api_name), reference)
}

/// Rows of one table version are spread over this many partitions, so a bulk load never
/// makes one partition hot (DynamoDB: 1,000 writes/s per partition).
pub const DATASTORE_ROW_SHARDS: u32 = 32;

/// The shard a row's primary key lives in: stable across processes and releases.
pub fn datastore_row_shard(primary_key: &str) -> u32 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(primary_key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % DATASTORE_ROW_SHARDS
}

pub fn datastore_rows_pk(tenant: &TenantId, api_name: &str, version: &str, shard: u32) -> String {
    tenant_scoped_pk(tenant, &format!("DSROW#{api_name}#{version}#{shard:02}"))
}

/// 32 hex digits of a key's SHA-256: fixed length whatever the key holds (TEXT keys reach
/// 2,000 bytes of UTF-8; DynamoDB sort keys stop at 1,024), and never empty.
fn key_digest(value: &str) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(value.as_bytes());
    hex::encode(&digest[..16])
}

/// Sort-key prefix of every row with this primary key (the keys themselves are in the row).
pub fn datastore_row_prefix(primary_key: &str) -> String {
    format!("{}#", key_digest(primary_key))
}

pub fn datastore_row(
    tenant: &TenantId,
    api_name: &str,
    version: &str,
    primary_key: &str,
    secondary_key: &str,
) -> Key {
    Key::new(
        datastore_rows_pk(tenant, api_name, version, datastore_row_shard(primary_key)),
        format!(
            "{}{}",
            datastore_row_prefix(primary_key),
            key_digest(secondary_key)
        ),
    )
}

/// The item the health route reads: it never exists; the read succeeding is the answer.
pub const HEALTH_PK: &str = "HEALTH";

pub fn health_probe() -> Key {
    Key::new(HEALTH_PK, "probe")
}

/// Background removal of superseded table versions: a small global work queue, ordered by
/// the time an entry becomes due. Entries name their tenant; the sweep only deletes rows
/// under that tenant's prefix.
pub const SWEEP_PK: &str = "SWEEP";

pub fn sweep_entry(
    due_epoch_seconds: i64,
    tenant: &TenantId,
    api_name: &str,
    version: &str,
) -> Key {
    Key::new(
        SWEEP_PK,
        format!("{due_epoch_seconds:012}#{tenant}#{api_name}#{version}"),
    )
}

/// The customer store: one partition per customer holds the profile and the activity.
pub fn customer_pk(tenant: &TenantId, tid: &str) -> String {
    tenant_scoped_pk(tenant, &format!("CUST#{tid}"))
}

pub fn customer_profile(tenant: &TenantId, tid: &str) -> Key {
    Key::new(customer_pk(tenant, tid), "PROFILE")
}

/// Sort-key prefix of a customer's activities; they sort by time.
pub const ACTIVITY_PREFIX: &str = "ACT#";

pub fn customer_activity(tenant: &TenantId, tid: &str, timestamp_millis: i64, id: &str) -> Key {
    Key::new(
        customer_pk(tenant, tid),
        format!("{ACTIVITY_PREFIX}{timestamp_millis:013}#{id}"),
    )
}

/// An identifier's index entry, by the keyed hash of `apiName` and value: one get resolves
/// any identifier to its customer.
pub fn customer_identifier(tenant: &TenantId, identifier_hash: &str) -> Key {
    Key::new(
        tenant_scoped_pk(tenant, &format!("CUSTID#{identifier_hash}")),
        "ID",
    )
}

/// A tenant's suppressions (erased customers): keyed hashes only, never the identifiers.
pub fn suppressions_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "SUPPRESSED")
}

pub fn suppression(tenant: &TenantId, identifier_hash: &str) -> Key {
    Key::new(suppressions_pk(tenant), identifier_hash)
}

/// The attribute catalog: every customer attribute name a tenant has.
pub fn attribute_catalog_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "ATTRDEF")
}

pub fn attribute_definition(tenant: &TenantId, name: &str) -> Key {
    Key::new(attribute_catalog_pk(tenant), name)
}

/// MXO pull structures, by structureApiName.
pub fn structures_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "STRUCT")
}

pub fn structure(tenant: &TenantId, api_name: &str) -> Key {
    Key::new(structures_pk(tenant), api_name)
}

/// Erasures whose activity is still being removed in the background, by the keyed hash of
/// the tid; the admin reads their status.
pub fn erasure(tenant: &TenantId, tid_hash: &str) -> Key {
    Key::new(tenant_scoped_pk(tenant, "ERASURE"), tid_hash)
}

/// AIXON data cells and their import leases.
pub fn aixon_cells_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "AIXCELL")
}

/// Sort-key prefix of [`aixon_cell`] keys.
pub const AIXON_CELL_PREFIX: &str = "CELL#";

pub fn aixon_cell(tenant: &TenantId, resource_id: &str) -> Key {
    Key::new(
        aixon_cells_pk(tenant),
        format!("{AIXON_CELL_PREFIX}{resource_id}"),
    )
}

/// Held by the one import step working through a cell's queue; it expires, so a crashed
/// holder's work is taken over.
pub fn aixon_lease(tenant: &TenantId, resource_id: &str) -> Key {
    Key::new(aixon_cells_pk(tenant), format!("LEASE#{resource_id}"))
}

pub fn aixon_update(tenant: &TenantId, resource_id: &str, update_id: &str) -> Key {
    Key::new(
        tenant_scoped_pk(tenant, &format!("AIXUPD#{resource_id}")),
        update_id,
    )
}

/// A cell's row of one customer; rows spread over 256 partitions by their hash, so an
/// import never makes one partition hot.
pub fn aixon_row(tenant: &TenantId, resource_id: &str, customuid_hash: &str) -> Key {
    let shard = customuid_hash.get(..2).unwrap_or("00");
    Key::new(
        tenant_scoped_pk(tenant, &format!("AIXROW#{resource_id}#{shard}")),
        customuid_hash,
    )
}

/// The blob-store prefix of every queued AIXON body.
pub const AIXON_BLOB_PREFIX: &str = "aixon/";

/// The object holding one queued body; keys sort by update id, which sorts by time.
pub fn aixon_blob(tenant: &TenantId, resource_id: &str, update_id: &str) -> String {
    format!("{AIXON_BLOB_PREFIX}{tenant}/{resource_id}/{update_id}")
}

/// Monetate public keys of a tenant's API users, by key id.
pub fn monetate_keys_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "MONKEY")
}

pub fn monetate_key(tenant: &TenantId, key_id: &str) -> Key {
    Key::new(monetate_keys_pk(tenant), key_id)
}

/// Monetate schemas of a tenant, by name; `#SEQ` (never a name) hands out schema ids.
pub fn monetate_schemas_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "MONSCHEMA")
}

pub fn monetate_schema(tenant: &TenantId, name: &str) -> Key {
    Key::new(monetate_schemas_pk(tenant), name)
}

pub fn monetate_schema_sequence(tenant: &TenantId) -> Key {
    Key::new(monetate_schemas_pk(tenant), "#SEQ")
}

/// A Monetate row, in one of 16 partitions of its schema by the first digit of its hash.
/// `sk` is `U{hash}` (schemas with a unique key) or `I{hash}#{rowId}` (appended rows).
pub fn monetate_row(tenant: &TenantId, schema: &str, sk: String) -> Key {
    let shard = sk.get(1..2).unwrap_or("0").to_string();
    Key::new(monetate_rows_pk(tenant, schema, &shard), sk)
}

pub fn monetate_rows_pk(tenant: &TenantId, schema: &str, shard: &str) -> String {
    tenant_scoped_pk(tenant, &format!("MONROW#{schema}#{shard}"))
}

/// The file uploads of one schema; ids begin with the upload time, so they sort by it.
pub fn monetate_uploads_pk(tenant: &TenantId, schema: &str) -> String {
    tenant_scoped_pk(tenant, &format!("MONUPLOAD#{schema}"))
}

/// When an API user last made a rate-limited call.
pub fn monetate_rate(tenant: &TenantId, username: &str) -> Key {
    Key::new(tenant_scoped_pk(tenant, "MONRATE"), username)
}

pub fn monetate_catalogs_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "MONCATALOG")
}

/// An Optimove user's live token: its id and the token sealed under the password, so that
/// a correct login can hand it back (contract decision 8).
pub fn optimove_login(tenant: &TenantId, username: &str) -> Key {
    Key::new(tenant_scoped_pk(tenant, "OPTLOGIN"), username)
}

/// Failed Optimove logins of one username (keyed hash): global, because a failed login
/// has no tenant.
pub fn optimove_login_failures_pk(username_hash: &str) -> String {
    format!("OPTLOGINFAIL#{username_hash}")
}

/// Calls per Optimove client and window.
pub fn optimove_rate_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "OPTRATE")
}

/// A tenant's Optimove rate limit, when it is not the default.
pub fn optimove_rate_setting(tenant: &TenantId) -> Key {
    Key::new(tenant_scoped_pk(tenant, "OPTSETTINGS"), "RATE")
}

/// The listing order of customers (Optimove paging): ordinals handed out at creation, in
/// blocks of [`LIST_BLOCK`], with a count of the holes per block; within a block, ordinal
/// `n` lives in stripe `n % LIST_STRIPES`, so consecutive creations (a bulk import) spread
/// over that many partitions instead of heating one.
pub const LIST_BLOCK: i64 = 10_000;
pub const LIST_STRIPES: i64 = 64;

pub fn customer_list_counter(tenant: &TenantId) -> Key {
    Key::new(tenant_scoped_pk(tenant, "LISTORD"), "NEXT")
}

/// The partition of one stripe of one block of the listing.
pub fn customer_list_stripe_pk(tenant: &TenantId, block: i64, stripe: i64) -> String {
    tenant_scoped_pk(tenant, &format!("LISTORD#{block:06}#{stripe:02}"))
}

/// A sort key of the listing: ordinals sort as text because they are zero-padded.
pub fn customer_list_sk(ordinal: i64) -> String {
    format!("{ordinal:012}")
}

pub fn customer_list_entry(tenant: &TenantId, ordinal: i64) -> Key {
    Key::new(
        customer_list_stripe_pk(
            tenant,
            ordinal.div_euclid(LIST_BLOCK),
            ordinal.rem_euclid(LIST_STRIPES),
        ),
        customer_list_sk(ordinal),
    )
}

pub fn customer_list_holes_pk(tenant: &TenantId) -> String {
    tenant_scoped_pk(tenant, "LISTHOLES")
}

pub fn customer_list_holes(tenant: &TenantId, block: i64) -> Key {
    Key::new(customer_list_holes_pk(tenant), format!("{block:06}"))
}

/// Sort-key prefix of a customer's attribute history; entries sort by time.
pub const HISTORY_PREFIX: &str = "HIST#";

pub fn attribute_history(tenant: &TenantId, tid: &str, millis: i64, suffix: &str) -> Key {
    Key::new(
        customer_pk(tenant, tid),
        format!("{HISTORY_PREFIX}{millis:013}#{suffix}"),
    )
}

/// The per-day index of attribute changes is spread over this many partitions by tid, so
/// a day's bulk import does not heat one.
pub const ATTRIBUTE_CHANGE_SHARDS: u32 = 64;

/// The customers whose attributes changed on a day (UTC), by tid only: one shard of them.
pub fn attribute_changes_pk(tenant: &TenantId, day: &str, shard: u32) -> String {
    tenant_scoped_pk(tenant, &format!("ATTRCHG#{day}#{shard:02}"))
}

pub fn attribute_changes(tenant: &TenantId, day: &str, tid: &str) -> Key {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(tid.as_bytes());
    let shard = u32::from(digest[0]) % ATTRIBUTE_CHANGE_SHARDS;
    Key::new(attribute_changes_pk(tenant, day, shard), tid)
}

/// The partition of one `Idempotency-Key` of a tenant: its claim, its first answer and,
/// when that answer is long, the answer's body in parts. One partition per key, so no item
/// is written by every request of a tenant.
pub fn idempotency_pk(tenant: &TenantId, key_hash: &str) -> String {
    tenant_scoped_pk(tenant, &format!("IDEM#{key_hash}"))
}

/// The claim of an `Idempotency-Key`, then its first answer.
pub fn idempotency_record(tenant: &TenantId, key_hash: &str) -> Key {
    Key::new(idempotency_pk(tenant, key_hash), "ANSWER")
}

/// Sort-key prefix of the parts of a long first answer's body.
pub const IDEMPOTENCY_BODY_PREFIX: &str = "BODY#";

/// One part of a long first answer's body.
pub fn idempotency_body_part(tenant: &TenantId, key_hash: &str, part: usize) -> Key {
    Key::new(
        idempotency_pk(tenant, key_hash),
        format!("{IDEMPOTENCY_BODY_PREFIX}{part:03}"),
    )
}

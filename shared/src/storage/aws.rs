//! The production adapters: DynamoDB for items and S3 for blobs, through the official SDK.
//!
//! Clients are built once per process ([`AwsStores::from_env`]) and honour
//! `AWS_ENDPOINT_URL` (LocalStack, moto) with path-style S3 addressing for emulators.
//! `AttributeValue` and S3 types never leave this module.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    ReturnValue, TransactWriteItem, WriteRequest as DynamoWrite,
};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use serde_json::{Number, Value};
use tokio::io::AsyncReadExt;

use super::blob::validate_key;
use super::{
    BlobError, BlobMeta, BlobReader, BlobStore, Comparison, Condition, CursorSigner, EXPIRES_AT,
    Item, ItemTable, Key, Page, PresignedUpload, Query, SortKeyRange, StorageError, TransactAction,
    Update, WriteRequest, validate_chunk, validate_get_chunk, validate_item, validate_query,
    validate_transaction,
};
use crate::clock::SharedClock;

/// S3 multipart part size: the memory one streamed upload holds at a time (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Both AWS adapters, sharing one SDK configuration.
pub struct AwsStores {
    pub table: DynamoTable,
    pub blobs: S3Blobs,
}

impl AwsStores {
    /// Builds the SDK clients once from a configuration loaded from the environment (region,
    /// credentials, endpoint); path-style S3 when an emulator's endpoint is set.
    pub fn from_env(
        config: &aws_config::SdkConfig,
        table_name: &str,
        bucket: &str,
        clock: SharedClock,
        cursors: CursorSigner,
    ) -> AwsStores {
        let emulated = std::env::var_os("AWS_ENDPOINT_URL").is_some()
            || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
        AwsStores::from_config(config, emulated, table_name, bucket, clock, cursors)
    }

    /// Builds the clients from a loaded SDK configuration; `path_style` for emulators.
    pub fn from_config(
        config: &aws_config::SdkConfig,
        path_style: bool,
        table_name: &str,
        bucket: &str,
        clock: SharedClock,
        cursors: CursorSigner,
    ) -> AwsStores {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build();
        AwsStores {
            table: DynamoTable {
                client: aws_sdk_dynamodb::Client::new(config),
                table: table_name.to_string(),
                clock,
                cursors,
            },
            blobs: S3Blobs {
                client: aws_sdk_s3::Client::from_conf(s3_config),
                bucket: bucket.to_string(),
            },
        }
    }
}

impl AwsStores {
    /// Creates the table and the bucket as template.yaml declares them, on an emulator or a
    /// fresh account; existing ones are left as they are. Returns what it did, for the log.
    #[cfg(feature = "template")]
    pub async fn bootstrap(
        &self,
        table: &crate::template::TableDef,
    ) -> Result<Vec<String>, String> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
            TimeToLiveSpecification,
        };
        let mut done = Vec::new();
        let dynamo = &self.table.client;
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let created = dynamo
            .create_table()
            .table_name(&self.table.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(&table.partition_key, KeyType::Hash).map_err(|e| e.to_string())?)
            .key_schema(key(&table.sort_key, KeyType::Range).map_err(|e| e.to_string())?)
            .attribute_definitions(attribute(&table.partition_key).map_err(|e| e.to_string())?)
            .attribute_definitions(attribute(&table.sort_key).map_err(|e| e.to_string())?)
            .send()
            .await;
        match created {
            Ok(_) => done.push(format!("created table {}", self.table.table)),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                done.push(format!("table {} exists", self.table.table))
            }
            Err(error) => {
                return Err(aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string());
            }
        }
        if let Some(ttl) = &table.ttl_attribute {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(ttl)
                .enabled(true)
                .build()
                .map_err(|e| e.to_string())?;
            // Enabling TTL twice is refused by DynamoDB; that is the state we want anyway.
            if dynamo
                .update_time_to_live()
                .table_name(&self.table.table)
                .time_to_live_specification(spec)
                .send()
                .await
                .is_ok()
            {
                done.push(format!("enabled TTL on {ttl}"));
            }
        }
        let bucket = self
            .blobs
            .client
            .create_bucket()
            .bucket(&self.blobs.bucket)
            .send()
            .await;
        match bucket {
            Ok(_) => done.push(format!("created bucket {}", self.blobs.bucket)),
            Err(error)
                if error.as_service_error().is_some_and(|e| {
                    e.is_bucket_already_owned_by_you() || e.is_bucket_already_exists()
                }) =>
            {
                done.push(format!("bucket {} exists", self.blobs.bucket))
            }
            Err(error) => return Err(aws_sdk_s3::error::DisplayErrorContext(error).to_string()),
        }
        Ok(done)
    }
}

fn fault(error: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(error.to_string())
}

/// Turns an SDK error into a readable fault, keeping the service's own message.
/// Throttling and conflicts with a concurrent transaction become `Contention`, which callers
/// retry; everything else is `Unavailable`.
fn sdk_fault<E, R>(error: aws_sdk_dynamodb::error::SdkError<E, R>) -> StorageError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    let code = error
        .as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string);
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string();
    match code.as_deref() {
        Some(
            "TransactionConflictException"
            | "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded",
        ) => StorageError::Contention(text),
        _ => StorageError::Unavailable(text),
    }
}

fn to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(to_attribute).collect()),
        Value::Object(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| (k.clone(), to_attribute(v)))
                .collect(),
        ),
    }
}

fn number(text: &str) -> Value {
    if let Ok(integer) = text.parse::<i64>() {
        return Value::from(integer);
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map_or_else(|| Value::String(text.to_string()), Value::Number)
}

fn from_attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(text) => number(text),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::L(values) => Value::Array(values.iter().map(from_attribute).collect()),
        AttributeValue::M(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), from_attribute(v)))
                .collect(),
        ),
        AttributeValue::Ss(values) => Value::from(values.clone()),
        AttributeValue::Ns(values) => Value::Array(values.iter().map(|n| number(n)).collect()),
        _ => Value::Null,
    }
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(key.pk.clone())),
        ("sk".to_string(), AttributeValue::S(key.sk.clone())),
    ])
}

fn item_map(item: &Item) -> HashMap<String, AttributeValue> {
    let mut map = key_map(&Key::from(item));
    if let Some(at) = item.expires_at {
        map.insert(EXPIRES_AT.to_string(), AttributeValue::N(at.to_string()));
    }
    for (name, value) in &item.attrs {
        map.insert(name.clone(), to_attribute(value));
    }
    map
}

fn item_from(map: &HashMap<String, AttributeValue>) -> Result<Item, StorageError> {
    let text = |name: &str| match map.get(name) {
        Some(AttributeValue::S(text)) => Ok(text.clone()),
        _ => Err(fault(format!("stored item lacks a string {name}"))),
    };
    let mut item = Item::new(text("pk")?, text("sk")?);
    for (name, value) in map {
        match name.as_str() {
            "pk" | "sk" => {}
            EXPIRES_AT => item.expires_at = from_attribute(value).as_i64(),
            _ => {
                item.attrs.insert(name.clone(), from_attribute(value));
            }
        }
    }
    Ok(item)
}

/// Builds one expression's placeholder maps (`#n0`, `:v0`) alongside its text.
#[derive(Default)]
struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Placeholders {
    fn name(&mut self, name: &str) -> String {
        if let Some((placeholder, _)) = self
            .names
            .iter()
            .find(|(_, existing)| existing.as_str() == name)
        {
            return placeholder.clone();
        }
        let placeholder = format!("#n{}", self.names.len());
        self.names.insert(placeholder.clone(), name.to_string());
        placeholder
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// The predicate "the item exists and has not expired", which every condition is relative to.
    fn live(&mut self, now: i64) -> String {
        let pk = self.name("pk");
        let expires = self.name(EXPIRES_AT);
        let now = self.value(AttributeValue::N(now.to_string()));
        format!(
            "(attribute_exists({pk}) AND (attribute_not_exists({expires}) OR {expires} > {now}))"
        )
    }

    /// An expression that always holds (DynamoDB has no literal `true`).
    fn always(&mut self) -> String {
        let pk = self.name("pk");
        format!("(attribute_exists({pk}) OR attribute_not_exists({pk}))")
    }

    /// Translates a condition; `None` for [`Condition::Always`].
    fn condition(&mut self, condition: &Condition, now: i64) -> Option<String> {
        let text = match condition {
            Condition::Always => return None,
            Condition::Exists => self.live(now),
            Condition::NotExists => format!("(NOT {})", self.live(now)),
            Condition::Compare(name, op, expected) => {
                let live = self.live(now);
                let name = self.name(name);
                let value = self.value(to_attribute(expected));
                let comparison = match op {
                    // DynamoDB's <> also holds between values of different types; ours does not
                    // (see condition.rs), so the type is pinned.
                    Comparison::Ne => {
                        let kind =
                            self.value(AttributeValue::S(attribute_type(&to_attribute(expected))));
                        format!("({name} <> {value} AND attribute_type({name}, {kind}))")
                    }
                    other => format!("{name} {} {value}", other.operator()),
                };
                format!("({live} AND {comparison})")
            }
            Condition::HasAttribute(name) => {
                let live = self.live(now);
                let name = self.name(name);
                format!("({live} AND attribute_exists({name}))")
            }
            Condition::LacksAttribute(name) => {
                let live = self.live(now);
                let name = self.name(name);
                format!("((NOT {live}) OR attribute_not_exists({name}))")
            }
            Condition::All(conditions) | Condition::Any(conditions) => {
                let all = matches!(condition, Condition::All(_));
                let parts: Vec<String> = conditions
                    .iter()
                    .map(|c| self.condition(c, now).unwrap_or_else(|| self.always()))
                    .collect();
                match parts.is_empty() {
                    // An empty All holds and an empty Any does not, as in condition.rs.
                    true if all => self.always(),
                    true => format!("(NOT {})", self.always()),
                    false => format!("({})", parts.join(if all { " AND " } else { " OR " })),
                }
            }
        };
        Some(text)
    }

    /// Translates an update into an UpdateExpression; `None` when it changes nothing.
    fn update(&mut self, update: &Update) -> Option<String> {
        let mut set = Vec::new();
        for (name, value) in &update.set {
            let name = self.name(name);
            let value = self.value(to_attribute(value));
            set.push(format!("{name} = {value}"));
        }
        if let Some(at) = update.expires_at {
            let name = self.name(EXPIRES_AT);
            let value = self.value(AttributeValue::N(at.to_string()));
            set.push(format!("{name} = {value}"));
        }
        let add: Vec<String> = update
            .add
            .iter()
            .map(|(name, delta)| {
                let name = self.name(name);
                let value = self.value(AttributeValue::N(delta.to_string()));
                format!("{name} {value}")
            })
            .collect();
        let remove: Vec<String> = update.remove.iter().map(|name| self.name(name)).collect();
        let mut clauses = Vec::new();
        if !set.is_empty() {
            clauses.push(format!("SET {}", set.join(", ")));
        }
        if !add.is_empty() {
            clauses.push(format!("ADD {}", add.join(", ")));
        }
        if !remove.is_empty() {
            clauses.push(format!("REMOVE {}", remove.join(", ")));
        }
        (!clauses.is_empty()).then(|| clauses.join(" "))
    }
}

/// The DynamoDB type code of a comparison's value.
fn attribute_type(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::L(_) => "L",
        AttributeValue::M(_) => "M",
        _ => "NULL",
    }
    .to_string()
}

/// The item table on one DynamoDB table (string `pk`, string `sk`, TTL on `expires_at`).
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    clock: SharedClock,
    cursors: CursorSigner,
}

impl DynamoTable {
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    fn condition_failed(key: &Key) -> StorageError {
        StorageError::ConditionFailed {
            pk: key.pk.clone(),
            sk: key.sk.clone(),
        }
    }
}

#[async_trait]
impl ItemTable for DynamoTable {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StorageError> {
        super::check_key(key)?;
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_fault)?;
        let now = self.clock.now_seconds();
        match output.item() {
            Some(map) => Ok(Some(item_from(map)?).filter(|item: &Item| !item.is_expired(now))),
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StorageError> {
        validate_item(&item)?;
        let mut placeholders = Placeholders::default();
        let expression = placeholders.condition(&condition, self.clock.now_seconds());
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_map(&item)))
            .set_condition_expression(expression)
            .set_expression_attribute_names(placeholders.names())
            .set_expression_attribute_values(placeholders.values())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Self::condition_failed(&Key::from(&item)))
            }
            Err(error) => Err(sdk_fault(error)),
        }
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Condition,
    ) -> Result<Item, StorageError> {
        super::check_key(key)?;
        let mut placeholders = Placeholders::default();
        let condition_expression = placeholders.condition(&condition, self.clock.now_seconds());
        let update_expression = placeholders.update(&update);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .set_update_expression(update_expression)
            .set_condition_expression(condition_expression)
            .set_expression_attribute_names(placeholders.names())
            .set_expression_attribute_values(placeholders.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes() {
                Some(map) => item_from(map),
                None => Ok(Item::new(key.pk.clone(), key.sk.clone())),
            },
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Self::condition_failed(key))
            }
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.meta().code() == Some("ValidationException")) =>
            {
                Err(StorageError::InvalidRequest(
                    aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
                ))
            }
            Err(error) => Err(sdk_fault(error)),
        }
    }

    async fn delete(&self, key: &Key, condition: Condition) -> Result<Option<Item>, StorageError> {
        super::check_key(key)?;
        let now = self.clock.now_seconds();
        let mut placeholders = Placeholders::default();
        let expression = placeholders.condition(&condition, now);
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_map(key)))
            .set_condition_expression(expression)
            .set_expression_attribute_names(placeholders.names())
            .set_expression_attribute_values(placeholders.values())
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => match output.attributes() {
                Some(map) => Ok(Some(item_from(map)?).filter(|item: &Item| !item.is_expired(now))),
                None => Ok(None),
            },
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Self::condition_failed(key))
            }
            Err(error) => Err(sdk_fault(error)),
        }
    }

    async fn query(&self, query: Query) -> Result<Page, StorageError> {
        validate_query(&query)?;
        let after = self.cursors.decode(&query, self.clock.now_seconds())?;
        let now = self.clock.now_seconds();
        let mut placeholders = Placeholders::default();
        let pk_name = placeholders.name("pk");
        let pk_value = placeholders.value(AttributeValue::S(query.pk.clone()));
        let mut key_condition = format!("{pk_name} = {pk_value}");
        match &query.range {
            SortKeyRange::All => {}
            SortKeyRange::Prefix(prefix) => {
                let sk = placeholders.name("sk");
                let value = placeholders.value(AttributeValue::S(prefix.clone()));
                key_condition.push_str(&format!(" AND begins_with({sk}, {value})"));
            }
            SortKeyRange::Between(start, end) => {
                let sk = placeholders.name("sk");
                let start = placeholders.value(AttributeValue::S(start.clone()));
                let end = placeholders.value(AttributeValue::S(end.clone()));
                key_condition.push_str(&format!(" AND {sk} BETWEEN {start} AND {end}"));
            }
        }
        let mut start_key = after.map(|sk| key_map(&Key::new(query.pk.clone(), sk)));
        let mut items = Vec::with_capacity(query.limit.min(128));
        let mut more = false;
        // One item past the limit tells whether another page exists, as the embedded adapter does.
        loop {
            let wanted = (query.limit + 1 - items.len()) as i32;
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .set_expression_attribute_names(placeholders.names())
                .set_expression_attribute_values(placeholders.values())
                .scan_index_forward(!query.descending)
                .consistent_read(true)
                .limit(wanted)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(sdk_fault)?;
            for map in output.items() {
                let item = item_from(map)?;
                if item.is_expired(now) {
                    continue;
                }
                if items.len() == query.limit {
                    more = true;
                    break;
                }
                items.push(item);
            }
            match output.last_evaluated_key() {
                Some(last) if !more => start_key = Some(last.clone()),
                _ => break,
            }
        }
        let next = match (more, items.last()) {
            (true, Some(last)) => Some(self.cursors.encode(&query, &last.sk)),
            _ => None,
        };
        Ok(Page { items, next })
    }

    async fn write_chunk(
        &self,
        chunk: Vec<WriteRequest>,
    ) -> Result<Vec<WriteRequest>, StorageError> {
        validate_chunk(&chunk)?;
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        let requests = chunk
            .iter()
            .map(|request| {
                let built = match request {
                    WriteRequest::Put(item) => DynamoWrite::builder().put_request(
                        PutRequest::builder()
                            .set_item(Some(item_map(item)))
                            .build()
                            .map_err(fault)?,
                    ),
                    WriteRequest::Delete(key) => DynamoWrite::builder().delete_request(
                        DeleteRequest::builder()
                            .set_key(Some(key_map(key)))
                            .build()
                            .map_err(fault)?,
                    ),
                };
                Ok(built.build())
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let output = self
            .client
            .batch_write_item()
            .request_items(&self.table, requests)
            .send()
            .await;
        let output = match output.map_err(sdk_fault) {
            Ok(output) => output,
            // A throttled batch is left whole: the caller backs off and sends it again.
            Err(StorageError::Contention(_)) => return Ok(chunk),
            Err(other) => return Err(other),
        };
        let unprocessed = output
            .unprocessed_items()
            .and_then(|by_table| by_table.get(&self.table));
        let Some(unprocessed) = unprocessed.filter(|requests| !requests.is_empty()) else {
            return Ok(Vec::new());
        };
        // Hand back our own requests for the keys DynamoDB left unprocessed.
        let left: std::collections::HashSet<Key> = unprocessed
            .iter()
            .filter_map(|request| {
                let map = request
                    .put_request()
                    .map(|put| put.item())
                    .or_else(|| request.delete_request().map(|delete| delete.key()))?;
                item_from(map).ok().map(|item| Key::from(&item))
            })
            .collect();
        Ok(chunk
            .into_iter()
            .filter(|request| left.contains(&request.key()))
            .collect())
    }

    async fn get_chunk(&self, keys: Vec<Key>) -> Result<(Vec<Item>, Vec<Key>), StorageError> {
        validate_get_chunk(&keys)?;
        if keys.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(key_map).collect()))
            .consistent_read(true)
            .build()
            .map_err(fault)?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await;
        let output = match output.map_err(sdk_fault) {
            Ok(output) => output,
            // A throttled read is left whole: the caller backs off and asks again.
            Err(StorageError::Contention(_)) => return Ok((Vec::new(), keys)),
            Err(other) => return Err(other),
        };
        let now = self.clock.now_seconds();
        let found = output
            .responses()
            .and_then(|by_table| by_table.get(&self.table))
            .map(|maps| maps.iter().map(item_from).collect::<Result<Vec<_>, _>>())
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .filter(|item| !item.is_expired(now))
            .collect();
        let unprocessed = output
            .unprocessed_keys()
            .and_then(|by_table| by_table.get(&self.table))
            .map(|left| {
                left.keys()
                    .iter()
                    .filter_map(|map| item_from(map).ok().map(|item| Key::from(&item)))
                    .collect()
            })
            .unwrap_or_default();
        Ok((found, unprocessed))
    }

    async fn transact(&self, actions: Vec<TransactAction>) -> Result<(), StorageError> {
        validate_transaction(&actions)?;
        let now = self.clock.now_seconds();
        let mut items = Vec::with_capacity(actions.len());
        for action in &actions {
            let mut placeholders = Placeholders::default();
            let built = match action {
                TransactAction::Put { item, condition } => {
                    let expression = placeholders.condition(condition, now);
                    TransactWriteItem::builder().put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item_map(item)))
                            .set_condition_expression(expression)
                            .set_expression_attribute_names(placeholders.names())
                            .set_expression_attribute_values(placeholders.values())
                            .build()
                            .map_err(fault)?,
                    )
                }
                TransactAction::Update {
                    key,
                    update,
                    condition,
                } => {
                    let condition_expression = placeholders.condition(condition, now);
                    // TransactWriteItems needs an UpdateExpression; re-setting pk changes nothing.
                    let update_expression = placeholders.update(update).unwrap_or_else(|| {
                        let pk = placeholders.name("pk");
                        let value = placeholders.value(AttributeValue::S(key.pk.clone()));
                        format!("SET {pk} = {value}")
                    });
                    TransactWriteItem::builder().update(
                        aws_sdk_dynamodb::types::Update::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(key)))
                            .update_expression(update_expression)
                            .set_condition_expression(condition_expression)
                            .set_expression_attribute_names(placeholders.names())
                            .set_expression_attribute_values(placeholders.values())
                            .build()
                            .map_err(fault)?,
                    )
                }
                TransactAction::Delete { key, condition } => {
                    let expression = placeholders.condition(condition, now);
                    TransactWriteItem::builder().delete(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(key)))
                            .set_condition_expression(expression)
                            .set_expression_attribute_names(placeholders.names())
                            .set_expression_attribute_values(placeholders.values())
                            .build()
                            .map_err(fault)?,
                    )
                }
                TransactAction::Check { key, condition } => {
                    // A ConditionCheck needs an expression; Always becomes one that holds.
                    let expression = placeholders
                        .condition(condition, now)
                        .unwrap_or_else(|| placeholders.always());
                    TransactWriteItem::builder().condition_check(
                        ConditionCheck::builder()
                            .table_name(&self.table)
                            .set_key(Some(key_map(key)))
                            .condition_expression(expression)
                            .set_expression_attribute_names(placeholders.names())
                            .set_expression_attribute_values(placeholders.values())
                            .build()
                            .map_err(fault)?,
                    )
                }
            };
            items.push(built.build());
        }
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => {
                let failing = error
                    .as_service_error()
                    .and_then(|e| match e {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(cancelled) => Some(cancelled),
                        _ => None,
                    })
                    .map(|cancelled| cancelled.cancellation_reasons().to_vec())
                    .unwrap_or_default();
                let failed_condition = failing
                    .iter()
                    .position(|reason| reason.code() == Some("ConditionalCheckFailed"));
                let conflict = failing.iter().any(|reason| {
                    matches!(
                        reason.code(),
                        Some("TransactionConflict" | "ThrottlingError")
                    )
                });
                match failed_condition {
                    Some(index) => Err(StorageError::TransactionCanceled { index }),
                    None if conflict => Err(StorageError::Contention(
                        aws_sdk_dynamodb::error::DisplayErrorContext(error).to_string(),
                    )),
                    None => Err(sdk_fault(error)),
                }
            }
        }
    }

    async fn scan_prefix(&self, pk_prefix: &str) -> Result<Vec<Item>, StorageError> {
        let now = self.clock.now_seconds();
        let mut found = Vec::new();
        let mut start_key = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(#pk, :prefix)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":prefix", AttributeValue::S(pk_prefix.to_string()))
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(sdk_fault)?;
            for map in output.items() {
                let item = item_from(map)?;
                if !item.is_expired(now) {
                    found.push(item);
                }
            }
            match output.last_evaluated_key() {
                Some(last) => start_key = Some(last.clone()),
                None => return Ok(found),
            }
        }
    }
}

/// The blob store on one S3 bucket.
pub struct S3Blobs {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn s3_fault<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: aws_sdk_s3::error::SdkError<E, R>,
) -> BlobError {
    BlobError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(error).to_string())
}

/// Reads up to `PART_SIZE` bytes; fewer only at the end of the body.
async fn read_part(body: &mut BlobReader) -> Result<Vec<u8>, BlobError> {
    let mut part = Vec::with_capacity(PART_SIZE);
    while part.len() < PART_SIZE {
        let read = body
            .as_mut()
            .take((PART_SIZE - part.len()) as u64)
            .read_to_end(&mut part)
            .await
            .map_err(BlobError::Body)?;
        if read == 0 {
            break;
        }
    }
    Ok(part)
}

impl S3Blobs {
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_multipart(
        &self,
        key: &str,
        content_type: &str,
        first: Vec<u8>,
        body: &mut BlobReader,
    ) -> Result<u64, BlobError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .send()
            .await
            .map_err(s3_fault)?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| BlobError::Unavailable("S3 returned no upload id".into()))?
            .to_string();
        let uploaded = self.upload_parts(key, &upload_id, first, body).await;
        match uploaded {
            Ok((parts, total)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(s3_fault)?;
                Ok(total)
            }
            Err(error) => {
                // Leaves no half-uploaded object behind (the bucket's lifecycle rule is the backstop).
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(error)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        first: Vec<u8>,
        body: &mut BlobReader,
    ) -> Result<(Vec<CompletedPart>, u64), BlobError> {
        let mut parts = Vec::new();
        let mut total = 0u64;
        let mut part = first;
        let mut number = 1;
        while !part.is_empty() {
            total += part.len() as u64;
            let uploaded = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(s3_fault)?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(uploaded.e_tag().map(str::to_string))
                    .build(),
            );
            number += 1;
            part = read_part(body).await?;
        }
        Ok((parts, total))
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(
        &self,
        key: &str,
        content_type: &str,
        mut body: BlobReader,
    ) -> Result<u64, BlobError> {
        validate_key(key)?;
        let first = read_part(&mut body).await?;
        if first.len() < PART_SIZE {
            let size = first.len() as u64;
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(first))
                .send()
                .await
                .map_err(s3_fault)?;
            return Ok(size);
        }
        self.put_multipart(key, content_type, first, &mut body)
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<(BlobMeta, BlobReader)>, BlobError> {
        validate_key(key)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => {
                let size = output.content_length().unwrap_or_default().max(0) as u64;
                let reader: BlobReader = Box::pin(output.body.into_async_read());
                Ok(Some((
                    BlobMeta {
                        key: key.to_string(),
                        size,
                    },
                    reader,
                )))
            }
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(error) => Err(s3_fault(error)),
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<PresignedUpload, BlobError> {
        validate_key(key)?;
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        let start = config.start_time();
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // Single-use: S3 refuses (412) a PUT when an object of the key exists.
            .if_none_match("*")
            .presigned(config)
            .await
            .map_err(s3_fault)?;
        let expires_at = start
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since.as_secs() as i64 + expires_in.as_secs() as i64)
            .unwrap_or_default();
        Ok(PresignedUpload {
            url: request.uri().to_string(),
            method: request.method().to_string(),
            headers: request
                .headers()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
            expires_at,
        })
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(s3_fault)?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>, BlobError> {
        let mut found = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(s3_fault)?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    found.push(BlobMeta {
                        key: key.to_string(),
                        size: object.size().unwrap_or_default().max(0) as u64,
                    });
                }
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_relative_to_the_live_item() {
        let mut placeholders = Placeholders::default();
        let text = placeholders
            .condition(&Condition::NotExists, 100)
            .expect("an expression");
        assert!(text.starts_with("(NOT (attribute_exists("), "{text}");
        assert_eq!(
            placeholders.values().expect("values").get(":v0"),
            Some(&AttributeValue::N("100".into()))
        );
        assert_eq!(
            Placeholders::default().condition(&Condition::Always, 0),
            None
        );
    }

    #[test]
    fn an_update_sets_adds_and_removes_in_one_expression() {
        let mut placeholders = Placeholders::default();
        let update = Update::default()
            .set("a", "x")
            .add("n", 2)
            .remove("old")
            .expiring_at(9);
        let text = placeholders.update(&update).expect("an expression");
        assert_eq!(text, "SET #n0 = :v0, #n1 = :v1 ADD #n2 :v2 REMOVE #n3");
    }

    #[test]
    fn numbers_round_trip_as_integers_when_they_are() {
        assert_eq!(
            from_attribute(&to_attribute(&Value::from(42))),
            Value::from(42)
        );
        assert_eq!(
            from_attribute(&to_attribute(&Value::from(1.5))),
            Value::from(1.5)
        );
    }
}

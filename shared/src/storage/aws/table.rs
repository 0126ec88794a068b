//! The item table on DynamoDB.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, KeysAndAttributes, Put, PutRequest,
    ReturnValue, TransactWriteItem, WriteRequest as DynamoWrite,
};

use super::attributes::{item_from, item_map, key_map};
use super::expressions::Placeholders;
use super::{fault, sdk_fault};
use crate::clock::SharedClock;
use crate::storage::{
    Condition, CursorSigner, Item, ItemTable, Key, Page, Query, SortKeyRange, StorageError,
    TransactAction, Update, WriteRequest, validate_chunk, validate_get_chunk, validate_item,
    validate_query, validate_transaction,
};

/// The item table on one DynamoDB table (string `pk`, string `sk`, TTL on `expires_at`).
pub struct DynamoTable {
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
    pub(super) clock: SharedClock,
    pub(super) cursors: CursorSigner,
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
        crate::storage::check_key(key)?;
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
        crate::storage::check_key(key)?;
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
        crate::storage::check_key(key)?;
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

    #[cfg(feature = "test-kit")]
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

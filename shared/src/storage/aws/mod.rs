//! The production adapters: DynamoDB for items and S3 for blobs, through the official SDK.
//!
//! Clients are built once per process ([`AwsStores::from_env`]) and honour
//! `AWS_ENDPOINT_URL` (LocalStack, moto) with path-style S3 addressing for emulators.
//! `AttributeValue` and S3 types never leave this module: [`attributes`] converts items,
//! [`expressions`] writes conditions and updates, [`table`] is the item table on DynamoDB
//! and [`blobs`] the blob store on S3.

mod attributes;
mod blobs;
mod expressions;
mod table;

pub use blobs::S3Blobs;
pub use table::DynamoTable;

use crate::clock::SharedClock;
use crate::storage::{CursorSigner, StorageError};

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

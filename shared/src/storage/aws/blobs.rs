//! The blob store on S3: streamed multipart uploads, ranged reads, presigned uploads.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::io::AsyncReadExt;

use crate::storage::blob::validate_key;
use crate::storage::{BlobError, BlobMeta, BlobReader, BlobStore, PresignedUpload};

/// S3 multipart part size: the memory one streamed upload holds at a time (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// The blob store on one S3 bucket.
pub struct S3Blobs {
    pub(super) client: aws_sdk_s3::Client,
    pub(super) bucket: String,
}

pub(super) fn s3_fault<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: aws_sdk_s3::error::SdkError<E, R>,
) -> BlobError {
    BlobError::Unavailable(aws_sdk_s3::error::DisplayErrorContext(error).to_string())
}

/// Reads up to `PART_SIZE` bytes; fewer only at the end of the body.
pub(super) async fn read_part(body: &mut BlobReader) -> Result<Vec<u8>, BlobError> {
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

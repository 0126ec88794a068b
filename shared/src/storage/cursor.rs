//! Opaque, tamper-checked query cursors shared by both adapters.
//!
//! A cursor names the last sort key of a page and is bound to the query it came from
//! (partition, range, direction) by an HMAC-SHA256 over those fields with the deployment's
//! signing secret. A forged or altered cursor, or one replayed against another partition
//! (another tenant's, say), is refused with [`StorageError::InvalidCursor`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{Query, SortKeyRange, StorageError};

/// Signs and checks cursors with one secret.
#[derive(Clone)]
pub struct CursorSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for CursorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorSigner(..)")
    }
}

#[derive(Serialize, Deserialize)]
struct CursorBody {
    /// The last sort key returned.
    after: String,
}

impl CursorSigner {
    pub fn new(secret: &[u8]) -> Self {
        CursorSigner {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, query: &Query, body: &str) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        let range = match &query.range {
            SortKeyRange::All => "all".to_string(),
            SortKeyRange::Prefix(prefix) => format!("prefix\u{0}{prefix}"),
            SortKeyRange::Between(start, end) => format!("between\u{0}{start}\u{0}{end}"),
        };
        for part in [
            query.pk.as_str(),
            range.as_str(),
            if query.descending { "desc" } else { "asc" },
            body,
        ] {
            mac.update(part.as_bytes());
            mac.update(&[0]);
        }
        mac
    }

    /// The cursor that continues `query` after the sort key `last_sk`.
    pub fn encode(&self, query: &Query, last_sk: &str) -> String {
        let body = serde_json::to_string(&CursorBody {
            after: last_sk.to_string(),
        })
        .unwrap_or_default();
        let tag = self.mac(query, &body).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The sort key after which `query` continues, if its cursor is genuine.
    pub fn decode(&self, query: &Query) -> Result<Option<String>, StorageError> {
        let Some(cursor) = query.cursor.as_deref() else {
            return Ok(None);
        };
        let (body, tag) = cursor.split_once('.').ok_or(StorageError::InvalidCursor)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StorageError::InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StorageError::InvalidCursor)?;
        let body = String::from_utf8(body).map_err(|_| StorageError::InvalidCursor)?;
        self.mac(query, &body)
            .verify_slice(&tag)
            .map_err(|_| StorageError::InvalidCursor)?;
        let parsed: CursorBody =
            serde_json::from_str(&body).map_err(|_| StorageError::InvalidCursor)?;
        Ok(Some(parsed.after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_bound_to_its_partition_and_secret() {
        let signer = CursorSigner::new(b"secret-one");
        let query = Query::partition("tenantA#x").prefix("row#");
        let cursor = signer.encode(&query, "row#5");
        assert_eq!(
            signer.decode(&query.clone().after(Some(cursor.clone()))),
            Ok(Some("row#5".into()))
        );

        let other_partition = Query::partition("tenantB#x")
            .prefix("row#")
            .after(Some(cursor.clone()));
        assert_eq!(
            signer.decode(&other_partition),
            Err(StorageError::InvalidCursor)
        );
        let other_secret = CursorSigner::new(b"secret-two");
        assert_eq!(
            other_secret.decode(&query.clone().after(Some(cursor))),
            Err(StorageError::InvalidCursor)
        );
        assert_eq!(
            signer.decode(&query.after(Some("garbage".into()))),
            Err(StorageError::InvalidCursor)
        );
    }
}

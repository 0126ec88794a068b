//! Opaque, tamper-checked query cursors shared by both adapters.
//!
//! A cursor names the last sort key of a page and is bound to the query it came from
//! (partition, range, direction) by an HMAC-SHA256 over those fields with the deployment's
//! current signing key, whose id it carries (`<key id>.<body>.<tag>`). A forged or altered
//! cursor, one replayed against another partition (another tenant's, say), or one signed
//! with a key retired after a rotation's grace period is refused with
//! [`StorageError::InvalidCursor`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::{Query, SortKeyRange, StorageError};
use crate::keys::Keyring;

/// Signs and checks cursors with the deployment's signing keys.
#[derive(Clone)]
pub struct CursorSigner {
    keys: Keyring,
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
    pub fn new(keys: Keyring) -> Self {
        CursorSigner { keys }
    }

    /// The signed fields: the query's partition, range and direction, and the cursor's body.
    fn parts(query: &Query, body: &str) -> [String; 4] {
        let range = match &query.range {
            SortKeyRange::All => "all".to_string(),
            SortKeyRange::Prefix(prefix) => format!("prefix\u{0}{prefix}"),
            SortKeyRange::Between(start, end) => format!("between\u{0}{start}\u{0}{end}"),
        };
        [
            query.pk.clone(),
            range,
            if query.descending { "desc" } else { "asc" }.to_string(),
            body.to_string(),
        ]
    }

    /// The cursor that continues `query` after the sort key `last_sk`.
    pub fn encode(&self, query: &Query, last_sk: &str) -> String {
        let body = serde_json::to_string(&CursorBody {
            after: last_sk.to_string(),
        })
        .unwrap_or_default();
        let parts = Self::parts(query, &body);
        let (key_id, tag) = self.keys.sign(&parts.each_ref().map(String::as_str));
        format!(
            "{key_id}.{}.{}",
            URL_SAFE_NO_PAD.encode(body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The sort key after which `query` continues, if its cursor is genuine and its key was
    /// still accepted at `now` (epoch seconds).
    pub fn decode(&self, query: &Query, now: i64) -> Result<Option<String>, StorageError> {
        let Some(cursor) = query.cursor.as_deref() else {
            return Ok(None);
        };
        let mut fields = cursor.split('.');
        let (Some(key_id), Some(body), Some(tag), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(StorageError::InvalidCursor);
        };
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| StorageError::InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StorageError::InvalidCursor)?;
        let body = String::from_utf8(body).map_err(|_| StorageError::InvalidCursor)?;
        let parts = Self::parts(query, &body);
        self.keys
            .verify(key_id, &parts.each_ref().map(String::as_str), &tag, now)
            .map_err(|_| StorageError::InvalidCursor)?;
        let parsed: CursorBody =
            serde_json::from_str(&body).map_err(|_| StorageError::InvalidCursor)?;
        Ok(Some(parsed.after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer_with(key: &str) -> CursorSigner {
        CursorSigner::new(Keyring::single("1", key).expect("a key"))
    }

    #[test]
    fn a_cursor_is_bound_to_its_partition_and_key() {
        let signer = signer_with("secret-one-of-at-least-32-bytes!");
        let query = Query::partition("tenantA#x").prefix("row#");
        let cursor = signer.encode(&query, "row#5");
        assert_eq!(
            signer.decode(&query.clone().after(Some(cursor.clone())), 0),
            Ok(Some("row#5".into()))
        );

        let other_partition = Query::partition("tenantB#x")
            .prefix("row#")
            .after(Some(cursor.clone()));
        assert_eq!(
            signer.decode(&other_partition, 0),
            Err(StorageError::InvalidCursor)
        );
        let other_secret = signer_with("secret-two-of-at-least-32-bytes!");
        assert_eq!(
            other_secret.decode(&query.clone().after(Some(cursor)), 0),
            Err(StorageError::InvalidCursor)
        );
        assert_eq!(
            signer.decode(&query.after(Some("garbage".into())), 0),
            Err(StorageError::InvalidCursor)
        );
    }
}

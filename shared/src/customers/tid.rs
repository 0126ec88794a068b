//! A customer's tid: the customer store's own id, and the first part of its partition key.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// Longest tid: what the export route accepts (MXO sends UUIDs, custdata makes UUIDs).
pub const MAX_TID_CHARS: usize = 512;

/// A customer's tid: 1 to [`MAX_TID_CHARS`] characters of any kind. Customer identifiers
/// are data, not names (see [`crate::names`]): a tid is only ever a key's last part or
/// hashed, so no character is refused — every tid ever stored stays addressable. The MXO
/// Customer API takes only UUIDs (and normalises them) before it makes one, and custdata
/// makes new ones as UUIDs. Reads as a `&str` where a key is built from it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Tid(String);

impl Tid {
    /// The tid, if it follows its grammar: 1 to [`MAX_TID_CHARS`] characters.
    pub fn parse(raw: &str) -> Option<Tid> {
        let chars = raw.chars().count();
        (1..=MAX_TID_CHARS)
            .contains(&chars)
            .then(|| Tid(raw.to_string()))
    }

    /// A new customer's tid: a random UUID.
    pub fn generate() -> Tid {
        Tid::from_uuid(uuid::Uuid::new_v4())
    }

    /// A UUID's tid: its hyphenated lowercase form (how the MXO Customer API reads a tid).
    pub fn from_uuid(uuid: uuid::Uuid) -> Tid {
        Tid(uuid.hyphenated().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for Tid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Tid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Debug shows the tid as the string it is, so messages that quote it read as before.
impl fmt::Debug for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Tid {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match Tid::parse(&raw) {
            Some(tid) => Ok(tid),
            None => Err(format!("a tid is 1 to {MAX_TID_CHARS} characters")),
        }
    }
}

/// A stored item's `tid` attribute.
impl From<&Tid> for serde_json::Value {
    fn from(tid: &Tid) -> serde_json::Value {
        serde_json::Value::String(tid.0.clone())
    }
}

impl From<Tid> for String {
    fn from(tid: Tid) -> String {
        tid.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tid_is_any_one_to_512_characters() {
        for raw in [
            "3f2b8c1e-0d4a-4c6e-9b7a-1f2e3d4c5b6a",
            "x",
            "a/b..%00\u{7}",
            " padded ",
        ] {
            assert_eq!(Tid::parse(raw).expect(raw).as_str(), raw);
        }
        assert!(Tid::parse(&"é".repeat(MAX_TID_CHARS)).is_some());
        assert!(Tid::parse("").is_none());
        assert!(Tid::parse(&"a".repeat(MAX_TID_CHARS + 1)).is_none());
        let tid = Tid::generate();
        assert!(uuid::Uuid::parse_str(&tid).is_ok());
        assert_eq!(format!("{tid:?}"), format!("{:?}", tid.as_str()));
        let json = serde_json::to_value(&tid).expect("serializes");
        assert_eq!(json, serde_json::json!(tid.as_str()));
        assert_eq!(serde_json::from_value::<Tid>(json).expect("parses"), tid);
        assert!(serde_json::from_value::<Tid>(serde_json::json!("")).is_err());
    }
}

//! An AIXON row's customer: its `customuid`, the tenant's customer key.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// Characters of a customuid.
pub const MAX_CUSTOMUID_CHARS: usize = 256;

/// A customuid: 1 to [`MAX_CUSTOMUID_CHARS`] characters of any kind. Customer identifiers
/// are data, not names (see [`crate::names`]): a customuid is only ever hashed into a key,
/// so no character is refused. A row's customuid is its trimmed value. Reads as a `&str`
/// where a key or a hash is made from it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CustomUid(String);

impl CustomUid {
    /// The customuid, if it follows its grammar: 1 to [`MAX_CUSTOMUID_CHARS`] characters.
    pub fn parse(raw: &str) -> Option<CustomUid> {
        let chars = raw.chars().count();
        (1..=MAX_CUSTOMUID_CHARS)
            .contains(&chars)
            .then(|| CustomUid(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for CustomUid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CustomUid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Debug shows the customuid as the string it is, so messages that quote it read as before.
impl fmt::Debug for CustomUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for CustomUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CustomUid {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match CustomUid::parse(&raw) {
            Some(customuid) => Ok(customuid),
            None => Err(format!(
                "a customuid is 1 to {MAX_CUSTOMUID_CHARS} characters"
            )),
        }
    }
}

impl From<CustomUid> for String {
    fn from(customuid: CustomUid) -> String {
        customuid.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customuid_is_any_one_to_256_characters() {
        for raw in ["crm001", "x", "a/b..%00\u{7}", " padded "] {
            assert_eq!(CustomUid::parse(raw).expect(raw).as_str(), raw);
        }
        assert!(CustomUid::parse(&"é".repeat(MAX_CUSTOMUID_CHARS)).is_some());
        assert!(CustomUid::parse("").is_none());
        assert!(CustomUid::parse(&"a".repeat(MAX_CUSTOMUID_CHARS + 1)).is_none());
        let customuid = CustomUid::parse("crm001").expect("customuid");
        assert_eq!(format!("{customuid:?}"), "\"crm001\"");
        let json = serde_json::to_value(&customuid).expect("serializes");
        assert_eq!(json, serde_json::json!("crm001"));
        assert_eq!(
            serde_json::from_value::<CustomUid>(json).expect("parses"),
            customuid
        );
        assert!(serde_json::from_value::<CustomUid>(serde_json::json!("")).is_err());
    }
}

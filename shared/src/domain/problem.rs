//! What is wrong with an input, in terms every vendor's error shape can carry.

use serde::{Deserialize, Serialize};

/// One complaint about the input: which row, which field, which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Problem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub rule: String,
}

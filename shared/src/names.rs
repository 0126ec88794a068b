//! The grammar of every name a route's path carries, checked once for every route (by
//! [`crate::http::dispatch`], before the handler) and used again where the names are
//! created. A name that breaks its grammar is refused with 400 naming the parameter and
//! the rule, so `.`, `..`, `/`, `\` and control characters never reach a handler, a storage
//! key or a blob path — however they were spelled in the URL (`%2e%2e`, `%2F` and `%00`
//! arrive decoded).
//!
//! Customer identifiers in paths (`customuid`, `customerId`) are data, not names: they may
//! hold any characters the vendor allows, are only ever hashed into keys, and must stay
//! addressable so that a customer can always be read and erased. They are not checked here.

/// Characters of a datastore's apiName.
pub const MAX_DATASTORE_API_NAME_CHARS: usize = 50;
/// Characters of a pull structure's name.
pub const MAX_STRUCTURE_NAME_CHARS: usize = 100;
/// Characters of a Monetate schema name.
pub const MAX_SCHEMA_NAME_CHARS: usize = 64;
/// Characters of an AIXON data cell id (custdata issues `dc` and 20 hex digits).
pub const MAX_CELL_ID_CHARS: usize = 64;

/// The rule every name in a path follows, whatever else its own grammar says.
pub const SEGMENT_RULE: &str =
    "a name in a path is not empty, '.' or '..', and has no '/', '\\' or control characters";

/// A grammar: its check and the rule a refusal quotes.
#[derive(Debug, Clone, Copy)]
pub struct Grammar {
    pub rule: &'static str,
    check: fn(&str) -> bool,
}

impl Grammar {
    /// Whether `value` follows this grammar (and the rule of every path name).
    pub fn accepts(&self, value: &str) -> bool {
        is_segment(value) && (self.check)(value)
    }
}

/// The rule every path name follows.
pub fn is_segment(value: &str) -> bool {
    !value.is_empty()
        && value != "."
        && value != ".."
        && !value
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

fn any(_: &str) -> bool {
    true
}

/// Letters, digits, `_` and `-`, starting with a letter, 1 to `max` characters.
fn identifier_like(value: &str, max: usize) -> bool {
    (1..=max).contains(&value.chars().count())
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An MXO datastore's apiName.
pub fn is_datastore_api_name(value: &str) -> bool {
    identifier_like(value, MAX_DATASTORE_API_NAME_CHARS)
}

/// An MXO pull structure's name (`structureApiName`).
pub fn is_structure_name(value: &str) -> bool {
    (1..=MAX_STRUCTURE_NAME_CHARS).contains(&value.chars().count())
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
}

/// A Monetate schema name: `^[A-Za-z][A-Za-z0-9_-]*$` (contract decision 3), at most 64.
pub fn is_schema_name(value: &str) -> bool {
    identifier_like(value, MAX_SCHEMA_NAME_CHARS)
}

/// An AIXON data cell id (`resourceId`).
pub fn is_cell_id(value: &str) -> bool {
    (1..=MAX_CELL_ID_CHARS).contains(&value.chars().count())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// An MXO datastore's apiName.
pub const DATASTORE_API_NAME: Grammar = Grammar {
    rule: "a datastore apiName is 1 to 50 letters, digits, '_' or '-', starting with a letter",
    check: is_datastore_api_name,
};
/// An MXO pull structure's name.
pub const STRUCTURE_NAME: Grammar = Grammar {
    rule: "a structureApiName is 1 to 100 letters, digits, '_', '-' or '.', starting with a letter or digit",
    check: is_structure_name,
};
/// A Monetate schema name.
pub const SCHEMA_NAME: Grammar = Grammar {
    rule: "a schema name is 1 to 64 letters, digits, '_' or '-', starting with a letter",
    check: is_schema_name,
};
/// An AIXON data cell id.
pub const CELL_ID: Grammar = Grammar {
    rule: "a resourceId is 1 to 64 letters, digits, '_' or '-'",
    check: is_cell_id,
};
/// Every other name in a path: ids, keys, references, targets, function names.
pub const SEGMENT: Grammar = Grammar {
    rule: SEGMENT_RULE,
    check: any,
};

/// The grammar a path parameter of template.yaml follows, by its name; `None` for the
/// parameters that carry a customer identifier (see the module's note).
pub fn grammar_of(parameter: &str) -> Option<Grammar> {
    match parameter {
        "customuid" | "customerId" => None,
        "apiName" => Some(DATASTORE_API_NAME),
        "structureApiName" => Some(STRUCTURE_NAME),
        "schemaName" => Some(SCHEMA_NAME),
        "resourceId" => Some(CELL_ID),
        _ => Some(SEGMENT),
    }
}

/// A path name that breaks its grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName {
    /// The path parameter (`structureApiName`, `schemaName`, …).
    pub parameter: String,
    /// The value, as decoded from the path.
    pub value: String,
    pub rule: &'static str,
}

/// The first of `parameters` (name, decoded value) that breaks its grammar.
pub fn first_bad_name<'a>(
    parameters: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<BadName> {
    parameters.into_iter().find_map(|(parameter, value)| {
        let grammar = grammar_of(parameter)?;
        (!grammar.accepts(value)).then(|| BadName {
            parameter: parameter.to_string(),
            value: value.to_string(),
            rule: if is_segment(value) {
                grammar.rule
            } else {
                SEGMENT_RULE
            },
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;

    const HOSTILE: [&str; 8] = [".", "..", "a/b", "/", "a\\b", "a\u{0}b", "a\nb", "\u{7f}"];

    #[test]
    fn dot_segments_slashes_and_control_characters_break_every_name() {
        for parameter in [
            "apiName",
            "structureApiName",
            "schemaName",
            "resourceId",
            "workspaceId",
            "updateId",
            "username",
        ] {
            for value in HOSTILE {
                let bad = first_bad_name([(parameter, value)]).expect("refused");
                assert_eq!(bad.rule, SEGMENT_RULE, "{parameter} {value:?}");
            }
        }
    }

    #[test]
    fn customer_identifiers_are_data_and_not_checked() {
        for parameter in ["customuid", "customerId"] {
            for value in HOSTILE {
                assert_eq!(first_bad_name([(parameter, value)]), None);
            }
        }
    }

    #[test]
    fn each_name_follows_its_own_grammar() {
        let accepted = [
            ("apiName", "terms"),
            ("apiName", "Product_Terms-2"),
            ("structureApiName", "offers.v2"),
            ("structureApiName", "9lives"),
            ("schemaName", "crm-attributes"),
            ("resourceId", "dc0123456789abcdef0123"),
            ("workspaceId", "ZGV2"),
            ("stagingReference", "ds1"),
        ];
        for (parameter, value) in accepted {
            assert_eq!(
                first_bad_name([(parameter, value)]),
                None,
                "{parameter} {value}"
            );
        }
        let refused = [
            ("apiName", "9terms", DATASTORE_API_NAME.rule),
            ("structureApiName", "...", STRUCTURE_NAME.rule),
            ("structureApiName", ".hidden", STRUCTURE_NAME.rule),
            ("schemaName", "crm.v2", SCHEMA_NAME.rule),
            ("resourceId", "dc.1", CELL_ID.rule),
        ];
        for (parameter, value, rule) in refused {
            let bad = first_bad_name([(parameter, value)]).expect("refused");
            assert_eq!((bad.parameter.as_str(), bad.rule), (parameter, rule));
        }
    }

    #[test]
    fn every_path_parameter_of_the_template_has_a_known_grammar() {
        let known = [
            "customuid",
            "customerId",
            "apiName",
            "structureApiName",
            "schemaName",
            "resourceId",
            "workspaceId",
            "target",
            "stagingReference",
            "tableReference",
            "sk",
            "tid",
            "retailer",
            "schemaType",
            "username",
            "keyId",
            "updateId",
            "category",
            "function",
        ];
        let template = Template::bundled().expect("template.yaml");
        for route in &template.routes {
            for part in route.path.split('/') {
                if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    assert!(
                        known.contains(&name),
                        "{name} of {} has no grammar decided in names.rs",
                        route.path
                    );
                }
            }
        }
    }
}

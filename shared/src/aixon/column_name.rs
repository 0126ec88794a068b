//! An AIXON data-cell column's name, and what the name makes the column hold: the name is
//! parsed once where it enters (a body's header, a cell's stored header) and carries its
//! [`ColumnKind`] from then on, so nothing below asks again whether a name is allowed.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use serde::{Serialize, Serializer};

/// The goal names a `goal_` column may carry.
const GOALS: [&str; 8] = [
    "no_visit",
    "churn",
    "loyal",
    "action",
    "click",
    "pageview",
    "conversion",
    "purchase",
];

/// What a column holds, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ColumnKind {
    /// `customuid`: the tenant's customer key; one row per customer.
    CustomUid,
    /// `emailsha256`, `email`, `idfa`: identifiers, comma-separated multi-values.
    MultiIdentifier,
    /// `dmpid`: one identifier.
    Identifier,
    /// `txt_*`: a string.
    Text,
    /// `num_*`: a number (numeric strings too).
    Number,
    /// `attr_*`: comma-separated strings.
    Attributes,
    /// `goal_{goal}_*`: `1` or `0`.
    Goal,
    /// `goal_{goal}_*_timestamp`: whole Unix seconds, or `0`.
    GoalTimestamp,
}

impl ColumnKind {
    /// The kind of a column name, or why the name is not allowed.
    pub fn of(name: &str) -> Result<ColumnKind, String> {
        Ok(match name {
            "customuid" => ColumnKind::CustomUid,
            "emailsha256" | "email" | "idfa" => ColumnKind::MultiIdentifier,
            "dmpid" => ColumnKind::Identifier,
            _ if name.starts_with("txt_") && name.len() > 4 => ColumnKind::Text,
            _ if name.starts_with("num_") && name.len() > 4 => ColumnKind::Number,
            _ if name.starts_with("attr_") && name.len() > 5 => ColumnKind::Attributes,
            _ if name.starts_with("goal_") => {
                let rest = &name[5..];
                let goal = GOALS.iter().find(|goal| {
                    rest.starts_with(&format!("{goal}_")) && rest.len() > goal.len() + 1
                });
                match goal {
                    Some(_) if name.ends_with("_timestamp") => ColumnKind::GoalTimestamp,
                    Some(_) => ColumnKind::Goal,
                    None => {
                        return Err(format!(
                            "goal_ columns are goal_{{{}}}_<name>",
                            GOALS.join(",")
                        ));
                    }
                }
            }
            _ => {
                return Err(
                    "not an AIXON column: customuid, emailsha256, email, idfa, dmpid, or a txt_, num_, attr_ or goal_ column".into(),
                );
            }
        })
    }
}

/// A column name that follows AIXON's column grammar, [`ColumnKind::of`], exactly: the
/// fixed names `customuid`, `emailsha256`, `email`, `idfa` and `dmpid`; `txt_`, `num_` or
/// `attr_` followed by at least one byte; `goal_{goal}_` followed by at least one byte, for
/// one of the eight goals. Nothing is trimmed here (a header trims its names before it
/// parses them), and the length of a name is a rule of the header
/// ([`super::columns::MAX_NAME_CHARS`]), checked before a header's name is parsed.
///
/// Reads as a `&str` where a key, an attribute or a message is made from it; serializes as
/// the plain string; orders, compares and hashes as its string, so a map keyed by it is
/// looked up by a `&str` and writes its keys in the order it always did.
#[derive(Clone)]
pub struct ColumnName {
    name: String,
    kind: ColumnKind,
}

impl ColumnName {
    /// The name with its kind, or why the name is not allowed (the message of
    /// [`ColumnKind::of`]).
    pub fn parse(raw: &str) -> Result<ColumnName, String> {
        let kind = ColumnKind::of(raw)?;
        Ok(ColumnName {
            name: raw.to_string(),
            kind,
        })
    }

    /// What the column holds.
    pub fn kind(&self) -> ColumnKind {
        self.kind
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }
}

impl Deref for ColumnName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for ColumnName {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// The kind follows from the name, so the name alone says whether two are the same; this
/// is also what lets a map keyed by names be looked up by a `&str`.
impl Borrow<str> for ColumnName {
    fn borrow(&self) -> &str {
        &self.name
    }
}

impl PartialEq for ColumnName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ColumnName {}

impl Hash for ColumnName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl PartialOrd for ColumnName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ColumnName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name.cmp(&other.name)
    }
}

/// Debug shows the name as the string it is, so messages that quote it read as before.
impl fmt::Debug for ColumnName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.name, f)
    }
}

impl fmt::Display for ColumnName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The plain string, as a value and as a map key alike.
impl Serialize for ColumnName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn name(raw: &str) -> ColumnName {
        ColumnName::parse(raw).expect(raw)
    }

    /// The grammar as [`ColumnName`]'s comment states it, written apart from
    /// [`ColumnKind::of`].
    fn as_documented(raw: &str) -> Option<ColumnKind> {
        match raw {
            "customuid" => return Some(ColumnKind::CustomUid),
            "emailsha256" | "email" | "idfa" => return Some(ColumnKind::MultiIdentifier),
            "dmpid" => return Some(ColumnKind::Identifier),
            _ => {}
        }
        for (prefix, kind) in [
            ("txt_", ColumnKind::Text),
            ("num_", ColumnKind::Number),
            ("attr_", ColumnKind::Attributes),
        ] {
            if let Some(own) = raw.strip_prefix(prefix) {
                return (!own.is_empty()).then_some(kind);
            }
        }
        let rest = raw.strip_prefix("goal_")?;
        GOALS.iter().find(|goal| {
            rest.strip_prefix(**goal)
                .and_then(|after| after.strip_prefix('_'))
                .is_some_and(|own| !own.is_empty())
        })?;
        Some(if raw.ends_with("_timestamp") {
            ColumnKind::GoalTimestamp
        } else {
            ColumnKind::Goal
        })
    }

    #[test]
    fn a_column_name_is_exactly_what_the_column_rules_accepted() {
        // Every string of up to three of these pieces: the fixed names, the prefixes, the
        // goals, and what sits at their edges.
        let pieces = [
            "",
            "customuid",
            "email",
            "sha256",
            "idfa",
            "dmpid",
            "txt_",
            "num_",
            "attr_",
            "goal_",
            "click",
            "no_visit",
            "purchase",
            "dance",
            "_",
            "x",
            "_timestamp",
            " ",
            "é",
            "\u{0}",
        ];
        let mut accepted = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let raw = format!("{a}{b}{c}");
                    let parsed = ColumnName::parse(&raw);
                    assert_eq!(
                        parsed
                            .as_ref()
                            .map(ColumnName::kind)
                            .map_err(String::as_str),
                        ColumnKind::of(&raw)
                            .as_ref()
                            .copied()
                            .map_err(String::as_str),
                        "{raw:?}"
                    );
                    assert_eq!(
                        parsed.as_ref().ok().map(ColumnName::kind),
                        as_documented(&raw),
                        "{raw:?}"
                    );
                    if let Ok(parsed) = parsed {
                        assert_eq!(parsed.as_str(), raw, "kept as it came");
                        accepted += 1;
                    }
                }
            }
        }
        assert!(accepted > 1_000, "the pieces make names of every kind");
    }

    #[test]
    fn a_column_name_carries_its_kind() {
        assert_eq!(name("customuid").kind(), ColumnKind::CustomUid);
        assert_eq!(name("emailsha256").kind(), ColumnKind::MultiIdentifier);
        assert_eq!(name("email").kind(), ColumnKind::MultiIdentifier);
        assert_eq!(name("idfa").kind(), ColumnKind::MultiIdentifier);
        assert_eq!(name("dmpid").kind(), ColumnKind::Identifier);
        assert_eq!(name("txt_city").kind(), ColumnKind::Text);
        assert_eq!(name("num_age").kind(), ColumnKind::Number);
        assert_eq!(name("attr_hobby").kind(), ColumnKind::Attributes);
        assert_eq!(name("goal_click_a").kind(), ColumnKind::Goal);
        assert_eq!(
            name("goal_click_a_timestamp").kind(),
            ColumnKind::GoalTimestamp
        );
    }

    #[test]
    fn a_txt_column_needs_a_name_after_its_prefix() {
        assert!(ColumnName::parse("txt_").is_err());
        assert!(ColumnName::parse("num_").is_err());
        assert!(ColumnName::parse("attr_").is_err());
        assert_eq!(name("txt_x").kind(), ColumnKind::Text);
        // Any byte after the prefix will do, a space too: a header trims before it parses.
        assert_eq!(name("txt_ ").kind(), ColumnKind::Text);
        assert!(ColumnName::parse(" txt_x").is_err());
    }

    #[test]
    fn a_goal_column_names_one_of_the_goals_and_then_its_own_name() {
        let refused = ColumnName::parse("goal_dance_x").expect_err("not a goal");
        assert_eq!(
            refused,
            "goal_ columns are goal_{no_visit,churn,loyal,action,click,pageview,conversion,purchase}_<name>"
        );
        assert!(ColumnName::parse("goal_click_").is_err());
        assert!(ColumnName::parse("goal_click").is_err());
        assert_eq!(name("goal_no_visit_x").kind(), ColumnKind::Goal);
        // A name ending in `_timestamp` is a goal's time, even when that is all of its own
        // name.
        assert_eq!(
            name("goal_click_timestamp").kind(),
            ColumnKind::GoalTimestamp
        );
        assert_eq!(name("goal_click_timestamps").kind(), ColumnKind::Goal);
    }

    #[test]
    fn a_name_outside_the_rules_is_refused_with_the_rule() {
        for raw in ["", "age", "Customuid", "customuid ", "txt", "goal_"] {
            let refused = ColumnName::parse(raw).expect_err(raw);
            assert_eq!(Err(refused), ColumnKind::of(raw), "{raw:?}");
        }
    }

    #[test]
    fn a_column_name_reads_and_serializes_as_its_plain_string() {
        let column = name("num_age");
        assert_eq!(&*column, "num_age");
        assert_eq!(column.to_string(), "num_age");
        assert_eq!(format!("{column:?}"), "\"num_age\"");
        assert_eq!(
            serde_json::to_string(&column).expect("serializes"),
            "\"num_age\""
        );
        assert_eq!(
            serde_json::to_string(&vec![name("customuid"), column]).expect("serializes"),
            r#"["customuid","num_age"]"#
        );
    }

    #[test]
    fn a_map_keyed_by_column_names_orders_and_finds_them_as_strings() {
        let cells: BTreeMap<ColumnName, i32> = [("txt_b", 2), ("attr_z", 3), ("customuid", 1)]
            .into_iter()
            .map(|(raw, value)| (name(raw), value))
            .collect();
        assert_eq!(cells["txt_b"], 2);
        assert_eq!(cells.get("num_a"), None);
        assert_eq!(
            serde_json::to_string(&cells).expect("serializes"),
            r#"{"attr_z":3,"customuid":1,"txt_b":2}"#
        );
        let plain: BTreeMap<&str, i32> = [("txt_b", 2), ("attr_z", 3), ("customuid", 1)].into();
        assert_eq!(
            serde_json::to_string(&cells).expect("serializes"),
            serde_json::to_string(&plain).expect("serializes")
        );
    }
}

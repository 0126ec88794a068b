//! AIXON data-cell columns: what each kind of column takes (which names a column may have,
//! and the kind each name makes it, are in `column_name`), and a streamed check of CSV bodies
//! (RFC 4180, through the `csv` crate) that yields one parsed row at a time — a body is never
//! held as a list of rows.

use std::collections::{BTreeMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::Read;

use serde::Serialize;

use super::body::{Format, Record, read_records};
pub use super::column_name::{ColumnKind, ColumnName};
use super::customuid::CustomUid;
use super::store::Mode;
use crate::domain::Problem;

/// Problems listed in one rejection; the count says how many there were in all.
pub const MAX_LISTED_PROBLEMS: usize = 100;
/// Columns of one data cell.
pub const MAX_COLUMNS: usize = 200;
/// Characters of a column name.
pub const MAX_NAME_CHARS: usize = 128;
/// Characters of one value (a multi-value counts as one value).
pub const MAX_VALUE_CHARS: usize = 1_000;
pub use super::customuid::MAX_CUSTOMUID_CHARS;

/// One checked value.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    Text(String),
    Number(f64),
    Many(Vec<String>),
    Flag(bool),
    Seconds(i64),
}

/// One checked row: its customer and its non-empty values by column.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based, counting the header as row 1 (the line a spreadsheet shows).
    pub number: usize,
    pub customuid: CustomUid,
    pub cells: BTreeMap<ColumnName, Cell>,
}

/// A data cell's header: its columns in order, each name with its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub columns: Vec<ColumnName>,
}

fn problem(row: Option<usize>, column: Option<&str>, rule: impl Into<String>) -> Problem {
    Problem {
        row,
        field: column.map(str::to_string),
        rule: rule.into(),
    }
}

impl Header {
    pub fn names(&self) -> &[ColumnName] {
        &self.columns
    }

    /// Checks a header: names trimmed, none longer than [`MAX_NAME_CHARS`] characters, none
    /// twice, every name a [`ColumnName`], `customuid` present. This is where a body's column
    /// names enter.
    pub fn parse<'a>(
        row: Option<usize>,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Header, Vec<Problem>> {
        let mut columns = Vec::new();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        for raw in names {
            let name = raw.trim();
            if name.chars().count() > MAX_NAME_CHARS {
                problems.push(problem(
                    row,
                    Some(name),
                    format!("column names have at most {MAX_NAME_CHARS} characters"),
                ));
                continue;
            }
            if !seen.insert(name.to_string()) {
                problems.push(problem(row, Some(name), "appears twice in the header"));
                continue;
            }
            match ColumnName::parse(name) {
                Ok(name) => columns.push(name),
                Err(rule) => problems.push(problem(row, Some(name), rule)),
            }
        }
        if seen.len() > MAX_COLUMNS {
            problems.push(problem(
                row,
                None,
                format!(
                    "a data cell has at most {MAX_COLUMNS} columns, the header has {}",
                    seen.len()
                ),
            ));
        }
        if !columns
            .iter()
            .any(|name| name.kind() == ColumnKind::CustomUid)
        {
            problems.push(problem(
                row,
                Some("customuid"),
                "the header needs a customuid column",
            ));
        }
        if problems.is_empty() {
            Ok(Header { columns })
        } else {
            Err(problems)
        }
    }

    /// Checks one row's values against the header.
    pub fn check_row(&self, number: usize, values: &[&str]) -> Result<Row, Vec<Problem>> {
        let mut problems = Vec::new();
        // A row of the wrong width is refused, never padded (padding would shift values into
        // the wrong columns); the values it has are still checked, to name every problem.
        if values.len() != self.columns.len() {
            problems.push(problem(
                Some(number),
                None,
                format!(
                    "row has {} values, header has {}",
                    values.len(),
                    self.columns.len()
                ),
            ));
        }
        let mut cells = BTreeMap::new();
        let mut customuid = None;
        for (name, raw) in self.columns.iter().zip(values) {
            let kind = name.kind();
            let value = raw.trim();
            if value.is_empty() {
                if kind == ColumnKind::CustomUid {
                    problems.push(problem(Some(number), Some(name), "customuid is required"));
                }
                continue;
            }
            let limit = if kind == ColumnKind::CustomUid {
                MAX_CUSTOMUID_CHARS
            } else {
                MAX_VALUE_CHARS
            };
            if value.chars().count() > limit {
                problems.push(problem(
                    Some(number),
                    Some(name),
                    format!("values of this column have at most {limit} characters"),
                ));
                continue;
            }
            match check_value(kind, value) {
                Ok(cell) => {
                    if kind == ColumnKind::CustomUid {
                        customuid = CustomUid::parse(value);
                    }
                    cells.insert(name.clone(), cell);
                }
                Err(rule) => problems.push(problem(Some(number), Some(name), rule)),
            }
        }
        match customuid {
            Some(customuid) if problems.is_empty() => Ok(Row {
                number,
                customuid,
                cells,
            }),
            // The header has a customuid column, whose empty value is a problem already.
            None if problems.is_empty() => Err(vec![problem(
                Some(number),
                Some("customuid"),
                "customuid is required",
            )]),
            _ => Err(problems),
        }
    }
}

/// The header a cell has after an update with `new`: PATCH and the rows of a new cell keep
/// it exactly (same names, same order); PUT keeps every existing column and may add more.
pub fn fit_header(
    current: &[ColumnName],
    new: &Header,
    mode: Mode,
) -> Result<Vec<ColumnName>, Vec<Problem>> {
    let names = new.names();
    match mode {
        Mode::Create | Mode::Patch if names == current => Ok(names.to_vec()),
        Mode::Create | Mode::Patch => Err(vec![problem(
            None,
            None,
            format!(
                "PATCH needs the cell's columns in the cell's order ({}); got ({}). Use PUT /api_upload/v1/csv-upload/{{resourceId}} to add columns",
                current.join(", "),
                names.join(", ")
            ),
        )]),
        Mode::Put => {
            let missing: Vec<Problem> = current
                .iter()
                .filter(|column| !names.contains(column))
                .map(|column| {
                    problem(
                        None,
                        Some(column),
                        "PUT may add columns but keeps every existing one: this column is missing (send it with empty values to leave them empty)",
                    )
                })
                .collect();
            if missing.is_empty() {
                Ok(names.to_vec())
            } else {
                Err(missing)
            }
        }
    }
}

fn check_value(kind: ColumnKind, value: &str) -> Result<Cell, String> {
    let many = || {
        value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    match kind {
        ColumnKind::CustomUid | ColumnKind::Identifier | ColumnKind::Text => {
            Ok(Cell::Text(value.to_string()))
        }
        ColumnKind::MultiIdentifier | ColumnKind::Attributes => Ok(Cell::Many(many())),
        ColumnKind::Number => value
            .parse::<f64>()
            .ok()
            .filter(|number| number.is_finite())
            .map(Cell::Number)
            .ok_or_else(|| format!("num_ column needs a number, got {value:?}")),
        ColumnKind::Goal => match value {
            "1" => Ok(Cell::Flag(true)),
            "0" => Ok(Cell::Flag(false)),
            other => Err(format!("goal_ column takes 1, 0 or empty, got {other:?}")),
        },
        ColumnKind::GoalTimestamp => value
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds >= 0)
            .map(Cell::Seconds)
            .ok_or_else(|| {
                format!("goal_…_timestamp takes whole Unix seconds or 0, got {value:?}")
            }),
    }
}

/// What a checked body held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checked {
    pub header: Header,
    pub rows: usize,
}

/// Why a body was refused: its problems (at most [`MAX_LISTED_PROBLEMS`]) and how many
/// there were. Nothing of a refused body is applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The body's header, when it was readable (a PATCH or PUT also checks it against the cell).
    pub header: Option<Header>,
    pub problems: Vec<Problem>,
    pub total: usize,
    pub rows_rejected: usize,
}

/// Problems as they are found, in row order: the first [`MAX_LISTED_PROBLEMS`] kept, the
/// rest only counted, so a body of a million bad rows costs no more memory than one.
#[derive(Debug, Default)]
struct Problems {
    listed: Vec<Problem>,
    total: usize,
    rows_rejected: usize,
    last_row: Option<Option<usize>>,
}

impl Problems {
    fn push(&mut self, found: Problem) {
        if self.last_row != Some(found.row) {
            self.rows_rejected += 1;
            self.last_row = Some(found.row);
        }
        self.total += 1;
        if self.listed.len() < MAX_LISTED_PROBLEMS {
            self.listed.push(found);
        }
    }

    fn append(&mut self, found: &mut Vec<Problem>) {
        for one in found.drain(..) {
            self.push(one);
        }
    }

    fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn into_rejection(self, header: Option<Header>) -> Rejection {
        Rejection {
            header,
            problems: self.listed,
            total: self.total,
            rows_rejected: self.rows_rejected,
        }
    }
}

/// Streams a body through the column rules, handing each valid row to `on_row`. The whole
/// body is checked: a body with any bad row is rejected with every problem found (duplicate
/// customuids included), and `on_row` stops being called at the first problem, so a caller
/// applies rows only after `Ok` — or, as the import step does, checks first and applies in
/// a second pass.
pub fn check_body(
    format: Format,
    body: impl Read,
    mut on_row: impl FnMut(Row),
) -> Result<Checked, Rejection> {
    let header_row = (format == Format::Csv).then_some(1);
    let mut header: Option<Header> = None;
    let mut customuid_column = 0;
    let mut problems = Problems::default();
    let mut seen = HashSet::new();
    let mut rows = 0;
    let read = read_records(format, body, |record| {
        match record {
            Record::Header(names) => {
                match Header::parse(header_row, names.iter().map(String::as_str)) {
                    Ok(parsed) => {
                        customuid_column = parsed
                            .columns
                            .iter()
                            .position(|name| name.kind() == ColumnKind::CustomUid)
                            .unwrap_or(0);
                        header = Some(parsed);
                    }
                    Err(mut found) => {
                        problems.append(&mut found);
                        return false;
                    }
                }
            }
            Record::BadRow { number, rule } => problems.push(problem(Some(number), None, rule)),
            Record::Row { number, values } => {
                let Some(header) = &header else { return false };
                let values: Vec<&str> = values.iter().map(String::as_str).collect();
                // A customuid counts once per request, whether or not the rest of its row is
                // valid; duplicates are found by a 64-bit hash, so memory stays at 8 bytes a
                // row however wide the rows are.
                let customuid = values
                    .get(customuid_column)
                    .map(|value| value.trim())
                    .filter(|value| !value.is_empty());
                if let Some(customuid) = customuid {
                    let mut hasher = std::collections::hash_map::DefaultHasher::new();
                    customuid.hash(&mut hasher);
                    if !seen.insert(hasher.finish()) {
                        problems.push(problem(
                            Some(number),
                            Some("customuid"),
                            format!("customuid {customuid:?} appears twice in this request"),
                        ));
                        return true;
                    }
                }
                match header.check_row(number, &values) {
                    Ok(row) => {
                        rows += 1;
                        if problems.is_empty() {
                            on_row(row);
                        }
                    }
                    Err(mut found) => problems.append(&mut found),
                }
            }
        }
        true
    });
    if let Err(unreadable) = read {
        problems.push(problem(unreadable.row, None, unreadable.rule));
    }
    match header {
        Some(header) if problems.is_empty() => Ok(Checked { header, rows }),
        header => Err(problems.into_rejection(header)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_classified_by_name_and_prefix() {
        assert_eq!(ColumnKind::of("customuid"), Ok(ColumnKind::CustomUid));
        assert_eq!(
            ColumnKind::of("emailsha256"),
            Ok(ColumnKind::MultiIdentifier)
        );
        assert_eq!(ColumnKind::of("num_age"), Ok(ColumnKind::Number));
        assert_eq!(ColumnKind::of("goal_purchase_shoes"), Ok(ColumnKind::Goal));
        assert_eq!(
            ColumnKind::of("goal_purchase_shoes_timestamp"),
            Ok(ColumnKind::GoalTimestamp)
        );
        assert!(ColumnKind::of("goal_dance_x").is_err());
        assert!(ColumnKind::of("num_").is_err());
        assert!(ColumnKind::of("age").is_err());
    }

    #[test]
    fn a_valid_csv_streams_its_rows_with_trimmed_header_and_multi_values() {
        let body = "customuid, emailsha256, num_age, attr_hobby, goal_purchase_a, goal_purchase_a_timestamp\n\
                    crm001,\"x1,x2\",31,\"cooking, writing\",1,1600000000\n\
                    crm002,,,,0,0\n";
        let mut seen = Vec::new();
        let checked =
            check_body(Format::Csv, body.as_bytes(), |row| seen.push(row)).expect("valid");
        assert_eq!(checked.rows, 2);
        assert_eq!(seen[0].customuid.as_str(), "crm001");
        assert_eq!(
            seen[0].cells["emailsha256"],
            Cell::Many(vec!["x1".into(), "x2".into()])
        );
        assert_eq!(
            seen[0].cells["attr_hobby"],
            Cell::Many(vec!["cooking".into(), "writing".into()])
        );
        assert_eq!(seen[0].cells["num_age"], Cell::Number(31.0));
        assert_eq!(
            seen[1].cells.get("num_age"),
            None,
            "an empty value is missing"
        );
    }

    #[test]
    fn every_bad_row_is_reported_with_its_row_column_and_rule() {
        let body = "customuid,num_a,goal_click_x,goal_click_x_timestamp\n\
                    c1,M,1,0\n\
                    c2,1,2,1.5\n\
                    c3,1\n\
                    c1,2,0,0\n\
                    ,1,1,0\n";
        let rejection = check_body(Format::Csv, body.as_bytes(), |_| {
            panic!("no row is applied from a bad body")
        })
        .expect_err("refused");
        let listed: Vec<(Option<usize>, Option<&str>)> = rejection
            .problems
            .iter()
            .map(|p| (p.row, p.field.as_deref()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (Some(2), Some("num_a")),
                (Some(3), Some("goal_click_x")),
                (Some(3), Some("goal_click_x_timestamp")),
                (Some(4), None),
                (Some(5), Some("customuid")),
                (Some(6), Some("customuid")),
            ]
        );
        assert!(
            rejection.problems[0]
                .rule
                .contains("needs a number, got \"M\"")
        );
        assert!(
            rejection.problems[3]
                .rule
                .contains("2 values, header has 4")
        );
        assert_eq!(rejection.rows_rejected, 5);
    }

    #[test]
    fn a_bad_header_is_refused_before_any_row() {
        let rejection = check_body(
            Format::Csv,
            "customuid,age,customuid\nc1,1,c1\n".as_bytes(),
            |_| {},
        )
        .expect_err("refused");
        let fields: Vec<&str> = rejection
            .problems
            .iter()
            .filter_map(|p| p.field.as_deref())
            .collect();
        assert_eq!(fields, vec!["age", "customuid"]);
        let missing =
            check_body(Format::Csv, "email\nx@y\n".as_bytes(), |_| {}).expect_err("refused");
        assert!(missing.problems[0].rule.contains("needs a customuid"));
    }
}

//! The two body formats of csv-upload, read as a stream of records (the header, then one
//! row at a time) from any `Read` — an inline request body or an object in the blob store.
//! Neither format is ever held as a list of rows.
//!
//! - CSV (RFC 4180) through the `csv` crate; header names and unquoted values are trimmed
//!   later, by the column rules.
//! - JSON `{"header": [...], "data": [[...], ...]}` through serde_json, with a visitor that
//!   hands each row on as it is read. The vendor's own examples end rows with `, ,]`, which
//!   is not JSON; [`EmptySlotsAsEmptyValues`] reads every empty array slot as `""`. Valid
//!   JSON never has an empty slot, so reading every body through it is the same as re-reading
//!   only the bodies a strict parse refuses (contracts/aixon.md, decision 1).

use std::fmt;
use std::io::{self, Read};

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// How a body is written, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// The format of a media type (without parameters), if csv-upload takes it.
    pub fn of_media_type(media_type: &str) -> Option<Format> {
        match media_type {
            "text/csv" => Some(Format::Csv),
            "application/json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Json => "application/json",
        }
    }
}

/// One record of a body, in order: the header first, then rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Header(Vec<String>),
    /// A row's values as text (JSON numbers in their JSON spelling; null as empty).
    Row {
        number: usize,
        values: Vec<String>,
    },
    /// A row that could not be read as a row; the body goes on.
    BadRow {
        number: usize,
        rule: String,
    },
}

/// Where a body stopped being readable at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The row being read, when known.
    pub row: Option<usize>,
    pub rule: String,
}

/// Row numbers: in CSV the header is record 1, so the first row is 2 (the line a
/// spreadsheet shows for a body without quoted line breaks); in JSON `data[0]` is row 1.
pub fn first_row_number(format: Format) -> usize {
    match format {
        Format::Csv => 2,
        Format::Json => 1,
    }
}

/// Reads a body record by record. `on_record` returns `false` to stop early.
pub fn read_records(
    format: Format,
    body: impl Read,
    on_record: impl FnMut(Record) -> bool,
) -> Result<(), Unreadable> {
    match format {
        Format::Csv => read_csv(body, on_record),
        Format::Json => read_json(body, on_record),
    }
}

fn read_csv(body: impl Read, mut on_record: impl FnMut(Record) -> bool) -> Result<(), Unreadable> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::StringRecord::new();
    let mut number = 1;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let values: Vec<String> = record.iter().map(str::to_string).collect();
                let next = if number == 1 {
                    Record::Header(values)
                } else {
                    Record::Row { number, values }
                };
                if !on_record(next) {
                    return Ok(());
                }
            }
            // Invalid UTF-8 in one record: the reader can go on with the next.
            Err(error) if matches!(error.kind(), csv::ErrorKind::Utf8 { .. }) => {
                let rule = format!("not UTF-8 text: {error}");
                if number == 1 {
                    return Err(Unreadable { row: Some(1), rule });
                }
                if !on_record(Record::BadRow { number, rule }) {
                    return Ok(());
                }
            }
            Err(error) => {
                return Err(Unreadable {
                    row: Some(number),
                    rule: format!("not CSV: {error}"),
                });
            }
        }
        number += 1;
    }
    if number == 1 {
        return Err(Unreadable {
            row: Some(1),
            rule: "the body is empty: it needs a header line".into(),
        });
    }
    Ok(())
}

fn read_json(body: impl Read, on_record: impl FnMut(Record) -> bool) -> Result<(), Unreadable> {
    let reader = io::BufReader::with_capacity(64 * 1024, EmptySlotsAsEmptyValues::new(body));
    let mut deserializer = serde_json::Deserializer::from_reader(reader);
    let mut state = JsonState {
        on_record,
        header_seen: false,
        stopped: false,
        rows: 0,
    };
    let outcome = (&mut deserializer)
        .deserialize_map(BodyVisitor(&mut state))
        .and_then(|()| deserializer.end());
    match outcome {
        Ok(()) if !state.header_seen && !state.stopped => Err(Unreadable {
            row: None,
            rule: "the body needs a \"header\" array of column names".into(),
        }),
        Ok(()) => Ok(()),
        Err(_) if state.stopped => Ok(()),
        Err(error) => Err(Unreadable {
            row: (state.rows > 0).then_some(state.rows),
            rule: format!(
                "body is not valid JSON at line {}, column {}: {}",
                error.line(),
                error.column(),
                json_reason(&error)
            ),
        }),
    }
}

/// serde_json's message without its own " at line … column …" suffix.
fn json_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

struct JsonState<F> {
    on_record: F,
    header_seen: bool,
    /// The consumer asked to stop; the error that aborts the parse is not the body's fault.
    stopped: bool,
    rows: usize,
}

const STOPPED: &str = "stopped by the reader";

struct BodyVisitor<'s, F>(&'s mut JsonState<F>);

impl<'de, F: FnMut(Record) -> bool> Visitor<'de> for BodyVisitor<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with \"header\" and \"data\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "header" => {
                    let names: Vec<String> = map.next_value()?;
                    self.0.header_seen = true;
                    if !(self.0.on_record)(Record::Header(names)) {
                        self.0.stopped = true;
                        return Err(de::Error::custom(STOPPED));
                    }
                }
                "data" if !self.0.header_seen => {
                    return Err(de::Error::custom("\"header\" must come before \"data\""));
                }
                "data" => map.next_value_seed(RowsSeed(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct RowsSeed<'s, F>(&'s mut JsonState<F>);

impl<'de, F: FnMut(Record) -> bool> DeserializeSeed<'de> for RowsSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Record) -> bool> Visitor<'de> for RowsSeed<'_, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut rows: A) -> Result<(), A::Error> {
        // One row at a time: the row is parsed, handed on and dropped before the next.
        while let Some(row) = rows.next_element::<Value>()? {
            self.0.rows += 1;
            let number = self.0.rows;
            let record = match row {
                Value::Array(values) => {
                    match values.into_iter().map(json_text).collect::<Result<_, _>>() {
                        Ok(values) => Record::Row { number, values },
                        Err(rule) => Record::BadRow { number, rule },
                    }
                }
                other => Record::BadRow {
                    number,
                    rule: format!("a row is an array of values, got {}", json_kind(&other)),
                },
            };
            if !(self.0.on_record)(record) {
                self.0.stopped = true;
                return Err(de::Error::custom(STOPPED));
            }
        }
        Ok(())
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn json_text(value: Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(format!(
            "values are strings, numbers or empty, got {}",
            json_kind(&other)
        )),
    }
}

/// Reads JSON text, writing `""` into every empty array slot (`[,`, `,,`, `,]`, with any
/// whitespace between) outside strings. Streams: it holds one pending byte, not the body.
pub struct EmptySlotsAsEmptyValues<R> {
    inner: R,
    in_string: bool,
    escaped: bool,
    /// The last byte outside strings that was not whitespace.
    last_significant: u8,
    /// Bytes ready to hand out before reading more.
    pending: Vec<u8>,
    input: Vec<u8>,
}

impl<R: Read> EmptySlotsAsEmptyValues<R> {
    pub fn new(inner: R) -> Self {
        EmptySlotsAsEmptyValues {
            inner,
            in_string: false,
            escaped: false,
            last_significant: 0,
            pending: Vec::new(),
            input: vec![0; 16 * 1024],
        }
    }

    fn transform(&mut self, byte: u8) {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if byte == b'\\' {
                self.escaped = true;
            } else if byte == b'"' {
                self.in_string = false;
                self.last_significant = b'"';
            }
            self.pending.push(byte);
            return;
        }
        match byte {
            b' ' | b'\t' | b'\r' | b'\n' => {}
            b'"' => {
                self.in_string = true;
                self.last_significant = b'"';
            }
            b',' | b']' => {
                let empty_slot = matches!((self.last_significant, byte), (b',', _) | (b'[', b','));
                if empty_slot {
                    self.pending.extend_from_slice(b"\"\"");
                }
                self.last_significant = byte;
            }
            other => self.last_significant = other,
        }
        self.pending.push(byte);
    }
}

impl<R: Read> Read for EmptySlotsAsEmptyValues<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pending.is_empty() {
            let read = self.inner.read(&mut self.input)?;
            if read == 0 {
                return Ok(0);
            }
            let input = std::mem::take(&mut self.input);
            for &byte in &input[..read] {
                self.transform(byte);
            }
            self.input = input;
        }
        let count = out.len().min(self.pending.len());
        out[..count].copy_from_slice(&self.pending[..count]);
        self.pending.drain(..count);
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(text: &str) -> String {
        let mut out = String::new();
        EmptySlotsAsEmptyValues::new(text.as_bytes())
            .read_to_string(&mut out)
            .expect("read");
        out
    }

    fn records(format: Format, text: &str) -> (Vec<Record>, Result<(), Unreadable>) {
        let mut seen = Vec::new();
        let outcome = read_records(format, text.as_bytes(), |record| {
            seen.push(record);
            true
        });
        (seen, outcome)
    }

    #[test]
    fn empty_slots_become_empty_strings_outside_strings_only() {
        assert_eq!(repaired(r#"["a", ,]"#), r#"["a", "",""]"#);
        assert_eq!(repaired("[1,,2]"), r#"[1,"",2]"#);
        assert_eq!(repaired("[,1]"), r#"["",1]"#);
        assert_eq!(repaired("[]"), "[]");
        assert_eq!(repaired(r#"["a,,]", "b\",,"]"#), r#"["a,,]", "b\",,"]"#);
    }

    #[test]
    fn the_seed_rows_ending_in_comma_space_comma_read_as_two_empty_values() {
        let body = r#"{"header": ["customuid", "attr_x", "goal_click_a", "goal_click_a_timestamp"],
            "data": [["crm002", "reading, biking", ,], ["crm003", "a", 1, 1534254485]]}"#;
        let (seen, outcome) = records(Format::Json, body);
        assert_eq!(outcome, Ok(()));
        assert_eq!(
            seen[1],
            Record::Row {
                number: 1,
                values: vec![
                    "crm002".into(),
                    "reading, biking".into(),
                    "".into(),
                    "".into()
                ]
            }
        );
        assert_eq!(
            seen[2],
            Record::Row {
                number: 2,
                values: vec!["crm003".into(), "a".into(), "1".into(), "1534254485".into()]
            }
        );
    }

    #[test]
    fn broken_json_names_its_position_and_bad_values_their_row() {
        let (_, outcome) = records(
            Format::Json,
            r#"{"header": ["customuid"], "data": [["a"] ["b"]]}"#,
        );
        let error = outcome.expect_err("refused");
        assert!(
            error
                .rule
                .starts_with("body is not valid JSON at line 1, column"),
            "{error:?}"
        );
        let (seen, outcome) = records(
            Format::Json,
            r#"{"header": ["customuid"], "data": [["a", true], 7]}"#,
        );
        assert_eq!(outcome, Ok(()));
        assert!(
            matches!(&seen[1], Record::BadRow { number: 1, rule } if rule.contains("true/false"))
        );
        assert!(
            matches!(&seen[2], Record::BadRow { number: 2, rule } if rule.contains("array of values"))
        );
        let (_, outcome) = records(Format::Json, r#"{"data": [], "header": []}"#);
        assert!(
            outcome
                .expect_err("refused")
                .rule
                .contains("\"header\" must come before")
        );
    }

    #[test]
    fn csv_records_are_numbered_from_the_header() {
        let (seen, outcome) = records(Format::Csv, "customuid,txt_a\nc1,\"x,\ny\"\nc2,z\n");
        assert_eq!(outcome, Ok(()));
        assert_eq!(seen.len(), 3);
        assert!(matches!(&seen[2], Record::Row { number: 3, values } if values[1] == "z"));
        let (_, outcome) = records(Format::Csv, "");
        assert!(outcome.expect_err("refused").rule.contains("empty"));
    }
}

//! The XML form of a JSON answer, for `Accept: application/xml` on GET (contract decision
//! 11: the vendor's schema is not published, so this is a generic rendering): an object is
//! an element per field, an array an `Item` element per entry, null an empty element.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::Value;

/// An element name from a JSON key: XML names allow letters, digits, `_`, `-`, `.` and may
/// not start with a digit; anything else becomes `_`.
fn element_name(key: &str) -> String {
    let mut name: String = key
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_alphabetic() || c == '_') {
        name.insert(0, '_');
    }
    name
}

fn write_value(writer: &mut Writer<Vec<u8>>, name: &str, value: &Value) -> std::io::Result<()> {
    let text = match value {
        Value::Null => {
            return writer.write_event(Event::Empty(BytesStart::new(name)));
        }
        Value::Array(items) => {
            writer.write_event(Event::Start(BytesStart::new(name)))?;
            for item in items {
                write_value(writer, "Item", item)?;
            }
            return writer.write_event(Event::End(BytesEnd::new(name)));
        }
        Value::Object(fields) => {
            writer.write_event(Event::Start(BytesStart::new(name)))?;
            for (key, field) in fields {
                write_value(writer, &element_name(key), field)?;
            }
            return writer.write_event(Event::End(BytesEnd::new(name)));
        }
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    writer.write_event(Event::Start(BytesStart::new(name)))?;
    writer.write_event(Event::Text(BytesText::new(&text)))?;
    writer.write_event(Event::End(BytesEnd::new(name)))
}

/// The document for an answer, under a root element named after the function.
pub fn render(root: &str, value: &Value) -> String {
    let mut writer = Writer::new(Vec::new());
    let written = writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .and_then(|()| write_value(&mut writer, &element_name(root), value));
    match written {
        Ok(()) => String::from_utf8(writer.into_inner()).unwrap_or_default(),
        // Writing to a Vec cannot fail; an empty document is the safe answer if it did.
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_arrays_and_nulls_become_elements_and_text_is_escaped() {
        let xml = render(
            "GetCustomers",
            &json!([{"CustomerID": "A&B", "CustomerAttributes": ["Kim", null], "1st": 2}]),
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><GetCustomers><Item><_1st>2</_1st>\
             <CustomerAttributes><Item>Kim</Item><Item/></CustomerAttributes>\
             <CustomerID>A&amp;B</CustomerID></Item></GetCustomers>"
        );
    }
}

//! A text's YAML documents: each one (or each item of a kubectl `List`) is read with the
//! integers that overflow `i64` noted, then decoded; a syntax error ends the stream.

use serde_norway::Value;

use super::decode::object;
use super::ObjectSet;
use crate::validate::{Location, Problem};
use crate::yaml::{self, Overflow};

/// Reads every document of `text` into `set`, collecting problems; `source_name` stands
/// for the file in them.
pub(super) fn parse_str(
    source_name: &str,
    text: &str,
    set: &mut ObjectSet,
    problems: &mut Vec<Problem>,
) {
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let location = Location {
            file: source_name.into(),
            document: i + 1,
            item: None,
        };
        // The items of a List are read and checked one by one, into a side set kept only
        // if the document turns out to be a List.
        let mut items = ObjectSet::default();
        let mut item_problems = Vec::new();
        let mut on_item = |i: usize, item: Value, overflows: Vec<Overflow>| {
            let at = Location {
                item: Some(i),
                ..location.clone()
            };
            document(item, at, &overflows, &mut items, &mut item_problems);
        };
        match yaml::document(doc, &mut on_item) {
            Ok((value, overflows)) => {
                if value.get("kind").and_then(Value::as_str) == Some("List") {
                    set.append(&mut items);
                    problems.append(&mut item_problems);
                }
                document(value, location, &overflows, set, problems);
            }
            Err(e) => {
                problems.push(Problem {
                    location,
                    object: None,
                    field: String::new(),
                    message: format!("not valid YAML: {e}"),
                });
                // The rest of the stream cannot be trusted after a syntax error.
                break;
            }
        }
    }
}

/// One document, or one item of a `List` (a List in a List is not read). `overflows` are
/// the integers outside `i64` in it, with paths relative to it.
fn document(
    value: Value,
    location: Location,
    overflows: &[Overflow],
    set: &mut ObjectSet,
    problems: &mut Vec<Problem>,
) {
    if value.is_null() {
        return;
    }
    let is_list = value.get("kind").and_then(Value::as_str) == Some("List");
    if is_list && location.item.is_none() {
        // Its items were read one by one already (a sequence reads as null here).
        if !matches!(value.get("items"), Some(Value::Null) | None) {
            problems.push(Problem {
                location,
                object: None,
                field: "items".into(),
                message: "must be a list of objects".into(),
            });
        }
        return;
    }
    object(value, location, overflows, set, problems);
}

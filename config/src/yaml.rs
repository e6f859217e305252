//! Reading one YAML document into a [`Value`], like `Value::deserialize`, except for
//! integers outside `i64`.
//!
//! `serde_norway`'s `Value` cannot hold an integer beyond `u64`, and refuses the whole
//! document with "invalid value: integer `18446744073709551616` as u128, expected any YAML
//! value": no field, and nothing after it is read. udplb reads every number as `i64`
//! anyway. So such an integer (and a `u64` above `i64::MAX`) becomes a placeholder, a NaN
//! tagged [`OUT_OF_RANGE_TAG`]: an ignored field ignores it, and any field udplb reads
//! (integer, string, list, map, bool, `IntOrString`) fails to decode there. [`Overflow`]
//! tells the loader which literal was at that path, so that the message says "out of
//! range" and names the field.

use std::fmt;

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_norway::value::{Tag, TaggedValue};
use serde_norway::{Mapping, Value};

/// The tag of the placeholder for an integer outside `i64`.
pub(crate) const OUT_OF_RANGE_TAG: &str = "!udplb/out-of-range";

/// An integer outside `i64`, where it was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overflow {
    /// Field path from the document root, spelled as `serde_path_to_error` (and
    /// `serde_norway`'s own errors) spell it (`spec.listeners[0].port`).
    pub path: String,
    /// The integer as written (normalized by the YAML parser, e.g. `0x10` is `16`).
    pub literal: String,
}

/// The integers outside `i64` in the single YAML document `text`, with their paths
/// (those in the items of a top-level `items` sequence too, as `items[i]...`).
///
/// For other readers of YAML (the appliance's settings) whose typed decoding fails on
/// such an integer with serde's "invalid type: integer `N` as u128": where an error's
/// path is listed here, the value is out of range.
///
/// # Errors
/// The text is not one well-formed YAML document.
pub fn integers_outside_i64(text: &str) -> Result<Vec<Overflow>, serde_norway::Error> {
    let mut in_items = Vec::new();
    let mut on_item = |i: usize, _item: Value, overflows: Vec<Overflow>| {
        in_items.extend(overflows.into_iter().map(|o| Overflow {
            path: match o.path.as_str() {
                "" => format!("items[{i}]"),
                p if p.starts_with('[') => format!("items[{i}]{p}"),
                p => format!("items[{i}].{p}"),
            },
            literal: o.literal,
        }));
    };
    let (_, mut overflows) = document(serde_norway::Deserializer::from_str(text), &mut on_item)?;
    overflows.extend(in_items);
    Ok(overflows)
}

/// Called with each item of a top-level `items` sequence, its index, and the integers
/// outside `i64` in it (paths relative to the item).
pub(crate) type OnItem<'f> = dyn FnMut(usize, Value, Vec<Overflow>) + 'f;

/// Reads one document. Integers outside `i64` become placeholders, listed in the result.
///
/// The items of a top-level `items` sequence (a kubectl `List`) are handed to `on_item`
/// one by one as they are read, and replaced by null in the result, so that a List of
/// thousands of objects is never held as one value. Whether the document was a List is
/// known only at its end (kubectl prints `kind` after `items`): the caller decides then
/// what the items were worth.
pub(crate) fn document<'de, D: de::Deserializer<'de>>(
    doc: D,
    on_item: &mut OnItem<'_>,
) -> Result<(Value, Vec<Overflow>), D::Error> {
    let mut overflows = Vec::new();
    let value = Node {
        at: &Segment::Root,
        overflows: &mut overflows,
        on_item: Some(on_item),
    }
    .deserialize(doc)?;
    Ok((value, overflows))
}

/// Where a node is: a linked list up to the root, rendered only when an overflow is found.
enum Segment<'a> {
    Root,
    Key(&'a Segment<'a>, &'a Value),
    Index(&'a Segment<'a>, usize),
}

impl fmt::Display for Segment<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Root => Ok(()),
            Segment::Key(parent, key) => {
                parent.fmt(f)?;
                if !matches!(parent, Segment::Root) {
                    f.write_str(".")?;
                }
                match key {
                    Value::String(s) => f.write_str(s),
                    Value::Number(n) => write!(f, "{n}"),
                    Value::Bool(b) => write!(f, "{b}"),
                    _ => f.write_str("?"),
                }
            }
            Segment::Index(parent, i) => {
                parent.fmt(f)?;
                write!(f, "[{i}]")
            }
        }
    }
}

/// A node at a path; deserializes to a [`Value`].
struct Node<'a, 'p, 'f> {
    at: &'a Segment<'a>,
    overflows: &'p mut Vec<Overflow>,
    /// Set on the root only: where the items of its `items` sequence go.
    on_item: Option<&'p mut OnItem<'f>>,
}

impl Node<'_, '_, '_> {
    fn overflow(self, literal: String) -> Value {
        self.overflows.push(Overflow {
            path: self.at.to_string(),
            literal,
        });
        Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(OUT_OF_RANGE_TAG),
            value: Value::Number(f64::NAN.into()),
        }))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Number(i.into()))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        Ok(match i64::try_from(u) {
            Ok(i) => Value::Number(i.into()),
            Err(_) => self.overflow(u.to_string()),
        })
    }

    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        Ok(match i64::try_from(i) {
            Ok(i) => Value::Number(i.into()),
            Err(_) => self.overflow(i.to_string()),
        })
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        Ok(match i64::try_from(u) {
            Ok(i) => Value::Number(i.into()),
            Err(_) => self.overflow(u.to_string()),
        })
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Number(f.into()))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        loop {
            let seed = Node {
                at: &Segment::Index(self.at, out.len()),
                overflows: &mut *self.overflows,
                on_item: None,
            };
            match seq.next_element_seed(seed)? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Sequence(out))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Mapping::new();
        loop {
            // An out-of-range key is not a field udplb reads: its placeholder is enough.
            let key_seed = Node {
                at: self.at,
                overflows: &mut Vec::new(),
                on_item: None,
            };
            let Some(key) = map.next_key_seed(key_seed)? else {
                break;
            };
            match out.entry(key) {
                serde_norway::mapping::Entry::Occupied(e) => {
                    return Err(de::Error::custom(format_args!(
                        "duplicate entry {}",
                        DescribeKey(e.key())
                    )));
                }
                serde_norway::mapping::Entry::Vacant(e) => {
                    let value = match self.on_item.as_deref_mut() {
                        Some(on_item) if e.key().as_str() == Some("items") => {
                            map.next_value_seed(Items {
                                node: Node {
                                    at: &Segment::Key(self.at, e.key()),
                                    overflows: &mut *self.overflows,
                                    on_item: None,
                                },
                                on_item,
                            })?
                        }
                        _ => map.next_value_seed(Node {
                            at: &Segment::Key(self.at, e.key()),
                            overflows: &mut *self.overflows,
                            on_item: None,
                        })?,
                    };
                    e.insert(value);
                }
            }
        }
        Ok(Value::Mapping(out))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A tagged node (`!tag value`): serde_norway presents the tag as the variant.
        let (tag, contents) = data.variant::<String>()?;
        if tag.is_empty() {
            return Err(de::Error::custom("empty YAML tag is not allowed"));
        }
        let value = contents.newtype_variant_seed(self)?;
        Ok(Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(tag),
            value,
        })))
    }
}

/// The value of the root's `items`: a sequence is handed over item by item (and read as
/// null); anything else is read as usual.
struct Items<'a, 'p, 'f, 'o> {
    node: Node<'a, 'p, 'f>,
    on_item: &'o mut OnItem<'f>,
}

impl<'de> DeserializeSeed<'de> for Items<'_, '_, '_, '_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// Everything but a sequence is read by the plain [`Node`].
macro_rules! forward_to_node {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<E: de::Error>(self, $($arg: $ty),*) -> Result<Value, E> {
            self.node.$method($($arg),*)
        }
    )*};
}

impl<'de> Visitor<'de> for Items<'_, '_, '_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.expecting(f)
    }

    forward_to_node! {
        visit_bool(b: bool);
        visit_i64(i: i64);
        visit_u64(u: u64);
        visit_i128(i: i128);
        visit_u128(u: u128);
        visit_f64(f: f64);
        visit_str(s: &str);
        visit_string(s: String);
        visit_unit();
        visit_none();
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        self.node.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        self.node.visit_enum(data)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut index = 0;
        loop {
            let mut overflows = Vec::new();
            let seed = Node {
                at: &Segment::Root,
                overflows: &mut overflows,
                on_item: None,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => (self.on_item)(index, item, overflows),
                None => break,
            }
            index += 1;
        }
        Ok(Value::Null)
    }
}

/// A duplicate key, described as `serde_norway` describes it.
struct DescribeKey<'a>(&'a Value);

impl fmt::Display for DescribeKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null => f.write_str("with null key"),
            Value::Bool(b) => write!(f, "with key `{b}`"),
            Value::Number(n) => write!(f, "with key {n}"),
            Value::String(s) => write!(f, "with key {s:?}"),
            Value::Sequence(_) | Value::Mapping(_) | Value::Tagged(_) => f.write_str("in YAML map"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn read(text: &str) -> (Value, Vec<Overflow>) {
        let doc = serde_norway::Deserializer::from_str(text)
            .next()
            .expect("one document");
        document(doc, &mut |_, _, _| panic!("no items expected")).expect("valid YAML")
    }

    fn same_as_serde_norway(text: &str) {
        let doc = serde_norway::Deserializer::from_str(text)
            .next()
            .expect("one document");
        let theirs = Value::deserialize(doc).expect("valid YAML");
        assert_eq!(read(text), (theirs, Vec::new()), "{text}");
    }

    #[test]
    fn in_range_documents_read_as_serde_norway_reads_them() {
        for text in [
            "a: 1\nb: [x, -2, 3.5, true, null, ~]\nc: {d: e}\n",
            "!custom {a: !!str 1}\n",
            "- 9223372036854775807\n- -9223372036854775808\n- 0x10\n",
            "&a {x: 1}\n",
            "",
        ] {
            same_as_serde_norway(text);
        }
    }

    #[test]
    fn integers_outside_i64_are_placeholders_with_their_path() {
        let (value, overflows) = read(
            "spec:\n  listeners:\n  - port: 18446744073709551616\n  - port: 9223372036854775808\n\
             ignored: -9223372036854775809\n",
        );
        assert_eq!(
            overflows,
            [
                Overflow {
                    path: "spec.listeners[0].port".into(),
                    literal: "18446744073709551616".into()
                },
                Overflow {
                    path: "spec.listeners[1].port".into(),
                    literal: "9223372036854775808".into()
                },
                Overflow {
                    path: "ignored".into(),
                    literal: "-9223372036854775809".into()
                },
            ]
        );
        let port = &value["spec"]["listeners"][0]["port"];
        let Value::Tagged(t) = port else {
            panic!("placeholder expected, got {port:?}");
        };
        assert_eq!(t.tag, Tag::new(OUT_OF_RANGE_TAG));
        assert!(t.value.as_f64().is_some_and(f64::is_nan));
    }

    #[test]
    fn placeholders_fail_every_field_type_but_ignored_ones() {
        use serde::de::IgnoredAny;
        use std::collections::BTreeMap;
        let (value, _) = read("x: 18446744073709551616\n");
        let x = || value["x"].clone();
        assert!(i64::deserialize(x()).is_err());
        assert!(Option::<i64>::deserialize(x()).is_err());
        assert!(String::deserialize(x()).is_err());
        assert!(Option::<bool>::deserialize(x()).is_err());
        assert!(Vec::<String>::deserialize(x()).is_err());
        assert!(BTreeMap::<String, String>::deserialize(x()).is_err());
        assert!(crate::model::IntOrString::deserialize(x()).is_err());
        assert!(IgnoredAny::deserialize(x()).is_ok());
    }

    #[test]
    fn integers_outside_i64_of_a_text_include_list_items() {
        let found = integers_outside_i64(
            "workers: {lcores: [1, 18446744073709551616]}\nseed: 9223372036854775807\n\
             items:\n- {port: -9223372036854775809}\n- [1, 99999999999999999999]\n",
        )
        .expect("valid YAML");
        let found: Vec<_> = found
            .iter()
            .map(|o| (o.path.as_str(), o.literal.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("workers.lcores[1]", "18446744073709551616"),
                ("items[0].port", "-9223372036854775809"),
                ("items[1][1]", "99999999999999999999"),
            ]
        );
        assert!(integers_outside_i64("a: [1\n").is_err());
    }

    #[test]
    fn top_level_items_are_handed_over_one_by_one() {
        let text = "apiVersion: v1\nitems:\n- {a: 1}\n- {b: [18446744073709551616]}\nkind: List\n\
                    metadata: {items: [not, streamed]}\n";
        let doc = serde_norway::Deserializer::from_str(text)
            .next()
            .expect("one document");
        let mut items = Vec::new();
        let (value, overflows) =
            document(doc, &mut |i, v, o| items.push((i, v, o))).expect("valid YAML");
        assert!(overflows.is_empty());
        assert_eq!(value["items"], Value::Null);
        assert_eq!(value["kind"], Value::String("List".into()));
        assert_eq!(
            value["metadata"]["items"][1],
            Value::String("streamed".into())
        );
        assert_eq!(items.len(), 2);
        assert_eq!(
            (items[0].0, &items[0].1["a"]),
            (0, &Value::Number(1.into()))
        );
        assert_eq!(
            (items[1].0, &items[1].2),
            (
                1,
                &vec![Overflow {
                    path: "b[0]".into(),
                    literal: "18446744073709551616".into()
                }]
            )
        );
        // Not a sequence: read as usual.
        let doc = serde_norway::Deserializer::from_str("items: {x: 1}\n")
            .next()
            .expect("one document");
        let (value, _) = document(doc, &mut |_, _, _| panic!("not a sequence")).expect("YAML");
        assert_eq!(value["items"]["x"], Value::Number(1.into()));
    }

    #[test]
    fn duplicate_keys_are_refused_as_serde_norway_refuses_them() {
        let doc = serde_norway::Deserializer::from_str("a: 1\na: 2\n")
            .next()
            .expect("one document");
        let err = document(doc, &mut |_, _, _| {}).expect_err("duplicate key");
        assert!(
            err.to_string().contains("duplicate entry with key \"a\""),
            "{err}"
        );
    }
}

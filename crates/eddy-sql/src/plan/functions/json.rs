//! ksqlDB's functions over JSON held in STRING values: `IS_JSON_STRING`, `JSON_ARRAY_CONTAINS`,
//! `JSON_ARRAY_LENGTH`, `JSON_CONCAT`, `JSON_KEYS`, `JSON_RECORDS` and `JSON_ITEMS`.
//!
//! Text that is not JSON (or not the JSON kind a function wants) gives NULL, or `false` for the
//! two predicates, as in ksqlDB; objects keep their keys in document order.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int32Array, ListBuilder, MapBuilder, MapFieldNames,
    StringArray, StringBuilder,
};
use arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

use crate::types::SqlType;

/// The functions of this file.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    [
        Kind::IsJsonString,
        Kind::ArrayContains,
        Kind::ArrayLength,
        Kind::Concat,
        Kind::Keys,
        Kind::Records,
        Kind::Items,
    ]
    .map(|kind| {
        Arc::new(ScalarUDF::from(JsonFn {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        }))
    })
    .into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    IsJsonString,
    ArrayContains,
    ArrayLength,
    Concat,
    Keys,
    Records,
    Items,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonFn {
    kind: Kind,
    signature: Signature,
}

impl JsonFn {
    fn sql_name(&self) -> &'static str {
        match self.kind {
            Kind::IsJsonString => "IS_JSON_STRING",
            Kind::ArrayContains => "JSON_ARRAY_CONTAINS",
            Kind::ArrayLength => "JSON_ARRAY_LENGTH",
            Kind::Concat => "JSON_CONCAT",
            Kind::Keys => "JSON_KEYS",
            Kind::Records => "JSON_RECORDS",
            Kind::Items => "JSON_ITEMS",
        }
    }
}

/// `text` as a JSON value, if it is one.
fn parse(text: &str) -> Option<Value> {
    serde_json::from_str(text).ok()
}

/// A JSON value as ksqlDB renders it in a STRING: compact, text without its quotes when `bare`.
fn render(value: &Value, bare: bool) -> String {
    match value {
        Value::String(s) if bare => s.clone(),
        other => other.to_string(),
    }
}

/// ksqlDB's `JSON_CONCAT` of parsed values: objects merge (later keys win), anything else
/// becomes array elements.
fn concat(values: Vec<Value>) -> Value {
    if values.iter().all(Value::is_object) {
        let mut merged = serde_json::Map::new();
        for value in values {
            if let Value::Object(fields) = value {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    let mut items = Vec::new();
    for value in values {
        match value {
            Value::Array(more) => items.extend(more),
            other => items.push(other),
        }
    }
    Value::Array(items)
}

/// Whether JSON element `element` equals the search value at `row` of `needle`, compared as
/// ksqlDB compares them: text with text, whole numbers with INT or BIGINT, any number with
/// DOUBLE (or DECIMAL), booleans with BOOLEAN, and JSON `null` with NULL.
fn matches(element: &Value, needle: &ArrayRef, row: usize) -> bool {
    if needle.is_null(row) {
        return element.is_null();
    }
    match (element, needle.data_type()) {
        (Value::String(s), DataType::Utf8) => s == needle.as_string::<i32>().value(row),
        (Value::Bool(b), DataType::Boolean) => *b == needle.as_boolean().value(row),
        (Value::Number(n), DataType::Int32) => {
            n.as_i64() == Some(i64::from(needle.as_primitive::<Int32Type>().value(row)))
        }
        (Value::Number(n), DataType::Int64) => {
            n.as_i64() == Some(needle.as_primitive::<Int64Type>().value(row))
        }
        (Value::Number(n), DataType::Float64) => {
            n.as_f64() == Some(needle.as_primitive::<Float64Type>().value(row))
        }
        _ => false,
    }
}

impl ScalarUDFImpl for JsonFn {
    fn name(&self) -> &str {
        match self.kind {
            Kind::IsJsonString => "is_json_string",
            Kind::ArrayContains => "json_array_contains",
            Kind::ArrayLength => "json_array_length",
            Kind::Concat => "json_concat",
            Kind::Keys => "json_keys",
            Kind::Records => "json_records",
            Kind::Items => "json_items",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text = super::is_text;
        let searchable = |t: &DataType| {
            matches!(
                t,
                DataType::Boolean
                    | DataType::Int32
                    | DataType::Int64
                    | DataType::Float64
                    | DataType::Decimal128(..)
            ) || text(t)
        };
        let ok = match (self.kind, arg_types) {
            (Kind::ArrayContains, [json, needle]) => text(json) && searchable(needle),
            (Kind::Concat, all) => all.len() >= 2 && all.iter().all(text),
            (Kind::ArrayContains, _) => false,
            (_, [json]) => text(json),
            _ => false,
        };
        if !ok {
            return super::rejected(self.sql_name(), arg_types);
        }
        Ok(arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| match t {
                DataType::Null if self.kind == Kind::ArrayContains && i == 1 => DataType::Null,
                t if text(t) => DataType::Utf8,
                // A decimal is searched for as the number it is.
                DataType::Decimal128(..) => DataType::Float64,
                t => t.clone(),
            })
            .collect())
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::IsJsonString | Kind::ArrayContains => DataType::Boolean,
            Kind::ArrayLength => DataType::Int32,
            Kind::Concat => DataType::Utf8,
            Kind::Keys | Kind::Items => SqlType::Array(Box::new(SqlType::String)).to_arrow(),
            Kind::Records => {
                SqlType::Map(Box::new(SqlType::String), Box::new(SqlType::String)).to_arrow()
            }
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let Some(first) = arrays.first() else {
            return exec_err!("{} needs an argument", self.sql_name());
        };
        let texts: Vec<&StringArray> = arrays
            .iter()
            .filter(|a| a.data_type() == &DataType::Utf8)
            .map(|a| a.as_string::<i32>())
            .collect();
        let json = first.as_string::<i32>();
        let rows = 0..first.len();
        let value_at = |i: usize| (!json.is_null(i)).then(|| parse(json.value(i))).flatten();
        let out: ArrayRef = match self.kind {
            Kind::IsJsonString => Arc::new(
                rows.map(|i| Some(value_at(i).is_some()))
                    .collect::<BooleanArray>(),
            ),
            Kind::ArrayContains => {
                let needle = &arrays[1];
                Arc::new(
                    rows.map(|i| {
                        Some(match value_at(i) {
                            Some(Value::Array(items)) => {
                                items.iter().any(|item| matches(item, needle, i))
                            }
                            _ => false,
                        })
                    })
                    .collect::<BooleanArray>(),
                )
            }
            Kind::ArrayLength => Arc::new(
                rows.map(|i| match value_at(i) {
                    Some(Value::Array(items)) => i32::try_from(items.len()).ok(),
                    _ => None,
                })
                .collect::<Int32Array>(),
            ),
            Kind::Concat => Arc::new(
                rows.map(|i| {
                    let values: Option<Vec<Value>> = texts
                        .iter()
                        .map(|t| (!t.is_null(i)).then(|| parse(t.value(i))).flatten())
                        .collect();
                    values.map(|v| concat(v).to_string())
                })
                .collect::<StringArray>(),
            ),
            Kind::Keys | Kind::Items => {
                let mut builder = ListBuilder::new(StringBuilder::new());
                for i in rows {
                    let parts: Option<Vec<String>> = match (self.kind, value_at(i)) {
                        (Kind::Keys, Some(Value::Object(fields))) => {
                            Some(fields.keys().cloned().collect())
                        }
                        (Kind::Items, Some(Value::Array(items))) => {
                            Some(items.iter().map(|v| render(v, false)).collect())
                        }
                        _ => None,
                    };
                    for part in parts.iter().flatten() {
                        builder.values().append_value(part);
                    }
                    builder.append(parts.is_some());
                }
                Arc::new(builder.finish())
            }
            Kind::Records => {
                let names = MapFieldNames {
                    entry: "entries".into(),
                    key: "key".into(),
                    value: "value".into(),
                };
                let mut builder =
                    MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
                for i in rows {
                    let fields = match value_at(i) {
                        Some(Value::Object(fields)) => Some(fields),
                        _ => None,
                    };
                    for (key, value) in fields.iter().flatten() {
                        builder.keys().append_value(key);
                        builder.values().append_value(render(value, true));
                    }
                    builder.append(fields.is_some())?;
                }
                Arc::new(builder.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn concat_texts(texts: &[&str]) -> String {
        concat(texts.iter().filter_map(|t| parse(t)).collect()).to_string()
    }

    #[test]
    fn concatenates_as_ksqldb_documents() {
        assert_eq!(
            concat_texts(&[r#"{"a": 1}"#, r#"{"b": 2}"#]),
            r#"{"a":1,"b":2}"#
        );
        assert_eq!(
            concat_texts(&[r#"{"a": {"5": 6}}"#, r#"{"a": {"3": 4}}"#]),
            r#"{"a":{"3":4}}"#
        );
        assert_eq!(
            concat_texts(&["[1, [2]]", "[[[3]], [[[4]]]]"]),
            "[1,[2],[[3]],[[[4]]]]"
        );
        assert_eq!(concat_texts(&["null", "null"]), "[null,null]");
        assert_eq!(concat_texts(&["[1, 2]", r#"{"a": 1}"#]), r#"[1,2,{"a":1}]"#);
        assert_eq!(concat_texts(&["1", "2"]), "[1,2]");
    }

    #[test]
    fn renders_text_bare_only_when_asked() {
        let value = parse(r#"{"b": {"c": "a"}, "a": "abc"}"#).unwrap_or_default();
        assert_eq!(render(&value["a"], true), "abc");
        assert_eq!(render(&value["a"], false), "\"abc\"");
        assert_eq!(render(&value["b"], true), r#"{"c":"a"}"#);
    }
}

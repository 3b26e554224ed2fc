//! ksqlDB's `EXTRACTJSONFIELD(json, path)`: the value at a JSONPath in JSON text, as a STRING.
//!
//! The path is the subset ksqlDB reads: `$` followed by `.name`, `['name']` (or `["name"]`) and
//! `[index]` steps. Text comes out without its quotes, any other value as compact JSON; a path
//! that leads nowhere, JSON `null` and text that is not JSON give NULL.

use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::DataType;
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use serde_json::Value;

/// The `EXTRACTJSONFIELD` function.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(ExtractJsonField {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct ExtractJsonField {
    signature: Signature,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// The steps of a JSONPath, or what is wrong with it.
fn parse_path(path: &str) -> std::result::Result<Vec<Step>, String> {
    let invalid = |why: &str| Err(format!("Invalid JSON path '{path}': {why}"));
    let Some(mut rest) = path.trim().strip_prefix('$') else {
        return invalid("it must start with '$'");
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() || name == "*" {
                return invalid("a '.' must be followed by a field name");
            }
            steps.push(Step::Field(name.to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return invalid("a '[' is not closed");
            };
            let inside = after[..end].trim();
            let quoted = inside
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .or_else(|| inside.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
            match (quoted, inside.parse::<usize>()) {
                (Some(name), _) => steps.push(Step::Field(name.to_string())),
                (None, Ok(index)) => steps.push(Step::Index(index)),
                (None, Err(_)) => return invalid("a '[…]' must hold a quoted name or an index"),
            }
            rest = &after[end + 1..];
        } else {
            return invalid("expected '.' or '['");
        }
    }
    Ok(steps)
}

/// The value of `json` at `steps`, as ksqlDB gives it.
fn extract(json: &str, steps: &[Step]) -> Option<String> {
    let root: Value = serde_json::from_str(json).ok()?;
    let mut at = &root;
    for step in steps {
        at = match (step, at) {
            (Step::Field(name), Value::Object(fields)) => fields.get(name)?,
            (Step::Index(i), Value::Array(items)) => items.get(*i)?,
            _ => return None,
        };
    }
    match at {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

impl ScalarUDFImpl for ExtractJsonField {
    fn name(&self) -> &str {
        "extractjsonfield"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [json, path] if super::is_text(json) && super::is_text(path) => {
                Ok(vec![DataType::Utf8, DataType::Utf8])
            }
            _ => super::rejected("EXTRACTJSONFIELD", arg_types),
        }
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let [json, path] = arrays.as_slice() else {
            return exec_err!("EXTRACTJSONFIELD takes two arguments");
        };
        let (json, path) = (json.as_string::<i32>(), path.as_string::<i32>());
        // The path is almost always a literal: parse it once per run of equal paths.
        let mut parsed: Option<(&str, Vec<Step>)> = None;
        let mut out = Vec::with_capacity(json.len());
        for i in 0..json.len() {
            if json.is_null(i) || path.is_null(i) {
                out.push(None);
                continue;
            }
            let text = path.value(i);
            if parsed.as_ref().is_none_or(|(p, _)| *p != text) {
                match parse_path(text) {
                    Ok(steps) => parsed = Some((text, steps)),
                    Err(e) => return exec_err!("{e}"),
                }
            }
            let steps = parsed.as_ref().map_or(&[][..], |(_, s)| s.as_slice());
            out.push(extract(json.value(i), steps));
        }
        Ok(ColumnarValue::Array(Arc::new(StringArray::from(out))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(json: &str, path: &str) -> Option<String> {
        extract(json, &parse_path(path).unwrap_or_default())
    }

    #[test]
    fn follows_fields_names_and_indexes() {
        let doc = r#"{"log": {"cloud": "gcp836Csd", "instance": 4, "tags": ["a", {"b": null}]}}"#;
        assert_eq!(at(doc, "$.log.cloud").as_deref(), Some("gcp836Csd"));
        assert_eq!(at(doc, "$.log.instance").as_deref(), Some("4"));
        assert_eq!(at(doc, "$['log'][\"tags\"][0]").as_deref(), Some("a"));
        assert_eq!(at(doc, "$.log.tags[1]").as_deref(), Some(r#"{"b":null}"#));
        assert_eq!(at(doc, "$.log.tags[1].b"), None);
        assert_eq!(at(doc, "$.log.missing"), None);
        assert_eq!(at(doc, "$.log.tags[7]"), None);
        assert_eq!(at("not json", "$.a"), None);
        assert_eq!(
            at(doc, "$").as_deref().map(|s| s.starts_with("{\"log\"")),
            Some(true)
        );
    }

    #[test]
    fn refuses_paths_outside_ksqldbs_subset() {
        for path in ["log.cloud", "$.", "$.log.*", "$[", "$[a]", "$..a"] {
            assert!(parse_path(path).is_err(), "{path}");
        }
    }
}

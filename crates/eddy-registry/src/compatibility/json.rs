//! JSON Schema compatibility, after Confluent's Schema Registry: a reader schema is
//! compatible when every document the writer schema accepts is one the reader accepts. The
//! check walks both schemas together and names what would let a written document fail the
//! reader, as Confluent names it: a type narrowed, a bound tightened, a required property
//! added, a property added to an open content model (where the writer may already have put
//! anything under that name), a property removed from a closed one. Keywords it does not
//! model must be equal in both schemas.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// What keeps `reader` from accepting every document `writer` accepts.
pub(super) fn incompatibilities(writer: &Value, reader: &Value) -> Vec<String> {
    let mut walk = Walk {
        writer_root: writer,
        reader_root: reader,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    walk.compare(writer, reader, "#");
    walk.out
}

/// Keywords that do not constrain documents, or that the walk handles itself.
const HANDLED: &[&str] = &[
    "$schema",
    "$id",
    "id",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "definitions",
    "$defs",
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
    "allOf",
    "maxLength",
    "minLength",
    "maximum",
    "minimum",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "maxItems",
    "minItems",
    "maxProperties",
    "minProperties",
    "multipleOf",
    "uniqueItems",
];

const TYPES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "integer", "string",
];

struct Walk<'a> {
    writer_root: &'a Value,
    reader_root: &'a Value,
    /// Pairs of references already being compared, so recursive schemas end.
    seen: HashSet<(String, String)>,
    out: Vec<String>,
}

/// A schema's keywords; `true` is no keywords, `false` is `None` (accepts nothing).
fn keywords(schema: &Value) -> Option<&Map<String, Value>> {
    match schema {
        Value::Bool(false) => None,
        Value::Object(m) => Some(m),
        _ => Some(&NO_KEYWORDS),
    }
}

static NO_KEYWORDS: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

/// What `additionalProperties` is where a schema does not say: anything.
static ANYTHING: Value = Value::Bool(true);

/// The array under `key` (`anyOf`, `allOf`, …), if the schema has one.
fn array<'a>(k: &'a Map<String, Value>, key: &str) -> Option<&'a Vec<Value>> {
    k.get(key).and_then(Value::as_array)
}

/// A schema's `properties` (none where it lists none).
fn properties(k: &Map<String, Value>) -> &Map<String, Value> {
    k.get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&NO_KEYWORDS)
}

/// A schema's alternatives: its `anyOf` or its `oneOf`.
fn alternatives(k: &Map<String, Value>) -> Option<&Vec<Value>> {
    array(k, "anyOf").or_else(|| array(k, "oneOf"))
}

/// Follows a local reference (`#/definitions/A`, `#/$defs/A`) within `root`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> (&'a Value, Option<String>) {
    let mut schema = schema;
    let mut last = None;
    for _ in 0..32 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            break;
        };
        match root.pointer(pointer) {
            Some(target) => {
                last = Some(reference.to_string());
                schema = target;
            }
            None => break,
        }
    }
    (schema, last)
}

/// The types a schema's documents may have: its `type`, else those of its `enum`/`const`
/// values, else every type.
fn types(k: &Map<String, Value>) -> Vec<&'static str> {
    let named = |name: &str| TYPES.iter().copied().find(|t| *t == name);
    match k.get("type") {
        Some(Value::String(t)) => named(t).into_iter().collect(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter_map(named)
            .collect(),
        _ => {
            let values: Option<Vec<&Value>> = match (k.get("enum"), k.get("const")) {
                (Some(Value::Array(vs)), _) => Some(vs.iter().collect()),
                (_, Some(v)) => Some(vec![v]),
                _ => None,
            };
            match values {
                Some(vs) => vs.iter().map(|v| type_of(v)).collect(),
                None => TYPES.to_vec(),
            }
        }
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn number(k: &Map<String, Value>, name: &str) -> Option<f64> {
    k.get(name).and_then(Value::as_f64)
}

impl Walk<'_> {
    fn push(&mut self, kind: &str, at: &str, what: String) {
        self.out.push(format!("{kind}: {what} at '{at}'"));
    }

    fn compare(&mut self, writer: &Value, reader: &Value, at: &str) {
        let (writer, w_ref) = resolve(self.writer_root, writer);
        let (reader, r_ref) = resolve(self.reader_root, reader);
        if let (Some(w), Some(r)) = (&w_ref, &r_ref)
            && !self.seen.insert((w.clone(), r.clone()))
        {
            return;
        }
        let (Some(w), Some(r)) = (keywords(writer), keywords(reader)) else {
            if matches!(writer, Value::Bool(false)) {
                return;
            }
            return self.push(
                "SCHEMA_NARROWED",
                at,
                "the new schema accepts nothing".into(),
            );
        };
        if self.combined(writer, w, reader, r, at) {
            return;
        }
        self.compare_types(w, r, at);
        self.compare_values(w, r, at);
        self.compare_bounds(w, r, at);
        let both = |t: &str| types(w).contains(&t) && types(r).contains(&t);
        if both("object") {
            self.compare_objects(w, r, at);
        }
        if both("array") {
            self.compare_arrays(w, r, at);
        }
        for (name, value) in r {
            if !HANDLED.contains(&name.as_str()) && w.get(name) != Some(value) {
                self.push(
                    "KEYWORD_CHANGED",
                    at,
                    format!("the keyword '{name}' was added or changed"),
                );
            }
        }
    }

    /// `anyOf`/`oneOf`/`allOf` on either side; true when they decided the comparison.
    fn combined(
        &mut self,
        writer: &Value,
        w: &Map<String, Value>,
        reader: &Value,
        r: &Map<String, Value>,
        at: &str,
    ) -> bool {
        if let Some(members) = array(r, "allOf") {
            for (i, m) in members.iter().enumerate() {
                self.compare(writer, m, &format!("{at}/allOf/{i}"));
            }
            return true;
        }
        if let Some(members) = array(w, "allOf") {
            // A document the writer accepts passes each member; one member the reader
            // accepts whole is enough.
            if members.iter().any(|m| self.fits(m, reader)) {
                return true;
            }
            self.push(
                "COMBINED_TYPE_CHANGED",
                at,
                "no member of allOf fits the new schema".into(),
            );
            return true;
        }
        match (alternatives(w), alternatives(r)) {
            (Some(ws), _) => {
                for (i, alternative) in ws.iter().enumerate() {
                    if !self.fits(alternative, reader) {
                        self.push(
                            "SUM_TYPE_NARROWED",
                            &format!("{at}/anyOf/{i}"),
                            "a writer alternative is not accepted by the new schema".into(),
                        );
                    }
                }
                true
            }
            (None, Some(rs)) => {
                if !rs.iter().any(|alternative| self.fits(writer, alternative)) {
                    self.push(
                        "COMBINED_TYPE_CHANGED",
                        at,
                        "no alternative of the new schema accepts the old one".into(),
                    );
                }
                true
            }
            (None, None) => false,
        }
    }

    /// Whether `reader` accepts all of `writer`, without recording why not.
    fn fits(&mut self, writer: &Value, reader: &Value) -> bool {
        let before = self.out.len();
        self.compare(writer, reader, "#");
        let fits = self.out.len() == before;
        self.out.truncate(before);
        fits
    }

    fn compare_types(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, at: &str) {
        let accepted = types(r);
        for t in types(w) {
            let ok = accepted.contains(&t) || (t == "integer" && accepted.contains(&"number"));
            if !ok {
                self.push(
                    "TYPE_NARROWED",
                    at,
                    format!("the new schema does not accept type '{t}'"),
                );
            }
        }
    }

    fn compare_values(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, at: &str) {
        let values = |k: &Map<String, Value>| -> Option<Vec<Value>> {
            match (k.get("enum"), k.get("const")) {
                (Some(Value::Array(vs)), _) => Some(vs.clone()),
                (_, Some(v)) => Some(vec![v.clone()]),
                _ => None,
            }
        };
        if let Some(allowed) = values(r) {
            match values(w) {
                Some(written) if written.iter().all(|v| allowed.contains(v)) => {}
                Some(_) => self.push("ENUM_ARRAY_NARROWED", at, "enum values were removed".into()),
                None => self.push("ENUM_ARRAY_ADDED", at, "an enum was added".into()),
            }
        }
    }

    /// Upper bounds may only grow or go, lower bounds only shrink or go.
    fn compare_bounds(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, at: &str) {
        for (name, upper) in [
            ("maxLength", true),
            ("minLength", false),
            ("maximum", true),
            ("minimum", false),
            ("exclusiveMaximum", true),
            ("exclusiveMinimum", false),
            ("maxItems", true),
            ("minItems", false),
            ("maxProperties", true),
            ("minProperties", false),
        ] {
            let Some(new) = number(r, name) else {
                continue;
            };
            let tightened = match number(w, name) {
                None => true,
                Some(old) if upper => new < old,
                Some(old) => new > old,
            };
            if tightened {
                let kind = match (number(w, name), upper) {
                    (None, _) => "ADDED",
                    (Some(_), true) => "DECREASED",
                    (Some(_), false) => "INCREASED",
                };
                let name_upper = name
                    .chars()
                    .flat_map(|c| {
                        let sep = c.is_ascii_uppercase().then_some('_');
                        sep.into_iter()
                            .chain(std::iter::once(c.to_ascii_uppercase()))
                    })
                    .collect::<String>();
                self.push(
                    &format!("{name_upper}_{kind}"),
                    at,
                    format!("'{name}' tightened"),
                );
            }
        }
        if let Some(new) = number(r, "multipleOf") {
            let divides = number(w, "multipleOf")
                .is_some_and(|old| new != 0.0 && ((old / new).round() - old / new).abs() < 1e-9);
            if !divides {
                self.push("MULTIPLE_OF_CHANGED", at, "'multipleOf' tightened".into());
            }
        }
        let unique = |k: &Map<String, Value>| k.get("uniqueItems") == Some(&Value::Bool(true));
        if unique(r) && !unique(w) {
            self.push("UNIQUE_ITEMS_ADDED", at, "'uniqueItems' added".into());
        }
    }

    fn compare_objects(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, at: &str) {
        let (wp, rp) = (properties(w), properties(r));
        // What a side puts under names it does not list: anything, nothing, or a schema.
        let (wa, ra) = (
            w.get("additionalProperties").unwrap_or(&ANYTHING),
            r.get("additionalProperties").unwrap_or(&ANYTHING),
        );
        let open = |v: &Value| keywords(v).is_some_and(|k| k.is_empty());
        for (name, reader_schema) in rp {
            let path = format!("{at}/properties/{name}");
            match wp.get(name) {
                Some(writer_schema) => self.compare(writer_schema, reader_schema, &path),
                None if *wa == Value::Bool(false) => {}
                None if open(wa) => {
                    if !self.fits(&Value::Bool(true), reader_schema) {
                        self.push(
                            "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                            &path,
                            format!("the property '{name}' was added to an open content model"),
                        );
                    }
                }
                None => self.compare(wa, reader_schema, &path),
            }
        }
        for (name, writer_schema) in wp {
            if rp.contains_key(name) {
                continue;
            }
            let path = format!("{at}/properties/{name}");
            if *ra == Value::Bool(false) {
                self.push(
                    "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                    &path,
                    format!("the property '{name}' was removed from a closed content model"),
                );
            } else if !open(ra) {
                self.compare(writer_schema, ra, &path);
            }
        }
        if !open(ra) && *wa != Value::Bool(false) && !self.fits(wa, ra) {
            self.push(
                "ADDITIONAL_PROPERTIES_NARROWED",
                &format!("{at}/additionalProperties"),
                "properties the old schema left open are constrained".into(),
            );
        }
        let required = |k: &Map<String, Value>| -> Vec<String> {
            k.get("required")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let written = required(w);
        for name in required(r) {
            let has_default = rp.get(&name).and_then(|p| p.get("default")).is_some();
            if !written.contains(&name) && !has_default {
                self.push(
                    "REQUIRED_PROPERTY_ADDED",
                    &format!("{at}/properties/{name}"),
                    format!("the property '{name}' became required"),
                );
            }
        }
    }

    fn compare_arrays(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, at: &str) {
        let path = format!("{at}/items");
        match (w.get("items"), r.get("items")) {
            (_, None) => {}
            (
                Some(wi @ (Value::Object(_) | Value::Bool(_))),
                Some(ri @ (Value::Object(_) | Value::Bool(_))),
            ) => self.compare(wi, ri, &path),
            (None, Some(ri)) => self.compare(&Value::Bool(true), ri, &path),
            (wi, Some(ri)) => {
                if wi != Some(ri) {
                    self.push("ITEMS_CHANGED", &path, "the tuple items changed".into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(writer: Value, reader: Value) -> Vec<String> {
        incompatibilities(&writer, &reader)
            .iter()
            .map(|s| s.split(':').next().unwrap_or_default().to_string())
            .collect()
    }

    fn record(properties: Value, extra: Value) -> Value {
        let mut v = json!({"type": "object", "properties": properties});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        v
    }

    #[test]
    fn what_every_old_document_still_passes_is_compatible() {
        let v1 = record(
            json!({"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 5}}),
            json!({"required": ["a"]}),
        );
        for v2 in [
            // a property removed from an open model; a type widened; a bound loosened
            record(
                json!({"a": {"type": "integer"}}),
                json!({"required": ["a"]}),
            ),
            record(
                json!({"a": {"type": "number"}, "b": {"type": ["string", "null"]}}),
                json!({}),
            ),
            record(
                json!({"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 9}}),
                json!({}),
            ),
            // a property with no constraint added to the open model
            record(
                json!({"a": {"type": "integer"}, "b": {"type": "string"}, "c": {}}),
                json!({}),
            ),
            // an alternative added
            record(
                json!({"a": {"oneOf": [{"type": "integer"}, {"type": "string"}]}, "b": {"type": "string"}}),
                json!({}),
            ),
        ] {
            assert_eq!(kinds(v1.clone(), v2.clone()), Vec::<String>::new(), "{v2}");
        }
        // A property added to a closed model: old documents never have it.
        let closed = record(
            json!({"a": {"type": "integer"}}),
            json!({"additionalProperties": false}),
        );
        let more = record(
            json!({"a": {"type": "integer"}, "c": {"type": "string"}}),
            json!({}),
        );
        assert_eq!(kinds(closed, more), Vec::<String>::new());
    }

    #[test]
    fn what_an_old_document_could_fail_is_named() {
        let v1 = record(
            json!({"a": {"type": "number"}, "b": {"type": "string"}}),
            json!({}),
        );
        let cases = [
            (
                record(
                    json!({"a": {"type": "integer"}, "b": {"type": "string"}}),
                    json!({}),
                ),
                "TYPE_NARROWED",
            ),
            (
                record(
                    json!({"a": {"type": "number"}, "b": {"type": "string"}, "c": {"type": "string"}}),
                    json!({}),
                ),
                "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
            ),
            (
                record(
                    json!({"a": {"type": "number"}, "b": {"type": "string"}}),
                    json!({"required": ["b"]}),
                ),
                "REQUIRED_PROPERTY_ADDED",
            ),
            (
                record(
                    json!({"a": {"type": "number"}}),
                    json!({"additionalProperties": false}),
                ),
                "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
            ),
            (
                record(
                    json!({"a": {"type": "number"}, "b": {"type": "string"}}),
                    json!({"additionalProperties": {"type": "string"}}),
                ),
                "ADDITIONAL_PROPERTIES_NARROWED",
            ),
            (
                record(
                    json!({"a": {"type": "number", "maximum": 3}, "b": {"type": "string"}}),
                    json!({}),
                ),
                "MAXIMUM_ADDED",
            ),
            (
                record(
                    json!({"a": {"type": "number"}, "b": {"enum": ["x"]}}),
                    json!({}),
                ),
                "ENUM_ARRAY_ADDED",
            ),
            (
                record(
                    json!({"a": {"type": "number"}, "b": {"type": "string", "pattern": "^x"}}),
                    json!({}),
                ),
                "KEYWORD_CHANGED",
            ),
        ];
        for (v2, kind) in cases {
            assert_eq!(kinds(v1.clone(), v2.clone())[0], kind, "{v2}");
        }
        // Recursive schemas end.
        let tree = json!({"$ref": "#/definitions/N", "definitions": {"N": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/definitions/N"}}}}}});
        assert_eq!(kinds(tree.clone(), tree), Vec::<String>::new());
    }
}

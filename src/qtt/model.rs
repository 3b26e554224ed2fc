//! The query-validation test file format (see `../shared/ksql-qtt/README.md`), read from
//! JSON into cases ready to run, with `format` and `config` variants expanded.
//!
//! Parsing is by hand over `serde_json::Value` rather than derived, so that one malformed
//! case becomes a failing case with a reason instead of making the whole file unreadable.

use std::collections::BTreeMap;

use base64::Engine as _;
use eddy_topic::Header;
use serde_json::{Map, Value};

/// One runnable case: a test of the file after `format`/`config` expansion.
#[derive(Debug, Clone)]
pub struct Case {
    /// The case name, with the variant appended (`name (JSON)`).
    pub name: String,
    /// `"enabled": false`.
    pub disabled: bool,
    /// What made the case unreadable, if anything; such a case fails without running.
    pub malformed: Option<String>,
    /// SQL statements, `{FORMAT}` already substituted.
    pub statements: Vec<String>,
    /// ksqlDB properties for every statement (`properties`, `{CONFIG}` substituted).
    pub properties: BTreeMap<String, String>,
    /// Topics to create before the statements run.
    pub topics: Vec<TopicSpec>,
    /// Records to produce, in order.
    pub inputs: Vec<RecordSpec>,
    /// Records that must come out, in order per topic.
    pub outputs: Vec<RecordSpec>,
    /// The error the statements (or processing) must fail with.
    pub expected_error: Option<ExpectedError>,
    /// Checks of the catalog and topics after the run.
    pub post: Post,
    /// A REST case (`../shared/ksql-rqtt`): what the REST API must answer, if this is one.
    pub rest: Option<RestExpectations>,
}

/// What a REST query-validation case expects of the REST API.
#[derive(Debug, Clone, Default)]
pub struct RestExpectations {
    /// One entry per answer: `{"admin": …}` per `/ksql` entity, `{"query": […]}` or
    /// `{"queryProto": …}` per query.
    pub responses: Vec<Value>,
    /// `inputConditions.waitForActivePushQuery`: the inputs are produced only once the first
    /// push query runs.
    pub wait_for_push_query: bool,
    /// `testPullWithProtoFormat`: queries are answered in ksqlDB's protobuf answer format.
    pub proto_answers: bool,
}

/// A topic declaration (`topics`).
#[derive(Debug, Clone, Default)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count, if given.
    pub partitions: Option<i32>,
    /// Key format name, if given.
    pub key_format: Option<String>,
    /// Value format name, if given.
    pub value_format: Option<String>,
    /// The schema registered for the keys before the case runs (`keySchema`), as text.
    pub key_schema: Option<String>,
    /// The id it is registered with (`keySchemaId`).
    pub key_schema_id: Option<u32>,
    /// The schema registered for the values (`valueSchema`), as text.
    pub value_schema: Option<String>,
    /// The id it is registered with (`valueSchemaId`).
    pub value_schema_id: Option<u32>,
    /// The schemas the key schema refers to, by name (`keySchemaReferences`): each is
    /// registered under its name as subject.
    pub key_schema_references: Vec<(String, String)>,
    /// The same for the value schema (`valueSchemaReferences`).
    pub value_schema_references: Vec<(String, String)>,
}

/// A record of `inputs` or `outputs`.
#[derive(Debug, Clone)]
pub struct RecordSpec {
    /// Topic name.
    pub topic: String,
    /// Key (`null` when absent).
    pub key: Value,
    /// Value (`null` is a tombstone).
    pub value: Value,
    /// Timestamp in ms, if given.
    pub timestamp: Option<i64>,
    /// Window of a windowed key, if given.
    pub window: Option<WindowBounds>,
    /// The record's headers, if the case gives them (outputs are compared only then).
    pub headers: Option<Vec<Header>>,
}

/// The window of a windowed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowBounds {
    /// Start, in ms.
    pub start: i64,
    /// End, in ms.
    pub end: i64,
    /// Session window (key carries start and end) rather than time window (start only).
    pub session: bool,
}

/// `expectedException`.
#[derive(Debug, Clone)]
pub struct ExpectedError {
    /// A substring of the expected error text.
    pub message: String,
    /// REST cases: the error entity's Java type (`…KsqlStatementErrorMessage`), if given.
    pub entity: Option<String>,
    /// REST cases: the HTTP status, if given.
    pub status: Option<u16>,
}

/// `post`: checks after the run.
#[derive(Debug, Clone, Default)]
pub struct Post {
    /// Sources that must exist.
    pub sources: Vec<SourceCheck>,
    /// Topics that must exist.
    pub topics: Vec<TopicSpec>,
}

/// One entry of `post.sources`.
#[derive(Debug, Clone)]
pub struct SourceCheck {
    /// Source name.
    pub name: String,
    /// `stream` or `table`, if given.
    pub kind: Option<String>,
    /// ksqlDB's schema string, if given.
    pub schema: Option<String>,
    /// Key format name, if given.
    pub key_format: Option<String>,
    /// Value format name, if given.
    pub value_format: Option<String>,
}

/// Reads a test file's text into its cases; `Err` when the file itself is unreadable.
pub fn parse_file(text: &str) -> Result<Vec<Case>, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let tests = doc
        .get("tests")
        .and_then(Value::as_array)
        .ok_or("no \"tests\" array")?;
    let mut cases = Vec::new();
    for (i, test) in tests.iter().enumerate() {
        cases.extend(expand(test, i));
    }
    Ok(cases)
}

/// The variants of one test: one per `format` entry times one per `config` entry.
fn expand(test: &Value, index: usize) -> Vec<Case> {
    let name = test
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("test #{}", index + 1));
    let Some(obj) = test.as_object() else {
        return vec![malformed(name, "a test must be a JSON object")];
    };
    let formats: Vec<Option<String>> = match obj.get("format") {
        Some(Value::Array(list)) if !list.is_empty() => {
            list.iter().map(|f| Some(scalar_text(f))).collect()
        }
        _ => vec![None],
    };
    let uses_config = obj
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.values().any(|v| v.as_str() == Some("{CONFIG}")));
    let configs: Vec<Option<String>> = match obj.get("config") {
        Some(Value::Array(list)) if uses_config && !list.is_empty() => {
            list.iter().map(|c| Some(scalar_text(c))).collect()
        }
        _ => vec![None],
    };
    let mut cases = Vec::new();
    for format in &formats {
        for config in &configs {
            let suffix: Vec<String> = format
                .iter()
                .cloned()
                .chain(config.iter().map(|c| format!("config={c}")))
                .collect();
            let full_name = if suffix.is_empty() {
                name.clone()
            } else {
                format!("{name} ({})", suffix.join(", "))
            };
            cases.push(
                build(obj, full_name.clone(), format.as_deref(), config.as_deref())
                    .unwrap_or_else(|e| malformed(full_name, &e)),
            );
        }
    }
    cases
}

fn malformed(name: String, reason: &str) -> Case {
    Case {
        name,
        disabled: false,
        malformed: Some(reason.to_string()),
        statements: Vec::new(),
        properties: BTreeMap::new(),
        topics: Vec::new(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        expected_error: None,
        post: Post::default(),
        rest: None,
    }
}

fn build(
    obj: &Map<String, Value>,
    name: String,
    format: Option<&str>,
    config: Option<&str>,
) -> Result<Case, String> {
    let substitute = |s: &str| match format {
        Some(f) => s.replace("{FORMAT}", f),
        None => s.to_string(),
    };
    let statements = obj
        .get("statements")
        .and_then(Value::as_array)
        .ok_or("no \"statements\" array")?
        .iter()
        .map(|s| {
            s.as_str()
                .map(substitute)
                .ok_or("a statement is not a string")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut properties = BTreeMap::new();
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let v = match (v.as_str(), config) {
                (Some("{CONFIG}"), Some(c)) => c.to_string(),
                _ => scalar_text(v),
            };
            properties.insert(k.clone(), v);
        }
    }
    let topics = list(obj, "topics")
        .iter()
        .map(|t| topic_spec(t, format))
        .collect::<Result<Vec<_>, _>>()?;
    let inputs = records(obj, "inputs")?;
    let outputs = records(obj, "outputs")?;
    // QTT names it `expectedException`, RQTT `expectedError` (with the entity and status).
    let expected_error = match obj.get("expectedException").or(obj.get("expectedError")) {
        None | Some(Value::Null) => None,
        Some(e) => Some(ExpectedError {
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            entity: e.get("type").and_then(Value::as_str).map(str::to_string),
            status: e
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok()),
        }),
    };
    let rest = (obj.contains_key("responses") || obj.contains_key("expectedError")).then(|| {
        RestExpectations {
            responses: list(obj, "responses").to_vec(),
            wait_for_push_query: obj
                .get("inputConditions")
                .and_then(|c| c.get("waitForActivePushQuery"))
                .and_then(Value::as_bool)
                == Some(true),
            proto_answers: obj.get("testPullWithProtoFormat").and_then(Value::as_bool)
                == Some(true),
        }
    });
    let post = match obj.get("post") {
        Some(p) => post(p, format)?,
        None => Post::default(),
    };
    Ok(Case {
        name,
        disabled: obj.get("enabled").and_then(Value::as_bool) == Some(false),
        malformed: None,
        statements,
        properties,
        topics,
        inputs,
        outputs,
        expected_error,
        post,
        rest,
    })
}

fn list<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a [Value] {
    obj.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// A JSON scalar as text: strings unquoted, everything else as JSON.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A format given as `"JSON"` or `{"format": "JSON", …}`.
fn format_name(v: Option<&Value>, format: Option<&str>) -> Option<String> {
    let name = match v? {
        Value::String(s) => s.clone(),
        Value::Object(o) => o.get("format")?.as_str()?.to_string(),
        _ => return None,
    };
    Some(match format {
        Some(f) => name.replace("{FORMAT}", f),
        None => name,
    })
}

fn topic_spec(t: &Value, format: Option<&str>) -> Result<TopicSpec, String> {
    let name = t
        .get("name")
        .and_then(Value::as_str)
        .ok_or("a topic has no name")?
        .to_string();
    let partitions = match t.get("partitions") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| format!("topic {name}: partitions is not a number"))?,
        ),
    };
    let schema = |key: &str| match t.get(key) {
        None | Some(Value::Null) => None,
        // An Avro primitive is given as its bare name ("int"), a Protobuf schema as text.
        Some(Value::String(s))
            if s.contains("syntax") || s.trim_start().starts_with(['{', '[']) =>
        {
            Some(s.clone())
        }
        Some(other) => Some(other.to_string()),
    };
    let references = |key: &str| -> Vec<(String, String)> {
        t.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let name = r.get("name")?.as_str()?;
                let schema = r.get("schema")?.as_str()?;
                Some((name.to_string(), schema.to_string()))
            })
            .collect()
    };
    let id = |key: &str| {
        t.get(key)
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
    };
    Ok(TopicSpec {
        name,
        partitions,
        key_format: format_name(t.get("keyFormat"), format),
        value_format: format_name(t.get("valueFormat").or(t.get("format")), format),
        key_schema: schema("keySchema"),
        key_schema_id: id("keySchemaId"),
        value_schema: schema("valueSchema"),
        value_schema_id: id("valueSchemaId"),
        key_schema_references: references("keySchemaReferences"),
        value_schema_references: references("valueSchemaReferences"),
    })
}

fn records(obj: &Map<String, Value>, key: &str) -> Result<Vec<RecordSpec>, String> {
    list(obj, key)
        .iter()
        .enumerate()
        .map(|(i, r)| record(r).map_err(|e| format!("{key}[{i}]: {e}")))
        .collect()
}

fn record(r: &Value) -> Result<RecordSpec, String> {
    let topic = r
        .get("topic")
        .and_then(Value::as_str)
        .ok_or("no topic")?
        .to_string();
    let timestamp = match r.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(t) => Some(
            t.as_i64()
                .or_else(|| t.as_f64().map(|f| f as i64))
                .ok_or("timestamp is not a number")?,
        ),
    };
    let window = match r.get("window") {
        None | Some(Value::Null) => None,
        Some(w) => {
            let bound = |k: &str| {
                w.get(k)
                    .and_then(Value::as_i64)
                    .ok_or_else(|| format!("window has no numeric {k}"))
            };
            Some(WindowBounds {
                start: bound("start")?,
                end: bound("end")?,
                session: w
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("session")),
            })
        }
    };
    let headers = match r.get("headers") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(list.iter().map(header).collect::<Result<_, _>>()?),
        Some(other) => return Err(format!("headers must be a list, got {other}")),
    };
    Ok(RecordSpec {
        topic,
        key: r.get("key").cloned().unwrap_or(Value::Null),
        value: r.get("value").cloned().unwrap_or(Value::Null),
        timestamp,
        window,
        headers,
    })
}

/// A header `{"KEY": "name", "VALUE": "base64 bytes" | null}`.
fn header(h: &Value) -> Result<Header, String> {
    let field = |name: &str| {
        h.as_object()
            .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .map(|(_, v)| v)
    };
    let key = field("key")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("header without a KEY: {h}"))?;
    let value = match field("value") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("header VALUE {text} is not base64: {e}"))?,
        ),
        Some(other) => return Err(format!("header VALUE must be base64 text, got {other}")),
    };
    Ok(Header {
        key: key.to_string(),
        value,
    })
}

fn post(p: &Value, format: Option<&str>) -> Result<Post, String> {
    let sources = p
        .get("sources")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            Ok(SourceCheck {
                name: s
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or("post.sources: a source has no name")?
                    .to_string(),
                kind: s.get("type").and_then(Value::as_str).map(str::to_string),
                schema: s.get("schema").and_then(Value::as_str).map(str::to_string),
                key_format: format_name(s.get("keyFormat"), format),
                value_format: format_name(s.get("valueFormat"), format),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    // `post.topics` is `{"topics": [...]}` upstream; a bare list is accepted too.
    let topic_list = match p.get("topics") {
        Some(Value::Object(o)) => o.get("topics").and_then(Value::as_array),
        Some(Value::Array(a)) => Some(a),
        _ => None,
    };
    let topics = topic_list
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|t| topic_spec(t, format))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Post { sources, topics })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_format_and_config() {
        let cases = parse_file(
            r#"{"tests": [{"name": "t", "format": ["JSON", "AVRO"], "config": ["a", "b"],
                "properties": {"p": "{CONFIG}"},
                "statements": ["CREATE STREAM S WITH (value_format='{FORMAT}');"]}]}"#,
        )
        .expect("parses");
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "t (JSON, config=a)",
                "t (JSON, config=b)",
                "t (AVRO, config=a)",
                "t (AVRO, config=b)"
            ]
        );
        assert_eq!(
            cases[2].statements[0],
            "CREATE STREAM S WITH (value_format='AVRO');"
        );
        assert_eq!(cases[1].properties["p"], "b");
    }

    #[test]
    fn malformed_case_is_kept_with_a_reason() {
        let cases = parse_file(r#"{"tests": [{"name": "bad", "statements": 3}]}"#)
            .expect("the file itself parses");
        assert_eq!(cases.len(), 1);
        assert!(cases[0].malformed.is_some());
    }
}

//! Comparing what a case produced with what it expects: output records per topic, and the
//! catalog and topics after the run (`post`).

use eddy_engine::memory::StoredRecord;
use eddy_sql::catalog::{Catalog, SourceKind};
use eddy_topic::Header;
use serde_json::{Value, json};

use super::codec::{TopicLayout, split_window};
use super::model::{Post, RecordSpec, TopicSpec, WindowBounds};

/// Longest rendering of one record in a message.
const MAX_RECORD_TEXT: usize = 300;

/// Compares the records written to `topic` (in write order, the case's own inputs removed)
/// with the expected ones; `Err` names the first difference.
pub fn topic_records(
    topic: &str,
    expected: &[&RecordSpec],
    actual: &[StoredRecord],
    layout: &TopicLayout,
) -> Result<(), String> {
    for (i, exp) in expected.iter().enumerate() {
        let Some(act) = actual.get(i) else {
            return Err(format!(
                "topic {topic}: expected {} records, got {}; first missing: {}",
                expected.len(),
                actual.len(),
                render_expected(exp)
            ));
        };
        if let Some(why) = record_difference(exp, act, layout) {
            return Err(format!(
                "topic {topic} record {}: {why}: expected {}, got {}",
                i + 1,
                render_expected(exp),
                render_actual(act, layout)
            ));
        }
    }
    if actual.len() > expected.len() {
        return Err(format!(
            "topic {topic}: {} unexpected records after the {} expected, first: {}",
            actual.len() - expected.len(),
            expected.len(),
            render_actual(&actual[expected.len()], layout)
        ));
    }
    Ok(())
}

/// What differs between an expected and an actual record, if anything.
fn record_difference(exp: &RecordSpec, act: &StoredRecord, layout: &TopicLayout) -> Option<String> {
    let (key, window) = match (&layout.window, act.key.as_deref()) {
        (Some(spec), Some(bytes)) => match split_window(bytes, spec) {
            Some((inner, w)) => (Some(inner), Some(w)),
            None => return Some("windowed key too short".into()),
        },
        _ => (act.key.clone(), None),
    };
    if let Some(want) = &exp.window {
        match window {
            None => {
                return Some("expected a windowed key but the output topic is not windowed".into());
            }
            Some(w) if w != *want => return Some("window differs".into()),
            Some(_) => {}
        }
    }
    // A keyless record compares equal to an empty key: formats with no key columns differ
    // in whether they write one.
    let key = key.filter(|k| !(k.is_empty() && exp.key.is_null()));
    if !layout.key.matches(&exp.key, key.as_deref()) {
        return Some("key differs".into());
    }
    if !layout.value.matches(&exp.value, act.value.as_deref()) {
        return Some("value differs".into());
    }
    if let Some(ts) = exp.timestamp
        && ts != act.timestamp
    {
        return Some("timestamp differs".into());
    }
    if exp.headers.as_ref().is_some_and(|h| *h != act.headers) {
        return Some("headers differ".into());
    }
    None
}

fn render_expected(r: &RecordSpec) -> String {
    let mut v = json!({"key": r.key, "value": r.value});
    if let Some(ts) = r.timestamp {
        v["timestamp"] = json!(ts);
    }
    if let Some(w) = &r.window {
        v["window"] = render_window(w);
    }
    if let Some(headers) = &r.headers {
        v["headers"] = render_headers(headers);
    }
    clip(v.to_string())
}

fn render_actual(r: &StoredRecord, layout: &TopicLayout) -> String {
    let mut v = json!({});
    match (&layout.window, r.key.as_deref()) {
        (Some(spec), Some(bytes)) => match split_window(bytes, spec) {
            Some((inner, w)) => {
                v["key"] = layout.key.decode(Some(&inner));
                v["window"] = render_window(&w);
            }
            None => v["key"] = layout.key.decode(Some(bytes)),
        },
        (_, key) => v["key"] = layout.key.decode(key),
    }
    v["value"] = layout.value.decode(r.value.as_deref());
    v["timestamp"] = json!(r.timestamp);
    if !r.headers.is_empty() {
        v["headers"] = render_headers(&r.headers);
    }
    clip(v.to_string())
}

/// Headers as the cases write them: `[{"KEY": …, "VALUE": base64}]`.
fn render_headers(headers: &[Header]) -> Value {
    use base64::Engine as _;
    headers
        .iter()
        .map(|h| {
            let value = h
                .value
                .as_ref()
                .map(|v| base64::engine::general_purpose::STANDARD.encode(v));
            json!({"KEY": h.key, "VALUE": value})
        })
        .collect()
}

fn render_window(w: &WindowBounds) -> Value {
    json!({"start": w.start, "end": w.end, "type": if w.session { "session" } else { "time" }})
}

fn clip(mut s: String) -> String {
    if s.len() > MAX_RECORD_TEXT {
        let mut end = MAX_RECORD_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Checks `post.sources` against the catalog and `post.topics` against the topics that
/// exist (`partitions` gives each one's partition count, `None` if it does not exist).
pub fn post(
    post: &Post,
    catalog: &Catalog,
    partitions: impl Fn(&str) -> Option<i32>,
) -> Result<(), String> {
    for check in &post.sources {
        let source = catalog
            .get(&check.name)
            .or_else(|| {
                catalog
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(&check.name))
            })
            .ok_or_else(|| format!("post: source {} does not exist", check.name))?;
        if let Some(kind) = &check.kind {
            let actual = match source.kind {
                SourceKind::Stream => "stream",
                SourceKind::Table => "table",
            };
            if !kind.eq_ignore_ascii_case(actual) {
                return Err(format!(
                    "post: {} is a {actual}, expected a {}",
                    check.name,
                    kind.to_ascii_lowercase()
                ));
            }
        }
        if let Some(schema) = &check.schema {
            let actual = source.schema_string();
            if normalise_schema(schema) != normalise_schema(&actual) {
                return Err(format!(
                    "post: schema of {} differs: expected {schema}, got {actual}",
                    check.name
                ));
            }
        }
        let formats = [
            ("key", &check.key_format, source.key_format),
            ("value", &check.value_format, source.value_format),
        ];
        for (side, expected, actual) in formats {
            if let Some(expected) = expected
                && !expected.eq_ignore_ascii_case(&actual.to_string())
            {
                return Err(format!(
                    "post: {side} format of {} is {actual}, expected {expected}",
                    check.name
                ));
            }
        }
    }
    check_topics(&post.topics, partitions)
}

fn check_topics(
    topics: &[TopicSpec],
    partitions: impl Fn(&str) -> Option<i32>,
) -> Result<(), String> {
    for topic in topics {
        let actual = partitions(&topic.name)
            .ok_or_else(|| format!("post: topic {} does not exist", topic.name))?;
        if let Some(expected) = topic.partitions
            && expected != actual
        {
            return Err(format!(
                "post: topic {} has {actual} partitions, expected {expected}",
                topic.name
            ));
        }
    }
    Ok(())
}

/// A schema string in a canonical form: backticks dropped (quoted names keep their case),
/// unquoted words upper-cased with type synonyms unified (`INT` = `INTEGER`, `VARCHAR` =
/// `STRING`), and no whitespace beyond single spaces between words.
pub fn normalise_schema(schema: &str) -> String {
    let mut tokens: Vec<String> = Vec::new();
    let mut chars = schema.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            let mut name = String::new();
            while let Some(n) = chars.next() {
                if n == '`' {
                    // A doubled backtick is an escaped one inside the name.
                    if chars.peek() == Some(&'`') {
                        chars.next();
                    } else {
                        break;
                    }
                }
                name.push(n);
            }
            tokens.push(format!("w:{name}"));
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = String::from(c);
            while let Some(n) = chars.peek().copied() {
                if n.is_alphanumeric() || n == '_' {
                    word.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            let word = word.to_ascii_uppercase();
            let word = match word.as_str() {
                "INT" => "INTEGER".to_string(),
                "VARCHAR" => "STRING".to_string(),
                _ => word,
            };
            tokens.push(format!("w:{word}"));
        } else if !c.is_whitespace() {
            tokens.push(format!("p:{c}"));
        }
    }
    // `PRIMARY KEY` and `KEY` mean the same in a schema string (a table's key column is
    // written either way in ksqlDB's test files).
    tokens.retain(|t| t != "w:PRIMARY");
    let mut out = String::new();
    let mut prev_word = false;
    for t in tokens {
        let (kind, text) = t.split_at(2);
        let word = kind == "w:";
        if word && prev_word {
            out.push(' ');
        }
        out.push_str(text);
        prev_word = word;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_normalise() {
        assert_eq!(
            normalise_schema("`ID` BIGINT KEY, `v`  varchar, `M` MAP<STRING, INT>"),
            normalise_schema("ID BIGINT KEY,`v` STRING, `M` MAP<STRING,INTEGER>")
        );
        assert_ne!(
            normalise_schema("`v` STRING"),
            normalise_schema("`V` STRING")
        );
        assert_ne!(normalise_schema("`A` INT"), normalise_schema("`A` BIGINT"));
    }
}

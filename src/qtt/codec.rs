//! Test records to bytes and back, the way ksqlDB's test harness serialises them: JSON as
//! JSON text, DELIMITED as the given text, KAFKA as Kafka's primitive serialisers for the
//! column's type, windowed keys with the window start (and end, for sessions) appended.

use eddy_engine::processing_log::PROCESSING_LOG_STREAM;
use eddy_sql::catalog::{Catalog, Column, FormatName};
use eddy_sql::types::SqlType;
use eddy_sql::window::WindowSpec;
use serde_json::Value;

use std::sync::Arc;

use eddy_registry::SchemaRegistry;

use super::avro::AvroLayout;
use super::model::{TopicSpec, WindowBounds, scalar_text};
use super::protobuf::ProtobufLayout;

/// How one side (key or value) of a topic's records is serialised.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The format.
    pub format: FormatName,
    /// The columns the format carries (empty when no source describes the topic).
    pub columns: Vec<Column>,
    /// Field separator for DELIMITED.
    pub delimiter: char,
    /// For AVRO: where the schemas are.
    pub avro: Option<AvroLayout>,
    /// For PROTOBUF and PROTOBUF_NOSR: where the schemas are, and how derived ones look.
    pub protobuf: Option<ProtobufLayout>,
}

/// How a topic's records are serialised.
#[derive(Debug, Clone)]
pub struct TopicLayout {
    /// Keys.
    pub key: Layout,
    /// Values.
    pub value: Layout,
    /// The window of windowed keys.
    pub window: Option<WindowSpec>,
}

impl TopicLayout {
    /// The layout of `topic`: from the stream or table over it, else from the case's topic
    /// declaration, else ksqlDB's defaults (KAFKA keys, JSON values).
    pub fn of(
        topic: &str,
        catalog: &Catalog,
        specs: &[TopicSpec],
        registry: &Arc<dyn SchemaRegistry>,
    ) -> TopicLayout {
        let avro = |format: FormatName, value: bool, wrapped: bool, full_name: Option<&String>| {
            matches!(format, FormatName::Avro | FormatName::JsonSr).then(|| AvroLayout {
                registry: Arc::clone(registry),
                subject: eddy_registry::subject(topic, value),
                wrapped,
                full_name: full_name.cloned(),
            })
        };
        let protobuf = |format: FormatName,
                        value: bool,
                        full_name: Option<&String>,
                        nullable: Option<&String>| {
            format.is_protobuf().then(|| ProtobufLayout {
                registry: (format == FormatName::Protobuf).then(|| Arc::clone(registry)),
                subject: eddy_registry::subject(topic, value),
                full_name: full_name.cloned(),
                nullable: nullable
                    .and_then(|n| eddy_formats::NullableRepresentation::parse(n))
                    .unwrap_or_default(),
            })
        };
        if let Some(source) = catalog
            .iter()
            .find(|s| s.topic == topic && s.name != PROCESSING_LOG_STREAM)
        {
            let keys: Vec<Column> = source.key_columns().cloned().collect();
            let key_wrapped = keys.len() != 1;
            return TopicLayout {
                key: Layout {
                    format: source.key_format,
                    avro: avro(
                        source.key_format,
                        false,
                        key_wrapped,
                        source.schemas.key_full_name.as_ref(),
                    ),
                    protobuf: protobuf(
                        source.key_format,
                        false,
                        source.schemas.key_full_name.as_ref(),
                        source.schemas.key_protobuf_nullable.as_ref(),
                    ),
                    columns: keys,
                    delimiter: source.key_delimiter,
                },
                value: Layout {
                    format: source.value_format,
                    columns: source.value_columns().cloned().collect(),
                    delimiter: source.value_delimiter,
                    avro: avro(
                        source.value_format,
                        true,
                        source.wrap_single_value,
                        source.schemas.value_full_name.as_ref(),
                    ),
                    protobuf: protobuf(
                        source.value_format,
                        true,
                        source.schemas.value_full_name.as_ref(),
                        source.schemas.value_protobuf_nullable.as_ref(),
                    ),
                },
                window: source.window.clone(),
            };
        }
        let spec = specs.iter().find(|s| s.name == topic);
        let named =
            |f: Option<&String>, default| f.and_then(|f| FormatName::parse(f)).unwrap_or(default);
        let key_format = named(spec.and_then(|s| s.key_format.as_ref()), FormatName::Kafka);
        let value_format = named(spec.and_then(|s| s.value_format.as_ref()), FormatName::Json);
        TopicLayout {
            key: Layout {
                format: key_format,
                columns: Vec::new(),
                delimiter: ',',
                avro: avro(key_format, false, false, None),
                protobuf: protobuf(key_format, false, None, None),
            },
            value: Layout {
                format: value_format,
                columns: Vec::new(),
                delimiter: ',',
                avro: avro(value_format, true, true, None),
                protobuf: protobuf(value_format, true, None, None),
            },
            window: None,
        }
    }
}

impl Layout {
    /// The bytes of a test record's key or value (`None` for `null`: no key, tombstone).
    pub fn encode(&self, v: &Value) -> Option<Vec<u8>> {
        if v.is_null() {
            return None;
        }
        Some(match self.format {
            FormatName::Delimited => self.delimited(v).into_bytes(),
            FormatName::Kafka => match self.single_column() {
                Some(ty) => kafka_bytes(ty, v),
                None => scalar_text(v).into_bytes(),
            },
            FormatName::None => return None,
            FormatName::Avro => match &self.avro {
                // A value that cannot be written with the schema is sent as text, which the
                // reader rejects as a record without a schema id.
                Some(avro) => avro
                    .encode(&self.columns, v)
                    .unwrap_or_else(|e| format!("not AVRO: {e}").into_bytes()),
                None => v.to_string().into_bytes(),
            },
            FormatName::JsonSr => match &self.avro {
                Some(sr) => sr
                    .encode_json_sr(&self.columns, v)
                    .unwrap_or_else(|e| format!("not JSON_SR: {e}").into_bytes()),
                None => v.to_string().into_bytes(),
            },
            FormatName::Protobuf | FormatName::ProtobufNoSr => match &self.protobuf {
                Some(pb) => pb
                    .encode(&self.columns, v)
                    .unwrap_or_else(|e| format!("not PROTOBUF: {e}").into_bytes()),
                None => v.to_string().into_bytes(),
            },
            FormatName::Json => v.to_string().into_bytes(),
        })
    }

    /// Whether the actual bytes carry the expected key or value: JSON by content (numbers by
    /// value), the other formats by their serialised form.
    pub fn matches(&self, expected: &Value, actual: Option<&[u8]>) -> bool {
        match (self.format, actual) {
            (_, None) => expected.is_null(),
            (FormatName::Json, Some(bytes)) => match serde_json::from_slice::<Value>(bytes) {
                Ok(v) => json_eq(expected, &v),
                Err(_) => false,
            },
            (FormatName::Avro, Some(bytes)) => match &self.avro {
                Some(avro) => avro.decode(bytes).is_ok_and(|v| json_eq(expected, &v)),
                None => false,
            },
            (FormatName::Protobuf | FormatName::ProtobufNoSr, Some(bytes)) => {
                match &self.protobuf {
                    Some(pb) => pb
                        .decode(&self.columns, bytes)
                        .is_ok_and(|v| json_eq(expected, &v)),
                    None => false,
                }
            }
            (FormatName::JsonSr, Some(bytes)) => match &self.avro {
                Some(sr) => sr
                    .decode_json_sr(bytes)
                    .is_ok_and(|v| json_eq(expected, &v)),
                None => false,
            },
            (FormatName::Kafka, Some(bytes)) => {
                self.encode(expected).as_deref() == Some(bytes)
                    || json_eq(expected, &self.decode(Some(bytes)))
            }
            (_, Some(bytes)) => self.encode(expected).as_deref() == Some(bytes),
        }
    }

    /// Actual bytes as a JSON value, for messages.
    pub fn decode(&self, bytes: Option<&[u8]>) -> Value {
        let Some(bytes) = bytes else {
            return Value::Null;
        };
        match self.format {
            FormatName::Json => serde_json::from_slice(bytes).unwrap_or_else(|_| raw(bytes)),
            FormatName::Avro => match &self.avro {
                Some(avro) => avro
                    .decode(bytes)
                    .unwrap_or_else(|e| Value::String(format!("undecodable AVRO: {e}"))),
                None => raw(bytes),
            },
            FormatName::JsonSr => match &self.avro {
                Some(sr) => sr
                    .decode_json_sr(bytes)
                    .unwrap_or_else(|e| Value::String(format!("undecodable JSON_SR: {e}"))),
                None => raw(bytes),
            },
            FormatName::Protobuf | FormatName::ProtobufNoSr => match &self.protobuf {
                Some(pb) => pb
                    .decode(&self.columns, bytes)
                    .unwrap_or_else(|e| Value::String(format!("undecodable PROTOBUF: {e}"))),
                None => raw(bytes),
            },
            FormatName::Kafka => match self.single_column() {
                Some(ty) => kafka_value(ty, bytes),
                None => raw(bytes),
            },
            _ => raw(bytes),
        }
    }

    fn single_column(&self) -> Option<&SqlType> {
        match self.columns.as_slice() {
            [only] => Some(&only.ty),
            _ => None,
        }
    }

    /// DELIMITED text: a string is the record itself; an object is laid out in column order.
    fn delimited(&self, v: &Value) -> String {
        match v {
            Value::Object(fields) if !self.columns.is_empty() => {
                let sep = self.delimiter.to_string();
                self.columns
                    .iter()
                    .map(|c| {
                        let field = fields.get(&c.name).or_else(|| {
                            fields
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                                .map(|(_, v)| v)
                        });
                        match field {
                            None | Some(Value::Null) => String::new(),
                            Some(Value::String(s)) => csv_field(s, self.delimiter),
                            Some(other) => other.to_string(),
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(&sep)
            }
            other => scalar_text(other),
        }
    }
}

/// A string field, quoted when it holds the delimiter, a quote or a line break.
fn csv_field(s: &str, delimiter: char) -> String {
    if s.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Kafka's serialisers: big-endian INT/BIGINT/DOUBLE, UTF-8 STRING, raw BYTES (given as
/// base64). A value that does not fit the type is sent as text, which the reader rejects as
/// ksqlDB's deserialiser would.
fn kafka_bytes(ty: &SqlType, v: &Value) -> Vec<u8> {
    let text = scalar_text(v);
    let as_i64 = || v.as_i64().or_else(|| text.trim().parse().ok());
    let encoded = match ty {
        SqlType::Int => as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(|n| n.to_be_bytes().to_vec()),
        SqlType::Bigint => as_i64().map(|n| n.to_be_bytes().to_vec()),
        SqlType::Double => v
            .as_f64()
            .or_else(|| text.trim().parse().ok())
            .map(|n: f64| n.to_be_bytes().to_vec()),
        SqlType::Bytes => v.as_str().and_then(base64_decode),
        _ => None,
    };
    encoded.unwrap_or_else(|| text.into_bytes())
}

fn kafka_value(ty: &SqlType, bytes: &[u8]) -> Value {
    let decoded = match ty {
        SqlType::Int => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| Value::from(i32::from_be_bytes(b))),
        SqlType::Bigint => <[u8; 8]>::try_from(bytes)
            .ok()
            .map(|b| Value::from(i64::from_be_bytes(b))),
        SqlType::Double => <[u8; 8]>::try_from(bytes).ok().map(|b| {
            let d = f64::from_be_bytes(b);
            serde_json::Number::from_f64(d)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(d.to_string()))
        }),
        SqlType::Bytes => Some(Value::String(base64_encode(bytes))),
        _ => None,
    };
    decoded.unwrap_or_else(|| raw(bytes))
}

/// Bytes shown as text when they are UTF-8, else as hex.
fn raw(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::String(s.to_string()),
        Err(_) => Value::String(format!(
            "0x{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )),
    }
}

/// JSON equality with numbers compared by value (`1 == 1.0`) and objects by content. Field
/// names match regardless of case, as in ksqlDB's harness, whose expected records name the
/// column `COLORS` as `colors` and `COLORS` in one case (`json_array_length.json`).
pub fn json_eq(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (a.as_u64(), b.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => a.as_f64() == b.as_f64(),
            },
        },
        // ksqlDB's harness reads both sides with the column's type: a DECIMAL expected as
        // text ("3.40") equals the number written.
        (Value::String(text), Value::Number(n)) => text
            .parse::<f64>()
            .is_ok_and(|x| Some(x) == n.as_f64() && text.contains('.')),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(a), Value::Object(b)) => {
            let field = |k: &str| {
                b.get(k).or_else(|| {
                    let mut same = b.iter().filter(|(name, _)| name.eq_ignore_ascii_case(k));
                    match (same.next(), same.next()) {
                        (Some((_, y)), None) => Some(y),
                        _ => None,
                    }
                })
            };
            a.len() == b.len()
                && a.iter()
                    .all(|(k, x)| field(k).is_some_and(|y| json_eq(x, y)))
        }
        (a, b) => a == b,
    }
}

/// Appends the window to key bytes as Kafka Streams' windowed serialisers do: the start for
/// time windows, the end then the start for session windows.
pub fn window_key(key: Option<Vec<u8>>, window: &WindowBounds) -> Vec<u8> {
    let mut bytes = key.unwrap_or_default();
    if window.session {
        bytes.extend_from_slice(&window.end.to_be_bytes());
    }
    bytes.extend_from_slice(&window.start.to_be_bytes());
    bytes
}

/// Splits a windowed key into the inner key and its window (`None` if too short).
pub fn split_window(bytes: &[u8], spec: &WindowSpec) -> Option<(Vec<u8>, WindowBounds)> {
    let be = |b: &[u8]| <[u8; 8]>::try_from(b).ok().map(i64::from_be_bytes);
    match spec {
        WindowSpec::Session { .. } => {
            let at = bytes.len().checked_sub(16)?;
            let end = be(&bytes[at..at + 8])?;
            let start = be(&bytes[at + 8..])?;
            Some((
                bytes[..at].to_vec(),
                WindowBounds {
                    start,
                    end,
                    session: true,
                },
            ))
        }
        WindowSpec::Tumbling { size, .. } | WindowSpec::Hopping { size, .. } => {
            let at = bytes.len().checked_sub(8)?;
            let start = be(&bytes[at..])?;
            let size = i64::try_from(size.as_millis()).unwrap_or(i64::MAX);
            Some((
                bytes[..at].to_vec(),
                WindowBounds {
                    start,
                    end: start.saturating_add(size),
                    session: false,
                },
            ))
        }
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = BASE64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sql::catalog::ColumnRole;
    use serde_json::json;

    fn kafka(ty: SqlType) -> Layout {
        Layout {
            format: FormatName::Kafka,
            columns: vec![Column {
                name: "K".into(),
                ty,
                role: ColumnRole::Key,
            }],
            delimiter: ',',
            avro: None,
            protobuf: None,
        }
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(json_eq(
            &json!({"A": 1, "B": [2.0]}),
            &json!({"B": [2], "A": 1.0})
        ));
        assert!(!json_eq(&json!({"A": 1}), &json!({"A": 1, "B": null})));
    }

    #[test]
    fn a_decimal_expected_as_text_equals_its_number() {
        assert!(json_eq(&json!({"L0": "3.40"}), &json!({"L0": 3.4})));
        assert!(!json_eq(&json!({"L0": "3.41"}), &json!({"L0": 3.4})));
        assert!(!json_eq(&json!({"L0": "3"}), &json!({"L0": 3})));
    }

    #[test]
    fn field_names_match_regardless_of_case_unless_ambiguous() {
        assert!(json_eq(&json!({"colors": [1]}), &json!({"COLORS": [1]})));
        assert!(!json_eq(&json!({"colors": [1]}), &json!({"COLORS": [2]})));
        assert!(json_eq(&json!({"a": 1, "A": 2}), &json!({"A": 2, "a": 1})));
        assert!(!json_eq(&json!({"b": 1, "X": 2}), &json!({"B": 1, "b": 2})));
    }

    #[test]
    fn kafka_primitives_round_trip() {
        let int = kafka(SqlType::Int);
        assert_eq!(int.encode(&json!(1)), Some(vec![0, 0, 0, 1]));
        assert!(int.matches(&json!(1), Some(&[0, 0, 0, 1])));
        assert_eq!(kafka(SqlType::Bigint).decode(Some(&[0; 8])), json!(0));
        assert_eq!(
            kafka(SqlType::String).encode(&json!("a")),
            Some(b"a".to_vec())
        );
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())), Some(s.into()));
        }
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn windows_round_trip() {
        let spec = WindowSpec::Session {
            gap: std::time::Duration::from_secs(1),
            retention: None,
            grace: None,
        };
        let w = WindowBounds {
            start: 5,
            end: 9,
            session: true,
        };
        let bytes = window_key(Some(b"k".to_vec()), &w);
        assert_eq!(split_window(&bytes, &spec), Some((b"k".to_vec(), w)));
    }
}

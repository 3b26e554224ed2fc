//! PROTOBUF and PROTOBUF_NOSR test records, as ksqlDB's harness handles them: a JSON test
//! value is written with the subject's registered schema (or, when none is registered, the
//! schema ksqlDB derives from the source's columns), and records read back are turned into
//! JSON with the schema their id names. Messages are built and parsed with `prost-reflect`'s
//! dynamic messages, not with Eddy's codec, so the cases check that codec against an
//! independent implementation.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use eddy_formats::{NullableRepresentation, protobuf_schema};
use eddy_registry::{Schema, SchemaRegistry, SchemaType, split_wire, wire_prefix};
use eddy_sql::catalog::Column;
use prost_reflect::prost::Message as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _,
};
use serde_json::{Map, Value};

use super::avro::{big_endian, decimal_json, fields_of, unscaled};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How one side (key or value) of a topic's Protobuf records is written.
#[derive(Debug, Clone)]
pub struct ProtobufLayout {
    /// The case's registry; `None` for PROTOBUF_NOSR.
    pub registry: Option<Arc<dyn SchemaRegistry>>,
    /// `<topic>-key` or `<topic>-value`.
    pub subject: String,
    /// The message name of a derived schema, and the message to write.
    pub full_name: Option<String>,
    /// How a derived schema declares nullable columns.
    pub nullable: NullableRepresentation,
}

impl ProtobufLayout {
    /// The schema id (none for PROTOBUF_NOSR) and message records are written with.
    fn writer(&self, columns: &[Column]) -> Result<(Option<u32>, MessageDescriptor), String> {
        let derive = || {
            eddy_formats::derive_proto(
                &fields_of(columns),
                self.full_name.as_deref(),
                self.nullable,
            )
            .map_err(|e| e.to_string())
        };
        let Some(registry) = &self.registry else {
            let file = protobuf_schema::compile(&derive()?, &[])?;
            return Ok((
                None,
                protobuf_schema::message(&file, self.full_name.as_deref())?,
            ));
        };
        let (id, schema) = match registry.latest(&self.subject).map_err(|e| e.to_string())? {
            Some(latest) => (latest.id, latest.schema),
            None => {
                let schema = Schema::new(SchemaType::Protobuf, derive()?);
                let id = registry
                    .register(&self.subject, &schema)
                    .map_err(|e| e.to_string())?;
                (id, Arc::new(schema))
            }
        };
        let references = eddy_formats::protobuf_references(registry.as_ref(), &schema)?;
        let file = protobuf_schema::compile(&schema.text, &references)?;
        Ok((
            Some(id),
            protobuf_schema::message(&file, self.full_name.as_deref())?,
        ))
    }

    /// The bytes of a JSON test value.
    pub fn encode(&self, columns: &[Column], v: &Value) -> Result<Vec<u8>, String> {
        let (id, message) = self.writer(columns)?;
        let m = to_message(&message, v)?;
        let mut bytes = Vec::new();
        if let Some(id) = id {
            bytes.extend_from_slice(&wire_prefix(id));
            protobuf_schema::write_indexes(&mut bytes, &protobuf_schema::index_path(&message));
        }
        m.encode(&mut bytes).map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    /// A record's bytes as JSON, read with the schema its id names (PROTOBUF_NOSR: with the
    /// schema derived from the columns).
    pub fn decode(&self, columns: &[Column], bytes: &[u8]) -> Result<Value, String> {
        let Some(registry) = &self.registry else {
            let (_, message) = self.writer(columns)?;
            let m = DynamicMessage::decode(message, bytes).map_err(|e| e.to_string())?;
            return Ok(message_json(&m));
        };
        let (id, mut body) = split_wire(bytes).ok_or("not in the schema-registry wire format")?;
        let path = protobuf_schema::read_indexes(&mut body)?;
        let schema = registry.schema(id).map_err(|e| e.to_string())?;
        let references = eddy_formats::protobuf_references(registry.as_ref(), &schema)?;
        let file = protobuf_schema::compile(&schema.text, &references)?;
        let message = protobuf_schema::message_at(&file, &path)?;
        let m = DynamicMessage::decode(message, body).map_err(|e| e.to_string())?;
        Ok(message_json(&m))
    }
}

/// The member of `object` named `name`, exactly or else ignoring case.
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The `oneof` of a field, unless it is a proto3 `optional` field's: Kafka Connect reads a
/// oneof as one STRUCT named as the oneof, of its members.
fn real_oneof(field: &FieldDescriptor) -> Option<prost_reflect::OneofDescriptor> {
    field.containing_oneof().filter(|o| !o.is_synthetic())
}

/// A JSON object as a message: its keys fill the fields of their name (exactly, else
/// ignoring case), a oneof's member from the object under the oneof's name; a null, like a
/// missing key, leaves the field out.
fn to_message(message: &MessageDescriptor, v: &Value) -> Result<DynamicMessage, String> {
    let Value::Object(object) = v else {
        return Err(format!("{v} is not an object"));
    };
    let mut m = DynamicMessage::new(message.clone());
    for field in message.fields() {
        let value = match real_oneof(&field) {
            Some(oneof) => match member(object, oneof.name()) {
                Some(Value::Object(members)) => member(members, field.name()),
                _ => None,
            },
            None => member(object, field.name()),
        };
        let Some(value) = value.filter(|v| !v.is_null()) else {
            continue;
        };
        let value = field_value(&field, value).map_err(|e| format!("{}: {e}", field.name()))?;
        m.set_field(&field, value);
    }
    Ok(m)
}

fn field_value(field: &FieldDescriptor, v: &Value) -> Result<prost_reflect::Value, String> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err("a map without entries".into());
        };
        let value_field = entry.map_entry_value_field();
        let Value::Object(object) = v else {
            return Err(format!("{v} is not a map"));
        };
        let mut map = HashMap::new();
        for (k, item) in object {
            let item = if item.is_null() {
                prost_reflect::Value::default_value_for_field(&value_field)
            } else {
                single_value(&value_field, item)?
            };
            map.insert(MapKey::String(k.clone()), item);
        }
        return Ok(prost_reflect::Value::Map(map));
    }
    if field.is_list() {
        let Value::Array(items) = v else {
            return Err(format!("{v} is not an array"));
        };
        return items
            .iter()
            .map(|item| match item {
                // Protobuf has no null items: Connect writes the type's default.
                Value::Null => Ok(prost_reflect::Value::default_value(&field.kind())),
                item => single_value(field, item),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(prost_reflect::Value::List);
    }
    single_value(field, v)
}

fn single_value(field: &FieldDescriptor, v: &Value) -> Result<prost_reflect::Value, String> {
    use prost_reflect::Value as P;
    let int = || {
        v.as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| format!("{v} is not an integer"))
    };
    let float = || {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| format!("{v} is not a number"))
    };
    Ok(match field.kind() {
        Kind::Bool => P::Bool(v.as_bool().ok_or_else(|| format!("{v} is not a boolean"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            P::I32(i32::try_from(int()?).map_err(|e| e.to_string())?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => P::I64(int()?),
        Kind::Uint32 | Kind::Fixed32 => P::U32(u32::try_from(int()?).map_err(|e| e.to_string())?),
        Kind::Uint64 | Kind::Fixed64 => P::U64(u64::try_from(int()?).map_err(|e| e.to_string())?),
        Kind::Float => P::F32(float()? as f32),
        Kind::Double => P::F64(float()?),
        Kind::String => P::String(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }),
        Kind::Bytes => P::Bytes(
            B64.decode(
                v.as_str()
                    .ok_or_else(|| format!("{v} is not base64 bytes"))?,
            )
            .map_err(|e| e.to_string())?
            .into(),
        ),
        Kind::Enum(e) => match v {
            Value::String(name) => P::EnumNumber(
                e.get_value_by_name(name)
                    .ok_or_else(|| format!("{name} is not a symbol of {}", e.name()))?
                    .number(),
            ),
            _ => P::EnumNumber(i32::try_from(int()?).map_err(|e| e.to_string())?),
        },
        Kind::Message(message) => {
            let set = |values: Vec<(u32, P)>| {
                let mut m = DynamicMessage::new(message.clone());
                for (number, value) in values {
                    m.set_field_by_number(number, value);
                }
                P::Message(m)
            };
            match message.full_name() {
                name if name.starts_with("google.protobuf.") && name.ends_with("Value") => {
                    let inner = message.get_field(1).ok_or("a wrapper without a value")?;
                    set(vec![(1, single_value(&inner, v)?)])
                }
                "google.protobuf.Timestamp" => {
                    let millis = int()?;
                    set(vec![
                        (1, P::I64(millis.div_euclid(1_000))),
                        (2, P::I32((millis.rem_euclid(1_000) * 1_000_000) as i32)),
                    ])
                }
                "google.type.Date" => {
                    let (year, month, day) = civil_from_days(int()?);
                    set(vec![
                        (1, P::I32(year)),
                        (2, P::I32(month)),
                        (3, P::I32(day)),
                    ])
                }
                "google.type.TimeOfDay" => {
                    let millis = int()?;
                    set(vec![
                        (1, P::I32((millis / 3_600_000) as i32)),
                        (2, P::I32((millis / 60_000 % 60) as i32)),
                        (3, P::I32((millis / 1_000 % 60) as i32)),
                        (4, P::I32((millis % 1_000 * 1_000_000) as i32)),
                    ])
                }
                "confluent.type.Decimal" => {
                    let scale = decimal_scale(field);
                    let n = unscaled(v, scale)?;
                    set(vec![
                        (1, P::Bytes(big_endian(n).into())),
                        (3, P::I32(scale as i32)),
                    ])
                }
                _ => P::Message(to_message(&message, v)?),
            }
        }
    })
}

/// A decimal field's scale, from its `confluent.field_meta` parameters.
fn decimal_scale(field: &FieldDescriptor) -> usize {
    let pool = field.parent_pool();
    if let Some(meta) = pool.get_extension_by_name("confluent.field_meta") {
        let options = field.options();
        if let prost_reflect::Value::Message(m) = options.get_extension(&meta).as_ref()
            && let Some(params) = m.get_field_by_name("params")
            && let prost_reflect::Value::Map(params) = params.as_ref()
            && let Some(scale) = params.get(&MapKey::String("scale".into()))
            && let Some(scale) = scale.as_str().and_then(|s| s.parse().ok())
        {
            return scale;
        }
    }
    0
}

/// A message as JSON, as ksqlDB's harness reads it: every field (an absent plain field is
/// its default, but for `bytes`; an absent message, wrapper, `optional` or `bytes` field is
/// null).
fn message_json(m: &DynamicMessage) -> Value {
    let mut out = Map::new();
    for field in m.descriptor().fields() {
        let absent_is_null = field.supports_presence() || field.kind() == Kind::Bytes;
        let v = if !field.is_list() && !field.is_map() && absent_is_null && !m.has_field(&field) {
            Value::Null
        } else {
            value_json(&field, &m.get_field(&field))
        };
        if let Some(oneof) = real_oneof(&field) {
            let set = oneof.fields().any(|f| m.has_field(&f));
            let group = out.entry(oneof.name().to_string()).or_insert_with(|| {
                if set {
                    Value::Object(Map::new())
                } else {
                    Value::Null
                }
            });
            if let Value::Object(members) = group {
                members.insert(field.name().to_string(), v);
            }
            continue;
        }
        out.insert(field.name().to_string(), v);
    }
    Value::Object(out)
}

fn value_json(field: &FieldDescriptor, v: &prost_reflect::Value) -> Value {
    use prost_reflect::Value as P;
    match v {
        P::Bool(b) => Value::Bool(*b),
        P::I32(n) => Value::from(*n),
        P::I64(n) => Value::from(*n),
        P::U32(n) => Value::from(*n),
        P::U64(n) => Value::from(*n),
        P::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        P::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        P::String(s) => Value::String(s.clone()),
        P::Bytes(b) => Value::String(B64.encode(b)),
        P::EnumNumber(n) => match field.kind() {
            Kind::Enum(e) => e
                .get_value(*n)
                .map_or_else(|| Value::from(*n), |s| Value::String(s.name().to_string())),
            _ => Value::from(*n),
        },
        P::List(items) => Value::Array(items.iter().map(|i| value_json(field, i)).collect()),
        P::Map(entries) => {
            let value_field = match field.kind() {
                Kind::Message(entry) => Some(entry.map_entry_value_field()),
                _ => None,
            };
            Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            MapKey::String(s) => s.clone(),
                            other => format!("{other:?}"),
                        };
                        let v = value_field
                            .as_ref()
                            .map_or(Value::Null, |f| value_json(f, v));
                        (key, v)
                    })
                    .collect(),
            )
        }
        P::Message(m) => {
            let number = |n: u32| match m.get_field_by_number(n).as_deref() {
                Some(P::I32(v)) => i64::from(*v),
                Some(P::I64(v)) => *v,
                Some(P::U32(v)) => i64::from(*v),
                _ => 0,
            };
            match m.descriptor().full_name() {
                name if name.starts_with("google.protobuf.") && name.ends_with("Value") => {
                    match (m.descriptor().get_field(1), m.get_field_by_number(1)) {
                        (Some(inner), Some(v)) => value_json(&inner, &v),
                        _ => Value::Null,
                    }
                }
                "google.protobuf.Timestamp" => {
                    Value::from(number(1) * 1_000 + number(2) / 1_000_000)
                }
                "google.type.Date" => Value::from(days_from_civil(number(1), number(2), number(3))),
                "google.type.TimeOfDay" => Value::from(
                    ((number(1) * 60 + number(2)) * 60 + number(3)) * 1_000 + number(4) / 1_000_000,
                ),
                "confluent.type.Decimal" => {
                    let bytes = match m.get_field_by_number(1).as_deref() {
                        Some(P::Bytes(b)) => b.to_vec(),
                        _ => Vec::new(),
                    };
                    let mut full = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                        [0xff; 16]
                    } else {
                        [0; 16]
                    };
                    let n = bytes.len().min(16);
                    full[16 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
                    let scale = usize::try_from(number(3)).unwrap_or(0);
                    decimal_json(i128::from_be_bytes(full), scale).unwrap_or(Value::Null)
                }
                _ => message_json(m),
            }
        }
    }
}

/// The Unix epoch's day number from the start of the common era.
const EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// Days since the epoch of a date (0 for one that does not exist).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    use chrono::Datelike as _;
    let date = i32::try_from(year)
        .ok()
        .zip(u32::try_from(month).ok().zip(u32::try_from(day).ok()))
        .and_then(|(y, (m, d))| chrono::NaiveDate::from_ymd_opt(y, m, d));
    date.map_or(0, |d| i64::from(d.num_days_from_ce()) - EPOCH_DAYS_FROM_CE)
}

/// The date of a day count since the epoch.
fn civil_from_days(days: i64) -> (i32, i32, i32) {
    use chrono::Datelike as _;
    let date = i32::try_from(days + EPOCH_DAYS_FROM_CE)
        .ok()
        .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
        .unwrap_or_default();
    (date.year(), date.month() as i32, date.day() as i32)
}

//! AVRO test records, as ksqlDB's harness handles them: a JSON test value is written with
//! the subject's registered schema (or, when none is registered, the schema ksqlDB derives
//! from the source's columns), and records read back are turned into JSON with the schema
//! their id names. This uses the Apache Avro library, not Eddy's own codec, so that the
//! conformance cases check Eddy's codec against an independent implementation.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};
use apache_avro::types::Value as Avro;
use arrow::datatypes::{Field, Fields};
use base64::Engine as _;
use eddy_registry::{SchemaRegistry, split_wire, wire_prefix};
use eddy_sql::catalog::Column;
use serde_json::{Map, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// How one side (key or value) of a topic's AVRO records is written.
#[derive(Debug, Clone)]
pub struct AvroLayout {
    /// The case's registry.
    pub registry: Arc<dyn SchemaRegistry>,
    /// `<topic>-key` or `<topic>-value`.
    pub subject: String,
    /// Whether a single column is wrapped in a record (always for several).
    pub wrapped: bool,
    /// The record name of a derived schema.
    pub full_name: Option<String>,
}

type Names = HashMap<Name, Schema>;

/// The columns as Arrow fields, for deriving their schema.
pub(super) fn fields_of(columns: &[Column]) -> Fields {
    columns
        .iter()
        .map(|c| Field::new(&c.name, c.ty.to_arrow(), true))
        .collect()
}

fn names_of(schema: &Schema) -> Result<Names, String> {
    let resolved = ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
    Ok(resolved
        .get_names()
        .iter()
        .map(|(n, s)| (n.clone(), (*s).clone()))
        .collect())
}

fn deref<'a>(schema: &'a Schema, names: &'a Names) -> &'a Schema {
    match schema {
        Schema::Ref { name } => names
            .get(name)
            .or_else(|| {
                names
                    .iter()
                    .find(|(n, _)| n.name == name.name)
                    .map(|(_, s)| s)
            })
            .unwrap_or(schema),
        other => other,
    }
}

impl AvroLayout {
    /// The bytes of a JSON test value, with the id of the schema it is written with.
    pub fn encode(&self, columns: &[Column], v: &Value) -> Result<Vec<u8>, String> {
        let (id, text) = match self
            .registry
            .latest(&self.subject)
            .map_err(|e| e.to_string())?
        {
            Some(latest) => (latest.id, latest.schema.text.clone()),
            None => {
                let derived = eddy_formats::derive_schema(
                    &fields_of(columns),
                    self.wrapped || columns.len() != 1,
                    self.full_name.as_deref(),
                )
                .map_err(|e| e.to_string())?
                .to_string();
                let id = self
                    .registry
                    .register(&self.subject, &eddy_registry::Schema::avro(derived.clone()))
                    .map_err(|e| e.to_string())?;
                (id, derived)
            }
        };
        let schema = Schema::parse_str(&text).map_err(|e| e.to_string())?;
        let names = names_of(&schema)?;
        let value = to_avro(&schema, v, &names)?;
        let datum = apache_avro::to_avro_datum(&schema, value).map_err(|e| e.to_string())?;
        let mut bytes = wire_prefix(id).to_vec();
        bytes.extend_from_slice(&datum);
        Ok(bytes)
    }

    /// The bytes of a JSON test value as JSON_SR: the JSON text after the id of the subject's
    /// latest schema (or of the JSON Schema derived from the columns, registered now).
    pub fn encode_json_sr(&self, columns: &[Column], v: &Value) -> Result<Vec<u8>, String> {
        let id = match self
            .registry
            .latest(&self.subject)
            .map_err(|e| e.to_string())?
        {
            Some(latest) => latest.id,
            None => {
                let derived = eddy_formats::derive_json_schema(
                    &fields_of(columns),
                    self.wrapped || columns.len() != 1,
                )
                .map_err(|e| e.to_string())?;
                self.registry
                    .register(
                        &self.subject,
                        &eddy_registry::Schema::new(
                            eddy_registry::SchemaType::Json,
                            derived.to_string(),
                        ),
                    )
                    .map_err(|e| e.to_string())?
            }
        };
        let mut bytes = wire_prefix(id).to_vec();
        bytes.extend_from_slice(v.to_string().as_bytes());
        Ok(bytes)
    }

    /// A JSON_SR record's JSON.
    pub fn decode_json_sr(&self, bytes: &[u8]) -> Result<Value, String> {
        let (id, body) = split_wire(bytes).ok_or("not in the schema-registry wire format")?;
        self.registry.schema(id).map_err(|e| e.to_string())?;
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }

    /// A record's bytes as JSON, read with the schema its id names.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, String> {
        let (id, mut body) = split_wire(bytes).ok_or("not in the schema-registry wire format")?;
        let text = self
            .registry
            .schema(id)
            .map_err(|e| e.to_string())?
            .text
            .clone();
        let schema = Schema::parse_str(&text).map_err(|e| e.to_string())?;
        let names = names_of(&schema)?;
        let value =
            apache_avro::from_avro_datum(&schema, &mut body, None).map_err(|e| e.to_string())?;
        to_json(&schema, value, &names)
    }
}

/// A decimal's JSON number, from its unscaled value and scale.
pub(super) fn decimal_json(n: i128, scale: usize) -> Result<Value, String> {
    let text = if scale == 0 {
        n.to_string()
    } else {
        let sign = if n < 0 { "-" } else { "" };
        let digits = format!("{:0>width$}", n.unsigned_abs(), width = scale + 1);
        let (int, frac) = digits.split_at(digits.len() - scale);
        format!("{sign}{int}.{frac}")
    };
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// The unscaled value of a JSON decimal (a number or its text) at `scale`.
pub(super) fn unscaled(v: &Value, scale: usize) -> Result<i128, String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => return Err(format!("{other} is not a decimal")),
    };
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut digits = format!("{int}{frac:0<scale$}");
    digits.truncate(int.len() + scale);
    digits
        .parse()
        .map_err(|_| format!("{text} is not a decimal"))
}

pub(super) fn big_endian(v: i128) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let sign = if v < 0 { 0xff } else { 0 };
    let mut start = 0;
    while start < 15 && bytes[start] == sign && (bytes[start + 1] & 0x80) == (sign & 0x80) {
        start += 1;
    }
    bytes[start..].to_vec()
}

fn to_avro(schema: &Schema, v: &Value, names: &Names) -> Result<Avro, String> {
    let int = || {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| format!("{v} is not an integer"))
    };
    let float = || {
        v.as_f64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .ok_or_else(|| format!("{v} is not a number"))
    };
    Ok(match deref(schema, names) {
        Schema::Union(u) => {
            let variants = u.variants();
            if v.is_null()
                && let Some(i) = variants.iter().position(|s| *s == Schema::Null)
            {
                return Ok(Avro::Union(i as u32, Box::new(Avro::Null)));
            }
            let mut last = String::from("empty union");
            for (i, s) in variants
                .iter()
                .enumerate()
                .filter(|(_, s)| **s != Schema::Null)
            {
                match to_avro(s, v, names) {
                    Ok(value) => return Ok(Avro::Union(i as u32, Box::new(value))),
                    Err(e) => last = e,
                }
            }
            return Err(last);
        }
        Schema::Null if v.is_null() => Avro::Null,
        Schema::Boolean => {
            Avro::Boolean(v.as_bool().ok_or_else(|| format!("{v} is not a boolean"))?)
        }
        Schema::Int => Avro::Int(i32::try_from(int()?).map_err(|e| e.to_string())?),
        Schema::Long => Avro::Long(int()?),
        Schema::Float => Avro::Float(float()? as f32),
        Schema::Double => Avro::Double(float()?),
        Schema::String | Schema::Uuid => Avro::String(match v {
            Value::String(s) => s.clone(),
            Value::Null => return Err("null for a string".into()),
            other => other.to_string(),
        }),
        Schema::Bytes => Avro::Bytes(
            B64.decode(
                v.as_str()
                    .ok_or_else(|| format!("{v} is not base64 bytes"))?,
            )
            .map_err(|e| e.to_string())?,
        ),
        Schema::Fixed(f) => Avro::Fixed(
            f.size,
            B64.decode(
                v.as_str()
                    .ok_or_else(|| format!("{v} is not base64 bytes"))?,
            )
            .map_err(|e| e.to_string())?,
        ),
        Schema::Enum(e) => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("{v} is not an enum symbol"))?;
            let i = e
                .symbols
                .iter()
                .position(|x| x == s)
                .ok_or_else(|| format!("{s} is not a symbol"))?;
            Avro::Enum(i as u32, s.to_string())
        }
        Schema::Decimal(d) => Avro::Decimal(big_endian(unscaled(v, d.scale)?).into()),
        Schema::Date => Avro::Date(i32::try_from(int()?).map_err(|e| e.to_string())?),
        Schema::TimeMillis => Avro::TimeMillis(i32::try_from(int()?).map_err(|e| e.to_string())?),
        Schema::TimeMicros => Avro::TimeMicros(int()?),
        Schema::TimestampMillis => Avro::TimestampMillis(int()?),
        Schema::TimestampMicros => Avro::TimestampMicros(int()?),
        Schema::LocalTimestampMillis => Avro::LocalTimestampMillis(int()?),
        Schema::Array(a) => match (v, deref(&a.items, names)) {
            (Value::Array(items), _) => Avro::Array(
                items
                    .iter()
                    .map(|x| to_avro(&a.items, x, names))
                    .collect::<Result<_, _>>()?,
            ),
            // A map written as Kafka Connect writes maps: an array of key/value records.
            (Value::Object(entries), _) => Avro::Array(
                entries
                    .iter()
                    .map(|(k, x)| {
                        to_avro(&a.items, &serde_json::json!({"key": k, "value": x}), names)
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(format!("{v} is not an array")),
        },
        Schema::Map(m) => match v {
            Value::Object(entries) => Avro::Map(
                entries
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), to_avro(&m.types, x, names)?)))
                    .collect::<Result<_, String>>()?,
            ),
            _ => return Err(format!("{v} is not a map")),
        },
        Schema::Record(r) => {
            let Value::Object(fields) = v else {
                return Err(format!("{v} is not a record"));
            };
            let mut out = Vec::new();
            for f in &r.fields {
                let given = fields.get(&f.name).or_else(|| {
                    fields
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(&f.name))
                        .map(|(_, x)| x)
                });
                let value = match (given, &f.default) {
                    (Some(x), _) => to_avro(&f.schema, x, names)?,
                    (None, Some(default)) => default_value(&f.schema, default, names)?,
                    (None, None) => to_avro(&f.schema, &Value::Null, names)?,
                };
                out.push((f.name.clone(), value));
            }
            Avro::Record(out)
        }
        other => return Err(format!("{v} cannot be written as {other:?}")),
    })
}

/// A field's default: of the first branch of a union.
fn default_value(schema: &Schema, default: &Value, names: &Names) -> Result<Avro, String> {
    match deref(schema, names) {
        Schema::Union(u) => {
            let first = u.variants().first().ok_or("empty union")?;
            Ok(Avro::Union(0, Box::new(to_avro(first, default, names)?)))
        }
        other => to_avro(other, default, names),
    }
}

fn to_json(schema: &Schema, v: Avro, names: &Names) -> Result<Value, String> {
    let schema = deref(schema, names);
    Ok(match (schema, v) {
        (Schema::Union(u), Avro::Union(i, inner)) => {
            let branch = u.variants().get(i as usize).ok_or("bad union index")?;
            to_json(branch, *inner, names)?
        }
        (_, Avro::Null) => Value::Null,
        (_, Avro::Boolean(b)) => Value::Bool(b),
        (_, Avro::Int(n) | Avro::Date(n) | Avro::TimeMillis(n)) => Value::from(n),
        (
            _,
            Avro::Long(n)
            | Avro::TimestampMillis(n)
            | Avro::LocalTimestampMillis(n)
            | Avro::TimeMicros(n)
            | Avro::TimestampMicros(n),
        ) => Value::from(n),
        (_, Avro::Float(f)) => {
            serde_json::Number::from_f64(f64::from(f)).map_or(Value::Null, Value::Number)
        }
        (_, Avro::Double(f)) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        (_, Avro::String(s) | Avro::Enum(_, s)) => Value::String(s),
        (_, Avro::Uuid(u)) => Value::String(u.to_string()),
        (_, Avro::Bytes(b) | Avro::Fixed(_, b)) => Value::String(B64.encode(b)),
        (Schema::Decimal(d), Avro::Decimal(dec)) => {
            let bytes: Vec<u8> = Vec::try_from(&dec).map_err(|e| e.to_string())?;
            let mut full = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                [0xff; 16]
            } else {
                [0; 16]
            };
            full[16 - bytes.len().min(16)..]
                .copy_from_slice(&bytes[bytes.len().saturating_sub(16)..]);
            decimal_json(i128::from_be_bytes(full), d.scale)?
        }
        (Schema::Array(a), Avro::Array(items)) => {
            // Kafka Connect's maps: an array of key/value records.
            let entries = matches!(deref(&a.items, names), Schema::Record(r)
                if r.fields.len() == 2
                    && r.fields.iter().any(|f| f.name == "key")
                    && r.fields.iter().any(|f| f.name == "value"));
            let items = items
                .into_iter()
                .map(|x| to_json(&a.items, x, names))
                .collect::<Result<Vec<_>, _>>()?;
            if entries {
                let mut map = Map::new();
                for item in items {
                    if let Value::Object(mut o) = item {
                        let key = o.remove("key").map(|k| match k {
                            Value::String(s) => s,
                            other => other.to_string(),
                        });
                        map.insert(
                            key.unwrap_or_default(),
                            o.remove("value").unwrap_or(Value::Null),
                        );
                    }
                }
                Value::Object(map)
            } else {
                Value::Array(items)
            }
        }
        (Schema::Map(m), Avro::Map(entries)) => Value::Object(
            entries
                .into_iter()
                .map(|(k, x)| Ok((k, to_json(&m.types, x, names)?)))
                .collect::<Result<_, String>>()?,
        ),
        (Schema::Record(r), Avro::Record(fields)) => Value::Object(
            fields
                .into_iter()
                .zip(&r.fields)
                .map(|((name, x), f)| Ok((name, to_json(&f.schema, x, names)?)))
                .collect::<Result<_, String>>()?,
        ),
        (s, v) => return Err(format!("cannot read {v:?} as {s:?}")),
    })
}

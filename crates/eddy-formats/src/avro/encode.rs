//! Column values → Avro records: the writer schema (derived from the columns, or registered
//! and named by id) is compiled once against the columns into an [`Enc`] plan.

use arrow::datatypes::{DataType, Fields, SchemaRef};
use eddy_registry::{Schema, SchemaType, wire_prefix};
use serde_json::Value;

use super::derive::derive_schema;
use super::plan::{self, Node};
use super::wire::{decimal_bytes, write_bytes, write_long};
use crate::FormatError;
use crate::registry::RegistryFormat;
use crate::view::ColumnView;

/// How to write one value of a column as a writer type.
#[derive(Debug)]
enum Enc {
    Boolean,
    /// `int`, `long` and the logical types on them: the number, in the writer's unit.
    Integer(Scale),
    Float,
    Double,
    String,
    Bytes,
    Fixed(usize),
    Enum(Box<[String]>),
    Decimal {
        scale: i8,
        fixed: Option<usize>,
    },
    /// A union: the branch for null (if any) and the branch the values are written as.
    Union {
        null: Option<i64>,
        branch: i64,
        value: Box<Enc>,
    },
    Array(Box<Enc>),
    Map(Box<Enc>),
    Record(Vec<EncField>),
    /// The writer type is `null`: only null values can be written.
    Null,
}

/// Multiplies the column's millisecond values into the writer's unit.
#[derive(Debug, Clone, Copy)]
enum Scale {
    One,
    Thousand,
    Million,
}

#[derive(Debug)]
struct EncField {
    name: String,
    /// The column written, or `None`: the field's default is written.
    column: Option<usize>,
    enc: Enc,
    /// The default's bytes, for a field no column fills and for a null value of a field
    /// that cannot hold null (as Kafka Connect writes it).
    default: Option<Vec<u8>>,
}

fn cannot(node: &Node, data_type: &DataType) -> String {
    format!(
        "cannot write a {} column as the Avro type {node:?}",
        crate::schema::base_type_name(data_type)
    )
}

/// Compiles writer type `node` for values of `data_type`.
fn compile(node: &Node, data_type: &DataType) -> Result<Enc, String> {
    let fail = || Err(cannot(node, data_type));
    Ok(match node {
        Node::Union(branches) => {
            let null = branches
                .iter()
                .position(|b| *b == Node::Null)
                .map(|i| i as i64);
            let (branch, value) = branches
                .iter()
                .enumerate()
                .filter(|(_, b)| **b != Node::Null)
                .find_map(|(i, b)| compile(b, data_type).ok().map(|e| (i as i64, e)))
                .ok_or_else(|| cannot(node, data_type))?;
            Enc::Union {
                null,
                branch,
                value: Box::new(value),
            }
        }
        Node::Null => Enc::Null,
        Node::Boolean if *data_type == DataType::Boolean => Enc::Boolean,
        Node::Int | Node::Long if matches!(data_type, DataType::Int32 | DataType::Int64) => {
            Enc::Integer(Scale::One)
        }
        Node::Int if matches!(data_type, DataType::Date32 | DataType::Time32(_)) => {
            Enc::Integer(Scale::One)
        }
        Node::Date if *data_type == DataType::Date32 => Enc::Integer(Scale::One),
        Node::TimeMillis | Node::TimeMicros if matches!(data_type, DataType::Time32(_)) => {
            Enc::Integer(if *node == Node::TimeMillis {
                Scale::One
            } else {
                Scale::Thousand
            })
        }
        Node::TimestampMillis | Node::TimestampMicros | Node::TimestampNanos | Node::Long
            if matches!(data_type, DataType::Timestamp(_, _)) =>
        {
            Enc::Integer(match node {
                Node::TimestampMicros => Scale::Thousand,
                Node::TimestampNanos => Scale::Million,
                _ => Scale::One,
            })
        }
        Node::Float | Node::Double => match data_type {
            DataType::Float64 | DataType::Int32 | DataType::Int64 => {
                if *node == Node::Float {
                    Enc::Float
                } else {
                    Enc::Double
                }
            }
            _ => return fail(),
        },
        Node::String if *data_type == DataType::Utf8 => Enc::String,
        Node::Enum(symbols) if *data_type == DataType::Utf8 => {
            Enc::Enum(symbols.iter().cloned().collect())
        }
        Node::Bytes if *data_type == DataType::Binary => Enc::Bytes,
        Node::Fixed(n) if *data_type == DataType::Binary => Enc::Fixed(*n),
        Node::Decimal { scale, fixed, .. } if matches!(data_type, DataType::Decimal128(_, _)) => {
            Enc::Decimal {
                scale: *scale,
                fixed: *fixed,
            }
        }
        Node::Array(item) => match data_type {
            DataType::List(f) => Enc::Array(Box::new(compile(item, f.data_type())?)),
            _ => return fail(),
        },
        Node::Map(values) => match data_type {
            DataType::Map(entries, _) => match entries.data_type() {
                DataType::Struct(kv) if kv.len() == 2 && *kv[0].data_type() == DataType::Utf8 => {
                    Enc::Map(Box::new(compile(values, kv[1].data_type())?))
                }
                _ => return fail(),
            },
            _ => return fail(),
        },
        Node::Record(record) => match data_type {
            DataType::Struct(columns) => Enc::Record(compile_fields(&record.fields, columns)?),
            _ => return fail(),
        },
        _ => return fail(),
    })
}

/// Matches a record's fields with the columns, by name (exactly, else ignoring case).
fn compile_fields(fields: &[plan::RecordField], columns: &Fields) -> Result<Vec<EncField>, String> {
    let mut used = vec![false; columns.len()];
    let mut out = Vec::new();
    for f in fields {
        let column = plan::match_column(columns, &f.name, &used);
        let default = match &f.default {
            Some(value) => {
                let mut bytes = Vec::new();
                write_default(&f.node, value, &mut bytes)
                    .map_err(|e| format!("field {}: {e}", f.name))?;
                Some(bytes)
            }
            None => None,
        };
        let field = match column {
            Some(i) => {
                used[i] = true;
                EncField {
                    name: f.name.clone(),
                    column: Some(i),
                    enc: compile(&f.node, columns[i].data_type())
                        .map_err(|e| format!("field {}: {e}", f.name))?,
                    default,
                }
            }
            None => {
                if default.is_none() {
                    return Err(format!(
                        "no column for the Avro field {}, which has no default",
                        f.name
                    ));
                }
                EncField {
                    name: f.name.clone(),
                    column: None,
                    enc: Enc::Null,
                    default,
                }
            }
        };
        out.push(field);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!(
            "the schema has no field for the column `{}`",
            columns[i].name()
        ));
    }
    Ok(out)
}

/// Writes a field's default (JSON, as the schema gives it) as `node`.
fn write_default(node: &Node, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match (node, value) {
        (Node::Union(branches), _) => {
            // A union's default is of its first branch.
            let first = branches.first().ok_or("empty union")?;
            write_long(out, 0);
            write_default(first, value, out)
        }
        (Node::Null, Value::Null) => Ok(()),
        (Node::Boolean, Value::Bool(b)) => {
            out.push(u8::from(*b));
            Ok(())
        }
        (Node::Int | Node::Long | Node::Date | Node::TimeMillis | Node::TimestampMillis, v) => {
            write_long(out, v.as_i64().ok_or("the default is not a number")?);
            Ok(())
        }
        (Node::Float, v) => {
            let f = v.as_f64().ok_or("the default is not a number")? as f32;
            out.extend_from_slice(&f.to_le_bytes());
            Ok(())
        }
        (Node::Double, v) => {
            out.extend_from_slice(
                &v.as_f64()
                    .ok_or("the default is not a number")?
                    .to_le_bytes(),
            );
            Ok(())
        }
        (Node::String, Value::String(s)) => {
            write_bytes(out, s.as_bytes());
            Ok(())
        }
        (Node::Array(_) | Node::Map(_), v)
            if v.as_array().is_some_and(|a| a.is_empty())
                || v.as_object().is_some_and(|o| o.is_empty()) =>
        {
            write_long(out, 0);
            Ok(())
        }
        (Node::Record(r), Value::Object(o)) => {
            for f in &r.fields {
                let v = o
                    .get(&f.name)
                    .or(f.default.as_ref())
                    .ok_or("incomplete record default")?;
                write_default(&f.node, v, out)?;
            }
            Ok(())
        }
        _ => Err(format!("unsupported default {value}")),
    }
}

/// Writes `view`'s value at row `i` as `enc`.
fn write(enc: &Enc, view: &ColumnView<'_>, i: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if let Enc::Union {
        null,
        branch,
        value,
    } = enc
    {
        if view.is_null(i) {
            let null = null.ok_or("null value for a non-optional Avro field")?;
            write_long(out, null);
            return Ok(());
        }
        write_long(out, *branch);
        return write(value, view, i, out);
    }
    if view.is_null(i) {
        return Err("null value for a non-optional Avro field".into());
    }
    match (enc, view) {
        (Enc::Boolean, ColumnView::Boolean(a)) => out.push(u8::from(a.value(i))),
        (Enc::Integer(scale), v) => {
            let n = match v {
                ColumnView::Int32(a) => i64::from(a.value(i)),
                ColumnView::Int64(a) => a.value(i),
                ColumnView::Date(a) => i64::from(a.value(i)),
                ColumnView::Time(a) => i64::from(a.value(i)),
                ColumnView::Timestamp(a) => a.value(i),
                _ => return Err("not an integer column".into()),
            };
            let n = match scale {
                Scale::One => Some(n),
                Scale::Thousand => n.checked_mul(1_000),
                Scale::Million => n.checked_mul(1_000_000),
            };
            write_long(out, n.ok_or("time value out of range")?);
        }
        (Enc::Float | Enc::Double, v) => {
            let f = match v {
                ColumnView::Float64(a) => a.value(i),
                ColumnView::Int32(a) => f64::from(a.value(i)),
                ColumnView::Int64(a) => a.value(i) as f64,
                _ => return Err("not a numeric column".into()),
            };
            if matches!(enc, Enc::Float) {
                out.extend_from_slice(&(f as f32).to_le_bytes());
            } else {
                out.extend_from_slice(&f.to_le_bytes());
            }
        }
        (Enc::String, ColumnView::Utf8(a)) => write_bytes(out, a.value(i).as_bytes()),
        (Enc::Enum(symbols), ColumnView::Utf8(a)) => {
            let s = a.value(i);
            let index = symbols
                .iter()
                .position(|x| x == s)
                .ok_or_else(|| format!("'{s}' is not a symbol of the Avro enum"))?;
            write_long(out, index as i64);
        }
        (Enc::Bytes, ColumnView::Binary(a)) => write_bytes(out, a.value(i)),
        (Enc::Fixed(n), ColumnView::Binary(a)) => {
            let b = a.value(i);
            if b.len() != *n {
                return Err(format!("{} bytes for an Avro fixed of {n}", b.len()));
            }
            out.extend_from_slice(b);
        }
        (Enc::Decimal { scale, fixed }, ColumnView::Decimal(a)) => {
            let mut v = a.value(i);
            let from = a.scale();
            if from != *scale {
                let diff = u32::from((*scale - from).unsigned_abs());
                let factor = 10i128
                    .checked_pow(diff)
                    .ok_or("decimal scale out of range")?;
                v = if *scale > from {
                    v.checked_mul(factor).ok_or("decimal out of range")?
                } else {
                    v / factor
                };
            }
            let bytes = decimal_bytes(v);
            match fixed {
                None => write_bytes(out, &bytes),
                Some(n) => {
                    if bytes.len() > *n {
                        return Err("decimal too wide for its Avro fixed".into());
                    }
                    let pad = if v < 0 { 0xff } else { 0 };
                    out.extend(std::iter::repeat_n(pad, n - bytes.len()));
                    out.extend_from_slice(&bytes);
                }
            }
        }
        (Enc::Array(item), ColumnView::List(list, items)) => {
            let offsets = list.value_offsets();
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            if end > start {
                write_long(out, (end - start) as i64);
                for j in start..end {
                    write(item, items, j, out)?;
                }
            }
            write_long(out, 0);
        }
        (Enc::Map(value), ColumnView::Map(map, keys, values)) => {
            let offsets = map.value_offsets();
            let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
            if end > start {
                write_long(out, (end - start) as i64);
                for j in start..end {
                    let ColumnView::Utf8(k) = keys.as_ref() else {
                        return Err("map keys are not strings".into());
                    };
                    write_bytes(out, k.value(j).as_bytes());
                    write(value, values, j, out)?;
                }
            }
            write_long(out, 0);
        }
        (Enc::Record(fields), ColumnView::Struct(_, children)) => {
            write_fields(fields, |c| children.get(c).map(|(_, v)| v), i, out)?;
        }
        (Enc::Null, _) => return Err("a value for an Avro field of type null".into()),
        _ => return Err("column type does not match the Avro schema".into()),
    }
    Ok(())
}

fn write_fields<'v, 'a: 'v>(
    fields: &[EncField],
    column: impl Fn(usize) -> Option<&'v ColumnView<'a>>,
    i: usize,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    for f in fields {
        match (f.column, &f.default) {
            (Some(c), default) => {
                let view = column(c).ok_or("missing column")?;
                match default {
                    Some(d) if view.is_null(i) && !matches!(f.enc, Enc::Union { .. }) => {
                        out.extend_from_slice(d)
                    }
                    _ => write(&f.enc, view, i, out)
                        .map_err(|e| format!("{e}, field: {}", f.name))?,
                }
            }
            (None, Some(d)) => out.extend_from_slice(d),
            (None, None) => return Err(format!("no value for the field {}", f.name)),
        }
    }
    Ok(())
}

/// The top of a writer schema: a record of the columns, possibly in a union, or a single
/// column's value.
#[derive(Debug)]
enum Top {
    Record {
        branch: Option<i64>,
        fields: Vec<EncField>,
    },
    Single(Enc),
}

/// Encodes rows as Avro records with one registered writer schema.
#[derive(Debug)]
pub(crate) struct AvroEncoder {
    prefix: [u8; 5],
    top: Top,
}

impl AvroEncoder {
    /// Resolves the writer schema (`format.schema_id`, else derived from `schema` and
    /// registered under `format.subject`) and compiles it against the columns.
    pub(crate) fn new(
        format: &RegistryFormat,
        schema: &SchemaRef,
        wrapped: bool,
    ) -> Result<Self, FormatError> {
        let columns = schema.fields();
        let (id, text) = match format.schema_id {
            Some(id) => {
                let registered = format.registered(id, SchemaType::Avro, "an Avro schema")?;
                (id, registered.text.clone())
            }
            None => {
                let derived =
                    derive_schema(columns, wrapped, format.full_name.as_deref())?.to_string();
                let id = format
                    .registry
                    .register(&format.subject, &Schema::avro(derived.clone()))
                    .map_err(|e| FormatError::Schema(e.to_string()))?;
                (id, derived)
            }
        };
        let (_, node) = plan::parse(&text).map_err(FormatError::Schema)?;
        let bad = |e: String| {
            FormatError::Schema(format!(
                "The Avro schema of subject {} (id {id}) does not fit the columns: {e}",
                format.subject
            ))
        };
        let record_branch = |node: &Node| match node {
            Node::Union(branches) => branches.iter().enumerate().find_map(|(i, b)| match b {
                Node::Record(r) => Some((Some(i as i64), r.clone())),
                _ => None,
            }),
            Node::Record(r) => Some((None, r.clone())),
            _ => None,
        };
        let top = match (wrapped, record_branch(&node)) {
            (true, Some((branch, record))) => Top::Record {
                branch,
                fields: compile_fields(&record.fields, columns).map_err(bad)?,
            },
            (true, None) => {
                return Err(bad("the schema is not a record".into()));
            }
            (false, _) => {
                let column = columns.first().ok_or_else(|| bad("no column".into()))?;
                Top::Single(compile(&node, column.data_type()).map_err(bad)?)
            }
        };
        Ok(Self {
            prefix: wire_prefix(id),
            top,
        })
    }

    /// Writes row `i` of `columns` as one record.
    pub(crate) fn write_row(
        &self,
        columns: &[ColumnView<'_>],
        i: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        out.extend_from_slice(&self.prefix);
        match &self.top {
            Top::Record { branch, fields } => {
                if let Some(b) = branch {
                    write_long(out, *b);
                }
                write_fields(fields, |c| columns.get(c), i, out)
            }
            Top::Single(enc) => {
                let view = columns.first().ok_or("no column")?;
                write(enc, view, i, out)
            }
        }
    }
}

//! Column builders that decoders append to, one value per record, and that can be truncated
//! back to a record boundary when a record turns out to be bad half-way through.

use std::mem;

use arrow::array::builder::{BooleanBufferBuilder, NullBufferBuilder};
use arrow::array::{ArrayData, ArrayRef, make_array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::failure::Failure;
use crate::scalar::{self, DecimalError};
use crate::schema::base_type_name;

/// Builds one Arrow array of a supported type.
#[derive(Debug)]
pub(crate) struct ColumnBuilder {
    pub(crate) data_type: DataType,
    pub(crate) nullable: bool,
    pub(crate) nulls: NullBufferBuilder,
    pub(crate) values: Values,
}

/// The value storage of a [`ColumnBuilder`], by physical layout.
#[derive(Debug)]
pub(crate) enum Values {
    Boolean(BooleanBufferBuilder),
    /// INT, DATE (days) and TIME (millis).
    Int32(Vec<i32>),
    /// BIGINT and TIMESTAMP (millis).
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Decimal128 {
        values: Vec<i128>,
        precision: u8,
        scale: i8,
    },
    /// STRING and BYTES; `offsets` starts with 0 and has one more entry than there are values.
    Bytes {
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    List {
        offsets: Vec<i32>,
        items: Box<ColumnBuilder>,
    },
    Map {
        offsets: Vec<i32>,
        entries: FieldRef,
        keys: Box<ColumnBuilder>,
        values: Box<ColumnBuilder>,
    },
    Struct(StructFields),
}

/// The children of a STRUCT (or of a whole row), with per-record matching state.
#[derive(Debug)]
pub(crate) struct StructFields {
    pub(crate) fields: Fields,
    pub(crate) children: Vec<ColumnBuilder>,
    /// How each field was matched in the object being decoded (see `json::decode`).
    pub(crate) seen: Vec<u8>,
    /// No two field names are equal ignoring case, so a JSON key matches at most one field.
    pub(crate) distinct_names: bool,
    /// Every field name is ASCII (then an ASCII key's case-insensitive match is ASCII's).
    pub(crate) ascii_names: bool,
    /// Fields whose values are checked but not kept (each row gets a null): `VARCHAR`
    /// columns a query never reads (see [`crate::ValueDecoder::skip_unread_text`]).
    pub(crate) skip: Vec<bool>,
}

impl StructFields {
    /// Builders for `fields`, or `None` if a type is not supported.
    pub(crate) fn new(fields: &Fields) -> Option<Self> {
        let children = fields
            .iter()
            .map(|f| ColumnBuilder::new(f))
            .collect::<Option<Vec<_>>>()?;
        let folded = fields
            .iter()
            .map(|f| {
                f.name()
                    .chars()
                    .flat_map(char::to_uppercase)
                    .collect::<String>()
            })
            .collect::<std::collections::HashSet<_>>();
        Some(Self {
            fields: fields.clone(),
            seen: vec![0; children.len()],
            skip: vec![false; children.len()],
            distinct_names: folded.len() == children.len(),
            ascii_names: fields.iter().all(|f| f.name().is_ascii()),
            children,
        })
    }

    pub(crate) fn truncate(&mut self, len: usize) {
        for child in &mut self.children {
            child.truncate(len);
        }
    }

    pub(crate) fn append_null(&mut self) {
        for child in &mut self.children {
            child.append_null();
        }
    }
}

impl ColumnBuilder {
    /// A builder for `field`, or `None` if its type is not supported.
    pub(crate) fn new(field: &Field) -> Option<Self> {
        let values = match field.data_type() {
            DataType::Boolean => Values::Boolean(BooleanBufferBuilder::new(0)),
            DataType::Int32 | DataType::Date32 | DataType::Time32(_) => Values::Int32(Vec::new()),
            DataType::Int64 | DataType::Timestamp(_, _) => Values::Int64(Vec::new()),
            DataType::Float64 => Values::Float64(Vec::new()),
            DataType::Decimal128(precision, scale) => Values::Decimal128 {
                values: Vec::new(),
                precision: *precision,
                scale: *scale,
            },
            DataType::Utf8 | DataType::Binary => Values::Bytes {
                offsets: vec![0],
                data: Vec::new(),
            },
            DataType::List(item) => Values::List {
                offsets: vec![0],
                items: Box::new(ColumnBuilder::new(item)?),
            },
            DataType::Map(entries, _) => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return None;
                };
                if kv.len() != 2 {
                    return None;
                }
                let (key, value) = (&kv[0], &kv[1]);
                Values::Map {
                    offsets: vec![0],
                    entries: entries.clone(),
                    keys: Box::new(ColumnBuilder::new(key)?),
                    values: Box::new(ColumnBuilder::new(value)?),
                }
            }
            DataType::Struct(fields) => Values::Struct(StructFields::new(fields)?),
            _ => return None,
        };
        Some(Self {
            data_type: field.data_type().clone(),
            nullable: field.is_nullable(),
            nulls: NullBufferBuilder::new(0),
            values,
        })
    }

    /// Number of values appended so far.
    pub(crate) fn len(&self) -> usize {
        self.nulls.len()
    }

    /// Makes room for `additional` more values (of fixed width, or offsets).
    fn reserve(&mut self, additional: usize) {
        match &mut self.values {
            Values::Boolean(b) => b.reserve(additional),
            Values::Int32(v) => v.reserve(additional),
            Values::Int64(v) => v.reserve(additional),
            Values::Float64(v) => v.reserve(additional),
            Values::Decimal128 { values, .. } => values.reserve(additional),
            Values::Bytes { offsets, .. }
            | Values::List { offsets, .. }
            | Values::Map { offsets, .. } => offsets.reserve(additional),
            Values::Struct(s) => {
                for child in &mut s.children {
                    child.reserve(additional);
                }
            }
        }
    }

    /// Drops every value from position `len` on, including any partly appended nested value.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.nulls.truncate(len);
        match &mut self.values {
            Values::Boolean(b) => b.truncate(len),
            Values::Int32(v) => v.truncate(len),
            Values::Int64(v) => v.truncate(len),
            Values::Float64(v) => v.truncate(len),
            Values::Decimal128 { values, .. } => values.truncate(len),
            Values::Bytes { offsets, data } => {
                offsets.truncate(len + 1);
                if let Some(&end) = offsets.get(len) {
                    data.truncate(end as usize);
                }
            }
            Values::List { offsets, items } => {
                offsets.truncate(len + 1);
                if let Some(&end) = offsets.get(len) {
                    items.truncate(end as usize);
                }
            }
            Values::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                offsets.truncate(len + 1);
                if let Some(&end) = offsets.get(len) {
                    keys.truncate(end as usize);
                    values.truncate(end as usize);
                }
            }
            Values::Struct(s) => s.truncate(len),
        }
    }

    /// Appends a null (for a STRUCT, null children too, so every child stays aligned).
    pub(crate) fn append_null(&mut self) {
        self.nulls.append_null();
        match &mut self.values {
            Values::Boolean(b) => b.append(false),
            Values::Int32(v) => v.push(0),
            Values::Int64(v) => v.push(0),
            Values::Float64(v) => v.push(0.0),
            Values::Decimal128 { values, .. } => values.push(0),
            Values::Bytes { offsets, .. }
            | Values::List { offsets, .. }
            | Values::Map { offsets, .. } => {
                let last = offsets.last().copied().unwrap_or(0);
                offsets.push(last);
            }
            Values::Struct(s) => s.append_null(),
        }
    }

    /// The ksqlDB name of this column's type, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        base_type_name(&self.data_type)
    }

    /// Appends a value given as text: a JSON string, a DELIMITED field or a JSON object key.
    pub(crate) fn append_text(&mut self, text: &str) -> Result<(), Failure> {
        let target = self.type_name();
        let trimmed = text.trim();
        match &mut self.values {
            Values::Boolean(b) => {
                let value = if trimmed.eq_ignore_ascii_case("true") {
                    true
                } else if trimmed.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(Failure::coerce(target));
                };
                b.append(value);
            }
            Values::Int32(v) => v.push(trimmed.parse().map_err(|_| Failure::coerce(target))?),
            Values::Int64(v) => v.push(trimmed.parse().map_err(|_| Failure::coerce(target))?),
            Values::Float64(v) => v.push(trimmed.parse().map_err(|_| Failure::coerce(target))?),
            Values::Decimal128 {
                values,
                precision,
                scale,
            } => values.push(decimal(trimmed, *precision, *scale)?),
            Values::Bytes { offsets, data } => {
                if self.data_type == DataType::Binary {
                    use base64::Engine;
                    scalar::BASE64
                        .decode_vec(text, data)
                        .map_err(|e| Failure::new(format!("Invalid base64 for BYTES: {e}")))?;
                } else {
                    data.extend_from_slice(text.as_bytes());
                }
                push_offset(offsets, data.len())?;
            }
            Values::List { .. } | Values::Map { .. } | Values::Struct(_) => {
                return Err(Failure::convert("TextNode", target));
            }
        }
        self.nulls.append_non_null();
        Ok(())
    }

    /// Takes the values appended so far as Arrow data, leaving the builder empty.
    pub(crate) fn finish(&mut self) -> Result<ArrayData, ArrowError> {
        let len = self.len();
        let builder = ArrayData::builder(self.data_type.clone())
            .len(len)
            .nulls(self.nulls.finish());
        let builder = match &mut self.values {
            Values::Boolean(b) => builder.add_buffer(b.finish().into_inner()),
            Values::Int32(v) => builder.add_buffer(Buffer::from_vec(mem::take(v))),
            Values::Int64(v) => builder.add_buffer(Buffer::from_vec(mem::take(v))),
            Values::Float64(v) => builder.add_buffer(Buffer::from_vec(mem::take(v))),
            Values::Decimal128 { values, .. } => {
                builder.add_buffer(Buffer::from_vec(mem::take(values)))
            }
            Values::Bytes { offsets, data } => builder
                .add_buffer(take_offsets(offsets))
                .add_buffer(Buffer::from_vec(mem::take(data))),
            Values::List { offsets, items } => builder
                .add_buffer(take_offsets(offsets))
                .child_data(vec![items.finish()?]),
            Values::Map {
                offsets,
                entries,
                keys,
                values,
            } => {
                let entry_len = keys.len();
                let (keys, values) = (keys.finish(), values.finish());
                let entries = ArrayData::builder(entries.data_type().clone())
                    .len(entry_len)
                    .child_data(vec![keys?, values?])
                    .build()?;
                builder
                    .add_buffer(take_offsets(offsets))
                    .child_data(vec![entries])
            }
            Values::Struct(s) => {
                // Finish every child even after a failure, so all of them start over empty.
                let children: Vec<_> = s.children.iter_mut().map(ColumnBuilder::finish).collect();
                builder.child_data(children.into_iter().collect::<Result<_, _>>()?)
            }
        };
        builder.build()
    }
}

/// Parses a DECIMAL from text, rounding HALF_UP to the column's scale.
pub(crate) fn decimal(text: &str, precision: u8, scale: i8) -> Result<i128, Failure> {
    match scalar::parse_decimal(text, scale, true) {
        Ok(v) if scalar::fits_precision(v, precision) => Ok(v),
        Err(DecimalError::Invalid) => Err(Failure::coerce("DECIMAL")),
        Ok(_) | Err(DecimalError::Overflow | DecimalError::Inexact) => Err(Failure::new(format!(
            "Cannot fit decimal '{text}' into DECIMAL({precision}, {scale})"
        ))),
    }
}

/// Records the end of the value just written; fails once a batch's data passes 2 GiB.
pub(crate) fn push_offset(offsets: &mut Vec<i32>, end: usize) -> Result<(), Failure> {
    let end = i32::try_from(end)
        .map_err(|_| Failure::new("batch holds more than 2 GiB of data in one column"))?;
    offsets.push(end);
    Ok(())
}

fn take_offsets(offsets: &mut Vec<i32>) -> Buffer {
    Buffer::from_vec(mem::replace(offsets, vec![0]))
}

/// The rows of a batch being decoded: one builder per schema column.
#[derive(Debug)]
pub(crate) struct Rows {
    pub(crate) columns: StructFields,
    len: usize,
}

impl Rows {
    /// Builders for the schema's columns, or `None` if a type is not supported.
    pub(crate) fn new(schema: &SchemaRef) -> Option<Self> {
        Some(Self {
            columns: StructFields::new(schema.fields())?,
            len: 0,
        })
    }

    /// Number of rows so far.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Marks the end of a row whose columns have each received one value.
    pub(crate) fn end_row(&mut self) {
        self.len += 1;
    }

    /// Replaces whatever the current row got so far with an all-null row.
    pub(crate) fn null_row(&mut self) {
        self.columns.truncate(self.len);
        self.columns.append_null();
        self.len += 1;
    }

    /// Makes room for `rows` more rows in the top-level columns.
    pub(crate) fn reserve(&mut self, rows: usize) {
        for column in &mut self.columns.children {
            column.reserve(rows);
        }
    }

    /// Takes the rows as a batch of `schema` (which must have the builders' types).
    pub(crate) fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
        let rows = mem::take(&mut self.len);
        // Finish every column even after a failure, so that the builders start the next batch
        // empty and aligned.
        let arrays: Vec<Result<ArrayRef, ArrowError>> = self
            .columns
            .children
            .iter_mut()
            .map(|c| c.finish().map(make_array))
            .collect();
        let arrays = arrays.into_iter().collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
    }
}

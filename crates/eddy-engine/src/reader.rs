//! Decoding a batch of raw records of a source into its scan layout
//! (key columns, value columns, ROWTIME, ROWPARTITION, ROWOFFSET).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BinaryBuilder, BooleanArray, Int32Array, Int64Array,
    ListArray, StringBuilder, StructArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_formats::{
    Format, KeyDecoder, KeyEncoder, NullableRepresentation, ProtobufFormat, RegistryFormat,
    ValueDecoder, ValueEncoder,
};
use eddy_sql::catalog::{Column, ColumnRole, FormatName, Source};
use eddy_sql::plan::{QueryPlan, scan_schema};
use eddy_sql::window::WindowSpec;
use eddy_topic::{Payloads, RawBatch, RecordHeaders};

use crate::error::EngineError;
use crate::processing_log::{ErrorKind, ProcessingError};

/// The Eddy format of a source's keys (`value = false`) or values.
pub(crate) fn format_of(source: &Source, value: bool) -> Result<Format, EngineError> {
    let (name, delimiter) = if value {
        (source.value_format, source.value_delimiter)
    } else {
        (effective_key_format(source), source.key_delimiter)
    };
    Ok(match name {
        FormatName::Json => Format::Json,
        FormatName::Delimited => Format::Delimited {
            delimiter: u8::try_from(delimiter).map_err(|_| {
                EngineError::Invalid(format!(
                    "VALUE_DELIMITER must be a single-byte character, got '{delimiter}'"
                ))
            })?,
        },
        FormatName::Kafka => Format::Kafka,
        FormatName::None => Format::None,
        FormatName::Avro | FormatName::JsonSr | FormatName::Protobuf => {
            let schemas = &source.schemas;
            let registry = schemas.registry.as_ref().ok_or_else(|| {
                EngineError::Invalid(format!(
                    "The {name} format needs a schema registry, and none is configured."
                ))
            })?;
            let settings = RegistryFormat {
                registry: Arc::clone(&registry.0),
                subject: eddy_registry::subject(&source.topic, value),
                schema_id: if value {
                    schemas.value_id
                } else {
                    schemas.key_id
                },
                full_name: if value {
                    schemas.value_full_name.clone()
                } else {
                    schemas.key_full_name.clone()
                },
            };
            match name {
                FormatName::Avro => Format::Avro(settings),
                FormatName::JsonSr => Format::JsonSr(settings),
                _ => Format::Protobuf(ProtobufFormat {
                    registry: Some(settings),
                    nullable: protobuf_nullable(source, value),
                }),
            }
        }
        FormatName::ProtobufNoSr => Format::Protobuf(ProtobufFormat {
            registry: None,
            nullable: protobuf_nullable(source, value),
        }),
    })
}

/// How a source's derived Protobuf key or value schema declares nullable columns.
fn protobuf_nullable(source: &Source, value: bool) -> NullableRepresentation {
    let set = if value {
        &source.schemas.value_protobuf_nullable
    } else {
        &source.schemas.key_protobuf_nullable
    };
    set.as_deref()
        .and_then(NullableRepresentation::parse)
        .unwrap_or_default()
}

/// Arrow schema of some columns.
pub(crate) fn columns_schema<'a>(cols: impl Iterator<Item = &'a Column>) -> SchemaRef {
    Arc::new(Schema::new(
        cols.map(|c| Field::new(&c.name, c.ty.to_arrow(), true))
            .collect::<Vec<_>>(),
    ))
}

/// The key format a source actually uses: NONE when it has no key columns.
pub(crate) fn effective_key_format(source: &Source) -> FormatName {
    if source.key_columns().next().is_none() {
        FormatName::None
    } else {
        source.key_format
    }
}

/// Key and value decoders for a source.
pub(crate) fn decoders(source: &Source) -> Result<(KeyDecoder, ValueDecoder), EngineError> {
    let key = KeyDecoder::new(
        &format_of(source, false)?,
        columns_schema(source.key_columns()),
    )?;
    let value = ValueDecoder::new(
        &format_of(source, true)?,
        columns_schema(source.value_columns()),
        source.wrap_single_value,
    )?;
    Ok((key, value))
}

/// Key and value encoders for a source.
pub(crate) fn encoders(source: &Source) -> Result<(KeyEncoder, ValueEncoder), EngineError> {
    let key = KeyEncoder::new(
        &format_of(source, false)?,
        columns_schema(source.key_columns()),
    )?;
    let value = ValueEncoder::new(
        &format_of(source, true)?,
        columns_schema(source.value_columns()),
        source.wrap_single_value,
    )?;
    Ok((key, value))
}

/// Records of a raw batch that decoded, in scan layout.
pub(crate) struct DecodedBatch {
    /// The rows.
    pub batch: RecordBatch,
    /// For each row, its index in the raw batch.
    pub rows: Vec<usize>,
    /// For each row, whether it was a tombstone (only when tombstones are kept).
    pub tombstones: Vec<bool>,
}

/// Turns raw records of one source into scan-layout batches.
pub(crate) struct SourceReader {
    topic: String,
    schema: SchemaRef,
    keys: KeyDecoder,
    values: ValueDecoder,
    /// Index of the `TIMESTAMP` column in the scan layout, if the source has one.
    timestamp_column: Option<usize>,
    /// How a STRING `TIMESTAMP` column is read (`TIMESTAMP_FORMAT`).
    timestamp_format: Option<eddy_sql::plan::TimestampFormat>,
    /// Where `WINDOWSTART`/`WINDOWEND` come from, if the layout has them.
    window: WindowColumns,
    stripped_keys: Payloads,
    /// The header columns of the layout, in order: which headers, and the column's type.
    headers: Vec<(Option<String>, DataType)>,
}

/// How a reader fills the window bounds of its scan layout.
enum WindowColumns {
    /// The layout has none.
    None,
    /// Nulls, filled in later by a windowed aggregation.
    Nulls,
    /// From windowed keys: the key, then the window start (time windows), or the end and
    /// then the start (session windows), each 8 bytes big-endian, as Kafka Streams writes.
    FromKey(WindowSpec),
}

impl SourceReader {
    pub(crate) fn new(source: &Source) -> Result<Self, EngineError> {
        Self::with_window(
            source,
            match &source.window {
                Some(w) => WindowColumns::FromKey(w.clone()),
                None => WindowColumns::None,
            },
        )
    }

    /// The reader for the driving source of `plan`: a windowed aggregation gets (null) window
    /// bounds in its layout even when its source is not windowed.
    /// Text columns the query never reads are not copied out of JSON records.
    pub(crate) fn for_query(plan: &QueryPlan) -> Result<Self, EngineError> {
        let mut reader = Self::for_plan_source(plan)?;
        if let Some(read) = plan.read_columns() {
            let timestamp = plan.from.source.timestamp_column.as_deref();
            reader
                .values
                .skip_unread_text(|name| !read.contains(name) && Some(name) != timestamp);
        }
        Ok(reader)
    }

    fn for_plan_source(plan: &QueryPlan) -> Result<Self, EngineError> {
        let source = &plan.from.source;
        match plan.aggregate.as_ref().and_then(|a| a.window.as_ref()) {
            Some(w) if source.window.is_none() => Self::with_window(
                &Source {
                    window: Some(w.clone()),
                    ..source.clone()
                },
                WindowColumns::Nulls,
            ),
            _ => Self::new(source),
        }
    }

    fn with_window(source: &Source, window: WindowColumns) -> Result<Self, EngineError> {
        let (keys, values) = decoders(source)?;
        let schema = scan_schema(source);
        let timestamp_column = source
            .timestamp_column
            .as_ref()
            .and_then(|c| schema.index_of(c).ok());
        let timestamp_format = match (&source.timestamp_format, timestamp_column) {
            (Some(pattern), Some(i)) if schema.field(i).data_type() == &DataType::Utf8 => {
                Some(eddy_sql::plan::TimestampFormat::new(pattern)?)
            }
            _ => None,
        };
        Ok(Self {
            topic: source.topic.clone(),
            schema,
            keys,
            values,
            timestamp_column,
            timestamp_format,
            window,
            stripped_keys: Payloads::new(),
            headers: header_layout(source),
        })
    }

    /// Decodes `raw`. Records that fail to decode are reported in `errors` and left out;
    /// tombstones are left out unless `keep_tombstones`.
    pub(crate) fn decode(
        &mut self,
        raw: &RawBatch,
        keep_tombstones: bool,
        errors: &mut Vec<ProcessingError>,
    ) -> Result<DecodedBatch, EngineError> {
        let n = raw.len();
        let (keys, bounds) = match &self.window {
            WindowColumns::FromKey(spec) => {
                let session = matches!(spec, WindowSpec::Session { .. });
                let size = window_size_ms(spec);
                let mut starts = Vec::with_capacity(n);
                let mut ends = Vec::with_capacity(n);
                self.stripped_keys.clear();
                for key in raw.keys.iter() {
                    let (inner, start, end) = split_windowed_key(key, session, size);
                    self.stripped_keys.push(inner);
                    starts.push(start);
                    ends.push(end);
                }
                (
                    self.keys.decode(&self.stripped_keys)?,
                    Some((Int64Array::from(starts), Int64Array::from(ends))),
                )
            }
            WindowColumns::Nulls => (
                self.keys.decode(&raw.keys)?,
                Some((Int64Array::new_null(n), Int64Array::new_null(n))),
            ),
            WindowColumns::None => (self.keys.decode(&raw.keys)?, None),
        };
        let values = self.values.decode(&raw.values)?;
        let mut keep = vec![true; n];
        for e in &keys.errors {
            keep[e.index] = false;
            errors.push(self.error(raw, e.index, e.reason.clone(), true));
        }
        for e in &values.errors {
            if keep[e.index] {
                errors.push(self.error(raw, e.index, e.reason.clone(), false));
            }
            keep[e.index] = false;
        }
        if !keep_tombstones {
            for (i, v) in raw.values.iter().enumerate() {
                if v.is_none() {
                    keep[i] = false;
                }
            }
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        columns.extend(keys.batch.columns().iter().cloned());
        columns.extend(values.batch.columns().iter().cloned());
        columns.extend(header_columns(&self.headers, &raw.headers, n)?);
        let mut rowtime: ArrayRef = Arc::new(Int64Array::from(raw.timestamps.clone()));
        if let Some(ts) = self.timestamp_column {
            let (from_column, invalid) =
                column_times(&columns[ts], self.timestamp_format.as_ref())?;
            for (i, why) in invalid {
                if keep[i] {
                    keep[i] = false;
                    errors.push(self.error(raw, i, why, false));
                }
            }
            rowtime = arrow::compute::kernels::zip::zip(
                &arrow::compute::is_not_null(&from_column)?,
                &from_column,
                &rowtime,
            )?;
        }
        columns.push(rowtime);
        columns.push(Arc::new(Int32Array::from(raw.partitions.clone())));
        columns.push(Arc::new(Int64Array::from(raw.offsets.clone())));
        if let Some((starts, ends)) = bounds {
            columns.push(Arc::new(starts));
            columns.push(Arc::new(ends));
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let rows: Vec<usize> = (0..n).filter(|i| keep[*i]).collect();
        let batch = if rows.len() == n {
            batch
        } else {
            filter_record_batch(&batch, &BooleanArray::from(keep))?
        };
        let tombstones = rows.iter().map(|i| raw.values.get(*i).is_none()).collect();
        Ok(DecodedBatch {
            batch,
            rows,
            tombstones,
        })
    }

    fn error(&self, raw: &RawBatch, i: usize, reason: String, key: bool) -> ProcessingError {
        let bytes = if key {
            raw.keys.get(i)
        } else {
            raw.values.get(i)
        };
        ProcessingError {
            kind: ErrorKind::Deserialization,
            topic: self.topic.clone(),
            partition: raw.partitions[i],
            offset: raw.offsets[i],
            reason,
            record: bytes.map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }
}

/// The header columns of `source`, in order: which headers each holds (`None`: all), and
/// its type.
pub(crate) fn header_layout(source: &Source) -> Vec<(Option<String>, DataType)> {
    source
        .columns
        .iter()
        .filter_map(|c| match &c.role {
            ColumnRole::Header(key) => Some((key.clone(), c.ty.to_arrow())),
            ColumnRole::Key | ColumnRole::Value => None,
        })
        .collect()
}

/// The header columns of `layout` (from [`header_layout`]) for `n` records with `headers`.
pub(crate) fn header_columns(
    layout: &[(Option<String>, DataType)],
    headers: &RecordHeaders,
    n: usize,
) -> Result<Vec<ArrayRef>, EngineError> {
    layout
        .iter()
        .map(|(key, ty)| match key {
            None => all_headers(headers, n, ty),
            Some(key) => Ok(last_header(headers, n, key)),
        })
        .collect()
}

/// A `HEADERS` column (of type `ty`, `ARRAY<STRUCT<KEY STRING, VALUE BYTES>>`): every
/// header of each of `n` records, in order.
fn all_headers(headers: &RecordHeaders, n: usize, ty: &DataType) -> Result<ArrayRef, EngineError> {
    let DataType::List(item) = ty else {
        return Err(EngineError::Internal(format!(
            "a HEADERS column of type {ty}"
        )));
    };
    let DataType::Struct(fields) = item.data_type() else {
        return Err(EngineError::Internal(format!(
            "a HEADERS column of type {ty}"
        )));
    };
    let mut keys = StringBuilder::new();
    let mut values = BinaryBuilder::new();
    let mut offsets = Vec::with_capacity(n + 1);
    let mut entries = 0i32;
    offsets.push(entries);
    for i in 0..n {
        for header in headers.of(i) {
            keys.append_value(&header.key);
            values.append_option(header.value.as_deref());
            entries += 1;
        }
        offsets.push(entries);
    }
    let entries = StructArray::try_new(
        fields.clone(),
        vec![Arc::new(keys.finish()), Arc::new(values.finish())],
        None,
    )?;
    Ok(Arc::new(ListArray::try_new(
        Arc::clone(item),
        OffsetBuffer::new(offsets.into()),
        Arc::new(entries),
        None,
    )?))
}

/// A `HEADER('key')` column: the value of the last header with `key` of each of `n`
/// records, null where there is none.
fn last_header(headers: &RecordHeaders, n: usize, key: &str) -> ArrayRef {
    Arc::new(
        (0..n)
            .map(|i| {
                headers
                    .of(i)
                    .iter()
                    .rev()
                    .find(|h| h.key == key)
                    .and_then(|h| h.value.as_deref())
            })
            .collect::<BinaryArray>(),
    )
}

/// The times a `TIMESTAMP` column gives its rows (read with its `TIMESTAMP_FORMAT` when it is
/// text), NULL where it has none, and the rows whose time is unusable, with why: text that
/// does not parse, or a negative time, which Kafka Streams does not take either.
pub(crate) fn column_times(
    column: &ArrayRef,
    format: Option<&eddy_sql::plan::TimestampFormat>,
) -> Result<(Int64Array, Vec<(usize, String)>), EngineError> {
    let mut invalid = Vec::new();
    let times: Int64Array = match format {
        Some(format) => {
            let Some(texts) = column.as_string_opt::<i32>() else {
                return Err(EngineError::Internal(
                    "a TIMESTAMP_FORMAT for a column that is not text".into(),
                ));
            };
            (0..texts.len())
                .map(|i| {
                    let text = texts.is_valid(i).then(|| texts.value(i))?;
                    format
                        .parse(text)
                        .map_err(|why| {
                            invalid
                                .push((i, format!("the TIMESTAMP column could not be read: {why}")))
                        })
                        .ok()
                })
                .collect()
        }
        None => cast(column, &DataType::Int64)?
            .as_primitive::<arrow::datatypes::Int64Type>()
            .clone(),
    };
    for (i, time) in times.iter().enumerate() {
        if let Some(t) = time.filter(|t| *t < 0) {
            invalid.push((i, format!("the record's timestamp {t} is negative")));
        }
    }
    Ok((times, invalid))
}

/// Positions to commit after processing `raw`: the next offset of each partition seen.
pub(crate) fn positions_after(raw: &RawBatch) -> Vec<eddy_topic::Position> {
    let mut out: Vec<eddy_topic::Position> = Vec::new();
    for (p, o) in raw.partitions.iter().zip(&raw.offsets) {
        match out.iter_mut().find(|x| x.partition == *p) {
            Some(x) => x.next_offset = x.next_offset.max(o + 1),
            None => out.push(eddy_topic::Position {
                partition: *p,
                next_offset: o + 1,
            }),
        }
    }
    out
}

/// The `i64` values of an Int64 column (ROWTIME), or an error if it has another type.
pub(crate) fn int64_values(array: &ArrayRef) -> Result<&Int64Array, EngineError> {
    array
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Internal("ROWTIME is not BIGINT".into()))
}

impl SourceReader {
    /// The topic this reader's records come from.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }
}

/// A time window's length in milliseconds (0 for sessions, whose keys carry their end).
fn window_size_ms(spec: &WindowSpec) -> i64 {
    match spec {
        WindowSpec::Tumbling { size, .. } | WindowSpec::Hopping { size, .. } => {
            size.as_millis() as i64
        }
        WindowSpec::Session { .. } => 0,
    }
}

/// Splits a windowed key into the inner key and the window's bounds (nulls if the key is
/// too short to hold a window).
fn split_windowed_key(
    key: Option<&[u8]>,
    session: bool,
    size: i64,
) -> (Option<&[u8]>, Option<i64>, Option<i64>) {
    let suffix = if session { 16 } else { 8 };
    let Some(key) = key.filter(|k| k.len() >= suffix) else {
        return (key, None, None);
    };
    let (inner, window) = key.split_at(key.len() - suffix);
    let word = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        i64::from_be_bytes(a)
    };
    if session {
        (
            Some(inner),
            Some(word(&window[8..])),
            Some(word(&window[..8])),
        )
    } else {
        let start = word(window);
        (Some(inner), Some(start), Some(start.saturating_add(size)))
    }
}

//! Arrow batches → record keys and values.

use std::convert::Infallible;

use arrow::array::{Array, BooleanArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use eddy_topic::Payloads;

use crate::avro::encode::AvroEncoder;
use crate::json::encode as json;
use crate::protobuf::encode::ProtobufEncoder;
use crate::schema::{self, Role};
use crate::view::{self, ColumnView};
use crate::{Format, FormatError, delimited, kafka};

/// What [`ValueEncoder`] and [`KeyEncoder`] share.
#[derive(Debug)]
struct RowEncoder {
    format: Format,
    schema: SchemaRef,
    role: Role,
    /// JSON only: a record is an object rather than the single column's bare value.
    wrapped: bool,
    /// JSON only: the escaped `"NAME":` prefix of each column.
    keys: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    /// AVRO only: the writer schema, compiled against the columns.
    avro: Option<AvroEncoder>,
    /// JSON_SR only: the magic byte and schema id in front of every record.
    prefix: Option<[u8; 5]>,
    /// PROTOBUF only: the writer message, compiled against the columns.
    protobuf: Option<ProtobufEncoder>,
}

impl RowEncoder {
    fn new(
        format: &Format,
        schema: SchemaRef,
        role: Role,
        wrap_single_value: bool,
    ) -> Result<Self, FormatError> {
        schema::validate(format, &schema, role, wrap_single_value)?;
        let keys = match format {
            Format::Json | Format::JsonSr(_) => {
                json::object_keys(schema.fields().iter().map(|f| f.name().as_str()))
            }
            _ => Vec::new(),
        };
        let avro = match format {
            Format::Avro(avro) if !schema.fields().is_empty() => {
                Some(AvroEncoder::new(avro, &schema, wrap_single_value)?)
            }
            _ => None,
        };
        let protobuf = match format {
            Format::Protobuf(protobuf) if !schema.fields().is_empty() => {
                Some(ProtobufEncoder::new(protobuf, &schema)?)
            }
            _ => None,
        };
        let prefix = match format {
            Format::JsonSr(sr) if !schema.fields().is_empty() => Some(
                crate::json_sr::writer_prefix(sr, schema.fields(), wrap_single_value)?,
            ),
            _ => None,
        };
        Ok(Self {
            format: format.clone(),
            avro,
            prefix,
            protobuf,
            schema,
            role,
            wrapped: wrap_single_value,
            keys,
            scratch: Vec::new(),
        })
    }

    /// Whether row `i` is written as a null entry rather than as bytes.
    fn is_absent(&self, columns: &[ColumnView<'_>], i: usize) -> bool {
        let single_null = || columns.first().is_none_or(|c| c.is_null(i));
        match self.format {
            Format::None => true,
            Format::Kafka => single_null(),
            Format::Avro(_) if self.avro.is_none() => true,
            Format::Avro(_) if !self.wrapped => single_null(),
            Format::JsonSr(_) if self.prefix.is_none() => true,
            Format::Protobuf(_) if self.protobuf.is_none() => true,
            Format::JsonSr(_) if !self.wrapped => single_null(),
            Format::JsonSr(_) if self.role == Role::Key => false,
            Format::Json if !self.wrapped => single_null(),
            // A key of several columns is an object even when every column is null.
            Format::Json if self.role == Role::Key => false,
            _ => self.role == Role::Key && columns.iter().all(|c| c.is_null(i)),
        }
    }

    fn encode(
        &mut self,
        batch: &RecordBatch,
        tombstones: Option<&BooleanArray>,
        out: &mut Payloads,
    ) -> Result<(), FormatError> {
        if let Some(t) = tombstones
            && t.len() != batch.num_rows()
        {
            return Err(FormatError::BatchMismatch {
                reason: format!("{} tombstone flags for {} rows", t.len(), batch.num_rows()),
            });
        }
        let arrays = view::conform(batch, &self.schema)?;
        let columns = arrays
            .iter()
            .map(ColumnView::new)
            .collect::<Result<Vec<_>, _>>()?;
        for i in 0..batch.num_rows() {
            let tombstone = tombstones.is_some_and(|t| t.is_valid(i) && t.value(i));
            if tombstone || self.is_absent(&columns, i) {
                out.push(None);
                continue;
            }
            if let Some(protobuf) = &self.protobuf {
                out.push_with(|buf| protobuf.write_row(&columns, i, buf))
                    .map_err(|reason| FormatError::Record {
                        index: i,
                        reason: format!("Failed to serialize {}: {reason}", self.role.noun()),
                    })?;
                continue;
            }
            if let Some(avro) = &self.avro {
                out.push_with(|buf| avro.write_row(&columns, i, buf))
                    .map_err(|reason| FormatError::Record {
                        index: i,
                        reason: format!("Failed to serialize {}: {reason}", self.role.noun()),
                    })?;
                continue;
            }
            let Ok(()) = out.push_with(|buf| {
                if let Some(prefix) = &self.prefix {
                    buf.extend_from_slice(prefix);
                }
                match &self.format {
                    Format::Json | Format::JsonSr(_) if self.wrapped => {
                        json::write_object(&columns, &self.keys, i, buf)
                    }
                    Format::Json | Format::JsonSr(_) => json::write_value(&columns[0], i, buf),
                    Format::Delimited { delimiter } => {
                        delimited::write_row(&columns, i, *delimiter, buf, &mut self.scratch)
                    }
                    Format::Kafka => kafka::write_value(&columns[0], i, buf),
                    Format::None | Format::Avro(_) | Format::Protobuf(_) => {}
                }
                Ok::<(), Infallible>(())
            });
        }
        Ok(())
    }
}

/// Encodes rows of a value schema into record values.
#[derive(Debug)]
pub struct ValueEncoder(RowEncoder);

impl ValueEncoder {
    /// An encoder of `schema`'s columns into `format` records. With `wrap_single_value = false`
    /// (JSON only) a record is the bare value of the schema's single column. Fails if the
    /// format cannot carry the schema.
    pub fn new(
        format: &Format,
        schema: SchemaRef,
        wrap_single_value: bool,
    ) -> Result<Self, FormatError> {
        RowEncoder::new(format, schema, Role::Value, wrap_single_value).map(Self)
    }

    /// Appends one entry per row of `batch` to `out`: `None` where `tombstones` is true (and
    /// for a null single value in KAFKA or unwrapped JSON, and always for NONE). The batch's
    /// columns must match the schema by position; a column of another representation of the
    /// same type (e.g. `Utf8View`) is cast.
    pub fn encode(
        &mut self,
        batch: &RecordBatch,
        tombstones: Option<&BooleanArray>,
        out: &mut Payloads,
    ) -> Result<(), FormatError> {
        self.0.encode(batch, tombstones, out)
    }
}

/// Encodes rows of a key schema into record keys.
#[derive(Debug)]
pub struct KeyEncoder(RowEncoder);

impl KeyEncoder {
    /// An encoder of `key_schema`'s columns into `format` keys. A JSON key with one column is
    /// that column's bare value; with several, an object. Fails if the format cannot carry the
    /// schema.
    pub fn new(format: &Format, key_schema: SchemaRef) -> Result<Self, FormatError> {
        let wrapped = key_schema.fields().len() != 1;
        RowEncoder::new(format, key_schema, Role::Key, wrapped).map(Self)
    }

    /// Appends one entry per row of `batch` to `out`, `None` where every key column is null.
    pub fn encode(&mut self, batch: &RecordBatch, out: &mut Payloads) -> Result<(), FormatError> {
        self.0.encode(batch, None, out)
    }
}

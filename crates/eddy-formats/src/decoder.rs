//! Record keys and values → Arrow batches.

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_topic::Payloads;

use crate::avro::decode::AvroDecoder;
use crate::column::Rows;
use crate::delimited::DelimitedDecoder;
use crate::json::decode::JsonDecoder;
use crate::protobuf::decode::ProtobufDecoder;
use crate::schema::{self, Role};
use crate::{Format, FormatError, kafka};

/// The result of decoding a batch of records.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// One row per input entry, in order; a null entry or a record that failed to decode is
    /// an all-null row.
    pub batch: RecordBatch,
    /// The records that failed to decode, in order.
    pub errors: Vec<RecordError>,
}

impl Decoded {
    /// The batch, or the first record error: for callers that cannot skip a bad record.
    pub fn into_batch(self) -> Result<RecordBatch, FormatError> {
        match self.errors.into_iter().next() {
            Some(RecordError { index, reason }) => Err(FormatError::Record { index, reason }),
            None => Ok(self.batch),
        }
    }
}

/// A record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// Position of the record in the input.
    pub index: usize,
    /// What was wrong, e.g. "Failed to deserialize value: Can't convert type. sourceType:
    /// TextNode, requiredType: INTEGER, path: $.ID".
    pub reason: String,
}

#[derive(Debug)]
enum Codec {
    Json(JsonDecoder),
    Delimited(DelimitedDecoder),
    Kafka,
    Avro(Box<AvroDecoder>),
    /// JSON_SR: JSON after the schema id.
    JsonSr(JsonDecoder),
    Protobuf(Box<ProtobufDecoder>),
    /// No columns: every record is an empty row.
    Empty,
}

/// What [`ValueDecoder`] and [`KeyDecoder`] share.
#[derive(Debug)]
struct RowDecoder {
    codec: Codec,
    rows: Rows,
    schema: SchemaRef,
    role: Role,
}

impl RowDecoder {
    fn new(
        format: &Format,
        schema: SchemaRef,
        role: Role,
        wrap_single_value: bool,
    ) -> Result<Self, FormatError> {
        schema::validate(format, &schema, role, wrap_single_value)?;
        let rows = Rows::new(&schema).ok_or_else(|| FormatError::Unsupported {
            format: format.name(),
            what: format!(
                "does not support the schema {}",
                schema::column_list(&schema)
            ),
        })?;
        let codec = match format {
            _ if schema.fields().is_empty() => Codec::Empty,
            Format::Json => Codec::Json(JsonDecoder::new(wrap_single_value)),
            Format::Delimited { delimiter } => Codec::Delimited(DelimitedDecoder::new(*delimiter)),
            Format::Kafka => Codec::Kafka,
            Format::None => Codec::Empty,
            Format::JsonSr(_) => Codec::JsonSr(JsonDecoder::new(wrap_single_value)),
            Format::Protobuf(protobuf) => Codec::Protobuf(Box::new(ProtobufDecoder::new(
                protobuf.clone(),
                schema.fields(),
            ))),
            Format::Avro(avro) => Codec::Avro(Box::new(AvroDecoder::new(
                avro.clone(),
                schema.fields(),
                wrap_single_value,
            ))),
        };
        Ok(Self {
            codec,
            rows,
            schema: schema::nullable(&schema),
            role,
        })
    }

    fn decode(&mut self, payloads: &Payloads) -> Result<Decoded, FormatError> {
        let mut errors = Vec::new();
        self.rows.reserve(payloads.len());
        for (index, payload) in payloads.iter().enumerate() {
            let Some(bytes) = payload else {
                self.rows.null_row();
                continue;
            };
            let decoded = match &mut self.codec {
                Codec::Json(json) => json.decode(bytes, &mut self.rows),
                Codec::Delimited(delimited) => delimited.decode(bytes, &mut self.rows),
                Codec::Kafka => kafka::decode(bytes, &mut self.rows),
                Codec::Avro(avro) => avro.decode(bytes, &mut self.rows),
                Codec::Protobuf(protobuf) => protobuf.decode(bytes, &mut self.rows),
                Codec::JsonSr(json) => {
                    crate::json_sr::body(bytes).and_then(|body| json.decode(body, &mut self.rows))
                }
                Codec::Empty => Ok(()),
            };
            match decoded {
                Ok(()) => self.rows.end_row(),
                Err(failure) => {
                    self.rows.null_row();
                    errors.push(RecordError {
                        index,
                        reason: format!("Failed to deserialize {}: {failure}", self.role.noun()),
                    });
                }
            }
        }
        let batch = self.rows.finish(&self.schema)?;
        Ok(Decoded { batch, errors })
    }
}

/// Decodes record values into rows of a value schema.
#[derive(Debug)]
pub struct ValueDecoder(RowDecoder);

impl ValueDecoder {
    /// A decoder of `format` records into `schema`'s columns, in order. With
    /// `wrap_single_value = false` (JSON only) a record is the bare value of the schema's
    /// single column. Fails if the format cannot carry the schema.
    pub fn new(
        format: &Format,
        schema: SchemaRef,
        wrap_single_value: bool,
    ) -> Result<Self, FormatError> {
        RowDecoder::new(format, schema, Role::Value, wrap_single_value).map(Self)
    }

    /// Skips the values of the `VARCHAR` columns named by `unread`, leaving them null: for
    /// a query that never reads them, this saves copying their text. Only JSON objects skip
    /// (other formats and a bare single value decode every column), and only `VARCHAR`,
    /// because every JSON value has a text form: a skipped value is still checked, so the
    /// same records fail as when every column is decoded.
    pub fn skip_unread_text(&mut self, unread: impl Fn(&str) -> bool) {
        let RowDecoder { codec, rows, .. } = &mut self.0;
        if !matches!(codec, Codec::Json(json) | Codec::JsonSr(json) if json.wraps()) {
            return;
        }
        let columns = &mut rows.columns;
        for (skip, field) in columns.skip.iter_mut().zip(columns.fields.iter()) {
            *skip = *field.data_type() == DataType::Utf8 && unread(field.name());
        }
    }

    /// The schema of the decoded batches: the given one with every column nullable.
    pub fn schema(&self) -> &SchemaRef {
        &self.0.schema
    }

    /// Decodes one row per entry of `values` (a tombstone is an all-null row); a record that
    /// does not decode is an all-null row and a [`RecordError`].
    pub fn decode(&mut self, values: &Payloads) -> Result<Decoded, FormatError> {
        self.0.decode(values)
    }
}

/// Decodes record keys into rows of a key schema.
#[derive(Debug)]
pub struct KeyDecoder(RowDecoder);

impl KeyDecoder {
    /// A decoder of `format` keys into `key_schema`'s columns, in order. A JSON key with one
    /// column is that column's bare value; with several, an object. Fails if the format cannot
    /// carry the schema.
    pub fn new(format: &Format, key_schema: SchemaRef) -> Result<Self, FormatError> {
        let wrapped = key_schema.fields().len() != 1;
        RowDecoder::new(format, key_schema, Role::Key, wrapped).map(Self)
    }

    /// The schema of the decoded batches: the given one with every column nullable.
    pub fn schema(&self) -> &SchemaRef {
        &self.0.schema
    }

    /// Decodes one row per entry of `keys` (a null key is an all-null row); a key that does
    /// not decode is an all-null row and a [`RecordError`].
    pub fn decode(&mut self, keys: &Payloads) -> Result<Decoded, FormatError> {
        self.0.decode(keys)
    }
}

//! `GROUP BY` on other columns than the input's key: as in ksqlDB, the query's input goes
//! through an internal topic first, each record to the partition its group hashes to, so
//! that every group's records meet in one task whichever server read them. The query reads
//! both topics (a [`crate::stream_join::MergedSource`]): a batch of its input is forwarded,
//! a batch of the internal topic is aggregated.
//!
//! A forwarded record is the input record unchanged (key, value, timestamp), so the
//! aggregating side decodes it as it would the input; only its partition says its group.
//! A table's change is forwarded as up to two records, as Kafka Streams does: its previous
//! version, taken out of its group, and its new version, added to its group (one byte after
//! the key says which: [`split_changes`]).
//!
//! After a join the groups may be the joined table's columns, so what is forwarded is the
//! joined row ([`JoinedRows`]): the aggregating side does not join again (the table may
//! have changed meanwhile, which could put the row in a group of another partition).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::BooleanArray;
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_formats::{Format, ValueDecoder, ValueEncoder};
use eddy_topic::{Header, Payloads, RawBatch, RecordHeaders, RecordSink};

use crate::error::EngineError;
use crate::processing_log::{ErrorKind, ProcessingError};

/// How long forwarded records may take to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// The last byte of a forwarded table change's key: the row leaves its group.
const RETRACTS: u8 = 0;
/// The last byte of a forwarded table change's key: the row joins its group.
const ADDS: u8 = 1;

/// The internal topic of a query's repartition, named as ksqlDB names its own.
pub(crate) fn repartition_topic(service_id: &str, query_id: &str) -> String {
    let prefix = crate::changelog::internal_topic_prefix(service_id, query_id);
    format!("{prefix}Aggregate-GroupBy-repartition")
}

/// The writing side of a repartition, and which topic the batch in hand came from.
pub(crate) struct Repartition {
    topic: String,
    sink: Box<dyn RecordSink>,
    partitions: i32,
    /// Set by the query's merged source when a batch comes from the internal topic.
    from_internal: Arc<AtomicBool>,
    /// The forwarded records of the batch in hand, kept until they are acknowledged.
    keys: Payloads,
    values: Payloads,
    timestamps: Vec<i64>,
    /// Headers of the records forwarded, kept as Kafka Streams keeps them.
    headers: RecordHeaders,
    targets: Vec<i32>,
    /// After a join: the codec of the joined rows it forwards.
    joined: Option<JoinedRows>,
}

impl Repartition {
    /// Forwards to `topic` (of `partitions` partitions) through `sink`; `from_internal` is
    /// the flag of the merged source whose right side reads `topic`.
    pub(crate) fn new(
        topic: String,
        sink: Box<dyn RecordSink>,
        partitions: i32,
        from_internal: Arc<AtomicBool>,
    ) -> Self {
        Self {
            topic,
            sink,
            partitions,
            from_internal,
            keys: Payloads::new(),
            values: Payloads::new(),
            timestamps: Vec::new(),
            headers: RecordHeaders::new(),
            targets: Vec::new(),
            joined: None,
        }
    }

    /// Forwards joined rows (of the codec's schema) instead of input records.
    pub(crate) fn with_joined_rows(mut self, joined: JoinedRows) -> Self {
        self.joined = Some(joined);
        self
    }

    /// Whether it forwards joined rows rather than input records.
    pub(crate) fn forwards_joined_rows(&self) -> bool {
        self.joined.is_some()
    }

    /// The joined rows of a batch read back from the internal topic (see
    /// [`JoinedRows::decode`]), or `None` if it forwards input records instead.
    pub(crate) fn decode_joined(
        &mut self,
        raw: &RawBatch,
        errors: &mut Vec<ProcessingError>,
    ) -> Result<Option<RecordBatch>, EngineError> {
        match &mut self.joined {
            Some(codec) => Ok(Some(codec.decode(raw, &self.topic, errors)?)),
            None => Ok(None),
        }
    }

    /// Encodes joined rows into record values.
    pub(crate) fn encode_joined(
        &mut self,
        batch: &RecordBatch,
        out: &mut Payloads,
    ) -> Result<(), EngineError> {
        match &mut self.joined {
            Some(codec) => codec.encode(batch, out),
            None => Err(EngineError::Internal(
                "joined rows forwarded without their codec".into(),
            )),
        }
    }

    /// The internal topic.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// The internal topic's partition count.
    pub(crate) fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Whether the batch in hand came from the internal topic (it is aggregated) rather
    /// than from the input (it is forwarded).
    pub(crate) fn is_internal_batch(&self) -> bool {
        self.from_internal.load(Ordering::SeqCst)
    }

    /// Starts the forwarded records of a new batch.
    pub(crate) fn clear(&mut self) {
        self.keys.clear();
        self.values.clear();
        self.timestamps.clear();
        self.headers.clear();
        self.targets.clear();
    }

    /// Adds record `r` of `raw` to the batch's forwarded records, for `partition`.
    pub(crate) fn push(&mut self, raw: &RawBatch, r: usize, partition: i32) {
        self.headers
            .set(self.keys.len(), raw.headers.of(r).to_vec());
        self.keys.push(raw.keys.get(r));
        self.values.push(raw.values.get(r));
        self.timestamps.push(raw.timestamps[r]);
        self.targets.push(partition);
    }

    /// Adds a table change to the batch's forwarded records, for `partition`: row `value`
    /// of `key` leaves its group (`retracts`) or joins it.
    pub(crate) fn push_change(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
        partition: i32,
        retracts: bool,
        headers: &[Header],
    ) -> Result<(), EngineError> {
        self.headers.set(self.keys.len(), headers.to_vec());
        self.keys.push_with(|buf| {
            buf.extend_from_slice(key);
            buf.push(if retracts { RETRACTS } else { ADDS });
            Ok::<(), EngineError>(())
        })?;
        self.values.push(value);
        self.timestamps.push(timestamp);
        self.targets.push(partition);
        Ok(())
    }

    /// Adds a joined row (encoded by [`JoinedRows`]) to the batch's forwarded records, for
    /// `partition`, without a key.
    pub(crate) fn push_row(
        &mut self,
        value: Option<&[u8]>,
        timestamp: i64,
        partition: i32,
        headers: &[Header],
    ) {
        self.headers.set(self.keys.len(), headers.to_vec());
        self.keys.push(None);
        self.values.push(value);
        self.timestamps.push(timestamp);
        self.targets.push(partition);
    }

    /// Sends the forwarded records of the batch in hand (again, after a failed flush).
    pub(crate) fn send(&mut self) -> Result<(), EngineError> {
        self.sink.send_to_partitions(
            &self.keys,
            &self.values,
            &self.timestamps,
            &self.headers,
            &self.targets,
        )?;
        Ok(())
    }

    /// How many records the batch in hand forwarded.
    pub(crate) fn forwarded(&self) -> usize {
        self.keys.len()
    }

    /// Waits until the forwarded records are stored.
    pub(crate) fn flush(&mut self) -> Result<(), EngineError> {
        self.sink.flush(FLUSH_TIMEOUT)?;
        Ok(())
    }
}

/// Splits forwarded table changes into the records as the table had them and, for each,
/// whether it leaves its group (else it joins it). A record without a key (not one Eddy
/// wrote) is dropped with a warning.
pub(crate) fn split_changes(raw: &RawBatch) -> (RawBatch, Vec<bool>) {
    let mut records = RawBatch::default();
    let mut retracts = Vec::with_capacity(raw.len());
    for i in 0..raw.len() {
        let Some((&mark, key)) = raw.keys.get(i).and_then(<[u8]>::split_last) else {
            tracing::warn!(
                partition = raw.partitions[i],
                offset = raw.offsets[i],
                "a record without a key in a repartition topic was dropped"
            );
            continue;
        };
        retracts.push(mark == RETRACTS);
        records.push(
            Some(key),
            raw.values.get(i),
            raw.timestamps[i],
            raw.partitions[i],
            raw.offsets[i],
        );
        records.set_last_headers(raw.headers.of(i).to_vec());
    }
    (records, retracts)
}

/// Joined rows as forwarded through a repartition topic: JSON objects whose fields are the
/// columns by position (`C0`, `C1`, …), as the joined sources' column names may repeat.
pub(crate) struct JoinedRows {
    /// The rows' schema (every column nullable, as decoded).
    schema: SchemaRef,
    positional: SchemaRef,
    encoder: ValueEncoder,
    decoder: ValueDecoder,
}

impl JoinedRows {
    /// A codec of rows of `schema`.
    pub(crate) fn new(schema: &Schema) -> Result<Self, EngineError> {
        let fields = |name: &dyn Fn(usize, &Field) -> String| -> SchemaRef {
            Arc::new(Schema::new(
                schema
                    .fields()
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Field::new(name(i, f), f.data_type().clone(), true))
                    .collect::<Vec<_>>(),
            ))
        };
        let positional = fields(&|i, _| format!("C{i}"));
        Ok(Self {
            schema: fields(&|_, f| f.name().clone()),
            encoder: ValueEncoder::new(&Format::Json, Arc::clone(&positional), true)?,
            decoder: ValueDecoder::new(&Format::Json, Arc::clone(&positional), true)?,
            positional,
        })
    }

    /// Appends one record value per row of `batch` (rows of the codec's schema) to `out`.
    pub(crate) fn encode(
        &mut self,
        batch: &RecordBatch,
        out: &mut Payloads,
    ) -> Result<(), EngineError> {
        let columns = batch
            .columns()
            .iter()
            .zip(self.positional.fields())
            .map(|(c, f)| match c.data_type() == f.data_type() {
                true => Ok(Arc::clone(c)),
                false => cast(c, f.data_type()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let positional = RecordBatch::try_new(Arc::clone(&self.positional), columns)?;
        self.encoder.encode(&positional, None, out)?;
        Ok(())
    }

    /// The rows of the records of `raw` (read from `topic`), which [`JoinedRows::encode`]
    /// wrote. A record that does not decode (not one Eddy wrote) is left out and reported
    /// in `errors`.
    pub(crate) fn decode(
        &mut self,
        raw: &RawBatch,
        topic: &str,
        errors: &mut Vec<ProcessingError>,
    ) -> Result<RecordBatch, EngineError> {
        let decoded = self.decoder.decode(&raw.values)?;
        let batch =
            RecordBatch::try_new(Arc::clone(&self.schema), decoded.batch.columns().to_vec())?;
        if decoded.errors.is_empty() {
            return Ok(batch);
        }
        let mut keep = vec![true; batch.num_rows()];
        for e in decoded.errors {
            keep[e.index] = false;
            errors.push(ProcessingError {
                kind: ErrorKind::Deserialization,
                topic: topic.to_string(),
                partition: raw.partitions[e.index],
                offset: raw.offsets[e.index],
                reason: e.reason,
                record: raw
                    .values
                    .get(e.index)
                    .map(|b| String::from_utf8_lossy(b).into_owned()),
            });
        }
        Ok(filter_record_batch(&batch, &BooleanArray::from(keep))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_sql::types::{SqlType, StructField};

    #[test]
    fn joined_rows_come_back_as_they_went_whatever_their_types_and_names() {
        use SqlType::*;
        let point = Struct(vec![
            StructField {
                name: "X".into(),
                ty: Double,
            },
            StructField {
                name: "LABEL".into(),
                ty: String,
            },
        ]);
        // Both sides of a join may have an `ID`.
        let columns = [
            ("ID", Int),
            ("ID", Bigint),
            (
                "PRICE",
                Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            ("AT", Timestamp),
            ("ON", Date),
            ("WHEN", Time),
            ("RAW", Bytes),
            ("TAGS", Array(Box::new(String))),
            ("SCORES", Map(Box::new(String), Box::new(Double))),
            ("POINT", point),
            ("OK", Boolean),
            ("RATIO", Double),
        ];
        let schema = Schema::new(
            columns
                .iter()
                .map(|(name, ty)| Field::new(*name, ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        );
        let mut codec = JoinedRows::new(&schema).expect("codec");
        // Rows made by the codec's decoder from JSON written by hand, then sent round.
        let written = Payloads::from_iter([
            Some(
                &br#"{"C0": 1, "C1": 9000000000, "C2": 12.34, "C3": 1700000000123,
                  "C4": 19000, "C5": 3600000, "C6": "AAEC", "C7": ["a", null],
                  "C8": {"k": 1.5}, "C9": {"X": -0.5, "LABEL": "p"}, "C10": true,
                  "C11": 0.1}"#[..],
            ),
            Some(&br#"{"C0": null}"#[..]),
        ]);
        let raw = |values: &Payloads| {
            let mut raw = RawBatch::default();
            for (i, v) in values.iter().enumerate() {
                raw.push(None, v, 0, 0, i as i64);
            }
            raw
        };
        let mut errors = Vec::new();
        let rows = codec
            .decode(&raw(&written), "t", &mut errors)
            .expect("hand-written rows");
        let mut forwarded = Payloads::new();
        codec.encode(&rows, &mut forwarded).expect("encode");
        let back = codec
            .decode(&raw(&forwarded), "t", &mut errors)
            .expect("decode");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back, rows);
        assert_eq!(back.num_rows(), 2);
        assert_eq!(back.schema().field(1).name(), "ID");
        // The first row decoded every column; the second has only nulls.
        for column in back.columns() {
            assert!(column.is_valid(0) && column.is_null(1), "{column:?}");
        }
    }

    #[test]
    fn a_record_eddy_did_not_write_goes_to_the_processing_log() {
        let schema = Schema::new(vec![Field::new(
            "ID",
            arrow::datatypes::DataType::Int32,
            true,
        )]);
        let mut codec = JoinedRows::new(&schema).expect("codec");
        let mut raw = RawBatch::default();
        raw.push(None, Some(br#"{"C0": 1}"#), 0, 2, 10);
        raw.push(None, Some(b"not json"), 0, 2, 11);
        raw.push(None, Some(br#"{"C0": 3}"#), 0, 2, 12);
        let mut errors = Vec::new();
        let rows = codec.decode(&raw, "internal", &mut errors).expect("decode");
        assert_eq!(rows.num_rows(), 2);
        assert_eq!(errors.len(), 1);
        assert_eq!((errors[0].partition, errors[0].offset), (2, 11));
        assert_eq!(errors[0].topic, "internal");
        assert_eq!(errors[0].record.as_deref(), Some("not json"));
    }
}

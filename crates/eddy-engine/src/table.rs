//! Materialised tables: a table's topic applied to a key-value store (latest value per key,
//! tombstones delete), so stream–table joins can look rows up by key.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::array::Array;
use arrow::record_batch::RecordBatch;
use eddy_formats::{Format, KeyDecoder, KeyEncoder};
use eddy_sql::catalog::Source;
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, Position, RawBatch, RecordSource};

use crate::error::EngineError;
use crate::processing_log::{ErrorKind, ProcessingError, ProcessingLog};
use crate::reader::{
    SourceReader, columns_schema, effective_key_format, format_of, positions_after,
};
use crate::runner::Task;
use crate::stats::TopicStats;

/// How far a materialiser has applied its topic, for readers that must see fresh state.
#[derive(Default)]
pub(crate) struct TableProgress {
    applied: Mutex<HashMap<i32, i64>>,
    changed: Condvar,
}

impl TableProgress {
    fn advance(&self, positions: &[Position]) {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        for p in positions {
            let e = applied.entry(p.partition).or_insert(0);
            *e = (*e).max(p.next_offset);
        }
        self.changed.notify_all();
    }

    /// Waits until every record before `ends` is applied, or `timeout` passes.
    /// Returns whether the table caught up.
    pub(crate) fn wait_for(&self, ends: &[Position], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let caught_up = ends.iter().all(|end| {
                end.next_offset <= 0
                    || applied.get(&end.partition).copied().unwrap_or(0) >= end.next_offset
            });
            let now = Instant::now();
            if caught_up || now >= deadline {
                return caught_up;
            }
            applied = self
                .changed
                .wait_timeout(applied, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

/// Keys in a table's store are the canonical encoding of the key columns in the table's key
/// format, so a join can encode its lookup key the same way. Keys of a schema-registry
/// format are stored as JSON: their bytes carry a schema id, so equal keys could differ.
pub(crate) fn key_codec(source: &Source) -> Result<(KeyDecoder, KeyEncoder), EngineError> {
    let format = if effective_key_format(source).uses_registry() {
        Format::Json
    } else {
        format_of(source, false)?
    };
    let schema = columns_schema(source.key_columns());
    Ok((
        KeyDecoder::new(&format, Arc::clone(&schema))?,
        KeyEncoder::new(&format, schema)?,
    ))
}

/// The task that keeps a table's store up to date with its topic.
pub(crate) struct TableMaterializer {
    name: String,
    topic: String,
    source: Box<dyn RecordSource>,
    reader: SourceReader,
    key_encoder: KeyEncoder,
    key_columns: usize,
    /// For a windowed table: the scan-layout indices of WINDOWSTART and WINDOWEND, and
    /// whether the end is part of the key (sessions).
    window: Option<(usize, usize, bool)>,
    store: Arc<dyn KeyValueStore>,
    progress: Arc<TableProgress>,
    log: Arc<ProcessingLog>,
    stats: Arc<TopicStats>,
    raw: RawBatch,
    max_batch: usize,
}

impl TableMaterializer {
    pub(crate) fn new(
        table: &Source,
        source: Box<dyn RecordSource>,
        store: Arc<dyn KeyValueStore>,
        progress: Arc<TableProgress>,
        log: Arc<ProcessingLog>,
        stats: Arc<TopicStats>,
        max_batch: usize,
    ) -> Result<Self, EngineError> {
        let (_, key_encoder) = key_codec(table)?;
        let scan = eddy_sql::plan::scan_schema(table);
        let window = match &table.window {
            Some(w) => Some((
                scan.index_of(eddy_sql::plan::WINDOWSTART)?,
                scan.index_of(eddy_sql::plan::WINDOWEND)?,
                matches!(w, eddy_sql::window::WindowSpec::Session { .. }),
            )),
            None => None,
        };
        Ok(Self {
            window,
            name: format!("materialize {}", table.name),
            topic: table.topic.clone(),
            source,
            reader: SourceReader::new(table)?,
            key_encoder,
            key_columns: table.key_columns().count(),
            store,
            progress,
            log,
            stats,
            raw: RawBatch::default(),
            max_batch,
        })
    }
}

impl Task for TableMaterializer {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, wait: Duration) -> Result<usize, EngineError> {
        self.raw.clear();
        let n = self.source.poll(&mut self.raw, self.max_batch, wait)?;
        if n == 0 {
            return Ok(0);
        }
        let mut errors = Vec::new();
        let decoded = self.reader.decode(&self.raw, true, &mut errors)?;
        let batch = &decoded.batch;
        let key_batch = RecordBatch::try_new(
            columns_schema_of(batch, self.key_columns),
            batch.columns()[..self.key_columns].to_vec(),
        )?;
        let mut keys = Payloads::with_capacity(batch.num_rows(), batch.num_rows() * 8);
        self.key_encoder.encode(&key_batch, &mut keys)?;
        // Values are stored as they came: decoding above only proved they are readable.
        let mut store_keys = Payloads::with_capacity(decoded.rows.len(), keys.byte_len());
        let mut store_values =
            Payloads::with_capacity(decoded.rows.len(), self.raw.values.byte_len());
        for (row, raw_index) in decoded.rows.iter().enumerate() {
            let Some(key) = keys.get(row) else {
                errors.push(ProcessingError {
                    kind: ErrorKind::RecordProcessing,
                    topic: self.topic.clone(),
                    partition: self.raw.partitions[*raw_index],
                    offset: self.raw.offsets[*raw_index],
                    reason: "A table row needs a key; a record with a null key was skipped.".into(),
                    record: None,
                });
                continue;
            };
            match self.window {
                None => store_keys.push(Some(key)),
                Some((start, end, session)) => {
                    // Each window of a key is its own row, keyed as Kafka Streams writes
                    // windowed keys: the key, then the start (time windows) or the end and
                    // the start (sessions), big-endian.
                    let mut windowed = key.to_vec();
                    if session {
                        windowed.extend_from_slice(&int64_at(batch, end, row).to_be_bytes());
                    }
                    windowed.extend_from_slice(&int64_at(batch, start, row).to_be_bytes());
                    store_keys.push(Some(&windowed));
                }
            }
            match self.raw.values.get(*raw_index) {
                Some(value) if !decoded.tombstones[row] => {
                    let timestamp = self.raw.timestamps[*raw_index];
                    store_values
                        .push_with(|buf| {
                            let headers = self.raw.headers.of(*raw_index);
                            stored_row::write(buf, timestamp, headers, value);
                            Ok::<_, std::convert::Infallible>(())
                        })
                        .unwrap_or_else(|never| match never {});
                }
                _ => store_values.push(None),
            }
        }
        self.store.write(&store_keys, &store_values)?;
        self.log.write(&self.name, &errors);
        self.stats.processed(&self.topic, &self.raw, &errors);
        let positions = positions_after(&self.raw);
        self.source.commit(&positions)?;
        self.progress.advance(&positions);
        Ok(n)
    }
}

/// The store name of a materialised table. The `rows` generation of the layout keeps each
/// row's timestamp ([`stored_row`]); stores of the older layout (`table_<name>`, values
/// only) are left unread and rebuilt from the table's topic.
pub(crate) fn store_name(table: &str) -> String {
    format!("table_rows_{table}")
}

/// A materialised table's row as stored: the record's timestamp (ROWTIME, 8 bytes
/// big-endian), then the value bytes as they came from the topic.
pub(crate) mod stored_row {
    use eddy_topic::{Header, Payloads, RawBatch};

    const TIMESTAMP: usize = 8;

    /// Appends a stored row to `buf`: the timestamp, then the value. A record with headers
    /// has its timestamp's bits inverted (record timestamps are never negative, so a
    /// negative one marks the headers), then its headers ([`write_headers`]), then the
    /// value.
    pub(crate) fn write(buf: &mut Vec<u8>, timestamp: i64, headers: &[Header], value: &[u8]) {
        if headers.is_empty() {
            buf.extend_from_slice(&timestamp.to_be_bytes());
        } else {
            buf.extend_from_slice(&(!timestamp).to_be_bytes());
            write_headers(buf, headers);
        }
        buf.extend_from_slice(value);
    }

    /// A stored row's timestamp, headers and value bytes (a row too short for its layout
    /// reads as its bytes, without timestamp or headers).
    pub(crate) fn parts(row: &[u8]) -> (i64, Vec<Header>, &[u8]) {
        let Some((timestamp, rest)) = row.split_first_chunk::<TIMESTAMP>() else {
            return (0, Vec::new(), row);
        };
        let timestamp = i64::from_be_bytes(*timestamp);
        if timestamp >= 0 {
            return (timestamp, Vec::new(), rest);
        }
        match read_headers(rest) {
            Some((headers, value)) => (!timestamp, headers, value),
            None => (0, Vec::new(), row),
        }
    }

    /// Appends headers: a 4-byte count, then each key and value as a 4-byte length (-1 for
    /// a null value) and the bytes.
    pub(crate) fn write_headers(buf: &mut Vec<u8>, headers: &[Header]) {
        buf.extend_from_slice(&(headers.len() as i32).to_be_bytes());
        for h in headers {
            for part in [Some(h.key.as_bytes()), h.value.as_deref()] {
                match part {
                    Some(b) => {
                        buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        buf.extend_from_slice(b);
                    }
                    None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        }
    }

    /// Headers written by [`write_headers`] at the start of `rest`, and what follows them.
    pub(crate) fn read_headers(mut rest: &[u8]) -> Option<(Vec<Header>, &[u8])> {
        let int = |rest: &mut &[u8]| -> Option<i32> {
            let (n, tail) = rest.split_first_chunk::<4>()?;
            *rest = tail;
            Some(i32::from_be_bytes(*n))
        };
        let count = int(&mut rest)?;
        let mut headers = Vec::new();
        for _ in 0..count {
            let bytes = |rest: &mut &[u8]| -> Option<Option<Vec<u8>>> {
                let len = int(rest)?;
                if len < 0 {
                    return Some(None);
                }
                let (b, tail) = rest.split_at_checked(len as usize)?;
                *rest = tail;
                Some(Some(b.to_vec()))
            };
            let key = String::from_utf8(bytes(&mut rest)??).ok()?;
            let value = bytes(&mut rest)?;
            headers.push(Header { key, value });
        }
        Some((headers, rest))
    }

    /// A stored row's timestamp and value bytes.
    pub(crate) fn split(row: &[u8]) -> (i64, &[u8]) {
        let (timestamp, _, value) = parts(row);
        (timestamp, value)
    }

    /// Appends a stored row of `key` (absent: no row) to `raw` as a record, with its
    /// timestamp and headers, at partition and offset 0.
    pub(crate) fn push(raw: &mut RawBatch, key: Option<&[u8]>, row: Option<&[u8]>) {
        match row.map(parts) {
            Some((timestamp, headers, value)) => {
                raw.push(key, Some(value), timestamp, 0, 0);
                raw.set_last_headers(headers);
            }
            None => raw.push(key, None, 0, 0, 0),
        }
    }

    /// The value bytes of stored rows (absent rows stay absent), into `out`.
    pub(crate) fn values(rows: &Payloads, out: &mut Payloads) {
        out.clear();
        for row in rows.iter() {
            out.push(row.map(|r| split(r).1));
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rows_keep_timestamps_headers_and_values() {
            let headers = vec![
                Header {
                    key: "abc".into(),
                    value: Some(vec![0x21]),
                },
                Header {
                    key: "n".into(),
                    value: None,
                },
            ];
            for (time, hs) in [
                (0, Vec::new()),
                (1_700_000_000_000, headers.clone()),
                (0, headers),
            ] {
                let mut buf = Vec::new();
                write(&mut buf, time, &hs, b"{\"V\":1}");
                assert_eq!(parts(&buf), (time, hs, &b"{\"V\":1}"[..]));
            }
            assert_eq!(parts(b"abc"), (0, Vec::new(), &b"abc"[..]));
        }
    }
}

fn columns_schema_of(batch: &RecordBatch, n: usize) -> arrow::datatypes::SchemaRef {
    Arc::new(arrow::datatypes::Schema::new(
        batch.schema().fields()[..n].to_vec(),
    ))
}

fn int64_at(batch: &RecordBatch, column: usize, row: usize) -> i64 {
    batch
        .column(column)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .filter(|a| a.is_valid(row))
        .map(|a| a.value(row))
        .unwrap_or(0)
}

//! Stream–stream joins (`JOIN … WITHIN`): each side's records are kept in a store by join
//! key and time; a record joins every record of the other side with the same key whose
//! timestamp lies within the window, and the joined row carries the later timestamp. A
//! left join emits a left record without a match at once with nulls (ksqlDB's semantics
//! without a grace period).
//!
//! Both topics are read by one task through [`MergedSource`], which says which side each
//! batch came from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, Int64Array, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_formats::{Format, KeyEncoder};
use eddy_sql::plan::{JoinKind, QueryPlan};
use eddy_state::KeyValueStore;
use eddy_topic::{Header, Payloads, Position, RawBatch, RecordSource, TopicError};

use crate::aggregate::DEFAULT_GRACE_MS;
use crate::changelog::Changelog;
use crate::error::EngineError;
use crate::eval::{Compiled, RowError};
use crate::operator::{Changes, Context, Operator, Port};
use crate::reader::SourceReader;
use crate::table::stored_row;

/// Reads two topics as one source, alternating between them; `right` tells which one the
/// last batch came from, so it is committed to and joined from the right side.
pub(crate) struct MergedSource {
    left: Box<dyn RecordSource>,
    right: Box<dyn RecordSource>,
    from_right: Arc<AtomicBool>,
    prefer_right: bool,
}

impl MergedSource {
    pub(crate) fn new(
        left: Box<dyn RecordSource>,
        right: Box<dyn RecordSource>,
        from_right: Arc<AtomicBool>,
    ) -> Self {
        Self {
            left,
            right,
            from_right,
            prefer_right: false,
        }
    }
}

impl RecordSource for MergedSource {
    fn poll(
        &mut self,
        batch: &mut RawBatch,
        max_records: usize,
        timeout: Duration,
    ) -> Result<usize, TopicError> {
        // Take turns so neither side starves; the second poll waits for the rest of the time.
        for (i, right) in [self.prefer_right, !self.prefer_right]
            .into_iter()
            .enumerate()
        {
            let wait = if i == 0 { Duration::ZERO } else { timeout };
            let source = if right {
                &mut self.right
            } else {
                &mut self.left
            };
            let n = source.poll(batch, max_records, wait)?;
            if n > 0 {
                self.from_right.store(right, Ordering::SeqCst);
                self.prefer_right = !right;
                return Ok(n);
            }
        }
        Ok(0)
    }

    fn commit(&mut self, positions: &[Position]) -> Result<(), TopicError> {
        if self.from_right.load(Ordering::SeqCst) {
            self.right.commit(positions)
        } else {
            self.left.commit(positions)
        }
    }

    fn assignments(&self) -> u64 {
        self.left.assignments() + self.right.assignments()
    }

    /// The left side's partitions: the right side of a foreign-key join is read whole.
    fn assigned_partitions(&self) -> Option<Vec<i32>> {
        self.left.assigned_partitions()
    }
}

/// The join of the driving stream (left) with another stream (right).
pub(crate) struct StreamStreamJoin {
    kind: JoinKind,
    before: i64,
    after: i64,
    left_key: Compiled,
    right_key: Compiled,
    key_schema: SchemaRef,
    key_encoder: KeyEncoder,
    right_reader: SourceReader,
    left_reader_copy: SourceReader,
    left_store: Arc<dyn KeyValueStore>,
    right_store: Arc<dyn KeyValueStore>,
    /// Where each side's store changes also go: `[left, right]`.
    changelogs: Option<[Changelog; 2]>,
    from_right: Arc<AtomicBool>,
    left_columns: usize,
    /// The joined rows' schema: the left stream's columns, then the right's.
    joined_schema: SchemaRef,
    /// How long records are kept: the window both ways plus the grace period.
    retention: i64,
    /// The largest timestamp seen, and when the stores were last purged.
    stream_time: i64,
    last_purge: i64,
}

impl StreamStreamJoin {
    pub(crate) fn new(
        plan: &QueryPlan,
        left_store: Arc<dyn KeyValueStore>,
        right_store: Arc<dyn KeyValueStore>,
        from_right: Arc<AtomicBool>,
    ) -> Result<Self, EngineError> {
        let join = plan
            .join
            .as_ref()
            .ok_or_else(|| EngineError::Internal("stream join without a join".into()))?;
        let window = join
            .within
            .as_ref()
            .ok_or_else(|| EngineError::Internal("stream join without WITHIN".into()))?;
        let left_key = Compiled::new(&join.stream_key, &plan.from.schema)?;
        let right_key = Compiled::new(&join.table_key, &join.table.schema)?;
        let key_type = left_key.data_type().clone();
        let key_schema = Arc::new(Schema::new(vec![Field::new("K", key_type, true)]));
        Ok(Self {
            kind: join.kind,
            before: window.before.as_millis() as i64,
            after: window.after.as_millis() as i64,
            left_key,
            right_key,
            key_encoder: KeyEncoder::new(&Format::Json, Arc::clone(&key_schema))?,
            key_schema,
            right_reader: SourceReader::new(&join.table.source)?,
            left_reader_copy: SourceReader::new(&plan.from.source)?,
            left_store,
            right_store,
            changelogs: None,
            from_right,
            left_columns: plan.from.schema.fields().len(),
            joined_schema: Arc::new(plan.input_schema.as_arrow().clone()),
            retention: (window.before + window.after).as_millis() as i64
                + window
                    .grace
                    .map(|g| g.as_millis() as i64)
                    .unwrap_or(DEFAULT_GRACE_MS),
            stream_time: i64::MIN,
            last_purge: i64::MIN,
        })
    }

    /// Sends every change of the left and right stores to `left` and `right` too.
    pub(crate) fn with_changelogs(mut self, left: Changelog, right: Changelog) -> Self {
        self.changelogs = Some([left, right]);
        self
    }

    /// Side `side`'s store: 0 left, 1 right.
    fn store(&self, side: usize) -> &Arc<dyn KeyValueStore> {
        if side == 0 {
            &self.left_store
        } else {
            &self.right_store
        }
    }

    /// Writes `keys`/`values` to side `side`'s store (0 left, 1 right) and its changelog
    /// (which takes them: they are left empty).
    fn write(
        &mut self,
        side: usize,
        keys: &mut Payloads,
        values: &mut Payloads,
    ) -> Result<(), EngineError> {
        self.store(side).write(keys, values)?;
        if let Some(changelogs) = &mut self.changelogs {
            changelogs[side].append(keys, values)?;
        }
        Ok(())
    }

    /// Whether the batch being processed came from the right-hand stream.
    pub(crate) fn is_right_batch(&self) -> bool {
        self.from_right.load(Ordering::SeqCst)
    }

    /// Decodes a right-hand batch.
    pub(crate) fn right_reader(&mut self) -> &mut SourceReader {
        &mut self.right_reader
    }

    /// Joins `batch` (decoded rows of `raw` at `rows`, from the right side if `right`) with
    /// the other side's stored records, then stores its records. Returns the joined rows and
    /// the record of `raw` each derives from.
    fn apply(
        &mut self,
        right: bool,
        raw: &RawBatch,
        rows: &[usize],
        batch: RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<(RecordBatch, Vec<usize>), EngineError> {
        let key_expr = if right {
            &self.right_key
        } else {
            &self.left_key
        };
        let key = key_expr.evaluate(&batch, errors)?;
        let key = if key.data_type() == self.key_schema.field(0).data_type() {
            key
        } else {
            cast(&key, self.key_schema.field(0).data_type())?
        };
        let mut keys = Payloads::new();
        self.key_encoder.encode(
            &RecordBatch::try_new(Arc::clone(&self.key_schema), vec![key])?,
            &mut keys,
        )?;
        let times = timestamps(&batch)?;
        let other_store = self.store(usize::from(!right));
        // The other side's records each of ours joins; `None`: an unmatched outer row.
        let mut own_rows: Vec<u32> = Vec::new();
        let mut matched: Vec<Option<u32>> = Vec::new();
        let mut out_times: Vec<i64> = Vec::new();
        let mut others = RawBatch::default();
        let outer_side = self.kind == JoinKind::Full
            || (!right && self.kind == JoinKind::Left)
            || (right && self.kind == JoinKind::Right);
        for (i, &ts) in times.iter().enumerate() {
            let Some(k) = keys.get(i) else { continue };
            // Our record at ts joins other records in [ts - before, ts + after] when we
            // are the left side, [ts - after, ts + before] when we are the right.
            let (lo, hi) = if right {
                (ts - self.after, ts + self.before)
            } else {
                (ts - self.before, ts + self.after)
            };
            let mut prefix = k.to_vec();
            prefix.push(0);
            let mut from = prefix.clone();
            from.extend_from_slice(&ordered(lo).to_be_bytes());
            let mut to = prefix.clone();
            to.extend_from_slice(&ordered(hi.saturating_add(1)).to_be_bytes());
            let mut found = false;
            let mut failure = None;
            other_store.scan_range(&from, Some(&to), &mut |_, v| {
                match decode_record(v) {
                    Some((key, value, other_ts, headers)) => {
                        others.push(key, value, other_ts, 0, 0);
                        others.set_last_headers(headers);
                        own_rows.push(i as u32);
                        matched.push(Some(others.len() as u32 - 1));
                        out_times.push(ts.max(other_ts));
                        found = true;
                    }
                    None => failure = Some("corrupt stream-join record"),
                }
                true
            })?;
            if let Some(f) = failure {
                return Err(EngineError::Internal(f.into()));
            }
            if !found && outer_side {
                own_rows.push(i as u32);
                matched.push(None);
                out_times.push(ts);
            }
        }
        // Keep our records for the other side's later arrivals.
        let mut store_keys = Payloads::new();
        let mut store_values = Payloads::new();
        for (i, &j) in rows.iter().enumerate() {
            let Some(k) = keys.get(i) else { continue };
            let mut sk = k.to_vec();
            sk.push(0);
            sk.extend_from_slice(&ordered(times[i]).to_be_bytes());
            sk.extend_from_slice(&raw.partitions[j].to_be_bytes());
            sk.extend_from_slice(&raw.offsets[j].to_be_bytes());
            store_keys.push(Some(&sk));
            store_values.push(Some(&encode_record(
                raw.keys.get(j),
                raw.values.get(j),
                times[i],
                raw.headers.of(j),
            )));
        }
        self.write(usize::from(right), &mut store_keys, &mut store_values)?;
        if let Some(max) = times.iter().max() {
            self.stream_time = self.stream_time.max(*max);
        }
        self.purge()?;

        let mut ignored = Vec::new();
        let other_reader = if right {
            &mut self.left_reader_copy
        } else {
            &mut self.right_reader
        };
        let decoded = other_reader.decode(&others, false, &mut ignored)?;
        // Rows of `others` that did not decode become unmatched.
        let mut position = vec![None; others.len()];
        for (p, r) in decoded.rows.iter().enumerate() {
            position[*r] = Some(p as u32);
        }
        let mut keep = Vec::with_capacity(matched.len());
        let other_index: UInt32Array = matched
            .iter()
            .map(|m| {
                let p = m.and_then(|m| position[m as usize]);
                keep.push(m.is_none() || p.is_some());
                p
            })
            .collect();
        let origins = own_rows
            .iter()
            .zip(&keep)
            .filter(|(_, keep)| **keep)
            .map(|(&i, _)| rows[i as usize])
            .collect();
        let own_index = UInt32Array::from(own_rows);
        let own: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &own_index, None))
            .collect::<Result<_, _>>()?;
        let other: Vec<ArrayRef> = decoded
            .batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &other_index, None))
            .collect::<Result<_, _>>()?;
        let (mut left, right_cols) = if right { (other, own) } else { (own, other) };
        // The joined row's time is the later of the two (the left ROWTIME column carries it).
        if let Some(rowtime) = left.get_mut(self.left_columns.saturating_sub(3)) {
            *rowtime = Arc::new(Int64Array::from(out_times));
        }
        left.extend(right_cols);
        let joined = RecordBatch::try_new(Arc::clone(&self.joined_schema), left)?;
        let joined =
            arrow::compute::filter_record_batch(&joined, &arrow::array::BooleanArray::from(keep))?;
        Ok((joined, origins))
    }
}

impl Operator for StreamStreamJoin {
    /// Joins a batch of one side (port 0 left, port 1 right) with the other side's records
    /// within the window, then keeps its records for the other side's later arrivals.
    fn process(
        &mut self,
        port: Port,
        input: Changes,
        context: &mut Context<'_>,
    ) -> Result<Changes, EngineError> {
        let (batch, origins) = self.apply(
            port == 1,
            context.raw,
            &input.origins,
            input.batch,
            &mut context.errors,
        )?;
        Ok(Changes::rows(batch, origins))
    }

    /// Waits until the store changes sent to the changelogs are stored.
    fn flush(&mut self) -> Result<(), EngineError> {
        for changelog in self.changelogs.iter_mut().flatten() {
            changelog.flush()?;
        }
        Ok(())
    }

    /// Brings both sides' stores up to date with their changelogs (see
    /// [`Changelog::catch_up`]).
    fn catch_up(&mut self) -> Result<(), EngineError> {
        for changelog in self.changelogs.iter_mut().flatten() {
            changelog.catch_up()?;
        }
        Ok(())
    }
}

impl StreamStreamJoin {
    /// Deletes records too old to join anything new (older than the retention), scanning
    /// both stores whenever stream time has moved on by a tenth of the retention.
    fn purge(&mut self) -> Result<(), EngineError> {
        if self.stream_time == i64::MIN
            || self.stream_time.saturating_sub(self.last_purge) < (self.retention / 10).max(1)
        {
            return Ok(());
        }
        self.last_purge = self.stream_time;
        let horizon = ordered(self.stream_time.saturating_sub(self.retention));
        for side in 0..2 {
            let store = self.store(side);
            let mut expired = Payloads::new();
            store.scan(&mut |k, _| {
                // key, 0, time (8), partition (4), offset (8)
                if let Some(t) = k.len().checked_sub(20).and_then(|at| k.get(at..at + 8))
                    && let Ok(t) = <[u8; 8]>::try_from(t)
                    && u64::from_be_bytes(t) < horizon
                {
                    expired.push(Some(k));
                }
                true
            })?;
            if !expired.is_empty() {
                let mut deletes = {
                    let mut d = Payloads::new();
                    for _ in 0..expired.len() {
                        d.push(None);
                    }
                    d
                };
                self.write(side, &mut expired, &mut deletes)?;
            }
        }
        Ok(())
    }
}

fn timestamps(batch: &RecordBatch) -> Result<Vec<i64>, EngineError> {
    let column = batch
        .column_by_name(eddy_sql::plan::ROWTIME)
        .ok_or_else(|| EngineError::Internal("ROWTIME missing".into()))?;
    let column = cast(column, &arrow::datatypes::DataType::Int64)?;
    let column = column
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Internal("ROWTIME is not BIGINT".into()))?;
    Ok((0..column.len())
        .map(|i| {
            if column.is_valid(i) {
                column.value(i)
            } else {
                0
            }
        })
        .collect())
}

/// A timestamp as a big-endian-sortable integer (sign bit flipped).
fn ordered(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

/// A stored record: timestamp, then the key and the value, each with a length (-1: null).
/// A record as a join store keeps it: the timestamp, the key and the value (each a 4-byte
/// length, -1 for null, and the bytes), then its headers only if it has any
/// ([`stored_row::write_headers`]).
fn encode_record(key: Option<&[u8]>, value: Option<&[u8]>, ts: i64, headers: &[Header]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
    out.extend_from_slice(&ts.to_be_bytes());
    for part in [key, value] {
        match part {
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    if !headers.is_empty() {
        stored_row::write_headers(&mut out, headers);
    }
    out
}

type Record<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, i64, Vec<Header>);

fn decode_record(bytes: &[u8]) -> Option<Record<'_>> {
    let ts = i64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let mut rest = &bytes[8..];
    let key = record_part(&mut rest)?;
    let value = record_part(&mut rest)?;
    let headers = match rest.is_empty() {
        true => Vec::new(),
        false => stored_row::read_headers(rest)?.0,
    };
    Some((key, value, ts, headers))
}

/// The next length-prefixed part of a stored record (`Some(None)` for a null part).
fn record_part<'a>(rest: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = i32::from_be_bytes(*len);
    *rest = tail;
    if len < 0 {
        return Some(None);
    }
    let (b, tail) = rest.split_at_checked(len as usize)?;
    *rest = tail;
    Some(Some(b))
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{Int32Type, Int64Type};
    use eddy_sql::catalog::SourceKind;
    use eddy_sql::types::SqlType;
    use eddy_state::{MemoryBackend, StateBackend};

    use super::*;
    use crate::operator::tests::{context, plan, source};

    /// One record of `side` (0 left, 1 right) with key `id`, value `{"V": v}` (left) or
    /// `{"W": v}` (right) at `ts`, through the join; the joined rows' (left V, right W,
    /// ROWTIME).
    fn arrive(
        join: &mut StreamStreamJoin,
        left_reader: &mut SourceReader,
        side: Port,
        (id, v, ts): (i32, &str, i64),
    ) -> Result<Vec<(String, String, i64)>, EngineError> {
        let mut raw = RawBatch::default();
        let column = if side == 0 { "V" } else { "W" };
        let value = format!(r#"{{"{column}":"{v}"}}"#);
        raw.push(Some(&id.to_be_bytes()), Some(value.as_bytes()), ts, 0, ts);
        let reader = if side == 0 {
            left_reader
        } else {
            join.right_reader()
        };
        let decoded = reader.decode(&raw, true, &mut Vec::new())?;
        let input = Changes::rows(decoded.batch, decoded.rows);
        let out = join.process(side, input, &mut context(&raw))?;
        let text = |c: usize, i: usize| out.batch.column(c).as_string::<i32>().value(i).to_string();
        let times = out.batch.column(2).as_primitive::<Int64Type>();
        let keys = out.batch.column(5).as_primitive::<Int32Type>();
        Ok((0..out.batch.num_rows())
            .map(|i| {
                assert_eq!(keys.value(i), id);
                (text(1, i), text(6, i), times.value(i))
            })
            .collect())
    }

    #[test]
    fn records_join_the_other_sides_records_within_the_window() -> Result<(), EngineError> {
        let stream = |name: &str, column: &str| {
            source(
                name,
                SourceKind::Stream,
                &[("ID", SqlType::Int, true), (column, SqlType::String, false)],
            )
        };
        let plan = plan(
            "SELECT * FROM l JOIN r WITHIN 1 MINUTE ON l.id = r.id EMIT CHANGES;",
            vec![stream("L", "V"), stream("R", "W")],
        )?;
        let backend = MemoryBackend::new();
        let (left, right) = (backend.open_store("l")?, backend.open_store("r")?);
        let flag = Arc::new(AtomicBool::new(false));
        let mut join = StreamStreamJoin::new(&plan, left, right, flag)?;
        let mut left_reader = SourceReader::for_query(&plan)?;
        let mut arrive = |side, record| arrive(&mut join, &mut left_reader, side, record);
        // Nothing on the right yet: an inner join waits.
        assert_eq!(arrive(0, (1, "a", 1_000))?, []);
        // Within a minute of the left record: joined, at the later of the two times.
        assert_eq!(
            arrive(1, (1, "b", 30_000))?,
            [("a".to_string(), "b".to_string(), 30_000)]
        );
        // Past the window of both: nothing.
        assert_eq!(arrive(1, (1, "c", 200_000))?, []);
        // A later left record joins the right records within its window only.
        assert_eq!(
            arrive(0, (1, "d", 230_000))?,
            [("d".to_string(), "c".to_string(), 230_000)]
        );
        Ok(())
    }

    #[test]
    fn stored_records_keep_their_headers() {
        let headers = vec![
            Header {
                key: "abc".into(),
                value: Some(vec![0x21]),
            },
            Header {
                key: "none".into(),
                value: None,
            },
        ];
        let with = encode_record(Some(b"k"), Some(b"{}"), 7, &headers);
        assert_eq!(
            decode_record(&with),
            Some((Some(&b"k"[..]), Some(&b"{}"[..]), 7, headers))
        );
        let without = encode_record(None, Some(b"v"), 9, &[]);
        assert_eq!(
            decode_record(&without),
            Some((None, Some(&b"v"[..]), 9, Vec::new()))
        );
        assert_eq!(decode_record(&with[..with.len() - 2]), None);
    }
}

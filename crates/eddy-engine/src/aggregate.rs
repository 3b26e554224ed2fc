//! `GROUP BY`: per-group accumulators in a state store, updated record by record in input
//! order; every record emits its group's new aggregate row (ksqlDB's `EMIT CHANGES`).
//!
//! A batch is handled in four steps: windows are assigned (a hopping window repeats the
//! record once per window), grouping and argument expressions are evaluated on the whole
//! batch, the states of the batch's groups are read with one multi-get, and after the rows
//! are folded in order the changed states are written back in one batch.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array, UInt32Array, new_empty_array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion_common::ScalarValue;
use eddy_formats::{Format, KeyEncoder, ValueDecoder, ValueEncoder};
use eddy_sql::plan::{AggregateCall, PlannedAggregate, QueryPlan, ROWTIME, WINDOWEND, WINDOWSTART};
use eddy_sql::window::WindowSpec;
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, RawBatch};
use serde::{Deserialize, Serialize};

mod codec;
mod session;

use session::SessionWindow;

use crate::changelog::Changelog;
use crate::error::EngineError;
use crate::eval::{Compiled, RowError, matches};
use crate::table::stored_row;

/// Grace period when a window names none: Kafka Streams' legacy default of 24 hours.
pub(crate) const DEFAULT_GRACE_MS: i64 = 24 * 60 * 60 * 1000;
/// First byte of the store keys that record which groups pass HAVING (state keys are JSON,
/// which never starts with this byte).
const VISIBLE_MARKER: u8 = 0xff;
/// How many values COLLECT_LIST and COLLECT_SET keep, as ksqlDB's default limit.
const COLLECT_LIMIT: usize = 1000;

/// The aggregation step of a query.
pub(crate) struct AggregateStage {
    group_by: Vec<Compiled>,
    /// How many of `group_by` are the group key (the rest are the window bounds).
    key_columns: usize,
    calls: Vec<Call>,
    window: Option<Window>,
    store: Arc<dyn KeyValueStore>,
    state_keys: KeyEncoder,
    state_key_schema: SchemaRef,
    out_schema: SchemaRef,
    /// The largest timestamp seen: windows that ended a grace period before it are closed.
    stream_time: i64,
    keys: Payloads,
    found: Payloads,
    /// For an aggregation over a table: the latest value of each of its rows, by key.
    table_rows: Option<(Arc<dyn KeyValueStore>, Option<Changelog>)>,
    /// The table has header columns: its rows are kept with their headers, as
    /// [`stored_row`]s (otherwise as their values alone).
    rows_with_headers: bool,
    /// Where the state's changes go besides the store.
    changelog: Option<Changelog>,
    /// Session windows (`window` is for time windows).
    session: Option<SessionWindow>,
    /// `EMIT FINAL`: the latest row of each open window, by (end, start, group), until
    /// the window closes.
    suppressed: Option<Suppressed>,
    /// Whether the query names a grace period.
    explicit_grace: bool,
    /// Stream time of the last purge of expired windows.
    last_purge: i64,
    /// `HAVING`, over the aggregation's rows.
    having: Option<Compiled>,
}

/// The windowing of a windowed aggregation.
struct Window {
    size: i64,
    advance: i64,
    grace: i64,
    /// How long a window's state is kept after it ends: `RETENTION`, at least size + grace.
    retention: i64,
    start_column: usize,
    end_column: usize,
    /// Records that came later than the grace period and were dropped.
    late: u64,
}

/// What an aggregation produced for one input batch.
pub(crate) struct Aggregated {
    /// One row per update, in the aggregation's schema.
    pub batch: RecordBatch,
    /// The timestamp of each row (its input record's).
    pub timestamps: Vec<i64>,
    /// The window start of each row, for windowed aggregations.
    pub window_starts: Option<Vec<i64>>,
    /// The window end of each row, for session windows (their keys carry it).
    pub session_ends: Option<Vec<i64>>,
    /// Rows that delete their key from the result (sessions merged into others).
    pub deleted: Option<Vec<bool>>,
    /// For each row, the row of the input batch whose change made it, where one did
    /// (not for merged sessions or final results).
    pub inputs: Option<Vec<usize>>,
}

/// One input change: the row indices of the old and new versions it folds.
struct Change {
    old: Option<usize>,
    new: Option<usize>,
}

/// What the aggregation needs of each row of a batch.
struct EvaluatedRows {
    groups: Vec<ArrayRef>,
    /// Each row's state key: the group key, then the window start (null: not aggregated).
    state_keys: Payloads,
    args: Vec<Vec<ArrayRef>>,
}

struct Call {
    function: Function,
    args: Vec<Compiled>,
    /// The type of the first argument (how values are stored).
    arg_type: DataType,
    data_type: DataType,
    /// The `n` of TOPK(x, n) and *_BY_OFFSET(x, n).
    n: Option<usize>,
    /// LATEST/EARLIEST_BY_OFFSET's `ignoreNulls` (default true).
    ignore_nulls: bool,
    /// For values without a text form (structs, arrays, maps, bytes): a JSON codec.
    json: Option<JsonCodec>,
    /// How many values COLLECT_LIST and COLLECT_SET keep.
    limit: usize,
}

/// A store key and its value, if any.
type StoredEntry = (Vec<u8>, Option<Vec<u8>>);

/// Open windows of an `EMIT FINAL` query: (end, start, state key) -> (latest row, time).
type Suppressed = std::collections::BTreeMap<(i64, i64, Vec<u8>), (RecordBatch, i64)>;

type JsonCodec = std::sync::Mutex<(ValueEncoder, ValueDecoder, SchemaRef)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Function {
    Count,
    CountDistinct,
    Sum,
    Avg,
    Min,
    Max,
    Latest,
    Earliest,
    CollectList,
    CollectSet,
    TopK,
    TopKDistinct,
    StddevSamp,
    Histogram,
    Correlation,
}

/// The state of one call for one group. Values are kept as text (temporal types as their
/// integer) so any primitive type round-trips through the store.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Acc {
    Count(i64),
    SumInt(i64),
    SumFloat(f64),
    SumDecimal(i128),
    Avg(f64, i64),
    Value(Option<String>),
    Values(Vec<Option<String>>),
    Stddev(i64, f64, f64),
    /// CORRELATION's sums over the rows where both columns are set.
    Correlation(CorrelationSums),
}

/// The sums Pearson's coefficient is computed from; rows can be added and taken out again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CorrelationSums {
    pub(crate) count: i64,
    pub(crate) x: f64,
    pub(crate) y: f64,
    pub(crate) xx: f64,
    pub(crate) yy: f64,
    pub(crate) xy: f64,
}

impl CorrelationSums {
    /// Adds (`sign` 1) or takes out (`sign` -1) the point `(x, y)`.
    fn add(&mut self, x: f64, y: f64, sign: f64) {
        self.count += sign as i64;
        self.x += sign * x;
        self.y += sign * y;
        self.xx += sign * x * x;
        self.yy += sign * y * y;
        self.xy += sign * x * y;
    }

    /// Pearson's coefficient as ksqlDB computes it: NaN for fewer than two points or a
    /// constant column.
    fn coefficient(&self) -> f64 {
        if self.count < 2 {
            return f64::NAN;
        }
        let n = self.count as f64;
        (n * self.xy - self.x * self.y)
            / ((n * self.xx - self.x * self.x) * (n * self.yy - self.y * self.y)).sqrt()
    }
}

impl AggregateStage {
    /// Compiles the aggregation of `plan`; `store` holds its state.
    pub(crate) fn new(
        plan: &QueryPlan,
        aggregate: &PlannedAggregate,
        store: Arc<dyn KeyValueStore>,
    ) -> Result<Self, EngineError> {
        let input = &plan.input_schema;
        let group_by = aggregate
            .group_by
            .iter()
            .map(|e| Compiled::new(e, input))
            .collect::<Result<Vec<_>, _>>()?;
        let key_columns = group_by.len() - aggregate.window_columns();
        let calls = aggregate
            .calls
            .iter()
            .map(|c| Call::new(c, input))
            .collect::<Result<Vec<_>, _>>()?;
        let (window, session) = match &aggregate.window {
            None => (None, None),
            Some(WindowSpec::Session { gap, grace, .. }) => (
                None,
                Some(SessionWindow::new(
                    gap,
                    grace.as_ref(),
                    key_columns,
                    input.as_arrow(),
                )),
            ),
            Some(spec) => (Some(Window::new(spec, input.as_arrow())?), None),
        };
        let arrow = aggregate.schema.as_arrow();
        let state_key_schema = Arc::new(Schema::new(
            arrow.fields()[..key_columns]
                .iter()
                .map(|f| Field::new(f.name(), f.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(Self {
            group_by,
            key_columns,
            calls,
            window,
            store,
            state_keys: KeyEncoder::new(&Format::Json, Arc::clone(&state_key_schema))?,
            state_key_schema,
            out_schema: Arc::new(arrow.clone()),
            stream_time: i64::MIN,
            keys: Payloads::new(),
            found: Payloads::new(),
            table_rows: None,
            rows_with_headers: plan.from.source.header_columns().next().is_some(),
            changelog: None,
            suppressed: None,
            last_purge: i64::MIN,
            having: None,
            explicit_grace: matches!(
                &aggregate.window,
                Some(
                    WindowSpec::Tumbling { grace: Some(_), .. }
                        | WindowSpec::Hopping { grace: Some(_), .. }
                        | WindowSpec::Session { grace: Some(_), .. }
                )
            ),
            session,
        })
    }

    /// Emits one final row per window when it closes, instead of every update.
    pub(crate) fn emit_final(mut self) -> Result<Self, EngineError> {
        if self.window.is_none() {
            return Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(
                "EMIT FINAL without a TUMBLING or HOPPING window".into(),
            )));
        }
        // Without an explicit grace period a suppressed window closes at its end.
        if let (Some(w), false) = (self.window.as_mut(), self.explicit_grace) {
            w.grace = 0;
        }
        self.suppressed = Some(std::collections::BTreeMap::new());
        Ok(self)
    }

    /// Applies `ksql.functions.collect_list.limit` and `ksql.functions.collect_set.limit`.
    pub(crate) fn with_properties(mut self, props: &crate::engine::Properties) -> Self {
        for call in &mut self.calls {
            let key = match call.function {
                Function::CollectList => "ksql.functions.collect_list.limit",
                Function::CollectSet => "ksql.functions.collect_set.limit",
                _ => continue,
            };
            if let Some(n) = props.get(key).and_then(|v| v.trim().parse::<usize>().ok()) {
                call.limit = n;
            }
        }
        self
    }

    /// Filters the results with `HAVING`.
    pub(crate) fn with_having(mut self, having: Option<Compiled>) -> Self {
        self.having = having;
        self
    }

    /// Sends every state change to `changelog` too.
    pub(crate) fn with_changelog(mut self, changelog: Changelog) -> Self {
        self.changelog = Some(changelog);
        self
    }

    /// Gives an aggregation over a table the store where it keeps the table's rows.
    pub(crate) fn with_table_rows(
        mut self,
        store: Arc<dyn KeyValueStore>,
        changelog: Option<Changelog>,
    ) -> Self {
        self.table_rows = Some((store, changelog));
        self
    }

    /// The previous version of each of `rows` of `raw`: the table's row before this batch,
    /// or the latest one earlier in the batch (the value is `None` where there was none).
    pub(crate) fn previous_versions(
        &mut self,
        raw: &RawBatch,
        rows: &[usize],
    ) -> Result<RawBatch, EngineError> {
        let (store, _) = self.table_rows.as_ref().ok_or_else(|| {
            EngineError::Internal("aggregation over a table without its rows".into())
        })?;
        self.keys.clear();
        for &j in rows {
            self.keys.push(raw.keys.get(j));
        }
        self.found.clear();
        store.get_many(&self.keys, &mut self.found)?;
        let mut latest: HashMap<&[u8], usize> = HashMap::new();
        let mut previous = RawBatch::default();
        for (r, &j) in rows.iter().enumerate() {
            let key = raw.keys.get(j);
            let (value, headers) = match key.and_then(|k| latest.get(k)) {
                Some(&earlier) => (raw.values.get(earlier), raw.headers.of(earlier).to_vec()),
                None => match self.found.get(r) {
                    Some(row) if self.rows_with_headers => {
                        let (_, headers, value) = stored_row::parts(row);
                        (Some(value), headers)
                    }
                    value => (value, Vec::new()),
                },
            };
            previous.push(
                key,
                value,
                raw.timestamps[j],
                raw.partitions[j],
                raw.offsets[j],
            );
            previous.set_last_headers(headers);
            if let Some(k) = key {
                latest.insert(k, j);
            }
        }
        Ok(previous)
    }

    /// Records `rows` of `raw` as the table's current rows.
    pub(crate) fn remember(&mut self, raw: &RawBatch, rows: &[usize]) -> Result<(), EngineError> {
        let Some((store, changelog)) = &mut self.table_rows else {
            return Ok(());
        };
        self.keys.clear();
        self.found.clear();
        for &j in rows {
            if let Some(k) = raw.keys.get(j) {
                self.keys.push(Some(k));
                match raw.values.get(j) {
                    Some(value) if self.rows_with_headers => {
                        let mut row = Vec::with_capacity(value.len() + 8);
                        stored_row::write(&mut row, 0, raw.headers.of(j), value);
                        self.found.push(Some(&row));
                    }
                    value => self.found.push(value),
                }
            }
        }
        store.write(&self.keys, &self.found)?;
        if let Some(changelog) = changelog {
            changelog.append(&mut self.keys, &mut self.found)?;
        }
        Ok(())
    }

    /// Folds `batch` (rows of the query's input schema, from a stream) into the groups'
    /// states.
    pub(crate) fn apply(
        &mut self,
        batch: RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<Aggregated, EngineError> {
        if self.session.is_some() {
            return self.apply_sessions(batch, errors);
        }
        let timestamps = int64_column(&batch, ROWTIME)?;
        let (batch, timestamps, window_starts, expanded_rows) = match &mut self.window {
            None => (batch, timestamps, None, None),
            Some(w) => {
                let e = w.expand(&batch, &timestamps, &mut self.stream_time)?;
                (e.batch, e.timestamps, Some(e.starts), Some(e.rows))
            }
        };
        self.purge_expired()?;
        let rows = self.evaluate(&batch, window_starts.as_deref(), errors)?;
        let changes: Vec<Change> = (0..batch.num_rows())
            .map(|r| Change {
                old: None,
                new: Some(r),
            })
            .collect();
        let mut out = self.fold_changes(&rows, None, &changes, &timestamps, window_starts)?;
        // Each window of a row is a row of the expanded batch.
        if let (Some(inputs), Some(expanded)) = (out.inputs.as_mut(), expanded_rows) {
            for i in inputs.iter_mut() {
                *i = expanded[*i];
            }
        }
        Ok(out)
    }

    /// Folds the changes of a table into the groups' states: each input row's previous
    /// version (`old`, aligned with `new`; `false` in `old_valid` where there was none) is
    /// taken out of its group and the new one (unless `new_valid` is false: a deletion) is
    /// added, as ksqlDB's table aggregations do.
    pub(crate) fn apply_table_changes(
        &mut self,
        new: &RecordBatch,
        new_valid: &[bool],
        old: &RecordBatch,
        old_valid: &[bool],
        errors: &mut Vec<RowError>,
    ) -> Result<Aggregated, EngineError> {
        let timestamps = int64_column(new, ROWTIME)?;
        let new_rows = self.evaluate(new, None, errors)?;
        let old_rows = self.evaluate(old, None, errors)?;
        let changes: Vec<Change> = (0..new.num_rows())
            .map(|r| Change {
                old: old_valid[r].then_some(r),
                new: new_valid[r].then_some(r),
            })
            .collect();
        self.fold_changes(&new_rows, Some(&old_rows), &changes, &timestamps, None)
    }

    /// Grouping values, state keys and arguments of every row of `batch`.
    fn evaluate(
        &mut self,
        batch: &RecordBatch,
        window_starts: Option<&[i64]>,
        errors: &mut Vec<RowError>,
    ) -> Result<EvaluatedRows, EngineError> {
        let groups: Vec<ArrayRef> = self
            .group_by
            .iter()
            .map(|g| g.evaluate(batch, errors))
            .collect::<Result<_, _>>()?;
        self.encode_group_keys(&groups[..self.key_columns], batch.num_rows())?;
        let state_keys = match window_starts {
            None => self.keys.clone(),
            Some(starts) => {
                if starts.len() != batch.num_rows() {
                    return Err(EngineError::Internal(format!(
                        "{} window starts for {} rows",
                        starts.len(),
                        batch.num_rows()
                    )));
                }
                let mut keys =
                    Payloads::with_capacity(starts.len(), self.keys.byte_len() + 8 * starts.len());
                for (i, start) in starts.iter().enumerate() {
                    match self.keys.get(i) {
                        None => keys.push(None),
                        Some(k) => keys.push_with(|buf| {
                            buf.extend_from_slice(k);
                            buf.extend_from_slice(&start.to_be_bytes());
                            Ok::<(), EngineError>(())
                        })?,
                    }
                }
                keys
            }
        };
        let args: Vec<Vec<ArrayRef>> = self
            .calls
            .iter()
            .map(|c| {
                c.args
                    .iter()
                    .map(|a| a.evaluate(batch, errors))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        Ok(EvaluatedRows {
            groups,
            state_keys,
            args,
        })
    }

    /// Encodes the group key of each of `rows` rows (from the key columns of `groups`)
    /// into `self.keys`: `None` where any grouping value is null, as ksqlDB leaves such a
    /// row out of the aggregation.
    fn encode_group_keys(&mut self, groups: &[ArrayRef], rows: usize) -> Result<(), EngineError> {
        let key_batch = RecordBatch::try_new_with_options(
            Arc::clone(&self.state_key_schema),
            groups
                .iter()
                .zip(self.state_key_schema.fields())
                .map(|(a, f)| cast_to(a, f.data_type()))
                .collect::<Result<_, _>>()?,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        self.keys.clear();
        self.state_keys.encode(&key_batch, &mut self.keys)?;
        if groups.len() > 1 && groups.iter().any(|g| g.null_count() > 0) {
            let mut keys = Payloads::with_capacity(rows, self.keys.byte_len());
            for (i, key) in self.keys.iter().enumerate() {
                keys.push(key.filter(|_| groups.iter().all(|g| g.is_valid(i))));
            }
            self.keys = keys;
        }
        Ok(())
    }

    /// For each row of `batch` (rows of the query's input schema), the partition of
    /// `partitions` its group hashes to (Kafka's murmur2 of the encoded group key), or
    /// `None` for a null group, which is not aggregated. Window bounds are not part of it:
    /// all windows of a group meet in one place.
    pub(crate) fn group_partitions(
        &mut self,
        batch: &RecordBatch,
        partitions: i32,
        errors: &mut Vec<RowError>,
    ) -> Result<Vec<Option<i32>>, EngineError> {
        let groups: Vec<ArrayRef> = self.group_by[..self.key_columns]
            .iter()
            .map(|g| g.evaluate(batch, errors))
            .collect::<Result<_, _>>()?;
        self.encode_group_keys(&groups, batch.num_rows())?;
        Ok(self
            .keys
            .iter()
            .map(|k| k.map(|k| eddy_topic::partition_for_key(k, partitions)))
            .collect())
    }

    /// Applies `changes` in order and builds one output row per group update.
    fn fold_changes(
        &mut self,
        new: &EvaluatedRows,
        old: Option<&EvaluatedRows>,
        changes: &[Change],
        timestamps: &[i64],
        window_starts: Option<Vec<i64>>,
    ) -> Result<Aggregated, EngineError> {
        // Every group the batch touches gets a slot; states are read and written per slot.
        let mut slots = Slots::with_capacity(new.state_keys.len());
        let new_slots: Vec<Option<u32>> = (0..new.state_keys.len())
            .map(|i| new.state_keys.get(i).map(|k| slots.slot(k)))
            .collect();
        let old_slots: Vec<Option<u32>> = match old {
            Some(o) => (0..o.state_keys.len())
                .map(|i| o.state_keys.get(i).map(|k| slots.slot(k)))
                .collect(),
            None => Vec::new(),
        };
        // The accumulators of slot `s` are `states[s * k..(s + 1) * k]`.
        let k = self.calls.len();
        // Groups in key order, which RocksDB reads and writes fastest. A store that holds
        // its entries in memory finds them by hash, and sorts only what it persists.
        let mut order: Vec<u32> = (0..slots.keys.len() as u32).collect();
        if !self.store.holds_writes() {
            order.sort_unstable_by_key(|&i| slots.keys[i as usize]);
        }
        let (mut states, mut newest) = self.load(&slots.keys, &order)?;
        let n = changes.len();
        // Output rows index the new rows (0..n) and the old rows (n..2n).
        let mut picked: Vec<u32> = Vec::with_capacity(n);
        let mut out_times = Vec::with_capacity(n);
        let mut out_slots: Vec<u32> = Vec::with_capacity(n);
        let mut out_starts = Vec::with_capacity(n);
        let mut results: Vec<Results> = self.calls.iter().map(|c| c.results(n)).collect();
        for (r, change) in changes.iter().enumerate() {
            // A row whose grouping key is null is not aggregated, as in ksqlDB.
            let old_slot = change.old.and_then(|i| old_slots.get(i).copied().flatten());
            let new_slot = change.new.and_then(|i| new_slots[i]);
            if let (Some(s), Some(o)) = (old_slot, old) {
                let accs = &mut states[s as usize * k..(s as usize + 1) * k];
                for ((call, acc), args) in self.calls.iter().zip(accs.iter_mut()).zip(&o.args) {
                    call.undo(acc, args, r)?;
                }
            }
            if let Some(s) = new_slot {
                let accs = &mut states[s as usize * k..(s as usize + 1) * k];
                for ((call, acc), args) in self.calls.iter().zip(accs.iter_mut()).zip(&new.args) {
                    call.fold(acc, args, r)?;
                }
            }
            // A group's result carries the newest timestamp folded into it; a group a row
            // leaves carries that row's.
            for s in [old_slot, new_slot].into_iter().flatten() {
                let t = &mut newest[s as usize];
                *t = (*t).max(timestamps[r]);
            }
            let mut emit = |slot: u32, index: usize| -> Result<(), EngineError> {
                for ((call, acc), out) in self
                    .calls
                    .iter()
                    .zip(&states[slot as usize * k..(slot as usize + 1) * k])
                    .zip(&mut results)
                {
                    call.push_result(acc, out)?;
                }
                picked.push(index as u32);
                out_slots.push(slot);
                out_times.push(newest[slot as usize]);
                if let Some(starts) = &window_starts {
                    out_starts.push(starts[r]);
                }
                Ok(())
            };
            if let Some(s) = old_slot
                && Some(s) != new_slot
            {
                emit(s, n + r)?;
            }
            if let Some(s) = new_slot {
                emit(s, r)?;
            }
        }
        self.store_states(&slots.keys, &order, &states, &newest)?;
        let out_keys: Vec<Vec<u8>> = if self.suppressed.is_some() || self.having.is_some() {
            out_slots
                .iter()
                .map(|&s| slots.keys[s as usize].to_vec())
                .collect()
        } else {
            Vec::new()
        };

        // Old rows (n..2n) are the versions their changes (0..n) replaced.
        let inputs = picked.iter().map(|&p| p as usize % n.max(1)).collect();
        let indices = UInt32Array::from(picked);
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.out_schema.fields().len());
        for (g, field) in new.groups.iter().enumerate().zip(self.out_schema.fields()) {
            let (i, new_values) = g;
            let source: ArrayRef = match old {
                Some(o) => arrow::compute::concat(&[new_values.as_ref(), o.groups[i].as_ref()])?,
                None => Arc::clone(new_values),
            };
            columns.push(cast_to(
                &take(source.as_ref(), &indices, None)?,
                field.data_type(),
            )?);
        }
        for (values, field) in results
            .into_iter()
            .zip(self.out_schema.fields().iter().skip(new.groups.len()))
        {
            columns.push(values.finish(field.data_type())?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.out_schema), columns)?;
        let out = Aggregated {
            batch,
            timestamps: out_times,
            window_starts: window_starts.map(|_| out_starts),
            session_ends: None,
            deleted: None,
            inputs: Some(inputs),
        };
        let (out, keys) = match self.suppressed.as_mut() {
            None => (out, out_keys),
            Some(suppressed) => {
                let (Some(w), Some(starts)) = (&self.window, &out.window_starts) else {
                    return Err(EngineError::Internal(
                        "EMIT FINAL without a time window".into(),
                    ));
                };
                for (i, key) in out_keys.into_iter().enumerate() {
                    let start = starts[i];
                    let time = out.timestamps[i];
                    let row = out.batch.slice(i, 1);
                    let entry = suppressed
                        .entry((start + w.size, start, key))
                        .or_insert((row.clone(), time));
                    entry.0 = row;
                    entry.1 = entry.1.max(time);
                }
                // Windows whose grace period has passed emit their final result, once.
                let close = self.stream_time.saturating_sub(w.grace);
                let open = suppressed.split_off(&(close.saturating_add(1), i64::MIN, Vec::new()));
                let closed = std::mem::replace(suppressed, open);
                let rows: Vec<RecordBatch> = closed.values().map(|(b, _)| b.clone()).collect();
                let batch = if rows.is_empty() {
                    RecordBatch::new_empty(Arc::clone(&self.out_schema))
                } else {
                    arrow::compute::concat_batches(&self.out_schema, &rows)?
                };
                let out = Aggregated {
                    batch,
                    timestamps: closed.values().map(|(_, t)| *t).collect(),
                    window_starts: Some(closed.keys().map(|(_, s, _)| *s).collect()),
                    session_ends: None,
                    deleted: None,
                    inputs: None,
                };
                (out, closed.into_keys().map(|(_, _, k)| k).collect())
            }
        };
        self.apply_having(out, keys)
    }

    /// `HAVING`: a group that passes is emitted; one that stops passing is deleted (a
    /// tombstone) if it was visible; one that never passed is not emitted at all, as ksqlDB's
    /// filtered tables behave. Whether a group is visible is kept in the store.
    fn apply_having(
        &mut self,
        out: Aggregated,
        keys: Vec<Vec<u8>>,
    ) -> Result<Aggregated, EngineError> {
        let Some(having) = &self.having else {
            return Ok(out);
        };
        let mut errors = Vec::new();
        let passes = matches(having, &out.batch, &mut errors)?;
        let marker = |k: &[u8]| -> Vec<u8> {
            let mut m = Vec::with_capacity(k.len() + 1);
            m.push(VISIBLE_MARKER);
            m.extend_from_slice(k);
            m
        };
        let markers: Vec<Vec<u8>> = keys.iter().map(|k| marker(k)).collect();
        let mut visible: HashMap<Vec<u8>, bool> = self
            .get_distinct(markers.iter().map(Vec::as_slice))?
            .into_iter()
            .map(|(k, v)| (k, v.is_some()))
            .collect();
        let mut keep = Vec::with_capacity(keys.len());
        let mut deleted = Vec::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            let m = marker(k);
            let was = visible.get(&m).copied().unwrap_or(false);
            let pass = passes.value(i);
            keep.push(pass || was);
            if pass || was {
                deleted.push(!pass);
            }
            visible.insert(m, pass);
        }
        self.keys.clear();
        self.found.clear();
        for (k, v) in &visible {
            self.keys.push(Some(k));
            self.found.push(v.then_some(&[1u8][..]));
        }
        self.store.write(&self.keys, &self.found)?;
        if let Some(changelog) = &mut self.changelog {
            changelog.append(&mut self.keys, &mut self.found)?;
        }
        let mask = arrow::array::BooleanArray::from(keep.clone());
        let pick = |v: Vec<i64>| -> Vec<i64> {
            v.into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x)
                .collect()
        };
        let inputs = out.inputs.map(|inputs| {
            inputs
                .into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(x, _)| x)
                .collect()
        });
        Ok(Aggregated {
            batch: arrow::compute::filter_record_batch(&out.batch, &mask)?,
            timestamps: pick(out.timestamps),
            window_starts: out.window_starts.map(pick),
            session_ends: out.session_ends.map(pick),
            deleted: Some(deleted),
            inputs,
        })
    }

    /// Waits until the state changes sent to the changelogs are stored; called before the
    /// input offsets are committed.
    pub(crate) fn flush(&mut self) -> Result<(), EngineError> {
        self.changelogs().try_for_each(Changelog::flush)
    }

    /// Persists the stores' state and records how far it goes (see
    /// [`Changelog::checkpoint`]).
    pub(crate) fn checkpoint(&mut self) -> Result<(), EngineError> {
        self.changelogs().try_for_each(Changelog::checkpoint)
    }

    /// Brings the stores up to date with their changelogs (see [`Changelog::catch_up`]).
    pub(crate) fn catch_up(&mut self) -> Result<(), EngineError> {
        self.changelogs().try_for_each(Changelog::catch_up)
    }

    /// The changelogs of the table's rows and of the groups.
    fn changelogs(&mut self) -> impl Iterator<Item = &mut Changelog> {
        let rows = self.table_rows.as_mut().and_then(|(_, c)| c.as_mut());
        rows.into_iter().chain(self.changelog.as_mut())
    }

    /// Records dropped for arriving after their windows closed.
    pub(crate) fn late_records(&self) -> u64 {
        self.window.as_ref().map_or(0, |w| w.late)
    }

    /// Deletes the state of time windows that ended more than the retention ago. Runs when
    /// stream time has moved by a tenth of the retention (at least a window size) since the
    /// last purge, scanning the store.
    fn purge_expired(&mut self) -> Result<(), EngineError> {
        let Some(w) = &self.window else {
            return Ok(());
        };
        if self.suppressed.is_some()
            || self.stream_time == i64::MIN
            || self.stream_time.saturating_sub(self.last_purge)
                < (w.retention / 10).max(w.size).max(1)
        {
            return Ok(());
        }
        self.last_purge = self.stream_time;
        let horizon = self.stream_time.saturating_sub(w.retention);
        let size = w.size;
        let mut expired: Vec<Vec<u8>> = Vec::new();
        self.store.scan(&mut |k, _| {
            if k.len() >= 8 {
                let mut start = [0u8; 8];
                start.copy_from_slice(&k[k.len() - 8..]);
                if i64::from_be_bytes(start).saturating_add(size) <= horizon {
                    expired.push(k.to_vec());
                }
            }
            true
        })?;
        if expired.is_empty() {
            return Ok(());
        }
        tracing::debug!(
            windows = expired.len(),
            "purging windows past their retention"
        );
        self.keys.clear();
        self.found.clear();
        for k in &expired {
            self.keys.push(Some(k));
            self.found.push(None);
        }
        self.store.write(&self.keys, &self.found)?;
        if let Some(changelog) = &mut self.changelog {
            changelog.append(&mut self.keys, &mut self.found)?;
        }
        Ok(())
    }

    /// Reads the states of the groups `keys` (fresh states for new groups), visiting them in
    /// `order` (key order); the accumulators of group `i` are `[i * calls..(i + 1) * calls]`.
    /// The states of `keys` (slot order), and each one's largest timestamp so far
    /// (`i64::MIN` for a new group or a state stored without one).
    fn load(&mut self, keys: &[&[u8]], order: &[u32]) -> Result<(Vec<Acc>, Vec<i64>), EngineError> {
        self.keys.clear();
        for &i in order {
            self.keys.push(Some(keys[i as usize]));
        }
        self.found.clear();
        self.store.get_many(&self.keys, &mut self.found)?;
        let k = self.calls.len();
        let initial: Vec<Acc> = self.calls.iter().map(Call::initial).collect();
        let mut states = Vec::with_capacity(keys.len() * k);
        for _ in keys {
            states.extend(initial.iter().cloned());
        }
        let mut newest = vec![i64::MIN; keys.len()];
        for (j, &i) in order.iter().enumerate() {
            let i = i as usize;
            if let Some(bytes) = self.found.get(j)
                && let Some(t) = codec::decode_into(bytes, &mut states[i * k..(i + 1) * k])?
            {
                newest[i] = t;
            }
        }
        Ok((states, newest))
    }

    /// Reads each distinct key of `keys` from the store with one multi-get.
    fn get_distinct<'a>(
        &mut self,
        keys: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Vec<StoredEntry>, EngineError> {
        let mut distinct: Vec<&[u8]> = keys.collect();
        distinct.sort_unstable();
        distinct.dedup();
        self.keys.clear();
        for k in &distinct {
            self.keys.push(Some(k));
        }
        self.found.clear();
        self.store.get_many(&self.keys, &mut self.found)?;
        Ok(distinct
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_vec(), self.found.get(i).map(<[u8]>::to_vec)))
            .collect())
    }

    /// Writes the states of the groups `keys` (aligned with `states`) in `order`.
    fn store_states(
        &mut self,
        keys: &[&[u8]],
        order: &[u32],
        states: &[Acc],
        newest: &[i64],
    ) -> Result<(), EngineError> {
        let k = self.calls.len();
        self.keys.clear();
        self.found.clear();
        for &i in order {
            let i = i as usize;
            self.keys.push(Some(keys[i]));
            self.found.push_with(|buf| {
                codec::encode_timed(&states[i * k..(i + 1) * k], newest[i], buf);
                Ok::<(), EngineError>(())
            })?;
        }
        self.store.write(&self.keys, &self.found)?;
        if let Some(changelog) = &mut self.changelog {
            changelog.append(&mut self.keys, &mut self.found)?;
        }
        Ok(())
    }
}

/// The groups a batch touches, numbered in order of first appearance.
/// A batch with one row per window of each input row (see [`Window::expand`]).
struct Expanded {
    batch: RecordBatch,
    timestamps: Vec<i64>,
    starts: Vec<i64>,
    /// For each row, the input row it is a window of.
    rows: Vec<usize>,
}

struct Slots<'a> {
    index: HashMap<&'a [u8], u32, foldhash::fast::RandomState>,
    keys: Vec<&'a [u8]>,
}

impl<'a> Slots<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            index: HashMap::with_capacity_and_hasher(n, Default::default()),
            keys: Vec::with_capacity(n),
        }
    }

    /// The slot of group `key`.
    fn slot(&mut self, key: &'a [u8]) -> u32 {
        *self.index.entry(key).or_insert_with(|| {
            self.keys.push(key);
            (self.keys.len() - 1) as u32
        })
    }
}

/// One call's results for a batch: typed where the type allows, else scalars.
enum Results {
    Int64(Vec<i64>),
    Float64(Vec<f64>),
    Scalars(Vec<ScalarValue>),
}

impl Results {
    /// The column, cast to the output field's type.
    fn finish(self, data_type: &DataType) -> Result<ArrayRef, EngineError> {
        let array: ArrayRef = match self {
            Results::Int64(v) => Arc::new(Int64Array::from(v)),
            Results::Float64(v) => Arc::new(arrow::array::Float64Array::from(v)),
            Results::Scalars(v) if v.is_empty() => return Ok(new_empty_array(data_type)),
            Results::Scalars(v) => ScalarValue::iter_to_array(v)?,
        };
        cast_to(&array, data_type)
    }
}

impl Window {
    fn new(spec: &WindowSpec, input: &Schema) -> Result<Self, EngineError> {
        let ms = |d: &std::time::Duration| d.as_millis() as i64;
        let (size, advance, grace, retention) = match spec {
            WindowSpec::Tumbling {
                size,
                grace,
                retention,
            } => (ms(size), ms(size), grace.as_ref(), retention.as_ref()),
            WindowSpec::Hopping {
                size,
                advance,
                grace,
                retention,
            } => (ms(size), ms(advance), grace.as_ref(), retention.as_ref()),
            WindowSpec::Session { .. } => {
                return Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(
                    "SESSION windows".into(),
                )));
            }
        };
        if size <= 0 || advance <= 0 || advance > size {
            return Err(EngineError::Invalid(format!(
                "Invalid window: size {size} ms, advance {advance} ms"
            )));
        }
        let column = |name: &str| {
            input
                .fields()
                .iter()
                .position(|f| f.name() == name)
                .ok_or_else(|| EngineError::Internal(format!("{name} missing from the input")))
        };
        Ok(Self {
            size,
            advance,
            grace: grace.map(ms).unwrap_or(DEFAULT_GRACE_MS),
            retention: retention
                .map(ms)
                .unwrap_or(0)
                .max(size + grace.map(ms).unwrap_or(DEFAULT_GRACE_MS)),
            start_column: column(WINDOWSTART)?,
            end_column: column(WINDOWEND)?,
            late: 0,
        })
    }

    /// Repeats each row once per open window it falls in, with the window's bounds filled
    /// in; windows closed before the record arrived (beyond the grace period) are skipped.
    fn expand(
        &mut self,
        batch: &RecordBatch,
        timestamps: &[i64],
        stream_time: &mut i64,
    ) -> Result<Expanded, EngineError> {
        let mut indices = Vec::with_capacity(batch.num_rows());
        let mut starts = Vec::with_capacity(batch.num_rows());
        for (row, &ts) in timestamps.iter().enumerate() {
            *stream_time = (*stream_time).max(ts);
            let close = stream_time.saturating_sub(self.grace);
            let last = ts - ts.rem_euclid(self.advance);
            let mut start = (last - self.size + self.advance).max(0);
            start += (self.advance - start.rem_euclid(self.advance)) % self.advance;
            let mut counted = false;
            while start <= last {
                if start + self.size > close {
                    indices.push(row as u32);
                    starts.push(start);
                    counted = true;
                }
                start += self.advance;
            }
            if !counted {
                self.late += 1;
                tracing::debug!(
                    late = self.late,
                    timestamp = ts,
                    "a record later than the grace period was dropped"
                );
            }
        }
        let indices = UInt32Array::from(indices);
        let mut columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<Result<_, _>>()?;
        columns[self.start_column] = Arc::new(Int64Array::from(starts.clone()));
        columns[self.end_column] = Arc::new(Int64Array::from(
            starts.iter().map(|s| s + self.size).collect::<Vec<_>>(),
        ));
        let ts = indices
            .values()
            .iter()
            .map(|&i| timestamps[i as usize])
            .collect();
        Ok(Expanded {
            batch: RecordBatch::try_new(batch.schema(), columns)?,
            timestamps: ts,
            starts,
            rows: indices.values().iter().map(|&i| i as usize).collect(),
        })
    }
}

impl Call {
    fn new(call: &AggregateCall, input: &datafusion_common::DFSchema) -> Result<Self, EngineError> {
        use datafusion_expr::ExprSchemable;
        let function = match call.function.as_str() {
            "count" => Function::Count,
            "count_distinct" => Function::CountDistinct,
            "sum" => Function::Sum,
            "avg" => Function::Avg,
            "min" => Function::Min,
            "max" => Function::Max,
            "latest_by_offset" => Function::Latest,
            "earliest_by_offset" => Function::Earliest,
            "collect_list" => Function::CollectList,
            "collect_set" => Function::CollectSet,
            "topk" => Function::TopK,
            "topkdistinct" => Function::TopKDistinct,
            "stddev_samp" | "stddev_sample" => Function::StddevSamp,
            "histogram" => Function::Histogram,
            "correlation" => Function::Correlation,
            other => {
                return Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(format!(
                    "the aggregate function {}",
                    other.to_ascii_uppercase()
                ))));
            }
        };
        let literal = |i: usize| -> Option<&ScalarValue> {
            match call.args.get(i) {
                Some(datafusion_expr::Expr::Literal(v, _)) => Some(v),
                Some(datafusion_expr::Expr::Cast(c)) => match c.expr.as_ref() {
                    datafusion_expr::Expr::Literal(v, _) => Some(v),
                    _ => None,
                },
                _ => None,
            }
        };
        // LATEST/EARLIEST_BY_OFFSET(x, ignoreNulls) takes a boolean second argument.
        let second_is_flag = matches!(literal(1), Some(ScalarValue::Boolean(_)));
        // The columns the call reads; a count (TOPK's `k`, …) follows them. TOPK(col, other
        // cols…, k) keeps STRUCTs of all its columns.
        let columns = match function {
            Function::TopK if call.args.len() > 2 => call.args.len() - 1,
            Function::Correlation => 2,
            _ => 1,
        };
        let n_at = columns;
        let n = match literal(n_at).filter(|_| !second_is_flag) {
            Some(v) => match v.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(Some(n)) if n > 0 => Some(n as usize),
                _ => {
                    return Err(EngineError::Invalid(format!(
                        "{}: the second argument must be a positive integer literal",
                        call.function.to_ascii_uppercase()
                    )));
                }
            },
            None if call.args.len() > 1
                && !second_is_flag
                && matches!(
                    function,
                    Function::TopK | Function::TopKDistinct | Function::Latest | Function::Earliest
                ) =>
            {
                let shown = match call.args.get(n_at) {
                    Some(datafusion_expr::Expr::Column(c)) => c.name.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                return Err(EngineError::Invalid(format!(
                    "Parameter {} passed to function {} must be a literal constant, but was \
                     expression: '{shown}'",
                    n_at + 1,
                    call.function.to_ascii_uppercase()
                )));
            }
            None => None,
        };
        let ignore_nulls = match literal(if second_is_flag { 1 } else { 2 }) {
            Some(ScalarValue::Boolean(Some(b))) => *b,
            _ => true,
        };
        let arg_type = match call.args.first() {
            Some(_) if function == Function::TopK && columns > 1 => eddy_sql::plan::topk_struct(
                &call.args[..columns]
                    .iter()
                    .map(|a| a.get_type(input))
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(a) => a.get_type(input)?,
            None => DataType::Null,
        };
        if matches!(
            arg_type,
            DataType::Struct(_) | DataType::List(_) | DataType::Map(..)
        ) && columns == 1
            && !matches!(
                function,
                Function::Count
                    | Function::Latest
                    | Function::Earliest
                    | Function::CollectList
                    | Function::CollectSet
            )
        {
            return Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(format!(
                "{} over a value of type {arg_type}",
                call.function.to_ascii_uppercase()
            ))));
        }
        let args = call
            .args
            .iter()
            .take(columns)
            .map(|a| Compiled::new(a, input))
            .collect::<Result<Vec<_>, _>>()?;
        let json = if matches!(
            arg_type,
            DataType::Struct(_)
                | DataType::List(_)
                | DataType::LargeList(_)
                | DataType::Map(..)
                | DataType::Binary
                | DataType::LargeBinary
        ) {
            let schema = Arc::new(Schema::new(vec![Field::new("V", arg_type.clone(), true)]));
            Some(std::sync::Mutex::new((
                ValueEncoder::new(&Format::Json, Arc::clone(&schema), false)?,
                ValueDecoder::new(&Format::Json, Arc::clone(&schema), false)?,
                schema,
            )))
        } else {
            None
        };
        Ok(Self {
            limit: COLLECT_LIMIT,
            json,
            function,
            args,
            arg_type,
            data_type: call.data_type.clone(),
            n,
            ignore_nulls,
        })
    }

    fn initial(&self) -> Acc {
        match self.function {
            Function::Count => Acc::Count(0),
            Function::Sum => match self.data_type {
                DataType::Float64 => Acc::SumFloat(0.0),
                DataType::Decimal128(..) => Acc::SumDecimal(0),
                _ => Acc::SumInt(0),
            },
            Function::Avg => Acc::Avg(0.0, 0),
            Function::StddevSamp => Acc::Stddev(0, 0.0, 0.0),
            Function::Correlation => Acc::Correlation(CorrelationSums::default()),
            Function::Min | Function::Max => Acc::Value(None),
            _ => Acc::Values(Vec::new()),
        }
    }

    /// Folds row `row` of `args` into `acc`.
    fn fold(&self, acc: &mut Acc, args: &[ArrayRef], row: usize) -> Result<(), EngineError> {
        if let (Function::Count, Acc::Count(c)) = (self.function, &mut *acc) {
            if !args.first().is_some_and(|a| a.is_null(row)) {
                *c += 1;
            }
            return Ok(());
        }
        if let Acc::Correlation(sums) = acc {
            if let Some((x, y)) = point(args, row)? {
                sums.add(x, y, 1.0);
            }
            return Ok(());
        }
        let value = match args {
            // A multi-column TOPK: the row's columns as one STRUCT, none if its sort column
            // is NULL.
            [sort, ..] if args.len() > 1 => match sort.is_null(row) {
                true => Some(ScalarValue::Null),
                false => Some(self.row_struct(args, row)?),
            },
            [first, ..] => Some(ScalarValue::try_from_array(first.as_ref(), row)?),
            [] => None,
        };
        let is_null = value.as_ref().is_some_and(ScalarValue::is_null);
        match (self.function, acc) {
            (Function::Count, Acc::Count(c)) => {
                if !is_null {
                    *c += 1;
                }
            }
            (_, _)
                if is_null
                    && !matches!(
                        self.function,
                        Function::Latest
                            | Function::Earliest
                            | Function::CollectList
                            | Function::CollectSet
                    ) => {}
            (Function::Sum, acc) => {
                let Some(v) = value else { return Ok(()) };
                match acc {
                    Acc::SumInt(s) => *s = s.wrapping_add(as_i64(&v)?),
                    Acc::SumFloat(s) => *s += as_f64(&v)?,
                    Acc::SumDecimal(s) => {
                        if let ScalarValue::Decimal128(Some(d), _, _) =
                            v.cast_to(&self.data_type)?
                        {
                            *s += d;
                        }
                    }
                    _ => return Err(state_mismatch()),
                }
            }
            (Function::Avg, Acc::Avg(sum, count)) => {
                if let Some(v) = value {
                    *sum += as_f64(&v)?;
                    *count += 1;
                }
            }
            (Function::StddevSamp, Acc::Stddev(count, mean, m2)) => {
                if let Some(v) = value {
                    let x = as_f64(&v)?;
                    *count += 1;
                    let delta = x - *mean;
                    *mean += delta / *count as f64;
                    *m2 += delta * (x - *mean);
                }
            }
            (Function::Min | Function::Max, Acc::Value(current)) => {
                let Some(v) = value else { return Ok(()) };
                let replace = match current {
                    None => true,
                    Some(text) => {
                        let old = self.scalar_of(&Some(text.clone()))?;
                        match v.partial_cmp(&old) {
                            Some(std::cmp::Ordering::Less) => self.function == Function::Min,
                            Some(std::cmp::Ordering::Greater) => self.function == Function::Max,
                            _ => false,
                        }
                    }
                };
                if replace {
                    *current = self.to_text(&v)?;
                }
            }
            (Function::Latest | Function::Earliest, acc) => {
                if is_null && self.ignore_nulls {
                    return Ok(());
                }
                let text = match &value {
                    Some(v) => self.to_text(v)?,
                    None => None,
                };
                match acc {
                    Acc::Value(current) => {
                        if self.function == Function::Latest || current.is_none() {
                            *current = text;
                        }
                    }
                    Acc::Values(values) => {
                        let n = self.n.unwrap_or(1);
                        if self.function == Function::Latest {
                            values.push(text);
                            if values.len() > n {
                                values.remove(0);
                            }
                        } else if values.len() < n {
                            values.push(text);
                        }
                    }
                    _ => return Err(state_mismatch()),
                }
            }
            (Function::Histogram, Acc::Values(values)) => {
                let text = match &value {
                    Some(v) => self.to_text(v)?,
                    None => None,
                };
                if values.contains(&text) || distinct_count(values) < self.limit {
                    values.push(text);
                }
            }
            (
                Function::CollectList | Function::CollectSet | Function::CountDistinct,
                Acc::Values(values),
            ) => {
                let text = match &value {
                    Some(v) => self.to_text(v)?,
                    None => None,
                };
                let new = self.function == Function::CollectList || !self.holds(values, &text);
                if new && (values.len() < self.limit || self.function == Function::CountDistinct) {
                    values.push(text);
                }
            }
            (Function::TopK | Function::TopKDistinct, Acc::Values(values)) => {
                let Some(v) = value else { return Ok(()) };
                let text = self.to_text(&v)?;
                if self.function == Function::TopKDistinct && values.contains(&text) {
                    return Ok(());
                }
                values.push(text);
                self.keep_top(values)?;
            }
            _ => return Err(state_mismatch()),
        }
        Ok(())
    }

    /// Whether `values` already holds `text`: for values kept as JSON (maps, structs), equal
    /// content counts, whatever the order of a map's entries.
    fn holds(&self, values: &[Option<String>], text: &Option<String>) -> bool {
        if self.json.is_none() {
            return values.contains(text);
        }
        let parse = |t: &Option<String>| {
            t.as_deref()
                .map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        };
        let wanted = parse(text);
        values.iter().any(|v| parse(v) == wanted)
    }

    /// Row `row` of a multi-column TOPK's columns as a STRUCT of `sort_col`, `col0`, ….
    fn row_struct(&self, args: &[ArrayRef], row: usize) -> Result<ScalarValue, EngineError> {
        let DataType::Struct(fields) = &self.arg_type else {
            return Err(EngineError::Internal(
                "TOPK's columns are not a STRUCT".into(),
            ));
        };
        let columns = args
            .iter()
            .zip(fields.iter())
            .map(|(a, f)| cast_to(&a.slice(row, 1), f.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        let row = arrow::array::StructArray::try_new(fields.clone(), columns, None)?;
        Ok(ScalarValue::Struct(Arc::new(row)))
    }

    /// TOPK's state: the `n` largest values, largest first (by the sort column alone for a
    /// multi-column TOPK, earlier rows first among equals).
    fn keep_top(&self, values: &mut Vec<Option<String>>) -> Result<(), EngineError> {
        let mut scalars = values
            .iter()
            .map(|t| self.scalar_of(t))
            .collect::<Result<Vec<_>, _>>()?;
        let descending = |a: &ScalarValue, b: &ScalarValue| {
            b.partial_cmp(a).unwrap_or(std::cmp::Ordering::Equal)
        };
        if matches!(self.arg_type, DataType::Struct(_)) {
            // A multi-column TOPK: by the sort column, read once per value.
            let mut keyed = scalars
                .into_iter()
                .map(|s| {
                    let key = match &s {
                        ScalarValue::Struct(row) if row.num_columns() > 0 => {
                            ScalarValue::try_from_array(row.column(0).as_ref(), 0)?
                        }
                        _ => ScalarValue::Null,
                    };
                    Ok((key, s))
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            keyed.sort_by(|(a, _), (b, _)| descending(a, b));
            scalars = keyed.into_iter().map(|(_, s)| s).collect();
        } else {
            scalars.sort_by(descending);
        }
        scalars.truncate(self.n.unwrap_or(1));
        *values = scalars
            .iter()
            .map(|s| self.to_text(s))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Merges `other` (a session merged away) into `acc`.
    fn merge(&self, acc: &mut Acc, other: &Acc) -> Result<(), EngineError> {
        match (acc, other) {
            (Acc::Count(a), Acc::Count(b)) => *a += b,
            (Acc::SumInt(a), Acc::SumInt(b)) => *a = a.wrapping_add(*b),
            (Acc::SumFloat(a), Acc::SumFloat(b)) => *a += b,
            (Acc::SumDecimal(a), Acc::SumDecimal(b)) => *a += b,
            (Acc::Avg(s, c), Acc::Avg(s2, c2)) => {
                *s += s2;
                *c += c2;
            }
            (Acc::Correlation(a), Acc::Correlation(b)) => {
                a.count += b.count;
                a.x += b.x;
                a.y += b.y;
                a.xx += b.xx;
                a.yy += b.yy;
                a.xy += b.xy;
            }
            (Acc::Stddev(c, m, m2), Acc::Stddev(c2, mb, m2b)) => {
                let n = *c + c2;
                if n > 0 {
                    let delta = mb - *m;
                    let mean = *m + delta * (*c2 as f64) / n as f64;
                    *m2 += m2b + delta * delta * (*c as f64) * (*c2 as f64) / n as f64;
                    *m = mean;
                    *c = n;
                }
            }
            (Acc::Value(a), Acc::Value(b)) => {
                let replace = match (&a, b) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(x), Some(y)) => {
                        let (x, y) = (
                            self.scalar_of(&Some(x.clone()))?,
                            self.scalar_of(&Some(y.clone()))?,
                        );
                        match self.function {
                            Function::Min => y < x,
                            Function::Max => y > x,
                            Function::Latest => true,
                            _ => false,
                        }
                    }
                };
                if replace {
                    *a = b.clone();
                }
            }
            (Acc::Values(a), Acc::Values(b)) => {
                for v in b {
                    let fresh = !a.contains(v);
                    match self.function {
                        Function::CollectList | Function::Latest | Function::Earliest => {
                            a.push(v.clone())
                        }
                        _ if fresh => a.push(v.clone()),
                        _ => {}
                    }
                }
                let n = self.n.unwrap_or(1);
                if self.function == Function::Latest && a.len() > n {
                    a.drain(..a.len() - n);
                }
                if self.function == Function::Earliest {
                    a.truncate(n);
                }
                if matches!(self.function, Function::TopK | Function::TopKDistinct) {
                    self.keep_top(a)?;
                }
            }
            _ => return Err(state_mismatch()),
        }
        Ok(())
    }

    /// Takes row `row` of `args` out of `acc` (a table row that changed or was deleted).
    fn undo(&self, acc: &mut Acc, args: &[ArrayRef], row: usize) -> Result<(), EngineError> {
        if let Acc::Correlation(sums) = acc {
            if let Some((x, y)) = point(args, row)? {
                sums.add(x, y, -1.0);
            }
            return Ok(());
        }
        let value = match args.first() {
            Some(a) => Some(ScalarValue::try_from_array(a.as_ref(), row)?),
            None => None,
        };
        if value.as_ref().is_some_and(ScalarValue::is_null) {
            return Ok(());
        }
        match acc {
            Acc::Count(c) => *c -= 1,
            Acc::SumInt(s) => {
                if let Some(v) = &value {
                    *s = s.wrapping_sub(as_i64(v)?);
                }
            }
            Acc::SumFloat(s) => {
                if let Some(v) = &value {
                    *s -= as_f64(v)?;
                }
            }
            Acc::SumDecimal(s) => {
                if let Some(v) = &value
                    && let ScalarValue::Decimal128(Some(d), _, _) = v.cast_to(&self.data_type)?
                {
                    *s -= d;
                }
            }
            Acc::Avg(sum, count) => {
                if let Some(v) = &value {
                    *sum -= as_f64(v)?;
                    *count -= 1;
                }
            }
            Acc::Stddev(count, mean, m2) => {
                if let Some(v) = &value {
                    let x = as_f64(v)?;
                    if *count <= 1 {
                        *count = 0;
                        *mean = 0.0;
                        *m2 = 0.0;
                    } else {
                        let old_mean = (*mean * *count as f64 - x) / (*count as f64 - 1.0);
                        *m2 -= (x - *mean) * (x - old_mean);
                        *mean = old_mean;
                        *count -= 1;
                    }
                }
            }
            Acc::Values(values) => {
                if let Some(v) = &value {
                    let text = self.to_text(v)?;
                    if let Some(i) = values.iter().position(|t| *t == text) {
                        values.remove(i);
                    }
                }
            }
            Acc::Correlation(_) => {}
            Acc::Value(_) => {
                return Err(EngineError::Invalid(
                    "The aggregation functions LATEST_BY_OFFSET, EARLIEST_BY_OFFSET, MIN and MAX cannot be applied to a table source, only to a stream source.".into(),
                ));
            }
        }
        Ok(())
    }

    /// An empty results column for `n` rows of this call.
    fn results(&self, n: usize) -> Results {
        match self.function {
            Function::Count | Function::CountDistinct => Results::Int64(Vec::with_capacity(n)),
            Function::Avg | Function::StddevSamp | Function::Correlation => {
                Results::Float64(Vec::with_capacity(n))
            }
            _ => Results::Scalars(Vec::with_capacity(n)),
        }
    }

    /// Appends the call's current result to `out`.
    fn push_result(&self, acc: &Acc, out: &mut Results) -> Result<(), EngineError> {
        match (out, acc) {
            (Results::Int64(v), Acc::Count(c)) => v.push(*c),
            (Results::Float64(v), Acc::Avg(..) | Acc::Stddev(..) | Acc::Correlation(_)) => {
                match self.result(acc)? {
                    ScalarValue::Float64(Some(x)) => v.push(x),
                    _ => return Err(state_mismatch()),
                }
            }
            (Results::Scalars(v), acc) => v.push(self.result(acc)?),
            (Results::Int64(v), acc) => match self.result(acc)? {
                ScalarValue::Int64(Some(x)) => v.push(x),
                _ => return Err(state_mismatch()),
            },
            _ => return Err(state_mismatch()),
        }
        Ok(())
    }

    /// The call's current result.
    fn result(&self, acc: &Acc) -> Result<ScalarValue, EngineError> {
        Ok(match acc {
            Acc::Count(c) => ScalarValue::Int64(Some(*c)),
            Acc::SumInt(s) => ScalarValue::Int64(Some(*s)).cast_to(&self.data_type)?,
            Acc::SumFloat(s) => ScalarValue::Float64(Some(*s)),
            Acc::SumDecimal(s) => match self.data_type {
                DataType::Decimal128(p, sc) => ScalarValue::Decimal128(Some(*s), p, sc),
                _ => return Err(state_mismatch()),
            },
            Acc::Avg(sum, count) => ScalarValue::Float64(Some(if *count == 0 {
                0.0
            } else {
                sum / *count as f64
            })),
            Acc::Stddev(count, _, m2) => ScalarValue::Float64(Some(if *count < 2 {
                0.0
            } else {
                (m2 / (*count as f64 - 1.0)).sqrt()
            })),
            Acc::Correlation(sums) => ScalarValue::Float64(Some(sums.coefficient())),
            Acc::Value(v) => self.scalar_of(v)?,
            Acc::Values(values) if self.function == Function::CountDistinct => {
                ScalarValue::Int64(Some(values.iter().filter(|v| v.is_some()).count() as i64))
            }
            Acc::Values(values)
                if matches!(self.function, Function::Latest | Function::Earliest)
                    && self.n.is_none() =>
            {
                match values.first() {
                    Some(v) => self.scalar_of(v)?,
                    None => ScalarValue::try_from(&self.arg_type)?,
                }
            }
            Acc::Values(values) if self.function == Function::Histogram => {
                // The counts as a JSON object in first-seen order, read as the MAP result.
                let mut counts: Vec<(&str, i64)> = Vec::new();
                for v in values.iter().flatten() {
                    match counts.iter_mut().find(|(k, _)| k == v) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((v, 1)),
                    }
                }
                let object = serde_json::Value::Object(
                    counts
                        .into_iter()
                        .map(|(k, n)| (k.to_string(), serde_json::Value::from(n)))
                        .collect(),
                );
                self.result_from_json(&object.to_string())?
            }
            Acc::Values(values) => {
                let scalars = values
                    .iter()
                    .map(|t| self.scalar_of(t))
                    .collect::<Result<Vec<_>, _>>()?;
                ScalarValue::List(ScalarValue::new_list_nullable(&scalars, &self.arg_type))
            }
        })
    }

    /// A result of a type without a text form, read from JSON.
    fn result_from_json(&self, json: &str) -> Result<ScalarValue, EngineError> {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "V",
            self.data_type.clone(),
            true,
        )]));
        let mut decoder = ValueDecoder::new(&Format::Json, schema, false)?;
        let mut bytes = Payloads::new();
        bytes.push(Some(json.as_bytes()));
        let decoded = decoder.decode(&bytes)?;
        if let Some(e) = decoded.errors.first() {
            return Err(EngineError::Internal(format!(
                "aggregate result: {}",
                e.reason
            )));
        }
        Ok(ScalarValue::try_from_array(
            decoded.batch.column(0).as_ref(),
            0,
        )?)
    }

    fn to_text(&self, v: &ScalarValue) -> Result<Option<String>, EngineError> {
        if v.is_null() {
            return Ok(None);
        }
        if let Some(codec) = &self.json {
            let mut codec = codec.lock().unwrap_or_else(|p| p.into_inner());
            let (encoder, _, schema) = &mut *codec;
            let batch = RecordBatch::try_new(Arc::clone(schema), vec![v.to_array()?])?;
            let mut out = Payloads::new();
            encoder.encode(&batch, None, &mut out)?;
            return Ok(out.get(0).map(|b| String::from_utf8_lossy(b).into_owned()));
        }
        Ok(Some(if self.arg_type.is_temporal() {
            temporal_to_i64(v)?.to_string()
        } else {
            match v {
                ScalarValue::Utf8(Some(s))
                | ScalarValue::LargeUtf8(Some(s))
                | ScalarValue::Utf8View(Some(s)) => s.clone(),
                other => other.to_string(),
            }
        }))
    }

    fn scalar_of(&self, t: &Option<String>) -> Result<ScalarValue, EngineError> {
        let Some(t) = t else {
            return Ok(ScalarValue::try_from(&self.arg_type)?);
        };
        if let Some(codec) = &self.json {
            let mut codec = codec.lock().unwrap_or_else(|p| p.into_inner());
            let (_, decoder, _) = &mut *codec;
            let mut bytes = Payloads::new();
            bytes.push(Some(t.as_bytes()));
            let decoded = decoder.decode(&bytes)?;
            if let Some(e) = decoded.errors.first() {
                return Err(EngineError::Internal(format!(
                    "corrupt aggregate state: {}",
                    e.reason
                )));
            }
            let column = cast_to(decoded.batch.column(0), &self.arg_type)?;
            return Ok(ScalarValue::try_from_array(column.as_ref(), 0)?);
        }
        if self.arg_type.is_temporal() {
            let i: i64 = t
                .parse()
                .map_err(|_| EngineError::Internal(format!("corrupt aggregate state {t}")))?;
            return temporal_from_i64(i, &self.arg_type);
        }
        Ok(ScalarValue::try_from_string(t.clone(), &self.arg_type)?)
    }
}

fn state_mismatch() -> EngineError {
    EngineError::Internal("aggregate state does not match its function".into())
}

fn as_i64(v: &ScalarValue) -> Result<i64, EngineError> {
    match v.cast_to(&DataType::Int64)? {
        ScalarValue::Int64(Some(i)) => Ok(i),
        _ => Err(EngineError::Internal(format!("not an integer: {v}"))),
    }
}

fn as_f64(v: &ScalarValue) -> Result<f64, EngineError> {
    match v.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(Some(f)) => Ok(f),
        _ => Err(EngineError::Internal(format!("not a number: {v}"))),
    }
}

fn cast_to(a: &ArrayRef, t: &DataType) -> Result<ArrayRef, EngineError> {
    if a.data_type() == t {
        Ok(Arc::clone(a))
    } else {
        Ok(arrow::compute::cast(a, t)?)
    }
}

pub(crate) fn int64_column(batch: &RecordBatch, name: &str) -> Result<Vec<i64>, EngineError> {
    let column = batch
        .schema()
        .index_of(name)
        .map_err(|_| EngineError::Internal(format!("{name} missing")))?;
    let a = cast_to(batch.column(column), &DataType::Int64)?;
    let a = a
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| EngineError::Internal(format!("{name} is not BIGINT")))?;
    Ok(a.values().to_vec())
}

/// A date, time or timestamp as its integer (days, or units since midnight or the epoch).
fn temporal_to_i64(v: &ScalarValue) -> Result<i64, EngineError> {
    Ok(match v {
        ScalarValue::Date32(Some(d)) => i64::from(*d),
        ScalarValue::Time32Millisecond(Some(t)) | ScalarValue::Time32Second(Some(t)) => {
            i64::from(*t)
        }
        ScalarValue::Time64Microsecond(Some(t)) | ScalarValue::Time64Nanosecond(Some(t)) => *t,
        ScalarValue::TimestampMillisecond(Some(t), _)
        | ScalarValue::TimestampSecond(Some(t), _)
        | ScalarValue::TimestampMicrosecond(Some(t), _)
        | ScalarValue::TimestampNanosecond(Some(t), _) => *t,
        other => as_i64(other)?,
    })
}

fn temporal_from_i64(i: i64, t: &DataType) -> Result<ScalarValue, EngineError> {
    use arrow::datatypes::TimeUnit;
    let small = || {
        i32::try_from(i).map_err(|_| EngineError::Internal(format!("corrupt aggregate state {i}")))
    };
    Ok(match t {
        DataType::Date32 => ScalarValue::Date32(Some(small()?)),
        DataType::Time32(TimeUnit::Millisecond) => ScalarValue::Time32Millisecond(Some(small()?)),
        DataType::Time32(_) => ScalarValue::Time32Second(Some(small()?)),
        DataType::Time64(TimeUnit::Microsecond) => ScalarValue::Time64Microsecond(Some(i)),
        DataType::Time64(_) => ScalarValue::Time64Nanosecond(Some(i)),
        DataType::Timestamp(TimeUnit::Millisecond, tz) => {
            ScalarValue::TimestampMillisecond(Some(i), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Second, tz) => {
            ScalarValue::TimestampSecond(Some(i), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(i), tz.clone())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, tz) => {
            ScalarValue::TimestampNanosecond(Some(i), tz.clone())
        }
        other => ScalarValue::Int64(Some(i)).cast_to(other)?,
    })
}

fn distinct_count(values: &[Option<String>]) -> usize {
    let mut seen: Vec<&Option<String>> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.len()
}

/// Row `row` of CORRELATION's two columns as a point, if both are set.
fn point(args: &[ArrayRef], row: usize) -> Result<Option<(f64, f64)>, EngineError> {
    let [x, y] = args else {
        return Err(EngineError::Internal(
            "CORRELATION takes two columns".into(),
        ));
    };
    if x.is_null(row) || y.is_null(row) {
        return Ok(None);
    }
    let x = as_f64(&ScalarValue::try_from_array(x.as_ref(), row)?)?;
    let y = as_f64(&ScalarValue::try_from_array(y.as_ref(), row)?)?;
    Ok(Some((x, y)))
}

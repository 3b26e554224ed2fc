//! A continuous query as a task: poll → decode → join → filter → project → encode → produce →
//! commit. Offsets are committed only after the sink has acknowledged every output derived
//! from them (at-least-once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, new_null_array};
use arrow::compute::kernels::boolean::not;
use arrow::compute::{cast, filter, filter_record_batch};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use eddy_formats::{KeyEncoder, ValueEncoder};
use eddy_sql::catalog::{ColumnRole, Source, SourceKind};
use eddy_sql::plan::{QueryPlan, ROWOFFSET, ROWPARTITION, ROWTIME};
use eddy_topic::{Payloads, RawBatch, RecordHeaders, RecordSink, RecordSource, TopicIo};

use crate::aggregate::{AggregateStage, int64_column};
use crate::error::EngineError;
use crate::eval::{Compiled, RowError, filter_bool, matches};
use crate::metrics::{BatchFigures, QueryMeters};
use crate::operator::filter::Filter;
use crate::operator::stream_table_join::StreamTableJoin;
use crate::operator::{Changes, Context, Operator};
use crate::processing_log::{ErrorKind, ProcessingError, ProcessingLog};
use crate::reader::{
    DecodedBatch, SourceReader, columns_schema, encoders, int64_values, positions_after,
};
use crate::repartition::{Repartition, split_changes};
use crate::runner::Task;
use crate::stats::TopicStats;
use crate::stream_join::StreamStreamJoin;
use crate::table_join::TableJoin;

/// Where a query's output rows go.
// One per query, built once and never moved on the per-batch path: boxing the encoders
// would only add an indirection per batch.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Output {
    /// Encoded into a topic (persistent queries).
    Topic {
        topic: String,
        sink: Box<dyn RecordSink>,
        keys: KeyEncoder,
        values: ValueEncoder,
        /// The sink's `TIMESTAMP` column, which gives the records their timestamps.
        timestamp: Option<SinkTimestamp>,
    },
    /// Handed to a client as Arrow batches (transient push queries); the task finishes when
    /// the receiver is dropped or `cancel` is set.
    Transient {
        rows: tokio::sync::mpsc::Sender<crate::transient::TransientRows>,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    },
}

/// A running continuous query.
pub(crate) struct QueryTask {
    id: String,
    topics: Arc<dyn TopicIo>,
    source: Box<dyn RecordSource>,
    reader: SourceReader,
    join: Option<StreamTableJoin>,
    /// `WHERE` (a table's aggregation applies its predicate to both versions of a row).
    filter: Option<Filter>,
    key_exprs: Vec<Compiled>,
    value_exprs: Vec<Compiled>,
    key_schema: SchemaRef,
    value_schema: SchemaRef,
    output: Output,
    limit: Option<u64>,
    emitted: u64,
    log: Arc<ProcessingLog>,
    stats: Arc<TopicStats>,
    raw: RawBatch,
    /// How far the batch in `raw` got: a step that failed part-way resumes there, so a
    /// batch the state stores took is not processed again when only its delivery failed
    /// (a broker outage would otherwise count an aggregation's inputs twice).
    progress: BatchProgress,
    /// The processing-log entries of the batch in `raw`, written once it is delivered.
    batch_errors: Vec<ProcessingError>,
    /// The output timestamps of the batch, with `keys_out`/`values_out`.
    times_out: Vec<i64>,
    /// The output records' headers: those of the records they came from.
    headers_out: RecordHeaders,
    max_batch: usize,
    keys_out: Payloads,
    values_out: Payloads,
    /// The input is a stream (its null values are not deletes).
    from_stream: bool,
    /// The key is computed by PARTITION BY (see [`QueryPlan::rekeyed`]).
    rekeyed: bool,
    /// For each value column: whether it is an `EXPLODE` (see [`QueryPlan::exploded`]).
    exploded: Vec<bool>,
    /// `JOIN … WITHIN`, attached with [`QueryTask::with_stream_join`].
    stream_join: Option<StreamStreamJoin>,
    /// The source's partition assignments already caught up with.
    assignments: u64,
    /// A table–table join (on the key, or a foreign key), attached with
    /// [`QueryTask::with_table_join`].
    table_join: Option<Box<dyn TableJoin>>,
    /// `GROUP BY`, attached with [`QueryTask::with_aggregate`].
    aggregate: Option<AggregateStage>,
    /// The repartition of a `GROUP BY` on other columns than the key, attached with
    /// [`QueryTask::with_repartition`].
    repartition: Option<Repartition>,
    /// A persistent query's metrics, attached with [`QueryTask::with_meters`].
    meters: Option<QueryMeters>,
    /// When the batch in `raw` was polled.
    polled_at: Instant,
    /// Records of the batch in `raw` written to the query's sink.
    batch_written: u64,
    /// Bytes of their keys and values.
    batch_written_bytes: u64,
    /// For a batch of a table's changes read back from the repartition topic (whose keys
    /// [`split_changes`] took the marks off): whether each record leaves its group.
    forwarded_retracts: Option<Vec<bool>>,
    aggregating: bool,
    /// `HAVING`, over the aggregation's rows.
    having: Option<Compiled>,
    /// A windowed source read without aggregation: `Some(is_session)`, its windows pass
    /// through to the output keys.
    source_window: Option<bool>,
}

impl QueryTask {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: &str,
        plan: &QueryPlan,
        topics: Arc<dyn TopicIo>,
        source: Box<dyn RecordSource>,
        join: Option<StreamTableJoin>,
        output: Output,
        log: Arc<ProcessingLog>,
        stats: Arc<TopicStats>,
        max_batch: usize,
    ) -> Result<Self, EngineError> {
        // The projection reads the aggregation's rows when there is one.
        let projected = plan
            .aggregate
            .as_ref()
            .map(|a| &a.schema)
            .unwrap_or(&plan.input_schema);
        let compile = |role: ColumnRole| -> Result<Vec<Compiled>, EngineError> {
            plan.columns
                .iter()
                .filter(|c| c.role == role)
                .map(|c| Compiled::new(&c.expr, projected))
                .collect()
        };
        let out = plan.output_columns();
        Ok(Self {
            id: id.to_string(),
            topics,
            source,
            reader: SourceReader::for_query(plan)?,
            join,
            filter: plan
                .filter
                .as_ref()
                .map(|f| Compiled::new(f, &plan.input_schema).map(Filter::new))
                .transpose()?,
            key_exprs: compile(ColumnRole::Key)?,
            value_exprs: compile(ColumnRole::Value)?,
            key_schema: columns_schema(out.iter().filter(|c| c.role == ColumnRole::Key)),
            value_schema: columns_schema(out.iter().filter(|c| c.role == ColumnRole::Value)),
            output,
            limit: plan.limit,
            emitted: 0,
            log,
            stats,
            raw: RawBatch::default(),
            progress: BatchProgress::Done,
            batch_errors: Vec::new(),
            times_out: Vec::new(),
            headers_out: RecordHeaders::new(),
            max_batch,
            keys_out: Payloads::new(),
            values_out: Payloads::new(),
            from_stream: plan.from.source.kind == SourceKind::Stream,
            rekeyed: plan.rekeyed,
            exploded: out
                .iter()
                .filter(|c| c.role == ColumnRole::Value)
                .map(|c| plan.exploded.contains(&c.name))
                .collect(),
            aggregate: None,
            repartition: None,
            forwarded_retracts: None,
            meters: None,
            polled_at: Instant::now(),
            batch_written: 0,
            batch_written_bytes: 0,
            stream_join: None,
            assignments: 0,
            table_join: None,
            aggregating: plan.aggregate.is_some(),
            source_window: match (&plan.aggregate, &plan.from.source.window) {
                (None, Some(w)) => Some(matches!(w, eddy_sql::window::WindowSpec::Session { .. })),
                _ => None,
            },
            having: plan
                .aggregate
                .as_ref()
                .and_then(|a| a.having.as_ref().map(|h| Compiled::new(h, &a.schema)))
                .transpose()?,
        })
    }

    /// Attaches the join with another stream (the task's source must be a
    /// [`crate::stream_join::MergedSource`] sharing the stage's side flag).
    pub(crate) fn with_stream_join(mut self, stage: StreamStreamJoin) -> Self {
        self.stream_join = Some(stage);
        self
    }

    /// Attaches a table–table join (the source must be a `MergedSource` of both tables).
    pub(crate) fn with_table_join(mut self, stage: Box<dyn TableJoin>) -> Self {
        self.table_join = Some(stage);
        self
    }

    /// Attaches a persistent query's metrics, updated once per batch.
    pub(crate) fn with_meters(mut self, meters: QueryMeters) -> Self {
        self.meters = Some(meters);
        self
    }

    /// Attaches the aggregation of a `GROUP BY` query.
    pub(crate) fn with_aggregate(mut self, stage: AggregateStage) -> Self {
        self.aggregate = Some(stage.with_having(self.having.take()));
        self
    }

    /// Attaches the repartition of the aggregation's input (the source must be a
    /// `MergedSource` of the input and the internal topic sharing the repartition's flag).
    pub(crate) fn with_repartition(mut self, repartition: Repartition) -> Self {
        self.repartition = Some(repartition);
        self
    }

    /// Whether the batch in hand is input to forward to the repartition topic.
    fn forwarding(&self) -> bool {
        self.repartition
            .as_ref()
            .is_some_and(|r| !r.is_internal_batch())
    }

    /// Sends each input record that passes `WHERE` (`rows`, from [`QueryTask::rows`]) to
    /// the partition of the repartition topic its group hashes to; records that do not
    /// decode, fail `WHERE` or have a null group stay behind (the first go to the
    /// processing log), as they would not be aggregated either.
    fn forward_records(
        &mut self,
        rows: &Rows,
        errors: &mut Vec<ProcessingError>,
        row_errors: &mut Vec<RowError>,
    ) -> Result<(), EngineError> {
        let (Some(stage), Some(repartition)) = (self.aggregate.as_mut(), self.repartition.as_mut())
        else {
            return Err(unattached_repartition());
        };
        let targets = stage.group_partitions(&rows.batch, repartition.partitions(), row_errors)?;
        repartition.clear();
        for (&r, target) in rows.decoded_rows.iter().zip(targets) {
            if let Some(p) = target {
                repartition.push(&self.raw, r, p);
            }
        }
        self.send_forwarded()?;
        self.report(&rows.batch, row_errors, errors);
        Ok(())
    }

    /// Forwards a table's changes: each row's previous version (if it passed `WHERE`) to
    /// its group's partition to be taken out, and its new version (unless deleted or
    /// failing `WHERE`) to its group's partition to be added; then remembers the rows.
    fn forward_changes(&mut self, errors: &mut Vec<ProcessingError>) -> Result<(), EngineError> {
        let decoded = self.reader.decode(&self.raw, true, errors)?;
        let mut row_errors = Vec::new();
        let (Some(stage), Some(repartition)) = (self.aggregate.as_mut(), self.repartition.as_mut())
        else {
            return Err(unattached_repartition());
        };
        let versions = table_versions(
            stage,
            &mut self.reader,
            self.filter.as_ref().map(Filter::predicate),
            &self.raw,
            &decoded,
            &mut row_errors,
        )?;
        let n = repartition.partitions();
        let new_targets = stage.group_partitions(&decoded.batch, n, &mut row_errors)?;
        let old_targets = stage.group_partitions(&versions.old, n, &mut ignored_row_errors())?;
        repartition.clear();
        for (r, &j) in decoded.rows.iter().enumerate() {
            let Some(key) = self.raw.keys.get(j) else {
                continue;
            };
            let time = self.raw.timestamps[j];
            if let (true, Some(p)) = (versions.old_valid[r], old_targets[r]) {
                let (old, old_headers) = (
                    versions.previous.values.get(r),
                    versions.previous.headers.of(r),
                );
                repartition.push_change(key, old, time, p, true, old_headers)?;
            }
            if let (true, Some(p)) = (versions.new_valid[r], new_targets[r]) {
                let headers = self.raw.headers.of(j);
                repartition.push_change(key, self.raw.values.get(j), time, p, false, headers)?;
            }
        }
        stage.remember(&self.raw, &decoded.rows)?;
        self.send_forwarded()?;
        self.report(&decoded.batch, &mut row_errors, errors);
        Ok(())
    }

    /// Forwards joined (and filtered) rows to the partitions their groups hash to.
    fn forward_joined(
        &mut self,
        rows: &Rows,
        errors: &mut Vec<ProcessingError>,
        row_errors: &mut Vec<RowError>,
    ) -> Result<(), EngineError> {
        let batch = &rows.batch;
        let (Some(stage), Some(repartition)) = (self.aggregate.as_mut(), self.repartition.as_mut())
        else {
            return Err(unattached_repartition());
        };
        let targets = stage.group_partitions(batch, repartition.partitions(), row_errors)?;
        let times = int64_column(batch, ROWTIME)?;
        let mut values = Payloads::new();
        repartition.encode_joined(batch, &mut values)?;
        repartition.clear();
        for (i, target) in targets.into_iter().enumerate() {
            if let Some(p) = target {
                let headers = rows
                    .origins
                    .get(i)
                    .map_or(&[][..], |&o| self.raw.headers.of(o));
                repartition.push_row(values.get(i), times[i], p, headers);
            }
        }
        self.send_forwarded()?;
        self.report(batch, row_errors, errors);
        Ok(())
    }

    /// Sends the batch's forwarded records (the state already has the batch).
    fn send_forwarded(&mut self) -> Result<(), EngineError> {
        let repartition = self
            .repartition
            .as_mut()
            .ok_or_else(unattached_repartition)?;
        self.progress = BatchProgress::Encoded;
        repartition.send()?;
        self.progress = BatchProgress::Sent;
        self.stats
            .produced(repartition.topic(), repartition.forwarded() as u64);
        Ok(())
    }

    /// The rows of the batch in hand that reach the aggregation or the projection: decoded,
    /// joined and filtered, with which are tombstones and where each came from in the batch.
    fn rows(
        &mut self,
        errors: &mut Vec<ProcessingError>,
        row_errors: &mut Vec<RowError>,
    ) -> Result<Rows, EngineError> {
        let right_batch = self
            .stream_join
            .as_ref()
            .is_some_and(|j| j.is_right_batch())
            || self.table_join.as_ref().is_some_and(|j| j.is_right_batch());
        let decoded = match (self.stream_join.as_mut(), self.table_join.as_mut()) {
            (Some(j), _) if right_batch => j.right_reader().decode(&self.raw, true, errors)?,
            (_, Some(j)) if right_batch => j.right_reader().decode(&self.raw, true, errors)?,
            _ => self.reader.decode(&self.raw, true, errors)?,
        };
        let mut decoded_rows = decoded.rows;
        // A table's changes are aggregated with their previous versions, unfiltered (a row
        // that stops matching WHERE must leave its group).
        let table_aggregate = self.aggregating && !self.from_stream;
        let mut batch = decoded.batch;
        // Null values: a table's tombstone deletes its row downstream too; a stream's passes a
        // plain projection as a null value but never a WHERE or a join, as in ksqlDB.
        let mut tombstones = BooleanArray::from(decoded.tombstones);
        let joins = self.join.is_some() || self.stream_join.is_some();
        // A table row needs a key: a record without one is no change of the table (Kafka
        // Streams skips it as ksqlDB's table sources do).
        if !self.from_stream && !right_batch {
            let keyed: Vec<bool> = decoded_rows
                .iter()
                .map(|&r| self.raw.keys.get(r).is_some())
                .collect();
            if keyed.contains(&false) {
                let keyed = BooleanArray::from(keyed);
                decoded_rows = decoded_rows
                    .into_iter()
                    .zip(keyed.iter())
                    .filter(|(_, k)| *k == Some(true))
                    .map(|(r, _)| r)
                    .collect();
                batch = filter_record_batch(&batch, &keyed)?;
                tombstones = filter_bool(&tombstones, &keyed)?;
            }
        }
        // A push query over a stream shows no record without a value, as in ksqlDB.
        let push = matches!(self.output, Output::Transient { .. });
        if self.from_stream && (joins || self.filter.is_some() || self.aggregating || push) {
            decoded_rows = decoded_rows
                .into_iter()
                .zip(tombstones.iter())
                .filter(|(_, t)| *t != Some(true))
                .map(|(r, _)| r)
                .collect();
            batch = filter_record_batch(&batch, &not(&tombstones)?)?;
            tombstones = BooleanArray::from(vec![false; batch.num_rows()]);
        }
        // The joins, then WHERE: the batch enters the first on the port of the input it
        // came from; each passes its output to the next one's port 0.
        let driving_partitions = match &self.table_join {
            Some(_) if right_batch => self.source.assigned_partitions(),
            _ => None,
        };
        let mut changes = Changes {
            batch,
            deleted: tombstones,
            origins: decoded_rows.clone(),
        };
        let table_join = self
            .table_join
            .as_mut()
            .map(|j| j.as_mut() as &mut dyn Operator);
        let stream_join = self.stream_join.as_mut().map(|j| j as &mut dyn Operator);
        let lookup = self.join.as_mut().map(|j| j as &mut dyn Operator);
        let filter = self
            .filter
            .as_mut()
            .filter(|_| !table_aggregate)
            .map(|f| f as &mut dyn Operator);
        let filtered = filter.is_some();
        let topic = rows_topic(self.repartition.as_ref(), &self.reader);
        let mut context = Context {
            raw: &self.raw,
            topics: self.topics.as_ref(),
            driving_partitions,
            errors: std::mem::take(row_errors),
        };
        let mut port = usize::from(right_batch);
        let operators = table_join
            .into_iter()
            .chain(stream_join)
            .chain(lookup)
            .chain(filter);
        for operator in operators {
            let input = changes.batch.clone();
            changes = operator.process(port, changes, &mut context)?;
            report_rows(topic, &input, &mut context.errors, errors);
            port = 0;
        }
        let Changes {
            batch,
            deleted: tombstones,
            origins,
        } = changes;
        // Without a join, the rows `WHERE` left are those of the records they came from.
        if filtered && !joins {
            decoded_rows.clone_from(&origins);
        }
        Ok(Rows {
            batch,
            tombstones,
            decoded_rows,
            origins,
        })
    }

    /// Runs the operators over the decoded rows and writes the results (or forwards the
    /// rows to the repartition topic).
    fn process(&mut self, errors: &mut Vec<ProcessingError>) -> Result<(), EngineError> {
        let joins = self.join.is_some() || self.stream_join.is_some();
        if self.forwarding() && !self.from_stream {
            return self.forward_changes(errors);
        }
        let mut row_errors = Vec::new();
        // A table's changes are aggregated with their previous versions, unfiltered (a row
        // that stops matching WHERE must leave its group).
        let table_aggregate = self.aggregating && !self.from_stream;
        let forwarded_rows = match self.repartition.as_mut() {
            Some(r) if r.is_internal_batch() => r.decode_joined(&self.raw, errors)?,
            _ => None,
        };
        let rows = match forwarded_rows {
            // Rows joined and filtered before they were forwarded.
            Some(batch) => Rows {
                tombstones: BooleanArray::from(vec![false; batch.num_rows()]),
                decoded_rows: (0..batch.num_rows()).collect(),
                origins: (0..batch.num_rows()).collect(),
                batch,
            },
            None => self.rows(errors, &mut row_errors)?,
        };
        if self.forwarding() {
            return match joins {
                true => self.forward_joined(&rows, errors, &mut row_errors),
                false => self.forward_records(&rows, errors, &mut row_errors),
            };
        }
        let Rows {
            mut batch,
            mut tombstones,
            decoded_rows,
            origins,
        } = rows;
        // Each output row's origin in the raw batch, where known and needed.
        let mut origins = (!self.raw.headers.is_empty()).then_some(origins);
        let mut aggregated_times = None;
        let mut window_starts = None;
        let mut session_ends: Option<Vec<i64>> = None;
        if self.aggregating {
            let stage = self
                .aggregate
                .as_mut()
                .ok_or_else(|| EngineError::Internal("aggregation not attached".into()))?;
            let input = batch.clone();
            let out = if let Some(retracts) = &self.forwarded_retracts {
                // A table's changes, forwarded by group: versions leaving and joining.
                let retract: Vec<bool> = decoded_rows.iter().map(|&j| retracts[j]).collect();
                let join: Vec<bool> = retract.iter().map(|r| !r).collect();
                stage.apply_table_changes(&batch, &join, &batch, &retract, &mut row_errors)?
            } else if table_aggregate {
                let decoded = DecodedBatch {
                    tombstones: tombstones.iter().map(|t| t == Some(true)).collect(),
                    rows: decoded_rows.clone(),
                    batch,
                };
                table_changes(
                    stage,
                    &mut self.reader,
                    self.filter.as_ref().map(Filter::predicate),
                    &self.raw,
                    &decoded,
                    &mut row_errors,
                )?
            } else {
                let late = stage.late_records();
                let out = stage.apply(batch, &mut row_errors)?;
                if stage.late_records() > late {
                    tracing::info!(
                        query = %self.id,
                        dropped = stage.late_records() - late,
                        total = stage.late_records(),
                        "records later than their windows' grace period were dropped"
                    );
                }
                out
            };
            self.report(&input, &mut row_errors, errors);
            batch = out.batch;
            origins = match (origins, out.inputs) {
                (Some(o), Some(inputs)) => inputs.iter().map(|&i| o.get(i).copied()).collect(),
                _ => None,
            };
            aggregated_times = Some(out.timestamps);
            window_starts = out.window_starts;
            session_ends = out.session_ends;
            // Groups deleted from the result (HAVING, merged sessions) are tombstones.
            tombstones = match out.deleted {
                Some(deleted) => BooleanArray::from(deleted),
                None => BooleanArray::from(vec![false; batch.num_rows()]),
            };
            self.report(&input, &mut row_errors, errors);
        }
        if let Some(limit) = self.limit {
            let left = limit.saturating_sub(self.emitted) as usize;
            if batch.num_rows() > left {
                batch = batch.slice(0, left);
                tombstones = tombstones.slice(0, left);
                if let Some(o) = origins.as_mut() {
                    o.truncate(left);
                }
                if let Some(t) = aggregated_times.as_mut() {
                    t.truncate(left);
                }
                if let Some(w) = window_starts.as_mut() {
                    w.truncate(left);
                }
                if let Some(w) = session_ends.as_mut() {
                    w.truncate(left);
                }
            }
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let mut keys = self.project(&self.key_exprs, &self.key_schema, &batch, &mut row_errors)?;
        let mut values = self.project(
            &self.value_exprs,
            &self.value_schema,
            &batch,
            &mut row_errors,
        )?;
        let mut sink_times = None;
        if let Output::Topic {
            timestamp: Some(sink_timestamp),
            ..
        } = &self.output
        {
            let times = sink_timestamp.times(&keys, &values);
            let keep: Vec<bool> = times.iter().map(Result::is_ok).collect();
            for (row, time) in times.iter().enumerate() {
                if let Err(reason) = time {
                    row_errors.push(RowError {
                        row,
                        reason: reason.clone(),
                    });
                }
            }
            self.report(&batch, &mut row_errors, errors);
            if keep.iter().any(|k| !k) {
                let mask = BooleanArray::from(keep.clone());
                batch = filter_record_batch(&batch, &mask)?;
                keys = filter_record_batch(&keys, &mask)?;
                values = filter_record_batch(&values, &mask)?;
                let kept = filter(&tombstones, &mask)?;
                tombstones = kept.as_boolean().clone();
                let retain = |v: &mut Vec<i64>| {
                    let mut flags = keep.iter();
                    v.retain(|_| flags.next().copied().unwrap_or(false));
                };
                if let Some(o) = origins.as_mut() {
                    let mut flags = keep.iter();
                    o.retain(|_| flags.next().copied().unwrap_or(false));
                }
                if let Some(t) = aggregated_times.as_mut() {
                    retain(t);
                }
                if let Some(w) = window_starts.as_mut() {
                    retain(w);
                }
                if let Some(w) = session_ends.as_mut() {
                    retain(w);
                }
            }
            sink_times = Some(times.into_iter().flatten().collect::<Vec<i64>>());
            if batch.num_rows() == 0 {
                return Ok(());
            }
        }
        self.report(&batch, &mut row_errors, errors);
        if let Some(session) = self.source_window {
            let column = |name: &str| -> Result<Vec<i64>, EngineError> {
                Ok(int64_values(
                    batch
                        .column_by_name(name)
                        .ok_or_else(|| EngineError::Internal(format!("{name} missing")))?,
                )?
                .iter()
                .map(|v| v.unwrap_or(0))
                .collect())
            };
            window_starts = Some(column(eddy_sql::plan::WINDOWSTART)?);
            if session {
                session_ends = Some(column(eddy_sql::plan::WINDOWEND)?);
            }
        }
        let mut timestamps = match (sink_times, aggregated_times) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => int64_values(
                batch
                    .column_by_name(ROWTIME)
                    .ok_or_else(|| EngineError::Internal("ROWTIME missing".into()))?,
            )?
            .values()
            .to_vec(),
        };
        let (keys, values) = if self.exploded.iter().any(|e| *e) {
            let (repeat, k, v) = explode(&keys, &values, &self.exploded, &self.value_schema)?;
            timestamps = repeated(&timestamps, &repeat);
            origins =
                origins.and_then(|o| repeat.iter().map(|&r| o.get(r as usize).copied()).collect());
            window_starts = window_starts.map(|w| repeated(&w, &repeat));
            session_ends = session_ends.map(|e| repeated(&e, &repeat));
            let t =
                arrow::compute::take(&tombstones, &arrow::array::UInt32Array::from(repeat), None)?;
            tombstones = t
                .as_any()
                .downcast_ref::<BooleanArray>()
                .cloned()
                .ok_or_else(|| EngineError::Internal("tombstones".into()))?;
            (k, v)
        } else {
            (keys, values)
        };
        match &mut self.output {
            Output::Topic {
                keys: ke,
                values: ve,
                ..
            } => {
                self.keys_out.clear();
                self.values_out.clear();
                ke.encode(&keys, &mut self.keys_out)?;
                if !self.rekeyed && keys.num_columns() > 1 {
                    self.keys_out = null_absent_keys(&self.keys_out, &keys);
                }
                if let Some(starts) = &window_starts {
                    self.keys_out = windowed_keys(&self.keys_out, starts, session_ends.as_deref());
                }
                ve.encode(&values, Some(&tombstones), &mut self.values_out)?;
                self.times_out = timestamps;
                self.headers_out = match &origins {
                    Some(o) if o.len() == self.times_out.len() => {
                        self.raw.headers.pick(o.iter().copied())
                    }
                    _ => RecordHeaders::new(),
                };
                // Sent by the step, which also sends them again after a failed send.
                self.progress = BatchProgress::Encoded;
            }
            Output::Transient { rows, cancel } => {
                // Blocks while the client is slow: backpressure rather than buffering.
                if rows
                    .blocking_send(crate::transient::rows_batch(&keys, &values, &tombstones)?)
                    .is_err()
                {
                    cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
        self.emitted += batch.num_rows() as u64;
        Ok(())
    }

    fn project(
        &self,
        exprs: &[Compiled],
        schema: &SchemaRef,
        batch: &RecordBatch,
        row_errors: &mut Vec<RowError>,
    ) -> Result<RecordBatch, EngineError> {
        let mut columns = Vec::with_capacity(exprs.len());
        let mut fields = Vec::with_capacity(exprs.len());
        for (i, (e, field)) in exprs.iter().zip(schema.fields()).enumerate() {
            let a = e.evaluate(batch, row_errors)?;
            // An exploded column stays an array here; `explode` unpacks it.
            let keep = a.data_type() == field.data_type()
                || (Arc::ptr_eq(schema, &self.value_schema) && self.exploded[i]);
            let a = if keep {
                a
            } else {
                cast(&a, field.data_type())?
            };
            fields.push(arrow::datatypes::Field::new(
                field.name(),
                a.data_type().clone(),
                true,
            ));
            columns.push(a);
        }
        Ok(RecordBatch::try_new_with_options(
            Arc::new(arrow::datatypes::Schema::new(fields)),
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?)
    }

    /// Moves expression errors into the processing log, naming the record each came from.
    fn report(
        &self,
        batch: &RecordBatch,
        rows: &mut Vec<RowError>,
        out: &mut Vec<ProcessingError>,
    ) {
        report_rows(self.raw_topic(), batch, rows, out);
    }

    /// The topic the rows being processed were read from.
    fn raw_topic(&self) -> &str {
        rows_topic(self.repartition.as_ref(), &self.reader)
    }

    /// The topic the batch in `raw` came from: a join's right side, or the driving source.
    fn batch_topic(&mut self) -> String {
        if let Some(r) = self.repartition.as_ref().filter(|r| r.is_internal_batch()) {
            return r.topic().to_string();
        }
        if let Some(j) = self.stream_join.as_mut().filter(|j| j.is_right_batch()) {
            return j.right_reader().topic().to_string();
        }
        if let Some(j) = self.table_join.as_mut().filter(|j| j.is_right_batch()) {
            return j.right_reader().topic().to_string();
        }
        self.raw_topic().to_string()
    }
}

impl QueryTask {
    /// After the consumer group assigned partitions (which may have moved here from another
    /// server, with groups whose latest state that server wrote), brings the state stores
    /// up to date with their changelogs before any of those partitions' records is
    /// processed.
    fn catch_up_if_reassigned(&mut self) -> Result<(), EngineError> {
        let assignments = self.source.assignments();
        if assignments == self.assignments {
            return Ok(());
        }
        if let Some(aggregate) = self.aggregate.as_mut() {
            aggregate.catch_up()?;
        }
        if let Some(join) = self.stream_join.as_mut() {
            join.catch_up()?;
        }
        if let Some(join) = self.table_join.as_mut() {
            join.catch_up()?;
        }
        if let Some(meters) = &self.meters {
            meters.reassigned();
        }
        self.assignments = assignments;
        Ok(())
    }
}

impl Task for QueryTask {
    fn name(&self) -> &str {
        &self.id
    }

    fn step(&mut self, wait: Duration) -> Result<usize, EngineError> {
        if self.progress == BatchProgress::Done {
            self.raw.clear();
            self.forwarded_retracts = None;
            if self.source.poll(&mut self.raw, self.max_batch, wait)? > 0 {
                self.progress = BatchProgress::Polled;
                self.polled_at = Instant::now();
                self.batch_written = 0;
                self.batch_written_bytes = 0;
                if !self.from_stream
                    && self
                        .repartition
                        .as_ref()
                        .is_some_and(|r| r.is_internal_batch())
                {
                    let (records, retracts) = split_changes(&self.raw);
                    self.raw = records;
                    self.forwarded_retracts = Some(retracts);
                }
                // Processed by the next step: a PAUSE that came while the poll waited keeps
                // the batch in hand, unprocessed, until the query resumes.
                return Ok(self.raw.len());
            }
        }
        // Before the batch is processed, and again on the retry if it fails (the polled
        // batch is kept meanwhile).
        self.catch_up_if_reassigned()?;
        if self.progress == BatchProgress::Done {
            return Ok(0);
        }
        if self.progress == BatchProgress::Polled {
            let mut errors = Vec::new();
            self.process(&mut errors)?;
            self.batch_errors = errors;
            if self.progress == BatchProgress::Polled {
                // Nothing to send (or sent to a push query's client).
                self.progress = BatchProgress::Sent;
            }
        }
        if let Some(repartition) = self.repartition.as_mut().filter(|r| !r.is_internal_batch()) {
            if self.progress == BatchProgress::Encoded {
                repartition.send()?;
                self.progress = BatchProgress::Sent;
            }
            if let Err(err) = repartition.flush() {
                self.progress = BatchProgress::Encoded;
                return Err(err);
            }
        } else if let Output::Topic { sink, topic, .. } = &mut self.output {
            if self.progress == BatchProgress::Encoded {
                // Encoded outputs (also of a batch whose send failed: the state stores
                // have it, only its outputs are due).
                sink.send_with_headers(
                    &self.keys_out,
                    &self.values_out,
                    &self.times_out,
                    &self.headers_out,
                )?;
                self.progress = BatchProgress::Sent;
                self.stats.produced(topic, self.keys_out.len() as u64);
                self.batch_written += self.keys_out.len() as u64;
                self.batch_written_bytes +=
                    (self.keys_out.byte_len() + self.values_out.byte_len()) as u64;
            }
            if let Err(err) = sink.flush(Duration::from_secs(30)) {
                // Some outputs may never arrive: the retry sends them all again.
                self.progress = BatchProgress::Encoded;
                return Err(err.into());
            }
        }
        if let Some(aggregate) = self.aggregate.as_mut() {
            aggregate.flush()?;
        }
        if let Some(join) = self.stream_join.as_mut() {
            join.flush()?;
        }
        if let Some(join) = self.table_join.as_mut() {
            join.flush()?;
        }
        let errors = std::mem::take(&mut self.batch_errors);
        self.log.write(&self.id, &errors);
        let topic = self.batch_topic();
        self.stats.processed(&topic, &self.raw, &errors);
        self.progress = BatchProgress::Done;
        let positions = positions_after(&self.raw);
        if let Some(meters) = &self.meters {
            meters.batch(&BatchFigures {
                read: self.raw.len() as u64,
                bytes: self.raw.values.byte_len() as u64,
                written: self.batch_written,
                written_bytes: self.batch_written_bytes,
                errors: errors.len() as u64,
                took: self.polled_at.elapsed(),
                oldest_ms: self.raw.timestamps.iter().min().copied(),
                topic: &topic,
                next: &positions,
            });
        }
        match self.source.commit(&positions) {
            Err(eddy_topic::TopicError::Rebalanced(why)) => {
                // The partitions' new owner reads these records again (at least once).
                tracing::warn!(query = %self.id, "batch left uncommitted: {why}");
            }
            other => other?,
        }
        Ok(self.raw.len())
    }

    fn close(&mut self) -> Result<(), EngineError> {
        match self.aggregate.as_mut() {
            // Only a batch that went all the way is in the changelogs for sure.
            Some(aggregate) if self.progress == BatchProgress::Done => aggregate.checkpoint(),
            _ => Ok(()),
        }
    }

    fn finished(&self) -> bool {
        let gone = match &self.output {
            Output::Topic { .. } => false,
            Output::Transient { rows, cancel } => {
                rows.is_closed() || cancel.load(std::sync::atomic::Ordering::SeqCst)
            }
        };
        gone || self.limit.is_some_and(|l| self.emitted >= l)
    }
}

/// The rows of a batch as they reach the aggregation or projection (see [`QueryTask::rows`]).
struct Rows {
    batch: RecordBatch,
    tombstones: BooleanArray,
    /// Each row's index in the raw batch (unless a join made the rows).
    decoded_rows: Vec<usize>,
    /// Each row's origin: the index in the raw batch of the record that made it (also
    /// through joins), whose headers its output carries, as Kafka Streams forwards them.
    origins: Vec<usize>,
}

/// How far a polled batch got (see [`QueryTask::step`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchProgress {
    /// No batch in hand: the next step polls.
    Done,
    /// Polled, not yet processed.
    Polled,
    /// Processed (the state stores have it) and its outputs encoded, not yet all sent.
    Encoded,
    /// Outputs queued to the sink; delivery, changelogs and commit remain.
    Sent,
}

/// Builds a topic output for a sink source.
pub(crate) fn topic_output(
    sink: &Source,
    topic_sink: Box<dyn RecordSink>,
) -> Result<Output, EngineError> {
    let (keys, values) = encoders(sink)?;
    Ok(Output::Topic {
        topic: sink.topic.clone(),
        sink: topic_sink,
        keys,
        values,
        timestamp: SinkTimestamp::of(sink)?,
    })
}

/// Where a sink with a `TIMESTAMP` column (`CREATE STREAM s WITH (TIMESTAMP='t') AS …`) takes
/// its records' timestamps from.
pub(crate) struct SinkTimestamp {
    /// The column is a key column (else a value column) ...
    in_key: bool,
    /// ... at this index among them.
    index: usize,
    /// How a STRING column is read.
    format: Option<eddy_sql::plan::TimestampFormat>,
}

impl SinkTimestamp {
    fn of(sink: &Source) -> Result<Option<SinkTimestamp>, EngineError> {
        let Some(name) = &sink.timestamp_column else {
            return Ok(None);
        };
        let keys: Vec<&str> = sink.key_columns().map(|c| c.name.as_str()).collect();
        let values: Vec<&str> = sink.value_columns().map(|c| c.name.as_str()).collect();
        let (in_key, index) = match keys.iter().position(|k| k == name) {
            Some(i) => (true, i),
            None => match values.iter().position(|v| v == name) {
                Some(i) => (false, i),
                None => return Ok(None),
            },
        };
        let format = match (&sink.timestamp_format, sink.column(name).map(|c| &c.ty)) {
            (Some(pattern), Some(eddy_sql::types::SqlType::String)) => {
                Some(eddy_sql::plan::TimestampFormat::new(pattern)?)
            }
            _ => None,
        };
        Ok(Some(SinkTimestamp {
            in_key,
            index,
            format,
        }))
    }

    /// Each output row's timestamp; a row whose column does not give one (NULL, text that
    /// does not parse, a negative number) is left out with why, as Kafka Streams leaves out
    /// records with invalid timestamps.
    fn times(&self, keys: &RecordBatch, values: &RecordBatch) -> Vec<Result<i64, String>> {
        let batch = if self.in_key { keys } else { values };
        let Some(column) = (self.index < batch.num_columns()).then(|| batch.column(self.index))
        else {
            return vec![Err("the TIMESTAMP column is missing".into()); batch.num_rows()];
        };
        let (times, invalid) = match crate::reader::column_times(column, self.format.as_ref()) {
            Ok(read) => read,
            Err(e) => return vec![Err(e.to_string()); batch.num_rows()],
        };
        let mut out: Vec<Result<i64, String>> = times
            .iter()
            .map(|t| t.ok_or_else(|| "the record's TIMESTAMP column is NULL".to_string()))
            .collect();
        for (i, why) in invalid {
            out[i] = Err(why);
        }
        out
    }
}

/// Keys of a windowed result, as Kafka Streams' windowed serialisers write them: the key,
/// then the window start (time windows) or the end and the start (sessions), 8 bytes each,
/// big-endian.
fn windowed_keys(keys: &Payloads, starts: &[i64], session_ends: Option<&[i64]>) -> Payloads {
    let mut out = Payloads::with_capacity(keys.len(), keys.byte_len() + 16 * keys.len());
    let mut buffer = Vec::new();
    for (i, (key, start)) in keys.iter().zip(starts).enumerate() {
        buffer.clear();
        buffer.extend_from_slice(key.unwrap_or_default());
        if let Some(ends) = session_ends {
            buffer.extend_from_slice(&ends[i].to_be_bytes());
        }
        buffer.extend_from_slice(&start.to_be_bytes());
        out.push(Some(&buffer));
    }
    out
}

/// Aggregates a batch of table changes: each row's previous version comes from the
/// aggregation's record of the table (or from earlier in the batch), and rows outside WHERE
/// count as absent.
fn table_changes(
    stage: &mut AggregateStage,
    reader: &mut SourceReader,
    filter: Option<&Compiled>,
    raw: &RawBatch,
    decoded: &DecodedBatch,
    row_errors: &mut Vec<RowError>,
) -> Result<crate::aggregate::Aggregated, EngineError> {
    let v = table_versions(stage, reader, filter, raw, decoded, row_errors)?;
    let out = stage.apply_table_changes(
        &decoded.batch,
        &v.new_valid,
        &v.old,
        &v.old_valid,
        row_errors,
    )?;
    stage.remember(raw, &decoded.rows)?;
    Ok(out)
}

/// The previous versions of a batch of a table's rows, and which versions count in their
/// groups.
struct TableVersions {
    /// Each row's previous version as the table had it (a null value where none), with
    /// its headers.
    previous: RawBatch,
    /// The previous versions decoded, aligned with the rows (null rows where none).
    old: RecordBatch,
    /// Whether the new version counts: not deleted, and passing `WHERE`.
    new_valid: Vec<bool>,
    /// Whether the previous version counted: it existed and passed `WHERE`.
    old_valid: Vec<bool>,
}

/// Reads the previous versions of the `decoded` rows of a table (tombstones kept) from the
/// aggregation's copy of the table.
fn table_versions(
    stage: &mut AggregateStage,
    reader: &mut SourceReader,
    filter: Option<&Compiled>,
    raw: &RawBatch,
    decoded: &DecodedBatch,
    row_errors: &mut Vec<RowError>,
) -> Result<TableVersions, EngineError> {
    let batch = &decoded.batch;
    let previous = stage.previous_versions(raw, &decoded.rows)?;
    let mut ignored = Vec::new();
    let old = reader.decode(&previous, true, &mut ignored)?;
    let n = batch.num_rows();
    // Align the decoded previous versions with the rows; missing ones are null rows.
    let mut position = vec![None; n];
    for (i, r) in old.rows.iter().enumerate() {
        if !old.tombstones[i] {
            position[*r] = Some(i as u32);
        }
    }
    let old_batch = if old.batch.num_rows() == 0 {
        let columns = batch
            .schema()
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), n))
            .collect();
        RecordBatch::try_new(batch.schema(), columns)?
    } else {
        let indices = arrow::array::UInt32Array::from(
            position.iter().map(|p| p.unwrap_or(0)).collect::<Vec<_>>(),
        );
        let columns = old
            .batch
            .columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(batch.schema(), columns)?
    };
    let passes = |b: &RecordBatch, errors: &mut Vec<RowError>| -> Result<Vec<bool>, EngineError> {
        Ok(match filter {
            Some(f) => matches(f, b, errors)?
                .iter()
                .map(|m| m == Some(true))
                .collect(),
            None => vec![true; b.num_rows()],
        })
    };
    let new_valid: Vec<bool> = passes(batch, row_errors)?
        .into_iter()
        .zip(&decoded.tombstones)
        .map(|(p, d)| p && !d)
        .collect();
    let old_valid: Vec<bool> = passes(&old_batch, &mut ignored_row_errors())?
        .into_iter()
        .zip(&position)
        .map(|(p, at)| p && at.is_some())
        .collect();
    Ok(TableVersions {
        previous,
        old: old_batch,
        new_valid,
        old_valid,
    })
}

fn unattached_repartition() -> EngineError {
    EngineError::Internal("a repartition without its aggregation".into())
}

fn ignored_row_errors() -> Vec<RowError> {
    Vec::new()
}

/// A key of several columns that are all null is no key (a null record key), unless the
/// key was computed.
fn null_absent_keys(encoded: &Payloads, keys: &RecordBatch) -> Payloads {
    let mut out = Payloads::with_capacity(encoded.len(), encoded.byte_len());
    for (i, key) in encoded.iter().enumerate() {
        let absent = keys.columns().iter().all(|c| c.is_null(i));
        out.push(if absent { None } else { key });
    }
    out
}

/// `EXPLODE`: one row per element of the exploded arrays (the longest, where there are
/// several; shorter ones give nulls); a row whose arrays are all empty or null is dropped.
/// Returns, for each output row, its input row, and the new key and value batches.
fn explode(
    keys: &RecordBatch,
    values: &RecordBatch,
    exploded: &[bool],
    value_schema: &SchemaRef,
) -> Result<(Vec<u32>, RecordBatch, RecordBatch), EngineError> {
    use arrow::array::{AsArray, UInt32Array};
    let lists: Vec<Option<&arrow::array::ListArray>> = values
        .columns()
        .iter()
        .zip(exploded)
        .map(|(c, e)| if *e { c.as_list_opt::<i32>() } else { None })
        .collect();
    let mut repeat: Vec<u32> = Vec::new();
    let mut element: Vec<usize> = Vec::new();
    for row in 0..values.num_rows() {
        let n = lists
            .iter()
            .flatten()
            .map(|l| {
                if l.is_null(row) {
                    0
                } else {
                    l.value_length(row) as usize
                }
            })
            .max()
            .unwrap_or(0);
        for i in 0..n {
            repeat.push(row as u32);
            element.push(i);
        }
    }
    let rows = UInt32Array::from(repeat.clone());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(values.num_columns());
    for ((column, list), field) in values
        .columns()
        .iter()
        .zip(&lists)
        .zip(value_schema.fields())
    {
        let out = match list {
            None => arrow::compute::take(column.as_ref(), &rows, None)?,
            Some(l) => {
                let offsets = l.value_offsets();
                let picks: UInt32Array = repeat
                    .iter()
                    .zip(&element)
                    .map(|(&r, &i)| {
                        let r = r as usize;
                        (!l.is_null(r) && i < l.value_length(r) as usize)
                            .then(|| offsets[r] as u32 + i as u32)
                    })
                    .collect();
                arrow::compute::take(l.values().as_ref(), &picks, None)?
            }
        };
        columns.push(if out.data_type() == field.data_type() {
            out
        } else {
            cast(&out, field.data_type())?
        });
    }
    let keys = RecordBatch::try_new_with_options(
        keys.schema(),
        keys.columns()
            .iter()
            .map(|c| arrow::compute::take(c.as_ref(), &rows, None))
            .collect::<Result<_, _>>()?,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(repeat.len())),
    )?;
    let values = RecordBatch::try_new_with_options(
        Arc::clone(value_schema),
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(repeat.len())),
    )?;
    Ok((repeat, keys, values))
}

/// Moves expression errors of `batch`'s rows into the processing log, naming the record of
/// `topic` each came from (by the rows' ROWPARTITION and ROWOFFSET).
fn report_rows(
    topic: &str,
    batch: &RecordBatch,
    rows: &mut Vec<RowError>,
    out: &mut Vec<ProcessingError>,
) {
    if rows.is_empty() {
        return;
    }
    let partitions = batch.column_by_name(ROWPARTITION);
    let offsets = batch.column_by_name(ROWOFFSET);
    for e in rows.drain(..) {
        let get = |a: Option<&ArrayRef>| -> i64 {
            a.and_then(|a| cast(&a.slice(e.row, 1), &arrow::datatypes::DataType::Int64).ok())
                .and_then(|a| {
                    a.as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .map(|v| v.value(0))
                })
                .unwrap_or(-1)
        };
        out.push(ProcessingError {
            kind: ErrorKind::RecordProcessing,
            topic: topic.to_string(),
            partition: get(partitions) as i32,
            offset: get(offsets),
            reason: e.reason,
            record: None,
        });
    }
}

/// The topic the rows being processed were read from: the repartition topic for a table's
/// changes forwarded there, else the query's source (forwarded joined rows name their input
/// records' partitions and offsets).
fn rows_topic<'a>(repartition: Option<&'a Repartition>, reader: &'a SourceReader) -> &'a str {
    match repartition {
        Some(r) if r.is_internal_batch() && !r.forwards_joined_rows() => r.topic(),
        _ => reader.topic(),
    }
}

/// `values[r]` for each `r` of `rows`.
fn repeated(values: &[i64], rows: &[u32]) -> Vec<i64> {
    rows.iter().map(|&r| values[r as usize]).collect()
}

//! Pull queries: `SELECT … FROM table [WHERE …]` without `EMIT`, answered at once from the
//! table's materialised state. A `WHERE` on the key (`K = v`, `K IN (…)`) reads just those
//! keys (every window of them, for a windowed table); any other predicate scans the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_expr::Expr;
use datafusion_sql::sqlparser::ast::{
    Expr as SqlExpr, GroupByExpr, LimitClause, SetExpr, UnaryOperator,
};
use eddy_sql::ast::KsqlQuery;
use eddy_sql::catalog::{Column, ColumnRole, Source, SourceKind};
use eddy_sql::plan::{QueryPlan, ROWOFFSET, ROWPARTITION, plan_query};
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, Position, RawBatch, StartFrom};

use crate::engine::{Engine, Properties};
use crate::error::EngineError;
use crate::eval::{Compiled, matches};
use crate::pull_access::{Access, RANGE_SCAN, Scans, TABLE_SCAN, access};
use crate::reader::SourceReader;
use crate::table::{key_codec, stored_row};

/// The answer to a pull query.
#[derive(Debug)]
pub struct PullResult {
    /// The query's id (`query_<n>`), as ksqlDB reports one for pull queries too.
    pub id: String,
    /// The result's columns, in projection order.
    pub columns: Vec<Column>,
    /// The rows, one column per entry of `columns`.
    pub rows: RecordBatch,
    /// How the answer ends, for a pull query over a stream: `Limit Reached` or `Query
    /// Completed`, as ksqlDB's `/query` ends it (a table's answer has no such message).
    pub final_message: Option<&'static str>,
}

impl Engine {
    /// Answers a pull query from the current state of a materialised table.
    pub fn pull(&self, query: &KsqlQuery, props: &Properties) -> Result<PullResult, EngineError> {
        check_clauses(query)?;
        if query.select.limit_clause.is_some()
            && self
                .setting(props, LIMIT_PROPERTY)
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
        {
            return Err(EngineError::Invalid(format!(
                "LIMIT clause in pull queries is currently disabled. You can enable them by \
                 setting {LIMIT_PROPERTY}=true. {PULL_DOCS}"
            )));
        }
        let catalog = self.catalog();
        let plan = plan_query(query, &catalog, None)?;
        check_pseudo_columns(&plan)?;
        let source = &plan.from.source;
        if source.kind == SourceKind::Stream {
            if self
                .setting(props, STREAM_PROPERTY)
                .is_some_and(|v| v.eq_ignore_ascii_case("false"))
            {
                return Err(EngineError::Invalid(format!(
                    "Pull queries on streams are disabled. To create a push query on the \
                     stream, add EMIT CHANGES to the end. To enable pull queries on streams, \
                     set the {STREAM_PROPERTY} config to 'true'."
                )));
            }
            let mut raw = RawBatch::default();
            self.read_stream(source, &mut raw)?;
            return answer(&plan, raw);
        }
        if plan.aggregate.is_some() || plan.join.is_some() {
            return Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(
                "pull queries with GROUP BY or JOIN".into(),
            )));
        }
        let store = self.table_store(&source.name)?.ok_or_else(|| {
            EngineError::Invalid(format!(
                "The table {} is not materialised, so it cannot be queried",
                source.name
            ))
        })?;
        let enabled = |name: &str| {
            self.setting(props, name)
                .is_none_or(|v| !v.eq_ignore_ascii_case("false"))
        };
        let scans = Scans {
            table: enabled(TABLE_SCAN),
            range: enabled(RANGE_SCAN),
        };
        let mut raw = RawBatch::default();
        match access(plan.filter.as_ref(), source, &plan.input_schema, scans)? {
            Access::Keys(lookups) => {
                let (_, mut encoder) = key_codec(source)?;
                let key_schema = Arc::new(Schema::new(
                    source
                        .key_columns()
                        .map(|c| Field::new(&c.name, c.ty.to_arrow(), true))
                        .collect::<Vec<_>>(),
                ));
                let mut keys = Payloads::new();
                for key in lookups {
                    let mut columns = Vec::with_capacity(key.len());
                    for (value, field) in key.iter().zip(key_schema.fields()) {
                        columns.push(cast(&value.to_array()?, field.data_type())?);
                    }
                    let batch = RecordBatch::try_new(Arc::clone(&key_schema), columns)?;
                    encoder.encode(&batch, &mut keys)?;
                }
                read_keys(store.as_ref(), &keys, source.window.is_some(), &mut raw)?;
            }
            Access::Scan => {
                store.scan(&mut |k, row| {
                    push_row(&mut raw, k, row);
                    true
                })?;
            }
        }
        answer(&plan, raw)
    }

    /// Reads every record of a stream's topic up to its end as the query came (its end
    /// offsets then): a pull query over a stream answers what the stream holds.
    fn read_stream(&self, source: &Source, raw: &mut RawBatch) -> Result<(), EngineError> {
        let admin = self.topics().admin();
        let starts = admin.start_offsets(&source.topic)?;
        let start_of = |p: i32| {
            starts
                .iter()
                .find(|s| s.partition == p)
                .map_or(0, |s| s.next_offset)
        };
        // Partitions with records left to read, and the offset after their last one.
        let mut ends: Vec<Position> = admin
            .end_offsets(&source.topic)?
            .into_iter()
            .filter(|e| e.next_offset > start_of(e.partition))
            .collect();
        if ends.is_empty() {
            return Ok(());
        }
        let group = format!("_eddy_{}_pull_{}", self.config().service_id, pull_counter());
        let mut reader = self
            .topics()
            .source(&source.topic, &group, StartFrom::Earliest)?;
        let deadline = Instant::now() + STREAM_READ_LIMIT;
        let mut batch = RawBatch::default();
        while !ends.is_empty() {
            if Instant::now() > deadline {
                return Err(EngineError::Topic(eddy_topic::TopicError::Unavailable(
                    format!(
                        "the stream {} could not be read to its end within {} s",
                        source.name,
                        STREAM_READ_LIMIT.as_secs()
                    ),
                )));
            }
            batch.clear();
            reader.poll(&mut batch, STREAM_READ_BATCH, STREAM_POLL_WAIT)?;
            for i in 0..batch.len() {
                let (partition, offset) = (batch.partitions[i], batch.offsets[i]);
                let Some(end) = ends.iter().position(|e| e.partition == partition) else {
                    continue;
                };
                if offset < ends[end].next_offset {
                    raw.push(
                        batch.keys.get(i),
                        batch.values.get(i),
                        batch.timestamps[i],
                        partition,
                        offset,
                    );
                    raw.set_last_headers(batch.headers.of(i).to_vec());
                }
                if offset + 1 >= ends[end].next_offset {
                    ends.swap_remove(end);
                }
            }
        }
        Ok(())
    }
}

/// A pull query's answer from the records it read: decoded, filtered, projected, limited.
fn answer(plan: &QueryPlan, raw: RawBatch) -> Result<PullResult, EngineError> {
    let source = &plan.from.source;
    let stream = source.kind == SourceKind::Stream;
    let mut errors = Vec::new();
    let mut reader = SourceReader::new(source)?;
    let decoded = reader.decode(&raw, false, &mut errors)?;
    let mut batch = decoded.batch;
    let mut row_errors = Vec::new();
    if let Some(f) = &plan.filter {
        let mask = matches(
            &Compiled::new(f, &plan.input_schema)?,
            &batch,
            &mut row_errors,
        )?;
        batch = filter_record_batch(&batch, &mask)?;
    }
    let mut fields = Vec::with_capacity(plan.columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len());
    let mut columns = Vec::with_capacity(plan.columns.len());
    for c in &plan.columns {
        let a = Compiled::new(&c.expr, &plan.input_schema)?.evaluate(&batch, &mut row_errors)?;
        let a = if a.data_type() == &c.ty.to_arrow() {
            a
        } else {
            cast(&a, &c.ty.to_arrow())?
        };
        fields.push(Field::new(&c.name, a.data_type().clone(), true));
        arrays.push(a);
        // A table's key columns and window bounds, selected as they are, are marked KEY
        // in the answer's header, as ksqlDB marks them; a stream's rows have no key.
        let is_key = !stream
            && matches!(&c.expr, Expr::Column(col)
                if source.key_columns().any(|k| k.name == col.name)
                    || (source.window.is_some()
                        && (col.name == eddy_sql::plan::WINDOWSTART
                            || col.name == eddy_sql::plan::WINDOWEND)));
        columns.push(Column {
            name: c.name.clone(),
            ty: c.ty.clone(),
            role: if is_key {
                ColumnRole::Key
            } else {
                ColumnRole::Value
            },
        });
    }
    let rows = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?;
    let limit_reached = plan.limit.is_some_and(|l| l as usize <= rows.num_rows());
    let rows = match plan.limit {
        Some(l) if (l as usize) < rows.num_rows() => rows.slice(0, l as usize),
        _ => rows,
    };
    let final_message = match (stream, limit_reached) {
        (false, _) => None,
        (true, true) => Some("Limit Reached"),
        (true, false) => Some("Query Completed"),
    };
    Ok(PullResult {
        id: format!("query_{}", pull_counter()),
        columns,
        rows,
        final_message,
    })
}

/// ksqlDB's pointer at the pull query documentation, and at push queries, ending its
/// refusals of pull queries.
const PULL_DOCS: &str = "See https://cnfl.io/queries for more info.\nAdd EMIT CHANGES if you intended to issue a push query.";

/// `ksql.query.pull.limit.clause.enabled`: whether a pull query may have a LIMIT.
const LIMIT_PROPERTY: &str = "ksql.query.pull.limit.clause.enabled";

/// `ksql.query.pull.stream.enabled`: whether pull queries over streams are served.
const STREAM_PROPERTY: &str = "ksql.query.pull.stream.enabled";

/// How long a pull query over a stream may take to read the stream to its end.
const STREAM_READ_LIMIT: Duration = Duration::from_secs(30);
const STREAM_READ_BATCH: usize = 10_000;
const STREAM_POLL_WAIT: Duration = Duration::from_millis(100);

/// Refuses the clauses a pull query cannot have, with ksqlDB's messages.
fn check_clauses(query: &KsqlQuery) -> Result<(), EngineError> {
    let refuse = |clause: &str| {
        Err(EngineError::Invalid(format!(
            "Pull queries don't support {clause} clauses. {PULL_DOCS}"
        )))
    };
    if let SetExpr::Select(select) = query.select.body.as_ref() {
        if select.from.iter().any(|f| !f.joins.is_empty()) {
            return refuse("JOIN");
        }
        if !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty()) {
            return refuse("GROUP BY");
        }
    }
    if query.window.is_some() {
        return refuse("WINDOW");
    }
    if let Some(LimitClause::LimitOffset {
        limit:
            Some(SqlExpr::UnaryOp {
                op: UnaryOperator::Minus,
                ..
            }),
        ..
    }) = &query.select.limit_clause
    {
        return Err(EngineError::Invalid(format!(
            "Pull queries don't support negative integers in the LIMIT clause. {}",
            PULL_DOCS.split('\n').next().unwrap_or_default()
        )));
    }
    Ok(())
}

/// Refuses ROWPARTITION and ROWOFFSET, which a pull query's rows do not have.
fn check_pseudo_columns(plan: &QueryPlan) -> Result<(), EngineError> {
    let offsets = |exprs: &mut dyn Iterator<Item = &Expr>| {
        let mut found: Vec<&str> = Vec::new();
        for e in exprs {
            for c in e.column_refs() {
                for name in [ROWPARTITION, ROWOFFSET] {
                    if c.name == name && !found.contains(&name) {
                        found.push(name);
                    }
                }
            }
        }
        found
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let selected = offsets(&mut plan.columns.iter().map(|c| &c.expr));
    if !selected.is_empty() {
        return Err(EngineError::Invalid(format!(
            "Pull queries don't support the following columns in SELECT clauses: {selected}"
        )));
    }
    let filtered = offsets(&mut plan.filter.iter());
    if !filtered.is_empty() {
        return Err(EngineError::Invalid(format!(
            "Pull queries don't support the following columns in WHERE clauses: {filtered}"
        )));
    }
    Ok(())
}

/// Reads the rows of `keys` (every window of each, for a windowed table) into `raw`.
fn read_keys(
    store: &dyn KeyValueStore,
    keys: &Payloads,
    windowed: bool,
    raw: &mut RawBatch,
) -> Result<(), EngineError> {
    if windowed {
        for key in keys.iter().flatten() {
            store.scan_prefix(key, &mut |k, row| {
                push_row(raw, k, row);
                true
            })?;
        }
        return Ok(());
    }
    let mut found = Payloads::new();
    store.get_many(keys, &mut found)?;
    for (k, row) in keys.iter().zip(found.iter()) {
        if let (Some(k), Some(row)) = (k, row) {
            push_row(raw, k, row);
        }
    }
    Ok(())
}

/// A stored table row as a record, with its timestamp (the pull query's ROWTIME) and
/// headers.
fn push_row(raw: &mut RawBatch, key: &[u8], row: &[u8]) {
    stored_row::push(raw, Some(key), Some(row));
}

fn pull_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

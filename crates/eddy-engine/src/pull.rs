//! Pull queries: `SELECT … FROM table [WHERE …]` without `EMIT`, answered at once from the
//! table's materialised state. A `WHERE` on the key (`K = v`, `K IN (…)`) reads just those
//! keys (every window of them, for a windowed table); any other predicate scans the table.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_expr::{BinaryExpr, Expr, Operator};
use eddy_sql::ast::KsqlQuery;
use eddy_sql::catalog::{Column, ColumnRole, SourceKind};
use eddy_sql::plan::plan_query;
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, RawBatch};

use crate::engine::{Engine, Properties};
use crate::error::EngineError;
use crate::eval::{Compiled, matches};
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
}

/// Whether table scans (pull queries whose WHERE does not pin the key) are allowed.
const TABLE_SCAN_PROPERTY: &str = "ksql.query.pull.table.scan.enabled";

impl Engine {
    /// Answers a pull query from the current state of a materialised table.
    pub fn pull(&self, query: &KsqlQuery, props: &Properties) -> Result<PullResult, EngineError> {
        let catalog = self.catalog();
        let plan = plan_query(query, &catalog, None)?;
        let source = &plan.from.source;
        if source.kind != SourceKind::Table {
            return Err(EngineError::Invalid(format!(
                "Pull queries are not supported on streams: {} is a stream. Add EMIT CHANGES to make it a push query.",
                source.name
            )));
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
        let key_name = source.key_columns().next().map(|k| k.name.clone());
        let lookups = match (&plan.filter, &key_name, source.key_columns().count()) {
            (Some(f), Some(k), 1) => key_literals(f, k),
            _ => None,
        };
        let mut raw = RawBatch::default();
        match lookups {
            Some(values) => {
                let (_, mut encoder) = key_codec(source)?;
                let key_schema = Arc::new(Schema::new(vec![Field::new(
                    key_name.as_deref().unwrap_or_default(),
                    source
                        .key_columns()
                        .next()
                        .map(|c| c.ty.to_arrow())
                        .unwrap_or(arrow::datatypes::DataType::Null),
                    true,
                )]));
                let mut keys = Payloads::new();
                for v in values {
                    let array = cast(&v.to_array()?, key_schema.field(0).data_type())?;
                    let batch = RecordBatch::try_new(Arc::clone(&key_schema), vec![array])?;
                    encoder.encode(&batch, &mut keys)?;
                }
                read_keys(store.as_ref(), &keys, source.window.is_some(), &mut raw)?;
            }
            None => {
                let enabled = self
                    .setting(props, TABLE_SCAN_PROPERTY)
                    .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
                if !enabled {
                    return Err(EngineError::Invalid(format!(
                        "Pull queries that do not look up the key need table scans, which are disabled ({TABLE_SCAN_PROPERTY}=false)."
                    )));
                }
                store.scan(&mut |k, row| {
                    push_row(&mut raw, k, row);
                    true
                })?;
            }
        }
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
            let a =
                Compiled::new(&c.expr, &plan.input_schema)?.evaluate(&batch, &mut row_errors)?;
            let a = if a.data_type() == &c.ty.to_arrow() {
                a
            } else {
                cast(&a, &c.ty.to_arrow())?
            };
            fields.push(Field::new(&c.name, a.data_type().clone(), true));
            arrays.push(a);
            // Key columns and a windowed table's bounds, selected as they are, are marked
            // KEY in the answer's header, as ksqlDB marks them.
            let is_key = matches!(&c.expr, Expr::Column(col)
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
        let rows = match plan.limit {
            Some(l) if (l as usize) < rows.num_rows() => rows.slice(0, l as usize),
            _ => rows,
        };
        Ok(PullResult {
            id: format!("query_{}", pull_counter()),
            columns,
            rows,
        })
    }
}

/// The literal keys of `K = v`, `v = K`, `K IN (…)`, or `… AND …` where one side is one of
/// those; `None` when the predicate does not pin the key.
fn key_literals(e: &Expr, key: &str) -> Option<Vec<datafusion_common::ScalarValue>> {
    let is_key = |e: &Expr| matches!(strip(e), Expr::Column(c) if c.name == key);
    let literal = |e: &Expr| match strip(e) {
        Expr::Literal(v, _) => Some(v.clone()),
        _ => None,
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq if is_key(left) => literal(right).map(|v| vec![v]),
            Operator::Eq if is_key(right) => literal(left).map(|v| vec![v]),
            Operator::And => key_literals(left, key).or_else(|| key_literals(right, key)),
            _ => None,
        },
        Expr::InList(list) if !list.negated && is_key(&list.expr) => {
            list.list.iter().map(literal).collect()
        }
        _ => None,
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        Expr::Alias(a) => strip(&a.expr),
        other => other,
    }
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

/// A stored table row as a record, with its timestamp (the pull query's ROWTIME).
fn push_row(raw: &mut RawBatch, key: &[u8], row: &[u8]) {
    let (timestamp, value) = stored_row::split(row);
    raw.push(Some(key), Some(value), timestamp, 0, 0);
}

fn pull_counter() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

//! Transient push queries (`SELECT … EMIT CHANGES`): a [`QueryTask`] whose output is a
//! bounded channel of Arrow batches instead of a topic. It reads with a consumer group of its
//! own, is not in the catalog's list of persistent queries, and stops when the client drops
//! its [`TransientQuery`], cancels it, or its `LIMIT` is reached. `PRINT` reads a topic's raw
//! records the same way ([`TopicPrint`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::BooleanArray;
use arrow::datatypes::Schema;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_expr::Expr;
use eddy_sql::ast::KsqlQuery;
use eddy_sql::catalog::{Column, ColumnRole, SourceKind};
use eddy_sql::plan::plan_query;
use eddy_topic::{RawBatch, StartFrom};
use tokio::sync::mpsc;

use crate::engine::{Engine, Properties};
use crate::error::EngineError;
use crate::planner::QueryLife;
use crate::query::Output;
use crate::runner::{self, RunMode};

/// Batches buffered between a transient query's thread and its client.
const CHANNEL_BATCHES: usize = 16;

/// Stops a transient query from elsewhere (e.g. `POST /close-query`).
#[derive(Debug, Clone)]
pub struct TransientCancel(Arc<AtomicBool>);

impl TransientCancel {
    /// Asks the query to stop; its task ends within one poll interval.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the query was asked to stop (or stopped because its client went away).
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A running push query. Dropping it stops the query and frees its consumer.
#[derive(Debug)]
pub struct TransientQuery {
    /// `transient_<SOURCE>_<n>`, as ksqlDB names them.
    pub id: String,
    /// Output columns in order; a column that is the source's key is marked as key.
    pub columns: Vec<Column>,
    /// `LIMIT n`, if any.
    pub limit: Option<u64>,
    /// The rows, a batch at a time; closed when the task stops.
    pub rows: mpsc::Receiver<TransientRows>,
    cancel: TransientCancel,
}

impl TransientQuery {
    /// A handle that stops this query.
    pub fn canceller(&self) -> TransientCancel {
        self.cancel.clone()
    }
}

impl Drop for TransientQuery {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Engine {
    /// Starts a push query (`EMIT CHANGES`). Where it starts reading is decided by
    /// `auto.offset.reset` in `props` (latest by default).
    pub fn start_transient(
        &self,
        query: &KsqlQuery,
        props: &Properties,
    ) -> Result<TransientQuery, EngineError> {
        if query.emit.is_none() {
            return Err(EngineError::Invalid(
                "Push queries must end with EMIT CHANGES or EMIT FINAL.".into(),
            ));
        }
        let catalog = self.catalog();
        let plan = plan_query(query, &catalog, None)?;
        let id = if self.is_scalable_push(query, &plan, props)? {
            scalable_push_id()
        } else {
            transient_id(&plan.from.source.name)
        };
        let group = format!("_eddy_{}_transient_{id}", self.config().service_id);
        let (tx, rows) = mpsc::channel(CHANNEL_BATCHES);
        let cancel = Arc::new(AtomicBool::new(false));
        let output = Output::Transient {
            rows: tx,
            cancel: Arc::clone(&cancel),
        };
        let tables = self.join_tables(&plan)?;
        let planner = self.planner();
        let inputs = planner.open_inputs(&plan, &group, props)?;
        let life = QueryLife::Push;
        let task = planner.build(&id, &plan, &group, props, output, life, &tables, inputs)?;
        // The task ends by itself once cancelled; its handle is not needed. A push query runs
        // on its own thread in every mode: nothing steps it in synchronous mode (`eddy test`
        // steps persistent queries; a push query answers a client as rows come).
        drop(runner::start(&id, Box::new(task), RunMode::Threads));
        let source = &plan.from.source;
        let columns = plan
            .columns
            .iter()
            .map(|c| {
                // PARTITION BY makes other columns the key.
                let is_key = plan.join.is_none()
                    && !plan.rekeyed
                    && source.kind == SourceKind::Stream
                    && matches!(&c.expr, Expr::Column(col)
                        if col.name == c.name
                            && source.key_columns().any(|k| k.name == col.name));
                Column {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                    role: if is_key {
                        ColumnRole::Key
                    } else {
                        ColumnRole::Value
                    },
                }
            })
            .collect();
        Ok(TransientQuery {
            id,
            columns,
            limit: plan.limit,
            rows,
            cancel: TransientCancel(cancel),
        })
    }
}

/// `ksql.query.push.v2.enabled`: whether push queries that can be served from a persistent
/// query's output are ksqlDB's "scalable push queries".
const PUSH_V2: &str = "ksql.query.push.v2.enabled";

impl Engine {
    /// Whether ksqlDB would serve `query` as a scalable push query: push v2 is enabled, the
    /// query starts at the latest records of a persistent query's output, and it has no
    /// join, aggregation, window, table function or re-keying. Eddy serves such a query as
    /// any other push query; it carries ksqlDB's id for it (`SCALABLE_PUSH_QUERY_…`), which
    /// clients see.
    fn is_scalable_push(
        &self,
        query: &KsqlQuery,
        plan: &eddy_sql::plan::QueryPlan,
        props: &Properties,
    ) -> Result<bool, EngineError> {
        if !self
            .setting(props, PUSH_V2)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Ok(false);
        }
        let latest = crate::planner::start_from(self.config().default_offset_reset, props)?
            == StartFrom::Latest;
        let simple = plan.join.is_none()
            && plan.aggregate.is_none()
            && query.window.is_none()
            && !plan.rekeyed
            && plan.exploded.is_empty();
        Ok(latest && simple && self.is_query_output(&plan.from.source.name))
    }
}

/// `SCALABLE_PUSH_QUERY_<number>`, as ksqlDB names a scalable push query.
fn scalable_push_id() -> String {
    transient_id("").replacen("transient__", "SCALABLE_PUSH_QUERY_", 1)
}

/// `transient_<SOURCE>_<number>`: unique within the process and unlikely to repeat across
/// restarts.
fn transient_id(source: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(n);
    format!("transient_{source}_{}", mixed >> 1)
}

/// Output rows of a transient query, as projected.
#[derive(Debug, Clone)]
pub struct TransientRows {
    /// Key columns, then value columns.
    pub batch: RecordBatch,
    /// For each row, whether it deletes its key (a table's tombstone, a group that is gone).
    pub tombstones: Vec<bool>,
}

/// One batch of output rows: key columns, then value columns, as projected.
pub(crate) fn rows_batch(
    keys: &RecordBatch,
    values: &RecordBatch,
    tombstones: &BooleanArray,
) -> Result<TransientRows, EngineError> {
    let tombstones = tombstones.iter().map(|t| t == Some(true)).collect();
    if keys.num_columns() == 0 {
        return Ok(TransientRows {
            batch: values.clone(),
            tombstones,
        });
    }
    let fields: Vec<_> = keys
        .schema()
        .fields()
        .iter()
        .chain(values.schema().fields().iter())
        .cloned()
        .collect();
    let columns = keys
        .columns()
        .iter()
        .chain(values.columns().iter())
        .cloned()
        .collect();
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(values.num_rows())),
    )?;
    Ok(TransientRows { batch, tombstones })
}

/// A running `PRINT 'topic'`: raw records of a topic, as they come. Dropping it stops the
/// reader and frees its consumer.
#[derive(Debug)]
pub struct TopicPrint {
    /// Batches of records, in the order the consumer got them.
    pub records: mpsc::Receiver<RawBatch>,
    cancel: TransientCancel,
}

impl Drop for TopicPrint {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Engine {
    /// Starts reading `topic` for `PRINT`: from its beginning, or only new records.
    pub fn print_topic(
        &self,
        topic: &str,
        from_beginning: bool,
    ) -> Result<TopicPrint, EngineError> {
        if self.topics().admin().partition_count(topic)?.is_none() {
            return Err(EngineError::NotFound(format!(
                "Could not find topic '{topic}', or the KSQL user does not have permissions to \
                 list the topic. Topic names are case-sensitive."
            )));
        }
        let id = transient_id("PRINT");
        let group = format!("_eddy_{}_{id}", self.config().service_id);
        let start = if from_beginning {
            StartFrom::Earliest
        } else {
            StartFrom::Latest
        };
        let mut source = self.topics().source(topic, &group, start)?;
        let (tx, records) = mpsc::channel(CHANNEL_BATCHES);
        let cancel = TransientCancel(Arc::new(AtomicBool::new(false)));
        let stop = cancel.clone();
        let max_batch = self.config().max_batch_records;
        let topic_name = topic.to_string();
        std::thread::Builder::new()
            .name(format!("eddy-{id}"))
            .spawn(move || {
                let mut raw = RawBatch::default();
                while !stop.is_cancelled() && !tx.is_closed() {
                    raw.clear();
                    match source.poll(&mut raw, max_batch, Duration::from_millis(100)) {
                        Ok(0) => {}
                        Ok(_) => {
                            if tx.blocking_send(raw.clone()).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(topic = %topic_name, "PRINT stopped: {e}");
                            break;
                        }
                    }
                }
            })
            .map_err(|e| EngineError::Internal(format!("could not start a thread: {e}")))?;
        Ok(TopicPrint { records, cancel })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use eddy_sql::ast::Statement;
    use eddy_state::MemoryBackend;

    use super::*;
    use crate::engine::EngineConfig;
    use crate::memory::MemoryTopics;
    use crate::runner::RunMode;

    #[test]
    fn a_push_query_streams_rows_until_its_limit() -> Result<(), EngineError> {
        let topics = MemoryTopics::new();
        let mut config = EngineConfig::new("unit_");
        config.mode = RunMode::Threads;
        let engine = Engine::new(
            config,
            Arc::new(topics.clone()),
            Arc::new(MemoryBackend::new()),
        )?;
        for stmt in eddy_sql::parse(
            "CREATE STREAM s (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');
             INSERT INTO s (id, v) VALUES (1, 'x');
             INSERT INTO s (id, v) VALUES (2, 'y');",
        )? {
            engine.execute(&stmt, &Properties::new())?;
        }
        let Statement::Query(q) = eddy_sql::parse("SELECT id, v FROM s EMIT CHANGES LIMIT 2;")?
            .remove(0)
            .statement
        else {
            panic!("not a query");
        };
        let mut props = Properties::new();
        props.insert("auto.offset.reset".into(), "earliest".into());
        let mut query = engine.start_transient(&q, &props)?;
        assert!(query.id.starts_with("transient_S_"));
        assert_eq!(
            query
                .columns
                .iter()
                .map(|c| (c.name.as_str(), c.role.clone()))
                .collect::<Vec<_>>(),
            vec![
                ("ID", eddy_sql::catalog::ColumnRole::Key),
                ("V", eddy_sql::catalog::ColumnRole::Value)
            ]
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rows = 0;
        while rows < 2 && Instant::now() < deadline {
            match query.rows.try_recv() {
                Ok(batch) => rows += batch.batch.num_rows(),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        assert_eq!(rows, 2);
        // The LIMIT ends the task, which closes the channel.
        while Instant::now() < deadline {
            match query.rows.try_recv() {
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return Ok(()),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        panic!("the push query did not stop at its LIMIT");
    }
}

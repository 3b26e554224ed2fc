//! The engine: catalog, running queries, and statement execution.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eddy_sql::ast::{
    CreateAsSelect, CreateSource, ParsedStatement, ShowWhat, Statement, TerminateTarget,
};
use eddy_sql::catalog::{Catalog, Source, SourceKind};
use eddy_sql::plan::{QueryPlan, Sink, plan_query};
use eddy_state::{CachedStore, KeyValueStore, StateBackend};
use eddy_topic::{StartFrom, TopicIo};

use crate::changelog::{QueryStore, internal_topic_prefix, store_generation};
use crate::ddl::{sink_from_plan, source_from_create};
use crate::error::EngineError;
use crate::insert_values::JsonInserter;
use crate::metrics::{EngineMetrics, QueryNow};
use crate::planner::{JoinTables, Planner, QueryLife, StartingTask};
use crate::processing_log::{PROCESSING_LOG_STREAM, ProcessingLog};
use crate::query::topic_output;
use crate::results::{
    FunctionListing, PartitionOffsets, QueryOffsets, QuerySummary, QueryType, SourceDescription,
    SourceSummary, StatementResult, TopicOffsets,
};
use crate::runner::{self, RunMode, TaskHandle};
use crate::stats::TopicStats;
use crate::table::{TableMaterializer, TableProgress};

/// A materialised table's store and progress, and whether it was materialised just now.
pub(crate) type TableHandles = (Arc<dyn KeyValueStore>, Arc<TableProgress>, bool);

/// Memory for the rows of each materialised table in front of its store (all of them, while
/// they fit: then an unmatched key is answered without RocksDB): a join looks up every
/// stream record's row.
const TABLE_CACHE_BYTES: usize = 32 << 20;

/// A persistent query's state as `SHOW QUERIES` names it: processing.
const RUNNING: &str = "RUNNING";
/// A persistent query's state after `PAUSE`.
const PAUSED: &str = "PAUSED";
/// How long a pull query waits for a table materialised for it to catch up with its topic.
const FIRST_PULL_WAIT: Duration = Duration::from_secs(30);

/// Session properties sent with a request (`streamsProperties`), e.g. `auto.offset.reset`.
pub type Properties = BTreeMap<String, String>;

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `ksql.service.id`: names the command topic, consumer groups and internal topics.
    pub service_id: String,
    /// Identifies this server's own state (table materialisations) among servers sharing
    /// the service id.
    pub instance_id: String,
    /// Threads (server) or synchronous stepping (`eddy test`).
    pub mode: RunMode,
    /// Where new queries start without `auto.offset.reset` (ksqlDB: latest).
    pub default_offset_reset: StartFrom,
    /// Most records a query processes in one batch.
    pub max_batch_records: usize,
    /// How long a join waits for its table to catch up with records written before the
    /// stream batch was read.
    pub join_freshness_wait: Duration,
    /// Partitions of topics Eddy creates when nothing says how many.
    pub default_partitions: i32,
    /// Replication factor of topics that statements create (`ksql.sink.replicas`) when
    /// their `REPLICAS` does not say.
    pub sink_replicas: i16,
    /// Replication factor of Eddy's internal topics: the processing log, repartition and
    /// changelog topics (`ksql.internal.topic.replicas`).
    pub internal_replicas: i16,
    /// The server's effective configuration as `SHOW PROPERTIES` lists it, secrets masked.
    pub server_properties: Vec<(String, String)>,
    /// The schema registry of AVRO keys and values: the server's built-in one, or a
    /// client of the one `ksql.schema.registry.url` names.
    pub schema_registry: Arc<dyn eddy_registry::SchemaRegistry>,
}

impl EngineConfig {
    /// Defaults for a server with service id `service_id`.
    pub fn new(service_id: &str) -> Self {
        Self {
            service_id: service_id.to_string(),
            instance_id: "0".to_string(),
            mode: RunMode::Threads,
            default_offset_reset: StartFrom::Latest,
            max_batch_records: 10_000,
            join_freshness_wait: Duration::from_secs(2),
            default_partitions: 1,
            sink_replicas: 1,
            internal_replicas: 1,
            server_properties: Vec::new(),
            schema_registry: Arc::new(eddy_registry::MemoryRegistry::new()),
        }
    }

    /// The processing-log topic.
    pub fn processing_log_topic(&self) -> String {
        format!("{}ksql_processing_log", self.service_id)
    }
}

struct QueryEntry {
    summary: QuerySummary,
    handle: TaskHandle,
    /// The first joins of a query joining more than two sources, each a task writing an
    /// intermediate topic (see [`eddy_sql::plan::first_join`]): (stage id, its task).
    stages: Vec<(String, TaskHandle)>,
}

impl QueryEntry {
    /// Pauses or resumes every task of the query.
    fn set_paused(&mut self, paused: bool) {
        self.handle.set_paused(paused);
        for (_, stage) in &self.stages {
            stage.set_paused(paused);
        }
        self.summary.state = if paused { PAUSED } else { RUNNING }.into();
    }

    /// Stops the query's tasks, the last stage first.
    fn stop(self) {
        self.handle.stop();
        for (_, stage) in self.stages.into_iter().rev() {
            stage.stop();
        }
    }
}

/// A stage of a query joining more than two sources: its plan and the intermediate it
/// writes.
type Stage = (QueryPlan, Source);

struct MaterializedTable {
    store: Arc<dyn KeyValueStore>,
    progress: Arc<TableProgress>,
    handle: TaskHandle,
}

#[derive(Default)]
struct Inner {
    catalog: Catalog,
    queries: BTreeMap<String, QueryEntry>,
    tables: HashMap<String, MaterializedTable>,
    next_query: u64,
    /// While the command log replays: the (upper-cased) ids of queries a later command
    /// terminates, which are not started at all (see [`Engine::set_terminated_later`]).
    terminated_later: std::collections::HashSet<String>,
    /// While the command log replays: the (upper-cased) ids of queries the log leaves
    /// paused, which start paused (see [`Engine::set_paused_later`]).
    paused_later: std::collections::HashSet<String>,
    /// Queries replay did not start because a later command terminates them: id → sink,
    /// so that a `CREATE OR REPLACE` still replaces one and its `TERMINATE` finds it.
    not_started: BTreeMap<String, String>,
    /// The types `CREATE TYPE` named, by name.
    types: BTreeMap<String, eddy_sql::types::SqlType>,
    /// Each persistent query's plans (its join stages, then its final plan), which a
    /// `CREATE OR REPLACE` is checked against (see [`eddy_sql::plan::upgrade_refusal`]).
    plans: HashMap<String, Arc<[QueryPlan]>>,
}

/// The continuous-query engine.
pub struct Engine {
    config: EngineConfig,
    topics: Arc<dyn TopicIo>,
    state: Arc<dyn StateBackend>,
    log: Arc<ProcessingLog>,
    /// What the queries read and wrote, per topic, for `DESCRIBE EXTENDED`.
    stats: Arc<TopicStats>,
    metrics: EngineMetrics,
    inner: Mutex<Inner>,
    /// Set while the command log is replayed: statements that were accepted once are not
    /// refused again over what their first run left behind (e.g. a topic's partitions).
    pub(crate) replaying: std::sync::atomic::AtomicBool,
    /// Set while commands of other servers run: checks of the broker's state that their
    /// origin passed (a topic's partition count) are not repeated.
    pub(crate) following: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// An engine over `topics` and `state`, with the processing-log stream registered.
    pub fn new(
        config: EngineConfig,
        topics: Arc<dyn TopicIo>,
        state: Arc<dyn StateBackend>,
    ) -> Result<Self, EngineError> {
        let log_topic = config.processing_log_topic();
        topics
            .admin()
            .create_topic(&log_topic, 1, config.internal_replicas)?;
        let log = Arc::new(ProcessingLog::new(topics.sink(&log_topic)?));
        let mut inner = Inner {
            next_query: 1,
            ..Inner::default()
        };
        inner.catalog.insert(ProcessingLog::stream(&log_topic));
        Ok(Self {
            config,
            topics,
            state,
            log,
            stats: Arc::default(),
            metrics: EngineMetrics::default(),
            replaying: std::sync::atomic::AtomicBool::new(false),
            following: std::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The types `CREATE TYPE` named, to parse statements that use them
    /// ([`eddy_sql::parse_with_types`]).
    pub fn types(&self) -> BTreeMap<String, eddy_sql::types::SqlType> {
        self.lock().types.clone()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The topics the engine reads and writes.
    pub fn topics(&self) -> &Arc<dyn TopicIo> {
        &self.topics
    }

    /// An inserter of rows sent as JSON objects (ksqlDB's `/inserts-stream`) into stream
    /// `target` (upper-cased unless back-quoted, as ksqlDB reads names given as strings).
    pub fn json_inserter(&self, target: &str) -> Result<JsonInserter, EngineError> {
        let catalog = self.catalog();
        let source = catalog
            .get(&crate::ddl::normalize_ident(target))
            .ok_or_else(|| {
                EngineError::NotFound(format!(
                    "Cannot insert values into an unknown stream: {target}"
                ))
            })?;
        if source.kind != SourceKind::Stream {
            return Err(EngineError::Invalid(format!(
                "Cannot insert values into {}: it is a table; /inserts-stream writes to streams.",
                source.name
            )));
        }
        if source.is_source {
            return Err(EngineError::Invalid(format!(
                "Cannot insert values into read-only stream: {}",
                source.name
            )));
        }
        JsonInserter::new(self.topics.as_ref(), source)
    }

    /// Stops every query and table materialisation, each after its current batch, so that
    /// their state is persisted (before the server exits).
    pub fn shutdown(&self) {
        let (queries, tables) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.queries),
                std::mem::take(&mut inner.tables),
            )
        };
        for query in queries.into_values() {
            query.stop();
        }
        for table in tables.into_values() {
            table.handle.stop();
        }
    }

    /// `TERMINATE CLUSTER` (ksqlDB's `/ksql/terminate`): terminates every persistent query
    /// and cleans up after it as `TERMINATE` does, stops the table materialisations and
    /// drops their stores, forgets every source but the processing log, then deletes the
    /// topics that queries wrote and `delete_topic` picks. Returns the deleted topics. The
    /// command topic is the caller's to delete.
    pub fn terminate_cluster(
        &self,
        delete_topic: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<String>, EngineError> {
        let written: Vec<String> = {
            let inner = self.lock();
            inner
                .queries
                .values()
                .map(|q| q.summary.sink_topic.clone())
                .filter(|topic| delete_topic(topic))
                .collect()
        };
        self.terminate(&TerminateTarget::All)?;
        let tables = {
            let mut inner = self.lock();
            let log = self.config.processing_log_topic();
            let kept: Vec<Source> = inner
                .catalog
                .iter()
                .filter(|s| s.topic == log)
                .cloned()
                .collect();
            inner.catalog = Catalog::new();
            for source in kept {
                inner.catalog.insert(source);
            }
            std::mem::take(&mut inner.tables)
        };
        for (name, table) in tables {
            table.handle.stop();
            drop(table.store);
            if let Err(e) = self.state.drop_store(&crate::table::store_name(&name)) {
                tracing::warn!(table = name, "could not drop a table's store: {e}");
            }
        }
        let admin = self.topics.admin();
        let mut deleted = Vec::new();
        for topic in written {
            match admin.delete_topic(&topic) {
                Ok(()) => deleted.push(topic),
                Err(e) => tracing::warn!(topic, "could not delete a query's topic: {e}"),
            }
        }
        Ok(deleted)
    }

    /// The persistent queries' metric families.
    pub fn metrics(&self) -> &EngineMetrics {
        &self.metrics
    }

    /// Each local state store's estimated size in bytes, for a metrics scrape.
    pub fn store_sizes(&self) -> Vec<(String, u64)> {
        self.state.store_sizes().unwrap_or_else(|e| {
            tracing::warn!("could not read the state stores' sizes: {e}");
            Vec::new()
        })
    }

    /// Each persistent query's state and, for the partitions this server reads, its lag
    /// behind the end of its input (asked of the broker now), for a metrics scrape.
    pub fn metrics_now(&self) -> Vec<QueryNow> {
        let summaries = {
            let inner = self.lock();
            self.summaries(&inner)
        };
        let mut lag = self.lags();
        summaries
            .into_iter()
            .filter(|q| q.query_type == QueryType::Persistent)
            .map(|q| QueryNow {
                lag: lag.remove(&q.id).unwrap_or_default(),
                id: q.id,
                state: q.state,
            })
            .collect()
    }

    /// Each persistent query's lag on the partitions this server reads: (topic, partition,
    /// records behind the end), asking the broker for the ends now.
    fn lags(&self) -> HashMap<String, Vec<(String, i32, i64)>> {
        let admin = self.topics.admin();
        let mut ends: HashMap<String, Option<Vec<eddy_topic::Position>>> = HashMap::new();
        let mut lag: HashMap<String, Vec<(String, i32, i64)>> = HashMap::new();
        for (id, topic, next) in self.metrics.positions() {
            let end = ends
                .entry(topic.clone())
                .or_insert_with(|| admin.end_offsets(&topic).ok());
            let Some(end) = end else { continue };
            for (partition, offset) in next {
                if let Some(e) = end.iter().find(|e| e.partition == partition) {
                    lag.entry(id.clone()).or_default().push((
                        topic.clone(),
                        partition,
                        (e.next_offset - offset).max(0),
                    ));
                }
            }
        }
        lag
    }

    /// `summaries` with each persistent query's lag and processing errors on this server
    /// (the broker is asked for the ends of the inputs: call without the lock).
    fn with_progress(&self, mut summaries: Vec<QuerySummary>) -> Vec<QuerySummary> {
        let lags = self.lags();
        for s in summaries
            .iter_mut()
            .filter(|s| s.query_type == QueryType::Persistent)
        {
            s.lag = lags
                .get(&s.id)
                .map(|partitions| partitions.iter().map(|(_, _, behind)| behind).sum());
            s.processing_errors = self.metrics.processing_errors(&s.id);
        }
        summaries
    }

    /// This server's part of the cluster, as `/clusterStatus` reports each server: per
    /// persistent query, its state here (`queryStates`, for `SHOW QUERIES`' counts), the
    /// input partitions it has processed here and its local stores (ksqlDB's
    /// `activeStandbyPerQuery`; Eddy keeps no standby replicas), and how far behind each
    /// store is (`hostStoreLags`; see [`Engine::store_lags`]). It asks the broker for the
    /// ends of the inputs: call without the lock.
    pub fn cluster_report(&self) -> serde_json::Value {
        let summaries = {
            let inner = self.lock();
            self.summaries(&inner)
        };
        let stores = self.state.store_names().unwrap_or_default();
        let positions = self.metrics.positions();
        let mut per_query = serde_json::Map::new();
        for q in summaries
            .iter()
            .filter(|q| q.query_type == QueryType::Persistent)
        {
            let partitions: Vec<serde_json::Value> = positions
                .iter()
                .filter(|(id, _, _)| *id == q.id)
                .flat_map(|(_, topic, next)| {
                    next.keys()
                        .map(move |p| serde_json::json!({"topic": topic, "partition": p}))
                })
                .collect();
            let own_stores: Vec<&String> = stores
                .iter()
                .filter(|s| QueryStore::ALL.iter().any(|k| **s == k.name(&q.id)))
                .collect();
            per_query.insert(
                q.id.clone(),
                serde_json::json!({
                    "activeStores": own_stores,
                    "activePartitions": partitions,
                    "standByStores": [],
                    "standByPartitions": [],
                }),
            );
        }
        let states: serde_json::Map<String, serde_json::Value> = summaries
            .iter()
            .filter(|q| q.query_type == QueryType::Persistent)
            .map(|q| (q.id.clone(), serde_json::json!(q.state)))
            .collect();
        let persistent: Vec<QuerySummary> = summaries
            .into_iter()
            .filter(|q| q.query_type == QueryType::Persistent)
            .collect();
        serde_json::json!({
            "queryStates": states,
            "activeStandbyPerQuery": per_query,
            "hostStoreLags": {
                "stateStoreLags": self.store_lags(&persistent, &stores),
                "updateTimeMs": crate::membership::now_ms(),
            },
        })
    }

    /// ksqlDB's `stateStoreLags` for the local stores of `queries` (`stores`: every local
    /// store's name), keyed `<query's internal prefix>#<store>`: per partition this server
    /// processes, the consumer's and the broker's offsets in the query's input that is
    /// furthest behind on that partition, and the records between them. A store holds
    /// everything its query has processed (its changelog is written with the outputs), so
    /// what it lags by is its query's input; a query without stores reports none.
    fn store_lags(
        &self,
        queries: &[QuerySummary],
        stores: &[String],
    ) -> serde_json::Map<String, serde_json::Value> {
        let mut lags = serde_json::Map::new();
        // Only queries with local stores report lags: the broker is asked for no others.
        let (stateful, own_stores): (Vec<QuerySummary>, Vec<Vec<String>>) = queries
            .iter()
            .map(|q| {
                let own: Vec<String> = QueryStore::ALL
                    .iter()
                    .map(|k| k.name(&q.id))
                    .filter(|name| stores.contains(name))
                    .collect();
                (q.clone(), own)
            })
            .filter(|(_, own)| !own.is_empty())
            .unzip();
        let offsets = self.query_offsets(&stateful);
        for ((q, own), offsets) in stateful.iter().zip(own_stores).zip(&offsets) {
            // Per partition, the input furthest behind.
            let mut worst: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
            for p in offsets.topics.iter().flat_map(|t| &t.partitions) {
                let entry = worst.entry(p.partition).or_insert((p.consumer, p.end));
                if p.end - p.consumer > entry.1 - entry.0 {
                    *entry = (p.consumer, p.end);
                }
            }
            let by_partition: serde_json::Map<String, serde_json::Value> = worst
                .iter()
                .map(|(partition, (current, end))| {
                    (
                        partition.to_string(),
                        serde_json::json!({
                            "currentOffsetPosition": current,
                            "endOffsetPosition": end,
                            "offsetLag": (end - current).max(0),
                        }),
                    )
                })
                .collect();
            let prefix = crate::changelog::internal_topic_prefix(&self.config.service_id, &q.id);
            for store in own {
                lags.insert(
                    format!("{}#{store}", prefix.trim_end_matches('-')),
                    serde_json::json!({"lagByPartition": by_partition, "size": worst.len()}),
                );
            }
        }
        lags
    }

    /// A copy of the catalog.
    pub fn catalog(&self) -> Catalog {
        self.lock().catalog.clone()
    }

    /// The store of table `name` for a pull query, if `name` is a table. A table
    /// materialised just now is read once it has caught up with its topic.
    pub(crate) fn table_store(
        &self,
        name: &str,
    ) -> Result<Option<Arc<dyn KeyValueStore>>, EngineError> {
        let (store, progress, new) = {
            let mut inner = self.lock();
            if inner
                .catalog
                .get(name)
                .is_none_or(|s| s.kind != SourceKind::Table)
            {
                return Ok(None);
            }
            self.materialized(&mut inner, name)?
        };
        if new && self.config.mode == RunMode::Synchronous {
            let mut inner = self.lock();
            if let Some(t) = inner.tables.get_mut(name) {
                runner::run_until_idle(std::slice::from_mut(&mut t.handle))?;
            }
        } else if new {
            let topic = self.catalog().get(name).map(|s| s.topic.clone());
            if let Some(topic) = topic {
                let ends = self.topics.admin().end_offsets(&topic)?;
                if !progress.wait_for(&ends, FIRST_PULL_WAIT) {
                    return Err(EngineError::Topic(eddy_topic::TopicError::Unavailable(
                        format!(
                            "table {name} is still being materialised from its topic '{topic}' \
                         (it had not caught up after {} s); try again shortly",
                            FIRST_PULL_WAIT.as_secs()
                        ),
                    )));
                }
            }
        }
        Ok(Some(store))
    }

    /// Table `name`'s store and progress, materialising it now if no one has read it yet;
    /// and whether that happened now.
    fn materialized(&self, inner: &mut Inner, name: &str) -> Result<TableHandles, EngineError> {
        let new = !inner.tables.contains_key(name);
        if new {
            let source = inner
                .catalog
                .get(name)
                .filter(|s| s.kind == SourceKind::Table)
                .ok_or_else(|| EngineError::Internal(format!("{name} is not a table")))?
                .clone();
            let table = self.materialize(&source)?;
            inner.tables.insert(name.to_string(), table);
        }
        let table = inner
            .tables
            .get(name)
            .ok_or_else(|| EngineError::Internal(format!("table {name} is not materialised")))?;
        Ok((Arc::clone(&table.store), Arc::clone(&table.progress), new))
    }

    /// Makes the next new persistent query take at least number `n` (`CSAS_X_<n>`), so that
    /// replaying the command log gives every query the id it had, even if a command before
    /// it fails. Never goes back: a query replaced in place keeps its older number.
    pub(crate) fn set_next_query_number(&self, n: u64) {
        let mut inner = self.lock();
        inner.next_query = inner.next_query.max(n);
    }

    /// Names the queries that the command log being replayed terminates later: replay
    /// creates their sinks but does not start them, as ksqlDB's restore compacts its
    /// command topic. Started, a terminated query would read whatever reached its input
    /// since it was terminated, and write results for it, until its TERMINATE replayed.
    /// Names the queries the command log being replayed leaves paused: they start paused,
    /// so that they process nothing between their start and their `PAUSE`.
    pub(crate) fn set_paused_later(&self, ids: std::collections::HashSet<String>) {
        self.lock().paused_later = ids;
    }

    pub(crate) fn set_terminated_later(&self, ids: std::collections::HashSet<String>) {
        let mut inner = self.lock();
        if ids.is_empty() {
            inner.not_started.clear();
        }
        inner.terminated_later = ids;
    }

    /// Executes one statement. A statement that fails changes nothing.
    pub fn execute(
        &self,
        stmt: &ParsedStatement,
        props: &Properties,
    ) -> Result<StatementResult, EngineError> {
        let span = tracing::info_span!("statement", sql = %stmt.text);
        let _enter = span.enter();
        match &stmt.statement {
            Statement::CreateSource(create) => {
                let values = create
                    .elements
                    .iter()
                    .filter(|c| !c.key && c.header.is_none())
                    .count();
                let headers_off = self
                    .server_setting("ksql.headers.columns.enabled")
                    .is_some_and(|v| v.eq_ignore_ascii_case("false"));
                if headers_off && create.elements.iter().any(|c| c.header.is_some()) {
                    return Err(EngineError::Invalid(format!(
                        "Cannot create {} {} with HEADERS or HEADER('<key>') columns: \
                         ksql.headers.columns.enabled is false on this server.",
                        create.kind.to_string().to_lowercase(),
                        create.name
                    )));
                }
                let mut create = create.clone();
                create.with = crate::ddl::with_defaults(&create.with, props, values, true);
                self.create_source(&create, &stmt.text)
            }
            Statement::CreateAsSelect(create) => self.create_as_select(create, &stmt.text, props),
            Statement::InsertSelect { target, query } => {
                self.insert_select(target, query, &stmt.text, props)
            }
            Statement::Drop {
                kind,
                name,
                if_exists,
                delete_topic,
            } => self.drop_source(*kind, name, *if_exists, *delete_topic),
            Statement::Terminate(target) => self.terminate(target),
            Statement::AssertTopic {
                topic,
                exists,
                with,
                timeout,
            } => self.assert_topic(topic, *exists, with, *timeout),
            Statement::Alter {
                kind,
                name,
                columns,
            } => self.alter(*kind, name, columns),
            Statement::CreateType {
                name,
                ty,
                if_not_exists,
            } => {
                let mut inner = self.lock();
                if let Some(existing) = inner.types.get(name) {
                    if *if_not_exists {
                        return Ok(StatementResult::Status {
                            message: format!("Type {name} already exists."),
                            query_id: None,
                        });
                    }
                    return Err(EngineError::Invalid(format!(
                        "Cannot register custom type '{name}' since it is already registered \
                         with type: {existing}"
                    )));
                }
                inner.types.insert(name.clone(), ty.clone());
                Ok(StatementResult::Status {
                    message: format!("Registered custom type with name '{name}' and SQL type {ty}"),
                    query_id: None,
                })
            }
            Statement::DropType { name, if_exists } => {
                let mut inner = self.lock();
                match inner.types.remove(name) {
                    Some(_) => Ok(StatementResult::Status {
                        message: format!("Dropped type '{name}'"),
                        query_id: None,
                    }),
                    None if *if_exists => Ok(StatementResult::Status {
                        message: format!("Type {name} does not exist."),
                        query_id: None,
                    }),
                    None => Err(EngineError::NotFound(format!(
                        "Type {name} does not exist."
                    ))),
                }
            }
            Statement::Pause(target) => self.pause(target, true),
            Statement::Resume(target) => self.pause(target, false),
            Statement::Show { what, extended } => self.show(*what, *extended),
            Statement::Describe { name, extended } => self.describe(name, *extended),
            Statement::Query(_) | Statement::Print { .. } => {
                Err(EngineError::UseQueryEndpoint(stmt.text.clone()))
            }
            Statement::InsertValues {
                target,
                columns,
                values,
            } => {
                let catalog = self.catalog();
                let source = catalog.get(target).ok_or_else(|| {
                    EngineError::NotFound(unknown_insert_target(&catalog, target))
                })?;
                if source.is_source {
                    return Err(EngineError::Invalid(format!(
                        "Cannot insert values into read-only {}: {}",
                        match source.kind {
                            SourceKind::Stream => "stream",
                            SourceKind::Table => "table",
                        },
                        source.name
                    )));
                }
                crate::insert_values::insert_values(
                    self.topics.as_ref(),
                    &catalog,
                    source,
                    columns.as_deref(),
                    values,
                )?;
                Ok(StatementResult::Inserted)
            }
            Statement::Set { .. } | Statement::Unset { .. } => Ok(StatementResult::Status {
                message: "Property set for this request".into(),
                query_id: None,
            }),
            // Variables belong to a session: their statements were applied to its text
            // (`eddy_sql::variables`) before it was parsed.
            Statement::Define { .. } | Statement::Undefine { .. } => Ok(StatementResult::Status {
                message: "Variable set for this request".into(),
                query_id: None,
            }),
            Statement::DescribeFunction(name) => eddy_sql::plan::describe::describe_function(name)
                .map(StatementResult::Function)
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "Can't find any functions with the name '{name}'"
                    ))
                }),
            Statement::Explain(_) => Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(
                "EXPLAIN".into(),
            ))),
        }
    }

    /// Runs synchronous tasks until none has input left (`eddy test`).
    pub fn run_until_idle(&self) -> Result<(), EngineError> {
        let mut inner = self.lock();
        let Inner {
            queries, tables, ..
        } = &mut *inner;
        // Tables first, so that a join sees every table row written before its stream row.
        let mut handles: Vec<TaskHandle> = Vec::new();
        let table_names: Vec<String> = tables.keys().cloned().collect();
        let mut table_handles: Vec<(String, MaterializedTable)> = Vec::new();
        for n in table_names {
            if let Some(t) = tables.remove(&n) {
                table_handles.push((n, t));
            }
        }
        let query_ids: Vec<String> = queries.keys().cloned().collect();
        let mut query_entries: Vec<(String, QuerySummary, Vec<String>)> = Vec::new();
        for id in query_ids {
            if let Some(q) = queries.remove(&id) {
                // A query's stages before its last, in order.
                let mut stage_ids = Vec::new();
                for (stage, handle) in q.stages {
                    stage_ids.push(stage);
                    handles.push(handle);
                }
                query_entries.push((id, q.summary, stage_ids));
                handles.push(q.handle);
            }
        }
        let mut all: Vec<TaskHandle> = Vec::new();
        let mut table_meta = Vec::new();
        for (n, t) in table_handles {
            table_meta.push((n, t.store, t.progress));
            all.push(t.handle);
        }
        let query_start = all.len();
        all.extend(handles);
        let result = runner::run_until_idle(&mut all);
        let rest = all.split_off(query_start);
        for ((n, store, progress), handle) in table_meta.into_iter().zip(all) {
            tables.insert(
                n,
                MaterializedTable {
                    store,
                    progress,
                    handle,
                },
            );
        }
        let mut rest = rest.into_iter();
        for (id, summary, stage_ids) in query_entries {
            let stages = stage_ids
                .into_iter()
                .filter_map(|stage| rest.next().map(|h| (stage, h)))
                .collect();
            if let Some(handle) = rest.next() {
                queries.insert(
                    id,
                    QueryEntry {
                        summary,
                        handle,
                        stages,
                    },
                );
            }
        }
        result
    }

    fn create_source(
        &self,
        stmt: &CreateSource,
        sql: &str,
    ) -> Result<StatementResult, EngineError> {
        // Checked under the lock; the topic and the table's materialisation are made
        // without it (statements are serialised by the caller), then the catalog changes.
        let source = {
            let inner = self.lock();
            if let Some(done) = check_exists(
                &inner.catalog,
                &stmt.name,
                stmt.kind,
                stmt.if_not_exists,
                stmt.or_replace,
            )? {
                return Ok(done);
            }
            source_from_create(
                stmt,
                sql,
                &eddy_sql::catalog::Registry(Arc::clone(&self.config.schema_registry)),
            )?
        };
        self.ensure_topic(&source, &stmt.with)?;
        if source.kind == SourceKind::Table {
            // A replaced table's materialiser stops first: the new store's cache must see
            // every write to the store (if materialising fails, the first read retries it).
            let old = self.lock().tables.remove(&source.name);
            if let Some(old) = old {
                old.handle.stop();
            }
            let table = self.materialize(&source)?;
            // A pull query meanwhile may have materialised the old definition again.
            let raced = self.lock().tables.insert(source.name.clone(), table);
            if let Some(raced) = raced {
                raced.handle.stop();
            }
        }
        let message = match source.kind {
            SourceKind::Stream => "Stream created",
            SourceKind::Table => "Table created",
        };
        self.lock().catalog.insert(source);
        Ok(StatementResult::Status {
            message: message.into(),
            query_id: None,
        })
    }

    /// Creates the topic if it is missing (with `PARTITIONS`, default 1).
    /// Creates the topic of stream or table `source` if it is missing: with the `WITH`
    /// clause's partitions and replicas, and as ksqlDB creates it, compacted for a table
    /// (and deleting old windows too for a windowed one), or with `CLEANUP_POLICY` and
    /// `RETENTION_MS` where the clause gives them.
    fn ensure_topic(
        &self,
        source: &Source,
        with: &eddy_sql::ast::WithProperties,
    ) -> Result<i32, EngineError> {
        let topic = source.topic.as_str();
        check_topic_name(topic)?;
        let w = crate::ddl::With(with);
        let wanted = w.partitions()?;
        let admin = self.topics.admin();
        match admin.partition_count(topic)? {
            Some(existing) => {
                if let Some(p) = wanted
                    && p != existing
                    && !self.replaying.load(std::sync::atomic::Ordering::SeqCst)
                    && !self.following.load(std::sync::atomic::Ordering::SeqCst)
                {
                    return Err(EngineError::Invalid(format!(
                        "A Kafka topic with the name '{topic}' already exists, with different partition/replica configuration than required by KSQL.\nKSQL expects {p} partitions (topic has {existing})."
                    )));
                }
                Ok(existing)
            }
            None => {
                let partitions = wanted.unwrap_or(self.config.default_partitions);
                let replicas = w.replicas()?.unwrap_or(self.config.sink_replicas);
                let config = crate::ddl::topic_config(source, with)?;
                let config: Vec<(&str, &str)> =
                    config.iter().map(|(k, v)| (*k, v.as_str())).collect();
                admin.create_topic_with_config(topic, partitions, replicas, &config)?;
                Ok(partitions)
            }
        }
    }

    fn materialize(&self, table: &Source) -> Result<MaterializedTable, EngineError> {
        let store_name = crate::table::store_name(&table.name);
        let store: Arc<dyn KeyValueStore> = Arc::new(CachedStore::complete(
            self.state.open_store(&store_name)?,
            TABLE_CACHE_BYTES,
        )?);
        let group = format!(
            "_eddy_{}_{}_table_{}_{}",
            self.config.service_id,
            self.config.instance_id,
            table.name,
            store_generation(self.state.as_ref(), &store_name)?
        );
        let source = self
            .topics
            .source(&table.topic, &group, StartFrom::Earliest)?;
        let progress = Arc::new(TableProgress::default());
        let task = TableMaterializer::new(
            table,
            source,
            Arc::clone(&store),
            Arc::clone(&progress),
            Arc::clone(&self.log),
            Arc::clone(&self.stats),
            self.config.max_batch_records,
        )?;
        let handle = runner::start(
            &format!("table-{}", table.name),
            Box::new(task),
            self.config.mode,
        );
        Ok(MaterializedTable {
            store,
            progress,
            handle,
        })
    }

    /// A setting for one request: the request's own property, else the server's (its
    /// configuration file), each also under its `ksql.streams.` name.
    pub(crate) fn setting<'a>(&'a self, props: &'a Properties, name: &str) -> Option<&'a str> {
        props
            .get(name)
            .or_else(|| props.get(&format!("ksql.streams.{name}")))
            .map(String::as_str)
            .or_else(|| self.server_setting(name))
    }

    /// A setting of the server (its configuration file), also under its `ksql.streams.`
    /// name.
    pub fn server_setting(&self, name: &str) -> Option<&str> {
        let streams = format!("ksql.streams.{name}");
        self.config
            .server_properties
            .iter()
            .find(|(k, _)| *k == name || *k == streams)
            .map(|(_, v)| v.as_str())
    }

    /// Whether a persistent query writes the stream or table `name`.
    pub(crate) fn is_query_output(&self, name: &str) -> bool {
        self.lock().queries.values().any(|q| q.summary.sink == name)
    }

    /// A planner with the engine's handles.
    pub(crate) fn planner(&self) -> Planner {
        Planner {
            topics: Arc::clone(&self.topics),
            state: Arc::clone(&self.state),
            config: self.config.clone(),
            log: Arc::clone(&self.log),
            stats: Arc::clone(&self.stats),
            metrics: self.metrics.clone(),
        }
    }

    /// The tables `plan`'s join reads, materialised now if no one has read them yet.
    pub(crate) fn join_tables(&self, plan: &QueryPlan) -> Result<JoinTables, EngineError> {
        let Some(join) = &plan.join else {
            return Ok(JoinTables::default());
        };
        let mut inner = self.lock();
        let left = match (plan.from.source.kind, join.table.source.kind) {
            // A foreign-key join keeps the left rows itself.
            (SourceKind::Table, SourceKind::Table) if !join.foreign_key => {
                Some(self.materialized(&mut inner, &plan.from.source.name)?)
            }
            _ => None,
        };
        let right = match join.table.source.kind {
            SourceKind::Table => Some(self.materialized(&mut inner, &join.table.source.name)?),
            SourceKind::Stream => None,
        };
        Ok(JoinTables { left, right })
    }

    fn create_as_select(
        &self,
        stmt: &CreateAsSelect,
        sql: &str,
        props: &Properties,
    ) -> Result<StatementResult, EngineError> {
        // Prepare under the lock (nothing changes yet), start with no lock held (creating
        // topics and restoring state may take long), then commit under the lock.
        let (stages, plan, sink, id, replaced) = {
            let mut inner = self.lock();
            if let Some(done) = check_exists(
                &inner.catalog,
                &stmt.name,
                stmt.kind,
                stmt.if_not_exists,
                stmt.or_replace,
            )? {
                return Ok(done);
            }
            let prefix = match stmt.kind {
                SourceKind::Stream => "CSAS",
                SourceKind::Table => "CTAS",
            };
            // OR REPLACE upgrades the query in place, as ksqlDB does: same id, so the same
            // consumer group, and the new query goes on from the old one's committed offsets.
            let replaced = inner
                .queries
                .iter()
                .map(|(id, q)| (id, &q.summary.sink))
                .chain(&inner.not_started)
                .find(|(id, sink)| **sink == stmt.name && id.starts_with(prefix))
                .map(|(id, _)| id.clone());
            let id = match &replaced {
                Some(old) => old.clone(),
                None => format!("{prefix}_{}_{}", stmt.name, inner.next_query),
            };
            let sink = Sink {
                name: &stmt.name,
                kind: stmt.kind,
            };
            let (stages, plan) = self.plan_stages(&stmt.query, &inner.catalog, sink, &id, sql)?;
            let values = plan
                .output_columns()
                .iter()
                .filter(|c| c.role == eddy_sql::catalog::ColumnRole::Value)
                .count();
            let with = crate::ddl::with_defaults(&stmt.with, props, values, false);
            let sink = sink_from_plan(&stmt.name, stmt.kind, &with, &plan, sql)?;
            // A schema-registry format registers the sink's schema (or checks the one its
            // schema id names) now, so that a schema that does not fit fails the statement.
            if sink.key_format.uses_registry() || sink.value_format.uses_registry() {
                crate::reader::encoders(&sink)?;
            }
            if let Some(old) = &replaced {
                check_upgrade(&inner, old, &stages, &plan, &sink)?;
                inner.not_started.remove(old);
            }
            // The old query stops before the new one opens the stores they share.
            let old = replaced.as_ref().and_then(|old| inner.queries.remove(old));
            drop(inner);
            if let Some(old) = old {
                old.stop();
            }
            (stages, plan, sink, id, replaced)
        };
        let entry = self.start_persistent(&id, &stages, &plan, &sink, &stmt.with, sql, props)?;
        let mut inner = self.lock();
        self.register(&mut inner, &id, &sink, entry, plans(&stages, &plan));
        if replaced.is_none() {
            inner.next_query += 1;
        }
        // A table a query writes is materialised when a join or a pull query first reads
        // it: until then reading its topic back would double the query's work. A replaced
        // query's materialisation stops (its schema may have changed).
        if let Some(old) = inner.tables.remove(&sink.name) {
            old.handle.stop();
        }
        inner.catalog.insert(sink);
        Ok(StatementResult::Status {
            message: format!("Created query with ID {id}"),
            query_id: Some(id),
        })
    }

    fn insert_select(
        &self,
        target: &str,
        query: &eddy_sql::ast::KsqlQuery,
        sql: &str,
        props: &Properties,
    ) -> Result<StatementResult, EngineError> {
        let (stages, plan, sink, id) = {
            let inner = self.lock();
            let sink = inner
                .catalog
                .get(target)
                .cloned()
                .ok_or_else(|| EngineError::NotFound(format!("{target} does not exist.")))?;
            if sink.kind != SourceKind::Stream {
                return Err(EngineError::Invalid(format!(
                    "INSERT INTO can only be used to insert into a stream. {target} is a table."
                )));
            }
            if sink.is_source {
                return Err(EngineError::Invalid(format!(
                    "Cannot insert into read-only stream: {target}"
                )));
            }
            if sink.header_columns().next().is_some() {
                return Err(EngineError::Invalid(format!(
                    "Cannot insert into {target} because it has header columns"
                )));
            }
            let id = format!("INSERTQUERY_{}", inner.next_query);
            let into = Sink {
                name: target,
                kind: SourceKind::Stream,
            };
            let (stages, plan) = self.plan_stages(query, &inner.catalog, into, &id, sql)?;
            let result = plan.output_columns();
            if result != sink.columns {
                let render = |cols: &[eddy_sql::catalog::Column]| {
                    Source {
                        columns: cols.to_vec(),
                        ..sink.clone()
                    }
                    .schema_string()
                };
                return Err(EngineError::Invalid(format!(
                    "Incompatible schema between results and sink.\nResult schema is {}\nSink schema is {}",
                    render(&result),
                    sink.schema_string()
                )));
            }
            (stages, plan, sink, id)
        };
        let with = Default::default();
        let entry = self.start_persistent(&id, &stages, &plan, &sink, &with, sql, props)?;
        let mut inner = self.lock();
        self.register(&mut inner, &id, &sink, entry, plans(&stages, &plan));
        inner.next_query += 1;
        Ok(StatementResult::Status {
            message: format!("Created query with ID {id}"),
            query_id: Some(id),
        })
    }

    /// Plans `query` for persistent query `id` writing into `sink`: a query joining more
    /// than two sources as its first joins, each writing an intermediate (an internal
    /// topic of the query; keys in the format a two-source join's result would have,
    /// values in JSON, which carries every type), and the rest reading the last of them.
    fn plan_stages(
        &self,
        query: &eddy_sql::ast::KsqlQuery,
        catalog: &Catalog,
        sink: Sink<'_>,
        id: &str,
        sql: &str,
    ) -> Result<(Vec<Stage>, QueryPlan), EngineError> {
        let mut stages = Vec::new();
        let mut query = query.clone();
        let mut catalog = catalog.clone();
        while let Some(first) = eddy_sql::plan::first_join(&query, &catalog)? {
            let n = stages.len() + 1;
            let name = format!("KSQL_INTERNAL_JOIN_{n}");
            let plan = plan_query(
                &first.query,
                &catalog,
                Some(Sink {
                    name: &name,
                    kind: first.kind,
                }),
            )?;
            let mut with = eddy_sql::ast::WithProperties::default();
            let text = |v: &str| eddy_sql::ast::PropertyValue::String(v.to_string());
            let topic = format!(
                "{}Join-{n}",
                internal_topic_prefix(&self.config.service_id, id)
            );
            with.props.insert("KAFKA_TOPIC".into(), text(&topic));
            with.props.insert("VALUE_FORMAT".into(), text("JSON"));
            let intermediate = sink_from_plan(&name, first.kind, &with, &plan, sql)?;
            catalog.insert(intermediate.clone());
            query = eddy_sql::plan::rest_of_join(&query, &catalog, &intermediate)?;
            stages.push((plan, intermediate));
        }
        let plan = plan_query(&query, &catalog, Some(sink))?;
        // A table–table join reads both tables' materialised stores; an intermediate table
        // (the result of the joins before) has none, so such a chain is refused rather than
        // failing when it starts.
        let joins_tables = |p: &QueryPlan| {
            p.from.source.kind == SourceKind::Table
                && p.join
                    .as_ref()
                    .is_some_and(|j| j.table.source.kind == SourceKind::Table)
        };
        let chained = !stages.is_empty()
            && (joins_tables(&plan) || stages.iter().skip(1).any(|(p, _)| joins_tables(p)));
        if chained {
            return Err(EngineError::Sql(eddy_sql::SqlError::Unsupported(
                "joins of three or more tables".into(),
            )));
        }
        Ok((stages, plan))
    }

    /// Registers persistent query `id`, started (`Some`) or not started because a later
    /// command of the log being replayed terminates it (`None`).
    fn register(
        &self,
        inner: &mut Inner,
        id: &str,
        sink: &Source,
        entry: Option<QueryEntry>,
        plans: Arc<[QueryPlan]>,
    ) {
        inner.plans.insert(id.to_string(), plans);
        match entry {
            Some(entry) => {
                inner.queries.insert(id.to_string(), entry);
            }
            None => {
                inner.not_started.insert(id.to_string(), sink.name.clone());
            }
        }
    }

    /// Deletes what terminated query `id` leaves behind, as ksqlDB does: its internal
    /// topics (changelogs, repartition) and its local stores. The query is stopped
    /// whatever fails here, so failures are only logged.
    fn clean_up(&self, id: &str) {
        let admin = self.topics.admin();
        let prefix = internal_topic_prefix(&self.config.service_id, id);
        match admin.list_topics() {
            Ok(topics) => {
                for topic in topics.iter().filter(|t| t.name.starts_with(&prefix)) {
                    if let Err(e) = admin.delete_topic(&topic.name) {
                        tracing::warn!(query = id, topic = %topic.name,
                            "could not delete a terminated query's internal topic: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!(
                query = id,
                "could not list the topics to delete a terminated query's: {e}"
            ),
        }
        let stores = match self.state.store_names() {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(query = id, "could not list the stores: {e}");
                return;
            }
        };
        for store in QueryStore::ALL.map(|s| s.name(id)) {
            if stores.contains(&store)
                && let Err(e) = self.state.drop_store(&store)
            {
                tracing::warn!(
                    query = id,
                    store,
                    "could not drop a terminated query's store: {e}"
                );
            }
        }
    }

    /// Starts persistent query `id` writing into `sink` (creating the sink's topic if it
    /// is missing) and returns its entry for the caller to register; `None` while the
    /// command log replays and a later command terminates the query (replay creates its
    /// sink but does not start it). Holds no engine lock: the query's state may be
    /// restored from its changelogs first, and no other statement, `SHOW` or pull query
    /// waits for that. (Statements that change the catalog are serialised by the caller:
    /// the command log, or `eddy test`'s single thread.)
    #[allow(clippy::too_many_arguments)]
    fn start_persistent(
        &self,
        id: &str,
        stages: &[Stage],
        plan: &QueryPlan,
        sink: &Source,
        with: &eddy_sql::ast::WithProperties,
        sql: &str,
        props: &Properties,
    ) -> Result<Option<QueryEntry>, EngineError> {
        if self.replaying.load(std::sync::atomic::Ordering::SeqCst)
            && self
                .lock()
                .terminated_later
                .contains(&id.to_ascii_uppercase())
        {
            tracing::info!(query = id, "not started: a later command terminates it");
            return Ok(None);
        }
        // The sink has the partitions of the first input (an intermediate has them too).
        let first = stages.first().map_or(plan, |(first, _)| first);
        let input_topic = &first.from.source.topic;
        let mut with = with.clone();
        if crate::ddl::With(&with).int("PARTITIONS")?.is_none()
            && let Some(p) = self.topics.admin().partition_count(input_topic)?
        {
            with.props.insert(
                "PARTITIONS".into(),
                eddy_sql::ast::PropertyValue::Number(p.to_string()),
            );
        }
        // Every stage is known to build before anything is created.
        for (n, (stage, intermediate)) in stages.iter().enumerate() {
            self.check_builds(&stage_id(id, n), stage, intermediate, props)?;
        }
        self.check_builds(id, plan, sink, props)?;
        if self.topics.admin().partition_count(&sink.topic)?.is_none() {
            self.ensure_topic(sink, &with)?;
        }
        let mut started = Vec::new();
        for (n, (stage, intermediate)) in stages.iter().enumerate() {
            let admin = self.topics.admin();
            if admin.partition_count(&intermediate.topic)?.is_none() {
                let partitions = admin
                    .partition_count(&stage.from.source.topic)?
                    .unwrap_or(1);
                admin.create_topic(
                    &intermediate.topic,
                    partitions,
                    self.config.internal_replicas,
                )?;
            }
            let stage_id = stage_id(id, n);
            let handle = self.start_task(&stage_id, stage, intermediate, props)?;
            started.push((stage_id, handle));
        }
        let handle = self.start_task(id, plan, sink, props)?;
        let handle_paused = self.replaying.load(std::sync::atomic::Ordering::SeqCst)
            && self.lock().paused_later.contains(&id.to_ascii_uppercase());
        let mut sources = vec![first.from.source.name.clone()];
        for step in stages.iter().map(|(stage, _)| stage).chain([plan]) {
            if let Some(j) = &step.join {
                sources.push(j.table.source.name.clone());
            }
        }
        Ok(Some(QueryEntry {
            stages: started,
            summary: QuerySummary {
                id: id.to_string(),
                sql: sql.to_string(),
                sources,
                sink: sink.name.clone(),
                sink_topic: sink.topic.clone(),
                state: if handle_paused { PAUSED } else { RUNNING }.into(),
                last_error: None,
                query_type: QueryType::Persistent,
                lag: None,
                processing_errors: 0,
            },
            handle,
        }))
    }

    /// The consumer group of persistent query (or stage) `id`.
    fn query_group(&self, id: &str) -> String {
        format!("_eddy_{}_query_{id}", self.config.service_id)
    }

    /// Builds query `id` once against in-memory topics and state: what cannot run fails
    /// here, before anything exists on the broker.
    fn check_builds(
        &self,
        id: &str,
        plan: &QueryPlan,
        sink: &Source,
        props: &Properties,
    ) -> Result<(), EngineError> {
        let group = self.query_group(id);
        let tables = self.join_tables(plan)?;
        let dry = self.planner().dry_run();
        let output = topic_output(sink, dry.topics.sink(&sink.topic)?)?;
        let inputs = dry.open_inputs(plan, &group, props)?;
        dry.build(
            id,
            plan,
            &group,
            props,
            output,
            QueryLife::Push,
            &tables,
            inputs,
        )?;
        Ok(())
    }

    /// Starts the task of persistent query (or stage) `id` writing `sink`, built on its own
    /// thread, as its state may be restored first; its inputs are opened now, so that
    /// `latest` means now.
    fn start_task(
        &self,
        id: &str,
        plan: &QueryPlan,
        sink: &Source,
        props: &Properties,
    ) -> Result<TaskHandle, EngineError> {
        let group = self.query_group(id);
        let tables = self.join_tables(plan)?;
        let planner = self.planner();
        let mut inputs = Some(planner.open_inputs(plan, &group, props)?);
        let build = {
            let (id, plan, sink, props) =
                (id.to_string(), plan.clone(), sink.clone(), props.clone());
            move || {
                let inputs = match inputs.take() {
                    Some(inputs) => inputs,
                    // A build that failed took them: read on from the committed offsets.
                    None => planner.open_inputs(&plan, &group, &props)?,
                };
                let output = topic_output(&sink, planner.topics.sink(&sink.topic)?)?;
                let life = QueryLife::Persistent;
                planner.build(&id, &plan, &group, &props, output, life, &tables, inputs)
            }
        };
        let task = StartingTask::new(id, build);
        // Replay starts a query the log leaves paused (and its join stages) paused.
        let paused = self.replaying.load(std::sync::atomic::Ordering::SeqCst) && {
            let inner = self.lock();
            let upper = id.to_ascii_uppercase();
            let query = upper.rsplit_once("_JOIN_").map(|(query, _)| query);
            inner.paused_later.contains(&upper)
                || query.is_some_and(|q| inner.paused_later.contains(q))
        };
        Ok(runner::start_paused(
            id,
            Box::new(task),
            self.config.mode,
            paused,
        ))
    }

    fn drop_source(
        &self,
        kind: SourceKind,
        name: &str,
        if_exists: bool,
        delete_topic: bool,
    ) -> Result<StatementResult, EngineError> {
        let inner = self.lock();
        let Some(source) = inner.catalog.get(name).cloned() else {
            if if_exists {
                return Ok(StatementResult::Status {
                    message: format!("Source `{name}` does not exist."),
                    query_id: None,
                });
            }
            let kind = match kind {
                SourceKind::Stream => "Stream",
                SourceKind::Table => "Table",
            };
            return Err(EngineError::NotFound(format!(
                "{kind} {name} does not exist."
            )));
        };
        if source.kind != kind {
            let (want, is) = match kind {
                SourceKind::Stream => ("DROP STREAM", "table"),
                SourceKind::Table => ("DROP TABLE", "stream"),
            };
            return Err(EngineError::Invalid(format!(
                "Incompatible data source type is {}, but statement was {want}. {name} is a {is}.",
                is.to_ascii_uppercase()
            )));
        }
        if name == PROCESSING_LOG_STREAM {
            return Err(EngineError::Invalid(format!(
                "{name} is Eddy's processing log and cannot be dropped."
            )));
        }
        let readers: Vec<String> = inner
            .queries
            .values()
            .filter(|q| q.summary.sources.iter().any(|s| s == name))
            .map(|q| q.summary.id.clone())
            .collect();
        let writers: Vec<String> = inner
            .queries
            .values()
            .filter(|q| q.summary.sink == name)
            .map(|q| q.summary.id.clone())
            .collect();
        if !readers.is_empty() || !writers.is_empty() {
            let mut msg = format!("Cannot drop {name}.");
            if !readers.is_empty() {
                msg.push_str(&format!(
                    "\nThe following queries read from this source: [{}].",
                    readers.join(", ")
                ));
            }
            if !writers.is_empty() {
                msg.push_str(&format!(
                    "\nThe following queries write into this source: [{}].",
                    writers.join(", ")
                ));
            }
            msg.push_str(&format!(
                "\nYou need to terminate them before dropping {name}."
            ));
            return Err(EngineError::Invalid(msg));
        }
        // The broker and the table's store are dealt with without the lock (statements are
        // serialised by the caller, so the checks above still hold).
        drop(inner);
        // The table's materialisation stops before its topic goes: a consumer of a deleted
        // topic can crash librdkafka (seen on tansu). Should the deletion fail, the table
        // is materialised again when it is next read.
        let table = self.lock().tables.remove(name);
        let materialised = table.is_some();
        if let Some(t) = table {
            t.handle.stop();
        }
        if delete_topic {
            self.topics.admin().delete_topic(&source.topic)?;
        }
        if materialised {
            self.state.drop_store(&crate::table::store_name(name))?;
        }
        self.lock().catalog.remove(name);
        Ok(StatementResult::Status {
            message: format!("Source `{name}` (topic: {}) was dropped.", source.topic),
            query_id: None,
        })
    }

    /// `ALTER STREAM|TABLE … ADD COLUMN`: value columns appended to a stream or table
    /// declared over a topic (not one a query writes, nor a read-only `SOURCE`). Queries
    /// running on it keep the columns they were planned with; later statements see the new
    /// ones (absent from older records, so NULL there).
    fn alter(
        &self,
        kind: SourceKind,
        name: &str,
        columns: &[(String, eddy_sql::types::SqlType)],
    ) -> Result<StatementResult, EngineError> {
        let mut inner = self.lock();
        let Some(source) = inner.catalog.get(name).cloned() else {
            return Err(EngineError::NotFound(format!(
                "Source {name} does not exist."
            )));
        };
        let word = |k: SourceKind| match k {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        };
        if source.kind != kind {
            return Err(EngineError::Invalid(format!(
                "Incompatible data source type is {}, but statement was ALTER {}",
                word(source.kind),
                word(kind)
            )));
        }
        let created_by_query =
            eddy_sql::parse_with_types(&format!("{};", source.sql), &inner.types)
                .ok()
                .and_then(|s| s.into_iter().next())
                .is_some_and(|s| matches!(s.statement, Statement::CreateAsSelect(_)));
        if created_by_query {
            return Err(EngineError::Invalid(
                "ALTER command is not supported for CREATE ... AS SELECT statements.".into(),
            ));
        }
        if source.is_source || name == PROCESSING_LOG_STREAM {
            return Err(EngineError::Invalid(format!(
                "Cannot alter {name}: it is read-only."
            )));
        }
        let mut altered = source.clone();
        for (column, ty) in columns {
            if altered.column(column).is_some() {
                return Err(EngineError::Invalid(format!(
                    "Cannot add column `{column}` to schema. A column with the same name already exists."
                )));
            }
            altered.columns.push(eddy_sql::catalog::Column {
                name: column.clone(),
                ty: ty.clone(),
                role: eddy_sql::catalog::ColumnRole::Value,
            });
        }
        inner.catalog.insert(altered);
        Ok(StatementResult::Status {
            message: format!(
                "{} altered",
                match kind {
                    SourceKind::Stream => "Stream",
                    SourceKind::Table => "Table",
                }
            ),
            query_id: None,
        })
    }

    /// `ASSERT [NOT EXISTS] TOPIC`: waits up to `timeout` (else the server's
    /// `ksql.assert.topic.default.timeout.ms`, 1 s) for the topic to exist (with the
    /// `PARTITIONS` and `REPLICAS` asked) or not to.
    fn assert_topic(
        &self,
        topic: &str,
        exists: bool,
        with: &eddy_sql::ast::WithProperties,
        timeout: Option<Duration>,
    ) -> Result<StatementResult, EngineError> {
        let w = crate::ddl::With(with);
        let expected = [
            ("PARTITIONS", w.int("PARTITIONS")?),
            ("REPLICAS", w.int("REPLICAS")?),
        ];
        if let Some(other) = with
            .props
            .keys()
            .find(|k| !["PARTITIONS", "REPLICAS"].contains(&k.as_str()))
        {
            return Err(EngineError::AssertionFailed(format!(
                "Cannot assert unknown topic property: {other}"
            )));
        }
        let timeout = timeout.unwrap_or_else(|| {
            let ms = self
                .server_setting("ksql.assert.topic.default.timeout.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            Duration::from_millis(ms)
        });
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let found = self
                .topics
                .admin()
                .list_topics()?
                .into_iter()
                .find(|t| t.name == topic);
            let failure = match (&found, exists) {
                (None, true) => Some(format!("Topic {topic} does not exist.")),
                (Some(_), false) => Some(format!("Topic {topic} exists.")),
                (None, false) => None,
                (Some(t), true) => expected.iter().find_map(|(name, want)| {
                    let got = match *name {
                        "PARTITIONS" => i64::from(t.partitions),
                        _ => i64::from(t.replicas),
                    };
                    want.filter(|w| *w != got).map(|w| {
                        format!(
                            "Mismatched configuration for topic {topic}: For config {}, \
                             expected {w} got {got}",
                            name.to_ascii_lowercase()
                        )
                    })
                }),
            };
            match failure {
                None => {
                    return Ok(StatementResult::TopicAsserted {
                        topic: topic.to_string(),
                        exists,
                    });
                }
                Some(why) if std::time::Instant::now() >= deadline => {
                    return Err(EngineError::AssertionFailed(why));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// `PAUSE` (`paused`) or `RESUME` queries: their tasks stop or go on processing after
    /// their current batch; a paused query keeps its consumer group's offsets and its state.
    fn pause(
        &self,
        target: &TerminateTarget,
        paused: bool,
    ) -> Result<StatementResult, EngineError> {
        let mut inner = self.lock();
        let ids: Vec<String> = match target {
            TerminateTarget::All => inner.queries.keys().cloned().collect(),
            TerminateTarget::Query(id) => {
                let found = inner.queries.keys().find(|k| k.eq_ignore_ascii_case(id));
                match found {
                    Some(found) => vec![found.clone()],
                    None => return Err(EngineError::NotFound(format!("Unknown queryId: {id}"))),
                }
            }
        };
        for id in &ids {
            if let Some(q) = inner.queries.get_mut(id) {
                q.set_paused(paused);
            }
        }
        Ok(StatementResult::Status {
            message: if paused {
                "Query paused."
            } else {
                "Query resumed."
            }
            .into(),
            query_id: ids.first().cloned().filter(|_| ids.len() == 1),
        })
    }

    fn terminate(&self, target: &TerminateTarget) -> Result<StatementResult, EngineError> {
        let mut inner = self.lock();
        let ids: Vec<String> = match target {
            TerminateTarget::All => {
                inner.not_started.clear();
                inner.queries.keys().cloned().collect()
            }
            TerminateTarget::Query(id) => {
                let found = inner
                    .queries
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(id))
                    .cloned();
                let not_started = inner
                    .not_started
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(id))
                    .cloned();
                match (found, not_started) {
                    (Some(id), _) => vec![id],
                    // Replay did not start it.
                    (None, Some(id)) => {
                        inner.not_started.remove(&id);
                        vec![id]
                    }
                    (None, None) => {
                        return Err(EngineError::NotFound(format!("Unknown queryId: {id}")));
                    }
                }
            }
        };
        // The queries leave the registry under the lock; stopping them (each after its
        // current batch) and deleting what they leave behind happen without it.
        let removed: Vec<(String, Option<QueryEntry>)> = ids
            .iter()
            .map(|id| (id.clone(), inner.queries.remove(id)))
            .collect();
        for id in &ids {
            inner.plans.remove(id);
        }
        drop(inner);
        let replaying = self.replaying.load(std::sync::atomic::Ordering::SeqCst);
        for (id, entry) in removed {
            let mut stages = Vec::new();
            if let Some(q) = entry {
                stages = q.stages.iter().map(|(stage, _)| stage.clone()).collect();
                q.stop();
            }
            self.metrics.forget(&id);
            // Replay repeats a termination whose clean-up is done.
            if !replaying {
                self.clean_up(&id);
                for stage in &stages {
                    self.clean_up(stage);
                }
            }
        }
        Ok(StatementResult::Status {
            message: "Query terminated.".into(),
            query_id: ids.first().cloned().filter(|_| ids.len() == 1),
        })
    }

    fn show(&self, what: ShowWhat, extended: bool) -> Result<StatementResult, EngineError> {
        let inner = self.lock();
        let of_kind = |kind: SourceKind| -> Vec<SourceSummary> {
            inner
                .catalog
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| SourceSummary { source: s.clone() })
                .collect()
        };
        Ok(match what {
            ShowWhat::Streams => StatementResult::Streams(of_kind(SourceKind::Stream)),
            ShowWhat::Tables => StatementResult::Tables(of_kind(SourceKind::Table)),
            ShowWhat::Queries => {
                let summaries = self.summaries(&inner);
                drop(inner);
                StatementResult::Queries(self.with_progress(summaries))
            }
            ShowWhat::Topics { all } => {
                let mut topics = self.topics.admin().list_topics()?;
                if !all {
                    topics.retain(|t| !t.name.starts_with('_'));
                }
                if !extended {
                    return Ok(StatementResult::Topics(topics));
                }
                // Consumers and groups per topic, from the groups' current assignments.
                let groups = self.topics.admin().consumer_groups()?;
                let used = topics
                    .into_iter()
                    .map(|t| {
                        let reading = |m: &Vec<String>| m.contains(&t.name);
                        let consumers = groups
                            .iter()
                            .map(|g| g.members.iter().filter(|m| reading(m)).count())
                            .sum();
                        let consumer_groups = groups
                            .iter()
                            .filter(|g| g.members.iter().any(reading))
                            .count();
                        (t, consumers, consumer_groups)
                    })
                    .collect();
                StatementResult::TopicsExtended(used)
            }
            ShowWhat::Properties => {
                let mut list = vec![
                    (
                        "ksql.service.id".to_string(),
                        self.config.service_id.clone(),
                    ),
                    (
                        "ksql.streams.auto.offset.reset".into(),
                        match self.config.default_offset_reset {
                            StartFrom::Earliest => "earliest".into(),
                            StartFrom::Latest => "latest".into(),
                        },
                    ),
                ];
                for (key, value) in &self.config.server_properties {
                    if !list.iter().any(|(k, _)| k == key) {
                        list.push((key.clone(), value.clone()));
                    }
                }
                list.sort();
                StatementResult::Properties(list)
            }
            ShowWhat::Functions => StatementResult::Functions(function_list()),
            ShowWhat::Types => StatementResult::Types(
                inner
                    .types
                    .iter()
                    .map(|(n, t)| (n.clone(), t.clone()))
                    .collect(),
            ),
            ShowWhat::Variables => {
                return Err(EngineError::Invalid(
                    "SHOW VARIABLES lists a session's variables: the REST API and the shell \
                     answer it."
                        .into(),
                ));
            }
        })
    }

    fn summaries(&self, inner: &Inner) -> Vec<QuerySummary> {
        inner
            .queries
            .values()
            .map(|q| {
                let mut s = q.summary.clone();
                let health = q
                    .handle
                    .health
                    .lock()
                    .map(|h| h.clone())
                    .unwrap_or_default();
                if let Some(e) = health.last_error {
                    s.state = "ERROR".into();
                    s.last_error = Some(e);
                }
                s
            })
            .collect()
    }

    fn describe(&self, name: &str, extended: bool) -> Result<StatementResult, EngineError> {
        let inner = self.lock();
        let source = inner.catalog.get(name).cloned().ok_or_else(|| {
            EngineError::NotFound(format!(
                "Could not find STREAM/TABLE '{name}' in the Metastore"
            ))
        })?;
        let all = self.summaries(&inner);
        let topic = self
            .topics
            .admin()
            .list_topics()
            .ok()
            .and_then(|ts| ts.into_iter().find(|t| t.name == source.topic));
        let statistics = if extended {
            self.stats.describe(&source.topic)
        } else {
            Default::default()
        };
        drop(inner);
        let all = if extended {
            self.with_progress(all)
        } else {
            all
        };
        let write_queries: Vec<QuerySummary> =
            all.iter().filter(|q| q.sink == name).cloned().collect();
        let offsets = if extended {
            self.query_offsets(&write_queries)
        } else {
            Vec::new()
        };
        Ok(StatementResult::Description(Box::new(SourceDescription {
            read_queries: all
                .iter()
                .filter(|q| q.sources.iter().any(|s| s == name))
                .cloned()
                .collect(),
            write_queries,
            partitions: topic.as_ref().map(|t| t.partitions).unwrap_or(0),
            replicas: topic.as_ref().map(|t| t.replicas).unwrap_or(0),
            extended,
            statistics,
            offsets,
            source,
        })))
    }

    /// Where the consumers of `queries` stand in their inputs, for the partitions this
    /// server reads (the broker's offsets asked now; a topic it does not answer for is
    /// left out).
    fn query_offsets(&self, queries: &[QuerySummary]) -> Vec<QueryOffsets> {
        let admin = self.topics.admin();
        let positions = self.metrics.positions();
        queries
            .iter()
            .map(|q| QueryOffsets {
                group: format!("_eddy_{}_query_{}", self.config.service_id, q.id),
                topics: positions
                    .iter()
                    .filter(|(id, _, _)| *id == q.id)
                    .filter_map(|(_, topic, next)| {
                        let starts = admin.start_offsets(topic).ok()?;
                        let ends = admin.end_offsets(topic).ok()?;
                        let at = |list: &[eddy_topic::Position], p: i32| {
                            list.iter()
                                .find(|e| e.partition == p)
                                .map_or(0, |e| e.next_offset)
                        };
                        Some(TopicOffsets {
                            topic: topic.clone(),
                            partitions: next
                                .iter()
                                .map(|(&partition, &consumer)| PartitionOffsets {
                                    partition,
                                    start: at(&starts, partition),
                                    end: at(&ends, partition),
                                    consumer,
                                })
                                .collect(),
                        })
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Kafka's rules for topic names, checked before asking the broker (some brokers, like the
/// dev broker, accept names Kafka would refuse).
/// The id of stage `n` (from 0) of query `id`: its tasks, stores and consumer group.
fn stage_id(id: &str, n: usize) -> String {
    format!("{id}_JOIN_{}", n + 1)
}

fn check_topic_name(topic: &str) -> Result<(), EngineError> {
    let illegal = |why: &str| {
        Err(EngineError::Invalid(format!(
            "Topic name \"{topic}\" is illegal, {why}"
        )))
    };
    if topic.is_empty() {
        return illegal("it can't be empty");
    }
    if topic == "." || topic == ".." {
        return illegal("it can't be '.' or '..'");
    }
    if topic.len() > 249 {
        return illegal("it can't be longer than 249 characters");
    }
    if !topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return illegal("it contains a character other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

/// A persistent query's plans as kept for a later `CREATE OR REPLACE`: its join stages,
/// then its final plan.
fn plans(stages: &[Stage], plan: &QueryPlan) -> Arc<[QueryPlan]> {
    stages
        .iter()
        .map(|(stage, _)| stage.clone())
        .chain([plan.clone()])
        .collect()
}

/// Refuses a `CREATE OR REPLACE` of query `id` whose new plans would not read the same
/// records into the same state, or would write a different key, schema or topic.
fn check_upgrade(
    inner: &Inner,
    id: &str,
    stages: &[Stage],
    plan: &QueryPlan,
    sink: &Source,
) -> Result<(), EngineError> {
    let (Some(old), Some(old_sink)) = (inner.plans.get(id), inner.catalog.get(&sink.name)) else {
        return Ok(());
    };
    match eddy_sql::plan::upgrade_refusal(old, &plans(stages, plan), old_sink, sink) {
        None => Ok(()),
        Some(reason) => Err(EngineError::Invalid(format!(
            "Cannot replace query {id} in place: {reason}. A replacement keeps the query's \
             state and offsets, so only its WHERE filter, its HAVING and how its value \
             columns are computed may change, and new value columns may only follow the \
             existing ones. Terminate the query and drop {} to create it anew.",
            sink.name
        ))),
    }
}

/// Handles a CREATE of a name that exists: `IF NOT EXISTS` succeeds without change, `OR
/// REPLACE` of the same kind goes ahead (the caller replaces it), anything else is an error.
fn check_exists(
    catalog: &Catalog,
    name: &str,
    kind: SourceKind,
    if_not_exists: bool,
    or_replace: bool,
) -> Result<Option<StatementResult>, EngineError> {
    let Some(existing) = catalog.get(name) else {
        return Ok(None);
    };
    let what = match existing.kind {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    };
    if if_not_exists {
        return Ok(Some(StatementResult::Status {
            message: format!(
                "Cannot add {} '{name}': A {what} with the same name already exists",
                kind.to_string().to_ascii_lowercase()
            ),
            query_id: None,
        }));
    }
    if or_replace && existing.kind == kind {
        return Ok(None);
    }
    Err(EngineError::Invalid(format!(
        "Cannot add {} '{name}': A {what} with the same name already exists",
        kind.to_string().to_ascii_lowercase()
    )))
}

/// ksqlDB's refusal of `INSERT INTO x VALUES …` for a missing `x`, with a hint when a source
/// of the same name in other case exists (a name's case only counts when it is quoted).
fn unknown_insert_target(catalog: &Catalog, target: &str) -> String {
    let mut message = format!("Cannot insert values into an unknown stream/table: `{target}`");
    if let Some(similar) = catalog.iter().find(|s| s.name.eq_ignore_ascii_case(target)) {
        let name = &similar.name;
        if *name == name.to_uppercase() {
            message.push_str(&format!(
                "\nDid you mean {name}? Hint: try removing double quotes from the source name."
            ));
        } else {
            message.push_str(&format!(
                "\nDid you mean \"{name}\"? Hint: wrap the source name in double quotes to make it case-sensitive."
            ));
        }
    }
    message
}

/// `SHOW FUNCTIONS`: every function of ksqlDB's library that Eddy runs, as (name, type,
/// category), sorted by name.
fn function_list() -> Vec<FunctionListing> {
    use eddy_sql::plan::library::{
        AGGREGATE_FUNCTIONS, Category, SCALAR_FUNCTIONS, SYNTAX, TABLE_FUNCTIONS,
    };
    let f = eddy_sql::plan::Functions::get();
    let mut list: Vec<FunctionListing> = SCALAR_FUNCTIONS
        .iter()
        .filter(|(name, _)| {
            (SYNTAX.contains(name) && *name != "CAST")
                || f.scalar(name).is_some()
                || f.higher_order(name).is_some()
        })
        .map(|(name, category)| FunctionListing {
            name: (*name).to_string(),
            kind: "SCALAR".to_string(),
            category: category.name().to_string(),
        })
        .collect();
    let more = |names: &[&str], kind: &str, category: Category, known: &dyn Fn(&str) -> bool| {
        names
            .iter()
            .filter(|n| known(n))
            .map(|n| FunctionListing {
                name: (*n).to_string(),
                kind: kind.to_string(),
                category: category.name().to_string(),
            })
            .collect::<Vec<_>>()
    };
    list.extend(more(
        AGGREGATE_FUNCTIONS,
        "AGGREGATE",
        Category::Aggregate,
        &|n| f.aggregate(n).is_some(),
    ));
    list.extend(more(TABLE_FUNCTIONS, "TABLE", Category::Table, &|_| true));
    list.sort_by(|a, b| a.name.cmp(&b.name));
    list
}

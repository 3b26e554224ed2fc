//! The physical planner: turns a [`QueryPlan`] into a running [`QueryTask`] with its
//! sources, joins, repartition, aggregation state and output, one way for persistent and
//! push queries alike. They differ only in where state lives ([`QueryLife`]): a persistent
//! query keeps it in stores with changelogs (and repartitions a `GROUP BY` across
//! servers); a push query keeps it in memory for as long as it runs, and, being the only
//! reader of its consumer group, sees every partition of its input itself.
//!
//! A [`Planner`] holds only shared handles, so a persistent query is built on its own
//! thread ([`StartingTask`]): opening its stores may restore them from changelogs of
//! millions of records, which delays no statement, `SHOW` or pull query. Whether the plan
//! builds at all is checked before anything is created ([`Planner::dry_run`]), so a
//! statement that cannot run fails and changes nothing.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use eddy_sql::catalog::SourceKind;
use eddy_sql::plan::QueryPlan;
use eddy_sql::window::WindowSpec;
use eddy_state::{KeyValueStore, MemoryBackend, StateBackend};
use eddy_topic::{RecordSource, StartFrom, TopicIo};

use crate::aggregate::AggregateStage;
use crate::changelog::{Changelog, QueryStore, changelog_topic, open_with_changelog};
use crate::engine::{EngineConfig, Properties, TableHandles};
use crate::error::EngineError;
use crate::foreign_key_join::ForeignKeyJoin;
use crate::join_wiring::{JoinWiring, TwoSidedJoin};
use crate::memory::MemoryTopics;
use crate::metrics::EngineMetrics;
use crate::operator::stream_table_join::StreamTableJoin;
use crate::processing_log::ProcessingLog;
use crate::query::{Output, QueryTask};
use crate::repartition::{JoinedRows, Repartition, repartition_topic};
use crate::runner::{RunMode, Task};
use crate::stats::TopicStats;
use crate::stream_join::{MergedSource, StreamStreamJoin};
use crate::table_join::TableTableJoin;

/// Memory for each aggregation's groups, held in front of its store and persisted at
/// every changelog sync: beyond it, groups are persisted and read back as needed.
const AGGREGATE_STATE_BYTES: usize = 32 << 20;

/// Where a query's state lives, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryLife {
    /// A persistent query: state in stores with changelogs, rebuilt after a restart.
    Persistent,
    /// A push query: state in memory, gone with the query.
    Push,
}

/// Where a new query starts reading: `auto.offset.reset` in `props`, else `default`.
pub(crate) fn start_from(default: StartFrom, props: &Properties) -> Result<StartFrom, EngineError> {
    match props
        .get("auto.offset.reset")
        .map(|s| s.to_ascii_lowercase())
    {
        None => Ok(default),
        Some(s) if s == "earliest" => Ok(StartFrom::Earliest),
        Some(s) if s == "latest" => Ok(StartFrom::Latest),
        Some(other) => Err(EngineError::Invalid(format!(
            "Invalid value '{other}' for property auto.offset.reset: expected earliest or latest"
        ))),
    }
}

/// A query's input sources. A persistent query's are opened when its statement runs, so
/// that `latest` means the inputs' ends then, not once its state is restored.
pub(crate) struct Inputs {
    input: Box<dyn RecordSource>,
    /// The right side of a join whose right side's changes drive it too (stream–stream
    /// and table–table joins).
    right: Option<Box<dyn RecordSource>>,
}

/// The tables a query's join reads, materialised before it is built: the right-hand
/// table, and the left-hand one of a table–table join.
#[derive(Clone, Default)]
pub(crate) struct JoinTables {
    pub left: Option<TableHandles>,
    pub right: Option<TableHandles>,
}

impl JoinTables {
    fn get(side: &Option<TableHandles>) -> Result<TableHandles, EngineError> {
        side.clone()
            .ok_or_else(|| EngineError::Internal("a joined table was not materialised".into()))
    }
}

/// What building a query needs from the engine: shared handles, cheap to clone onto the
/// thread that builds a persistent query.
#[derive(Clone)]
pub(crate) struct Planner {
    pub topics: Arc<dyn TopicIo>,
    pub state: Arc<dyn StateBackend>,
    pub config: EngineConfig,
    pub log: Arc<ProcessingLog>,
    pub stats: Arc<TopicStats>,
    pub metrics: EngineMetrics,
}

impl Planner {
    /// This planner over in-memory topics and state: building with it touches neither the
    /// broker nor the disk, and fails where the real build would fail for the statement's
    /// sake (an expression that does not compile, a format that cannot encode).
    pub(crate) fn dry_run(&self) -> Planner {
        Planner {
            topics: Arc::new(MemoryTopics::new()),
            state: Arc::new(MemoryBackend::new()),
            ..self.clone()
        }
    }

    /// Opens `plan`'s input sources with consumer group `group`, starting where `props`
    /// says.
    pub(crate) fn open_inputs(
        &self,
        plan: &QueryPlan,
        group: &str,
        props: &Properties,
    ) -> Result<Inputs, EngineError> {
        let start = self.start_from(props)?;
        let input = self.topics.source(&plan.from.source.topic, group, start)?;
        let right_group = match &plan.join {
            // Every server reads every right change of a foreign-key join, and answers it
            // for the left rows of the partitions it owns.
            Some(j) if j.foreign_key => Some(format!("{group}_right_{}", self.config.instance_id)),
            Some(j) if j.within.is_some() || plan.from.source.kind == SourceKind::Table => {
                Some(format!("{group}_right"))
            }
            _ => None,
        };
        let right = match (&plan.join, right_group) {
            (Some(j), Some(right_group)) => Some(self.topics.source(
                &j.table.source.topic,
                &right_group,
                start,
            )?),
            _ => None,
        };
        Ok(Inputs { input, right })
    }

    /// Where a new query starts reading (see [`start_from`]).
    fn start_from(&self, props: &Properties) -> Result<StartFrom, EngineError> {
        start_from(self.config.default_offset_reset, props)
    }

    /// Query `id`'s store `store`, rebuilt from and written to its changelog.
    fn changelogged_store(
        &self,
        id: &str,
        store: QueryStore,
        held: Option<usize>,
    ) -> Result<(Arc<dyn KeyValueStore>, Changelog), EngineError> {
        let topic = changelog_topic(&self.config.service_id, id, store.topic_part());
        let name = store.name(id);
        let opened = open_with_changelog(
            self.state.as_ref(),
            &self.topics,
            &name,
            &topic,
            self.config.internal_replicas,
            held,
            Some(&self.metrics.restore_remaining(id, &name)),
        )?;
        if held.is_some() {
            self.metrics.track_held(id, &name, &opened.0);
        }
        Ok(opened)
    }

    /// The task that runs `plan` as query `id`, reading `inputs` (opened with consumer
    /// group `group`) and writing to `output`; `tables` are the joined tables.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        &self,
        id: &str,
        plan: &QueryPlan,
        group: &str,
        props: &Properties,
        output: Output,
        life: QueryLife,
        tables: &JoinTables,
        inputs: Inputs,
    ) -> Result<QueryTask, EngineError> {
        let mut join = self.wire_join(id, plan, life, tables, inputs.right)?;
        let source = join.source(inputs.input);
        let (source, repartition) = match life {
            QueryLife::Persistent => self.repartitioned(id, plan, group, source)?,
            QueryLife::Push => (source, None),
        };
        let task = QueryTask::new(
            id,
            plan,
            Arc::clone(&self.topics),
            source,
            join.lookup.take(),
            output,
            Arc::clone(&self.log),
            Arc::clone(&self.stats),
            self.config.max_batch_records,
        )?;
        let mut task = join.attach(task);
        if let Some(repartition) = repartition {
            task = task.with_repartition(repartition);
        }
        if plan.aggregate.is_some() {
            task = task.with_aggregate(self.aggregate_stage(id, plan, props, life)?);
        }
        if life == QueryLife::Persistent {
            task = task.with_meters(self.metrics.query(id));
        }
        Ok(task)
    }

    /// The aggregation of `plan`, with its state where `life` keeps it.
    fn aggregate_stage(
        &self,
        id: &str,
        plan: &QueryPlan,
        props: &Properties,
        life: QueryLife,
    ) -> Result<AggregateStage, EngineError> {
        let aggregate = plan
            .aggregate
            .as_ref()
            .ok_or_else(|| EngineError::Internal("no aggregation to build".into()))?;
        let mut stage = match life {
            QueryLife::Persistent => {
                // Session windows look their groups up by prefix, which a store held in
                // memory by hash would answer only by visiting every group.
                let held = match aggregate.window {
                    Some(WindowSpec::Session { .. }) => None,
                    _ => Some(AGGREGATE_STATE_BYTES),
                };
                let (store, changelog) =
                    self.changelogged_store(id, QueryStore::Aggregate, held)?;
                AggregateStage::new(plan, aggregate, store)?.with_changelog(changelog)
            }
            QueryLife::Push => {
                let store = MemoryBackend::new().open_store("aggregate")?;
                AggregateStage::new(plan, aggregate, store)?
            }
        }
        .with_properties(props);
        if plan.emit == Some(eddy_sql::ast::Emit::Final) {
            stage = stage.emit_final()?;
        }
        if plan.from.source.kind == SourceKind::Table {
            // An aggregation over a table takes a changed row's old version out of its
            // group: it keeps the rows.
            stage = match life {
                QueryLife::Persistent => {
                    let (rows, changelog) = self.changelogged_store(id, QueryStore::Rows, None)?;
                    stage.with_table_rows(rows, Some(changelog))
                }
                QueryLife::Push => {
                    let rows: Arc<dyn KeyValueStore> = MemoryBackend::new().open_store("rows")?;
                    stage.with_table_rows(rows, None)
                }
            };
        }
        Ok(stage)
    }

    /// Wires `plan`'s join for query `id` reading with consumer group `group`: the stage,
    /// and the right side's source where that side's changes drive the join. A persistent
    /// query keeps a stream–stream join's sides in stores with changelogs; a push query
    /// keeps them in memory.
    fn wire_join(
        &self,
        id: &str,
        plan: &QueryPlan,
        life: QueryLife,
        tables: &JoinTables,
        right: Option<Box<dyn RecordSource>>,
    ) -> Result<JoinWiring, EngineError> {
        let Some(j) = &plan.join else {
            return Ok(JoinWiring::default());
        };
        let from_right = Arc::new(AtomicBool::new(false));
        let mut right = right;
        let mut right_source = || -> Result<Box<dyn RecordSource>, EngineError> {
            right
                .take()
                .ok_or_else(|| EngineError::Internal("the join's right side is not open".into()))
        };
        if j.foreign_key {
            let (right, _, _) = JoinTables::get(&tables.right)?;
            let stage = match life {
                QueryLife::Persistent => {
                    let (index, changelog) =
                        self.changelogged_store(id, QueryStore::ForeignKeys, None)?;
                    ForeignKeyJoin::new(plan, right, index, Arc::clone(&from_right))?
                        .with_changelog(changelog)
                }
                QueryLife::Push => {
                    let index = MemoryBackend::new().open_store("foreign_keys")?;
                    ForeignKeyJoin::new(plan, right, index, Arc::clone(&from_right))?
                }
            };
            return Ok(JoinWiring::two_sided(
                TwoSidedJoin::Tables(Box::new(stage)),
                right_source()?,
                from_right,
            ));
        }
        if plan.from.source.kind == SourceKind::Table {
            let (left, _, _) = JoinTables::get(&tables.left)?;
            let (right, _, _) = JoinTables::get(&tables.right)?;
            let stage = TableTableJoin::new(plan, left, right, Arc::clone(&from_right))?;
            return Ok(JoinWiring::two_sided(
                TwoSidedJoin::Tables(Box::new(stage)),
                right_source()?,
                from_right,
            ));
        }
        if j.within.is_some() {
            let stage = match life {
                QueryLife::Persistent => {
                    let (left, left_changelog) =
                        self.changelogged_store(id, QueryStore::JoinLeft, None)?;
                    let (right, right_changelog) =
                        self.changelogged_store(id, QueryStore::JoinRight, None)?;
                    StreamStreamJoin::new(plan, left, right, Arc::clone(&from_right))?
                        .with_changelogs(left_changelog, right_changelog)
                }
                QueryLife::Push => {
                    let state = MemoryBackend::new();
                    let (left, right) = (state.open_store("left")?, state.open_store("right")?);
                    StreamStreamJoin::new(plan, left, right, Arc::clone(&from_right))?
                }
            };
            return Ok(JoinWiring::two_sided(
                TwoSidedJoin::Streams(Box::new(stage)),
                right_source()?,
                from_right,
            ));
        }
        let (store, progress, _) = JoinTables::get(&tables.right)?;
        let freshness_wait = match self.config.mode {
            RunMode::Threads => self.config.join_freshness_wait,
            RunMode::Synchronous => Duration::ZERO,
        };
        Ok(JoinWiring::lookup(StreamTableJoin::new(
            plan,
            store,
            progress,
            freshness_wait,
        )?))
    }

    /// A query's source with the repartition its `GROUP BY` needs, if any: when it groups
    /// by other than the key (see [`QueryPlan::groups_need_repartition`]) an input of
    /// several partitions, whose records of one group may be read by different servers.
    /// The query then reads its input (with a join's other side, if any: `input` is
    /// already merged) and the internal topic (from its start), merged.
    fn repartitioned(
        &self,
        id: &str,
        plan: &QueryPlan,
        group: &str,
        input: Box<dyn RecordSource>,
    ) -> Result<(Box<dyn RecordSource>, Option<Repartition>), EngineError> {
        let admin = self.topics.admin();
        let input_partitions = admin.partition_count(&plan.from.source.topic)?.unwrap_or(1);
        if !plan.groups_need_repartition() || input_partitions < 2 {
            return Ok((input, None));
        }
        let topic = repartition_topic(&self.config.service_id, id);
        let partitions = match admin.partition_count(&topic)? {
            Some(existing) => existing,
            None => {
                admin.create_topic(&topic, input_partitions, self.config.internal_replicas)?;
                input_partitions
            }
        };
        let internal =
            self.topics
                .source(&topic, &format!("{group}_repartition"), StartFrom::Earliest)?;
        let from_internal = Arc::new(AtomicBool::new(false));
        let sink = self.topics.sink(&topic)?;
        let source = MergedSource::new(input, internal, Arc::clone(&from_internal));
        let mut repartition = Repartition::new(topic, sink, partitions, from_internal);
        if plan.join.is_some() {
            repartition =
                repartition.with_joined_rows(JoinedRows::new(plan.input_schema.as_arrow())?);
        }
        Ok((Box::new(source), Some(repartition)))
    }
}

/// A persistent query while it is built on its own thread (its stores opened and restored
/// from their changelogs), then the query itself. A build that fails (e.g. the broker is
/// unreachable) is retried as a failed batch is.
pub(crate) struct StartingTask {
    name: String,
    build: Box<dyn FnMut() -> Result<QueryTask, EngineError> + Send>,
    running: Option<QueryTask>,
}

impl StartingTask {
    /// Query `name`, built by `build` on its first step.
    pub(crate) fn new(
        name: &str,
        build: impl FnMut() -> Result<QueryTask, EngineError> + Send + 'static,
    ) -> Self {
        Self {
            name: name.to_string(),
            build: Box::new(build),
            running: None,
        }
    }
}

impl Task for StartingTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn step(&mut self, wait: Duration) -> Result<usize, EngineError> {
        let task = match &mut self.running {
            Some(task) => task,
            None => {
                let started = std::time::Instant::now();
                let task = (self.build)()?;
                tracing::info!(query = %self.name, elapsed = ?started.elapsed(), "query built");
                self.running.insert(task)
            }
        };
        task.step(wait)
    }

    fn finished(&self) -> bool {
        self.running.as_ref().is_some_and(|t| t.finished())
    }

    fn close(&mut self) -> Result<(), EngineError> {
        match &mut self.running {
            Some(task) => task.close(),
            None => Ok(()),
        }
    }
}

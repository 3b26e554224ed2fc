//! The physical planner: turns a [`QueryPlan`] into a running [`QueryTask`] with its
//! sources, joins, repartition, aggregation state and output, one way for persistent and
//! push queries alike. They differ only in where state lives ([`QueryLife`]): a persistent
//! query keeps it in stores with changelogs (and repartitions a `GROUP BY` across
//! servers); a push query keeps it in memory for as long as it runs, and, being the only
//! reader of its consumer group, sees every partition of its input itself.
//!
//! Building a task may restore state from changelogs: callers hold no engine lock while
//! they call [`Engine::build_task`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use eddy_sql::catalog::SourceKind;
use eddy_sql::plan::QueryPlan;
use eddy_sql::window::WindowSpec;
use eddy_state::{KeyValueStore, MemoryBackend, StateBackend};
use eddy_topic::{RecordSource, StartFrom};

use crate::aggregate::AggregateStage;
use crate::changelog::QueryStore;
use crate::engine::{Engine, Properties};
use crate::error::EngineError;
use crate::join_wiring::{JoinWiring, TwoSidedJoin};
use crate::query::{JoinStage, Output, QueryTask};
use crate::repartition::{JoinedRows, Repartition, repartition_topic};
use crate::runner::RunMode;
use crate::stream_join::{MergedSource, StreamJoinStage};
use crate::table_join::TableJoinStage;

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

impl Engine {
    /// The task that runs `plan` as query `id`, reading with consumer group `group` from
    /// where `props` says and writing to `output`.
    pub(crate) fn build_task(
        &self,
        id: &str,
        plan: &QueryPlan,
        group: &str,
        props: &Properties,
        output: Output,
        life: QueryLife,
    ) -> Result<QueryTask, EngineError> {
        let mut join = self.wire_join(id, plan, group, props, life)?;
        let source = join.source(self.topics().source(
            &plan.from.source.topic,
            group,
            self.start_from(props)?,
        )?);
        let (source, repartition) = match life {
            QueryLife::Persistent => self.repartitioned(id, plan, group, source)?,
            QueryLife::Push => (source, None),
        };
        let task = QueryTask::new(
            id,
            plan,
            Arc::clone(self.topics()),
            source,
            join.lookup.take(),
            output,
            self.processing_log(),
            self.topic_stats(),
            self.config().max_batch_records,
        )?;
        let mut task = join.attach(task);
        if let Some(repartition) = repartition {
            task = task.with_repartition(repartition);
        }
        if plan.aggregate.is_some() {
            task = task.with_aggregate(self.aggregate_stage(id, plan, props, life)?);
        }
        if life == QueryLife::Persistent {
            task = task.with_meters(self.metrics().query(id));
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
        group: &str,
        props: &Properties,
        life: QueryLife,
    ) -> Result<JoinWiring, EngineError> {
        let Some(j) = &plan.join else {
            return Ok(JoinWiring::default());
        };
        let from_right = Arc::new(AtomicBool::new(false));
        let right_source = || -> Result<Box<dyn RecordSource>, EngineError> {
            Ok(self.topics().source(
                &j.table.source.topic,
                &format!("{group}_right"),
                self.start_from(props)?,
            )?)
        };
        if plan.from.source.kind == SourceKind::Table {
            let (left, _, _) = self.table_handles(&plan.from.source.name)?;
            let (right, _, _) = self.table_handles(&j.table.source.name)?;
            let stage = TableJoinStage::new(plan, left, right, Arc::clone(&from_right))?;
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
                    StreamJoinStage::new(plan, left, right, Arc::clone(&from_right))?
                        .with_changelogs(left_changelog, right_changelog)
                }
                QueryLife::Push => {
                    let state = MemoryBackend::new();
                    let (left, right) = (state.open_store("left")?, state.open_store("right")?);
                    StreamJoinStage::new(plan, left, right, Arc::clone(&from_right))?
                }
            };
            return Ok(JoinWiring::two_sided(
                TwoSidedJoin::Streams(Box::new(stage)),
                right_source()?,
                from_right,
            ));
        }
        let (store, progress, _) = self.table_handles(&j.table.source.name)?;
        let freshness_wait = match self.config().mode {
            RunMode::Threads => self.config().join_freshness_wait,
            RunMode::Synchronous => Duration::ZERO,
        };
        Ok(JoinWiring::lookup(JoinStage::new(
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
        let admin = self.topics().admin();
        let input_partitions = admin.partition_count(&plan.from.source.topic)?.unwrap_or(1);
        if !plan.groups_need_repartition() || input_partitions < 2 {
            return Ok((input, None));
        }
        let topic = repartition_topic(&self.config().service_id, id);
        let partitions = match admin.partition_count(&topic)? {
            Some(existing) => existing,
            None => {
                admin.create_topic(&topic, input_partitions, self.config().internal_replicas)?;
                input_partitions
            }
        };
        let internal =
            self.topics()
                .source(&topic, &format!("{group}_repartition"), StartFrom::Earliest)?;
        let from_internal = Arc::new(AtomicBool::new(false));
        let sink = self.topics().sink(&topic)?;
        let source = MergedSource::new(input, internal, Arc::clone(&from_internal));
        let mut repartition = Repartition::new(topic, sink, partitions, from_internal);
        if plan.join.is_some() {
            repartition =
                repartition.with_joined_rows(JoinedRows::new(plan.input_schema.as_arrow())?);
        }
        Ok((Box::new(source), Some(repartition)))
    }
}

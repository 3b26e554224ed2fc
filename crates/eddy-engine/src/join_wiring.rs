//! How a query's join is wired, shared by persistent and push queries: which stage joins
//! its batches, and the source that reads the right-hand side too when that side's changes
//! drive the join (stream–stream and table–table joins).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use eddy_topic::RecordSource;

use crate::operator::stream_table_join::StreamTableJoin;
use crate::query::QueryTask;
use crate::stream_join::{MergedSource, StreamStreamJoin};
use crate::table_join::TableJoin;

/// A join whose right-hand side is read by the query too.
pub(crate) enum TwoSidedJoin {
    /// Stream–stream (`WITHIN`): each side's records kept in a store.
    Streams(Box<StreamStreamJoin>),
    /// Table–table (on the key, or a foreign key): a change of either table looks up the
    /// other.
    Tables(Box<dyn TableJoin>),
}

/// A query's join, ready to be attached to its task.
#[derive(Default)]
pub(crate) struct JoinWiring {
    /// Stream–table: each stream batch looks its rows up in the table's store.
    pub lookup: Option<StreamTableJoin>,
    /// Stream–stream or table–table.
    pub two_sided: Option<TwoSidedJoin>,
    /// The right side's source of a two-sided join, and the flag that tells which side a
    /// batch came from.
    right: Option<(Box<dyn RecordSource>, Arc<AtomicBool>)>,
}

impl JoinWiring {
    /// A stream–table join, as [`StreamTableJoin::new`] built it.
    pub(crate) fn lookup(stage: Option<StreamTableJoin>) -> Self {
        Self {
            lookup: stage,
            ..Self::default()
        }
    }

    /// A join that reads `right` too; `from_right` is the flag its stage was built with.
    pub(crate) fn two_sided(
        join: TwoSidedJoin,
        right: Box<dyn RecordSource>,
        from_right: Arc<AtomicBool>,
    ) -> Self {
        Self {
            lookup: None,
            two_sided: Some(join),
            right: Some((right, from_right)),
        }
    }

    /// The source the task polls: `left` alone, or merged with the right side's topic.
    pub(crate) fn source(&mut self, left: Box<dyn RecordSource>) -> Box<dyn RecordSource> {
        match self.right.take() {
            Some((right, from_right)) => Box::new(MergedSource::new(left, right, from_right)),
            None => left,
        }
    }

    /// Attaches a stream–stream or table–table join stage to `task`.
    pub(crate) fn attach(self, task: QueryTask) -> QueryTask {
        match self.two_sided {
            Some(TwoSidedJoin::Streams(stage)) => task.with_stream_join(*stage),
            Some(TwoSidedJoin::Tables(stage)) => task.with_table_join(stage),
            None => task,
        }
    }
}

//! The operator model: a query is a chain of operators between its source and its sink.
//!
//! A batch of [`Changes`] arrives at an operator on a numbered input [`Port`] (port 0 for
//! the driving input; a join's other side arrives on port 1), is turned into the changes it
//! causes, and leaves for the next operator. Changes are explicit: each row is a new version
//! of its key or, where [`Changes::deleted`] says so, the key's deletion (a tombstone); each
//! row knows the record of the polled batch it derives from ([`Changes::origins`]), which
//! gives its output headers and names the record when the row goes to the processing log.
//!
//! The task that runs the chain keeps Eddy's delivery protocol: it polls one batch, runs it
//! through the operators, delivers the outputs, and commits the input offsets only after the
//! sink and the changelogs have acknowledged everything derived from them. An operator with
//! state writes it through on [`Operator::flush`] (before the commit) and brings it up to
//! date from its changelogs on [`Operator::catch_up`] (when partitions move to this server).
//!
//! The operators so far: [`filter::Filter`], [`stream_table_join::StreamTableJoin`],
//! [`crate::stream_join::StreamStreamJoin`], [`crate::table_join::TableTableJoin`] and
//! [`crate::foreign_key_join::ForeignKeyJoin`]. The aggregation, the repartition, the
//! projection and `EXPLODE` are still stages of `QueryTask` and move here one at a time.

pub(crate) mod filter;
pub(crate) mod stream_table_join;

use arrow::array::BooleanArray;
use arrow::compute::filter_record_batch;
use arrow::record_batch::RecordBatch;
use eddy_topic::{RawBatch, TopicIo};

use crate::error::EngineError;
use crate::eval::{RowError, filter_bool};

/// The input an operator's batch arrives on: 0 for the driving input, 1 for a join's other
/// side.
pub(crate) type Port = usize;

/// A batch of changes flowing between operators.
#[derive(Debug, Clone)]
pub(crate) struct Changes {
    /// The rows: for a stream, its records; for a table, the new versions of their keys.
    pub batch: RecordBatch,
    /// Which rows delete their key (a tombstone) rather than give it a new version.
    pub deleted: BooleanArray,
    /// For each row, the index in the polled batch of the record it derives from.
    pub origins: Vec<usize>,
}

impl Changes {
    /// Rows none of which is a deletion, each derived from the record at `origins`.
    pub(crate) fn rows(batch: RecordBatch, origins: Vec<usize>) -> Self {
        let deleted = BooleanArray::from(vec![false; batch.num_rows()]);
        Self {
            batch,
            deleted,
            origins,
        }
    }

    /// Keeps the rows `mask` is true for.
    pub(crate) fn keep(self, mask: &BooleanArray) -> Result<Self, EngineError> {
        Ok(Self {
            batch: filter_record_batch(&self.batch, mask)?,
            deleted: filter_bool(&self.deleted, mask)?,
            origins: self
                .origins
                .iter()
                .zip(mask.iter())
                .filter(|(_, keep)| *keep == Some(true))
                .map(|(o, _)| *o)
                .collect(),
        })
    }
}

/// What an operator may use besides its input while it processes a batch.
pub(crate) struct Context<'a> {
    /// The polled batch the changes derive from (their keys, headers and offsets).
    pub raw: &'a RawBatch,
    /// The topics, for operators that must know how far another input has got.
    pub topics: &'a dyn TopicIo,
    /// The partitions of the driving input this server reads, where the source can say
    /// (asked for only on a batch of port 1, where a join needs it).
    pub driving_partitions: Option<Vec<i32>>,
    /// Rows whose expressions failed, by row of the operator's *input*: the task sends them
    /// to the processing log after each operator, naming each row's record.
    pub errors: Vec<RowError>,
}

/// One step of a query: a filter, a join, an aggregation, ….
pub(crate) trait Operator: Send {
    /// Turns a batch of changes that arrived on `port` into the changes it causes.
    fn process(
        &mut self,
        port: Port,
        input: Changes,
        context: &mut Context<'_>,
    ) -> Result<Changes, EngineError>;

    /// Writes held state through to its stores and changelogs; called before the task
    /// commits the input offsets the state includes.
    fn flush(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Brings the state up to date with its changelogs, after partitions moved to this
    /// server.
    fn catch_up(&mut self) -> Result<(), EngineError> {
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Arc, LazyLock};

    use eddy_sql::ast::Statement;
    use eddy_sql::catalog::{Catalog, Column, ColumnRole, Source, SourceKind};
    use eddy_sql::plan::QueryPlan;
    use eddy_sql::types::SqlType;
    use eddy_state::KeyValueStore;
    use eddy_topic::Payloads;

    use super::*;
    use crate::memory::MemoryTopics;
    use crate::table::stored_row;

    static TOPICS: LazyLock<MemoryTopics> = LazyLock::new(MemoryTopics::new);

    /// A context over `raw` and in-memory topics, for driving operators in tests.
    pub(crate) fn context(raw: &RawBatch) -> Context<'_> {
        Context {
            raw,
            topics: &*TOPICS,
            driving_partitions: None,
            errors: Vec::new(),
        }
    }

    /// A source with a KAFKA key and JSON values; columns are (name, type, is key).
    pub(crate) fn source(
        name: &str,
        kind: SourceKind,
        columns: &[(&str, SqlType, bool)],
    ) -> Source {
        let columns = columns
            .iter()
            .map(|(n, ty, key)| Column {
                name: (*n).into(),
                ty: ty.clone(),
                role: if *key {
                    ColumnRole::Key
                } else {
                    ColumnRole::Value
                },
            })
            .collect();
        Source::new(name, kind, &name.to_lowercase(), columns)
    }

    /// The plan of push query `sql` over `sources`.
    pub(crate) fn plan(sql: &str, sources: Vec<Source>) -> Result<QueryPlan, EngineError> {
        let mut catalog = Catalog::new();
        for s in sources {
            catalog.insert(s);
        }
        let Statement::Query(query) = eddy_sql::parse(sql)?.remove(0).statement else {
            return Err(EngineError::Internal(format!("not a query: {sql}")));
        };
        Ok(eddy_sql::plan::plan_query(&query, &catalog, None)?)
    }

    /// Stores a table row as a materialisation does: INT key `key`, JSON value `value`.
    pub(crate) fn store_row(
        store: &Arc<dyn KeyValueStore>,
        key: i32,
        value: &str,
    ) -> Result<(), EngineError> {
        let (mut keys, mut rows) = (Payloads::new(), Payloads::new());
        let mut row = Vec::new();
        stored_row::write(&mut row, 1, &[], value.as_bytes());
        keys.push(Some(&key.to_be_bytes()));
        rows.push(Some(&row));
        Ok(store.write(&keys, &rows)?)
    }
}

//! `EXPLAIN <statement>`: a query planned as it would run, without running it: its output
//! columns, the sources it reads and the sink it would write.

use eddy_sql::ast::Statement;
use eddy_sql::catalog::{Column, ColumnRole, SourceKind};
use eddy_sql::plan::{QueryPlan, Sink, plan_query};

use crate::ddl::sink_from_plan;
use crate::engine::Engine;
use crate::error::EngineError;

/// A statement's query, planned.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The output's columns (key columns marked as such for a persistent query's sink).
    pub columns: Vec<Column>,
    /// The streams and tables it reads.
    pub sources: Vec<String>,
    /// Their topics.
    pub source_topics: Vec<String>,
    /// The stream or table it writes and its topic, for `CREATE … AS SELECT` and `INSERT
    /// INTO … SELECT`.
    pub sink: Option<(String, String)>,
    /// `PERSISTENT`, `PUSH` or `PULL`.
    pub query_type: &'static str,
}

impl Engine {
    /// Plans the query of `statement` (`SELECT`, `CREATE … AS SELECT` or `INSERT INTO …
    /// SELECT`) without running anything.
    pub fn explain(&self, statement: &Statement, sql: &str) -> Result<Explanation, EngineError> {
        let catalog = self.catalog();
        let (plan, sink) = match statement {
            Statement::Query(q) => (plan_query(q, &catalog, None)?, None),
            Statement::CreateAsSelect(c) => {
                let plan = plan_query(
                    &c.query,
                    &catalog,
                    Some(Sink {
                        name: &c.name,
                        kind: c.kind,
                    }),
                )?;
                let sink = sink_from_plan(&c.name, c.kind, &c.with, &plan, sql)?;
                (plan, Some(sink))
            }
            Statement::InsertSelect { target, query } => {
                let sink = catalog
                    .get(target)
                    .cloned()
                    .ok_or_else(|| EngineError::NotFound(format!("{target} does not exist.")))?;
                let plan = plan_query(
                    query,
                    &catalog,
                    Some(Sink {
                        name: target,
                        kind: SourceKind::Stream,
                    }),
                )?;
                (plan, Some(sink))
            }
            _ => {
                return Err(EngineError::Invalid(
                    "EXPLAIN explains a query: SELECT, CREATE … AS SELECT, INSERT INTO … SELECT, \
                     or a running query's id."
                        .into(),
                ));
            }
        };
        let query_type = match (statement, &plan.emit) {
            (Statement::Query(_), None) => "PULL",
            (Statement::Query(_), Some(_)) => "PUSH",
            _ => "PERSISTENT",
        };
        let columns = match &sink {
            Some(s) => s.columns.clone(),
            None => output_columns(&plan),
        };
        let mut sources = vec![plan.from.source.name.clone()];
        let mut source_topics = vec![plan.from.source.topic.clone()];
        if let Some(j) = &plan.join {
            sources.push(j.table.source.name.clone());
            source_topics.push(j.table.source.topic.clone());
        }
        Ok(Explanation {
            columns,
            sources,
            source_topics,
            sink: sink.map(|s| (s.name, s.topic)),
            query_type,
        })
    }
}

/// A transient query's columns, as it would answer them.
fn output_columns(plan: &QueryPlan) -> Vec<Column> {
    plan.columns
        .iter()
        .map(|c| Column {
            name: c.name.clone(),
            ty: c.ty.clone(),
            role: ColumnRole::Value,
        })
        .collect()
}

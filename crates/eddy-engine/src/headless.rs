//! Headless mode (ksqlDB's `ksql.queries.file`): a server that runs the statements of a
//! SQL file at every start instead of a command log.
//!
//! The file is run as a replay: its statements in order, topics that exist already taken
//! as they are, and the same statements giving the same query ids, so a restarted server
//! resumes each query from its committed offsets and changelogs. What a queries file may
//! hold is what ksqlDB's headless mode runs: sources, persistent queries, `INSERT INTO …
//! SELECT`, and `SET`/`UNSET` for the statements after them. `INSERT … VALUES` would write
//! its rows again at every start, and listings or transient queries have no one to answer,
//! so they are refused like `DROP` and `TERMINATE`.

use eddy_sql::ast::Statement;

use crate::command_log::ReplayFlag;
use crate::{Engine, EngineError, Properties};

impl Engine {
    /// Runs a queries file; stops at the first statement that fails or that a queries
    /// file may not hold, with its line. Returns how many statements ran.
    pub fn run_queries_file(&self, text: &str) -> Result<usize, EngineError> {
        let statements = eddy_sql::parse_with_types(text, &self.types())
            .map_err(|e| EngineError::Invalid(format!("the queries file does not parse: {e}")))?;
        self.replaying
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _done = ReplayFlag(&self.replaying);
        let mut props = Properties::new();
        let mut ran = 0;
        for stmt in &statements {
            let at = |e: &dyn std::fmt::Display| {
                EngineError::Invalid(format!(
                    "queries file, line {}: {}: {e}",
                    stmt.line, stmt.text
                ))
            };
            match &stmt.statement {
                Statement::Set { name, value } => {
                    props.insert(name.clone(), value.clone());
                    continue;
                }
                Statement::Unset { name } => {
                    props.remove(name);
                    continue;
                }
                Statement::CreateSource(_)
                | Statement::CreateAsSelect(_)
                | Statement::InsertSelect { .. } => {}
                _ => {
                    return Err(at(
                        &"a queries file holds only CREATE, CREATE … AS SELECT, \
                                    INSERT INTO … SELECT, SET and UNSET statements",
                    ));
                }
            }
            self.execute(stmt, &props).map_err(|e| at(&e))?;
            ran += 1;
        }
        Ok(ran)
    }
}

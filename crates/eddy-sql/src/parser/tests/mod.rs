//! Parser tests: statements, queries, errors.

mod errors;
mod queries;
mod statements;

use crate::ast::{KsqlQuery, Statement};
use crate::error::SqlError;
use crate::parse;

/// The single statement in `sql`.
fn parse_one(sql: &str) -> Statement {
    match parse(sql) {
        Ok(mut statements) if statements.len() == 1 => statements.remove(0).statement,
        other => panic!("expected one statement from {sql:?}, got {other:?}"),
    }
}

/// The error `sql` fails with.
fn parse_err(sql: &str) -> SqlError {
    match parse(sql) {
        Err(e) => e,
        Ok(statements) => panic!("expected {sql:?} to fail, got {statements:?}"),
    }
}

/// The message, line and column of the syntax error `sql` fails with.
fn syntax_err(sql: &str) -> (String, u64, u64) {
    match parse_err(sql) {
        SqlError::Parse { message, location } => (message, location.line, location.column),
        other => panic!("expected a parse error from {sql:?}, got {other:?}"),
    }
}

/// The query `sql` is.
fn query(sql: &str) -> KsqlQuery {
    match parse_one(sql) {
        Statement::Query(q) => q,
        other => panic!("expected a query from {sql:?}, got {other:?}"),
    }
}

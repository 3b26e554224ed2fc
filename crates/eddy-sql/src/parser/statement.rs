//! Dispatch on a statement's first keyword.

use datafusion_sql::sqlparser::tokenizer::Token;

use super::admin::{
    parse_assert, parse_define, parse_describe, parse_explain, parse_pause, parse_print,
    parse_resume, parse_set, parse_show, parse_terminate, parse_undefine, parse_unset,
};
use super::cursor::{Cursor, syntax_error};
use super::ddl::{parse_alter, parse_create, parse_drop, parse_insert};
use super::query::parse_query;
use crate::ast::Statement;
use crate::error::SqlError;

/// ksqlDB statements Eddy does not run.
const UNSUPPORTED: &[&str] = &[];

/// Parses one statement: the whole of the cursor's tokens.
pub(crate) fn parse_statement(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    if c.peek_keyword("SELECT") {
        return Ok(Statement::Query(parse_query(c)?));
    }
    let keyword = match c.next_token().map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.clone(),
        _ => {
            c.seek(c.position().saturating_sub(1));
            return Err(unknown_statement(c));
        }
    };
    match keyword.as_str() {
        "CREATE" => parse_create(c),
        "INSERT" => parse_insert(c),
        "DROP" => parse_drop(c),
        "ALTER" => parse_alter(c),
        "TERMINATE" => parse_terminate(c),
        "PAUSE" => parse_pause(c),
        "RESUME" => parse_resume(c),
        "SHOW" | "LIST" => parse_show(c, &keyword),
        "DESCRIBE" => parse_describe(c),
        "EXPLAIN" => parse_explain(c),
        "PRINT" => parse_print(c),
        "SET" => parse_set(c),
        "UNSET" => parse_unset(c),
        "DEFINE" => parse_define(c),
        "UNDEFINE" => parse_undefine(c),
        "ASSERT" => parse_assert(c),
        kw if UNSUPPORTED.contains(&kw) => Err(SqlError::Unsupported(kw.to_string())),
        _ => {
            c.seek(c.position().saturating_sub(1));
            Err(unknown_statement(c))
        }
    }
}

/// ksqlDB's error for a statement that starts with no known keyword.
fn unknown_statement(c: &Cursor<'_>) -> SqlError {
    syntax_error(c.location(), format!("Unknown statement '{}'", c.found()))
}

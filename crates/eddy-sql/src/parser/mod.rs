//! The KSQL parser: text in, typed [`Statement`](crate::ast::Statement)s out.
//!
//! sqlparser's tokenizer reads the text (with the KSQL dialect in `dialect.rs`); the tokens are
//! split into statements on `;` and normalised the way ksqlDB reads identifiers (`lexer.rs`),
//! and KSQL-only expression syntax is rewritten into forms DataFusion plans (`rewrite.rs`). A
//! small recursive-descent parser handles KSQL's own statements and types; the standard part of
//! each query goes to sqlparser's parser after the KSQL-only clauses have been taken out of the
//! token stream (`query.rs`).
//!
//! Every syntax error is a [`SqlError::Parse`] whose location is a line and column in the whole
//! submitted text, and no input makes the parser panic.

mod admin;
mod cursor;
mod ddl;
mod dialect;
mod lexer;
mod query;
mod rewrite;
mod statement;
mod types;

#[cfg(test)]
mod tests;

use datafusion_sql::sqlparser::ast::Expr;
use datafusion_sql::sqlparser::tokenizer::{Location as TokenLocation, TokenWithSpan};

use crate::ast::ParsedStatement;
use crate::error::SqlError;
use crate::types::SqlType;
use cursor::{Cursor, run_sqlparser};
use lexer::Source;

/// Parses `sql`: any number of statements, each ended by `;` (the last one may omit it).
///
/// Comments and empty statements are skipped. Each [`ParsedStatement`] carries its own text
/// (trimmed, without the `;`) and the line it starts on.
///
/// # Errors
///
/// [`SqlError::Parse`] for syntax errors, located in the whole of `sql`;
/// [`SqlError::Unsupported`] for ksqlDB statements Eddy does not run (`CREATE CONNECTOR`, …);
/// [`SqlError::Invalid`] for statements that are well-formed but contradictory.
pub fn parse(sql: &str) -> Result<Vec<ParsedStatement>, SqlError> {
    parse_with_types(sql, &std::collections::BTreeMap::new())
}

/// [`parse`] with the types `CREATE TYPE` named before (`types`: name → type); a `CREATE
/// TYPE` or `DROP TYPE` in `sql` changes them for the statements after it.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_with_types(
    sql: &str,
    types: &std::collections::BTreeMap<String, SqlType>,
) -> Result<Vec<ParsedStatement>, SqlError> {
    let types = types.clone();
    with_parser_stack(move || {
        types::set_custom_types(types);
        parse_statements(sql)
    })
}

fn parse_statements(sql: &str) -> Result<Vec<ParsedStatement>, SqlError> {
    let source = Source::new(sql);
    let mut statements = Vec::new();
    for raw in lexer::split_statements(lexer::tokenize(&source)?) {
        let (Some(first), Some(last)) = (raw.first(), raw.last()) else {
            continue;
        };
        let (start, end) = (first.span.start, last.span.end);
        let tokens = prepare(raw, &source)?;
        let mut cursor = Cursor::new(&tokens, end, &source);
        let statement = statement::parse_statement(&mut cursor)?;
        match &statement {
            crate::ast::Statement::CreateType { name, ty, .. } => {
                types::define_custom_type(name, Some(ty));
            }
            crate::ast::Statement::DropType { name, .. } => types::define_custom_type(name, None),
            _ => {}
        }
        statements.push(ParsedStatement {
            text: source.between(start, end).to_string(),
            line: start.line,
            statement,
        });
    }
    Ok(statements)
}

/// Parses a column type as written in KSQL, e.g. ``ARRAY<STRUCT<a INT, `b` STRING>>``.
///
/// Useful for schema strings outside statements (e.g. `DESCRIBE` output read back, or tests).
///
/// # Errors
///
/// [`SqlError::Parse`] when `text` is not exactly one type.
pub fn parse_data_type(text: &str) -> Result<SqlType, SqlError> {
    with_parser_stack(|| {
        let source = Source::new(text);
        let tokens = prepare(lexer::tokenize(&source)?, &source)?;
        let mut cursor = Cursor::new(&tokens, end_of(&tokens), &source);
        let ty = types::parse_type(&mut cursor)?;
        cursor.expect_end()?;
        Ok(ty)
    })
}

/// Parses one expression with KSQL's rules (upper-cased identifiers, `a->b` struct access,
/// ksqlDB type names in `CAST`), as it appears in a query.
///
/// # Errors
///
/// [`SqlError::Parse`] when `text` is not exactly one expression.
pub fn parse_expr(text: &str) -> Result<Expr, SqlError> {
    with_parser_stack(|| {
        let source = Source::new(text);
        let tokens = prepare(lexer::tokenize(&source)?, &source)?;
        run_sqlparser(
            &source,
            &tokens,
            end_of(&tokens),
            "end of expression",
            |p| p.parse_expr(),
        )
    })
}

/// Stack for parsing: sqlparser's recursive descent takes tens of KiB per nesting level in
/// debug builds, more than a default 2 MiB thread stack holds at its recursion limit.
const PARSER_STACK_SIZE: usize = 32 * 1024 * 1024;

/// Runs `parse` on a thread with [`PARSER_STACK_SIZE`] of stack.
fn with_parser_stack<T: Send>(
    parse: impl FnOnce() -> Result<T, SqlError> + Send,
) -> Result<T, SqlError> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("eddy-sql-parser".to_string())
            .stack_size(PARSER_STACK_SIZE)
            .spawn_scoped(scope, parse)
            .map_err(|e| SqlError::Invalid(format!("cannot start the SQL parser: {e}")))?
            .join()
            .unwrap_or_else(|_| {
                Err(SqlError::Invalid(
                    "the SQL parser failed on this statement".to_string(),
                ))
            })
    })
}

/// Normalises a statement's tokens and rewrites KSQL-only expression syntax.
fn prepare(
    tokens: Vec<TokenWithSpan>,
    source: &Source<'_>,
) -> Result<Vec<TokenWithSpan>, SqlError> {
    let mut tokens = lexer::normalise(tokens);
    lexer::check_numeric_literals(&tokens)?;
    // Before the rewrites, which produce special forms (`MAP {…}`, types) of their own.
    dialect::demote_keywords(&mut tokens);
    rewrite::rewrite_expressions(tokens, source)
}

/// The location just after the last token.
fn end_of(tokens: &[TokenWithSpan]) -> TokenLocation {
    tokens
        .last()
        .map_or(TokenLocation::new(1, 1), |t| t.span.end)
}

//! `CREATE STREAM|TABLE`, `CREATE … AS SELECT`, `INSERT INTO`, `DROP`.

use std::collections::HashSet;

use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::Token;

use super::cursor::{Cursor, syntax_error};
use super::lexer::matching_paren;
use super::query::parse_query;
use super::types::parse_type;
use crate::ast::{
    CreateAsSelect, CreateSource, PropertyValue, Statement, TableElement, WithProperties,
};
use crate::catalog::SourceKind;
use crate::error::SqlError;

/// Why ksqlDB distinguishes `KEY` from `PRIMARY KEY`, appended to the mismatch errors.
const KEY_EXPLANATION: &str = "Tables have PRIMARY KEYs, which are unique and NON NULL.\n\
                               Streams have KEYs, which have no uniqueness or NON NULL constraints.";

/// `CREATE …`, after the `CREATE` keyword.
pub(crate) fn parse_create(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    if c.eat_keyword("TYPE") {
        let if_not_exists = c.eat_keywords(&["IF", "NOT", "EXISTS"]);
        let name = c.identifier("a type name")?;
        c.expect_keyword("AS")?;
        let ty = super::types::parse_type(c)?;
        c.expect_end()?;
        return Ok(Statement::CreateType {
            name,
            ty,
            if_not_exists,
        });
    }
    let or_replace = c.eat_keywords(&["OR", "REPLACE"]);
    let is_source = c.eat_keyword("SOURCE");
    let kind = if c.eat_keyword("STREAM") {
        SourceKind::Stream
    } else if c.eat_keyword("TABLE") {
        SourceKind::Table
    } else {
        return Err(unsupported_or_expected(
            c,
            if is_source { "CREATE SOURCE" } else { "CREATE" },
            &["CONNECTOR", "FUNCTION", "SINK"],
            "{'STREAM', 'TABLE'}",
        ));
    };
    let if_not_exists = c.eat_keywords(&["IF", "NOT", "EXISTS"]);
    if or_replace && if_not_exists {
        return Err(SqlError::Invalid(
            "Cannot specify both OR REPLACE and IF NOT EXISTS.".to_string(),
        ));
    }
    let name = c.identifier("a stream or table name")?;
    let elements = if c.peek_is(&Token::LParen) {
        Some(parse_elements(c, kind)?)
    } else {
        None
    };
    let with = if c.eat_keyword("WITH") {
        parse_with(c)?
    } else {
        WithProperties::default()
    };
    if elements.is_none() && !is_source && c.eat_keyword("AS") {
        let query = parse_query(c)?;
        return Ok(Statement::CreateAsSelect(CreateAsSelect {
            kind,
            name,
            or_replace,
            if_not_exists,
            with,
            query,
        }));
    }
    c.expect_end()?;
    Ok(Statement::CreateSource(CreateSource {
        kind,
        name,
        or_replace,
        if_not_exists,
        is_source,
        elements: elements.unwrap_or_default(),
        with,
    }))
}

/// `(name type [KEY | PRIMARY KEY], …)`.
fn parse_elements(c: &mut Cursor<'_>, kind: SourceKind) -> Result<Vec<TableElement>, SqlError> {
    c.expect(&Token::LParen)?;
    let mut elements = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let name_at = c.location();
        let name = c.identifier("a column name")?;
        let ty = parse_type(c)?;
        let primary_key = c.eat_keywords(&["PRIMARY", "KEY"]);
        let key = primary_key || c.eat_keyword("KEY");
        let header = if key {
            None
        } else if c.eat_keyword("HEADERS") {
            Some(None)
        } else if c.eat_keyword("HEADER") {
            c.expect(&Token::LParen)?;
            let header_key = match c.peek().map(|t| &t.token) {
                Some(Token::SingleQuotedString(s)) => s.clone(),
                _ => return Err(c.expected("a header key in quotes")),
            };
            c.next_token();
            c.expect(&Token::RParen)?;
            Some(Some(header_key))
        } else {
            None
        };
        match kind {
            SourceKind::Stream if primary_key => {
                return Err(SqlError::Located {
                    message: format!(
                        "Column `{name}` is a 'PRIMARY KEY' column: please use 'KEY' for streams.\n{KEY_EXPLANATION}"
                    ),
                    location: name_at,
                });
            }
            SourceKind::Table if key && !primary_key => {
                return Err(SqlError::Located {
                    message: format!(
                        "Column `{name}` is a 'KEY' column: please use 'PRIMARY KEY' for tables.\n{KEY_EXPLANATION}"
                    ),
                    location: name_at,
                });
            }
            _ => {}
        }
        if !seen.insert(name.clone()) {
            return Err(SqlError::Parse {
                message: format!("Duplicate column names: `{name}`"),
                location: name_at,
            });
        }
        elements.push(TableElement {
            name,
            ty,
            key,
            primary_key,
            header,
        });
        if !c.eat(&Token::Comma) {
            break;
        }
    }
    if !c.eat(&Token::RParen) {
        return Err(c.expected("{',', ')'}"));
    }
    Ok(elements)
}

/// `(NAME = literal, …)`, after `WITH`; names are upper-cased, quoted or not.
pub(crate) fn parse_with(c: &mut Cursor<'_>) -> Result<WithProperties, SqlError> {
    c.expect(&Token::LParen)?;
    let mut with = WithProperties::default();
    loop {
        let name_at = c.location();
        let name = match c.peek().map(|t| &t.token) {
            Some(Token::Word(w)) => w.value.to_uppercase(),
            Some(Token::SingleQuotedString(s)) => s.to_uppercase(),
            _ => return Err(c.expected("a property name")),
        };
        c.next_token();
        c.expect(&Token::Eq)?;
        let value = property_value(c)?;
        if with.props.insert(name.clone(), value).is_some() {
            return Err(SqlError::Parse {
                message: format!("Duplicate property in WITH clause: {name}"),
                location: name_at,
            });
        }
        if !c.eat(&Token::Comma) {
            break;
        }
    }
    if !c.eat(&Token::RParen) {
        return Err(c.expected("{',', ')'}"));
    }
    Ok(with)
}

/// A `WITH` property value: `'text'`, a number, `TRUE` or `FALSE`.
fn property_value(c: &mut Cursor<'_>) -> Result<PropertyValue, SqlError> {
    let negative = c.eat(&Token::Minus);
    let value = match c.peek().map(|t| &t.token) {
        Some(Token::Number(n, _)) => {
            PropertyValue::Number(if negative { format!("-{n}") } else { n.clone() })
        }
        Some(Token::SingleQuotedString(s)) if !negative => PropertyValue::String(s.clone()),
        Some(Token::Word(w)) if !negative && w.quote_style.is_none() && w.value == "TRUE" => {
            PropertyValue::Boolean(true)
        }
        Some(Token::Word(w)) if !negative && w.quote_style.is_none() && w.value == "FALSE" => {
            PropertyValue::Boolean(false)
        }
        _ => return Err(c.expected("a literal")),
    };
    c.next_token();
    Ok(value)
}

/// `INSERT INTO …`, after the `INSERT` keyword.
pub(crate) fn parse_insert(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    c.expect_keyword("INTO")?;
    let target = c.identifier("a stream or table name")?;
    let columns = if c.eat(&Token::LParen) {
        let mut columns = vec![c.identifier("a column name")?];
        while c.eat(&Token::Comma) {
            columns.push(c.identifier("a column name")?);
        }
        c.expect(&Token::RParen)?;
        Some(columns)
    } else {
        None
    };
    if c.eat_keyword("VALUES") {
        let values = parse_values(c)?;
        if let Some(columns) = &columns
            && columns.len() != values.len()
        {
            return Err(SqlError::Prepare(format!(
                "Expected number columns and values to match: {}, {}",
                columns.len(),
                values.len()
            )));
        }
        return Ok(Statement::InsertValues {
            target,
            columns,
            values,
        });
    }
    if columns.is_some() {
        return Err(c.expected("'VALUES'"));
    }
    if c.peek_keyword("WITH") {
        return Err(SqlError::Unsupported("INSERT INTO … WITH (…)".to_string()));
    }
    if !c.peek_keyword("SELECT") {
        return Err(c.expected("{'SELECT', 'VALUES', '('}"));
    }
    let query = parse_query(c)?;
    Ok(Statement::InsertSelect { target, query })
}

/// `(e, …)` after `VALUES`, then the end of the statement.
fn parse_values(c: &mut Cursor<'_>) -> Result<Vec<datafusion_sql::sqlparser::ast::Expr>, SqlError> {
    if !c.peek_is(&Token::LParen) {
        return Err(c.expected("'('"));
    }
    let open = c.position();
    let Some(close) = matching_paren(c.rest(), 0).map(|i| open + i) else {
        return Err(syntax_error(c.location(), "missing ')'"));
    };
    c.next_token();
    let inner = c.rest().get(..close - open - 1).unwrap_or(&[]);
    if inner.is_empty() {
        return Err(c.expected("an expression"));
    }
    let end = c
        .rest()
        .get(close - open - 1)
        .map_or(c.end(), |t| t.span.start);
    let values = c.with_sqlparser(inner, end, "{',', ')'}", |p| {
        p.parse_comma_separated(Parser::parse_expr)
    })?;
    c.seek(close + 1);
    c.expect_end()?;
    Ok(values)
}

/// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`, after `DROP`.
pub(crate) fn parse_drop(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    if c.eat_keyword("TYPE") {
        let if_exists = c.eat_keywords(&["IF", "EXISTS"]);
        let name = c.identifier("a type name")?;
        c.expect_end()?;
        return Ok(Statement::DropType { name, if_exists });
    }
    let kind = stream_or_table(c, "DROP", &["CONNECTOR"])?;
    let if_exists = c.eat_keywords(&["IF", "EXISTS"]);
    let name = c.identifier("a stream or table name")?;
    let delete_topic = c.eat_keywords(&["DELETE", "TOPIC"]);
    c.expect_end()?;
    Ok(Statement::Drop {
        kind,
        name,
        if_exists,
        delete_topic,
    })
}

/// `ALTER STREAM|TABLE name ADD [COLUMN] c type [, …]`, after `ALTER`.
pub(crate) fn parse_alter(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let kind = stream_or_table(c, "ALTER", &["SYSTEM"])?;
    let name = c.identifier("a stream or table name")?;
    let mut columns = Vec::new();
    loop {
        c.expect_keyword("ADD")?;
        c.eat_keyword("COLUMN");
        let column = c.identifier("a column name")?;
        let ty = super::types::parse_type(c)?;
        columns.push((column, ty));
        if !c.eat(&Token::Comma) {
            break;
        }
    }
    c.expect_end()?;
    Ok(Statement::Alter {
        kind,
        name,
        columns,
    })
}

/// `STREAM` or `TABLE` after `statement`'s first word; `known` are ksqlDB's other words
/// there, which Eddy does not run.
fn stream_or_table(
    c: &mut Cursor<'_>,
    statement: &str,
    known: &[&str],
) -> Result<SourceKind, SqlError> {
    if c.eat_keyword("STREAM") {
        Ok(SourceKind::Stream)
    } else if c.eat_keyword("TABLE") {
        Ok(SourceKind::Table)
    } else {
        Err(unsupported_or_expected(
            c,
            statement,
            known,
            "{'STREAM', 'TABLE'}",
        ))
    }
}

/// `Unsupported("{prefix} WORD")` when the next word is a ksqlDB construct Eddy lacks, else a
/// syntax error expecting `expected`.
pub(crate) fn unsupported_or_expected(
    c: &Cursor<'_>,
    prefix: &str,
    known: &[&str],
    expected: &str,
) -> SqlError {
    match known.iter().find(|kw| c.peek_keyword(kw)) {
        Some(kw) => SqlError::Unsupported(format!("{prefix} {kw}")),
        None => c.expected(expected),
    }
}

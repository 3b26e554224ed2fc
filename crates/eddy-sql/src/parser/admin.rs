//! Statements that inspect or steer the server: `SHOW`/`LIST`, `DESCRIBE`, `EXPLAIN`, `PRINT`,
//! `SET`/`UNSET`, `TERMINATE`.

use datafusion_sql::sqlparser::tokenizer::Token;

use super::cursor::{Cursor, syntax_error};
use super::ddl::unsupported_or_expected;
use super::lexer::is_keyword;
use super::statement::parse_statement;
use crate::ast::{ExplainTarget, ShowWhat, Statement, TerminateTarget, WithProperties};
use crate::error::SqlError;

/// `SHOW|LIST …`, after the keyword.
pub(crate) fn parse_show(c: &mut Cursor<'_>, keyword: &str) -> Result<Statement, SqlError> {
    let what = if c.eat_keyword("STREAMS") {
        ShowWhat::Streams
    } else if c.eat_keyword("TABLES") {
        ShowWhat::Tables
    } else if c.eat_keyword("QUERIES") {
        ShowWhat::Queries
    } else if c.eat_keyword("TOPICS") {
        ShowWhat::Topics { all: false }
    } else if c.eat_keywords(&["ALL", "TOPICS"]) {
        ShowWhat::Topics { all: true }
    } else if c.eat_keyword("PROPERTIES") {
        ShowWhat::Properties
    } else if c.eat_keyword("FUNCTIONS") {
        ShowWhat::Functions
    } else if c.eat_keyword("VARIABLES") {
        ShowWhat::Variables
    } else if c.eat_keyword("TYPES") {
        ShowWhat::Types
    } else {
        return Err(unsupported_or_expected(
            c,
            keyword,
            &["CONNECTORS"],
            "{'STREAMS', 'TABLES', 'QUERIES', 'TOPICS', 'ALL', 'PROPERTIES', 'FUNCTIONS', 'VARIABLES', 'TYPES'}",
        ));
    };
    let extended = c.eat_keyword("EXTENDED");
    c.expect_end()?;
    Ok(Statement::Show { what, extended })
}

/// `DESCRIBE name [EXTENDED]`, `DESCRIBE FUNCTION name`, `DESCRIBE STREAMS|TABLES
/// [EXTENDED]`, after `DESCRIBE`.
pub(crate) fn parse_describe(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let statement = if c.eat_keyword("FUNCTION") {
        Statement::DescribeFunction(c.identifier("a function name")?)
    } else if c.peek_keyword("CONNECTOR") {
        return Err(SqlError::Unsupported("DESCRIBE CONNECTOR".to_string()));
    } else if c.peek_keyword("STREAMS") || c.peek_keyword("TABLES") {
        // ksqlDB's `DESCRIBE STREAMS` describes every stream: the extended listing.
        let what = if c.eat_keyword("STREAMS") {
            ShowWhat::Streams
        } else {
            c.next_token();
            ShowWhat::Tables
        };
        c.eat_keyword("EXTENDED");
        Statement::Show {
            what,
            extended: true,
        }
    } else {
        let name = c.identifier("a stream or table name")?;
        let extended = c.eat_keyword("EXTENDED");
        Statement::Describe { name, extended }
    };
    c.expect_end()?;
    Ok(statement)
}

/// `EXPLAIN query_id` or `EXPLAIN statement`, after `EXPLAIN`.
pub(crate) fn parse_explain(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    if let [t] = c.rest()
        && let Token::Word(w) = &t.token
    {
        c.next_token();
        return Ok(Statement::Explain(ExplainTarget::Query(w.value.clone())));
    }
    if c.at_end() || c.peek_keyword("EXPLAIN") {
        return Err(c.expected("a query id or a statement"));
    }
    let inner = parse_statement(c)?;
    Ok(Statement::Explain(ExplainTarget::Statement(Box::new(
        inner,
    ))))
}

/// `PRINT topic [FROM BEGINNING] [INTERVAL n] [LIMIT n]`, after `PRINT`.
///
/// An unquoted topic keeps the case it was written in (topics are case-sensitive) and may
/// contain `-` and `.` as long as it has no spaces.
pub(crate) fn parse_print(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let topic = match c.peek().map(|t| &t.token) {
        Some(Token::SingleQuotedString(s)) => {
            c.next_token();
            s.clone()
        }
        Some(Token::Word(w)) if w.quote_style.is_some() => {
            c.next_token();
            w.value.clone()
        }
        _ => unquoted_topic(c)?,
    };
    let from_beginning = c.eat_keywords(&["FROM", "BEGINNING"]);
    let interval = if c.eat_keyword("INTERVAL") || c.eat_keyword("SAMPLE") {
        Some(c.unsigned("a number")?)
    } else {
        None
    };
    let limit = if c.eat_keyword("LIMIT") {
        Some(c.unsigned("a number")?)
    } else {
        None
    };
    c.expect_end()?;
    Ok(Statement::Print {
        topic,
        from_beginning,
        interval,
        limit,
    })
}

/// The original text of the tokens up to `FROM`, `INTERVAL`, `SAMPLE`, `LIMIT` or the end.
fn unquoted_topic(c: &mut Cursor<'_>) -> Result<String, SqlError> {
    let tokens = c.rest();
    let len = tokens
        .iter()
        .position(|t| {
            ["FROM", "INTERVAL", "SAMPLE", "LIMIT"]
                .iter()
                .any(|kw| is_keyword(&t.token, kw))
        })
        .unwrap_or(tokens.len());
    let (Some(first), Some(last)) = (tokens.first(), tokens.get(..len).and_then(<[_]>::last))
    else {
        return Err(c.expected("a topic name"));
    };
    let topic = c.source().between(first.span.start, last.span.end);
    if topic.chars().any(char::is_whitespace) {
        return Err(syntax_error(
            c.location(),
            format!("invalid topic name '{topic}': quote topic names that contain spaces"),
        ));
    }
    c.seek(c.position() + len);
    Ok(topic.to_string())
}

/// `SET 'name' = 'value'`, after `SET`.
pub(crate) fn parse_set(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let name = c.string("a quoted property name")?;
    c.expect(&Token::Eq)?;
    let value = c.string("a quoted property value")?;
    c.expect_end()?;
    Ok(Statement::Set { name, value })
}

/// `ASSERT [NOT EXISTS] TOPIC name [WITH (…)] [TIMEOUT n unit]`, after `ASSERT`. `ASSERT
/// SCHEMA` needs a schema registry, which Eddy does not have yet; anything else is a syntax
/// error naming the token, as ksqlDB's is.
pub(crate) fn parse_assert(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let exists = !c.eat_keywords(&["NOT", "EXISTS"]);
    if c.eat_keyword("SCHEMA") {
        return Err(SqlError::Unsupported(
            "ASSERT SCHEMA (it needs a schema registry)".into(),
        ));
    }
    if !c.eat_keyword("TOPIC") {
        return Err(SqlError::Parse {
            message: format!(
                "Syntax error at or near '{}' at line {}:{}",
                c.found(),
                c.location().line,
                c.location().column
            ),
            location: c.location(),
        });
    }
    let topic = match c.peek().map(|t| &t.token) {
        Some(Token::SingleQuotedString(_)) => c.string("a topic name")?,
        _ => c.identifier("a topic name")?,
    };
    let with = if c.eat_keyword("WITH") {
        super::ddl::parse_with(c)?
    } else {
        WithProperties::default()
    };
    let timeout = if c.eat_keyword("TIMEOUT") {
        Some(super::query::duration(c)?)
    } else {
        None
    };
    c.expect_end()?;
    Ok(Statement::AssertTopic {
        topic,
        exists,
        with,
        timeout,
    })
}

/// `DEFINE name = 'value'`, after `DEFINE`.
pub(crate) fn parse_define(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let name = c.identifier("a variable name")?;
    c.expect(&Token::Eq)?;
    let value = c.string("a quoted variable value")?;
    c.expect_end()?;
    Ok(Statement::Define { name, value })
}

/// `UNDEFINE name`, after `UNDEFINE`.
pub(crate) fn parse_undefine(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let name = c.identifier("a variable name")?;
    c.expect_end()?;
    Ok(Statement::Undefine { name })
}

/// `UNSET 'name'`, after `UNSET`.
pub(crate) fn parse_unset(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    let name = c.string("a quoted property name")?;
    c.expect_end()?;
    Ok(Statement::Unset { name })
}

/// `TERMINATE query_id` or `TERMINATE ALL`, after `TERMINATE`.
pub(crate) fn parse_terminate(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    Ok(Statement::Terminate(query_target(c)?))
}

/// `PAUSE query_id` or `PAUSE ALL`, after `PAUSE`.
pub(crate) fn parse_pause(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    Ok(Statement::Pause(query_target(c)?))
}

/// `RESUME query_id` or `RESUME ALL`, after `RESUME`.
pub(crate) fn parse_resume(c: &mut Cursor<'_>) -> Result<Statement, SqlError> {
    Ok(Statement::Resume(query_target(c)?))
}

/// A query id or `ALL`, ending the statement.
fn query_target(c: &mut Cursor<'_>) -> Result<TerminateTarget, SqlError> {
    let target = if c.eat_keyword("ALL") {
        TerminateTarget::All
    } else {
        TerminateTarget::Query(c.identifier("a query id or ALL")?)
    };
    c.expect_end()?;
    Ok(target)
}

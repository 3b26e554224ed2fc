//! Column types: `INT`, `DECIMAL(p, s)`, `ARRAY<T>`, `MAP<K, V>`, `STRUCT<name T, …>`, ….

use std::collections::HashSet;

use datafusion_sql::sqlparser::tokenizer::Token;

use super::cursor::{Cursor, syntax_error};
use crate::error::SqlError;
use crate::types::{SqlType, StructField};

thread_local! {
    /// The types `CREATE TYPE` named, for the statements being parsed on this thread: those
    /// the caller knows, and those the script itself creates (or drops) as it goes.
    static CUSTOM_TYPES: std::cell::RefCell<std::collections::BTreeMap<String, SqlType>> =
        const { std::cell::RefCell::new(std::collections::BTreeMap::new()) };
}

/// Makes `types` the named types of the parse about to run on this thread.
pub(crate) fn set_custom_types(types: std::collections::BTreeMap<String, SqlType>) {
    CUSTOM_TYPES.with(|t| *t.borrow_mut() = types);
}

/// Names `ty` (`CREATE TYPE` in the script), or forgets `name` (`DROP TYPE`), for the
/// statements after it.
pub(crate) fn define_custom_type(name: &str, ty: Option<&SqlType>) {
    CUSTOM_TYPES.with(|t| {
        let mut types = t.borrow_mut();
        match ty {
            Some(ty) => types.insert(name.to_string(), ty.clone()),
            None => types.remove(name),
        };
    });
}

fn custom_type(name: &str) -> Option<SqlType> {
    CUSTOM_TYPES.with(|t| t.borrow().get(name).cloned())
}

/// Types nest at most this deep, so hostile input cannot exhaust the stack.
const MAX_NESTING: usize = 32;

/// Parses one type at the cursor.
pub(crate) fn parse_type(c: &mut Cursor<'_>) -> Result<SqlType, SqlError> {
    let ty = parse_nested(c, 0)?;
    if c.pending_gt > 0 {
        // `ARRAY<INT>>`: the second `>` of a `>>` closed nothing.
        c.pending_gt = 0;
        return Err(c.expected("end of type"));
    }
    Ok(ty)
}

fn parse_nested(c: &mut Cursor<'_>, depth: usize) -> Result<SqlType, SqlError> {
    if depth > MAX_NESTING {
        return Err(syntax_error(c.location(), "type nested too deeply"));
    }
    let location = c.location();
    let name = match c.peek().map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() && w.value != "NULL" => w.value.clone(),
        _ => return Err(c.expected("a type")),
    };
    c.next_token();
    let ty = match name.as_str() {
        "BOOLEAN" => SqlType::Boolean,
        "INT" | "INTEGER" => SqlType::Int,
        "BIGINT" => SqlType::Bigint,
        "DOUBLE" => SqlType::Double,
        "VARCHAR" | "STRING" => SqlType::String,
        "BYTES" => SqlType::Bytes,
        "DATE" => SqlType::Date,
        "TIME" => SqlType::Time,
        "TIMESTAMP" => SqlType::Timestamp,
        "DECIMAL" => return parse_decimal(c),
        "ARRAY" => {
            c.expect(&Token::Lt)?;
            let item = parse_nested(c, depth + 1)?;
            expect_gt(c)?;
            return Ok(SqlType::Array(Box::new(item)));
        }
        "MAP" => {
            c.expect(&Token::Lt)?;
            let key = parse_nested(c, depth + 1)?;
            if c.pending_gt > 0 {
                return Err(c.expected("','"));
            }
            c.expect(&Token::Comma)?;
            let value = parse_nested(c, depth + 1)?;
            expect_gt(c)?;
            return Ok(SqlType::Map(Box::new(key), Box::new(value)));
        }
        "STRUCT" => return parse_struct(c, depth),
        _ => {
            return custom_type(&name).ok_or_else(|| SqlError::Parse {
                message: format!("Unknown type: {name}"),
                location,
            });
        }
    };
    if c.peek_is(&Token::LParen) {
        if ty == SqlType::String && string_parameter(c) {
            return Ok(ty);
        }
        return Err(type_parameter_error(c));
    }
    Ok(ty)
}

/// Consumes the `(STRING)` or `(n)` ksqlDB accepts, and ignores, after `VARCHAR` and `STRING`.
fn string_parameter(c: &mut Cursor<'_>) -> bool {
    let is_parameter = match c.peek_nth(1).map(|t| &t.token) {
        Some(Token::Number(..)) => true,
        Some(Token::Word(w)) => w.quote_style.is_none() && w.value == "STRING",
        _ => false,
    };
    let closed = c.peek_nth(2).is_some_and(|t| t.token == Token::RParen);
    if is_parameter && closed {
        c.seek(c.position() + 3);
    }
    is_parameter && closed
}

/// ksqlDB's grammar lets any type name take parameters (`STRING(10)`) and rejects a misplaced
/// `(` where the parameter should be; Eddy rejects parameters on types that take none.
fn type_parameter_error(c: &mut Cursor<'_>) -> SqlError {
    let open = c.location();
    c.next_token();
    let is_parameter = match c.peek().map(|t| &t.token) {
        Some(Token::Number(..)) => true,
        Some(Token::Word(w)) => w.quote_style.is_none() && w.value == "STRING",
        _ => false,
    };
    if is_parameter {
        syntax_error(open, "this type takes no parameters")
    } else {
        syntax_error(c.location(), "Expecting {'STRING', INTEGER_VALUE}")
    }
}

fn parse_decimal(c: &mut Cursor<'_>) -> Result<SqlType, SqlError> {
    c.expect(&Token::LParen)?;
    let precision_at = c.location();
    let precision = c.unsigned("a precision")?;
    c.expect(&Token::Comma)?;
    let scale = c.unsigned("a scale")?;
    c.expect(&Token::RParen)?;
    let invalid = |message: String| SqlError::Parse {
        message,
        location: precision_at,
    };
    let precision = u8::try_from(precision)
        .ok()
        .filter(|p| (1..=38).contains(p))
        .ok_or_else(|| {
            invalid(format!(
                "DECIMAL precision must be between 1 and 38: {precision}"
            ))
        })?;
    let scale = i8::try_from(scale)
        .ok()
        .filter(|s| u8::try_from(*s).is_ok_and(|s| s <= precision))
        .ok_or_else(|| {
            invalid(format!(
                "DECIMAL scale must be between 0 and the precision ({precision}): {scale}"
            ))
        })?;
    Ok(SqlType::Decimal { precision, scale })
}

fn parse_struct(c: &mut Cursor<'_>, depth: usize) -> Result<SqlType, SqlError> {
    // The tokenizer reads the empty `STRUCT<>` as the operator `<>`.
    if c.eat(&Token::Neq) {
        return Ok(SqlType::Struct(Vec::new()));
    }
    c.expect(&Token::Lt)?;
    let mut fields = Vec::new();
    let mut seen = HashSet::new();
    if !at_gt(c) {
        loop {
            let location = c.location();
            let name = c.identifier("a field name")?;
            if !seen.insert(name.clone()) {
                return Err(SqlError::Parse {
                    message: format!("Duplicate field names found in STRUCT: `{name}`"),
                    location,
                });
            }
            let ty = parse_nested(c, depth + 1)?;
            fields.push(StructField { name, ty });
            if c.pending_gt > 0 || !c.eat(&Token::Comma) {
                break;
            }
        }
    }
    expect_gt(c)?;
    Ok(SqlType::Struct(fields))
}

/// Whether a closing `>` is next (possibly owed by an earlier `>>`).
fn at_gt(c: &Cursor<'_>) -> bool {
    c.pending_gt > 0 || c.peek_is(&Token::Gt) || c.peek_is(&Token::ShiftRight)
}

/// Consumes one closing `>`; the tokenizer reads `>>` as one token, which closes two.
fn expect_gt(c: &mut Cursor<'_>) -> Result<(), SqlError> {
    if c.pending_gt > 0 {
        c.pending_gt -= 1;
        return Ok(());
    }
    if c.eat(&Token::Gt) {
        return Ok(());
    }
    if c.eat(&Token::ShiftRight) {
        c.pending_gt = 1;
        return Ok(());
    }
    Err(c.expected("'>'"))
}

//! Queries: the KSQL-only clauses (`WINDOW`, `WITHIN`, `PARTITION BY`, `EMIT`) are taken out
//! of the token stream at parenthesis depth 0, and sqlparser parses what remains.

use std::time::Duration;

use datafusion_sql::sqlparser::ast::{
    BinaryOperator, Expr, GroupByExpr, SetExpr, Spanned, UnaryOperator,
};
use datafusion_sql::sqlparser::parser::Parser;
use datafusion_sql::sqlparser::tokenizer::{Location as TokenLocation, Token, TokenWithSpan};

use super::cursor::{Cursor, syntax_error};
use super::lexer::{Source, depth_delta, is_keyword, location};
use crate::ast::{Emit, JoinWindow, KsqlQuery};
use crate::error::SqlError;
use crate::window::WindowSpec;

/// What may follow a `WINDOW` clause, in ksqlDB's clause order.
const AFTER_WINDOW: &[&str] = &["WHERE", "GROUP", "PARTITION", "HAVING", "EMIT", "LIMIT"];
/// Standard clauses that KSQL-only ones must not follow, with the KSQL clauses they exclude:
/// ksqlDB's order is SELECT, FROM, JOIN, WINDOW, WHERE, GROUP BY, PARTITION BY, HAVING, EMIT,
/// LIMIT.
const ORDERED: &[&str] = &["WHERE", "GROUP", "HAVING", "LIMIT"];
/// What ends a `PARTITION BY` clause.
const AFTER_PARTITION_BY: &[&str] = &["HAVING", "EMIT", "LIMIT"];

/// Parses the query that makes up the rest of the cursor's statement.
pub(crate) fn parse_query(c: &mut Cursor<'_>) -> Result<KsqlQuery, SqlError> {
    let tokens = c.rest();
    let (Some(first), Some(last)) = (tokens.first(), tokens.last()) else {
        return Err(c.expected("'SELECT'"));
    };
    if !is_keyword(&first.token, "SELECT") {
        return Err(c.expected("'SELECT'"));
    }
    let text = c
        .source()
        .between(first.span.start, last.span.end)
        .to_string();

    let mut clauses = Clauses::default();
    let mut depth = 0isize;
    while let Some(t) = c.peek() {
        if depth == 0 && clauses.take_clause(c)? {
            continue;
        }
        if depth == 0 {
            if is_keyword(&t.token, "JOIN") {
                clauses.within.push(None);
            }
            if let Some(kw) = ORDERED.iter().find(|kw| is_keyword(&t.token, kw)) {
                clauses.seen.push(kw);
            }
        }
        depth += depth_delta(&t.token);
        clauses.kept.push(t.clone());
        c.next_token();
    }

    let mut select = c.with_sqlparser(&clauses.kept, c.end(), "';'", |p| p.parse_query())?;
    if let SetExpr::Select(s) = select.body.as_mut()
        && let GroupByExpr::Expressions(exprs, _) = &mut s.group_by
    {
        check_grouping(exprs, "GROUP BY", &clauses.kept, c.source())?;
    }
    Ok(KsqlQuery {
        select,
        window: clauses.window,
        within: clauses.within,
        partition_by: clauses.partition_by,
        emit: clauses.emit,
        text,
    })
}

/// The KSQL-only clauses found so far, and the tokens left for sqlparser.
#[derive(Default)]
struct Clauses {
    kept: Vec<TokenWithSpan>,
    window: Option<WindowSpec>,
    within: Vec<Option<JoinWindow>>,
    partition_by: Option<Vec<Expr>>,
    emit: Option<Emit>,
    /// The [`ORDERED`] clauses met so far.
    seen: Vec<&'static str>,
}

impl Clauses {
    /// Consumes a KSQL-only clause starting at the cursor, if there is one.
    fn take_clause(&mut self, c: &mut Cursor<'_>) -> Result<bool, SqlError> {
        let too_late = |after: &[&str]| self.seen.iter().any(|s| after.contains(s));
        let misplaced = (c.peek_keyword("WINDOW") && too_late(ORDERED))
            || (c.peek_keyword("PARTITION") && too_late(&["HAVING", "LIMIT"]))
            || (c.peek_keyword("EMIT") && too_late(&["LIMIT"]));
        if misplaced {
            return Err(c.expected("';'"));
        }
        if c.peek_keyword("WINDOW") {
            if self.window.is_some() {
                return Err(c.expected("';'"));
            }
            self.window = Some(parse_window(c)?);
            if !c.at_end() && !AFTER_WINDOW.iter().any(|kw| c.peek_keyword(kw)) {
                return Err(
                    c.expected("{'WHERE', 'GROUP', 'PARTITION', 'HAVING', 'EMIT', 'LIMIT', ';'}")
                );
            }
        } else if c.peek_keyword("WITHIN") {
            let at = c.location();
            match self.within.last_mut() {
                Some(slot @ None) => *slot = Some(parse_within(c)?),
                _ => {
                    return Err(syntax_error(
                        at,
                        "WITHIN must follow a joined source, before ON",
                    ));
                }
            }
            if !c.peek_keyword("ON") {
                return Err(c.expected("'ON'"));
            }
        } else if c.peek_keyword("PARTITION")
            && c.peek_nth(1).is_some_and(|t| is_keyword(&t.token, "BY"))
        {
            if self.partition_by.is_some() {
                return Err(c.expected("';'"));
            }
            self.partition_by = Some(parse_partition_by(c)?);
        } else if c.peek_keyword("EMIT") {
            if self.emit.is_some() {
                return Err(c.expected("';'"));
            }
            c.next_token();
            self.emit = Some(if c.eat_keyword("CHANGES") {
                Emit::Changes
            } else if c.eat_keyword("FINAL") {
                Emit::Final
            } else {
                return Err(c.expected("{'CHANGES', 'FINAL'}"));
            });
            if !c.at_end() && !c.peek_keyword("LIMIT") {
                return Err(c.expected("{'LIMIT', ';'}"));
            }
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// `WINDOW TUMBLING|HOPPING|SESSION (…)`.
fn parse_window(c: &mut Cursor<'_>) -> Result<WindowSpec, SqlError> {
    c.expect_keyword("WINDOW")?;
    // ksqlDB accepts (and ignores) a window name: `WINDOW w TUMBLING (…)`.
    let is_kind = |t: &TokenWithSpan| {
        ["TUMBLING", "HOPPING", "SESSION"]
            .iter()
            .any(|kw| is_keyword(&t.token, kw))
    };
    if c.peek()
        .is_some_and(|t| !is_kind(t) && matches!(t.token, Token::Word(_)))
        && c.peek_nth(1).is_some_and(is_kind)
    {
        c.next_token();
    }
    let kind = if c.eat_keyword("TUMBLING") {
        "TUMBLING"
    } else if c.eat_keyword("HOPPING") {
        "HOPPING"
    } else if c.eat_keyword("SESSION") {
        "SESSION"
    } else {
        return Err(c.expected("{'TUMBLING', 'HOPPING', 'SESSION'}"));
    };
    c.expect(&Token::LParen)?;
    let (size, advance) = match kind {
        "SESSION" => (duration(c)?, None),
        _ => {
            c.expect_keyword("SIZE")?;
            let size = duration(c)?;
            if kind == "HOPPING" {
                c.expect(&Token::Comma)?;
                c.expect_keyword("ADVANCE")?;
                c.expect_keyword("BY")?;
                (size, Some(duration(c)?))
            } else {
                (size, None)
            }
        }
    };
    let (mut retention, mut grace) = (None, None);
    while c.eat(&Token::Comma) {
        if retention.is_none() && c.eat_keyword("RETENTION") {
            retention = Some(duration(c)?);
        } else if grace.is_none() && c.eat_keywords(&["GRACE", "PERIOD"]) {
            grace = Some(duration(c)?);
        } else {
            return Err(c.expected("{'RETENTION', 'GRACE'}"));
        }
    }
    c.expect(&Token::RParen)?;
    Ok(match (kind, advance) {
        ("SESSION", _) => WindowSpec::Session {
            gap: size,
            retention,
            grace,
        },
        (_, Some(advance)) => WindowSpec::Hopping {
            size,
            advance,
            retention,
            grace,
        },
        _ => WindowSpec::Tumbling {
            size,
            retention,
            grace,
        },
    })
}

/// `WITHIN n unit | WITHIN (before, after)`, then optionally `GRACE PERIOD n unit`.
fn parse_within(c: &mut Cursor<'_>) -> Result<JoinWindow, SqlError> {
    c.expect_keyword("WITHIN")?;
    let (before, after) = if c.eat(&Token::LParen) {
        let before = duration(c)?;
        c.expect(&Token::Comma)?;
        let after = duration(c)?;
        c.expect(&Token::RParen)?;
        (before, after)
    } else {
        let both = duration(c)?;
        (both, both)
    };
    let grace = if c.eat_keywords(&["GRACE", "PERIOD"]) {
        Some(duration(c)?)
    } else {
        None
    };
    Ok(JoinWindow {
        before,
        after,
        grace,
    })
}

/// `n unit`, e.g. `30 SECONDS`.
pub(crate) fn duration(c: &mut Cursor<'_>) -> Result<Duration, SqlError> {
    let at = c.location();
    let n = c.unsigned("a number")?;
    let millis_per_unit: u64 = match c.peek().map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => match w.value.as_str() {
            "MILLISECOND" | "MILLISECONDS" => 1,
            "SECOND" | "SECONDS" => 1_000,
            "MINUTE" | "MINUTES" => 60_000,
            "HOUR" | "HOURS" => 3_600_000,
            "DAY" | "DAYS" => 86_400_000,
            _ => {
                return Err(c.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)"));
            }
        },
        _ => return Err(c.expected("a time unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")),
    };
    c.next_token();
    n.checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| syntax_error(at, format!("duration too large: {n}")))
}

/// `PARTITION BY e, …` up to the next top-level `HAVING`, `EMIT`, `LIMIT` or the end.
fn parse_partition_by(c: &mut Cursor<'_>) -> Result<Vec<Expr>, SqlError> {
    c.expect_keyword("PARTITION")?;
    c.expect_keyword("BY")?;
    let tokens = c.rest();
    let mut depth = 0isize;
    let len = tokens
        .iter()
        .position(|t| {
            let stop = depth == 0 && AFTER_PARTITION_BY.iter().any(|kw| is_keyword(&t.token, kw));
            depth += depth_delta(&t.token);
            stop
        })
        .unwrap_or(tokens.len());
    let Some(exprs) = tokens.get(..len).filter(|e| !e.is_empty()) else {
        return Err(c.expected("an expression"));
    };
    let end = tokens.get(len).map_or(c.end(), |t| t.span.start);
    if let [open, close] = exprs
        && open.token == Token::LParen
        && close.token == Token::RParen
    {
        return Err(SqlError::Invalid(
            "PARTITION BY requires at least one expression".to_string(),
        ));
    }
    let mut parsed =
        c.with_sqlparser(exprs, end, "{',', 'HAVING', 'EMIT', 'LIMIT', ';'}", |p| {
            p.parse_comma_separated(Parser::parse_expr)
        })?;
    check_grouping(&mut parsed, "PARTITION BY", exprs, c.source())?;
    c.seek(c.position() + len);
    Ok(parsed)
}

/// ksqlDB's `GROUP BY` and `PARTITION BY` take value expressions, not conditions, either as a
/// list or as one parenthesised list; a parenthesised list is flattened here.
fn check_grouping(
    exprs: &mut Vec<Expr>,
    clause: &str,
    tokens: &[TokenWithSpan],
    source: &Source<'_>,
) -> Result<(), SqlError> {
    if let [Expr::Tuple(items)] = exprs.as_mut_slice() {
        *exprs = std::mem::take(items);
    }
    for expr in exprs.iter() {
        if let Expr::Tuple(items) = expr {
            let comma = items.first().map_or(expr.span().start, |e| e.span().end);
            return Err(syntax_error(
                location(token_from(tokens, comma).map_or(comma, |t| t.span.start)),
                "missing ')' at ','",
            ));
        }
        if let Some(at) = condition_operator(expr) {
            let token = token_from(tokens, at);
            let found = token.map_or("<EOF>", |t| source.text_of(t.span));
            return Err(syntax_error(
                location(token.map_or(at, |t| t.span.start)),
                format!(
                    "mismatched input '{found}': {clause} takes value expressions, not conditions"
                ),
            ));
        }
    }
    Ok(())
}

/// Where a condition's operator starts (just after its left operand), if `expr` is one.
fn condition_operator(expr: &Expr) -> Option<TokenLocation> {
    use BinaryOperator as Op;
    let left = match expr {
        Expr::BinaryOp {
            left,
            op:
                Op::And | Op::Or | Op::Xor | Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq,
            ..
        } => left,
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            ..
        } => return Some(expr.span().start),
        Expr::IsFalse(e)
        | Expr::IsNotFalse(e)
        | Expr::IsTrue(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotUnknown(e)
        | Expr::IsDistinctFrom(e, _)
        | Expr::IsNotDistinctFrom(e, _)
        | Expr::InList { expr: e, .. }
        | Expr::InSubquery { expr: e, .. }
        | Expr::InUnnest { expr: e, .. }
        | Expr::Between { expr: e, .. }
        | Expr::Like { expr: e, .. }
        | Expr::ILike { expr: e, .. }
        | Expr::SimilarTo { expr: e, .. }
        | Expr::RLike { expr: e, .. } => e,
        _ => return None,
    };
    Some(left.span().end)
}

/// The first token starting at or after `at`.
fn token_from(tokens: &[TokenWithSpan], at: TokenLocation) -> Option<&TokenWithSpan> {
    tokens.iter().find(|t| t.span.start >= at)
}

//! Rewrites of a planned query into ksqlDB's semantics, where DataFusion's differ: comparisons
//! with a null operand are false, `ROWTIME` compares with timestamp strings, `LIKE` takes any
//! escape character, and `+` concatenates strings.

use arrow::datatypes::DataType;
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{DFSchema, ScalarValue};
use datafusion_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, lit};
use datafusion_sql::sqlparser::ast::BinaryOperator;

use super::checks::comparison_name;
use super::provider::{ROWTIME, WINDOWEND, WINDOWSTART};
use crate::error::SqlError;

/// ksqlDB's comparisons are false, never null, when an operand is null.
pub(crate) fn null_comparisons_false(expr: Expr) -> Result<Expr, SqlError> {
    expr.transform_up(|e| match e {
        Expr::BinaryExpr(BinaryExpr {
            op:
                Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq,
            ..
        }) => Ok(Transformed::yes(
            datafusion_functions::core::expr_fn::coalesce(vec![e, lit(false)]),
        )),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .map_err(|e| SqlError::Plan(e.strip_backtrace()))
}

/// ksqlDB compares `ROWTIME`, `WINDOWSTART` and `WINDOWEND` with a string literal by reading
/// the string as a timestamp (`'2018'`, `'2018-01-01T00:00:00.001'`, with an optional zone,
/// UTC by default).
pub(crate) fn magic_timestamps(plan: LogicalPlan) -> Result<LogicalPlan, SqlError> {
    plan.transform_up(|node| node.map_expressions(|e| e.transform_up(magic_timestamp)))
        .map(|t| t.data)
        .map_err(|e| SqlError::Plan(e.strip_backtrace()))
}

/// [`magic_timestamps`] of one expression.
pub(crate) fn magic_timestamps_in(expr: Expr) -> Result<Expr, SqlError> {
    expr.transform_up(magic_timestamp)
        .map(|t| t.data)
        .map_err(|e| SqlError::Plan(e.strip_backtrace()))
}

fn magic_timestamp(e: Expr) -> datafusion_common::Result<Transformed<Expr>> {
    let is_time_column = |e: &Expr| match e {
        Expr::Column(c) => matches!(c.name.as_str(), ROWTIME | WINDOWSTART | WINDOWEND),
        _ => false,
    };
    let millis = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Utf8(Some(s)), _) => parse_timestamp(s).map(lit),
        _ => None,
    };
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if comparison_name(op).is_some() => {
            if is_time_column(&left)
                && let Some(r) = millis(&right)
            {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(left, op, Box::new(r))))
            } else if is_time_column(&right)
                && let Some(l) = millis(&left)
            {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, right)))
            } else {
                Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            }
        }
        Expr::Between(mut b) if is_time_column(&b.expr) => {
            let mut changed = false;
            if let Some(low) = millis(&b.low) {
                *b.low = low;
                changed = true;
            }
            if let Some(high) = millis(&b.high) {
                *b.high = high;
                changed = true;
            }
            if changed {
                Transformed::yes(Expr::Between(b))
            } else {
                Transformed::no(Expr::Between(b))
            }
        }
        other => Transformed::no(other),
    })
}

/// Milliseconds since the epoch of `yyyy[-MM[-dd[Thh[:mm[:ss[.SSS]]]]]][Z|±hh[:]mm]`.
fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    let (body, offset_minutes) = split_zone(text)?;
    let mut fields = [1i64, 1, 1, 0, 0, 0];
    let bytes = body.as_bytes();
    let mut pos = 0;
    let widths = [4usize, 2, 2, 2, 2, 2];
    let separators = [b'-', b'-', b'T', b':', b':'];
    for (i, width) in widths.iter().enumerate() {
        if i > 0 {
            if pos == bytes.len() {
                break;
            }
            if bytes[pos] != separators[i - 1] {
                return None;
            }
            pos += 1;
        }
        let digits = body.get(pos..pos + width)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        fields[i] = digits.parse().ok()?;
        pos += width;
    }
    let mut millis = 0i64;
    if pos < bytes.len() {
        if bytes[pos] != b'.' {
            return None;
        }
        let fraction = body.get(pos + 1..)?;
        if fraction.is_empty()
            || fraction.len() > 3
            || !fraction.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        millis = format!("{fraction:0<3}").parse().ok()?;
    }
    let [year, month, day, hour, minute, second] = fields;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((((days * 24 + hour) * 60 + minute - offset_minutes) * 60 + second) * 1000 + millis)
}

/// The text before a zone suffix, and the zone's offset from UTC in minutes.
fn split_zone(text: &str) -> Option<(&str, i64)> {
    if let Some(body) = text.strip_suffix('Z') {
        return Some((body, 0));
    }
    // A sign after the date part starts an offset: `+0000`, `-05:30`.
    if let Some(at) = text
        .rfind(['+', '-'])
        .filter(|&at| text[..at].contains('T'))
    {
        let zone = text[at + 1..].replace(':', "");
        if zone.len() != 4 || !zone.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let hours: i64 = zone[..2].parse().ok()?;
        let minutes: i64 = zone[2..].parse().ok()?;
        let sign = if text.as_bytes()[at] == b'-' { -1 } else { 1 };
        return Some((&text[..at], sign * (hours * 60 + minutes)));
    }
    Some((text, 0))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `LIKE … ESCAPE 'c'` with another escape character than the backslash DataFusion knows: the
/// pattern is rewritten to escape with backslashes.
pub(crate) fn like_escapes(plan: LogicalPlan) -> Result<LogicalPlan, SqlError> {
    plan.transform_up(|node| {
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Like(mut like) if like.escape_char.is_some_and(|c| c != '\\') => {
                    let escape = like.escape_char.take().unwrap_or('\\').to_string();
                    let replace = |e: Expr, from: &str, to: &str| {
                        datafusion_functions::string::expr_fn::replace(e, lit(from), lit(to))
                    };
                    let pattern = replace(*like.pattern, "\\", "\\\\");
                    like.pattern = Box::new(replace(pattern, &escape, "\\"));
                    Ok(Transformed::yes(Expr::Like(like)))
                }
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|t| t.data)
    .map_err(|e| SqlError::Plan(e.strip_backtrace()))
}

/// `a + b` of two strings is their concatenation in ksqlDB; planned as such while DataFusion
/// binds the query, so that grouping and aggregation see the right type.
#[derive(Debug)]
pub(crate) struct StringPlus;

impl ExprPlanner for StringPlus {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> datafusion_common::Result<PlannerResult<RawBinaryExpr>> {
        let is_string = |e: &Expr| {
            e.get_type(schema).is_ok_and(|t| {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            })
        };
        if expr.op == BinaryOperator::Plus && is_string(&expr.left) && is_string(&expr.right) {
            return Ok(PlannerResult::Planned(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(expr.left),
                Operator::StringConcat,
                Box::new(expr.right),
            ))));
        }
        Ok(PlannerResult::Original(expr))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;

    #[test]
    fn reads_partial_timestamps() {
        assert_eq!(parse_timestamp("2018"), Some(1_514_764_800_000));
        assert_eq!(
            parse_timestamp("2018-01-01T00:00:00.001"),
            Some(1_514_764_800_001)
        );
        assert_eq!(
            parse_timestamp("2018-01-01T00:00:01"),
            Some(1_514_764_801_000)
        );
        assert_eq!(
            parse_timestamp("2020-02-10T08:31:44.001+0000"),
            Some(1_581_323_504_001)
        );
        assert_eq!(
            parse_timestamp("2018-01-01T01:00+01:00"),
            Some(1_514_764_800_000)
        );
        assert_eq!(parse_timestamp("not a time"), None);
    }
}

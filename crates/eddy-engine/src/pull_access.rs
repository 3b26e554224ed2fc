//! How a pull query over a table reads it, from its WHERE clause, with ksqlDB's rules: each
//! disjunct of the WHERE must pin every key column to values (`K = e`, `K IN (e, …)`, where
//! each `e` can be computed without a row), and may bound a windowed table's WINDOWSTART and
//! WINDOWEND; anything else needs a table scan (`ksql.query.pull.table.scan.enabled`, on by
//! default), or a range scan for one bound on a single STRING key
//! (`ksql.query.pull.range.scan.enabled`). Where a scan is not allowed, the refusal names what
//! ksqlDB names.

use std::sync::Arc;

use arrow::array::new_null_array;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{DFSchema, ScalarValue};
use datafusion_expr::{BinaryExpr, Expr, Operator};
use eddy_sql::catalog::Source;
use eddy_sql::plan::ksql_text;
use eddy_sql::types::SqlType;

use crate::error::EngineError;
use crate::eval::Compiled;

/// How a pull query reads its table.
#[derive(Debug)]
pub(crate) enum Access {
    /// Only these keys, each as one value per key column (every window of each, for a
    /// windowed table).
    Keys(Vec<Vec<ScalarValue>>),
    /// Every row.
    Scan,
}

/// Which scans the request allows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scans {
    /// `ksql.query.pull.table.scan.enabled`.
    pub table: bool,
    /// `ksql.query.pull.range.scan.enabled`.
    pub range: bool,
}

/// How one disjunct of the WHERE can be read, or why it cannot without a table scan.
enum Reading {
    Keys(Vec<Vec<ScalarValue>>),
    Range,
    NeedsScan(String),
}

/// Decides how a pull query with `filter` reads `source`. Errors that no scan avoids (a NULL
/// key, a key value of the wrong type) are errors whatever the scans allowed.
pub(crate) fn access(
    filter: Option<&Expr>,
    source: &Source,
    schema: &DFSchema,
    scans: Scans,
) -> Result<Access, EngineError> {
    let bare = filter.map(without_null_guards);
    let Some(filter) = bare.as_ref() else {
        return scan_or(
            scans,
            format!(
                "Pull queries that do not look up the key need table scans, which are disabled \
                 ({TABLE_SCAN}=false)."
            ),
        );
    };
    let mut keys = Vec::new();
    let mut first_refusal = None;
    let disjuncts = split(filter, Operator::Or);
    let single = disjuncts.len() == 1;
    for disjunct in disjuncts {
        match reading(disjunct, source, schema, scans)? {
            Reading::Keys(k) => keys.extend(k),
            // A range scan reads one range; ranges of several disjuncts need a table scan.
            Reading::Range if single => return Ok(Access::Scan),
            Reading::Range => {
                first_refusal.get_or_insert(format!(
                    "Query requires table scan to be enabled. Several ranges of the key in one \
                     query are read by a table scan ({TABLE_SCAN})."
                ));
            }
            Reading::NeedsScan(why) => {
                first_refusal.get_or_insert(why);
            }
        }
    }
    match first_refusal {
        Some(why) => scan_or(scans, why),
        None => Ok(Access::Keys(keys)),
    }
}

/// The WHERE as written: the planner guards each condition as `COALESCE(c, false)` (a NULL
/// condition is false), which says nothing about keys.
fn without_null_guards(filter: &Expr) -> Expr {
    filter
        .clone()
        .transform_up(|e| {
            Ok(match &e {
                Expr::ScalarFunction(f)
                    if f.name().eq_ignore_ascii_case("coalesce")
                        && matches!(
                            f.args.as_slice(),
                            [_, Expr::Literal(ScalarValue::Boolean(Some(false)), _)]
                        ) =>
                {
                    Transformed::yes(f.args[0].clone())
                }
                _ => Transformed::no(e),
            })
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| filter.clone())
}

/// `ksql.query.pull.table.scan.enabled`.
pub(crate) const TABLE_SCAN: &str = "ksql.query.pull.table.scan.enabled";

/// `ksql.query.pull.range.scan.enabled`.
pub(crate) const RANGE_SCAN: &str = "ksql.query.pull.range.scan.enabled";

fn scan_or(scans: Scans, why: String) -> Result<Access, EngineError> {
    if scans.table {
        Ok(Access::Scan)
    } else {
        Err(EngineError::Invalid(why))
    }
}

/// The operands of `e` split at every top-level `op`.
fn split(e: &Expr, op: Operator) -> Vec<&Expr> {
    match e {
        Expr::BinaryExpr(b) if b.op == op => {
            let mut parts = split(&b.left, op);
            parts.extend(split(&b.right, op));
            parts
        }
        other => vec![other],
    }
}

/// One conjunct's part in reading the table.
enum Condition {
    /// Key column `index` is one of these values.
    Equal(usize, Vec<ScalarValue>),
    /// Key column `index` is bounded by a range.
    Range(usize),
    /// A bound on WINDOWSTART or WINDOWEND, or a condition on value columns: a filter.
    Filter,
}

fn reading(
    disjunct: &Expr,
    source: &Source,
    schema: &DFSchema,
    scans: Scans,
) -> Result<Reading, EngineError> {
    let key_columns: Vec<_> = source.key_columns().collect();
    let mut equal: Vec<Option<Vec<ScalarValue>>> = vec![None; key_columns.len()];
    let mut ranges = Vec::new();
    let mut keyed = false;
    for conjunct in split(disjunct, Operator::And) {
        let condition = match condition(conjunct, source, schema)? {
            Ok(c) => c,
            Err(why) => return Ok(Reading::NeedsScan(why)),
        };
        let index = match &condition {
            Condition::Equal(i, _) | Condition::Range(i) => *i,
            Condition::Filter => continue,
        };
        keyed = true;
        if equal[index].is_some() || ranges.contains(&index) {
            return Ok(Reading::NeedsScan(
                "A comparison condition on the key column cannot be combined with other \
                 comparisons such as an IN predicate."
                    .into(),
            ));
        }
        match condition {
            Condition::Equal(i, values) => equal[i] = Some(values),
            Condition::Range(i) => ranges.push(i),
            Condition::Filter => {}
        }
    }
    if !keyed {
        return Ok(Reading::NeedsScan(format!(
            "WHERE clause missing key column for disjunct: {}.",
            ksql_text(disjunct)
        )));
    }
    let pinned = equal.iter().filter(|e| e.is_some()).count() + ranges.len();
    if pinned < key_columns.len() {
        return Ok(Reading::NeedsScan(
            "Multi-column sources must specify every key in the WHERE clause.".into(),
        ));
    }
    if !ranges.is_empty() {
        let single_string_key = key_columns.len() == 1 && key_columns[0].ty == SqlType::String;
        return Ok(
            if scans.range && single_string_key && source.window.is_none() {
                Reading::Range
            } else {
                Reading::NeedsScan(format!(
                    "Query requires table scan to be enabled. Range scans on the key are \
                     served for a single STRING key only ({TABLE_SCAN}, {RANGE_SCAN})."
                ))
            },
        );
    }
    // Every combination of the key columns' values.
    let mut keys: Vec<Vec<ScalarValue>> = vec![Vec::new()];
    for values in equal.into_iter().flatten() {
        keys = keys
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut key = prefix.clone();
                    key.push(v.clone());
                    key
                })
            })
            .collect();
    }
    Ok(Reading::Keys(keys))
}

/// What a conjunct says about the key; `Ok(Err(why))` when it needs a table scan.
fn condition(
    conjunct: &Expr,
    source: &Source,
    schema: &DFSchema,
) -> Result<Result<Condition, String>, EngineError> {
    let key_index = |e: &Expr| match strip(e) {
        Expr::Column(c) => source.key_columns().position(|k| k.name == c.name),
        _ => None,
    };
    let mentions_key = |e: &Expr| {
        e.column_refs()
            .iter()
            .any(|c| source.key_columns().any(|k| k.name == c.name))
    };
    match conjunct {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(*op) => {
            let (key, other) = match (key_index(left), key_index(right)) {
                (Some(i), _) => (i, right),
                (_, Some(i)) => (i, left),
                _ if mentions_key(left) || mentions_key(right) => {
                    return Ok(Err(
                        "A comparison must directly reference a key column.".into()
                    ));
                }
                _ => return Ok(Ok(Condition::Filter)),
            };
            let Some(value) = constant(other, schema)? else {
                return Ok(Err(
                    "A comparison must be between a key column and a resolvable expression.".into(),
                ));
            };
            Ok(match op {
                Operator::Eq => {
                    check_key_value(&value, key, source)?;
                    Ok(Condition::Equal(key, vec![value]))
                }
                Operator::NotEq => Err(format!(
                    "Bound on key columns '[{}]' must currently be '='. ",
                    key_description(source, key)
                )),
                _ => Ok(Condition::Range(key)),
            })
        }
        Expr::InList(list) if !list.negated => {
            let Some(key) = key_index(&list.expr) else {
                return Ok(if mentions_key(&list.expr) {
                    Err("A comparison must directly reference a key column.".into())
                } else {
                    Ok(Condition::Filter)
                });
            };
            let mut values = Vec::with_capacity(list.list.len());
            for item in &list.list {
                let Some(value) = constant(item, schema)? else {
                    return Ok(Err(
                        "A comparison must be between a key column and a resolvable expression."
                            .into(),
                    ));
                };
                check_literal_type(item, key, source)?;
                check_key_value(&value, key, source)?;
                values.push(value);
            }
            Ok(Ok(Condition::Equal(key, values)))
        }
        _ => Ok(Ok(Condition::Filter)),
    }
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
    )
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Cast(c) => strip(&c.expr),
        Expr::TryCast(c) => strip(&c.expr),
        Expr::Alias(a) => strip(&a.expr),
        other => other,
    }
}

/// `` `ID` STRING KEY ``, as ksqlDB describes a key column in messages.
fn key_description(source: &Source, index: usize) -> String {
    source
        .key_columns()
        .nth(index)
        .map(|k| format!("`{}` {} KEY", k.name, k.ty))
        .unwrap_or_default()
}

/// A key is never NULL: looking one up is an error, not an empty answer.
fn check_key_value(value: &ScalarValue, key: usize, source: &Source) -> Result<(), EngineError> {
    if value.is_null() {
        let name = source
            .key_columns()
            .nth(key)
            .map(|k| k.name.clone())
            .unwrap_or_default();
        return Err(EngineError::Invalid(format!(
            "Primary key columns can not be NULL: ({name} = null)"
        )));
    }
    Ok(())
}

/// A text literal looked up in a key column of another type is an error, as in ksqlDB (the
/// planner has already cast it).
fn check_literal_type(item: &Expr, key: usize, source: &Source) -> Result<(), EngineError> {
    let Some(column) = source.key_columns().nth(key) else {
        return Ok(());
    };
    // A DOUBLE literal (`1.0E1`) is planned as its text cast to DOUBLE: no text.
    let double_literal = matches!(item, Expr::Cast(c)
        if c.field.data_type() == &arrow::datatypes::DataType::Float64
            && matches!(c.expr.as_ref(), Expr::Literal(ScalarValue::Utf8(_), _)));
    if let Expr::Literal(ScalarValue::Utf8(Some(text)), _) = strip(item)
        && column.ty != SqlType::String
        && !double_literal
    {
        return Err(EngineError::Invalid(format!(
            "'{text}' can not be converted to the type of the key column: {} {} KEY",
            column.name, column.ty
        )));
    }
    Ok(())
}

/// The value of an expression that reads no column (`10 + 1`), if it is one.
fn constant(e: &Expr, schema: &DFSchema) -> Result<Option<ScalarValue>, EngineError> {
    if !e.column_refs().is_empty() {
        return Ok(None);
    }
    if let Expr::Literal(v, _) = e {
        return Ok(Some(v.clone()));
    }
    let arrow = Arc::new(schema.as_arrow().clone());
    let columns = arrow
        .fields()
        .iter()
        .map(|f| new_null_array(f.data_type(), 1))
        .collect();
    let row = RecordBatch::try_new_with_options(
        arrow,
        columns,
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let mut errors = Vec::new();
    let value = Compiled::new(e, schema)?.evaluate(&row, &mut errors)?;
    Ok(Some(ScalarValue::try_from_array(&value, 0)?))
}

//! ksqlDB's checks of a query's expressions, with its messages: unknown columns and sources
//! named per clause, WHERE must be a boolean, comparisons only between comparable types and
//! never with a NULL literal, casts ksqlDB supports, and columns and constructors of a known
//! type. Run on each clause alone, before DataFusion plans the query.

use std::ops::ControlFlow;

use datafusion_common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion_common::{DFSchema, DataFusionError, ScalarValue};
use datafusion_expr::planner::ContextProvider;
use datafusion_expr::{BinaryExpr, Expr, ExprSchemable, Operator};
use datafusion_sql::planner::{PlannerContext, SqlToRel};
use datafusion_sql::sqlparser::ast::{self as sql, SelectItem};

use super::projection::Scope;
use super::provider::scan_schema;
use crate::catalog::Catalog;
use crate::error::{Location, SqlError};
use crate::types::SqlType;

/// A clause of the SELECT, as messages name it.
#[derive(Clone, Copy)]
enum Clause {
    Where,
    Select,
    Having,
    PartitionBy,
    JoinOn,
}

impl Clause {
    fn title(self) -> &'static str {
        match self {
            Clause::Where => "Where",
            Clause::Select => "Select",
            Clause::Having => "Having",
            Clause::PartitionBy => "Partition By",
            Clause::JoinOn => "Join On",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Clause::Where => "WHERE",
            Clause::Select => "SELECT",
            Clause::Having => "HAVING",
            Clause::PartitionBy => "PARTITION BY",
            Clause::JoinOn => "JOIN ON",
        }
    }
}

/// Checks the WHERE clause and the (already named) projection of `select` over `scopes`.
/// Errors other than the ones checked here are left to the planning of the whole query.
pub(crate) fn check_select<S: ContextProvider>(
    planner: &SqlToRel<'_, S>,
    select: &sql::Select,
    scopes: &[Scope<'_>],
    catalog: &Catalog,
) -> Result<(), SqlError> {
    let Some(schema) = scope_schema(scopes, catalog) else {
        return Ok(());
    };
    let joined = scopes.len() > 1;
    if let Some(selection) = &select.selection
        && let Some(expr) = plan_expr(planner, selection, &schema, scopes, Clause::Where)?
    {
        if let Ok(dt) = expr.get_type(&schema)
            && !matches!(
                dt,
                arrow::datatypes::DataType::Boolean | arrow::datatypes::DataType::Null
            )
        {
            return Err(SqlError::Invalid(format!(
                "Type error in WHERE expression: Should evaluate to boolean but is {} ({}) instead.",
                display(&expr, joined),
                type_name(&expr, &schema)
            )));
        }
        check_comparisons(&expr, &schema, joined).map_err(|m| {
            SqlError::Invalid(format!(
                "Error in WHERE expression: {m}\nStatement: {}",
                display(&expr, joined)
            ))
        })?;
    }
    for item in &select.projection {
        let (SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr)) = item else {
            continue;
        };
        // PARTITION BY's hidden items may be NULL (no key).
        let partitioning = matches!(item, SelectItem::ExprWithAlias { alias, .. }
            if alias.value.starts_with(super::PARTITION_PREFIX));
        let clause = if partitioning {
            Clause::PartitionBy
        } else {
            Clause::Select
        };
        let planned = plan_expr(planner, expr, &schema, scopes, clause)
            .map_err(|e| partition_by_output_column(e, &select.projection))?;
        if let Some(expr) = planned {
            check_null_arithmetic(&expr, &schema, joined)?;
            if let Err(e) = expr.to_field(&schema)
                && let Some(error) = invalid_cast(&e, Clause::Select)
            {
                return Err(error);
            }
            check_comparisons(&expr, &schema, joined).map_err(SqlError::Invalid)?;
            if !partitioning {
                check_typed(&expr, &schema)?;
            }
            check_constructors(&expr, &schema)?;
        }
    }
    let joins = select.from.iter().flat_map(|f| f.joins.iter());
    for condition in joins.filter_map(|j| join_condition(&j.join_operator)) {
        plan_expr(planner, condition, &schema, scopes, Clause::JoinOn)?;
    }
    if let Some(having) = &select.having
        && let Some(expr) = plan_expr(planner, having, &schema, scopes, Clause::Having)?
    {
        check_comparisons(&expr, &schema, joined)
            .map_err(|m| SqlError::Invalid(format!("Error in HAVING expression: {m}")))?;
    }
    Ok(())
}

/// Refuses arithmetic with a bare NULL (`5.0 / NULL`), as ksqlDB does: the NULL has no type
/// to compute with.
fn check_null_arithmetic(expr: &Expr, schema: &DFSchema, joined: bool) -> Result<(), SqlError> {
    let is_null = |e: &Expr| matches!(e, Expr::Literal(ScalarValue::Null, _));
    let mut found = None;
    let _ = expr.apply(|e| {
        if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e
            && matches!(
                op,
                Operator::Plus
                    | Operator::Minus
                    | Operator::Multiply
                    | Operator::Divide
                    | Operator::Modulo
            )
            && (is_null(left) || is_null(right))
        {
            found = Some((e.clone(), left.clone(), right.clone()));
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let Some((arithmetic, left, right)) = found else {
        return Ok(());
    };
    let type_of = |e: &Expr| {
        if is_null(e) {
            return "null".to_string();
        }
        e.get_type(schema)
            .ok()
            .and_then(|t| SqlType::from_arrow(&t))
            .map_or_else(|| "null".to_string(), |t| t.to_string())
    };
    Err(SqlError::Invalid(format!(
        "Error processing expression: {}. Arithmetic on types {} and {} are not supported.",
        display(&arithmetic, joined),
        type_of(&left),
        type_of(&right)
    )))
}

/// PARTITION BY applies to the input: naming an output column there gets ksqlDB's hint.
fn partition_by_output_column(e: SqlError, projection: &[SelectItem]) -> SqlError {
    let hint = |message: &str| -> Option<String> {
        let name = message
            .strip_prefix("PARTITION BY column '")?
            .strip_suffix("' cannot be resolved.")?;
        let is_output = projection.iter().any(
            |item| matches!(item, SelectItem::ExprWithAlias { alias, .. } if alias.value == name),
        );
        is_output.then(|| {
            format!(
                "{message} '{name}' must be a column in the source schema since PARTITION BY is applied on the input."
            )
        })
    };
    match e {
        SqlError::Invalid(message) => SqlError::Invalid(hint(&message).unwrap_or(message)),
        SqlError::Located { message, location } => SqlError::Located {
            message: hint(&message).unwrap_or(message),
            location,
        },
        other => other,
    }
}

/// A projection item must have a type: a bare NULL, or a CASE whose branches are all NULL,
/// has none.
fn check_typed(expr: &Expr, schema: &DFSchema) -> Result<(), SqlError> {
    let untyped = |e: &Expr| e.get_type(schema).is_ok_and(|t| t.is_null());
    match expr {
        Expr::Case(case) if untyped(expr) => {
            let branches = case.when_then_expr.iter().map(|(_, then)| then.as_ref());
            if branches.chain(case.else_expr.as_deref()).all(untyped) {
                return Err(SqlError::Invalid(
                    "Invalid Case expression. All case branches have NULL type".into(),
                ));
            }
        }
        _ if untyped(expr) => {
            return Err(SqlError::Invalid(
                "Can't infer a type of null. Please explicitly cast it to a required type, e.g. CAST(null AS VARCHAR).".into(),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// `ARRAY[…]` and `MAP(…)` need elements, keys and values of a known type; `STRUCT(…)`
/// needs distinct field names.
fn check_constructors(expr: &Expr, schema: &DFSchema) -> Result<(), SqlError> {
    const ISSUE: &str = "(see https://github.com/confluentinc/ksql/issues/4239)";
    let untyped = |e: &Expr| e.get_type(schema).is_ok_and(|t| t.is_null());
    let elements = |e: &Expr| match e {
        Expr::ScalarFunction(f) if f.name() == "make_array" => Some(f.args.clone()),
        _ => None,
    };
    let mut error = None;
    let _ = expr.apply(|e| {
        let Expr::ScalarFunction(f) = e else {
            return Ok(TreeNodeRecursion::Continue);
        };
        match f.name() {
            "map" => {
                if let [keys, values] = f.args.as_slice()
                    && let (Some(keys), Some(values)) = (elements(keys), elements(values))
                {
                    if !keys.is_empty() && keys.iter().all(untyped) {
                        error = Some("Cannot construct a map with all NULL keys".to_string());
                    } else if !values.is_empty() && values.iter().all(untyped) {
                        error = Some("Cannot construct a map with all NULL values".to_string());
                    }
                }
            }
            // `named_struct('A', a, 'B', b, …)`: the names are the literals at even places.
            "named_struct" => {
                let names: Vec<String> = f
                    .args
                    .iter()
                    .step_by(2)
                    .filter_map(|a| match a {
                        Expr::Literal(v, _) => Some(v.to_string()),
                        _ => None,
                    })
                    .collect();
                let distinct: std::collections::HashSet<&String> = names.iter().collect();
                if distinct.len() < names.len() {
                    error = Some("Duplicate field names found in STRUCT".to_string());
                }
            }
            "make_array" if f.args.is_empty() => {
                error = Some(format!(
                    "Array constructor cannot be empty. Please supply at least one element {ISSUE}."
                ));
            }
            "make_array" if f.args.iter().all(untyped) => {
                error = Some(format!(
                    "Cannot construct an array with all NULL elements {ISSUE}. As a workaround, you may cast a NULL value to the desired type."
                ));
            }
            _ => {}
        }
        Ok(if error.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    error.map_or(Ok(()), |m| Err(SqlError::Invalid(m)))
}

/// The columns the query's sources provide, qualified by their aliases (the sources as
/// `catalog` has them, which for a windowed aggregation has window bounds).
fn scope_schema(scopes: &[Scope<'_>], catalog: &Catalog) -> Option<DFSchema> {
    let mut schema: Option<DFSchema> = None;
    for scope in scopes {
        let source = catalog.get(&scope.source.name).unwrap_or(scope.source);
        let one = DFSchema::try_from_qualified_schema(
            datafusion_common::TableReference::bare(scope.alias.as_str()),
            &scan_schema(source),
        )
        .ok()?;
        schema = Some(match schema {
            None => one,
            Some(s) => s.join(&one).ok()?,
        });
    }
    schema
}

/// Plans one expression; `None` when it fails for a reason other than an unknown name.
fn plan_expr<S: ContextProvider>(
    planner: &SqlToRel<'_, S>,
    expr: &sql::Expr,
    schema: &DFSchema,
    scopes: &[Scope<'_>],
    clause: Clause,
) -> Result<Option<Expr>, SqlError> {
    match planner.sql_to_expr(expr.clone(), schema, &mut PlannerContext::new()) {
        Ok(e) => {
            // An unqualified column is only found ambiguous when it is typed.
            if let Err(error) = e.get_type(schema)
                && let Some(name) = ambiguous_name(&error)
            {
                return Err(ambiguous(&name, expr, scopes));
            }
            let e = super::rewrites::magic_timestamps_in(e)?;
            narrow_integer_literals(e).map(Some)
        }
        Err(e) => {
            if let Some(name) = unresolved_name(&e) {
                return Err(located(unresolved(&name, scopes, clause), expr, &name));
            }
            if let Some(name) = ambiguous_name(&e) {
                return Err(ambiguous(&name, expr, scopes));
            }
            invalid_cast(&e, clause).map_or(Ok(None), Err)
        }
    }
}

/// `name` is a column of several sources.
fn ambiguous(name: &str, expr: &sql::Expr, scopes: &[Scope<'_>]) -> SqlError {
    let candidates: Vec<String> = scopes
        .iter()
        .filter(|s| s.source.column(name).is_some())
        .map(|s| format!("{}.{name}", s.alias))
        .collect();
    let error = SqlError::Invalid(format!(
        "Column '{name}' is ambiguous. Could be {}.",
        candidates.join(" or ")
    ));
    located(error, expr, name)
}

/// The condition of a `JOIN … ON`.
fn join_condition(op: &sql::JoinOperator) -> Option<&sql::Expr> {
    use sql::JoinOperator as J;
    match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c) => match c {
            sql::JoinConstraint::On(e) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

/// The name in DataFusion's "Ambiguous reference to unqualified field X" error.
fn ambiguous_name(e: &DataFusionError) -> Option<String> {
    let text = e.strip_backtrace();
    let rest = text
        .split("Ambiguous reference to unqualified field ")
        .nth(1)?;
    let name = rest.split_whitespace().next()?;
    Some(name.trim_matches('"').to_string())
}

/// `error` placed where `expr` first names the column `name`, as ksqlDB places it.
fn located(error: SqlError, expr: &sql::Expr, name: &str) -> SqlError {
    let (SqlError::Invalid(message) | SqlError::Prepare(message)) = &error else {
        return error;
    };
    if matches!(error, SqlError::Prepare(_)) {
        return error;
    }
    let mut at = None;
    let _ = sql::visit_expressions(expr, |e| {
        let (text, span) = match e {
            sql::Expr::Identifier(i) => (i.value.clone(), i.span),
            sql::Expr::CompoundIdentifier(parts) => match parts.first() {
                Some(first) => (
                    parts
                        .iter()
                        .map(|p| p.value.as_str())
                        .collect::<Vec<_>>()
                        .join("."),
                    first.span,
                ),
                None => return ControlFlow::Continue(()),
            },
            _ => return ControlFlow::Continue(()),
        };
        if text == name && span.start.line > 0 {
            at = Some(Location {
                line: span.start.line,
                column: span.start.column,
            });
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match at {
        Some(location) => SqlError::Located {
            message: message.clone(),
            location,
        },
        None => error,
    }
}

/// A cast ksqlDB does not support, as its message for the clause.
fn invalid_cast(e: &DataFusionError, clause: Clause) -> Option<SqlError> {
    let text = e.strip_backtrace();
    let at = text.find("Cast of ")?;
    Some(SqlError::Invalid(format!(
        "Invalid {}: {}",
        clause.title(),
        &text[at..]
    )))
}

/// The name in DataFusion's "No field named X" error, if that is what `e` is.
pub(crate) fn unresolved_name(e: &DataFusionError) -> Option<String> {
    let text = e.strip_backtrace();
    let rest = text.split("No field named ").nth(1)?;
    let end = rest
        .find(".\n")
        .or_else(|| rest.find(". "))
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('.').replace('"', ""))
}

fn unresolved(name: &str, scopes: &[Scope<'_>], clause: Clause) -> SqlError {
    if let Some((qualifier, _)) = name.split_once('.')
        && !scopes
            .iter()
            .any(|s| s.alias == qualifier || s.source.name == qualifier)
    {
        return SqlError::Prepare(format!(
            "'{qualifier}' is not a valid stream/table name or alias."
        ));
    }
    SqlError::Invalid(format!(
        "{} column '{name}' cannot be resolved.",
        clause.name()
    ))
}

/// ksqlDB types an integer literal that fits as INT (see `narrow_integer_literals` in the
/// planner).
fn narrow_integer_literals(expr: Expr) -> Result<Expr, SqlError> {
    expr.transform_up(|e| match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) if i32::try_from(v).is_ok() => Ok(
            Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v as i32)), meta)),
        ),
        other => Ok(Transformed::no(other)),
    })
    .map(|t| t.data)
    .map_err(|e| SqlError::Plan(e.strip_backtrace()))
}

/// The comparison's name in ksqlDB's messages, for the operators it type-checks.
pub(crate) fn comparison_name(op: Operator) -> Option<&'static str> {
    Some(match op {
        Operator::Eq => "EQUAL",
        Operator::NotEq => "NOT_EQUAL",
        Operator::Lt => "LESS_THAN",
        Operator::LtEq => "LESS_THAN_OR_EQUAL",
        Operator::Gt => "GREATER_THAN",
        Operator::GtEq => "GREATER_THAN_OR_EQUAL",
        Operator::IsDistinctFrom => "IS_DISTINCT_FROM",
        Operator::IsNotDistinctFrom => "IS_NOT_DISTINCT_FROM",
        _ => return None,
    })
}

/// The first comparison in `expr` ksqlDB would reject, as its message.
fn check_comparisons(expr: &Expr, schema: &DFSchema, joined: bool) -> Result<(), String> {
    let mut error = None;
    let _ = expr.apply(|e| {
        if let Expr::BinaryExpr(BinaryExpr { left, op, right }) = e
            && let Some(name) = comparison_name(*op)
            && let Err(message) = check_comparison(left, *op, name, right, schema, joined)
        {
            error = Some(message);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    error.map_or(Ok(()), Err)
}

fn check_comparison(
    left: &Expr,
    op: Operator,
    name: &str,
    right: &Expr,
    schema: &DFSchema,
    joined: bool,
) -> Result<(), String> {
    let sql_type = |e: &Expr| -> Option<Option<SqlType>> {
        let dt = e.get_type(schema).ok()?;
        Some(if dt.is_null() {
            None
        } else {
            SqlType::from_arrow(&dt)
        })
    };
    let (Some(l), Some(r)) = (sql_type(left), sql_type(right)) else {
        return Ok(());
    };
    let (Some(l), Some(r)) = (l.clone(), r.clone()) else {
        let show = |t: &Option<SqlType>| t.as_ref().map_or("NULL".to_string(), |t| t.to_string());
        return Err(format!(
            "Comparison with NULL not supported: {} {} {}\nUse 'IS NULL' or 'IS NOT NULL' instead.",
            show(&l),
            symbol(op),
            show(&r)
        ));
    };
    if comparable(&l, op, &r) {
        return Ok(());
    }
    Err(format!(
        "Cannot compare {} ({l}) to {} ({r}) with {name}.",
        display(left, joined),
        display(right, joined)
    ))
}

/// An operator as ksqlDB writes it.
fn symbol(op: Operator) -> String {
    match op {
        Operator::NotEq => "<>".to_string(),
        Operator::IsDistinctFrom => "IS DISTINCT FROM".to_string(),
        Operator::IsNotDistinctFrom => "IS NOT DISTINCT FROM".to_string(),
        other => other.to_string(),
    }
}

/// ksqlDB's comparison rules: numbers with numbers, strings with strings and temporal
/// values, booleans and nested types with their own kind by (in)equality only.
fn comparable(l: &SqlType, op: Operator, r: &SqlType) -> bool {
    let equality = matches!(
        op,
        Operator::Eq | Operator::NotEq | Operator::IsDistinctFrom | Operator::IsNotDistinctFrom
    );
    let temporal = |t: &SqlType| matches!(t, SqlType::Date | SqlType::Time | SqlType::Timestamp);
    match l {
        l if l.is_numeric() => r.is_numeric(),
        SqlType::String => matches!(r, SqlType::String) || temporal(r),
        l if temporal(l) => temporal(r) || matches!(r, SqlType::String),
        SqlType::Boolean => matches!(r, SqlType::Boolean) && equality,
        SqlType::Bytes => matches!(r, SqlType::Bytes),
        SqlType::Array(_) => matches!(r, SqlType::Array(_)) && equality,
        SqlType::Map(..) => matches!(r, SqlType::Map(..)) && equality,
        SqlType::Struct(_) => matches!(r, SqlType::Struct(_)) && equality,
        _ => true,
    }
}

fn type_name(expr: &Expr, schema: &DFSchema) -> String {
    match expr.get_type(schema) {
        Ok(dt) => SqlType::from_arrow(&dt).map_or_else(|| dt.to_string(), |t| t.to_string()),
        Err(_) => "UNKNOWN".to_string(),
    }
}

/// An expression as ksqlDB prints it in messages: `ID`, `'text'`, `(A + 1.5)`, `RANDOM()`;
/// `joined` when the query joins sources.
/// An expression as ksqlDB prints it in messages: `(COUNT > 1)`, `'text'`, `F(A, 2)`.
pub fn ksql_text(expr: &Expr) -> String {
    display(expr, false)
}

fn display(expr: &Expr, joined: bool) -> String {
    match expr {
        // A joined source's column is named `ALIAS_COLUMN` in the join's result.
        Expr::Column(c) => match &c.relation {
            Some(r) if joined => format!("{}_{}", r.table(), c.name),
            _ => c.name.clone(),
        },
        Expr::Literal(ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)), _) => {
            format!("'{}'", s.replace('\'', "''"))
        }
        Expr::Literal(v, _) if v.is_null() => "null".to_string(),
        Expr::Literal(v, _) => v.to_string(),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            format!(
                "({} {} {})",
                display(left, joined),
                symbol(*op),
                display(right, joined)
            )
        }
        Expr::AggregateFunction(f) => format!(
            "{}({})",
            f.func.name().to_ascii_uppercase(),
            f.params
                .args
                .iter()
                .map(|a| display(a, joined))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // Constructors as written: `ARRAY[1, 2]`, `MAP(1:='a')`.
        Expr::ScalarFunction(f) if f.name() == "make_array" => format!(
            "ARRAY[{}]",
            f.args
                .iter()
                .map(|a| display(a, joined))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::ScalarFunction(f)
            if f.name() == "map"
                && matches!(f.args.as_slice(), [Expr::ScalarFunction(k), Expr::ScalarFunction(v)]
                    if k.name() == "make_array" && v.name() == "make_array") =>
        {
            let (Expr::ScalarFunction(keys), Expr::ScalarFunction(values)) =
                (&f.args[0], &f.args[1])
            else {
                return String::new();
            };
            format!(
                "MAP({})",
                keys.args
                    .iter()
                    .zip(&values.args)
                    .map(|(k, v)| format!("{}:={}", display(k, joined), display(v, joined)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Expr::ScalarFunction(f) => format!(
            "{}({})",
            f.name().to_ascii_uppercase(),
            f.args
                .iter()
                .map(|a| display(a, joined))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Alias(a) => display(&a.expr, joined),
        // A DOUBLE literal (`1.5E3`) is planned as a cast of its text.
        Expr::Cast(c)
            if matches!(
                c.expr.as_ref(),
                Expr::Literal(ScalarValue::Utf8(Some(_)), _)
            ) =>
        {
            match c.expr.as_ref() {
                Expr::Literal(ScalarValue::Utf8(Some(text)), _) => text.clone(),
                other => display(other, joined),
            }
        }
        // Casts the planner adds to line up types are not written by the user.
        Expr::Cast(c) => display(&c.expr, joined),
        Expr::TryCast(c) => display(&c.expr, joined),
        other => other.to_string(),
    }
}

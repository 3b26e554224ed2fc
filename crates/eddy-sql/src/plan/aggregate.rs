//! Aggregations: ksqlDB's aggregate functions as DataFusion UDAFs (they bind and type the
//! query; the engine evaluates them with its own accumulators), and reading DataFusion's
//! `Aggregate` node back into a [`PlannedAggregate`].

use std::sync::Arc;

use arrow::datatypes::{DataType, Field};
use datafusion_common::{Column as DfColumn, DFSchemaRef, Result as DfResult, plan_err};
use datafusion_expr::function::AccumulatorArgs;
use datafusion_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Expr, Signature, TypeSignature, Volatility,
};
use datafusion_sql::sqlparser::ast as sql;

use super::OutputColumn;
use super::strip_cast;
use crate::catalog::ColumnRole;
use crate::error::SqlError;
use crate::window::WindowSpec;

/// ksqlDB's aggregate functions, lower-case.
const NAMES: &[&str] = &[
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "latest_by_offset",
    "earliest_by_offset",
    "collect_list",
    "collect_set",
    "topk",
    "topkdistinct",
    "histogram",
    "stddev_samp",
    "stddev_sample",
    "correlation",
];

/// Every ksqlDB aggregate function, for the planner's function library.
pub fn ksql_aggregates() -> Vec<Arc<AggregateUDF>> {
    NAMES
        .iter()
        .map(|name| Arc::new(AggregateUDF::new_from_impl(KsqlAggregate::new(name))))
        .collect()
}

/// A ksqlDB aggregate function as DataFusion sees it: a name, any arguments, and ksqlDB's
/// result type.
#[derive(Debug, PartialEq, Eq, Hash)]
struct KsqlAggregate {
    name: &'static str,
    signature: Signature,
}

impl KsqlAggregate {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            signature: Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Immutable,
            ),
        }
    }
}

/// The element type of a multi-column `TOPK` over columns of these types: `sort_col`, then
/// `col0`, `col1`, … for the other columns, as ksqlDB names them.
pub fn topk_struct(columns: &[DataType]) -> DataType {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let name = match i {
                0 => "sort_col".to_string(),
                i => format!("col{}", i - 1),
            };
            Field::new(name, t.clone(), true)
        })
        .collect();
    DataType::Struct(fields.into())
}

fn is_numeric(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..))
}

impl AggregateUDFImpl for KsqlAggregate {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let upper = self.name.to_ascii_uppercase();
        if self.name == "count" {
            return Ok(DataType::Int64);
        }
        let Some(first) = args.first() else {
            return plan_err!("Function '{upper}' does not accept parameters ().");
        };
        let list = |t: &DataType| DataType::List(Arc::new(Field::new_list_field(t.clone(), true)));
        Ok(match self.name {
            "count_distinct" => DataType::Int64,
            "sum" => match first {
                DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int32,
                DataType::Int64 => DataType::Int64,
                DataType::Float32 | DataType::Float64 => DataType::Float64,
                DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
                other => return super::functions::rejected("SUM", std::slice::from_ref(other)),
            },
            "correlation" => match args {
                [x, y] if is_numeric(x) && is_numeric(y) => DataType::Float64,
                _ => return super::functions::rejected("CORRELATION", args),
            },
            "avg" | "stddev_samp" | "stddev_sample" => {
                if !is_numeric(first) {
                    return super::functions::rejected(&upper, std::slice::from_ref(first));
                }
                DataType::Float64
            }
            "min" | "max" => first.clone(),
            "latest_by_offset" | "earliest_by_offset" => {
                if args.get(1).is_some_and(DataType::is_integer) {
                    list(first)
                } else {
                    first.clone()
                }
            }
            // TOPK(col, other cols…, k): STRUCTs of the sort column and the others.
            "topk" if args.len() > 2 => list(&topk_struct(&args[..args.len() - 1])),
            "collect_list" | "collect_set" | "topk" | "topkdistinct" => list(first),
            "histogram" => DataType::Map(
                Arc::new(Field::new(
                    "entries",
                    DataType::Struct(
                        vec![
                            Field::new("key", DataType::Utf8, false),
                            Field::new("value", DataType::Int64, true),
                        ]
                        .into(),
                    ),
                    false,
                )),
                false,
            ),
            other => return plan_err!("unknown aggregate function {other}"),
        })
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> DfResult<Box<dyn Accumulator>> {
        plan_err!(
            "{} is evaluated by Eddy's engine, not DataFusion's",
            self.name
        )
    }
}

/// A `GROUP BY` query's aggregation.
#[derive(Debug, Clone)]
pub struct PlannedAggregate {
    /// Grouping expressions over the query's input schema. For a windowed aggregation the
    /// last two are `WINDOWSTART` and `WINDOWEND`.
    pub group_by: Vec<Expr>,
    /// The aggregate calls, in the order of their output columns.
    pub calls: Vec<AggregateCall>,
    /// `WINDOW …`, if any.
    pub window: Option<WindowSpec>,
    /// The aggregation's output rows: the grouping columns, then one column per call. The
    /// projection and `having` are over this schema.
    pub schema: DFSchemaRef,
    /// `HAVING`, over `schema`.
    pub having: Option<Expr>,
}

/// One aggregate function call.
#[derive(Debug, Clone)]
pub struct AggregateCall {
    /// The function, lower-case (e.g. `count`).
    pub function: String,
    /// Its arguments, over the query's input schema.
    pub args: Vec<Expr>,
    /// `DISTINCT`
    pub distinct: bool,
    /// The result type.
    pub data_type: DataType,
}

impl PlannedAggregate {
    /// How many grouping expressions are the window's bounds (0 or 2).
    pub fn window_columns(&self) -> usize {
        if self.window.is_some() { 2 } else { 0 }
    }
}

/// Reads DataFusion's `Aggregate` node.
pub(crate) fn read(
    aggregate: &datafusion_expr::logical_plan::Aggregate,
    window: Option<WindowSpec>,
    having: Option<Expr>,
) -> Result<PlannedAggregate, SqlError> {
    let groups = aggregate.group_expr.len();
    let mut calls = Vec::with_capacity(aggregate.aggr_expr.len());
    for (i, e) in aggregate.aggr_expr.iter().enumerate() {
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(f) = inner else {
            return Err(SqlError::Plan(format!(
                "unexpected aggregate expression {e}"
            )));
        };
        if f.params.filter.is_some() || !f.params.order_by.is_empty() {
            return Err(SqlError::Unsupported(
                "FILTER or ORDER BY in an aggregate call".into(),
            ));
        }
        calls.push(AggregateCall {
            function: f.func.name().to_ascii_lowercase(),
            args: f.params.args.clone(),
            distinct: f.params.distinct,
            data_type: aggregate.schema.field(groups + i).data_type().clone(),
        });
    }
    if aggregate
        .group_expr
        .iter()
        .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Err(SqlError::Unsupported(
            "GROUPING SETS, CUBE and ROLLUP".into(),
        ));
    }
    Ok(PlannedAggregate {
        group_by: aggregate.group_expr.clone(),
        calls,
        window,
        schema: Arc::clone(&aggregate.schema),
        having,
    })
}

/// ksqlDB's key rule for an aggregation: every grouping expression is a key column, under
/// the name the projection gives it, and must be in the projection.
pub(crate) fn assign_keys(
    columns: &mut [OutputColumn],
    aggregate: &PlannedAggregate,
    sink: &str,
) -> Result<(), SqlError> {
    let keys = aggregate.group_by.len() - aggregate.window_columns();
    let mut order = Vec::with_capacity(keys);
    let mut missing = Vec::new();
    for (i, group) in aggregate.group_by.iter().take(keys).enumerate() {
        let (qualifier, field) = aggregate.schema.qualified_field(i);
        let wanted = Expr::Column(DfColumn::new(qualifier.cloned(), field.name()));
        let found: Vec<usize> = (0..columns.len())
            .filter(|&c| strip_cast(&columns[c].expr) == wanted)
            .collect();
        match found.as_slice() {
            [] => missing.push(super::display_unqualified(group)),
            [one] => {
                columns[*one].role = ColumnRole::Key;
                order.push(*one);
            }
            [a, b, ..] => {
                return Err(SqlError::Invalid(format!(
                    "The projection contains a key column more than once: `{}` and `{}`.",
                    columns[*a].name, columns[*b].name
                )));
            }
        }
    }
    if !missing.is_empty() {
        return Err(SqlError::Invalid(format!(
            "Key missing from projection (ie, SELECT).\nThe query used to build `{sink}` must include the grouping {} in its projection (eg, SELECT {}...).",
            super::listed("expression", &missing),
            missing.join(", ")
        )));
    }
    // Key columns come in GROUP BY order.
    let mut reordered: Vec<OutputColumn> = order.iter().map(|&i| columns[i].clone()).collect();
    reordered.extend(
        columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !order.contains(i))
            .map(|(_, c)| c.clone()),
    );
    columns.clone_from_slice(&reordered);
    Ok(())
}

/// Whether `name` is an aggregate function.
pub(crate) fn is_aggregate_name(name: &str) -> bool {
    NAMES.contains(&name.to_ascii_lowercase().as_str())
}

/// ksqlDB's grouping rules, checked on the statement as written: GROUP BY needs aggregate
/// functions, and every other SELECT or HAVING expression must be made of grouping
/// expressions (or window bounds, or literals).
/// `pull`: a pull query, whose unknown WHERE columns ksqlDB words differently.
pub(crate) fn check_grouping(
    select: &sql::Select,
    source_windowed: bool,
    pull: bool,
) -> Result<(), SqlError> {
    let groups: &[sql::Expr] = match &select.group_by {
        sql::GroupByExpr::Expressions(e, _) => e,
        sql::GroupByExpr::All(_) => &[],
    };
    check_window_bounds(select, groups, source_windowed, pull)?;
    check_nesting(select, groups)?;
    let items: Vec<&sql::Expr> = select
        .projection
        .iter()
        .filter_map(|i| match i {
            sql::SelectItem::UnnamedExpr(e) | sql::SelectItem::ExprWithAlias { expr: e, .. } => {
                Some(e)
            }
            _ => None,
        })
        .collect();
    if !functions_known(select) {
        return Ok(());
    }
    let aggregates =
        items.iter().any(|e| has_aggregate(e)) || select.having.as_ref().is_some_and(has_aggregate);
    if !aggregates {
        if !groups.is_empty() {
            return Err(SqlError::Invalid(
                "GROUP BY requires aggregate functions in either the SELECT or HAVING clause."
                    .into(),
            ));
        }
        return Ok(());
    }
    let bad: Vec<String> = items
        .iter()
        .filter(|e| !grouped(e, groups))
        .map(|e| ksql_text(e))
        .collect();
    if !bad.is_empty() {
        return Err(SqlError::Invalid(format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {}\nEither add the column(s) to the GROUP BY or remove them from the SELECT.",
            bad.join(", ")
        )));
    }
    if let Some(h) = &select.having
        && let Some(column) = ungrouped_column(h, groups)
    {
        return Err(SqlError::Invalid(format!(
            "Non-aggregate HAVING expression not part of GROUP BY: {column}\nEither add the column to the GROUP BY or remove it from the HAVING."
        )));
    }
    Ok(())
}

fn function_name(f: &sql::Function) -> String {
    f.name.to_string()
}

fn has_aggregate(e: &sql::Expr) -> bool {
    let mut found = false;
    let _ = sql::visit_expressions(e, |e| {
        if let sql::Expr::Function(f) = e
            && is_aggregate_name(&function_name(f))
        {
            found = true;
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// The same expression, ignoring how columns are qualified.
fn same(a: &sql::Expr, b: &sql::Expr) -> bool {
    unqualified(a) == unqualified(b)
}

fn unqualified(e: &sql::Expr) -> String {
    let mut e = e.clone();
    let _ = sql::visit_expressions_mut(&mut e, |e| {
        if let sql::Expr::CompoundIdentifier(parts) = e
            && let Some(last) = parts.last().cloned()
        {
            *e = sql::Expr::Identifier(last);
        }
        while let sql::Expr::Nested(inner) = e {
            *e = inner.as_ref().clone();
        }
        if let sql::Expr::Function(f) = e {
            let upper = f.name.to_string().to_ascii_uppercase();
            f.name = sql::ObjectName::from(vec![sql::Ident::new(upper)]);
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    e.to_string()
}

fn is_window_bound(e: &sql::Expr) -> bool {
    let name = match e {
        sql::Expr::Identifier(i) => &i.value,
        sql::Expr::CompoundIdentifier(parts) => match parts.last() {
            Some(i) => &i.value,
            None => return false,
        },
        _ => return false,
    };
    name == super::WINDOWSTART || name == super::WINDOWEND
}

/// Whether `e` is computed from grouping expressions, aggregates and literals only.
fn grouped(e: &sql::Expr, groups: &[sql::Expr]) -> bool {
    ungrouped_column(e, groups).is_none()
}

/// A column of `e` outside every aggregate call and grouping expression, if any.
fn ungrouped_column(e: &sql::Expr, groups: &[sql::Expr]) -> Option<String> {
    if groups.iter().any(|g| same(g, e)) || is_window_bound(e) {
        return None;
    }
    let any = |es: &mut dyn Iterator<Item = &sql::Expr>| -> Option<String> {
        for e in es {
            if let Some(c) = ungrouped_column(e, groups) {
                return Some(c);
            }
        }
        None
    };
    match e {
        sql::Expr::Identifier(i) => Some(i.value.clone()),
        sql::Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
        sql::Expr::Value(_) | sql::Expr::TypedString { .. } => None,
        sql::Expr::Function(f) if is_aggregate_name(&function_name(f)) => None,
        sql::Expr::Function(f) => match &f.args {
            sql::FunctionArguments::List(list) => {
                any(&mut list.args.iter().filter_map(|a| match a {
                    sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(e))
                    | sql::FunctionArg::Named {
                        arg: sql::FunctionArgExpr::Expr(e),
                        ..
                    }
                    | sql::FunctionArg::ExprNamed {
                        arg: sql::FunctionArgExpr::Expr(e),
                        ..
                    } => Some(e),
                    _ => None,
                }))
            }
            _ => None,
        },
        sql::Expr::BinaryOp { left, right, .. } => {
            any(&mut [left.as_ref(), right.as_ref()].into_iter())
        }
        sql::Expr::UnaryOp { expr, .. }
        | sql::Expr::Nested(expr)
        | sql::Expr::Cast { expr, .. }
        | sql::Expr::IsNull(expr)
        | sql::Expr::IsNotNull(expr)
        | sql::Expr::IsTrue(expr)
        | sql::Expr::IsFalse(expr) => ungrouped_column(expr, groups),
        sql::Expr::Between {
            expr, low, high, ..
        } => any(&mut [expr.as_ref(), low.as_ref(), high.as_ref()].into_iter()),
        sql::Expr::InList { expr, list, .. } => {
            any(&mut std::iter::once(expr.as_ref()).chain(list.iter()))
        }
        sql::Expr::Like { expr, pattern, .. } | sql::Expr::ILike { expr, pattern, .. } => {
            any(&mut [expr.as_ref(), pattern.as_ref()].into_iter())
        }
        sql::Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => any(&mut operand
            .iter()
            .map(|e| e.as_ref())
            .chain(conditions.iter().flat_map(|c| [&c.condition, &c.result]))
            .chain(else_result.iter().map(|e| e.as_ref()))),
        sql::Expr::CompoundFieldAccess { root, .. } => ungrouped_column(root, groups),
        sql::Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => any(&mut std::iter::once(expr.as_ref())
            .chain(substring_from.iter().map(|e| e.as_ref()))
            .chain(substring_for.iter().map(|e| e.as_ref()))),
        other => {
            // Anything else: its columns, wherever they are.
            let mut found = None;
            let _ = sql::visit_expressions(other, |sub| {
                if let sql::Expr::Identifier(i) = sub
                    && !groups.iter().any(|g| same(g, sub))
                {
                    found = Some(i.value.clone());
                    return std::ops::ControlFlow::Break(());
                }
                std::ops::ControlFlow::Continue(())
            });
            found
        }
    }
}

/// Whether every function `select` calls is known (else the planner reports the unknown
/// one first, as ksqlDB does).
fn functions_known(select: &sql::Select) -> bool {
    let mut known = true;
    let _ = sql::visit_expressions(select, |e| {
        if let sql::Expr::Function(f) = e {
            let name = function_name(f);
            if !is_aggregate_name(&name) && super::Functions::get().scalar(&name).is_none() {
                known = false;
                return std::ops::ControlFlow::Break(());
            }
        }
        std::ops::ControlFlow::Continue(())
    });
    known
}

/// An expression as ksqlDB prints it in messages: binary operations in parentheses,
/// columns unqualified.
fn ksql_text(e: &sql::Expr) -> String {
    match e {
        sql::Expr::BinaryOp { left, op, right } => {
            format!("({} {op} {})", ksql_text(left), ksql_text(right))
        }
        sql::Expr::Nested(inner) => ksql_text(inner),
        other => unqualified(other),
    }
}

fn mentions_window_bound(e: &sql::Expr) -> Option<String> {
    let mut found = None;
    let _ = sql::visit_expressions(e, |sub| {
        if is_window_bound(sub) {
            found = Some(match sub {
                sql::Expr::Identifier(i) => i.value.clone(),
                sql::Expr::CompoundIdentifier(p) => {
                    p.last().map(|i| i.value.clone()).unwrap_or_default()
                }
                _ => String::new(),
            });
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    });
    found
}

/// WINDOWSTART and WINDOWEND are outputs of a windowed aggregation: they may be selected,
/// not grouped by, aggregated or filtered on (unless the source itself is windowed).
fn check_window_bounds(
    select: &sql::Select,
    groups: &[sql::Expr],
    source_windowed: bool,
    pull: bool,
) -> Result<(), SqlError> {
    if !source_windowed && let Some(w) = select.selection.as_ref().and_then(mentions_window_bound) {
        return Err(SqlError::Invalid(if pull {
            format!("WHERE column '{w}' cannot be resolved.")
        } else {
            format!("Error in WHERE expression: Unknown column {w}.")
        }));
    }
    let misuse = |name: String| {
        SqlError::Invalid(format!(
            "Window bounds column {name} can only be used in the SELECT clause of windowed aggregations"
        ))
    };
    if source_windowed {
        return Ok(());
    }
    // Reported in ksqlDB's order: WINDOWSTART before WINDOWEND.
    let first = |found: Vec<String>| -> Option<String> {
        if found.iter().any(|f| f == super::WINDOWSTART) {
            Some(super::WINDOWSTART.to_string())
        } else {
            found.into_iter().next()
        }
    };
    let in_groups: Vec<String> = groups.iter().filter_map(mentions_window_bound).collect();
    if let Some(name) = first(in_groups) {
        return Err(misuse(name));
    }
    let mut in_aggregates = Vec::new();
    let mut having = Vec::new();
    for item in &select.projection {
        if let sql::SelectItem::UnnamedExpr(e) | sql::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            let _ = sql::visit_expressions(e, |sub| {
                if let sql::Expr::Function(f) = sub
                    && is_aggregate_name(&function_name(f))
                    && let Some(w) = mentions_window_bound(sub)
                {
                    in_aggregates.push(w);
                }
                std::ops::ControlFlow::<()>::Continue(())
            });
        }
    }
    if let Some(h) = &select.having {
        having.extend(mentions_window_bound(h));
    }
    match first(in_aggregates).or_else(|| first(having)) {
        Some(name) => Err(misuse(name)),
        None => Ok(()),
    }
}

/// Aggregates may not be nested, nor grouped by.
fn check_nesting(select: &sql::Select, groups: &[sql::Expr]) -> Result<(), SqlError> {
    for g in groups {
        let mut found = None;
        let _ = sql::visit_expressions(g, |sub| {
            if let sql::Expr::Function(f) = sub
                && is_aggregate_name(&function_name(f))
            {
                found = Some(function_name(f).to_ascii_uppercase());
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        });
        if let Some(name) = found {
            return Err(SqlError::Invalid(format!(
                "GROUP BY does not support aggregate functions: {name} is an aggregate function."
            )));
        }
    }
    let mut nested = None;
    for item in &select.projection {
        if let sql::SelectItem::UnnamedExpr(e) | sql::SelectItem::ExprWithAlias { expr: e, .. } =
            item
        {
            let _ = sql::visit_expressions(e, |sub| {
                if let sql::Expr::Function(f) = sub
                    && is_aggregate_name(&function_name(f))
                {
                    let mut inner = false;
                    let mut depth = 0;
                    let _ = sql::visit_expressions(sub, |x| {
                        depth += 1;
                        if depth > 1
                            && let sql::Expr::Function(g) = x
                            && is_aggregate_name(&function_name(g))
                        {
                            inner = true;
                            return std::ops::ControlFlow::Break(());
                        }
                        std::ops::ControlFlow::Continue(())
                    });
                    if inner {
                        nested = Some(ksql_text(sub));
                        return std::ops::ControlFlow::Break(());
                    }
                }
                std::ops::ControlFlow::Continue(())
            });
        }
        if let Some(n) = nested {
            return Err(SqlError::Invalid(format!(
                "Aggregate functions can not be nested: {n}"
            )));
        }
    }
    Ok(())
}

/// What ksqlDB refuses to aggregate: a KAFKA-format source; a DELIMITED one with functions
/// whose intermediate state is not a primitive; LATEST/EARLIEST_BY_OFFSET, MIN and MAX over
/// a table (they cannot take a row back out).
pub(crate) fn check_sources(
    aggregate: &PlannedAggregate,
    scopes: &[super::projection::Scope<'_>],
) -> Result<(), SqlError> {
    use crate::catalog::{FormatName, SourceKind};
    let Some(from) = scopes.first() else {
        return Ok(());
    };
    if from.source.value_format == FormatName::Kafka {
        return Err(SqlError::Invalid(format!(
            "Source(s) {} are using the 'KAFKA' value format. This format does not yet support GROUP BY.",
            from.source.name
        )));
    }
    let structured = [
        "avg",
        "topk",
        "topkdistinct",
        "collect_list",
        "collect_set",
        "histogram",
        "latest_by_offset",
        "earliest_by_offset",
        "stddev_samp",
        "stddev_sample",
    ];
    let calls_any = |names: &[&str]| {
        aggregate
            .calls
            .iter()
            .any(|c| names.contains(&c.function.as_str()))
    };
    if from.source.value_format == FormatName::Delimited && calls_any(&structured) {
        return Err(SqlError::Invalid(
            "One of the functions used in the statement has an intermediate type that the value format can not handle. Please remove the function or change the format."
                .into(),
        ));
    }
    let irreversible = ["latest_by_offset", "earliest_by_offset", "min", "max"];
    if from.source.kind == SourceKind::Table && calls_any(&irreversible) {
        return Err(SqlError::Invalid(
            "The aggregation functions LATEST_BY_OFFSET, MIN and MAX cannot be applied to a table source, only to a stream source."
                .into(),
        ));
    }
    Ok(())
}

//! Binding a query: from a [`KsqlQuery`] and the [`Catalog`] to a [`QueryPlan`].
//!
//! The SELECT is planned by DataFusion's SQL planner (after [`projection`] has applied ksqlDB's
//! naming rules), type-coerced by DataFusion's analyzer, and then read back into the small
//! shape a continuous query has: one driving source, at most one stream–table join, a filter
//! and a projection whose columns are split into key and value the way ksqlDB splits them.

mod aggregate;
mod cast;
mod checks;
pub mod describe;
pub(crate) mod functions;
pub mod library;
mod projection;
mod provider;
mod rewrites;
pub mod signatures;
mod stages;
mod upgrade;

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion_common::tree_node::{Transformed, TreeNode};
use datafusion_common::{DFSchemaRef, ScalarValue};
use datafusion_expr::{BinaryExpr, Expr, ExprSchemable, JoinType, LogicalPlan, Operator};
use datafusion_optimizer::Analyzer;
use datafusion_sql::planner::{ParserOptions, SqlToRel};
use datafusion_sql::sqlparser::ast::{
    self as sql, JoinConstraint, JoinOperator, LimitClause, SetExpr, TableFactor,
};

use crate::ast::{Emit, KsqlQuery};
use crate::catalog::{Catalog, Column, ColumnRole, Source, SourceKind};
use crate::error::SqlError;
use crate::types::SqlType;
use crate::window::WindowSpec;
use projection::{Scope, name_projection};
use provider::{CatalogProvider, describe_plan_error};

pub use aggregate::{AggregateCall, PlannedAggregate, ksql_aggregates, topk_struct};
pub(crate) use cast::KSQL_CAST;

/// Functions the planner calls by name for syntax of its own (`CAST` to a nested type,
/// `CUBE_EXPLODE`); a statement cannot name them.
pub(crate) const INTERNAL_FUNCTIONS: [&str; 2] = [KSQL_CAST, functions::CUBE_COMBINATIONS];
pub use checks::ksql_text;
pub use functions::TimestampFormat;
pub use provider::{
    Functions, ROWOFFSET, ROWPARTITION, ROWTIME, WINDOWEND, WINDOWSTART, is_pseudo_column,
    scan_schema,
};
pub use stages::{FirstJoin, first_join, rest_of_join};
pub use upgrade::upgrade_refusal;

/// A continuous query, bound and ready to be turned into operators.
#[derive(Debug, Clone)]
pub struct QueryPlan {
    /// The driving source: every output row comes from one of its records.
    pub from: PlannedSource,
    /// The stream–table join, if any.
    pub join: Option<PlannedJoin>,
    /// The rows `filter` and `columns` read: the scan of `from`, then the scan of the joined
    /// table, qualified by their aliases.
    pub input_schema: DFSchemaRef,
    /// `WHERE`, over `input_schema`.
    pub filter: Option<Expr>,
    /// `GROUP BY` (and `WINDOW`, `HAVING`), if the query aggregates.
    pub aggregate: Option<PlannedAggregate>,
    /// Output columns in projection order, each marked key or value; over `input_schema`,
    /// or over the aggregation's schema when there is one.
    pub columns: Vec<OutputColumn>,
    /// `LIMIT n`
    pub limit: Option<u64>,
    /// `PARTITION BY`: the key is computed, so a key whose columns are all null is still a
    /// key (a source record's null key stays null otherwise).
    pub rekeyed: bool,
    /// Output columns produced by `EXPLODE(array)`: each input row becomes one row per
    /// element (the column's expression yields the array; its type is the element's).
    pub exploded: Vec<String>,
    /// Whether the result is a stream or a table.
    pub kind: SourceKind,
    /// `EMIT CHANGES|FINAL`; `None` for a pull query.
    pub emit: Option<Emit>,
}

/// A source read by a query.
#[derive(Debug, Clone)]
pub struct PlannedSource {
    /// The catalog entry.
    pub source: Source,
    /// The name the query uses for it (its alias, else its name).
    pub alias: String,
    /// Its scan columns (see [`scan_schema`]) qualified by `alias`.
    pub schema: DFSchemaRef,
}

/// A stream–table join: each stream record looks up the table row whose primary key equals
/// `stream_key`.
#[derive(Debug, Clone)]
pub struct PlannedJoin {
    /// The table (the right-hand stream, for a stream–stream join).
    pub table: PlannedSource,
    /// Inner or left.
    pub kind: JoinKind,
    /// The stream-side join expression, over `from.schema`.
    pub stream_key: Expr,
    /// The right-hand side's join expression, over `table.schema`.
    pub table_key: Expr,
    /// `WITHIN …`: set for (and only for) a stream–stream join.
    pub within: Option<crate::ast::JoinWindow>,
    /// A foreign-key table–table join: `stream_key` is an expression over the left table's
    /// row other than its primary key, matched with the right table's primary key; the
    /// result is keyed by the left table's primary key.
    pub foreign_key: bool,
}

/// The kinds of stream–table join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// Only stream records with a matching table row.
    Inner,
    /// Every stream record; table columns null without a match.
    Left,
    /// Every record of the right-hand side (stream–stream and table–table joins only).
    Right,
    /// Every record of both sides (stream–stream and table–table joins only).
    Full,
}

/// One output column.
#[derive(Debug, Clone)]
pub struct OutputColumn {
    /// Column name.
    pub name: String,
    /// Expression over the plan's `input_schema`.
    pub expr: Expr,
    /// Its SQL type.
    pub ty: SqlType,
    /// Key or value.
    pub role: ColumnRole,
}

impl QueryPlan {
    /// Whether the aggregation must repartition its input so that each group's records
    /// meet in one task, as ksqlDB's `GROUP BY` does through an internal topic: an
    /// aggregation of an unwindowed stream (joined or not) or table (unjoined) whose groups
    /// are not exactly the driving source's key columns, in order. (Records with equal keys
    /// share a partition; records with equal other columns need not.)
    pub fn groups_need_repartition(&self) -> bool {
        let Some(aggregate) = &self.aggregate else {
            return false;
        };
        if self.from.source.window.is_some()
            || (self.join.is_some() && self.from.source.kind != SourceKind::Stream)
        {
            return false;
        }
        let groups = &aggregate.group_by[..aggregate.group_by.len() - aggregate.window_columns()];
        let keys: Vec<&Column> = self.from.source.key_columns().collect();
        groups.len() != keys.len()
            || groups
                .iter()
                .zip(&keys)
                .any(|(g, k)| !matches!(g, Expr::Column(c) if c.name == k.name))
    }

    /// The names of the driving source's columns the query reads (in `WHERE`, the
    /// projection, `GROUP BY` and the aggregates' arguments), or `None` when it may read
    /// any: a join, whose conditions and lookups this does not follow.
    pub fn read_columns(&self) -> Option<std::collections::HashSet<String>> {
        if self.join.is_some() {
            return None;
        }
        let exprs: Vec<&Expr> = match &self.aggregate {
            Some(a) => a
                .group_by
                .iter()
                .chain(a.calls.iter().flat_map(|c| &c.args))
                .collect(),
            None => self.columns.iter().map(|c| &c.expr).collect(),
        };
        let mut names = std::collections::HashSet::new();
        for expr in exprs.into_iter().chain(&self.filter) {
            names.extend(expr.column_refs().into_iter().map(|c| c.name.clone()));
        }
        Some(names)
    }

    /// The output schema as catalog columns: key columns first, then value columns.
    pub fn output_columns(&self) -> Vec<Column> {
        let col = |c: &OutputColumn| Column {
            name: c.name.clone(),
            ty: c.ty.clone(),
            role: c.role.clone(),
        };
        let keys = self.columns.iter().filter(|c| c.role == ColumnRole::Key);
        let values = self.columns.iter().filter(|c| c.role == ColumnRole::Value);
        keys.chain(values).map(col).collect()
    }
}

/// The statement a query is planned for: a persistent query writing into a new or existing
/// source has ksqlDB's key rules applied; a transient query does not.
#[derive(Debug, Clone, Copy)]
pub struct Sink<'a> {
    /// The sink's name.
    pub name: &'a str,
    /// What the statement creates or inserts into.
    pub kind: SourceKind,
}

/// Binds `query` against `catalog`.
pub fn plan_query(
    query: &KsqlQuery,
    catalog: &Catalog,
    sink: Option<Sink<'_>>,
) -> Result<QueryPlan, SqlError> {
    let select = match query.select.body.as_ref() {
        SetExpr::Select(select) => select,
        other => return Err(SqlError::Unsupported(format!("'{other}' as a query"))),
    };
    if query.select.with.is_some() {
        return Err(SqlError::Unsupported(
            "WITH (common table expressions)".into(),
        ));
    }
    if query.select.order_by.is_some() {
        return Err(SqlError::Unsupported("ORDER BY".into()));
    }
    let grouped = !matches!(&select.group_by, sql::GroupByExpr::Expressions(e, _) if e.is_empty());
    if query.partition_by.is_some() && grouped {
        return Err(SqlError::Unsupported("PARTITION BY with GROUP BY".into()));
    }
    if select.distinct.is_some() {
        return Err(SqlError::Unsupported("SELECT DISTINCT".into()));
    }
    let limit = limit_of(query.select.limit_clause.as_ref())?;
    if let Some(sink) = &sink
        && limit.is_some()
    {
        let kind = match sink.kind {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        };
        return Err(SqlError::Invalid(format!(
            "CREATE {kind} AS SELECT statements don't support LIMIT clause."
        )));
    }

    let [from] = select.from.as_slice() else {
        return Err(SqlError::Unsupported(
            "a FROM clause with several sources (use JOIN)".into(),
        ));
    };
    let left = resolve(&from.relation, catalog)?;
    let mut scopes = vec![Scope {
        source: left.0,
        alias: left.1.clone(),
    }];
    let mut join_kind = None;
    match from.joins.as_slice() {
        [] => {}
        [join] => {
            let right = resolve(&join.relation, catalog)?;
            join_kind = Some(check_join(
                &join.join_operator,
                (left.0, &left.1),
                (right.0, &right.1),
            )?);
            let windowed = query.within.first().is_some_and(Option::is_some);
            if windowed && (left.0.kind, right.0.kind) == (SourceKind::Stream, SourceKind::Table) {
                return Err(SqlError::Invalid(
                    "A window definition was provided for a Stream-Table join. These joins are not windowed. Please drop the window definition (ie. the WITHIN clause) and try to execute your join again."
                        .into(),
                ));
            }
            scopes.push(Scope {
                source: right.0,
                alias: right.1.clone(),
            });
        }
        _ => {
            return Err(SqlError::Unsupported(
                "joins of more than two sources".into(),
            ));
        }
    }

    if sink.is_some() {
        projection::check_reserved_names(&name_projection(&select.projection, &scopes, false)?)?;
    }
    let pull = sink.is_none() && query.emit.is_none();
    aggregate::check_grouping(select, left.0.window.is_some(), pull)?;
    check_join_formats(&scopes)?;
    let mut select = select.clone();
    let star = select
        .projection
        .iter()
        .any(|i| matches!(i, sql::SelectItem::Wildcard(_)));
    select.projection = name_projection(&select.projection, &scopes, sink.is_none())?;
    // EXPLODE(array): the projection computes the array; the engine makes one row per element.
    // CUBE_EXPLODE(array) is EXPLODE of the array's combinations.
    let mut exploded = Vec::new();
    for item in &mut select.projection {
        if let sql::SelectItem::ExprWithAlias { expr, .. } = item
            && let sql::Expr::Function(f) = expr
            && f.name.to_string().eq_ignore_ascii_case("cube_explode")
        {
            let mut combinations = f.clone();
            combinations.name =
                sql::ObjectName::from(vec![sql::Ident::new(functions::CUBE_COMBINATIONS)]);
            f.args = sql::FunctionArguments::List(sql::FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(
                    sql::Expr::Function(combinations),
                ))],
                clauses: Vec::new(),
            });
            f.name = sql::ObjectName::from(vec![sql::Ident::new("EXPLODE")]);
        }
        if let sql::SelectItem::ExprWithAlias { expr, alias } = item
            && let sql::Expr::Function(f) = expr
            && f.name.to_string().eq_ignore_ascii_case("explode")
        {
            let sql::FunctionArguments::List(list) = &f.args else {
                return Err(SqlError::Invalid(
                    "EXPLODE takes one ARRAY argument.".into(),
                ));
            };
            let [sql::FunctionArg::Unnamed(sql::FunctionArgExpr::Expr(array))] =
                list.args.as_slice()
            else {
                return Err(SqlError::Invalid(
                    "EXPLODE takes one ARRAY argument.".into(),
                ));
            };
            *expr = array.clone();
            exploded.push(alias.value.clone());
        }
    }
    if !exploded.is_empty()
        && !matches!(&select.group_by, sql::GroupByExpr::Expressions(e, _) if e.is_empty())
    {
        return Err(SqlError::Invalid(
            "Table functions cannot be used with aggregations.".into(),
        ));
    }
    // PARTITION BY expressions are planned as hidden projection items and read back below.
    let partition_by = query.partition_by.as_deref().unwrap_or_default();
    for (i, e) in partition_by.iter().enumerate() {
        select.projection.push(sql::SelectItem::ExprWithAlias {
            expr: e.clone(),
            alias: sql::Ident::with_quote('"', format!("{PARTITION_PREFIX}{i}")),
        });
    }
    // A windowed aggregation groups by the window too: the driving source is planned with
    // WINDOWSTART and WINDOWEND columns, which the engine fills in per window.
    let mut windowed_catalog;
    let mut plan_catalog = catalog;
    if let Some(window) = &query.window {
        let sql::GroupByExpr::Expressions(exprs, _) = &mut select.group_by else {
            return Err(SqlError::Unsupported("GROUP BY ALL".into()));
        };
        if exprs.is_empty() {
            return Err(SqlError::Invalid(
                "WINDOW clause requires a GROUP BY clause.".into(),
            ));
        }
        exprs.push(sql::Expr::Identifier(sql::Ident::new(WINDOWSTART)));
        exprs.push(sql::Expr::Identifier(sql::Ident::new(WINDOWEND)));
        windowed_catalog = catalog.clone();
        windowed_catalog.insert(Source {
            window: Some(window.clone()),
            ..left.0.clone()
        });
        plan_catalog = &windowed_catalog;
    }
    {
        let provider = CatalogProvider::new(plan_catalog);
        let options = ParserOptions {
            enable_ident_normalization: false,
            map_string_types_to_utf8view: false,
            parse_float_as_decimal: true,
            ..ParserOptions::new()
        };
        let planner = SqlToRel::new_with_options(&provider, options);
        checks::check_select(&planner, &select, &scopes, plan_catalog)?;
    }
    let mut rewritten = query.select.as_ref().clone();
    rewritten.limit_clause = None;
    rewritten.body = Box::new(SetExpr::Select(select));

    let provider = CatalogProvider::new(plan_catalog);
    let options = ParserOptions {
        enable_ident_normalization: false,
        map_string_types_to_utf8view: false,
        parse_float_as_decimal: true,
        ..ParserOptions::new()
    };
    let planner = SqlToRel::new_with_options(&provider, options);
    let plan = planner
        .sql_statement_to_plan(sql::Statement::Query(Box::new(rewritten)))
        .map_err(|e| SqlError::Plan(describe_plan_error(e)))?;
    let plan = narrow_integer_literals(plan)?;
    let plan = rewrites::magic_timestamps(plan)?;
    let plan = cast::nested_casts_to_string(plan)?;
    let plan = rewrites::like_escapes(plan)?;
    let plan = Analyzer::new()
        .execute_and_check(plan, provider_options(&provider), |_, _| {})
        .map_err(|e| SqlError::Plan(describe_plan_error(e)))?;

    let LogicalPlan::Projection(projection) = &plan else {
        return Err(SqlError::Plan(format!("unexpected query shape:\n{plan}")));
    };
    let projection_input = Arc::clone(projection.input.schema());
    let mut node = projection.input.as_ref();
    let mut having = None;
    if filter_has_aggregate(node)
        && let LogicalPlan::Filter(f) = node
    {
        having = Some(f.predicate.clone());
        node = f.input.as_ref();
    }
    if query.emit == Some(Emit::Final) && query.window.is_none() {
        return Err(SqlError::Invalid(
            "EMIT FINAL is only supported for windowed aggregations.".into(),
        ));
    }
    let mut aggregate = None;
    if let LogicalPlan::Aggregate(a) = node {
        let read = aggregate::read(a, query.window.clone(), having.take())?;
        if a.group_expr.is_empty() && sink.as_ref().is_some_and(|s| s.kind == SourceKind::Table) {
            // ksqlDB names the calls as it rewrites them: COUNT(*) counts ROWTIME.
            let calls: Vec<String> = read
                .calls
                .iter()
                .map(|c| {
                    let args = match c.args.as_slice() {
                        [] | [Expr::Literal(..)] if c.function == "count" => "ROWTIME".to_string(),
                        args => args
                            .iter()
                            .map(display_unqualified)
                            .collect::<Vec<_>>()
                            .join(", "),
                    };
                    format!("{}({args})", c.function.to_ascii_uppercase())
                })
                .collect();
            return Err(SqlError::Invalid(format!(
                "CREATE TABLE AS SELECT statement does not support aggregate function [{}] \
                 without a GROUP BY clause.",
                calls.join(", ")
            )));
        }
        aggregate::check_sources(&read, &scopes)?;
        aggregate = Some(read);
        node = a.input.as_ref();
    } else if query.window.is_some() {
        return Err(SqlError::Invalid(
            "WINDOW clause requires a GROUP BY clause.".into(),
        ));
    }
    let input_schema = Arc::clone(node.schema());
    let mut filter = None;
    if let LogicalPlan::Filter(f) = node {
        filter = Some(rewrites::null_comparisons_false(f.predicate.clone())?);
        node = f.input.as_ref();
    }

    let planned = |source: &Source, alias: &str, schema: &DFSchemaRef| PlannedSource {
        source: source.clone(),
        alias: alias.to_string(),
        schema: Arc::clone(schema),
    };
    let (from_source, join) = match node {
        LogicalPlan::Join(j) => {
            let kind = join_kind.ok_or_else(|| SqlError::Plan("join without JOIN".into()))?;
            if scopes[0].source.kind == SourceKind::Stream
                && scopes[1].source.kind == SourceKind::Stream
                && query.within.first().cloned().flatten().is_none()
            {
                return Err(SqlError::Invalid(
                    "Stream-Stream joins must have a WITHIN clause specified. None was provided."
                        .into(),
                ));
            }
            let (stream_key, table_key, foreign_key) =
                join_keys(j, scopes[0].source, scopes[1].source)?;
            if foreign_key
                && (scopes[0].source.window.is_some() || scopes[1].source.window.is_some())
            {
                return Err(SqlError::Invalid(
                    "Foreign-key table-table joins are not supported on windowed tables.".into(),
                ));
            }
            // The foreign-key index keeps the left rows' values, not their headers.
            if foreign_key && scopes[0].source.header_columns().next().is_some() {
                return Err(SqlError::Unsupported(format!(
                    "foreign-key joins of a table with header columns ({})",
                    scopes[0].source.name
                )));
            }
            if foreign_key && matches!(kind, JoinKind::Right | JoinKind::Full) {
                let kind = if kind == JoinKind::Right {
                    "right"
                } else {
                    "full-outer"
                };
                return Err(SqlError::Invalid(format!(
                    "Invalid join type: {kind} join not supported for foreign-key table-table join. Got {} {} JOIN {}.",
                    scopes[0].source.name,
                    kind.to_ascii_uppercase().replace("-OUTER", " OUTER"),
                    scopes[1].source.name
                )));
            }
            (
                planned(left.0, &left.1, j.left.schema()),
                Some(PlannedJoin {
                    table: planned(scopes[1].source, &scopes[1].alias, j.right.schema()),
                    kind,
                    stream_key,
                    table_key,
                    within: query.within.first().cloned().flatten(),
                    foreign_key,
                }),
            )
        }
        LogicalPlan::SubqueryAlias(_) | LogicalPlan::TableScan(_) => {
            (planned(left.0, &left.1, node.schema()), None)
        }
        other => {
            return Err(SqlError::Plan(format!("unexpected query shape:\n{other}")));
        }
    };

    let mut columns = Vec::with_capacity(projection.expr.len());
    let mut partition_exprs = Vec::with_capacity(partition_by.len());
    for (i, e) in projection.expr.iter().enumerate() {
        // The output schema has the name even where DataFusion dropped a redundant alias.
        let name = projection.schema.field(i).name().clone();
        let expr = rewrites::null_comparisons_false(match e {
            Expr::Alias(a) => a.expr.as_ref().clone(),
            other => other.clone(),
        })?;
        if name.starts_with(PARTITION_PREFIX) {
            partition_exprs.push(expr);
            continue;
        }
        let mut dt = expr
            .get_type(&projection_input)
            .map_err(|e| SqlError::Plan(describe_plan_error(e)))?;
        if exploded.contains(&name) {
            dt = match dt {
                arrow::datatypes::DataType::List(f) | arrow::datatypes::DataType::LargeList(f) => {
                    f.data_type().clone()
                }
                other => {
                    return Err(SqlError::Invalid(format!(
                        "Function 'explode' does not accept parameters ({}).\nValid alternatives are:\nexplode(ARRAY<DECIMAL> input)\nexplode(ARRAY<T> list)",
                        SqlType::from_arrow(&other)
                            .map(|t| t.to_string())
                            .unwrap_or_else(|| other.to_string())
                    )));
                }
            };
        }
        let ty = SqlType::from_arrow(&dt).ok_or_else(|| {
            SqlError::Unsupported(format!("the type {dt} of column `{name}` in a projection"))
        })?;
        columns.push(OutputColumn {
            name,
            expr,
            ty,
            role: ColumnRole::Value,
        });
    }

    // A table aggregation takes a changed row's previous version out of its group, which
    // for a join's rows would need the previous joined row: not kept yet.
    if aggregate.is_some()
        && from_source.source.kind == SourceKind::Table
        && join
            .as_ref()
            .is_some_and(|j| j.table.source.kind == SourceKind::Table)
    {
        return Err(SqlError::Unsupported(
            "GROUP BY over a table-table join".into(),
        ));
    }
    let kind = match (&aggregate, &join) {
        (Some(_), _) => SourceKind::Table,
        (None, Some(j)) if j.table.source.kind == SourceKind::Table => from_source.source.kind,
        (None, Some(_)) => SourceKind::Stream,
        (None, None) => from_source.source.kind,
    };
    if let Some(sink) = sink {
        check_result_kind(kind, sink.kind)?;
        match &aggregate {
            Some(a) => aggregate::assign_keys(&mut columns, a, sink.name)?,
            None if query.partition_by.is_some() => {
                if star {
                    star_partition_columns(
                        &mut columns,
                        &partition_exprs,
                        &from_source,
                        &input_schema,
                    )?;
                }
                partition_keys(&mut columns, &partition_exprs, partition_by, sink.name)?
            }
            None => assign_keys(&mut columns, &from_source, join.as_ref(), sink.name)?,
        }
    }

    check_sources(&from_source, join.as_ref(), &exploded, sink.is_some())?;
    Ok(QueryPlan {
        from: from_source,
        join,
        input_schema,
        filter,
        aggregate,
        columns,
        limit,
        rekeyed: query.partition_by.is_some(),
        exploded,
        kind,
        emit: query.emit,
    })
}

/// ksqlDB's refusals of sources a query cannot read the way it asks: a join of windowed
/// with non-windowed or differently windowed sources, a persistent query over a windowed
/// table, a table function over a table.
fn check_sources(
    from: &PlannedSource,
    join: Option<&PlannedJoin>,
    exploded: &[String],
    persistent: bool,
) -> Result<(), SqlError> {
    let window_name = |s: &Source| match &s.window {
        Some(WindowSpec::Session { .. }) => "SESSION",
        Some(WindowSpec::Hopping { .. }) => "HOPPING",
        Some(WindowSpec::Tumbling { .. }) => "TUMBLING",
        None => "not",
    };
    if let Some(j) = join {
        // (A self join works here, unlike in ksqlDB: each side has its own consumer group.)
        let (left, right) = (&from.source, &j.table.source);
        match (&left.window, &right.window) {
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(SqlError::Invalid(format!(
                    "Can not join windowed source to non-windowed source.\n`{}` is {} windowed\n`{}` is {} windowed",
                    left.name,
                    window_name(left),
                    right.name,
                    window_name(right)
                )));
            }
            (Some(l), Some(r)) => {
                let session = |w: &WindowSpec| matches!(w, WindowSpec::Session { .. });
                if session(l) != session(r) {
                    return Err(SqlError::Invalid(format!(
                        "Incompatible windowed sources.\nLeft source: {}\nRight source: {}\n\
                         Session windowed sources can only be joined to other session windowed \
                         sources, and may still not result in expected behaviour as session \
                         bounds must be an exact match for the join to work\nHopping and \
                         tumbling windowed sources can only be joined to other hopping and \
                         tumbling windowed sources",
                        window_name(left),
                        window_name(right)
                    )));
                }
            }
        }
    }
    if from.source.kind == SourceKind::Table && !exploded.is_empty() {
        return Err(SqlError::Invalid(
            "Table source is not supported with table functions".into(),
        ));
    }
    if persistent && from.source.kind == SourceKind::Table && from.source.window.is_some() {
        return Err(SqlError::Invalid(
            "KSQL does not support persistent queries on windowed tables.".into(),
        ));
    }
    Ok(())
}

fn provider_options<'a>(
    provider: &'a CatalogProvider<'_>,
) -> &'a datafusion_common::config::ConfigOptions {
    use datafusion_expr::planner::ContextProvider;
    provider.options()
}

fn filter_has_aggregate(node: &LogicalPlan) -> bool {
    matches!(node, LogicalPlan::Filter(f) if matches!(f.input.as_ref(), LogicalPlan::Aggregate(_)))
}

fn limit_of(clause: Option<&LimitClause>) -> Result<Option<u64>, SqlError> {
    let expr = match clause {
        None => return Ok(None),
        Some(LimitClause::LimitOffset {
            limit: Some(limit),
            offset: None,
            ..
        }) => limit,
        Some(LimitClause::LimitOffset { limit: None, .. }) => return Ok(None),
        Some(other) => return Err(SqlError::Unsupported(format!("'{other}'"))),
    };
    match expr {
        sql::Expr::Value(v) => match &v.value {
            sql::Value::Number(n, _) => n.parse::<u64>().map(Some).map_err(|_| {
                SqlError::Invalid(format!("LIMIT must be a positive integer, got {n}"))
            }),
            other => Err(SqlError::Invalid(format!(
                "LIMIT must be a positive integer, got {other}"
            ))),
        },
        other => Err(SqlError::Invalid(format!(
            "LIMIT must be a positive integer, got {other}"
        ))),
    }
}

/// A FROM item: a source of the catalog and the name the query calls it.
fn resolve<'c>(
    factor: &TableFactor,
    catalog: &'c Catalog,
) -> Result<(&'c Source, String), SqlError> {
    let TableFactor::Table {
        name, alias, args, ..
    } = factor
    else {
        return Err(SqlError::Unsupported(format!("'{factor}' in FROM")));
    };
    if args.is_some() {
        return Err(SqlError::Unsupported(format!("table function '{name}'")));
    }
    let [part] = name.0.as_slice() else {
        return Err(SqlError::Unsupported(format!(
            "qualified source name '{name}'"
        )));
    };
    let source_name = match part.as_ident() {
        Some(ident) => ident.value.clone(),
        None => return Err(SqlError::Unsupported(format!("source name '{name}'"))),
    };
    let source = catalog
        .get(&source_name)
        .ok_or_else(|| SqlError::Unknown(format!("{source_name} does not exist.")))?;
    let alias = alias
        .as_ref()
        .map(|a| a.name.value.clone())
        .unwrap_or(source_name);
    Ok((source, alias))
}

/// ksqlDB's checks of a join's ON condition, made before anything else of the query: every
/// qualifier names one of the sources, and no side of an equality is a literal.
fn check_join_sides(on: &sql::Expr, sources: [(&Source, &String); 2]) -> Result<(), SqlError> {
    let mut unknown = None;
    let _ = sql::visit_expressions(on, |e| {
        if let sql::Expr::CompoundIdentifier(parts) = e
            && let [qualifier, _, ..] = parts.as_slice()
            && !sources
                .iter()
                .any(|(source, alias)| qualifier.value == **alias || qualifier.value == source.name)
        {
            unknown = Some(qualifier.value.clone());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    if let Some(q) = unknown {
        return Err(SqlError::Prepare(format!(
            "'{q}' is not a valid stream/table name or alias."
        )));
    }
    let literal = |e: &sql::Expr| match e {
        sql::Expr::Value(_) => true,
        sql::Expr::UnaryOp { expr, .. } | sql::Expr::Nested(expr) => {
            matches!(expr.as_ref(), sql::Expr::Value(_))
        }
        _ => false,
    };
    let mut conditions = vec![on];
    while let Some(c) = conditions.pop() {
        match c {
            sql::Expr::Nested(inner) => conditions.push(inner),
            sql::Expr::BinaryOp {
                left,
                op: sql::BinaryOperator::And,
                right,
            } => {
                conditions.push(right);
                conditions.push(left);
            }
            sql::Expr::BinaryOp {
                left,
                op: sql::BinaryOperator::Eq,
                right,
            } => {
                if let Some(side) = [left, right].into_iter().find(|s| literal(s)) {
                    return Err(SqlError::Invalid(format!(
                        "Invalid comparison expression '{side}' in join '({left} = {right})'. \
                         Each side of the join comparision must contain references from \
                         exactly one source."
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The kind of a join ksqlDB runs between these sources (each with its alias), after the
/// checks of its ON condition.
fn check_join(
    op: &JoinOperator,
    (left, left_alias): (&Source, &String),
    (right, right_alias): (&Source, &String),
) -> Result<JoinKind, SqlError> {
    let (kind, constraint, label) = match op {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => {
            (Some(JoinKind::Inner), c, "[INNER] JOIN")
        }
        JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
            (Some(JoinKind::Left), c, "LEFT [OUTER] JOIN")
        }
        JoinOperator::Right(c) | JoinOperator::RightOuter(c) => {
            (Some(JoinKind::Right), c, "RIGHT [OUTER] JOIN")
        }
        JoinOperator::FullOuter(c) => (Some(JoinKind::Full), c, "[FULL] OUTER JOIN"),
        other => return Err(SqlError::Unsupported(format!("join '{other:?}'"))),
    };
    let JoinConstraint::On(on) = constraint else {
        return Err(SqlError::Invalid("A join needs an ON condition.".into()));
    };
    check_join_sides(on, [(left, left_alias), (right, right_alias)])?;
    let got = format!("Got {} {label} {}.", left.name, right.name);
    match (left.kind, right.kind) {
        (SourceKind::Stream, SourceKind::Table) => match kind {
            Some(JoinKind::Right) => Err(SqlError::Invalid(format!(
                "Invalid join type: right-outer join not supported for stream-table join. {got}"
            ))),
            Some(JoinKind::Full) => Err(SqlError::Invalid(format!(
                "Invalid join type: full-outer join not supported for stream-table join. {got}"
            ))),
            Some(kind) => Ok(kind),
            None if label.starts_with("RIGHT") => Err(SqlError::Invalid(format!(
                "Invalid join type: right-outer join not supported for stream-table join. {got}"
            ))),
            None => Err(SqlError::Invalid(format!(
                "Invalid join type: full-outer join not supported for stream-table join. {got}"
            ))),
        },
        (SourceKind::Table, SourceKind::Stream) => Err(SqlError::Invalid(format!(
            "Invalid join order: table-stream joins are not supported; only stream-table joins. {got}"
        ))),
        (SourceKind::Stream, SourceKind::Stream) => match kind {
            Some(kind) => Ok(kind),
            None => Err(SqlError::Unsupported(format!(
                "{label} of two streams (inner and left joins are)"
            ))),
        },
        (SourceKind::Table, SourceKind::Table) => match kind {
            Some(kind) => Ok(kind),
            None => Err(SqlError::Unsupported(format!(
                "{label} of two tables (inner and left joins are)"
            ))),
        },
    }
}

/// Splits the join condition into the stream-side expression and the table's key column,
/// and says whether it is a foreign-key table–table join.
fn join_keys(
    join: &datafusion_expr::logical_plan::Join,
    stream: &Source,
    table: &Source,
) -> Result<(Expr, Expr, bool), SqlError> {
    if !matches!(
        join.join_type,
        JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full
    ) {
        return Err(SqlError::Plan(format!(
            "unexpected join type {}",
            join.join_type
        )));
    }
    let (a, b) = match (join.on.as_slice(), &join.filter) {
        ([(l, r)], None) => (l.clone(), r.clone()),
        (
            [],
            Some(Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            })),
        ) => (left.as_ref().clone(), right.as_ref().clone()),
        _ => {
            // ksqlDB's wording, with the conditions as its formatter writes them.
            let condition = |e: &Expr| match e {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => format!(
                    "({} {op} {})",
                    display_qualified(left),
                    display_qualified(right)
                ),
                other => display_qualified(other),
            };
            let mut parts: Vec<String> = join
                .on
                .iter()
                .map(|(l, r)| format!("({} = {})", display_qualified(l), display_qualified(r)))
                .collect();
            if let Some(filter) = &join.filter {
                parts.extend(filter_conjuncts(filter).into_iter().map(condition));
            }
            let got = parts
                .into_iter()
                .reduce(|a, b| format!("({a} AND {b})"))
                .unwrap_or_default();
            return Err(SqlError::Invalid(format!(
                "Invalid join condition: joins on multiple conditions are not yet supported. \
                 Got {got}."
            )));
        }
    };
    let written = format!(
        "{} = {}",
        display_qualified(&strip_cast(&a)),
        display_qualified(&strip_cast(&b))
    );
    let left_schema = join.left.schema();
    let right_schema = join.right.schema();
    let only_in = |e: &Expr, s: &DFSchemaRef| {
        let refs = e.column_refs();
        !refs.is_empty() && refs.iter().all(|c| s.has_column(c))
    };
    let (stream_key, table_side) = if only_in(&a, left_schema) && only_in(&b, right_schema) {
        (a, b)
    } else if only_in(&b, left_schema) && only_in(&a, right_schema) {
        (b, a)
    } else {
        return Err(SqlError::Invalid(format!(
            "Invalid join condition: each side of the join condition must refer to one source. Got {a} = {b}."
        )));
    };
    let keys: Vec<&Column> = table.key_columns().collect();
    let on_key = table.kind == SourceKind::Stream
        || match (&table_side, keys.as_slice()) {
            (Expr::Column(c), [key]) => c.name == key.name,
            _ => false,
        };
    if !on_key && stream.kind == SourceKind::Table {
        return Err(SqlError::Invalid(format!(
            "Invalid join condition: table-table joins require to join on the primary key of the right input table. Got {written}."
        )));
    }
    if !on_key {
        return Err(SqlError::Invalid(format!(
            "Invalid join condition: stream-table joins require to join on the table's primary key. Got {written}."
        )));
    }
    let unwrap_cast = |e: Expr| match e {
        Expr::Cast(c) => *c.expr,
        other => other,
    };
    // A join of a table on other than its primary key is a foreign-key join: keyed by the
    // left table's key, it follows changes of the left row's foreign key and fans a right
    // row's change out to every left row that refers to it.
    let foreign_key = stream.kind == SourceKind::Table && !is_only_key(&stream_key, stream);
    if foreign_key && stream.key_columns().count() == 0 {
        return Err(SqlError::Invalid(format!(
            "Invalid join condition: a foreign-key table-table join needs a left table with a primary key. Got {written}."
        )));
    }
    Ok((stream_key, unwrap_cast(table_side), foreign_key))
}

/// Whether `e` is `source`'s one key column (possibly cast).
fn is_only_key(e: &Expr, source: &Source) -> bool {
    let keys: Vec<&Column> = source.key_columns().collect();
    match (e, keys.as_slice()) {
        (Expr::Cast(c), _) => is_only_key(&c.expr, source),
        (Expr::Column(c), [key]) => c.name == key.name,
        _ => false,
    }
}

/// `e` without a cast around it (a key compared with what the projection selects).
pub(crate) fn strip_cast(e: &Expr) -> Expr {
    match e {
        Expr::Cast(c) => c.expr.as_ref().clone(),
        other => other.clone(),
    }
}

fn display_unqualified(e: &Expr) -> String {
    match e {
        Expr::Column(c) => c.name.clone(),
        Expr::Cast(c) => display_unqualified(&c.expr),
        other => other.to_string(),
    }
}

fn check_result_kind(produced: SourceKind, statement: SourceKind) -> Result<(), SqlError> {
    if produced == statement {
        return Ok(());
    }
    Err(SqlError::Invalid(format!(
        "Invalid result type. Your SELECT query produces a {produced}. Please use CREATE {produced} AS SELECT statement instead."
    )))
}

/// Applies ksqlDB's key rules to a persistent query's projection.
fn assign_keys(
    columns: &mut [OutputColumn],
    from: &PlannedSource,
    join: Option<&PlannedJoin>,
    sink: &str,
) -> Result<(), SqlError> {
    match join {
        // Keyed by the left table's primary key, which the projection must select.
        Some(join) if join.foreign_key => source_keys(columns, from, Some(&from.alias), sink)?,
        Some(join) => {
            let table_key = join
                .table
                .source
                .key_columns()
                .next()
                .map(|k| k.name.clone())
                .unwrap_or_default();
            let is_stream_key = |e: &Expr| strip_cast(e) == strip_cast(&join.stream_key);
            let is_table_key = |e: &Expr| {
                matches!(strip_cast(e), Expr::Column(c) if c.name == table_key
                    && c.relation.as_ref().map(|r| r.table()) == Some(join.table.alias.as_str()))
            };
            // The stream side's join expression is the key; the table's key column only
            // stands in for it when the stream side is not selected (as with `SELECT *`,
            // where the table's key stays a value column).
            let mut matches: Vec<usize> = (0..columns.len())
                .filter(|&i| is_stream_key(&columns[i].expr))
                .collect();
            if matches.is_empty() {
                matches = (0..columns.len())
                    .filter(|&i| is_table_key(&columns[i].expr))
                    .take(1)
                    .collect();
            }
            match matches.as_slice() {
                [] => {
                    let stream_side = display_qualified(&join.stream_key);
                    let table_side = format!("{}.{}", join.table.alias, table_key);
                    return Err(SqlError::Invalid(format!(
                        "Key missing from projection (ie, SELECT).\nThe query used to build `{sink}` must include the join expressions {stream_side} or {table_side} in its projection (eg, SELECT {stream_side}...)."
                    )));
                }
                [first, rest @ ..] => {
                    if let Some(second) = rest.first() {
                        // ksqlDB names the aliases in alphabetical order.
                        let mut names =
                            [columns[*first].name.clone(), columns[*second].name.clone()];
                        names.sort();
                        return Err(SqlError::Invalid(format!(
                            "The projection contains a key column (`{}`) more than once, aliased as: {} and {}.",
                            columns[*first].name, names[0], names[1]
                        )));
                    }
                    // The stream side is never null, even when a left join finds no row; in a
                    // right join the key is whichever side is there.
                    let c = &mut columns[*first];
                    c.role = ColumnRole::Key;
                    if matches!(join.kind, JoinKind::Right | JoinKind::Full) {
                        let ty = c.ty.to_arrow();
                        let cast = |e: &Expr| {
                            Expr::Cast(datafusion_expr::Cast::new(Box::new(e.clone()), ty.clone()))
                        };
                        c.expr = datafusion_functions::core::expr_fn::coalesce(vec![
                            cast(&join.stream_key),
                            cast(&join.table_key),
                        ]);
                    } else if strip_cast(&c.expr) != strip_cast(&join.stream_key) {
                        c.expr = join.stream_key.clone();
                    }
                }
            }
        }
        None => source_keys(columns, from, None, sink)?,
    }
    if columns.iter().all(|c| c.role == ColumnRole::Key) {
        return Err(SqlError::Invalid(
            "The projection contains no value columns.".into(),
        ));
    }
    Ok(())
}

/// ksqlDB's key rule for a result keyed by `from`'s key columns: the projection selects each
/// once (of `alias`, when given: a join's other side may have columns of the same names).
fn source_keys(
    columns: &mut [OutputColumn],
    from: &PlannedSource,
    alias: Option<&str>,
    sink: &str,
) -> Result<(), SqlError> {
    let mut missing = Vec::new();
    // Positions of the key columns in the projection, in the source's key order.
    let mut key_slots = Vec::new();
    for key in from.source.key_columns() {
        let found: Vec<usize> = (0..columns.len())
            .filter(|&i| {
                matches!(strip_cast(&columns[i].expr), Expr::Column(c) if c.name == key.name
                && alias.is_none_or(|a| c.relation.as_ref().map(|r| r.table()) == Some(a)))
            })
            .collect();
        match found.as_slice() {
            [] => missing.push(key.name.clone()),
            [one] => {
                columns[*one].role = ColumnRole::Key;
                key_slots.push(*one);
            }
            [a, b, ..] => {
                let mut names = [columns[*a].name.clone(), columns[*b].name.clone()];
                names.sort();
                return Err(SqlError::Invalid(format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {} and {}.",
                    key.name, names[0], names[1]
                )));
            }
        }
    }
    if !missing.is_empty() {
        // ksqlDB names every key column when any is missing.
        let missing: Vec<String> = from.source.key_columns().map(|k| k.name.clone()).collect();
        let (noun, list) = if missing.len() == 1 {
            ("key column", missing[0].clone())
        } else {
            let (last, init) = missing.split_last().unwrap_or((&missing[0], &[]));
            ("key columns", format!("{} and {last}", init.join(", ")))
        };
        return Err(SqlError::Invalid(format!(
            "The query used to build `{sink}` must include the {noun} {list} in its projection (eg, SELECT {}...).",
            missing.join(", ")
        )));
    }
    // The key keeps the source's column order, whatever the projection's.
    let mut slots = key_slots.clone();
    slots.sort_unstable();
    let ordered: Vec<OutputColumn> = key_slots.iter().map(|&i| columns[i].clone()).collect();
    for (slot, column) in slots.into_iter().zip(ordered) {
        columns[slot] = column;
    }
    Ok(())
}

/// `SELECT *` with PARTITION BY, as ksqlDB lays it out: the source's value columns, then its
/// old key columns, and a partitioning expression the star does not cover added as a column.
fn star_partition_columns(
    columns: &mut Vec<OutputColumn>,
    partition_exprs: &[Expr],
    from: &PlannedSource,
    input_schema: &DFSchemaRef,
) -> Result<(), SqlError> {
    let is_old_key = |c: &OutputColumn| matches!(&c.expr, Expr::Column(col) if from.source.key_columns().any(|k| k.name == col.name));
    let (keys, values): (Vec<OutputColumn>, Vec<OutputColumn>) =
        columns.drain(..).partition(is_old_key);
    columns.extend(values);
    columns.extend(keys);
    for (i, p) in partition_exprs.iter().enumerate() {
        if matches!(p, Expr::Literal(v, _) if v.is_null()) || columns.iter().any(|c| &c.expr == p) {
            continue;
        }
        let name = match p {
            Expr::Column(c) => c.name.clone(),
            _ => format!("KSQL_COL_{i}"),
        };
        let dt = p
            .get_type(input_schema)
            .map_err(|e| SqlError::Plan(describe_plan_error(e)))?;
        let ty = SqlType::from_arrow(&dt).ok_or_else(|| {
            SqlError::Unsupported(format!("the type {dt} of PARTITION BY {name}"))
        })?;
        columns.insert(
            0,
            OutputColumn {
                name,
                expr: p.clone(),
                ty,
                role: ColumnRole::Key,
            },
        );
    }
    Ok(())
}

/// An expression as ksqlDB prints it in messages: columns qualified by their source,
/// function names upper-case.
fn ksql_display(e: &Expr) -> String {
    match e {
        Expr::Column(_) => display_qualified(e),
        Expr::ScalarFunction(f) => format!(
            "{}({})",
            f.name().to_ascii_uppercase(),
            f.args
                .iter()
                .map(ksql_display)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Expr::Alias(a) => ksql_display(&a.expr),
        other => other.to_string(),
    }
}

/// ksqlDB cannot join sources whose values are in the KAFKA format.
fn check_join_formats(scopes: &[Scope<'_>]) -> Result<(), SqlError> {
    if scopes.len() < 2 {
        return Ok(());
    }
    let kafka: Vec<&str> = scopes
        .iter()
        .filter(|s| s.source.value_format == crate::catalog::FormatName::Kafka)
        .map(|s| s.source.name.as_str())
        .collect();
    if kafka.is_empty() {
        return Ok(());
    }
    Err(SqlError::Invalid(format!(
        "Source(s) {} are using the 'KAFKA' value format. This format does not yet support JOIN.",
        kafka.join(", ")
    )))
}

/// Alias of the hidden projection items that carry PARTITION BY expressions.
pub(crate) const PARTITION_PREFIX: &str = "__EDDY_PARTITION_";

/// ksqlDB's key rule for PARTITION BY: the key columns are the partitioning expressions, in
/// their order, each under the name the projection gives it; `PARTITION BY NULL` has none.
fn partition_keys(
    columns: &mut Vec<OutputColumn>,
    partition_exprs: &[Expr],
    written: &[sql::Expr],
    sink: &str,
) -> Result<(), SqlError> {
    let _ = written;
    let mut keys = Vec::with_capacity(partition_exprs.len());
    let mut missing = Vec::new();
    let is_null = |p: &Expr| matches!(p, Expr::Literal(v, _) if v.is_null());
    if partition_exprs.len() > 1 && partition_exprs.iter().any(is_null) {
        return Err(SqlError::Invalid(
            "Cannot PARTITION BY multiple columns including NULL".into(),
        ));
    }
    for p in partition_exprs {
        if is_null(p) {
            continue;
        }
        let mut found: Vec<usize> = (0..columns.len())
            .filter(|&i| &columns[i].expr == p)
            .collect();
        if found.is_empty() {
            found = (0..columns.len())
                .filter(|&i| strip_cast(&columns[i].expr) == strip_cast(p))
                .collect();
        }
        match found.as_slice() {
            [] => missing.push(ksql_display(p)),
            [one] => keys.push(*one),
            [a, b, ..] => {
                let mut names = [columns[*a].name.clone(), columns[*b].name.clone()];
                names.sort();
                return Err(SqlError::Invalid(format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {} and {}.",
                    columns[*a].name, names[0], names[1]
                )));
            }
        }
    }
    if !missing.is_empty() {
        // ksqlDB names every partitioning expression once one is missing.
        let all: Vec<String> = partition_exprs.iter().map(ksql_display).collect();
        return Err(SqlError::Invalid(format!(
            "Key missing from projection (ie, SELECT).\nThe query used to build `{sink}` must include the partitioning {} in its projection (eg, SELECT {}...).",
            listed("expression", &all),
            all.join(", ")
        )));
    }
    let mut reordered: Vec<OutputColumn> = keys
        .iter()
        .map(|&i| OutputColumn {
            role: ColumnRole::Key,
            ..columns[i].clone()
        })
        .collect();
    reordered.extend(
        columns
            .iter()
            .enumerate()
            .filter(|(i, _)| !keys.contains(i))
            .map(|(_, c)| OutputColumn {
                role: ColumnRole::Value,
                ..c.clone()
            }),
    );
    *columns = reordered;
    if columns.iter().all(|c| c.role == ColumnRole::Key) {
        return Err(SqlError::Invalid(
            "The projection contains no value columns.".into(),
        ));
    }
    Ok(())
}

/// `expression X`, or `expressions X, Y and Z`, as ksqlDB lists names in its messages.
pub(crate) fn listed(noun: &str, names: &[String]) -> String {
    match names.split_last() {
        Some((last, init)) if !init.is_empty() => {
            format!("{noun}s {} and {last}", init.join(", "))
        }
        _ => format!("{noun} {}", names.join("")),
    }
}

/// The conditions `e` joins with AND, in order.
fn filter_conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            let mut all = filter_conjuncts(left);
            all.extend(filter_conjuncts(right));
            all
        }
        other => vec![other],
    }
}

fn display_qualified(e: &Expr) -> String {
    match e {
        Expr::Column(c) => match &c.relation {
            Some(r) => format!("{}.{}", r.table(), c.name),
            None => c.name.clone(),
        },
        other => other.to_string(),
    }
}

/// ksqlDB types an integer literal as INT when it fits; DataFusion as BIGINT. Narrowing them
/// before type coercion keeps `INT + 1` an INT, as in ksqlDB.
/// An aggregation's expressions keep DataFusion's literals: the nodes above refer to its
/// output columns by names that contain them (e.g. `count(Int64(1))`).
fn narrow_integer_literals(plan: LogicalPlan) -> Result<LogicalPlan, SqlError> {
    plan.transform_up(|node| {
        if matches!(node, LogicalPlan::Aggregate(_)) {
            return Ok(Transformed::no(node));
        }
        node.map_expressions(|e| {
            e.transform_up(|e| match e {
                Expr::Literal(ScalarValue::Int64(Some(v)), meta) if i32::try_from(v).is_ok() => Ok(
                    Transformed::yes(Expr::Literal(ScalarValue::Int32(Some(v as i32)), meta)),
                ),
                other => Ok(Transformed::no(other)),
            })
        })
    })
    .map(|t| t.data)
    .map_err(|e| SqlError::Plan(describe_plan_error(e)))
}

/// Binds the expressions of `INSERT INTO … VALUES (…)`: they may not refer to columns, and
/// are returned type-checked, to be evaluated on a single empty row.
pub fn plan_values(values: &[sql::Expr], catalog: &Catalog) -> Result<Vec<Expr>, SqlError> {
    // A value names no source: `FOO.bar` is a reference to an unknown one.
    for value in values {
        if let sql::Expr::CompoundIdentifier(parts) = value
            && let Some(source) = parts.first()
        {
            return Err(SqlError::Prepare(format!(
                "'{}' is not a valid stream/table name or alias.",
                source.value
            )));
        }
    }
    let projection = values
        .iter()
        .enumerate()
        .map(|(i, e)| sql::SelectItem::ExprWithAlias {
            expr: e.clone(),
            alias: sql::Ident::with_quote('"', format!("V{i}")),
        })
        .collect::<Vec<_>>();
    let select = sql::Select {
        select_token: sql::helpers::attached_token::AttachedToken::empty(),
        optimizer_hints: Vec::new(),
        distinct: None,
        select_modifiers: None,
        top: None,
        top_before_distinct: false,
        projection,
        exclude: None,
        into: None,
        from: Vec::new(),
        lateral_views: Vec::new(),
        prewhere: None,
        selection: None,
        connect_by: Vec::new(),
        group_by: sql::GroupByExpr::Expressions(Vec::new(), Vec::new()),
        cluster_by: Vec::new(),
        distribute_by: Vec::new(),
        sort_by: Vec::new(),
        having: None,
        named_window: Vec::new(),
        qualify: None,
        window_before_qualify: false,
        value_table_mode: None,
        flavor: sql::SelectFlavor::Standard,
    };
    let query = sql::Query {
        with: None,
        body: Box::new(SetExpr::Select(Box::new(select))),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    };
    let provider = CatalogProvider::new(catalog);
    let options = ParserOptions {
        enable_ident_normalization: false,
        map_string_types_to_utf8view: false,
        parse_float_as_decimal: true,
        ..ParserOptions::new()
    };
    let plan = SqlToRel::new_with_options(&provider, options)
        .sql_statement_to_plan(sql::Statement::Query(Box::new(query)))
        .map_err(|e| SqlError::Plan(describe_plan_error(e)))?;
    let plan = narrow_integer_literals(plan)?;
    let plan = Analyzer::new()
        .execute_and_check(plan, provider_options(&provider), |_, _| {})
        .map_err(|e| SqlError::Plan(describe_plan_error(e)))?;
    match plan {
        LogicalPlan::Projection(p) => Ok(p.expr.into_iter().map(Expr::unalias).collect()),
        other => Err(SqlError::Plan(format!("unexpected VALUES shape:\n{other}"))),
    }
}

#[cfg(test)]
mod tests;

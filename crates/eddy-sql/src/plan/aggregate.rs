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

use super::OutputColumn;
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
                other => return plan_err!("Function 'SUM' does not accept parameters ({other})."),
            },
            "avg" | "stddev_samp" | "stddev_sample" => {
                if !is_numeric(first) {
                    return plan_err!("Function '{upper}' does not accept parameters ({first}).");
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
    let strip = |e: &Expr| -> Expr {
        match e {
            Expr::Cast(c) => c.expr.as_ref().clone(),
            other => other.clone(),
        }
    };
    let keys = aggregate.group_by.len() - aggregate.window_columns();
    for (i, group) in aggregate.group_by.iter().take(keys).enumerate() {
        let (qualifier, field) = aggregate.schema.qualified_field(i);
        let wanted = Expr::Column(DfColumn::new(qualifier.cloned(), field.name()));
        let found: Vec<usize> = (0..columns.len())
            .filter(|&c| strip(&columns[c].expr) == wanted)
            .collect();
        match found.as_slice() {
            [] => {
                let shown = super::display_unqualified(group);
                return Err(SqlError::Invalid(format!(
                    "Key missing from projection (ie, SELECT).\nThe query used to build `{sink}` must include the grouping expression {shown} in its projection (eg, SELECT {shown}...)."
                )));
            }
            [one] => columns[*one].role = ColumnRole::Key,
            [a, b, ..] => {
                return Err(SqlError::Invalid(format!(
                    "The projection contains a key column (`{}`) more than once, aliased as: {} and {}.",
                    columns[*a].name, columns[*a].name, columns[*b].name
                )));
            }
        }
    }
    Ok(())
}

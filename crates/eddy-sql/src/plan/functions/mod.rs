//! ksqlDB's scalar functions that DataFusion lacks or gives other semantics, registered over
//! DataFusion's library under ksqlDB's names.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_expr::planner::{ExprPlanner, PlannerResult};
use datafusion_expr::{Expr, ScalarUDF};

mod arrays;
mod as_value;
mod bytes;
mod from_unixtime;
mod math;
mod pad;
mod regexp_replace;
mod split;
mod substring;

/// Every function of this module.
pub(crate) fn all() -> Vec<Arc<ScalarUDF>> {
    let mut all = math::functions();
    all.extend(pad::functions());
    all.extend(bytes::functions());
    all.extend(arrays::functions());
    all.push(split::function());
    all.push(substring::function());
    all.push(as_value::function());
    all.push(from_unixtime::function());
    all.push(regexp_replace::function());
    all
}

/// Whether an argument of type `t` is text (or a NULL literal, which can be).
fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

/// Plans SQL's special `SUBSTRING(…)` syntax as ksqlDB's function rather than DataFusion's.
#[derive(Debug)]
pub(crate) struct SubstringPlanner;

impl ExprPlanner for SubstringPlanner {
    fn plan_substring(
        &self,
        args: Vec<Expr>,
    ) -> datafusion_common::Result<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(substring::function().call(args)))
    }
}

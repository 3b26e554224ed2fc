//! ksqlDB's scalar functions that DataFusion lacks or gives other semantics, registered over
//! DataFusion's library under ksqlDB's names.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_expr::planner::{ExprPlanner, PlannerResult};
use datafusion_expr::{Expr, ScalarUDF};

use crate::types::SqlType;

pub(crate) use cube::CUBE_COMBINATIONS;
pub(crate) use lambdas::functions as lambda_functions;
pub(crate) use time_arithmetic::{TAKING_A_TIME_UNIT, TIME_UNITS};
pub use timestamp_format::TimestampFormat;

mod arrays;
mod as_value;
mod bytes;
mod cube;
mod datetime_format;
mod encode;
mod epoch;
mod extract_json_field;
mod from_unixtime;
mod generate_series;
mod geo_distance;
mod greatest_least;
mod java_time;
mod json;
mod lambdas;
mod lists;
mod maps;
mod mask;
mod math;
mod md5_hash;
mod pad;
mod regexp;
mod regexp_replace;
mod split;
mod strings;
mod substring;
mod time_arithmetic;
mod timestamp_format;
mod to_json_string;
mod url;
mod uuid;

/// Every function of this module.
pub(crate) fn all() -> Vec<Arc<ScalarUDF>> {
    let mut all = math::functions();
    all.extend(pad::functions());
    all.extend(bytes::functions());
    all.extend(arrays::functions());
    all.extend(regexp::functions());
    all.extend(epoch::functions());
    all.extend(datetime_format::functions());
    all.extend(json::functions());
    all.extend(time_arithmetic::functions());
    all.extend(mask::functions());
    all.extend(url::functions());
    all.extend(maps::functions());
    all.extend(lists::functions());
    all.push(md5_hash::function());
    all.push(cube::function());
    all.extend(strings::functions());
    all.push(split::function());
    all.push(substring::function());
    all.push(as_value::function());
    all.push(from_unixtime::function());
    all.push(regexp_replace::function());
    all.push(geo_distance::function());
    all.push(extract_json_field::function());
    all.push(to_json_string::function());
    all.push(encode::function());
    all.push(uuid::function());
    all.push(generate_series::function());
    all.extend(greatest_least::functions());
    all
}

/// ksqlDB's error for arguments that match none of a function's signatures, the types named
/// in SQL: `Function 'timeadd' does not accept parameters (TIME, INTEGER, TIME).`
pub(crate) fn rejected<T>(name: &str, arg_types: &[DataType]) -> datafusion_common::Result<T> {
    let types: Vec<String> = arg_types
        .iter()
        .map(|t| SqlType::from_arrow(t).map_or_else(|| t.to_string(), |s| s.to_string()))
        .collect();
    datafusion_common::plan_err!(
        "Function '{name}' does not accept parameters ({}).",
        types.join(", ")
    )
}

/// Whether an argument of type `t` is a whole number (or a NULL literal, which can be).
fn is_integer(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 | DataType::Null
    )
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

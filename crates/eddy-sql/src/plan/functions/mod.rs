//! ksqlDB's scalar functions that DataFusion lacks or gives other semantics, registered over
//! DataFusion's library under ksqlDB's names.

use std::sync::Arc;

use datafusion_expr::ScalarUDF;

mod as_value;
mod bytes;
mod math;
mod pad;
mod split;

/// Every function of this module.
pub(crate) fn all() -> Vec<Arc<ScalarUDF>> {
    let mut all = math::functions();
    all.extend(pad::functions());
    all.extend(bytes::functions());
    all.push(split::function());
    all.push(as_value::function());
    all
}

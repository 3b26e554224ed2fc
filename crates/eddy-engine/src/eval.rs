//! Evaluating DataFusion expressions on whole batches, with a per-row fallback so one bad
//! row (a division by zero, a failed cast) costs only that row, as in ksqlDB.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, new_null_array};
use arrow::compute::concat;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use datafusion_common::DFSchema;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::simplify::SimplifyContext;
use datafusion_expr::{Expr, ExprSchemable};
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::{PhysicalExpr, create_physical_expr};

use crate::error::EngineError;

/// A compiled expression and the type it produces.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    expr: Arc<dyn PhysicalExpr>,
    data_type: DataType,
}

/// A row that failed to evaluate, and why.
#[derive(Debug)]
pub(crate) struct RowError {
    pub row: usize,
    pub reason: String,
}

impl Compiled {
    /// Compiles `expr` against the schema of the batches it will see. The expression is
    /// simplified first: some functions (COALESCE, NVL2) only run in their simplified form.
    pub(crate) fn new(expr: &Expr, schema: &DFSchema) -> Result<Self, EngineError> {
        let props = ExecutionProps::new();
        let data_type = expr.get_type(schema)?;
        let context = SimplifyContext::builder()
            .with_schema(Arc::new(schema.clone()))
            .build();
        let expr = ExprSimplifier::new(context).simplify(expr.clone())?;
        let expr = create_physical_expr(&expr, schema, &props, &Default::default())?;
        Ok(Self { expr, data_type })
    }

    /// The type the expression produces.
    pub(crate) fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// Evaluates on every row; rows that fail are null and reported in `errors`.
    pub(crate) fn evaluate(
        &self,
        batch: &RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<ArrayRef, EngineError> {
        match self
            .expr
            .evaluate(batch)
            .and_then(|v| v.into_array(batch.num_rows()))
        {
            Ok(array) => Ok(array),
            Err(_) => self.evaluate_row_by_row(batch, errors),
        }
    }

    fn evaluate_row_by_row(
        &self,
        batch: &RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<ArrayRef, EngineError> {
        let mut parts: Vec<ArrayRef> = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let one = batch.slice(row, 1);
            match self.expr.evaluate(&one).and_then(|v| v.into_array(1)) {
                Ok(a) => parts.push(a),
                Err(e) => {
                    errors.push(RowError {
                        row,
                        reason: format!(
                            "Error computing expression {}: {}",
                            self.expr,
                            e.strip_backtrace()
                        ),
                    });
                    parts.push(new_null_array(&self.data_type, 1));
                }
            }
        }
        if parts.is_empty() {
            return Ok(new_null_array(&self.data_type, 0));
        }
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        Ok(concat(&refs)?)
    }
}

/// Where `predicate` is true on each row of `batch`: null and errors count as false.
pub(crate) fn matches(
    predicate: &Compiled,
    batch: &RecordBatch,
    errors: &mut Vec<RowError>,
) -> Result<BooleanArray, EngineError> {
    let mask = predicate.evaluate(batch, errors)?;
    let mask = mask
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| EngineError::Internal("WHERE did not produce booleans".into()))?;
    Ok(match mask.nulls() {
        Some(_) => arrow::compute::prep_null_mask_filter(mask),
        None => mask.clone(),
    })
}

/// The entries of `values` where `mask` is true.
pub(crate) fn filter_bool(
    values: &BooleanArray,
    mask: &BooleanArray,
) -> Result<BooleanArray, EngineError> {
    arrow::compute::filter(values, mask)?
        .as_any()
        .downcast_ref::<BooleanArray>()
        .cloned()
        .ok_or_else(|| EngineError::Internal("filter changed the array type".into()))
}

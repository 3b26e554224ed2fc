//! `WHERE`: keeps the rows its predicate is true for. A table's deletion always passes (the
//! deleted key must leave the result too); a row whose predicate fails to evaluate is
//! dropped and goes to the processing log.

use crate::error::EngineError;
use crate::eval::{Compiled, matches};
use crate::operator::{Changes, Context, Operator, Port};

/// The `WHERE` of a query.
pub(crate) struct Filter {
    predicate: Compiled,
}

impl Filter {
    /// A filter on `predicate`, compiled against the rows it will see.
    pub(crate) fn new(predicate: Compiled) -> Self {
        Self { predicate }
    }

    /// The predicate, for what applies it to other rows than the operator's input (a
    /// table's previous versions).
    pub(crate) fn predicate(&self) -> &Compiled {
        &self.predicate
    }
}

impl Operator for Filter {
    fn process(
        &mut self,
        _port: Port,
        input: Changes,
        context: &mut Context<'_>,
    ) -> Result<Changes, EngineError> {
        let passes = matches(&self.predicate, &input.batch, &mut context.errors)?;
        let mask = arrow::compute::kernels::boolean::or(&passes, &input.deleted)?;
        input.keep(&mask)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, BooleanArray, Int32Array};
    use arrow::datatypes::{DataType, Field, Int32Type, Schema};
    use arrow::record_batch::RecordBatch;
    use datafusion_expr::{ident, lit};

    use super::*;
    use crate::operator::tests::context;

    #[test]
    fn keeps_matching_rows_and_every_deletion_and_logs_failures() -> Result<(), EngineError> {
        let arrow_schema = Arc::new(Schema::new(vec![Field::new("A", DataType::Int32, true)]));
        let schema = datafusion_common::DFSchema::try_from(arrow_schema.as_ref().clone())?;
        let batch = RecordBatch::try_new(
            arrow_schema,
            vec![Arc::new(Int32Array::from(vec![
                Some(1),
                Some(20),
                None,
                Some(7),
                Some(0),
            ]))],
        )?;
        let input = Changes {
            batch,
            deleted: BooleanArray::from(vec![false, false, false, true, false]),
            origins: vec![10, 11, 12, 13, 14],
        };
        let predicate = (lit(10i32) / ident("A")).gt(lit(1i32));
        let mut filter = Filter::new(Compiled::new(&predicate, &schema)?);
        let raw = eddy_topic::RawBatch::default();
        let mut context = context(&raw);
        let out = filter.process(0, input, &mut context)?;
        // 10/1 > 1 passes; 10/20 does not; null does not; the deletion passes; 10/0 fails.
        let values: Vec<Option<i32>> = out
            .batch
            .column(0)
            .as_primitive::<Int32Type>()
            .iter()
            .collect();
        assert_eq!(values, [Some(1), Some(7)]);
        assert_eq!(out.origins, [10, 13]);
        assert_eq!(out.deleted, BooleanArray::from(vec![false, true]));
        assert_eq!(context.errors.len(), 1, "{:?}", context.errors);
        assert_eq!(context.errors[0].row, 4);
        Ok(())
    }
}

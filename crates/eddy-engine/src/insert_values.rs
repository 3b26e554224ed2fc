//! `INSERT INTO … VALUES`: one record, encoded like any other output and written to the
//! source's topic.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::array::{Array, ArrayRef, BooleanArray, new_null_array};
use arrow::compute::{cast, filter_record_batch};
use arrow::datatypes::Schema;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion_common::DFSchema;
use datafusion_sql::sqlparser::ast::Expr as SqlExpr;
use eddy_formats::{Format, KeyEncoder, ValueDecoder, ValueEncoder};
use eddy_sql::catalog::{Catalog, ColumnRole, Source};
use eddy_sql::plan::{ROWOFFSET, ROWPARTITION, ROWTIME, plan_values};
use eddy_topic::{Payloads, RecordSink, TopicIo};

use crate::error::EngineError;
use crate::eval::Compiled;
use crate::reader::{columns_schema, encoders};

/// Inserts one row into `target`.
pub(crate) fn insert_values(
    topics: &dyn TopicIo,
    catalog: &Catalog,
    target: &Source,
    columns: Option<&[String]>,
    values: &[SqlExpr],
) -> Result<(), EngineError> {
    let names: Vec<String> = match columns {
        Some(cols) => cols.to_vec(),
        None => target.columns.iter().map(|c| c.name.clone()).collect(),
    };
    for n in &names {
        if [ROWPARTITION, ROWOFFSET].contains(&n.as_str()) {
            return Err(EngineError::Invalid(format!(
                "Inserting into column `{n}` is not allowed."
            )));
        }
        if n != ROWTIME && target.column(n).is_none() {
            return Err(EngineError::Invalid(format!(
                "Column name `{n}` does not exist in {}.",
                target.name
            )));
        }
    }
    let headers: Vec<&str> = names
        .iter()
        .filter(|n| target.column(n).is_some_and(|c| c.role.is_header()))
        .map(String::as_str)
        .collect();
    if !headers.is_empty() {
        return Err(EngineError::Invalid(format!(
            "Cannot insert into HEADER columns: {}",
            headers.join(", ")
        )));
    }
    if names.len() != values.len() {
        return Err(EngineError::Invalid(format!(
            "Expected a value for each column. Expected Columns: [{}]. Got [{}]",
            names.join(", "),
            values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let exprs = plan_values(values, catalog)?;
    let empty = DFSchema::empty();
    let row = RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(1)),
    )?;
    let mut evaluated: Vec<(String, ArrayRef)> = Vec::with_capacity(exprs.len());
    for (name, expr) in names.iter().zip(&exprs) {
        let mut errors = Vec::new();
        let value = Compiled::new(expr, &empty)?.evaluate(&row, &mut errors)?;
        if let Some(e) = errors.first() {
            return Err(EngineError::Invalid(format!(
                "Failed to evaluate the value for `{name}`: {}",
                e.reason
            )));
        }
        evaluated.push((name.clone(), value));
    }
    let column_value =
        |name: &str, ty: &arrow::datatypes::DataType| -> Result<ArrayRef, EngineError> {
            match evaluated.iter().find(|(n, _)| n == name) {
                None => Ok(new_null_array(ty, 1)),
                Some((_, v)) if v.data_type() == ty => Ok(Arc::clone(v)),
                Some((_, v)) => {
                    let out = cast(v, ty).map_err(|_| {
                        EngineError::Invalid(format!(
                            "Expected type {} for field `{name}` but got {}",
                            eddy_sql::types::SqlType::from_arrow(ty)
                                .map(|t| t.to_string())
                                .unwrap_or_else(|| ty.to_string()),
                            v.data_type()
                        ))
                    })?;
                    if out.logical_null_count() > v.logical_null_count() {
                        return Err(EngineError::Invalid(format!(
                            "Could not convert the value for `{name}` to {ty}"
                        )));
                    }
                    Ok(out)
                }
            }
        };
    let batch_of = |role: ColumnRole| -> Result<RecordBatch, EngineError> {
        let cols: Vec<_> = target.columns.iter().filter(|c| c.role == role).collect();
        let schema = columns_schema(cols.iter().copied());
        let arrays = cols
            .iter()
            .map(|c| column_value(&c.name, &c.ty.to_arrow()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new_with_options(
            schema,
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?)
    };
    let keys = batch_of(ColumnRole::Key)?;
    let values = batch_of(ColumnRole::Value)?;
    let timestamp = match evaluated.iter().find(|(n, _)| n == ROWTIME) {
        Some((_, v)) => {
            let v = cast(v, &arrow::datatypes::DataType::Int64)?;
            v.as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .filter(|a| !a.is_null(0))
                .map(|a| a.value(0))
                .ok_or_else(|| EngineError::Invalid("ROWTIME must be a BIGINT".into()))?
        }
        None => now_ms(),
    };
    let (mut key_encoder, mut value_encoder) = encoders(target)?;
    let mut sink = topics.sink(&target.topic)?;
    write(
        &mut key_encoder,
        &mut value_encoder,
        sink.as_mut(),
        (&keys, &values),
        &[timestamp],
    )
}

/// Milliseconds since the epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Encodes aligned `keys` and `values` rows with the encoders and writes them to the sink,
/// waiting until the broker has them.
fn write(
    key_encoder: &mut KeyEncoder,
    value_encoder: &mut ValueEncoder,
    sink: &mut dyn RecordSink,
    (keys, values): (&RecordBatch, &RecordBatch),
    timestamps: &[i64],
) -> Result<(), EngineError> {
    let mut key_bytes = Payloads::new();
    let mut value_bytes = Payloads::new();
    key_encoder.encode(keys, &mut key_bytes)?;
    value_encoder.encode(values, None, &mut value_bytes)?;
    sink.send(&key_bytes, &value_bytes, timestamps)?;
    sink.flush(Duration::from_secs(30))?;
    Ok(())
}

/// Writes rows sent as JSON objects keyed by column name (what ksqlDB's `/inserts-stream`
/// sends) into one stream, stamped with the time they are written; keeps its producer and
/// codecs from batch to batch.
pub struct JsonInserter {
    target: Source,
    decoder: ValueDecoder,
    key_encoder: KeyEncoder,
    value_encoder: ValueEncoder,
    sink: Box<dyn RecordSink>,
}

impl std::fmt::Debug for JsonInserter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonInserter")
            .field("target", &self.target.name)
            .finish_non_exhaustive()
    }
}

impl JsonInserter {
    /// An inserter into `target`, whose topic gets a producer of its own.
    pub(crate) fn new(topics: &dyn TopicIo, target: &Source) -> Result<Self, EngineError> {
        let schema = columns_schema(target.key_columns().chain(target.value_columns()));
        let (key_encoder, value_encoder) = encoders(target)?;
        Ok(Self {
            target: target.clone(),
            decoder: ValueDecoder::new(&Format::Json, schema, true)?,
            key_encoder,
            value_encoder,
            sink: topics.sink(&target.topic)?,
        })
    }

    /// Writes `rows` (one JSON object each). Returns each row's outcome in order: a row
    /// that does not decode is not written and gets its reason. The rows that decode are
    /// written as one batch, acknowledged by the broker before this returns.
    pub fn insert(&mut self, rows: &Payloads) -> Result<Vec<Result<(), String>>, EngineError> {
        let decoded = self.decoder.decode(rows)?;
        let mut outcomes: Vec<Result<(), String>> = vec![Ok(()); rows.len()];
        let mut keep = vec![true; rows.len()];
        for error in decoded.errors {
            keep[error.index] = false;
            outcomes[error.index] = Err(error.reason);
        }
        let good = filter_record_batch(&decoded.batch, &BooleanArray::from(keep))?;
        if good.num_rows() == 0 {
            return Ok(outcomes);
        }
        let columns_of = |role: ColumnRole| -> Result<RecordBatch, EngineError> {
            let cols: Vec<_> = self
                .target
                .columns
                .iter()
                .filter(|c| c.role == role)
                .collect();
            let arrays = cols
                .iter()
                .map(|c| {
                    good.column_by_name(&c.name).cloned().ok_or_else(|| {
                        EngineError::Internal(format!("decoded rows lack column {}", c.name))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RecordBatch::try_new_with_options(
                columns_schema(cols.iter().copied()),
                arrays,
                &RecordBatchOptions::new().with_row_count(Some(good.num_rows())),
            )?)
        };
        let (keys, values) = (columns_of(ColumnRole::Key)?, columns_of(ColumnRole::Value)?);
        write(
            &mut self.key_encoder,
            &mut self.value_encoder,
            self.sink.as_mut(),
            (&keys, &values),
            &vec![now_ms(); good.num_rows()],
        )?;
        Ok(outcomes)
    }
}

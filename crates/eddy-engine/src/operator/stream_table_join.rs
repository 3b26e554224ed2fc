//! The stream–table join: each stream row looks its join key up in the table's materialised
//! store and gets the table's columns (null where no row matches; an inner join drops
//! those rows). Before a batch is joined the table is given a moment to catch up with every
//! row written before the batch was read, so that a stream row sees the table as it was
//! when the row arrived.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, BooleanArray, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_formats::{KeyEncoder, ValueDecoder};
use eddy_sql::catalog::Source;
use eddy_sql::plan::{JoinKind, QueryPlan};
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, RecordHeaders};

use crate::error::EngineError;
use crate::eval::Compiled;
use crate::operator::{Changes, Context, Operator, Port};
use crate::reader::{columns_schema, decoders, header_columns, header_layout};
use crate::table::{TableProgress, key_codec, stored_row};

/// The table side of a stream–table join.
pub(crate) struct StreamTableJoin {
    kind: JoinKind,
    stream_key: Compiled,
    key_schema: SchemaRef,
    key_encoder: KeyEncoder,
    store: Arc<dyn KeyValueStore>,
    values: ValueDecoder,
    table: Source,
    table_schema: SchemaRef,
    progress: Arc<TableProgress>,
    freshness_wait: Duration,
    /// The joined rows' schema: the stream's columns, then the table's.
    joined_schema: SchemaRef,
    lookup_keys: Payloads,
    /// The table rows found, as stored ([`stored_row`]).
    found_rows: Payloads,
    /// Their value bytes.
    found: Payloads,
    /// The table's header columns ([`header_layout`]).
    table_headers: Vec<(Option<String>, DataType)>,
}

impl StreamTableJoin {
    pub(crate) fn new(
        plan: &QueryPlan,
        store: Arc<dyn KeyValueStore>,
        progress: Arc<TableProgress>,
        freshness_wait: Duration,
    ) -> Result<Option<Self>, EngineError> {
        let Some(join) = &plan.join else {
            return Ok(None);
        };
        let table = &join.table.source;
        let (_, key_encoder) = key_codec(table)?;
        let (_, values) = decoders(table)?;
        Ok(Some(Self {
            kind: join.kind,
            stream_key: Compiled::new(&join.stream_key, &plan.from.schema)?,
            key_schema: columns_schema(table.key_columns()),
            key_encoder,
            store,
            values,
            table: table.clone(),
            table_schema: Arc::new(join.table.schema.as_arrow().clone()),
            progress,
            freshness_wait,
            joined_schema: Arc::new(plan.input_schema.as_arrow().clone()),
            lookup_keys: Payloads::new(),
            found_rows: Payloads::new(),
            found: Payloads::new(),
            table_headers: header_layout(table),
        }))
    }
}

impl Operator for StreamTableJoin {
    /// Appends the table's columns to every stream row (dropping unmatched rows of an inner
    /// join).
    fn process(
        &mut self,
        _port: Port,
        input: Changes,
        context: &mut Context<'_>,
    ) -> Result<Changes, EngineError> {
        let (stream, topics, errors) = (&input.batch, context.topics, &mut context.errors);
        // The table must include every row written before this stream batch was read.
        if let Ok(ends) = topics.admin().end_offsets(&self.table.topic)
            && !self.progress.wait_for(&ends, self.freshness_wait)
        {
            tracing::debug!(table = %self.table.name, "joining before the table caught up");
        }
        let key = self.stream_key.evaluate(stream, errors)?;
        let key_type = self.key_schema.field(0).data_type().clone();
        let key = if key.data_type() == &key_type {
            key
        } else {
            cast(&key, &key_type)?
        };
        let key_batch = RecordBatch::try_new(Arc::clone(&self.key_schema), vec![Arc::clone(&key)])?;
        self.lookup_keys.clear();
        self.key_encoder.encode(&key_batch, &mut self.lookup_keys)?;
        self.found_rows.clear();
        self.store
            .get_many(&self.lookup_keys, &mut self.found_rows)?;
        stored_row::values(&self.found_rows, &mut self.found);
        let decoded = self.values.decode(&self.found)?;
        let n = stream.num_rows();
        let mut columns: Vec<ArrayRef> = stream.columns().to_vec();
        let matched: Vec<bool> = (0..n)
            .map(|i| self.found.get(i).is_some() && !decoded.errors.iter().any(|e| e.index == i))
            .collect();
        let matched = BooleanArray::from(matched);
        // The table's key equals the lookup key where a row was found.
        columns.push(arrow::compute::nullif(
            &key,
            &arrow::compute::not(&matched)?,
        )?);
        columns.extend(decoded.batch.columns().iter().cloned());
        if !self.table_headers.is_empty() {
            // The table's header columns, from the headers its rows were stored with.
            let mut headers = RecordHeaders::new();
            for (i, row) in self.found_rows.iter().enumerate() {
                if let Some(row) = row {
                    headers.set(i, stored_row::parts(row).1);
                }
            }
            for column in header_columns(&self.table_headers, &headers, n)? {
                columns.push(arrow::compute::nullif(
                    &column,
                    &arrow::compute::not(&matched)?,
                )?);
            }
        }
        for field in self
            .table_schema
            .fields()
            .iter()
            .skip(columns.len() - stream.num_columns())
        {
            columns.push(new_null_array(field.data_type(), n));
        }
        let joined = Changes::rows(
            RecordBatch::try_new(Arc::clone(&self.joined_schema), columns)?,
            input.origins,
        );
        match self.kind {
            JoinKind::Inner => joined.keep(&matched),
            JoinKind::Left | JoinKind::Right | JoinKind::Full => Ok(joined),
        }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{AsArray, Int32Array};
    use arrow::datatypes::Int32Type;
    use eddy_sql::catalog::SourceKind;
    use eddy_sql::types::SqlType;
    use eddy_state::{MemoryBackend, StateBackend};
    use eddy_topic::RawBatch;

    use super::*;
    use crate::operator::tests::{context, plan, source, store_row};
    use crate::reader::SourceReader;

    /// Reviews by users 7 (in the table) and 8 (not), joined with the users table.
    fn joined(kind: &str) -> Result<Changes, EngineError> {
        let reviews = source(
            "REVIEWS",
            SourceKind::Stream,
            &[
                ("ID", SqlType::Int, true),
                ("USERID", SqlType::Int, false),
                ("RATING", SqlType::Int, false),
            ],
        );
        let users = source(
            "USERS",
            SourceKind::Table,
            &[
                ("USERID", SqlType::Int, true),
                ("NAME", SqlType::String, false),
            ],
        );
        let sql = format!(
            "SELECT r.id, r.rating, u.name FROM reviews r {kind} users u \
             ON r.userid = u.userid EMIT CHANGES;"
        );
        let plan = plan(&sql, vec![reviews, users])?;
        let store = MemoryBackend::new().open_store("users")?;
        store_row(&store, 7, r#"{"NAME":"Ann"}"#)?;
        let progress = Arc::new(TableProgress::default());
        let mut join = StreamTableJoin::new(&plan, store, progress, Duration::ZERO)?
            .ok_or_else(|| EngineError::Internal("no join planned".into()))?;
        let mut raw = RawBatch::default();
        raw.push(
            Some(&1i32.to_be_bytes()),
            Some(br#"{"USERID":7,"RATING":1}"#),
            10,
            0,
            0,
        );
        raw.push(
            Some(&2i32.to_be_bytes()),
            Some(br#"{"USERID":8,"RATING":2}"#),
            11,
            0,
            1,
        );
        let decoded = SourceReader::for_query(&plan)?.decode(&raw, true, &mut Vec::new())?;
        let input = Changes::rows(decoded.batch, decoded.rows);
        join.process(0, input, &mut context(&raw))
    }

    fn column<'a>(changes: &'a Changes, suffix: &str) -> Result<&'a ArrayRef, EngineError> {
        let schema = changes.batch.schema();
        let (i, _) = schema
            .fields()
            .iter()
            .enumerate()
            .find(|(_, f)| f.name().ends_with(suffix))
            .ok_or_else(|| EngineError::Internal(format!("no {suffix} in {schema:?}")))?;
        Ok(changes.batch.column(i))
    }

    #[test]
    fn an_inner_join_keeps_matched_rows_with_the_tables_columns() -> Result<(), EngineError> {
        let out = joined("JOIN")?;
        assert_eq!(out.origins, [0]);
        let names: Vec<Option<&str>> = column(&out, "NAME")?.as_string::<i32>().iter().collect();
        assert_eq!(names, [Some("Ann")]);
        Ok(())
    }

    #[test]
    fn a_left_join_keeps_every_stream_row() -> Result<(), EngineError> {
        let out = joined("LEFT JOIN")?;
        assert_eq!(out.origins, [0, 1]);
        let names: Vec<Option<&str>> = column(&out, "NAME")?.as_string::<i32>().iter().collect();
        assert_eq!(names, [Some("Ann"), None]);
        let ratings = column(&out, "RATING")?.as_primitive::<Int32Type>();
        assert_eq!(ratings, &Int32Array::from(vec![1, 2]));
        Ok(())
    }
}

//! Table–table joins on the primary key: a change to either table looks its key up in the
//! other table's materialised store and emits the joined row for that key (or deletes it,
//! when the change is a deletion or an inner join loses its match).
//!
//! Both topics are read by one task through [`MergedSource`](crate::stream_join::MergedSource).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use eddy_formats::KeyEncoder;
use eddy_sql::catalog::Source;
use eddy_sql::plan::{JoinKind, QueryPlan};
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, RawBatch};

use crate::error::EngineError;
use crate::operator::{Changes, Context, Operator, Port};
use crate::reader::{SourceReader, columns_schema};
use crate::table::{key_codec, stored_row};

/// One side of a table–table join: how to read it and where its rows are.
struct Side {
    reader: SourceReader,
    key_encoder: KeyEncoder,
    key_columns: usize,
    key_schema: SchemaRef,
    store: Arc<dyn KeyValueStore>,
}

impl Side {
    fn new(table: &Source, store: Arc<dyn KeyValueStore>) -> Result<Self, EngineError> {
        let (_, key_encoder) = key_codec(table)?;
        Ok(Self {
            reader: SourceReader::new(table)?,
            key_encoder,
            key_columns: table.key_columns().count(),
            key_schema: columns_schema(table.key_columns()),
            store,
        })
    }
}

/// The join of the driving table (left) with another table (right).
pub(crate) struct TableTableJoin {
    kind: JoinKind,
    left: Side,
    right: Side,
    from_right: Arc<AtomicBool>,
    /// The joined rows' schema: the left table's columns, then the right's.
    joined_schema: SchemaRef,
}

/// A batch of one table's changes, as a table–table join gets them.
pub(crate) struct TableChanges<'a> {
    /// The changed rows, decoded.
    pub batch: &'a RecordBatch,
    /// Which rows delete their key.
    pub tombstones: &'a BooleanArray,
    /// The records the rows were decoded from.
    pub raw: &'a RawBatch,
    /// For each row, its record's index in `raw`.
    pub rows: &'a [usize],
    /// The left table's partitions this server reads, if the source can say.
    pub left_partitions: Option<&'a [i32]>,
    /// Whether the changes are the right-hand table's.
    pub right: bool,
}

impl<'a> TableChanges<'a> {
    /// The changes an operator got on `port` (1: the right-hand table's).
    pub(crate) fn of(port: Port, input: &'a Changes, context: &'a Context<'_>) -> Self {
        Self {
            batch: &input.batch,
            tombstones: &input.deleted,
            raw: context.raw,
            rows: &input.origins,
            left_partitions: context.driving_partitions.as_deref(),
            right: port == 1,
        }
    }
}

/// A join of two tables, driven by the changes of either (both topics are read by one task):
/// an [`Operator`] whose port 0 takes the left table's changes and port 1 the right's.
pub(crate) trait TableJoin: Operator {
    /// Whether the batch being polled came from the right-hand table.
    fn is_right_batch(&self) -> bool;
    /// Decodes a right-hand batch.
    fn right_reader(&mut self) -> &mut SourceReader;
}

impl TableTableJoin {
    pub(crate) fn new(
        plan: &QueryPlan,
        left_store: Arc<dyn KeyValueStore>,
        right_store: Arc<dyn KeyValueStore>,
        from_right: Arc<AtomicBool>,
    ) -> Result<Self, EngineError> {
        let join = plan
            .join
            .as_ref()
            .ok_or_else(|| EngineError::Internal("table join without a join".into()))?;
        Ok(Self {
            kind: join.kind,
            left: Side::new(&plan.from.source, left_store)?,
            right: Side::new(&join.table.source, right_store)?,
            from_right,
            joined_schema: Arc::new(plan.input_schema.as_arrow().clone()),
        })
    }
}

impl TableJoin for TableTableJoin {
    fn is_right_batch(&self) -> bool {
        self.from_right.load(Ordering::SeqCst)
    }

    fn right_reader(&mut self) -> &mut SourceReader {
        &mut self.right.reader
    }
}

impl Operator for TableTableJoin {
    fn process(
        &mut self,
        port: Port,
        input: Changes,
        context: &mut Context<'_>,
    ) -> Result<Changes, EngineError> {
        self.apply(&TableChanges::of(port, &input, context))
    }
}

impl TableTableJoin {
    /// Joins the changed rows (decoded, with tombstones marking deletions) with the other
    /// table's current rows.
    fn apply(&mut self, changes: &TableChanges<'_>) -> Result<Changes, EngineError> {
        let (batch, tombstones) = (changes.batch, changes.tombstones);
        let right = changes.right;
        let (own, other) = if right {
            (&mut self.right, &mut self.left)
        } else {
            (&mut self.left, &mut self.right)
        };
        // The changed rows' keys, encoded the way the other table's store keys them.
        let key_batch = RecordBatch::try_new(
            Arc::clone(&other.key_schema),
            batch.columns()[..own.key_columns].to_vec(),
        )?;
        let mut keys = Payloads::new();
        other.key_encoder.encode(&key_batch, &mut keys)?;
        let mut found = Payloads::new();
        other.store.get_many(&keys, &mut found)?;
        let mut lookups = RawBatch::default();
        for (k, v) in keys.iter().zip(found.iter()) {
            stored_row::push(&mut lookups, k, v);
        }
        let mut ignored = Vec::new();
        let decoded = other.reader.decode(&lookups, false, &mut ignored)?;
        let mut position = vec![None; lookups.len()];
        for (p, r) in decoded.rows.iter().enumerate() {
            position[*r] = Some(p as u32);
        }

        // Each change emits the key's new joined row, or deletes it.
        let mut rows = Vec::new();
        let mut own_rows = Vec::new();
        let mut matched = Vec::new();
        let mut deleted = Vec::new();
        for (i, m) in position.iter().enumerate() {
            let gone = tombstones.value(i);
            // The side every row of which shows ("preserved"), and the other one.
            let preserved = match self.kind {
                JoinKind::Left => Some(false),
                JoinKind::Right => Some(true),
                JoinKind::Full => Some(right),
                JoinKind::Inner => None,
            };
            let (emit, delete) = match (preserved == Some(right), m.is_some()) {
                // A row of the preserved side shows even without a match.
                (true, _) => (true, gone),
                // Otherwise it shows through a match on the other side; deleting it leaves
                // the other side's row (with nulls) in an outer join, nothing in an inner.
                (false, true) if preserved.is_some() => (true, false),
                (false, true) => (true, gone),
                (false, false) => (gone && preserved.is_none(), true),
            };
            if emit {
                rows.push(i as u32);
                // A deleted right row leaves a left join's row with nulls on the right.
                own_rows.push(
                    (!(gone && preserved.is_some() && preserved != Some(right)))
                        .then_some(i as u32),
                );
                matched.push(*m);
                deleted.push(delete);
            }
        }
        let origins = rows.iter().map(|&i| changes.rows[i as usize]).collect();
        let time_index = UInt32Array::from(rows);
        let own_index: UInt32Array = own_rows.into_iter().collect();
        let other_index: UInt32Array = matched.into_iter().collect();
        let own_time = take(
            batch.column(batch.num_columns() - 3).as_ref(),
            &time_index,
            None,
        )?;
        let mut own_columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &own_index, None))
            .collect::<Result<_, _>>()?;
        let mut other_columns: Vec<ArrayRef> = decoded
            .batch
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &other_index, None))
            .collect::<Result<_, _>>()?;
        if right {
            // The change's time is the joined row's (the left ROWTIME carries it).
            let left_time = other_columns.len() - 3;
            other_columns[left_time] = own_time;
            other_columns.append(&mut own_columns);
            own_columns = other_columns;
        } else {
            own_columns.append(&mut other_columns);
        }
        Ok(Changes {
            batch: RecordBatch::try_new(Arc::clone(&self.joined_schema), own_columns)?,
            deleted: BooleanArray::from(deleted),
            origins,
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::Int32Type;
    use eddy_sql::catalog::SourceKind;
    use eddy_sql::types::SqlType;
    use eddy_state::{MemoryBackend, StateBackend};

    use super::*;
    use crate::operator::tests::{context, plan, source, store_row};

    /// `SELECT *` of `tl {kind} tr` on the key, with the tables' stores; `tr` holds key 1.
    fn join(kind: &str) -> Result<(TableTableJoin, Arc<dyn KeyValueStore>), EngineError> {
        let tl = source(
            "TL",
            SourceKind::Table,
            &[("ID", SqlType::Int, true), ("X", SqlType::String, false)],
        );
        let tr = source(
            "TR",
            SourceKind::Table,
            &[("ID", SqlType::Int, true), ("Y", SqlType::String, false)],
        );
        let sql = format!("SELECT * FROM tl {kind} tr ON tl.id = tr.id EMIT CHANGES;");
        let plan = plan(&sql, vec![tl, tr])?;
        let backend = MemoryBackend::new();
        let (left, right) = (backend.open_store("tl")?, backend.open_store("tr")?);
        store_row(&right, 1, r#"{"Y":"y1"}"#)?;
        let flag = Arc::new(AtomicBool::new(false));
        Ok((
            TableTableJoin::new(&plan, Arc::clone(&left), right, flag)?,
            left,
        ))
    }

    /// A batch of one table's changes: (key, JSON value or `None` for a deletion).
    fn changes(
        join: &mut TableTableJoin,
        port: Port,
        rows: &[(i32, Option<&str>)],
    ) -> Result<(Changes, RawBatch), EngineError> {
        let mut raw = RawBatch::default();
        for (i, (key, value)) in rows.iter().enumerate() {
            raw.push(
                Some(&key.to_be_bytes()),
                value.map(str::as_bytes),
                10,
                0,
                i as i64,
            );
        }
        let reader = match port {
            0 => &mut join.left.reader,
            _ => join.right_reader(),
        };
        let decoded = reader.decode(&raw, true, &mut Vec::new())?;
        let changes = Changes {
            deleted: BooleanArray::from(decoded.tombstones),
            batch: decoded.batch,
            origins: decoded.rows,
        };
        Ok((changes, raw))
    }

    /// Each row's (left key, X, right key, Y): the joined rows hold the left table's
    /// columns (ID, X, ROWTIME, ROWPARTITION, ROWOFFSET), then the right table's.
    fn rows(out: &Changes) -> Vec<(Option<i32>, Option<String>, Option<i32>, Option<String>)> {
        let int = |c: usize, i: usize| {
            out.batch
                .column(c)
                .as_primitive::<Int32Type>()
                .iter()
                .nth(i)
                .flatten()
        };
        let text = |c: usize, i: usize| {
            out.batch
                .column(c)
                .as_string::<i32>()
                .iter()
                .nth(i)
                .flatten()
                .map(str::to_string)
        };
        (0..out.batch.num_rows())
            .map(|i| (int(0, i), text(1, i), int(5, i), text(6, i)))
            .collect()
    }

    #[test]
    fn a_left_change_on_port_0_joins_the_right_tables_row() -> Result<(), EngineError> {
        let (mut join, _) = join("JOIN")?;
        let (input, raw) = changes(
            &mut join,
            0,
            &[(1, Some(r#"{"X":"a"}"#)), (2, Some(r#"{"X":"b"}"#))],
        )?;
        let out = join.process(0, input, &mut context(&raw))?;
        // Key 2 has no right row: an inner join emits nothing for it.
        assert_eq!(
            rows(&out),
            [(Some(1), Some("a".into()), Some(1), Some("y1".into()))]
        );
        assert_eq!(out.origins, [0]);
        assert_eq!(out.deleted, BooleanArray::from(vec![false]));
        Ok(())
    }

    #[test]
    fn a_right_change_on_port_1_joins_the_left_tables_row() -> Result<(), EngineError> {
        let (mut join, left) = join("LEFT JOIN")?;
        store_row(&left, 1, r#"{"X":"a"}"#)?;
        let (input, raw) = changes(&mut join, 1, &[(1, Some(r#"{"Y":"y2"}"#))])?;
        let out = join.process(1, input, &mut context(&raw))?;
        assert_eq!(
            rows(&out),
            [(Some(1), Some("a".into()), Some(1), Some("y2".into()))]
        );
        // Deleting the right row leaves a left join's row with nulls on the right.
        let (input, raw) = changes(&mut join, 1, &[(1, None)])?;
        let out = join.process(1, input, &mut context(&raw))?;
        assert_eq!(rows(&out), [(Some(1), Some("a".into()), None, None)]);
        assert_eq!(out.deleted, BooleanArray::from(vec![false]));
        Ok(())
    }
}

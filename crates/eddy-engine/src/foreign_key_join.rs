//! Foreign-key table–table joins (`FROM l JOIN r ON <expression over l> = r.<primary key>`):
//! the result is keyed by the left table's primary key. A left row's change joins it with
//! the right row its foreign key names; a right row's change re-joins every left row that
//! refers to it; a left row whose foreign key changes leaves its old match (an inner join
//! deletes the result when the new key finds nothing).
//!
//! The query keeps its own index of the left table (a store with a changelog, like an
//! aggregation's state), so that it fans a right change out without waiting for the left
//! table's materialisation to catch up:
//!
//! * `0 ‖ pk` → `partition ‖ foreign key (length-prefixed; absent for a null key) ‖ left value`
//! * `1 ‖ len ‖ foreign key ‖ pk` → `partition`
//!
//! Every server of the query reads every right change (the right side has a consumer
//! group per server) and answers it for the left rows whose partitions it owns, as their
//! index entries record; the left side's partitions are shared as for any query.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use arrow::compute::{cast, take};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use eddy_formats::KeyEncoder;
use eddy_sql::catalog::Source;
use eddy_sql::plan::{JoinKind, QueryPlan};
use eddy_state::KeyValueStore;
use eddy_topic::{Payloads, RawBatch};

use crate::changelog::Changelog;
use crate::error::EngineError;
use crate::eval::Compiled;
use crate::operator::{Changes, Context, Operator, Port};
use crate::reader::{SourceReader, columns_schema};
use crate::table::{key_codec, stored_row};
use crate::table_join::{TableChanges, TableJoin};

/// Tag of the entries keyed by the left row's primary key.
const BY_KEY: u8 = 0;
/// Tag of the entries keyed by foreign key, then primary key.
const BY_FOREIGN_KEY: u8 = 1;
/// The length prefix of a null foreign key.
const NULL_KEY: u32 = u32::MAX;

/// A left row as the index keeps it.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    partition: i32,
    foreign_key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

impl Entry {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.value.as_ref().map_or(0, Vec::len));
        out.extend_from_slice(&self.partition.to_be_bytes());
        match &self.foreign_key {
            Some(fk) => {
                out.extend_from_slice(&(fk.len() as u32).to_be_bytes());
                out.extend_from_slice(fk);
            }
            None => out.extend_from_slice(&NULL_KEY.to_be_bytes()),
        }
        if let Some(v) = &self.value {
            out.extend_from_slice(v);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        let partition = i32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
        let len = u32::from_be_bytes(bytes.get(4..8)?.try_into().ok()?);
        let (foreign_key, rest) = if len == NULL_KEY {
            (None, bytes.get(8..)?)
        } else {
            let end = 8 + len as usize;
            (Some(bytes.get(8..end)?.to_vec()), bytes.get(end..)?)
        };
        Some(Entry {
            partition,
            foreign_key,
            value: Some(rest.to_vec()),
        })
    }
}

fn by_key(pk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + pk.len());
    k.push(BY_KEY);
    k.extend_from_slice(pk);
    k
}

fn by_foreign_key_prefix(fk: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + fk.len());
    k.push(BY_FOREIGN_KEY);
    k.extend_from_slice(&(fk.len() as u32).to_be_bytes());
    k.extend_from_slice(fk);
    k
}

fn by_foreign_key(fk: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut k = by_foreign_key_prefix(fk);
    k.extend_from_slice(pk);
    k
}

/// One table of the join: its reader and key encoding.
struct Side {
    reader: SourceReader,
    key_encoder: KeyEncoder,
    key_columns: usize,
    key_schema: SchemaRef,
}

impl Side {
    fn new(table: &Source) -> Result<Self, EngineError> {
        let (_, key_encoder) = key_codec(table)?;
        Ok(Self {
            reader: SourceReader::new(table)?,
            key_encoder,
            key_columns: table.key_columns().count(),
            key_schema: columns_schema(table.key_columns()),
        })
    }

    /// The canonical encoding of the key columns (the first of `batch`), one per row.
    fn keys(&mut self, batch: &RecordBatch) -> Result<Payloads, EngineError> {
        let key_batch = RecordBatch::try_new(
            Arc::clone(&self.key_schema),
            batch.columns()[..self.key_columns].to_vec(),
        )?;
        let mut keys = Payloads::new();
        self.key_encoder.encode(&key_batch, &mut keys)?;
        Ok(keys)
    }
}

/// The foreign-key join of the driving table (left) with the table it refers to (right).
pub(crate) struct ForeignKeyJoin {
    kind: JoinKind,
    left: Side,
    right: Side,
    /// The left side's join expression, over the left table's rows.
    foreign_key: Compiled,
    /// The right table's rows, by primary key (its materialisation).
    right_store: Arc<dyn KeyValueStore>,
    /// The query's index of the left table (see the module's documentation).
    index: Arc<dyn KeyValueStore>,
    changelog: Option<Changelog>,
    from_right: Arc<AtomicBool>,
    /// The joined rows' schema: the left table's columns, then the right's.
    joined_schema: SchemaRef,
}

impl ForeignKeyJoin {
    pub(crate) fn new(
        plan: &QueryPlan,
        right_store: Arc<dyn KeyValueStore>,
        index: Arc<dyn KeyValueStore>,
        from_right: Arc<AtomicBool>,
    ) -> Result<Self, EngineError> {
        let join = plan
            .join
            .as_ref()
            .ok_or_else(|| EngineError::Internal("foreign-key join without a join".into()))?;
        Ok(Self {
            kind: join.kind,
            left: Side::new(&plan.from.source)?,
            right: Side::new(&join.table.source)?,
            foreign_key: Compiled::new(&join.stream_key, &plan.from.schema)?,
            right_store,
            index,
            changelog: None,
            from_right,
            joined_schema: Arc::new(plan.input_schema.as_arrow().clone()),
        })
    }

    /// Writes the index's changes to `changelog` too (persistent queries).
    pub(crate) fn with_changelog(mut self, changelog: Changelog) -> Self {
        self.changelog = Some(changelog);
        self
    }

    /// Writes index changes to the store and its changelog (which takes them).
    fn write(&mut self, keys: &mut Payloads, values: &mut Payloads) -> Result<(), EngineError> {
        if keys.is_empty() {
            return Ok(());
        }
        self.index.write(keys, values)?;
        if let Some(changelog) = &mut self.changelog {
            changelog.append(keys, values)?;
        }
        Ok(())
    }

    /// The foreign keys of the left rows of `batch`, encoded as the right table's keys.
    fn foreign_keys(&mut self, batch: &RecordBatch) -> Result<Vec<Option<Vec<u8>>>, EngineError> {
        let mut ignored = Vec::new();
        let fk = self.foreign_key.evaluate(batch, &mut ignored)?;
        let key_type = self.right.key_schema.field(0).data_type().clone();
        let fk = if fk.data_type() == &key_type {
            fk
        } else {
            cast(&fk, &key_type)?
        };
        let nulls = fk.logical_nulls();
        let encoded = RecordBatch::try_new(Arc::clone(&self.right.key_schema), vec![fk])?;
        let mut keys = Payloads::new();
        self.right.key_encoder.encode(&encoded, &mut keys)?;
        Ok((0..batch.num_rows())
            .map(|i| {
                let null = nulls.as_ref().is_some_and(|n| n.is_null(i));
                keys.get(i).filter(|_| !null).map(<[u8]>::to_vec)
            })
            .collect())
    }

    /// Changes of left rows: each updates the index and emits its key's joined row, or
    /// deletes it.
    fn left_changes(&mut self, changes: &TableChanges<'_>) -> Result<Changes, EngineError> {
        let batch = changes.batch;
        let n = batch.num_rows();
        let pks = self.left.keys(batch)?;
        let fks = self.foreign_keys(batch)?;
        // The index's entries of these keys, as the batch changes them.
        let mut lookup = Payloads::new();
        for i in 0..n {
            lookup.push(pks.get(i).map(by_key).as_deref());
        }
        let mut found = Payloads::new();
        self.index.get_many(&lookup, &mut found)?;
        let mut current: HashMap<Vec<u8>, Option<Entry>> = HashMap::new();
        let (mut keys, mut values) = (Payloads::new(), Payloads::new());
        for (i, fk) in fks.iter().enumerate() {
            let Some(pk) = pks.get(i) else {
                continue;
            };
            let old = match current.get(pk) {
                Some(entry) => entry.clone(),
                None => found.get(i).and_then(Entry::decode),
            };
            let gone = changes.tombstones.value(i);
            let raw_row = changes.rows.get(i).copied();
            let new = (!gone).then(|| Entry {
                partition: raw_row.map_or(0, |r| changes.raw.partitions[r]),
                foreign_key: fk.clone(),
                value: raw_row.and_then(|r| changes.raw.values.get(r).map(<[u8]>::to_vec)),
            });
            let old_fk = old.as_ref().and_then(|e| e.foreign_key.clone());
            let new_fk = new.as_ref().and_then(|e| e.foreign_key.clone());
            if let Some(fk) = old_fk.as_ref().filter(|fk| Some(*fk) != new_fk.as_ref()) {
                keys.push(Some(&by_foreign_key(fk, pk)));
                values.push(None);
            }
            match &new {
                Some(entry) => {
                    keys.push(Some(&by_key(pk)));
                    values.push(Some(&entry.encode()));
                    if let Some(fk) = &new_fk {
                        keys.push(Some(&by_foreign_key(fk, pk)));
                        values.push(Some(&entry.partition.to_be_bytes()));
                    }
                }
                None => {
                    keys.push(Some(&by_key(pk)));
                    values.push(None);
                }
            }
            current.insert(pk.to_vec(), new);
        }
        self.write(&mut keys, &mut values)?;

        // The right rows the new foreign keys name.
        let mut right_keys = Payloads::new();
        for fk in &fks {
            right_keys.push(fk.as_deref());
        }
        let mut right_rows = Payloads::new();
        self.right_store.get_many(&right_keys, &mut right_rows)?;
        let mut lookups = RawBatch::default();
        for (k, v) in right_keys.iter().zip(right_rows.iter()) {
            stored_row::push(&mut lookups, k, v);
        }
        let mut ignored = Vec::new();
        let decoded = self.right.reader.decode(&lookups, false, &mut ignored)?;
        let mut position = vec![None; lookups.len()];
        for (p, &r) in decoded.rows.iter().enumerate() {
            position[r] = Some(p as u32);
        }

        let mut matched = Vec::with_capacity(n);
        let mut deleted = Vec::with_capacity(n);
        for (i, m) in position.iter().enumerate() {
            let gone = changes.tombstones.value(i);
            let m = if gone { None } else { *m };
            matched.push(m);
            // A deleted left row, or an inner join's row without a match, deletes the key's
            // result (the row may have had a match before).
            deleted.push(gone || (m.is_none() && self.kind == JoinKind::Inner));
        }
        let left_columns: Vec<ArrayRef> = batch.columns().to_vec();
        let other_index: UInt32Array = matched.into_iter().collect();
        let mut columns = left_columns;
        for c in decoded.batch.columns() {
            columns.push(take(c.as_ref(), &other_index, None)?);
        }
        Ok(Changes {
            batch: RecordBatch::try_new(Arc::clone(&self.joined_schema), columns)?,
            deleted: BooleanArray::from(deleted),
            origins: changes.rows.to_vec(),
        })
    }

    /// Changes of right rows: each re-joins the left rows (of the partitions this server
    /// owns) that refer to it.
    fn right_changes(&mut self, changes: &TableChanges<'_>) -> Result<Changes, EngineError> {
        let batch = changes.batch;
        let right_keys = self.right.keys(batch)?;
        // (right row, left primary key) for each referring left row this server answers for.
        let mut pairs: Vec<(usize, Vec<u8>)> = Vec::new();
        for i in 0..batch.num_rows() {
            let Some(fk) = right_keys.get(i) else {
                continue;
            };
            let prefix = by_foreign_key_prefix(fk);
            self.index.scan_prefix(&prefix, &mut |key, value| {
                let partition = value
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_be_bytes);
                let owned = match (changes.left_partitions, partition) {
                    (Some(owned), Some(p)) => owned.contains(&p),
                    _ => true,
                };
                if owned {
                    pairs.push((i, key[prefix.len()..].to_vec()));
                }
                true
            })?;
        }
        // The left rows, as the index keeps them.
        let mut lookup = Payloads::new();
        for (_, pk) in &pairs {
            lookup.push(Some(&by_key(pk)));
        }
        let mut found = Payloads::new();
        self.index.get_many(&lookup, &mut found)?;
        let mut left_raw = RawBatch::default();
        let mut right_of = Vec::new();
        for (j, (i, pk)) in pairs.iter().enumerate() {
            let Some(entry) = found.get(j).and_then(Entry::decode) else {
                continue;
            };
            // The index is consistent, but a left row must still name this right row.
            if entry.foreign_key.as_deref() != right_keys.get(*i) {
                continue;
            }
            left_raw.push(Some(pk), entry.value.as_deref(), 0, entry.partition, 0);
            right_of.push(*i);
        }
        let mut ignored = Vec::new();
        let left = self.left.reader.decode(&left_raw, false, &mut ignored)?;
        let right_index: Vec<u32> = left.rows.iter().map(|&r| right_of[r] as u32).collect();
        let mut matched = Vec::with_capacity(right_index.len());
        let mut deleted = Vec::with_capacity(right_index.len());
        for &i in &right_index {
            let gone = changes.tombstones.value(i as usize);
            matched.push((!gone).then_some(i));
            // Without its right row, an inner join's result is gone; a left join's keeps
            // the left row with nulls.
            deleted.push(gone && self.kind == JoinKind::Inner);
        }
        let origins = right_index
            .iter()
            .map(|&i| changes.rows[i as usize])
            .collect();
        let right_index = UInt32Array::from(right_index);
        let matched: UInt32Array = matched.into_iter().collect();
        let mut columns: Vec<ArrayRef> = left.batch.columns().to_vec();
        // The change's time is the joined row's (the left ROWTIME carries it).
        let right_time = take(
            batch.column(batch.num_columns() - 3).as_ref(),
            &right_index,
            None,
        )?;
        let left_time = columns.len() - 3;
        columns[left_time] = right_time;
        for c in batch.columns() {
            columns.push(take(c.as_ref(), &matched, None)?);
        }
        Ok(Changes {
            batch: RecordBatch::try_new(Arc::clone(&self.joined_schema), columns)?,
            deleted: BooleanArray::from(deleted),
            origins,
        })
    }
}

impl TableJoin for ForeignKeyJoin {
    fn is_right_batch(&self) -> bool {
        self.from_right.load(Ordering::SeqCst)
    }

    fn right_reader(&mut self) -> &mut SourceReader {
        &mut self.right.reader
    }
}

impl Operator for ForeignKeyJoin {
    fn process(
        &mut self,
        port: Port,
        input: Changes,
        context: &mut Context<'_>,
    ) -> Result<Changes, EngineError> {
        let changes = TableChanges::of(port, &input, context);
        if changes.right {
            self.right_changes(&changes)
        } else {
            self.left_changes(&changes)
        }
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        match &mut self.changelog {
            Some(changelog) => changelog.flush(),
            None => Ok(()),
        }
    }

    fn catch_up(&mut self) -> Result<(), EngineError> {
        match &mut self.changelog {
            Some(changelog) => changelog.catch_up(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_read_back_as_written() {
        for entry in [
            Entry {
                partition: 3,
                foreign_key: Some(vec![0, 0, 0, 7]),
                value: Some(b"{\"AMT\":100}".to_vec()),
            },
            Entry {
                partition: 0,
                foreign_key: None,
                value: Some(Vec::new()),
            },
        ] {
            assert_eq!(Entry::decode(&entry.encode()), Some(entry));
        }
        assert_eq!(Entry::decode(&[0, 0]), None);
        // A foreign key's entries sort together, whatever the keys that follow.
        let a = by_foreign_key(&[7], &[9, 9]);
        let b = by_foreign_key(&[7, 1], &[0]);
        assert!(a.starts_with(&by_foreign_key_prefix(&[7])));
        assert!(!b.starts_with(&by_foreign_key_prefix(&[7])));
    }
}

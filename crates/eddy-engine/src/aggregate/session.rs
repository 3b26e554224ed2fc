//! Session windows: a group's records closer than the inactivity gap form one session; a
//! record that bridges sessions merges them. Each merged-away session is deleted from the
//! result (a tombstone for its windowed key) before the merged one is emitted, as ksqlDB does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, UInt32Array, new_empty_array};
use arrow::compute::take;
use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use datafusion_common::ScalarValue;
use eddy_sql::plan::{ROWTIME, WINDOWEND, WINDOWSTART};

use super::{Acc, AggregateStage, Aggregated, DEFAULT_GRACE_MS, cast_to, int64_column};
use crate::error::EngineError;
use crate::eval::RowError;

/// A session window's settings.
pub(super) struct SessionWindow {
    gap: i64,
    grace: i64,
    /// Positions of WINDOWSTART and WINDOWEND among the grouping columns.
    start_group: usize,
    end_group: usize,
}

impl SessionWindow {
    pub(super) fn new(
        gap: &std::time::Duration,
        grace: Option<&std::time::Duration>,
        key_columns: usize,
        _input: &Schema,
    ) -> Self {
        Self {
            gap: gap.as_millis() as i64,
            grace: grace
                .map(|g| g.as_millis() as i64)
                .unwrap_or(DEFAULT_GRACE_MS),
            start_group: key_columns,
            end_group: key_columns + 1,
        }
    }
}

/// A session's state key: the group key, a 0 byte (JSON never contains one), then the
/// end and the start.
fn session_key(group: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(group.len() + 17);
    k.extend_from_slice(group);
    k.push(0);
    k.extend_from_slice(&end.to_be_bytes());
    k.extend_from_slice(&start.to_be_bytes());
    k
}

fn bounds_of(key: &[u8]) -> Option<(i64, i64)> {
    let n = key.len();
    if n < 17 {
        return None;
    }
    let word = |b: &[u8]| -> Option<i64> { Some(i64::from_be_bytes(b.try_into().ok()?)) };
    Some((word(&key[n - 8..])?, word(&key[n - 16..n - 8])?))
}

/// A stored session: its state key and state.
type StoredSession = (Vec<u8>, Vec<Acc>);

/// One output row: the input row it came from, the session, and its state (None: deleted).
struct Emitted {
    row: usize,
    start: i64,
    end: i64,
    state: Option<Vec<Acc>>,
}

impl AggregateStage {
    /// Folds `batch` into session windows.
    pub(super) fn apply_sessions(
        &mut self,
        batch: RecordBatch,
        errors: &mut Vec<RowError>,
    ) -> Result<Aggregated, EngineError> {
        let Some(session) = &self.session else {
            return Err(EngineError::Internal("not a session window".into()));
        };
        let (gap, grace) = (session.gap, session.grace);
        let (start_group, end_group) = (session.start_group, session.end_group);
        let timestamps = int64_column(&batch, ROWTIME)?;
        let rows = self.evaluate(&batch, None, errors)?;
        // Pending changes of this batch, over the store: session key -> state (None: deleted).
        let mut pending: BTreeMap<Vec<u8>, Option<Vec<Acc>>> = BTreeMap::new();
        let mut loaded: HashMap<Vec<u8>, Vec<StoredSession>> = HashMap::new();
        let mut emitted: Vec<Emitted> = Vec::new();
        for (r, &ts) in timestamps.iter().enumerate() {
            self.stream_time = self.stream_time.max(ts);
            if ts.saturating_add(gap).saturating_add(grace) < self.stream_time {
                continue; // too late: every session it could join is closed
            }
            let Some(group) = rows.state_keys.get(r).map(<[u8]>::to_vec) else {
                continue;
            };
            let group = &group;
            if !loaded.contains_key(group) {
                let mut prefix = group.clone();
                prefix.push(0);
                let mut found = Vec::new();
                let mut failure = None;
                self.store.scan_prefix(&prefix, &mut |k, v| {
                    match super::codec::decode(v) {
                        Ok(accs) => found.push((k.to_vec(), accs)),
                        Err(e) => failure = Some(e),
                    }
                    true
                })?;
                if let Some(e) = failure {
                    return Err(e);
                }
                loaded.insert(group.clone(), found);
            }
            // The group's sessions: stored ones, overridden by this batch's changes.
            let mut sessions: BTreeMap<Vec<u8>, Vec<Acc>> = loaded[group].iter().cloned().collect();
            let mut prefix = group.clone();
            prefix.push(0);
            for (k, v) in pending.range(prefix.clone()..) {
                if !k.starts_with(&prefix) {
                    break;
                }
                match v {
                    Some(accs) => {
                        sessions.insert(k.clone(), accs.clone());
                    }
                    None => {
                        sessions.remove(k);
                    }
                }
            }
            let close = self.stream_time.saturating_sub(grace);
            let mut merged: Vec<(i64, i64, Vec<u8>, Vec<Acc>)> = sessions
                .into_iter()
                .filter_map(|(k, accs)| {
                    let (start, end) = bounds_of(&k)?;
                    let open = end.saturating_add(gap) >= close;
                    let touches = end >= ts - gap && start <= ts + gap;
                    (open && touches).then_some((start, end, k, accs))
                })
                .collect();
            merged.sort_by_key(|m| m.0);
            let start = merged.iter().map(|m| m.0).min().unwrap_or(ts).min(ts);
            let end = merged.iter().map(|m| m.1).max().unwrap_or(ts).max(ts);
            let mut accs: Vec<Acc> = self.calls.iter().map(|c| c.initial()).collect();
            for (_, _, _, other) in &merged {
                for ((call, acc), o) in self.calls.iter().zip(accs.iter_mut()).zip(other) {
                    call.merge(acc, o)?;
                }
            }
            for ((call, acc), args) in self.calls.iter().zip(accs.iter_mut()).zip(&rows.args) {
                call.fold(acc, args, r)?;
            }
            for (s, e, k, _) in &merged {
                if (*s, *e) != (start, end) {
                    pending.insert(k.clone(), None);
                    emitted.push(Emitted {
                        row: r,
                        start: *s,
                        end: *e,
                        state: None,
                    });
                } else {
                    pending.insert(k.clone(), None);
                }
            }
            pending.insert(session_key(group, start, end), Some(accs.clone()));
            emitted.push(Emitted {
                row: r,
                start,
                end,
                state: Some(accs),
            });
        }
        self.write_sessions(&pending)?;

        let indices = UInt32Array::from(emitted.iter().map(|e| e.row as u32).collect::<Vec<_>>());
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.out_schema.fields().len());
        for (i, (g, field)) in rows.groups.iter().zip(self.out_schema.fields()).enumerate() {
            let column: ArrayRef = if i == start_group {
                Arc::new(Int64Array::from(
                    emitted.iter().map(|e| e.start).collect::<Vec<_>>(),
                ))
            } else if i == end_group {
                Arc::new(Int64Array::from(
                    emitted.iter().map(|e| e.end).collect::<Vec<_>>(),
                ))
            } else {
                take(g.as_ref(), &indices, None)?
            };
            columns.push(cast_to(&column, field.data_type())?);
        }
        for (c, field) in self
            .calls
            .iter()
            .enumerate()
            .zip(self.out_schema.fields().iter().skip(rows.groups.len()))
        {
            let (i, call) = c;
            let values = emitted
                .iter()
                .map(|e| match &e.state {
                    Some(accs) => call.result(&accs[i]),
                    None => Ok(ScalarValue::try_from(field.data_type())?),
                })
                .collect::<Result<Vec<_>, EngineError>>()?;
            columns.push(if values.is_empty() {
                new_empty_array(field.data_type())
            } else {
                cast_to(&ScalarValue::iter_to_array(values)?, field.data_type())?
            });
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.out_schema), columns)?;
        let _ = (WINDOWSTART, WINDOWEND);
        Ok(Aggregated {
            batch,
            timestamps: emitted.iter().map(|e| e.end).collect(),
            window_starts: Some(emitted.iter().map(|e| e.start).collect()),
            session_ends: Some(emitted.iter().map(|e| e.end).collect()),
            deleted: Some(emitted.iter().map(|e| e.state.is_none()).collect()),
            inputs: None,
        })
    }

    fn write_sessions(
        &mut self,
        pending: &BTreeMap<Vec<u8>, Option<Vec<Acc>>>,
    ) -> Result<(), EngineError> {
        self.keys.clear();
        self.found.clear();
        for (k, accs) in pending {
            self.keys.push(Some(k));
            match accs {
                Some(accs) => self.found.push_with(|buf| {
                    super::codec::encode(accs, buf);
                    Ok::<(), EngineError>(())
                })?,
                None => self.found.push(None),
            }
        }
        self.store.write(&self.keys, &self.found)?;
        if let Some(changelog) = &mut self.changelog {
            changelog.append(&mut self.keys, &mut self.found)?;
        }
        Ok(())
    }
}

//! `CREATE OR REPLACE` of a persistent query: which changes keep the query's state and
//! offsets, and which are refused.
//!
//! A replaced query keeps its id, so its consumer group (its committed offsets), its state
//! stores and their changelogs, and its sink topic. That is only sound when the new query
//! reads the same records into the same state: the same sources, joins, grouping, window
//! and aggregate calls, and the same key. What may change is stateless: the `WHERE` filter,
//! `HAVING`, and how value columns are computed; value columns may be added after the
//! existing ones (readers of the sink see a compatible schema). ksqlDB checks its query
//! plans the same way, step by step.

use datafusion_expr::Expr;

use super::{OutputColumn, QueryPlan};
use crate::catalog::{ColumnRole, Source};

/// Why the query planned as `new` (its join stages, then the final plan) may not replace the
/// one planned as `old`, writing `new_sink` where `old_sink` was; `None` when it may.
///
/// The reason names what changed, e.g. `its GROUP BY changed`.
pub fn upgrade_refusal(
    old: &[QueryPlan],
    new: &[QueryPlan],
    old_sink: &Source,
    new_sink: &Source,
) -> Option<String> {
    if old.len() != new.len() {
        return Some(format!(
            "it joins {} sources, the new query {}",
            old.len() + 1,
            new.len() + 1
        ));
    }
    let (Some((old_last, old_stages)), Some((new_last, new_stages))) =
        (old.split_last(), new.split_last())
    else {
        return None;
    };
    for (old, new) in old_stages.iter().zip(new_stages) {
        if let Some(reason) = stateful_change(old, new) {
            return Some(reason);
        }
        if old.filter != new.filter || !same_columns(&old.columns, &new.columns) {
            return Some("the first joins of the query changed".into());
        }
    }
    stateful_change(old_last, new_last)
        .or_else(|| key_change(old_last, new_last))
        .or_else(|| value_change(old_last, new_last))
        .or_else(|| sink_change(old_sink, new_sink))
}

/// A change of what the query reads or keeps in state.
fn stateful_change(old: &QueryPlan, new: &QueryPlan) -> Option<String> {
    if old.from.source.name != new.from.source.name {
        return Some(format!(
            "its source changed (FROM {} is now FROM {})",
            old.from.source.name, new.from.source.name
        ));
    }
    if old.kind != new.kind {
        return Some("it changed from a stream to a table or back".into());
    }
    match (&old.join, &new.join) {
        (None, None) => {}
        (Some(old), Some(new)) => {
            if old.table.source.name != new.table.source.name {
                return Some(format!(
                    "its joined source changed ({} is now {})",
                    old.table.source.name, new.table.source.name
                ));
            }
            if old.kind != new.kind
                || old.stream_key != new.stream_key
                || old.table_key != new.table_key
                || old.within != new.within
                || old.foreign_key != new.foreign_key
            {
                return Some("its join (type, condition or WITHIN) changed".into());
            }
        }
        (None, Some(_)) => return Some("a join was added".into()),
        (Some(_), None) => return Some("its join was removed".into()),
    }
    match (&old.aggregate, &new.aggregate) {
        (None, None) => {}
        (Some(old), Some(new)) => {
            if old.window != new.window {
                return Some("its WINDOW changed".into());
            }
            if old.group_by != new.group_by {
                return Some(format!(
                    "its GROUP BY changed (from {} to {})",
                    list(&old.group_by),
                    list(&new.group_by)
                ));
            }
            let same_calls = old.calls.len() == new.calls.len()
                && old.calls.iter().zip(&new.calls).all(|(a, b)| {
                    a.function == b.function
                        && a.args == b.args
                        && a.distinct == b.distinct
                        && a.data_type == b.data_type
                });
            if !same_calls {
                return Some(
                    "its aggregate functions changed (the state holds one value per call)".into(),
                );
            }
        }
        (None, Some(_)) => return Some("an aggregation (GROUP BY) was added".into()),
        (Some(_), None) => return Some("its aggregation (GROUP BY) was removed".into()),
    }
    if old.rekeyed != new.rekeyed {
        return Some("its PARTITION BY was added or removed".into());
    }
    if old.exploded != new.exploded {
        return Some("its table functions (EXPLODE) changed".into());
    }
    if old.emit != new.emit {
        return Some("its EMIT changed".into());
    }
    if old.limit != new.limit {
        return Some("its LIMIT changed".into());
    }
    None
}

/// A change of the result's key: its columns or how they are computed.
fn key_change(old: &QueryPlan, new: &QueryPlan) -> Option<String> {
    let keys = |plan: &QueryPlan| -> Vec<OutputColumn> {
        plan.columns
            .iter()
            .filter(|c| c.role == ColumnRole::Key)
            .cloned()
            .collect()
    };
    let (old_keys, new_keys) = (keys(old), keys(new));
    let same = old_keys.len() == new_keys.len()
        && old_keys
            .iter()
            .zip(&new_keys)
            .all(|(a, b)| a.name == b.name && a.ty == b.ty && a.expr == b.expr);
    (!same).then(|| {
        let names = |keys: &[OutputColumn]| {
            keys.iter()
                .map(|c| format!("`{}` {}", c.name, c.ty))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "its key changed (from [{}] to [{}])",
            names(&old_keys),
            names(&new_keys)
        )
    })
}

/// A value column that is missing, renamed, retyped or moved (new ones may only follow).
fn value_change(old: &QueryPlan, new: &QueryPlan) -> Option<String> {
    let values = |plan: &QueryPlan| -> Vec<(String, String)> {
        plan.columns
            .iter()
            .filter(|c| c.role == ColumnRole::Value)
            .map(|c| (c.name.clone(), c.ty.to_string()))
            .collect()
    };
    let (old_values, new_values) = (values(old), values(new));
    let changed: Vec<String> = old_values
        .iter()
        .enumerate()
        .filter(|(i, column)| new_values.get(*i) != Some(*column))
        .map(|(_, (name, ty))| format!("`{name}` {ty}"))
        .collect();
    (!changed.is_empty()).then(|| {
        format!(
            "the following columns are changed, missing or reordered: [{}] (new columns may \
             only be added after the existing ones)",
            changed.join(", ")
        )
    })
}

/// A change of where or how the result is written.
fn sink_change(old: &Source, new: &Source) -> Option<String> {
    if old.topic != new.topic {
        return Some(format!(
            "its topic changed (from {} to {})",
            old.topic, new.topic
        ));
    }
    if old.key_format != new.key_format || old.value_format != new.value_format {
        return Some("its key or value format changed".into());
    }
    None
}

fn same_columns(a: &[OutputColumn], b: &[OutputColumn]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| a.name == b.name && a.ty == b.ty && a.role == b.role && a.expr == b.expr)
}

fn list(exprs: &[Expr]) -> String {
    exprs
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

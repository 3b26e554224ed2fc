//! ksqlDB's projection rules, applied to the SELECT list before DataFusion sees it: `*` and
//! `alias.*` expand to source columns (never pseudo columns), and every item gets the name
//! ksqlDB would give it (`A_COL` for a qualified column in a join, the field name for
//! `s->f`, `KSQL_COL_n` for other expressions).

use std::collections::HashSet;

use datafusion_sql::sqlparser::ast::{
    AccessExpr, Expr, Ident, SelectItem, SelectItemQualifiedWildcardKind, Subscript, Value,
};

use super::provider::{WINDOWEND, WINDOWSTART, is_pseudo_column};
use crate::catalog::Source;
use crate::error::SqlError;
use crate::types::{SqlType, StructField};

/// A source in the FROM clause with the name queries use for it.
pub(crate) struct Scope<'a> {
    pub source: &'a Source,
    pub alias: String,
}

/// Rewrites the projection into explicit `expr AS name` items. With `window_bounds` (a
/// query answering a client, as ksqlDB's push and pull queries do), `*` over a windowed
/// source has `WINDOWSTART` and `WINDOWEND` after its key columns; a persistent query's `*`
/// does not, as the window is in its output's key.
pub(crate) fn name_projection(
    items: &[SelectItem],
    scopes: &[Scope<'_>],
    window_bounds: bool,
) -> Result<Vec<SelectItem>, SqlError> {
    let is_join = scopes.len() > 1;
    let mut out = Vec::new();
    let mut generated = 0usize;
    let mut taken: HashSet<String> = HashSet::new();
    // Generated names avoid every name the projection has, also those of later items.
    let reserved = projection_names(items, scopes, is_join);
    for item in items {
        match item {
            SelectItem::Wildcard(_) => {
                for scope in scopes {
                    expand(scope, is_join, window_bounds, &mut out, &mut taken);
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                let parts: Vec<&str> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
                    .collect();
                let source = match parts.as_slice() {
                    [alias] => scopes
                        .iter()
                        .find(|s| s.alias == *alias || s.source.name == *alias),
                    _ => None,
                };
                if let Some(scope) = source {
                    expand(scope, is_join, window_bounds, &mut out, &mut taken);
                    continue;
                }
                // `s->*`: every field of the struct column `s`, named after the field.
                let Some((root, fields)) = struct_column(&parts, scopes) else {
                    return Err(SqlError::Prepare(format!(
                        "'{}' is not a valid stream/table name or alias.",
                        parts.first().copied().unwrap_or_default()
                    )));
                };
                for field in fields {
                    let access = Expr::CompoundFieldAccess {
                        root: Box::new(root.clone()),
                        access_chain: vec![AccessExpr::Subscript(Subscript::Index {
                            index: Expr::Value(
                                Value::SingleQuotedString(field.name.clone()).with_empty_span(),
                            ),
                        })],
                    };
                    taken.insert(field.name.clone());
                    out.push(aliased(access, &field.name));
                }
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                return Err(SqlError::Unsupported(format!("SELECT {kind}.*")));
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                if !taken.insert(alias.value.clone()) {
                    return Err(SqlError::Invalid(format!(
                        "Duplicate value columns found in projection: `{}`",
                        alias.value
                    )));
                }
                out.push(aliased(expr.clone(), &alias.value));
            }
            SelectItem::UnnamedExpr(expr) => {
                let base = match derived_name(expr, is_join, scopes) {
                    Some(name) => name,
                    None => loop {
                        let name = format!("KSQL_COL_{generated}");
                        generated += 1;
                        if !taken.contains(&name) && !reserved.contains(&name) {
                            break name;
                        }
                    },
                };
                let mut name = base.clone();
                let mut n = 1;
                while taken.contains(&name) {
                    name = format!("{base}_{n}");
                    n += 1;
                }
                taken.insert(name.clone());
                out.push(aliased(expr.clone(), &name));
            }
            SelectItem::ExprWithAliases { .. } => {
                return Err(SqlError::Unsupported(
                    "multiple aliases on one column".into(),
                ));
            }
        }
    }
    Ok(out)
}

/// The struct column `[alias.]column` names, as an expression, and its fields.
fn struct_column<'s>(parts: &[&str], scopes: &'s [Scope<'_>]) -> Option<(Expr, &'s [StructField])> {
    let (scope, column, root) = match parts {
        [column] => {
            let scope = scopes.iter().find(|s| s.source.column(column).is_some())?;
            (scope, *column, Expr::Identifier(ident(column)))
        }
        [alias, column] => {
            let scope = scopes
                .iter()
                .find(|s| s.alias == *alias || s.source.name == *alias)?;
            let root = Expr::CompoundIdentifier(vec![ident(alias), ident(column)]);
            (scope, *column, root)
        }
        _ => return None,
    };
    match &scope.source.column(column)?.ty {
        SqlType::Struct(fields) => Some((root, fields.as_slice())),
        _ => None,
    }
}

/// A persistent query's columns may not take a pseudo column's name (`SELECT ROWTIME`).
pub(crate) fn check_reserved_names(items: &[SelectItem]) -> Result<(), SqlError> {
    for item in items {
        if let SelectItem::ExprWithAlias { alias, expr } = item
            && is_pseudo_column(&alias.value)
        {
            // `SELECT ROWTIME` (or `l.ROWTIME AS ROWTIME`) selects the pseudo column; `x AS
            // ROWTIME` gives another value its name: ksqlDB words the two refusals differently.
            let bare = match expr {
                Expr::Identifier(i) => i.value == alias.value,
                Expr::CompoundIdentifier(parts) => {
                    parts.last().is_some_and(|i| i.value == alias.value)
                }
                _ => false,
            };
            return Err(SqlError::Invalid(if bare {
                format!(
                    "Reserved column name in select: `{}`. Please remove or alias the column.",
                    alias.value
                )
            } else {
                format!(
                    "`{}` is a reserved column name. You cannot use it as an alias for a column.",
                    alias.value
                )
            }));
        }
    }
    Ok(())
}

/// The names the projection's items have without generating any.
fn projection_names(items: &[SelectItem], scopes: &[Scope<'_>], is_join: bool) -> HashSet<String> {
    let mut names = HashSet::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                let mut expanded = Vec::new();
                for scope in scopes {
                    expand(scope, is_join, true, &mut expanded, &mut names);
                }
            }
            SelectItem::ExprWithAlias { alias, .. } => {
                names.insert(alias.value.clone());
            }
            SelectItem::UnnamedExpr(expr) => {
                names.extend(derived_name(expr, is_join, scopes));
            }
            SelectItem::ExprWithAliases { .. } => {}
        }
    }
    names
}

fn expand(
    scope: &Scope<'_>,
    is_join: bool,
    window_bounds: bool,
    out: &mut Vec<SelectItem>,
    taken: &mut HashSet<String>,
) {
    let bounds: &[&str] = if window_bounds && scope.source.window.is_some() {
        &[WINDOWSTART, WINDOWEND]
    } else {
        &[]
    };
    let keys = scope.source.key_columns().map(|c| c.name.as_str());
    let values = scope.source.value_columns().map(|c| c.name.as_str());
    let headers = scope.source.header_columns().map(|c| c.name.as_str());
    for column in keys
        .chain(bounds.iter().copied())
        .chain(values)
        .chain(headers)
    {
        let (expr, name) = if is_join {
            (
                Expr::CompoundIdentifier(vec![ident(&scope.alias), ident(column)]),
                format!("{}_{}", scope.alias, column),
            )
        } else {
            (Expr::Identifier(ident(column)), column.to_string())
        };
        taken.insert(name.clone());
        out.push(aliased(expr, &name));
    }
}

/// The name ksqlDB derives for an unaliased expression, if it derives one.
fn derived_name(expr: &Expr, is_join: bool, scopes: &[Scope<'_>]) -> Option<String> {
    match expr {
        // A map lookup is an expression like any other; only a struct field names itself.
        Expr::CompoundFieldAccess { root, access_chain }
            if ends_in_map_lookup(root, access_chain, scopes) =>
        {
            None
        }
        Expr::Identifier(id) => Some(id.value.clone()),
        // In a join, a column that more than one source has is named after its source too,
        // as ksqlDB names it (`L.ID` → `L_ID`); any other keeps its name (`L.B` → `B`).
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
            let column = &parts[1].value;
            let sources_with_it = scopes
                .iter()
                .filter(|s| s.source.column(column).is_some())
                .count();
            // A pseudo column (ROWTIME, ROWPARTITION, …) is every source's.
            let sources_with_it = if is_pseudo_column(column) {
                scopes.len()
            } else {
                sources_with_it
            };
            Some(if is_join && sources_with_it > 1 {
                format!("{}_{}", parts[0].value, column)
            } else {
                column.clone()
            })
        }
        Expr::CompoundFieldAccess { access_chain, .. } => match access_chain.last() {
            Some(AccessExpr::Subscript(Subscript::Index {
                index: Expr::Value(v),
            })) => match &v.value {
                Value::SingleQuotedString(field) => Some(field.clone()),
                _ => None,
            },
            Some(AccessExpr::Dot(Expr::Identifier(id))) => Some(id.value.clone()),
            _ => None,
        },
        Expr::Nested(inner) => derived_name(inner, is_join, scopes),
        _ => None,
    }
}

/// Whether the last access of `root[...]...` looks up a map (as far as the types are known).
fn ends_in_map_lookup(root: &Expr, chain: &[AccessExpr], scopes: &[Scope<'_>]) -> bool {
    let column = match root {
        Expr::Identifier(id) => scopes.iter().find_map(|s| s.source.column(&id.value)),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => scopes
            .iter()
            .find(|s| s.alias == parts[0].value)
            .and_then(|s| s.source.column(&parts[1].value)),
        _ => None,
    };
    let Some(mut ty) = column.map(|c| &c.ty) else {
        return false;
    };
    let Some((_, init)) = chain.split_last() else {
        return false;
    };
    for access in init {
        ty = match (ty, access) {
            (SqlType::Map(_, v), _) => v,
            (SqlType::Array(item), _) => item,
            (
                SqlType::Struct(fields),
                AccessExpr::Subscript(Subscript::Index {
                    index: Expr::Value(v),
                }),
            ) => match &v.value {
                Value::SingleQuotedString(name) => match fields.iter().find(|f| &f.name == name) {
                    Some(f) => &f.ty,
                    None => return false,
                },
                _ => return false,
            },
            _ => return false,
        };
    }
    matches!(ty, SqlType::Map(..))
}

fn aliased(expr: Expr, name: &str) -> SelectItem {
    SelectItem::ExprWithAlias {
        expr,
        alias: ident(name),
    }
}

fn ident(name: &str) -> Ident {
    Ident::with_quote('"', name)
}

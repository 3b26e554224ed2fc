//! ksqlDB's projection rules, applied to the SELECT list before DataFusion sees it: `*` and
//! `alias.*` expand to source columns (never pseudo columns), and every item gets the name
//! ksqlDB would give it (`A_COL` for a qualified column in a join, the field name for
//! `s->f`, `KSQL_COL_n` for other expressions).

use std::collections::HashSet;

use datafusion_sql::sqlparser::ast::{
    AccessExpr, Expr, Ident, SelectItem, SelectItemQualifiedWildcardKind, Subscript, Value,
};

use crate::catalog::Source;
use crate::error::SqlError;

/// A source in the FROM clause with the name queries use for it.
pub(crate) struct Scope<'a> {
    pub source: &'a Source,
    pub alias: String,
}

/// Rewrites the projection into explicit `expr AS name` items.
pub(crate) fn name_projection(
    items: &[SelectItem],
    scopes: &[Scope<'_>],
) -> Result<Vec<SelectItem>, SqlError> {
    let is_join = scopes.len() > 1;
    let mut out = Vec::new();
    let mut generated = 0usize;
    let mut taken: HashSet<String> = HashSet::new();
    for item in items {
        match item {
            SelectItem::Wildcard(_) => {
                for scope in scopes {
                    expand(scope, is_join, &mut out, &mut taken);
                }
            }
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                let alias = name.to_string();
                let scope = scopes
                    .iter()
                    .find(|s| s.alias == alias || s.source.name == alias)
                    .ok_or_else(|| {
                        SqlError::Unknown(format!("'{alias}' is not a source in the query"))
                    })?;
                expand(scope, is_join, &mut out, &mut taken);
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
                let base = match derived_name(expr, is_join) {
                    Some(name) => name,
                    None => loop {
                        let name = format!("KSQL_COL_{generated}");
                        generated += 1;
                        if !taken.contains(&name) {
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

fn expand(
    scope: &Scope<'_>,
    is_join: bool,
    out: &mut Vec<SelectItem>,
    taken: &mut HashSet<String>,
) {
    for col in scope
        .source
        .key_columns()
        .chain(scope.source.value_columns())
    {
        let (expr, name) = if is_join {
            (
                Expr::CompoundIdentifier(vec![ident(&scope.alias), ident(&col.name)]),
                format!("{}_{}", scope.alias, col.name),
            )
        } else {
            (Expr::Identifier(ident(&col.name)), col.name.clone())
        };
        taken.insert(name.clone());
        out.push(aliased(expr, &name));
    }
}

/// The name ksqlDB derives for an unaliased expression, if it derives one.
fn derived_name(expr: &Expr, is_join: bool) -> Option<String> {
    match expr {
        Expr::Identifier(id) => Some(id.value.clone()),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => Some(if is_join {
            format!("{}_{}", parts[0].value, parts[1].value)
        } else {
            parts[1].value.clone()
        }),
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
        Expr::Nested(inner) => derived_name(inner, is_join),
        _ => None,
    }
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

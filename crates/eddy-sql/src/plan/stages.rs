//! Joins of more than two sources, as a chain of two-source joins: `FROM a JOIN b … JOIN c
//! …` is `a JOIN b` written to an intermediate stream or table (its columns named as
//! `SELECT *` names them in a join, `A_X`, `B_Y`), and the rest of the query reading that
//! intermediate in place of `a` and `b`: its references to `a.x` become references to the
//! intermediate's `A_X`. ksqlDB joins left-deep the same way, within one topology.

use std::ops::ControlFlow;

use datafusion_sql::sqlparser::ast::{
    self as sql, Expr, Ident, ObjectName, ObjectNamePart, SelectItem, SetExpr, TableFactor,
    TableWithJoins, WildcardAdditionalOptions,
};

use super::projection::{Scope, name_projection};
use super::resolve;
use crate::ast::{Emit, KsqlQuery};
use crate::catalog::{Catalog, Source, SourceKind};
use crate::error::SqlError;

/// The first join of a query that joins more than two sources.
#[derive(Debug, Clone)]
pub struct FirstJoin {
    /// `SELECT * FROM a JOIN b …` with only the first join: the intermediate result.
    pub query: KsqlQuery,
    /// What the intermediate is: a table when both sources are tables, else a stream.
    pub kind: SourceKind,
}

/// The first two-source join of `query`, if it joins more than two sources.
pub fn first_join(query: &KsqlQuery, catalog: &Catalog) -> Result<Option<FirstJoin>, SqlError> {
    let Some((select, from)) = joined(query) else {
        return Ok(None);
    };
    if from.joins.len() < 2 {
        return Ok(None);
    }
    let (left, _) = resolve(&from.relation, catalog)?;
    let (right, _) = resolve(&from.joins[0].relation, catalog)?;
    let mut first = select.clone();
    first.from = vec![TableWithJoins {
        relation: from.relation.clone(),
        joins: vec![from.joins[0].clone()],
    }];
    first.projection = vec![SelectItem::Wildcard(WildcardAdditionalOptions::default())];
    first.selection = None;
    first.group_by = sql::GroupByExpr::Expressions(Vec::new(), Vec::new());
    first.having = None;
    let mut select_query = query.select.as_ref().clone();
    select_query.body = Box::new(SetExpr::Select(Box::new(first)));
    select_query.limit_clause = None;
    let kind = match (left.kind, right.kind) {
        (SourceKind::Table, SourceKind::Table) => SourceKind::Table,
        _ => SourceKind::Stream,
    };
    Ok(Some(FirstJoin {
        query: KsqlQuery {
            select: Box::new(select_query),
            window: None,
            within: query.within.first().cloned().into_iter().collect(),
            partition_by: None,
            emit: Some(Emit::Changes),
            text: query.text.clone(),
        },
        kind,
    }))
}

/// `query` reading `intermediate` (the result of [`first_join`], in the catalog) in place of
/// its first two sources: every reference to a column of theirs refers to the
/// intermediate's column of that name, and the projection keeps the names the original
/// query gives its columns.
pub fn rest_of_join(
    query: &KsqlQuery,
    catalog: &Catalog,
    intermediate: &Source,
) -> Result<KsqlQuery, SqlError> {
    let (select, from) = joined(query)
        .filter(|(_, from)| from.joins.len() >= 2)
        .ok_or_else(|| SqlError::Plan("no join left to chain".into()))?;
    let mut scopes = Vec::with_capacity(from.joins.len() + 1);
    let (source, alias) = resolve(&from.relation, catalog)?;
    scopes.push(Scope { source, alias });
    for join in &from.joins {
        let (source, alias) = resolve(&join.relation, catalog)?;
        scopes.push(Scope { source, alias });
    }
    // The projection's names, as the whole join gives them.
    let projection = name_projection(&select.projection, &scopes, false)?;
    let joined_two = &scopes[..2];
    let rename = |e: &mut Expr| rename_references(e, joined_two, &scopes[2..], &intermediate.name);

    let mut rest = select.clone();
    rest.projection = projection;
    rest.from = vec![TableWithJoins {
        relation: TableFactor::Table {
            name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(
                &intermediate.name,
            ))]),
            alias: None,
            args: None,
            with_hints: Vec::new(),
            version: None,
            with_ordinality: false,
            partitions: Vec::new(),
            json_path: None,
            sample: None,
            index_hints: Vec::new(),
        },
        joins: from.joins[1..].to_vec(),
    }];
    let _ = sql::visit_expressions_mut(&mut rest, |e| {
        rename(e);
        ControlFlow::<()>::Continue(())
    });
    let mut partition_by = query.partition_by.clone();
    for e in partition_by.iter_mut().flatten() {
        let _ = sql::visit_expressions_mut(e, |e| {
            rename(e);
            ControlFlow::<()>::Continue(())
        });
    }
    let mut select_query = query.select.as_ref().clone();
    select_query.body = Box::new(SetExpr::Select(Box::new(rest)));
    Ok(KsqlQuery {
        select: Box::new(select_query),
        window: query.window.clone(),
        within: query.within.iter().skip(1).cloned().collect(),
        partition_by,
        emit: query.emit,
        text: query.text.clone(),
    })
}

/// The query's SELECT and its one FROM item, if it has the shape joins have.
fn joined(query: &KsqlQuery) -> Option<(&sql::Select, &TableWithJoins)> {
    let SetExpr::Select(select) = query.select.body.as_ref() else {
        return None;
    };
    let [from] = select.from.as_slice() else {
        return None;
    };
    Some((select, from))
}

/// Makes a reference to a column of `joined` (qualified by its alias or name, or
/// unqualified and not a column of `later`) a reference to the intermediate's column.
fn rename_references(e: &mut Expr, joined: &[Scope<'_>], later: &[Scope<'_>], intermediate: &str) {
    let target = |scope: &Scope<'_>, column: &str| {
        vec![
            Ident::new(intermediate),
            Ident::new(format!("{}_{column}", scope.alias)),
        ]
    };
    match e {
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let qualifier = &parts[0].value;
            let Some(scope) = joined
                .iter()
                .find(|s| s.alias == *qualifier || s.source.name == *qualifier)
            else {
                return;
            };
            if scope.source.column(&parts[1].value).is_none() {
                return;
            }
            let mut renamed = target(scope, &parts[1].value);
            renamed.extend(parts.drain(2..));
            *parts = renamed;
        }
        Expr::Identifier(ident) => {
            let name = ident.value.clone();
            if later.iter().any(|s| s.source.column(&name).is_some()) {
                return;
            }
            // A name of both joined sources is ambiguous: left for the planner to refuse.
            let mut owners = joined.iter().filter(|s| s.source.column(&name).is_some());
            if let (Some(scope), None) = (owners.next(), owners.next()) {
                *e = Expr::CompoundIdentifier(target(scope, &name));
            }
        }
        _ => {}
    }
}

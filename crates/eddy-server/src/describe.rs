//! `EXPLAIN queryId`, `EXPLAIN <statement>` and `SHOW QUERIES EXTENDED`: ksqlDB's query
//! descriptions, built from the engine's query summaries (or a statement's plan) and the
//! catalog.

use eddy_engine::{Engine, EngineError, Explanation, Properties, QuerySummary, StatementResult};
use eddy_sql::ast::{ExplainTarget, ParsedStatement, ShowWhat, Statement};
use eddy_sql::catalog::{Catalog, ColumnRole, SourceKind};
use serde_json::{Map, Value, json};

use crate::handlers::field_infos;
use crate::wire::{Entity, QueryDescription};

/// The entity of a statement this module answers, or `None` for every other statement.
pub(crate) fn answer(
    engine: &Engine,
    stmt: &ParsedStatement,
) -> Option<Result<Entity, EngineError>> {
    match &stmt.statement {
        Statement::Show {
            what: ShowWhat::Queries,
            extended: true,
        } => Some(summaries(engine).map(|queries| {
            let catalog = engine.catalog();
            Entity::QueryDescriptionList {
                statement_text: stmt.text.clone(),
                query_descriptions: queries.iter().map(|q| describe(q, &catalog)).collect(),
                warnings: Vec::new(),
            }
        })),
        Statement::Show {
            what: what @ (ShowWhat::Streams | ShowWhat::Tables),
            extended: true,
        } => Some(described(engine, stmt, *what)),
        Statement::Explain(ExplainTarget::Statement(inner)) => {
            let text = stmt
                .text
                .trim_start()
                .get("EXPLAIN".len()..)
                .unwrap_or_default()
                .trim()
                .to_string();
            Some(
                engine
                    .explain(inner, &text)
                    .map(|e| Entity::QueryDescription {
                        statement_text: stmt.text.clone(),
                        query_description: Box::new(explained(&text, &e)),
                        warnings: Vec::new(),
                    }),
            )
        }
        Statement::Explain(ExplainTarget::Query(id)) => Some(summaries(engine).and_then(|qs| {
            let q = qs
                .iter()
                .find(|q| q.id.eq_ignore_ascii_case(id))
                .ok_or_else(|| {
                    EngineError::NotFound(format!("Query with id:{id} does not exist"))
                })?;
            Ok(Entity::QueryDescription {
                statement_text: stmt.text.clone(),
                query_description: Box::new(describe(q, &engine.catalog())),
                warnings: Vec::new(),
            })
        })),
        _ => None,
    }
}

/// Every stream (or table) described, as `DESCRIBE … EXTENDED` describes one.
fn described(
    engine: &Engine,
    stmt: &ParsedStatement,
    what: ShowWhat,
) -> Result<Entity, EngineError> {
    let kind = match what {
        ShowWhat::Tables => SourceKind::Table,
        _ => SourceKind::Stream,
    };
    let mut source_descriptions = Vec::new();
    for source in engine.catalog().iter().filter(|s| s.kind == kind) {
        let describe = ParsedStatement {
            text: format!("DESCRIBE {} EXTENDED", source.name),
            line: 1,
            statement: Statement::Describe {
                name: source.name.clone(),
                extended: true,
            },
        };
        let result = engine.execute(&describe, &Properties::new())?;
        if let Entity::SourceDescription {
            source_description, ..
        } = crate::handlers::entity(&describe, result, -1)
        {
            source_descriptions.push(*source_description);
        }
    }
    Ok(Entity::SourceDescriptions {
        statement_text: stmt.text.clone(),
        source_descriptions,
        warnings: Vec::new(),
    })
}

fn summaries(engine: &Engine) -> Result<Vec<QuerySummary>, EngineError> {
    let show = ParsedStatement {
        text: "SHOW QUERIES".into(),
        line: 1,
        statement: Statement::Show {
            what: ShowWhat::Queries,
            extended: false,
        },
    };
    match engine.execute(&show, &Properties::new())? {
        StatementResult::Queries(queries) => Ok(queries),
        other => Err(EngineError::Internal(format!(
            "SHOW QUERIES answered {other:?}"
        ))),
    }
}

/// The description of a statement's query planned by `EXPLAIN <statement>`: no id, no
/// state, nothing running.
fn explained(text: &str, e: &Explanation) -> QueryDescription {
    let sink_topic = e.sink.as_ref().map(|(_, t)| t.clone()).unwrap_or_default();
    let schema = e
        .columns
        .iter()
        .map(|c| {
            let key = if c.role == ColumnRole::Key {
                " KEY"
            } else {
                ""
            };
            format!("`{}` {}{key}", c.name, c.ty)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sink_step = match &e.sink {
        Some(_) => format!(" > [ SINK ] | Schema: {schema} | Topic: {sink_topic}\n\t\t"),
        None => String::new(),
    };
    QueryDescription {
        id: String::new(),
        statement_text: text.to_string(),
        window_type: None,
        fields: field_infos(&e.columns),
        sources: e.sources.clone(),
        sinks: e.sink.iter().map(|(name, _)| name.clone()).collect(),
        topology: String::new(),
        execution_plan: format!(
            "{sink_step} > [ PROJECT, FILTER ] | Schema: {schema}\n\t\t\t\t > [ SOURCE ] | Sources: [{}] | Topics: [{}]\n",
            e.sources.join(", "),
            e.source_topics.join(", ")
        ),
        overridden_properties: Map::new(),
        ksql_host_query_status: Map::new(),
        query_type: e.query_type.into(),
        query_errors: Vec::new(),
        tasks_metadata: Vec::<Value>::new(),
        state: String::new(),
    }
}

fn describe(q: &QuerySummary, catalog: &Catalog) -> QueryDescription {
    let sink = catalog.get(&q.sink);
    let fields = sink.map(|s| field_infos(&s.columns)).unwrap_or_default();
    let source_topics: Vec<String> = q
        .sources
        .iter()
        .filter_map(|s| catalog.get(s).map(|s| s.topic.clone()))
        .collect();
    let schema = sink.map(|s| s.schema_string()).unwrap_or_default();
    let execution_plan = format!(
        " > [ SINK ] | Schema: {schema} | Topic: {}\n\t\t > [ PROJECT, FILTER ]\n\t\t\t\t > [ SOURCE ] | Sources: [{}] | Topics: [{}]\n",
        q.sink_topic,
        q.sources.join(", "),
        source_topics.join(", ")
    );
    let topology = format!(
        "Topologies:\n   Sub-topology: 0\n    Source: {id}-source (topics: [{topics}])\n      --> {id}-process\n    Processor: {id}-process (decode, join, filter, project, encode)\n      --> {id}-sink\n    Sink: {id}-sink (topic: {sink})\n",
        id = q.id,
        topics = source_topics.join(", "),
        sink = q.sink_topic
    );
    let query_errors = q
        .last_error
        .iter()
        .map(|e| json!({"errorMessage": e, "type": "UNKNOWN"}))
        .collect();
    QueryDescription {
        id: q.id.clone(),
        statement_text: q.sql.clone(),
        window_type: sink
            .and_then(|s| s.window.as_ref())
            .map(|w| w.type_name().to_string()),
        fields,
        sources: q.sources.clone(),
        sinks: vec![q.sink.clone()],
        topology,
        execution_plan,
        overridden_properties: Map::new(),
        ksql_host_query_status: Map::new(),
        query_type: "PERSISTENT".into(),
        query_errors,
        tasks_metadata: Vec::<Value>::new(),
        state: q.state.clone(),
    }
}

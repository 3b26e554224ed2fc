//! Request handlers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use eddy_engine::{Properties, QuerySummary, StatementResult};
use eddy_sql::ast::{ParsedStatement, Statement};
use eddy_sql::catalog::{ColumnRole, Source, SourceKind};
use eddy_sql::types::SqlType;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::errors::ApiError;
use crate::wire::{
    CommandStatus, Entity, FieldInfo, FieldSchema, FunctionName, HealthCheckResponse,
    KafkaTopicInfo, KsqlRequest, Property, RunningQuery, ServerInfo, ServerInfoResponse,
    SourceDescriptionBody, SourceInfo,
};

/// `POST /ksql`: executes statements in order and stops at the first that fails.
#[tracing::instrument(skip_all)]
pub(crate) async fn ksql(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let request: KsqlRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request(format!("Invalid request body: {e}")).into_response();
        }
    };
    let statements = match eddy_sql::parse(&request.ksql) {
        Ok(s) => s,
        Err(e) => return ApiError::parse(e.to_string(), request.ksql.trim()).into_response(),
    };
    let mut props: Properties = request
        .streams_properties
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    let engine = Arc::clone(&state.engine);
    // Statements wait on the broker and the state store: keep them off the async workers.
    let outcome = tokio::task::spawn_blocking(move || {
        let mut entities = Vec::new();
        for stmt in &statements {
            // SET and UNSET apply to the rest of the request, as in ksqlDB.
            match &stmt.statement {
                Statement::Set { name, value } => {
                    props.insert(name.clone(), value.clone());
                    continue;
                }
                Statement::Unset { name } => {
                    props.remove(name);
                    continue;
                }
                _ => {}
            }
            match engine.execute(stmt, &props) {
                Ok(StatementResult::Inserted) => {}
                Ok(result) => {
                    let seq = state.command_sequence.fetch_add(1, Ordering::SeqCst) + 1;
                    entities.push(entity(stmt, result, seq));
                }
                Err(e) => return Err(ApiError::statement(&e, &stmt.text, entities)),
            }
        }
        Ok(entities)
    })
    .await;
    match outcome {
        Ok(Ok(entities)) => Json(entities).into_response(),
        Ok(Err(e)) => e.into_response(),
        Err(e) => {
            tracing::error!("statement task failed: {e}");
            ApiError::bad_request("statement execution was interrupted").into_response()
        }
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn command_id(stmt: &ParsedStatement) -> String {
    match &stmt.statement {
        Statement::CreateSource(c) => format!("{}/`{}`/create", kind_word(c.kind), c.name),
        Statement::CreateAsSelect(c) => format!("{}/`{}`/create", kind_word(c.kind), c.name),
        Statement::Drop { kind, name, .. } => format!("{}/`{name}`/drop", kind_word(*kind)),
        Statement::InsertSelect { target, .. } => format!("stream/`{target}`/create"),
        Statement::Terminate(_) => "terminate/query/execute".into(),
        _ => "statement/execute".into(),
    }
}

fn kind_word(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    }
}

fn entity(stmt: &ParsedStatement, result: StatementResult, seq: i64) -> Entity {
    let statement_text = stmt.text.clone();
    match result {
        StatementResult::Inserted => Entity::CurrentStatus {
            statement_text,
            command_id: command_id(stmt),
            command_status: CommandStatus {
                status: "SUCCESS".into(),
                message: "Inserted".into(),
                query_id: None,
            },
            command_sequence_number: seq,
            warnings: Vec::new(),
        },
        StatementResult::Status { message, query_id } => Entity::CurrentStatus {
            statement_text,
            command_id: command_id(stmt),
            command_status: CommandStatus {
                status: "SUCCESS".into(),
                message,
                query_id,
            },
            command_sequence_number: seq,
            warnings: Vec::new(),
        },
        StatementResult::Streams(list) => Entity::Streams {
            statement_text,
            streams: list.iter().map(|s| source_info(&s.source)).collect(),
            warnings: Vec::new(),
        },
        StatementResult::Tables(list) => Entity::Tables {
            statement_text,
            tables: list.iter().map(|s| source_info(&s.source)).collect(),
            warnings: Vec::new(),
        },
        StatementResult::Queries(list) => Entity::Queries {
            statement_text,
            queries: list.iter().map(running_query).collect(),
            warnings: Vec::new(),
        },
        StatementResult::Topics(list) => Entity::KafkaTopics {
            statement_text,
            topics: list
                .into_iter()
                .map(|t| KafkaTopicInfo {
                    name: t.name,
                    replica_info: vec![i32::from(t.replicas); t.partitions.max(0) as usize],
                })
                .collect(),
            warnings: Vec::new(),
        },
        StatementResult::Description(d) => {
            let s = &d.source;
            Entity::SourceDescription {
                statement_text,
                source_description: Box::new(SourceDescriptionBody {
                    name: s.name.clone(),
                    window_type: s.window.as_ref().map(|w| w.type_name().to_string()),
                    read_queries: d.read_queries.iter().map(running_query).collect(),
                    write_queries: d.write_queries.iter().map(running_query).collect(),
                    fields: s
                        .columns
                        .iter()
                        .map(|c| FieldInfo {
                            name: c.name.clone(),
                            schema: field_schema(&c.ty),
                            kind: (c.role == ColumnRole::Key).then(|| "KEY".to_string()),
                        })
                        .collect(),
                    kind: s.kind.to_string(),
                    timestamp: s.timestamp_column.clone().unwrap_or_default(),
                    statistics: String::new(),
                    error_stats: String::new(),
                    extended: d.extended,
                    key_format: s.key_format.to_string(),
                    value_format: s.value_format.to_string(),
                    topic: s.topic.clone(),
                    partitions: d.partitions,
                    replication: i32::from(d.replicas),
                    statement: s.sql.clone(),
                    source_constraints: Vec::new(),
                }),
                warnings: Vec::new(),
            }
        }
        StatementResult::Properties(list) => Entity::Properties {
            statement_text,
            properties: list
                .into_iter()
                .map(|(name, value)| Property {
                    name,
                    scope: "KSQL".into(),
                    value,
                })
                .collect(),
            overwritten_properties: Vec::new(),
            default_properties: Vec::new(),
            warnings: Vec::new(),
        },
        StatementResult::Functions(list) => Entity::FunctionNames {
            statement_text,
            functions: list
                .into_iter()
                .map(|(name, kind)| FunctionName {
                    name,
                    kind,
                    category: String::new(),
                })
                .collect(),
            warnings: Vec::new(),
        },
    }
}

fn source_info(s: &Source) -> SourceInfo {
    SourceInfo {
        kind: s.kind.to_string(),
        name: s.name.clone(),
        topic: s.topic.clone(),
        key_format: s.key_format.to_string(),
        value_format: s.value_format.to_string(),
        is_windowed: s.window.is_some(),
    }
}

fn running_query(q: &QuerySummary) -> RunningQuery {
    let mut status_count = Map::new();
    status_count.insert(q.state.clone(), json!(1));
    RunningQuery {
        query_string: q.sql.clone(),
        sinks: vec![q.sink.clone()],
        sink_kafka_topics: vec![q.sink_topic.clone()],
        id: q.id.clone(),
        status_count,
        query_type: "PERSISTENT".into(),
        state: q.state.clone(),
    }
}

fn field_schema(ty: &SqlType) -> FieldSchema {
    let plain = |kind: &str| FieldSchema {
        kind: kind.to_string(),
        fields: None,
        member_schema: None,
        parameters: None,
    };
    match ty {
        SqlType::Array(item) => FieldSchema {
            member_schema: Some(Box::new(field_schema(item))),
            ..plain("ARRAY")
        },
        SqlType::Map(_, v) => FieldSchema {
            member_schema: Some(Box::new(field_schema(v))),
            ..plain("MAP")
        },
        SqlType::Struct(fields) => FieldSchema {
            fields: Some(
                fields
                    .iter()
                    .map(|f| FieldInfo {
                        name: f.name.clone(),
                        schema: field_schema(&f.ty),
                        kind: None,
                    })
                    .collect(),
            ),
            ..plain("STRUCT")
        },
        SqlType::Decimal { precision, scale } => {
            let mut p = Map::new();
            p.insert("precision".into(), json!(precision));
            p.insert("scale".into(), json!(scale));
            FieldSchema {
                parameters: Some(p),
                ..plain("DECIMAL")
            }
        }
        other => plain(&other.to_string()),
    }
}

/// `GET /info`
pub(crate) async fn info(State(state): State<Arc<AppState>>) -> Json<ServerInfoResponse> {
    Json(ServerInfoResponse {
        ksql_server_info: ServerInfo {
            version: state.version.clone(),
            kafka_cluster_id: String::new(),
            ksql_service_id: state.engine.config().service_id.clone(),
            server_status: "RUNNING".into(),
        },
    })
}

/// `GET /healthcheck`: healthy when the broker answers.
pub(crate) async fn healthcheck(State(state): State<Arc<AppState>>) -> Response {
    let engine = Arc::clone(&state.engine);
    let kafka = tokio::task::spawn_blocking(move || engine.topics().admin().list_topics().is_ok())
        .await
        .unwrap_or(false);
    let mut details = Map::new();
    details.insert("metastore".into(), json!({"isHealthy": true}));
    details.insert("kafka".into(), json!({"isHealthy": kafka}));
    let body = HealthCheckResponse {
        is_healthy: kafka,
        details,
        server_state: "RUNNING".into(),
    };
    let status = if kafka {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

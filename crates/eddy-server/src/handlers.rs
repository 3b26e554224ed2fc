//! Request handlers.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use eddy_engine::{Properties, QuerySummary, StatementResult};
use eddy_sql::ast::{ParsedStatement, ShowWhat, Statement, TerminateTarget};
use eddy_sql::catalog::{Column, ColumnRole, Source};
use eddy_sql::types::SqlType;
use eddy_sql::variables::Variables;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, COMMAND_QUEUE_TIMEOUT, SERVER_ERROR};
use crate::wire::{
    CommandStatus, Entity, FieldInfo, FieldSchema, FunctionArgument, FunctionName,
    FunctionVariation, HealthCheckResponse, KafkaTopicInfo, KafkaTopicInfoExtended, Property,
    RunningQuery, ServerInfo, ServerInfoResponse, SourceDescriptionBody, SourceInfo, Variable,
};
use crate::{AppState, PushQuery};

/// Reads a request body of at most the configured size as a JSON object.
pub(crate) async fn read_json(
    state: &AppState,
    body: Body,
) -> Result<Map<String, Value>, ApiError> {
    let limit = state.config.max_request_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::bad_request(
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(ApiError::bad_request(format!(
            "The request body is not valid JSON: {e}"
        ))),
    }
}

/// A required string field of a request body.
pub(crate) fn required_str(
    body: &Map<String, Value>,
    field: &str,
    what: &str,
) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::bad_request(format!(
            "The field '{field}' of the request body must be a string ({what})."
        ))),
        None => Err(ApiError::bad_request(format!(
            "The request body has no '{field}' field ({what})."
        ))),
    }
}

/// Request properties as the engine takes them: `ksql.streams.auto.offset.reset` is the
/// same as `auto.offset.reset`. Properties on the server's denylist are refused.
pub(crate) fn properties(
    state: &AppState,
    body: &Map<String, Value>,
    field: &str,
) -> Result<Properties, ApiError> {
    let Some(Value::Object(map)) = body.get(field) else {
        return Ok(Properties::new());
    };
    state.check_overrides(map.keys().map(String::as_str))?;
    Ok(map
        .iter()
        .map(|(k, v)| {
            let name = k.strip_prefix("ksql.streams.").unwrap_or(k);
            (name.to_string(), value_text(v))
        })
        .collect())
}

/// `sessionVariables` of a request: the variables its statements start with (values of any
/// JSON type, as text).
pub(crate) fn session_variables(body: &Map<String, Value>) -> Result<Variables, ApiError> {
    match body.get("sessionVariables") {
        None | Some(Value::Null) => Ok(Variables::new()),
        Some(Value::Object(map)) => Ok(map
            .iter()
            .map(|(k, v)| (k.clone(), value_text(v)))
            .collect()),
        Some(_) => Err(ApiError::bad_request(
            "'sessionVariables' must be an object of variable names and values.",
        )),
    }
}

/// `text` with its variables substituted, unless the server turned substitution off
/// (`ksql.variable.substitution.enable=false`).
pub(crate) fn substitute(
    state: &AppState,
    text: &str,
    variables: &mut Variables,
) -> Result<String, eddy_sql::SqlError> {
    let enabled = state
        .engine
        .server_setting(VARIABLE_SUBSTITUTION)
        .is_none_or(|v| !v.eq_ignore_ascii_case("false"));
    if enabled {
        eddy_sql::variables::substitute(text, variables)
    } else {
        Ok(text.to_string())
    }
}

/// `ksql.variable.substitution.enable`: whether `${name}` is replaced.
const VARIABLE_SUBSTITUTION: &str = "ksql.variable.substitution.enable";

/// How long a request's `commandSequenceNumber` is waited for.
const COMMAND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits (blocking) until this server has executed the command log up to `sequence`, as
/// ksqlDB does for a request that names one; 503 with 50301 if that takes too long.
fn wait_for_command(state: &AppState, sequence: i64) -> Result<(), ApiError> {
    let deadline = std::time::Instant::now() + COMMAND_WAIT;
    loop {
        if state.commands.applied() >= sequence {
            return Ok(());
        }
        if let Err(e) = state.follow_commands() {
            tracing::warn!("catching up with the command log failed: {e}");
        }
        if state.commands.applied() >= sequence {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(ApiError::generic(
                COMMAND_QUEUE_TIMEOUT,
                format!(
                    "Timed out while waiting for a previous command to execute. command \
                     sequence number: {sequence}"
                ),
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `GET /is_valid_property/{name}`: `true`, or the denylist's error.
pub(crate) async fn is_valid_property(
    State(state): State<Arc<AppState>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    match state.check_overrides([name.as_str()]) {
        Ok(()) => Json(true).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /ksql`: executes statements in order and stops at the first that fails.
#[tracing::instrument(skip_all)]
pub(crate) async fn ksql(State(state): State<Arc<AppState>>, body: Body) -> Response {
    // The body is read before any refusal: an HTTP/1 connection whose request body is
    // left unread is closed, and the client may still be sending it when that happens.
    let body = match read_json(&state, body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = state.serving() {
        return e.into_response();
    }
    let text = match required_str(&body, "ksql", "the statements to run") {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let mut variables = match session_variables(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let substituted = match substitute(&state, &text, &mut variables.clone()) {
        Ok(t) => t,
        Err(e) => return ApiError::parse(e.to_string(), text.trim()).into_response(),
    };
    let statements = match eddy_sql::parse_with_types(&substituted, &state.engine.types()) {
        Ok(s) => s,
        Err(e) => return ApiError::parse(e.to_string(), text.trim()).into_response(),
    };
    let mut props = match properties(&state, &body, "streamsProperties") {
        Ok(props) => props,
        Err(e) => return e.into_response(),
    };
    let wait_for = match body.get("commandSequenceNumber") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(n),
            None => {
                return ApiError::bad_request("'commandSequenceNumber' must be an integer.")
                    .into_response();
            }
        },
    };
    let engine = Arc::clone(&state.engine);
    // Statements wait on the broker and the state store: keep them off the async workers.
    let outcome = crate::blocking(move || {
        if let Some(n) = wait_for {
            wait_for_command(&state, n)?;
        }
        let mut entities = Vec::new();
        for stmt in &statements {
            // SET and UNSET apply to the rest of the request, as in ksqlDB.
            match &stmt.statement {
                Statement::Set { name, value } => {
                    if let Err(e) = state.check_overrides([name.as_str()]) {
                        return Err(ApiError::parse(e.message(), &stmt.text));
                    }
                    props.insert(name.clone(), value.clone());
                    continue;
                }
                Statement::Unset { name } => {
                    props.remove(name);
                    continue;
                }
                // Variables apply to the rest of the request (already substituted) and are
                // listed by SHOW VARIABLES.
                Statement::Define { name, value } => {
                    eddy_sql::variables::define(&mut variables, name, value);
                    continue;
                }
                Statement::Undefine { name } => {
                    eddy_sql::variables::undefine(&mut variables, name);
                    continue;
                }
                Statement::Show {
                    what: ShowWhat::Variables,
                    ..
                } => {
                    entities.push(Entity::Variables {
                        statement_text: stmt.text.clone(),
                        variables: variables
                            .iter()
                            .map(|(name, value)| Variable {
                                name: name.clone(),
                                value: value.clone(),
                            })
                            .collect(),
                        warnings: Vec::new(),
                    });
                    continue;
                }
                _ => {}
            }
            let changes = eddy_engine::is_recorded(&stmt.statement)
                || matches!(stmt.statement, Statement::InsertValues { .. });
            let push_query = match &stmt.statement {
                Statement::Terminate(TerminateTarget::Query(id)) => find_push_query(&state, id),
                _ => None,
            };
            if changes && push_query.is_none() {
                state
                    .refuse_if_headless()
                    .map_err(|e| ApiError::parse(e.message(), &stmt.text))?;
            }
            if let Some((id, push)) = push_query {
                // A push query: stopped here, and not recorded (it does not survive a restart).
                push.cancel.cancel();
                entities.push(Entity::CurrentStatus {
                    statement_text: stmt.text.clone(),
                    command_id: eddy_engine::command_id(stmt),
                    command_status: CommandStatus {
                        status: "SUCCESS".into(),
                        message: "Query terminated.".into(),
                        query_id: Some(id.clone()),
                    },
                    command_sequence_number: -1,
                    warnings: Vec::new(),
                });
                continue;
            }
            if let Some(answer) = crate::describe::answer(&engine, stmt) {
                match answer {
                    Ok(e) => entities.push(e),
                    Err(e) => return Err(ApiError::statement(&e, &stmt.text, entities)),
                }
                continue;
            }
            let recorded = &mut |_: i64, stmt: &ParsedStatement, result: &StatementResult| {
                state.record_outcome(stmt, result);
            };
            match engine.execute_logged(stmt, &props, &state.commands, recorded) {
                Ok(executed) => {
                    state.record_outcome(stmt, &executed.result);
                    if !matches!(executed.result, StatementResult::Inserted) {
                        let mut e = entity(stmt, executed.result, executed.sequence.unwrap_or(-1));
                        if let Entity::Queries { queries, .. } = &mut e {
                            count_other_servers(&state, queries);
                            queries.extend(push_queries(&state));
                        }
                        entities.push(e);
                    }
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
            ApiError::generic(SERVER_ERROR, "statement execution was interrupted").into_response()
        }
    }
}

/// A running push query by id (ids are upper-cased unless quoted, so any case matches).
fn find_push_query(state: &AppState, id: &str) -> Option<(String, PushQuery)> {
    state
        .transient()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(id))
        .map(|(k, q)| (k.clone(), q.clone()))
}

/// Running push queries as `SHOW QUERIES` lists them.
fn push_queries(state: &AppState) -> Vec<RunningQuery> {
    state
        .transient()
        .iter()
        .map(|(id, q)| {
            let mut status_count = Map::new();
            status_count.insert("RUNNING".into(), json!(1));
            RunningQuery {
                query_string: q.sql.clone(),
                sinks: Vec::new(),
                sink_kafka_topics: Vec::new(),
                id: id.clone(),
                status_count,
                query_type: "PUSH".into(),
                state: "RUNNING".into(),
                consumer_lag: None,
                processing_errors: None,
            }
        })
        .collect()
}

pub(crate) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn entity(stmt: &ParsedStatement, result: StatementResult, seq: i64) -> Entity {
    let statement_text = stmt.text.clone();
    match result {
        StatementResult::Inserted => Entity::CurrentStatus {
            statement_text,
            command_id: eddy_engine::command_id(stmt),
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
            command_id: eddy_engine::command_id(stmt),
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
        StatementResult::Types(types) => Entity::TypeList {
            statement_text,
            types: types
                .iter()
                .map(|(name, ty)| (name.clone(), field_schema(ty)))
                .collect(),
            warnings: Vec::new(),
        },
        StatementResult::TopicsExtended(list) => Entity::KafkaTopicsExtended {
            statement_text,
            topics: list
                .into_iter()
                .map(|(t, consumers, groups)| KafkaTopicInfoExtended {
                    name: t.name,
                    replica_info: vec![i32::from(t.replicas); t.partitions.max(0) as usize],
                    consumer_count: consumers,
                    consumer_group_count: groups,
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
                    fields: field_infos(&s.columns),
                    kind: s.kind.to_string(),
                    timestamp: s.timestamp_column.clone().unwrap_or_default(),
                    statistics: d.statistics.0.clone(),
                    error_stats: d.statistics.1.clone(),
                    extended: d.extended,
                    key_format: s.key_format.to_string(),
                    value_format: s.value_format.to_string(),
                    topic: s.topic.clone(),
                    partitions: d.partitions,
                    replication: i32::from(d.replicas),
                    statement: s.sql.clone(),
                    source_constraints: Vec::new(),
                    query_offset_summaries: d
                        .offsets
                        .iter()
                        .map(|q| {
                            json!({
                                "groupId": q.group,
                                "topicSummaries": q.topics.iter().map(|t| json!({
                                    "kafkaTopic": t.topic,
                                    "offsets": t.partitions.iter().map(|p| json!({
                                        "partition": p.partition,
                                        "logStartOffset": p.start,
                                        "logEndOffset": p.end,
                                        "consumerOffset": p.consumer,
                                    })).collect::<Vec<_>>(),
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect(),
                    cluster_statistics: Vec::new(),
                    cluster_error_stats: Vec::new(),
                }),
                warnings: Vec::new(),
            }
        }
        StatementResult::Properties(list) => Entity::Properties {
            statement_text,
            properties: list
                .into_iter()
                .map(|(name, value)| Property {
                    scope: if name.starts_with("ksql.") {
                        "KSQL".into()
                    } else {
                        "KAFKA".into()
                    },
                    name,
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
                .map(|f| FunctionName {
                    name: f.name,
                    kind: f.kind,
                    category: f.category,
                })
                .collect(),
            warnings: Vec::new(),
        },
        StatementResult::Function(f) => Entity::DescribeFunction {
            statement_text,
            name: f.name,
            description: f.description,
            author: "Eddy".into(),
            version: String::new(),
            path: "internal".into(),
            kind: f.kind.into(),
            functions: f
                .variations
                .into_iter()
                .map(|v| FunctionVariation {
                    arguments: v
                        .arguments
                        .iter()
                        .enumerate()
                        .map(|(i, (name, ty))| FunctionArgument {
                            name: name.clone(),
                            kind: ty.clone(),
                            description: String::new(),
                            is_variadic: v.variadic && i + 1 == v.arguments.len(),
                        })
                        .collect(),
                    return_type: v.return_type.unwrap_or_default(),
                    description: String::new(),
                    argument_types: v.arguments.into_iter().map(|(_, ty)| ty).collect(),
                })
                .collect(),
            warnings: Vec::new(),
        },
        StatementResult::TopicAsserted { topic, exists } => Entity::AssertTopic {
            statement_text,
            topic_name: topic,
            exists,
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

/// Adds the states the other live servers of the cluster report for each persistent query
/// to its `statusCount`, so that it counts servers as ksqlDB's does.
fn count_other_servers(state: &AppState, queries: &mut [RunningQuery]) {
    let Some(membership) = &state.membership else {
        return;
    };
    let now = eddy_engine::membership::now_ms();
    for (host, known) in membership.hosts() {
        if host == membership.me() || !known.alive(now) {
            continue;
        }
        for query in queries.iter_mut() {
            if let Some(Value::String(s)) = known.report["queryStates"].get(&query.id) {
                let count = query.status_count.entry(s.clone()).or_insert(json!(0));
                *count = json!(count.as_u64().unwrap_or(0) + 1);
            }
        }
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
        // Reported together: a query with a lag has been asked for its progress.
        consumer_lag: q.lag,
        processing_errors: q.lag.map(|_| q.processing_errors),
    }
}

/// Columns as ksqlDB describes them: name, schema, and `KEY` for key columns (`HEADER`, with
/// the header's key for `HEADER('key')`, for header columns).
pub(crate) fn field_infos(columns: &[Column]) -> Vec<FieldInfo> {
    columns
        .iter()
        .map(|c| FieldInfo {
            name: c.name.clone(),
            schema: field_schema(&c.ty),
            kind: match c.role {
                ColumnRole::Key => Some("KEY".to_string()),
                ColumnRole::Header(_) => Some("HEADER".to_string()),
                ColumnRole::Value => None,
            },
            header_key: match &c.role {
                ColumnRole::Header(key) => key.clone(),
                _ => None,
            },
        })
        .collect()
}

pub(crate) fn field_schema(ty: &SqlType) -> FieldSchema {
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
                        header_key: None,
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

/// How long `/healthcheck` waits for the broker: a check answers within a second whatever
/// Kafka does, so a broker that does not answer in time counts as unhealthy.
const KAFKA_HEALTH_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// `GET /healthcheck`: healthy when the broker answers and the command log was replayed.
pub(crate) async fn healthcheck(State(state): State<Arc<AppState>>) -> Response {
    let engine = Arc::clone(&state.engine);
    let check = crate::blocking(move || {
        engine
            .topics()
            .admin()
            .check_reachable(KAFKA_HEALTH_WAIT)
            .is_ok()
    });
    // The blocking pool may be busy; the answer does not wait for it beyond the budget.
    let kafka = tokio::time::timeout(KAFKA_HEALTH_WAIT * 2, check)
        .await
        .is_ok_and(|joined| joined.unwrap_or(false));
    let ready = state.is_ready();
    let mut details = Map::new();
    details.insert("metastore".into(), json!({"isHealthy": ready}));
    details.insert("kafka".into(), json!({"isHealthy": kafka}));
    details.insert("commandRunner".into(), json!({"isHealthy": ready}));
    let healthy = kafka && ready;
    let body = HealthCheckResponse {
        is_healthy: healthy,
        details,
        server_state: if ready { "RUNNING" } else { "STARTING" }.into(),
    };
    let status = if healthy {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

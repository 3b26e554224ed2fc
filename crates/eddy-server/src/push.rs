//! Push queries: `POST /query` (ksqlDB's chunked JSON array), `POST /query-stream` (its
//! HTTP/2 API: delimited lines or a JSON array) and `POST /close-query`. The same endpoints
//! answer pull queries (no `EMIT`) at once, and `/query` serves `PRINT` ([`crate::print`]).
//!
//! A push query runs as long as its response body is being sent: when the client goes away
//! the body is dropped, which drops the [`TransientQuery`] and stops its task. While no rows
//! come, a newline is sent every [`HEARTBEAT`] (whitespace in every framing, and skipped by
//! ksqlDB's clients), so a vanished client is noticed within a second.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use eddy_engine::{Properties, PullResult, TransientCancel, TransientQuery};
use eddy_sql::ast::{ParsedStatement, Statement};
use eddy_sql::catalog::{Column, ColumnRole};
use serde_json::{Value, json};

use crate::errors::{ApiError, BAD_REQUEST, SERVER_ERROR};
use crate::handlers::{properties, read_json, required_str};
use crate::print::{PrintRequest, print};
use crate::rows::batch_rows;
use crate::{AppState, PushQuery};

/// How often an idle push query sends a newline to find out whether its client is there.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// Content type of `/query-stream`'s delimited answer.
const DELIMITED: &str = "application/vnd.ksqlapi.delimited.v1";

/// `POST /query`: `{"ksql": "SELECT … EMIT CHANGES;", "streamsProperties": {…}}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn query(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    body: Body,
) -> Response {
    let started = async {
        // Read before any refusal (see `handlers::ksql`).
        let body = read_json(&state, body).await?;
        state.serving()?;
        let sql = required_str(&body, "ksql", "the query to run")?;
        let stmt = parse_one(&state, &body, &sql)?;
        if let Statement::Print {
            topic,
            from_beginning,
            interval,
            limit,
        } = &stmt.statement
        {
            let request = PrintRequest {
                topic: topic.clone(),
                from_beginning: *from_beginning,
                interval: *interval,
                limit: *limit,
                text: stmt.text.clone(),
            };
            return print(&state, request).await;
        }
        let props = properties(&state, &body, "streamsProperties")?;
        let started = start(&state, &stmt, props).await?;
        Ok(answer(&state, started, Framing::Query))
    }
    .await;
    started.unwrap_or_else(IntoResponse::into_response)
}

/// `POST /query-stream`: `{"sql": "SELECT … EMIT CHANGES;", "properties": {…}}`.
#[tracing::instrument(skip_all)]
pub(crate) async fn query_stream(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let framing = if accept.contains("application/json") && !accept.contains(DELIMITED) {
        Framing::JsonArray
    } else {
        Framing::Delimited
    };
    let started = async {
        let body = read_json(&state, body).await?;
        state.serving()?;
        let sql = required_str(&body, "sql", "the query to run")?;
        let props = properties(&state, &body, "properties")?;
        start(&state, &parse_one(&state, &body, &sql)?, props).await
    }
    .await;
    match started {
        Ok(started) => answer(&state, started, framing),
        Err(e) => e.into_response(),
    }
}

/// `POST /close-query`: `{"queryId": "transient_…"}`.
pub(crate) async fn close_query(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    body: Body,
) -> Response {
    let closed = async {
        let body = read_json(&state, body).await?;
        let id = required_str(&body, "queryId", "the id of the push query to close")?;
        let cancel = state.transient().get(&id).map(|q| q.cancel.clone());
        match cancel {
            Some(c) => {
                c.cancel();
                Ok(())
            }
            None => Err(ApiError::generic(
                BAD_REQUEST,
                format!("No push query with id {id} is running."),
            )),
        }
    }
    .await;
    match closed {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Parses the one statement of a request to a query endpoint, its `sessionVariables`
/// substituted.
fn parse_one(
    state: &AppState,
    body: &serde_json::Map<String, Value>,
    sql: &str,
) -> Result<ParsedStatement, ApiError> {
    let mut variables = crate::handlers::session_variables(body)?;
    let sql = &crate::handlers::substitute(state, sql, &mut variables)
        .map_err(|e| ApiError::parse(e.to_string(), sql.trim()))?;
    let mut statements = eddy_sql::parse_with_types(sql, &state.engine.types())
        .map_err(|e| ApiError::parse(e.to_string(), sql.trim()))?;
    if statements.len() != 1 {
        return Err(ApiError::parse(
            format!(
                "Expected exactly one query, got {} statements.",
                statements.len()
            ),
            sql.trim(),
        ));
    }
    Ok(statements.remove(0))
}

/// What a query endpoint runs.
enum Started {
    /// A push query, streamed until its LIMIT, a close or a disconnect.
    Push(TransientQuery),
    /// A pull query's whole answer.
    Pull(PullResult),
}

/// Answers a started query in `framing`.
fn answer(state: &Arc<AppState>, started: Started, framing: Framing) -> Response {
    match started {
        Started::Push(query) => respond(Arc::clone(state), query, framing),
        Started::Pull(result) => respond_pull(&result, framing),
    }
}

/// Runs `stmt`: a push query starts streaming, a pull query is answered at once.
async fn start(
    state: &Arc<AppState>,
    stmt: &ParsedStatement,
    props: Properties,
) -> Result<Started, ApiError> {
    let query = match &stmt.statement {
        Statement::Query(q) if q.emit.is_some() => q.clone(),
        Statement::Query(q) => {
            let engine = Arc::clone(&state.engine);
            let q = q.clone();
            let asked = std::time::Instant::now();
            let pulled = crate::blocking(move || engine.pull(&q, &props))
                .await
                .map_err(|e| {
                    tracing::error!("pull query failed: {e}");
                    ApiError::generic(SERVER_ERROR, "the pull query was interrupted")
                });
            state.metrics.pull_query(matches!(pulled, Ok(Ok(_))), asked);
            return pulled?
                .map(Started::Pull)
                .map_err(|e| ApiError::statement(&e, &stmt.text, Vec::new()));
        }
        Statement::Print { .. } => {
            return Err(ApiError::parse(
                "PRINT is served by /query, not /query-stream.",
                &stmt.text,
            ));
        }
        _ => {
            return Err(ApiError::parse(
                "Only push queries (SELECT … EMIT CHANGES) can be sent to this endpoint; \
                 send other statements to /ksql.",
                &stmt.text,
            ));
        }
    };
    let engine = Arc::clone(&state.engine);
    let text = stmt.text.clone();
    // Opening a consumer talks to the broker: off the async workers.
    let started = crate::blocking(move || engine.start_transient(&query, &props))
        .await
        .map_err(|e| {
            tracing::error!("push query start failed: {e}");
            ApiError::generic(SERVER_ERROR, "starting the push query was interrupted")
        })?;
    state.metrics.push_query(started.is_ok());
    let query = started.map_err(|e| ApiError::statement(&e, &text, Vec::new()))?;
    state.transient().insert(
        query.id.clone(),
        PushQuery {
            sql: stmt.text.clone(),
            cancel: query.canceller(),
        },
    );
    tracing::info!(query_id = %query.id, "push query started");
    Ok(Started::Push(query))
}

/// How rows go over the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// `/query`: `[{"header":…},\n{"row":{"columns":[…]}},\n…{"finalMessage":…}]`.
    Query,
    /// `/query-stream` delimited: a header object, then one array per row, one per line.
    Delimited,
    /// `/query-stream` as JSON: `[{header},[row],…]`.
    JsonArray,
}

impl Framing {
    /// The header. `/query` marks key columns (`ID` STRING KEY) in a pull query's schema
    /// only, as ksqlDB does: a push query's rows are changes, not rows of a keyed state.
    fn header(self, id: &str, columns: &[Column], mark_keys: bool) -> Bytes {
        let text = match self {
            Framing::Query => {
                let schema = columns
                    .iter()
                    .map(|c| {
                        let key = if mark_keys && c.role == ColumnRole::Key {
                            " KEY"
                        } else {
                            ""
                        };
                        format!("`{}` {}{key}", c.name, c.ty)
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("[{}", json!({"header": {"queryId": id, "schema": schema}}))
            }
            Framing::Delimited | Framing::JsonArray => {
                let header = json!({
                    "queryId": id,
                    "columnNames": columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                    "columnTypes": columns.iter().map(|c| c.ty.to_string()).collect::<Vec<_>>(),
                });
                if self == Framing::Delimited {
                    format!("{header}\n")
                } else {
                    format!("[{header}")
                }
            }
        };
        Bytes::from(text)
    }

    /// One row; `tombstone` marks a deleted key, as ksqlDB's `/query` does.
    fn row(self, row: Value, tombstone: bool) -> Bytes {
        Bytes::from(match self {
            Framing::Query if tombstone => {
                format!(",\n{}", json!({"row": {"columns": row, "tombstone": true}}))
            }
            Framing::Query => format!(",\n{}", json!({"row": {"columns": row}})),
            Framing::Delimited => format!("{row}\n"),
            Framing::JsonArray => format!(",\n{row}"),
        })
    }

    fn end(self, limit_reached: bool) -> Option<Bytes> {
        match self {
            Framing::Query if limit_reached => Some(Bytes::from_static(
                b",\n{\"finalMessage\":\"Limit Reached\"}]\n",
            )),
            Framing::Query | Framing::JsonArray => Some(Bytes::from_static(b"]\n")),
            Framing::Delimited => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Framing::Query | Framing::JsonArray => "application/json",
            Framing::Delimited => DELIMITED,
        }
    }
}

/// A push query being streamed; dropping it (the client went away) stops the query.
struct Streaming {
    state: Arc<AppState>,
    query: TransientQuery,
    cancel: TransientCancel,
    framing: Framing,
    emitted: u64,
    pending: VecDeque<Bytes>,
    finished: bool,
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.state.transient().remove(&self.query.id);
        tracing::info!(query_id = %self.query.id, rows = self.emitted, "push query ended");
    }
}

impl Streaming {
    /// The next chunk of the body, or `None` at its end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(b);
            }
            if self.finished {
                return None;
            }
            tokio::select! {
                batch = self.query.rows.recv() => match batch {
                    Some(rows) => {
                        for (row, tombstone) in batch_rows(&rows.batch).into_iter().zip(rows.tombstones) {
                            self.emitted += 1;
                            self.pending.push_back(self.framing.row(row, tombstone));
                        }
                    }
                    None => {
                        let limit_reached =
                            self.query.limit.is_some_and(|l| self.emitted >= l);
                        self.finish(limit_reached);
                    }
                },
                () = tokio::time::sleep(HEARTBEAT) => {
                    if self.cancel.is_cancelled() {
                        self.finish(false);
                    } else {
                        return Some(Bytes::from_static(b"\n"));
                    }
                }
            }
        }
    }

    fn finish(&mut self, limit_reached: bool) {
        self.finished = true;
        if let Some(end) = self.framing.end(limit_reached) {
            self.pending.push_back(end);
        }
    }
}

fn respond(state: Arc<AppState>, query: TransientQuery, framing: Framing) -> Response {
    let mut streaming = Streaming {
        state,
        cancel: query.canceller(),
        pending: VecDeque::from([framing.header(&query.id, &query.columns, false)]),
        query,
        framing,
        emitted: 0,
        finished: false,
    };
    if streaming.query.limit == Some(0) {
        streaming.finish(true);
    }
    let stream = futures::stream::unfold(streaming, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(framing.content_type()),
    );
    response
}

/// The whole answer of a pull query: the header, its rows, the end.
fn respond_pull(result: &PullResult, framing: Framing) -> Response {
    let mut body = Vec::new();
    body.extend_from_slice(&framing.header(&result.id, &result.columns, true));
    for row in batch_rows(&result.rows) {
        body.extend_from_slice(&framing.row(row, false));
    }
    match (result.final_message, framing) {
        (Some(message), Framing::Query) => body
            .extend_from_slice(format!(",\n{}]\n", json!({ "finalMessage": message })).as_bytes()),
        _ => {
            if let Some(end) = framing.end(false) {
                body.extend_from_slice(&end);
            }
        }
    }
    let mut response = Body::from(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(framing.content_type()),
    );
    response
}

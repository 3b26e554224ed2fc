//! `POST /ksql/terminate`: ksqlDB's `TERMINATE CLUSTER`, which only this endpoint accepts.
//!
//! The server stops accepting statements, stops every push query, terminates and cleans up
//! every persistent query, forgets its sources, deletes the topics that queries wrote and
//! whose names match the body's `deleteTopicList` (names or Java regular expressions, each
//! matching the whole name), and deletes the command topic, so that a restarted server
//! starts empty. The command topic is deleted first: a broker that refuses (the embedded
//! dev broker cannot delete topics) leaves everything as it was. The command topic is deleted first: a broker that refuses (the embedded
//! dev broker cannot delete topics) leaves everything as it was.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::errors::{ApiError, SERVER_ERROR};

/// The statement text ksqlDB reports for the command.
const STATEMENT: &str = "TERMINATE CLUSTER;";

/// `POST /ksql/terminate`.
#[tracing::instrument(skip_all)]
pub(crate) async fn terminate_cluster(State(state): State<Arc<AppState>>, body: Body) -> Response {
    // Read before any refusal (see `handlers::ksql`).
    let patterns = delete_patterns(&state, body).await;
    if let Err(e) = state.serving().and_then(|()| state.refuse_if_headless()) {
        return e.into_response();
    }
    let patterns = match patterns {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    state.terminated.store(true, Ordering::SeqCst);
    let worker = Arc::clone(&state);
    let done = crate::blocking(move || {
        // The command topic goes first: if the broker refuses, nothing has changed. This
        // server's own clients of it are closed before (see `CommandLog::close`).
        let command_topic = worker.commands.topic().to_string();
        worker.commands.close();
        if let Err(e) = worker.engine.topics().admin().delete_topic(&command_topic) {
            if let Err(reopening) = worker.commands.reopen() {
                tracing::error!("reopening the command log failed: {reopening}");
            }
            worker.terminated.store(false, Ordering::SeqCst);
            return Err(eddy_engine::EngineError::from(e));
        }
        for push in worker.transient().values() {
            push.cancel.cancel();
        }
        worker
            .engine
            .terminate_cluster(&|topic| patterns.iter().any(|p| p.is_match(topic)))
    })
    .await;
    match done {
        Ok(Ok(deleted)) => {
            tracing::info!(?deleted, "cluster terminated");
            Json(json!([{
                "@type": "currentStatus",
                "statementText": STATEMENT,
                "commandId": "cluster/CLUSTER/terminate",
                "commandStatus": {"status": "SUCCESS", "message": "Cluster terminated."},
                "commandSequenceNumber": -1,
                "warnings": [],
            }]))
            .into_response()
        }
        Ok(Err(e)) => ApiError::statement(&e, STATEMENT, Vec::new()).into_response(),
        Err(e) => ApiError::generic(SERVER_ERROR, format!("terminating the cluster failed: {e}"))
            .into_response(),
    }
}

/// The `deleteTopicList` of the body (which may be empty), each compiled to match a whole
/// topic name.
async fn delete_patterns(state: &AppState, body: Body) -> Result<Vec<regex::Regex>, ApiError> {
    let bytes = axum::body::to_bytes(body, state.config.max_request_bytes)
        .await
        .map_err(|_| ApiError::too_large(state.config.max_request_bytes))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let list = match body.get("deleteTopicList") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(ApiError::bad_request(
                "'deleteTopicList' must be a list of topic names or regular expressions.",
            ));
        }
    };
    list.iter()
        .map(|item| {
            let text = item.as_str().ok_or_else(|| {
                ApiError::bad_request(format!("'deleteTopicList' holds a non-string: {item}"))
            })?;
            regex::Regex::new(&format!("^(?:{text})$")).map_err(|e| {
                ApiError::bad_request(format!(
                    "'{text}' in 'deleteTopicList' is not a valid regular expression: {e}"
                ))
            })
        })
        .collect()
}

//! `GET /status` and `GET /status/{type}/{entity}/{action}`: the outcome of each command
//! of the command log, by ksqlDB's command id (e.g. ``stream/`REVIEWS`/create``).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::errors::{ApiError, NOT_FOUND};

/// `GET /status`: `{"commandStatuses": {"<command id>": "SUCCESS", …}}`.
pub(crate) async fn all(State(state): State<Arc<AppState>>) -> Json<Value> {
    let statuses: Map<String, Value> = state
        .outcomes()
        .iter()
        .map(|(id, o)| (id.clone(), Value::String(o.status.clone())))
        .collect();
    Json(json!({ "commandStatuses": statuses }))
}

/// `GET /status/{type}/{entity}/{action}`: `{"status": "SUCCESS", "message": …}`.
pub(crate) async fn one(
    State(state): State<Arc<AppState>>,
    Path((kind, entity, action)): Path<(String, String, String)>,
) -> Response {
    // Clients write the entity with or without ksqlDB's backticks.
    let bare = |s: &str| s.trim_matches('`').to_ascii_lowercase();
    let wanted = (bare(&kind), bare(&entity), bare(&action));
    let outcomes = state.outcomes();
    let found = outcomes.iter().find(|(id, _)| {
        let mut parts = id.splitn(3, '/');
        let got = (
            parts.next().map(bare).unwrap_or_default(),
            parts.next().map(bare).unwrap_or_default(),
            parts.next().map(bare).unwrap_or_default(),
        );
        got == wanted
    });
    match found {
        Some((_, o)) => {
            let mut body = json!({"status": o.status, "message": o.message});
            if let Some(q) = &o.query_id {
                body["queryId"] = Value::String(q.clone());
            }
            Json(body).into_response()
        }
        None => ApiError::generic(
            NOT_FOUND,
            format!("Command not found: {kind}/{entity}/{action}"),
        )
        .into_response(),
    }
}

//! `GET /clusterStatus`, `POST /heartbeat` and `POST /lag`: the servers of the cluster as
//! this one knows them from their announcements ([`eddy_engine::membership`]), which carry
//! each server's queries, stores and store lags.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use eddy_engine::membership::now_ms;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::errors::{ApiError, SERVER_ERROR};

/// `GET /clusterStatus`: per server (`host:port`), whether it is alive, when it last
/// announced itself, and its queries' partitions and stores, in ksqlDB's shape.
pub(crate) async fn cluster_status(State(state): State<Arc<AppState>>) -> Response {
    let Some(membership) = state.membership.clone() else {
        return ApiError::generic(
            SERVER_ERROR,
            "This server does not take part in a cluster (no membership topic).",
        )
        .into_response();
    };
    let refreshed = crate::blocking(move || {
        membership.refresh(std::time::Duration::from_millis(200))?;
        Ok::<_, eddy_engine::EngineError>(membership.hosts())
    })
    .await;
    let hosts = match refreshed {
        Ok(Ok(hosts)) => hosts,
        Ok(Err(e)) => return ApiError::engine(&e).into_response(),
        Err(e) => {
            return ApiError::generic(SERVER_ERROR, format!("reading the cluster failed: {e}"))
                .into_response();
        }
    };
    let now = now_ms();
    let mut status = Map::new();
    for (host, known) in hosts {
        let mut entry = json!({
            "hostAlive": known.alive(now),
            "lastStatusUpdateMs": known.last_update_ms,
            "activeStandbyPerQuery": {},
            "hostStoreLags": {"stateStoreLags": {}, "updateTimeMs": known.last_update_ms},
        });
        if let (Some(entry), Value::Object(report)) = (entry.as_object_mut(), known.report) {
            for key in ["activeStandbyPerQuery", "hostStoreLags"] {
                if let Some(v) = report.get(key) {
                    entry.insert(key.to_string(), v.clone());
                }
            }
        }
        status.insert(host, entry);
    }
    Json(json!({"clusterStatus": status})).into_response()
}

/// `POST /heartbeat`: ksqlDB's servers send each other heartbeats; Eddy's servers
/// announce themselves through Kafka instead, so a heartbeat is only acknowledged.
pub(crate) async fn heartbeat() -> Response {
    Json(json!({"isOk": true})).into_response()
}

/// `GET /lag`: this server's store lags now, as ksqlDB's servers report them to each other
/// (a `LagReportingMessage`: the host, its `hostStoreLags` and when they were taken): per
/// store, per partition this server processes, the consumer's and the broker's offsets
/// and the records between them.
pub(crate) async fn lag(State(state): State<Arc<AppState>>) -> Response {
    let engine = Arc::clone(&state.engine);
    let me = state
        .membership
        .as_ref()
        .map(|m| m.me().to_string())
        .unwrap_or_default();
    let report = match crate::blocking(move || engine.cluster_report()).await {
        Ok(report) => report,
        Err(e) => {
            return ApiError::generic(SERVER_ERROR, format!("reading the lags failed: {e}"))
                .into_response();
        }
    };
    let (host, port) = match me.rsplit_once(':') {
        Some((host, port)) => (host.to_string(), port.parse::<u16>().unwrap_or(0)),
        None => (me, 0),
    };
    let lags = report
        .get("hostStoreLags")
        .cloned()
        .unwrap_or_else(|| json!({}));
    Json(json!({
        "hostInfo": {"host": host, "port": port},
        "lastLagUpdateMs": lags.get("updateTimeMs").cloned().unwrap_or_else(|| json!(now_ms())),
        "hostStoreLags": lags,
    }))
    .into_response()
}

/// `POST /lag`: ksqlDB's servers report their store lags to each other; Eddy's servers put
/// theirs in their announcements (shown by `/clusterStatus` and `GET /lag`), so a report
/// is only acknowledged.
pub(crate) async fn lag_report() -> Response {
    Json(json!({"isOk": true})).into_response()
}

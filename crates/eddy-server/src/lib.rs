//! Eddy's REST API, compatible with ksqlDB's.
//!
//! Entry point: [`router`] builds the axum router over an [`AppState`] (the
//! [`eddy_engine::Engine`] and its [`eddy_engine::CommandLog`]); [`serve`] runs it on a
//! listener, HTTP/1.1 and HTTP/2 cleartext (h2c with prior knowledge) on the same port.
//! [`AppState::replay`] rebuilds the engine from the command log at start; until it has
//! finished, `/healthcheck` answers unhealthy and statements are refused with 503.
//!
//! Invariant: only this crate knows the REST wire format; [`wire`] holds every type that
//! goes over it, and [`errors`] maps engine errors to ksqlDB's codes in one place.

mod describe;
pub mod errors;
mod handlers;
mod inserts;
mod print;
mod push;
mod rows;
mod status;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use eddy_engine::{
    CommandLog, Engine, EngineError, ReplayReport, StatementResult, TransientCancel, command_id,
};
use eddy_sql::ast::ParsedStatement;
use tokio::net::TcpListener;

/// Options of the REST API.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones are answered with 413.
    pub max_request_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 1 << 20,
        }
    }
}

/// The outcome of a recorded command, as `GET /status` reports it.
#[derive(Debug, Clone)]
pub(crate) struct CommandOutcome {
    pub status: String,
    pub message: String,
    pub query_id: Option<String>,
}

/// A running push query, as `SHOW QUERIES` and `/close-query` see it.
#[derive(Debug, Clone)]
pub(crate) struct PushQuery {
    pub sql: String,
    pub cancel: TransientCancel,
}

/// Everything a request handler needs.
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Where accepted statements are recorded.
    pub commands: Arc<CommandLog>,
    /// Version reported by `/info`.
    pub version: String,
    /// Options.
    pub config: ServerConfig,
    ready: AtomicBool,
    outcomes: Mutex<BTreeMap<String, CommandOutcome>>,
    transient: Mutex<BTreeMap<String, PushQuery>>,
}

impl AppState {
    /// State over an engine and its command log; not ready until [`AppState::replay`] ran.
    pub fn new(
        engine: Arc<Engine>,
        commands: Arc<CommandLog>,
        version: String,
        config: ServerConfig,
    ) -> Self {
        Self {
            engine,
            commands,
            version,
            config,
            ready: AtomicBool::new(false),
            outcomes: Mutex::new(BTreeMap::new()),
            transient: Mutex::new(BTreeMap::new()),
        }
    }

    /// Replays the command log into the engine (blocking), then marks the server ready.
    pub fn replay(&self, timeout: Duration) -> Result<ReplayReport, EngineError> {
        let report = self
            .engine
            .replay(&self.commands, timeout, |_, stmt, result| {
                self.record_outcome(stmt, result);
            })?;
        self.ready.store(true, Ordering::SeqCst);
        Ok(report)
    }

    /// Whether replay has finished and statements are served.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub(crate) fn record_outcome(&self, stmt: &ParsedStatement, result: &StatementResult) {
        if let StatementResult::Status { message, query_id } = result {
            lock(&self.outcomes).insert(
                command_id(stmt),
                CommandOutcome {
                    status: "SUCCESS".into(),
                    message: message.clone(),
                    query_id: query_id.clone(),
                },
            );
        }
    }

    pub(crate) fn outcomes(&self) -> MutexGuard<'_, BTreeMap<String, CommandOutcome>> {
        lock(&self.outcomes)
    }

    pub(crate) fn transient(&self) -> MutexGuard<'_, BTreeMap<String, PushQuery>> {
        lock(&self.transient)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The REST API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ksql", post(handlers::ksql))
        .route("/query", post(push::query))
        .route("/query-stream", post(push::query_stream))
        .route("/inserts-stream", post(inserts::inserts_stream))
        .route("/close-query", post(push::close_query))
        .route("/info", get(handlers::info))
        .route("/healthcheck", get(handlers::healthcheck))
        .route("/status", get(status::all))
        .route("/status/{kind}/{entity}/{action}", get(status::one))
        .with_state(state)
}

/// Serves the API on `listener` until the process ends: HTTP/1.1, and HTTP/2 for clients
/// that start with its preface (h2c with prior knowledge, as ksqlDB's clients use).
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

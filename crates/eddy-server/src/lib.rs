//! Eddy's REST API, compatible with ksqlDB's.
//!
//! Entry point: [`router`] builds the axum router over an [`eddy_engine::Engine`]; [`serve`]
//! runs it on a listener (HTTP/1.1 and HTTP/2 cleartext on the same port).
//!
//! Invariant: only this crate knows the REST wire format; [`wire`] holds every type that
//! goes over it, and [`errors`] maps engine errors to ksqlDB's codes in one place.

pub mod errors;
mod handlers;
pub mod wire;

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use axum::Router;
use axum::routing::{get, post};
use eddy_engine::Engine;
use tokio::net::TcpListener;

/// Everything a request handler needs.
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// Sequence number of the last command executed.
    pub command_sequence: AtomicI64,
    /// Version reported by `/info`.
    pub version: String,
}

/// The REST API's routes.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/ksql", post(handlers::ksql))
        .route("/info", get(handlers::info))
        .route("/healthcheck", get(handlers::healthcheck))
        .with_state(state)
}

/// Serves the API on `listener` until the process ends.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state)).await
}

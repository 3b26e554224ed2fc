//! Eddy's REST API, compatible with ksqlDB's.
//!
//! Entry point: [`router`] builds the axum router over an [`AppState`] (the
//! [`eddy_engine::Engine`] and its [`eddy_engine::CommandLog`]); [`serve`] runs it on a
//! listener, HTTP/1.1 and HTTP/2 cleartext (h2c with prior knowledge) on the same port.
//! With [`ServerConfig::tls`] it serves HTTPS instead (HTTP/2 chosen through ALPN), and with
//! [`ServerConfig::basic_auth`] every request but the skipped paths needs a user of the
//! password file ([`auth`]).
//! [`AppState::replay`] rebuilds the engine from the command log at start; until it has
//! finished, `/healthcheck` answers unhealthy and statements are refused with 503.
//!
//! Invariant: only this crate knows the REST wire format; [`wire`] holds every type that
//! goes over it, and [`errors`] maps engine errors to ksqlDB's codes in one place.

pub mod auth;
mod cluster;
mod console;
mod describe;
pub mod errors;
mod handlers;
mod inserts;
mod metrics;
mod print;
mod push;
mod raw_targets;
pub mod registry;
mod rows;
mod status;
mod terminate;
pub mod tls;
pub mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
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

pub use auth::{Authenticator, BasicAuthConfig};
pub use tls::{ClientAuthentication, TlsConfig};

/// What can stop the REST API from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The HTTPS listener's key or trust store cannot be used.
    #[error("HTTPS listener: {path}: {reason}")]
    Tls {
        /// The store.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The Basic-authentication files cannot be used.
    #[error("Basic authentication: {path}: {reason}")]
    Auth {
        /// The JAAS or password file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The listener failed.
    #[error("REST listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Options of the REST API.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted; larger ones are answered with 413.
    pub max_request_bytes: usize,
    /// Serve HTTPS with this key material rather than cleartext HTTP.
    pub tls: Option<TlsConfig>,
    /// Require HTTP Basic authentication.
    pub basic_auth: Option<BasicAuthConfig>,
    /// `ksql.properties.overrides.denylist`: properties a request may not set.
    pub denied_properties: Vec<String>,
    /// Headless mode: the queries file the server runs (`ksql.queries.file`); statements
    /// that change streams, tables, queries or data are then refused.
    pub queries_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_request_bytes: 1 << 20,
            tls: None,
            basic_auth: None,
            denied_properties: Vec::new(),
            queries_file: None,
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
    terminated: AtomicBool,
    metrics: metrics::ServerMetrics,
    membership: Option<Arc<eddy_engine::membership::Membership>>,
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
            terminated: AtomicBool::new(false),
            metrics: metrics::ServerMetrics::default(),
            membership: None,
            outcomes: Mutex::new(BTreeMap::new()),
            transient: Mutex::new(BTreeMap::new()),
        }
    }

    /// Takes part in the cluster of `membership` (`/clusterStatus`).
    pub fn with_membership(mut self, membership: Arc<eddy_engine::membership::Membership>) -> Self {
        self.membership = Some(membership);
        self
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

    /// Headless mode: runs the queries file `text` (blocking) instead of a replay, then
    /// marks the server ready. Returns how many statements ran.
    pub fn run_queries_file(&self, text: &str) -> Result<usize, EngineError> {
        let ran = self.engine.run_queries_file(text)?;
        self.ready.store(true, Ordering::SeqCst);
        Ok(ran)
    }

    /// In headless mode, the refusal of a request that would change something.
    pub(crate) fn refuse_if_headless(&self) -> Result<(), errors::ApiError> {
        match &self.config.queries_file {
            Some(file) => Err(errors::ApiError::bad_request(format!(
                "The server runs in headless mode (the queries file {}): statements that \
                 change streams, tables, queries or data are not accepted.",
                file.display()
            ))),
            None => Ok(()),
        }
    }

    /// Executes the commands other servers appended to the command log since this one last
    /// read it (blocking). Returns how many ran.
    pub fn follow_commands(&self) -> Result<usize, EngineError> {
        self.engine.follow(&self.commands, &mut |_, stmt, result| {
            self.record_outcome(stmt, result);
        })
    }

    /// Whether replay has finished and statements are served.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    /// Whether requests are served: not before the replay, not after `TERMINATE CLUSTER`.
    pub(crate) fn serving(&self) -> Result<(), errors::ApiError> {
        if self.terminated.load(Ordering::SeqCst) {
            return Err(errors::ApiError::generic(
                errors::NOT_READY,
                "The cluster has been terminated (POST /ksql/terminate); no new requests are \
                 accepted. Restart the server to start afresh.",
            ));
        }
        if !self.is_ready() {
            return Err(errors::ApiError::not_ready());
        }
        Ok(())
    }

    /// Refuses property overrides the server's denylist names, as ksqlDB words it.
    pub(crate) fn check_overrides<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), errors::ApiError> {
        let denied: Vec<&str> = names
            .into_iter()
            .filter(|name| {
                self.config
                    .denied_properties
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(name))
            })
            .collect();
        if denied.is_empty() {
            return Ok(());
        }
        Err(errors::ApiError::bad_request(format!(
            "One or more properties overrides set locally are prohibited by the KSQL server \
             (use UNSET to reset their default value): [{}]",
            denied.join(", ")
        )))
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

/// Runs blocking engine work on tokio's blocking pool inside the caller's span, so its log
/// lines carry the request (`request_id`) that asked for it.
pub(crate) fn blocking<F, R>(f: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The REST API's routes, behind the login when `auth` is given.
pub fn router(state: Arc<AppState>, auth: Option<Arc<Authenticator>>) -> Router {
    let routes = Router::new()
        .route("/ksql", post(handlers::ksql))
        .route("/ksql/terminate", post(terminate::terminate_cluster))
        .route(
            "/is_valid_property/{name}",
            get(handlers::is_valid_property),
        )
        .route("/query", post(push::query))
        .route("/query-stream", post(push::query_stream))
        .route("/inserts-stream", post(inserts::inserts_stream))
        .route("/close-query", post(push::close_query))
        .route("/info", get(handlers::info))
        .route("/healthcheck", get(handlers::healthcheck))
        .route("/status", get(status::all))
        .route("/status/{kind}/{entity}/{action}", get(status::one))
        .route("/metrics", get(metrics::metrics))
        .route("/", get(console::index))
        .route("/console/console.js", get(console::script))
        .route("/console/console.css", get(console::style))
        .route("/clusterStatus", get(cluster::cluster_status))
        .route("/heartbeat", post(cluster::heartbeat))
        .route("/lag", post(cluster::lag_report).get(cluster::lag))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            metrics::track,
        ))
        .with_state(state);
    match auth {
        Some(auth) => routes.layer(axum::middleware::from_fn_with_state(
            auth,
            auth::require_login,
        )),
        None => routes,
    }
}

/// Serves the API on `listener` until the process ends: HTTP/1.1, and HTTP/2 for clients
/// that start with its preface (h2c with prior knowledge, as ksqlDB's clients use) or, over
/// TLS, that chose `h2` in ALPN. The TLS and login settings are read before the first
/// connection is accepted, so a bad store or password file fails here.
pub async fn serve(listener: TcpListener, state: Arc<AppState>) -> Result<(), ServerError> {
    let auth = match &state.config.basic_auth {
        Some(config) => Some(Arc::new(Authenticator::load(config)?)),
        None => None,
    };
    let tls = state.config.tls.as_ref().map(tls::acceptor).transpose()?;
    let app = router(state, auth);
    let acceptor = tls.map(Arc::new);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_connection(acceptor.as_deref(), tcp, app).await {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

/// Serves one connection: TLS first if `acceptor` is given, then HTTP/1.1 or HTTP/2, with
/// raw backticks in HTTP/1 request lines accepted ([`raw_targets`]).
async fn serve_connection(
    acceptor: Option<&openssl::ssl::SslAcceptor>,
    tcp: tokio::net::TcpStream,
    app: Router,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Push queries write small chunks that should leave at once.
    tcp.set_nodelay(true)?;
    let service = hyper_util::service::TowerToHyperService::new(app);
    let builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    match acceptor {
        None => {
            let io = hyper_util::rt::TokioIo::new(raw_targets::RawTargets::new(tcp, false));
            builder.serve_connection_with_upgrades(io, service).await
        }
        Some(acceptor) => {
            let ssl = openssl::ssl::Ssl::new(acceptor.context())?;
            let mut stream = tokio_openssl::SslStream::new(ssl, tcp)?;
            std::pin::Pin::new(&mut stream).accept().await?;
            let h2 = stream.ssl().selected_alpn_protocol() == Some(b"h2".as_slice());
            let io = hyper_util::rt::TokioIo::new(raw_targets::RawTargets::new(stream, h2));
            builder.serve_connection_with_upgrades(io, service).await
        }
    }
}

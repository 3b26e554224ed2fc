//! `GET /metrics`: the server's and its queries' metrics in the Prometheus text format
//! (OpenMetrics), for a Prometheus server to scrape and alert on.
//!
//! Per server: REST requests by endpoint, method and status with their latency, push and
//! pull queries (started, failed, running), the command log position, and the process's
//! resident memory and CPU time. The queries' own metrics are the engine's
//! ([`eddy_engine::metrics`]). Counters are updated per request; the gauges are read when
//! scraped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use tracing::Instrument;

use crate::AppState;
use crate::errors::{ApiError, SERVER_ERROR};

type Labels = Vec<(String, String)>;

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Request and query latencies: 0.5 ms to about 16 s.
fn latency_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// The server's own metric families.
#[derive(Debug, Clone)]
pub(crate) struct ServerMetrics {
    requests: Family<Labels, Counter>,
    request_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    push_started: Counter,
    push_failed: Counter,
    pull_total: Counter,
    pull_failed: Counter,
    pull_seconds: Histogram,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_buckets),
            push_started: Counter::default(),
            push_failed: Counter::default(),
            pull_total: Counter::default(),
            pull_failed: Counter::default(),
            pull_seconds: latency_buckets(),
        }
    }
}

impl ServerMetrics {
    /// A push query started (`ok`) or was refused.
    pub(crate) fn push_query(&self, ok: bool) {
        if ok {
            self.push_started.inc();
        } else {
            self.push_failed.inc();
        }
    }

    /// A pull query was answered (`ok`) or failed, after `started`.
    pub(crate) fn pull_query(&self, ok: bool, started: Instant) {
        self.pull_total.inc();
        if !ok {
            self.pull_failed.inc();
        }
        self.pull_seconds.observe(started.elapsed().as_secs_f64());
    }

    fn register(&self, registry: &mut Registry) {
        registry.register(
            "eddy_http_requests",
            "REST requests by endpoint, method and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "eddy_http_request_duration",
            "Time until a REST request's answer started, by endpoint",
            Unit::Seconds,
            self.request_seconds.clone(),
        );
        registry.register(
            "eddy_push_queries_started",
            "Push queries started",
            self.push_started.clone(),
        );
        registry.register(
            "eddy_push_queries_failed",
            "Push queries refused or failed at start",
            self.push_failed.clone(),
        );
        registry.register(
            "eddy_pull_queries",
            "Pull queries answered or failed",
            self.pull_total.clone(),
        );
        registry.register(
            "eddy_pull_queries_failed",
            "Pull queries that failed",
            self.pull_failed.clone(),
        );
        registry.register_with_unit(
            "eddy_pull_query_duration",
            "Time to answer a pull query",
            Unit::Seconds,
            self.pull_seconds.clone(),
        );
    }
}

/// The middleware that counts every routed request by endpoint, method and status.
pub(crate) async fn track(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = request.method().as_str().to_string();
    // Every log line written while answering carries the request's number.
    static REQUESTS: AtomicU64 = AtomicU64::new(0);
    let span = tracing::info_span!(
        "request",
        request_id = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1,
        method = %method,
        endpoint = %endpoint,
    );
    let response = next.run(request).instrument(span).await;
    let metrics = &state.metrics;
    metrics
        .requests
        .get_or_create(&vec![
            ("endpoint".to_string(), endpoint.clone()),
            ("method".to_string(), method),
            ("status".to_string(), response.status().as_u16().to_string()),
        ])
        .inc();
    metrics
        .request_seconds
        .get_or_create(&vec![("endpoint".to_string(), endpoint)])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let engine = Arc::clone(&state.engine);
    // The lag is asked of the broker: off the async workers.
    let collected = crate::blocking(move || (engine.metrics_now(), engine.store_sizes())).await;
    let (queries, stores) = match collected {
        Ok(collected) => collected,
        Err(e) => {
            return ApiError::generic(SERVER_ERROR, format!("collecting metrics failed: {e}"))
                .into_response();
        }
    };
    let mut registry = Registry::default();
    state.engine.metrics().register(&mut registry, &queries);
    state.metrics.register(&mut registry);
    let gauge = |value: i64| {
        let g: Gauge = Gauge::default();
        g.set(value);
        g
    };
    let sizes: Family<Vec<(String, String)>, Gauge> = Family::default();
    for (store, bytes) in stores {
        sizes
            .get_or_create(&vec![("store".to_string(), store)])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register_with_unit(
        "eddy_state_store_size",
        "Estimated size of a local state store on disk (RocksDB live data and memtables)",
        Unit::Bytes,
        sizes,
    );
    registry.register(
        "eddy_push_queries_running",
        "Push queries running now",
        gauge(state.transient().len() as i64),
    );
    registry.register(
        "eddy_command_log_position",
        "Offset of the last command this server executed (-1 before any)",
        gauge(state.commands.applied()),
    );
    let process = Process::read();
    if let Some(rss) = process.resident_bytes {
        registry.register_with_unit(
            "eddy_process_resident_memory",
            "Resident memory of the server process",
            Unit::Bytes,
            gauge(rss),
        );
    }
    if let Some(cpu) = process.cpu_seconds {
        let counter: Counter<f64> = Counter::default();
        counter.inc_by(cpu);
        registry.register_with_unit(
            "eddy_process_cpu",
            "CPU time the server process used, user and system",
            Unit::Seconds,
            counter,
        );
    }
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        return ApiError::generic(SERVER_ERROR, format!("encoding the metrics failed: {e}"))
            .into_response();
    }
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}

/// The process's own figures, from `/proc` (absent elsewhere).
struct Process {
    resident_bytes: Option<i64>,
    cpu_seconds: Option<f64>,
}

impl Process {
    fn read() -> Self {
        let resident_bytes = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kib * 1024)
            });
        // utime and stime, the 14th and 15th fields, in USER_HZ ticks (100 per second on
        // Linux's /proc interface); the command name before them may hold spaces.
        let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|stat| {
                let after_name = &stat[stat.rfind(')')? + 1..];
                let fields: Vec<&str> = after_name.split_whitespace().collect();
                let utime: f64 = fields.get(11)?.parse().ok()?;
                let stime: f64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) / 100.0)
            });
        Self {
            resident_bytes,
            cpu_seconds,
        }
    }
}

//! `POST /inserts-stream`, ksqlDB's streaming insert API (its clients send it over HTTP/2).
//!
//! The body is a JSON object naming the stream, `{"target": "orders"}`, then one JSON object
//! per line, each a row keyed by column name. The answer streams one line per row, in
//! order, once the broker has the row: `{"status":"ok","seq":N}`, or
//! `{"status":"error","seq":N,"error_code":…,"message":…}` for a row that was not written
//! (the rows around it still are). A client that asks for `application/json` (and not the
//! delimited type) gets the same acknowledgements as one JSON array, as ksqlDB answers it.
//! A bad first line or a target that cannot be inserted into is an error answer before any
//! row is read.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eddy_engine::{EngineError, JsonInserter};
use eddy_topic::Payloads;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::AppState;
use crate::errors::{ApiError, BAD_REQUEST, SERVER_ERROR};

/// Content type of the answer, as ksqlDB's.
const DELIMITED: &str = "application/vnd.ksqlapi.delimited.v1";
/// Most rows written (and acknowledged) together.
const MAX_ROWS: usize = 1000;

/// `POST /inserts-stream`.
#[tracing::instrument(skip_all)]
pub(crate) async fn inserts_stream(
    axum::extract::State(state): axum::extract::State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let json_array = accept.contains("application/json") && !accept.contains(DELIMITED);
    if let Err(e) = state.serving().and_then(|()| state.refuse_if_headless()) {
        return e.into_response();
    }
    let mut lines = Lines::new(body.into_data_stream(), state.config.max_request_bytes);
    let target = match target(&mut lines).await {
        Ok(target) => target,
        Err(e) => return e.into_response(),
    };
    // The target is checked, and its producer made, before the answer starts.
    let engine = Arc::clone(&state.engine);
    let opened = crate::blocking(move || engine.json_inserter(&target)).await;
    let inserter = match opened {
        Ok(Ok(inserter)) => inserter,
        Ok(Err(e)) => return ApiError::engine(&e).into_response(),
        Err(e) => {
            tracing::error!("opening an insert stream failed: {e}");
            return ApiError::generic(SERVER_ERROR, "opening the insert stream was interrupted")
                .into_response();
        }
    };
    let inserting = Inserting {
        inserter: Some(inserter),
        lines,
        seq: 0,
        done: false,
        json_array,
        closed: false,
    };
    let stream = futures::stream::unfold(inserting, |mut s| async move {
        let chunk = s.next_acks().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    });
    let mut response = Body::from_stream(stream).into_response();
    let content_type = if json_array {
        "application/json"
    } else {
        DELIMITED
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The target stream named by the body's first line.
async fn target<S>(lines: &mut Lines<S>) -> Result<String, ApiError>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    let first = match lines.next_line().await {
        Some(Ok(line)) => line,
        Some(Err(e)) => return Err(ApiError::bad_request(e)),
        None => {
            return Err(ApiError::bad_request(
                "The request body is empty: it must start with {\"target\": \"<stream>\"}.",
            ));
        }
    };
    match serde_json::from_slice::<Value>(&first) {
        Ok(Value::Object(header)) => match header.get("target") {
            Some(Value::String(t)) if !t.trim().is_empty() => Ok(t.trim().to_string()),
            _ => Err(ApiError::bad_request(
                "The first line of the request body has no 'target' string (the stream to \
                 insert into).",
            )),
        },
        _ => Err(ApiError::bad_request(
            "The first line of the request body must be a JSON object: {\"target\": \"<stream>\"}.",
        )),
    }
}

/// The answer being streamed.
struct Inserting<S> {
    /// Lent to a blocking task while it writes (the write waits for the broker); gone if
    /// that task died.
    inserter: Option<JsonInserter>,
    lines: Lines<S>,
    /// The sequence number of the next row.
    seq: u64,
    done: bool,
    /// Answer one JSON array rather than one line per row.
    json_array: bool,
    /// The array's closing bracket was sent.
    closed: bool,
}

impl<S> Inserting<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    /// The acknowledgements of the next rows, or `None` once the body has ended.
    async fn next_acks(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut rows = Payloads::new();
        let mut unreadable = None;
        // The rows already received, at least one (or the end of the body).
        while rows.len() < MAX_ROWS {
            let next = if rows.is_empty() {
                self.lines.next_line().await
            } else {
                match self.lines.ready_line() {
                    Some(line) => Some(line),
                    None => break,
                }
            };
            match next {
                Some(Ok(line)) => rows.push(Some(&line)),
                Some(Err(reason)) => {
                    // An unreadable body ends the answer after what came before.
                    self.done = true;
                    unreadable = Some(reason);
                    break;
                }
                None => {
                    self.done = true;
                    break;
                }
            }
        }
        let first_seq = self.seq;
        let mut out = Vec::new();
        if !rows.is_empty() {
            let n = rows.len();
            match self.insert(rows).await {
                Ok(outcomes) => {
                    for outcome in outcomes {
                        self.ack(&mut out, outcome.map_err(|m| (BAD_REQUEST, m)));
                    }
                }
                Err(e) => {
                    let api = ApiError::engine(&e);
                    for _ in 0..n {
                        self.ack(&mut out, Err((api.code(), api.message().to_string())));
                    }
                }
            }
        }
        if let Some(reason) = unreadable {
            self.ack(&mut out, Err((BAD_REQUEST, reason)));
        }
        if self.json_array {
            if first_seq == 0 && !out.is_empty() {
                // The array's first element opens it instead of following a comma.
                out[0] = b'[';
            }
            if self.done && !self.closed {
                self.closed = true;
                if self.seq == 0 {
                    out.extend_from_slice(b"[");
                }
                out.extend_from_slice(b"]");
            }
        }
        if out.is_empty() && self.done {
            return None;
        }
        Some(Bytes::from(out))
    }

    /// Writes `rows` off the async workers.
    async fn insert(&mut self, rows: Payloads) -> Result<Vec<Result<(), String>>, EngineError> {
        let mut inserter = self.inserter.take().ok_or_else(|| {
            EngineError::Internal("an earlier insert of this stream was interrupted".into())
        })?;
        let (inserter, outcomes) = crate::blocking(move || {
            let outcomes = inserter.insert(&rows);
            (inserter, outcomes)
        })
        .await
        .map_err(|e| EngineError::Internal(format!("the insert was interrupted: {e}")))?;
        self.inserter = Some(inserter);
        outcomes
    }

    /// Appends the acknowledgement line of the next row.
    fn ack(&mut self, out: &mut Vec<u8>, outcome: Result<(), (u32, String)>) {
        let line = match outcome {
            Ok(()) => json!({"status": "ok", "seq": self.seq}),
            Err((code, message)) => json!({
                "status": "error",
                "seq": self.seq,
                "error_code": code,
                "message": message,
            }),
        };
        self.seq += 1;
        if self.json_array {
            out.push(b',');
            out.extend_from_slice(line.to_string().as_bytes());
        } else {
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
    }
}

/// The non-blank lines of a streamed body.
struct Lines<S> {
    body: S,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    start: usize,
    ended: bool,
    /// The longest line accepted.
    limit: usize,
}

impl<S> Lines<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    fn new(body: S, limit: usize) -> Self {
        Self {
            body,
            buf: Vec::new(),
            start: 0,
            ended: false,
            limit,
        }
    }

    /// The next line, waiting for the body; `None` at its end.
    async fn next_line(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            if let Some(line) = self.ready_line() {
                return Some(line);
            }
            if self.ended {
                return None;
            }
            match self.body.next().await {
                Some(Ok(bytes)) => {
                    self.buf.drain(..self.start);
                    self.start = 0;
                    self.buf.extend_from_slice(&bytes);
                }
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(format!("The request body could not be read: {e}")));
                }
                None => self.ended = true,
            }
        }
    }

    /// The next line if the body has already delivered all of it (at its end, whatever
    /// is left); `None` if the next line is still incomplete or there is none.
    fn ready_line(&mut self) -> Option<Result<Vec<u8>, String>> {
        loop {
            let rest = &self.buf[self.start..];
            let (len, used) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (i, i + 1),
                None if self.ended && !rest.is_empty() => (rest.len(), rest.len()),
                None if rest.len() <= self.limit => return None,
                // Incomplete, and already too long.
                None => (rest.len(), rest.len()),
            };
            if len > self.limit {
                self.ended = true;
                self.start = self.buf.len();
                return Some(Err(format!(
                    "A line of the request body is longer than the server accepts ({} bytes).",
                    self.limit
                )));
            }
            let line = rest[..len].trim_ascii().to_vec();
            self.start += used;
            if !line.is_empty() {
                return Some(Ok(line));
            }
        }
    }
}

//! `PRINT 'topic' [FROM BEGINNING] [INTERVAL n] [LIMIT n]` over `/query`: a topic's raw
//! records as ksqlDB prints them, one line each, after a line naming the key and value
//! formats it guessed:
//!
//! ```text
//! Key format: KAFKA_INT
//! Value format: JSON
//! rowtime: 2024/01/01 00:00:00.000 Z, key: 1, value: {"a":1}, partition: 0
//! ```

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use eddy_engine::TopicPrint;
use eddy_topic::RawBatch;

use crate::AppState;
use crate::errors::{ApiError, SERVER_ERROR};

/// How often an idle PRINT sends a newline to find out whether its client is there.
const HEARTBEAT: Duration = Duration::from_millis(250);

/// What PRINT was asked.
pub(crate) struct PrintRequest {
    pub topic: String,
    pub from_beginning: bool,
    pub interval: Option<u64>,
    pub limit: Option<u64>,
    pub text: String,
}

/// Starts printing and answers with the stream of lines.
pub(crate) async fn print(state: &Arc<AppState>, req: PrintRequest) -> Result<Response, ApiError> {
    let engine = Arc::clone(&state.engine);
    let topic = req.topic.clone();
    let from_beginning = req.from_beginning;
    let started = crate::blocking(move || engine.print_topic(&topic, from_beginning))
        .await
        .map_err(|e| {
            tracing::error!("PRINT start failed: {e}");
            ApiError::generic(SERVER_ERROR, "starting PRINT was interrupted")
        })?;
    let reader = started.map_err(|e| ApiError::statement(&e, &req.text, Vec::new()))?;
    let printing = Printing {
        reader,
        interval: req.interval.unwrap_or(1).max(1),
        limit: req.limit,
        seen: 0,
        printed: 0,
        announced: false,
        pending: VecDeque::new(),
        finished: req.limit == Some(0),
    };
    let stream = futures::stream::unfold(printing, |mut p| async move {
        let chunk = p.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), p))
    });
    let mut response = Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}

struct Printing {
    reader: TopicPrint,
    interval: u64,
    limit: Option<u64>,
    seen: u64,
    printed: u64,
    announced: bool,
    pending: VecDeque<Bytes>,
    finished: bool,
}

impl Printing {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(b);
            }
            if self.finished {
                return None;
            }
            tokio::select! {
                batch = self.reader.records.recv() => match batch {
                    Some(batch) => self.take(&batch),
                    None => self.finished = true,
                },
                () = tokio::time::sleep(HEARTBEAT) => return Some(Bytes::from_static(b"\n")),
            }
        }
    }

    fn take(&mut self, batch: &RawBatch) {
        for i in 0..batch.len() {
            if self.limit.is_some_and(|l| self.printed >= l) {
                self.finished = true;
                return;
            }
            self.seen += 1;
            if !(self.seen - 1).is_multiple_of(self.interval) {
                continue;
            }
            let key = batch.keys.get(i);
            let value = batch.values.get(i);
            if !self.announced {
                self.announced = true;
                self.pending.push_back(Bytes::from(format!(
                    "Key format: {}\nValue format: {}\n",
                    format_name(key, true),
                    format_name(value, false)
                )));
            }
            self.pending.push_back(Bytes::from(format!(
                "rowtime: {}, key: {}, value: {}, partition: {}\n",
                rowtime(batch.timestamps[i]),
                render(key, true),
                render(value, false),
                batch.partitions[i]
            )));
            self.printed += 1;
        }
        if self.limit.is_some_and(|l| self.printed >= l) {
            self.finished = true;
        }
    }
}

/// ksqlDB's rendering of a record timestamp: `2024/01/01 00:00:00.000 Z`.
fn rowtime(ms: i64) -> String {
    arrow::temporal_conversions::timestamp_ms_to_datetime(ms)
        .map(|t| t.format("%Y/%m/%d %H:%M:%S%.3f Z").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// The format a key or value most likely has.
fn format_name(bytes: Option<&[u8]>, is_key: bool) -> &'static str {
    match bytes {
        None => "¯\\_(ツ)_/¯ - no data processed",
        Some(b) if is_key && b.len() == 4 => "KAFKA_INT",
        Some(b) if is_key && b.len() == 8 => "KAFKA_BIGINT",
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) if serde_json::from_str::<serde_json::Value>(s).is_ok() => "JSON",
            Ok(_) => "KAFKA_STRING",
            Err(_) => "KAFKA_BYTES",
        },
    }
}

fn render(bytes: Option<&[u8]>, is_key: bool) -> String {
    match bytes {
        None => "<null>".into(),
        Some(b) if is_key && b.len() == 4 => {
            i32::from_be_bytes([b[0], b[1], b[2], b[3]]).to_string()
        }
        Some(b) if is_key && b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_be_bytes(a).to_string()
        }
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

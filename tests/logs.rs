//! Logs for machines and for files: `--log-format json` writes one JSON object per line
//! with the fields of its spans (the query, the request); the text format has no colour
//! codes when standard error is not a terminal.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::{Broker, BrokerKind, Server};
use serde_json::Value;

/// Waits until the log file holds a line for which `wanted` holds; returns the whole log.
async fn await_line(path: &Path, wanted: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path)?;
        if text.lines().any(&wanted) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            bail!("no such line in the log:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const STATEMENTS: &str = "CREATE STREAM l_in (id INT KEY, v INT) \
       WITH (KAFKA_TOPIC='l_in', VALUE_FORMAT='JSON', PARTITIONS=1);
     CREATE STREAM l_out AS SELECT * FROM l_in;";

#[tokio::test]
async fn json_logs_carry_their_spans_and_text_logs_no_colours() -> Result<()> {
    let broker = Broker::start(BrokerKind::DevKafka)?;
    let dir = tempfile::tempdir()?;

    let json_log = dir.path().join("json.log");
    let server = Server::start_with_stderr(
        &broker.bootstrap,
        &dir.path().join("json-data"),
        "json_logs",
        &[("EDDY_LOG_FORMAT", "json")],
        Stdio::from(std::fs::File::create(&json_log)?),
    )
    .await?;
    let created = server.ksql_ok(STATEMENTS).await?;
    let query_id = created[1]["commandStatus"]["queryId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(query_id.starts_with("CSAS_L_OUT"), "{created}");
    let text = await_line(&json_log, |line| {
        line.contains("\"query_id\"") && line.contains(&query_id)
    })
    .await?;
    let lines: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
        assert!(line["fields"]["message"].is_string(), "{line}");
    }
    let spans = |line: &Value| line["spans"].as_array().cloned().unwrap_or_default();
    assert!(
        lines
            .iter()
            .any(|l| spans(l).iter().any(|s| s["query_id"] == query_id.as_str())),
        "no line in the query's span:\n{text}"
    );
    // The statement's own lines (its topic created) are in the request's span.
    assert!(
        lines.iter().any(|l| {
            let spans = spans(l);
            spans
                .iter()
                .any(|s| s["name"] == "request" && s["request_id"].is_u64())
                && spans.iter().any(|s| s["name"] == "statement")
        }),
        "no line in a request's span:\n{text}"
    );
    drop(server);

    let text_log = dir.path().join("text.log");
    let server = Server::start_with_stderr(
        &broker.bootstrap,
        &dir.path().join("text-data"),
        "text_logs",
        &[],
        Stdio::from(std::fs::File::create(&text_log)?),
    )
    .await?;
    server.ksql_ok(&STATEMENTS.replace("l_", "t_")).await?;
    let text = await_line(&text_log, |line| line.contains("started CSAS_T_OUT")).await?;
    assert!(!text.contains('\u{1b}'), "colour codes in a file:\n{text}");
    assert!(text.contains(" INFO "), "{text}");
    Ok(())
}

//! Running one REST query-validation case (`../shared/ksql-rqtt`): the statements go to a
//! real Eddy REST server (the same [`eddy_server::serve`] as `eddy server`, on a loopback
//! port, over the case's in-memory topics) and its answers are compared with the case's
//! `responses` or `expectedError`, as ksqlDB's `RestTestExecutor` does:
//!
//! 1. the statements before the first query go to `/ksql` in one request; every entity of
//!    the answer is one `admin` response;
//! 2. the inputs are produced and every persistent query processes them (for cases with
//!    `waitForActivePushQuery`, only once the first push query runs);
//! 3. each query goes to `/query`; its streamed answer (header, rows, final message) is one
//!    `query` response. A push query is read until it ends, or until it has answered as
//!    many rows as expected, within a deadline;
//! 4. records expected on topics (`outputs`) are compared as in QTT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eddy_engine::memory::MemoryTopics;
use eddy_engine::{CommandLog, Engine};
use eddy_server::{AppState, ServerConfig};
use eddy_sql::ast::Statement;
use serde_json::{Map, Value, json};

use super::case::{Outcome, SERVICE_ID, produce_inputs};
use super::codec::{TopicLayout, json_eq};
use super::compare;
use super::model::{Case, ExpectedError, RestExpectations};

/// How long a push query is read before its answer is compared as it is.
const PUSH_DEADLINE: Duration = Duration::from_secs(5);

/// One statement of a case, as the harness sends it.
enum Step {
    /// Statements for `/ksql`, sent together.
    Admin(Vec<String>),
    /// A query for `/query`; `push` for `EMIT CHANGES`/`EMIT FINAL`.
    Query { sql: String, push: bool },
}

/// What a REST request answered.
enum Answer {
    /// 2xx: the answer's JSON items (`/ksql`: its entities; `/query`: header, rows, final
    /// message).
    Ok(Vec<Value>),
    /// An error status and the error entity.
    Error { status: u16, body: Value },
}

/// Runs a REST case on a fresh `engine` over `topics`.
pub fn run(
    case: &Case,
    rest: &RestExpectations,
    engine: Arc<Engine>,
    topics: &MemoryTopics,
    cancel: &AtomicBool,
) -> Outcome {
    if rest.proto_answers {
        return Outcome::skip(
            "answers in ksqlDB's protobuf answer format (application/vnd.ksql.v1+protobuf), \
             which Eddy does not serve yet",
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return Outcome::fail(format!("could not start a runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        let run = Run::start(case, rest, engine, topics, cancel).await?;
        run.steps().await
    });
    runtime.shutdown_background();
    match outcome {
        Ok(()) => Outcome::pass(),
        Err(why) => Outcome::fail(why),
    }
}

/// A case in progress: its server and what has been answered so far.
struct Run<'a> {
    case: &'a Case,
    rest: &'a RestExpectations,
    engine: Arc<Engine>,
    topics: &'a MemoryTopics,
    cancel: &'a AtomicBool,
    base: String,
    client: reqwest::Client,
    properties: Map<String, Value>,
}

impl<'a> Run<'a> {
    async fn start(
        case: &'a Case,
        rest: &'a RestExpectations,
        engine: Arc<Engine>,
        topics: &'a MemoryTopics,
        cancel: &'a AtomicBool,
    ) -> Result<Run<'a>, String> {
        for t in &case.topics {
            if let Some(p) = t.partitions {
                engine
                    .topics()
                    .admin()
                    .create_topic(&t.name, p, 1)
                    .map_err(|e| format!("could not create topic {}: {e}", t.name))?;
            }
        }
        let commands = CommandLog::open(Arc::clone(engine.topics()), SERVICE_ID, 1)
            .map_err(|e| format!("could not open the command log: {e}"))?;
        let state = Arc::new(AppState::new(
            Arc::clone(&engine),
            Arc::new(commands),
            env!("CARGO_PKG_VERSION").into(),
            ServerConfig::default(),
        ));
        state
            .replay(Duration::from_secs(5))
            .map_err(|e| format!("could not replay the empty command log: {e}"))?;
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| format!("could not listen: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("could not listen: {e}"))?;
        tokio::spawn(eddy_server::serve(listener, state));
        // ksqlDB's test server reads every topic from the start; a case may say otherwise.
        let mut properties = Map::from_iter([("auto.offset.reset".into(), json!("earliest"))]);
        for (k, v) in &case.properties {
            properties.insert(k.clone(), Value::String(v.clone()));
        }
        Ok(Run {
            case,
            rest,
            engine,
            topics,
            cancel,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            properties,
        })
    }

    /// Sends every statement, compares the answers, then the output topics.
    async fn steps(&self) -> Result<(), String> {
        let mut expected = self.rest.responses.iter();
        let mut inputs_done = false;
        for (i, step) in split(&self.case.statements).into_iter().enumerate() {
            if self.cancel.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            if i > 0 && !inputs_done && !self.rest.wait_for_push_query {
                self.produce().await?;
                inputs_done = true;
            }
            let answer = match &step {
                Step::Admin(statements) => self.ksql(&statements.join("\n")).await?,
                Step::Query { sql, push } => {
                    let feed = *push && self.rest.wait_for_push_query && !inputs_done;
                    inputs_done |= feed;
                    let wanted = match expected.clone().next() {
                        Some(Value::Object(o)) => {
                            o.get("query").and_then(Value::as_array).map_or(0, Vec::len)
                        }
                        _ => 0,
                    };
                    self.query(sql, *push, feed, wanted).await?
                }
            };
            let items = match answer {
                Answer::Ok(items) => items,
                Answer::Error { status, body } => {
                    return self.error(status, &body);
                }
            };
            match step {
                Step::Admin(_) => {
                    for (n, entity) in items.iter().enumerate() {
                        let Some(want) = expected.next() else {
                            // A case that expects an error lists no answers before it.
                            if self.case.expected_error.is_some() {
                                continue;
                            }
                            return Err(format!(
                                "unexpected answer entity {}: {}",
                                n + 1,
                                clip(entity)
                            ));
                        };
                        compare_admin(want, entity)?;
                    }
                }
                Step::Query { sql, push } => {
                    let Some(want) = expected.next() else {
                        return Err(match &self.case.expected_error {
                            Some(e) => format!(
                                "expected an error containing \"{}\", but {sql} answered {}",
                                e.message,
                                clip(&Value::Array(items))
                            ),
                            None => format!("unexpected answer to {sql}"),
                        });
                    };
                    compare_query(want, &items, push).map_err(|e| format!("{sql}: {e}"))?;
                }
            }
        }
        if !inputs_done {
            self.produce().await?;
        }
        if let Some(e) = &self.case.expected_error {
            return Err(format!(
                "expected an error containing \"{}\", but every statement succeeded",
                e.message
            ));
        }
        if let Some(missing) = expected.next() {
            return Err(format!("no answer for the expected {}", clip(missing)));
        }
        self.outputs()
    }

    /// Produces the case's inputs and lets every persistent query process them.
    async fn produce(&self) -> Result<(), String> {
        tokio::task::block_in_place(|| {
            let catalog = self.engine.catalog();
            produce_inputs(self.case, &self.engine, self.topics, &catalog, self.cancel).map(|_| ())
        })
    }

    /// Sends statements to `/ksql`.
    async fn ksql(&self, sql: &str) -> Result<Answer, String> {
        let body = json!({"ksql": sql, "streamsProperties": self.properties});
        let response = self
            .client
            .post(format!("{}/ksql", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("/ksql: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("/ksql: {e}"))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("/ksql answered no JSON ({e}): {text}"))?;
        if status >= 300 {
            return Ok(Answer::Error { status, body });
        }
        match body {
            Value::Array(entities) => Ok(Answer::Ok(entities)),
            other => Err(format!("/ksql answered no entity list: {}", clip(&other))),
        }
    }

    /// Sends a query to `/query` and reads its answer: to its end, or for a push query until
    /// `wanted` items came or the deadline passed. With `feed`, the inputs are produced once
    /// the query runs.
    async fn query(
        &self,
        sql: &str,
        push: bool,
        feed: bool,
        wanted: usize,
    ) -> Result<Answer, String> {
        let body = json!({"ksql": sql, "streamsProperties": self.properties});
        let mut response = self
            .client
            .post(format!("{}/query", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("/query: {e}"))?;
        let status = response.status().as_u16();
        if status >= 300 {
            let text = response.text().await.map_err(|e| format!("/query: {e}"))?;
            let body = serde_json::from_str(&text)
                .map_err(|e| format!("/query answered no JSON ({e}): {text}"))?;
            return Ok(Answer::Error { status, body });
        }
        if feed {
            self.produce().await?;
        }
        let deadline = Instant::now() + PUSH_DEADLINE;
        let mut text = String::new();
        loop {
            if push && wanted > 0 && items(&text).is_some_and(|i| i.len() >= wanted) {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, response.chunk()).await {
                Err(_) if push => break,
                Err(_) => {
                    return Err(format!(
                        "/query: no end of the answer after {PUSH_DEADLINE:?}"
                    ));
                }
                Ok(Err(e)) => return Err(format!("/query: {e}")),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
        items(&text)
            .map(Answer::Ok)
            .ok_or_else(|| format!("/query answered no JSON array: {text}"))
    }

    /// The outcome of a statement that failed with `status` and `body`.
    fn error(&self, status: u16, body: &Value) -> Result<(), String> {
        let Some(want) = &self.case.expected_error else {
            return Err(format!("HTTP {status}: {}", clip(body)));
        };
        error_matches(want, status, body)
    }

    /// Compares the records expected on topics.
    fn outputs(&self) -> Result<(), String> {
        let catalog = self.engine.catalog();
        let mut order: Vec<&str> = Vec::new();
        for r in &self.case.outputs {
            if !order.contains(&r.topic.as_str()) {
                order.push(&r.topic);
            }
        }
        for topic in order {
            let expected: Vec<_> = self
                .case
                .outputs
                .iter()
                .filter(|r| r.topic == topic)
                .collect();
            let actual: Vec<_> = self
                .topics
                .records(topic)
                .into_iter()
                .map(|(_, r)| r)
                .collect();
            let layout = TopicLayout::of(
                topic,
                &catalog,
                &self.case.topics,
                &self.engine.config().schema_registry,
            );
            compare::topic_records(topic, &expected, &actual, &layout)?;
        }
        Ok(())
    }
}

/// The case's statements in the order they are sent: runs of statements other than queries
/// go to `/ksql` together, each query on its own. A statement that does not parse is sent
/// to `/ksql`, whose answer is then the error the case expects.
fn split(statements: &[String]) -> Vec<Step> {
    let mut steps = Vec::new();
    for sql in statements {
        let query = eddy_sql::parse(sql)
            .ok()
            .and_then(|parsed| match parsed.as_slice() {
                [one] => match &one.statement {
                    Statement::Query(q) => Some(q.emit.is_some()),
                    _ => None,
                },
                _ => None,
            });
        match (query, steps.last_mut()) {
            (Some(push), _) => steps.push(Step::Query {
                sql: sql.clone(),
                push,
            }),
            (None, Some(Step::Admin(run))) => run.push(sql.clone()),
            (None, _) => steps.push(Step::Admin(vec![sql.clone()])),
        }
    }
    steps
}

/// The items of a (possibly unfinished) streamed JSON array, if it parses.
fn items(text: &str) -> Option<Vec<Value>> {
    let trimmed = text.trim();
    let closed = if trimmed.ends_with(']') {
        trimmed.to_string()
    } else {
        format!("{}]", trimmed.trim_end_matches(','))
    };
    match serde_json::from_str(&closed).ok()? {
        Value::Array(items) => Some(items),
        _ => None,
    }
}

/// An `admin` response: the entity's `@type` and every other field the case gives.
fn compare_admin(want: &Value, entity: &Value) -> Result<(), String> {
    let Some(want) = want.get("admin").and_then(Value::as_object) else {
        return Err(format!(
            "expected {}, got the statement answer {}",
            clip(want),
            clip(entity)
        ));
    };
    for (field, value) in want {
        let got = entity.get(field).unwrap_or(&Value::Null);
        if !json_eq(value, got) {
            return Err(format!(
                "answer entity {field}: expected {value}, got {got} in {}",
                clip(entity)
            ));
        }
    }
    Ok(())
}

/// A `query` response: the header's schema (and query id prefix), the rows, the final
/// message. A pull query's rows may come in any order (ksqlDB promises none across keys
/// and partitions); a push query's come in the order they happened.
fn compare_query(want: &Value, items: &[Value], push: bool) -> Result<(), String> {
    let Some(want) = want.get("query").and_then(Value::as_array) else {
        return Err(format!("expected {}, got a query answer", clip(want)));
    };
    let (want_head, want_rest) = split_header(want);
    let (head, rest) = split_header(items);
    if let Some(want_head) = want_head {
        let head = head.ok_or("the answer has no header")?;
        if let Some(schema) = want_head.get("schema").and_then(Value::as_str) {
            let got = head
                .get("schema")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if got != schema {
                return Err(format!("header schema: expected {schema}, got {got}"));
            }
        }
        if let Some(prefix) = want_head.get("queryId|starts_with").and_then(Value::as_str) {
            let got = head
                .get("queryId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !got.starts_with(prefix) {
                return Err(format!("header queryId: expected {prefix}…, got {got}"));
            }
        }
    }
    let in_order =
        want_rest.len() == rest.len() && want_rest.iter().zip(rest).all(|(w, g)| item_eq(w, g));
    if in_order || (!push && same_items(want_rest, rest)) {
        return Ok(());
    }
    Err(format!(
        "expected {}, got {}",
        clip(&Value::Array(want_rest.to_vec())),
        clip(&Value::Array(rest.to_vec()))
    ))
}

fn split_header(items: &[Value]) -> (Option<&Value>, &[Value]) {
    match items.split_first() {
        Some((first, rest)) if first.get("header").is_some() => (first.get("header"), rest),
        _ => (None, items),
    }
}

/// The same items in any order.
fn same_items(want: &[Value], got: &[Value]) -> bool {
    if want.len() != got.len() {
        return false;
    }
    let mut used = vec![false; got.len()];
    want.iter().all(|w| {
        let found = got
            .iter()
            .enumerate()
            .find(|(i, g)| !used[*i] && item_eq(w, g))
            .map(|(i, _)| i);
        found.map(|i| used[i] = true).is_some()
    })
}

/// A row (its columns, and its tombstone flag if the case gives one) or a final message.
fn item_eq(want: &Value, got: &Value) -> bool {
    match (want.get("row"), got.get("row")) {
        (Some(w), Some(g)) => {
            let tombstone = |v: &Value| v.get("tombstone").and_then(Value::as_bool) == Some(true);
            json_eq(
                w.get("columns").unwrap_or(&Value::Null),
                g.get("columns").unwrap_or(&Value::Null),
            ) && tombstone(w) == tombstone(g)
        }
        (None, None) => json_eq(want, got),
        _ => false,
    }
}

/// Whether an error answer is the expected one: its message contains the expected text, and
/// its status and entity type are the expected ones where the case gives them. ksqlDB's
/// `KsqlStatementErrorMessage` is an error that names its statement (`statementText`); its
/// parent `KsqlErrorMessage` is any error.
fn error_matches(want: &ExpectedError, status: u16, body: &Value) -> Result<(), String> {
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mismatch = |what: String| {
        Err(format!(
            "expected an error containing \"{}\"{}, got HTTP {status} {}: {what}",
            want.message,
            want.status
                .map(|s| format!(" with HTTP {s}"))
                .unwrap_or_default(),
            clip(body)
        ))
    };
    if !message.contains(&want.message) {
        return mismatch("the message differs".into());
    }
    if want.status.is_some_and(|s| s != status) {
        return mismatch("the status differs".into());
    }
    if let Some(entity) = &want.entity
        && entity.ends_with(".KsqlStatementErrorMessage")
        && body.get("statementText").is_none()
    {
        return mismatch("the error names no statement (statementText)".into());
    }
    Ok(())
}

fn clip(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 400 {
        let mut end = 400;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_unfinished_streamed_array() {
        let text = "[{\"header\":{\"schema\":\"`A` INTEGER\"}},\n{\"row\":{\"columns\":[1]}},\n";
        assert_eq!(items(text).map(|i| i.len()), Some(2));
        assert_eq!(items("[{\"header\":{}}]").map(|i| i.len()), Some(1));
        assert_eq!(items("[{\"hea"), None);
    }

    #[test]
    fn pull_rows_match_in_any_order_push_rows_in_order() {
        let want = json!({"query": [
            {"header": {"schema": "`K` STRING KEY"}},
            {"row": {"columns": ["a"]}},
            {"row": {"columns": ["b"]}}
        ]});
        let got = [
            json!({"header": {"queryId": "q", "schema": "`K` STRING KEY"}}),
            json!({"row": {"columns": ["b"]}}),
            json!({"row": {"columns": ["a"]}}),
        ];
        assert!(compare_query(&want, &got, false).is_ok());
        assert!(compare_query(&want, &got, true).is_err());
        assert!(compare_query(&want, &got[..2], false).is_err());
    }

    #[test]
    fn statement_errors_must_name_their_statement() {
        let want = ExpectedError {
            message: "not found".into(),
            entity: Some("io.confluent.ksql.rest.entity.KsqlStatementErrorMessage".into()),
            status: Some(400),
        };
        let with_statement = json!({"message": "X not found", "statementText": "SELECT 1;"});
        assert!(error_matches(&want, 400, &with_statement).is_ok());
        assert!(error_matches(&want, 404, &with_statement).is_err());
        assert!(error_matches(&want, 400, &json!({"message": "X not found"})).is_err());
        assert!(error_matches(&want, 400, &json!({"message": "other"})).is_err());
    }

    #[test]
    fn queries_are_sent_alone_and_other_statements_together() {
        let steps = split(&[
            "CREATE STREAM S (A INT) WITH (kafka_topic='t', value_format='JSON');".into(),
            "CREATE STREAM T AS SELECT * FROM S;".into(),
            "SELECT * FROM T EMIT CHANGES;".into(),
            "SELECT * FROM T;".into(),
        ]);
        assert!(matches!(&steps[0], Step::Admin(s) if s.len() == 2));
        assert!(matches!(&steps[1], Step::Query { push: true, .. }));
        assert!(matches!(&steps[2], Step::Query { push: false, .. }));
        assert_eq!(steps.len(), 3);
    }
}

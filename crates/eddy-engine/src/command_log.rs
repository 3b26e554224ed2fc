//! The command log: every statement that changes the catalog or the running queries is
//! appended, once it has succeeded, to the topic `_eddy_<service id>_commands` (one
//! partition); a server that starts replays it from the beginning to rebuild its catalog and
//! restart its persistent queries, which then resume from their committed offsets.
//!
//! The log is read up to a marker record the reader writes first, so replay needs no end
//! offsets from the broker and works the same over Kafka and in-memory topics.
//!
//! After its replay a server follows the log: [`Engine::follow`] (called periodically)
//! executes the commands other servers of the service appended, in log order and with the
//! query ids they were given, and [`Engine::execute_logged`] first catches up with the log,
//! then executes and appends its statement, then reads the log up to its own record, whose
//! offset is the statement's sequence number. Each record names the server that appended it
//! (`origin`), so a server never executes its own records twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eddy_sql::ast::{ParsedStatement, Statement, TerminateTarget};
use eddy_sql::catalog::SourceKind;
use eddy_topic::{Payloads, Position, RawBatch, RecordSink, RecordSource, TopicIo};
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, Properties};
use crate::error::EngineError;
use crate::results::StatementResult;

/// How long reading the records other servers appended may take.
const FOLLOW_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a sink may take to acknowledge a command.
const APPEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The key of every record: one key keeps them in one partition, in order, even on a broker
/// that gave the topic more partitions than asked (the dev broker gives every topic four).
const RECORD_KEY: &[u8] = b"eddy-command";

/// One recorded statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// ksqlDB's command id, e.g. ``stream/`REVIEWS`/create``.
    #[serde(default)]
    pub command_id: String,
    /// The statement as the user wrote it (without the trailing `;`).
    pub statement: String,
    /// The properties in force when it ran (`auto.offset.reset` …).
    #[serde(default)]
    pub streams_properties: Properties,
    /// The query the statement started, so replay gives it the same id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<String>,
    /// Which server appended it (`<server>/<n>`), so that it does not execute it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// A record of the command topic: a command, or a reader's marker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum LogRecord {
    Marker {
        #[serde(rename = "replayMarker")]
        replay_marker: String,
    },
    Command(Command),
}

/// What executing a statement through the log gave.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The statement's result.
    pub result: StatementResult,
    /// Offset of its record in the command topic, when it was recorded.
    pub sequence: Option<i64>,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct ReplayReport {
    /// Commands re-executed successfully.
    pub applied: usize,
    /// Commands that failed this time (logged and skipped).
    pub failed: usize,
    /// Offset of the last command, or -1 when the log is empty.
    pub last_sequence: i64,
}

struct Writer {
    /// `None` once [`CommandLog::close`]d.
    sink: Option<Box<dyn RecordSink>>,
    /// Offset the next record gets (valid once the log has been read), for an engine that
    /// does not follow the log.
    next_offset: i64,
    /// Records this server appended so far.
    appended: u64,
}

/// Where this server is in the log, once it has been replayed.
#[derive(Default)]
struct Follow {
    /// The reader, left where the last read stopped.
    reader: Option<Box<dyn RecordSource>>,
    /// Next offset to read, by partition (one partition holds every record).
    next: BTreeMap<i32, i64>,
    /// Offset of the last command executed (or skipped as this server's own).
    applied: i64,
}

/// The command topic of one service id.
pub struct CommandLog {
    topics: Arc<dyn TopicIo>,
    topic: String,
    /// This server's name in the records it appends.
    origin: String,
    writer: Mutex<Writer>,
    follow: Mutex<Follow>,
}

/// A name for this log's server that no other server (or other log of this process) has.
fn unique_origin() -> String {
    static LOGS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = LOGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}-{nanos:x}-{n}", std::process::id())
}

impl std::fmt::Debug for CommandLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandLog")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// Whether a statement is written to the command log: what changes the catalog or the set
/// of persistent queries (as ksqlDB's command topic), not listings, inserts of values or
/// transient queries.
pub fn is_recorded(stmt: &Statement) -> bool {
    matches!(
        stmt,
        Statement::CreateSource(_)
            | Statement::CreateAsSelect(_)
            | Statement::InsertSelect { .. }
            | Statement::Drop { .. }
            | Statement::Terminate(_)
            | Statement::Pause(_)
            | Statement::Resume(_)
            | Statement::Alter { .. }
            | Statement::CreateType { .. }
            | Statement::DropType { .. }
    )
}

/// ksqlDB's command id of a statement, e.g. ``stream/`REVIEWS`/create``.
pub fn command_id(stmt: &ParsedStatement) -> String {
    let kind_word = |kind: SourceKind| match kind {
        SourceKind::Stream => "stream",
        SourceKind::Table => "table",
    };
    match &stmt.statement {
        Statement::CreateSource(c) => format!("{}/`{}`/create", kind_word(c.kind), c.name),
        Statement::CreateAsSelect(c) => format!("{}/`{}`/create", kind_word(c.kind), c.name),
        Statement::Drop { kind, name, .. } => format!("{}/`{name}`/drop", kind_word(*kind)),
        Statement::InsertSelect { target, .. } => format!("stream/`{target}`/create"),
        Statement::Terminate(_) => "terminate/query/execute".into(),
        Statement::Pause(_) => "pause/query/execute".into(),
        Statement::Alter { kind, name, .. } => format!("{}/`{name}`/alter", kind_word(*kind)),
        Statement::CreateType { name, .. } => format!("type/`{name}`/create"),
        Statement::DropType { name, .. } => format!("type/`{name}`/drop"),
        Statement::Resume(_) => "resume/query/execute".into(),
        _ => "statement/execute".into(),
    }
}

pub(crate) fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl CommandLog {
    /// The command log of `service_id`, creating its topic if missing.
    pub fn open(
        topics: Arc<dyn TopicIo>,
        service_id: &str,
        replicas: i16,
    ) -> Result<Self, EngineError> {
        let topic = format!("_eddy_{service_id}_commands");
        topics.admin().create_topic(&topic, 1, replicas)?;
        let sink = topics.sink(&topic)?;
        Ok(Self {
            topics,
            topic,
            origin: unique_origin(),
            writer: Mutex::new(Writer {
                sink: Some(sink),
                next_offset: 0,
                appended: 0,
            }),
            follow: Mutex::new(Follow {
                applied: -1,
                ..Follow::default()
            }),
        })
    }

    fn follow_lock(&self) -> MutexGuard<'_, Follow> {
        self.follow.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes this server's clients of the command topic (its producer and its follower's
    /// reader), as before the topic is deleted: brokers may answer clients that still hold
    /// a deleted topic in ways librdkafka does not survive. [`reopen`](Self::reopen) undoes
    /// it.
    pub fn close(&self) {
        let mut writer = self.lock();
        let mut follow = self.follow_lock();
        writer.sink = None;
        follow.reader = None;
    }

    /// Opens the clients [`close`](Self::close) closed again; the follower goes on where
    /// it was (if it had started).
    pub fn reopen(&self) -> Result<(), EngineError> {
        let mut writer = self.lock();
        let mut follow = self.follow_lock();
        if writer.sink.is_none() {
            writer.sink = Some(self.topics.sink(&self.topic)?);
        }
        if follow.reader.is_none() && !follow.next.is_empty() {
            let positions: Vec<Position> = follow
                .next
                .iter()
                .map(|(&partition, &next_offset)| Position {
                    partition,
                    next_offset,
                })
                .collect();
            follow.reader = Some(self.topics.reader_from(&self.topic, &positions)?);
        }
        Ok(())
    }

    /// Offset of the last command this server executed (or appended), -1 before any.
    pub fn applied(&self) -> i64 {
        self.follow_lock().applied
    }

    /// Whether `command` was appended by this log's server.
    fn is_own(&self, command: &Command) -> bool {
        command
            .origin
            .as_deref()
            .and_then(|o| o.rsplit_once('/'))
            .is_some_and(|(server, _)| server == self.origin)
    }

    /// Reads the records appended since the last read, up to the end of the topic as it
    /// is now, calling `each` with every command and its offset. Does nothing before the
    /// log has been replayed (there is no reader yet).
    fn read_new(
        &self,
        follow: &mut Follow,
        timeout: Duration,
        mut each: impl FnMut(i64, Command),
    ) -> Result<(), EngineError> {
        let Some(reader) = follow.reader.as_mut() else {
            return Ok(());
        };
        let ends = self.topics.admin().end_offsets(&self.topic)?;
        let behind = |next: &BTreeMap<i32, i64>| {
            ends.iter()
                .any(|e| next.get(&e.partition).copied().unwrap_or(0) < e.next_offset)
        };
        let deadline = Instant::now() + timeout;
        let mut raw = RawBatch::default();
        while behind(&follow.next) {
            if Instant::now() > deadline {
                return Err(EngineError::Internal(format!(
                    "reading the new records of the command topic '{}' did not finish within \
                     {timeout:?}",
                    self.topic
                )));
            }
            raw.clear();
            reader.poll(&mut raw, 1000, Duration::from_millis(100))?;
            for i in 0..raw.len() {
                let (partition, offset) = (raw.partitions[i], raw.offsets[i]);
                let next = follow.next.entry(partition).or_insert(0);
                if offset < *next {
                    continue;
                }
                *next = offset + 1;
                let Some(value) = raw.values.get(i) else {
                    continue;
                };
                match serde_json::from_slice::<LogRecord>(value) {
                    Ok(LogRecord::Command(c)) => each(offset, c),
                    Ok(LogRecord::Marker { .. }) => {}
                    Err(e) => tracing::warn!(
                        offset,
                        "skipping an unreadable record of the command topic: {e}"
                    ),
                }
            }
        }
        Ok(())
    }

    /// The topic's name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(writer: &mut Writer, record: &LogRecord) -> Result<(), EngineError> {
        let value = serde_json::to_vec(record)
            .map_err(|e| EngineError::Internal(format!("encoding a command: {e}")))?;
        let mut keys = Payloads::new();
        keys.push(Some(RECORD_KEY));
        let mut values = Payloads::new();
        values.push(Some(&value));
        let sink = writer
            .sink
            .as_mut()
            .ok_or_else(|| EngineError::Internal("the command log is closed".into()))?;
        sink.send(&keys, &values, &[now_millis()])?;
        sink.flush(APPEND_TIMEOUT)?;
        Ok(())
    }

    /// Every command recorded so far, with its offset, in order. Waits at most `timeout`.
    pub fn read_all(&self, timeout: Duration) -> Result<Vec<(i64, Command)>, EngineError> {
        let mut writer = self.lock();
        let nonce = format!("{}-{:x}", std::process::id(), now_millis());
        Self::send(
            &mut writer,
            &LogRecord::Marker {
                replay_marker: nonce.clone(),
            },
        )?;
        // Read outside any consumer group: every start reads from the beginning, and never
        // waits for a rebalance or for a member of an earlier (killed) server to time out.
        let mut source = self.topics.reader(&self.topic)?;
        let deadline = Instant::now() + timeout;
        let mut commands = Vec::new();
        let mut next = BTreeMap::new();
        let mut raw = RawBatch::default();
        loop {
            if Instant::now() > deadline {
                return Err(EngineError::Internal(format!(
                    "reading the command topic '{}' did not finish within {timeout:?}",
                    self.topic
                )));
            }
            raw.clear();
            source.poll(&mut raw, 1000, Duration::from_millis(200))?;
            for i in 0..raw.len() {
                next.insert(raw.partitions[i], raw.offsets[i] + 1);
                let Some(value) = raw.values.get(i) else {
                    continue;
                };
                match serde_json::from_slice::<LogRecord>(value) {
                    Ok(LogRecord::Marker { replay_marker }) if replay_marker == nonce => {
                        writer.next_offset = raw.offsets[i] + 1;
                        // From here on the server follows the log, from the marker on (a
                        // new reader: this one may have fetched records past the marker).
                        let positions: Vec<Position> = next
                            .iter()
                            .map(|(&partition, &next_offset)| Position {
                                partition,
                                next_offset,
                            })
                            .collect();
                        let reader = self.topics.reader_from(&self.topic, &positions)?;
                        let mut follow = self.follow_lock();
                        follow.reader = Some(reader);
                        follow.next = next;
                        follow.applied = commands.last().map_or(-1, |(o, _)| *o);
                        return Ok(commands);
                    }
                    Ok(LogRecord::Marker { .. }) => {}
                    Ok(LogRecord::Command(c)) => commands.push((raw.offsets[i], c)),
                    Err(e) => tracing::warn!(
                        offset = raw.offsets[i],
                        "skipping an unreadable record of the command topic: {e}"
                    ),
                }
            }
        }
    }
}

impl Engine {
    /// Executes one statement; if it changes the catalog or the queries and succeeds, records
    /// it in `log`. Recorded statements are executed one at a time, in log order: first the
    /// commands other servers appended since this one last read the log (each reported to
    /// `applied`), then this one.
    pub fn execute_logged(
        &self,
        stmt: &ParsedStatement,
        props: &Properties,
        log: &CommandLog,
        applied: &mut dyn FnMut(i64, &ParsedStatement, &StatementResult),
    ) -> Result<Executed, EngineError> {
        if !is_recorded(&stmt.statement) {
            return Ok(Executed {
                result: self.execute(stmt, props)?,
                sequence: None,
            });
        }
        let mut writer = log.lock();
        let mut follow = log.follow_lock();
        self.apply_new(log, &mut follow, &mut *applied)?;
        let result = self.execute(stmt, props)?;
        let query_id = match (&stmt.statement, &result) {
            (
                Statement::CreateAsSelect(_) | Statement::InsertSelect { .. },
                StatementResult::Status { query_id, .. },
            ) => query_id.clone(),
            _ => None,
        };
        writer.appended += 1;
        let origin = format!("{}/{}", log.origin, writer.appended);
        let command = Command {
            command_id: command_id(stmt),
            statement: stmt.text.clone(),
            streams_properties: props.clone(),
            query_id,
            origin: Some(origin.clone()),
        };
        if let Err(e) = CommandLog::send(&mut writer, &LogRecord::Command(command)) {
            tracing::error!(statement = %stmt.text,
                "the statement ran but could not be recorded; it will not survive a restart: {e}");
            return Err(e);
        }
        let mut sequence = writer.next_offset;
        writer.next_offset += 1;
        if follow.reader.is_some() {
            // Our record's offset is our sequence number. Commands other servers appended
            // between our catch-up and our append come before it in the log but ran after
            // it here: they are applied now, and a conflict fails them, not ours.
            let mut own = None;
            self.apply_new_with(log, &mut follow, &mut *applied, |offset, command| {
                if command.origin.as_deref() == Some(origin.as_str()) {
                    own = Some(offset);
                }
            })?;
            sequence = own.ok_or_else(|| {
                EngineError::Internal(format!(
                    "the command topic '{}' does not show the command just appended",
                    log.topic
                ))
            })?;
        }
        Ok(Executed {
            result,
            sequence: Some(sequence),
        })
    }

    /// Executes the commands other servers appended to `log` since this server last read
    /// it, in order, reporting each that succeeds to `applied`. Returns how many ran. Does
    /// nothing before the log has been replayed.
    pub fn follow(
        &self,
        log: &CommandLog,
        applied: &mut dyn FnMut(i64, &ParsedStatement, &StatementResult),
    ) -> Result<usize, EngineError> {
        let _writer = log.lock();
        let mut follow = log.follow_lock();
        self.apply_new(log, &mut follow, applied)
    }

    fn apply_new(
        &self,
        log: &CommandLog,
        follow: &mut Follow,
        applied: &mut dyn FnMut(i64, &ParsedStatement, &StatementResult),
    ) -> Result<usize, EngineError> {
        self.apply_new_with(log, follow, applied, |_, _| {})
    }

    /// [`apply_new`](Self::apply_new), showing every command read to `seen` first.
    fn apply_new_with(
        &self,
        log: &CommandLog,
        follow: &mut Follow,
        applied: &mut dyn FnMut(i64, &ParsedStatement, &StatementResult),
        mut seen: impl FnMut(i64, &Command),
    ) -> Result<usize, EngineError> {
        let mut commands = Vec::new();
        log.read_new(follow, FOLLOW_TIMEOUT, |offset, command| {
            seen(offset, &command);
            commands.push((offset, command));
        })?;
        let mut ran = 0;
        self.following
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _done = ReplayFlag(&self.following);
        for (offset, command) in commands {
            follow.applied = offset;
            if log.is_own(&command) {
                continue;
            }
            let (ok, _) = self.apply_command(offset, &command, applied);
            ran += ok;
        }
        Ok(ran)
    }

    /// Executes one recorded command as it was first executed (its query keeps its id; a
    /// dropped topic is not deleted again). Returns how many of its statements succeeded
    /// and failed; a failure is logged.
    fn apply_command(
        &self,
        offset: i64,
        command: &Command,
        applied: &mut dyn FnMut(i64, &ParsedStatement, &StatementResult),
    ) -> (usize, usize) {
        let statements =
            match eddy_sql::parse_with_types(&format!("{};", command.statement), &self.types()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(offset, statement = %command.statement,
                    "skipping a recorded command that no longer parses: {e}");
                    return (0, 1);
                }
            };
        let number = command
            .query_id
            .as_deref()
            .and_then(|id| id.rsplit('_').next())
            .and_then(|n| n.parse::<u64>().ok());
        let (mut ok, mut failed) = (0, 0);
        for mut stmt in statements {
            // The topic went when the DROP first ran.
            if let Statement::Drop { delete_topic, .. } = &mut stmt.statement {
                *delete_topic = false;
            }
            if let Some(n) = number {
                self.set_next_query_number(n);
            }
            match self.execute(&stmt, &command.streams_properties) {
                Ok(result) => {
                    ok += 1;
                    applied(offset, &stmt, &result);
                }
                Err(e) => {
                    tracing::warn!(offset, statement = %stmt.text,
                        "a recorded command failed and is skipped: {e}");
                    if let Some(n) = number {
                        self.set_next_query_number(n + 1);
                    }
                    failed += 1;
                }
            }
        }
        (ok, failed)
    }

    /// Re-executes every recorded command, in order, calling `applied` for each that
    /// succeeds. A command that fails now is logged and skipped.
    pub fn replay(
        &self,
        log: &CommandLog,
        timeout: Duration,
        mut applied: impl FnMut(i64, &ParsedStatement, &StatementResult),
    ) -> Result<ReplayReport, EngineError> {
        let commands = log.read_all(timeout)?;
        self.set_terminated_later(terminated_later(&commands));
        self.set_paused_later(paused_later(&commands));
        self.replaying
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _done = ReplayFlag(&self.replaying);
        let mut report = ReplayReport {
            last_sequence: -1,
            ..ReplayReport::default()
        };
        for (offset, command) in commands {
            report.last_sequence = offset;
            let (ok, failed) = self.apply_command(offset, &command, &mut applied);
            report.applied += ok;
            report.failed += failed;
        }
        self.set_terminated_later(HashSet::new());
        self.set_paused_later(HashSet::new());
        Ok(report)
    }
}

/// The (upper-cased) ids of the queries `commands` leave paused: paused by `PAUSE <id>` or
/// `PAUSE ALL` and not resumed after.
fn paused_later(commands: &[(i64, Command)]) -> HashSet<String> {
    let mut started: Vec<String> = Vec::new();
    let mut paused = HashSet::new();
    for (_, command) in commands {
        if let Some(id) = &command.query_id {
            started.push(id.to_ascii_uppercase());
        }
        let Ok(statements) = eddy_sql::parse(&format!("{};", command.statement)) else {
            continue;
        };
        for stmt in statements {
            match stmt.statement {
                Statement::Pause(TerminateTarget::Query(id)) => {
                    paused.insert(id.to_ascii_uppercase());
                }
                Statement::Pause(TerminateTarget::All) => paused.extend(started.iter().cloned()),
                Statement::Resume(TerminateTarget::Query(id)) => {
                    paused.remove(&id.to_ascii_uppercase());
                }
                Statement::Resume(TerminateTarget::All) => paused.clear(),
                _ => {}
            }
        }
    }
    paused
}

/// The (upper-cased) ids of the queries that a later command of `commands` terminates:
/// named by `TERMINATE <id>`, or started before a `TERMINATE ALL`.
fn terminated_later(commands: &[(i64, Command)]) -> HashSet<String> {
    let mut started: Vec<&str> = Vec::new();
    let mut terminated = HashSet::new();
    for (_, command) in commands {
        if let Some(id) = &command.query_id {
            started.push(id);
        }
        let Ok(statements) = eddy_sql::parse(&format!("{};", command.statement)) else {
            continue;
        };
        for stmt in statements {
            match stmt.statement {
                Statement::Terminate(TerminateTarget::Query(id)) => {
                    terminated.insert(id.to_ascii_uppercase());
                }
                Statement::Terminate(TerminateTarget::All) => {
                    terminated.extend(started.iter().map(|id| id.to_ascii_uppercase()));
                }
                _ => {}
            }
        }
    }
    terminated
}

/// Clears the engine's replay flag when replay ends, however it ends.
/// Clears one of the engine's flags (replaying, following) when dropped, however the
/// replay ends.
pub(crate) struct ReplayFlag<'a>(pub(crate) &'a std::sync::atomic::AtomicBool);

impl Drop for ReplayFlag<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use eddy_state::{MemoryBackend, StateBackend};

    use eddy_sql::ast::ShowWhat;

    use super::*;
    use crate::engine::EngineConfig;
    use crate::memory::MemoryTopics;
    use crate::runner::RunMode;

    fn engine(topics: &MemoryTopics, mode: RunMode) -> Engine {
        engine_with_state(topics, mode, Arc::new(MemoryBackend::new()))
    }

    fn engine_with_state(
        topics: &MemoryTopics,
        mode: RunMode,
        state: Arc<MemoryBackend>,
    ) -> Engine {
        let mut config = EngineConfig::new("unit_");
        config.mode = mode;
        match Engine::new(config, Arc::new(topics.clone()), state) {
            Ok(e) => e,
            Err(e) => panic!("engine: {e}"),
        }
    }

    fn run(engine: &Engine, log: &CommandLog, sql: &str) -> Result<Executed, EngineError> {
        let mut last = None;
        for stmt in eddy_sql::parse(sql)? {
            last =
                Some(engine.execute_logged(&stmt, &Properties::new(), log, &mut |_, _, _| {})?);
        }
        last.ok_or_else(|| EngineError::Internal("no statement".into()))
    }

    fn show(engine: &Engine, what: ShowWhat) -> StatementResult {
        let stmt = ParsedStatement {
            text: "SHOW".into(),
            line: 1,
            statement: Statement::Show {
                what,
                extended: false,
            },
        };
        match engine.execute(&stmt, &Properties::new()) {
            Ok(r) => r,
            Err(e) => panic!("SHOW: {e}"),
        }
    }

    fn query_ids(engine: &Engine) -> Vec<String> {
        match show(engine, ShowWhat::Queries) {
            StatementResult::Queries(q) => q.into_iter().map(|q| q.id).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replay_rebuilds_catalog_and_query_ids() -> Result<(), EngineError> {
        let topics = MemoryTopics::new();
        let first = engine(&topics, RunMode::Synchronous);
        let log = CommandLog::open(Arc::new(topics.clone()), "unit_", 1)?;
        assert!(log.read_all(Duration::from_secs(5))?.is_empty());
        let created = run(
            &first,
            &log,
            "CREATE STREAM s (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');",
        )?;
        let seq = created.sequence.unwrap_or(-1);
        assert!(seq >= 0);
        let a = run(&first, &log, "CREATE STREAM a AS SELECT * FROM s;")?;
        assert_eq!(a.sequence, Some(seq + 1));
        run(&first, &log, "CREATE STREAM b AS SELECT id, v FROM s;")?;
        // Not recorded: a failure, a listing, an insert of values.
        assert!(run(&first, &log, "CREATE STREAM c AS SELECT nope FROM s;").is_err());
        assert_eq!(run(&first, &log, "SHOW STREAMS;")?.sequence, None);
        assert_eq!(
            run(&first, &log, "INSERT INTO s (id, v) VALUES (1, 'x');")?.sequence,
            None
        );
        run(&first, &log, "TERMINATE CSAS_A_1; DROP STREAM a;")?;
        run(&first, &log, "CREATE STREAM d AS SELECT * FROM s;")?;
        // Replaced in place: the query keeps its id.
        run(
            &first,
            &log,
            "CREATE OR REPLACE STREAM d AS SELECT * FROM s WHERE id > 0;",
        )?;
        assert_eq!(query_ids(&first), vec!["CSAS_B_2", "CSAS_D_3"]);

        let second = engine(&topics, RunMode::Synchronous);
        let log = CommandLog::open(Arc::new(topics.clone()), "unit_", 1)?;
        let mut applied = Vec::new();
        let report = second.replay(&log, Duration::from_secs(5), |offset, stmt, _| {
            applied.push((offset, stmt.text.clone()));
        })?;
        assert_eq!(report.failed, 0);
        assert_eq!(report.applied, 7);
        assert_eq!(
            applied.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>(),
            vec![
                "CREATE STREAM s (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON')",
                "CREATE STREAM a AS SELECT * FROM s",
                "CREATE STREAM b AS SELECT id, v FROM s",
                "TERMINATE CSAS_A_1",
                "DROP STREAM a",
                "CREATE STREAM d AS SELECT * FROM s",
                "CREATE OR REPLACE STREAM d AS SELECT * FROM s WHERE id > 0",
            ]
        );
        assert_eq!(query_ids(&second), vec!["CSAS_B_2", "CSAS_D_3"]);
        match show(&second, ShowWhat::Streams) {
            StatementResult::Streams(s) => assert_eq!(
                s.iter().map(|s| s.source.name.as_str()).collect::<Vec<_>>(),
                vec!["B", "D", "EDDY_PROCESSING_LOG", "S"]
            ),
            other => panic!("{other:?}"),
        }
        // Numbering goes on after the replayed commands.
        let e = run(&second, &log, "CREATE STREAM e AS SELECT * FROM s;")?;
        assert!(e.sequence.unwrap_or(-1) > report.last_sequence);
        assert_eq!(query_ids(&second), vec!["CSAS_B_2", "CSAS_D_3", "CSAS_E_4"]);
        Ok(())
    }

    #[test]
    fn replay_does_not_start_queries_that_a_later_command_terminates() -> Result<(), EngineError> {
        let topics = MemoryTopics::new();
        let first = engine(&topics, RunMode::Synchronous);
        let log = CommandLog::open(Arc::new(topics.clone()), "unit_", 1)?;
        run(
            &first,
            &log,
            "CREATE STREAM s (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');
             CREATE TABLE c AS SELECT v, COUNT(*) AS n FROM s GROUP BY v;
             CREATE OR REPLACE TABLE c AS SELECT v, COUNT(*) AS n FROM s WHERE id > 0 GROUP BY v;
             CREATE TABLE d AS SELECT v, COUNT(*) AS n FROM s GROUP BY v;
             CREATE STREAM e AS SELECT * FROM s;
             CREATE STREAM f AS SELECT * FROM s;
             TERMINATE CTAS_C_1;
             TERMINATE ALL;
             CREATE STREAM g AS SELECT * FROM s;",
        )?;
        assert_eq!(query_ids(&first), vec!["CSAS_G_5"]);

        let state = Arc::new(MemoryBackend::new());
        let second = engine_with_state(&topics, RunMode::Synchronous, Arc::clone(&state));
        let log = CommandLog::open(Arc::new(topics.clone()), "unit_", 1)?;
        let report = second.replay(&log, Duration::from_secs(5), |_, _, _| {})?;
        assert_eq!(report.failed, 0);
        assert_eq!(report.applied, 9);
        assert_eq!(query_ids(&second), vec!["CSAS_G_5"]);
        // The terminated aggregations never opened (nor rebuilt) their state.
        let stores = state.store_names()?;
        assert!(
            !stores.iter().any(|s| s.starts_with("aggregate_")),
            "{stores:?}"
        );
        match show(&second, ShowWhat::Tables) {
            StatementResult::Tables(t) => assert_eq!(
                t.iter().map(|t| t.source.name.as_str()).collect::<Vec<_>>(),
                vec!["C", "D"]
            ),
            other => panic!("{other:?}"),
        }
        // Ids go on from where the log left them.
        run(&second, &log, "CREATE STREAM h AS SELECT * FROM s;")?;
        assert_eq!(query_ids(&second), vec!["CSAS_G_5", "CSAS_H_6"]);
        Ok(())
    }

    #[test]
    fn servers_follow_each_others_commands_in_log_order() -> Result<(), EngineError> {
        let topics = MemoryTopics::new();
        let (a, b) = (
            engine(&topics, RunMode::Synchronous),
            engine(&topics, RunMode::Synchronous),
        );
        let log_a = CommandLog::open(Arc::new(topics.clone()), "unit_", 1)?;
        let log_b = CommandLog::open(Arc::new(topics.clone()), "unit_", 1)?;
        a.replay(&log_a, Duration::from_secs(5), |_, _, _| {})?;
        b.replay(&log_b, Duration::from_secs(5), |_, _, _| {})?;

        let created = run(
            &a,
            &log_a,
            "CREATE STREAM s (id INT KEY, v VARCHAR) WITH (KAFKA_TOPIC='s', VALUE_FORMAT='JSON');
             CREATE STREAM x AS SELECT * FROM s;",
        )?;
        // B executes A's commands with A's query id, reporting each.
        let mut seen = Vec::new();
        let ran = b.follow(&log_b, &mut |offset, stmt, _| {
            seen.push((offset, stmt.text.clone()))
        })?;
        assert_eq!(ran, 2);
        assert_eq!(seen.last().map(|(o, _)| *o), created.sequence);
        assert_eq!(query_ids(&b), vec!["CSAS_X_1"]);
        assert_eq!(b.follow(&log_b, &mut |_, _, _| {})?, 0);

        // A statement catches up first: B's CREATE of a stream A just created fails there,
        // and A's catalog, not B's, is what both hold.
        run(&a, &log_a, "CREATE STREAM y AS SELECT id, v AS w FROM s;")?;
        let err = run(&b, &log_b, "CREATE STREAM y AS SELECT v FROM s;")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(query_ids(&b), vec!["CSAS_X_1", "CSAS_Y_2"]);
        // B's own statement gets the next id on both servers, and its own sequence number.
        let z = run(&b, &log_b, "CREATE STREAM z AS SELECT * FROM s;")?;
        assert_eq!(a.follow(&log_a, &mut |_, _, _| {})?, 1);
        assert_eq!(query_ids(&a), vec!["CSAS_X_1", "CSAS_Y_2", "CSAS_Z_3"]);
        assert_eq!(query_ids(&b), query_ids(&a));
        assert_eq!(log_a.applied(), z.sequence.unwrap_or(-2));
        // A server never executes its own records again.
        assert_eq!(b.follow(&log_b, &mut |_, _, _| {})?, 0);
        Ok(())
    }
}

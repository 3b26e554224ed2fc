//! Running one case: a fresh engine over in-memory topics, the statements, the inputs one
//! at a time, then the comparisons.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eddy_engine::memory::MemoryTopics;
use eddy_engine::{Engine, EngineConfig, Properties, RunMode, StatementResult};
use eddy_sql::ast::Statement;
use eddy_sql::catalog::Catalog;
use eddy_state::MemoryBackend;

use super::codec::{TopicLayout, window_key};
use super::compare;
use super::model::{Case, RecordSpec};

/// The result of one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Everything matched.
    Pass,
    /// Something did not match, or the case could not run.
    Fail,
    /// Not run: disabled, or needs a format Eddy does not support yet.
    Skip,
}

impl Status {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// A status and, for FAIL and SKIP, why.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Pass, fail or skip.
    pub status: Status,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
}

impl Outcome {
    pub(super) fn pass() -> Self {
        Outcome {
            status: Status::Pass,
            reason: None,
        }
    }

    /// A failure with its reason.
    pub fn fail(reason: impl Into<String>) -> Self {
        Outcome {
            status: Status::Fail,
            reason: Some(reason.into()),
        }
    }

    pub(super) fn skip(reason: impl Into<String>) -> Self {
        Outcome {
            status: Status::Skip,
            reason: Some(reason.into()),
        }
    }
}

/// The service id ksqlDB's tests run with; it names the processing-log topic.
pub(super) const SERVICE_ID: &str = "default_";

/// Why a case cannot run yet, before anything runs: disabled, malformed, or a format that
/// needs a schema registry.
pub fn precheck(case: &Case) -> Option<Outcome> {
    if let Some(why) = &case.malformed {
        return Some(Outcome::fail(format!("malformed test: {why}")));
    }
    if case.disabled {
        return Some(Outcome::skip("disabled"));
    }
    test_only_function(&case.statements).map(|f| {
        Outcome::skip(format!(
            "calls {f}, a function of ksqlDB's test suite, not of its library"
        ))
    })
}

/// Functions that ksqlDB's own test harness adds to its library for its tests (they are in no
/// ksqlDB release and not in its documentation); a case that calls one cannot run elsewhere.
const KSQLDB_TEST_FUNCTIONS: [&str; 16] = [
    "BAD_UDF",
    "FIVE_ARG",
    "FOUR_ARG",
    "GENERIC_VAR_ARG",
    "MID_VAR_ARG",
    "MULTI_ARG",
    "OBJ_COL_ARG",
    "SUM_LIST",
    "TEST_UDAF",
    "TEST_UDF",
    "TEST_UDTF",
    "THROWING_UDTF",
    "TOSTRUCT",
    "VAR_ARG",
    "WHENCONDITION",
    "WHENRESULT",
];

/// The first of ksqlDB's test-only functions that these statements call.
fn test_only_function(statements: &[String]) -> Option<&'static str> {
    statements.iter().find_map(|sql| {
        let upper = sql.to_ascii_uppercase();
        KSQLDB_TEST_FUNCTIONS.into_iter().find(|name| {
            upper.match_indices(name).any(|(at, _)| {
                let before = upper[..at].chars().next_back();
                let after = upper[at + name.len()..].trim_start().chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') && after == Some('(')
            })
        })
    })
}

/// A fresh engine over `topics`, stepped synchronously as `eddy test` needs. For REST cases
/// it is configured as ksqlDB's REST test server is: with scalable push queries enabled.
pub fn engine(topics: &MemoryTopics, rest: bool) -> Result<Engine, String> {
    let mut config = EngineConfig::new(SERVICE_ID);
    config.mode = RunMode::Synchronous;
    // ksqlDB's harness registers schemas with a mock registry that checks no compatibility.
    let registry = eddy_registry::MemoryRegistry::new();
    registry.set_compatibility(None, eddy_registry::Compatibility::None);
    config.schema_registry = Arc::new(registry);
    if rest {
        config
            .server_properties
            .push(("ksql.query.push.v2.enabled".into(), "true".into()));
    }
    Engine::new(
        config,
        Arc::new(topics.clone()),
        Arc::new(MemoryBackend::new()),
    )
    .map_err(|e| format!("could not start the engine: {e}"))
}

/// Runs a case on a fresh `engine` over `topics`. Stops early, failing, once `cancel` is
/// set.
pub fn run(case: &Case, engine: &Engine, topics: &MemoryTopics, cancel: &AtomicBool) -> Outcome {
    for t in &case.topics {
        if let Some(p) = t.partitions
            && let Err(e) = engine.topics().admin().create_topic(&t.name, p, 1)
        {
            return Outcome::fail(format!("could not create topic {}: {e}", t.name));
        }
    }
    if let Err(e) = register_schemas(case, engine) {
        return Outcome::fail(e);
    }
    // ksqlDB's tests read every topic from the start; a case's properties may say otherwise.
    let mut props: Properties =
        BTreeMap::from([("auto.offset.reset".to_string(), "earliest".to_string())]);
    props.extend(case.properties.clone());

    if let Err(e) = statements(case, engine, &mut props) {
        return failed(case, e);
    }
    let catalog = engine.catalog();
    let inputs = match produce_inputs(case, engine, topics, &catalog, cancel) {
        Ok(inputs) => inputs,
        Err(e) => return failed(case, e),
    };
    if let Some(expected) = &case.expected_error {
        return Outcome::fail(format!(
            "expected exception containing \"{}\", but every statement succeeded and processing raised none",
            expected.message
        ));
    }
    let registry = &engine.config().schema_registry;
    if let Err(why) = outputs(
        case,
        topics,
        &catalog,
        &inputs,
        &sink_topics(engine),
        registry,
    ) {
        return Outcome::fail(why);
    }
    let admin = engine.topics().admin();
    match compare::post(&case.post, &catalog, |t| {
        admin.partition_count(t).ok().flatten()
    }) {
        Ok(()) => Outcome::pass(),
        Err(why) => Outcome::fail(why),
    }
}

/// Registers the schemas the case's topics declare, keys before values, as ksqlDB's harness
/// does (so that ids given in statements name the same schemas).
fn register_schemas(case: &Case, engine: &Engine) -> Result<(), String> {
    let registry = &engine.config().schema_registry;
    register_statement_schemas(case, registry)?;
    let mut declared = Vec::new();
    for t in &case.topics {
        let sides = [
            (
                false,
                &t.key_schema,
                t.key_schema_id,
                &t.key_format,
                &t.key_schema_references,
            ),
            (
                true,
                &t.value_schema,
                t.value_schema_id,
                &t.value_format,
                &t.value_schema_references,
            ),
        ];
        for (value, schema, id, format, references) in sides {
            let Some(text) = schema else { continue };
            declared.push(Declared {
                subject: eddy_registry::subject(&t.name, value),
                schema_type: schema_type(format.as_deref(), text),
                text,
                id,
                references,
            });
        }
    }
    if declared.iter().any(|d| !d.references.is_empty()) {
        register_references_first(registry.as_ref(), &mut declared)?;
    }
    for d in declared {
        // Each referenced schema is version 1 of the subject of its name.
        let references = d
            .references
            .iter()
            .map(|(name, _)| eddy_registry::SchemaReference {
                name: name.clone(),
                subject: name.clone(),
                version: 1,
            })
            .collect();
        let schema = eddy_registry::Schema {
            schema_type: d.schema_type,
            text: d.text.clone(),
            references,
        };
        registry
            .register_with_id(&d.subject, &schema, d.id)
            .map_err(|e| format!("could not register the schema of {}: {e}", d.subject))?;
    }
    Ok(())
}

/// A schema a case's topic declares for its keys or values.
struct Declared<'a> {
    subject: String,
    schema_type: eddy_registry::SchemaType,
    text: &'a String,
    /// The id it must get, if the case gives one.
    id: Option<u32>,
    /// The schemas it imports: (name, text).
    references: &'a [(String, String)],
}

/// ksqlDB's harness registers the referred-to schemas after the topics' own, so they get
/// the later ids. A registry checks that a schema's references resolve, so here they go
/// first, with the ids the harness's order gives them, and each declared schema without an
/// id is given the one it would have got (equal texts share one).
fn register_references_first(
    registry: &dyn eddy_registry::SchemaRegistry,
    declared: &mut [Declared<'_>],
) -> Result<(), String> {
    let mut next = (1u32..)
        .find(|id| registry.schema(*id).is_err())
        .unwrap_or(1);
    let mut given: Vec<(&String, u32)> = Vec::new();
    for d in declared.iter_mut().filter(|d| d.id.is_none()) {
        let id = match given.iter().find(|(text, _)| *text == d.text) {
            Some((_, id)) => *id,
            None => {
                given.push((d.text, next));
                next += 1;
                next - 1
            }
        };
        d.id = Some(id);
    }
    let mut registered: Vec<&String> = Vec::new();
    for d in declared.iter() {
        for (name, text) in d.references {
            if registered.contains(&name) {
                continue;
            }
            registered.push(name);
            let schema = eddy_registry::Schema::new(d.schema_type, text.clone());
            registry
                .register_with_id(name, &schema, Some(next))
                .map_err(|e| format!("could not register the schema {name}: {e}"))?;
            next += 1;
        }
    }
    Ok(())
}

/// Like ksqlDB's harness, registers first the schemas that the case's `CREATE STREAM|TABLE`
/// statements with columns give their topics in a schema-registry format (derived from the
/// columns, keys before values), so that the ids of the declared schemas, which statements
/// name, are those of ksqlDB's harness. Topics the case declares with a schema are left to
/// [`register_schemas`].
fn register_statement_schemas(
    case: &Case,
    registry: &Arc<dyn eddy_registry::SchemaRegistry>,
) -> Result<(), String> {
    use eddy_sql::ast::Statement;
    use eddy_sql::catalog::FormatName;
    let parsed = case
        .statements
        .iter()
        .filter_map(|sql| eddy_sql::parse(sql).ok())
        .flatten();
    for p in parsed {
        let Statement::CreateSource(create) = p.statement else {
            continue;
        };
        let with = |name: &str| create.with.get(name).map(|v| v.as_text());
        let topic = with("KAFKA_TOPIC").unwrap_or_else(|| create.name.clone());
        let declared = case
            .topics
            .iter()
            .any(|t| t.name == topic && (t.key_schema.is_some() || t.value_schema.is_some()));
        if create.elements.is_empty() || declared {
            continue;
        }
        let format = |name: &str, default: FormatName| {
            with(name)
                .or_else(|| with("FORMAT"))
                .and_then(|f| FormatName::parse(&f))
                .unwrap_or(default)
        };
        let columns = |key: bool| -> arrow::datatypes::Fields {
            create
                .elements
                .iter()
                .filter(|e| e.key == key && e.header.is_none())
                .map(|e| arrow::datatypes::Field::new(&e.name, e.ty.to_arrow(), true))
                .collect()
        };
        let sides = [
            (
                false,
                format("KEY_FORMAT", FormatName::Kafka),
                columns(true),
            ),
            (
                true,
                format("VALUE_FORMAT", FormatName::Json),
                columns(false),
            ),
        ];
        for (value, format, fields) in sides {
            let wrapped = !value || with("WRAP_SINGLE_VALUE").as_deref() != Some("false");
            let wrapped = wrapped && (value || fields.len() != 1);
            let side = if value { "VALUE" } else { "KEY" };
            let full_name = with(&format!("{side}_SCHEMA_FULL_NAME"))
                .or_else(|| with(&format!("{side}_AVRO_SCHEMA_FULL_NAME")));
            let nullable = with(&format!("{side}_PROTOBUF_NULLABLE_REPRESENTATION"))
                .and_then(|n| eddy_formats::NullableRepresentation::parse(&n))
                .unwrap_or_default();
            let derived = match format {
                _ if fields.is_empty() => continue,
                FormatName::Avro => {
                    eddy_formats::derive_schema(&fields, wrapped, full_name.as_deref())
                        .map(|s| eddy_registry::Schema::avro(s.to_string()))
                }
                FormatName::JsonSr => eddy_formats::derive_json_schema(&fields, wrapped).map(|s| {
                    eddy_registry::Schema::new(eddy_registry::SchemaType::Json, s.to_string())
                }),
                FormatName::Protobuf => {
                    { eddy_formats::derive_proto(&fields, full_name.as_deref(), nullable) }
                        .map(|s| eddy_registry::Schema::new(eddy_registry::SchemaType::Protobuf, s))
                }
                _ => continue,
            };
            // A statement whose columns the format cannot carry fails when it runs.
            if let Ok(schema) = derived {
                registry
                    .register(&eddy_registry::subject(&topic, value), &schema)
                    .map_err(|e| format!("could not register the schema of {topic}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// The kind of a declared schema: from its topic's format, else from its text.
fn schema_type(format: Option<&str>, text: &str) -> eddy_registry::SchemaType {
    use eddy_registry::SchemaType;
    match format.map(str::to_ascii_uppercase).as_deref() {
        Some("AVRO") => SchemaType::Avro,
        Some("JSON_SR") => SchemaType::Json,
        Some("PROTOBUF" | "PROTOBUF_NOSR") => SchemaType::Protobuf,
        _ if text.contains("syntax") => SchemaType::Protobuf,
        _ if text.contains("\"oneOf\"")
            || text.contains("\"properties\"")
            || text.contains("\"object\"") =>
        {
            SchemaType::Json
        }
        _ => SchemaType::Avro,
    }
}

/// Executes the statements in order; `SET`/`UNSET` change the properties of later ones, as
/// in a ksqlDB session. Like ksqlDB's test harness, the statements are one script (joined by
/// line breaks), so error positions count lines from the first statement.
fn statements(case: &Case, engine: &Engine, props: &mut Properties) -> Result<(), String> {
    let script = case.statements.join("\n");
    let parsed = eddy_sql::parse(&script).map_err(|e| with_statement(e.to_string(), case))?;
    for (i, stmt) in parsed.iter().enumerate() {
        match &stmt.statement {
            Statement::Set { name, value } => {
                props.insert(name.clone(), value.clone());
            }
            Statement::Unset { name } => {
                props.remove(name);
            }
            _ => {}
        }
        engine
            .execute(stmt, props)
            .map_err(|e| format!("statement {}: {e}", i + 1))?;
    }
    Ok(())
}

/// A syntax error as ksqlDB's harness sees it: its parser's exception ends with the text of
/// the statement the error is in (`…\nStatement: CREATE STREAM …;`), found here by the error's
/// line in the joined script.
fn with_statement(error: String, case: &Case) -> String {
    let line = error
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(line, _)| line.parse::<usize>().ok());
    let Some(line) = line else {
        return error;
    };
    let mut first_line = 1;
    for statement in &case.statements {
        let lines = statement.lines().count().max(1);
        if line < first_line + lines {
            return format!("{error}\nStatement: {statement}");
        }
        first_line += lines;
    }
    error
}

/// Produces the inputs one at a time, letting every query process each before the next.
/// Returns the positions of the produced records on their topics.
pub(super) fn produce_inputs(
    case: &Case,
    engine: &Engine,
    topics: &MemoryTopics,
    catalog: &Catalog,
    cancel: &AtomicBool,
) -> Result<HashSet<(String, usize)>, String> {
    // Records the statements wrote (INSERT VALUES) are processed before the first input.
    engine
        .run_until_idle()
        .map_err(|e| format!("processing records written by the statements: {e}"))?;
    let mut produced = HashSet::new();
    for (i, rec) in case.inputs.iter().enumerate() {
        if cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let layout = TopicLayout::of(
            &rec.topic,
            catalog,
            &case.topics,
            &engine.config().schema_registry,
        );
        let (key, value) = encode(rec, &layout);
        produced.insert((rec.topic.clone(), topics.records(&rec.topic).len()));
        topics
            .produce_with_headers(
                &rec.topic,
                key.as_deref(),
                value.as_deref(),
                rec.timestamp.unwrap_or(0),
                rec.headers.clone().unwrap_or_default(),
            )
            .map_err(|e| format!("producing input {}: {e}", i + 1))?;
        engine
            .run_until_idle()
            .map_err(|e| format!("processing input {}: {e}", i + 1))?;
    }
    Ok(produced)
}

fn encode(rec: &RecordSpec, layout: &TopicLayout) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let key = layout.key.encode(&rec.key);
    let key = match &rec.window {
        Some(w) => Some(window_key(key, w)),
        None => key,
    };
    (key, layout.value.encode(&rec.value))
}

/// The topics the case's persistent queries write to.
fn sink_topics(engine: &Engine) -> Vec<String> {
    let Ok(show) = eddy_sql::parse("SHOW QUERIES;") else {
        return Vec::new();
    };
    show.iter()
        .filter_map(|stmt| engine.execute(stmt, &Properties::new()).ok())
        .flat_map(|result| match result {
            StatementResult::Queries(queries) => queries,
            _ => Vec::new(),
        })
        .map(|q| q.sink_topic)
        .collect()
}

/// Compares every topic that has expected records, in the order they first appear. A case
/// that expects no records at all (`"outputs": []`) asserts that nothing is emitted: then
/// every topic a query writes to must have none. A case that lists records for some topics
/// says nothing of the others (as ksqlDB's harness reads them: a pipeline's intermediate
/// topics are often left out).
fn outputs(
    case: &Case,
    topics: &MemoryTopics,
    catalog: &Catalog,
    inputs: &HashSet<(String, usize)>,
    sinks: &[String],
    registry: &Arc<dyn eddy_registry::SchemaRegistry>,
) -> Result<(), String> {
    let mut order: Vec<&str> = Vec::new();
    let sinks = if case.outputs.is_empty() { sinks } else { &[] };
    for topic in case.outputs.iter().map(|r| &r.topic).chain(sinks) {
        if !order.contains(&topic.as_str()) {
            order.push(topic);
        }
    }
    for topic in order {
        let expected: Vec<&RecordSpec> = case.outputs.iter().filter(|r| r.topic == topic).collect();
        let actual: Vec<_> = topics
            .records(topic)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !inputs.contains(&(topic.to_string(), *i)))
            .map(|(_, (_, rec))| rec)
            .collect();
        let layout = TopicLayout::of(topic, catalog, &case.topics, registry);
        compare::topic_records(topic, &expected, &actual, &layout)?;
    }
    Ok(())
}

/// The outcome of a case whose statements or processing failed with `error`.
fn failed(case: &Case, error: String) -> Outcome {
    match &case.expected_error {
        Some(expected) if error.contains(&expected.message) => Outcome::pass(),
        Some(expected) => Outcome::fail(format!(
            "expected exception containing \"{}\", got: {error}",
            expected.message
        )),
        None => Outcome::fail(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_of_ksqldb_test_functions() {
        let calls = |sql: &str| test_only_function(&[sql.to_string()]);
        assert_eq!(
            calls("CREATE STREAM O AS SELECT test_udf (a, b) FROM T;"),
            Some("TEST_UDF")
        );
        assert_eq!(
            calls("SELECT VAR_ARG(a), MID_VAR_ARG(b) FROM T;"),
            Some("MID_VAR_ARG")
        );
        // A column or stream of the same name is no call, nor is a longer function name.
        assert_eq!(calls("SELECT test_udf FROM T;"), None);
        assert_eq!(calls("SELECT MY_TEST_UDF(a) FROM T;"), None);
        assert_eq!(calls("SELECT WONT_FIND_ME(a) FROM T;"), None);
    }
}

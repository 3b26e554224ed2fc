//! ksqlDB's REST wire types, field for field.
//!
//! Request bodies are read as JSON objects field by field (see `handlers::required_str`),
//! so that unknown fields are ignored and a missing one is named in the 400 answer:
//! `/ksql` takes `ksql` and `streamsProperties`, `/query` the same, `/query-stream` takes
//! `sql` and `properties`, `/close-query` takes `queryId`.

use serde::Serialize;
use serde_json::{Map, Value};

/// `commandStatus` of a `currentStatus` entity.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandStatus {
    /// `SUCCESS`
    pub status: String,
    /// What happened.
    pub message: String,
    /// The query started, if any.
    pub query_id: Option<String>,
}

/// A stream or table in `streams`/`tables`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceInfo {
    /// `STREAM` or `TABLE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Name.
    pub name: String,
    /// Topic.
    pub topic: String,
    /// Key format.
    pub key_format: String,
    /// Value format.
    pub value_format: String,
    /// Whether its key is windowed.
    pub is_windowed: bool,
}

/// A query in `queries`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunningQuery {
    /// The statement.
    pub query_string: String,
    /// Sinks it writes.
    pub sinks: Vec<String>,
    /// Topics it writes.
    pub sink_kafka_topics: Vec<String>,
    /// Query id.
    pub id: String,
    /// Count of servers per state.
    pub status_count: Map<String, Value>,
    /// `PERSISTENT`
    pub query_type: String,
    /// `RUNNING` / `ERROR`
    pub state: String,
    /// Eddy's: records of the input partitions this server reads that the query has not
    /// processed yet (persistent queries, in `SHOW QUERIES` and `DESCRIBE … EXTENDED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_lag: Option<i64>,
    /// Eddy's: records the query sent to the processing log on this server, beside
    /// `consumerLag`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processing_errors: Option<u64>,
}

/// A topic in `kafka_topics`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicInfo {
    /// Name.
    pub name: String,
    /// Replicas per partition.
    pub replica_info: Vec<i32>,
}

/// A column's schema in a source description.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldSchema {
    /// Type name (`INTEGER`, `STRING`, `ARRAY`, `MAP`, `STRUCT`, `DECIMAL`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Fields of a STRUCT.
    pub fields: Option<Vec<FieldInfo>>,
    /// Element/value type of an ARRAY/MAP.
    pub member_schema: Option<Box<FieldSchema>>,
    /// Parameters of a DECIMAL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Map<String, Value>>,
}

/// A column in a source description.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    /// Column name.
    pub name: String,
    /// Its schema.
    pub schema: FieldSchema,
    /// `KEY` for key columns, `HEADER` for header columns; absent for value columns.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The header a `HEADER('key')` column reads.
    #[serde(rename = "headerKey", skip_serializing_if = "Option::is_none")]
    pub header_key: Option<String>,
}

/// Body of `sourceDescription`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceDescriptionBody {
    /// Name.
    pub name: String,
    /// Window type of a windowed source.
    pub window_type: Option<String>,
    /// Queries reading it.
    pub read_queries: Vec<RunningQuery>,
    /// Queries writing it.
    pub write_queries: Vec<RunningQuery>,
    /// Columns.
    pub fields: Vec<FieldInfo>,
    /// `STREAM` or `TABLE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Timestamp column, or empty.
    pub timestamp: String,
    /// Runtime statistics (text).
    pub statistics: String,
    /// Error statistics (text).
    pub error_stats: String,
    /// Whether this is the EXTENDED description.
    pub extended: bool,
    /// Key format.
    pub key_format: String,
    /// Value format.
    pub value_format: String,
    /// Topic.
    pub topic: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// The statement that created it.
    pub statement: String,
    /// Queries reading or writing it, by id.
    pub source_constraints: Vec<String>,
    /// Consumer offsets of the queries reading it (not reported by Eddy yet).
    pub query_offset_summaries: Vec<Value>,
    /// Statistics per server (not reported by Eddy yet).
    pub cluster_statistics: Vec<Value>,
    /// Error statistics per server (not reported by Eddy yet).
    pub cluster_error_stats: Vec<Value>,
}

/// Body of `queryDescription` (`EXPLAIN`, `SHOW QUERIES EXTENDED`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryDescription {
    /// Query id.
    pub id: String,
    /// The statement that started it.
    pub statement_text: String,
    /// Window type of a windowed result.
    pub window_type: Option<String>,
    /// Columns of its result.
    pub fields: Vec<FieldInfo>,
    /// Sources it reads.
    pub sources: Vec<String>,
    /// Sinks it writes.
    pub sinks: Vec<String>,
    /// Its operators, as text.
    pub topology: String,
    /// Its plan, as text.
    pub execution_plan: String,
    /// Properties set for it.
    pub overridden_properties: Map<String, Value>,
    /// State per server.
    pub ksql_host_query_status: Map<String, Value>,
    /// `PERSISTENT` or `PUSH`.
    pub query_type: String,
    /// Its recent errors.
    pub query_errors: Vec<Value>,
    /// Per-task metadata (none in Eddy: a query is one task).
    pub tasks_metadata: Vec<Value>,
    /// `RUNNING` or `ERROR`.
    pub state: String,
}

/// A property in `properties`.
#[derive(Debug, Clone, Serialize)]
pub struct Property {
    /// Name.
    pub name: String,
    /// `KSQL`, `KAFKA_STREAMS` …
    pub scope: String,
    /// Value.
    pub value: String,
}

/// A function in `function_names`.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionName {
    /// Name.
    pub name: String,
    /// `SCALAR` or `AGGREGATE`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Category.
    pub category: String,
}

/// One element of a `/ksql` response array.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "@type")]
pub enum Entity {
    /// A command was executed.
    #[serde(rename = "currentStatus", rename_all = "camelCase")]
    CurrentStatus {
        /// The statement.
        statement_text: String,
        /// E.g. `stream/`REVIEWS`/create`.
        command_id: String,
        /// Outcome.
        command_status: CommandStatus,
        /// Position of the command in the command log.
        command_sequence_number: i64,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW STREAMS`
    #[serde(rename = "streams", rename_all = "camelCase")]
    Streams {
        /// The statement.
        statement_text: String,
        /// Streams.
        streams: Vec<SourceInfo>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW TABLES`
    #[serde(rename = "tables", rename_all = "camelCase")]
    Tables {
        /// The statement.
        statement_text: String,
        /// Tables.
        tables: Vec<SourceInfo>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW QUERIES`
    #[serde(rename = "queries", rename_all = "camelCase")]
    Queries {
        /// The statement.
        statement_text: String,
        /// Queries.
        queries: Vec<RunningQuery>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW TOPICS`
    #[serde(rename = "kafka_topics", rename_all = "camelCase")]
    KafkaTopics {
        /// The statement.
        statement_text: String,
        /// Topics.
        topics: Vec<KafkaTopicInfo>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `DESCRIBE`
    #[serde(rename = "sourceDescription", rename_all = "camelCase")]
    SourceDescription {
        /// The statement.
        statement_text: String,
        /// The description.
        source_description: Box<SourceDescriptionBody>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW STREAMS|TABLES EXTENDED`, `DESCRIBE STREAMS|TABLES EXTENDED`: every one
    /// described.
    #[serde(rename = "source_descriptions", rename_all = "camelCase")]
    SourceDescriptions {
        /// The statement.
        statement_text: String,
        /// The descriptions.
        source_descriptions: Vec<SourceDescriptionBody>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW PROPERTIES`
    #[serde(rename = "properties", rename_all = "camelCase")]
    Properties {
        /// The statement.
        statement_text: String,
        /// Properties.
        properties: Vec<Property>,
        /// Properties overwritten by the request.
        overwritten_properties: Vec<String>,
        /// Properties left at their default.
        default_properties: Vec<String>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `DESCRIBE FUNCTION`.
    #[serde(rename = "describe_function", rename_all = "camelCase")]
    DescribeFunction {
        /// The statement.
        statement_text: String,
        /// The function's name.
        name: String,
        /// What it does.
        description: String,
        /// Who wrote it (`Eddy` for every function of the library).
        author: String,
        /// Its version.
        version: String,
        /// Where it comes from (`internal`: built in).
        path: String,
        /// `SCALAR`, `AGGREGATE` or `TABLE`.
        #[serde(rename = "type")]
        kind: String,
        /// Its variations: the argument types it accepts.
        functions: Vec<FunctionVariation>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `ASSERT [NOT EXISTS] TOPIC` held.
    #[serde(rename = "assert_topic", rename_all = "camelCase")]
    AssertTopic {
        /// The statement.
        statement_text: String,
        /// The topic.
        topic_name: String,
        /// Whether it exists.
        exists: bool,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW TYPES`: each named type's schema, by name.
    #[serde(rename = "type_list", rename_all = "camelCase")]
    TypeList {
        /// The statement.
        statement_text: String,
        /// The types.
        types: std::collections::BTreeMap<String, FieldSchema>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW TOPICS EXTENDED`.
    #[serde(rename = "kafka_topics_extended", rename_all = "camelCase")]
    KafkaTopicsExtended {
        /// The statement.
        statement_text: String,
        /// The topics, with their consumers.
        topics: Vec<KafkaTopicInfoExtended>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW VARIABLES`: the variables of the request's session.
    #[serde(rename = "variables", rename_all = "camelCase")]
    Variables {
        /// The statement.
        statement_text: String,
        /// The variables, by name.
        variables: Vec<Variable>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `EXPLAIN queryId`
    #[serde(rename = "queryDescription", rename_all = "camelCase")]
    QueryDescription {
        /// The statement.
        statement_text: String,
        /// The description.
        query_description: Box<QueryDescription>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW QUERIES EXTENDED`
    #[serde(rename = "queryDescription_list", rename_all = "camelCase")]
    QueryDescriptionList {
        /// The statement.
        statement_text: String,
        /// One description per query.
        query_descriptions: Vec<QueryDescription>,
        /// Warnings.
        warnings: Vec<Value>,
    },
    /// `SHOW FUNCTIONS`
    #[serde(rename = "function_names", rename_all = "camelCase")]
    FunctionNames {
        /// The statement.
        statement_text: String,
        /// Functions.
        functions: Vec<FunctionName>,
        /// Warnings.
        warnings: Vec<Value>,
    },
}

/// An error answer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "@type")]
pub enum ErrorResponse {
    /// A statement failed.
    #[serde(rename = "statement_error", rename_all = "camelCase")]
    Statement {
        /// ksqlDB error code.
        #[serde(rename = "error_code")]
        error_code: u32,
        /// What was wrong.
        message: String,
        /// The statement.
        statement_text: String,
        /// Entities of the statements executed before it.
        entities: Vec<Entity>,
    },
    /// The request failed.
    #[serde(rename = "generic_error")]
    Generic {
        /// ksqlDB error code.
        error_code: u32,
        /// What was wrong.
        message: String,
    },
}

/// Body of `GET /info`.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfoResponse {
    /// The info.
    #[serde(rename = "KsqlServerInfo")]
    pub ksql_server_info: ServerInfo,
}

/// Server info.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// Server version.
    pub version: String,
    /// Kafka cluster id.
    pub kafka_cluster_id: String,
    /// `ksql.service.id`.
    pub ksql_service_id: String,
    /// `RUNNING`.
    pub server_status: String,
}

/// Health of one subsystem.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Whether it is healthy.
    pub is_healthy: bool,
}

/// Body of `GET /healthcheck`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckResponse {
    /// Whether every subsystem is healthy.
    pub is_healthy: bool,
    /// Per subsystem.
    pub details: Map<String, Value>,
    /// `RUNNING` when ready.
    pub server_state: String,
}

/// A variable of `SHOW VARIABLES`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// One variation of a function in `DESCRIBE FUNCTION`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionVariation {
    /// Its arguments.
    pub arguments: Vec<FunctionArgument>,
    /// The result's type (empty where it depends on more than the argument types).
    pub return_type: String,
    /// What it does.
    pub description: String,
    /// The arguments' types.
    pub argument_types: Vec<String>,
}

/// An argument of a function variation.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FunctionArgument {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: String,
    /// What it is.
    pub description: String,
    /// Whether it repeats.
    pub is_variadic: bool,
}

/// A topic of `SHOW TOPICS EXTENDED`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KafkaTopicInfoExtended {
    /// Name.
    pub name: String,
    /// Replicas per partition.
    pub replica_info: Vec<i32>,
    /// Consumers reading it (members of consumer groups assigned its partitions).
    pub consumer_count: usize,
    /// Consumer groups reading it.
    pub consumer_group_count: usize,
}

//! What executing a statement returns, independent of how the REST API renders it.

use eddy_sql::catalog::Source;
use eddy_topic::TopicInfo;

/// A stream or table as `SHOW STREAMS|TABLES` lists it.
#[derive(Debug, Clone)]
pub struct SourceSummary {
    /// The catalog entry.
    pub source: Source,
}

/// Whether a query writes into a new sink (CSAS/CTAS) or an existing one (INSERT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryType {
    /// CREATE … AS SELECT, or INSERT INTO … SELECT.
    Persistent,
}

/// A persistent query as `SHOW QUERIES` lists it.
#[derive(Debug, Clone)]
pub struct QuerySummary {
    /// Query id, e.g. `CSAS_REVIEWS_CLEAN_1`.
    pub id: String,
    /// The statement that started it.
    pub sql: String,
    /// The sources it reads.
    pub sources: Vec<String>,
    /// The source it writes.
    pub sink: String,
    /// The topic it writes.
    pub sink_topic: String,
    /// `RUNNING` or `ERROR`.
    pub state: String,
    /// The last error, when failing.
    pub last_error: Option<String>,
    /// Its type.
    pub query_type: QueryType,
    /// Records of its input partitions this server reads that it has not processed yet;
    /// `None` when not asked for (see `SHOW QUERIES`, `DESCRIBE … EXTENDED`) or unknown.
    pub lag: Option<i64>,
    /// Records it sent to the processing log on this server since it started here.
    pub processing_errors: u64,
}

/// `DESCRIBE` of a source.
#[derive(Debug, Clone)]
pub struct SourceDescription {
    /// The catalog entry.
    pub source: Source,
    /// Queries reading it.
    pub read_queries: Vec<QuerySummary>,
    /// Queries writing it.
    pub write_queries: Vec<QuerySummary>,
    /// Partitions of its topic (0 when unknown).
    pub partitions: i32,
    /// Replication factor of its topic.
    pub replicas: i16,
    /// `EXTENDED` was asked.
    pub extended: bool,
    /// With `EXTENDED`: what this server's queries read from and wrote to the topic, and
    /// their failures, as ksqlDB words them (`statistics`, `errorStats`); else empty.
    pub statistics: (String, String),
    /// With `EXTENDED`: where the consumers of the queries that write the source stand
    /// in their inputs, for the partitions this server reads (ksqlDB's
    /// `queryOffsetSummaries`).
    pub offsets: Vec<QueryOffsets>,
}

/// Where one query's consumer group stands in its input topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOffsets {
    /// The consumer group.
    pub group: String,
    /// Per input topic.
    pub topics: Vec<TopicOffsets>,
}

/// Where a consumer stands in one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOffsets {
    /// The topic.
    pub topic: String,
    /// Per partition this server reads.
    pub partitions: Vec<PartitionOffsets>,
}

/// Where a consumer stands in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The broker's first offset.
    pub start: i64,
    /// The broker's next offset (its end).
    pub end: i64,
    /// The consumer's next offset.
    pub consumer: i64,
}

/// The result of one statement.
#[derive(Debug, Clone)]
pub enum StatementResult {
    /// A command was executed (CREATE, DROP, TERMINATE, INSERT …).
    Status {
        /// What happened, e.g. "Stream created".
        message: String,
        /// The query it started, if any.
        query_id: Option<String>,
    },
    /// `INSERT INTO … VALUES` wrote its row (ksqlDB answers with no entity).
    Inserted,
    /// `SHOW STREAMS`
    Streams(Vec<SourceSummary>),
    /// `SHOW TABLES`
    Tables(Vec<SourceSummary>),
    /// `SHOW QUERIES`
    Queries(Vec<QuerySummary>),
    /// `SHOW TOPICS`
    Topics(Vec<TopicInfo>),
    /// `DESCRIBE`
    Description(Box<SourceDescription>),
    /// `SHOW PROPERTIES`
    Properties(Vec<(String, String)>),
    /// `SHOW FUNCTIONS`
    Functions(Vec<FunctionListing>),
    /// `SHOW TOPICS EXTENDED`: each topic with how many consumers and consumer groups read
    /// it.
    TopicsExtended(Vec<(TopicInfo, usize, usize)>),
    /// `SHOW TYPES`: each named type.
    Types(Vec<(String, eddy_sql::types::SqlType)>),
    /// `DESCRIBE FUNCTION`.
    Function(eddy_sql::plan::describe::FunctionDescription),
    /// `ASSERT [NOT EXISTS] TOPIC` held.
    TopicAsserted {
        /// The topic.
        topic: String,
        /// Whether it exists.
        exists: bool,
    },
}

/// A function as `SHOW FUNCTIONS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionListing {
    /// Its name, upper-cased.
    pub name: String,
    /// `SCALAR`, `AGGREGATE` or `TABLE`.
    pub kind: String,
    /// ksqlDB's category (`STRING`, `DATE / TIME`, …).
    pub category: String,
}

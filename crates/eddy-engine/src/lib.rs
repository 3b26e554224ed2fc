//! Eddy's continuous-query runtime.
//!
//! Entry point: [`Engine`]. It holds the catalog and the running queries, executes parsed
//! statements ([`Engine::execute`]) and runs each persistent query as a task: poll a batch of
//! records from a [`eddy_topic::RecordSource`], decode it into Arrow, join, filter and project
//! it with DataFusion expressions, encode it and hand it to a [`eddy_topic::RecordSink`],
//! then commit. The engine is given a [`eddy_topic::TopicIo`] and a
//! [`eddy_state::StateBackend`] and never knows whether they are Kafka and RocksDB or memory.
//!
//! Invariant: this crate knows nothing of HTTP or the REST wire format.

mod aggregate;
mod changelog;
mod command_log;
mod ddl;
mod engine;
mod error;
mod eval;
mod explain;
mod foreign_key_join;
mod headless;
mod insert_values;
mod join_wiring;
pub mod membership;
pub mod memory;
pub mod metrics;
mod operator;
mod planner;
pub mod processing_log;
mod pull;
mod pull_access;
mod query;
mod reader;
mod repartition;
mod results;
mod runner;
pub mod schema_topic;
mod stats;
mod stream_join;
mod table;
mod table_join;
mod transient;

pub use command_log::{Command, CommandLog, Executed, ReplayReport, command_id, is_recorded};
pub use engine::{Engine, EngineConfig, Properties};
pub use error::{EngineError, Fault};
pub use explain::Explanation;
pub use insert_values::JsonInserter;
pub use pull::PullResult;
pub use results::{
    FunctionListing, PartitionOffsets, QueryOffsets, QuerySummary, QueryType, SourceDescription,
    SourceSummary, StatementResult, TopicOffsets,
};
pub use runner::RunMode;
pub use transient::{TopicPrint, TransientCancel, TransientQuery, TransientRows};

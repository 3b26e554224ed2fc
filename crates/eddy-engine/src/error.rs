//! The engine's errors, each knowing whose fault it is.

use eddy_formats::FormatError;
use eddy_sql::SqlError;
use eddy_state::StateError;
use eddy_topic::TopicError;

/// Whose fault an error is; the REST layer maps this to ksqlDB's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The statement or its input is wrong.
    User,
    /// Something the statement names does not exist.
    NotFound,
    /// A dependency (Kafka, disk) failed.
    External,
    /// A bug in Eddy.
    Internal,
}

/// What went wrong in the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The statement is not valid or not supported.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A stream, table, query or topic the statement names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The statement is valid SQL but cannot be executed as asked.
    #[error("{0}")]
    Invalid(String),
    /// A push or pull query was sent where only statements are accepted.
    #[error(
        "The following statement types should be issued to the websocket endpoint '/query': {0}"
    )]
    UseQueryEndpoint(String),
    /// A serialisation format cannot be used as asked.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Talking to the topics' broker failed.
    #[error(transparent)]
    Topic(#[from] TopicError),
    /// The state store failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// Evaluating an expression failed.
    #[error("{0}")]
    Eval(String),
    /// An `ASSERT` statement does not hold.
    #[error("{0}")]
    AssertionFailed(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// Whose fault this is.
    pub fn fault(&self) -> Fault {
        match self {
            EngineError::Sql(SqlError::Unknown(_)) => Fault::User,
            EngineError::Sql(_)
            | EngineError::Invalid(_)
            | EngineError::UseQueryEndpoint(_)
            | EngineError::Format(_)
            | EngineError::Eval(_)
            | EngineError::AssertionFailed(_) => Fault::User,
            EngineError::NotFound(_) => Fault::NotFound,
            EngineError::Topic(_) | EngineError::State(_) => Fault::External,
            EngineError::Internal(_) => Fault::Internal,
        }
    }
}

impl From<datafusion_common::DataFusionError> for EngineError {
    fn from(e: datafusion_common::DataFusionError) -> Self {
        EngineError::Eval(e.strip_backtrace())
    }
}

impl From<arrow::error::ArrowError> for EngineError {
    fn from(e: arrow::error::ArrowError) -> Self {
        EngineError::Eval(e.to_string())
    }
}

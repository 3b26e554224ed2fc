//! Errors of the SQL layer: always the user's statement's fault, or an unsupported feature.

/// A position in the submitted text (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// Line number.
    pub line: u64,
    /// Column number.
    pub column: u64,
}

/// What is wrong with a statement.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The text is not valid KSQL.
    #[error("line {}:{}: {message}", .location.line, .location.column)]
    Parse {
        /// What the parser expected or found.
        message: String,
        /// Where.
        location: Location,
    },
    /// The statement parses but is wrong at a place ksqlDB names ("Line: 1, Col: 21: …").
    #[error("Line: {}, Col: {}: {message}", .location.line, .location.column)]
    Located {
        /// What is wrong.
        message: String,
        /// Where.
        location: Location,
    },
    /// The statement could not be prepared (its literals or properties are invalid), in
    /// ksqlDB's words.
    #[error("Failed to prepare statement: {0}")]
    Prepare(String),
    /// A name that is not in the catalog or the query's scope.
    #[error("{0}")]
    Unknown(String),
    /// The statement is valid KSQL but wrong (types, missing properties, …).
    #[error("{0}")]
    Invalid(String),
    /// A construct Eddy does not support yet.
    #[error("{0} is not supported yet")]
    Unsupported(String),
    /// Planning with DataFusion failed.
    #[error("{0}")]
    Plan(String),
}

//! ksqlDB's error codes and HTTP statuses, decided in one place.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eddy_engine::{EngineError, Fault};

use crate::wire::{Entity, ErrorResponse};

/// 40001: the statement is wrong.
pub const BAD_STATEMENT: u32 = 40001;
/// 40002: a query was sent to `/ksql`.
pub const USE_QUERY_ENDPOINT: u32 = 40002;
/// 41700: an `ASSERT` statement does not hold (HTTP 417, Expectation Failed).
pub const ASSERTION_FAILED: u32 = 41700;
/// 40000: the request itself is malformed.
pub const BAD_REQUEST: u32 = 40000;
/// 40100: no or wrong credentials.
pub const UNAUTHORIZED: u32 = 40100;
/// 40300: the user may not use the server.
pub const FORBIDDEN: u32 = 40300;
/// 40400: something named does not exist.
pub const NOT_FOUND: u32 = 40400;
/// 50000: a server-side failure.
pub const SERVER_ERROR: u32 = 50000;
/// 41300: the request body is larger than the server accepts.
pub const TOO_LARGE: u32 = 41300;
/// 50301: a request's `commandSequenceNumber` was not reached in time.
pub const COMMAND_QUEUE_TIMEOUT: u32 = 50301;
/// 50300: the server is starting (replaying its command log) and not serving yet.
pub const NOT_READY: u32 = 50300;

/// An error answer to a request.
#[derive(Debug)]
pub struct ApiError {
    code: u32,
    message: String,
    statement: Option<String>,
    entities: Vec<Entity>,
}

impl ApiError {
    /// An error of a statement, with the entities executed before it.
    pub fn statement(e: &EngineError, statement: &str, entities: Vec<Entity>) -> Self {
        let (code, message) = match e.fault() {
            _ if matches!(e, EngineError::UseQueryEndpoint(_)) => {
                (USE_QUERY_ENDPOINT, e.to_string())
            }
            _ if matches!(e, EngineError::AssertionFailed(_)) => (ASSERTION_FAILED, e.to_string()),
            Fault::User => (BAD_STATEMENT, e.to_string()),
            Fault::NotFound => (NOT_FOUND, e.to_string()),
            Fault::External => (SERVER_ERROR, e.to_string()),
            Fault::Internal => {
                tracing::error!(statement, "internal error: {e}");
                (
                    SERVER_ERROR,
                    "Internal server error; see the server log.".to_string(),
                )
            }
        };
        Self {
            code,
            message,
            statement: Some(statement.to_string()),
            entities,
        }
    }

    /// An engine error that concerns no statement (e.g. of `/inserts-stream`).
    pub fn engine(e: &EngineError) -> Self {
        Self {
            statement: None,
            ..Self::statement(e, "", Vec::new())
        }
    }

    /// ksqlDB's error code, e.g. 40001.
    pub fn code(&self) -> u32 {
        self.code
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            code: BAD_REQUEST,
            message: message.into(),
            statement: None,
            entities: Vec::new(),
        }
    }

    /// An error that concerns no statement.
    pub fn generic(code: u32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            statement: None,
            entities: Vec::new(),
        }
    }

    /// A request that came before the command log was replayed.
    pub fn not_ready() -> Self {
        Self::generic(
            NOT_READY,
            "KSQL is not yet ready to serve requests: the command log is being replayed.",
        )
    }

    /// A request body over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::generic(
            TOO_LARGE,
            format!("The request body is larger than the server accepts ({limit} bytes)."),
        )
    }

    /// A statement the parser rejected.
    pub fn parse(message: impl Into<String>, statement: &str) -> Self {
        Self {
            code: BAD_STATEMENT,
            message: message.into(),
            statement: Some(statement.to_string()),
            entities: Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16((self.code / 100) as u16)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = match self.statement {
            Some(statement) => ErrorResponse::Statement {
                error_code: self.code,
                message: self.message,
                statement_text: statement,
                entities: self.entities,
            },
            None => ErrorResponse::Generic {
                error_code: self.code,
                message: self.message,
            },
        };
        (status, Json(body)).into_response()
    }
}

//! The shell's one error type.

use std::path::PathBuf;

/// Everything that can go wrong in the shell.
///
/// Whose fault it is: [`ShellError::Server`] is the statement's (the server refused it);
/// [`ShellError::Unreachable`] and [`ShellError::Http`] are the network's or the server's;
/// [`ShellError::Script`] and [`ShellError::Usage`] are the user's; [`ShellError::Protocol`]
/// means the server answered something the shell does not understand.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The server refused a statement or request; `message` is its own words.
    #[error("{message}")]
    Server {
        /// ksqlDB's error code (e.g. 40001), when the server sent one.
        code: Option<u64>,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached at all.
    #[error("cannot reach the server at {url}: {reason}")]
    Unreachable {
        /// The server URL.
        url: String,
        /// Why, in the words of the innermost cause (e.g. "Connection refused").
        reason: String,
    },
    /// The server did not answer a request within `--request-timeout`.
    #[error("the server at {url} did not answer within {seconds} s (--request-timeout)")]
    Timeout {
        /// The server URL.
        url: String,
        /// The timeout.
        seconds: u64,
    },
    /// A request failed after the connection was made (e.g. the connection dropped).
    #[error("request to the server failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The server answered something that is not what ksqlDB's API documents.
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
    /// A script file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Script {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A statement of a script (`-f`, `-e` or `RUN SCRIPT`) failed.
    #[error("Statement at line {line} of {origin} failed:\n{statement}\n{source}")]
    Statement {
        /// Where the statement came from: a file path or `--execute`.
        origin: String,
        /// The line it starts on, 1-based.
        line: usize,
        /// Its text.
        statement: String,
        /// Why it failed.
        #[source]
        source: Box<ShellError>,
    },
    /// A shell command was used wrongly (e.g. `OUTPUT XML`).
    #[error("{0}")]
    Usage(String),
    /// Reading the terminal or writing the history failed.
    #[error("terminal: {0}")]
    Terminal(#[from] rustyline::error::ReadlineError),
    /// Writing to the terminal or starting the runtime failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

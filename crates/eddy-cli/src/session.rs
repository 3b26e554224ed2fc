//! A shell session: its properties and output format, and the execution of statements.

use std::future::Future;
use std::io::Write;
use std::path::Path;
use std::pin::Pin;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::command::{Command, OutputFormat};
use crate::error::ShellError;
use crate::query_stream::{ArrayReader, QueryMessage};
use crate::render::{self, RowPrinter};
use crate::statements::{self, Statement};

/// Nesting limit of `RUN SCRIPT`, so that a script running itself fails instead of looping.
const MAX_SCRIPT_DEPTH: usize = 16;

/// Whether the shell goes on after a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next statement.
    Continue,
    /// `EXIT` was given.
    Exit,
}

/// State kept across statements.
pub struct Session {
    client: Client,
    /// Properties set with `SET`, sent as `streamsProperties` with every request.
    properties: Map<String, Value>,
    /// Variables defined with `DEFINE` (or `--define`), sent as `sessionVariables` with every
    /// request; the server substitutes them.
    variables: Map<String, Value>,
    output: OutputFormat,
    /// Whether Ctrl-C stops the running statement (interactive use) instead of the process.
    interruptible: bool,
    script_depth: usize,
}

type Interrupt = Pin<Box<dyn Future<Output = ()>>>;

impl Session {
    /// A session against `client`'s server.
    pub fn new(client: Client, output: OutputFormat, interruptible: bool) -> Session {
        Session {
            client,
            properties: Map::new(),
            variables: Map::new(),
            output,
            interruptible,
            script_depth: 0,
        }
    }

    /// Defines a variable for the rest of the session (`DEFINE`, `--define`).
    pub fn define(&mut self, name: &str, value: &str) {
        self.undefine(name);
        self.variables
            .insert(name.to_string(), Value::String(value.to_string()));
    }

    /// Forgets a variable, whatever the case of its name; whether it was defined.
    fn undefine(&mut self, name: &str) -> bool {
        let before = self.variables.len();
        self.variables.retain(|k, _| !k.eq_ignore_ascii_case(name));
        self.variables.len() != before
    }

    /// Whether Ctrl-C stops the running statement rather than the process.
    pub fn interruptible(&self) -> bool {
        self.interruptible
    }

    /// The HTTP client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs every statement of `text`, in order, stopping at the first that fails.
    ///
    /// # Errors
    ///
    /// [`ShellError::Statement`] naming the failed statement, its line and `origin` (a file
    /// name or `--execute`).
    pub async fn run_text(&mut self, text: &str, origin: &str) -> Result<Flow, ShellError> {
        let split = statements::split(text);
        for statement in split.statements.iter().chain(&split.rest_statement) {
            let outcome = self
                .execute(statement)
                .await
                .map_err(|e| ShellError::Statement {
                    origin: origin.to_string(),
                    line: statement.line,
                    statement: format!("{};", statement.text),
                    source: Box::new(e),
                })?;
            if outcome == Flow::Exit {
                return Ok(Flow::Exit);
            }
        }
        Ok(Flow::Continue)
    }

    /// Executes one statement and prints its result.
    ///
    /// # Errors
    ///
    /// The server's refusal, a network failure, or a malformed shell command.
    pub async fn execute(&mut self, statement: &Statement) -> Result<Flow, ShellError> {
        spool(&format!("{};", statement.text))?;
        match Command::parse(&statement.text).map_err(ShellError::Usage)? {
            Command::Exit => return Ok(Flow::Exit),
            Command::Help => print(HELP)?,
            Command::Output(None) => print(&format!("Output format: {}", self.output_name()))?,
            Command::Output(Some(format)) => {
                self.output = format;
                print(&format!("Output format set to {}", self.output_name()))?;
            }
            Command::Set { name, value } => {
                print(&format!(
                    "Successfully changed local property '{name}' to '{value}'. \
                     Use the UNSET command to revert your change."
                ))?;
                self.properties.insert(name, Value::String(value));
            }
            Command::Unset { name } => match self.properties.remove(&name) {
                Some(old) => print(&format!(
                    "Successfully unset local property '{name}' (value was '{}').",
                    render::text(&old)
                ))?,
                None => {
                    return Err(ShellError::Usage(format!(
                        "Cannot unset local property '{name}' which was never set"
                    )));
                }
            },
            Command::Define { name, value } => self.define(&name, &value),
            Command::Undefine { name } => {
                if !self.undefine(&name) {
                    return Err(ShellError::Usage(format!(
                        "Cannot undefine variable '{name}' which was never defined"
                    )));
                }
            }
            Command::ShowVariables => {
                let entity = serde_json::json!({
                    "@type": "variables",
                    "statementText": format!("{};", statement.text),
                    "variables": self.variables.iter()
                        .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
                        .collect::<Vec<_>>(),
                    "warnings": [],
                });
                match self.output {
                    OutputFormat::Json => print(
                        &serde_json::to_string_pretty(&Value::Array(vec![entity]))
                            .map_err(|e| ShellError::Protocol(e.to_string()))?,
                    )?,
                    OutputFormat::Tabular => print(&format!("\n{}\n", render::entity(&entity)))?,
                }
            }
            Command::Spool(Some(path)) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| ShellError::Script {
                        path: path.clone(),
                        source,
                    })?;
                if let Ok(mut spool) = SPOOL.lock() {
                    *spool = Some(file);
                }
                print(&format!("Session will be spooled to {}", path.display()))?;
            }
            Command::Spool(None) => {
                let was = SPOOL
                    .lock()
                    .map(|mut s| s.take().is_some())
                    .unwrap_or(false);
                if !was {
                    return Err(ShellError::Usage(
                        "The session is not being spooled.".into(),
                    ));
                }
                print("Spooling stopped.")?;
            }
            Command::RunScript(path) => return Box::pin(self.run_script(&path)).await,
            Command::Query(text) => self.query(&text).await?,
            Command::Ksql(text) => self.ksql(&text).await?,
        }
        Ok(Flow::Continue)
    }

    async fn run_script(&mut self, path: &Path) -> Result<Flow, ShellError> {
        if self.script_depth >= MAX_SCRIPT_DEPTH {
            return Err(ShellError::Usage(format!(
                "RUN SCRIPT nested more than {MAX_SCRIPT_DEPTH} deep"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|source| ShellError::Script {
            path: path.to_path_buf(),
            source,
        })?;
        self.script_depth += 1;
        let outcome = self.run_text(&text, &path.display().to_string()).await;
        self.script_depth -= 1;
        outcome
    }

    async fn ksql(&mut self, text: &str) -> Result<(), ShellError> {
        let entities = tokio::select! {
            r = self.client.ksql(text, &self.properties, &self.variables) => r?,
            () = self.interrupt() => {
                print("Interrupted; the server may still run the statement.")?;
                return Ok(());
            }
        };
        match self.output {
            OutputFormat::Json => print(
                &serde_json::to_string_pretty(&Value::Array(entities))
                    .map_err(|e| ShellError::Protocol(e.to_string()))?,
            ),
            OutputFormat::Tabular => {
                for e in &entities {
                    print(&format!("\n{}\n", render::entity(e)))?;
                }
                Ok(())
            }
        }
    }

    /// Streams a query's results until the server ends it or the user presses Ctrl-C, which
    /// drops the connection: the server then stops the query.
    async fn query(&mut self, text: &str) -> Result<(), ShellError> {
        let mut interrupt = self.interrupt();
        let response = tokio::select! {
            r = self.client.query(text, &self.properties, &self.variables) => r?,
            () = &mut interrupt => {
                print("Query terminated")?;
                return Ok(());
            }
        };
        let mut body = response.bytes_stream();
        let mut reader = ArrayReader::new();
        let mut printer = None;
        loop {
            let chunk = tokio::select! {
                chunk = body.next() => chunk,
                () = &mut interrupt => break,
            };
            let Some(chunk) = chunk else {
                self.close_table(&printer)?;
                return Ok(());
            };
            for message in reader.feed(&chunk?)? {
                self.show(message, &mut printer)?;
            }
        }
        drop(body);
        self.close_table(&printer)?;
        print("Query terminated")
    }

    fn show(
        &mut self,
        message: QueryMessage,
        printer: &mut Option<RowPrinter>,
    ) -> Result<(), ShellError> {
        let json = self.output == OutputFormat::Json;
        match message {
            QueryMessage::Header { query_id, columns } if json => {
                print(&json!({"queryId": query_id, "columnNames": columns}).to_string())
            }
            QueryMessage::Header { columns, .. } => {
                let width = render::terminal_width().map_or(80, usize::from);
                let p = RowPrinter::new(columns.len(), width);
                print(&p.header(&columns))?;
                *printer = Some(p);
                Ok(())
            }
            QueryMessage::Row(values) => match printer {
                Some(p) if !json => print(&p.row(&values)),
                _ => print(&Value::Array(values).to_string()),
            },
            QueryMessage::Final(message) => {
                self.close_table(printer)?;
                *printer = None;
                print(&message)
            }
            QueryMessage::Error(message) => {
                self.close_table(printer)?;
                *printer = None;
                Err(ShellError::Server {
                    code: None,
                    message,
                })
            }
            QueryMessage::Text(text) => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())?;
                out.flush()?;
                Ok(())
            }
        }
    }

    fn close_table(&self, printer: &Option<RowPrinter>) -> Result<(), ShellError> {
        match printer {
            Some(p) => print(&p.border()),
            None => Ok(()),
        }
    }

    /// Resolves on Ctrl-C when the session is interactive; never otherwise.
    fn interrupt(&self) -> Interrupt {
        if self.interruptible {
            Box::pin(async {
                if tokio::signal::ctrl_c().await.is_err() {
                    std::future::pending::<()>().await;
                }
            })
        } else {
            Box::pin(std::future::pending())
        }
    }

    fn output_name(&self) -> &'static str {
        match self.output {
            OutputFormat::Tabular => "TABULAR",
            OutputFormat::Json => "JSON",
        }
    }
}

/// Prints a line to stdout and flushes it, so rows show as they arrive.
pub(crate) fn print(text: &str) -> Result<(), ShellError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    spool(text)
}

/// The file `SPOOL` writes the session's output to, if any.
static SPOOL: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

/// Appends `text` to the spool file, if one is open.
fn spool(text: &str) -> Result<(), ShellError> {
    if let Ok(mut file) = SPOOL.lock()
        && let Some(f) = file.as_mut()
    {
        writeln!(f, "{text}")?;
    }
    Ok(())
}

const HELP: &str = "\
Statements end with ';' and may span several lines; '--' starts a comment.
They go to the server: SHOW STREAMS|TABLES|QUERIES|TOPICS|PROPERTIES|FUNCTIONS, DESCRIBE,
CREATE, DROP, INSERT, TERMINATE, EXPLAIN …; SELECT … EMIT CHANGES and PRINT stream their
results until the query ends or you press Ctrl-C.

Shell commands:
  SET 'property'='value';   a property sent with every statement of this session
  UNSET 'property';         forget it
  DEFINE name = 'value';    a variable: ${name} in later statements becomes value
  UNDEFINE name;            forget it
  SHOW VARIABLES;           the variables of this session
  SPOOL 'file';             also write statements and their results to a file
  SPOOL OFF;                stop
  OUTPUT [JSON|TABULAR]     show or change how results are printed
  RUN SCRIPT 'file'         run the statements of a file, stopping at the first failure
  HELP                      this text
  EXIT, or Ctrl-D           leave the shell

Ctrl-C clears the line being typed, or stops the running query.
Ctrl-R searches the history (kept in ~/.eddy/history).";

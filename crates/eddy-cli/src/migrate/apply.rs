//! Applying migration files: which statements a file may hold, its `SET`/`DEFINE` lines
//! (which last for the file only), and sending the rest to the server one by one.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::files::MigrationFile;
use crate::client::Client;
use crate::error::ShellError;
use crate::statements::{Statement, split};

/// One statement of a migration file, as the tool handles it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Sent to the server (after variable substitution).
    Send(Statement),
    /// `SET 'name' = 'value'`: a property of the following statements of the file.
    Set(String, String),
    /// `UNSET 'name'`.
    Unset(String),
    /// `DEFINE name = 'value'`: `${name}` in the following statements of the file.
    Define(String, String),
    /// `UNDEFINE name`.
    Undefine(String),
}

/// The statements a migration may hold, by their first word(s), as ksqlDB's tool allows
/// them: what changes streams, tables, queries, types and data; not queries or listings.
const ALLOWED: &[&str] = &[
    "CREATE",
    "INSERT",
    "PAUSE",
    "RESUME",
    "TERMINATE",
    "DROP",
    "ALTER",
    "ASSERT",
];

/// The steps of `file`, checked before anything of it is applied.
///
/// # Errors
///
/// [`ShellError::Usage`] naming the file and line of a statement a migration may not hold,
/// a malformed `SET`/`DEFINE`, or an unfinished last statement.
pub fn steps(file: &MigrationFile) -> Result<Vec<Step>, ShellError> {
    let text = file.text()?;
    let split = split(&text);
    let at = |line: usize| format!("{}, line {line}", file.path.display());
    if let Some(rest) = split.rest_statement {
        return Err(ShellError::Usage(format!(
            "{}: the last statement is not ended by ';': {}",
            at(rest.line),
            rest.text
        )));
    }
    split
        .statements
        .into_iter()
        .map(|statement| {
            let words: Vec<&str> = statement.text.split_whitespace().collect();
            let first = words
                .first()
                .map(|w| w.to_ascii_uppercase())
                .unwrap_or_default();
            let rest = statement.text[first.len()..].trim();
            let malformed = |what: &str| {
                ShellError::Usage(format!(
                    "{}: expected {what}, got: {}",
                    at(statement.line),
                    statement.text
                ))
            };
            match first.as_str() {
                "SET" => assignment(rest)
                    .map(|(k, v)| Step::Set(k, v))
                    .ok_or_else(|| malformed("SET 'property' = 'value'")),
                "UNSET" => unquote(rest)
                    .map(Step::Unset)
                    .ok_or_else(|| malformed("UNSET 'property'")),
                "DEFINE" => assignment(rest)
                    .map(|(k, v)| Step::Define(k, v))
                    .ok_or_else(|| malformed("DEFINE name = 'value'")),
                "UNDEFINE" => unquote(rest)
                    .map(Step::Undefine)
                    .ok_or_else(|| malformed("UNDEFINE name")),
                word if ALLOWED.contains(&word) => Ok(Step::Send(statement)),
                _ => Err(ShellError::Usage(format!(
                    "{}: a migration may not hold this statement (only CREATE, INSERT, ALTER, \
                     DROP, TERMINATE, PAUSE, RESUME, ASSERT, SET, UNSET, DEFINE and \
                     UNDEFINE): {}",
                    at(statement.line),
                    statement.text
                ))),
            }
        })
        .collect()
}

/// `name = value`, each optionally quoted.
fn assignment(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    Some((unquote(name)?, unquote(value)?))
}

/// A word, without its single quotes if it has them.
fn unquote(text: &str) -> Option<String> {
    let text = text.trim();
    let inner = match text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => text.to_string(),
    };
    (!inner.is_empty()).then_some(inner)
}

/// Runs the steps of one file; `defines` are the `--define` variables, set before the
/// file's own. Stops at the first statement that fails and returns its error text.
pub async fn run(
    client: &Client,
    file: &MigrationFile,
    steps: &[Step],
    defines: &HashMap<String, String>,
) -> Result<(), String> {
    let mut properties = Map::new();
    // Sent with each statement as its `sessionVariables`; the server substitutes them.
    let mut variables: Map<String, Value> = defines
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    for step in steps {
        match step {
            Step::Set(name, value) => {
                properties.insert(name.clone(), Value::String(value.clone()));
            }
            Step::Unset(name) => {
                properties.remove(name);
            }
            Step::Define(name, value) => {
                variables.insert(name.clone(), Value::String(value.clone()));
            }
            Step::Undefine(name) => {
                variables.retain(|k, _| !k.eq_ignore_ascii_case(name));
            }
            Step::Send(statement) => {
                let at = |e: &dyn std::fmt::Display| {
                    format!(
                        "{}, line {}: {}: {e}",
                        file.path.display(),
                        statement.line,
                        statement.text
                    )
                };
                client
                    .ksql(&statement.text, &properties, &variables)
                    .await
                    .map_err(|e| at(&e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, text: &str) -> MigrationFile {
        let path = dir.join("V000001__test.sql");
        std::fs::write(&path, text).ok();
        MigrationFile {
            version: 1,
            name: "test".into(),
            path,
        }
    }

    #[test]
    fn reads_the_statements_a_migration_may_hold() -> Result<(), ShellError> {
        let dir = tempfile::tempdir()?;
        let steps = steps(&file(
            dir.path(),
            "SET 'auto.offset.reset' = 'earliest';\nDEFINE topic = 'orders';\n\
             CREATE STREAM s (id INT KEY) WITH (KAFKA_TOPIC='${topic}', VALUE_FORMAT='JSON');\n\
             UNDEFINE topic;\nUNSET 'auto.offset.reset';",
        ))?;
        assert_eq!(
            steps[0],
            Step::Set("auto.offset.reset".into(), "earliest".into())
        );
        assert_eq!(steps[1], Step::Define("topic".into(), "orders".into()));
        assert!(matches!(&steps[2], Step::Send(s) if s.line == 3));
        assert_eq!(steps[3], Step::Undefine("topic".into()));
        assert_eq!(steps[4], Step::Unset("auto.offset.reset".into()));

        let e = super::steps(&file(
            dir.path(),
            "CREATE STREAM a AS SELECT * FROM b;\n\nSELECT * FROM b;",
        ));
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("V000001__test.sql, line 3: a migration may not hold"),
            "{e}"
        );
        let e = super::steps(&file(dir.path(), "DROP STREAM a;\nDROP STREAM b"));
        let e = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("line 2: the last statement is not ended by ';'"),
            "{e}"
        );
        Ok(())
    }
}

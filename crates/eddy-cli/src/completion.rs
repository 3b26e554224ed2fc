//! Tab completion in the interactive shell (ksqlDB's CLI has none): the word before the
//! cursor is completed from ksqlDB's keywords and types, and from the names of the server's
//! streams, tables and functions, which the shell asks for at start and after each statement.

use std::sync::{Arc, Mutex};

use rustyline::Helper;
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use serde_json::Value;

/// Words every session can complete: statements, clauses, properties and types.
const KEYWORDS: &[&str] = &[
    "ADD",
    "ADVANCE",
    "ALL",
    "ALTER",
    "AND",
    "ARRAY",
    "AS",
    "ASSERT",
    "BEGINNING",
    "BETWEEN",
    "BIGINT",
    "BOOLEAN",
    "BY",
    "BYTES",
    "CASE",
    "CAST",
    "CHANGES",
    "COLUMN",
    "CREATE",
    "DATE",
    "DECIMAL",
    "DEFINE",
    "DELETE",
    "DESCRIBE",
    "DISTINCT",
    "DOUBLE",
    "DROP",
    "ELSE",
    "EMIT",
    "END",
    "EXISTS",
    "EXIT",
    "EXPLAIN",
    "EXTENDED",
    "FALSE",
    "FINAL",
    "FROM",
    "FULL",
    "FUNCTION",
    "FUNCTIONS",
    "GRACE",
    "GROUP",
    "HAVING",
    "HELP",
    "HOPPING",
    "IF",
    "IN",
    "INNER",
    "INSERT",
    "INT",
    "INTEGER",
    "INTERVAL",
    "INTO",
    "IS",
    "JOIN",
    "KAFKA_TOPIC",
    "KEY",
    "KEY_FORMAT",
    "LEFT",
    "LIKE",
    "LIMIT",
    "LIST",
    "MAP",
    "NOT",
    "NULL",
    "ON",
    "OR",
    "OUTER",
    "OUTPUT",
    "PARTITION",
    "PARTITIONS",
    "PAUSE",
    "PERIOD",
    "PRIMARY",
    "PRINT",
    "PROPERTIES",
    "QUERIES",
    "REPLACE",
    "REPLICAS",
    "RESUME",
    "RIGHT",
    "RUN",
    "SCRIPT",
    "SELECT",
    "SESSION",
    "SET",
    "SHOW",
    "SIZE",
    "SOURCE",
    "SPOOL",
    "STREAM",
    "STREAMS",
    "STRING",
    "STRUCT",
    "TABLE",
    "TABLES",
    "TERMINATE",
    "THEN",
    "TIME",
    "TIMEOUT",
    "TIMESTAMP",
    "TOPIC",
    "TOPICS",
    "TRUE",
    "TUMBLING",
    "UNDEFINE",
    "UNSET",
    "VALUES",
    "VALUE_FORMAT",
    "VARCHAR",
    "VARIABLES",
    "WHEN",
    "WHERE",
    "WINDOW",
    "WITH",
    "WITHIN",
];

/// The shell's line-editor helper: completion from keywords and the server's names.
#[derive(Clone, Default)]
pub struct ShellHelper {
    names: Arc<Mutex<Vec<String>>>,
}

impl ShellHelper {
    /// Replaces the server's names with those in the answers to `SHOW STREAMS`, `SHOW
    /// TABLES` and `SHOW FUNCTIONS`.
    pub fn set_names(&self, entities: &[Value]) {
        let mut names = Vec::new();
        for entity in entities {
            for list in ["streams", "tables", "functions"] {
                if let Some(items) = entity[list].as_array() {
                    names.extend(
                        items
                            .iter()
                            .filter_map(|i| i["name"].as_str())
                            .map(str::to_string),
                    );
                }
            }
        }
        names.sort();
        names.dedup();
        if let Ok(mut held) = self.names.lock() {
            *held = names;
        }
    }

    /// The completions of the word that ends at byte `pos` of `line`: where it starts, and
    /// the words it may become, in the case it was typed in (lower case for a word typed
    /// in lower case).
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos.min(line.len())];
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
            .last()
            .map_or(before.len(), |(i, _)| i);
        let word = &before[start..];
        if word.is_empty() {
            return (start, Vec::new());
        }
        let upper = word.to_ascii_uppercase();
        let lower = word.chars().all(|c| !c.is_ascii_uppercase());
        let names = self.names.lock().map(|n| n.clone()).unwrap_or_default();
        let mut found: Vec<String> = KEYWORDS
            .iter()
            .map(|k| k.to_string())
            .chain(names)
            .filter(|w| w.to_ascii_uppercase().starts_with(&upper) && w.len() > word.len())
            .map(|w| if lower { w.to_ascii_lowercase() } else { w })
            .collect();
        found.sort();
        found.dedup();
        (start, found)
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = self.candidates(line, pos);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn completes_keywords_and_the_servers_names_in_the_case_typed() {
        let helper = ShellHelper::default();
        helper.set_names(&[
            json!({"@type": "streams", "streams": [{"name": "REVIEWS"}, {"name": "REVIEWS_CLEAN"}]}),
            json!({"@type": "function_names", "functions": [{"name": "SUBSTRING"}]}),
        ]);
        assert_eq!(helper.candidates("SHO", 3), (0, vec!["SHOW".to_string()]));
        assert_eq!(
            helper.candidates("select * from rev", 17),
            (14, vec!["reviews".to_string(), "reviews_clean".to_string()])
        );
        assert_eq!(
            helper.candidates("DESCRIBE FUNCTION SUBS", 22),
            (18, vec!["SUBSTRING".to_string()])
        );
        assert_eq!(helper.candidates("SELECT ", 7), (7, Vec::new()));
        // A complete word offers nothing more, and the cursor's position counts.
        assert_eq!(helper.candidates("SHOW", 4).1, Vec::<String>::new());
        assert_eq!(
            helper.candidates("SHO STREAMS", 3).1,
            vec!["SHOW".to_string()]
        );
    }
}

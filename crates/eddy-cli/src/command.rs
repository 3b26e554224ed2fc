//! What a statement asks of the shell: a command it runs itself, a query for `POST /query`,
//! or a statement for `POST /ksql`.

use std::path::PathBuf;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// ASCII tables.
    Tabular,
    /// The server's JSON.
    Json,
}

/// One statement, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `SET 'name'='value'`: a property for the rest of the session.
    Set {
        /// Property name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `UNSET 'name'`.
    Unset {
        /// Property name.
        name: String,
    },
    /// `DEFINE name = 'value'`: a variable for `${name}` in the session's statements, sent
    /// with every request (`sessionVariables`).
    Define {
        /// Variable name.
        name: String,
        /// Its value.
        value: String,
    },
    /// `UNDEFINE name`.
    Undefine {
        /// Variable name.
        name: String,
    },
    /// `SHOW VARIABLES` / `LIST VARIABLES`.
    ShowVariables,
    /// `SPOOL 'file'` (write the session's statements and output to a file too) or
    /// `SPOOL OFF`.
    Spool(Option<PathBuf>),
    /// `OUTPUT` (show the format) or `OUTPUT JSON|TABULAR`.
    Output(Option<OutputFormat>),
    /// `RUN SCRIPT 'file'`.
    RunScript(PathBuf),
    /// `HELP`.
    Help,
    /// `EXIT` or `QUIT`.
    Exit,
    /// `SELECT …` or `PRINT …`: streamed from `POST /query`.
    Query(String),
    /// Anything else: sent to `POST /ksql`.
    Ksql(String),
}

impl Command {
    /// Classifies a statement's text (without its `;`).
    ///
    /// # Errors
    ///
    /// A message for shell commands that are malformed (`OUTPUT XML`, `RUN SCRIPT` without a
    /// file). `SET`/`UNSET` the shell cannot read go to the server, which says what is wrong.
    pub fn parse(text: &str) -> Result<Command, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let first = upper.first().map(String::as_str).unwrap_or_default();
        match first {
            "EXIT" | "QUIT" if words.len() == 1 => Ok(Command::Exit),
            "HELP" if words.len() == 1 => Ok(Command::Help),
            "OUTPUT" => match upper.get(1).map(String::as_str) {
                None => Ok(Command::Output(None)),
                Some("JSON") if words.len() == 2 => Ok(Command::Output(Some(OutputFormat::Json))),
                Some("TABULAR") if words.len() == 2 => {
                    Ok(Command::Output(Some(OutputFormat::Tabular)))
                }
                _ => Err("usage: OUTPUT [JSON|TABULAR]".into()),
            },
            "RUN" if upper.get(1).map(String::as_str) == Some("SCRIPT") => {
                let rest = after_words(text, 2);
                let path = quoted(rest)
                    .filter(|(_, tail)| tail.trim().is_empty())
                    .map(|(p, _)| p)
                    .or_else(|| (!rest.is_empty() && !rest.contains('\'')).then(|| rest.into()))
                    .ok_or("usage: RUN SCRIPT 'file'")?;
                Ok(Command::RunScript(PathBuf::from(path)))
            }
            "SET" => Ok(set(after_words(text, 1)).unwrap_or_else(|| Command::Ksql(text.into()))),
            "UNSET" => Ok(quoted(after_words(text, 1))
                .filter(|(_, tail)| tail.trim().is_empty())
                .map(|(name, _)| Command::Unset { name })
                .unwrap_or_else(|| Command::Ksql(text.into()))),
            "DEFINE" => {
                Ok(define(after_words(text, 1)).unwrap_or_else(|| Command::Ksql(text.into())))
            }
            "UNDEFINE" if words.len() == 2 && is_variable_name(words[1]) => Ok(Command::Undefine {
                name: words[1].into(),
            }),
            "SHOW" | "LIST"
                if words.len() == 2 && upper.get(1).map(String::as_str) == Some("VARIABLES") =>
            {
                Ok(Command::ShowVariables)
            }
            "SPOOL" if upper.get(1).map(String::as_str) == Some("OFF") && words.len() == 2 => {
                Ok(Command::Spool(None))
            }
            "SPOOL" => {
                let rest = after_words(text, 1);
                let path = quoted(rest)
                    .filter(|(_, tail)| tail.trim().is_empty())
                    .map(|(p, _)| p)
                    .or_else(|| (!rest.is_empty() && !rest.contains('\'')).then(|| rest.into()))
                    .ok_or("usage: SPOOL 'file' | SPOOL OFF")?;
                Ok(Command::Spool(Some(PathBuf::from(path))))
            }
            "SELECT" | "PRINT" => Ok(Command::Query(text.into())),
            _ => Ok(Command::Ksql(text.into())),
        }
    }

    /// Whether a typed line is a shell command that needs no `;` (as in ksqlDB's CLI).
    pub fn is_bare_command(line: &str) -> bool {
        let upper = line.trim().trim_end_matches(';').to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        matches!(
            words.as_slice(),
            ["EXIT" | "QUIT" | "HELP" | "OUTPUT"]
                | ["OUTPUT", _]
                | ["RUN", "SCRIPT", ..]
                | ["SPOOL", ..]
        )
    }
}

/// `name = 'value'` → `Define`.
fn define(text: &str) -> Option<Command> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let name = &text[..end];
    if !is_variable_name(name) {
        return None;
    }
    let tail = text[end..].trim_start().strip_prefix('=')?;
    let (value, tail) = quoted(tail)?;
    tail.trim().is_empty().then(|| Command::Define {
        name: name.into(),
        value,
    })
}

/// A letter or `_`, then letters, digits or `_`, as ksqlDB's variable names are.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `'name' = 'value'` → `Set`.
fn set(text: &str) -> Option<Command> {
    let (name, tail) = quoted(text)?;
    let tail = tail.trim_start().strip_prefix('=')?;
    let (value, tail) = quoted(tail)?;
    tail.trim()
        .is_empty()
        .then_some(Command::Set { name, value })
}

/// Reads a single-quoted string (with `''` for a quote) at the start of `text`; returns its
/// content and what follows.
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.trim_start().strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if chars.peek().map(|&(_, n)| n) == Some('\'') {
                chars.next();
                out.push('\'');
            } else {
                return Some((out, &body[i + 1..]));
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// `text` after its first `n` words, trimmed.
fn after_words(text: &str, n: usize) -> &str {
    let mut rest = text.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        rest = rest[end..].trim_start();
    }
    rest.trim_end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_commands() {
        assert_eq!(
            Command::parse("SET 'auto.offset.reset' = 'earliest'"),
            Ok(Command::Set {
                name: "auto.offset.reset".into(),
                value: "earliest".into()
            })
        );
        assert_eq!(
            Command::parse("unset 'auto.offset.reset'"),
            Ok(Command::Unset {
                name: "auto.offset.reset".into()
            })
        );
        assert_eq!(
            Command::parse("output json"),
            Ok(Command::Output(Some(OutputFormat::Json)))
        );
        assert!(Command::parse("OUTPUT XML").is_err());
        assert_eq!(
            Command::parse("RUN SCRIPT '/tmp/it''s.sql'"),
            Ok(Command::RunScript("/tmp/it's.sql".into()))
        );
        assert_eq!(
            Command::parse("run script setup.sql"),
            Ok(Command::RunScript("setup.sql".into()))
        );
        assert_eq!(Command::parse("exit"), Ok(Command::Exit));
    }

    #[test]
    fn queries_and_statements() {
        assert_eq!(
            Command::parse("select * from s emit changes"),
            Ok(Command::Query("select * from s emit changes".into()))
        );
        assert_eq!(
            Command::parse("PRINT 'reviews' FROM BEGINNING"),
            Ok(Command::Query("PRINT 'reviews' FROM BEGINNING".into()))
        );
        assert_eq!(
            Command::parse("SHOW STREAMS"),
            Ok(Command::Ksql("SHOW STREAMS".into()))
        );
        assert_eq!(
            Command::parse("SET 'x'"),
            Ok(Command::Ksql("SET 'x'".into()))
        );
    }

    #[test]
    fn variables() {
        assert_eq!(
            Command::parse("DEFINE topic = '''my_topic'''"),
            Ok(Command::Define {
                name: "topic".into(),
                value: "'my_topic'".into()
            })
        );
        assert_eq!(
            Command::parse("undefine topic"),
            Ok(Command::Undefine {
                name: "topic".into()
            })
        );
        assert_eq!(Command::parse("show variables"), Ok(Command::ShowVariables));
        assert_eq!(
            Command::parse("SPOOL '/tmp/out.txt'"),
            Ok(Command::Spool(Some("/tmp/out.txt".into())))
        );
        assert_eq!(Command::parse("spool off"), Ok(Command::Spool(None)));
        assert!(Command::parse("SPOOL").is_err());
        // Malformed definitions go to the server, which says what is wrong.
        assert_eq!(
            Command::parse("DEFINE 1x = 'a'"),
            Ok(Command::Ksql("DEFINE 1x = 'a'".into()))
        );
    }

    #[test]
    fn bare_commands() {
        assert!(Command::is_bare_command("exit"));
        assert!(Command::is_bare_command("output json"));
        assert!(Command::is_bare_command("RUN SCRIPT 'a.sql'"));
        assert!(!Command::is_bare_command("SHOW STREAMS"));
        assert!(!Command::is_bare_command("exit now"));
    }
}

//! Splitting typed or scripted text into statements ended by `;`.
//!
//! The shell splits before the server parses, because it handles some statements itself
//! (`SET`, `RUN SCRIPT`, …), sends queries to another endpoint, and must know whether a
//! typed line ends a statement. It only needs to know what is quoted or commented out: a
//! `;` inside `'…'` (with `''` as the escaped quote), `"…"`, `` `…` ``, `-- …` or `/* … */`
//! does not end a statement. Comments are dropped from the statements' text.

/// One complete statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its text, trimmed, without comments and without the ending `;`.
    pub text: String,
    /// The line its first character is on, 1-based.
    pub line: usize,
}

/// The result of splitting some text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// The complete statements, in order; statements with nothing but comments are skipped.
    pub statements: Vec<Statement>,
    /// The text after the last `;`, unchanged, if it holds anything but whitespace and
    /// finished comments (an unfinished statement, string or block comment).
    pub rest: Option<String>,
    /// The statement the rest would make if it were ended, if it has any content.
    pub rest_statement: Option<Statement>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted(char),
    LineComment,
    BlockComment,
}

/// Splits `text` into complete statements and an unfinished rest.
pub fn split(text: &str) -> Split {
    let mut split = Split::default();
    let mut state = State::Code;
    let mut current = String::new();
    let mut start_line = None;
    let mut line = 1;
    // Byte offset where the current (unfinished) statement's raw text begins.
    let mut raw_start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match state {
            State::Code => match c {
                ';' => {
                    push(&mut split.statements, &mut current, &mut start_line);
                    raw_start = i + 1;
                }
                '-' if chars.peek().map(|&(_, n)| n) == Some('-') => {
                    chars.next();
                    state = State::LineComment;
                }
                '/' if chars.peek().map(|&(_, n)| n) == Some('*') => {
                    chars.next();
                    state = State::BlockComment;
                    current.push(' ');
                }
                '\'' | '"' | '`' => {
                    state = State::Quoted(c);
                    start_line.get_or_insert(line);
                    current.push(c);
                }
                _ => {
                    if !c.is_whitespace() {
                        start_line.get_or_insert(line);
                    }
                    current.push(c);
                }
            },
            State::Quoted(q) => {
                current.push(c);
                if c == q {
                    state = State::Code;
                }
            }
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                    current.push('\n');
                }
            }
            State::BlockComment => {
                if c == '*' && chars.peek().map(|&(_, n)| n) == Some('/') {
                    chars.next();
                    state = State::Code;
                } else if c == '\n' {
                    current.push('\n');
                }
            }
        }
        if c == '\n' {
            line += 1;
        }
    }
    let open = matches!(state, State::Quoted(_) | State::BlockComment);
    if open || start_line.is_some() {
        split.rest = Some(text[raw_start..].to_string());
    }
    if let Some(line) = start_line {
        split.rest_statement = Some(Statement {
            text: current.trim().to_string(),
            line,
        });
    }
    split
}

fn push(statements: &mut Vec<Statement>, current: &mut String, start_line: &mut Option<usize>) {
    let text = current.trim();
    if let Some(line) = start_line.take()
        && !text.is_empty()
    {
        statements.push(Statement {
            text: text.to_string(),
            line,
        });
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &Split) -> Vec<(&str, usize)> {
        s.statements
            .iter()
            .map(|s| (s.text.as_str(), s.line))
            .collect()
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let s = split(
            "SHOW STREAMS;\n-- a comment; still a comment\nSELECT ';', `a;b`, \"c;d\" /* x; */ FROM s\n  EMIT CHANGES;",
        );
        assert_eq!(
            texts(&s),
            vec![
                ("SHOW STREAMS", 1),
                ("SELECT ';', `a;b`, \"c;d\"   FROM s\n  EMIT CHANGES", 3)
            ]
        );
        assert_eq!(s.rest, None);
    }

    #[test]
    fn escaped_quotes_stay_in_the_string() {
        let s = split("INSERT INTO s VALUES ('it''s; fine');");
        assert_eq!(texts(&s), vec![("INSERT INTO s VALUES ('it''s; fine')", 1)]);
    }

    #[test]
    fn unfinished_statements_strings_and_comments_are_the_rest() {
        let s = split("SHOW TABLES; CREATE STREAM s\n(a INT)");
        assert_eq!(texts(&s), vec![("SHOW TABLES", 1)]);
        assert_eq!(s.rest.as_deref(), Some(" CREATE STREAM s\n(a INT)"));
        assert_eq!(
            s.rest_statement,
            Some(Statement {
                text: "CREATE STREAM s\n(a INT)".into(),
                line: 1
            })
        );
        assert!(split("SELECT 'abc;").rest.is_some());
        assert!(split("/* open; comment").rest.is_some());
        assert_eq!(split("SHOW TABLES; -- done\n  ").rest, None);
    }

    #[test]
    fn comment_only_statements_are_skipped_and_lines_counted() {
        let s = split("-- header\n\n/* one\ntwo */ ;\n\nDROP STREAM x;");
        assert_eq!(texts(&s), vec![("DROP STREAM x", 6)]);
    }
}

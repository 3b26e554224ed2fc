//! A cursor over one statement's tokens, the syntax-error format, and the bridge to
//! sqlparser's [`Parser`].

use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Location as TokenLocation, Token, TokenWithSpan};

use super::dialect::KsqlDialect;
use super::lexer::{Source, is_keyword, location};
use crate::error::{Location, SqlError};

/// How deep sqlparser may recurse before giving up (its default is 50).
const RECURSION_LIMIT: usize = 50;

/// A syntax error in ksqlDB's format: `Syntax Error` on the first line, details on the next.
pub(crate) fn syntax_error(location: Location, detail: impl std::fmt::Display) -> SqlError {
    SqlError::Parse {
        message: format!("Syntax Error\n{detail}"),
        location,
    }
}

/// A position in a statement's normalised tokens.
pub(crate) struct Cursor<'a> {
    tokens: &'a [TokenWithSpan],
    pos: usize,
    /// Where the statement's text ends: the location reported for errors at its end.
    end: TokenLocation,
    source: &'a Source<'a>,
    /// `>` still owed after a `>>` token closed two type brackets at once.
    pub(crate) pending_gt: u32,
}

impl<'a> Cursor<'a> {
    /// A cursor at the first of `tokens`; `end` is the location just after the last one.
    pub(crate) fn new(
        tokens: &'a [TokenWithSpan],
        end: TokenLocation,
        source: &'a Source<'a>,
    ) -> Self {
        Cursor {
            tokens,
            pos: 0,
            end,
            source,
            pending_gt: 0,
        }
    }

    /// The submitted text.
    pub(crate) fn source(&self) -> &'a Source<'a> {
        self.source
    }

    /// The location just after the statement.
    pub(crate) fn end(&self) -> TokenLocation {
        self.end
    }

    /// The current token, if any.
    pub(crate) fn peek(&self) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.pos)
    }

    /// The token `n` places after the current one.
    pub(crate) fn peek_nth(&self, n: usize) -> Option<&'a TokenWithSpan> {
        self.tokens.get(self.pos.saturating_add(n))
    }

    /// The remaining tokens.
    pub(crate) fn rest(&self) -> &'a [TokenWithSpan] {
        self.tokens.get(self.pos..).unwrap_or(&[])
    }

    /// Index of the current token.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Moves to token `pos` (at most the end).
    pub(crate) fn seek(&mut self, pos: usize) {
        self.pos = pos.min(self.tokens.len());
    }

    /// Whether all tokens are consumed.
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.tokens.len()
    }

    /// Consumes and returns the current token.
    pub(crate) fn next_token(&mut self) -> Option<&'a TokenWithSpan> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(token)
    }

    /// The location of the current token (the statement's end when exhausted).
    pub(crate) fn location(&self) -> Location {
        location(self.peek().map_or(self.end, |t| t.span.start))
    }

    /// Whether the current token is the keyword `kw`.
    pub(crate) fn peek_keyword(&self, kw: &str) -> bool {
        self.peek().is_some_and(|t| is_keyword(&t.token, kw))
    }

    /// Whether the current token is `token`.
    pub(crate) fn peek_is(&self, token: &Token) -> bool {
        self.peek().is_some_and(|t| &t.token == token)
    }

    /// Consumes the keyword `kw` if it is next.
    pub(crate) fn eat_keyword(&mut self, kw: &str) -> bool {
        let found = self.peek_keyword(kw);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes the keywords `kws` if they are all next, in order.
    pub(crate) fn eat_keywords(&mut self, kws: &[&str]) -> bool {
        let all = kws
            .iter()
            .enumerate()
            .all(|(i, kw)| self.peek_nth(i).is_some_and(|t| is_keyword(&t.token, kw)));
        if all {
            self.pos += kws.len();
        }
        all
    }

    /// Consumes `token` if it is next.
    pub(crate) fn eat(&mut self, token: &Token) -> bool {
        let found = self.peek_is(token);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes the keyword `kw` or fails.
    pub(crate) fn expect_keyword(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_keyword(kw) {
            Ok(())
        } else {
            Err(self.expected(&format!("'{kw}'")))
        }
    }

    /// Consumes `token` or fails.
    pub(crate) fn expect(&mut self, token: &Token) -> Result<(), SqlError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.expected(&format!("'{token}'")))
        }
    }

    /// Fails unless all tokens are consumed.
    pub(crate) fn expect_end(&self) -> Result<(), SqlError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.expected("';'"))
        }
    }

    /// Consumes an identifier: an unquoted word (already upper-cased) or a quoted one.
    pub(crate) fn identifier(&mut self, what: &str) -> Result<String, SqlError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(w.value.clone())
            }
            _ => Err(self.expected(what)),
        }
    }

    /// Consumes an unsigned integer literal.
    pub(crate) fn unsigned(&mut self, what: &str) -> Result<u64, SqlError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::Number(n, _)) => match n.parse::<u64>() {
                Ok(v) => {
                    self.pos += 1;
                    Ok(v)
                }
                Err(_) => Err(self.expected(what)),
            },
            _ => Err(self.expected(what)),
        }
    }

    /// Consumes a single-quoted string literal.
    pub(crate) fn string(&mut self, what: &str) -> Result<String, SqlError> {
        match self.peek().map(|t| &t.token) {
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                Ok(s.clone())
            }
            _ => Err(self.expected(what)),
        }
    }

    /// The text the current token was written as, `<EOF>` at the end.
    pub(crate) fn found(&self) -> String {
        match self.peek() {
            Some(t) => self.source.text_of(t.span).to_string(),
            None => "<EOF>".to_string(),
        }
    }

    /// A syntax error at the current token: `mismatched input 'X' expecting {what}`.
    pub(crate) fn expected(&self, what: &str) -> SqlError {
        syntax_error(
            self.location(),
            format!("mismatched input '{}' expecting {what}", self.found()),
        )
    }

    /// Runs sqlparser over `tokens` (a part of this statement ending before `end`), requiring
    /// it to consume them all; `after` describes what may follow, for the error message.
    pub(crate) fn with_sqlparser<T>(
        &self,
        tokens: &[TokenWithSpan],
        end: TokenLocation,
        after: &str,
        parse: impl FnOnce(&mut Parser<'_>) -> Result<T, ParserError>,
    ) -> Result<T, SqlError> {
        run_sqlparser(self.source, tokens, end, after, parse)
    }
}

/// Runs sqlparser over `tokens`, requiring it to consume them all.
pub(crate) fn run_sqlparser<T>(
    source: &Source<'_>,
    tokens: &[TokenWithSpan],
    end: TokenLocation,
    after: &str,
    parse: impl FnOnce(&mut Parser<'_>) -> Result<T, ParserError>,
) -> Result<T, SqlError> {
    let mut input = tokens.to_vec();
    input.push(TokenWithSpan::at(Token::EOF, end, end));
    let dialect = KsqlDialect;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(RECURSION_LIMIT)
        .with_tokens_with_locations(input);
    let start = tokens.first().map_or(end, |t| t.span.start);
    let value = parse(&mut parser).map_err(|e| from_sqlparser(e, source, tokens, start))?;
    let next = parser.peek_token();
    if next.token == Token::EOF {
        return Ok(value);
    }
    let mut rest = Cursor::new(tokens, end, source);
    rest.seek(
        tokens
            .iter()
            .position(|t| t.span.start == next.span.start)
            .unwrap_or(tokens.len()),
    );
    Err(rest.expected(after))
}

/// Converts a sqlparser error (`Expected: X, found: Y at Line: l, Column: c`) into a syntax
/// error in ksqlDB's format, naming the offending token as the user wrote it.
fn from_sqlparser(
    error: ParserError,
    source: &Source<'_>,
    tokens: &[TokenWithSpan],
    fallback: TokenLocation,
) -> SqlError {
    let message = match error {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => {
            return syntax_error(location(fallback), "expression nested too deeply");
        }
    };
    let (text, at) = split_location(&message);
    let mut at = at.unwrap_or(fallback);
    let detail = match text
        .strip_prefix("Expected: ")
        .or_else(|| text.strip_prefix("Expected "))
        .and_then(|rest| rest.rsplit_once(", found: "))
    {
        Some((expected, found)) => {
            // sqlparser sometimes locates the error at the token after the one it names.
            let named = tokens
                .iter()
                .rev()
                .find(|t| t.span.start <= at && t.token.to_string() == found)
                .or_else(|| tokens.iter().find(|t| t.span.start == at));
            let found = match named {
                Some(t) => {
                    at = t.span.start;
                    source.text_of(t.span).to_string()
                }
                None if found == "EOF" => "<EOF>".to_string(),
                None => found.to_string(),
            };
            format!("mismatched input '{found}' expecting {expected}")
        }
        None => text.to_string(),
    };
    syntax_error(location(at), detail)
}

/// Splits sqlparser's ` at Line: l, Column: c` suffix off a message.
fn split_location(message: &str) -> (&str, Option<TokenLocation>) {
    let Some((text, position)) = message.rsplit_once(" at Line: ") else {
        return (message, None);
    };
    let parsed = position
        .split_once(", Column: ")
        .and_then(|(line, column)| {
            Some(TokenLocation::new(
                line.trim().parse().ok()?,
                column.trim().parse().ok()?,
            ))
        });
    match parsed {
        Some(at) => (text, Some(at)),
        None => (message, None),
    }
}

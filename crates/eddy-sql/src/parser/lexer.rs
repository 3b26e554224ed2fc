//! Tokens: positions in the submitted text, tokenising, statement splitting and KSQL's
//! identifier normalisation.

use datafusion_sql::sqlparser::tokenizer::{
    Location as TokenLocation, Span, Token, TokenWithSpan, Tokenizer,
};

use super::cursor::syntax_error;
use super::dialect::KsqlDialect;
use crate::error::{Location, SqlError};

/// The submitted text, able to map token locations back to byte offsets.
pub(crate) struct Source<'a> {
    text: &'a str,
    lines: Vec<Line>,
}

/// Where a line starts, and how its columns map to bytes.
struct Line {
    start: usize,
    /// Byte offset (from `start`) of each character, for lines that are not ASCII; on an ASCII
    /// line a column is its byte offset. Kept so mapping a location never scans the line.
    char_offsets: Option<Vec<usize>>,
}

impl<'a> Source<'a> {
    /// Indexes `text`'s lines.
    pub(crate) fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            let char_offsets =
                (!line.is_ascii()).then(|| line.char_indices().map(|(i, _)| i).collect());
            lines.push(Line {
                start,
                char_offsets,
            });
            start += line.len();
        }
        if text.is_empty() || text.ends_with('\n') {
            lines.push(Line {
                start: text.len(),
                char_offsets: None,
            });
        }
        Source { text, lines }
    }

    /// Byte offset of a tokenizer location (line and column count characters from 1).
    pub(crate) fn offset(&self, location: TokenLocation) -> usize {
        let Some(line_index) = usize::try_from(location.line)
            .ok()
            .and_then(|l| l.checked_sub(1))
        else {
            return 0;
        };
        let Some(line) = self.lines.get(line_index) else {
            return self.text.len();
        };
        let column = usize::try_from(location.column.saturating_sub(1)).unwrap_or(usize::MAX);
        let within = match &line.char_offsets {
            None => Some(column),
            Some(offsets) => offsets.get(column).copied(),
        };
        within
            .map_or(self.text.len(), |w| line.start.saturating_add(w))
            .min(self.text.len())
    }

    /// The text between two locations.
    pub(crate) fn between(&self, start: TokenLocation, end: TokenLocation) -> &'a str {
        let (from, to) = (self.offset(start), self.offset(end));
        self.text.get(from..to.max(from)).unwrap_or("")
    }

    /// The text a token was written as.
    pub(crate) fn text_of(&self, span: Span) -> &'a str {
        self.between(span.start, span.end)
    }
}

/// Converts a tokenizer location into the crate's error location.
pub(crate) fn location(l: TokenLocation) -> Location {
    Location {
        line: l.line,
        column: l.column,
    }
}

/// Tokenises the whole text, dropping whitespace and comments.
pub(crate) fn tokenize(source: &Source<'_>) -> Result<Vec<TokenWithSpan>, SqlError> {
    let mut tokens = Tokenizer::new(&KsqlDialect, source.text)
        .tokenize_with_location()
        .map_err(|e| syntax_error(location(e.location), e.message))?;
    tokens.retain(|t| !matches!(t.token, Token::Whitespace(_)));
    Ok(tokens)
}

/// Splits tokens into statements on `;`, skipping empty statements.
///
/// Strings, quoted identifiers and comments are single tokens, so every `;` token ends a
/// statement.
pub(crate) fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        match token.token {
            Token::SemiColon => {
                if !current.is_empty() {
                    statements.push(std::mem::take(&mut current));
                }
            }
            Token::EOF => {}
            _ => current.push(token),
        }
    }
    if !current.is_empty() {
        statements.push(current);
    }
    statements
}

/// Applies KSQL's lexical rules to one statement's tokens.
///
/// Unquoted words are upper-cased (ksqlDB upper-cases unquoted identifiers, and keywords are
/// case-insensitive anyway); struct access `x->f` becomes the subscript `x['F']` that
/// DataFusion understands; the lambda arrow `=>` becomes sqlparser's `->`.
pub(crate) fn normalise(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut iter = tokens.into_iter().peekable();
    while let Some(mut t) = iter.next() {
        match &mut t.token {
            Token::Word(w) if w.quote_style.is_none() => w.value = w.value.to_uppercase(),
            // ksqlDB identifiers may start with a digit (`AS 1R`); the tokenizer splits them.
            Token::Number(n, false) if n.bytes().all(|b| b.is_ascii_digit()) => {
                let end = t.span.end;
                let rest = iter.next_if(|w| {
                    w.span.start == end
                        && matches!(&w.token, Token::Word(w) if w.quote_style.is_none())
                });
                if let Some(TokenWithSpan {
                    token: Token::Word(rest),
                    span,
                }) = rest
                {
                    let word = format!("{n}{}", rest.value).to_uppercase();
                    out.push(TokenWithSpan::at(
                        Token::make_word(&word, None),
                        t.span.start,
                        span.end,
                    ));
                    continue;
                }
            }
            // `s->*` (all fields of a struct) becomes the qualified wildcard `S.*`.
            Token::Arrow if iter.peek().is_some_and(|n| n.token == Token::Mul) => {
                t.token = Token::Period;
            }
            Token::Arrow => {
                let field = iter.next_if(|n| matches!(n.token, Token::Word(_)));
                if let Some(TokenWithSpan {
                    token: Token::Word(mut field),
                    span,
                }) = field
                {
                    if field.quote_style.is_none() {
                        field.value = field.value.to_uppercase();
                    }
                    out.push(TokenWithSpan::new(Token::LBracket, t.span));
                    out.push(TokenWithSpan::new(
                        Token::SingleQuotedString(field.value),
                        span,
                    ));
                    out.push(TokenWithSpan::at(Token::RBracket, span.end, span.end));
                    continue;
                }
            }
            Token::RArrow => {
                t.token = Token::Arrow;
                quote_lambda_parameters(&mut out);
            }
            _ => {}
        }
        out.push(t);
    }
    out
}

/// Marks the parameters before a lambda's arrow (`x =>` or `(x, y) =>`) as quoted, so that
/// DataFusion, which lower-cases unquoted lambda parameters but not the (already upper-cased)
/// names in the lambda's body, finds them by the same name.
fn quote_lambda_parameters(out: &mut [TokenWithSpan]) {
    let params = match out.last().map(|t| &t.token) {
        Some(Token::Word(_)) => out.len() - 1..out.len(),
        Some(Token::RParen) => {
            let close = out.len() - 1;
            let open = out[..close]
                .iter()
                .rposition(|t| t.token == Token::LParen)
                .unwrap_or(close);
            open + 1..close
        }
        _ => return,
    };
    for t in &mut out[params] {
        if let Token::Word(w) = &mut t.token
            && w.quote_style.is_none()
        {
            w.quote_style = Some('`');
            w.keyword = datafusion_sql::sqlparser::keywords::Keyword::NoKeyword;
        }
    }
}

/// Rejects integer literals that do not fit a BIGINT and floating-point literals that
/// overflow a DOUBLE, as ksqlDB's parser does.
pub(crate) fn check_numeric_literals(tokens: &[TokenWithSpan]) -> Result<(), SqlError> {
    let mut previous: Option<&TokenWithSpan> = None;
    for t in tokens {
        if let Token::Number(text, _) = &t.token {
            let minus = previous.filter(|p| p.token == Token::Minus);
            let literal = match minus {
                Some(_) => format!("-{text}"),
                None => text.clone(),
            };
            let at = location(minus.map_or(t.span.start, |m| m.span.start));
            // ksqlDB reports these while building the AST, one column further right than
            // its parser reports syntax errors.
            let prepare = |message: String| {
                SqlError::Prepare(format!("line {}:{}: {message}", at.line, at.column + 1))
            };
            if text.bytes().all(|b| b.is_ascii_digit()) {
                if literal.parse::<i64>().is_err() {
                    return Err(prepare(format!("Invalid numeric literal: {literal}")));
                }
            } else if text.contains(['e', 'E'])
                && text.parse::<f64>().map_or(true, f64::is_infinite)
            {
                return Err(prepare(format!("Number overflows DOUBLE: {text}")));
            }
        }
        previous = Some(t);
    }
    Ok(())
}

/// Whether `token` is the unquoted (already upper-cased) word `keyword`.
pub(crate) fn is_keyword(token: &Token, keyword: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value == keyword)
}

/// Index of the parenthesis closing the one at `open`, if balanced.
pub(crate) fn matching_paren(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Nesting change of a bracketing token, so callers can find clauses at depth 0.
pub(crate) fn depth_delta(token: &Token) -> isize {
    match token {
        Token::LParen | Token::LBracket | Token::LBrace => 1,
        Token::RParen | Token::RBracket | Token::RBrace => -1,
        _ => 0,
    }
}

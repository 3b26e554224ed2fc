//! Token rewrites that turn KSQL-only expression syntax into forms sqlparser and DataFusion
//! understand: ksqlDB type names in `CAST`, and the `STRUCT(…)` / `MAP(…)` constructors.

use datafusion_sql::sqlparser::tokenizer::{Span, Token, TokenWithSpan};

use super::cursor::Cursor;
use super::lexer::{Source, depth_delta, is_keyword, matching_paren};
use super::types::parse_type;
use crate::error::SqlError;
use crate::plan::functions::{TAKING_A_TIME_UNIT, TIME_UNITS};
use crate::plan::{INTERNAL_FUNCTIONS, KSQL_CAST};
use crate::types::SqlType;

/// Rewrites, left to right:
/// * `CAST(x AS <ksql type>)` so the type is one sqlparser parses and DataFusion plans with
///   ksqlDB's semantics (`STRING` → `VARCHAR`, `BYTES` → `BYTEA`, `TIMESTAMP` →
///   `TIMESTAMP(3)` for milliseconds); an unknown type is an error here, with its location;
/// * `STRUCT(name := e, …)` → `STRUCT(e AS name, …)`;
/// * `MAP(k := v, …)` → `MAP {k: v, …}`;
/// * `DATEADD(DAYS, …)` and the other functions that take a time unit: the unit's bare word
///   → `'DAYS'`, which DataFusion would otherwise read as a column;
/// * in `TRANSFORM`, `FILTER` and `REDUCE`, an integer literal that fits → `CAST(n AS INT)`.
pub(crate) fn rewrite_expressions(
    mut tokens: Vec<TokenWithSpan>,
    source: &Source<'_>,
) -> Result<Vec<TokenWithSpan>, SqlError> {
    // Eddy's internal functions are planned from other syntax, never called by name: a
    // statement that names one is told it does not exist, as for any unknown function.
    for (i, t) in tokens.iter().enumerate() {
        let Token::Word(word) = &t.token else {
            continue;
        };
        let called = tokens.get(i + 1).is_some_and(|t| t.token == Token::LParen);
        let internal = INTERNAL_FUNCTIONS
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&word.value));
        if let (true, Some(name)) = (called, internal) {
            return Err(SqlError::Unknown(format!(
                "Can't find any functions with the name '{}'",
                name.to_ascii_uppercase()
            )));
        }
    }
    // Each rewrite scans to its closing parenthesis: with unbalanced or very deep nesting that
    // would be quadratic. sqlparser rejects such statements anyway, so leave them as they are.
    if !balanced_and_shallow(&tokens) {
        return Ok(tokens);
    }
    let mut i = 0;
    while i < tokens.len() {
        if is_call(&tokens, i, "CAST") || is_call(&tokens, i, "TRY_CAST") {
            rewrite_cast(&mut tokens, i, source)?;
        } else if is_call(&tokens, i, "STRUCT") {
            rewrite_struct(&mut tokens, i + 1);
        } else if is_call(&tokens, i, "MAP") {
            if tokens.get(i + 2).is_some_and(|t| t.token == Token::RParen) {
                return Err(SqlError::Invalid(
                    "Map constructor cannot be empty. Please supply at least one key value pair (see https://github.com/confluentinc/ksql/issues/4239).".into(),
                ));
            }
            rewrite_map(&mut tokens, i + 1);
        } else if TAKING_A_TIME_UNIT.iter().any(|f| is_call(&tokens, i, f)) {
            time_unit_as_text(&mut tokens, i + 2);
        } else if ["TRANSFORM", "FILTER", "REDUCE"]
            .iter()
            .any(|f| is_call(&tokens, i, f))
        {
            integer_literals_as_int(&mut tokens, i + 1);
        } else if let Token::Number(text, _) = &tokens[i].token
            && text.contains(['e', 'E'])
        {
            // ksqlDB types `1.5E3` as DOUBLE (and `1.5` as DECIMAL, as DataFusion is told to).
            let span = tokens[i].span;
            let literal = Token::SingleQuotedString(text.clone());
            let cast = [
                Token::make_word("CAST", None),
                Token::LParen,
                literal,
                Token::make_keyword("AS"),
                Token::make_word("DOUBLE", None),
                Token::RParen,
            ]
            .map(|t| TokenWithSpan::new(t, span));
            tokens.splice(i..=i, cast);
        }
        i += 1;
    }
    Ok(tokens)
}

/// Whether parentheses balance and nest no deeper than sqlparser accepts.
fn balanced_and_shallow(tokens: &[TokenWithSpan]) -> bool {
    const MAX_DEPTH: usize = 64;
    let mut depth = 0usize;
    for t in tokens {
        match t.token {
            Token::LParen => depth += 1,
            Token::RParen => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => {}
        }
        if depth > MAX_DEPTH {
            return false;
        }
    }
    depth == 0
}

/// Whether `tokens[i]` is the word `name` followed by `(`.
/// Types the integer literals between the parenthesis at `open` and its match as INT, as
/// ksqlDB types them. Elsewhere the planner narrows DataFusion's BIGINT literals after
/// planning; a lambda's parameters are typed during planning, so a literal that decides a
/// parameter's type (a `REDUCE`'s initial state, an element computed by an inner lambda) must
/// be an INT by then.
fn integer_literals_as_int(tokens: &mut Vec<TokenWithSpan>, open: usize) {
    let Some(close) = matching_paren(tokens, open) else {
        return;
    };
    for i in (open + 1..close).rev() {
        let Token::Number(text, false) = &tokens[i].token else {
            continue;
        };
        if !text.bytes().all(|b| b.is_ascii_digit()) || text.parse::<i32>().is_err() {
            continue;
        }
        let span = tokens[i].span;
        let cast = [
            Token::make_word("CAST", None),
            Token::LParen,
            tokens[i].token.clone(),
            Token::make_keyword("AS"),
            Token::make_word("INT", None),
            Token::RParen,
        ]
        .map(|t| TokenWithSpan::new(t, span));
        tokens.splice(i..=i, cast);
    }
}

/// Turns the bare word at `at` into text if it is a time unit and a whole argument.
fn time_unit_as_text(tokens: &mut [TokenWithSpan], at: usize) {
    let is_unit = tokens.get(at).is_some_and(|t| {
        TIME_UNITS
            .iter()
            .any(|(unit, _)| is_keyword(&t.token, unit))
    });
    if is_unit
        && tokens.get(at + 1).is_some_and(|t| t.token == Token::Comma)
        && let Token::Word(w) = &tokens[at].token
    {
        tokens[at].token = Token::SingleQuotedString(w.value.clone());
    }
}

fn is_call(tokens: &[TokenWithSpan], i: usize, name: &str) -> bool {
    tokens.get(i).is_some_and(|t| is_keyword(&t.token, name))
        && tokens.get(i + 1).is_some_and(|t| t.token == Token::LParen)
}

/// Indexes of the top-level (depth 1) tokens between `open` and its closing parenthesis
/// matching `pred`, with the closing index.
fn top_level(
    tokens: &[TokenWithSpan],
    open: usize,
    pred: impl Fn(&Token) -> bool,
) -> Option<(Vec<usize>, usize)> {
    let close = matching_paren(tokens, open)?;
    let mut depth = 0isize;
    let mut found = Vec::new();
    for (i, t) in tokens.iter().enumerate().take(close).skip(open + 1) {
        if depth == 0 && pred(&t.token) {
            found.push(i);
        }
        depth += depth_delta(&t.token);
    }
    Some((found, close))
}

fn rewrite_cast(
    tokens: &mut Vec<TokenWithSpan>,
    at: usize,
    source: &Source<'_>,
) -> Result<(), SqlError> {
    let open = at + 1;
    let Some((as_positions, close)) = top_level(tokens, open, |t| is_keyword(t, "AS")) else {
        return Ok(());
    };
    let (Some(&as_at), Some(close_token)) = (as_positions.last(), tokens.get(close)) else {
        return Ok(());
    };
    let Some(type_tokens) = tokens.get(as_at + 1..close) else {
        return Ok(());
    };
    let mut cursor = Cursor::new(type_tokens, close_token.span.start, source);
    let ty = parse_type(&mut cursor)?;
    if !cursor.at_end() {
        return Err(cursor.expected("')'"));
    }
    let span = type_tokens.first().map_or(close_token.span, |t| t.span);
    // DataFusion does not cast to MAP, nor element by element as ksqlDB does.
    if matches!(ty, SqlType::Array(_) | SqlType::Map(..)) && is_keyword(&tokens[at].token, "CAST") {
        tokens[at].token = Token::make_word(&KSQL_CAST.to_ascii_uppercase(), None);
        tokens[as_at].token = Token::Comma;
        let name = TokenWithSpan::new(Token::SingleQuotedString(ty.to_string()), span);
        tokens.splice(as_at + 1..close, [name]);
        return Ok(());
    }
    let mut canonical = Vec::new();
    type_tokens_of(&ty, span, &mut canonical);
    tokens.splice(as_at + 1..close, canonical);
    Ok(())
}

/// The tokens of `ty` as sqlparser's generic dialect spells the DataFusion type Eddy uses.
fn type_tokens_of(ty: &SqlType, span: Span, out: &mut Vec<TokenWithSpan>) {
    let mut push = |token: Token| out.push(TokenWithSpan::new(token, span));
    let word = |w: &str| Token::make_word(w, None);
    let number = |n: String| Token::Number(n, false);
    match ty {
        SqlType::Boolean => push(word("BOOLEAN")),
        SqlType::Int => push(word("INT")),
        SqlType::Bigint => push(word("BIGINT")),
        SqlType::Double => push(word("DOUBLE")),
        SqlType::Decimal { precision, scale } => {
            for token in [
                word("DECIMAL"),
                Token::LParen,
                number(precision.to_string()),
                Token::Comma,
                number(scale.to_string()),
                Token::RParen,
            ] {
                push(token);
            }
        }
        SqlType::String => push(word("VARCHAR")),
        SqlType::Bytes => push(word("BYTEA")),
        SqlType::Date => push(word("DATE")),
        SqlType::Time => push(word("TIME")),
        SqlType::Timestamp => {
            for token in [
                word("TIMESTAMP"),
                Token::LParen,
                number("3".to_string()),
                Token::RParen,
            ] {
                push(token);
            }
        }
        SqlType::Array(item) => {
            push(word("ARRAY"));
            push(Token::Lt);
            type_tokens_of(item, span, out);
            out.push(TokenWithSpan::new(Token::Gt, span));
        }
        SqlType::Map(key, value) => {
            push(word("MAP"));
            push(Token::LParen);
            type_tokens_of(key, span, out);
            out.push(TokenWithSpan::new(Token::Comma, span));
            type_tokens_of(value, span, out);
            out.push(TokenWithSpan::new(Token::RParen, span));
        }
        SqlType::Struct(fields) => {
            push(word("STRUCT"));
            push(Token::Lt);
            for (i, field) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(TokenWithSpan::new(Token::Comma, span));
                }
                out.push(TokenWithSpan::new(
                    Token::make_word(&field.name, Some('`')),
                    span,
                ));
                type_tokens_of(&field.ty, span, out);
            }
            out.push(TokenWithSpan::new(Token::Gt, span));
        }
    }
}

fn rewrite_struct(tokens: &mut Vec<TokenWithSpan>, open: usize) {
    let Some((commas, close)) = top_level(tokens, open, |t| *t == Token::Comma) else {
        return;
    };
    let bounds: Vec<(usize, usize)> = std::iter::once(open)
        .chain(commas.iter().copied())
        .zip(commas.iter().copied().chain(std::iter::once(close)))
        .map(|(before, after)| (before + 1, after))
        .collect();
    let named = |(from, _): &(usize, usize)| {
        matches!(tokens.get(*from).map(|t| &t.token), Some(Token::Word(_)))
            && tokens
                .get(from + 1)
                .is_some_and(|t| t.token == Token::Assignment)
    };
    if !bounds.iter().any(named) {
        return;
    }
    let mut body = Vec::new();
    for (n, bound) in bounds.iter().enumerate() {
        let (from, to) = *bound;
        if n > 0
            && let Some(comma) = tokens.get(from - 1)
        {
            body.push(comma.clone());
        }
        match (named(bound), tokens.get(from), tokens.get(from + 1)) {
            (true, Some(name), Some(assign)) => {
                body.extend(tokens.get(from + 2..to).unwrap_or(&[]).iter().cloned());
                body.push(TokenWithSpan::new(Token::make_keyword("AS"), assign.span));
                body.push(name.clone());
            }
            _ => body.extend(tokens.get(from..to).unwrap_or(&[]).iter().cloned()),
        }
    }
    tokens.splice(open + 1..close, body);
}

fn rewrite_map(tokens: &mut [TokenWithSpan], open: usize) {
    let Some((assignments, close)) = top_level(tokens, open, |t| *t == Token::Assignment) else {
        return;
    };
    if assignments.is_empty() {
        return;
    }
    for i in assignments {
        if let Some(t) = tokens.get_mut(i) {
            t.token = Token::Colon;
        }
    }
    if let Some(t) = tokens.get_mut(open) {
        t.token = Token::LBrace;
    }
    // `MAP` was demoted to a plain word while followed by `(`; it now opens a map literal.
    if let Some(t) = open.checked_sub(1).and_then(|i| tokens.get_mut(i)) {
        t.token = Token::make_keyword("MAP");
    }
    if let Some(t) = tokens.get_mut(close) {
        t.token = Token::RBrace;
    }
}

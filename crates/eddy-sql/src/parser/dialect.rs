//! The sqlparser [`Dialect`] for KSQL.

use std::any::TypeId;

use datafusion_sql::sqlparser::dialect::{Dialect, GenericDialect};
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan};

/// Keywords that start a special expression form (`CAST(…)`, `ARRAY[…]`, …), with the tokens
/// that may open it.
///
/// When such a form fails to parse, sqlparser retries the keyword as an identifier or a
/// function name, which re-parses everything inside: nested failing forms take exponential
/// time. [`KsqlDialect`] therefore reserves these keywords, and [`demote_keywords`] turns a
/// keyword not followed by its opener into a plain word, so `SELECT position FROM t` still
/// reads a column.
const SPECIAL_FORMS: &[(Keyword, &[Token])] = &[
    (Keyword::ARRAY, &[Token::LBracket, Token::LParen, Token::Lt]),
    (Keyword::STRUCT, &[Token::LParen, Token::Lt]),
    (Keyword::MAP, &[Token::LBrace]),
    (Keyword::CAST, &[Token::LParen]),
    (Keyword::TRY_CAST, &[Token::LParen]),
    (Keyword::SAFE_CAST, &[Token::LParen]),
    (Keyword::CONVERT, &[Token::LParen]),
    (Keyword::TRY_CONVERT, &[Token::LParen]),
    (Keyword::EXTRACT, &[Token::LParen]),
    (Keyword::CEIL, &[Token::LParen]),
    (Keyword::FLOOR, &[Token::LParen]),
    (Keyword::POSITION, &[Token::LParen]),
    (Keyword::SUBSTRING, &[Token::LParen]),
    (Keyword::SUBSTR, &[Token::LParen]),
    (Keyword::OVERLAY, &[Token::LParen]),
    (Keyword::TRIM, &[Token::LParen]),
    (Keyword::EXISTS, &[Token::LParen]),
    (Keyword::MATCH, &[Token::LParen]),
];

/// Special-form keywords that are reserved in KSQL too, so never identifiers when unquoted.
const RESERVED: &[Keyword] = &[
    Keyword::CASE,
    Keyword::NOT,
    Keyword::INTERVAL,
    Keyword::PRIOR,
    Keyword::LAMBDA,
];

/// Makes special-form keywords that are not followed by their opener plain words (see
/// [`SPECIAL_FORMS`]).
pub(crate) fn demote_keywords(tokens: &mut [TokenWithSpan]) {
    for i in 0..tokens.len() {
        let next = tokens.get(i + 1).map(|t| &t.token);
        let demote = match tokens.get(i).map(|t| &t.token) {
            Some(Token::Word(w)) => SPECIAL_FORMS
                .iter()
                .find(|(kw, _)| *kw == w.keyword)
                .is_some_and(|(_, openers)| !next.is_some_and(|n| openers.contains(n))),
            _ => false,
        };
        if let Some(Token::Word(w)) = tokens.get_mut(i).map(|t| &mut t.token)
            && demote
        {
            w.keyword = Keyword::NoKeyword;
        }
    }
}

/// KSQL as sqlparser sees it: [`GenericDialect`] with KSQL's identifier rules.
///
/// Identifiers may be delimited with backticks or double quotes. The dialect reports
/// [`GenericDialect`]'s type id so that sqlparser's many `dialect_of!(GenericDialect)` branches
/// (struct and map types, ...) apply; the `supports_*` switches KSQL needs are forwarded below.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct KsqlDialect;

impl Dialect for KsqlDialect {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '@' || ch == '$'
    }

    /// `STRUCT<a INT>` in `CAST` and the rewritten `STRUCT(a := 1)` constructor.
    fn supports_struct_literal(&self) -> bool {
        true
    }

    /// The rewritten `MAP(k := v)` constructor becomes `MAP {k: v}`.
    fn support_map_literal_syntax(&self) -> bool {
        true
    }

    /// See [`SPECIAL_FORMS`]: no retrying a failed special form as an identifier.
    fn is_reserved_for_identifier(&self, kw: Keyword) -> bool {
        RESERVED.contains(&kw) || SPECIAL_FORMS.iter().any(|(k, _)| *k == kw)
    }

    /// KSQL lambdas (`x => x + 1`) are handed to sqlparser as `x -> x + 1`.
    fn supports_lambda_functions(&self) -> bool {
        true
    }
}

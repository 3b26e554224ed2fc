//! Variable substitution, as ksqlDB does it: `DEFINE name = 'value';` defines a variable for
//! the statements after it, `UNDEFINE name;` removes it, and `${name}` in a statement is
//! replaced by the value (the quotes of the DEFINE removed) before the statement is parsed.
//! Clients pass variables of their session along with a request (`sessionVariables`).
//!
//! Entry point: [`substitute`], over a whole script; the DEFINE and UNDEFINE statements stay
//! in the script (they parse to [`Statement::Define`] and [`Statement::Undefine`]).

use std::collections::BTreeMap;

use crate::ast::Statement;
use crate::error::SqlError;

/// Variables by name. Names are matched without regard to case, as ksqlDB matches them.
pub type Variables = BTreeMap<String, String>;

/// The value of `name` in `vars`, whatever the case of either.
pub fn lookup<'a>(vars: &'a Variables, name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Defines `name` (replacing a definition in another case).
pub fn define(vars: &mut Variables, name: &str, value: &str) {
    undefine(vars, name);
    vars.insert(name.to_string(), value.to_string());
}

/// Removes `name`, whatever its case.
pub fn undefine(vars: &mut Variables, name: &str) {
    vars.retain(|k, _| !k.eq_ignore_ascii_case(name));
}

/// Replaces every `${name}` of `script` outside comments with its value, statement by
/// statement: a `DEFINE` or `UNDEFINE` changes `vars` for the statements after it.
///
/// # Errors
///
/// [`SqlError::Invalid`] for a reference to a variable that is not defined, or an unclosed
/// `${`; a DEFINE that does not parse gives its syntax error.
pub fn substitute(script: &str, vars: &mut Variables) -> Result<String, SqlError> {
    let mut out = String::with_capacity(script.len());
    for piece in pieces(script) {
        match piece {
            Piece::Comment(text) => out.push_str(text),
            Piece::Statement(text) => {
                let replaced = replace_references(text, vars)?;
                apply_definition(&replaced, vars)?;
                out.push_str(&replaced);
            }
        }
    }
    Ok(out)
}

/// A DEFINE or UNDEFINE statement's effect on `vars`.
fn apply_definition(statement: &str, vars: &mut Variables) -> Result<(), SqlError> {
    let first = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    if !first.eq_ignore_ascii_case("DEFINE") && !first.eq_ignore_ascii_case("UNDEFINE") {
        return Ok(());
    }
    for parsed in crate::parse(statement)? {
        match parsed.statement {
            Statement::Define { name, value } => define(vars, &name, &value),
            Statement::Undefine { name } => undefine(vars, &name),
            _ => {}
        }
    }
    Ok(())
}

/// `${name}` replaced by each name's value.
fn replace_references(text: &str, vars: &Variables) -> Result<String, SqlError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find('}').ok_or_else(|| {
            SqlError::Invalid(format!(
                "The variable reference '{}' is not closed with '}}'.",
                &rest[at..rest.len().min(at + 40)]
            ))
        })?;
        let name = after[..end].trim();
        let value = lookup(vars, name).ok_or_else(|| {
            SqlError::Invalid(format!(
                "The variable '{name}' is not defined (DEFINE {name} = '…';)."
            ))
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A stretch of a script: statement text (up to and with its `;`, quoted text included) or
/// a comment.
enum Piece<'a> {
    Statement(&'a str),
    Comment(&'a str),
}

/// Splits a script into statements and comments, minding quotes (`'…'`, `"…"`, `` `…` ``,
/// doubled to escape) so that a `;` or `--` inside them splits nothing.
fn pieces(script: &str) -> Vec<Piece<'_>> {
    let bytes = script.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                if bytes.get(i + 1) == Some(&q) {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            i += 1;
            continue;
        }
        let comment_end = match (b, bytes.get(i + 1)) {
            (b'-', Some(b'-')) => Some(script[i..].find('\n').map_or(bytes.len(), |n| i + n)),
            (b'/', Some(b'*')) => Some(
                script[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + n + 4),
            ),
            _ => None,
        };
        if let Some(end) = comment_end {
            if start < i {
                pieces.push(Piece::Statement(&script[start..i]));
            }
            pieces.push(Piece::Comment(&script[i..end]));
            start = end;
            i = end;
            continue;
        }
        match b {
            b'\'' | b'"' | b'`' => quote = Some(b),
            b';' => {
                pieces.push(Piece::Statement(&script[start..=i]));
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < bytes.len() {
        pieces.push(Piece::Statement(&script[start..]));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str) -> Result<String, SqlError> {
        substitute(script, &mut Variables::new())
    }

    #[test]
    fn defined_variables_are_replaced_in_later_statements() {
        let out = run("DEFINE t = 'orders'; DEFINE n = '3';\n\
             CREATE STREAM s (a INT) WITH (kafka_topic='${t}', partitions=${n});")
        .expect("substitutes");
        assert!(
            out.ends_with("WITH (kafka_topic='orders', partitions=3);"),
            "{out}"
        );
    }

    #[test]
    fn a_quoted_value_keeps_its_inner_quotes() {
        let out = run(
            "DEFINE topic = '''my_topic'''; CREATE STREAM s (a INT) WITH (kafka_topic=${TOPIC});",
        )
        .expect("substitutes");
        assert!(out.contains("kafka_topic='my_topic'"), "{out}");
    }

    #[test]
    fn undefined_and_undefine_variables_are_errors() {
        let err = run("SELECT ${x} FROM s;").expect_err("x is not defined");
        assert!(err.to_string().contains("'x' is not defined"), "{err}");
        let err = run("DEFINE x = '1'; UNDEFINE x; SELECT ${x} FROM s;").expect_err("gone");
        assert!(err.to_string().contains("'x' is not defined"), "{err}");
        assert!(run("SELECT ${x FROM s;").is_err());
    }

    #[test]
    fn comments_and_quoted_semicolons_are_kept_as_they_are() {
        let mut vars = Variables::from([("v".to_string(), "1".to_string())]);
        let script = "-- ${not} a reference\nSELECT 'a;b', ${v} FROM s; /* ${nor} */";
        let out = substitute(script, &mut vars).expect("substitutes");
        assert_eq!(
            out,
            "-- ${not} a reference\nSELECT 'a;b', 1 FROM s; /* ${nor} */"
        );
    }

    #[test]
    fn session_variables_apply_and_a_define_replaces_them() {
        let mut vars = Variables::from([("NAME".to_string(), "a".to_string())]);
        let out = substitute(
            "SELECT ${name}; DEFINE name = 'b'; SELECT ${Name};",
            &mut vars,
        )
        .expect("substitutes");
        assert_eq!(out, "SELECT a; DEFINE name = 'b'; SELECT b;");
        assert_eq!(lookup(&vars, "name"), Some("b"));
    }
}

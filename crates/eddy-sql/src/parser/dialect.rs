//! The sqlparser [`Dialect`] for KSQL.

use std::any::TypeId;

use datafusion_sql::sqlparser::dialect::{Dialect, GenericDialect};

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

    /// KSQL lambdas (`x => x + 1`) are handed to sqlparser as `x -> x + 1`.
    fn supports_lambda_functions(&self) -> bool {
        true
    }
}

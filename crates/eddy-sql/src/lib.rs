//! Eddy's SQL front end: the KSQL dialect, catalog types and binding of queries to DataFusion.
//!
//! Entry points: [`parse()`] turns text into [`ast::ParsedStatement`]s; [`plan::plan_query`] binds a
//! query against a [`catalog::Catalog`] into a [`plan::QueryPlan`] the engine can run.
//!
//! Invariant: this crate does no I/O and knows nothing of Kafka or HTTP.

pub mod ast;
pub mod catalog;
mod error;
pub mod parser;
pub mod types;
pub mod variables;
pub mod window;

pub use error::{Location, SqlError};
pub use parser::{parse, parse_with_types};
pub mod plan;

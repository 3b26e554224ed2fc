//! The JSON format: a record is a JSON object holding the columns, or (unwrapped) the bare
//! value of its single column.

pub(crate) mod decode;
pub(crate) mod encode;
mod parser;

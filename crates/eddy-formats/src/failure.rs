//! Why one record failed to decode. Built only on the error path, so it may allocate.

use std::fmt;

/// A per-record decoding failure, with the path (`$.A.B[2]`) of the value that caused it.
#[derive(Debug)]
pub(crate) struct Failure {
    message: String,
    /// Path segments, innermost first: they are added while the error unwinds.
    path: Vec<String>,
}

impl Failure {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            path: Vec::new(),
        }
    }

    /// Jackson's wording, so processing-log entries read like ksqlDB's.
    pub(crate) fn convert(source: &str, target: &str) -> Self {
        Self::new(format!(
            "Can't convert type. sourceType: {source}, requiredType: {target}"
        ))
    }

    pub(crate) fn coerce(target: &str) -> Self {
        Self::new(format!("Can't coerce string to type. targetType: {target}"))
    }

    pub(crate) fn at_field(mut self, name: &str) -> Self {
        self.path.push(format!(".{name}"));
        self
    }

    pub(crate) fn at_index(mut self, index: usize) -> Self {
        self.path.push(format!("[{index}]"));
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.path.is_empty() {
            f.write_str(", path: $")?;
            for segment in self.path.iter().rev() {
                f.write_str(segment)?;
            }
        }
        Ok(())
    }
}

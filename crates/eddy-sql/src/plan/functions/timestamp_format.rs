//! `TIMESTAMP_FORMAT`: reading a STRING timestamp column with a Java `DateTimeFormatter`
//! pattern, as ksqlDB's timestamp extractor does for a source's or a sink's `TIMESTAMP` column.

use super::java_time::{Pattern, Zone};
use crate::error::SqlError;

/// A compiled `TIMESTAMP_FORMAT`: text in the pattern, in UTC unless it names a zone or an
/// offset, to milliseconds since the epoch.
#[derive(Debug, Clone)]
pub struct TimestampFormat {
    pattern: Pattern,
}

impl TimestampFormat {
    /// The format for `pattern`, or what is wrong with the pattern.
    pub fn new(pattern: &str) -> Result<Self, SqlError> {
        pattern
            .parse::<Pattern>()
            .map(|pattern| TimestampFormat { pattern })
            .map_err(|e| SqlError::Invalid(format!("Invalid TIMESTAMP_FORMAT '{pattern}': {e}")))
    }

    /// `text` as milliseconds since the epoch.
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        self.pattern.parse(text, false)?.to_utc_millis(&Zone::utc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_timestamps_in_utc_unless_the_text_has_a_zone() {
        let f = TimestampFormat::new("yyyy-MM-dd'T'HH:mm:ssX").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.parse("2018-05-11T21:58:33Z"), Ok(1_526_075_913_000));
        assert_eq!(f.parse("2018-05-11T23:58:33+02"), Ok(1_526_075_913_000));
        assert!(f.parse("not a timestamp").is_err());
        let f = TimestampFormat::new("yy-MM-dd HH:mm:ss").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.parse("10-04-19 12:00:17"), Ok(1_271_678_417_000));
        assert!(TimestampFormat::new("yyyy-MM-dd'T").is_err());
    }
}

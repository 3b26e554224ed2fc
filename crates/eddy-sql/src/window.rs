//! Window specifications (`WINDOW TUMBLING|HOPPING|SESSION (…)`).

use std::time::Duration;

/// The kind and sizes of a window.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WindowSpec {
    /// `TUMBLING (SIZE n unit [, RETENTION …] [, GRACE PERIOD …])`
    Tumbling {
        /// Window length.
        size: Duration,
        /// How long closed windows are kept.
        retention: Option<Duration>,
        /// How late a record may arrive and still count.
        grace: Option<Duration>,
    },
    /// `HOPPING (SIZE n unit, ADVANCE BY m unit [, …])`
    Hopping {
        /// Window length.
        size: Duration,
        /// Distance between window starts.
        advance: Duration,
        /// How long closed windows are kept.
        retention: Option<Duration>,
        /// How late a record may arrive and still count.
        grace: Option<Duration>,
    },
    /// `SESSION (n unit [, …])`
    Session {
        /// Inactivity gap that closes a session.
        gap: Duration,
        /// How long closed windows are kept.
        retention: Option<Duration>,
        /// How late a record may arrive and still count.
        grace: Option<Duration>,
    },
}

impl WindowSpec {
    /// `TUMBLING`, `HOPPING` or `SESSION`, as ksqlDB prints a window type.
    pub fn type_name(&self) -> &'static str {
        match self {
            WindowSpec::Tumbling { .. } => "TUMBLING",
            WindowSpec::Hopping { .. } => "HOPPING",
            WindowSpec::Session { .. } => "SESSION",
        }
    }
}

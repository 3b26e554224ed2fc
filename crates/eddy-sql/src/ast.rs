//! Typed KSQL statements, as the parser produces them.
//!
//! Identifiers are already normalised: unquoted names upper-cased, quoted ones kept as
//! written. The standard part of a query (SELECT … FROM … JOIN … WHERE … GROUP BY … HAVING …
//! LIMIT) is a sqlparser [`Query`]; the KSQL-only clauses sit beside it in [`KsqlQuery`].

use std::collections::BTreeMap;

use datafusion_sql::sqlparser::ast::{Expr, Query};

use crate::catalog::SourceKind;
use crate::types::SqlType;
use crate::window::WindowSpec;

/// One statement with the text it was parsed from.
#[derive(Debug, Clone)]
pub struct ParsedStatement {
    /// The statement text as the user wrote it, without the trailing `;`.
    pub text: String,
    /// 1-based line of the statement's first character in the submitted text.
    pub line: u64,
    /// The statement.
    pub statement: Statement,
}

/// A KSQL statement.
#[derive(Debug, Clone)]
pub enum Statement {
    /// `CREATE [OR REPLACE] [SOURCE] STREAM|TABLE [IF NOT EXISTS] name (cols) WITH (…)`
    CreateSource(CreateSource),
    /// `CREATE [OR REPLACE] STREAM|TABLE [IF NOT EXISTS] name [WITH (…)] AS SELECT …`
    CreateAsSelect(CreateAsSelect),
    /// `INSERT INTO name SELECT …`
    InsertSelect {
        /// Target stream.
        target: String,
        /// The query whose rows are appended.
        query: KsqlQuery,
    },
    /// `INSERT INTO name [(cols)] VALUES (…)`
    InsertValues {
        /// Target stream or table.
        target: String,
        /// Explicit column list, if given.
        columns: Option<Vec<String>>,
        /// One expression per column.
        values: Vec<Expr>,
    },
    /// `DROP STREAM|TABLE [IF EXISTS] name [DELETE TOPIC]`
    Drop {
        /// Stream or table.
        kind: SourceKind,
        /// Name.
        name: String,
        /// `IF EXISTS`
        if_exists: bool,
        /// `DELETE TOPIC`
        delete_topic: bool,
    },
    /// `TERMINATE query_id` / `TERMINATE ALL`
    Terminate(TerminateTarget),
    /// `PAUSE query_id` / `PAUSE ALL`: the query stops processing and keeps its place.
    Pause(TerminateTarget),
    /// `RESUME query_id` / `RESUME ALL`: a paused query processes again.
    Resume(TerminateTarget),
    /// `SHOW|LIST …`
    Show {
        /// What to list.
        what: ShowWhat,
        /// `EXTENDED`
        extended: bool,
    },
    /// `DESCRIBE name [EXTENDED]`
    Describe {
        /// Source name.
        name: String,
        /// `EXTENDED`
        extended: bool,
    },
    /// `DESCRIBE FUNCTION name`
    DescribeFunction(String),
    /// `EXPLAIN query_id` or `EXPLAIN statement`
    Explain(ExplainTarget),
    /// `PRINT 'topic' [FROM BEGINNING] [INTERVAL n] [LIMIT n]`
    Print {
        /// Topic name as written (case kept).
        topic: String,
        /// `FROM BEGINNING`
        from_beginning: bool,
        /// `INTERVAL n`: print every n-th record.
        interval: Option<u64>,
        /// `LIMIT n`
        limit: Option<u64>,
    },
    /// `SET 'name' = 'value'`
    Set {
        /// Property name.
        name: String,
        /// Property value.
        value: String,
    },
    /// `UNSET 'name'`
    Unset {
        /// Property name.
        name: String,
    },
    /// A push (`EMIT CHANGES`) or pull (no `EMIT`) query.
    Query(KsqlQuery),
    /// `DEFINE name = 'value'`: a variable for `${name}` in later statements of the session
    /// (see [`crate::variables`]).
    Define {
        /// Variable name.
        name: String,
        /// Its value, the quotes removed.
        value: String,
    },
    /// `UNDEFINE name`
    Undefine {
        /// Variable name.
        name: String,
    },
    /// `CREATE TYPE [IF NOT EXISTS] name AS type`: a name for a type, usable wherever a type
    /// is written in later statements.
    CreateType {
        /// The type's name (upper-cased unless quoted).
        name: String,
        /// The type it names.
        ty: SqlType,
        /// `IF NOT EXISTS`
        if_not_exists: bool,
    },
    /// `DROP TYPE [IF EXISTS] name`
    DropType {
        /// The type's name.
        name: String,
        /// `IF EXISTS`
        if_exists: bool,
    },
    /// `ALTER STREAM|TABLE name ADD [COLUMN] c type [, ADD [COLUMN] d type …]`
    Alter {
        /// Stream or table.
        kind: SourceKind,
        /// Its name.
        name: String,
        /// The value columns to add, in order.
        columns: Vec<(String, SqlType)>,
    },
    /// `ASSERT [NOT EXISTS] TOPIC name [WITH (…)] [TIMEOUT n unit]`
    AssertTopic {
        /// Topic name (an unquoted identifier upper-cased, as ksqlDB reads identifiers).
        topic: String,
        /// `true` for `ASSERT TOPIC`, `false` for `ASSERT NOT EXISTS TOPIC`.
        exists: bool,
        /// `PARTITIONS` and `REPLICAS` to check (only for `exists`).
        with: WithProperties,
        /// `TIMEOUT`: how long to wait for the assertion to hold.
        timeout: Option<std::time::Duration>,
    },
}

/// `CREATE … STREAM|TABLE name (columns) WITH (…)`.
#[derive(Debug, Clone)]
pub struct CreateSource {
    /// Stream or table.
    pub kind: SourceKind,
    /// Name.
    pub name: String,
    /// `OR REPLACE`
    pub or_replace: bool,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// `CREATE SOURCE …`
    pub is_source: bool,
    /// Declared columns (may be empty only for schema-registry formats).
    pub elements: Vec<TableElement>,
    /// The `WITH` properties.
    pub with: WithProperties,
}

/// A declared column.
#[derive(Debug, Clone, PartialEq)]
pub struct TableElement {
    /// Column name.
    pub name: String,
    /// Column type.
    pub ty: SqlType,
    /// `KEY` (streams) or `PRIMARY KEY` (tables).
    pub key: bool,
    /// `PRIMARY KEY` was written (as opposed to `KEY`).
    pub primary_key: bool,
    /// A header column: `Some(None)` for `HEADERS` (all of them), `Some(Some(key))` for
    /// `HEADER('key')`.
    pub header: Option<Option<String>>,
}

/// `CREATE … STREAM|TABLE name [WITH (…)] AS SELECT …`.
#[derive(Debug, Clone)]
pub struct CreateAsSelect {
    /// Stream or table.
    pub kind: SourceKind,
    /// Name of the new source.
    pub name: String,
    /// `OR REPLACE`
    pub or_replace: bool,
    /// `IF NOT EXISTS`
    pub if_not_exists: bool,
    /// The `WITH` properties.
    pub with: WithProperties,
    /// The query.
    pub query: KsqlQuery,
}

/// A literal value of a `WITH` property.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// `'text'`
    String(String),
    /// `42`, `1.5`
    Number(String),
    /// `true` / `false`
    Boolean(bool),
}

impl PropertyValue {
    /// The value as text (numbers as written, booleans as `true`/`false`).
    pub fn as_text(&self) -> String {
        match self {
            PropertyValue::String(s) | PropertyValue::Number(s) => s.clone(),
            PropertyValue::Boolean(b) => b.to_string(),
        }
    }
}

/// `WITH (NAME = value, …)`: names upper-cased.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WithProperties {
    /// Properties by upper-cased name.
    pub props: BTreeMap<String, PropertyValue>,
}

impl WithProperties {
    /// A property by upper-case name.
    pub fn get(&self, name: &str) -> Option<&PropertyValue> {
        self.props.get(name)
    }
}

/// A query: the standard SELECT plus the KSQL-only clauses.
#[derive(Debug, Clone)]
pub struct KsqlQuery {
    /// SELECT … FROM … [JOIN …] [WHERE …] [GROUP BY …] [HAVING …] [LIMIT n], with identifiers
    /// normalised and `a->b` rewritten to `a['b']`.
    pub select: Box<Query>,
    /// `WINDOW …`
    pub window: Option<WindowSpec>,
    /// `WITHIN …` of each join, in join order (`None` for a join without it).
    pub within: Vec<Option<JoinWindow>>,
    /// `PARTITION BY e, …`
    pub partition_by: Option<Vec<Expr>>,
    /// `EMIT CHANGES|FINAL`; `None` for a pull query.
    pub emit: Option<Emit>,
    /// The query text as written.
    pub text: String,
}

/// `WITHIN n unit` or `WITHIN (before, after)` of a stream–stream join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindow {
    /// How far the other side may be before.
    pub before: std::time::Duration,
    /// How far the other side may be after.
    pub after: std::time::Duration,
    /// `GRACE PERIOD`
    pub grace: Option<std::time::Duration>,
}

/// `EMIT CHANGES` or `EMIT FINAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emit {
    /// Every change is emitted (a push query).
    Changes,
    /// One result per window, when it closes.
    Final,
}

/// What `TERMINATE` stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminateTarget {
    /// One query by id (as written, upper-cased unless quoted).
    Query(String),
    /// `TERMINATE ALL`
    All,
}

/// What `SHOW|LIST` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShowWhat {
    /// `STREAMS`
    Streams,
    /// `TABLES`
    Tables,
    /// `QUERIES`
    Queries,
    /// `TOPICS` (`ALL TOPICS` lists internal ones too)
    Topics {
        /// `ALL TOPICS`
        all: bool,
    },
    /// `PROPERTIES`
    Properties,
    /// `FUNCTIONS`
    Functions,
    /// `VARIABLES`: the session's variables.
    Variables,
    /// `TYPES`: the types `CREATE TYPE` named.
    Types,
}

/// What `EXPLAIN` explains.
#[derive(Debug, Clone)]
pub enum ExplainTarget {
    /// A running query by id.
    Query(String),
    /// A statement that is planned but not run.
    Statement(Box<Statement>),
}

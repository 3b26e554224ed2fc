//! The catalog: streams and tables Eddy knows, with their schemas and topics.

use std::collections::BTreeMap;
use std::fmt;

use crate::types::SqlType;
use crate::window::WindowSpec;

/// Stream or table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceKind {
    /// An append-only stream of events.
    Stream,
    /// A changelog whose latest value per key is the current row.
    Table,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::Stream => "STREAM",
            SourceKind::Table => "TABLE",
        })
    }
}

/// Where a column's data lives in a record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ColumnRole {
    /// In the record key (`KEY` / `PRIMARY KEY`).
    Key,
    /// In the record value.
    Value,
    /// In the record headers, read-only: all of them (`HEADERS`, `None`), or the last one
    /// with a key (`HEADER('key')`).
    Header(Option<String>),
}

impl ColumnRole {
    /// Whether the column is read from the record headers.
    pub fn is_header(&self) -> bool {
        matches!(self, ColumnRole::Header(_))
    }
}

impl fmt::Display for ColumnRole {
    /// The marker ksqlDB writes after a column's type in a schema (empty for values; keys
    /// depend on the source kind and are written by [`Source::schema_string`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnRole::Key => f.write_str(" KEY"),
            ColumnRole::Value => Ok(()),
            ColumnRole::Header(None) => f.write_str(" HEADERS"),
            ColumnRole::Header(Some(key)) => write!(f, " HEADER('{}')", key.replace('\'', "''")),
        }
    }
}

/// A column of a stream or table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// Column name (upper-cased unless it was quoted).
    pub name: String,
    /// Column type.
    pub ty: SqlType,
    /// Key or value.
    pub role: ColumnRole,
}

/// A serialisation format name (`KEY_FORMAT`, `VALUE_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatName {
    /// `JSON`
    Json,
    /// `DELIMITED` (CSV-like)
    Delimited,
    /// `KAFKA` (Kafka's primitive serialisers)
    Kafka,
    /// `NONE` (no key)
    None,
    /// `AVRO` (schemas in a schema registry)
    Avro,
    /// `PROTOBUF` (Protobuf messages with their schemas in a schema registry)
    Protobuf,
    /// `PROTOBUF_NOSR` (Protobuf messages without a registry: the schema is the columns')
    ProtobufNoSr,
    /// `JSON_SR` (JSON with its JSON Schema in a schema registry)
    JsonSr,
}

impl FormatName {
    /// Parses a format name case-insensitively.
    pub fn parse(s: &str) -> Option<FormatName> {
        Some(match s.to_ascii_uppercase().as_str() {
            "JSON" => FormatName::Json,
            "DELIMITED" => FormatName::Delimited,
            "KAFKA" => FormatName::Kafka,
            "NONE" => FormatName::None,
            "AVRO" => FormatName::Avro,
            "PROTOBUF" => FormatName::Protobuf,
            "PROTOBUF_NOSR" => FormatName::ProtobufNoSr,
            "JSON_SR" => FormatName::JsonSr,
            _ => return None,
        })
    }

    /// Whether records of this format are Protobuf messages.
    pub fn is_protobuf(self) -> bool {
        matches!(self, FormatName::Protobuf | FormatName::ProtobufNoSr)
    }

    /// Whether records of this format carry a schema id and their schemas live in a schema
    /// registry.
    pub fn uses_registry(self) -> bool {
        matches!(
            self,
            FormatName::Avro | FormatName::Protobuf | FormatName::JsonSr
        )
    }
}

impl fmt::Display for FormatName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FormatName::Json => "JSON",
            FormatName::Delimited => "DELIMITED",
            FormatName::Kafka => "KAFKA",
            FormatName::None => "NONE",
            FormatName::Avro => "AVRO",
            FormatName::Protobuf => "PROTOBUF",
            FormatName::ProtobufNoSr => "PROTOBUF_NOSR",
            FormatName::JsonSr => "JSON_SR",
        })
    }
}

/// A stream or table registered in the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Name (upper-cased unless quoted).
    pub name: String,
    /// Stream or table.
    pub kind: SourceKind,
    /// Key columns first, then value columns, in declaration order.
    pub columns: Vec<Column>,
    /// The Kafka topic holding the records.
    pub topic: String,
    /// Format of record keys.
    pub key_format: FormatName,
    /// Format of record values.
    pub value_format: FormatName,
    /// Field delimiter for DELIMITED values.
    pub value_delimiter: char,
    /// Field delimiter for DELIMITED keys (`KEY_DELIMITER`).
    pub key_delimiter: char,
    /// Whether a single value column is wrapped in an object/record (`WRAP_SINGLE_VALUE`).
    pub wrap_single_value: bool,
    /// Column whose value is the record's event time (`TIMESTAMP`), instead of ROWTIME.
    pub timestamp_column: Option<String>,
    /// Format for parsing a string `TIMESTAMP` column (`TIMESTAMP_FORMAT`).
    pub timestamp_format: Option<String>,
    /// Window of a windowed source (aggregation results), if any.
    pub window: Option<WindowSpec>,
    /// `CREATE SOURCE TABLE|STREAM`: read-only, materialised for pull queries.
    pub is_source: bool,
    /// The statement that created it.
    pub sql: String,
    /// Where its AVRO keys and values find their schemas.
    pub schemas: SourceSchemas,
}

/// The schema-registry settings of a source: `KEY_SCHEMA_ID`, `VALUE_SCHEMA_ID`, the schema
/// full names, and the registry itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceSchemas {
    /// `KEY_SCHEMA_ID`: keys are written with this registered schema.
    pub key_id: Option<u32>,
    /// `VALUE_SCHEMA_ID`: values are written with this registered schema.
    pub value_id: Option<u32>,
    /// `KEY_SCHEMA_FULL_NAME`: the record name of a derived key schema.
    pub key_full_name: Option<String>,
    /// `VALUE_AVRO_SCHEMA_FULL_NAME` / `VALUE_SCHEMA_FULL_NAME`: the record name of a derived
    /// value schema.
    pub value_full_name: Option<String>,
    /// `KEY_PROTOBUF_NULLABLE_REPRESENTATION`: `OPTIONAL` or `WRAPPER`, upper-cased.
    pub key_protobuf_nullable: Option<String>,
    /// `VALUE_PROTOBUF_NULLABLE_REPRESENTATION`: `OPTIONAL` or `WRAPPER`, upper-cased.
    pub value_protobuf_nullable: Option<String>,
    /// The registry; `None` where no schema-registry format can be used.
    pub registry: Option<Registry>,
}

/// A handle on the schema registry a source's records are read and written with.
#[derive(Clone)]
pub struct Registry(pub std::sync::Arc<dyn eddy_registry::SchemaRegistry>);

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Registry")
    }
}

impl PartialEq for Registry {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Source {
    /// A source of `columns` over `topic` with the defaults a `CREATE` statement without
    /// formats gives: KAFKA keys, JSON values, `,` delimiters, single values wrapped, the
    /// record's own timestamp, no window, no schema-registry settings.
    pub fn new(name: &str, kind: SourceKind, topic: &str, columns: Vec<Column>) -> Source {
        Source {
            name: name.to_string(),
            kind,
            columns,
            topic: topic.to_string(),
            key_format: FormatName::Kafka,
            value_format: FormatName::Json,
            value_delimiter: ',',
            key_delimiter: ',',
            wrap_single_value: true,
            timestamp_column: None,
            timestamp_format: None,
            window: None,
            is_source: false,
            sql: String::new(),
            schemas: SourceSchemas::default(),
        }
    }

    /// Key columns in order.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.role == ColumnRole::Key)
    }

    /// Value columns in order.
    pub fn value_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.role == ColumnRole::Value)
    }

    /// Header columns (`HEADERS`, `HEADER('key')`) in order.
    pub fn header_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.role.is_header())
    }

    /// The columns a query reads, in scan order: keys, values, then headers.
    pub fn scan_columns(&self) -> impl Iterator<Item = &Column> {
        self.key_columns()
            .chain(self.value_columns())
            .chain(self.header_columns())
    }

    /// A column by exact name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The schema as ksqlDB prints it: ``"`ID` BIGINT KEY, `V` STRING"``
    /// (tables say `PRIMARY KEY`).
    pub fn schema_string(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("`{}` {}", c.name, c.ty));
            match (&c.role, self.kind) {
                (ColumnRole::Key, SourceKind::Table) => out.push_str(" PRIMARY KEY"),
                (role, _) => out.push_str(&role.to_string()),
            }
        }
        out
    }
}

/// Every stream and table by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    sources: BTreeMap<String, Source>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// A source by exact (already normalised) name.
    pub fn get(&self, name: &str) -> Option<&Source> {
        self.sources.get(name)
    }

    /// Adds or replaces a source.
    pub fn insert(&mut self, source: Source) {
        self.sources.insert(source.name.clone(), source);
    }

    /// Removes a source.
    pub fn remove(&mut self, name: &str) -> Option<Source> {
        self.sources.remove(name)
    }

    /// All sources in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }
}

//! ksqlDB's function library by name: what `SHOW FUNCTIONS` lists, with ksqlDB's categories,
//! and the only names the planner resolves. DataFusion implements many more functions; those
//! ksqlDB does not have are not registered, so no query runs one whose semantics nobody has
//! checked against ksqlDB's (Eddy has no extensions yet; they would be listed here).

/// ksqlDB's category of a function, as `SHOW FUNCTIONS` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Numbers.
    Mathematical,
    /// Text.
    String,
    /// Regular expressions.
    RegularExpression,
    /// JSON in text.
    Json,
    /// Arrays.
    Array,
    /// Maps.
    Map,
    /// Dates, times and timestamps.
    DateTime,
    /// URLs.
    Url,
    /// NULL handling.
    Conditional,
    /// Bytes to numbers.
    Conversions,
    /// Functions of lambdas.
    Lambda,
    /// Aggregations.
    Aggregate,
    /// Table functions (one row in, many out).
    Table,
}

impl Category {
    /// The category as ksqlDB writes it.
    pub fn name(self) -> &'static str {
        match self {
            Category::Mathematical => "MATHEMATICAL",
            Category::String => "STRING",
            Category::RegularExpression => "REGULAR EXPRESSION",
            Category::Json => "JSON",
            Category::Array => "ARRAY",
            Category::Map => "MAP",
            Category::DateTime => "DATE / TIME",
            Category::Url => "URL",
            Category::Conditional => "CONDITIONAL",
            Category::Conversions => "CONVERSIONS",
            Category::Lambda => "LAMBDA",
            Category::Aggregate => "AGGREGATE",
            Category::Table => "TABLE",
        }
    }
}

/// ksqlDB's scalar functions (its reference's `scalar-functions.md`), with their categories.
/// `ARRAY`, `MAP` and `CAST` are syntax the planner handles itself.
pub const SCALAR_FUNCTIONS: &[(&str, Category)] = &[
    ("ABS", Category::Mathematical),
    ("ACOS", Category::Mathematical),
    ("ASIN", Category::Mathematical),
    ("AS_VALUE", Category::Mathematical),
    ("ATAN", Category::Mathematical),
    ("ATAN2", Category::Mathematical),
    ("CAST", Category::Mathematical),
    ("CBRT", Category::Mathematical),
    ("CEIL", Category::Mathematical),
    ("COS", Category::Mathematical),
    ("COSH", Category::Mathematical),
    ("COT", Category::Mathematical),
    ("DEGREES", Category::Mathematical),
    ("ENTRIES", Category::Map),
    ("EXP", Category::Mathematical),
    ("FLOOR", Category::Mathematical),
    ("GENERATE_SERIES", Category::Mathematical),
    ("GEO_DISTANCE", Category::Mathematical),
    ("GREATEST", Category::Mathematical),
    ("LEAST", Category::Mathematical),
    ("LN", Category::Mathematical),
    ("LOG", Category::Mathematical),
    ("PI", Category::Mathematical),
    ("POWER", Category::Mathematical),
    ("RADIANS", Category::Mathematical),
    ("RANDOM", Category::Mathematical),
    ("ROUND", Category::Mathematical),
    ("SIGN", Category::Mathematical),
    ("SIN", Category::Mathematical),
    ("SINH", Category::Mathematical),
    ("SQRT", Category::Mathematical),
    ("TAN", Category::Mathematical),
    ("TANH", Category::Mathematical),
    ("TRUNC", Category::Mathematical),
    ("ARRAY", Category::Array),
    ("ARRAY_CONCAT", Category::Array),
    ("ARRAY_CONTAINS", Category::Array),
    ("ARRAY_DISTINCT", Category::Array),
    ("ARRAY_EXCEPT", Category::Array),
    ("ARRAY_INTERSECT", Category::Array),
    ("ARRAY_JOIN", Category::Array),
    ("ARRAY_LENGTH", Category::Array),
    ("ARRAY_MAX", Category::Array),
    ("ARRAY_MIN", Category::Array),
    ("ARRAY_REMOVE", Category::Array),
    ("ARRAY_SORT", Category::Array),
    ("ARRAY_UNION", Category::Array),
    ("AS_MAP", Category::Map),
    ("ELT", Category::Array),
    ("FIELD", Category::Array),
    ("JSON_ARRAY_CONTAINS", Category::Json),
    ("MAP", Category::Map),
    ("MAP_KEYS", Category::Map),
    ("MAP_VALUES", Category::Map),
    ("MAP_UNION", Category::Map),
    ("SLICE", Category::Array),
    ("FILTER", Category::Lambda),
    ("REDUCE", Category::Lambda),
    ("TRANSFORM", Category::Lambda),
    ("CHR", Category::String),
    ("CONCAT", Category::String),
    ("CONCAT_WS", Category::String),
    ("ENCODE", Category::String),
    ("EXTRACTJSONFIELD", Category::Json),
    ("FROM_BYTES", Category::String),
    ("IS_JSON_STRING", Category::Json),
    ("JSON_ARRAY_LENGTH", Category::Json),
    ("JSON_CONCAT", Category::Json),
    ("JSON_KEYS", Category::Json),
    ("JSON_RECORDS", Category::Json),
    ("JSON_ITEMS", Category::Json),
    ("TO_JSON_STRING", Category::Json),
    ("INITCAP", Category::String),
    ("INSTR", Category::String),
    ("LCASE", Category::String),
    ("LEN", Category::String),
    ("LPAD", Category::String),
    ("MASK", Category::String),
    ("MASK_KEEP_LEFT", Category::String),
    ("MASK_KEEP_RIGHT", Category::String),
    ("MASK_LEFT", Category::String),
    ("MASK_RIGHT", Category::String),
    ("MD5", Category::String),
    ("REPLACE", Category::String),
    ("REGEXP_EXTRACT", Category::RegularExpression),
    ("REGEXP_EXTRACT_ALL", Category::RegularExpression),
    ("REGEXP_REPLACE", Category::RegularExpression),
    ("REGEXP_SPLIT_TO_ARRAY", Category::RegularExpression),
    ("RPAD", Category::String),
    ("SPLIT", Category::String),
    ("SPLIT_TO_MAP", Category::String),
    ("SUBSTRING", Category::String),
    ("TO_BYTES", Category::String),
    ("TRIM", Category::String),
    ("UCASE", Category::String),
    ("UUID", Category::String),
    ("BIGINT_FROM_BYTES", Category::Conversions),
    ("DOUBLE_FROM_BYTES", Category::Conversions),
    ("INT_FROM_BYTES", Category::Conversions),
    ("COALESCE", Category::Conditional),
    ("IFNULL", Category::Conditional),
    ("NULLIF", Category::Conditional),
    ("CONVERT_TZ", Category::DateTime),
    ("DATEADD", Category::DateTime),
    ("DATESUB", Category::DateTime),
    ("FORMAT_DATE", Category::DateTime),
    ("FORMAT_TIME", Category::DateTime),
    ("FORMAT_TIMESTAMP", Category::DateTime),
    ("FROM_DAYS", Category::DateTime),
    ("FROM_UNIXTIME", Category::DateTime),
    ("PARSE_DATE", Category::DateTime),
    ("PARSE_TIME", Category::DateTime),
    ("PARSE_TIMESTAMP", Category::DateTime),
    ("TIMEADD", Category::DateTime),
    ("TIMESUB", Category::DateTime),
    ("TIMESTAMPADD", Category::DateTime),
    ("TIMESTAMPSUB", Category::DateTime),
    ("UNIX_DATE", Category::DateTime),
    ("UNIX_TIMESTAMP", Category::DateTime),
    ("URL_DECODE_PARAM", Category::Url),
    ("URL_ENCODE_PARAM", Category::Url),
    ("URL_EXTRACT_FRAGMENT", Category::Url),
    ("URL_EXTRACT_HOST", Category::Url),
    ("URL_EXTRACT_PARAMETER", Category::Url),
    ("URL_EXTRACT_PATH", Category::Url),
    ("URL_EXTRACT_PORT", Category::Url),
    ("URL_EXTRACT_PROTOCOL", Category::Url),
    ("URL_EXTRACT_QUERY", Category::Url),
    ("DATETOSTRING", Category::DateTime),
    ("STRINGTODATE", Category::DateTime),
    ("STRINGTOTIMESTAMP", Category::DateTime),
    ("TIMESTAMPTOSTRING", Category::DateTime),
];

/// ksqlDB's aggregate functions.
pub const AGGREGATE_FUNCTIONS: &[&str] = &[
    "AVG",
    "COLLECT_LIST",
    "COLLECT_SET",
    "CORRELATION",
    "COUNT",
    "COUNT_DISTINCT",
    "EARLIEST_BY_OFFSET",
    "HISTOGRAM",
    "LATEST_BY_OFFSET",
    "MAX",
    "MIN",
    "STDDEV_SAMP",
    "STDDEV_SAMPLE",
    "SUM",
    "TOPK",
    "TOPKDISTINCT",
];

/// ksqlDB's table functions, which the planner turns into EXPLODE.
pub const TABLE_FUNCTIONS: &[&str] = &["CUBE_EXPLODE", "EXPLODE"];

/// Names that are syntax rather than a function of the library.
pub const SYNTAX: &[&str] = &["ARRAY", "MAP", "CAST"];

/// Whether `name` (any case) is one of ksqlDB's scalar functions that the library holds.
pub fn is_ksql_scalar(name: &str) -> bool {
    SCALAR_FUNCTIONS
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(name) && !SYNTAX.contains(n))
}

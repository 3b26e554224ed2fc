//! What `DESCRIBE FUNCTION` shows for each of ksqlDB's functions: a one-line overview and the
//! variations it accepts (argument names and ksqlDB types, and the result type), written from
//! ksqlDB's function reference. The names are those of [`super::library`], syntax excepted.
//!
//! `T`, `U`, `K` and `V` stand for element types that one call fixes (`ARRAY<T>` in, `T` out),
//! `ANY` for an argument of any type, and `LAMBDA (T) => U` for a lambda's parameters and
//! result.

/// One variation: argument (name, ksqlDB type) pairs, whether the last one repeats, and the
/// result type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Arguments: (name, type) — types as ksqlDB writes them: VARCHAR, INT, BIGINT, DOUBLE,
    /// BOOLEAN, DECIMAL, DATE, TIME, TIMESTAMP, BYTES, ARRAY<T>, MAP<K, V>, STRUCT<…>, and
    /// `T`/`U`/`K`/`V` for generic element types, `ANY` where any type goes.
    pub arguments: &'static [(&'static str, &'static str)],
    /// Whether the last argument may repeat (`CONCAT(str VARCHAR...)`).
    pub variadic: bool,
    /// The result type, as ksqlDB writes it.
    pub returns: &'static str,
}

/// The overview and variations of function `name` (any case; the table holds upper-cased
/// names), if the table has it.
pub fn signatures(name: &str) -> Option<(&'static str, &'static [Signature])> {
    let upper = name.to_ascii_uppercase();
    FUNCTIONS
        .binary_search_by(|(n, _, _)| (*n).cmp(upper.as_str()))
        .ok()
        .and_then(|i| FUNCTIONS.get(i))
        .map(|(_, overview, variations)| (*overview, *variations))
}

/// A variation with a fixed number of arguments.
const fn fixed(
    arguments: &'static [(&'static str, &'static str)],
    returns: &'static str,
) -> Signature {
    Signature {
        arguments,
        variadic: false,
        returns,
    }
}

/// A variation whose last argument may repeat.
const fn repeating(
    arguments: &'static [(&'static str, &'static str)],
    returns: &'static str,
) -> Signature {
    Signature {
        arguments,
        variadic: true,
        returns,
    }
}

/// A number of a type other than DECIMAL, to a DOUBLE (the trigonometric family, roots, …).
const NUMBER_TO_DOUBLE: &[Signature] = &[
    fixed(&[("x", "INT")], "DOUBLE"),
    fixed(&[("x", "BIGINT")], "DOUBLE"),
    fixed(&[("x", "DOUBLE")], "DOUBLE"),
];

/// A number to a number of the same type (`ABS`, `CEIL`, `FLOOR`).
const NUMBER_TO_SAME: &[Signature] = &[
    fixed(&[("x", "INT")], "INT"),
    fixed(&[("x", "BIGINT")], "BIGINT"),
    fixed(&[("x", "DOUBLE")], "DOUBLE"),
    fixed(&[("x", "DECIMAL")], "DECIMAL"),
];

/// `ROUND` and `TRUNC`: a DOUBLE without decimal places becomes a BIGINT.
const TO_PLACES: &[Signature] = &[
    fixed(&[("x", "INT")], "INT"),
    fixed(&[("x", "INT"), ("places", "INT")], "INT"),
    fixed(&[("x", "BIGINT")], "BIGINT"),
    fixed(&[("x", "BIGINT"), ("places", "INT")], "BIGINT"),
    fixed(&[("x", "DOUBLE")], "BIGINT"),
    fixed(&[("x", "DOUBLE"), ("places", "INT")], "DOUBLE"),
    fixed(&[("x", "DECIMAL")], "DECIMAL"),
    fixed(&[("x", "DECIMAL"), ("places", "INT")], "DECIMAL"),
];

/// `GREATEST` and `LEAST`: one or more values of one comparable type.
const EXTREMUM_OF_VALUES: &[Signature] = &[
    repeating(&[("value", "INT"), ("values", "INT")], "INT"),
    repeating(&[("value", "BIGINT"), ("values", "BIGINT")], "BIGINT"),
    repeating(&[("value", "DOUBLE"), ("values", "DOUBLE")], "DOUBLE"),
    repeating(&[("value", "DECIMAL"), ("values", "DECIMAL")], "DECIMAL"),
    repeating(&[("value", "VARCHAR"), ("values", "VARCHAR")], "VARCHAR"),
    repeating(&[("value", "BYTES"), ("values", "BYTES")], "BYTES"),
    repeating(&[("value", "DATE"), ("values", "DATE")], "DATE"),
    repeating(&[("value", "TIME"), ("values", "TIME")], "TIME"),
    repeating(
        &[("value", "TIMESTAMP"), ("values", "TIMESTAMP")],
        "TIMESTAMP",
    ),
];

/// `MIN` and `MAX`: a column of a comparable type.
const EXTREMUM_OF_COLUMN: &[Signature] = &[
    fixed(&[("value", "INT")], "INT"),
    fixed(&[("value", "BIGINT")], "BIGINT"),
    fixed(&[("value", "DOUBLE")], "DOUBLE"),
    fixed(&[("value", "DECIMAL")], "DECIMAL"),
    fixed(&[("value", "VARCHAR")], "VARCHAR"),
    fixed(&[("value", "BYTES")], "BYTES"),
    fixed(&[("value", "DATE")], "DATE"),
    fixed(&[("value", "TIME")], "TIME"),
    fixed(&[("value", "TIMESTAMP")], "TIMESTAMP"),
];

/// `STDDEV_SAMP` and `STDDEV_SAMPLE`.
const DEVIATION: &[Signature] = &[
    fixed(&[("value", "INT")], "DOUBLE"),
    fixed(&[("value", "BIGINT")], "DOUBLE"),
    fixed(&[("value", "DOUBLE")], "DOUBLE"),
];

/// `EARLIEST_BY_OFFSET` and `LATEST_BY_OFFSET`: one value, or the `n` first or last.
const BY_OFFSET: &[Signature] = &[
    fixed(&[("value", "T")], "T"),
    fixed(&[("value", "T"), ("ignore_nulls", "BOOLEAN")], "T"),
    fixed(&[("value", "T"), ("n", "INT")], "ARRAY<T>"),
    fixed(
        &[("value", "T"), ("n", "INT"), ("ignore_nulls", "BOOLEAN")],
        "ARRAY<T>",
    ),
];

/// `COLLECT_LIST` and `COLLECT_SET`.
const COLLECT: &[Signature] = &[fixed(&[("value", "T")], "ARRAY<T>")];

/// Two arrays to one (`ARRAY_CONCAT`, `ARRAY_EXCEPT`, `ARRAY_INTERSECT`, `ARRAY_UNION`).
const TWO_ARRAYS: &[Signature] = &[fixed(
    &[("array1", "ARRAY<T>"), ("array2", "ARRAY<T>")],
    "ARRAY<T>",
)];

/// `ARRAY_MAX` and `ARRAY_MIN`.
const ARRAY_EXTREMUM: &[Signature] = &[fixed(&[("array", "ARRAY<T>")], "T")];

/// A string to a string (`LCASE`, `UCASE`, `TRIM`, …).
const STRING_TO_STRING: &[Signature] = &[fixed(&[("str", "VARCHAR")], "VARCHAR")];

/// A URL to one of its parts.
const URL_PART: &[Signature] = &[fixed(&[("url", "VARCHAR")], "VARCHAR")];

/// `LPAD` and `RPAD`.
const PAD: &[Signature] = &[
    fixed(
        &[
            ("input", "VARCHAR"),
            ("length", "INT"),
            ("padding", "VARCHAR"),
        ],
        "VARCHAR",
    ),
    fixed(
        &[("input", "BYTES"), ("length", "INT"), ("padding", "BYTES")],
        "BYTES",
    ),
];

/// `MASK_LEFT`, `MASK_RIGHT`, `MASK_KEEP_LEFT` and `MASK_KEEP_RIGHT`.
const MASK_PART: &[Signature] = &[
    fixed(&[("str", "VARCHAR"), ("count", "INT")], "VARCHAR"),
    fixed(
        &[
            ("str", "VARCHAR"),
            ("count", "INT"),
            ("upper", "VARCHAR"),
            ("lower", "VARCHAR"),
            ("digit", "VARCHAR"),
            ("other", "VARCHAR"),
        ],
        "VARCHAR",
    ),
];

/// `DATEADD` and `DATESUB`.
const DATE_ARITHMETIC: &[Signature] = &[fixed(
    &[
        ("unit", "INTERVALUNIT"),
        ("interval", "INT"),
        ("date", "DATE"),
    ],
    "DATE",
)];

/// `TIMEADD` and `TIMESUB`.
const TIME_ARITHMETIC: &[Signature] = &[fixed(
    &[
        ("unit", "INTERVALUNIT"),
        ("interval", "INT"),
        ("time", "TIME"),
    ],
    "TIME",
)];

/// `TIMESTAMPADD` and `TIMESTAMPSUB`.
const TIMESTAMP_ARITHMETIC: &[Signature] = &[fixed(
    &[
        ("unit", "INTERVALUNIT"),
        ("interval", "INT"),
        ("timestamp", "TIMESTAMP"),
    ],
    "TIMESTAMP",
)];

/// Every function: (name, overview, variations), sorted by name.
const FUNCTIONS: &[(&str, &str, &[Signature])] = &[
    ("ABS", "The absolute value of a number.", NUMBER_TO_SAME),
    (
        "ACOS",
        "The arc cosine of a number, in radians.",
        NUMBER_TO_DOUBLE,
    ),
    ("ARRAY_CONCAT", "Two arrays joined end to end.", TWO_ARRAYS),
    (
        "ARRAY_CONTAINS",
        "Whether an array holds a given value.",
        &[fixed(&[("array", "ARRAY<T>"), ("value", "T")], "BOOLEAN")],
    ),
    (
        "ARRAY_DISTINCT",
        "An array's elements without repeats, in the order they first appear.",
        &[fixed(&[("array", "ARRAY<T>")], "ARRAY<T>")],
    ),
    (
        "ARRAY_EXCEPT",
        "The distinct elements of the first array that the second lacks.",
        TWO_ARRAYS,
    ),
    (
        "ARRAY_INTERSECT",
        "The distinct elements two arrays have in common.",
        TWO_ARRAYS,
    ),
    (
        "ARRAY_JOIN",
        "An array's elements as one string, with a delimiter (a comma unless given) between them.",
        &[
            fixed(&[("array", "ARRAY<T>")], "VARCHAR"),
            fixed(
                &[("array", "ARRAY<T>"), ("delimiter", "VARCHAR")],
                "VARCHAR",
            ),
        ],
    ),
    (
        "ARRAY_LENGTH",
        "How many elements an array has.",
        &[fixed(&[("array", "ARRAY<T>")], "INT")],
    ),
    (
        "ARRAY_MAX",
        "The largest non-null element of an array of primitives.",
        ARRAY_EXTREMUM,
    ),
    (
        "ARRAY_MIN",
        "The smallest non-null element of an array of primitives.",
        ARRAY_EXTREMUM,
    ),
    (
        "ARRAY_REMOVE",
        "An array without the elements equal to a given value.",
        &[fixed(&[("array", "ARRAY<T>"), ("value", "T")], "ARRAY<T>")],
    ),
    (
        "ARRAY_SORT",
        "An array of primitives in ascending (default) or descending order, nulls last.",
        &[
            fixed(&[("array", "ARRAY<T>")], "ARRAY<T>"),
            fixed(
                &[("array", "ARRAY<T>"), ("direction", "VARCHAR")],
                "ARRAY<T>",
            ),
        ],
    ),
    (
        "ARRAY_UNION",
        "The distinct elements found in either of two arrays.",
        TWO_ARRAYS,
    ),
    (
        "ASIN",
        "The arc sine of a number, in radians.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "AS_MAP",
        "A map that pairs an array of keys with an array of values.",
        &[fixed(
            &[("keys", "ARRAY<VARCHAR>"), ("values", "ARRAY<T>")],
            "MAP<VARCHAR, T>",
        )],
    ),
    (
        "AS_VALUE",
        "A copy of a key column's value, placed in the row's value.",
        &[fixed(&[("key", "T")], "T")],
    ),
    (
        "ATAN",
        "The arc tangent of a number, in radians.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "ATAN2",
        "The angle in radians of the point (x, y), as in a polar coordinate.",
        &[
            fixed(&[("y", "INT"), ("x", "INT")], "DOUBLE"),
            fixed(&[("y", "BIGINT"), ("x", "BIGINT")], "DOUBLE"),
            fixed(&[("y", "DOUBLE"), ("x", "DOUBLE")], "DOUBLE"),
        ],
    ),
    (
        "AVG",
        "The mean of a numeric column over each group.",
        &[
            fixed(&[("value", "INT")], "DOUBLE"),
            fixed(&[("value", "BIGINT")], "DOUBLE"),
            fixed(&[("value", "DOUBLE")], "DOUBLE"),
        ],
    ),
    (
        "BIGINT_FROM_BYTES",
        "Eight bytes read as a BIGINT, big-endian unless another byte order is given.",
        &[
            fixed(&[("bytes", "BYTES")], "BIGINT"),
            fixed(&[("bytes", "BYTES"), ("byte_order", "VARCHAR")], "BIGINT"),
        ],
    ),
    ("CBRT", "The cube root of a number.", NUMBER_TO_DOUBLE),
    (
        "CEIL",
        "A number rounded up to the nearest whole value.",
        NUMBER_TO_SAME,
    ),
    (
        "CHR",
        "The character of a Unicode code point, given as a decimal code or as escape text.",
        &[
            fixed(&[("code", "INT")], "VARCHAR"),
            fixed(&[("code", "VARCHAR")], "VARCHAR"),
        ],
    ),
    (
        "COALESCE",
        "The first of its arguments that is not null.",
        &[repeating(&[("first", "T"), ("others", "T")], "T")],
    ),
    (
        "COLLECT_LIST",
        "The values of a column over each group, gathered into an array.",
        COLLECT,
    ),
    (
        "COLLECT_SET",
        "The distinct values of a column over each group, gathered into an array.",
        COLLECT,
    ),
    (
        "CONCAT",
        "Strings, or byte values, joined into one; null inputs count as empty.",
        &[
            repeating(&[("str", "VARCHAR")], "VARCHAR"),
            repeating(&[("bytes", "BYTES")], "BYTES"),
        ],
    ),
    (
        "CONCAT_WS",
        "Strings, or byte values, joined with a separator between them; null inputs are skipped.",
        &[
            repeating(&[("separator", "VARCHAR"), ("str", "VARCHAR")], "VARCHAR"),
            repeating(&[("separator", "BYTES"), ("bytes", "BYTES")], "BYTES"),
        ],
    ),
    (
        "CONVERT_TZ",
        "A timestamp shifted from one time zone to another.",
        &[fixed(
            &[
                ("timestamp", "TIMESTAMP"),
                ("from_zone", "VARCHAR"),
                ("to_zone", "VARCHAR"),
            ],
            "TIMESTAMP",
        )],
    ),
    (
        "CORRELATION",
        "The Pearson correlation coefficient of two columns over each group.",
        &[
            fixed(&[("x", "INT"), ("y", "INT")], "DOUBLE"),
            fixed(&[("x", "BIGINT"), ("y", "BIGINT")], "DOUBLE"),
            fixed(&[("x", "DOUBLE"), ("y", "DOUBLE")], "DOUBLE"),
        ],
    ),
    (
        "COS",
        "The cosine of an angle in radians.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "COSH",
        "The hyperbolic cosine of a number.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "COT",
        "The cotangent of an angle in radians.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "COUNT",
        "How many rows each group has, or how many of them have a non-null value.",
        &[fixed(&[], "BIGINT"), fixed(&[("value", "ANY")], "BIGINT")],
    ),
    (
        "COUNT_DISTINCT",
        "An estimate of how many different values a column takes over each group.",
        &[fixed(&[("value", "ANY")], "BIGINT")],
    ),
    (
        "CUBE_EXPLODE",
        "One row per combination of the array's elements kept or replaced by null.",
        &[fixed(&[("columns", "ARRAY<T>")], "ARRAY<T>")],
    ),
    (
        "DATEADD",
        "A date moved forward by a number of time units.",
        DATE_ARITHMETIC,
    ),
    (
        "DATESUB",
        "A date moved back by a number of time units.",
        DATE_ARITHMETIC,
    ),
    (
        "DATETOSTRING",
        "A count of days since the epoch written in a date pattern (deprecated: FORMAT_DATE).",
        &[fixed(&[("days", "INT"), ("pattern", "VARCHAR")], "VARCHAR")],
    ),
    (
        "DEGREES",
        "An angle in radians converted to degrees.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "DOUBLE_FROM_BYTES",
        "Eight bytes read as a DOUBLE, big-endian unless another byte order is given.",
        &[
            fixed(&[("bytes", "BYTES")], "DOUBLE"),
            fixed(&[("bytes", "BYTES"), ("byte_order", "VARCHAR")], "DOUBLE"),
        ],
    ),
    (
        "EARLIEST_BY_OFFSET",
        "The value with the lowest offset in each group, or the n lowest as an array.",
        BY_OFFSET,
    ),
    (
        "ELT",
        "The n-th of the string arguments after n, counting from 1.",
        &[repeating(&[("n", "INT"), ("args", "VARCHAR")], "VARCHAR")],
    ),
    (
        "ENCODE",
        "A string converted from one encoding (hex, utf8, ascii or base64) to another.",
        &[fixed(
            &[
                ("str", "VARCHAR"),
                ("input_encoding", "VARCHAR"),
                ("output_encoding", "VARCHAR"),
            ],
            "VARCHAR",
        )],
    ),
    (
        "ENTRIES",
        "A map's entries as an array of key and value structs, sorted by key if asked.",
        &[fixed(
            &[("map", "MAP<VARCHAR, T>"), ("sorted", "BOOLEAN")],
            "ARRAY<STRUCT<K VARCHAR, V T>>",
        )],
    ),
    (
        "EXP",
        "e raised to the power of a number.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "EXPLODE",
        "One row per element of an array.",
        &[fixed(&[("array", "ARRAY<T>")], "T")],
    ),
    (
        "EXTRACTJSONFIELD",
        "The value at a JSONPath in a JSON string, as text.",
        &[fixed(
            &[("json", "VARCHAR"), ("path", "VARCHAR")],
            "VARCHAR",
        )],
    ),
    (
        "FIELD",
        "The position, from 1, of a string among the string arguments after it, or 0.",
        &[repeating(&[("str", "VARCHAR"), ("args", "VARCHAR")], "INT")],
    ),
    (
        "FILTER",
        "The elements of an array, or entries of a map, that a lambda accepts.",
        &[
            fixed(
                &[
                    ("array", "ARRAY<T>"),
                    ("predicate", "LAMBDA (T) => BOOLEAN"),
                ],
                "ARRAY<T>",
            ),
            fixed(
                &[
                    ("map", "MAP<K, V>"),
                    ("predicate", "LAMBDA (K, V) => BOOLEAN"),
                ],
                "MAP<K, V>",
            ),
        ],
    ),
    (
        "FLOOR",
        "A number rounded down to the nearest whole value.",
        NUMBER_TO_SAME,
    ),
    (
        "FORMAT_DATE",
        "A date written as text in a date pattern.",
        &[fixed(
            &[("date", "DATE"), ("pattern", "VARCHAR")],
            "VARCHAR",
        )],
    ),
    (
        "FORMAT_TIME",
        "A time of day written as text in a time pattern.",
        &[fixed(
            &[("time", "TIME"), ("pattern", "VARCHAR")],
            "VARCHAR",
        )],
    ),
    (
        "FORMAT_TIMESTAMP",
        "A timestamp written as text in a pattern, in UTC or in a given time zone.",
        &[
            fixed(
                &[("timestamp", "TIMESTAMP"), ("pattern", "VARCHAR")],
                "VARCHAR",
            ),
            fixed(
                &[
                    ("timestamp", "TIMESTAMP"),
                    ("pattern", "VARCHAR"),
                    ("zone", "VARCHAR"),
                ],
                "VARCHAR",
            ),
        ],
    ),
    (
        "FROM_BYTES",
        "Bytes turned into a string with an encoding (hex, utf8, ascii or base64).",
        &[fixed(
            &[("bytes", "BYTES"), ("encoding", "VARCHAR")],
            "VARCHAR",
        )],
    ),
    (
        "FROM_DAYS",
        "A count of days since 1970-01-01 as a DATE.",
        &[fixed(&[("days", "INT")], "DATE")],
    ),
    (
        "FROM_UNIXTIME",
        "A count of milliseconds since the epoch as a TIMESTAMP.",
        &[fixed(&[("millis", "BIGINT")], "TIMESTAMP")],
    ),
    (
        "GENERATE_SERIES",
        "The numbers from start to end, both included, stepping by 1 or by a given step.",
        &[
            fixed(&[("start", "INT"), ("end", "INT")], "ARRAY<INT>"),
            fixed(
                &[("start", "INT"), ("end", "INT"), ("step", "INT")],
                "ARRAY<INT>",
            ),
            fixed(&[("start", "BIGINT"), ("end", "BIGINT")], "ARRAY<BIGINT>"),
            fixed(
                &[("start", "BIGINT"), ("end", "BIGINT"), ("step", "INT")],
                "ARRAY<BIGINT>",
            ),
        ],
    ),
    (
        "GEO_DISTANCE",
        "The great-circle distance between two latitude and longitude points, in KM or MILES.",
        &[
            fixed(
                &[
                    ("lat1", "DOUBLE"),
                    ("lon1", "DOUBLE"),
                    ("lat2", "DOUBLE"),
                    ("lon2", "DOUBLE"),
                ],
                "DOUBLE",
            ),
            fixed(
                &[
                    ("lat1", "DOUBLE"),
                    ("lon1", "DOUBLE"),
                    ("lat2", "DOUBLE"),
                    ("lon2", "DOUBLE"),
                    ("unit", "VARCHAR"),
                ],
                "DOUBLE",
            ),
        ],
    ),
    (
        "GREATEST",
        "The largest non-null value among its arguments.",
        EXTREMUM_OF_VALUES,
    ),
    (
        "HISTOGRAM",
        "How often each string value occurs in each group, as a map of counts.",
        &[fixed(&[("value", "VARCHAR")], "MAP<VARCHAR, BIGINT>")],
    ),
    (
        "IFNULL",
        "The first argument, or the second when the first is null.",
        &[fixed(&[("value", "T"), ("alternative", "T")], "T")],
    ),
    (
        "INITCAP",
        "A string with each whitespace-separated word capitalized and the rest lower-cased.",
        STRING_TO_STRING,
    ),
    (
        "INSTR",
        "Where a substring occurs in a string (from 1; 0 if absent), optionally from a position.",
        &[
            fixed(&[("str", "VARCHAR"), ("substring", "VARCHAR")], "INT"),
            fixed(
                &[
                    ("str", "VARCHAR"),
                    ("substring", "VARCHAR"),
                    ("position", "INT"),
                ],
                "INT",
            ),
            fixed(
                &[
                    ("str", "VARCHAR"),
                    ("substring", "VARCHAR"),
                    ("position", "INT"),
                    ("occurrence", "INT"),
                ],
                "INT",
            ),
        ],
    ),
    (
        "INT_FROM_BYTES",
        "Four bytes read as an INT, big-endian unless another byte order is given.",
        &[
            fixed(&[("bytes", "BYTES")], "INT"),
            fixed(&[("bytes", "BYTES"), ("byte_order", "VARCHAR")], "INT"),
        ],
    ),
    (
        "IS_JSON_STRING",
        "Whether a string holds valid JSON.",
        &[fixed(&[("json", "VARCHAR")], "BOOLEAN")],
    ),
    (
        "JSON_ARRAY_CONTAINS",
        "Whether the JSON array in a string holds a given value.",
        &[fixed(&[("json", "VARCHAR"), ("value", "ANY")], "BOOLEAN")],
    ),
    (
        "JSON_ARRAY_LENGTH",
        "How many elements the JSON array in a string has.",
        &[fixed(&[("json", "VARCHAR")], "INT")],
    ),
    (
        "JSON_CONCAT",
        "JSON strings merged: objects into one object, anything else into one array.",
        &[repeating(&[("json", "VARCHAR")], "VARCHAR")],
    ),
    (
        "JSON_ITEMS",
        "The elements of the JSON array in a string, each as JSON text.",
        &[fixed(&[("json", "VARCHAR")], "ARRAY<VARCHAR>")],
    ),
    (
        "JSON_KEYS",
        "The top-level keys of the JSON object in a string.",
        &[fixed(&[("json", "VARCHAR")], "ARRAY<VARCHAR>")],
    ),
    (
        "JSON_RECORDS",
        "The top-level keys of the JSON object in a string, mapped to their values as JSON text.",
        &[fixed(&[("json", "VARCHAR")], "MAP<VARCHAR, VARCHAR>")],
    ),
    (
        "LATEST_BY_OFFSET",
        "The value with the highest offset in each group, or the n highest as an array.",
        BY_OFFSET,
    ),
    ("LCASE", "A string in lower case.", STRING_TO_STRING),
    (
        "LEAST",
        "The smallest non-null value among its arguments.",
        EXTREMUM_OF_VALUES,
    ),
    (
        "LEN",
        "The number of characters in a string, or of bytes in a byte value.",
        &[
            fixed(&[("str", "VARCHAR")], "INT"),
            fixed(&[("bytes", "BYTES")], "INT"),
        ],
    ),
    ("LN", "The natural logarithm of a number.", NUMBER_TO_DOUBLE),
    (
        "LOG",
        "The logarithm of a number: the natural one, or in the given base.",
        &[
            fixed(&[("value", "INT")], "DOUBLE"),
            fixed(&[("value", "BIGINT")], "DOUBLE"),
            fixed(&[("value", "DOUBLE")], "DOUBLE"),
            fixed(&[("base", "INT"), ("value", "INT")], "DOUBLE"),
            fixed(&[("base", "BIGINT"), ("value", "BIGINT")], "DOUBLE"),
            fixed(&[("base", "DOUBLE"), ("value", "DOUBLE")], "DOUBLE"),
        ],
    ),
    (
        "LPAD",
        "A string or byte value padded on the left, or cut, to a given length.",
        PAD,
    ),
    (
        "MAP_KEYS",
        "The keys of a map, as an array.",
        &[fixed(&[("map", "MAP<VARCHAR, T>")], "ARRAY<VARCHAR>")],
    ),
    (
        "MAP_UNION",
        "Two maps merged into one, the second's value winning for a key in both.",
        &[fixed(
            &[("map1", "MAP<VARCHAR, T>"), ("map2", "MAP<VARCHAR, T>")],
            "MAP<VARCHAR, T>",
        )],
    ),
    (
        "MAP_VALUES",
        "The values of a map, as an array.",
        &[fixed(&[("map", "MAP<VARCHAR, T>")], "ARRAY<T>")],
    ),
    (
        "MASK",
        "A string with its letters, digits and other characters replaced by mask characters.",
        &[
            fixed(&[("str", "VARCHAR")], "VARCHAR"),
            fixed(
                &[
                    ("str", "VARCHAR"),
                    ("upper", "VARCHAR"),
                    ("lower", "VARCHAR"),
                    ("digit", "VARCHAR"),
                    ("other", "VARCHAR"),
                ],
                "VARCHAR",
            ),
        ],
    ),
    (
        "MASK_KEEP_LEFT",
        "A string masked like MASK except for its first count characters.",
        MASK_PART,
    ),
    (
        "MASK_KEEP_RIGHT",
        "A string masked like MASK except for its last count characters.",
        MASK_PART,
    ),
    (
        "MASK_LEFT",
        "A string whose first count characters are masked like MASK.",
        MASK_PART,
    ),
    (
        "MASK_RIGHT",
        "A string whose last count characters are masked like MASK.",
        MASK_PART,
    ),
    (
        "MAX",
        "The largest non-null value of a column in each group.",
        EXTREMUM_OF_COLUMN,
    ),
    (
        "MD5",
        "The MD5 digest of a string, as hex digits.",
        STRING_TO_STRING,
    ),
    (
        "MIN",
        "The smallest non-null value of a column in each group.",
        EXTREMUM_OF_COLUMN,
    ),
    (
        "NULLIF",
        "Null when its two arguments are equal, the first otherwise.",
        &[fixed(&[("value", "T"), ("other", "T")], "T")],
    ),
    (
        "PARSE_DATE",
        "Text in a date pattern read as a DATE.",
        &[fixed(&[("str", "VARCHAR"), ("pattern", "VARCHAR")], "DATE")],
    ),
    (
        "PARSE_TIME",
        "Text in a time pattern read as a TIME.",
        &[fixed(&[("str", "VARCHAR"), ("pattern", "VARCHAR")], "TIME")],
    ),
    (
        "PARSE_TIMESTAMP",
        "Text in a pattern read as a TIMESTAMP, in UTC or in a given time zone.",
        &[
            fixed(&[("str", "VARCHAR"), ("pattern", "VARCHAR")], "TIMESTAMP"),
            fixed(
                &[
                    ("str", "VARCHAR"),
                    ("pattern", "VARCHAR"),
                    ("zone", "VARCHAR"),
                ],
                "TIMESTAMP",
            ),
        ],
    ),
    (
        "PI",
        "The constant pi, as a DOUBLE.",
        &[fixed(&[], "DOUBLE")],
    ),
    (
        "POWER",
        "A base raised to an exponent.",
        &[
            fixed(&[("base", "INT"), ("exponent", "INT")], "DOUBLE"),
            fixed(&[("base", "BIGINT"), ("exponent", "BIGINT")], "DOUBLE"),
            fixed(&[("base", "DOUBLE"), ("exponent", "DOUBLE")], "DOUBLE"),
        ],
    ),
    (
        "RADIANS",
        "An angle in degrees converted to radians.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "RANDOM",
        "A random DOUBLE from 0.0 up to 1.0.",
        &[fixed(&[], "DOUBLE")],
    ),
    (
        "REDUCE",
        "An array's elements, or a map's entries, folded by a lambda from an initial state.",
        &[
            fixed(
                &[
                    ("array", "ARRAY<T>"),
                    ("initial", "U"),
                    ("reducer", "LAMBDA (U, T) => U"),
                ],
                "U",
            ),
            fixed(
                &[
                    ("map", "MAP<K, V>"),
                    ("initial", "U"),
                    ("reducer", "LAMBDA (U, K, V) => U"),
                ],
                "U",
            ),
        ],
    ),
    (
        "REGEXP_EXTRACT",
        "The first match of a regular expression in a string, or one capturing group of it.",
        &[
            fixed(&[("pattern", "VARCHAR"), ("str", "VARCHAR")], "VARCHAR"),
            fixed(
                &[("pattern", "VARCHAR"), ("str", "VARCHAR"), ("group", "INT")],
                "VARCHAR",
            ),
        ],
    ),
    (
        "REGEXP_EXTRACT_ALL",
        "Every match of a regular expression in a string, or one capturing group of each.",
        &[
            fixed(
                &[("pattern", "VARCHAR"), ("str", "VARCHAR")],
                "ARRAY<VARCHAR>",
            ),
            fixed(
                &[("pattern", "VARCHAR"), ("str", "VARCHAR"), ("group", "INT")],
                "ARRAY<VARCHAR>",
            ),
        ],
    ),
    (
        "REGEXP_REPLACE",
        "A string with every match of a regular expression replaced.",
        &[fixed(
            &[
                ("str", "VARCHAR"),
                ("pattern", "VARCHAR"),
                ("replacement", "VARCHAR"),
            ],
            "VARCHAR",
        )],
    ),
    (
        "REGEXP_SPLIT_TO_ARRAY",
        "A string cut into an array of parts at the matches of a regular expression.",
        &[fixed(
            &[("str", "VARCHAR"), ("pattern", "VARCHAR")],
            "ARRAY<VARCHAR>",
        )],
    ),
    (
        "REPLACE",
        "A string with every occurrence of a substring replaced.",
        &[fixed(
            &[
                ("str", "VARCHAR"),
                ("substring", "VARCHAR"),
                ("replacement", "VARCHAR"),
            ],
            "VARCHAR",
        )],
    ),
    (
        "ROUND",
        "A number rounded, halves upwards, to a number of decimal places (0 unless given).",
        TO_PLACES,
    ),
    (
        "RPAD",
        "A string or byte value padded on the right, or cut, to a given length.",
        PAD,
    ),
    (
        "SIGN",
        "-1, 0 or 1 according to the sign of a number.",
        &[
            fixed(&[("x", "INT")], "INT"),
            fixed(&[("x", "BIGINT")], "INT"),
            fixed(&[("x", "DOUBLE")], "INT"),
        ],
    ),
    ("SIN", "The sine of an angle in radians.", NUMBER_TO_DOUBLE),
    ("SINH", "The hyperbolic sine of a number.", NUMBER_TO_DOUBLE),
    (
        "SLICE",
        "The elements of an array from one position to another, counting from 1, both included.",
        &[fixed(
            &[("array", "ARRAY<T>"), ("from", "INT"), ("to", "INT")],
            "ARRAY<T>",
        )],
    ),
    (
        "SPLIT",
        "A string or byte value cut into an array of parts at a delimiter.",
        &[
            fixed(
                &[("str", "VARCHAR"), ("delimiter", "VARCHAR")],
                "ARRAY<VARCHAR>",
            ),
            fixed(
                &[("bytes", "BYTES"), ("delimiter", "BYTES")],
                "ARRAY<BYTES>",
            ),
        ],
    ),
    (
        "SPLIT_TO_MAP",
        "A string of delimited key and value pairs read into a map.",
        &[fixed(
            &[
                ("str", "VARCHAR"),
                ("entry_delimiter", "VARCHAR"),
                ("kv_delimiter", "VARCHAR"),
            ],
            "MAP<VARCHAR, VARCHAR>",
        )],
    ),
    ("SQRT", "The square root of a number.", NUMBER_TO_DOUBLE),
    (
        "STDDEV_SAMP",
        "The sample standard deviation of a numeric column over each group.",
        DEVIATION,
    ),
    (
        "STDDEV_SAMPLE",
        "The sample standard deviation of a numeric column over each group.",
        DEVIATION,
    ),
    (
        "STRINGTODATE",
        "Text in a date pattern read as a count of days since the epoch (deprecated: PARSE_DATE).",
        &[fixed(&[("str", "VARCHAR"), ("pattern", "VARCHAR")], "INT")],
    ),
    (
        "STRINGTOTIMESTAMP",
        "Text in a pattern read as milliseconds since the epoch (deprecated: PARSE_TIMESTAMP).",
        &[
            fixed(&[("str", "VARCHAR"), ("pattern", "VARCHAR")], "BIGINT"),
            fixed(
                &[
                    ("str", "VARCHAR"),
                    ("pattern", "VARCHAR"),
                    ("zone", "VARCHAR"),
                ],
                "BIGINT",
            ),
        ],
    ),
    (
        "SUBSTRING",
        "The part of a string or byte value from a position (from 1), for a length or to the end.",
        &[
            fixed(&[("str", "VARCHAR"), ("pos", "INT")], "VARCHAR"),
            fixed(
                &[("str", "VARCHAR"), ("pos", "INT"), ("len", "INT")],
                "VARCHAR",
            ),
            fixed(&[("bytes", "BYTES"), ("pos", "INT")], "BYTES"),
            fixed(
                &[("bytes", "BYTES"), ("pos", "INT"), ("len", "INT")],
                "BYTES",
            ),
        ],
    ),
    (
        "SUM",
        "The total of a numeric column over each group.",
        &[
            fixed(&[("value", "INT")], "INT"),
            fixed(&[("value", "BIGINT")], "BIGINT"),
            fixed(&[("value", "DOUBLE")], "DOUBLE"),
            fixed(&[("value", "DECIMAL")], "DECIMAL"),
        ],
    ),
    (
        "TAN",
        "The tangent of an angle in radians.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "TANH",
        "The hyperbolic tangent of a number.",
        NUMBER_TO_DOUBLE,
    ),
    (
        "TIMEADD",
        "A time of day moved forward by a number of time units, wrapping at midnight.",
        TIME_ARITHMETIC,
    ),
    (
        "TIMESTAMPADD",
        "A timestamp moved forward by a number of time units.",
        TIMESTAMP_ARITHMETIC,
    ),
    (
        "TIMESTAMPSUB",
        "A timestamp moved back by a number of time units.",
        TIMESTAMP_ARITHMETIC,
    ),
    (
        "TIMESTAMPTOSTRING",
        "Milliseconds since the epoch written in a pattern (deprecated: FORMAT_TIMESTAMP).",
        &[
            fixed(&[("millis", "BIGINT"), ("pattern", "VARCHAR")], "VARCHAR"),
            fixed(
                &[
                    ("millis", "BIGINT"),
                    ("pattern", "VARCHAR"),
                    ("zone", "VARCHAR"),
                ],
                "VARCHAR",
            ),
        ],
    ),
    (
        "TIMESUB",
        "A time of day moved back by a number of time units, wrapping at midnight.",
        TIME_ARITHMETIC,
    ),
    (
        "TOPK",
        "The k largest values of a column in each group, alone or with other columns of the rows.",
        &[
            fixed(&[("value", "T"), ("k", "INT")], "ARRAY<T>"),
            fixed(
                &[("value", "T"), ("others", "ANY..."), ("k", "INT")],
                "ARRAY<STRUCT<sort_col T, col0 ANY, ...>>",
            ),
        ],
    ),
    (
        "TOPKDISTINCT",
        "The k largest distinct values of a column in each group.",
        &[fixed(&[("value", "T"), ("k", "INT")], "ARRAY<T>")],
    ),
    (
        "TO_BYTES",
        "A string turned into bytes with an encoding (hex, utf8, ascii or base64).",
        &[fixed(
            &[("str", "VARCHAR"), ("encoding", "VARCHAR")],
            "BYTES",
        )],
    ),
    (
        "TO_JSON_STRING",
        "A value of any type written as JSON text.",
        &[fixed(&[("value", "ANY")], "VARCHAR")],
    ),
    (
        "TRANSFORM",
        "An array's elements, or a map's keys and values, mapped through lambdas.",
        &[
            fixed(
                &[("array", "ARRAY<T>"), ("mapper", "LAMBDA (T) => U")],
                "ARRAY<U>",
            ),
            fixed(
                &[
                    ("map", "MAP<K, V>"),
                    ("key_mapper", "LAMBDA (K, V) => T"),
                    ("value_mapper", "LAMBDA (K, V) => U"),
                ],
                "MAP<T, U>",
            ),
        ],
    ),
    (
        "TRIM",
        "A string without its leading and trailing whitespace.",
        STRING_TO_STRING,
    ),
    (
        "TRUNC",
        "A number cut towards zero to a number of decimal places (0 unless given).",
        TO_PLACES,
    ),
    ("UCASE", "A string in upper case.", STRING_TO_STRING),
    (
        "UNIX_DATE",
        "A date, or today without one, as days since 1970-01-01.",
        &[fixed(&[], "INT"), fixed(&[("date", "DATE")], "INT")],
    ),
    (
        "UNIX_TIMESTAMP",
        "A timestamp, or now without one, as milliseconds since the epoch.",
        &[
            fixed(&[], "BIGINT"),
            fixed(&[("timestamp", "TIMESTAMP")], "BIGINT"),
        ],
    ),
    (
        "URL_DECODE_PARAM",
        "A URL query parameter value with its percent-escapes decoded.",
        &[fixed(&[("str", "VARCHAR")], "VARCHAR")],
    ),
    (
        "URL_ENCODE_PARAM",
        "A value escaped so that it can go in a URL query parameter.",
        &[fixed(&[("str", "VARCHAR")], "VARCHAR")],
    ),
    (
        "URL_EXTRACT_FRAGMENT",
        "The decoded fragment of a URL.",
        URL_PART,
    ),
    ("URL_EXTRACT_HOST", "The host name of a URL.", URL_PART),
    (
        "URL_EXTRACT_PARAMETER",
        "The decoded value of a named parameter in a URL's query.",
        &[fixed(&[("url", "VARCHAR"), ("name", "VARCHAR")], "VARCHAR")],
    ),
    ("URL_EXTRACT_PATH", "The decoded path of a URL.", URL_PART),
    (
        "URL_EXTRACT_PORT",
        "The port a URL names explicitly.",
        &[fixed(&[("url", "VARCHAR")], "INT")],
    ),
    (
        "URL_EXTRACT_PROTOCOL",
        "The scheme of a URL, such as http.",
        URL_PART,
    ),
    (
        "URL_EXTRACT_QUERY",
        "The decoded query string of a URL.",
        URL_PART,
    ),
    (
        "UUID",
        "A new random UUID, or the UUID held in 16 bytes, as text.",
        &[
            fixed(&[], "VARCHAR"),
            fixed(&[("bytes", "BYTES")], "VARCHAR"),
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::library::{AGGREGATE_FUNCTIONS, SCALAR_FUNCTIONS, SYNTAX, TABLE_FUNCTIONS};

    /// The names of the library's functions, syntax excepted.
    fn library_names() -> Vec<&'static str> {
        SCALAR_FUNCTIONS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !SYNTAX.contains(name))
            .chain(AGGREGATE_FUNCTIONS.iter().copied())
            .chain(TABLE_FUNCTIONS.iter().copied())
            .collect()
    }

    #[test]
    fn names_are_upper_case_sorted_and_unique() {
        for (name, _, _) in FUNCTIONS {
            assert_eq!(*name, name.to_ascii_uppercase(), "{name} is not upper-case");
        }
        for pair in FUNCTIONS.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{} then {}: out of order, or twice",
                pair[0].0,
                pair[1].0
            );
        }
    }

    #[test]
    fn every_entry_has_an_overview_and_variations() {
        for (name, overview, variations) in FUNCTIONS {
            assert!(
                !overview.is_empty() && overview.ends_with('.'),
                "{name}: overview {overview:?}"
            );
            assert!(!variations.is_empty(), "{name} has no variation");
            for v in *variations {
                assert!(!v.returns.is_empty(), "{name}: a variation has no result");
                assert!(
                    !v.variadic || !v.arguments.is_empty(),
                    "{name}: a variadic variation needs an argument to repeat"
                );
            }
        }
    }

    #[test]
    fn substring_has_variations_with_and_without_length() {
        let (_, variations) = signatures("SUBSTRING").expect("SUBSTRING has an entry");
        let arities: Vec<usize> = variations.iter().map(|v| v.arguments.len()).collect();
        // For VARCHAR and for BYTES, as ksqlDB's reference gives them.
        assert_eq!(arities, [2, 3, 2, 3]);
        assert_eq!(signatures("substring").map(|(_, v)| v.len()), Some(4));
    }

    #[test]
    fn unknown_names_and_syntax_have_no_entry() {
        assert!(signatures("NO_SUCH_FUNCTION").is_none());
        assert!(signatures("").is_none());
        for name in SYNTAX {
            assert!(signatures(name).is_none(), "{name} is syntax");
        }
    }

    #[test]
    fn every_library_function_has_an_entry_and_no_other() {
        let names = library_names();
        let missing: Vec<&str> = names
            .iter()
            .copied()
            .filter(|name| signatures(name).is_none())
            .collect();
        assert!(missing.is_empty(), "no signatures for {missing:?}");
        let extra: Vec<&str> = FUNCTIONS
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| !names.contains(name))
            .collect();
        assert!(extra.is_empty(), "not in the library: {extra:?}");
    }
}

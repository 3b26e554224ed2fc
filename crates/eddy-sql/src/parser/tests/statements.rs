//! Statements other than queries, and types.

use super::{parse_err, parse_one, syntax_err};
use crate::ast::{
    ExplainTarget, PropertyValue, ShowWhat, Statement, TableElement, TerminateTarget,
};
use crate::catalog::SourceKind;
use crate::error::SqlError;
use crate::parser::{parse, parse_data_type, parse_expr};
use crate::types::{SqlType, StructField};

fn column(name: &str, ty: SqlType, key: bool, primary_key: bool) -> TableElement {
    TableElement {
        name: name.to_string(),
        ty,
        key,
        primary_key,
        header: None,
    }
}

#[test]
fn splits_statements_on_semicolons_outside_strings_and_comments() {
    let sql = "SHOW STREAMS;\n\
               -- a comment; with a semicolon\n\
               ;;\n\
               /* block; comment */ SET 'a;b' = 'c;d';\n\
               \n\
               list   tables  ";
    let statements = parse(sql).expect("parses");
    assert_eq!(statements.len(), 3);
    assert_eq!(statements[0].text, "SHOW STREAMS");
    assert_eq!(statements[0].line, 1);
    assert_eq!(statements[1].text, "SET 'a;b' = 'c;d'");
    assert_eq!(statements[1].line, 4);
    assert!(matches!(
        &statements[1].statement,
        Statement::Set { name, value } if name == "a;b" && value == "c;d"
    ));
    assert_eq!(statements[2].text, "list   tables");
    assert_eq!(statements[2].line, 6);
    assert!(matches!(
        statements[2].statement,
        Statement::Show {
            what: ShowWhat::Tables,
            extended: false
        }
    ));
}

#[test]
fn empty_text_has_no_statements() {
    for sql in ["", "  ", ";", " ; ;\n", "-- only a comment", "/* x */"] {
        assert!(parse(sql).expect("parses").is_empty(), "{sql:?}");
    }
}

#[test]
fn statement_text_spans_lines_and_keeps_multibyte_characters() {
    let statements = parse("SET 'ä' = 'ö';\n  SELECT 'ü' AS `é`\n FROM s ;").expect("parses");
    assert_eq!(statements[0].text, "SET 'ä' = 'ö'");
    assert_eq!(statements[1].text, "SELECT 'ü' AS `é`\n FROM s");
    assert_eq!(statements[1].line, 2);
}

#[test]
fn create_stream_with_columns_keys_and_properties() {
    let sql = "create stream Pageviews (viewtime bigint, `userId` varchar KEY, \"Page\" string)\n\
               with (kafka_topic='pageviews', value_format='JSON', partitions=3, \
               wrap_single_value=false, replicas=-1);";
    let Statement::CreateSource(c) = parse_one(sql) else {
        panic!("not a CREATE")
    };
    assert_eq!(c.kind, SourceKind::Stream);
    assert_eq!(c.name, "PAGEVIEWS");
    assert!(!c.or_replace && !c.if_not_exists && !c.is_source);
    assert_eq!(
        c.elements,
        vec![
            column("VIEWTIME", SqlType::Bigint, false, false),
            column("userId", SqlType::String, true, false),
            column("Page", SqlType::String, false, false),
        ]
    );
    let props = &c.with;
    assert_eq!(
        props.get("KAFKA_TOPIC"),
        Some(&PropertyValue::String("pageviews".into()))
    );
    assert_eq!(
        props.get("VALUE_FORMAT"),
        Some(&PropertyValue::String("JSON".into()))
    );
    assert_eq!(
        props.get("PARTITIONS"),
        Some(&PropertyValue::Number("3".into()))
    );
    assert_eq!(
        props.get("REPLICAS"),
        Some(&PropertyValue::Number("-1".into()))
    );
    assert_eq!(
        props.get("WRAP_SINGLE_VALUE"),
        Some(&PropertyValue::Boolean(false))
    );
}

#[test]
fn create_table_variants() {
    let Statement::CreateSource(c) = parse_one(
        "CREATE OR REPLACE SOURCE TABLE users (id INT PRIMARY KEY, name STRING) \
         WITH (KAFKA_TOPIC='users', FORMAT='JSON')",
    ) else {
        panic!("not a CREATE")
    };
    assert_eq!(c.kind, SourceKind::Table);
    assert!(c.or_replace && c.is_source && !c.if_not_exists);
    assert_eq!(
        c.elements,
        vec![
            column("ID", SqlType::Int, true, true),
            column("NAME", SqlType::String, false, false),
        ]
    );

    let Statement::CreateSource(c) = parse_one(
        "CREATE TABLE IF NOT EXISTS t WITH (kafka_topic='t', value_format='AVRO', key_format='KAFKA')",
    ) else {
        panic!("not a CREATE")
    };
    assert!(c.if_not_exists);
    assert!(c.elements.is_empty());
    assert_eq!(c.with.props.len(), 3);
}

#[test]
fn key_kinds_must_match_the_source_kind() {
    let message = parse_err("CREATE STREAM s (id INT PRIMARY KEY) WITH (kafka_topic='t');");
    assert!(message.to_string().starts_with(
        "Line: 1, Col: 18: Column `ID` is a 'PRIMARY KEY' column: please use 'KEY' for streams."
    ));

    let message = parse_err("CREATE TABLE t (id INT KEY) WITH (kafka_topic='t');");
    assert!(message.to_string().starts_with(
        "Line: 1, Col: 17: Column `ID` is a 'KEY' column: please use 'PRIMARY KEY' for tables."
    ));
}

#[test]
fn duplicate_column_names_are_rejected() {
    let (message, line, column) = syntax_err("CREATE STREAM s (a INT, b INT, A STRING);");
    assert_eq!(message, "Duplicate column names: `A`");
    assert_eq!((line, column), (1, 32));
    // Quoted names are case-sensitive, so these differ.
    assert!(parse("CREATE STREAM s (`a` INT, A INT);").is_ok());
}

#[test]
fn duplicate_with_properties_are_rejected() {
    let (message, ..) =
        syntax_err("CREATE STREAM s (a INT) WITH (kafka_topic='a', KAFKA_TOPIC='b');");
    assert!(message.contains("KAFKA_TOPIC"), "{message}");
}

#[test]
fn create_as_select() {
    let Statement::CreateAsSelect(c) = parse_one(
        "CREATE STREAM enriched WITH (kafka_topic='out', value_format='AVRO') AS \
         SELECT * FROM pageviews EMIT CHANGES;",
    ) else {
        panic!("not a CSAS")
    };
    assert_eq!(c.kind, SourceKind::Stream);
    assert_eq!(c.name, "ENRICHED");
    assert_eq!(
        c.with.get("KAFKA_TOPIC"),
        Some(&PropertyValue::String("out".into()))
    );
    assert_eq!(c.query.text, "SELECT * FROM pageviews EMIT CHANGES");
    assert_eq!(c.query.select.to_string(), "SELECT * FROM PAGEVIEWS");

    let Statement::CreateAsSelect(c) = parse_one(
        "CREATE OR REPLACE TABLE counts AS SELECT k, COUNT(*) FROM s GROUP BY k EMIT CHANGES",
    ) else {
        panic!("not a CTAS")
    };
    assert_eq!(c.kind, SourceKind::Table);
    assert!(c.or_replace);
    assert!(c.with.props.is_empty());
}

#[test]
fn create_as_select_rejects_a_column_list() {
    let (message, line, column) = syntax_err("CREATE STREAM s (a INT) AS SELECT * FROM t;");
    assert_eq!(message, "Syntax Error\nmismatched input 'AS' expecting ';'");
    assert_eq!((line, column), (1, 25));
}

#[test]
fn insert_values() {
    let Statement::InsertValues {
        target,
        columns,
        values,
    } = parse_one("INSERT INTO foo (ROWTIME, id, `Name`) VALUES (1, 'a''b', -2.5);")
    else {
        panic!("not an INSERT VALUES")
    };
    assert_eq!(target, "FOO");
    assert_eq!(
        columns,
        Some(vec!["ROWTIME".to_string(), "ID".into(), "Name".into()])
    );
    let rendered: Vec<String> = values.iter().map(ToString::to_string).collect();
    assert_eq!(rendered, vec!["1", "'a''b'", "-2.5"]);

    let Statement::InsertValues {
        columns, values, ..
    } = parse_one("insert into foo values (ARRAY[1, 2], STRUCT(a := 1), NULL)")
    else {
        panic!("not an INSERT VALUES")
    };
    assert_eq!(columns, None);
    assert_eq!(values.len(), 3);
}

#[test]
fn insert_values_counts_must_match() {
    assert!(matches!(
        parse_err("INSERT INTO foo (a, b) VALUES (1);"),
        SqlError::Prepare(m) if m == "Expected number columns and values to match: 2, 1"
    ));
}

#[test]
fn insert_select() {
    let Statement::InsertSelect { target, query } =
        parse_one("INSERT INTO all_views SELECT * FROM views_b EMIT CHANGES;")
    else {
        panic!("not an INSERT SELECT")
    };
    assert_eq!(target, "ALL_VIEWS");
    assert_eq!(query.select.to_string(), "SELECT * FROM VIEWS_B");
}

#[test]
fn drop() {
    assert!(matches!(
        parse_one("DROP STREAM foo"),
        Statement::Drop { kind: SourceKind::Stream, name, if_exists: false, delete_topic: false } if name == "FOO"
    ));
    assert!(matches!(
        parse_one("drop table if exists `Bar` delete topic;"),
        Statement::Drop { kind: SourceKind::Table, name, if_exists: true, delete_topic: true } if name == "Bar"
    ));
}

#[test]
fn terminate() {
    assert!(matches!(
        parse_one("TERMINATE csas_foo_1;"),
        Statement::Terminate(TerminateTarget::Query(id)) if id == "CSAS_FOO_1"
    ));
    assert!(matches!(
        parse_one("terminate all"),
        Statement::Terminate(TerminateTarget::All)
    ));
}

#[test]
fn show_and_list() {
    let cases = [
        ("SHOW STREAMS", ShowWhat::Streams, false),
        ("LIST STREAMS EXTENDED", ShowWhat::Streams, true),
        ("show tables", ShowWhat::Tables, false),
        ("SHOW QUERIES EXTENDED", ShowWhat::Queries, true),
        ("LIST TOPICS", ShowWhat::Topics { all: false }, false),
        (
            "SHOW TOPICS EXTENDED",
            ShowWhat::Topics { all: false },
            true,
        ),
        ("SHOW ALL TOPICS", ShowWhat::Topics { all: true }, false),
        (
            "LIST ALL TOPICS EXTENDED",
            ShowWhat::Topics { all: true },
            true,
        ),
        ("SHOW PROPERTIES", ShowWhat::Properties, false),
        ("LIST FUNCTIONS", ShowWhat::Functions, false),
        ("DESCRIBE STREAMS", ShowWhat::Streams, true),
        ("DESCRIBE TABLES EXTENDED", ShowWhat::Tables, true),
    ];
    for (sql, what, extended) in cases {
        match parse_one(sql) {
            Statement::Show {
                what: w,
                extended: e,
            } => assert_eq!((w, e), (what, extended), "{sql}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert!(matches!(
        parse_err("SHOW CONNECTORS"),
        SqlError::Unsupported(s) if s == "SHOW CONNECTORS"
    ));
    let (message, ..) = syntax_err("SHOW STREAM");
    assert!(message.contains("mismatched input 'STREAM'"), "{message}");
}

#[test]
fn describe() {
    assert!(matches!(
        parse_one("DESCRIBE pageviews"),
        Statement::Describe { name, extended: false } if name == "PAGEVIEWS"
    ));
    assert!(matches!(
        parse_one("describe `pageViews` extended;"),
        Statement::Describe { name, extended: true } if name == "pageViews"
    ));
    assert!(matches!(
        parse_one("DESCRIBE FUNCTION substring"),
        Statement::DescribeFunction(name) if name == "SUBSTRING"
    ));
}

#[test]
fn explain() {
    assert!(matches!(
        parse_one("EXPLAIN CTAS_COUNTS_3;"),
        Statement::Explain(ExplainTarget::Query(id)) if id == "CTAS_COUNTS_3"
    ));
    let Statement::Explain(ExplainTarget::Statement(inner)) =
        parse_one("EXPLAIN SELECT * FROM s EMIT CHANGES;")
    else {
        panic!("not an EXPLAIN of a statement")
    };
    assert!(matches!(*inner, Statement::Query(_)));
    let Statement::Explain(ExplainTarget::Statement(inner)) =
        parse_one("EXPLAIN CREATE STREAM x AS SELECT * FROM s;")
    else {
        panic!("not an EXPLAIN of a statement")
    };
    assert!(matches!(*inner, Statement::CreateAsSelect(_)));
}

#[test]
fn print() {
    let print = |sql: &str| match parse_one(sql) {
        Statement::Print {
            topic,
            from_beginning,
            interval,
            limit,
        } => (topic, from_beginning, interval, limit),
        other => panic!("{sql}: {other:?}"),
    };
    assert_eq!(
        print("PRINT 'my-Topic';"),
        ("my-Topic".into(), false, None, None)
    );
    assert_eq!(
        print("print pageViews from beginning interval 2 limit 10"),
        ("pageViews".into(), true, Some(2), Some(10))
    );
    assert_eq!(
        print("PRINT my-topic.v1 FROM BEGINNING"),
        ("my-topic.v1".into(), true, None, None)
    );
    assert_eq!(
        print("PRINT `Quoted` LIMIT 1"),
        ("Quoted".into(), false, None, Some(1))
    );
    assert!(matches!(parse_err("PRINT;"), SqlError::Parse { .. }));
    assert!(matches!(
        parse_err("PRINT t LIMIT x"),
        SqlError::Parse { .. }
    ));
}

#[test]
fn set_and_unset() {
    assert!(matches!(
        parse_one("SET 'auto.offset.reset' = 'earliest';"),
        Statement::Set { name, value } if name == "auto.offset.reset" && value == "earliest"
    ));
    assert!(matches!(
        parse_one("unset 'auto.offset.reset'"),
        Statement::Unset { name } if name == "auto.offset.reset"
    ));
    let (message, line, column) = syntax_err("SET auto = 'x'");
    assert_eq!(
        message,
        "Syntax Error\nmismatched input 'auto' expecting a quoted property name"
    );
    assert_eq!((line, column), (1, 5));
}

#[test]
fn pause_resume_define_and_undefine() {
    assert!(matches!(
        parse_one("PAUSE csas_a_1;"),
        Statement::Pause(TerminateTarget::Query(id)) if id == "CSAS_A_1"
    ));
    assert!(matches!(
        parse_one("RESUME ALL;"),
        Statement::Resume(TerminateTarget::All)
    ));
    assert!(matches!(
        parse_one("DEFINE topic = '''t''';"),
        Statement::Define { name, value } if name == "TOPIC" && value == "'t'"
    ));
    assert!(matches!(
        parse_one("UNDEFINE topic;"),
        Statement::Undefine { name } if name == "TOPIC"
    ));
    assert!(matches!(
        parse_one("SHOW VARIABLES;"),
        Statement::Show {
            what: ShowWhat::Variables,
            ..
        }
    ));
    assert!(matches!(
        parse_one("ALTER TABLE t ADD COLUMN a INT, ADD b ARRAY<VARCHAR>;"),
        Statement::Alter { kind: SourceKind::Table, name, columns }
            if name == "T" && columns.len() == 2 && columns[1].0 == "B"
    ));
    assert!(
        parse_err("ALTER STREAM s DROP COLUMN a;")
            .to_string()
            .contains("ADD")
    );
    assert!(parse_err("PAUSE;").to_string().contains("query id or ALL"));
    // A type a script creates is known to its later statements, and gone after DROP TYPE.
    let parsed = parse(
        "CREATE TYPE address AS STRUCT<city VARCHAR>; \
         CREATE STREAM s (a ADDRESS, b ARRAY<address>) WITH (kafka_topic='t', value_format='JSON'); \
         SHOW TYPES;",
    )
    .expect("parses");
    assert!(matches!(&parsed[1].statement,
        Statement::CreateSource(c) if c.elements[0].ty.to_string() == "STRUCT<`CITY` STRING>"));
    assert!(matches!(
        parsed[2].statement,
        Statement::Show {
            what: ShowWhat::Types,
            ..
        }
    ));
    assert!(
        parse("CREATE TYPE a AS INT; DROP TYPE a; CREATE STREAM s (x A) WITH (kafka_topic='t', value_format='JSON');")
            .is_err()
    );
    let known = std::collections::BTreeMap::from([("ADDRESS".to_string(), SqlType::Int)]);
    assert!(
        crate::parse_with_types(
            "CREATE STREAM s (a address) WITH (kafka_topic='t', value_format='JSON');",
            &known
        )
        .is_ok()
    );
    assert!(parse_err("DEFINE x 'y';").to_string().contains("="));
}

#[test]
fn header_columns() {
    let Statement::CreateSource(create) = parse_one(
        "CREATE STREAM s (k STRING KEY, h ARRAY<STRUCT<key STRING, value BYTES>> HEADERS, \
         one BYTES HEADER('abc'), v INT) WITH (kafka_topic='t', value_format='json');",
    ) else {
        panic!("not a CREATE STREAM");
    };
    let headers: Vec<_> = create.elements.iter().map(|e| e.header.clone()).collect();
    assert_eq!(
        headers,
        vec![None, Some(None), Some(Some("abc".into())), None]
    );
    assert!(matches!(
        parse_err("CREATE STREAM s (h BYTES HEADER(abc)) WITH (kafka_topic='t');"),
        SqlError::Parse { .. }
    ));
}

#[test]
fn internal_functions_cannot_be_called_by_name() {
    for sql in [
        "SELECT KSQL_CAST(a, 'BIGINT') FROM s;",
        "SELECT cube_combinations(ARRAY[1]) FROM s;",
        "SELECT \"ksql_cast\"(a, 'BIGINT') FROM s;",
    ] {
        match parse_err(sql) {
            SqlError::Unknown(m) => assert!(m.starts_with("Can't find any functions"), "{m}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
}

#[test]
fn unsupported_statements() {
    for (sql, what) in [
        (
            "CREATE SOURCE CONNECTOR c WITH ('a'='b');",
            "CREATE SOURCE CONNECTOR",
        ),
        ("CREATE SINK CONNECTOR c WITH ('a'='b');", "CREATE SINK"),
        ("DROP CONNECTOR c;", "DROP CONNECTOR"),
        ("DESCRIBE CONNECTOR c;", "DESCRIBE CONNECTOR"),
    ] {
        match parse_err(sql) {
            SqlError::Unsupported(s) => assert_eq!(s, what, "{sql}"),
            other => panic!("{sql}: {other:?}"),
        }
    }
    assert_eq!(
        parse_err("CREATE CONNECTOR x WITH ('a'='b')").to_string(),
        "CREATE CONNECTOR is not supported yet"
    );
}

#[test]
fn types() {
    let ty = |t: &str| parse_data_type(t).unwrap_or_else(|e| panic!("{t}: {e}"));
    assert_eq!(ty("boolean"), SqlType::Boolean);
    assert_eq!(ty("INT"), SqlType::Int);
    assert_eq!(ty("integer"), SqlType::Int);
    assert_eq!(ty("BIGINT"), SqlType::Bigint);
    assert_eq!(ty("DOUBLE"), SqlType::Double);
    assert_eq!(
        ty("DECIMAL(10, 2)"),
        SqlType::Decimal {
            precision: 10,
            scale: 2
        }
    );
    assert_eq!(ty("VARCHAR"), SqlType::String);
    assert_eq!(ty("string"), SqlType::String);
    assert_eq!(ty("BYTES"), SqlType::Bytes);
    assert_eq!(ty("DATE"), SqlType::Date);
    assert_eq!(ty("TIME"), SqlType::Time);
    assert_eq!(ty("TIMESTAMP"), SqlType::Timestamp);
    assert_eq!(ty("ARRAY<INT>"), SqlType::Array(Box::new(SqlType::Int)));
    assert_eq!(
        ty("MAP<STRING, ARRAY<DOUBLE>>"),
        SqlType::Map(
            Box::new(SqlType::String),
            Box::new(SqlType::Array(Box::new(SqlType::Double)))
        )
    );
    assert_eq!(
        ty("STRUCT<street STRING, `Zip` INT, loc STRUCT<lat DOUBLE, lon DOUBLE>>"),
        SqlType::Struct(vec![
            StructField {
                name: "STREET".into(),
                ty: SqlType::String
            },
            StructField {
                name: "Zip".into(),
                ty: SqlType::Int
            },
            StructField {
                name: "LOC".into(),
                ty: SqlType::Struct(vec![
                    StructField {
                        name: "LAT".into(),
                        ty: SqlType::Double
                    },
                    StructField {
                        name: "LON".into(),
                        ty: SqlType::Double
                    },
                ])
            },
        ])
    );
    assert_eq!(
        ty("ARRAY<ARRAY<ARRAY<INT>>>"),
        SqlType::Array(Box::new(SqlType::Array(Box::new(SqlType::Array(
            Box::new(SqlType::Int)
        )))))
    );
    assert_eq!(ty("STRUCT<>"), SqlType::Struct(vec![]));
    assert_eq!(ty("VARCHAR(STRING)"), SqlType::String);
    assert_eq!(ty("STRING(10)"), SqlType::String);
}

#[test]
fn malformed_types() {
    for t in [
        "ARRAY<INT>>",
        "ARRAY<INT",
        "MAP<ARRAY<INT>>, INT>",
        "STRUCT<a ARRAY<INT>>, b INT>",
        "DECIMAL",
        "DECIMAL(0, 0)",
        "DECIMAL(3, 4)",
        "DECIMAL(40, 2)",
        "STRUCT<a INT, A INT>",
        "NULL",
        "ARRAY<NULL>",
        "INT(3)",
        "",
    ] {
        assert!(
            matches!(parse_data_type(t), Err(SqlError::Parse { .. })),
            "{t}"
        );
    }
}

#[test]
fn unknown_type_names_it_with_its_location() {
    let (message, line, column) =
        syntax_err("SHOW STREAMS;\nCREATE STREAM s (a INT,\n  b FOO) WITH (kafka_topic='t');");
    assert_eq!(message, "Unknown type: FOO");
    assert_eq!((line, column), (3, 5));
}

#[test]
fn type_parameters_error_like_ksqldb() {
    let (message, line, column) = syntax_err(
        "CREATE STREAM INPUT (K STRING (KEY)) WITH (kafka_topic='input',value_format='JSON');",
    );
    assert_eq!(message, "Syntax Error\nExpecting {'STRING', INTEGER_VALUE}");
    assert_eq!((line, column), (1, 32));
}

#[test]
fn null_is_not_a_type() {
    for sql in [
        "CREATE STREAM INPUT (ROWKEY INT KEY, COL0 NULL) WITH (kafka_topic='t', value_format='JSON');",
        "CREATE STREAM INPUT (ID INT KEY, COL0 MAP<STRING, NULL>) WITH (kafka_topic='t', value_format='JSON');",
        "CREATE STREAM INPUT (ID INT KEY, COL0 STRUCT<fo NULL>) WITH (kafka_topic='t', value_format='JSON');",
    ] {
        let (message, ..) = syntax_err(sql);
        assert!(message.starts_with("Syntax Error"), "{sql}: {message}");
    }
}

#[test]
fn standalone_expressions() {
    let expr = parse_expr("cast(a->b AS string) || 'x'").expect("parses");
    assert_eq!(expr.to_string(), "CAST(A['B'] AS VARCHAR) || 'x'");
    assert!(matches!(parse_expr("1 +"), Err(SqlError::Parse { .. })));
    assert!(matches!(parse_expr("1 2"), Err(SqlError::Parse { .. })));
}

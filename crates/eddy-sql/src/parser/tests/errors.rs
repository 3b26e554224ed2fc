//! Syntax errors: messages, locations in the whole text, and no panics on junk.

use super::{parse_err, syntax_err};
use crate::error::SqlError;
use crate::parser::{parse, parse_data_type, parse_expr};

#[test]
fn typo_on_line_two_of_a_script() {
    let sql = "CREATE STREAM s (a INT) WITH (kafka_topic='t', value_format='JSON');\n\
               SELECT a FORM s EMIT CHANGES;";
    let (message, line, column) = syntax_err(sql);
    assert_eq!(message, "Syntax Error\nmismatched input 's' expecting ';'");
    assert_eq!((line, column), (2, 15));
}

#[test]
fn sqlparser_errors_are_located_in_the_whole_text() {
    let sql = "SHOW STREAMS;\n\n  SELECT a, FROM s;";
    let (message, line, column) = syntax_err(sql);
    assert!(
        message.starts_with("Syntax Error\nmismatched input 'FROM'"),
        "{message}"
    );
    assert_eq!((line, column), (3, 13));
}

#[test]
fn error_at_the_end_of_a_statement() {
    let (message, line, column) = syntax_err("SHOW STREAMS;\nSELECT * FROM");
    assert!(message.contains("mismatched input '<EOF>'"), "{message}");
    assert_eq!((line, column), (2, 14));
    let (message, line, column) = syntax_err("CREATE STREAM s (a INT;");
    assert_eq!(
        message,
        "Syntax Error\nmismatched input '<EOF>' expecting {',', ')'}"
    );
    assert_eq!((line, column), (1, 23));
}

#[test]
fn unknown_statements() {
    let (message, line, column) = syntax_err("RUN SCRIPT 'foo';");
    assert_eq!(message, "Syntax Error\nUnknown statement 'RUN'");
    assert_eq!((line, column), (1, 1));
    let (message, ..) = syntax_err("SHOW TABLES;\n  selct * from s;");
    assert_eq!(message, "Syntax Error\nUnknown statement 'selct'");
    let (message, ..) = syntax_err("42;");
    assert_eq!(message, "Syntax Error\nUnknown statement '42'");
}

#[test]
fn assert_is_rejected_like_ksqldb_server() {
    let (message, line, column) = syntax_err("ASSERT VALUES foo (id INT) VALUES (123);");
    assert_eq!(message, "Syntax error at or near 'VALUES' at line 1:8");
    assert_eq!((line, column), (1, 8));
}

#[test]
fn unterminated_string() {
    let (message, line, column) = syntax_err("SHOW STREAMS;\nSET 'a' = 'b;");
    assert!(
        message.starts_with("Syntax Error\nUnterminated string literal"),
        "{message}"
    );
    assert_eq!(line, 2);
    assert!(column >= 11, "{column}");
}

#[test]
fn trailing_tokens_are_rejected() {
    for sql in [
        "SHOW STREAMS foo",
        "DROP STREAM s t",
        "TERMINATE q1 q2",
        "DESCRIBE s EXTENDED x",
        "SET 'a' = 'b' 'c'",
        "UNSET 'a' b",
        "PRINT 'x' FROM BEGINNING LIMIT 1 2",
        "CREATE STREAM s (a INT) WITH (x=1) y",
        "INSERT INTO s VALUES (1) 2",
    ] {
        let (message, ..) = syntax_err(sql);
        assert!(message.contains("expecting ';'"), "{sql}: {message}");
    }
}

#[test]
fn error_display_has_ksqldb_layout() {
    let e = parse_err("CREATE STREAM s (a INT) WITH (kafka_topic=);");
    assert_eq!(
        e.to_string(),
        "line 1:43: Syntax Error\nmismatched input ')' expecting a literal"
    );
}

/// Mangled statements must give an error (or parse), never panic.
#[test]
fn junk_never_panics() {
    let good = [
        "CREATE STREAM s (a INT KEY, b STRUCT<c ARRAY<MAP<STRING, INT>>>) WITH (kafka_topic='t', value_format='JSON');",
        "CREATE TABLE t (id INT PRIMARY KEY) WITH (kafka_topic='t');",
        "CREATE STREAM x WITH (kafka_topic='x') AS SELECT a->b, CAST(c AS STRING) FROM s s1 JOIN u WITHIN (1 SECOND, 2 SECONDS) GRACE PERIOD 1 SECOND ON s1.a = u.a WINDOW TUMBLING (SIZE 1 HOUR) WHERE a > 1 GROUP BY a PARTITION BY a HAVING COUNT(*) > 1 EMIT CHANGES LIMIT 1;",
        "INSERT INTO s (a, b) VALUES (1, STRUCT(x := 1));",
        "INSERT INTO s SELECT * FROM t;",
        "PRINT 'topic' FROM BEGINNING INTERVAL 1 LIMIT 2;",
        "SELECT * FROM s WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 1 MINUTE, RETENTION 1 DAY, GRACE PERIOD 1 HOUR) GROUP BY k EMIT FINAL;",
        "SELECT MAP('a' := 1), TRANSFORM(x, y => y) FROM s WINDOW SESSION (1 SECOND) GROUP BY k;",
        "EXPLAIN SELECT * FROM s;",
        "DESCRIBE FUNCTION f;",
        "SET 'a' = 'b';",
    ];
    let mut cases: Vec<String> = Vec::new();
    for stmt in good {
        assert!(parse(stmt).is_ok(), "{stmt}: {:?}", parse(stmt));
        let chars: Vec<char> = stmt.chars().collect();
        for cut in (0..chars.len()).step_by(3) {
            cases.push(chars[..cut].iter().collect());
            let mut without: Vec<char> = chars.clone();
            without.remove(cut);
            cases.push(without.into_iter().collect());
        }
        cases.push(stmt.replace('(', ""));
        cases.push(stmt.replace(')', ""));
        cases.push(stmt.replace('>', ""));
        cases.push(stmt.replace('<', ""));
        cases.push(stmt.replace(',', ",,"));
        cases.push(stmt.replace(' ', ";"));
        cases.push(stmt.replace('\'', "`"));
    }
    cases.extend(
        [
            "",
            ";;;",
            "(((((((",
            ")))))",
            "SELECT",
            "SELECT * FROM",
            "CREATE",
            "CREATE STREAM",
            "CREATE STREAM (",
            "CREATE STREAM s (a",
            "CREATE STREAM s (a ARRAY<",
            "CREATE STREAM s (a STRUCT<b",
            "CREATE STREAM s (a INT) WITH (",
            "INSERT INTO s VALUES (",
            "INSERT INTO s VALUES ((((1",
            "SELECT a-> FROM s",
            "SELECT a->->b FROM s",
            "SELECT CAST( FROM s",
            "SELECT CAST(a AS FROM s",
            "SELECT CAST(a AS) FROM s",
            "SELECT STRUCT(:= 1) FROM s",
            "SELECT MAP(:=) FROM s",
            "SELECT * FROM s WINDOW",
            "SELECT * FROM s WINDOW TUMBLING",
            "SELECT * FROM s WINDOW TUMBLING (",
            "SELECT * FROM s WINDOW TUMBLING (SIZE",
            "SELECT * FROM s WINDOW TUMBLING (SIZE 1",
            "SELECT * FROM a JOIN b WITHIN",
            "SELECT * FROM a JOIN b WITHIN (",
            "SELECT * FROM s PARTITION BY",
            "SELECT * FROM s EMIT",
            "EXPLAIN",
            "EXPLAIN EXPLAIN EXPLAIN x",
            "PRINT",
            "PRINT FROM BEGINNING",
            "DESCRIBE",
            "SHOW",
            "TERMINATE",
            "SET",
            "SET 'a' =",
            "UNSET",
            "DROP",
            "DROP STREAM",
            "'unterminated",
            "`unterminated",
            "\"unterminated",
            "/* unterminated",
            "SELECT \u{0} FROM s",
            "SÉLECT ü FROM ß",
            "SELECT 99999999999999999999999999999999 FROM s",
            "SELECT * FROM s WINDOW TUMBLING (SIZE 99999999999999999999999 DAYS)",
        ]
        .map(String::from),
    );
    cases.push(format!(
        "SELECT {}1{} FROM s",
        "(".repeat(5000),
        ")".repeat(5000)
    ));
    cases.push(format!("SELECT {}1 FROM s", "-".repeat(5000)));
    cases.push(format!(
        "CREATE STREAM s (a {}INT{})",
        "ARRAY<".repeat(5000),
        ">".repeat(5000)
    ));
    cases.push(format!("SELECT a{} FROM s", "->b".repeat(5000)));
    cases.push("EXPLAIN ".repeat(5000));
    // Inputs that would make a careless parser quadratic.
    cases.push(format!("SELECT {} FROM s", "CAST(".repeat(20_000)));
    cases.push(format!("SELECT {} FROM s", "STRUCT(a := ".repeat(20_000)));
    cases.push(format!("SELECT {}", "CAST(x AS INT), ".repeat(20_000)));

    for case in &cases {
        let _ = parse(case);
        let _ = parse_data_type(case);
        let _ = parse_expr(case);
    }
    assert!(matches!(parse("(((((((("), Err(SqlError::Parse { .. })));
}

#[test]
fn many_statements_on_one_line() {
    let sql = "SHOW STREAMS; SET 'a' = 'ü'; ".repeat(20_000);
    let statements = parse(&sql).expect("parses");
    assert_eq!(statements.len(), 40_000);
    assert_eq!(statements[39_999].text, "SET 'a' = 'ü'");
}

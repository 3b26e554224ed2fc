//! Queries: KSQL clauses, struct access, type names in CAST, and what sqlparser must accept.

use std::time::Duration;

use datafusion_sql::sqlparser::ast::{Expr, GroupByExpr, SetExpr};

use super::{parse_err, parse_one, query, syntax_err};
use crate::ast::{Emit, JoinWindow, Statement};
use crate::window::WindowSpec;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn group_by(q: &crate::ast::KsqlQuery) -> Vec<String> {
    match q.select.body.as_ref() {
        SetExpr::Select(s) => match &s.group_by {
            GroupByExpr::Expressions(exprs, _) => exprs.iter().map(ToString::to_string).collect(),
            GroupByExpr::All(_) => panic!("GROUP BY ALL"),
        },
        other => panic!("not a SELECT: {other}"),
    }
}

#[test]
fn pull_query_has_no_emit() {
    let q = query("select id, `Name` from users where id = 5;");
    assert_eq!(q.emit, None);
    assert_eq!(q.window, None);
    assert!(q.within.is_empty());
    assert_eq!(q.partition_by, None);
    assert_eq!(q.text, "select id, `Name` from users where id = 5");
    assert_eq!(
        q.select.to_string(),
        "SELECT ID, `Name` FROM USERS WHERE ID = 5"
    );
}

#[test]
fn emit_changes_final_and_limit() {
    let q = query("SELECT * FROM s EMIT CHANGES LIMIT 3;");
    assert_eq!(q.emit, Some(Emit::Changes));
    assert_eq!(q.select.to_string(), "SELECT * FROM S LIMIT 3");
    let q =
        query("SELECT k, COUNT(*) FROM s WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY k EMIT FINAL");
    assert_eq!(q.emit, Some(Emit::Final));
    let (message, ..) = syntax_err("SELECT * FROM s EMIT SOMETIMES;");
    assert_eq!(
        message,
        "Syntax Error\nmismatched input 'SOMETIMES' expecting {'CHANGES', 'FINAL'}"
    );
    let (message, ..) = syntax_err("SELECT * FROM s EMIT CHANGES WHERE x = 1;");
    assert!(message.contains("mismatched input 'WHERE'"), "{message}");
}

#[test]
fn tumbling_window() {
    let q = query(
        "SELECT k, COUNT(*) FROM s WINDOW TUMBLING (SIZE 30 SECONDS, RETENTION 2 DAYS, \
         GRACE PERIOD 10 MINUTES) WHERE x > 1 GROUP BY k EMIT CHANGES;",
    );
    assert_eq!(
        q.window,
        Some(WindowSpec::Tumbling {
            size: secs(30),
            retention: Some(secs(2 * 86_400)),
            grace: Some(secs(600)),
        })
    );
    assert_eq!(
        q.select.to_string(),
        "SELECT K, COUNT(*) FROM S WHERE X > 1 GROUP BY K"
    );
}

#[test]
fn hopping_window() {
    let q = query(
        "SELECT k, SUM(v) FROM s WINDOW HOPPING (SIZE 1 HOUR, ADVANCE BY 500 MILLISECONDS) \
         GROUP BY k EMIT CHANGES",
    );
    assert_eq!(
        q.window,
        Some(WindowSpec::Hopping {
            size: secs(3600),
            advance: Duration::from_millis(500),
            retention: None,
            grace: None,
        })
    );
}

#[test]
fn session_window() {
    let q = query(
        "select k, count(*) from s window session (5 minute, grace period 1 second) \
         group by k emit changes",
    );
    assert_eq!(
        q.window,
        Some(WindowSpec::Session {
            gap: secs(300),
            retention: None,
            grace: Some(secs(1)),
        })
    );
}

#[test]
fn window_errors() {
    let (message, line, column) =
        syntax_err("SELECT k FROM s WINDOW TUMBLING (SIZE 1 WEEK) GROUP BY k;");
    assert!(
        message.contains("mismatched input 'WEEK' expecting a time unit"),
        "{message}"
    );
    assert_eq!((line, column), (1, 41));
    let (message, ..) = syntax_err("SELECT k FROM s WINDOW SLIDING (SIZE 1 HOUR) GROUP BY k;");
    assert!(message.contains("'SLIDING'"), "{message}");
    let (message, ..) = syntax_err("SELECT k FROM s WINDOW HOPPING (SIZE 1 HOUR) GROUP BY k;");
    assert!(message.contains("expecting ','"), "{message}");
    let (message, ..) = syntax_err("SELECT k FROM s WINDOW TUMBLING (SIZE 1 HOUR) s2 GROUP BY k;");
    assert!(message.contains("mismatched input 's2'"), "{message}");
    let (message, ..) =
        syntax_err("SELECT k FROM s WINDOW TUMBLING (SIZE 9223372036854775807 DAYS) GROUP BY k;");
    assert!(message.contains("too large"), "{message}");
}

#[test]
fn within_per_join() {
    let q = query(
        "SELECT * FROM a \
         JOIN b WITHIN 1 HOUR ON a.id = b.id \
         LEFT JOIN c ON a.id = c.id \
         FULL OUTER JOIN d dd WITHIN (10 SECONDS, 20 SECONDS) GRACE PERIOD 5 SECONDS ON a.id = dd.id \
         EMIT CHANGES;",
    );
    assert_eq!(
        q.within,
        vec![
            Some(JoinWindow {
                before: secs(3600),
                after: secs(3600),
                grace: None
            }),
            None,
            Some(JoinWindow {
                before: secs(10),
                after: secs(20),
                grace: Some(secs(5))
            }),
        ]
    );
    assert_eq!(
        q.select.to_string(),
        "SELECT * FROM A JOIN B ON A.ID = B.ID LEFT JOIN C ON A.ID = C.ID \
         FULL JOIN D DD ON A.ID = DD.ID"
    );
}

#[test]
fn within_errors() {
    let (message, ..) = syntax_err("SELECT * FROM a WITHIN 1 HOUR;");
    assert!(
        message.contains("WITHIN must follow a joined source"),
        "{message}"
    );
    let (message, ..) = syntax_err("SELECT * FROM a JOIN b WITHIN 1 HOUR WHERE x = 1;");
    assert!(message.contains("expecting 'ON'"), "{message}");
}

#[test]
fn partition_by() {
    let q = query("SELECT * FROM s PARTITION BY a->b, UCASE(c), d + 1 EMIT CHANGES LIMIT 2;");
    let exprs: Vec<String> = q
        .partition_by
        .as_ref()
        .map(|e| e.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    assert_eq!(exprs, vec!["A['B']", "UCASE(C)", "D + 1"]);
    assert_eq!(q.emit, Some(Emit::Changes));
    assert_eq!(q.select.to_string(), "SELECT * FROM S LIMIT 2");

    let q = query("SELECT * FROM s WHERE x = 1 PARTITION BY (a, b);");
    assert_eq!(q.partition_by.map(|e| e.len()), Some(2));
    assert_eq!(q.select.to_string(), "SELECT * FROM S WHERE X = 1");
}

#[test]
fn partition_by_takes_value_expressions() {
    let sql = "CREATE STREAM INPUT (ID INT KEY, NAME STRING, AGE INT) with (kafka_topic='input', value_format='JSON');\n\
               CREATE STREAM OUTPUT AS select * from INPUT partition by NAME AND AGE;";
    let (message, line, column) = syntax_err(sql);
    assert!(
        message.starts_with("Syntax Error\nmismatched input 'AND'"),
        "{message}"
    );
    assert_eq!((line, column), (2, 63));
    let (message, ..) = syntax_err("SELECT * FROM s PARTITION BY;");
    assert!(message.contains("expecting an expression"), "{message}");
    let (message, ..) = syntax_err("SELECT * FROM s PARTITION BY a GROUP BY b;");
    assert!(message.contains("mismatched input 'GROUP'"), "{message}");
}

#[test]
fn group_by_lists() {
    let q = query("SELECT a, b, COUNT(*) FROM s GROUP BY (a, b) EMIT CHANGES;");
    assert_eq!(group_by(&q), vec!["A", "B"]);
    let q = query("SELECT COUNT(*) FROM s GROUP BY a->x, b;");
    assert_eq!(group_by(&q), vec!["A['X']", "B"]);

    let sql = "CREATE STREAM TEST (ID INT KEY, f1 INT, f2 VARCHAR, f3 INT) WITH (kafka_topic='test_topic', value_format='DELIMITED');\n\
               CREATE TABLE OUTPUT AS SELECT f1, f2, COUNT(*) FROM TEST GROUP BY f3, (f2, f1);";
    let (message, line, column) = syntax_err(sql);
    assert_eq!(message, "Syntax Error\nmissing ')' at ','");
    assert_eq!((line, column), (2, 74));

    let (message, ..) = syntax_err("SELECT COUNT(*) FROM TEST GROUP BY DATA AND ID;");
    assert!(message.starts_with("Syntax Error"), "{message}");
}

#[test]
fn struct_access_becomes_subscripts() {
    let q = query("SELECT a->b->c, s.addr->`Zip` AS z, f(x)->y FROM s WHERE a->b->c > 1;");
    assert_eq!(
        q.select.to_string(),
        "SELECT A['B']['C'], S.ADDR['Zip'] AS Z, F(X)['Y'] FROM S WHERE A['B']['C'] > 1"
    );
}

#[test]
fn cast_types_are_rewritten_for_datafusion() {
    let q = query(
        "SELECT CAST(a AS STRING), CAST(b AS BIGINT), CAST(c AS ARRAY<INT>), \
         CAST(d AS MAP<STRING, BYTES>), CAST(e AS STRUCT<x INT, `y` ARRAY<STRING>>), \
         CAST(f AS DECIMAL(5, 2)), CAST(g AS TIMESTAMP), CAST(CAST(h AS INT) AS STRING) FROM s;",
    );
    assert_eq!(
        q.select.to_string(),
        "SELECT CAST(A AS VARCHAR), CAST(B AS BIGINT), KSQL_CAST(C, 'ARRAY<INTEGER>'), \
         KSQL_CAST(D, 'MAP<STRING, BYTES>'), CAST(E AS STRUCT<`X` INT, `y` ARRAY<VARCHAR>>), \
         CAST(F AS DECIMAL(5,2)), CAST(G AS TIMESTAMP(3)), CAST(CAST(H AS INT) AS VARCHAR) FROM S"
    );
    let (message, line, column) = syntax_err("SELECT CAST(a AS WIBBLE) FROM s;");
    assert_eq!(message, "Unknown type: WIBBLE");
    assert_eq!((line, column), (1, 18));
}

#[test]
fn standard_expressions_parse() {
    let q = query(
        "SELECT r.*, l.id, COUNT(*), m['k'], arr[1], \
         CASE WHEN x BETWEEN 1 AND 5 THEN 'a' WHEN y IN (1, 2) THEN 'b' ELSE 'c' END AS c, \
         name LIKE 'a%', NOT z IS NULL, -v, 'it''s' \
         FROM left_s l JOIN right_t r ON l.id = r.id WHERE l.x <> 2 GROUP BY l.id HAVING COUNT(*) > 1;",
    );
    assert_eq!(
        q.select.to_string(),
        "SELECT R.*, L.ID, COUNT(*), M['k'], ARR[1], \
         CASE WHEN X BETWEEN 1 AND 5 THEN 'a' WHEN Y IN (1, 2) THEN 'b' ELSE 'c' END AS C, \
         NAME LIKE 'a%', NOT Z IS NULL, -V, 'it''s' \
         FROM LEFT_S L JOIN RIGHT_T R ON L.ID = R.ID WHERE L.X <> 2 GROUP BY L.ID HAVING COUNT(*) > 1"
    );
}

#[test]
fn constructors_and_lambdas() {
    let q = query(
        "SELECT STRUCT(a := 1, `b` := x->y), MAP('k' := 1, 'j' := 2), ARRAY[1, 2], \
         TRANSFORM(arr, x => x + 1), REDUCE(arr, 0, (s, x) => s + x) FROM s;",
    );
    let select = q.select.to_string();
    assert!(select.contains("STRUCT(1 AS A, X['Y'] AS `b`)"), "{select}");
    assert!(select.contains("MAP {'k': 1, 'j': 2}"), "{select}");
    assert!(select.contains("ARRAY[1, 2]"), "{select}");
    // Lambda parameters are quoted (DataFusion lower-cases unquoted ones) and integer
    // literals in lambda functions typed as INT before the parameters are typed.
    assert!(
        select.contains("TRANSFORM(ARR, `X` -> X + CAST(1 AS INT))"),
        "{select}"
    );
    assert!(
        select.contains("REDUCE(ARR, CAST(0 AS INT), (`S`, `X`) -> S + X)"),
        "{select}"
    );
}

#[test]
fn query_text_is_the_original() {
    let Statement::CreateAsSelect(c) = parse_one(
        "CREATE STREAM x AS\n  SELECT a->b\n  FROM s -- trailing comment\n  EMIT CHANGES;",
    ) else {
        panic!("not a CSAS")
    };
    assert_eq!(
        c.query.text,
        "SELECT a->b\n  FROM s -- trailing comment\n  EMIT CHANGES"
    );
}

#[test]
fn pseudo_columns_and_keywords_as_names() {
    let q = query(
        "SELECT ROWTIME, ROWPARTITION, ROWOFFSET, WINDOWSTART, WINDOWEND, KEY, VALUE, ID, NAME \
         FROM s WHERE ROWTIME > 0;",
    );
    let Some(first) = (match q.select.body.as_ref() {
        SetExpr::Select(s) => s.projection.first().map(ToString::to_string),
        _ => None,
    }) else {
        panic!("no projection")
    };
    assert_eq!(first, "ROWTIME");
    assert!(matches!(
        q.select.body.as_ref(),
        SetExpr::Select(s) if matches!(s.selection, Some(Expr::BinaryOp { .. }))
    ));
}

#[test]
fn window_may_be_named() {
    let q = query("SELECT k, COUNT(*) FROM s WINDOW w1 SESSION (1 SECONDS) GROUP BY k;");
    assert_eq!(
        q.window,
        Some(WindowSpec::Session {
            gap: secs(1),
            retention: None,
            grace: None,
        })
    );
}

#[test]
fn empty_partition_by_is_invalid() {
    assert_eq!(
        super::parse_err("SELECT * FROM s PARTITION BY ();").to_string(),
        "PARTITION BY requires at least one expression"
    );
}

#[test]
fn identifiers_may_start_with_digits() {
    let q = query("SELECT ROUND(v, -1) AS 1r, v AS 2_x FROM s;");
    assert_eq!(
        q.select.to_string(),
        "SELECT ROUND(V, -1) AS 1R, V AS 2_X FROM S"
    );
}

#[test]
fn all_struct_fields_become_a_qualified_wildcard() {
    let q = query("SELECT k, v1->*, s.v2->* FROM s;");
    assert_eq!(q.select.to_string(), "SELECT K, V1.*, S.V2.* FROM S");
}

#[test]
fn numeric_literals_must_fit() {
    let sql =
        "SHOW STREAMS;\nCREATE STREAM OUTPUT AS select K, id, 9223372036854775808 FROM INPUT;";
    assert_eq!(
        parse_err(sql).to_string(),
        "Failed to prepare statement: line 2:40: Invalid numeric literal: 9223372036854775808"
    );
    let message = parse_err("select -9223372036854775809 FROM INPUT;").to_string();
    assert!(message.ends_with("Invalid numeric literal: -9223372036854775809"));
    let message = parse_err("select 1.7976931348623159E308 FROM INPUT;").to_string();
    assert!(message.ends_with("Number overflows DOUBLE: 1.7976931348623159E308"));
    let q = query("select -9223372036854775808, 9223372036854775807, 1.5E300, 2.345 FROM INPUT;");
    assert_eq!(
        q.select.to_string(),
        "SELECT -9223372036854775808, 9223372036854775807, CAST('1.5E300' AS DOUBLE), 2.345 FROM INPUT"
    );
}

#[test]
fn ksql_clauses_keep_ksqldb_order() {
    for (sql, misplaced) in [
        (
            "SELECT k, COUNT(*) FROM s WHERE x = 1 WINDOW TUMBLING (SIZE 1 HOUR) GROUP BY k;",
            "WINDOW",
        ),
        (
            "SELECT k, COUNT(*) FROM s GROUP BY k WINDOW TUMBLING (SIZE 1 HOUR);",
            "WINDOW",
        ),
        ("SELECT * FROM s LIMIT 1 EMIT CHANGES;", "EMIT"),
        ("SELECT * FROM s LIMIT 1 PARTITION BY a;", "PARTITION"),
        (
            "SELECT k, COUNT(*) FROM s GROUP BY k HAVING COUNT(*) > 1 PARTITION BY k;",
            "PARTITION",
        ),
    ] {
        let (message, ..) = syntax_err(sql);
        assert_eq!(
            message,
            format!("Syntax Error\nmismatched input '{misplaced}' expecting ';'"),
            "{sql}"
        );
    }
    // Subqueries' clauses do not count.
    let q = query("SELECT * FROM s WHERE x IN (SELECT a FROM t WHERE b = 1 LIMIT 1) EMIT CHANGES;");
    assert_eq!(q.emit, Some(Emit::Changes));
}

//! Planner tests: ksqlDB's naming, key and join rules, and the errors for what is wrong or
//! not supported.

use super::*;
use crate::ast::Statement;
use crate::catalog::Column;

fn source(name: &str, kind: SourceKind, cols: &[(&str, SqlType, bool)]) -> Source {
    let columns = cols
        .iter()
        .map(|(n, t, key)| Column {
            name: (*n).into(),
            ty: t.clone(),
            role: if *key {
                ColumnRole::Key
            } else {
                ColumnRole::Value
            },
        })
        .collect();
    Source::new(name, kind, &name.to_lowercase(), columns)
}

fn catalog() -> Catalog {
    let mut c = Catalog::new();
    c.insert(source(
        "REVIEWS",
        SourceKind::Stream,
        &[
            ("ID", SqlType::Int, true),
            ("USERID", SqlType::Int, false),
            ("RATING", SqlType::Int, false),
            ("TEXT", SqlType::String, false),
        ],
    ));
    c.insert(source(
        "USERS",
        SourceKind::Table,
        &[
            ("USERID", SqlType::Int, true),
            ("NAME", SqlType::String, false),
            ("STATUS", SqlType::String, false),
        ],
    ));
    c.insert(source(
        "ORDERS",
        SourceKind::Table,
        &[
            ("OID", SqlType::Int, true),
            ("CID", SqlType::Int, false),
            ("AMT", SqlType::Int, false),
        ],
    ));
    c
}

/// Plans the query of a `CREATE STREAM|TABLE … AS SELECT` statement.
fn plan(sql: &str) -> Result<QueryPlan, SqlError> {
    let stmt = crate::parse(sql)?.remove(0).statement;
    let Statement::CreateAsSelect(c) = stmt else {
        panic!("not a CSAS/CTAS: {sql}");
    };
    plan_query(
        &c.query,
        &catalog(),
        Some(Sink {
            name: &c.name,
            kind: c.kind,
        }),
    )
}

fn schema(p: &QueryPlan) -> String {
    Source {
        columns: p.output_columns(),
        ..source("X", p.kind, &[])
    }
    .schema_string()
}

fn err(sql: &str) -> String {
    match plan(sql) {
        Ok(p) => panic!("expected an error, got {}", schema(&p)),
        Err(e) => e.to_string(),
    }
}

#[test]
fn star_keeps_the_key_and_excludes_pseudo_columns() {
    let p = plan("CREATE STREAM C AS SELECT * FROM reviews WHERE id IS NOT NULL;").unwrap();
    assert_eq!(
        schema(&p),
        "`ID` INTEGER KEY, `USERID` INTEGER, `RATING` INTEGER, `TEXT` STRING"
    );
    assert!(p.filter.is_some());
    assert!(p.join.is_none());
    assert_eq!(p.kind, SourceKind::Stream);
}

#[test]
fn expressions_are_named_like_ksqldb() {
    let p = plan(
        "CREATE STREAM C AS SELECT id, rating + 1, UCASE(text) AS loud, LEN(text), rating * 2 FROM reviews;",
    )
    .unwrap();
    let names: Vec<&str> = p.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["ID", "KSQL_COL_0", "LOUD", "KSQL_COL_1", "KSQL_COL_2"]
    );
    assert_eq!(
        p.columns[1].ty,
        SqlType::Int,
        "INT + 1 stays INT as in ksqlDB"
    );
    assert_eq!(p.columns[2].ty, SqlType::String);
}

#[test]
fn common_ksql_functions_and_operators_bind() {
    let p = plan(
        "CREATE STREAM C AS SELECT id, LCASE(text) a, CONCAT(text, '!') b, SUBSTRING(text, 1, 2) c, \
         TRIM(text) d, ABS(rating) e, ROUND(rating * 1.5) f, FLOOR(rating * 1.5) g, CEIL(rating * 1.5) h, \
         COALESCE(text, 'x') i, IFNULL(text, 'y') j, CASE WHEN rating > 3 THEN 'good' ELSE 'bad' END k, \
         CAST(rating AS STRING) l, rating BETWEEN 1 AND 3 m, rating IN (1, 2) n, text LIKE 'a%' o, \
         NOT (rating < 2 OR rating IS NULL) p FROM reviews;",
    )
    .unwrap();
    assert_eq!(p.columns.len(), 17);
    assert_eq!(p.columns[12].ty, SqlType::String);
    assert_eq!(p.columns[13].ty, SqlType::Boolean);
}

#[test]
fn join_columns_both_sources_have_are_prefixed_and_keyed_by_the_join_expression() {
    let p = plan(
        "CREATE STREAM E AS SELECT r.id, r.userid, u.name, status FROM reviews r JOIN users u ON r.userid = u.userid;",
    )
    .unwrap();
    assert_eq!(
        schema(&p),
        "`R_USERID` INTEGER KEY, `ID` INTEGER, `NAME` STRING, `STATUS` STRING"
    );
    let join = p.join.as_ref().unwrap();
    assert_eq!(join.kind, JoinKind::Inner);
    assert_eq!(join.table.source.name, "USERS");
}

#[test]
fn left_join_with_star_and_aliases() {
    let p = plan(
        "CREATE STREAM E AS SELECT * FROM reviews r LEFT JOIN users u ON r.userid = u.userid;",
    )
    .unwrap();
    assert_eq!(p.join.as_ref().unwrap().kind, JoinKind::Left);
    assert_eq!(
        schema(&p),
        "`R_USERID` INTEGER KEY, `R_ID` INTEGER, `R_RATING` INTEGER, `R_TEXT` STRING, `U_USERID` INTEGER, `U_NAME` STRING, `U_STATUS` STRING"
    );
}

#[test]
fn key_rules_are_enforced() {
    assert_eq!(
        err("CREATE STREAM C AS SELECT rating FROM reviews;"),
        "The query used to build `C` must include the key column ID in its projection (eg, SELECT ID...)."
    );
    assert_eq!(
        err("CREATE STREAM C AS SELECT id FROM reviews;"),
        "The projection contains no value columns."
    );
    assert_eq!(
        err("CREATE STREAM C AS SELECT id, id AS id2, rating FROM reviews;"),
        "The projection contains a key column (`ID`) more than once, aliased as: ID and ID2."
    );
    assert!(
        err("CREATE STREAM E AS SELECT r.id, u.name FROM reviews r JOIN users u ON r.userid = u.userid;")
            .contains("must include the join expressions R.USERID or U.USERID in its projection")
    );
}

#[test]
fn bad_queries_are_clear_errors() {
    assert_eq!(
        err("CREATE STREAM C AS SELECT * FROM nope;"),
        "NOPE does not exist."
    );
    assert!(err("CREATE STREAM C AS SELECT id, nope FROM reviews;").contains("NOPE"));
    assert_eq!(
        err("CREATE TABLE C AS SELECT * FROM reviews;"),
        "Invalid result type. Your SELECT query produces a STREAM. Please use CREATE STREAM AS SELECT statement instead."
    );
    assert_eq!(
        err("CREATE STREAM C AS SELECT * FROM users;"),
        "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead."
    );
    assert_eq!(
        err("CREATE STREAM E AS SELECT * FROM users u JOIN reviews r ON r.userid = u.userid;"),
        "Invalid join order: table-stream joins are not supported; only stream-table joins. Got USERS [INNER] JOIN REVIEWS."
    );
    assert_eq!(
        err(
            "CREATE STREAM E AS SELECT * FROM reviews r FULL OUTER JOIN users u ON r.userid = u.userid;"
        ),
        "Invalid join type: full-outer join not supported for stream-table join. Got REVIEWS [FULL] OUTER JOIN USERS."
    );
    assert_eq!(
        err("CREATE STREAM E AS SELECT * FROM reviews r JOIN users u ON r.userid = u.name;"),
        "Invalid join condition: stream-table joins require to join on the table's primary key. Got R.USERID = U.NAME."
    );
    assert_eq!(
        err("CREATE STREAM C AS SELECT * FROM reviews WINDOW TUMBLING (SIZE 1 MINUTE);"),
        "WINDOW clause requires a GROUP BY clause."
    );
    assert_eq!(
        err("CREATE STREAM C AS SELECT userid, SUM(rating) FROM reviews GROUP BY userid;"),
        "Invalid result type. Your SELECT query produces a TABLE. Please use CREATE TABLE AS SELECT statement instead."
    );
    assert_eq!(
        err("CREATE TABLE C AS SELECT COUNT(*) AS N FROM reviews GROUP BY userid;"),
        "Key missing from projection (ie, SELECT).\nThe query used to build `C` must include the grouping expression USERID in its projection (eg, SELECT USERID...)."
    );
    assert_eq!(
        err("CREATE TABLE C AS SELECT userid, SUM(text) AS S FROM reviews GROUP BY userid;"),
        "Function 'SUM' does not accept parameters (STRING)."
    );
}

#[test]
fn group_by_makes_a_table_keyed_by_the_grouping_columns() {
    let p = plan(
        "CREATE TABLE C AS SELECT userid, COUNT(*) AS n, SUM(rating) AS total, AVG(rating) AS mean \
         FROM reviews WHERE rating > 0 GROUP BY userid HAVING COUNT(*) > 1;",
    )
    .unwrap();
    assert_eq!(
        schema(&p),
        "`USERID` INTEGER PRIMARY KEY, `N` BIGINT, `TOTAL` INTEGER, `MEAN` DOUBLE"
    );
    let a = p.aggregate.as_ref().unwrap();
    assert_eq!(a.group_by.len(), 1);
    let functions: Vec<&str> = a.calls.iter().map(|c| c.function.as_str()).collect();
    assert_eq!(functions, ["count", "sum", "avg"]);
    assert!(a.having.is_some());
    assert!(p.filter.is_some());
    assert!(a.window.is_none());
}

#[test]
fn a_window_groups_by_its_bounds_too() {
    let p = plan(
        "CREATE TABLE C AS SELECT userid, WINDOWSTART AS ws, COUNT(*) AS n FROM reviews \
         WINDOW HOPPING (SIZE 1 MINUTE, ADVANCE BY 30 SECONDS) GROUP BY userid;",
    )
    .unwrap();
    assert_eq!(
        schema(&p),
        "`USERID` INTEGER PRIMARY KEY, `WS` BIGINT, `N` BIGINT"
    );
    let a = p.aggregate.as_ref().unwrap();
    assert_eq!(a.group_by.len(), 3);
    assert_eq!(a.window_columns(), 2);
    assert!(matches!(
        a.window,
        Some(crate::window::WindowSpec::Hopping { .. })
    ));
}

#[test]
fn a_struct_with_a_field_name_twice_is_a_statement_error() {
    let err = plan("CREATE STREAM C AS SELECT id, STRUCT(a := text, a := text) AS s FROM reviews;")
        .unwrap_err();
    assert_eq!(err.to_string(), "Duplicate field names found in STRUCT");
    assert!(
        plan("CREATE STREAM C AS SELECT id, STRUCT(a := text, b := text) AS s FROM reviews;")
            .is_ok()
    );
}

#[test]
fn grouping_a_table_table_join_is_a_statement_error() {
    let err = plan(
        "CREATE TABLE C AS SELECT u.status, COUNT(*) AS n FROM users u \
         JOIN users v ON u.userid = v.userid GROUP BY u.status;",
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "GROUP BY over a table-table join is not supported yet"
    );
}

#[test]
fn a_join_on_a_left_column_other_than_the_key_is_a_foreign_key_join() {
    // An order's customer: a foreign key into USERS.
    let fk = plan(
        "CREATE TABLE J AS SELECT o.oid, u.name FROM orders o \
         JOIN users u ON o.cid = u.userid;",
    )
    .unwrap();
    let join = fk.join.as_ref().unwrap();
    assert!(join.foreign_key);
    // Keyed by the left table's primary key.
    let keys: Vec<String> = fk
        .output_columns()
        .into_iter()
        .filter(|c| c.role == ColumnRole::Key)
        .map(|c| c.name)
        .collect();
    assert_eq!(keys, ["OID"]);
    // On both primary keys it is the table-table join on the key.
    let on_key = plan(
        "CREATE TABLE J AS SELECT o.oid, u.name FROM orders o JOIN users u ON o.oid = u.userid;",
    )
    .unwrap();
    assert!(!on_key.join.unwrap().foreign_key);
    // Only inner and left foreign-key joins exist.
    let err = plan(
        "CREATE TABLE J AS SELECT o.oid, u.name FROM orders o \
         FULL OUTER JOIN users u ON o.cid = u.userid;",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Invalid join type: full-outer join not supported for foreign-key"),
        "{err}"
    );
}

#[test]
fn grouping_by_other_than_the_key_repartitions() {
    let needs = |sql: &str| plan(sql).unwrap().groups_need_repartition();
    // The stream's key: its records already meet by key.
    assert!(!needs(
        "CREATE TABLE C AS SELECT id, COUNT(*) AS n FROM reviews GROUP BY id;"
    ));
    assert!(!needs(
        "CREATE TABLE C AS SELECT id, COUNT(*) AS n FROM reviews \
         WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY id;"
    ));
    // A value column, an expression of the key, several columns.
    assert!(needs(
        "CREATE TABLE C AS SELECT userid, COUNT(*) AS n FROM reviews \
         WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY userid;"
    ));
    assert!(needs(
        "CREATE TABLE C AS SELECT id + 1 AS k, COUNT(*) AS n FROM reviews GROUP BY id + 1;"
    ));
    assert!(needs(
        "CREATE TABLE C AS SELECT id, userid, COUNT(*) AS n FROM reviews GROUP BY id, userid;"
    ));
    assert!(needs(
        "CREATE TABLE C AS SELECT status, COUNT(*) AS n FROM users GROUP BY status;"
    ));
    assert!(!needs(
        "CREATE TABLE C AS SELECT userid, COUNT(*) AS n FROM users GROUP BY userid;"
    ));
    // After a join, by a column of the table.
    assert!(needs(
        "CREATE TABLE C AS SELECT u.status, COUNT(*) AS n FROM reviews r \
         JOIN users u ON r.userid = u.userid GROUP BY u.status;"
    ));
    assert!(!needs("CREATE STREAM S AS SELECT * FROM reviews;"));
}

#[test]
fn insert_values_bind_literals() {
    let stmt = crate::parse("INSERT INTO reviews (id, text) VALUES (1 + 1, 'hi');")
        .unwrap()
        .remove(0)
        .statement;
    let Statement::InsertValues { values, .. } = stmt else {
        panic!("not INSERT VALUES");
    };
    let exprs = plan_values(&values, &catalog()).unwrap();
    assert_eq!(exprs.len(), 2);
    assert!(plan_values(&values[..1], &catalog()).is_ok());
}

#[test]
fn pseudo_columns_can_be_selected() {
    let p = plan("CREATE STREAM C AS SELECT id, ROWTIME AS t, ROWPARTITION AS p, ROWOFFSET AS o FROM reviews;")
        .unwrap();
    assert_eq!(
        schema(&p),
        "`ID` INTEGER KEY, `T` BIGINT, `P` INTEGER, `O` BIGINT"
    );
}

#[test]
fn lambda_parameters_resolve_in_upper_case_bodies() {
    // DataFusion lower-cases unquoted lambda parameters; the lexer quotes them so the
    // upper-cased names in the body find them.
    let p = plan(
        "CREATE STREAM C AS SELECT id, TRANSFORM(ARRAY[rating], x => x + 1) AS T, \
         FILTER(ARRAY[text], (s) => LEN(s) > 1) AS F FROM reviews;",
    )
    .unwrap();
    assert_eq!(
        schema(&p),
        "`ID` INTEGER KEY, `T` ARRAY<INTEGER>, `F` ARRAY<STRING>"
    );
}

//! Temporary.

use crate::parser::parse;

#[test]
fn scratch_overflow() {
    let n = 3000;
    let cases = [
        ("cast", format!("SELECT {} FROM s", "CAST(".repeat(n))),
        (
            "cast balanced",
            format!(
                "SELECT {}1{} FROM s",
                "CAST(".repeat(n),
                " AS INT)".repeat(n)
            ),
        ),
        (
            "table factor",
            format!("SELECT * FROM {}t{}", "(".repeat(n), ")".repeat(n)),
        ),
        (
            "subquery",
            format!(
                "SELECT * FROM {}t{}",
                "(SELECT * FROM ".repeat(n),
                ")".repeat(n)
            ),
        ),
        (
            "in subquery",
            format!(
                "SELECT * FROM t WHERE {}",
                "a IN (SELECT a FROM t WHERE ".repeat(n)
            ),
        ),
        ("array", format!("SELECT {} FROM s", "ARRAY[".repeat(n))),
        ("subscript", format!("SELECT a{} FROM s", "[".repeat(n))),
        ("case", format!("SELECT {} FROM s", "CASE WHEN ".repeat(n))),
        ("fn", format!("SELECT {} FROM s", "F(".repeat(n))),
        ("struct", format!("SELECT {} FROM s", "STRUCT(".repeat(n))),
        ("map", format!("SELECT {} FROM s", "MAP {'a': ".repeat(n))),
        ("not", format!("SELECT {} a FROM s", "NOT ".repeat(n))),
        ("lambda", format!("SELECT {} FROM s", "F(x => ".repeat(n))),
        (
            "join",
            format!("SELECT * FROM a{}", " JOIN b ON x = y".repeat(n)),
        ),
        (
            "and",
            format!("SELECT * FROM a WHERE {}", "x = 1 AND ".repeat(n)),
        ),
        ("plus", format!("SELECT {} FROM a", "1 + ".repeat(n))),
        (
            "interval",
            format!("SELECT {} FROM a", "INTERVAL ".repeat(n)),
        ),
        (
            "exists",
            format!("SELECT {} FROM a", "EXISTS (SELECT ".repeat(n)),
        ),
        ("tuple", format!("SELECT {} FROM a", "(1, ".repeat(n))),
        (
            "values",
            format!("INSERT INTO s VALUES ({})", "(".repeat(n)),
        ),
        (
            "partition",
            format!("SELECT * FROM s PARTITION BY {}", "(".repeat(n)),
        ),
        (
            "window",
            format!("SELECT * FROM s WINDOW TUMBLING {}", "(".repeat(n)),
        ),
        ("with", format!("{} SELECT 1", "WITH a AS (".repeat(n))),
    ];
    for (name, sql) in cases {
        let r = parse(&sql);
        eprintln!("{name}: {:?}", r.err().map(|e| e.to_string()));
    }
}

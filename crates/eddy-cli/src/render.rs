//! Results as text: `/ksql` entities as ASCII tables laid out like ksqlDB's CLI, and rows
//! of a query printed one by one as they arrive.

use comfy_table::{ContentArrangement, Table};
use serde_json::Value;

/// ksqlDB's CLI look: columns separated by `|`, a dashed line under the header and at the
/// end, no outer border.
const KSQL_STYLE: &str = "   - -- |     -    ";

/// Text for one entity of a `/ksql` answer.
pub fn entity(e: &Value) -> String {
    let mut out = match e["@type"].as_str().unwrap_or_default() {
        "currentStatus" => table(
            &["Message"],
            vec![vec![text(&e["commandStatus"]["message"])]],
        ),
        "streams" => sources("Stream Name", &e["streams"]),
        "tables" => sources("Table Name", &e["tables"]),
        "queries" => queries(&e["queries"]),
        "kafka_topics" => topics(&e["topics"], false),
        "kafka_topics_extended" => topics(&e["topics"], true),
        "sourceDescription" => source_description(&e["sourceDescription"]),
        "source_descriptions" => items(&e["sourceDescriptions"])
            .map(source_description)
            .collect::<Vec<_>>()
            .join("\n\n"),
        "queryDescription" => query_description(&e["queryDescription"]),
        "properties" => properties(e),
        "variables" => variables(e),
        "type_list" => table(
            &["Type Name", "Schema"],
            e["types"]
                .as_object()
                .map(|types| {
                    types
                        .iter()
                        .map(|(name, schema)| vec![name.clone(), type_name(schema)])
                        .collect()
                })
                .unwrap_or_default(),
        ),
        "describe_function" => describe_function(e),
        "assert_topic" => format!(
            "Topic {} {}.",
            text(&e["topicName"]),
            if e["exists"] == true {
                "exists"
            } else {
                "does not exist"
            }
        ),
        "function_names" => table(
            &["Function Name", "Category"],
            items(&e["functions"])
                .map(|f| vec![text(&f["name"]), text(&f["category"])])
                .collect(),
        ),
        _ => serde_json::to_string_pretty(e).unwrap_or_else(|_| e.to_string()),
    };
    for w in items(&e["warnings"]) {
        out.push_str(&format!("\nWARNING: {}", text(&w["message"])));
    }
    out
}

fn sources(title: &str, list: &Value) -> String {
    table(
        &[
            title,
            "Kafka Topic",
            "Key Format",
            "Value Format",
            "Windowed",
        ],
        items(list)
            .map(|s| {
                vec![
                    text(&s["name"]),
                    text(&s["topic"]),
                    text(&s["keyFormat"]),
                    text(&s["valueFormat"]),
                    text(&s["isWindowed"]),
                ]
            })
            .collect(),
    )
}

fn queries(list: &Value) -> String {
    // Eddy's servers also report each query's lag and processing errors; ksqlDB's do not.
    let progress = items(list).any(|q| q.get("consumerLag").is_some());
    let rows = items(list)
        .map(|q| {
            let mut row = vec![
                text(&q["id"]),
                text(&q["queryType"]),
                status(q),
                join(&q["sinks"]),
                join(&q["sinkKafkaTopics"]),
            ];
            if progress {
                row.push(progress_cell(&q["consumerLag"]));
                row.push(progress_cell(&q["processingErrors"]));
            }
            row.push(one_line(&text(&q["queryString"])));
            row
        })
        .collect();
    let mut header = vec![
        "Query ID",
        "Query Type",
        "Status",
        "Sink Name",
        "Sink Kafka Topic",
    ];
    if progress {
        header.extend(["Lag", "Errors"]);
    }
    header.push("Query String");
    let mut out = table(&header, rows);
    out.push_str("\nFor detailed information on a Query run: EXPLAIN <Query ID>;");
    out
}

/// A lag or error count, empty where the server gave none (push queries).
fn progress_cell(v: &Value) -> String {
    if v.is_null() { String::new() } else { text(v) }
}

/// ksqlDB's `RUNNING:1` from `statusCount`, or the plain state.
fn status(q: &Value) -> String {
    match q["statusCount"].as_object() {
        Some(counts) if !counts.is_empty() => counts
            .iter()
            .map(|(state, n)| format!("{state}:{}", text(n)))
            .collect::<Vec<_>>()
            .join(","),
        _ => text(&q["state"]),
    }
}

/// `SHOW TOPICS`, and with `extended` its consumers and consumer groups.
fn topics(list: &Value, extended: bool) -> String {
    let mut header = vec!["Kafka Topic", "Partitions", "Partition Replicas"];
    if extended {
        header.extend(["Consumers", "ConsumerGroups"]);
    }
    table(
        &header,
        items(list)
            .map(|t| {
                let replicas = t["replicaInfo"].as_array();
                let mut row = vec![
                    text(&t["name"]),
                    replicas.map_or(0, Vec::len).to_string(),
                    replicas
                        .and_then(|r| r.first())
                        .map_or_else(String::new, text),
                ];
                if extended {
                    row.extend([text(&t["consumerCount"]), text(&t["consumerGroupCount"])]);
                }
                row
            })
            .collect(),
    )
}

/// How the shell marks a header column: `(headers)`, or `(header('key'))`.
fn header_marker(field: &Value) -> String {
    match field["headerKey"].as_str() {
        Some(key) => format!("(header('{key}'))"),
        None => "(headers)".to_string(),
    }
}

fn source_description(d: &Value) -> String {
    let key_word = if text(&d["type"]) == "TABLE" {
        "(primary key)"
    } else {
        "(key)"
    };
    let fields = items(&d["fields"])
        .map(|f| {
            let mut ty = type_name(&f["schema"]);
            match f["type"].as_str() {
                Some("KEY") => ty = format!("{ty} {key_word}"),
                Some("HEADER") => ty = format!("{ty} {}", header_marker(f)),
                _ => {}
            }
            vec![text(&f["name"]), ty]
        })
        .collect();
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{label:<21}: {value}\n"));
    };
    line("Name", text(&d["name"]));
    if d["extended"].as_bool() == Some(true) {
        line("Type", text(&d["type"]));
        let timestamp = text(&d["timestamp"]);
        if !timestamp.is_empty() {
            line("Timestamp field", timestamp);
        }
        line("Key format", text(&d["keyFormat"]));
        line("Value format", text(&d["valueFormat"]));
        line(
            "Kafka topic",
            format!(
                "{} (partitions: {}, replication: {})",
                text(&d["topic"]),
                text(&d["partitions"]),
                text(&d["replication"])
            ),
        );
        line("Statement", text(&d["statement"]));
    }
    out.push_str(&table(&["Field", "Type"], fields));
    if d["extended"].as_bool() == Some(true) {
        for (title, key) in [
            ("Queries that read from this source", "readQueries"),
            ("Queries that write from this source", "writeQueries"),
        ] {
            let list: Vec<String> = items(&d[key])
                .map(|q| {
                    let progress = match (q.get("consumerLag"), q.get("processingErrors")) {
                        (Some(lag), Some(errors)) => format!(
                            " [lag {}, errors {}]",
                            progress_cell(lag),
                            progress_cell(errors)
                        ),
                        _ => String::new(),
                    };
                    format!(
                        "{} ({}){progress} : {}",
                        text(&q["id"]),
                        status(q),
                        text(&q["queryString"])
                    )
                })
                .collect();
            if !list.is_empty() {
                out.push_str(&format!("\n\n{title}\n{}\n", "-".repeat(title.len())));
                out.push_str(&list.join("\n"));
            }
        }
        // As ksqlDB's CLI: the server's own counts for the topic, then its errors.
        let title = "Local runtime statistics";
        out.push_str(&format!("\n\n{title}\n{}\n", "-".repeat(title.len())));
        for key in ["statistics", "errorStats"] {
            let stats = text(&d[key]);
            if !stats.trim().is_empty() {
                out.push_str(&format!("{stats}\n"));
            }
        }
        out.push_str(&format!(
            "(Statistics of the local KSQL server interaction with the Kafka topic {})",
            text(&d["topic"])
        ));
        out.push_str(&consumer_groups(&d["queryOffsetSummaries"]));
    } else {
        out.push_str(
            "\nFor runtime statistics and query details run: DESCRIBE <Stream,Table> EXTENDED;",
        );
    }
    out
}

fn query_description(d: &Value) -> String {
    let mut out = String::new();
    let mut line = |label: &str, value: String| {
        out.push_str(&format!("{label:<18}: {value}\n"));
    };
    line("ID", text(&d["id"]));
    line("Query Type", text(&d["queryType"]));
    line("SQL", text(&d["statementText"]));
    if let Some(state) = d["state"].as_str() {
        line("Status", state.to_string());
    }
    let fields = items(&d["fields"])
        .map(|f| {
            let mut ty = type_name(&f["schema"]);
            match f["type"].as_str() {
                Some("KEY") => ty.push_str(" (key)"),
                Some("HEADER") => ty = format!("{ty} {}", header_marker(f)),
                _ => {}
            }
            vec![text(&f["name"]), ty]
        })
        .collect();
    out.push_str(&table(&["Field", "Type"], fields));
    for (title, key) in [
        ("Sources that this query reads from", "sources"),
        ("Sinks that this query writes to", "sinks"),
    ] {
        let names = join(&d[key]);
        if !names.is_empty() {
            out.push_str(&format!("\n\n{title}: {names}"));
        }
    }
    let plan = text(&d["executionPlan"]);
    if !plan.trim().is_empty() {
        out.push_str(&format!("\n\nExecution plan\n--------------\n{plan}"));
    }
    out
}

/// `DESCRIBE FUNCTION`, laid out as ksqlDB's CLI lays it out.
fn describe_function(e: &Value) -> String {
    let name = text(&e["name"]);
    let mut out = format!(
        "Name        : {name}\nAuthor      : {}\nOverview    : {}\nType        : {}\nJar         : {}\nVariations  : ",
        text(&e["author"]),
        text(&e["description"]),
        text(&e["type"]),
        text(&e["path"]),
    );
    let variations: Vec<&Value> = items(&e["functions"]).collect();
    if variations.is_empty() {
        out.push_str("(the argument types of ksqlDB's reference)");
    }
    for v in variations {
        let arguments: Vec<String> = items(&v["arguments"])
            .map(|a| {
                let dots = if a["isVariadic"] == true { "..." } else { "" };
                format!("{} {}{dots}", text(&a["name"]), text(&a["type"]))
            })
            .collect();
        out.push_str(&format!(
            "\n\n\tVariation   : {name}({})",
            arguments.join(", ")
        ));
        let returns = text(&v["returnType"]);
        if !returns.is_empty() {
            out.push_str(&format!("\n\tReturns     : {returns}"));
        }
    }
    out
}

fn variables(e: &Value) -> String {
    table(
        &["Variable Name", "Value"],
        items(&e["variables"])
            .map(|v| vec![text(&v["name"]), text(&v["value"])])
            .collect(),
    )
}

fn properties(e: &Value) -> String {
    let overwritten: Vec<&str> = items(&e["overwrittenProperties"])
        .filter_map(Value::as_str)
        .collect();
    table(
        &["Property", "Scope", "Level", "Value"],
        items(&e["properties"])
            .map(|p| {
                let name = text(&p["name"]);
                let level = if overwritten.contains(&name.as_str()) {
                    "SESSION"
                } else {
                    "SERVER"
                };
                vec![name, text(&p["scope"]), level.into(), text(&p["value"])]
            })
            .collect(),
    )
}

/// ksqlDB's type names from a field schema: `VARCHAR(STRING)`, `ARRAY<INTEGER>`, ….
fn type_name(schema: &Value) -> String {
    let kind = text(&schema["type"]);
    match kind.as_str() {
        "STRING" => "VARCHAR(STRING)".into(),
        "ARRAY" => format!("ARRAY<{}>", type_name(&schema["memberSchema"])),
        "MAP" => format!("MAP<STRING, {}>", type_name(&schema["memberSchema"])),
        "STRUCT" => format!(
            "STRUCT<{}>",
            items(&schema["fields"])
                .map(|f| format!("{} {}", text(&f["name"]), type_name(&f["schema"])))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "DECIMAL" => {
            let p = &schema["parameters"];
            format!("DECIMAL({}, {})", text(&p["precision"]), text(&p["scale"]))
        }
        _ => kind,
    }
}

/// An ASCII table in ksqlDB's style.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(KSQL_STYLE).set_header(header.iter().copied());
    // On a terminal, wide tables wrap their cells to fit; into a file or pipe they don't.
    match terminal_width() {
        Some(width) => t
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width),
        None => t.set_content_arrangement(ContentArrangement::Disabled),
    };
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

/// ksqlDB's "Consumer Groups summary" of `DESCRIBE … EXTENDED`: per consumer group of the
/// queries that write the source, per input topic, each partition's offsets and lag.
fn consumer_groups(summaries: &Value) -> String {
    let mut out = String::new();
    for group in items(summaries) {
        if out.is_empty() {
            out.push_str("\n\nConsumer Groups summary:\n");
        }
        out.push_str(&format!(
            "\nConsumer Group       : {}\n",
            text(&group["groupId"])
        ));
        for topic in items(&group["topicSummaries"]) {
            let mut max_lag = 0;
            let rows: Vec<Vec<String>> = items(&topic["offsets"])
                .map(|p| {
                    let number = |k: &str| p[k].as_i64().unwrap_or(0);
                    let lag = (number("logEndOffset") - number("consumerOffset")).max(0);
                    max_lag = max_lag.max(lag);
                    vec![
                        number("partition").to_string(),
                        number("logStartOffset").to_string(),
                        number("logEndOffset").to_string(),
                        number("consumerOffset").to_string(),
                        lag.to_string(),
                    ]
                })
                .collect();
            out.push_str(&format!(
                "\nKafka topic          : {}\nMax lag              : {max_lag}\n\n",
                text(&topic["kafkaTopic"])
            ));
            out.push_str(&table(
                &["Partition", "Start Offset", "End Offset", "Offset", "Lag"],
                rows,
            ));
            out.push('\n');
        }
    }
    out
}

/// A statement on one line, for a table cell.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn join(v: &Value) -> String {
    items(v).map(text).collect::<Vec<_>>().join(", ")
}

/// A value as shown in a cell: strings bare, everything else as JSON.
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The width of the terminal stdout writes to, if it is one and its width is known.
pub fn terminal_width() -> Option<u16> {
    // A pseudo-terminal nobody sized reports 0 columns.
    Table::new().width().filter(|&w| w >= 20)
}

/// Prints a query's rows as they arrive, in columns of a fixed width (wrapping long values),
/// framed like ksqlDB's CLI frames them.
pub struct RowPrinter {
    widths: Vec<usize>,
}

impl RowPrinter {
    /// A printer for `columns` on a terminal `terminal_width` characters wide.
    pub fn new(columns: usize, terminal_width: usize) -> RowPrinter {
        let columns = columns.max(1);
        let width = (terminal_width.saturating_sub(columns + 1) / columns).max(8);
        RowPrinter {
            widths: vec![width; columns],
        }
    }

    /// The border line.
    pub fn border(&self) -> String {
        let mut s = String::from("+");
        for w in &self.widths {
            s.push_str(&"-".repeat(*w));
            s.push('+');
        }
        s
    }

    /// The header: border, names, border.
    pub fn header(&self, names: &[String]) -> String {
        let cells: Vec<String> = names.to_vec();
        format!(
            "{}\n{}\n{}",
            self.border(),
            self.line(&cells),
            self.border()
        )
    }

    /// One row; cells too long for their column wrap onto more lines.
    pub fn row(&self, values: &[Value]) -> String {
        let cells: Vec<String> = values
            .iter()
            .map(|v| match v {
                Value::Null => "null".into(),
                other => text(other),
            })
            .collect();
        self.line(&cells)
    }

    fn line(&self, cells: &[String]) -> String {
        let chunks: Vec<Vec<String>> = self
            .widths
            .iter()
            .enumerate()
            .map(|(i, &w)| wrap(cells.get(i).map_or("", String::as_str), w))
            .collect();
        let height = chunks.iter().map(Vec::len).max().unwrap_or(1);
        let mut lines = Vec::with_capacity(height);
        for l in 0..height {
            let mut s = String::from("|");
            for (i, &w) in self.widths.iter().enumerate() {
                let cell = chunks[i].get(l).map_or("", String::as_str);
                s.push_str(&format!("{cell:<w$}|"));
            }
            lines.push(s);
        }
        lines.join("\n")
    }
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let s = s.replace(['\n', '\r'], " ");
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars.chunks(width).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn show_streams_is_a_table() {
        let out = entity(&json!({
            "@type": "streams", "statementText": "SHOW STREAMS;", "warnings": [],
            "streams": [{"type": "STREAM", "name": "REVIEWS", "topic": "reviews",
                         "keyFormat": "KAFKA", "valueFormat": "JSON", "isWindowed": false}]
        }));
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            vec![
                " Stream Name | Kafka Topic | Key Format | Value Format | Windowed",
                "------------------------------------------------------------------",
                " REVIEWS     | reviews     | KAFKA      | JSON         | false",
                "------------------------------------------------------------------",
            ],
            "{out}"
        );
    }

    #[test]
    fn show_queries_shows_lag_and_errors_when_the_server_reports_them() {
        let query = |lag: Option<i64>| {
            let mut q = json!({"id": "CSAS_A_1", "queryType": "PERSISTENT", "state": "RUNNING",
                "statusCount": {"RUNNING": 1}, "sinks": ["A"], "sinkKafkaTopics": ["a"],
                "queryString": "CREATE STREAM a AS SELECT * FROM s"});
            if let Some(lag) = lag {
                q["consumerLag"] = json!(lag);
                q["processingErrors"] = json!(2);
            }
            q
        };
        let out = entity(&json!({"@type": "queries", "queries": [query(Some(7))]}));
        let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
        assert!(
            lines[0].contains("| Sink Kafka Topic | Lag | Errors | Query String"),
            "{out}"
        );
        assert!(
            lines[2].contains("| a                | 7   | 2      | CREATE"),
            "{out}"
        );
        // ksqlDB's servers send neither: the columns are left out.
        let out = entity(&json!({"@type": "queries", "queries": [query(None)]}));
        assert!(!out.contains("Lag"), "{out}");
    }

    #[test]
    fn status_and_description() {
        let out = entity(&json!({"@type": "currentStatus",
            "commandStatus": {"status": "SUCCESS", "message": "Stream created"}}));
        assert!(out.contains(" Stream created"), "{out}");
        let out = entity(&json!({"@type": "sourceDescription", "sourceDescription": {
        "name": "USERS", "type": "TABLE", "extended": false,
        "fields": [
            {"name": "ID", "type": "KEY", "schema": {"type": "INTEGER"}},
            {"name": "NAME", "schema": {"type": "STRING"}},
            {"name": "TAGS", "schema": {"type": "ARRAY", "memberSchema": {"type": "STRING"}}}
        ]}}));
        assert!(out.contains("Name                 : USERS"), "{out}");
        assert!(out.contains(" ID    | INTEGER (primary key)"), "{out}");
        assert!(out.contains(" TAGS  | ARRAY<VARCHAR(STRING)>"), "{out}");
        let out = entity(&json!({"@type": "sourceDescription", "sourceDescription": {
        "name": "USERS", "type": "TABLE", "extended": true, "topic": "users",
        "statistics": "consumer-total-messages:         2", "errorStats": "",
        "fields": [{"name": "ID", "type": "KEY", "schema": {"type": "INTEGER"}}]}}));
        assert!(
            out.contains(
                "Local runtime statistics\n------------------------\n\
                 consumer-total-messages:         2\n\
                 (Statistics of the local KSQL server interaction with the Kafka topic users)"
            ),
            "{out}"
        );
        let out = entity(&json!({"@type": "sourceDescription", "sourceDescription": {
        "name": "BIG", "type": "STREAM", "extended": true, "topic": "BIG",
        "statistics": "", "errorStats": "", "fields": [],
        "queryOffsetSummaries": [{"groupId": "_eddy_x_query_CSAS_BIG_1", "topicSummaries": [
            {"kafkaTopic": "orders", "offsets": [
                {"partition": 0, "logStartOffset": 0, "logEndOffset": 10, "consumerOffset": 7},
                {"partition": 1, "logStartOffset": 2, "logEndOffset": 5, "consumerOffset": 5}]}]}]}}));
        assert!(out.contains("Consumer Groups summary:"), "{out}");
        assert!(
            out.contains("Consumer Group       : _eddy_x_query_CSAS_BIG_1"),
            "{out}"
        );
        assert!(
            out.contains("Kafka topic          : orders\nMax lag              : 3"),
            "{out}"
        );
        assert!(
            out.contains(" 0         | 0            | 10         | 7      | 3"),
            "{out}"
        );
    }

    #[test]
    fn rows_have_fixed_columns_and_wrap() {
        let p = RowPrinter::new(2, 21);
        assert_eq!(p.border(), "+---------+---------+");
        assert_eq!(
            p.header(&["ID".into(), "NAME".into()]),
            "+---------+---------+\n|ID       |NAME     |\n+---------+---------+"
        );
        assert_eq!(
            p.row(&[json!(1), json!("abcdefghijk")]),
            "|1        |abcdefghi|\n|         |jk       |"
        );
        assert_eq!(
            p.row(&[Value::Null, json!({"a": 1})]),
            "|null     |{\"a\":1}  |"
        );
    }
}

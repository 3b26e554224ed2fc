//! What DataFusion's SQL planner sees: Eddy's catalog as tables, and the function library
//! (DataFusion's functions plus ksqlDB's names for them).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_common::config::ConfigOptions;
use datafusion_common::{DataFusionError, Result, TableReference, plan_err};
use datafusion_expr::logical_plan::builder::LogicalTableSource;
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};

use crate::catalog::{Catalog, Source};

/// `ROWTIME`: the record's timestamp in milliseconds.
pub const ROWTIME: &str = "ROWTIME";
/// `ROWPARTITION`: the partition the record was read from.
pub const ROWPARTITION: &str = "ROWPARTITION";
/// `ROWOFFSET`: the record's offset in its partition.
pub const ROWOFFSET: &str = "ROWOFFSET";
/// `WINDOWSTART` of a windowed source.
pub const WINDOWSTART: &str = "WINDOWSTART";
/// `WINDOWEND` of a windowed source.
pub const WINDOWEND: &str = "WINDOWEND";

/// Whether a column name is one of the pseudo columns every source has.
pub fn is_pseudo_column(name: &str) -> bool {
    matches!(
        name,
        ROWTIME | ROWPARTITION | ROWOFFSET | WINDOWSTART | WINDOWEND
    )
}

/// The columns a scan of `source` produces, in order: key columns, value columns, header
/// columns, `ROWTIME`,
/// `ROWPARTITION`, `ROWOFFSET`, and for windowed sources `WINDOWSTART`, `WINDOWEND`.
/// The engine builds its input batches in exactly this layout.
pub fn scan_schema(source: &Source) -> SchemaRef {
    let mut fields: Vec<Field> = source
        .scan_columns()
        .map(|c| Field::new(&c.name, c.ty.to_arrow(), true))
        .collect();
    fields.push(Field::new(ROWTIME, DataType::Int64, true));
    fields.push(Field::new(ROWPARTITION, DataType::Int32, true));
    fields.push(Field::new(ROWOFFSET, DataType::Int64, true));
    if source.window.is_some() {
        fields.push(Field::new(WINDOWSTART, DataType::Int64, true));
        fields.push(Field::new(WINDOWEND, DataType::Int64, true));
    }
    Arc::new(Schema::new(fields))
}

/// The function library: every DataFusion function under its own names and aliases, plus
/// ksqlDB's names, looked up case-insensitively.
pub struct Functions {
    scalar: HashMap<String, Arc<ScalarUDF>>,
    aggregate: HashMap<String, Arc<AggregateUDF>>,
    higher_order: HashMap<String, Arc<HigherOrderUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
}

/// ksqlDB function names that are DataFusion functions under another name.
const KSQL_ALIASES: &[(&str, &str)] = &[
    ("ucase", "upper"),
    ("lcase", "lower"),
    ("len", "character_length"),
    ("ifnull", "coalesce"),
    ("concat_ws", "concat_ws"),
    ("ln", "ln"),
    ("random", "random"),
];

impl Functions {
    /// The shared library, built once.
    pub fn get() -> &'static Functions {
        static FUNCTIONS: OnceLock<Functions> = OnceLock::new();
        FUNCTIONS.get_or_init(Functions::build)
    }

    fn build() -> Functions {
        let mut scalar = HashMap::new();
        for f in datafusion_functions::all_default_functions()
            .into_iter()
            .chain(datafusion_functions_nested::all_default_nested_functions())
        {
            for name in std::iter::once(f.name()).chain(f.aliases().iter().map(String::as_str)) {
                scalar.insert(name.to_ascii_lowercase(), Arc::clone(&f));
            }
        }
        // ksqlDB's aggregates only: their result types are ksqlDB's, not DataFusion's.
        for f in super::functions::all()
            .into_iter()
            .chain([super::cast::function()])
        {
            scalar.insert(f.name().to_ascii_lowercase(), f);
        }
        let mut aggregate = HashMap::new();
        for f in super::aggregate::ksql_aggregates() {
            aggregate.insert(f.name().to_ascii_lowercase(), f);
        }
        let mut higher_order = HashMap::new();
        for f in datafusion_functions_nested::all_default_higher_order_functions() {
            higher_order.insert(f.name().to_ascii_lowercase(), f);
        }
        // ksqlDB's TRANSFORM, FILTER and REDUCE; over arrays the first two are DataFusion's.
        let array_transform = higher_order.get("array_transform").cloned();
        let array_filter = higher_order.get("array_filter").cloned();
        for f in super::functions::lambda_functions(array_transform, array_filter) {
            higher_order.insert(f.name().to_ascii_lowercase(), f);
        }
        // ksqlDB's meaning wins over a DataFusion alias of the same name (IFNULL is
        // COALESCE, whose types unify like ksqlDB's, not NVL).
        for (ksql, df) in KSQL_ALIASES {
            if let Some(f) = scalar.get(*df).cloned() {
                scalar.insert((*ksql).to_string(), f);
            }
        }
        // Only ksqlDB's functions (and Eddy's internal ones) are resolved by name.
        scalar.retain(|name, _| {
            super::library::is_ksql_scalar(name)
                || super::INTERNAL_FUNCTIONS.contains(&name.as_str())
        });
        higher_order.retain(|name, _| super::library::is_ksql_scalar(name));
        let planners: Vec<Arc<dyn ExprPlanner>> = vec![
            Arc::new(super::rewrites::StringPlus),
            Arc::new(super::functions::SubstringPlanner),
            Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
            Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
            Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            Arc::new(datafusion_functions_aggregate::planner::AggregateFunctionPlanner),
            Arc::new(datafusion_functions::unicode::planner::UnicodeFunctionPlanner),
            Arc::new(datafusion_functions::datetime::planner::DatetimeFunctionPlanner),
        ];
        Functions {
            scalar,
            aggregate,
            higher_order,
            planners,
        }
    }

    /// A scalar function by name, case-insensitively.
    pub fn scalar(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.scalar.get(&name.to_ascii_lowercase()).cloned()
    }

    /// A higher-order (lambda) function by name, case-insensitively.
    pub fn higher_order(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        self.higher_order.get(&name.to_ascii_lowercase()).cloned()
    }

    /// An aggregate function by name, case-insensitively.
    pub fn aggregate(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        self.aggregate.get(&name.to_ascii_lowercase()).cloned()
    }
}

/// Eddy's catalog seen through DataFusion's `ContextProvider`.
pub(crate) struct CatalogProvider<'a> {
    catalog: &'a Catalog,
    options: ConfigOptions,
}

impl<'a> CatalogProvider<'a> {
    pub(crate) fn new(catalog: &'a Catalog) -> Self {
        let mut options = ConfigOptions::default();
        options.sql_parser.enable_ident_normalization = false;
        options.sql_parser.map_string_types_to_utf8view = false;
        Self { catalog, options }
    }
}

impl ContextProvider for CatalogProvider<'_> {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        match self.catalog.get(name.table()) {
            Some(source) => Ok(Arc::new(LogicalTableSource::new(scan_schema(source)))),
            None => plan_err!("{} does not exist.", name.table()),
        }
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        Functions::get().scalar(name)
    }

    fn get_higher_order_meta(&self, name: &str) -> Option<Arc<HigherOrderUDF>> {
        Functions::get()
            .higher_order
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    fn get_aggregate_meta(&self, name: &str) -> Option<Arc<AggregateUDF>> {
        Functions::get().aggregate(name)
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &Functions::get().planners
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        Functions::get().scalar.keys().cloned().collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Functions::get().higher_order.keys().cloned().collect()
    }

    fn udaf_names(&self) -> Vec<String> {
        Functions::get().aggregate.keys().cloned().collect()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Turns a DataFusion planning error into the message a ksqlDB user expects.
pub(crate) fn describe_plan_error(e: DataFusionError) -> String {
    let text = e.strip_backtrace();
    // "Schema error: No field named X.\nValid fields are …" → ksqlDB's wording.
    if let Some(name) = super::checks::unresolved_name(&e) {
        return format!("Column '{name}' cannot be resolved.");
    }
    // `SELECT *` in an aggregation with columns that are not grouped → ksqlDB's wording.
    if let Some(rest) = text.split("While expanding wildcard, column \"").nth(1)
        && let Some((column, _)) = rest.split_once('"')
    {
        let name = column.rsplit('.').next().unwrap_or(column);
        return format!(
            "Non-aggregate SELECT expression(s) not part of GROUP BY: {name}\nEither add the column(s) to the GROUP BY or remove them from the SELECT."
        );
    }
    // "Invalid function 'f'.\nDid you mean 'g'?" → ksqlDB's wording.
    if let Some(rest) = text.split("Invalid function '").nth(1)
        && let Some((name, _)) = rest.split_once('\'')
    {
        return format!(
            "Can't find any functions with the name '{}'",
            name.to_ascii_uppercase()
        );
    }
    // A literal that does not convert to the type its context needs.
    if let Some(rest) = text.split("Cannot cast string '").nth(1)
        && let Some((value, rest)) = rest.split_once("' to value of ")
        && let Some(arrow_type) = rest.split_whitespace().next()
    {
        let sql_type = match arrow_type {
            "Int32" => "INTEGER",
            "Int64" => "BIGINT",
            "Float64" => "DOUBLE",
            "Boolean" => "BOOLEAN",
            other => other,
        };
        return format!("invalid input syntax for type {sql_type}: \"{value}\".");
    }
    // "No function matches the given name and argument types 'coalesce()'" → ksqlDB's words.
    if let Some(rest) = text
        .split("No function matches the given name and argument types '")
        .nth(1)
        && let Some((name, args)) = rest.split_once('(')
    {
        let args = args.rsplit_once(")'").map_or(args, |(args, _)| args);
        return format!(
            "Function '{}' does not accept parameters ({}).",
            name.to_ascii_uppercase(),
            sql_type_names(args)
        );
    }
    text.trim_start_matches("Error during planning: ")
        .to_string()
}

/// DataFusion's names of argument types (`Int32, Decimal128(2, 1)`) as ksqlDB names them in
/// messages (`INTEGER, DECIMAL(2, 1)`).
fn sql_type_names(arrow_names: &str) -> String {
    let mut names = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in arrow_names.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                names.push(&arrow_names[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    names.push(&arrow_names[start..]);
    let sql = |name: &str| -> String {
        let name = name.trim();
        let (head, inner) = match name.split_once('(') {
            Some((head, rest)) => (head, rest.strip_suffix(')').unwrap_or(rest)),
            None => (name, ""),
        };
        match head {
            "Int8" | "Int16" | "Int32" => "INTEGER".into(),
            "Int64" => "BIGINT".into(),
            "Float32" | "Float64" => "DOUBLE".into(),
            "Utf8" | "LargeUtf8" | "Utf8View" => "STRING".into(),
            "Boolean" => "BOOLEAN".into(),
            "Binary" | "LargeBinary" | "BinaryView" => "BYTES".into(),
            "Date32" => "DATE".into(),
            "Time32" | "Time64" => "TIME".into(),
            "Timestamp" => "TIMESTAMP".into(),
            "Decimal128" => format!("DECIMAL({inner})"),
            "Null" => "NULL".into(),
            _ => name.to_string(),
        }
    };
    names
        .into_iter()
        .filter(|n| !n.trim().is_empty())
        .map(sql)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ksqlDB functions Eddy runs with DataFusion's implementation. Each was checked
    /// against ksqlDB's semantics (result type, rounding, nulls, errors) in
    /// `tests/sql/audited-functions.json` and the other spec files of `tests/sql/`; those
    /// that differed have Eddy's own implementation. A name that starts resolving to
    /// DataFusion must be checked and added here, so none slips in unaudited.
    const AUDITED_DATAFUSION_FUNCTIONS: &[&str] = &[
        "ABS",
        "ACOS",
        "ARRAY_CONCAT",
        "ARRAY_DISTINCT",
        "ARRAY_EXCEPT",
        "ARRAY_INTERSECT",
        "ARRAY_MAX",
        "ARRAY_MIN",
        "ARRAY_UNION",
        "ASIN",
        "ATAN",
        "ATAN2",
        "CBRT",
        "COALESCE",
        "CONCAT",
        "CONCAT_WS",
        "COS",
        "COSH",
        "COT",
        "DEGREES",
        "EXP",
        "IFNULL",
        "LCASE",
        "LEN",
        "MAP_KEYS",
        "MAP_VALUES",
        "NULLIF",
        "PI",
        "POWER",
        "RADIANS",
        "RANDOM",
        "SIN",
        "SINH",
        "TAN",
        "TANH",
        "UCASE",
    ];

    /// `SHOW FUNCTIONS` lists the library's names: every function a statement can call is
    /// among them, and every one listed can be called.
    #[test]
    fn the_functions_listed_are_the_functions_accepted() {
        use super::super::library::{AGGREGATE_FUNCTIONS, SCALAR_FUNCTIONS, SYNTAX};
        let functions = Functions::get();
        let listed = |name: &str| {
            SCALAR_FUNCTIONS
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        for name in functions.scalar.keys().chain(functions.higher_order.keys()) {
            assert!(
                listed(name) || super::super::INTERNAL_FUNCTIONS.contains(&name.as_str()),
                "{name} is accepted but not listed"
            );
        }
        for name in functions.aggregate.keys() {
            assert!(
                AGGREGATE_FUNCTIONS
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(name)),
                "aggregate {name} is accepted but not listed"
            );
        }
        for (name, _) in SCALAR_FUNCTIONS.iter().filter(|(n, _)| !SYNTAX.contains(n)) {
            assert!(
                functions.scalar(name).is_some() || functions.higher_order(name).is_some(),
                "{name} is listed but not accepted"
            );
        }
        for name in AGGREGATE_FUNCTIONS {
            assert!(
                functions.aggregate(name).is_some(),
                "aggregate {name} is listed but not accepted"
            );
        }
    }

    #[test]
    fn ksql_names_run_by_datafusion_are_the_audited_ones() {
        let datafusion: Vec<Arc<ScalarUDF>> = datafusion_functions::all_default_functions()
            .into_iter()
            .chain(datafusion_functions_nested::all_default_nested_functions())
            .collect();
        let mut backed: Vec<String> = super::super::library::SCALAR_FUNCTIONS
            .iter()
            .filter_map(|(name, _)| {
                let f = Functions::get().scalar(name)?;
                datafusion
                    .iter()
                    .any(|d| Arc::ptr_eq(d, &f))
                    .then(|| name.to_string())
            })
            .collect();
        backed.sort();
        assert_eq!(backed, AUDITED_DATAFUSION_FUNCTIONS);
    }
}

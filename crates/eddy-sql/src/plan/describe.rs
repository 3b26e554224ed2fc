//! `DESCRIBE FUNCTION`: a function of the library ([`super::library`]) with its kind,
//! ksqlDB's category, an overview and the variations it accepts: those of ksqlDB's function
//! reference ([`super::signatures`]), else the argument types its implementation declares.

use arrow::datatypes::DataType;
use datafusion_expr::TypeSignature;

use super::library::{AGGREGATE_FUNCTIONS, Category, SCALAR_FUNCTIONS, SYNTAX, TABLE_FUNCTIONS};
use super::provider::Functions;
use super::signatures::signatures;
use crate::types::SqlType;

/// A function as `DESCRIBE FUNCTION` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionDescription {
    /// Its name, upper-cased.
    pub name: String,
    /// `SCALAR`, `AGGREGATE` or `TABLE`.
    pub kind: &'static str,
    /// ksqlDB's category (`STRING`, `DATE / TIME`, …).
    pub category: &'static str,
    /// What it does, where its implementation documents it.
    pub description: String,
    /// The argument types it accepts, one entry per combination.
    pub variations: Vec<Variation>,
}

/// One combination of argument types a function accepts.
#[derive(Debug, Clone, PartialEq)]
pub struct Variation {
    /// The arguments: each one's name and type, ksqlDB's names (`VARCHAR`, `INTEGER`, …).
    pub arguments: Vec<(String, String)>,
    /// Whether the last argument repeats any number of times.
    pub variadic: bool,
    /// The result's type, where it follows from the arguments alone.
    pub return_type: Option<String>,
}

/// The description of function `name` (any case), if Eddy has it.
pub fn describe_function(name: &str) -> Option<FunctionDescription> {
    let mut description = implemented(name)?;
    if let Some((overview, variations)) = signatures(&description.name) {
        description.description = overview.to_string();
        description.variations = variations
            .iter()
            .map(|v| Variation {
                arguments: v
                    .arguments
                    .iter()
                    .map(|(n, t)| (n.to_string(), t.to_string()))
                    .collect(),
                variadic: v.variadic,
                return_type: Some(v.returns.to_string()),
            })
            .collect();
    }
    Some(description)
}

/// Function `name` as Eddy implements it (its declared argument types), if it does.
fn implemented(name: &str) -> Option<FunctionDescription> {
    let upper = name.to_ascii_uppercase();
    let functions = Functions::get();
    if let Some((_, category)) = SCALAR_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == upper && !SYNTAX.contains(n))
    {
        if let Some(udf) = functions.scalar(&upper) {
            let variations = variations(udf.signature().type_signature.clone())
                .into_iter()
                .map(|(arguments, variadic)| Variation {
                    return_type: (!variadic)
                        .then(|| udf.return_type(&arguments).ok())
                        .flatten()
                        .map(|t| type_name(&t)),
                    arguments: arguments
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (format!("arg{}", i + 1), type_name(t)))
                        .collect(),
                    variadic,
                })
                .collect();
            let description = udf
                .documentation()
                .map(|d| d.description.clone())
                .unwrap_or_else(|| generic(*category));
            return Some(FunctionDescription {
                name: upper,
                kind: "SCALAR",
                category: category.name(),
                description,
                variations,
            });
        }
        if functions.higher_order(&upper).is_some() {
            return Some(FunctionDescription {
                name: upper,
                kind: "SCALAR",
                category: category.name(),
                description: generic(*category),
                variations: Vec::new(),
            });
        }
        return None;
    }
    let (kind, category) = if AGGREGATE_FUNCTIONS.contains(&upper.as_str()) {
        functions.aggregate(&upper)?;
        ("AGGREGATE", Category::Aggregate)
    } else if TABLE_FUNCTIONS.contains(&upper.as_str()) {
        ("TABLE", Category::Table)
    } else {
        return None;
    };
    Some(FunctionDescription {
        name: upper,
        kind,
        category: category.name(),
        description: generic(category),
        variations: Vec::new(),
    })
}

/// What a function without documentation of its own is described as.
fn generic(category: Category) -> String {
    format!(
        "A function of ksqlDB's {} category; its reference documents its arguments.",
        category.name()
    )
}

/// The argument type combinations of a signature, each with whether it is variadic.
fn variations(signature: TypeSignature) -> Vec<(Vec<DataType>, bool)> {
    match signature {
        TypeSignature::Exact(types) => vec![(types, false)],
        TypeSignature::OneOf(signatures) => signatures.into_iter().flat_map(variations).collect(),
        TypeSignature::Uniform(n, types) => {
            types.into_iter().map(|t| (vec![t; n], false)).collect()
        }
        TypeSignature::Variadic(types) => types.into_iter().map(|t| (vec![t], true)).collect(),
        TypeSignature::Nullary => vec![(Vec::new(), false)],
        // Checked by the function itself: no fixed list to show.
        _ => Vec::new(),
    }
}

/// A type as ksqlDB names it, DataFusion's name for those it has none for.
fn type_name(t: &DataType) -> String {
    SqlType::from_arrow(t).map_or_else(|| t.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_functions_show_their_category_and_variations() {
        let d = describe_function("abs").expect("ABS is a function");
        assert_eq!((d.kind, d.category), ("SCALAR", "MATHEMATICAL"));
        assert_eq!(d.name, "ABS");
        let all = describe_function("CONCAT").expect("CONCAT is a function");
        assert_eq!(all.category, "STRING");
        let substring = describe_function("substring").expect("SUBSTRING");
        assert!(substring.variations.len() >= 2, "{substring:?}");
        assert_eq!(
            substring.variations[0].arguments[0].1, "VARCHAR",
            "{substring:?}"
        );
        assert!(
            describe_function("ARRAY").is_none(),
            "syntax, not a function"
        );
        assert!(describe_function("NO_SUCH_FUNCTION").is_none());
    }

    #[test]
    fn aggregate_and_table_functions_are_described() {
        let count = describe_function("count").expect("COUNT");
        assert_eq!((count.kind, count.category), ("AGGREGATE", "AGGREGATE"));
        let explode = describe_function("EXPLODE").expect("EXPLODE");
        assert_eq!((explode.kind, explode.category), ("TABLE", "TABLE"));
    }

    #[test]
    fn exact_signatures_become_variations_with_return_types() {
        let v = variations(TypeSignature::OneOf(vec![
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Int32]),
            TypeSignature::Variadic(vec![DataType::Utf8]),
            TypeSignature::UserDefined,
        ]));
        assert_eq!(
            v,
            vec![
                (vec![DataType::Utf8, DataType::Int32], false),
                (vec![DataType::Utf8], true)
            ]
        );
        assert_eq!(type_name(&DataType::Utf8), "STRING");
    }
}

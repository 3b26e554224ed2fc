//! An Avro schema resolved into a tree without references: what the decoder and the encoder
//! walk. Built once per schema id.

use std::collections::HashMap;
use std::sync::Arc;

use apache_avro::Schema;
use apache_avro::schema::{Name, ResolvedSchema};

/// A resolved Avro type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    /// `string`, also `uuid`.
    String,
    Fixed(usize),
    /// The symbols, by index.
    Enum(Arc<[String]>),
    /// `decimal` on `bytes` (`fixed: None`) or on `fixed` of that size.
    Decimal {
        precision: u8,
        scale: i8,
        fixed: Option<usize>,
    },
    /// `date`: days since the epoch, an `int`.
    Date,
    /// `time-millis`, an `int`.
    TimeMillis,
    /// `time-micros`, a `long`.
    TimeMicros,
    /// `timestamp-millis` (and `local-…`), a `long`.
    TimestampMillis,
    /// `timestamp-micros` (and `local-…`), a `long`.
    TimestampMicros,
    /// `timestamp-nanos` (and `local-…`), a `long`.
    TimestampNanos,
    Array(Box<Node>),
    /// A map with `string` keys.
    Map(Box<Node>),
    Union(Vec<Node>),
    Record(Arc<Record>),
}

/// A record type.
#[derive(Debug, PartialEq)]
pub(crate) struct Record {
    /// Its full name.
    pub(crate) name: String,
    pub(crate) fields: Vec<RecordField>,
}

/// A field of a record type.
#[derive(Debug, PartialEq)]
pub(crate) struct RecordField {
    pub(crate) name: String,
    pub(crate) node: Node,
    /// The field's default, as the schema writes it in JSON.
    pub(crate) default: Option<serde_json::Value>,
}

impl Node {
    /// The node with a nullable union `["null", T]` (either order) taken apart: `T`.
    pub(crate) fn non_null(&self) -> &Node {
        match self {
            Node::Union(branches) if branches.len() == 2 => match (&branches[0], &branches[1]) {
                (Node::Null, other) | (other, Node::Null) => other,
                _ => self,
            },
            _ => self,
        }
    }
}

/// The first of `columns` that the Avro field `name` fills, exactly or else ignoring case,
/// among those not `taken` yet (ksqlDB's field matching).
pub(crate) fn match_column(
    columns: &arrow::datatypes::Fields,
    name: &str,
    taken: &[bool],
) -> Option<usize> {
    let free = |i: &usize| !taken[*i];
    (0..columns.len())
        .filter(free)
        .find(|&i| columns[i].name() == name)
        .or_else(|| {
            let upper = name.to_uppercase();
            (0..columns.len())
                .filter(free)
                .find(|&i| columns[i].name().to_uppercase() == upper)
        })
}

/// Parses and resolves an Avro schema's JSON text. Refuses recursive schemas, as ksqlDB does.
pub(crate) fn parse(text: &str) -> Result<(Schema, Node), String> {
    let schema = Schema::parse_str(text).map_err(|e| format!("Invalid Avro schema: {e}"))?;
    let node = resolve(&schema)?;
    Ok((schema, node))
}

/// Resolves a parsed schema.
pub(crate) fn resolve(schema: &Schema) -> Result<Node, String> {
    let resolved =
        ResolvedSchema::try_from(schema).map_err(|e| format!("Invalid Avro schema: {e}"))?;
    let names: HashMap<Name, &Schema> = resolved
        .get_names()
        .iter()
        .map(|(n, s)| (n.clone(), *s))
        .collect();
    let mut building = Vec::new();
    node(schema, &names, &mut building)
}

fn node(
    schema: &Schema,
    names: &HashMap<Name, &Schema>,
    building: &mut Vec<String>,
) -> Result<Node, String> {
    Ok(match schema {
        Schema::Null => Node::Null,
        Schema::Boolean => Node::Boolean,
        Schema::Int => Node::Int,
        Schema::Long => Node::Long,
        Schema::Float => Node::Float,
        Schema::Double => Node::Double,
        Schema::Bytes | Schema::BigDecimal => Node::Bytes,
        Schema::String | Schema::Uuid => Node::String,
        Schema::Fixed(f) => Node::Fixed(f.size),
        Schema::Duration => Node::Fixed(12),
        Schema::Enum(e) => Node::Enum(e.symbols.clone().into()),
        Schema::Decimal(d) => Node::Decimal {
            precision: u8::try_from(d.precision).unwrap_or(u8::MAX),
            scale: i8::try_from(d.scale)
                .map_err(|_| format!("decimal scale {} is too large", d.scale))?,
            fixed: match d.inner.as_ref() {
                Schema::Fixed(f) => Some(f.size),
                _ => None,
            },
        },
        Schema::Date => Node::Date,
        Schema::TimeMillis => Node::TimeMillis,
        Schema::TimeMicros => Node::TimeMicros,
        Schema::TimestampMillis | Schema::LocalTimestampMillis => Node::TimestampMillis,
        Schema::TimestampMicros | Schema::LocalTimestampMicros => Node::TimestampMicros,
        Schema::TimestampNanos | Schema::LocalTimestampNanos => Node::TimestampNanos,
        Schema::Array(a) => Node::Array(Box::new(node(&a.items, names, building)?)),
        Schema::Map(m) => Node::Map(Box::new(node(&m.types, names, building)?)),
        Schema::Union(u) => Node::Union(
            u.variants()
                .iter()
                .map(|v| node(v, names, building))
                .collect::<Result<_, _>>()?,
        ),
        Schema::Record(r) => {
            let full = r.name.fullname(None);
            if building.contains(&full) {
                return Err(format!(
                    "Recursive Avro schemas are not supported (record {full} contains itself)"
                ));
            }
            building.push(full.clone());
            let fields = r
                .fields
                .iter()
                .map(|f| {
                    Ok(RecordField {
                        name: f.name.clone(),
                        node: node(&f.schema, names, building)?,
                        default: f.default.clone(),
                    })
                })
                .collect::<Result<Vec<_>, String>>();
            building.pop();
            Node::Record(Arc::new(Record {
                name: full,
                fields: fields?,
            }))
        }
        Schema::Ref { name } => {
            let target = names
                .get(name)
                .or_else(|| {
                    names
                        .iter()
                        .find(|(n, _)| n.name == name.name)
                        .map(|(_, s)| s)
                })
                .ok_or_else(|| format!("Unknown Avro type {}", name.fullname(None)))?;
            node(target, names, building)?
        }
    })
}

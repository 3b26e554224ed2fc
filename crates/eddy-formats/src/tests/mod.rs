//! Tests of the public API, one module per format.

mod delimited;
mod json;
mod kafka;
mod none;
mod protobuf;

use std::sync::Arc;

use arrow::array::BooleanArray;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use eddy_topic::Payloads;

use crate::{Decoded, Format, FormatError, KeyDecoder, KeyEncoder, ValueDecoder, ValueEncoder};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn schema(columns: &[(&str, DataType)]) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, dt)| Field::new(*name, dt.clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", item, true)))
}

fn map_of(key: DataType, value: DataType) -> DataType {
    let entries = Fields::from(vec![
        Field::new("key", key, false),
        Field::new("value", value, true),
    ]);
    DataType::Map(
        Arc::new(Field::new("entries", DataType::Struct(entries), false)),
        false,
    )
}

fn struct_of(columns: &[(&str, DataType)]) -> DataType {
    DataType::Struct(schema(columns).fields().clone())
}

fn payloads<B: AsRef<[u8]>>(items: &[Option<B>]) -> Payloads {
    let mut p = Payloads::new();
    for item in items {
        p.push(item.as_ref().map(AsRef::as_ref));
    }
    p
}

fn texts(p: &Payloads) -> Vec<Option<String>> {
    p.iter()
        .map(|e| e.map(|b| String::from_utf8_lossy(b).into_owned()))
        .collect()
}

fn decode_values(
    format: Format,
    schema: &SchemaRef,
    wrap: bool,
    items: &[Option<&str>],
) -> Result<Decoded, FormatError> {
    ValueDecoder::new(&format, schema.clone(), wrap)?.decode(&payloads(items))
}

fn encode_values(
    format: Format,
    schema: &SchemaRef,
    wrap: bool,
    batch: &RecordBatch,
    tombstones: Option<&BooleanArray>,
) -> Result<Vec<Option<String>>, FormatError> {
    let mut out = Payloads::new();
    ValueEncoder::new(&format, schema.clone(), wrap)?.encode(batch, tombstones, &mut out)?;
    Ok(texts(&out))
}

/// Decodes `items` and encodes the batch again in the same format.
fn reencode(
    format: Format,
    schema: &SchemaRef,
    wrap: bool,
    items: &[Option<&str>],
) -> Result<(Vec<Option<String>>, Decoded), FormatError> {
    let decoded = decode_values(format.clone(), schema, wrap, items)?;
    let out = encode_values(format, schema, wrap, &decoded.batch, None)?;
    Ok((out, decoded))
}

fn decode_keys<B: AsRef<[u8]>>(
    format: Format,
    schema: &SchemaRef,
    items: &[Option<B>],
) -> Result<Decoded, FormatError> {
    KeyDecoder::new(&format, schema.clone())?.decode(&payloads(items))
}

fn encode_keys(
    format: Format,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<Payloads, FormatError> {
    let mut out = Payloads::new();
    KeyEncoder::new(&format, schema.clone())?.encode(batch, &mut out)?;
    Ok(out)
}

fn some(items: &[&str]) -> Vec<Option<String>> {
    items.iter().map(|s| Some((*s).to_owned())).collect()
}

/// The error reasons of `decoded`, by record index.
fn reasons(decoded: &Decoded) -> Vec<(usize, &str)> {
    decoded
        .errors
        .iter()
        .map(|e| (e.index, e.reason.as_str()))
        .collect()
}

fn construction_error<T>(result: Result<T, FormatError>) -> String {
    match result {
        Ok(_) => "no error".to_owned(),
        Err(e) => e.to_string(),
    }
}

//! How a group's accumulators are stored (in the state store and the changelog): a compact
//! binary layout, written and read once per touched group per batch, so it must be cheap.
//!
//! Layout: a format byte, then per accumulator a tag byte and its fields, integers and
//! floats little-endian, texts as a `u32` length (`u32::MAX` for null) and UTF-8 bytes.
//! A group's state may end with the largest timestamp of the records folded into it (format
//! byte [`TIMED`]): the group's result carries it as its timestamp, as Kafka Streams' timestamped
//! stores give an aggregate's result the newest timestamp of its inputs. States written
//! without it (format byte [`BINARY`], or JSON by earlier versions, starting with `[`) are
//! still read.

use super::Acc;
use crate::error::EngineError;

/// First byte of a binary state.
const BINARY: u8 = 1;
/// First byte of a binary state that ends with its largest timestamp (8 bytes).
const TIMED: u8 = 2;
/// The length that marks a null text.
const NULL_TEXT: u32 = u32::MAX;

const COUNT: u8 = 0;
const SUM_INT: u8 = 1;
const SUM_FLOAT: u8 = 2;
const SUM_DECIMAL: u8 = 3;
const AVG: u8 = 4;
const VALUE: u8 = 5;
const VALUES: u8 = 6;
const STDDEV: u8 = 7;
const CORRELATION: u8 = 8;

/// Appends the encoding of `accs` and the group's largest timestamp to `out`.
pub(super) fn encode_timed(accs: &[Acc], newest: i64, out: &mut Vec<u8>) {
    out.push(TIMED);
    encode_accs(accs, out);
    out.extend_from_slice(&newest.to_le_bytes());
}

/// Appends the encoding of `accs` to `out`.
pub(super) fn encode(accs: &[Acc], out: &mut Vec<u8>) {
    out.push(BINARY);
    encode_accs(accs, out);
}

fn encode_accs(accs: &[Acc], out: &mut Vec<u8>) {
    for acc in accs {
        match acc {
            Acc::Count(c) => tagged(out, COUNT, &c.to_le_bytes()),
            Acc::SumInt(s) => tagged(out, SUM_INT, &s.to_le_bytes()),
            Acc::SumFloat(s) => tagged(out, SUM_FLOAT, &s.to_le_bytes()),
            Acc::SumDecimal(s) => tagged(out, SUM_DECIMAL, &s.to_le_bytes()),
            Acc::Avg(sum, count) => {
                tagged(out, AVG, &sum.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
            }
            Acc::Value(v) => {
                out.push(VALUE);
                text(out, v.as_deref());
            }
            Acc::Values(values) => {
                out.push(VALUES);
                out.extend_from_slice(&(values.len() as u32).to_le_bytes());
                for v in values {
                    text(out, v.as_deref());
                }
            }
            Acc::Stddev(count, mean, m2) => {
                tagged(out, STDDEV, &count.to_le_bytes());
                out.extend_from_slice(&mean.to_le_bytes());
                out.extend_from_slice(&m2.to_le_bytes());
            }
            Acc::Correlation(sums) => {
                tagged(out, CORRELATION, &sums.count.to_le_bytes());
                for f in [sums.x, sums.y, sums.xx, sums.yy, sums.xy] {
                    out.extend_from_slice(&f.to_le_bytes());
                }
            }
        }
    }
}

fn tagged(out: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    out.push(tag);
    out.extend_from_slice(bytes);
}

fn text(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&NULL_TEXT.to_le_bytes()),
    }
}

/// Reads a state written by [`encode`] (or, from earlier versions, as JSON).
pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Acc>, EngineError> {
    match bytes.first() {
        Some(&BINARY) => Reader { bytes, pos: 1 }.states(),
        _ => serde_json::from_slice(bytes).map_err(|e| corrupt(&e.to_string())),
    }
}

/// Reads a state into `out`, which must have room for exactly its accumulators.
/// Returns the state's largest timestamp, if it has one.
pub(super) fn decode_into(bytes: &[u8], out: &mut [Acc]) -> Result<Option<i64>, EngineError> {
    let mut reader = Reader { bytes, pos: 1 };
    let timed = match bytes.first() {
        Some(&TIMED) => true,
        Some(&BINARY) => false,
        _ => {
            let accs = decode(bytes)?;
            if accs.len() != out.len() {
                return Err(corrupt("wrong number of accumulators"));
            }
            for (slot, acc) in out.iter_mut().zip(accs) {
                *slot = acc;
            }
            return Ok(None);
        }
    };
    for slot in out.iter_mut() {
        *slot = reader.acc()?;
    }
    let newest = if timed {
        let end = reader.pos + 8;
        let bytes = bytes
            .get(reader.pos..end)
            .ok_or_else(|| corrupt("no timestamp"))?;
        reader.pos = end;
        let mut le = [0u8; 8];
        le.copy_from_slice(bytes);
        Some(i64::from_le_bytes(le))
    } else {
        None
    };
    if reader.pos != reader.bytes.len() {
        return Err(corrupt("wrong number of accumulators"));
    }
    Ok(newest)
}

fn corrupt(what: &str) -> EngineError {
    EngineError::Internal(format!("corrupt aggregate state: {what}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn states(mut self) -> Result<Vec<Acc>, EngineError> {
        let mut accs = Vec::new();
        while self.pos < self.bytes.len() {
            accs.push(self.acc()?);
        }
        Ok(accs)
    }

    fn acc(&mut self) -> Result<Acc, EngineError> {
        let tag = self.take::<1>()?[0];
        Ok(match tag {
            COUNT => Acc::Count(i64::from_le_bytes(self.take()?)),
            SUM_INT => Acc::SumInt(i64::from_le_bytes(self.take()?)),
            SUM_FLOAT => Acc::SumFloat(f64::from_le_bytes(self.take()?)),
            SUM_DECIMAL => Acc::SumDecimal(i128::from_le_bytes(self.take()?)),
            AVG => Acc::Avg(
                f64::from_le_bytes(self.take()?),
                i64::from_le_bytes(self.take()?),
            ),
            VALUE => Acc::Value(self.text()?),
            VALUES => {
                let n = u32::from_le_bytes(self.take()?) as usize;
                // Each text takes at least its 4-byte length: a bound on a corrupt count.
                let mut values = Vec::with_capacity(n.min(self.bytes.len() / 4));
                for _ in 0..n {
                    values.push(self.text()?);
                }
                Acc::Values(values)
            }
            STDDEV => Acc::Stddev(
                i64::from_le_bytes(self.take()?),
                f64::from_le_bytes(self.take()?),
                f64::from_le_bytes(self.take()?),
            ),
            CORRELATION => Acc::Correlation(super::CorrelationSums {
                count: i64::from_le_bytes(self.take()?),
                x: f64::from_le_bytes(self.take()?),
                y: f64::from_le_bytes(self.take()?),
                xx: f64::from_le_bytes(self.take()?),
                yy: f64::from_le_bytes(self.take()?),
                xy: f64::from_le_bytes(self.take()?),
            }),
            other => return Err(corrupt(&format!("unknown accumulator tag {other}"))),
        })
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], EngineError> {
        let bytes = self
            .bytes
            .get(self.pos..self.pos + N)
            .and_then(|b| <[u8; N]>::try_from(b).ok())
            .ok_or_else(|| corrupt("truncated"))?;
        self.pos += N;
        Ok(bytes)
    }

    fn text(&mut self) -> Result<Option<String>, EngineError> {
        let len = u32::from_le_bytes(self.take()?);
        if len == NULL_TEXT {
            return Ok(None);
        }
        let end = self.pos + len as usize;
        let bytes = self
            .bytes
            .get(self.pos..end)
            .ok_or_else(|| corrupt("truncated text"))?;
        self.pos = end;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| corrupt("text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(accs: Vec<Acc>) -> Vec<Acc> {
        let mut bytes = Vec::new();
        encode(&accs, &mut bytes);
        decode(&bytes).expect("decodes")
    }

    #[test]
    fn every_accumulator_round_trips() {
        let accs = vec![
            Acc::Count(-3),
            Acc::SumInt(i64::MAX),
            Acc::SumFloat(1.5),
            Acc::SumDecimal(-12345678901234567890123),
            Acc::Avg(7.25, 4),
            Acc::Value(None),
            Acc::Value(Some("héllo".into())),
            Acc::Values(vec![Some("a".into()), None, Some(String::new())]),
            Acc::Stddev(3, 2.0, 0.5),
            Acc::Correlation(super::super::CorrelationSums {
                count: 2,
                x: 1.0,
                y: -2.5,
                xx: 5.0,
                yy: 6.25,
                xy: 0.5,
            }),
        ];
        let back = round_trip(accs.clone());
        assert_eq!(format!("{back:?}"), format!("{accs:?}"));
    }

    #[test]
    fn json_states_of_earlier_versions_are_read() {
        let json = serde_json::to_vec(&vec![Acc::Count(5), Acc::Value(Some("x".into()))])
            .expect("serialises");
        let back = decode(&json).expect("decodes");
        assert_eq!(format!("{back:?}"), "[Count(5), Value(Some(\"x\"))]");
    }

    #[test]
    fn states_decode_into_their_slots() {
        let mut bytes = Vec::new();
        encode(&[Acc::Count(2), Acc::Avg(3.0, 1)], &mut bytes);
        let mut slots = vec![Acc::Count(0), Acc::Count(0)];
        decode_into(&bytes, &mut slots).expect("decodes");
        assert_eq!(format!("{slots:?}"), "[Count(2), Avg(3.0, 1)]");
        assert!(decode_into(&bytes, &mut slots[..1]).is_err());
    }

    #[test]
    fn timed_states_keep_their_newest_timestamp_and_older_states_have_none() {
        let mut timed = Vec::new();
        encode_timed(&[Acc::Count(2)], 12_345, &mut timed);
        let mut slots = vec![Acc::Count(0)];
        assert_eq!(
            decode_into(&timed, &mut slots).expect("decodes"),
            Some(12_345)
        );
        assert_eq!(format!("{slots:?}"), "[Count(2)]");
        assert!(decode_into(&timed[..timed.len() - 1], &mut slots).is_err());
        let mut untimed = Vec::new();
        encode(&[Acc::Count(3)], &mut untimed);
        assert_eq!(decode_into(&untimed, &mut slots).expect("decodes"), None);
        assert_eq!(format!("{slots:?}"), "[Count(3)]");
    }

    #[test]
    fn truncated_or_unknown_states_are_errors() {
        let mut bytes = Vec::new();
        encode(&[Acc::Avg(1.0, 2)], &mut bytes);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(&[BINARY, 99]).is_err());
        assert!(decode(&[BINARY, VALUES, 255, 255, 255, 0]).is_err());
    }
}

//! ksqlDB's math functions where their semantics differ from DataFusion's namesakes: Java's
//! `Math` returns NaN or an infinity where DataFusion raises an error (`SQRT(-1)`), `LOG(x)` is
//! the natural logarithm, `SIGN` returns an INT, `ROUND` rounds halves towards positive
//! infinity and `TRUNC` towards zero, both returning BIGINT for a DOUBLE, and `CEIL` and
//! `FLOOR` keep their argument's type (DataFusion's return a DOUBLE for whole numbers).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int32Array, Int64Array,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Decimal128Type, Float64Type, Int32Type, Int64Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// The functions of this module, to be registered under their names.
pub(crate) fn functions() -> Vec<Arc<ScalarUDF>> {
    let unary =
        |name: &'static str, f: fn(f64) -> f64| Arc::new(ScalarUDF::from(Unary::new(name, f)));
    vec![
        unary("sqrt", f64::sqrt),
        unary("ln", f64::ln),
        Arc::new(ScalarUDF::from(Log::new())),
        Arc::new(ScalarUDF::from(Sign::new())),
        Arc::new(ScalarUDF::from(Round::new("round", Rounding::HalfUp))),
        Arc::new(ScalarUDF::from(Round::new("trunc", Rounding::Down))),
        Arc::new(ScalarUDF::from(CeilFloor::new("ceil", Rounding::Ceiling))),
        Arc::new(ScalarUDF::from(CeilFloor::new("floor", Rounding::Floor))),
    ]
}

fn is_integer(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
    )
}

fn is_number(dt: &DataType) -> bool {
    is_integer(dt)
        || matches!(
            dt,
            DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _)
        )
        || dt.is_null()
}

fn arrays(args: ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(&args.args)
}

fn doubles(array: &ArrayRef) -> Result<Float64Array> {
    Ok(cast(array, &DataType::Float64)?
        .as_primitive::<Float64Type>()
        .clone())
}

/// A DOUBLE function of one number, Java's `Math` semantics.
#[derive(Debug)]
struct Unary {
    name: &'static str,
    f: fn(f64) -> f64,
    signature: Signature,
}

// Function pointers do not compare reliably; the name identifies the function.
impl PartialEq for Unary {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Unary {}

impl std::hash::Hash for Unary {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl Unary {
    fn new(name: &'static str, f: fn(f64) -> f64) -> Self {
        Self {
            name,
            f,
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Unary {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays(args)?;
        let [x] = arrays.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        let out: Float64Array = doubles(x)?.unary(self.f);
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `LOG(x)`: the natural logarithm; `LOG(base, x)`: NaN for a base that is not positive or
/// is 1.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Log {
    signature: Signature,
}

impl Log {
    fn new() -> Self {
        Self {
            signature: Signature::one_of(
                vec![
                    datafusion_expr::TypeSignature::Uniform(1, vec![DataType::Float64]),
                    datafusion_expr::TypeSignature::Uniform(2, vec![DataType::Float64]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for Log {
    fn name(&self) -> &str {
        "log"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays(args)?;
        let out: Float64Array = match arrays.as_slice() {
            [x] => doubles(x)?.unary(f64::ln),
            [base, x] => {
                let (base, x) = (doubles(base)?, doubles(x)?);
                arrow::compute::binary(&base, &x, |b: f64, x: f64| {
                    if b <= 0.0 || b == 1.0 {
                        f64::NAN
                    } else {
                        x.ln() / b.ln()
                    }
                })?
            }
            _ => return exec_err!("LOG takes one or two arguments"),
        };
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `SIGN(x)`: -1, 0 or 1 as an INT.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Sign {
    signature: Signature,
}

impl Sign {
    fn new() -> Self {
        Self {
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Sign {
    fn name(&self) -> &str {
        "sign"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays(args)?;
        let [x] = arrays.as_slice() else {
            return exec_err!("SIGN takes one argument");
        };
        let out: Int32Array = doubles(x)?.unary(|v| {
            if v > 0.0 {
                1
            } else if v < 0.0 {
                -1
            } else {
                0
            }
        });
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `ROUND(x[, places])` and `TRUNC(x[, places])`: a whole number keeps its type; a DOUBLE
/// becomes a BIGINT, or a DOUBLE with `places`; a DECIMAL keeps its type with `places` and
/// has scale 0 without.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Round {
    name: &'static str,
    rounding: Rounding,
    signature: Signature,
}

/// Which way a function rounds, as Java's `RoundingMode` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rounding {
    /// Halves towards positive infinity (ksqlDB's `ROUND`).
    HalfUp,
    /// Towards zero (`TRUNC`).
    Down,
    /// Towards positive infinity (`CEIL`).
    Ceiling,
    /// Towards negative infinity (`FLOOR`).
    Floor,
}

impl Round {
    fn new(name: &'static str, rounding: Rounding) -> Self {
        Self {
            name,
            rounding,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Round {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let value = match arg_types.first() {
            Some(DataType::Int32 | DataType::Int8 | DataType::Int16 | DataType::UInt8) => {
                DataType::Int32
            }
            Some(dt) if is_integer(dt) => DataType::Int64,
            Some(dt @ DataType::Decimal128(_, _)) => dt.clone(),
            Some(dt) if is_number(dt) => DataType::Float64,
            _ => return super::rejected(self.name, arg_types),
        };
        match arg_types {
            [_] => Ok(vec![value]),
            [_, places] if is_integer(places) || places.is_null() => {
                Ok(vec![value, DataType::Int32])
            }
            _ => super::rejected(self.name, arg_types),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(match arg_types {
            [DataType::Float64] => DataType::Int64,
            [DataType::Decimal128(p, s)] => {
                DataType::Decimal128((*p as i16 - *s as i16).clamp(1, 38) as u8, 0)
            }
            [value, ..] => value.clone(),
            [] => return super::rejected(self.name, arg_types),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let return_type = args.return_type().clone();
        let arrays = arrays(args)?;
        let (value, places) = match arrays.as_slice() {
            [value] => (value, None),
            [value, places] => (value, Some(cast(places, &DataType::Int32)?)),
            _ => return exec_err!("{} takes one or two arguments", self.name),
        };
        let places = places.as_ref().map(|p| p.as_primitive::<Int32Type>());
        let place = |i: usize| match places {
            None => Some(0),
            Some(p) if p.is_null(i) => None,
            Some(p) => Some(p.value(i)),
        };
        let mode = self.rounding;
        let out: ArrayRef = match value.data_type() {
            DataType::Int32 => {
                let v = value.as_primitive::<Int32Type>();
                let out: Int32Array = (0..v.len())
                    .map(|i| {
                        let p = place(i)?;
                        (!v.is_null(i)).then(|| round_scaled(v.value(i) as i128, 0, p, mode) as i32)
                    })
                    .collect();
                Arc::new(out)
            }
            DataType::Int64 => {
                let v = value.as_primitive::<Int64Type>();
                let out: Int64Array = (0..v.len())
                    .map(|i| {
                        let p = place(i)?;
                        (!v.is_null(i)).then(|| round_scaled(v.value(i) as i128, 0, p, mode) as i64)
                    })
                    .collect();
                Arc::new(out)
            }
            DataType::Decimal128(_, scale) => {
                let scale = *scale;
                let v = value.as_primitive::<Decimal128Type>();
                let rounded = (0..v.len()).map(|i| {
                    let p = place(i)?;
                    (!v.is_null(i)).then(|| round_scaled(v.value(i), scale as i32, p, mode))
                });
                let out: Decimal128Array = match &return_type {
                    DataType::Decimal128(_, 0) if places.is_none() => rounded
                        .map(|r| r.map(|r| r / 10i128.pow(scale.max(0) as u32)))
                        .collect(),
                    _ => rounded.collect(),
                };
                Arc::new(out.with_data_type(return_type.clone()))
            }
            _ => {
                let v = doubles(value)?;
                if places.is_none() {
                    // Java's (long) cast: towards zero, saturating, NaN to 0, as `as` does.
                    let out: Int64Array = match mode {
                        Rounding::Down => v.unary(|x: f64| x.trunc() as i64),
                        _ => v.unary(|x: f64| (x + 0.5).floor() as i64),
                    };
                    Arc::new(out)
                } else {
                    let out: Float64Array = (0..v.len())
                        .map(|i| {
                            let p = place(i)?;
                            (!v.is_null(i)).then(|| round_double(v.value(i), p, mode))
                        })
                        .collect();
                    Arc::new(out)
                }
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `CEIL(x)` and `FLOOR(x)`: the whole number above or below, of `x`'s own type (INT, BIGINT,
/// DOUBLE, or the same DECIMAL with a zero fraction).
#[derive(Debug, PartialEq, Eq, Hash)]
struct CeilFloor {
    name: &'static str,
    rounding: Rounding,
    signature: Signature,
}

impl CeilFloor {
    fn new(name: &'static str, rounding: Rounding) -> Self {
        Self {
            name,
            rounding,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for CeilFloor {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(vec![match arg_types {
            [DataType::Int32 | DataType::Int8 | DataType::Int16 | DataType::UInt8] => {
                DataType::Int32
            }
            [dt] if is_integer(dt) => DataType::Int64,
            [dt @ DataType::Decimal128(_, _)] => dt.clone(),
            [dt] if is_number(dt) => DataType::Float64,
            _ => return super::rejected(self.name, arg_types),
        }])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [value] => Ok(value.clone()),
            _ => super::rejected(self.name, arg_types),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = arrays(args)?;
        let [value] = arrays.as_slice() else {
            return exec_err!("{} takes one argument", self.name);
        };
        let out: ArrayRef = match value.data_type() {
            DataType::Int32 | DataType::Int64 => Arc::clone(value),
            DataType::Decimal128(_, scale) => {
                let scale = *scale as i32;
                let v = value.as_primitive::<Decimal128Type>();
                let mode = self.rounding;
                let out: Decimal128Array = v.unary(|x| round_scaled(x, scale, 0, mode));
                Arc::new(out.with_data_type(value.data_type().clone()))
            }
            _ => {
                let f = match self.rounding {
                    Rounding::Ceiling => f64::ceil,
                    _ => f64::floor,
                };
                let out: Float64Array = doubles(value)?.unary(f);
                Arc::new(out)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `unscaled` (a number with `scale` digits after the point) rounded to `places` digits after
/// the point, the way `rounding` says; the result has the same scale.
fn round_scaled(unscaled: i128, scale: i32, places: i32, rounding: Rounding) -> i128 {
    if places >= scale {
        return unscaled;
    }
    let Some(factor) = 10i128.checked_pow((scale - places) as u32) else {
        return 0;
    };
    let (q, r) = (unscaled.div_euclid(factor), unscaled.rem_euclid(factor));
    let up = match rounding {
        Rounding::HalfUp => 2 * r >= factor,
        Rounding::Down => unscaled < 0 && r != 0,
        Rounding::Ceiling => r != 0,
        Rounding::Floor => false,
    };
    let q = if up { q + 1 } else { q };
    q.saturating_mul(factor)
}

/// Rounds the shortest decimal form of `x` (as Java's `BigDecimal.valueOf` sees it).
fn round_double(x: f64, places: i32, rounding: Rounding) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let text = format!("{x:e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return x;
    };
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let Ok(exponent) = exponent.parse::<i32>() else {
        return x;
    };
    // value = digits × 10^(exponent - (len - 1)), i.e. `digits` with scale len - 1 - exponent.
    let scale = digits.len() as i32 - 1 - exponent;
    let Ok(mut unscaled) = digits.parse::<i128>() else {
        return x;
    };
    if negative {
        unscaled = -unscaled;
    }
    let rounded = round_scaled(unscaled, scale, places, rounding);
    let result = format!("{rounded}e{}", -scale).parse::<f64>().unwrap_or(x);
    // Rounding to zero gives 0.0, never -0.0, as BigDecimal has no negative zero.
    if result == 0.0 { 0.0 } else { result }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_halves_towards_positive_infinity() {
        let half_up = Rounding::HalfUp;
        assert_eq!(round_double(-1.5, 0, half_up), -1.0);
        assert_eq!(round_double(1.5, 0, half_up), 2.0);
        assert_eq!(round_double(-12345.678, -1, half_up), -12350.0);
        assert_eq!(round_double(1.234567, 2, half_up), 1.23);
        assert_eq!(round_double(-1.1, -1, half_up).to_bits(), 0.0f64.to_bits());
        assert_eq!(round_scaled(-15, 0, -1, half_up), -10);
        assert_eq!(round_scaled(123_456, 3, 1, half_up), 123_500);
    }

    #[test]
    fn truncates_towards_zero_and_ceils_and_floors() {
        assert_eq!(round_double(-1.79, 1, Rounding::Down), -1.7);
        assert_eq!(round_double(12345.67, -3, Rounding::Down), 12000.0);
        assert_eq!(round_scaled(-25, 1, 0, Rounding::Down), -20);
        assert_eq!(round_scaled(-25, 1, 0, Rounding::Ceiling), -20);
        assert_eq!(round_scaled(-25, 1, 0, Rounding::Floor), -30);
        assert_eq!(round_scaled(21, 1, 0, Rounding::Ceiling), 30);
        assert_eq!(round_scaled(20, 1, 0, Rounding::Ceiling), 20);
    }
}

//! ksqlDB's `GEO_DISTANCE(lat1, lon1, lat2, lon2 [, unit])`: the great-circle distance between
//! two points given in decimal degrees, by the haversine formula, in kilometres (`'KM'`, the
//! default) or miles (`'MILES'`); null if any argument is null.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use datafusion_common::{Result, exec_err};
use datafusion_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// `GEO_DISTANCE`.
pub(crate) fn function() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::from(GeoDistance {
        signature: Signature::user_defined(Volatility::Immutable),
    }))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GeoDistance {
    signature: Signature,
}

/// The radii ksqlDB uses.
const EARTH_RADIUS_KM: f64 = 6371.0;
const EARTH_RADIUS_MILES: f64 = 3959.0;

/// The earth's radius in `unit`, as ksqlDB names the units.
fn radius(unit: &str) -> Result<f64> {
    match unit.to_ascii_lowercase().as_str() {
        "km" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => Ok(EARTH_RADIUS_KM),
        "mi" | "mile" | "miles" => Ok(EARTH_RADIUS_MILES),
        _ => exec_err!(
            "GeoDistance function units parameter must be one of [MI, MILES, KM, KILOMETERS]. \
             Supplied value: {unit}"
        ),
    }
}

/// The haversine distance between two points on a sphere of radius `radius`.
fn distance(lat1: f64, lon1: f64, lat2: f64, lon2: f64, radius: f64) -> Result<f64> {
    for lat in [lat1, lat2] {
        if !(-90.0..=90.0).contains(&lat) {
            return exec_err!(
                "valid latitude values for GeoDistance function are in the range of -90 to 90 \
                 decimal degrees, this value was {lat}"
            );
        }
    }
    for lon in [lon1, lon2] {
        if !(-180.0..=180.0).contains(&lon) {
            return exec_err!(
                "valid longitude values for GeoDistance function are in the range of -180 to \
                 180 decimal degrees, this value was {lon}"
            );
        }
    }
    let delta_lat = (lat2 - lat1).to_radians();
    let delta_lon = (lon2 - lon1).to_radians();
    let a = (delta_lat / 2.0).sin().powi(2)
        + (delta_lon / 2.0).sin().powi(2) * lat1.to_radians().cos() * lat2.to_radians().cos();
    Ok(2.0 * a.sqrt().asin() * radius)
}

fn is_number(t: &DataType) -> bool {
    t.is_numeric() || t.is_null()
}

impl ScalarUDFImpl for GeoDistance {
    fn name(&self) -> &str {
        "geo_distance"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [points @ .., unit]
                if points.len() == 4 && points.iter().all(is_number) && super::is_text(unit) =>
            {
                let mut types = vec![DataType::Float64; 4];
                types.push(DataType::Utf8);
                Ok(types)
            }
            points if points.len() == 4 && points.iter().all(is_number) => {
                Ok(vec![DataType::Float64; 4])
            }
            // Refused in `return_field_from_args`, where the message keeps ksqlDB's
            // lower-case name (DataFusion rewrites a coercion error into its own).
            _ => Ok(arg_types.to_vec()),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn return_field_from_args(
        &self,
        args: datafusion_expr::ReturnFieldArgs,
    ) -> Result<arrow::datatypes::FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let accepted = match types.as_slice() {
            [points @ .., DataType::Utf8] if points.len() == 4 => {
                points.iter().all(|t| *t == DataType::Float64)
            }
            points => points.len() == 4 && points.iter().all(|t| *t == DataType::Float64),
        };
        if !accepted {
            return super::rejected("geo_distance", &types);
        }
        Ok(Arc::new(arrow::datatypes::Field::new(
            self.name(),
            DataType::Float64,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (points, unit) = match arrays.as_slice() {
            [a, b, c, d] => ([a, b, c, d], None),
            [a, b, c, d, unit] => ([a, b, c, d], Some(cast(unit, &DataType::Utf8)?)),
            _ => return exec_err!("GEO_DISTANCE takes four or five arguments"),
        };
        let points = points.map(|p| cast(p, &DataType::Float64));
        let [lat1, lon1, lat2, lon2] = points;
        let (lat1, lon1, lat2, lon2) = (lat1?, lon1?, lat2?, lon2?);
        let [lat1, lon1, lat2, lon2] =
            [&lat1, &lon1, &lat2, &lon2].map(|a| a.as_primitive::<Float64Type>());
        let unit = unit.as_ref().map(|u| u.as_string::<i32>());
        let mut out = Vec::with_capacity(lat1.len());
        for i in 0..lat1.len() {
            let null = [lat1, lon1, lat2, lon2].iter().any(|a| a.is_null(i))
                || unit.is_some_and(|u| u.is_null(i));
            if null {
                out.push(None);
                continue;
            }
            let radius = match unit {
                Some(u) => radius(u.value(i))?,
                None => EARTH_RADIUS_KM,
            };
            out.push(Some(distance(
                lat1.value(i),
                lon1.value(i),
                lat2.value(i),
                lon2.value(i),
                radius,
            )?));
        }
        let out: ArrayRef = Arc::new(Float64Array::from(out));
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::{EARTH_RADIUS_KM, EARTH_RADIUS_MILES, distance, radius};

    #[test]
    fn distances_are_ksqldbs() {
        // ksqlDB's udf-implicit-cast cases: Palo Alto to (51, 0).
        let km = distance(37.4439, -122.1663, 51.0, 0.0, EARTH_RADIUS_KM).ok();
        assert_eq!(km, Some(8682.459061368269));
        let miles = distance(37.4439, -122.1663, 51.0, 0.0, EARTH_RADIUS_MILES).ok();
        assert!(miles.is_some_and(|m| (m - 5395.3).abs() < 1.0));
        assert_eq!(
            distance(10.0, 20.0, 10.0, 20.0, EARTH_RADIUS_KM).ok(),
            Some(0.0)
        );
    }

    #[test]
    fn bad_coordinates_and_units_are_errors() {
        assert!(distance(91.0, 0.0, 0.0, 0.0, EARTH_RADIUS_KM).is_err());
        assert!(distance(0.0, 0.0, 0.0, -180.5, EARTH_RADIUS_KM).is_err());
        assert!(radius("furlongs").is_err());
        assert_eq!(radius("MILES").ok(), Some(EARTH_RADIUS_MILES));
    }
}

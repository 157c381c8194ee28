//! Distances on Earth.

/// Mean Earth radius in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance between two points given in degrees, in metres (haversine formula).
pub fn distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lng2 - lng1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::distance_m;

    #[test]
    fn known_distances() {
        assert_eq!(distance_m(45.5, -73.55, 45.5, -73.55), 0.0);
        // Montréal to Toronto is about 504 km.
        let km = distance_m(45.5017, -73.5673, 43.6532, -79.3832) / 1000.0;
        assert!((500.0..510.0).contains(&km), "{km}");
        // A quarter of the way round the equator.
        let quarter = distance_m(0.0, 0.0, 0.0, 90.0);
        assert!((quarter - 10_007_557.0).abs() < 100.0, "{quarter}");
    }
}

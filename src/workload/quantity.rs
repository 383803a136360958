//! Resource quantities written the way kube-apiserver canonicalises them, so the operator's
//! desired Deployment equals what the server returns and a steady cluster sees no writes.
//!
//! The server's rules (`resource.Quantity.CanonicalizeBytes`):
//! - decimal amounts (no suffix, or `n u m k M G T P E`) lose trailing zeros and take the
//!   largest SI suffix that keeps an integer: `0.5` → `500m`, `1000m` → `1`, `1000` → `1k`;
//! - binary amounts (`Ki Mi Gi Ti Pi Ei`) that are whole bytes take the largest power of 1024
//!   that divides them: `1.5Gi` → `1536Mi`, `1024Mi` → `1Gi`; below 1024 bytes, or with a
//!   fraction of a byte, they are written as decimal amounts: `0.5Ki` → `512`;
//! - amounts finer than `1n` are rounded up to nano units; zero is `0`.
//!
//! Shapes this module does not know (signs, exponents, out-of-range values) pass through
//! unchanged: the server then decides.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::fmt::Display;

/// Decimal SI suffixes by power of ten.
const DECIMAL_SUFFIXES: [(i32, &str); 10] =
    [(-9, "n"), (-6, "u"), (-3, "m"), (0, ""), (3, "k"), (6, "M"), (9, "G"), (12, "T"), (15, "P"), (18, "E")];

/// Binary suffixes by power of two.
const BINARY_SUFFIXES: [(u32, &str); 6] = [(10, "Ki"), (20, "Mi"), (30, "Gi"), (40, "Ti"), (50, "Pi"), (60, "Ei")];

/// The canonical form of a quantity written as an integer or a string (e.g. the spec's
/// int-or-string `cpu` and `memory`, whose `Display` is the value as the user wrote it).
pub fn canonical(q: &impl Display) -> Quantity {
    canonical_str(&q.to_string())
}

/// The canonical form of a quantity string; unknown shapes are returned unchanged.
pub fn canonical_str(q: &str) -> Quantity {
    Quantity(canonicalise(q).unwrap_or_else(|| q.to_string()))
}

/// The canonical string, or `None` when `q` is not a plain non-negative quantity.
fn canonicalise(q: &str) -> Option<String> {
    let number_len = q.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_len);
    let (mantissa, fraction_digits) = parse_number(number)?;
    if let Some((exponent, _)) = DECIMAL_SUFFIXES.iter().find(|(_, s)| *s == suffix) {
        return decimal(mantissa, exponent.checked_sub(fraction_digits)?);
    }
    let (power, _) = BINARY_SUFFIXES.iter().find(|(_, s)| *s == suffix)?;
    binary(mantissa, fraction_digits, *power)
}

/// `digits[.digits]` as (all digits as one integer, count of fraction digits).
fn parse_number(number: &str) -> Option<(u128, i32)> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || (number.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let mantissa = format!("{whole}{fraction}").parse().ok()?;
    Some((mantissa, i32::try_from(fraction.len()).ok()?))
}

/// `mantissa × 10^exponent` in canonical decimal SI form.
fn decimal(mantissa: u128, exponent: i32) -> Option<String> {
    if mantissa == 0 {
        return Some("0".into());
    }
    let (mut mantissa, mut exponent) = round_up_to_nano(mantissa, exponent)?;
    while mantissa.is_multiple_of(10) {
        mantissa /= 10;
        exponent += 1;
    }
    // SI suffixes step by 10^3: move the exponent down to a multiple of 3.
    let spare = exponent.rem_euclid(3);
    mantissa = mantissa.checked_mul(10u128.pow(spare.unsigned_abs()))?;
    exponent -= spare;
    let (_, suffix) = DECIMAL_SUFFIXES.iter().find(|(e, _)| *e == exponent)?;
    Some(format!("{mantissa}{suffix}"))
}

/// The server keeps nano precision and rounds finer amounts up ("ask for some, get some").
fn round_up_to_nano(mantissa: u128, exponent: i32) -> Option<(u128, i32)> {
    if exponent >= -9 {
        return Some((mantissa, exponent));
    }
    let divisor = 10u128.checked_pow((-9 - exponent).unsigned_abs())?;
    Some((mantissa.div_ceil(divisor), -9))
}

/// `mantissa / 10^fraction_digits × 2^power` in canonical form.
fn binary(mantissa: u128, fraction_digits: i32, power: u32) -> Option<String> {
    let scaled = mantissa.checked_mul(2u128.checked_pow(power)?)?;
    let divisor = 10u128.checked_pow(fraction_digits.unsigned_abs())?;
    if !scaled.is_multiple_of(divisor) {
        // A fraction of a byte cannot be written in binary units.
        return decimal(scaled, -fraction_digits);
    }
    let bytes = scaled / divisor;
    if bytes < 1024 { decimal(bytes, 0) } else { base_1024(bytes) }
}

/// Whole bytes (≥ 1024) with the largest binary suffix that divides them.
fn base_1024(mut bytes: u128) -> Option<String> {
    let mut power = 0;
    while bytes.is_multiple_of(1024) {
        bytes /= 1024;
        power += 10;
    }
    if power == 0 {
        return Some(bytes.to_string());
    }
    let (_, suffix) = BINARY_SUFFIXES.iter().find(|(p, _)| *p == power)?;
    Some(format!("{bytes}{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(q: &str) -> String {
        canonical_str(q).0
    }

    #[test]
    fn integers_stay_as_written() {
        assert_eq!(canonical(&1).0, "1");
        assert_eq!(canonical(&2).0, "2");
        assert_eq!(c("250"), "250");
        assert_eq!(c("536870913"), "536870913");
    }

    #[test]
    fn decimal_cpu_becomes_millicores() {
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1.5"), "1500m");
        assert_eq!(c("0.25"), "250m");
        assert_eq!(c("0.1"), "100m");
        assert_eq!(c("2.50"), "2500m");
    }

    #[test]
    fn whole_cores_in_millicores_become_cores() {
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("2000m"), "2");
        assert_eq!(c("1.0"), "1");
        assert_eq!(c("1500m"), "1500m");
        assert_eq!(c("250m"), "250m");
    }

    #[test]
    fn multiples_of_a_thousand_take_the_si_suffix_like_the_server() {
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("10000"), "10k");
        assert_eq!(c("1000000000"), "1G");
        assert_eq!(c("1000k"), "1M");
        assert_eq!(c("0.5k"), "500");
    }

    #[test]
    fn binary_memory_stays_in_its_largest_whole_unit() {
        assert_eq!(c("512Mi"), "512Mi");
        assert_eq!(c("1Gi"), "1Gi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("0.5Gi"), "512Mi");
        assert_eq!(c("1536Ki"), "1536Ki");
    }

    #[test]
    fn binary_amounts_below_a_kibibyte_or_with_fractional_bytes_turn_decimal() {
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("0.3Ki"), "307200m");
    }

    #[test]
    fn plain_byte_counts_stay_as_written() {
        assert_eq!(c("536870912"), "536870912");
        assert_eq!(canonical(&134217728).0, "134217728");
    }

    #[test]
    fn zero_is_written_as_zero() {
        assert_eq!(c("0"), "0");
        assert_eq!(c("0.0"), "0");
        assert_eq!(c("0Mi"), "0");
        assert_eq!(c("0m"), "0");
    }

    #[test]
    fn amounts_finer_than_nano_are_rounded_up() {
        assert_eq!(c("0.0000000001"), "1n");
        assert_eq!(c("0.0000000015"), "2n");
    }

    #[test]
    fn leading_zeros_are_dropped() {
        assert_eq!(c("0500m"), "500m");
        assert_eq!(c("007"), "7");
    }

    #[test]
    fn unknown_shapes_pass_through_unchanged() {
        for odd in ["", "abc", "-1", "1e3", "1.", ".5", "1.5.5", "5 Mi", "1Zi", "12Q", "1000000E"] {
            assert_eq!(c(odd), odd);
        }
        assert_eq!(canonical(&-3).0, "-3");
        let huge = "9".repeat(60);
        assert_eq!(c(&huge), huge);
    }
}

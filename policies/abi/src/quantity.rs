//! Kubernetes resource quantities, with the grammar of apimachinery's `resource.ParseQuantity`:
//!
//! ```text
//! quantity        ::= signedNumber suffix
//! signedNumber    ::= number | sign number          sign ::= "+" | "-"
//! number          ::= digits | digits "." digits | digits "." | "." digits
//! suffix          ::= binarySI | decimalExponent | decimalSI
//! binarySI        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! decimalSI       ::= n | u | m | "" | k | M | G | T | P | E
//! decimalExponent ::= "e" signedNumber | "E" signedNumber    (an integer exponent)
//! ```
//!
//! So `+1Gi`, `100u`, `1.` and `.5Gi` are quantities; `1GB`, `1 Gi`, `Gi` and `1.2.3` are not.

use core::fmt;

/// A parsed quantity: `sign × digits / 10^fraction_digits × multiplier`, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    /// All digits of the number, without the point.
    digits: u128,
    /// How many of them follow the point.
    fraction_digits: u32,
    multiplier: Multiplier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Multiplier {
    /// × 2^n
    Binary(u32),
    /// × 10^n
    Decimal(i32),
}

/// Why a text is not a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantityError {
    /// No number where it should be, or one with two decimal points.
    BadNumber,
    /// After the number comes something that is not a suffix of the grammar.
    BadSuffix,
    /// More digits, or a larger exponent, than this parser represents exactly.
    TooLarge,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuantityError::BadNumber => "it does not start with a number (digits with at most one decimal point)",
            QuantityError::BadSuffix => {
                "its suffix is none of Ki Mi Gi Ti Pi Ei (binary), n u m k M G T P E (decimal) or an exponent such as e3"
            }
            QuantityError::TooLarge => "it has too many digits or too large an exponent",
        })
    }
}

/// The largest exponent accepted: 10^38 still fits a u128.
const MAX_EXPONENT: i32 = 38;

/// Parses `text` as a Kubernetes quantity (no surrounding spaces).
pub fn parse(text: &str) -> Result<Quantity, QuantityError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (int, fraction) = match number.split_once('.') {
        Some((int, fraction)) => (int, fraction),
        None => (number, ""),
    };
    if int.is_empty() && fraction.is_empty() {
        return Err(QuantityError::BadNumber);
    }
    if fraction.contains('.') {
        return Err(QuantityError::BadNumber);
    }
    let mut digits: u128 = 0;
    for b in int.bytes().chain(fraction.bytes()) {
        digits = digits
            .checked_mul(10)
            .and_then(|d| d.checked_add(u128::from(b - b'0')))
            .ok_or(QuantityError::TooLarge)?;
    }
    let multiplier = match suffix {
        "Ki" => Multiplier::Binary(10),
        "Mi" => Multiplier::Binary(20),
        "Gi" => Multiplier::Binary(30),
        "Ti" => Multiplier::Binary(40),
        "Pi" => Multiplier::Binary(50),
        "Ei" => Multiplier::Binary(60),
        "n" => Multiplier::Decimal(-9),
        "u" => Multiplier::Decimal(-6),
        "m" => Multiplier::Decimal(-3),
        "" => Multiplier::Decimal(0),
        "k" => Multiplier::Decimal(3),
        "M" => Multiplier::Decimal(6),
        "G" => Multiplier::Decimal(9),
        "T" => Multiplier::Decimal(12),
        "P" => Multiplier::Decimal(15),
        "E" => Multiplier::Decimal(18),
        s if s.starts_with(['e', 'E']) => Multiplier::Decimal(exponent(&s[1..])?),
        _ => return Err(QuantityError::BadSuffix),
    };
    Ok(Quantity {
        negative,
        digits,
        fraction_digits: fraction.len() as u32,
        multiplier,
    })
}

/// A signed integer exponent, at most [`MAX_EXPONENT`] in size.
fn exponent(text: &str) -> Result<i32, QuantityError> {
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QuantityError::BadSuffix);
    }
    let value: i32 = digits.parse().map_err(|_| QuantityError::TooLarge)?;
    if value > MAX_EXPONENT {
        return Err(QuantityError::TooLarge);
    }
    Ok(sign * value)
}

impl Quantity {
    pub fn is_negative(&self) -> bool {
        self.negative && self.digits != 0
    }

    /// The value as a whole number of units (bytes, for storage), rounded down; None when it is
    /// negative or does not fit a u128.
    pub fn whole_units(&self) -> Option<u128> {
        if self.is_negative() {
            return None;
        }
        let (scaled, exponent) = match self.multiplier {
            Multiplier::Binary(shift) => (
                self.digits.checked_mul(1u128.checked_shl(shift)?)?,
                -(self.fraction_digits as i32),
            ),
            Multiplier::Decimal(e) => (self.digits, e - self.fraction_digits as i32),
        };
        if exponent >= 0 {
            scaled.checked_mul(10u128.checked_pow(exponent as u32)?)
        } else {
            // 10^39 and more exceed u128: anything below that is 0 after rounding down.
            Some(
                10u128
                    .checked_pow(exponent.unsigned_abs())
                    .map_or(0, |d| scaled / d),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(q: &str) -> Option<u128> {
        parse(q).ok()?.whole_units()
    }

    #[test]
    fn valid_quantities_and_their_value() {
        assert_eq!(bytes("1Gi"), Some(1 << 30));
        assert_eq!(bytes("+1Gi"), Some(1 << 30));
        assert_eq!(bytes("1073741824"), Some(1 << 30));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes(".5Gi"), Some(1 << 29));
        assert_eq!(bytes("1."), Some(1));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("1e3"), Some(1000));
        assert_eq!(bytes("1E+3"), Some(1000));
        assert_eq!(bytes("15e-1"), Some(1));
        assert_eq!(bytes("1500m"), Some(1));
        assert_eq!(bytes("100u"), Some(0));
        assert_eq!(bytes("0.000001n"), Some(0));
        assert_eq!(bytes("512Mi"), Some(512 << 20));
        assert_eq!(bytes("8Ei"), Some(8 << 60));
        assert!(parse("100u").is_ok());
        assert!(parse("-0").is_ok_and(|q| !q.is_negative()));
    }

    #[test]
    fn negative_quantities_parse_but_have_no_size() {
        let q = parse("-1Gi").unwrap();
        assert!(q.is_negative());
        assert_eq!(q.whole_units(), None);
    }

    #[test]
    fn invalid_quantities_say_why() {
        for (text, why) in [
            ("", QuantityError::BadNumber),
            ("Gi", QuantityError::BadNumber),
            ("+", QuantityError::BadNumber),
            (".", QuantityError::BadNumber),
            ("1GB", QuantityError::BadSuffix),
            ("1GiB", QuantityError::BadSuffix),
            ("1 Gi", QuantityError::BadSuffix),
            (" 1Gi", QuantityError::BadNumber),
            ("1.2.3Gi", QuantityError::BadNumber),
            ("1e", QuantityError::BadSuffix),
            ("1e1.5", QuantityError::BadSuffix),
            ("1ki", QuantityError::BadSuffix),
            ("--1", QuantityError::BadNumber),
            ("1e39", QuantityError::TooLarge),
            (
                "1000000000000000000000000000000000000000",
                QuantityError::TooLarge,
            ),
        ] {
            assert_eq!(parse(text), Err(why), "{text:?}");
        }
    }

    #[test]
    fn overflow_is_none_not_a_panic() {
        assert_eq!(bytes("1e38"), Some(10u128.pow(38)));
        assert_eq!(bytes("10e38"), None);
        assert_eq!(bytes("999999999999999999999999Ei"), None);
    }
}

//! Money as integer minor units. No float ever holds an amount: dollar inputs are read from
//! their decimal text, so `582.42` is exactly 58242 cents.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one currency the books keep today.
pub const CURRENCY: &str = "usd";

/// The largest amount any single input may name: $10,000,000.00.
const MAX_INPUT_CENTS: i64 = 1_000_000_000;

/// An amount in cents. Negative values exist only inside ledger arithmetic, never as input.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(i64);

/// Why a dollar amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("amount is empty; give dollars as a number such as 5.00")]
    Empty,
    #[error("amount {0:?} is not a number; give dollars such as 5.00")]
    NotANumber(String),
    #[error("amount {0} is negative; amounts must be positive")]
    Negative(String),
    #[error("amount {0} has more than two decimal places; give whole cents such as 5.25")]
    TooPrecise(String),
    #[error("amount {0} is too large; the largest accepted amount is $10,000,000.00")]
    TooLarge(String),
}

impl Cents {
    pub const ZERO: Cents = Cents(0);

    pub const fn new(cents: i64) -> Self {
        Cents(cents)
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    /// Parses a dollar amount from its decimal text: `5`, `5.0`, `5.00`, `0.5`.
    pub fn parse_dollars(text: &str) -> Result<Cents, MoneyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(MoneyError::Empty);
        }
        let unsigned = match text.strip_prefix('-') {
            Some(rest) if is_decimal(rest) => return Err(MoneyError::Negative(text.into())),
            Some(_) => return Err(MoneyError::NotANumber(text.into())),
            None => text.strip_prefix('+').unwrap_or(text),
        };
        if !is_decimal(unsigned) {
            return Err(MoneyError::NotANumber(text.into()));
        }
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let whole = whole.trim_start_matches('0');
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > 2 {
            return Err(MoneyError::TooPrecise(text.into()));
        }
        if whole.len() > 10 {
            return Err(MoneyError::TooLarge(text.into()));
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().expect("checked digits")
        };
        let fraction: i64 = format!("{fraction:0<2}").parse().expect("checked digits");
        let cents = whole * 100 + fraction;
        if cents > MAX_INPUT_CENTS {
            return Err(MoneyError::TooLarge(text.into()));
        }
        Ok(Cents(cents))
    }

    /// Reads a dollar amount from JSON: a number (read back through its shortest decimal text,
    /// which is the text the sender wrote for any amount with at most 15 significant digits) or
    /// a string of decimal text.
    pub fn from_json(value: &serde_json::Value) -> Result<Cents, MoneyError> {
        match value {
            serde_json::Value::String(text) => Cents::parse_dollars(text),
            serde_json::Value::Number(number) => {
                if let Some(whole) = number.as_i64() {
                    return Cents::parse_dollars(&whole.to_string());
                }
                match number.as_f64() {
                    Some(float) if float.is_finite() => {
                        Cents::parse_dollars(&float.to_string()).map_err(|error| match error {
                            // Say "1e+308", not its 309 digits.
                            MoneyError::TooLarge(_) => MoneyError::TooLarge(number.to_string()),
                            other => other,
                        })
                    }
                    _ => Err(MoneyError::NotANumber(number.to_string())),
                }
            }
            other => Err(MoneyError::NotANumber(other.to_string())),
        }
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).map(Cents)
    }

    pub fn checked_sub(self, other: Cents) -> Option<Cents> {
        self.0.checked_sub(other.0).map(Cents)
    }

    pub fn checked_mul(self, factor: i64) -> Option<Cents> {
        self.0.checked_mul(factor).map(Cents)
    }

    /// Splits an amount into the worker's share and the platform fee.
    ///
    /// Rounding rule: the fee is `amount × bps / 10_000` rounded down to the cent, and the
    /// worker gets the rest, so `worker + fee == amount` exactly and rounding favours workers.
    pub fn split_fee(self, fee_bps: u32) -> FeeSplit {
        let fee = (i128::from(self.0) * i128::from(fee_bps) / 10_000) as i64;
        FeeSplit {
            worker: Cents(self.0 - fee),
            fee: Cents(fee),
        }
    }
}

/// The two parts an approved amount is paid out as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeSplit {
    pub worker: Cents,
    pub fee: Cents,
}

fn is_decimal(text: &str) -> bool {
    let mut parts = text.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let fraction = parts.next();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    digits(whole)
        && fraction.is_none_or(digits)
        && !(whole.is_empty() && fraction.is_none_or(str::is_empty))
}

impl fmt::Display for Cents {
    /// Dollars with two decimals, as `5.00` or `-0.25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl JsonSchema for Cents {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cents".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "description": "An amount in cents (integer minor units of the currency)."
        })
    }
}

/// A dollar amount given by a client, as a JSON number or decimal string; parsed exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dollars(pub Cents);

impl<'de> Deserialize<'de> for Dollars {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        Cents::from_json(&value)
            .map(Dollars)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dollars {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl JsonSchema for Dollars {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Dollars".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["number", "string"],
            "description": "US dollars with at most two decimals, e.g. 5.00 or \"5.00\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_decimal_text_exactly() {
        assert_eq!(Cents::parse_dollars("582.42"), Ok(Cents(58242)));
        assert_eq!(Cents::parse_dollars("5"), Ok(Cents(500)));
        assert_eq!(Cents::parse_dollars("5.0"), Ok(Cents(500)));
        assert_eq!(Cents::parse_dollars("0.5"), Ok(Cents(50)));
        assert_eq!(Cents::parse_dollars(".25"), Ok(Cents(25)));
        assert_eq!(Cents::parse_dollars("5.100"), Ok(Cents(510)));
        assert_eq!(Cents::parse_dollars(" 7.07 "), Ok(Cents(707)));
        assert_eq!(Cents::parse_dollars("0"), Ok(Cents(0)));
    }

    #[test]
    fn refuses_bad_text_with_the_reason() {
        assert!(matches!(Cents::parse_dollars(""), Err(MoneyError::Empty)));
        assert!(matches!(
            Cents::parse_dollars("abc"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("NaN"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("inf"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("1e3"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("."),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("1.2.3"),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("-5"),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("5.001"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("10000000.01"),
            Err(MoneyError::TooLarge(_))
        ));
        assert!(matches!(
            Cents::parse_dollars("99999999999999999999"),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn reads_json_numbers_through_their_text() {
        assert_eq!(Cents::from_json(&json!(582.42)), Ok(Cents(58242)));
        assert_eq!(Cents::from_json(&json!(5.00)), Ok(Cents(500)));
        assert_eq!(Cents::from_json(&json!(0.1)), Ok(Cents(10)));
        assert_eq!(Cents::from_json(&json!(19.99)), Ok(Cents(1999)));
        assert_eq!(Cents::from_json(&json!(50)), Ok(Cents(5000)));
        assert_eq!(Cents::from_json(&json!("50.00")), Ok(Cents(5000)));
        assert_eq!(
            Cents::from_json(&json!(1e308)),
            Err(MoneyError::TooLarge("1e+308".into()))
        );
        assert!(matches!(
            Cents::from_json(&json!(5.001)),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Cents::from_json(&json!(-5)),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Cents::from_json(&json!(null)),
            Err(MoneyError::NotANumber(_))
        ));
        assert!(matches!(
            Cents::from_json(&json!(true)),
            Err(MoneyError::NotANumber(_))
        ));
    }

    #[test]
    fn every_two_decimal_amount_survives_a_json_round_trip() {
        for cents in (0..200_000).step_by(7).chain([99_999_999, 123_456_789]) {
            let text = Cents(cents).to_string();
            let number: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(Cents::from_json(&number), Ok(Cents(cents)), "{text}");
        }
    }

    #[test]
    fn fee_split_adds_up_and_rounds_down_the_fee() {
        assert_eq!(
            Cents(500).split_fee(1500),
            FeeSplit {
                worker: Cents(425),
                fee: Cents(75)
            }
        );
        assert_eq!(
            Cents(1).split_fee(1500),
            FeeSplit {
                worker: Cents(1),
                fee: Cents(0)
            }
        );
        assert_eq!(
            Cents(333).split_fee(1000),
            FeeSplit {
                worker: Cents(300),
                fee: Cents(33)
            }
        );
        for cents in 0..5_000 {
            for bps in [0, 1, 999, 1500, 3333, 10_000] {
                let split = Cents(cents).split_fee(bps);
                assert_eq!(split.worker.get() + split.fee.get(), cents);
                assert!(split.fee.get() >= 0 && split.worker.get() >= 0);
            }
        }
    }

    #[test]
    fn displays_dollars() {
        assert_eq!(Cents(500).to_string(), "5.00");
        assert_eq!(Cents(7).to_string(), "0.07");
        assert_eq!(Cents(-25).to_string(), "-0.25");
    }
}

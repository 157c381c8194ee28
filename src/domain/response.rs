//! The shape of answer an agent asks for, and checking a worker's answer against it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The form the human's answer must take. Also accepted as a bare string for the forms that
/// need no settings: "yes_no", "rating", "number", "text".
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResponseFormat {
    /// "yes" or "no".
    YesNo,
    /// Exactly one of the given options.
    Choice {
        /// The options the human picks from (2 to 20).
        options: Vec<String>,
    },
    /// A whole number from `min` to `max`.
    Rating {
        /// Lowest allowed rating (default 1).
        #[serde(default = "rating_min")]
        min: i64,
        /// Highest allowed rating (default 5).
        #[serde(default = "rating_max")]
        max: i64,
    },
    /// A number, with an optional unit.
    Number {
        /// Unit the number is in, e.g. "minutes" or "EUR".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
        /// With several workers: how far apart two numbers may be and still agree (default 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tolerance: Option<f64>,
    },
    /// Free text.
    Text,
}

/// What clients may send for a response format: the object, or a bare name.
#[derive(Deserialize)]
#[serde(untagged)]
enum FormatInput {
    Name(String),
    Object(serde_json::Map<String, Value>),
}

/// The tagged form, read without the `try_from` hook (which would recurse).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Tagged {
    YesNo,
    Choice {
        options: Vec<String>,
    },
    Rating {
        #[serde(default = "rating_min")]
        min: i64,
        #[serde(default = "rating_max")]
        max: i64,
    },
    Number {
        #[serde(default)]
        unit: Option<String>,
        #[serde(default)]
        tolerance: Option<f64>,
    },
    Text,
}

const FORMAT_HELP: &str = "give the response format as \"yes_no\", \"rating\", \"number\", \"text\", \
    or an object such as {\"type\": \"choice\", \"options\": [\"A\", \"B\"]} or \
    {\"type\": \"rating\", \"min\": 1, \"max\": 10}";

impl<'de> Deserialize<'de> for ResponseFormat {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let input = FormatInput::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom(format!("response: {FORMAT_HELP}")))?;
        ResponseFormat::try_from(input).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<FormatInput> for ResponseFormat {
    type Error = String;

    fn try_from(input: FormatInput) -> Result<Self, String> {
        let object = match input {
            FormatInput::Name(name) => {
                let mut object = serde_json::Map::new();
                object.insert("type".into(), Value::String(name.trim().to_owned()));
                object
            }
            FormatInput::Object(object) => object,
        };
        let allowed: &[&str] = match object.get("type").and_then(Value::as_str) {
            Some("choice") => &["type", "options"],
            Some("rating") => &["type", "min", "max"],
            Some("number") => &["type", "unit", "tolerance"],
            _ => &["type"],
        };
        if let Some(extra) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
            return Err(format!("response: unknown field `{extra}`; {FORMAT_HELP}"));
        }
        let tagged: Tagged = serde_json::from_value(Value::Object(object))
            .map_err(|e| format!("response: {e}; {FORMAT_HELP}"))?;
        Ok(match tagged {
            Tagged::YesNo => ResponseFormat::YesNo,
            Tagged::Choice { options } => ResponseFormat::Choice { options },
            Tagged::Rating { min, max } => ResponseFormat::Rating { min, max },
            Tagged::Number { unit, tolerance } => ResponseFormat::Number { unit, tolerance },
            Tagged::Text => ResponseFormat::Text,
        })
    }
}

fn rating_min() -> i64 {
    1
}

fn rating_max() -> i64 {
    5
}

impl ResponseFormat {
    /// Checks the format itself is sensible.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ResponseFormat::Choice { options } => {
                if !(2..=20).contains(&options.len()) {
                    return Err(format!(
                        "response options: give 2 to 20 options, not {}",
                        options.len()
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                for option in options {
                    let folded = fold(option);
                    if folded.is_empty() || option.chars().count() > 200 {
                        return Err(
                            "response options: each option needs 1 to 200 characters".into()
                        );
                    }
                    if !seen.insert(folded) {
                        return Err(format!("response options: {option:?} is listed twice"));
                    }
                }
                Ok(())
            }
            ResponseFormat::Rating { min, max } if min >= max => Err(format!(
                "response rating: min ({min}) must be below max ({max})"
            )),
            ResponseFormat::Rating { min, max } if *min < -1000 || *max > 1000 => {
                Err("response rating: min and max must lie within -1000..1000".into())
            }
            ResponseFormat::Number {
                tolerance: Some(t), ..
            } if !(t.is_finite() && *t >= 0.0) => Err(format!(
                "response number: tolerance must be a number of 0 or more, not {t}"
            )),
            _ => Ok(()),
        }
    }

    /// Reads the worker's answer text as this format asks, returning its structured value.
    pub fn read_answer(&self, answer: &str) -> Result<Value, String> {
        let folded = fold(answer);
        match self {
            ResponseFormat::YesNo => match folded.as_str() {
                "yes" | "y" | "true" => Ok(json!("yes")),
                "no" | "n" | "false" => Ok(json!("no")),
                _ => Err(format!("this task asks for yes or no, not {answer:?}")),
            },
            ResponseFormat::Choice { options } => options
                .iter()
                .find(|option| fold(option) == folded)
                .map(|option| json!(option))
                .ok_or_else(|| {
                    format!(
                        "this task asks for one of {}, not {answer:?}",
                        options.join(" / ")
                    )
                }),
            ResponseFormat::Rating { min, max } => match folded.parse::<i64>() {
                Ok(rating) if (*min..=*max).contains(&rating) => Ok(json!(rating)),
                _ => Err(format!(
                    "this task asks for a whole number from {min} to {max}, not {answer:?}"
                )),
            },
            ResponseFormat::Number { .. } => read_number(&folded)
                .map(|number| json!(number))
                .ok_or_else(|| {
                    format!(
                        "this task asks for a number written with a dot for decimals \
                         (1250.5 or 1,250.5), not {answer:?}"
                    )
                }),
            ResponseFormat::Text => Ok(json!(answer.trim())),
        }
    }
}

/// Reads a number with a dot for decimals. Commas are allowed only as thousands separators
/// (`1,250.5`), never as a decimal mark: `1,5` is ambiguous and refused rather than misread.
fn read_number(text: &str) -> Option<f64> {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if whole.contains(',') {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or("");
        let grouped = (1..=3).contains(&first.len())
            && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()));
        if !grouped || fraction.contains(',') {
            return None;
        }
    }
    let plain = format!("{sign}{}.{fraction}", whole.replace(',', ""));
    let plain = plain.trim_end_matches('.');
    let digits_only = plain
        .trim_start_matches('-')
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.');
    if !digits_only || plain.trim_start_matches('-').is_empty() {
        return None;
    }
    plain.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Text folded for comparing short answers: Unicode NFKC (so full-width `ｙｅｓ` reads as
/// `yes`), lower case, white space trimmed and runs of it made one space.
pub fn fold(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let normal: String = text.nfkc().collect();
    normal
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_answers_are_folded() {
        let format = ResponseFormat::YesNo;
        assert_eq!(format.read_answer(" Yes "), Ok(json!("yes")));
        assert_eq!(format.read_answer("NO"), Ok(json!("no")));
        assert!(
            format
                .read_answer("maybe")
                .unwrap_err()
                .contains("yes or no")
        );
    }

    #[test]
    fn choices_match_their_options() {
        let format = ResponseFormat::Choice {
            options: vec!["Open".into(), "Closed for good".into()],
        };
        assert_eq!(format.validate(), Ok(()));
        assert_eq!(
            format.read_answer("closed  for GOOD"),
            Ok(json!("Closed for good"))
        );
        assert!(format.read_answer("moved").is_err());
        let twice = ResponseFormat::Choice {
            options: vec!["a".into(), "A".into()],
        };
        assert!(twice.validate().unwrap_err().contains("twice"));
        let one = ResponseFormat::Choice {
            options: vec!["a".into()],
        };
        assert!(one.validate().is_err());
    }

    #[test]
    fn ratings_and_numbers_are_checked() {
        let rating = ResponseFormat::Rating { min: 1, max: 5 };
        assert_eq!(rating.read_answer("4"), Ok(json!(4)));
        assert!(rating.read_answer("6").is_err());
        assert!(
            ResponseFormat::Rating { min: 5, max: 5 }
                .validate()
                .is_err()
        );
        let number = ResponseFormat::Number {
            unit: None,
            tolerance: None,
        };
        assert_eq!(number.read_answer("1,250.5"), Ok(json!(1250.5)));
        assert_eq!(number.read_answer("-12"), Ok(json!(-12.0)));
        assert_eq!(number.read_answer("0.25"), Ok(json!(0.25)));
        assert_eq!(number.read_answer("1,000,000"), Ok(json!(1_000_000.0)));
        for ambiguous in [
            "1,5",
            "3,14",
            "1.000,50",
            "12,34,567",
            "NaN",
            "inf",
            "1e5",
            "",
            "-",
            ".",
        ] {
            assert!(number.read_answer(ambiguous).is_err(), "{ambiguous}");
        }
    }

    #[test]
    fn formats_parse_from_json() {
        let format: ResponseFormat = serde_json::from_value(json!({"type": "rating"})).unwrap();
        assert_eq!(format, ResponseFormat::Rating { min: 1, max: 5 });
        assert!(serde_json::from_value::<ResponseFormat>(json!({"type": "poem"})).is_err());
        let short: ResponseFormat = serde_json::from_value(json!("yes_no")).unwrap();
        assert_eq!(short, ResponseFormat::YesNo);
        let choice = serde_json::from_value::<ResponseFormat>(json!("choice")).unwrap_err();
        assert!(choice.to_string().contains("options"), "{choice}");
        let extra = serde_json::from_value::<ResponseFormat>(json!({"type": "yes_no", "x": 1}));
        assert!(extra.is_err());
    }
}

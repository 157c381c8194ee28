//! The shape of answer an agent asks for, and checking a worker's answer against it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The form the human's answer must take.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
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
    },
    /// Free text.
    Text,
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
            ResponseFormat::Number { .. } => match folded.replace(',', "").parse::<f64>() {
                Ok(number) if number.is_finite() => Ok(json!(number)),
                _ => Err(format!("this task asks for a number, not {answer:?}")),
            },
            ResponseFormat::Text => Ok(json!(answer.trim())),
        }
    }
}

/// Case- and space-folded text for comparing short answers.
// Limitation: no Unicode NFKC folding yet; full-width and compatibility forms do not match.
fn fold(text: &str) -> String {
    text.split_whitespace()
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
        let number = ResponseFormat::Number { unit: None };
        assert_eq!(number.read_answer("1,250.5"), Ok(json!(1250.5)));
        assert!(number.read_answer("NaN").is_err());
    }

    #[test]
    fn formats_parse_from_json() {
        let format: ResponseFormat = serde_json::from_value(json!({"type": "rating"})).unwrap();
        assert_eq!(format, ResponseFormat::Rating { min: 1, max: 5 });
        assert!(serde_json::from_value::<ResponseFormat>(json!({"type": "poem"})).is_err());
    }
}

//! The seven kinds of task a human can do for an agent, and what each one defaults to.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::money::Cents;

/// What a worker must be able to do to take a task of some kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Can place phone calls.
    Voice,
    /// Can travel to a place.
    Field,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Voice => "voice",
            Capability::Field => "field",
        }
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "voice" => Ok(Capability::Voice),
            "field" => Ok(Capability::Field),
            other => Err(format!("unknown capability {other:?}; known: voice, field")),
        }
    }
}

/// A kind of task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// A real-world fact check, often at a location.
    Verification,
    /// A phone call made by a human.
    VoiceProxy,
    /// Intuition on a question.
    GutCheck,
    /// Going on site, with photo and GPS proof.
    FieldMission,
    /// An empathy handoff to a person in distress or anger.
    Escalation,
    /// Reading the mood of a text, image or situation.
    VibeRead,
    /// Checking the agent's own work product.
    RealityCheck,
}

impl TaskKind {
    pub const ALL: [TaskKind; 7] = [
        TaskKind::Verification,
        TaskKind::VoiceProxy,
        TaskKind::GutCheck,
        TaskKind::FieldMission,
        TaskKind::Escalation,
        TaskKind::VibeRead,
        TaskKind::RealityCheck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Verification => "verification",
            TaskKind::VoiceProxy => "voice_proxy",
            TaskKind::GutCheck => "gut_check",
            TaskKind::FieldMission => "field_mission",
            TaskKind::Escalation => "escalation",
            TaskKind::VibeRead => "vibe_read",
            TaskKind::RealityCheck => "reality_check",
        }
    }

    /// The MCP tool that creates tasks of this kind.
    pub fn tool_name(self) -> &'static str {
        match self {
            TaskKind::Verification => "verify",
            TaskKind::VoiceProxy => "call",
            TaskKind::GutCheck => "gut_check",
            TaskKind::FieldMission => "field",
            TaskKind::Escalation => "escalate",
            TaskKind::VibeRead => "vibe",
            TaskKind::RealityCheck => "reality_check",
        }
    }

    /// The budget per human when the agent names none, as the product docs list it.
    pub fn default_budget(self) -> Cents {
        Cents::new(match self {
            TaskKind::Verification => 500,
            TaskKind::VoiceProxy => 1000,
            TaskKind::GutCheck => 300,
            TaskKind::FieldMission => 1500,
            TaskKind::Escalation => 2000,
            TaskKind::VibeRead => 800,
            TaskKind::RealityCheck => 300,
        })
    }

    /// How long a claim lasts before the slot goes back to the pool, in seconds.
    pub fn lease_secs(self) -> i64 {
        match self {
            TaskKind::GutCheck | TaskKind::VibeRead | TaskKind::RealityCheck => 15 * 60,
            TaskKind::Verification | TaskKind::VoiceProxy | TaskKind::Escalation => 60 * 60,
            TaskKind::FieldMission => 4 * 60 * 60,
        }
    }

    /// The least time a real person plausibly needs for this kind, from claim to result, in
    /// seconds; a faster result is flagged.
    pub fn min_plausible_secs(self) -> i64 {
        match self {
            TaskKind::GutCheck | TaskKind::VibeRead => 5,
            TaskKind::RealityCheck => 15,
            TaskKind::Verification | TaskKind::VoiceProxy | TaskKind::Escalation => 30,
            TaskKind::FieldMission => 120,
        }
    }

    /// How long the task stays open when the agent gives no deadline, in seconds.
    pub fn default_deadline_secs(self) -> i64 {
        match self {
            TaskKind::GutCheck | TaskKind::VibeRead | TaskKind::RealityCheck => 4 * 60 * 60,
            TaskKind::Verification | TaskKind::VoiceProxy | TaskKind::Escalation => 24 * 60 * 60,
            TaskKind::FieldMission => 72 * 60 * 60,
        }
    }

    /// The capability a worker needs for this kind, if any.
    pub fn required_capability(self) -> Option<Capability> {
        match self {
            TaskKind::VoiceProxy => Some(Capability::Voice),
            TaskKind::FieldMission => Some(Capability::Field),
            _ => None,
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskKind {
    type Err = String;

    /// Accepts the kind's own name or the name of the tool that creates it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text || kind.tool_name() == text)
            .ok_or_else(|| {
                let names: Vec<_> = TaskKind::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown task kind {text:?}; known kinds: {}",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budgets_match_the_product_docs() {
        let dollars: Vec<i64> = TaskKind::ALL
            .iter()
            .map(|k| k.default_budget().get() / 100)
            .collect();
        assert_eq!(dollars, [5, 10, 3, 15, 20, 8, 3]);
    }

    #[test]
    fn kinds_parse_from_their_names_and_tools() {
        for kind in TaskKind::ALL {
            assert_eq!(kind.as_str().parse::<TaskKind>(), Ok(kind));
            assert_eq!(kind.tool_name().parse::<TaskKind>(), Ok(kind));
        }
        assert!(
            "lunch"
                .parse::<TaskKind>()
                .unwrap_err()
                .contains("known kinds")
        );
    }
}

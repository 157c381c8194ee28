//! The trust score of a worker, 0 to 100, and the tiers it opens.
//!
//! The score is a weighted share of good outcomes, pulled towards a prior for workers with
//! little history:
//!
//! ```text
//! score = 100 × (good + P × 0.5) / (good + bad + P)        P = 10, the prior's weight
//! good  = Σ w × [approved: 1, honeypot answered right: 1]
//! bad   = Σ w × [rejected: 1, abandoned: 0.5, lease run out: 0.5, honeypot answered wrong: 3]
//! w     = 0.5 ^ (age in days / 90)                           recent work counts more
//! ```
//!
//! A new worker starts at 50; one approval lifts them to 54, not to 100. Each fraud flag caps the
//! score: at 30 for the first, 5 lower for each further flag. The result is rounded down to a
//! whole number. The function is pure and deterministic: the same record gives the same score.

/// How a piece of work ended, as far as trust is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    Rejected,
    Abandoned,
    LeaseExpired,
    HoneypotPassed,
    HoneypotFailed,
}

impl Outcome {
    /// (good, bad) weight of one such outcome.
    fn weights(self) -> (f64, f64) {
        match self {
            Outcome::Approved | Outcome::HoneypotPassed => (1.0, 0.0),
            Outcome::Rejected => (0.0, 1.0),
            Outcome::Abandoned | Outcome::LeaseExpired => (0.0, 0.5),
            Outcome::HoneypotFailed => (0.0, 3.0),
        }
    }
}

/// One outcome and how long ago it happened.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    pub outcome: Outcome,
    pub age_days: f64,
}

/// A worker's history: outcomes with their age, and how many fraud flags they carry.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    pub events: Vec<Event>,
    pub fraud_flags: u32,
}

/// The score a worker with no history starts at.
pub const PRIOR_SCORE: i64 = 50;
const PRIOR_WEIGHT: f64 = 10.0;
const HALF_LIFE_DAYS: f64 = 90.0;
const FIRST_FRAUD_CAP: i64 = 30;
const FRAUD_CAP_STEP: i64 = 5;

/// The trust score for a record.
pub fn score(record: &Record) -> i64 {
    let (mut good, mut bad) = (0.0, 0.0);
    for event in &record.events {
        let age = if event.age_days.is_finite() {
            event.age_days.max(0.0)
        } else {
            0.0
        };
        let weight = 0.5f64.powf(age / HALF_LIFE_DAYS);
        let (g, b) = event.outcome.weights();
        good += weight * g;
        bad += weight * b;
    }
    let prior = PRIOR_SCORE as f64 / 100.0;
    let raw = 100.0 * (good + PRIOR_WEIGHT * prior) / (good + bad + PRIOR_WEIGHT);
    let mut score = (raw.floor() as i64).clamp(0, 100);
    if record.fraud_flags > 0 {
        let cap = FIRST_FRAUD_CAP - FRAUD_CAP_STEP * (i64::from(record.fraud_flags) - 1);
        score = score.min(cap.max(0));
    }
    score
}

/// A tier: from `min_score` up, a worker may take tasks paying up to `max_budget_cents`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    pub name: &'static str,
    pub min_score: i64,
    pub max_budget_cents: i64,
}

/// The default tiers, lowest first: a new worker (50) may take tasks up to $25.
pub const DEFAULT_TIERS: [Tier; 4] = [
    Tier {
        name: "starter",
        min_score: 0,
        max_budget_cents: 1_000,
    },
    Tier {
        name: "trusted",
        min_score: 45,
        max_budget_cents: 2_500,
    },
    Tier {
        name: "proven",
        min_score: 65,
        max_budget_cents: 10_000,
    },
    Tier {
        name: "expert",
        min_score: 80,
        max_budget_cents: 1_000_000,
    },
];

/// The highest tier a score reaches, and the next one up if any.
pub fn tier_for(tiers: &[Tier], score: i64) -> (Tier, Option<Tier>) {
    let mut current = tiers[0];
    let mut next = None;
    for tier in tiers {
        if score >= tier.min_score {
            current = *tier;
        } else {
            next = Some(*tier);
            break;
        }
    }
    (current, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(outcomes: &[(Outcome, f64)], fraud_flags: u32) -> Record {
        Record {
            events: outcomes
                .iter()
                .map(|&(outcome, age_days)| Event { outcome, age_days })
                .collect(),
            fraud_flags,
        }
    }

    #[test]
    fn new_workers_start_at_the_prior_and_one_task_is_not_enough() {
        assert_eq!(score(&Record::default()), PRIOR_SCORE);
        assert_eq!(score(&record(&[(Outcome::Approved, 0.0)], 0)), 54);
        assert_eq!(score(&record(&[(Outcome::HoneypotFailed, 0.0)], 0)), 38);
    }

    #[test]
    fn old_outcomes_weigh_less() {
        let fresh = score(&record(&[(Outcome::Rejected, 0.0)], 0));
        let old = score(&record(&[(Outcome::Rejected, 365.0)], 0));
        assert!(old > fresh, "{old} > {fresh}");
    }

    #[test]
    fn tiers_follow_the_score() {
        assert_eq!(tier_for(&DEFAULT_TIERS, 0).0.name, "starter");
        assert_eq!(tier_for(&DEFAULT_TIERS, 50).0.name, "trusted");
        assert_eq!(
            tier_for(&DEFAULT_TIERS, 50).1.map(|t| t.name),
            Some("proven")
        );
        assert_eq!(tier_for(&DEFAULT_TIERS, 100).1, None);
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            Just(Outcome::Approved),
            Just(Outcome::Rejected),
            Just(Outcome::Abandoned),
            Just(Outcome::LeaseExpired),
            Just(Outcome::HoneypotPassed),
            Just(Outcome::HoneypotFailed),
        ]
    }

    fn history() -> impl Strategy<Value = Record> {
        (
            prop::collection::vec((outcome(), 0.0..2_000.0f64), 0..60),
            0..4u32,
        )
            .prop_map(|(events, flags)| Record {
                events: events
                    .into_iter()
                    .map(|(outcome, age_days)| Event { outcome, age_days })
                    .collect(),
                fraud_flags: flags,
            })
    }

    proptest! {
        #[test]
        fn the_score_stays_within_0_and_100_and_is_deterministic(r in history()) {
            let s = score(&r);
            prop_assert!((0..=100).contains(&s));
            prop_assert_eq!(s, score(&r.clone()));
        }

        #[test]
        fn an_approval_never_lowers_and_a_rejection_never_raises(r in history(), age in 0.0..2_000.0f64) {
            let base = score(&r);
            let mut approved = r.clone();
            approved.events.push(Event { outcome: Outcome::Approved, age_days: age });
            prop_assert!(score(&approved) >= base);
            let mut rejected = r.clone();
            rejected.events.push(Event { outcome: Outcome::Rejected, age_days: age });
            prop_assert!(score(&rejected) <= base);
        }

        #[test]
        fn a_fraud_flag_caps_the_score(r in history()) {
            let mut flagged = r.clone();
            flagged.fraud_flags += 1;
            prop_assert!(score(&flagged) <= FIRST_FRAUD_CAP);
            prop_assert!(score(&flagged) <= score(&r));
        }
    }
}

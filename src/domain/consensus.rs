//! Consensus: one task answered by several humans, and the rule that turns their answers into
//! one result.
//!
//! Answers are compared in the structured form the response format reads them into, so
//! `Yes`, ` yes ` and `ｙｅｓ` are one answer (NFKC, case and space folding); ratings and options
//! compare exactly; numbers agree within the format's `tolerance`; free text is not compared.
//!
//! The rule, applied whenever the task's slots change:
//! 1. Votes are grouped by answer. A vote weighs 1, or with `weighting: "trust"` the worker's
//!    trust score / 50 (a new worker 1, an expert up to 2, a flagged worker at most 0.6).
//! 2. The leading answer is the group with the most weight, then the most votes; two groups
//!    level on both means there is no leader (a tie never picks at random).
//! 3. When a leader's weight reaches `agreement` and no slot is still being worked on, the task
//!    is decided: that answer, with confidence = its weight / all weight.
//! 4. Otherwise, while slots are open or being worked on, it waits.
//! 5. When every slot has answered and there is no decision, it extends by the votes the leader
//!    still lacks (at least one), up to `max_workers`; when it cannot extend, or no answer could
//!    reach `agreement` even with every remaining slot, it ends as `no_consensus` with the
//!    distribution.
//! 6. At the deadline it ends with what it has: decided if a leader has reached `agreement`,
//!    `no_consensus` otherwise.
//!
//! Free-text answers are collected: the task ends when every slot has answered (or at the
//! deadline), with every answer and no pick.

use serde::Serialize;
use serde_json::Value;

use super::response::ResponseFormat;

/// How two answers are compared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Comparison {
    /// Equal structured values.
    Exact,
    /// Numbers no further apart than this.
    Within(f64),
    /// Free text: not compared.
    NotCompared,
}

impl Comparison {
    pub fn of(format: &ResponseFormat) -> Comparison {
        match format {
            ResponseFormat::Text => Comparison::NotCompared,
            ResponseFormat::Number { tolerance, .. } => {
                Comparison::Within(tolerance.unwrap_or(0.0))
            }
            _ => Comparison::Exact,
        }
    }
}

/// One worker's answer and the weight of their vote.
#[derive(Clone, Debug, PartialEq)]
pub struct Ballot {
    pub answer: Value,
    pub weight: f64,
}

/// The votes one answer got.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Count {
    pub answer: Value,
    pub votes: u32,
    /// The summed weight of those votes (equal to `votes` without weighting).
    pub weight: f64,
}

/// What the task needs: its current slots, the most it may grow to, and how many must agree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    pub slots: u32,
    pub max_workers: u32,
    pub agreement: u32,
}

/// What to do with the task now.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// An answer reached agreement.
    Agreed { answer: Value, confidence: f64 },
    /// Wait for open slots or work in progress.
    Wait,
    /// Offer this many more slots.
    Extend { more: u32 },
    /// No answer can reach agreement.
    NoConsensus,
    /// Free text: every answer is in.
    Collected,
}

/// Groups the ballots by answer, leader first: most weight, then most votes, then the answer's
/// JSON text, so the order is the same every time.
pub fn tally(ballots: &[Ballot], comparison: Comparison) -> Vec<Count> {
    let mut counts: Vec<Count> = Vec::new();
    match comparison {
        Comparison::Within(tolerance) => {
            // Each distinct number stands for the group of numbers within the tolerance of it;
            // every ballot joins the group of the first (smallest) such number that holds the
            // most ballots.
            let mut numbers: Vec<f64> = ballots.iter().filter_map(|b| b.answer.as_f64()).collect();
            numbers.sort_by(f64::total_cmp);
            numbers.dedup();
            let near = |a: f64, b: f64| (a - b).abs() <= tolerance + 1e-9 * a.abs().max(1.0);
            let mut remaining: Vec<&Ballot> = ballots.iter().collect();
            while !remaining.is_empty() {
                let best = numbers.iter().copied().max_by(|a, b| {
                    let count = |n: f64| {
                        remaining
                            .iter()
                            .filter(|x| x.answer.as_f64().is_some_and(|v| near(v, n)))
                            .count()
                    };
                    count(*a).cmp(&count(*b)).then(b.total_cmp(a))
                });
                let Some(center) = best else { break };
                let (group, rest): (Vec<&Ballot>, Vec<&Ballot>) = remaining
                    .into_iter()
                    .partition(|x| x.answer.as_f64().is_some_and(|v| near(v, center)));
                remaining = rest;
                numbers.retain(|n| !group.iter().any(|x| x.answer.as_f64() == Some(*n)));
                if group.is_empty() {
                    continue;
                }
                counts.push(Count {
                    answer: serde_json::json!(center),
                    votes: group.len() as u32,
                    weight: group.iter().map(|x| x.weight).sum(),
                });
            }
        }
        Comparison::Exact | Comparison::NotCompared => {
            for ballot in ballots {
                match counts.iter_mut().find(|c| c.answer == ballot.answer) {
                    Some(count) => {
                        count.votes += 1;
                        count.weight += ballot.weight;
                    }
                    None => counts.push(Count {
                        answer: ballot.answer.clone(),
                        votes: 1,
                        weight: ballot.weight,
                    }),
                }
            }
        }
    }
    counts.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then(b.votes.cmp(&a.votes))
            .then(a.answer.to_string().cmp(&b.answer.to_string()))
    });
    counts
}

/// The leading count, if one leads alone.
fn leader(counts: &[Count]) -> Option<&Count> {
    let first = counts.first()?;
    match counts.get(1) {
        Some(second) if second.weight == first.weight && second.votes == first.votes => None,
        _ => Some(first),
    }
}

/// Applies the rule (see the module's documentation) to a task's answers so far.
pub fn decide(
    counts: &[Count],
    comparison: Comparison,
    submitted: u32,
    in_progress: u32,
    rule: Rule,
    deadline_passed: bool,
) -> Decision {
    let busy = in_progress > 0;
    if comparison == Comparison::NotCompared {
        let all_in = submitted >= rule.slots && !busy;
        return if all_in || (deadline_passed && submitted > 0) {
            Decision::Collected
        } else {
            Decision::Wait
        };
    }
    let total: f64 = counts.iter().map(|c| c.weight).sum();
    let reached = leader(counts).filter(|c| c.weight >= f64::from(rule.agreement));
    if let Some(lead) = reached
        && (!busy || deadline_passed)
    {
        return Decision::Agreed {
            answer: lead.answer.clone(),
            confidence: if total > 0.0 {
                lead.weight / total
            } else {
                0.0
            },
        };
    }
    if deadline_passed {
        return if submitted > 0 {
            Decision::NoConsensus
        } else {
            Decision::Wait
        };
    }
    if busy || submitted < rule.slots || reached.is_some() {
        return Decision::Wait;
    }
    // Every slot answered and nobody agrees enough.
    let best_votes = counts.first().map_or(0, |c| c.votes);
    let lacking = rule.agreement.saturating_sub(best_votes).max(1);
    let room = rule.max_workers.saturating_sub(rule.slots);
    if room == 0 || best_votes + room < rule.agreement {
        return Decision::NoConsensus;
    }
    Decision::Extend {
        more: lacking.min(room),
    }
}

/// A strict majority of `workers`: the default agreement.
pub fn majority(workers: u32) -> u32 {
    workers / 2 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ballots(answers: &[Value]) -> Vec<Ballot> {
        answers
            .iter()
            .map(|a| Ballot {
                answer: a.clone(),
                weight: 1.0,
            })
            .collect()
    }

    fn rule(slots: u32, max_workers: u32, agreement: u32) -> Rule {
        Rule {
            slots,
            max_workers,
            agreement,
        }
    }

    #[test]
    fn answers_are_folded_before_they_are_compared() {
        let format = ResponseFormat::YesNo;
        for same in ["Yes", " yes ", "ｙｅｓ", "YES", "y"] {
            assert_eq!(format.read_answer(same).unwrap(), json!("yes"), "{same:?}");
        }
        let choice = ResponseFormat::Choice {
            options: vec!["Open".into(), "Closed for good".into()],
        };
        for same in ["open", " OPEN", "Ｏｐｅｎ"] {
            assert_eq!(choice.read_answer(same).unwrap(), json!("Open"), "{same:?}");
        }
        assert_eq!(
            choice.read_answer("closed   FOR good").unwrap(),
            json!("Closed for good")
        );
        let rating = ResponseFormat::Rating { min: 1, max: 5 };
        assert_eq!(rating.read_answer("４").unwrap(), json!(4));
    }

    #[test]
    fn two_of_three_agree() {
        let counts = tally(
            &ballots(&[json!("yes"), json!("no"), json!("yes")]),
            Comparison::Exact,
        );
        let decision = decide(&counts, Comparison::Exact, 3, 0, rule(3, 3, 2), false);
        match decision {
            Decision::Agreed { answer, confidence } => {
                assert_eq!(answer, json!("yes"));
                assert!((confidence - 2.0 / 3.0).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn agreement_waits_for_work_in_progress_but_not_for_open_slots() {
        let counts = tally(&ballots(&[json!("yes"), json!("yes")]), Comparison::Exact);
        assert_eq!(
            decide(&counts, Comparison::Exact, 2, 1, rule(3, 3, 2), false),
            Decision::Wait
        );
        assert!(matches!(
            decide(&counts, Comparison::Exact, 2, 0, rule(3, 3, 2), false),
            Decision::Agreed { .. }
        ));
    }

    #[test]
    fn a_split_extends_then_resolves_or_ends_without_consensus() {
        let split = tally(
            &ballots(&[json!("yes"), json!("no"), json!("yes"), json!("no")]),
            Comparison::Exact,
        );
        assert_eq!(
            decide(&split, Comparison::Exact, 4, 0, rule(4, 5, 3), false),
            Decision::Extend { more: 1 }
        );
        let resolved = tally(
            &ballots(&[
                json!("yes"),
                json!("no"),
                json!("yes"),
                json!("no"),
                json!("no"),
            ]),
            Comparison::Exact,
        );
        assert!(matches!(
            decide(&resolved, Comparison::Exact, 5, 0, rule(5, 5, 3), false),
            Decision::Agreed { answer, .. } if answer == json!("no")
        ));
        assert_eq!(
            decide(&split, Comparison::Exact, 4, 0, rule(4, 4, 3), false),
            Decision::NoConsensus
        );
        let all_different = tally(&ballots(&[json!(1), json!(2), json!(3)]), Comparison::Exact);
        assert_eq!(
            decide(
                &all_different,
                Comparison::Exact,
                3,
                0,
                rule(3, 4, 2),
                false
            ),
            Decision::Extend { more: 1 }
        );
        assert_eq!(
            decide(
                &all_different,
                Comparison::Exact,
                3,
                0,
                rule(3, 3, 2),
                false
            ),
            Decision::NoConsensus
        );
    }

    #[test]
    fn a_tie_is_never_a_pick() {
        let tie = tally(&ballots(&[json!("a"), json!("b")]), Comparison::Exact);
        assert_eq!(
            decide(&tie, Comparison::Exact, 2, 0, rule(2, 2, 1), false),
            Decision::NoConsensus
        );
        assert_eq!(
            decide(&tie, Comparison::Exact, 2, 0, rule(2, 2, 1), true),
            Decision::NoConsensus
        );
    }

    #[test]
    fn numbers_agree_within_the_tolerance() {
        let numbers = ballots(&[json!(100.0), json!(102.0), json!(99.0), json!(150.0)]);
        let counts = tally(&numbers, Comparison::Within(3.0));
        assert_eq!(counts[0].votes, 3, "{counts:?}");
        assert_eq!(counts[1].votes, 1);
        let exact = tally(&numbers, Comparison::Within(0.0));
        assert_eq!(exact.len(), 4);
    }

    #[test]
    fn trust_weighting_lets_trusted_votes_count_more() {
        let weighted = vec![
            Ballot {
                answer: json!("yes"),
                weight: 1.8,
            },
            Ballot {
                answer: json!("no"),
                weight: 0.6,
            },
            Ballot {
                answer: json!("no"),
                weight: 0.6,
            },
        ];
        let counts = tally(&weighted, Comparison::Exact);
        assert_eq!(counts[0].answer, json!("yes"));
        // 1.8 is short of the agreement of 2: one more vote is sought.
        assert_eq!(
            decide(&counts, Comparison::Exact, 3, 0, rule(3, 5, 2), false),
            Decision::Extend { more: 1 }
        );
    }

    #[test]
    fn free_text_is_collected_not_compared() {
        let texts = tally(&ballots(&[json!("a"), json!("b")]), Comparison::NotCompared);
        assert_eq!(
            decide(&texts, Comparison::NotCompared, 2, 0, rule(2, 2, 2), false),
            Decision::Collected
        );
        assert_eq!(
            decide(&texts, Comparison::NotCompared, 1, 1, rule(2, 2, 2), false),
            Decision::Wait
        );
    }

    #[test]
    fn at_the_deadline_a_task_ends_with_what_it_has() {
        let one = tally(&ballots(&[json!("yes")]), Comparison::Exact);
        assert_eq!(
            decide(&one, Comparison::Exact, 1, 0, rule(3, 3, 2), true),
            Decision::NoConsensus
        );
        let two = tally(&ballots(&[json!("yes"), json!("yes")]), Comparison::Exact);
        assert!(matches!(
            decide(&two, Comparison::Exact, 2, 1, rule(3, 3, 2), true),
            Decision::Agreed { .. }
        ));
    }
}

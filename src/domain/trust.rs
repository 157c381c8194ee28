//! The trust score of a worker, 0 to 100.
//!
//! The score is the share of approved results among resolved work, pulled towards a prior for
//! workers with little history: `score = 100 × (approved + P × prior) / (resolved + P)`, where
//! `resolved = approved + rejected + abandoned + lease_expired`, the prior is 0.5 and its
//! weight `P` is 10 results. A new worker starts at 50; one approval lifts them to 54.5, not to
//! 100. The result is rounded down to a whole number.

/// A worker's track record, as counts of assignments by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub approved: i64,
    pub rejected: i64,
    pub abandoned: i64,
    pub lease_expired: i64,
}

/// The score a worker with no history starts at.
pub const PRIOR_SCORE: i64 = 50;
const PRIOR_WEIGHT: i64 = 10;

/// The trust score for a record.
pub fn score(record: Record) -> i64 {
    let clamp = |n: i64| n.max(0);
    let approved = clamp(record.approved);
    let resolved =
        approved + clamp(record.rejected) + clamp(record.abandoned) + clamp(record.lease_expired);
    let numerator = 100 * approved + PRIOR_SCORE * PRIOR_WEIGHT;
    (numerator / (resolved + PRIOR_WEIGHT)).clamp(0, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_workers_start_at_the_prior() {
        assert_eq!(score(Record::default()), PRIOR_SCORE);
        assert_eq!(
            score(Record {
                approved: 1,
                ..Record::default()
            }),
            54
        );
    }

    #[test]
    fn approvals_never_lower_and_rejections_never_raise() {
        for approved in 0..40 {
            for rejected in 0..40 {
                let base = Record {
                    approved,
                    rejected,
                    ..Record::default()
                };
                let s = score(base);
                assert!((0..=100).contains(&s));
                assert!(
                    score(Record {
                        approved: approved + 1,
                        ..base
                    }) >= s
                );
                assert!(
                    score(Record {
                        rejected: rejected + 1,
                        ..base
                    }) <= s
                );
            }
        }
    }
}

//! Task and assignment states, and which moves between them are allowed.
//!
//! ```text
//! task:        open ──► in_progress ──► completed ──► approved
//!                │            │              └──────► refunded (disputed)
//!                └────────────┴──► cancelled | expired
//! assignment:  claimed ──► submitted ──► approved | rejected
//!                  └──► abandoned | lease_expired (the slot goes back to the pool)
//!                  └──► task_ended (the deadline passed while claimed)
//! ```

use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a task is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Waiting for a worker to claim a slot.
    Open,
    /// Every slot is claimed; workers are on it.
    InProgress,
    /// Every slot has a result; the agent may approve or dispute until the review deadline.
    Completed,
    /// The agent approved (or the review window passed); the workers are paid.
    Approved,
    /// The agent disputed the result; the money went back to the agent.
    Refunded,
    /// The agent cancelled before any worker took it; the money went back to the agent.
    Cancelled,
    /// The deadline passed before a result came in; the money went back to the agent.
    Expired,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Open => "open",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Completed => "completed",
            TaskStatus::Approved => "approved",
            TaskStatus::Refunded => "refunded",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Expired => "expired",
        }
    }

    /// A task in a final state moves no more money and holds none.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskStatus::Approved
                | TaskStatus::Refunded
                | TaskStatus::Cancelled
                | TaskStatus::Expired
        )
    }

    /// Whether a worker may still take a slot.
    pub fn is_claimable(self) -> bool {
        self == TaskStatus::Open
    }
}

impl FromStr for TaskStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const ALL: [TaskStatus; 7] = [
            TaskStatus::Open,
            TaskStatus::InProgress,
            TaskStatus::Completed,
            TaskStatus::Approved,
            TaskStatus::Refunded,
            TaskStatus::Cancelled,
            TaskStatus::Expired,
        ];
        ALL.into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown task status {text:?}"))
    }
}

/// Where one worker's slot of a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentStatus {
    /// The worker holds the slot until the lease runs out.
    Claimed,
    /// The worker sent a result; it waits for the agent's review.
    Submitted,
    /// The result was approved and the worker paid.
    Approved,
    /// The result was disputed; the worker was not paid.
    Rejected,
    /// The worker gave the slot back.
    Abandoned,
    /// The lease ran out before a result came in; the slot went back to the pool.
    LeaseExpired,
    /// The task reached its deadline while the worker still held the claim; not held against
    /// the worker.
    TaskEnded,
}

impl AssignmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentStatus::Claimed => "claimed",
            AssignmentStatus::Submitted => "submitted",
            AssignmentStatus::Approved => "approved",
            AssignmentStatus::Rejected => "rejected",
            AssignmentStatus::Abandoned => "abandoned",
            AssignmentStatus::LeaseExpired => "lease_expired",
            AssignmentStatus::TaskEnded => "task_ended",
        }
    }

    /// Whether this assignment still occupies one of the task's slots.
    pub fn holds_slot(self) -> bool {
        matches!(
            self,
            AssignmentStatus::Claimed | AssignmentStatus::Submitted | AssignmentStatus::Approved
        )
    }
}

impl FromStr for AssignmentStatus {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const ALL: [AssignmentStatus; 7] = [
            AssignmentStatus::Claimed,
            AssignmentStatus::Submitted,
            AssignmentStatus::Approved,
            AssignmentStatus::Rejected,
            AssignmentStatus::Abandoned,
            AssignmentStatus::LeaseExpired,
            AssignmentStatus::TaskEnded,
        ];
        ALL.into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("unknown assignment status {text:?}"))
    }
}

/// The status a task with `slots` slots has, given how many are claimed and submitted.
/// Only meaningful while the task is not final.
pub fn live_status(slots: i64, claimed: i64, submitted: i64) -> TaskStatus {
    if submitted >= slots {
        TaskStatus::Completed
    } else if claimed + submitted >= slots {
        TaskStatus::InProgress
    } else {
        TaskStatus::Open
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_through_text() {
        for s in [
            "open",
            "in_progress",
            "completed",
            "approved",
            "refunded",
            "cancelled",
            "expired",
        ] {
            assert_eq!(s.parse::<TaskStatus>().unwrap().as_str(), s);
        }
        for s in [
            "claimed",
            "submitted",
            "approved",
            "rejected",
            "abandoned",
            "lease_expired",
        ] {
            assert_eq!(s.parse::<AssignmentStatus>().unwrap().as_str(), s);
        }
    }

    #[test]
    fn live_status_follows_the_slots() {
        assert_eq!(live_status(1, 0, 0), TaskStatus::Open);
        assert_eq!(live_status(1, 1, 0), TaskStatus::InProgress);
        assert_eq!(live_status(1, 0, 1), TaskStatus::Completed);
        assert_eq!(live_status(3, 1, 1), TaskStatus::Open);
        assert_eq!(live_status(3, 2, 1), TaskStatus::InProgress);
        assert_eq!(live_status(3, 0, 3), TaskStatus::Completed);
    }

    #[test]
    fn final_states_are_exactly_the_ones_that_hold_no_money() {
        assert!(!TaskStatus::Open.is_final());
        assert!(!TaskStatus::InProgress.is_final());
        assert!(!TaskStatus::Completed.is_final());
        assert!(TaskStatus::Approved.is_final());
        assert!(TaskStatus::Refunded.is_final());
        assert!(TaskStatus::Cancelled.is_final());
        assert!(TaskStatus::Expired.is_final());
    }
}

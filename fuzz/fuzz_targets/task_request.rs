//! What an agent sends to create a task: any JSON is either refused with a message or becomes a
//! task whose money and times are in range; nothing panics.

#![no_main]

use humanping::input::CreateTaskBody;
use libfuzzer_sys::fuzz_target;

/// A fixed "now" (2027-01-15), so a failure repeats.
const NOW_MS: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<CreateTaskBody>(data) else {
        return;
    };
    if let Ok(task) = body.into_draft().validate(NOW_MS) {
        assert!(
            task.budget.get() > 0,
            "a task with budget {:?}",
            task.budget
        );
        assert!(
            task.deadline_at_ms > NOW_MS,
            "a task due at {}",
            task.deadline_at_ms
        );
    }
});

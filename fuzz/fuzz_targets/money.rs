//! Dollar amounts as agents type them: parsing never panics, and what it accepts is a
//! non-negative amount of cents that reads back to itself.

#![no_main]

use humanping::domain::money::Cents;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cents) = Cents::parse_dollars(text) {
        assert!(cents.get() >= 0, "{text:?} parsed to {cents:?}");
        let again = Cents::parse_dollars(&cents.to_string()).expect("its own text parses");
        assert_eq!(again, cents, "{text:?}");
    }
    // The same text as a JSON value (a number or a string) goes through `from_json`.
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        if let Ok(cents) = Cents::from_json(&value) {
            assert!(cents.get() >= 0, "{value} read as {cents:?}");
        }
    }
});

//! `q=` reaches the parser from any client: it gives a filter or an error positioned inside
//! the input, never a panic; a parsed filter prints to text that parses back to itself; and
//! intervals and aggregation names never panic either.
#![no_main]

use ingot_query::{Agg, Interval, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse(text) {
        Ok(filter) => {
            let shown = filter.to_string();
            assert_eq!(parse(&shown).ok(), Some(filter), "{shown:?} from {text:?}");
        }
        Err(e) => assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{e} for {text:?}"),
    }
    let _ = Interval::parse_spec(text);
    let _ = Agg::parse(text);
});

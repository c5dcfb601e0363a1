//! The gateway's denylist (`gateway/src/deny.rs`): a file an operator edits by hand,
//! re-read whenever it changes while the gateway serves.
//!
//! Checks, for any text: no panic; the list is the union of what each line gives on
//! its own (a line never affects another, so one typo does not lift the list), and a
//! line gives at most one entry; a comment added after any line changes nothing; the
//! list written back as one hex hash per line reads as the same list.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use mosaic_fuzz::gateway_deny::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let list = parse(&text, "fuzz");

    let mut union = HashSet::new();
    for line in text.lines() {
        let one = parse(line, "fuzz");
        assert!(one.len() <= 1, "{line:?} gave {} entries", one.len());
        union.extend(one);
    }
    assert_eq!(list, union);

    let commented: String = text.lines().map(|l| format!("{l} # note\n")).collect();
    assert_eq!(parse(&commented, "fuzz"), list);

    let written: String = list.iter().map(|h| format!("{}\n", h.to_hex())).collect();
    assert_eq!(parse(&written, "fuzz"), list);
});

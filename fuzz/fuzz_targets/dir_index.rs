//! The directory index (mosaic-client `dir.rs`): JSON a gateway fetches from the
//! network and then trusts to route `/p/ID/path` requests.
//!
//! Checks, for any bytes: no panic; an index that parses keeps the invariants its
//! module promises (valid, unique paths; no path both a file and a directory), prints
//! as bytes that parse back to the same index, and answers lookups consistently: each
//! entry is found as a file, each of its parent directories as a directory, and the
//! listing of every directory holds each child once, as what a lookup finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mosaic_fuzz::client_dir::{Directory, Lookup, valid_path};

fuzz_target!(|data: &[u8]| {
    let dir = match Directory::parse(data) {
        Ok(d) => d,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            let _ = e.kind();
            return;
        }
    };
    let bytes = dir.to_bytes();
    let again = Directory::parse(&bytes).expect("a parsed index prints as a valid one");
    assert_eq!(again, dir);
    assert_eq!(again.to_bytes(), bytes, "printing is a fixed point");
    assert_eq!(dir.ids().count(), dir.len());
    assert_eq!(dir.is_empty(), dir.ids().next().is_none());
    assert_eq!(dir.lookup(""), Lookup::Dir);

    let mut previous: Option<&str> = None;
    for (path, entry) in dir.entries() {
        assert!(valid_path(path), "{path:?}");
        assert!(
            previous.is_none_or(|p| p < path),
            "entries are sorted and unique"
        );
        previous = Some(path);
        assert_eq!(dir.lookup(path), Lookup::File(entry));
        assert_eq!(dir.lookup(&format!("{path}/")), Lookup::File(entry));
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !parent.is_empty() {
            assert_eq!(dir.lookup(parent), Lookup::Dir, "{parent:?} of {path:?}");
        }
        let listed = dir.children(parent);
        assert!(
            listed.iter().any(|(n, e)| n == name && *e == Some(entry)),
            "{path:?} not listed in {parent:?}"
        );
    }
    for parent in std::iter::once("").chain(
        dir.entries()
            .filter_map(|(p, _)| p.rsplit_once('/').map(|s| s.0)),
    ) {
        let listed = dir.children(parent);
        let names: std::collections::HashSet<&str> =
            listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names.len(),
            listed.len(),
            "a child of {parent:?} is listed twice"
        );
        for (name, entry) in &listed {
            let child = if parent.is_empty() {
                name.clone()
            } else {
                format!("{parent}/{name}")
            };
            match entry {
                Some(e) => assert_eq!(dir.lookup(&child), Lookup::File(e)),
                None => assert_eq!(dir.lookup(&child), Lookup::Dir),
            }
        }
    }
});

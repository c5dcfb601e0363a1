//! The gateway's `Range` planner and the other header helpers of `gateway/src/http.rs`,
//! on headers any browser or script may send.
//!
//! Checks, for any header value and representation length: no panic (no overflow, no
//! slicing outside a string); a part asked for is a non-empty range inside the
//! representation; a stale `If-Range` gets the whole representation; and against a
//! model of RFC 9110 §14 for one `first-last`, `first-` or `-suffix` spec built from
//! the input's numbers, the exact answer. `Content-Disposition` from any file name is
//! a valid header value; sniffing any bytes names a media type.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use libfuzzer_sys::fuzz_target;
use mosaic_fuzz::gateway_http::{RangeAsk, attachment, not_modified, range_ask, sniff};

const ETAG: &str = "\"0123abcd\"";

/// Bytes before the raw header value: length, flags, two numbers (short inputs are
/// padded with zeros), so that seeds are written by hand.
const CONTROL: usize = 25;

fuzz_target!(|data: &[u8]| {
    let mut control = [0u8; CONTROL];
    let n = data.len().min(CONTROL);
    control[..n].copy_from_slice(&data[..n]);
    let raw = &data[n..];
    let word = |at: usize| u64::from_le_bytes(control[at..at + 8].try_into().expect("8 bytes"));
    let flags = control[8];
    // The representation's length: a small one often, so ranges reach its end.
    let len = if flags & 1 == 1 {
        word(0) % 4096
    } else {
        word(0)
    };
    let first = (flags & 8 != 0).then(|| word(9));
    let last = (flags & 16 != 0).then(|| word(17));

    // The raw value, as the header arrives, with no, our or another `If-Range`.
    if let Ok(value) = HeaderValue::from_bytes(raw) {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, value.clone());
        let fresh = match (flags >> 1) & 3 {
            1 => {
                headers.insert(header::IF_RANGE, HeaderValue::from_static(ETAG));
                true
            }
            2 => {
                headers.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
                false
            }
            3 => {
                headers.insert(header::IF_RANGE, value.clone());
                value.as_bytes() == ETAG.as_bytes()
            }
            _ => true,
        };
        let ask = range_ask(&headers, len, ETAG);
        check_ask(&ask, len);
        if !fresh {
            assert_eq!(ask, RangeAsk::Whole, "a stale If-Range got a part");
        }
        let mut validators = HeaderMap::new();
        validators.insert(header::IF_NONE_MATCH, value);
        let _ = not_modified(&validators, ETAG);
    }

    // One spec built from the numbers, against the RFC's rules.
    let (text, expected) = model(first, last, len);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::RANGE,
        HeaderValue::from_str(&text).expect("digits and a dash"),
    );
    assert_eq!(range_ask(&headers, len, ETAG), expected, "{text} of {len}");

    // The other helpers, on the same bytes.
    let name = String::from_utf8_lossy(raw);
    let disposition = attachment(&name);
    assert_ne!(disposition, "invalid", "Content-Disposition for {name:?}");
    assert!(
        disposition
            .to_str()
            .is_ok_and(|v| v.starts_with("attachment; "))
    );
    assert!(!sniff(raw).is_empty());
});

/// A part is non-empty and inside the representation.
fn check_ask(ask: &RangeAsk, len: u64) {
    if let RangeAsk::Part(r) = ask {
        assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
    }
}

/// One range spec from the input's numbers, and what RFC 9110 §14 answers for it.
fn model(first: Option<u64>, last: Option<u64>, len: u64) -> (String, RangeAsk) {
    use RangeAsk::*;
    match (first, last) {
        // `first-last`: last before first does not parse, and the header is ignored.
        (Some(f), Some(l)) => (
            format!("bytes={f}-{l}"),
            if l < f {
                Whole
            } else if f >= len {
                Unsatisfiable
            } else {
                Part(f..l.saturating_add(1).min(len))
            },
        ),
        (Some(f), None) => (
            format!("bytes={f}-"),
            if f >= len {
                Unsatisfiable
            } else {
                Part(f..len)
            },
        ),
        // `-suffix`: the last `n` bytes; none of an empty representation.
        (None, Some(n)) => (
            format!("bytes=-{n}"),
            if n == 0 || len == 0 {
                Unsatisfiable
            } else {
                Part(len - n.min(len)..len)
            },
        ),
        (None, None) => ("bytes=-".to_owned(), Whole),
    }
}

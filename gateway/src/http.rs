//! HTTP semantics the gateway's routes share: ranges, validators, media types.
//!
//! Ranges follow RFC 9110 §14: one satisfiable range is answered with 206 and
//! `Content-Range`; a range set none of whose ranges is satisfiable with 416 and
//! `Content-Range: bytes */LEN`; a header that does not parse is ignored (200, the
//! whole representation). Several ranges are answered with 200 and the whole
//! representation, which the RFC allows ("a server MAY ignore the Range header"): the
//! clients that matter (browsers' media elements, download managers) ask for one range.
//!
//! Self-contained (external crates only, no `crate::` paths): the fuzz crate compiles
//! this file on its own (`fuzz/src/lib.rs`).

use std::ops::Range;

use axum::http::{HeaderMap, HeaderValue, header};

/// What a request's `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAsk {
    /// The whole representation (no header, one that does not parse, several ranges,
    /// or an `If-Range` that does not match).
    Whole,
    /// One satisfiable range.
    Part(Range<u64>),
    /// Nothing satisfiable.
    Unsatisfiable,
}

/// Interprets the request's `Range` (and `If-Range`) for a representation of `len`
/// bytes whose strong entity tag is `etag`.
pub fn range_ask(headers: &HeaderMap, len: u64, etag: &str) -> RangeAsk {
    let Some(value) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return RangeAsk::Whole;
    };
    if let Some(if_range) = headers.get(header::IF_RANGE) {
        // Only our strong tag validates (a date cannot: we send no Last-Modified
        // strong enough to compare with).
        if if_range.as_bytes() != etag.as_bytes() {
            return RangeAsk::Whole;
        }
    }
    let Some(specs) = parse_range(value) else {
        return RangeAsk::Whole;
    };
    let satisfiable: Vec<Range<u64>> = specs.iter().filter_map(|s| s.resolve(len)).collect();
    match (specs.len(), satisfiable.len()) {
        (_, 0) => RangeAsk::Unsatisfiable,
        (1, _) => RangeAsk::Part(satisfiable[0].clone()),
        _ => RangeAsk::Whole,
    }
}

/// One `range-spec` of RFC 9110 §14.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last` (`last` absent: to the end).
    Int(u64, Option<u64>),
    /// `-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes it selects of a `len`-byte representation, if it is satisfiable.
    fn resolve(self, len: u64) -> Option<Range<u64>> {
        match self {
            RangeSpec::Int(first, _) if first >= len => None,
            RangeSpec::Int(first, last) => {
                Some(first..last.map_or(len, |l| l.saturating_add(1).min(len)))
            }
            RangeSpec::Suffix(0) => None,
            RangeSpec::Suffix(_) if len == 0 => None,
            RangeSpec::Suffix(n) => Some(len.saturating_sub(n)..len),
        }
    }
}

/// Parses `bytes=range-set`; `None` if it does not parse (then the header is ignored),
/// including an `int-range` whose last position is before its first.
fn parse_range(value: &str) -> Option<Vec<RangeSpec>> {
    let (unit, set) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut specs = Vec::new();
    for part in set.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue; // RFC 9110 list syntax tolerates empty elements
        }
        let (first, last) = part.split_once('-')?;
        specs.push(if first.is_empty() {
            RangeSpec::Suffix(number(last)?)
        } else {
            let first = number(first)?;
            let last = if last.is_empty() {
                None
            } else {
                Some(number(last)?)
            };
            if last.is_some_and(|l| l < first) {
                return None;
            }
            RangeSpec::Int(first, last)
        });
        if specs.len() > 100 {
            return None; // nobody needs more; don't let a header make us work
        }
    }
    (!specs.is_empty()).then_some(specs)
}

/// Whether `If-None-Match` matches `etag` (weak comparison, as RFC 9110 §13.1.2 says).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    let want = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == want)
}

/// The strong entity tag of a content-addressed representation.
pub fn etag_of(id: &mosaic_codec::Hash) -> String {
    format!("\"{}\"", id.to_hex())
}

/// A header value from a string we built (always valid), or a fallback.
pub fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// `Content-Disposition` for a download named `name`: an ASCII fallback and the exact
/// name (RFC 6266, RFC 8187).
pub fn attachment(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC);
    value(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
}

/// The media type of bytes that start with `head`, from their signature, for files
/// stored without one and whose name says nothing. Conservative: HTML is recognized
/// only by its opening markup, and anything unrecognized is `application/octet-stream`
/// (sent with `nosniff`, so a browser will not guess further).
pub fn sniff(head: &[u8]) -> &'static str {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"\x1a\x45\xdf\xa3", "video/webm"),
        (b"OggS", "audio/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"fLaC", "audio/flac"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
    ];
    for (sig, media) in SIGNATURES {
        if head.starts_with(sig) {
            return media;
        }
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        return "video/mp4";
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return "image/webp";
    }
    let text = head.trim_ascii_start();
    let lower: Vec<u8> = text.iter().take(14).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return "text/html; charset=utf-8";
    }
    // UTF-8 without control bytes (a multi-byte character cut at the end is fine).
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    if valid
        && !head
            .iter()
            .any(|&b| b < 0x20 && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c))
    {
        return "text/plain; charset=utf-8";
    }
    "application/octet-stream"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ranges() {
        let tag = "\"t\"";
        let ask = |v: &str| range_ask(&with(&[(header::RANGE, v)]), 1000, tag);
        assert_eq!(ask("bytes=0-99"), RangeAsk::Part(0..100));
        assert_eq!(ask("bytes=900-"), RangeAsk::Part(900..1000));
        assert_eq!(ask("bytes=-100"), RangeAsk::Part(900..1000));
        assert_eq!(ask("bytes=990-2000"), RangeAsk::Part(990..1000));
        assert_eq!(ask("bytes=1000-"), RangeAsk::Unsatisfiable);
        assert_eq!(ask("bytes=0-1,5-9"), RangeAsk::Whole);
        assert_eq!(ask("lines=1-2"), RangeAsk::Whole);
        assert_eq!(ask("bytes=5-1"), RangeAsk::Whole);
        assert_eq!(
            ask("bytes=-5000"),
            RangeAsk::Part(0..1000),
            "suffix longer than the file"
        );
        assert_eq!(ask("bytes=-0"), RangeAsk::Unsatisfiable);
        assert_eq!(ask("BYTES = 10-19"), RangeAsk::Part(10..20));
        assert_eq!(ask("bytes=2000-,3000-"), RangeAsk::Unsatisfiable);
        assert_eq!(ask("bytes=0-5,0-9"), RangeAsk::Whole, "overlapping: whole");
        assert_eq!(ask("bytes=a-b"), RangeAsk::Whole);
        assert_eq!(ask("bytes=+1-2"), RangeAsk::Whole);
        assert_eq!(
            ask("bytes=99999999999999999999-"),
            RangeAsk::Whole,
            "overflow"
        );
        let empty = |v: &str| range_ask(&with(&[(header::RANGE, v)]), 0, tag);
        assert_eq!(empty("bytes=0-"), RangeAsk::Unsatisfiable);
        assert_eq!(empty("bytes=-10"), RangeAsk::Unsatisfiable);
        assert_eq!(range_ask(&HeaderMap::new(), 1000, tag), RangeAsk::Whole);
        let stale = with(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, "\"old\"")]);
        assert_eq!(range_ask(&stale, 1000, tag), RangeAsk::Whole);
        let fresh = with(&[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, tag)]);
        assert_eq!(range_ask(&fresh, 1000, tag), RangeAsk::Part(0..10));
    }

    #[test]
    fn validators() {
        let tag = "\"abc\"";
        assert!(not_modified(&with(&[(header::IF_NONE_MATCH, tag)]), tag));
        assert!(not_modified(
            &with(&[(header::IF_NONE_MATCH, "W/\"abc\"")]),
            tag
        ));
        assert!(not_modified(
            &with(&[(header::IF_NONE_MATCH, "\"x\", \"abc\"")]),
            tag
        ));
        assert!(not_modified(&with(&[(header::IF_NONE_MATCH, "*")]), tag));
        assert!(!not_modified(
            &with(&[(header::IF_NONE_MATCH, "\"x\"")]),
            tag
        ));
        assert!(!not_modified(&HeaderMap::new(), tag));
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), "image/png");
        assert_eq!(sniff(b"\0\0\0\x20ftypisom...."), "video/mp4");
        assert_eq!(sniff(b"  <!DOCTYPE html><p>hi"), "text/html; charset=utf-8");
        assert_eq!(sniff("héllo\n".as_bytes()), "text/plain; charset=utf-8");
        assert_eq!(sniff(b"\0\x01\x02"), "application/octet-stream");
    }

    #[test]
    fn disposition_keeps_the_name_and_an_ascii_fallback() {
        let v = attachment("résumé \"1\".pdf");
        let s = v.to_str().unwrap();
        assert!(
            s.starts_with("attachment; filename=\"r_sum_ _1_.pdf\""),
            "{s}"
        );
        assert!(
            s.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22%2Epdf"),
            "{s}"
        );
    }
}

//! Drops DHT answers that arrive after n0-mainline has given up on their request, so
//! they cannot inflate its request timeout (issue 27; upstream report:
//! `docs/dht-timeouts.md`).
//!
//! n0-mainline 0.7.1 estimates its KRPC request timeout as TCP does (`rtt + 4·dev`,
//! starting at and never below 500 ms, samples under 500 ms ignored) and samples every
//! answer to a request it still lists, even one it already counts as timed out. One
//! answer from a node that was frozen for F seconds sets the timeout to about F, and
//! fast answers never bring it back down. This filter runs in the crate's receive hook
//! ([`n0_mainline::DatagramHook`], before KRPC decoding) and consumes such answers.
//!
//! **Provable age.** The hook sees answers, never requests, so it cannot know when a
//! request was sent. But the crate numbers requests in send order (the KRPC `t`, a u32
//! counter from 0), so an answer to `T' ≥ T` arriving at `s` proves `T` was sent before
//! `s`: `age(T) ≥ now − min{arrival(T') : T' ≥ T}`. This is a *lower bound*: close to
//! exact when traffic is dense (a later request was answered soon after `T` was sent),
//! `0` when no later request has been answered yet. Hence:
//! - an answer dropped as late is at least [`LATE_LIMIT`] old; the crate's timeout
//!   (normally 500 ms to a few seconds) has expired, so it would only have sampled it,
//!   not used it. If the crate's timeout is already above the answer's age (inflated
//!   before this filter saw anything, or by an answer it could not judge), the drop costs
//!   a result: that is the price of keeping the timeout down.
//! - an answer that passes may be older than the filter can tell (the last request
//!   before a quiet spell, or answers queued while this process itself was paused).
//!   It reaches the crate and can still inflate its timeout: the filter narrows the
//!   bug, only the upstream fix closes it.
//!
//! **Mirror.** Over the answers that pass, the filter runs the crate's estimator (same
//! start, alpha 1/8, beta 1/4, same 500 ms floor on samples) with the provable age as
//! the sample, and also drops an answer whose sample would push that estimate above
//! [`TIMEOUT_CAP`]. [`LateFilter::request_timeout`] reports it: an estimate of the
//! crate's timeout built on lower bounds, so the crate's own may be higher (it samples
//! true ages, and answers the filter saw no evidence against).
//!
//! **Forged answers.** Anyone can send a datagram with any `t`. One whose `t` has not
//! been sent yet would make every answer below it look old: a single packet with
//! `t = u32::MAX` would have the filter drop every answer for good. So:
//! - evidence needs answers from two distinct sources (IP address; IP and port on
//!   loopback, where a test network's nodes share an address): the lower of their two
//!   tids is then proven by whichever of the two is honest;
//! - evidence may run at most [`MAX_TID_JUMP`] tids ahead of what is already proven;
//! - when answers from [`REBASE_SOURCES`] distinct sources have been dropped as late or
//!   found out of range while the proof did not advance, the evidence is thrown away and
//!   rebuilt above the lowest of their tids (fail open: stop dropping rather than drop
//!   everything). This also recovers from a long outage (tids far ahead) and from the
//!   tid counter wrapping.
//!
//! Two colluding senders who know our current tid can still have some answers dropped
//! until this recovery kicks in; such a sender can already make the crate lose answers
//! (it removes a request on any answer bearing its tid, before checking who sent it), so
//! this bounds what the filter adds rather than making the DHT forgery-proof.
//!
//! Invariants: the staircase's tids strictly increase and its times never decrease;
//! every stair `(T, s)` was shown by two distinct sources answering a tid `≥ T` by `s`;
//! removing stairs only weakens the bound, never falsifies it. Nothing here panics,
//! whatever the bytes; nothing reads the clock (callers pass `now`), so tests are exact.

use std::{
    collections::VecDeque,
    net::{Ipv4Addr, SocketAddrV4},
    time::{Duration, Instant},
};

/// An answer at least this old is dropped. The crate's timeout floor is 500 ms, so it
/// has given up on the request; younger answers (slow real links) still reach it and
/// let its estimate adapt a little.
pub(crate) const LATE_LIMIT: Duration = Duration::from_secs(1);
/// An answer whose sample would push the mirrored timeout above this is dropped. TCP
/// (RFC 6298) bounds its RTO too, though at 60 s; a DHT lookup asks many nodes at once
/// and loses little by ignoring one slow answer. At 2 s, two answers 0.9 s late from a
/// node just resumed held a node's timeout at 1.24 s in the churn benchmark; a timeout
/// of 1 s still covers round trips of 600 ms and more.
pub(crate) const TIMEOUT_CAP: Duration = Duration::from_secs(1);
/// n0-mainline's `MIN_REQUEST_TIMEOUT`: its estimate starts here and ignores samples
/// below it.
const MIN_TIMEOUT: Duration = Duration::from_millis(500);
/// The crate's estimator gains (TCP's).
const ALPHA: f64 = 0.125;
const BETA: f64 = 0.25;
/// Stairs older than this are pruned, but the newest is kept: an idle node still judges
/// the late answers of the last requests it made.
const EVIDENCE_TTL: Duration = Duration::from_secs(10 * 60);
/// Stairs closer in time than this are merged (the bound loses at most this much), so
/// dense traffic adds at most a few stairs per grain.
const GRAIN: Duration = Duration::from_millis(100);
/// At most this many stairs (the oldest go first): a few minutes of dense traffic.
const MAX_STAIRS: usize = 4096;
/// Evidence may run this many tids ahead of what is proven: a lookup's burst to dead
/// nodes, with room to spare. Beyond it an answer proves nothing (and is suspect).
pub(crate) const MAX_TID_JUMP: u32 = 4096;
/// Distinct suspect sources that make the filter throw its evidence away.
pub(crate) const REBASE_SOURCES: usize = 8;

/// A KRPC message's type (`y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `q`: a request from another node.
    Query,
    /// `r`: an answer to one of ours.
    Response,
    /// `e`: an error answering one of ours.
    Error,
}

/// What the filter reads from a KRPC datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// `t`: 4 bytes big-endian, or 2 (as a u16), as n0-mainline decodes it.
    pub(crate) tid: u32,
}

/// The type and transaction id of a KRPC datagram: a bencoded dictionary, closed at the
/// datagram's end, holding byte strings `y` and `t` once each. Anything else is `None`
/// (not ours to judge: the crate decides).
pub(crate) fn header(bytes: &[u8]) -> Option<Header> {
    let mut r = Reader { buf: bytes, pos: 0 };
    if r.next()? != b'd' {
        return None;
    }
    let (mut t, mut y) = (None, None);
    loop {
        if r.peek()? == b'e' {
            r.pos += 1;
            break;
        }
        let key = r.string()?;
        let slot = match key {
            b"t" => &mut t,
            b"y" => &mut y,
            _ => {
                r.skip()?;
                continue;
            }
        };
        // A repeated key is ambiguous: leave the message to the crate.
        if slot.replace(r.string()?).is_some() {
            return None;
        }
    }
    if r.pos != bytes.len() {
        return None;
    }
    let kind = match y? {
        b"q" => Kind::Query,
        b"r" => Kind::Response,
        b"e" => Kind::Error,
        _ => return None,
    };
    let tid = match *t? {
        [a, b] => u32::from(u16::from_be_bytes([a, b])),
        [a, b, c, d] => u32::from_be_bytes([a, b, c, d]),
        _ => return None,
    };
    Some(Header { kind, tid })
}

/// Just enough bencode to find two keys: every read is bounds-checked and returns
/// `None` past the end, and skipping nests with a counter (no recursion).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    /// `<length>:<bytes>`.
    fn string(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        let mut len: usize = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            len = len.checked_mul(10)?.checked_add(usize::from(d - b'0'))?;
            self.pos += 1;
        }
        if self.pos == start || self.next()? != b':' {
            return None;
        }
        let end = self.pos.checked_add(len)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// `i<digits>e`, maybe negative.
    fn int(&mut self) -> Option<()> {
        if self.next()? != b'i' {
            return None;
        }
        if self.peek()? == b'-' {
            self.pos += 1;
        }
        let start = self.pos;
        while self.peek()?.is_ascii_digit() {
            self.pos += 1;
        }
        (self.pos > start && self.next()? == b'e').then_some(())
    }

    /// Steps over one value of any kind.
    fn skip(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'i' => self.int()?,
                b'0'..=b'9' => {
                    self.string()?;
                }
                b'l' | b'd' => {
                    self.pos += 1;
                    depth += 1;
                    continue;
                }
                b'e' if depth > 0 => {
                    self.pos += 1;
                    depth -= 1;
                }
                _ => return None,
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

/// Whether the crate may see a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Hand it to the crate.
    Pass,
    /// Consume it: an answer the crate has given up on.
    Drop,
}

/// Who sent an answer, as far as telling two senders apart goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Source(Ipv4Addr, u16);

impl Source {
    /// One host can answer from many ports, so a port does not make a second witness,
    /// except on loopback, where a local test network's nodes differ only by port (and
    /// any sender is a local process).
    fn of(addr: SocketAddrV4) -> Self {
        let port = if addr.ip().is_loopback() {
            addr.port()
        } else {
            0
        };
        Source(*addr.ip(), port)
    }
}

/// Requests up to `tid` had been sent by `at`.
#[derive(Debug, Clone, Copy)]
struct Stair {
    tid: u32,
    at: Instant,
}

/// Answers above the top stair that all came from one source, so prove nothing yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    source: Source,
    tid: u32,
}

/// The filter's state: see the module's note.
#[derive(Debug)]
pub(crate) struct LateFilter {
    late_limit: Duration,
    cap: Duration,
    stairs: VecDeque<Stair>,
    pending: Option<Pending>,
    /// The highest tid proven sent (the evidence window's base).
    proven: u32,
    /// Distinct sources dropped as late or out of range since `proven` last moved.
    suspects: Vec<(Source, u32)>,
    /// The mirrored estimator, in seconds.
    rtt: f64,
    dev: f64,
    judged: u64,
    dropped: u64,
    rebases: u64,
}

impl Default for LateFilter {
    fn default() -> Self {
        Self::new()
    }
}

impl LateFilter {
    /// With [`LATE_LIMIT`] and [`TIMEOUT_CAP`].
    pub(crate) fn new() -> Self {
        Self::with_limits(LATE_LIMIT, TIMEOUT_CAP)
    }

    /// With other limits (tests reach the cap with a higher late limit).
    pub(crate) fn with_limits(late_limit: Duration, cap: Duration) -> Self {
        Self {
            late_limit,
            cap,
            stairs: VecDeque::new(),
            pending: None,
            proven: 0,
            suspects: Vec::new(),
            rtt: MIN_TIMEOUT.as_secs_f64(),
            dev: 0.0,
            judged: 0,
            dropped: 0,
            rebases: 0,
        }
    }

    /// Judges one received datagram: only answers (`r`, `e`) can be dropped.
    pub(crate) fn judge(&mut self, bytes: &[u8], from: SocketAddrV4, now: Instant) -> Verdict {
        match header(bytes) {
            Some(Header {
                kind: Kind::Response | Kind::Error,
                tid,
            }) => self.judge_answer(tid, from, now),
            _ => Verdict::Pass,
        }
    }

    /// Judges an answer to request `tid` from `from`, arriving at `now`.
    pub(crate) fn judge_answer(&mut self, tid: u32, from: SocketAddrV4, now: Instant) -> Verdict {
        self.judged += 1;
        self.prune(now);
        let source = Source::of(from);
        let age = self.provable_age(tid, now);
        let verdict = if age >= self.late_limit {
            self.suspect(source, tid);
            Verdict::Drop
        } else if self.sample(age) {
            Verdict::Pass
        } else {
            Verdict::Drop
        };
        if verdict == Verdict::Drop {
            self.dropped += 1;
        }
        // Even a dropped answer proves its request was sent (it rarely adds anything:
        // it was judged old because later tids were answered).
        self.record(tid, source, now);
        verdict
    }

    /// How old request `tid` at least is at `now` (zero without evidence).
    pub(crate) fn provable_age(&self, tid: u32, now: Instant) -> Duration {
        let first = self.stairs.partition_point(|s| s.tid < tid);
        self.stairs
            .get(first)
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s.at))
    }

    /// The mirrored request timeout (see the module's note: an estimate from lower
    /// bounds).
    pub(crate) fn request_timeout(&self) -> Duration {
        timeout_of(self.rtt, self.dev)
    }

    /// Answers (responses and errors) judged.
    pub(crate) fn judged(&self) -> u64 {
        self.judged
    }

    /// Answers dropped: late, or over the cap.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Times the evidence was thrown away (see the module's note).
    pub(crate) fn rebases(&self) -> u64 {
        self.rebases
    }

    /// Feeds a passing answer's age to the mirror, as the crate would; `false` if it
    /// would push the timeout above the cap (the answer is then dropped, unsampled).
    fn sample(&mut self, age: Duration) -> bool {
        if age < MIN_TIMEOUT {
            return true;
        }
        let (rtt, dev) = next_estimate(self.rtt, self.dev, age);
        if timeout_of(rtt, dev) > self.cap {
            return false;
        }
        (self.rtt, self.dev) = (rtt, dev);
        true
    }

    /// Adds what an answer proves to the staircase.
    fn record(&mut self, tid: u32, source: Source, now: Instant) {
        // Below the top stair it proves nothing new: that tid was answered earlier.
        if self.stairs.back().is_some_and(|top| tid <= top.tid) {
            return;
        }
        // Far ahead of what is proven: a forgery, or the crate sent many requests that
        // went unanswered (an outage). Either way it is no evidence.
        if tid > self.proven.saturating_add(MAX_TID_JUMP) {
            self.suspect(source, tid);
            return;
        }
        match self.pending {
            None => self.pending = Some(Pending { source, tid }),
            Some(ref mut p) if p.source == source => p.tid = p.tid.max(tid),
            Some(p) => {
                // Two sources: whichever is honest proves the lower tid was sent.
                self.push(tid.min(p.tid), now);
                self.pending = match tid.cmp(&p.tid) {
                    std::cmp::Ordering::Greater => Some(Pending { source, tid }),
                    std::cmp::Ordering::Less => Some(p),
                    std::cmp::Ordering::Equal => None,
                };
            }
        }
    }

    /// Requests up to `tid` (above the top stair) had been sent by `now`.
    fn push(&mut self, tid: u32, now: Instant) {
        self.proven = self.proven.max(tid);
        self.suspects.clear();
        let stair = Stair { tid, at: now };
        let n = self.stairs.len();
        // Replacing the top loses at most `GRAIN` for the tids it covered: the stair
        // below it is that recent.
        match n.checked_sub(2).and_then(|i| self.stairs.get(i)) {
            Some(below) if now.saturating_duration_since(below.at) < GRAIN => {
                if let Some(top) = self.stairs.back_mut() {
                    *top = stair;
                }
            }
            _ => self.stairs.push_back(stair),
        }
        while self.stairs.len() > MAX_STAIRS {
            self.stairs.pop_front();
        }
    }

    /// Forgets old stairs (the newest stays).
    fn prune(&mut self, now: Instant) {
        while self.stairs.len() > 1
            && self
                .stairs
                .front()
                .is_some_and(|s| now.saturating_duration_since(s.at) > EVIDENCE_TTL)
        {
            self.stairs.pop_front();
        }
    }

    /// An answer from `source` contradicts the evidence (dropped as late, or out of
    /// range). From enough distinct sources, with no progress in between, the evidence is
    /// more likely wrong (forged, or outrun by an outage or a wrapped counter) than all
    /// of them late: start over above the lowest of their tids, which an honest one
    /// among them proves was sent.
    fn suspect(&mut self, source: Source, tid: u32) {
        if !self.suspects.iter().any(|&(s, _)| s == source) {
            self.suspects.push((source, tid));
        }
        if self.suspects.len() < REBASE_SOURCES {
            return;
        }
        self.proven = self.suspects.iter().map(|&(_, t)| t).min().unwrap_or(0);
        self.stairs.clear();
        self.pending = None;
        self.suspects.clear();
        self.rebases += 1;
    }
}

/// The crate's update (`update_rtt_estimates`), in seconds.
fn next_estimate(rtt: f64, dev: f64, sample: Duration) -> (f64, f64) {
    let s = sample.as_secs_f64();
    let rtt = (1.0 - ALPHA) * rtt + ALPHA * s;
    let dev = (1.0 - BETA) * dev + BETA * (s - rtt).abs();
    (rtt, dev)
}

fn timeout_of(rtt: f64, dev: f64) -> Duration {
    Duration::try_from_secs_f64(rtt + 4.0 * dev).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A KRPC answer as n0-mainline sends one: `{r: {id}, t, y, v}`.
    fn response(tid: &[u8], y: &[u8]) -> Vec<u8> {
        let mut m = b"d1:rd2:id20:".to_vec();
        m.extend_from_slice(&[7u8; 20]);
        m.extend_from_slice(b"e1:t");
        m.extend_from_slice(tid.len().to_string().as_bytes());
        m.push(b':');
        m.extend_from_slice(tid);
        m.extend_from_slice(b"1:v4:RS\x00\x061:y");
        m.extend_from_slice(y.len().to_string().as_bytes());
        m.push(b':');
        m.extend_from_slice(y);
        m.push(b'e');
        m
    }

    fn at(ip: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, ip), port)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reads_real_messages() {
        let m = response(&[0, 0, 0, 5], b"r");
        assert_eq!(
            header(&m),
            Some(Header {
                kind: Kind::Response,
                tid: 5
            })
        );
        // The literal of the brief, byte for byte.
        let mut lit = b"d1:rd2:id20:".to_vec();
        lit.extend_from_slice(b"abcdefghij0123456789");
        lit.extend_from_slice(b"e1:t4:\x00\x00\x00\x051:y1:re");
        assert_eq!(header(&lit).map(|h| h.tid), Some(5));
        let e = b"d1:eli201e23:A Generic Error Ocurrede1:t4:\x01\x02\x03\x041:y1:ee";
        assert_eq!(
            header(e),
            Some(Header {
                kind: Kind::Error,
                tid: 0x0102_0304
            })
        );
        let q = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
        assert_eq!(
            header(q),
            Some(Header {
                kind: Kind::Query,
                tid: u32::from(u16::from_be_bytes(*b"aa"))
            })
        );
        // Nested lists and integers (nodes, values, `ro`) are stepped over.
        let deep = [
            &b"d1:rd2:id20:abcdefghij01234567896:valuesl6:abcdef6:ghijklee"[..],
            b"2:roi1e1:t4:\xff\xff\xff\xff1:y1:re",
        ]
        .concat();
        assert_eq!(header(&deep).map(|h| h.tid), Some(u32::MAX));
    }

    #[test]
    fn refuses_what_the_crate_should_decide() {
        for bad in [
            &b""[..],
            b"le",
            b"d1:t4:\x00\x00\x00\x05e",              // no y
            b"d1:y1:re",                             // no t
            b"d1:t3:abc1:y1:re",                     // 3-byte tid
            b"d1:t4:abcd1:y1:xe",                    // unknown type
            b"d1:t4:abcd1:y1:re ",                   // trailing byte
            b"d1:t4:abcd1:t4:abcd1:y1:re",           // repeated key
            b"d1:t4:abcd1:y1:r",                     // unclosed
            b"d1:t99999999999999999999999:a1:y1:re", // length overflow
            b"d1:xi-e1:t4:abcd1:y1:re",              // empty integer
            b"di1e1:t4:abcd1:y1:re",                 // integer key
        ] {
            assert_eq!(header(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    /// Every truncation and many mutations of real messages: no panic, ever.
    #[test]
    fn never_panics() {
        let mut seeds = vec![
            response(&[0, 0, 0, 5], b"r"),
            response(&[1, 2], b"e"),
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec(),
            b"d1:rd2:id20:abcdefghij01234567896:valuesl6:abcdef6:ghijklee1:t4:abcd1:y1:re".to_vec(),
        ];
        // Deep nesting is counted, not recursed into.
        seeds.push([&b"d1:x"[..], &[b'l'; 10_000]].concat());
        seeds.push(b"d".repeat(10_000));
        let mut filter = LateFilter::new();
        let now = Instant::now();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rand = move || {
            // xorshift64: deterministic, no dependency.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for seed in &seeds {
            for cut in 0..=seed.len().min(200) {
                let _ = header(&seed[..cut]);
                let _ = filter.judge(&seed[..cut], at(1, 1), now);
            }
            for _ in 0..2000 {
                let mut m = seed.clone();
                for _ in 0..=(rand() % 4) {
                    let i = (rand() as usize) % m.len().max(1);
                    let b = b"de:il0123456789-rtyq\xff"[(rand() as usize) % 21];
                    match rand() % 3 {
                        0 if !m.is_empty() => m[i] = b,
                        1 if !m.is_empty() => {
                            m.remove(i);
                        }
                        _ => m.insert(i.min(m.len()), b),
                    }
                }
                let _ = filter.judge(&m, at((rand() % 250) as u8, 1), now);
            }
        }
        for _ in 0..20_000 {
            let m: Vec<u8> = (0..rand() % 64).map(|_| rand() as u8).collect();
            let _ = header(&m);
        }
    }

    /// Answers `tids` from as many sources (one each), all at `now`.
    fn answer_all(f: &mut LateFilter, tids: std::ops::Range<u32>, now: Instant) {
        for (i, tid) in tids.enumerate() {
            assert_eq!(
                f.judge_answer(tid, at((i % 200) as u8 + 1, 6881), now),
                Verdict::Pass
            );
        }
    }

    #[test]
    fn a_late_answer_is_dropped_and_an_in_time_one_passes() {
        let t0 = Instant::now();
        let mut f = LateFilter::new();
        // Requests 0..20 sent at t0; all but 7 answer within 50 ms.
        for tid in (0..20).filter(|&t| t != 7) {
            let from = at(tid as u8 + 1, 6881);
            assert_eq!(f.judge_answer(tid, from, t0 + ms(50)), Verdict::Pass);
        }
        // 7 answers 300 ms later: provably ≥ 250 ms old, passes.
        assert_eq!(
            f.judge_answer(7, at(100, 6881), t0 + ms(300)),
            Verdict::Pass
        );
        assert_eq!(f.provable_age(7, t0 + ms(300)), ms(250));
        // A second round; its request 25 answers 3 s later: dropped.
        answer_all(&mut f, 20..40, t0 + ms(400));
        let late = t0 + ms(3400);
        assert_eq!(f.judge_answer(25, at(26, 6881), late), Verdict::Drop);
        assert_eq!((f.judged(), f.dropped()), (41, 1));
        // A request above every answered one has no evidence against it.
        assert_eq!(f.judge_answer(45, at(46, 6881), late), Verdict::Pass);
    }

    #[test]
    fn one_source_proves_nothing() {
        let t0 = Instant::now();
        let mut f = LateFilter::new();
        // One sender, however many answers: no evidence.
        for tid in 0..50 {
            f.judge_answer(tid, at(1, 6881 + tid as u16), t0);
        }
        assert_eq!(
            f.provable_age(0, t0 + Duration::from_secs(60)),
            Duration::ZERO
        );
        // On loopback, ports are distinct sources (a local test network).
        let mut f = LateFilter::new();
        let lo = |port| SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        f.judge_answer(10, lo(1), t0);
        f.judge_answer(10, lo(2), t0);
        assert_eq!(
            f.provable_age(10, t0 + Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn forged_tids_do_not_stop_the_dht() {
        let t0 = Instant::now();
        let mut f = LateFilter::new();
        answer_all(&mut f, 0..20, t0);
        // One packet claiming the highest tid, from one source or two: out of range.
        for ip in [250, 251] {
            f.judge_answer(u32::MAX, at(ip, 1), t0);
        }
        let later = t0 + Duration::from_secs(5);
        answer_all(&mut f, 20..40, later);
        // Two colluders who know our counter forge tid 1000, within range: honest
        // answers above 40 now look old and are dropped, until enough distinct sources
        // contradict the evidence and it is rebuilt.
        f.judge_answer(1000, at(250, 1), later);
        f.judge_answer(1000, at(251, 1), later);
        let then = later + Duration::from_secs(5);
        let mut dropped = 0;
        for tid in 40..100u32 {
            if f.judge_answer(tid, at(tid as u8, 6881), then) == Verdict::Drop {
                dropped += 1;
            }
        }
        assert_eq!(dropped, REBASE_SOURCES);
        assert_eq!(f.rebases(), 1);
        // The wrapped counter is the same case: old evidence, new tids.
        let mut f = LateFilter::new();
        answer_all(&mut f, 0..20, t0);
        f.proven = u32::MAX - 5;
        f.stairs.back_mut().unwrap().tid = u32::MAX - 5;
        let mut passed = 0;
        for tid in 0..40u32 {
            if f.judge_answer(tid, at(tid as u8 + 1, 1), later) == Verdict::Pass {
                passed += 1;
            }
        }
        assert_eq!(passed, 40 - REBASE_SOURCES);
    }

    #[test]
    fn an_outage_jump_recovers() {
        let t0 = Instant::now();
        let mut f = LateFilter::new();
        answer_all(&mut f, 0..20, t0);
        // 10 000 requests unanswered, then the network is back.
        let back = t0 + Duration::from_secs(120);
        answer_all(&mut f, 10_020..10_060, back);
        assert_eq!(f.rebases(), 1);
        assert!(f.proven >= 10_020);
        let late = back + Duration::from_secs(3);
        assert_eq!(f.judge_answer(10_050, at(1, 1), late), Verdict::Drop);
    }

    #[test]
    fn the_staircase_stays_bounded_and_ordered() {
        let t0 = Instant::now();
        let mut f = LateFilter::new();
        // Dense traffic: 10 answers per ms for a minute, about two stairs per grain.
        for i in 0..600_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 100);
            f.judge_answer(i, at((i % 200) as u8, 1), now);
        }
        assert!(f.stairs.len() <= 1300, "{}", f.stairs.len());
        // Sparser: one answer pair every 120 ms for 48 minutes, more than the length
        // bound within the age bound.
        for i in 0..24_000u32 {
            let now = t0 + Duration::from_secs(60) + ms(u64::from(i) * 120);
            let tid = 600_000 + i;
            f.judge_answer(tid, at(1, 1), now);
            f.judge_answer(tid, at(2, 1), now);
        }
        assert_eq!(f.stairs.len(), MAX_STAIRS);
        let s: Vec<_> = f.stairs.iter().collect();
        assert!(
            s.windows(2)
                .all(|w| w[0].tid < w[1].tid && w[0].at <= w[1].at)
        );
        // Idle for a day: the newest stair stays.
        let end = t0 + Duration::from_secs(60 * 60 * 25);
        f.judge_answer(1, at(3, 1), end);
        assert_eq!(f.stairs.len(), 1);
    }

    #[test]
    fn the_mirrored_timeout_stays_under_the_cap() {
        let t0 = Instant::now();
        // With the usual limits, samples are under 1 s: the cap is never even reached.
        // With a 10 s late limit, an answer 5 s old would set it to ~5 s: dropped.
        let mut f = LateFilter::with_limits(Duration::from_secs(10), TIMEOUT_CAP);
        answer_all(&mut f, 0..20, t0);
        assert_eq!(
            f.judge_answer(5, at(6, 1), t0 + Duration::from_secs(5)),
            Verdict::Drop
        );
        assert_eq!(f.request_timeout(), MIN_TIMEOUT);
        // Ages all over the range, in both filters: never above the cap.
        let mut x: u64 = 1;
        for limit in [LATE_LIMIT, Duration::from_secs(10)] {
            let mut f = LateFilter::with_limits(limit, TIMEOUT_CAP);
            let mut now = t0;
            for round in 0..2_000u32 {
                let base = round * 20;
                answer_all(&mut f, base..base + 19, now);
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let delay = ms((x >> 33) % 3_000);
                f.judge_answer(base + 3, at(250, 1), now + delay);
                assert!(
                    f.request_timeout() <= TIMEOUT_CAP,
                    "{:?}",
                    f.request_timeout()
                );
                now += delay + ms(1);
            }
        }
    }

    /// Issue 27's case: a node frozen 85 s answers at last. Unfiltered, the crate's
    /// timeout becomes ~85 s and stays; filtered, it stays at the floor.
    #[test]
    fn a_frozen_node_leaves_the_timeout_at_the_floor() {
        let t0 = Instant::now();
        let mut f = LateFilter::new();
        let mut now = t0;
        let mut sent_frozen = None;
        // 20 requests every 100 ms, answered in 40 ms, for 85 s.
        for round in 0..850u32 {
            let base = round * 20;
            for tid in base..base + 20 {
                // Request 30 goes to the node that freezes.
                if tid == 30 {
                    sent_frozen = Some(now);
                    continue;
                }
                let from = at((tid % 200) as u8 + 1, 6881);
                assert_eq!(f.judge_answer(tid, from, now + ms(40)), Verdict::Pass);
            }
            now += ms(100);
        }
        let sent = sent_frozen.unwrap();
        let answer = sent + Duration::from_secs(85);
        assert_eq!(f.judge_answer(30, at(99, 6881), answer), Verdict::Drop);
        assert_eq!(f.request_timeout(), MIN_TIMEOUT);
        assert_eq!(f.dropped(), 1);
        // What the crate would have done with that sample.
        let (rtt, dev) = next_estimate(MIN_TIMEOUT.as_secs_f64(), 0.0, answer.duration_since(sent));
        assert!(timeout_of(rtt, dev) > Duration::from_secs(80));
        // Fast answers keep passing.
        answer_all(&mut f, 17_000..17_020, answer);
        assert_eq!(f.request_timeout(), MIN_TIMEOUT);
    }
}

//! Where a client's time goes, step by step: DHT lookups, address lookups, dials,
//! requests. Every step records when it started (since the client connected), how long
//! it took and what it found; `mosaic --timings` prints the list, so the cost of a get
//! stays visible (docs/scale.md reads these tables).
//!
//! Recording is cheap (a lock and a push) and bounded: a long-running client (the
//! gateway) keeps only the last [`MAX_STEPS`].

use std::{
    collections::VecDeque,
    fmt,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Steps kept; older ones are dropped first.
pub const MAX_STEPS: usize = 512;

/// One recorded step.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it was, e.g. `dht lookup: holders of file 3f2a…`.
    pub what: String,
    /// When it started, since the client connected.
    pub at: Duration,
    /// How long it took.
    pub took: Duration,
    /// What it found or why it failed.
    pub outcome: String,
}

/// The steps a client took.
#[derive(Debug)]
pub struct Timings {
    origin: Instant,
    steps: Mutex<VecDeque<Step>>,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            steps: Mutex::new(VecDeque::new()),
        }
    }
}

impl Timings {
    /// Records a step that started at `started` and ends now.
    pub fn record(&self, what: impl Into<String>, started: Instant, outcome: impl Into<String>) {
        let step = Step {
            what: what.into(),
            at: started.saturating_duration_since(self.origin),
            took: started.elapsed(),
            outcome: outcome.into(),
        };
        let mut steps = self.steps.lock().expect("not poisoned");
        if steps.len() == MAX_STEPS {
            steps.pop_front();
        }
        steps.push_back(step);
    }

    /// The steps so far, in the order they ended.
    pub fn steps(&self) -> Vec<Step> {
        self.steps
            .lock()
            .expect("not poisoned")
            .iter()
            .cloned()
            .collect()
    }

    /// Time since the client connected.
    pub fn elapsed(&self) -> Duration {
        self.origin.elapsed()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:>9.1} ms {:>8.1} ms  {}: {}",
            self.at.as_secs_f64() * 1e3,
            self.took.as_secs_f64() * 1e3,
            self.what,
            self.outcome
        )
    }
}

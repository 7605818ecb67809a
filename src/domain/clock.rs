//! Injected wall clock: timestamps, rotations and windows read time through [`Clock`], so tests
//! can move time without sleeping.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The system clock, truncated to milliseconds (the store keeps millisecond precision).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
    }
}

/// A clock that only moves when told to; for tests and the demo.
#[derive(Debug, Clone)]
pub struct ManualClock {
    // A std mutex: held for a copy only, never across an await.
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    #[must_use]
    pub fn new(start: Timestamp) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The system clock plus an offset that tests move forward: time flows as usual (so retries
/// come due) and can also jump ahead (reopen windows, lease expiry).
#[derive(Debug, Clone, Default)]
pub struct ShiftedClock {
    // A std mutex: held for a copy only, never across an await.
    offset: Arc<Mutex<SignedDuration>>,
}

impl ShiftedClock {
    /// A clock equal to the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: SignedDuration) {
        let mut offset = self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *offset = offset.saturating_add(by);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = SystemClock.now();
        now.checked_add(offset).unwrap_or(now)
    }
}

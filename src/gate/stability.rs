//! Stability: the gate opens only when every signal has held for `stable_for`.

use std::time::{Duration, Instant};

use super::GateState;

/// Ready = every signal met continuously for `stable_for`; any miss resets the clock.
#[derive(Debug, Clone)]
pub struct Stability {
    stable_for: Duration,
    since: Option<Instant>,
}

impl Stability {
    pub fn new(stable_for: Duration) -> Stability {
        Stability {
            stable_for,
            since: None,
        }
    }

    /// Feeds one evaluation taken at `at`; true when the node is ready.
    pub fn update(&mut self, state: &GateState, at: Instant) -> bool {
        self.hold(state.ready_now(), at)
    }

    /// Feeds one yes/no observation taken at `at`; true once it has been yes, without a
    /// no in between, for `stable_for`.
    pub fn hold(&mut self, met: bool, at: Instant) -> bool {
        if !met {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert(at);
        at.duration_since(since) >= self.stable_for
    }

    /// How long all signals have held, if they hold.
    pub fn held_for(&self, at: Instant) -> Option<Duration> {
        self.since.map(|s| at.duration_since(s))
    }
}

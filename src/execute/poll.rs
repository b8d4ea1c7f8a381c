//! One loop for every wait that polls until a deadline: observe (async), judge what was seen
//! (sync, may keep state between polls), stop on an answer, an interrupt or the deadline,
//! else sleep and poll again. The readiness gate's own loop (`execute::watch`) is not one of
//! them: its tracker decides the deadline and the sleep itself.

use std::future::Future;
use std::time::{Duration, Instant};

use super::Interrupt;

/// How a [`until`] loop ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Polled<T> {
    /// `judge` gave an answer.
    Done(T),
    /// The deadline passed without one (judged after the last poll).
    TimedOut,
    /// The operator interrupted (Ctrl-C): seen after a poll without an answer, or while
    /// sleeping between polls.
    Interrupted,
}

/// Polls `observe` every `every` until `judge` answers `Some`, `interrupt` (when given) is
/// requested, or `deadline` has passed. Each round is: observe, judge, then (without an
/// answer) check the interrupt, then the deadline, then sleep; an interrupt also cuts the
/// sleep short. So the first poll is immediate, a wait that is already over is still judged
/// once, and the interrupt wins over a deadline that passes in the same round.
pub(crate) async fn until<V, T, Fut>(
    deadline: Instant,
    every: Duration,
    interrupt: Option<&Interrupt>,
    mut observe: impl FnMut() -> Fut,
    mut judge: impl FnMut(V) -> Option<T>,
) -> Polled<T>
where
    Fut: Future<Output = V>,
{
    loop {
        if let Some(answer) = judge(observe().await) {
            return Polled::Done(answer);
        }
        if interrupt.is_some_and(Interrupt::requested) {
            return Polled::Interrupted;
        }
        if Instant::now() >= deadline {
            return Polled::TimedOut;
        }
        match interrupt {
            Some(i) => tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = i.reached(1) => return Polled::Interrupted,
            },
            None => tokio::time::sleep(every).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test]
    async fn an_answer_ends_the_wait_and_keeps_the_judges_state() {
        let polls = Cell::new(0);
        let mut seen = Vec::new();
        let end = until(
            Instant::now() + Duration::from_secs(5),
            MS,
            None,
            || async {
                polls.set(polls.get() + 1);
                polls.get()
            },
            |n| {
                seen.push(n);
                (n == 3).then_some("third")
            },
        )
        .await;
        assert_eq!(end, Polled::Done("third"));
        assert_eq!(seen, [1, 2, 3], "each poll judged once, in order");
    }

    #[tokio::test]
    async fn a_past_deadline_is_still_polled_once_then_times_out() {
        let polls = Cell::new(0);
        let end: Polled<()> = until(
            Instant::now().checked_sub(MS).unwrap(),
            MS,
            None,
            || async { polls.set(polls.get() + 1) },
            |()| None,
        )
        .await;
        assert_eq!(end, Polled::TimedOut);
        assert_eq!(polls.get(), 1);
    }

    #[tokio::test]
    async fn the_deadline_ends_a_wait_that_never_answers_after_sleeping_between_polls() {
        let began = Instant::now();
        let polls = Cell::new(0u32);
        let end: Polled<()> = until(
            began + 30 * MS,
            10 * MS,
            None,
            || async { polls.set(polls.get() + 1) },
            |()| None,
        )
        .await;
        assert_eq!(end, Polled::TimedOut);
        assert!(began.elapsed() >= 30 * MS, "not before the deadline");
        // Slept `every` between polls: at most one poll per 10 ms, plus the first.
        assert!((2..=4).contains(&polls.get()), "{} polls", polls.get());
    }

    #[tokio::test]
    async fn an_interrupt_wins_over_the_deadline_but_not_over_an_answer() {
        let past = Instant::now().checked_sub(MS).unwrap();
        let ctrl_c = Interrupt::default();
        ctrl_c.trigger();
        let end: Polled<()> = until(past, MS, Some(&ctrl_c), || async {}, |()| None).await;
        assert_eq!(end, Polled::Interrupted);
        let end = until(past, MS, Some(&ctrl_c), || async {}, |()| Some(1)).await;
        assert_eq!(end, Polled::Done(1));
    }

    #[tokio::test]
    async fn an_interrupt_cuts_the_sleep_between_polls_short() {
        let ctrl_c = std::sync::Arc::new(Interrupt::default());
        let later = std::sync::Arc::clone(&ctrl_c);
        tokio::spawn(async move {
            tokio::time::sleep(20 * MS).await;
            later.trigger();
        });
        let began = Instant::now();
        let polls = Cell::new(0);
        let end: Polled<()> = until(
            began + Duration::from_secs(30),
            Duration::from_secs(10),
            Some(&ctrl_c),
            || async { polls.set(polls.get() + 1) },
            |()| None,
        )
        .await;
        assert_eq!(end, Polled::Interrupted);
        assert_eq!(polls.get(), 1, "woken from the first sleep, not after it");
        assert!(began.elapsed() < Duration::from_secs(5));
    }
}

//! Ctrl-C, SIGTERM (a cancelled CI job) and SIGHUP (a dropped ssh connection) handling
//! for a run (DESIGN §6): the first signal asks the run to stop after the current step
//! (finishing the gate of a node that is down), the second means save and exit now.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

#[derive(Clone, Debug, Default)]
pub struct Interrupt {
    count: Arc<AtomicU8>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// Listens for SIGINT, SIGTERM and SIGHUP for the rest of the process.
    pub fn install() -> Self {
        let me = Interrupt::default();
        let handle = me.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                handle.trigger();
            }
        });
        me
    }

    /// Records one interruption (also used by tests).
    pub fn trigger(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// How many times the operator interrupted.
    pub fn count(&self) -> u8 {
        self.count.load(Ordering::SeqCst)
    }

    pub fn requested(&self) -> bool {
        self.count() >= 1
    }

    /// Resolves once the count reaches `n`.
    pub async fn reached(&self, n: u8) {
        loop {
            let notified = self.notify.notified();
            if self.count() >= n {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_interrupt_resolves_waiters() {
        let i = Interrupt::default();
        let w = i.clone();
        let waiter = tokio::spawn(async move { w.reached(2).await });
        i.trigger();
        assert!(i.requested());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        i.trigger();
        tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}

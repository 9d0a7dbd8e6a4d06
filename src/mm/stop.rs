//! A request to stop, shared by the signal handler, the sync and the HTTP client.
//!
//! Work checks [`StopSignal::requested`] between steps; waits that could last (the rate
//! limiter, the pacer, a back-off, a 429 delay) race [`StopSignal::stopped`], so a stop never
//! waits for them. Requests already on the wire race it too (a stalling server would hold a
//! stop for the whole read timeout): a stop drops them, and what they would have written is
//! found again by the next run.
//!
//! May import: nothing of the crate.

use std::sync::Arc;

use tokio::sync::watch;

/// Cheap to clone; every clone sees the same request.
#[derive(Clone, Debug)]
pub struct StopSignal(Arc<watch::Sender<bool>>);

impl Default for StopSignal {
    fn default() -> StopSignal {
        StopSignal(Arc::new(watch::Sender::new(false)))
    }
}

impl StopSignal {
    pub fn request(&self) {
        self.0.send_replace(true);
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once a stop is requested (at once if it already was).
    pub async fn stopped(&self) {
        let mut receiver = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_request_ends_a_wait_at_once_and_later_waits_do_not_start() {
        let stop = StopSignal::default();
        let other = stop.clone();
        let waiter = tokio::spawn(async move { other.stopped().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        stop.request();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("the wait ends")
            .unwrap();
        assert!(stop.requested());
        tokio::time::timeout(Duration::from_millis(100), stop.stopped())
            .await
            .expect("already stopped");
    }
}

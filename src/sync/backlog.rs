//! The queue between the WebSocket listener and the follower, bounded by the bytes of the
//! events waiting in it as well as by their number.
//!
//! The listener must keep reading while the follower is busy (a catch-up sync, a slow
//! transaction): the server forgets a connection whose send queue of 256 events fills
//! (`web_hub.go`: a full `send` channel → `closeAndRemoveConn`), and a forgotten
//! connection costs a catch-up. What it reads waits here, decoded, and a decoded post
//! holds its JSON and its fields: bounded by count only, 65,536 events of long messages
//! would hold gigabytes. Past the byte budget the listener waits; the server then queues,
//! and past its queue we get a fresh connection and catch up: nothing is lost either way.
//!
//! May import `mm` (the items it carries) and tokio.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::mm::ws::{Item, WsError};

/// One item waiting for the follower: when the listener received it (local ms), and its
/// share of the byte budget, given back when the item is dropped.
#[derive(Debug)]
pub struct Waiting {
    pub at: i64,
    pub item: Result<Item, WsError>,
    _held: Option<OwnedSemaphorePermit>,
}

/// The listener's end.
pub struct Sender {
    items: mpsc::Sender<Waiting>,
    bytes: Arc<Semaphore>,
    budget: u32,
}

/// The follower went away: nobody reads the queue any more.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// A queue of at most `max_items` items and `max_bytes` bytes of event frames (at least
/// one item: an event larger than the whole budget waits until the queue is empty).
pub fn backlog(max_items: usize, max_bytes: u32) -> (Sender, mpsc::Receiver<Waiting>) {
    let (items, receiver) = mpsc::channel(max_items.max(1));
    let budget = max_bytes.max(1);
    let bytes = Arc::new(Semaphore::new(budget as usize));
    (
        Sender {
            items,
            bytes,
            budget,
        },
        receiver,
    )
}

impl Sender {
    /// Waits for room, then queues the item.
    pub async fn send(&self, at: i64, item: Result<Item, WsError>) -> Result<(), Closed> {
        let weight = match &item {
            Ok(Item::Event(event)) => u32::try_from(event.wire_bytes)
                .unwrap_or(u32::MAX)
                .clamp(1, self.budget),
            // Connection items are few and small; they never wait for bytes.
            _ => 0,
        };
        let held = if weight == 0 {
            None
        } else {
            let permit = Arc::clone(&self.bytes).acquire_many_owned(weight);
            Some(permit.await.map_err(|_| Closed)?)
        };
        self.items
            .send(Waiting {
                at,
                item,
                _held: held,
            })
            .await
            .map_err(|_| Closed)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;

    use super::*;
    use crate::mm::ws::{Broadcast, Event, WsEvent};

    fn event(wire_bytes: usize) -> Result<Item, WsError> {
        Ok(Item::Event(Box::new(WsEvent {
            seq: 1,
            broadcast: Broadcast::default(),
            event: Event::Malformed {
                name: "posted".into(),
                why: "test".into(),
            },
            wire_bytes,
        })))
    }

    #[tokio::test]
    async fn the_listener_waits_once_the_bytes_are_used_and_goes_on_when_they_are_read() {
        let (tx, mut rx) = backlog(100, 1_000);
        assert_eq!(tx.send(1, event(600)).now_or_never(), Some(Ok(())));
        assert_eq!(tx.send(2, event(400)).now_or_never(), Some(Ok(())));
        // 1,000 of 1,000 bytes wait: one more byte must wait.
        let mut third = Box::pin(tx.send(3, event(1)));
        assert!((&mut third).now_or_never().is_none());
        let first = rx.recv().await.unwrap();
        assert_eq!(first.at, 1);
        assert!((&mut third).now_or_never().is_none(), "held until dropped");
        drop(first);
        assert_eq!(third.now_or_never(), Some(Ok(())));
    }

    #[tokio::test]
    async fn an_event_larger_than_the_budget_passes_alone() {
        let (tx, mut rx) = backlog(100, 1_000);
        assert_eq!(tx.send(1, event(5)).now_or_never(), Some(Ok(())));
        let mut big = Box::pin(tx.send(2, event(70_000)));
        assert!((&mut big).now_or_never().is_none());
        drop(rx.recv().await.unwrap());
        assert_eq!(big.now_or_never(), Some(Ok(())));
    }

    #[tokio::test]
    async fn connection_items_never_wait_for_bytes() {
        let (tx, _rx) = backlog(100, 10);
        assert_eq!(tx.send(1, event(10)).now_or_never(), Some(Ok(())));
        let resumed = Ok(Item::Resumed {
            connection_id: "c".into(),
        });
        assert_eq!(tx.send(2, resumed).now_or_never(), Some(Ok(())));
        assert_eq!(
            tx.send(3, Err(WsError::Stopped)).now_or_never(),
            Some(Ok(()))
        );
    }

    #[tokio::test]
    async fn the_count_bounds_small_events() {
        let (tx, _rx) = backlog(2, 1_000_000);
        assert_eq!(tx.send(1, event(1)).now_or_never(), Some(Ok(())));
        assert_eq!(tx.send(2, event(1)).now_or_never(), Some(Ok(())));
        assert!(tx.send(3, event(1)).now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_gone_follower_ends_the_listener() {
        let (tx, rx) = backlog(100, 1_000);
        drop(rx);
        assert_eq!(tx.send(1, event(5)).now_or_never(), Some(Err(Closed)));
    }
}

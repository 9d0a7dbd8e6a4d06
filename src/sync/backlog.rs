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
//! Two budgets: a small one while events are applied as they come (the queue then only
//! smooths a transaction's length), and a wider one while the follower does not read at
//! all ([`Room::widen`], for a catch-up sync or a poll, which may take minutes on a large
//! workspace): with the small one, a busy server would forget the connection during every
//! catch-up, and each catch-up would start another.
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

/// The follower's hold on the byte budget, to widen it while it does not read.
#[derive(Clone)]
pub struct Room {
    bytes: Arc<Semaphore>,
}

/// The budget stays wider until this is dropped.
#[must_use = "the budget narrows again when this is dropped"]
pub struct Widened {
    bytes: Arc<Semaphore>,
    extra: u32,
}

impl Room {
    /// Lets `extra` more bytes of events wait until the returned guard is dropped.
    pub fn widen(&self, extra: u32) -> Widened {
        self.bytes.add_permits(extra as usize);
        Widened {
            bytes: Arc::clone(&self.bytes),
            extra,
        }
    }
}

impl Drop for Widened {
    /// Takes the extra bytes back: those free now at once, the rest as the follower reads
    /// (until then the listener waits, first in line behind the debt).
    fn drop(&mut self) {
        let taken = self.bytes.forget_permits(self.extra as usize);
        let owed = self.extra - u32::try_from(taken).unwrap_or(self.extra);
        if owed == 0 {
            return;
        }
        let bytes = Arc::clone(&self.bytes);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Ok(permit) = bytes.acquire_many_owned(owed).await {
                    permit.forget();
                }
            });
        }
    }
}

/// The follower went away: nobody reads the queue any more.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// A queue of at most `max_items` items and `max_bytes` bytes of event frames (at least
/// one item: an event larger than the budget waits until the queue is empty).
pub fn backlog(max_items: usize, max_bytes: u32) -> (Sender, mpsc::Receiver<Waiting>, Room) {
    let (items, receiver) = mpsc::channel(max_items.max(1));
    let budget = max_bytes.max(1);
    let bytes = Arc::new(Semaphore::new(budget as usize));
    let room = Room {
        bytes: Arc::clone(&bytes),
    };
    (
        Sender {
            items,
            bytes,
            budget,
        },
        receiver,
        room,
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
        let (tx, mut rx, _) = backlog(100, 1_000);
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
        let (tx, mut rx, _) = backlog(100, 1_000);
        assert_eq!(tx.send(1, event(5)).now_or_never(), Some(Ok(())));
        let mut big = Box::pin(tx.send(2, event(70_000)));
        assert!((&mut big).now_or_never().is_none());
        drop(rx.recv().await.unwrap());
        assert_eq!(big.now_or_never(), Some(Ok(())));
    }

    #[tokio::test]
    async fn connection_items_never_wait_for_bytes() {
        let (tx, _rx, _) = backlog(100, 10);
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
        let (tx, _rx, _) = backlog(2, 1_000_000);
        assert_eq!(tx.send(1, event(1)).now_or_never(), Some(Ok(())));
        assert_eq!(tx.send(2, event(1)).now_or_never(), Some(Ok(())));
        assert!(tx.send(3, event(1)).now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_gone_follower_ends_the_listener() {
        let (tx, rx, _) = backlog(100, 1_000);
        drop(rx);
        assert_eq!(tx.send(1, event(5)).now_or_never(), Some(Err(Closed)));
    }

    #[tokio::test]
    async fn a_widened_budget_narrows_again_as_the_follower_reads() {
        let (tx, mut rx, room) = backlog(100, 1_000);
        let wide = room.widen(1_000);
        for at in 0..3 {
            assert_eq!(tx.send(at, event(500)).now_or_never(), Some(Ok(())));
        }
        // 1,500 bytes wait, over the narrow budget: narrowing takes the 500 free now and
        // owes 500.
        drop(wide);
        tokio::task::yield_now().await;
        let mut next = Box::pin(tx.send(3, event(1)));
        assert!((&mut next).now_or_never().is_none());
        // The first 500 read pay the debt; the queue is at its 1,000 bytes.
        drop(rx.recv().await.unwrap());
        tokio::task::yield_now().await;
        assert!((&mut next).now_or_never().is_none());
        drop(rx.recv().await.unwrap());
        assert_eq!(next.now_or_never(), Some(Ok(())));
    }
}

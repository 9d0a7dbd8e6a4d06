//! Pacing from the server's own rate-limit headers, so that every worker of a run together
//! stays under the server's limit instead of learning it from 429s.
//!
//! Mattermost's limiter is GCRA (§8, §14.4): a bucket of `X-Ratelimit-Limit` tokens refilled
//! at a fixed rate it does not announce. Every answer says how many tokens are left
//! (`X-Ratelimit-Remaining`, floored) and when the bucket is full again (`X-Ratelimit-Reset`,
//! seconds rounded up). [`Pacer`] keeps a mirror of that bucket: each request reserves a token
//! before it is sent (waiting for the refill when none is left, one distinct slot per waiter,
//! so waiting workers do not wake together), and each answer replaces the mirror's count with
//! the server's. The refill rate is learned: a lower bound from `Reset` at first, then the
//! tokens the server actually handed out over a window of at least a second.
//!
//! Pure: time comes in as an argument, so the tests need no clock. No server limit seen (the
//! headers absent, the limiter off) means no pacing at all; `--rate-limit` is a separate,
//! user-set upper bound applied before this.
//!
//! May import: nothing of the crate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The rate-limit headers of one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateHeaders {
    /// Requests the full bucket allows at once (burst + 1).
    pub limit: u32,
    pub remaining: u32,
    /// Whole seconds until the bucket is full again (rounded up by the server).
    pub reset_secs: u64,
}

impl RateHeaders {
    /// Reads the three headers; the smallest value of each when a header comes twice (two
    /// limiters on the way, §8). None unless all three are present.
    pub fn from_headers(headers: &reqwest::header::HeaderMap) -> Option<RateHeaders> {
        let min = |name| super::retry::smallest_number(headers, name);
        Some(RateHeaders {
            limit: u32::try_from(min("x-ratelimit-limit")?).ok()?,
            remaining: u32::try_from(min("x-ratelimit-remaining")?).ok()?,
            reset_secs: min("x-ratelimit-reset")?,
        })
    }
}

/// Shortest window over which the refill rate is measured: below a second the floored
/// `Remaining` makes the figure too noisy.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// The share of the learned rate the mirror refills at: a measured rate can come out a few
/// percent high, and every 429 costs a whole second (`Retry-After` is rounded up).
const HEADROOM: f64 = 0.95;
/// Weight of a new measurement in the learned rate (the rest is the old value).
const SMOOTHING: f64 = 0.3;

/// One answer the rate is measured from.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    at: Instant,
    remaining: u32,
    /// Ticket of the answered request.
    ticket: u64,
    /// Answers refused (429) up to then; they took no token.
    refused: u64,
}

/// The mirror of the server's bucket; see the module doc.
#[derive(Debug, Default)]
pub struct Pacer {
    /// Tokens in the bucket at `at`, after every reservation so far (may be negative: slots
    /// promised to waiting requests).
    tokens: f64,
    at: Option<Instant>,
    limit: u32,
    /// Learned refill, tokens per second; 0 until something is known.
    rate: f64,
    /// Tickets handed out so far; a request's ticket names it until its answer.
    issued: u64,
    /// When each unanswered request is (or was) due to be sent. A later-sent request may
    /// not have reached the server's limiter yet when an answer reports its count.
    outstanding: BTreeMap<u64, Instant>,
    /// Send time of the newest answer applied: answers of older requests arriving late
    /// are not applied.
    applied: Option<Instant>,
    refused: u64,
    anchor: Option<Anchor>,
    /// Whether `rate` was measured at least once (else it is a lower bound from `Reset`).
    measured: bool,
    /// Whether the bucket was seen full since the anchor (the refill was capped then, so
    /// the window measures our pace, not the server's).
    saturated: bool,
}

impl Pacer {
    /// Takes a ticket for a request about to be sent and says how long to wait first.
    pub fn reserve(&mut self, now: Instant) -> (u64, Duration) {
        self.issued += 1;
        let ticket = self.issued;
        let Some(at) = self.at else {
            self.outstanding.insert(ticket, now);
            return (ticket, Duration::ZERO);
        };
        let available = self.tokens_at(at, now);
        self.tokens = available - 1.0;
        self.at = Some(now);
        // One token kept in reserve where the bucket allows: a request due earlier may reach
        // the server after one due later, so the mirror can be a token optimistic. At the
        // server's pace the reserve costs nothing (the refill, not the bucket, sets the pace).
        let needed = if self.limit >= 3 { 2.0 } else { 1.0 };
        let wait = if available >= needed {
            Duration::ZERO
        } else {
            let rate = (self.rate * HEADROOM).max(f64::MIN_POSITIVE);
            // Capped: a wrong guess must not park a request for long; the next answer
            // corrects it.
            Duration::from_secs_f64(((needed - available) / rate).min(60.0))
        };
        self.outstanding.insert(ticket, now + wait);
        (ticket, wait)
    }

    /// A request that got no answer with rate headers (a transport failure): no longer on
    /// its way.
    pub fn forget(&mut self, ticket: u64) {
        self.outstanding.remove(&ticket);
    }

    /// The learned refill rate (tokens per second), 0 while unknown.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn tokens_at(&self, at: Instant, now: Instant) -> f64 {
        let refill = self.rate * HEADROOM * now.saturating_duration_since(at).as_secs_f64();
        (self.tokens + refill).min(f64::from(self.limit))
    }

    /// Applies the headers of the answer to request `ticket`, received at `now`; `refused`
    /// says it was a 429 (which takes no token).
    pub fn observe(&mut self, ticket: u64, now: Instant, headers: RateHeaders, refused: bool) {
        if refused {
            self.refused += 1;
        }
        let Some(sent) = self.outstanding.remove(&ticket) else {
            return;
        };
        // Requests that never got an answer (a dropped connection, a stop) are forgotten
        // after a while instead of counting as on their way forever.
        let stale = now.checked_sub(Duration::from_secs(120));
        self.outstanding
            .retain(|_, due| stale.is_none_or(|stale| *due > stale));
        if self.applied.is_some_and(|applied| sent < applied) || headers.limit == 0 {
            return;
        }
        self.applied = Some(sent);
        self.limit = headers.limit;
        let full = headers.remaining + 1 >= headers.limit;
        self.saturated |= full;
        // A lower bound: the tokens missing from a full bucket come back within `Reset`.
        let missing = f64::from(headers.limit.saturating_sub(headers.remaining + 1));
        if headers.reset_secs > 0 && missing > 0.0 {
            self.rate = self.rate.max(missing / headers.reset_secs as f64);
        }
        self.measure(now, ticket, headers.remaining);
        // Requests sent after this one may not have reached the server's limiter yet: their
        // tokens are still to be taken from what it reported.
        let pending = self.outstanding.values().filter(|due| **due > sent).count() as f64;
        self.tokens = f64::from(headers.remaining) - pending;
        self.at = Some(now);
    }

    /// Refill measured over a window: the change of `Remaining` plus the tokens taken.
    fn measure(&mut self, now: Instant, ticket: u64, remaining: u32) {
        let here = Anchor {
            at: now,
            remaining,
            ticket,
            refused: self.refused,
        };
        let Some(anchor) = self.anchor else {
            self.anchor = Some(here);
            self.saturated = false;
            return;
        };
        let span = now.saturating_duration_since(anchor.at);
        if span < RATE_WINDOW {
            return;
        }
        let taken = (ticket - anchor.ticket).saturating_sub(self.refused - anchor.refused);
        let refill = f64::from(remaining) - f64::from(anchor.remaining) + taken as f64;
        let measured = refill / span.as_secs_f64();
        if measured > 0.0 {
            if self.saturated {
                // Our own pace, which the server allowed: the rate is at least that.
                self.rate = self.rate.max(measured);
            } else if self.measured {
                self.rate = (1.0 - SMOOTHING) * self.rate + SMOOTHING * measured;
            } else {
                self.rate = measured;
                self.measured = true;
            }
        }
        self.anchor = Some(here);
        self.saturated = remaining + 1 >= self.limit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GCRA bucket like the server's (`throttled`), to drive the pacer against.
    struct Server {
        interval: Duration,
        burst: u32,
        tat: Instant,
    }

    impl Server {
        fn new(per_sec: u32, burst: u32, now: Instant) -> Server {
            Server {
                interval: Duration::from_secs(1) / per_sec,
                burst,
                tat: now,
            }
        }

        /// `Retry-After` of a refusal at `now`: whole seconds until one more is allowed.
        fn retry_after(&self, now: Instant) -> Duration {
            let tolerance = self.interval * self.burst;
            let ahead = self.tat.saturating_duration_since(now);
            Duration::from_secs(ahead.saturating_sub(tolerance).as_secs() + 1)
        }

        fn answer(&mut self, now: Instant) -> (RateHeaders, bool) {
            let tolerance = self.interval * (self.burst + 1);
            let tat = self.tat.max(now);
            let new_tat = tat + self.interval;
            let limit = self.burst + 1;
            let ceil = |d: Duration| d.as_secs() + u64::from(d.subsec_nanos() > 0);
            if new_tat - now > tolerance {
                let headers = RateHeaders {
                    limit,
                    remaining: 0,
                    reset_secs: ceil(tat - now),
                };
                return (headers, true);
            }
            self.tat = new_tat;
            let ttl = new_tat - now;
            let remaining = ((tolerance - ttl).as_nanos() / self.interval.as_nanos()) as u32;
            let headers = RateHeaders {
                limit,
                remaining,
                reset_secs: ceil(ttl),
            };
            (headers, false)
        }
    }

    /// `workers` clients sending back to back through one pacer for 20 s, each answer
    /// `latency` after its request reached the server, a 429 retried after its `Retry-After`;
    /// returns (served, refused). A discrete-event simulation: events in time order.
    fn simulate(per_sec: u32, burst: u32, workers: usize, latency: Duration) -> (u32, u32) {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        enum Event {
            Ready,
            Send(u64),
            Answer(u64, u32, u32, u64, bool),
        }
        let start = Instant::now();
        let end = start + Duration::from_secs(20);
        let mut server = Server::new(per_sec, burst, start);
        let mut pacer = Pacer::default();
        let mut events: BinaryHeap<Reverse<(Instant, usize, Event)>> = (0..workers)
            .map(|w| Reverse((start, w, Event::Ready)))
            .collect();
        let (mut served, mut refused) = (0, 0);
        while let Some(Reverse((now, worker, event))) = events.pop() {
            if now >= end {
                break;
            }
            let next = match event {
                Event::Ready => {
                    let (ticket, wait) = pacer.reserve(now);
                    (now + wait, Event::Send(ticket))
                }
                Event::Send(ticket) => {
                    let (h, limited) = server.answer(now);
                    let answer = Event::Answer(ticket, h.limit, h.remaining, h.reset_secs, limited);
                    (now + latency, answer)
                }
                Event::Answer(ticket, limit, remaining, reset_secs, limited) => {
                    let headers = RateHeaders {
                        limit,
                        remaining,
                        reset_secs,
                    };
                    pacer.observe(ticket, now, headers, limited);
                    if limited {
                        refused += 1;
                        (now + server.retry_after(now), Event::Ready)
                    } else {
                        served += 1;
                        (now, Event::Ready)
                    }
                }
            };
            events.push(Reverse((next.0, worker, next.1)));
        }
        (served, refused)
    }

    #[test]
    fn paced_workers_reach_the_server_rate_with_few_refusals() {
        for (per_sec, burst) in [(20, 5), (10, 100)] {
            for workers in [1, 4, 8] {
                let (served, refused) = simulate(per_sec, burst, workers, Duration::from_millis(2));
                let ideal = per_sec * 20 + burst + 1;
                assert!(
                    f64::from(served) >= 0.9 * f64::from(ideal),
                    "{per_sec}/s burst {burst} C={workers}: {served} of {ideal}"
                );
                assert!(
                    f64::from(refused) <= 0.02 * f64::from(served + refused),
                    "{per_sec}/s burst {burst} C={workers}: {refused} refused of {}",
                    served + refused
                );
            }
        }
    }

    #[test]
    fn without_headers_nothing_waits() {
        let mut pacer = Pacer::default();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(pacer.reserve(now).1, Duration::ZERO);
        }
    }

    #[test]
    fn an_empty_bucket_spaces_waiters_one_slot_apart() {
        let mut pacer = Pacer::default();
        let now = Instant::now();
        let (ticket, _) = pacer.reserve(now);
        let headers = RateHeaders {
            limit: 11,
            remaining: 0,
            reset_secs: 2,
        };
        pacer.observe(ticket, now, headers, false);
        assert_eq!(pacer.rate(), 5.0, "10 tokens back within 2 s");
        let waits: Vec<Duration> = (0..3).map(|_| pacer.reserve(now).1).collect();
        // One token kept in reserve, so the first waits for two refills.
        let slots = [2.0, 3.0, 4.0].map(|k| Duration::from_secs_f64(k / (5.0 * HEADROOM)));
        assert_eq!(waits, slots, "one slot each, not all at once");
    }

    #[test]
    fn late_answers_do_not_rewind_the_mirror() {
        let mut pacer = Pacer::default();
        let now = Instant::now();
        let (first, _) = pacer.reserve(now);
        let (second, _) = pacer.reserve(now + Duration::from_millis(1));
        let h = |remaining| RateHeaders {
            limit: 6,
            remaining,
            reset_secs: 1,
        };
        let later = now + Duration::from_millis(2);
        pacer.observe(second, later, h(0), false);
        pacer.observe(first, later, h(5), false);
        assert!(
            pacer.reserve(later).1 > Duration::ZERO,
            "the answer to the later request counts"
        );
    }

    #[test]
    fn duplicated_headers_give_the_smallest_values() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        assert_eq!(RateHeaders::from_headers(&h), None);
        h.append("X-Ratelimit-Limit", HeaderValue::from_static("101"));
        h.append("X-Ratelimit-Remaining", HeaderValue::from_static("40"));
        h.append("X-Ratelimit-Remaining", HeaderValue::from_static("7"));
        h.append("X-Ratelimit-Reset", HeaderValue::from_static("3"));
        assert_eq!(
            RateHeaders::from_headers(&h),
            Some(RateHeaders {
                limit: 101,
                remaining: 7,
                reset_secs: 3
            })
        );
    }
}

//! Injected misbehaviour: latency, a Mattermost-like rate limiter, random 5xx, and
//! connections dropped half-way through a response body.
//!
//! The limiter is the server's (§8, §14.4): GCRA as `throttled` implements it, one bucket
//! per client IP (`VaryByRemoteAddr`), refilled at `per_sec`, allowing `burst + 1` requests
//! at once; every answer carries `X-Ratelimit-Limit/-Remaining/-Reset` and a refusal is a 429
//! with `Retry-After` and a plain-text body. Off unless [`Faults::rate_limit`] is set. Errors
//! are drawn from an RNG seeded by `Faults::seed`, so a given request sequence fails the
//! same way on every run.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What the server should do wrong; the default is a healthy server.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Sleep before answering every request.
    pub latency: Duration,
    /// Server-side limiter like Mattermost's (§8); None = off, the server's default.
    pub rate_limit: Option<RateLimit>,
    /// This many of 1000 requests answer 502/503.
    pub error_permille: u32,
    /// This many of 1000 requests lose their connection half-way through the body (the
    /// headers promise the full length), like a proxy or server dying mid-response.
    pub drop_permille: u32,
    /// Pause before each 64 KiB chunk of a file download after the first (a slow link, so
    /// that tests can interrupt a client mid-download).
    pub download_chunk_delay: Duration,
    /// Route templates (`/api/v4/users/{user_id}/channels`) answered with the router's 404,
    /// like an older server that does not have them.
    pub missing_routes: Vec<&'static str>,
    pub seed: u64,
}

/// `RateLimitSettings`: `PerSec` and `MaxBurst` (the server's defaults when enabled are
/// 10 and 100, [`RateLimit::SERVER_DEFAULT`]).
#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub per_sec: u32,
    pub burst: u32,
}

impl RateLimit {
    pub const SERVER_DEFAULT: RateLimit = RateLimit {
        per_sec: 10,
        burst: 100,
    };
}

/// The `X-Ratelimit-*` values of one response.
#[derive(Clone, Copy, Debug)]
pub struct RateHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

#[derive(Clone, Copy, Debug)]
pub enum Outcome {
    Serve,
    Limited {
        retry_after_secs: u64,
    },
    Fail(StatusCode),
    /// Serve, but cut the body in half and drop the connection.
    Truncate,
}

#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub rate: Option<RateHeaders>,
    pub outcome: Outcome,
}

#[derive(Debug)]
pub struct FaultState {
    faults: Faults,
    rng: StdRng,
    /// GCRA theoretical arrival time, per client IP.
    tat: HashMap<IpAddr, Instant>,
    /// The limiter's clock when a test stopped it (`MockServer::freeze_rate_clock`): every
    /// request is then seen at this moment, whatever the real time.
    clock: Option<Instant>,
}

fn ceil_secs(d: Duration) -> u64 {
    let secs = d.as_secs();
    if d.subsec_nanos() > 0 { secs + 1 } else { secs }
}

impl FaultState {
    pub fn new(faults: Faults) -> Self {
        FaultState {
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
            tat: HashMap::new(),
            clock: None,
        }
    }

    /// Stops the limiter's clock at `at`.
    pub fn freeze_clock(&mut self, at: Instant) {
        self.clock = Some(at);
    }

    /// Moves a stopped clock forward (nothing when it runs).
    pub fn advance_clock(&mut self, by: Duration) {
        if let Some(at) = &mut self.clock {
            *at += by;
        }
    }

    pub fn latency(&self) -> Duration {
        self.faults.latency
    }

    pub fn download_chunk_delay(&self) -> Duration {
        self.faults.download_chunk_delay
    }

    pub fn route_missing(&self, template: &str) -> bool {
        self.faults.missing_routes.contains(&template)
    }

    /// What to do with a request from `client` arriving at `now`.
    pub fn decide(&mut self, now: Instant, client: IpAddr) -> Decision {
        let mut decision = Decision {
            rate: None,
            outcome: Outcome::Serve,
        };
        if let Some(limit) = self.faults.rate_limit {
            let now = self.clock.unwrap_or(now);
            let (headers, retry_after) = self.check_rate(limit, now, client);
            decision.rate = Some(headers);
            if let Some(retry_after_secs) = retry_after {
                decision.outcome = Outcome::Limited { retry_after_secs };
                return decision;
            }
        }
        let permille = self.faults.error_permille.min(1000);
        if permille > 0 && self.rng.random_range(0..1000) < permille {
            let status = if self.rng.random_bool(0.5) {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            decision.outcome = Outcome::Fail(status);
            return decision;
        }
        let drops = self.faults.drop_permille.min(1000);
        if drops > 0 && self.rng.random_range(0..1000) < drops {
            decision.outcome = Outcome::Truncate;
        }
        decision
    }

    /// One GCRA step for one client: headers, and `Some(retry_after)` when the request is
    /// refused. As `throttled`: a request is allowed while the new theoretical arrival time
    /// is at most `(burst + 1) × interval` ahead; `Remaining` is the whole intervals left of
    /// that, `Reset` the time until the bucket is full and `Retry-After` until the next
    /// request would be allowed, both rounded up to seconds. A refused request takes no token.
    fn check_rate(
        &mut self,
        limit: RateLimit,
        now: Instant,
        client: IpAddr,
    ) -> (RateHeaders, Option<u64>) {
        let interval = Duration::from_secs(1) / limit.per_sec.max(1);
        let tolerance = interval * limit.burst;
        let tat = self.tat.get(&client).map_or(now, |t| (*t).max(now));
        let ahead = tat - now;
        let max_requests = limit.burst.saturating_add(1);
        if ahead > tolerance {
            let headers = RateHeaders {
                limit: max_requests,
                remaining: 0,
                reset_secs: ceil_secs(ahead),
            };
            return (headers, Some(ceil_secs(ahead - tolerance).max(1)));
        }
        let new_tat = tat + interval;
        self.tat.insert(client, new_tat);
        let used = new_tat - now;
        let room = (tolerance + interval).saturating_sub(used);
        let remaining = (room.as_nanos() / interval.as_nanos().max(1)) as u32;
        let headers = RateHeaders {
            limit: max_requests,
            remaining,
            reset_secs: ceil_secs(used),
        };
        (headers, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_plus_one_then_limited() {
        let mut state = FaultState::new(Faults {
            rate_limit: Some(RateLimit {
                per_sec: 1,
                burst: 2,
            }),
            ..Faults::default()
        });
        let now = Instant::now();
        let ip = IpAddr::from([127, 0, 0, 1]);
        let remaining: Vec<u32> = (0..3)
            .map(|_| {
                let d = state.decide(now, ip);
                assert!(matches!(d.outcome, Outcome::Serve));
                d.rate.map(|r| r.remaining).unwrap_or(99)
            })
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = state.decide(now, ip);
        assert!(matches!(
            refused.outcome,
            Outcome::Limited {
                retry_after_secs: 1
            }
        ));
        assert_eq!(refused.rate.map(|r| r.limit), Some(3));
        assert!(
            matches!(
                state.decide(now, IpAddr::from([127, 0, 0, 2])).outcome,
                Outcome::Serve
            ),
            "another client has its own bucket"
        );
        let later = state.decide(now + Duration::from_millis(1001), ip);
        assert!(matches!(later.outcome, Outcome::Serve));
    }

    #[test]
    fn error_rate_is_seeded() {
        let faults = Faults {
            error_permille: 300,
            seed: 42,
            ..Faults::default()
        };
        let run = |faults: Faults| {
            let mut state = FaultState::new(faults);
            (0..200)
                .map(|_| {
                    let d = state.decide(Instant::now(), IpAddr::from([127, 0, 0, 1]));
                    matches!(d.outcome, Outcome::Fail(_))
                })
                .collect::<Vec<_>>()
        };
        let a = run(faults.clone());
        assert_eq!(a, run(faults));
        let failures = a.iter().filter(|f| **f).count();
        assert!((30..90).contains(&failures), "{failures}");
    }
}

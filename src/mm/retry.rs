//! When to retry a request, as a pure function of what happened, so it is tested without
//! sleeping. Only idempotent requests come here (every request matterbak sends is a read).
//!
//! A 429 is not a failure: the server is up and asks us to slow down. It does not use up
//! the attempts of a request (those are for failures); it is retried after the server's
//! delay for as long as the server keeps answering, bounded only by
//! [`RetryPolicy::max_limited_wait`] so that a server refusing everything still ends the run.
//!
//! May import: nothing of the crate.

use std::time::Duration;

/// What one attempt produced, reduced to what the policy needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// An HTTP status other than success, with the server's delay hint in seconds if any
    /// (`Retry-After`, else `X-Ratelimit-Reset` on a 429).
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// HTTP 429: `retry_after` is the server's delay in seconds, `waited` the time this
    /// request already spent waiting on 429s.
    Limited {
        retry_after: Option<u64>,
        waited: Duration,
    },
    /// Connection refused/reset, timeout, or a body cut off mid-way.
    Transport,
    /// A 200 whose body was not the JSON we expected (a truncated stream).
    BadBody,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// First backoff; doubled per attempt.
    pub base_delay: Duration,
    /// Largest backoff and largest honoured Retry-After.
    pub max_delay: Duration,
    /// Longest a single request keeps waiting on 429s before it counts as failed.
    pub max_limited_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            max_limited_wait: Duration::from_secs(15 * 60),
        }
    }
}

impl RetryPolicy {
    /// The policy for connection failures before the server ever answered: one quick retry,
    /// so a wrong URL or a stopped server is reported in well under a second instead of after
    /// a minute of backoff. Later failures (a server that answered before) get the full policy.
    pub fn first_contact(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.min(2),
            base_delay: self.base_delay.min(Duration::from_millis(200)),
            max_delay: self.max_delay.min(Duration::from_millis(200)),
            max_limited_wait: self.max_limited_wait,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(Duration),
    GiveUp,
}

/// Retryable: 429, 408, 5xx except 501 (not implemented is permanent), transport failures and
/// truncated bodies. `attempt` counts failures from 1 (429s are not failures and are not
/// counted). `jitter` in [0, 1) picks a point in the full-jitter window (random in
/// production, fixed in tests).
pub fn decide(policy: &RetryPolicy, attempt: u32, what: &Attempt, jitter: f64) -> Decision {
    let hint = match what {
        Attempt::Limited {
            retry_after,
            waited,
        } => {
            if *waited >= policy.max_limited_wait {
                return Decision::GiveUp;
            }
            // Without a hint, a short jittered pause: the pacer, not this delay, spreads
            // the load.
            return Decision::RetryAfter(match retry_after {
                Some(seconds) => Duration::from_secs((*seconds).max(1)).min(policy.max_delay),
                None => policy
                    .base_delay
                    .mul_f64(0.5 + jitter.clamp(0.0, 1.0))
                    .min(policy.max_delay),
            });
        }
        Attempt::Status {
            status,
            retry_after,
        } => {
            if !is_retryable_status(*status) {
                return Decision::GiveUp;
            }
            *retry_after
        }
        Attempt::Transport | Attempt::BadBody => None,
    };
    if attempt >= policy.max_attempts {
        return Decision::GiveUp;
    }
    if let Some(seconds) = hint {
        // The server said when; waiting less only earns another failure.
        return Decision::RetryAfter(Duration::from_secs(seconds.max(1)).min(policy.max_delay));
    }
    let exp = policy
        .base_delay
        .saturating_mul(1u32.checked_shl(attempt - 1).unwrap_or(u32::MAX))
        .min(policy.max_delay);
    Decision::RetryAfter(exp.mul_f64(jitter.clamp(0.0, 1.0)))
}

/// 429, 408 and 5xx except 501 (not implemented is permanent).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429) || (500..600).contains(&status) && status != 501
}

/// Reads a delay hint: `Retry-After` seconds, else on a 429 the smallest `X-Ratelimit-Reset`
/// (Mattermost may send the header twice, once per limiter).
pub fn delay_hint(status: u16, headers: &reqwest::header::HeaderMap) -> Option<u64> {
    smallest_number(headers, "retry-after").or_else(|| {
        if status == 429 {
            smallest_number(headers, "x-ratelimit-reset")
        } else {
            None
        }
    })
}

/// The smallest whole number a header holds, over all its copies and comma-separated values
/// (limiters in a chain may each add one).
pub(crate) fn smallest_number(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_limited_wait: Duration::from_secs(30),
        }
    }

    #[test]
    fn rate_limited_is_not_a_failure_but_is_bounded_in_time() {
        let p = policy();
        let limited = |retry_after, waited| Attempt::Limited {
            retry_after,
            waited: Duration::from_secs(waited),
        };
        assert_eq!(
            decide(&p, 1000, &limited(Some(1), 0), 0.0),
            Decision::RetryAfter(Duration::from_secs(1)),
            "429s do not use up the attempts"
        );
        assert_eq!(
            decide(&p, 1, &limited(Some(0), 29), 0.0),
            Decision::RetryAfter(Duration::from_secs(1)),
            "Retry-After 0 still waits a second"
        );
        assert_eq!(
            decide(&p, 1, &limited(Some(3600), 0), 0.0),
            Decision::RetryAfter(Duration::from_secs(2)),
            "capped"
        );
        assert_eq!(
            decide(&p, 1, &limited(None, 0), 0.0),
            Decision::RetryAfter(Duration::from_millis(50))
        );
        assert_eq!(decide(&p, 1, &limited(Some(1), 30), 0.0), Decision::GiveUp);
    }

    #[test]
    fn retryable_statuses_and_failures() {
        let p = policy();
        let status = |status| Attempt::Status {
            status,
            retry_after: None,
        };
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(
                decide(&p, 1, &status(s), 1.0),
                Decision::RetryAfter(Duration::from_millis(100)),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 413, 501] {
            assert_eq!(decide(&p, 1, &status(s), 1.0), Decision::GiveUp, "{s}");
        }
        assert!(matches!(
            decide(&p, 1, &Attempt::Transport, 0.5),
            Decision::RetryAfter(_)
        ));
        assert!(matches!(
            decide(&p, 1, &Attempt::BadBody, 0.5),
            Decision::RetryAfter(_)
        ));
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let p = policy();
        let t = Attempt::Transport;
        assert_eq!(
            decide(&p, 2, &t, 1.0),
            Decision::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(
            decide(&p, 3, &t, 1.0),
            Decision::RetryAfter(Duration::from_millis(400))
        );
        assert_eq!(
            decide(&p, 3, &t, 0.5),
            Decision::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(decide(&p, 3, &t, 0.0), Decision::RetryAfter(Duration::ZERO));
        let long = RetryPolicy {
            max_attempts: 40,
            ..p
        };
        assert_eq!(
            decide(&long, 35, &t, 1.0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
        assert_eq!(
            decide(&p, 4, &t, 1.0),
            Decision::GiveUp,
            "attempts exhausted"
        );
    }

    #[test]
    fn server_delay_is_honoured_and_capped() {
        let p = policy();
        let limited = |s| Attempt::Status {
            status: 429,
            retry_after: Some(s),
        };
        assert_eq!(
            decide(&p, 1, &limited(1), 0.0),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            decide(&p, 1, &limited(0), 0.0),
            Decision::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            decide(&p, 1, &limited(3600), 0.0),
            Decision::RetryAfter(Duration::from_secs(2))
        );
    }

    #[test]
    fn first_contact_retries_once_and_briefly() {
        let p = RetryPolicy::default().first_contact();
        let t = Attempt::Transport;
        assert_eq!(
            decide(&p, 1, &t, 1.0),
            Decision::RetryAfter(Duration::from_millis(200))
        );
        assert_eq!(decide(&p, 2, &t, 1.0), Decision::GiveUp);
        let tight = RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(5),
            max_limited_wait: Duration::from_secs(1),
        };
        assert_eq!(tight.first_contact(), tight, "never looser than the policy");
    }

    #[test]
    fn delay_hint_reads_duplicated_headers() {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut h = HeaderMap::new();
        h.append("X-Ratelimit-Reset", HeaderValue::from_static("7"));
        h.append("X-Ratelimit-Reset", HeaderValue::from_static("3"));
        assert_eq!(delay_hint(429, &h), Some(3));
        assert_eq!(delay_hint(503, &h), None);
        h.insert("Retry-After", HeaderValue::from_static("5"));
        assert_eq!(delay_hint(503, &h), Some(5));
    }
}

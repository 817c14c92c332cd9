//! One webhook attempt: the guarded HTTP client, the signed `POST`, and what it recorded.
//!
//! The client never follows redirects (a 3xx is a failed attempt: a redirect would re-send
//! the signed body wherever the receiver points, internal addresses included), uses no proxy
//! from the environment (a proxy would resolve and reach the name itself, past the guard), and
//! resolves names through [`GuardedResolver`], so it connects only to addresses the
//! [`UrlPolicy`] permits. IP-literal URLs bypass resolvers and are checked here first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ssrf::{self, GuardedResolver, UrlPolicy};
use super::{sign, sign_smsgate};
use crate::config::Config;
use crate::store::now_ms;

/// The delivery client and the policy it enforces.
#[derive(Debug, Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    policy: Arc<UrlPolicy>,
}

/// What one attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Unix milliseconds when the attempt started.
    pub at: i64,
    pub status: Option<u16>,
    pub duration_ms: i64,
    /// `None` for a 2xx.
    pub error: Option<String>,
}

impl Deliverer {
    /// The client for `config` (timeouts and allow-list).
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(UrlPolicy::new(config.webhook_allow_cidrs.clone()));
        let client = reqwest::Client::builder()
            .connect_timeout(config.webhook_timeout.min(Duration::from_secs(5)))
            .timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .user_agent(concat!("simrelay/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, policy })
    }

    pub fn policy(&self) -> &UrlPolicy {
        &self.policy
    }

    /// Posts `body` to `url`, signed with `secret`: the relay's headers for its own events,
    /// SMS Gateway for Android's (`X-Signature`, `X-Timestamp`) for the events of the
    /// compatible API (names with a `:`).
    pub async fn post(
        &self,
        url: &str,
        secret: &str,
        event: &str,
        event_id: &str,
        body: &str,
    ) -> Sent {
        let at = now_ms();
        let started = Instant::now();
        let (status, error) = match ssrf::check_url(url, &self.policy) {
            // Stored before the guard existed, or the allow-list shrank since.
            Err(refusal) => (None, Some(format!("refused: {}", refusal.code()))),
            Ok(url) => {
                let ts = at / 1000;
                let req = self
                    .client
                    .post(url)
                    .header("content-type", "application/json");
                let req = if event.contains(':') {
                    req.header("x-timestamp", ts.to_string())
                        .header("x-signature", sign_smsgate(secret, ts, body))
                } else {
                    req.header("x-simrelay-event-id", event_id)
                        .header("x-simrelay-timestamp", ts.to_string())
                        .header("x-simrelay-signature", sign(secret, ts, body))
                };
                let result = req.body(body.to_string()).send().await;
                match result {
                    Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
                    Ok(r) if r.status().is_redirection() => (
                        Some(r.status().as_u16()),
                        Some(format!(
                            "HTTP {} (redirects are not followed)",
                            r.status().as_u16()
                        )),
                    ),
                    Ok(r) => (
                        Some(r.status().as_u16()),
                        Some(format!("HTTP {}", r.status().as_u16())),
                    ),
                    // reqwest's error text names the URL; ours never does.
                    Err(e) => (None, Some(error_text(&e).to_string())),
                }
            }
        };
        Sent {
            at,
            status,
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            error,
        }
    }
}

fn error_text(e: &reqwest::Error) -> &'static str {
    if ssrf::is_forbidden(e) {
        "refused: every address of the host name is forbidden"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect failed"
    } else {
        "request failed"
    }
}

//! The balancer's I/O shell: one call to a VIP over HTTP, with the chooser,
//! the retry policy and a single overall deadline.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument as _;
use tracing::field::Empty;

use super::{Failure, LoadBalancer, Next, RetryPolicy};
use crate::discovery::{DiscoveryClient, ServiceInstance};

/// Timeouts and retries for calls to one VIP.
#[derive(Debug, Clone)]
pub struct BalancerSettings {
    /// Time to establish a TCP connection (Ribbon's `ConnectTimeout`).
    pub connect_timeout: Duration,
    /// Time one attempt may take to answer (Ribbon's `ReadTimeout`), capped
    /// by what is left of the call's deadline.
    pub attempt_timeout: Duration,
    /// How long an instance that refused a connection is skipped.
    pub cooldown: Duration,
    /// Retries on the same and the next server (Ribbon's).
    pub retry: RetryPolicy,
    /// When the registry suddenly lists no instance (a registry restarted
    /// empty, before the instances re-register), keep calling the last
    /// known ones for this long. Dead ones are skipped by availability
    /// filtering anyway; a whole lease (90 s) is how long the registry
    /// itself would have kept them.
    pub keep_last_known: Duration,
}

impl Default for BalancerSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            // Longer than the middletier's own 3 s wait for slow feeds, so a
            // normal slow page is not mistaken for a dead server.
            attempt_timeout: Duration::from_secs(4),
            cooldown: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            keep_last_known: Duration::from_secs(90),
        }
    }
}

/// A response, and who gave it.
#[derive(Debug)]
pub struct Served {
    /// The instance's answer, its body not yet read.
    pub response: reqwest::Response,
    /// The instance that answered.
    pub instance: ServiceInstance,
    /// 1 when the first attempt answered.
    pub attempts: u32,
}

/// Why a call got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The registry lists no `UP` instance of the VIP.
    #[error("no UP instance of {vip} is known")]
    NoInstances {
        /// The VIP called.
        vip: String,
    },
    /// The attempts ran out of time.
    #[error("no instance of {vip} answered in time ({attempts} attempt(s))")]
    Timeout {
        /// The VIP called.
        vip: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// Every attempt failed to connect.
    #[error("could not reach any instance of {vip} ({attempts} attempt(s); last error: {last})")]
    Unreachable {
        /// The VIP called.
        vip: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last attempt's error.
        last: String,
    },
    /// The request could not be built (a bug in the caller's closure).
    #[error("the request could not be built: {0}")]
    Request(String),
}

/// Calls one VIP through the load balancer. Cheap to clone.
#[derive(Clone)]
pub struct BalancedClient {
    vip: String,
    discovery: DiscoveryClient,
    balancer: Arc<LoadBalancer>,
    http: reqwest::Client,
    settings: BalancerSettings,
    /// The last non-empty instance list, and when it was seen.
    last_known: Arc<Mutex<(Vec<ServiceInstance>, Instant)>>,
}

impl std::fmt::Debug for BalancedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalancedClient")
            .field("vip", &self.vip)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl BalancedClient {
    /// A client for `vip`, choosing among the instances `discovery` knows.
    pub fn new(
        vip: &str,
        discovery: DiscoveryClient,
        settings: BalancerSettings,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Never reuse a connection the server may be closing as idle.
            .pool_idle_timeout(crate::server::CLIENT_POOL_IDLE)
            .connect_timeout(settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        // Zero-valued series from the start, so a dashboard's `rate()` has a
        // line before the first retry rather than "no data".
        for kind in ["same_server", "next_server", "rediscovered"] {
            metrics::counter!("lb_retries_total", "vip" => vip.to_owned(), "kind" => kind)
                .increment(0);
        }
        Ok(Self {
            vip: vip.to_owned(),
            discovery,
            balancer: Arc::new(LoadBalancer::new(settings.cooldown)),
            http,
            settings,
            last_known: Arc::new(Mutex::new((Vec::new(), Instant::now()))),
        })
    }

    /// The VIP this client calls.
    pub fn vip(&self) -> &str {
        &self.vip
    }

    /// The instances known now, each with whether the balancer would choose
    /// it (false while it cools down after a refused connection).
    pub fn instances(&self) -> Vec<(ServiceInstance, bool)> {
        let now = Instant::now();
        self.discovery
            .up_instances(&self.vip)
            .into_iter()
            .map(|i| {
                let available = self.balancer.is_available(&i.id, now);
                (i, available)
            })
            .collect()
    }

    /// Sends the request `build` makes for an instance's base URL
    /// (`http://host:port`), retrying per the policy, all before `deadline`.
    ///
    /// When every instance the call could try has refused a connection,
    /// the whole registry is fetched again (at most once a second) and, if
    /// it lists instances not tried yet, the call goes on with those, once:
    /// the instances we knew may all have been replaced while our copy was
    /// out of date.
    ///
    /// Every call through this client must be idempotent: a connection lost
    /// mid-request is retried like a refused one. (The recipe's calls are:
    /// reads, and subscribe/unsubscribe, which are idempotent by contract.)
    pub async fn call<F>(&self, deadline: Instant, build: F) -> Result<Served, CallError>
    where
        F: Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    {
        let mut instances = self.candidates().await;
        let mut tried: Vec<String> = Vec::new();
        let mut rediscovered = false;
        let Some(mut current) = self
            .balancer
            .choose(&instances, &tried, Instant::now())
            .cloned()
        else {
            return Err(CallError::NoInstances {
                vip: self.vip.clone(),
            });
        };
        let (mut attempts, mut retries_here, mut switched) = (0u32, 0u32, 0u32);
        loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            if remaining.is_zero() {
                return Err(CallError::Timeout {
                    vip: self.vip.clone(),
                    attempts,
                });
            }
            attempts += 1;
            let budget = remaining.min(self.settings.attempt_timeout);
            let span = self.attempt_span(&current, attempts);
            let request = build(&self.http, &current.base_url())
                .timeout(budget)
                .headers(crate::telemetry::http::traceparent(&span));
            let sent = tokio::time::timeout(budget, request.send())
                .instrument(span.clone())
                .await;
            let failure = match sent {
                Ok(Ok(response)) => {
                    span.record("outcome", "ok");
                    span.record("http.response.status_code", response.status().as_u16());
                    self.balancer.record_success(&current.id);
                    self.count("ok", &current);
                    return Ok(Served {
                        response,
                        instance: current,
                        attempts,
                    });
                }
                Ok(Err(e)) if e.is_builder() => return Err(CallError::Request(e.to_string())),
                Ok(Err(e)) if e.is_timeout() && !e.is_connect() => {
                    (Failure::Timeout, e.to_string())
                }
                Ok(Err(e)) => {
                    // Refused, reset, or closed before the answer.
                    self.balancer
                        .record_connect_failure(&current.id, Instant::now());
                    (Failure::Connect, crate::root_cause(&e))
                }
                Err(_elapsed) => (Failure::Timeout, format!("no answer within {budget:?}")),
            };
            let (kind, reason) = failure;
            let outcome = if kind == Failure::Connect {
                "connect_error"
            } else {
                "timeout"
            };
            span.record("outcome", outcome);
            span.record("otel.status_code", "ERROR");
            span.record("error.message", reason.as_str());
            self.count(outcome, &current);
            tracing::debug!(vip = %self.vip, instance = %current.id, ?kind, %reason, "attempt failed");
            let step = self.settings.retry.next(kind, retries_here, switched);
            if step == Next::SameServer {
                retries_here += 1;
                metrics::counter!("lb_retries_total", "vip" => self.vip.clone(), "kind" => "same_server").increment(1);
                continue;
            }
            tried.push(current.id.clone());
            let choose = |instances: &[ServiceInstance], tried: &[String]| {
                self.balancer
                    .choose(instances, tried, Instant::now())
                    .cloned()
            };
            let (mut next, mut kind_of_retry) = match step {
                Next::NextServer => (choose(&instances, &tried), "next_server"),
                _ => (None, ""),
            };
            if next.is_none()
                && kind == Failure::Connect
                && !rediscovered
                && self.none_available(&instances)
            {
                rediscovered = true;
                instances = self.rediscover().await;
                (next, kind_of_retry) = (choose(&instances, &tried), "rediscovered");
            }
            let Some(next) = next else {
                return Err(self.give_up(kind, attempts, reason));
            };
            metrics::counter!("lb_retries_total", "vip" => self.vip.clone(), "kind" => kind_of_retry).increment(1);
            current = next;
            retries_here = 0;
            switched += 1;
        }
    }

    /// The span of one attempt, a child of the caller's (the command's):
    /// which instance was tried, and how it went. None with tracing off.
    fn attempt_span(&self, instance: &ServiceInstance, attempt: u32) -> tracing::Span {
        crate::telemetry::span(|| {
            tracing::info_span!(
                "attempt",
                otel.name = %format_args!("{} attempt", self.vip),
                otel.kind = "client",
                otel.status_code = Empty,
                vip = %self.vip,
                instance.id = %instance.id,
                server.address = %instance.host,
                server.port = instance.port,
                attempt,
                outcome = Empty,
                http.response.status_code = Empty,
                error.message = Empty,
            )
        })
    }

    /// Whether every instance in `instances` is cooling down after a
    /// refused connection.
    fn none_available(&self, instances: &[ServiceInstance]) -> bool {
        let now = Instant::now();
        instances
            .iter()
            .all(|i| !self.balancer.is_available(&i.id, now))
    }

    /// The `UP` instances after a full registry fetch (at most one a second).
    async fn rediscover(&self) -> Vec<ServiceInstance> {
        if let Err(e) = self
            .discovery
            .fetch_full_if_older_than(Duration::from_secs(1))
            .await
        {
            tracing::debug!(error = %e, "on-demand registry fetch failed");
        }
        self.discovery.up_instances(&self.vip)
    }

    /// The instances to choose from: the registry's `UP` list; if it is
    /// empty, or every instance on it refused its last connection, the
    /// whole registry is fetched again (at most once a second: an instance
    /// may have registered, or replaced the dead ones, since our copy was
    /// made); if the list is still empty, the last known one, for a while
    /// (see [`BalancerSettings::keep_last_known`]).
    async fn candidates(&self) -> Vec<ServiceInstance> {
        let mut instances = self.discovery.up_instances(&self.vip);
        if instances.is_empty() || self.none_available(&instances) {
            instances = self.rediscover().await;
        }
        let mut last_known = self
            .last_known
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !instances.is_empty() {
            *last_known = (instances.clone(), Instant::now());
            return instances;
        }
        let (known, seen) = &*last_known;
        if !known.is_empty() && seen.elapsed() < self.settings.keep_last_known {
            metrics::counter!("lb_last_known_used_total", "vip" => self.vip.clone()).increment(1);
            tracing::debug!(vip = %self.vip, "the registry lists no instance; trying the last known ones");
            return known.clone();
        }
        instances
    }

    fn give_up(&self, last: Failure, attempts: u32, reason: String) -> CallError {
        match last {
            Failure::Timeout => CallError::Timeout {
                vip: self.vip.clone(),
                attempts,
            },
            Failure::Connect => CallError::Unreachable {
                vip: self.vip.clone(),
                attempts,
                last: reason,
            },
        }
    }

    fn count(&self, outcome: &'static str, instance: &ServiceInstance) {
        metrics::counter!("lb_attempts_total", "vip" => self.vip.clone(), "instance" => instance.id.clone(), "outcome" => outcome)
            .increment(1);
        let available = if outcome == "connect_error" { 0.0 } else { 1.0 };
        metrics::gauge!("lb_instance_available", "vip" => self.vip.clone(), "instance" => instance.id.clone()).set(available);
    }
}

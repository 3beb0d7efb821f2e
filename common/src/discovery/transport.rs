//! Talking to the registry: each call goes to the registries in order,
//! starting from the one that last answered (failover), and answers are
//! read only up to a limit.

use std::sync::atomic::Ordering;

use serde_json::Value;
use url::Url;

use super::client::{DiscoveryClient, DiscoveryError};

/// The largest registry answer read: 10,000 instances are about 20 MiB of
/// JSON; anything much larger is not a registry we should trust.
pub const MAX_REGISTRY_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

impl DiscoveryClient {
    pub(super) async fn get_json(&self, path: &str) -> Result<Value, DiscoveryError> {
        let response = self
            .send(|base, http| {
                Ok(http
                    .get(base.join(path)?)
                    .header(reqwest::header::ACCEPT, "application/json"))
            })
            .await?;
        if !response.status().is_success() {
            return Err(DiscoveryError::Refused(response.status().as_u16()));
        }
        let body = crate::limits::read_capped(response, MAX_REGISTRY_ANSWER_BYTES)
            .await
            .map_err(|e| match e {
                crate::limits::ReadCappedError::TooLarge => DiscoveryError::BadBody(format!(
                    "the answer is larger than {} MiB",
                    MAX_REGISTRY_ANSWER_BYTES >> 20
                )),
                crate::limits::ReadCappedError::Transport(e) => {
                    DiscoveryError::BadBody(crate::root_cause(&e))
                }
            })?;
        serde_json::from_slice(&body).map_err(|e| DiscoveryError::BadBody(e.to_string()))
    }

    /// Sends to the registries in order, starting with the one that last
    /// answered; a transport error or a 5xx moves on to the next.
    pub(super) async fn send(
        &self,
        build: impl Fn(&Url, &reqwest::Client) -> Result<reqwest::RequestBuilder, url::ParseError>,
    ) -> Result<reqwest::Response, DiscoveryError> {
        let urls = &self.inner.settings.registry_urls;
        if urls.is_empty() {
            return Err(DiscoveryError::Disabled);
        }
        let first = self.inner.preferred.load(Ordering::Relaxed) % urls.len();
        let mut last_error = String::new();
        for offset in 0..urls.len() {
            let index = (first + offset) % urls.len();
            let request = match build(&urls[index], &self.inner.http) {
                Ok(request) => request,
                Err(e) => return Err(DiscoveryError::BadBody(e.to_string())),
            };
            match request.send().await {
                Ok(response) if !response.status().is_server_error() => {
                    self.inner.preferred.store(index, Ordering::Relaxed);
                    return Ok(response);
                }
                Ok(response) => {
                    last_error = format!("{} answered HTTP {}", urls[index], response.status())
                }
                Err(e) => last_error = format!("{}: {}", urls[index], crate::root_cause(&e)),
            }
        }
        metrics::counter!("discovery_registry_unreachable_total").increment(1);
        Err(DiscoveryError::Unreachable(last_error))
    }
}

//! Where the registry is and how often to talk to it.

use std::time::Duration;

use url::Url;

/// Timings and where the registry is. Defaults are Eureka's, except the
/// fetch interval (Eureka: 30 s; here 5 s, so a new instance gets traffic
/// sooner; a fetch of a small registry is cheap).
#[derive(Debug, Clone)]
pub struct DiscoverySettings {
    /// Registry base URLs, e.g. `http://127.0.0.1:8761/eureka/v2/`. Empty:
    /// no registry (the service runs standalone).
    pub registry_urls: Vec<Url>,
    /// How often this instance renews its lease (a heartbeat).
    pub renewal_interval: Duration,
    /// How long the registry keeps this instance without a heartbeat.
    pub lease_duration: Duration,
    /// How often the local copy of the registry is refreshed.
    pub fetch_interval: Duration,
    /// A full fetch at least this often, whatever the deltas say.
    pub full_fetch_interval: Duration,
    /// Per request to the registry.
    pub request_timeout: Duration,
    /// How long one watch (`GET apps/watch`, our registry's long poll)
    /// waits for a change; zero: poll every `fetch_interval` instead.
    pub watch_timeout: Duration,
}

impl Default for DiscoverySettings {
    fn default() -> Self {
        Self {
            registry_urls: Vec::new(),
            renewal_interval: Duration::from_secs(30),
            lease_duration: Duration::from_secs(90),
            fetch_interval: Duration::from_secs(5),
            full_fetch_interval: Duration::from_secs(60),
            request_timeout: Duration::from_secs(3),
            watch_timeout: Duration::from_secs(30),
        }
    }
}

/// Parses registry URLs, making each end in `/` so relative paths join
/// under it (`.../eureka/v2` and `.../eureka/v2/` mean the same).
pub fn parse_registry_urls(raw: &[String]) -> Result<Vec<Url>, String> {
    raw.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let with_slash = if s.ends_with('/') { s.to_owned() } else { format!("{s}/") };
            Url::parse(&with_slash)
                .map_err(|e| format!("registry URL {s:?} is not valid ({e}); use e.g. http://127.0.0.1:8761/eureka/v2/"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_urls_get_a_trailing_slash() {
        let urls = parse_registry_urls(&[
            "http://a:8761/eureka/v2".into(),
            " ".into(),
            "http://b/eureka/".into(),
        ])
        .unwrap();
        let urls: Vec<_> = urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["http://a:8761/eureka/v2/", "http://b/eureka/"]);
        assert_eq!(
            parse_registry_urls(&["http://a:8761/eureka/v2/".into()]).unwrap()[0]
                .join("apps/X")
                .unwrap()
                .as_str(),
            "http://a:8761/eureka/v2/apps/X"
        );
        assert!(parse_registry_urls(&["not a url".into()]).is_err());
        assert!(
            parse_registry_urls(&[String::new()]).unwrap().is_empty(),
            "empty means standalone"
        );
    }
}

//! Who is on the other end of a request: the client's address, whether it
//! came over HTTPS, and the origin it was sent to.
//!
//! The edge usually sits behind a reverse proxy that terminates TLS, so the
//! peer of the TCP connection is the proxy, not the browser. A proxy says
//! who it forwards for in `X-Forwarded-For`, `X-Forwarded-Proto` and
//! `X-Forwarded-Host`; those headers are believed **only** from a peer in
//! `--trusted-proxies` (default: this machine), since any client can send
//! them. From anyone else, the peer's address and a plain-HTTP connection
//! are the truth.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

/// The client of one request (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Client {
    /// The browser's (or API client's) address.
    pub addr: IpAddr,
    /// Whether the browser reached us over HTTPS.
    pub https: bool,
    /// The authority (`host[:port]`) the browser sent the request to.
    pub host: Option<String>,
}

impl Client {
    /// Works out the client from the connection's peer and the headers.
    pub(crate) fn of(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Self {
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let from_proxy = is_trusted(&peer);
        let addr = if from_proxy {
            // The rightmost address a trusted proxy did not add itself.
            header("x-forwarded-for")
                .map(|list| {
                    list.split(',')
                        .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
                        .collect::<Vec<_>>()
                })
                .and_then(|hops| {
                    hops.iter()
                        .rev()
                        .find(|ip| !is_trusted(ip))
                        .or(hops.first())
                        .copied()
                })
                .unwrap_or(peer)
        } else {
            peer
        };
        let forwarded = |name| from_proxy.then(|| header(name)).flatten();
        let https = forwarded("x-forwarded-proto")
            .and_then(|list| list.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        let host = forwarded("x-forwarded-host")
            .and_then(|list| list.split(',').next())
            .or_else(|| header("host"))
            .map(|h| h.trim().to_ascii_lowercase());
        Self { addr, https, host }
    }

    /// The origin a page of ours has, as a browser writes it in `Origin`:
    /// `scheme://host[:port]`, the port only when not the scheme's default.
    pub(crate) fn origin(&self) -> Option<String> {
        let scheme = if self.https { "https" } else { "http" };
        let host = self.host.as_deref()?;
        let default_port = if self.https { ":443" } else { ":80" };
        let host = host.strip_suffix(default_port).unwrap_or(host);
        Some(format!("{scheme}://{host}"))
    }
}

impl Client {
    /// Whose write budget this request draws from: the user, from this
    /// address (see `common::ratelimit`).
    pub(crate) fn rate_key(&self, user: &common::api::UserId) -> common::ratelimit::RateKey {
        common::ratelimit::RateKey::user_at(user, self.addr)
    }
}

impl FromRequestParts<crate::state::AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::state::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(client_of(parts, &state.trusted_proxies))
    }
}

/// The client of a request whose parts are `parts`.
pub(crate) fn client_of(parts: &Parts, trusted: &[IpNet]) -> Client {
    Client::of(peer_of(parts), &parts.headers, trusted)
}

/// The address the connection came from (a proxy's, when there is one).
pub(crate) fn peer_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |ConnectInfo(addr)| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Vec<IpNet> {
        vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_trusted_proxy_names_the_client_and_the_scheme() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9, 10.1.2.3"),
            ("x-forwarded-proto", "https"),
            ("host", "reader.example"),
        ]);
        let client = Client::of("127.0.0.1".parse().unwrap(), &h, &trusted());
        assert_eq!(client.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(client.https);
        assert_eq!(client.origin().as_deref(), Some("https://reader.example"));
    }

    #[test]
    fn anyone_else_is_believed_about_nothing() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
            ("host", "reader.example:9090"),
        ]);
        let client = Client::of("203.0.113.9".parse().unwrap(), &h, &trusted());
        assert_eq!(client.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert!(!client.https);
        assert_eq!(
            client.origin().as_deref(),
            Some("http://reader.example:9090")
        );
    }

    #[test]
    fn a_client_cannot_hide_behind_an_address_it_makes_up() {
        // The client wrote its own X-Forwarded-For; the proxy appended the
        // address it saw. The rightmost untrusted one is the truth.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        let client = Client::of("127.0.0.1".parse().unwrap(), &h, &trusted());
        assert_eq!(client.addr, "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}

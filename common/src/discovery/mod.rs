//! Service discovery, the Eureka way.
//!
//! In the 2013 recipe every process registered itself with Eureka and
//! looked its peers up there, instead of being told their addresses: an
//! instance that starts is found, one that dies is forgotten, and nobody
//! edits a config file. We keep that contract and Eureka's REST protocol
//! (so a real Eureka server can replace our registry), and leave out what a
//! one-region recipe does not need (peer replication, regions, zones,
//! self-preservation).
//!
//! - [`eureka`]: the wire model (records, statuses, `apps__hashcode`).
//! - [`local`]: the client's copy of the registry (pure data).
//! - [`settings`]: where the registry is, and the timings.
//! - [`registration`]: the record this process registers.
//! - [`client`]: register, heartbeat, leave; the I/O shell around them,
//!   with [`fetch`] (keeping the local copy fresh) and [`transport`]
//!   (talking to the registries, with failover).
//!
//! # How fast changes are noticed, with the defaults
//!
//! | event | registry knows | a client (edge) knows |
//! |---|---|---|
//! | instance starts | at once (it registers on start, `UP` when serving) | within one fetch interval: ≤ 5 s |
//! | instance stops gracefully (SIGTERM) | at once (it cancels its lease before closing) | ≤ 5 s; meanwhile the balancer retries elsewhere |
//! | instance dies (SIGKILL, crash) | after its lease expires: ≤ 90 s + one eviction pass (≤ 5 s) | ≤ 100 s; but the balancer skips it after the first refused connection, so no call fails |
//! | registry restarts empty | each instance re-registers on its next heartbeat: ≤ 30 s | next fetch after that |
//!
//! In the 2013 stack the same numbers were larger: Eureka's 30 s response
//! cache, the client's 30 s fetch and Ribbon's 30 s server-list refresh
//! stacked up to about 90 s for a new instance to get traffic.

pub mod client;
pub mod eureka;
pub mod fetch;
pub mod local;
pub mod registration;
pub mod settings;
pub mod transport;

pub use client::{DiscoveryClient, DiscoveryError, now_ms};
pub use eureka::Status;
pub use local::{LocalRegistry, ServiceInstance};
pub use registration::Registration;
pub use settings::{DiscoverySettings, parse_registry_urls};

use std::net::IpAddr;

/// `http://host:port`, with an IPv6 literal in brackets (`http://[::1]:9191`)
/// as URLs require.
pub fn http_base(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("http://[{host}]:{port}")
    } else {
        format!("http://{host}:{port}")
    }
}

/// The host to advertise when none is configured: the listen host, unless
/// it is a wildcard (0.0.0.0, ::), in which case the address this machine
/// uses to reach the registry, or else the machine's host name.
pub fn default_advertise_host(listen_host: &str, registry_urls: &[url::Url]) -> String {
    let wildcard = listen_host
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    if !wildcard {
        return listen_host.to_owned();
    }
    route_to_registry(registry_urls)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".to_owned())
        })
}

/// The address to put in the record's `ipAddr` for an advertised `host`:
/// the host itself when it is an IP address; for a host *name* (say
/// `edge`, in compose), the address this machine uses to reach the
/// registry, as a Eureka client fills `ipAddr` from its own interface.
/// Clients that prefer IP addresses must never be handed a name there.
pub fn advertise_ip(host: &str, registry_urls: &[url::Url]) -> String {
    let literal = host.trim_matches(['[', ']']);
    if literal.parse::<IpAddr>().is_ok() {
        return literal.to_owned();
    }
    route_to_registry(registry_urls).map_or_else(|| host.to_owned(), |ip| ip.to_string())
}

/// The local address of the route to the first registry, found by
/// "connecting" a UDP socket, which sends nothing.
fn route_to_registry(registry_urls: &[url::Url]) -> Option<IpAddr> {
    let url = registry_urls.first()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect((host.trim_matches(['[', ']']), port)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_literals_are_bracketed_in_urls() {
        assert_eq!(http_base("::1", 9191), "http://[::1]:9191");
        assert_eq!(http_base("[::1]", 9191), "http://[::1]:9191");
        assert_eq!(http_base("10.0.0.5", 80), "http://10.0.0.5:80");
        assert_eq!(http_base("middletier", 9191), "http://middletier:9191");
        assert!(url::Url::parse(&http_base("fe80::1", 1)).is_ok());
    }

    #[test]
    fn a_concrete_listen_host_is_advertised_as_is() {
        assert_eq!(default_advertise_host("127.0.0.1", &[]), "127.0.0.1");
        assert_eq!(default_advertise_host("middletier", &[]), "middletier");
    }

    #[test]
    fn a_wildcard_listen_host_advertises_the_route_to_the_registry() {
        let registry = url::Url::parse("http://127.0.0.1:8761/eureka/v2/").unwrap();
        assert_eq!(default_advertise_host("0.0.0.0", &[registry]), "127.0.0.1");
        assert!(!default_advertise_host("0.0.0.0", &[]).is_empty());
    }

    #[test]
    fn ip_addr_is_always_an_address() {
        let registry = [url::Url::parse("http://127.0.0.1:8761/eureka/v2/").unwrap()];
        assert_eq!(advertise_ip("10.0.0.5", &registry), "10.0.0.5");
        assert_eq!(advertise_ip("[::1]", &registry), "::1");
        // A name (compose's `edge`) gets the address the registry is
        // reached from.
        assert_eq!(advertise_ip("edge", &registry), "127.0.0.1");
        // With no registry to route to, the name is all there is.
        assert_eq!(advertise_ip("edge", &[]), "edge");
    }
}

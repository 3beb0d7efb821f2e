//! SSRF guard: feed URLs must not reach into our own network.
//!
//! A feed reader fetches URLs that users type, from inside the data centre.
//! Without a guard, `http://169.254.169.254/latest/meta-data/` (the cloud
//! metadata service), `http://localhost:8761/` or `http://10.0.0.5/admin`
//! would be fetched on the user's behalf. So we refuse any URL whose host
//! *is* or *resolves to* a loopback, private, link-local, unique-local,
//! shared (CGNAT), multicast, unspecified or reserved address, including
//! IPv4 addresses wrapped in IPv6 (mapped, compatible, translated, 6to4,
//! NAT64) and tunnels that hide them (Teredo).
//!
//! The operator may open private networks: exactly the networks listed in
//! `--allow-feed-addresses` (CIDRs, e.g. a company's feed server), or all
//! of them with `--allow-private-feeds`. Link-local addresses (the cloud
//! metadata service at 169.254.169.254) stay refused by the latter: only
//! an explicit list entry opens them.
//!
//! A refusal names the host and why, never the address a name resolved to:
//! a user must not learn the inside of our network by asking.
//!
//! The check runs three times, because each alone can be bypassed:
//! 1. at subscribe time, so the user gets a 400 explaining why;
//! 2. in the HTTP client's DNS resolver ([`GuardedResolver`]), on the very
//!    addresses the connection will use, so DNS rebinding and names such as
//!    `localhost` or `127.0.0.1.nip.io` are caught at fetch time;
//! 3. on every redirect target, since a public feed can redirect to a
//!    private IP literal, which never goes through DNS.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an address is not on the public internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16.
    Private,
    /// 169.254/16 (cloud metadata services live here), fe80::/10.
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    /// 100.64/10, carrier-grade NAT.
    SharedAddressSpace,
    /// 0.0.0.0, ::.
    Unspecified,
    /// Multicast and broadcast.
    Multicast,
    /// Documentation, benchmarking and other reserved ranges.
    Reserved,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Loopback => "a loopback address",
            Self::Private => "a private network address",
            Self::LinkLocal => "a link-local address (such as the cloud metadata service)",
            Self::UniqueLocal => "an IPv6 unique-local address",
            Self::SharedAddressSpace => "a carrier-grade NAT address",
            Self::Unspecified => "an unspecified address",
            Self::Multicast => "a multicast address",
            Self::Reserved => "a reserved address",
        })
    }
}

/// Classifies an address; `None` means it is public and may be fetched.
pub fn classify(ip: IpAddr) -> Option<AddressKind> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        Some(AddressKind::Unspecified) // 0.0.0.0/8, "this network"
    } else if ip.is_loopback() {
        Some(AddressKind::Loopback)
    } else if ip.is_private() {
        Some(AddressKind::Private)
    } else if ip.is_link_local() {
        Some(AddressKind::LinkLocal)
    } else if a == 100 && (64..128).contains(&b) {
        Some(AddressKind::SharedAddressSpace) // 100.64.0.0/10
    } else if ip.is_multicast() {
        Some(AddressKind::Multicast)
    } else if a >= 240
        || (a == 198 && (b == 18 || b == 19))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
    {
        Some(AddressKind::Reserved) // 240/4 + broadcast, 198.18/15, 192.0.0/24
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressKind> {
    // An IPv4 address in IPv6 clothing is judged as IPv4: ::ffff:127.0.0.1
    // (mapped), ::127.0.0.1 (compatible), ::ffff:0:127.0.0.1 (translated),
    // 64:ff9b::7f00:1 (NAT64) and 2002:7f00:1:: (6to4).
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    let seg = ip.segments();
    if seg[..2] == [0x2001, 0] // Teredo: the IPv4 inside is obfuscated
        || seg[..3] == [0x64, 0xff9b, 1] // local-use NAT64, 64:ff9b:1::/48
        || seg[..4] == [0x100, 0, 0, 0] // discard-only, 100::/64
        || seg[..2] == [0x2001, 0xdb8]
    // documentation
    {
        return Some(AddressKind::Reserved);
    }
    if ip.is_unspecified() {
        Some(AddressKind::Unspecified)
    } else if ip.is_loopback() {
        Some(AddressKind::Loopback)
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Some(AddressKind::UniqueLocal) // fc00::/7
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Some(AddressKind::LinkLocal) // fe80::/10
    } else if seg[0] & 0xffc0 == 0xfec0 {
        Some(AddressKind::Private) // fec0::/10, deprecated site-local
    } else if ip.is_multicast() {
        Some(AddressKind::Multicast)
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address carries, in the forms that reach it.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let seg = ip.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    let nat64 = seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    let compatible = seg[..6] == [0; 6] && seg[6] != 0;
    let translated = seg[..6] == [0, 0, 0, 0, 0xffff, 0];
    if nat64 || compatible || translated {
        Some(v4(seg[6], seg[7]))
    } else if seg[0] == 0x2002 {
        Some(v4(seg[1], seg[2])) // 6to4, 2002:AABB:CCDD::/48
    } else {
        None
    }
}

/// A refused destination. The message names the host and why; for a host
/// *name*, never the address it resolved to (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} {verb} {kind}", verb = if self.host == self.ip.to_string() { "is" } else { "resolves to" })]
pub struct Blocked {
    /// The host the URL named.
    pub host: String,
    /// The address it resolved to, or was.
    pub ip: IpAddr,
    /// Why that address is refused.
    pub kind: AddressKind,
}

/// A host name that did not resolve; kept as its own type so the fetcher can
/// tell "no such host" from other connection errors.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve host {host}")]
pub struct Unresolvable {
    /// The host that did not resolve.
    pub host: String,
}

/// The policy: refuse non-public addresses unless told otherwise.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Every private address allowed, but link-local ones
    /// (`--allow-private-feeds`).
    allow_private: bool,
    /// Networks permitted despite the policy (`--allow-feed-addresses`).
    allowed: Arc<[IpNet]>,
}

impl Guard {
    /// A guard that refuses private addresses unless `allow_private`.
    pub fn new(allow_private: bool) -> Self {
        Self {
            allow_private,
            allowed: Arc::new([]),
        }
    }

    /// Permits these networks, whatever they are (see the field's doc).
    pub fn with_exceptions(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.allowed = networks.into_iter().collect();
        self
    }

    /// Whether every private address (but link-local ones) is allowed.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether `host` may be fetched from `ip`.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), Blocked> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(kind) if self.allow_private && kind != AddressKind::LinkLocal => Ok(()),
            Some(kind) => Err(Blocked {
                host: host.to_owned(),
                ip,
                kind,
            }),
        }
    }

    /// Checks a URL whose host is an IP literal; names pass (the resolver
    /// checks them). Synchronous, so it can run inside a redirect policy.
    pub fn check_literal(&self, url: &Url) -> Result<(), Blocked> {
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        self.check_ip(&ip.to_string(), ip)
    }

    /// Checks a URL before subscribing: its literal address, or every address
    /// its name resolves to. A name that does not resolve *now* (or not
    /// within 2 s) is accepted: DNS can be briefly down, the fetch-time
    /// check still applies, and the feed will show the error.
    pub async fn check_url(&self, url: &Url) -> Result<(), Blocked> {
        const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
        self.check_literal(url)?;
        if let Some(Host::Domain(name)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(80);
            let lookup =
                tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port)));
            if let Ok(Ok(addrs)) = lookup.await {
                for addr in addrs {
                    self.check_ip(name, addr.ip())?;
                }
            }
        }
        Ok(())
    }
}

/// reqwest DNS resolver that refuses names resolving to forbidden addresses.
///
/// Checking the addresses the client will actually connect to (rather than
/// resolving once on our own and again in the client) closes the DNS
/// rebinding gap.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    /// A resolver that resolves with the system and checks with `guard`.
    pub fn new(guard: Guard) -> Self {
        Self { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let lookup = tokio::net::lookup_host((host.clone(), 0)).await;
            let addrs: Vec<SocketAddr> = match lookup {
                Ok(addrs) => addrs.collect(),
                Err(_) => return Err(Unresolvable { host }.into()),
            };
            if addrs.is_empty() {
                return Err(Unresolvable { host }.into());
            }
            // Refuse if *any* address is forbidden: the client may try them all.
            for addr in &addrs {
                guard.check_ip(&host, addr.ip())?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<AddressKind> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:2800:220:1::1",
            "100.128.0.1",
            "172.32.0.1",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn internal_addresses_are_classified() {
        let cases = [
            ("127.0.0.1", AddressKind::Loopback),
            ("127.8.9.10", AddressKind::Loopback),
            ("::1", AddressKind::Loopback),
            ("10.0.0.1", AddressKind::Private),
            ("172.16.5.4", AddressKind::Private),
            ("192.168.1.1", AddressKind::Private),
            ("169.254.169.254", AddressKind::LinkLocal),
            ("fe80::1", AddressKind::LinkLocal),
            ("fd00::1", AddressKind::UniqueLocal),
            ("100.64.0.1", AddressKind::SharedAddressSpace),
            ("0.0.0.0", AddressKind::Unspecified),
            ("::", AddressKind::Unspecified),
            ("224.0.0.1", AddressKind::Multicast),
            ("ff02::1", AddressKind::Multicast),
            ("255.255.255.255", AddressKind::Reserved),
        ];
        for (ip, expected) in cases {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn ipv4_hidden_in_ipv6_is_judged_as_ipv4() {
        assert_eq!(kind("::ffff:127.0.0.1"), Some(AddressKind::Loopback));
        assert_eq!(kind("::ffff:169.254.169.254"), Some(AddressKind::LinkLocal));
        assert_eq!(kind("64:ff9b::a00:1"), Some(AddressKind::Private));
        assert_eq!(kind("::10.0.0.1"), Some(AddressKind::Private));
        assert_eq!(kind("::ffff:8.8.8.8"), None);
    }

    #[test]
    fn tunnels_and_translations_that_carry_a_private_ipv4_are_refused() {
        // 6to4 of 10.0.0.1, IPv4-translated, and NAT64 of the metadata
        // service: judged by the address inside.
        assert_eq!(kind("2002:a00:1::"), Some(AddressKind::Private));
        assert_eq!(kind("2002:7f00:1::1"), Some(AddressKind::Loopback));
        assert_eq!(kind("::ffff:0:a00:1"), Some(AddressKind::Private));
        assert_eq!(kind("64:ff9b::a9fe:a9fe"), Some(AddressKind::LinkLocal));
        // Local-use NAT64, Teredo (whose IPv4 is obfuscated), discard-only
        // and documentation ranges: never public.
        for ip in [
            "64:ff9b:1::a00:1",
            "2001:0:4136:e378::1",
            "100::1",
            "2001:db8::1",
        ] {
            assert_eq!(kind(ip), Some(AddressKind::Reserved), "{ip}");
        }
        // 6to4 of a public address stays public.
        assert_eq!(kind("2002:808:808::1"), None);
    }

    #[test]
    fn literal_urls_are_checked_without_dns() {
        let guard = Guard::new(false);
        let err = guard
            .check_literal(&Url::parse("http://169.254.169.254/latest/meta-data/").unwrap())
            .unwrap_err();
        assert_eq!(err.kind, AddressKind::LinkLocal);
        assert_eq!(
            err.to_string(),
            "169.254.169.254 is a link-local address (such as the cloud metadata service)"
        );
        assert!(
            guard
                .check_literal(&Url::parse("http://[::1]:8080/").unwrap())
                .is_err()
        );
        assert!(
            guard
                .check_literal(&Url::parse("http://example.com/").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn the_operator_can_allow_private_feeds_but_not_the_metadata_service() {
        let guard = Guard::new(true);
        let check = |url: &str| guard.check_literal(&Url::parse(url).unwrap());
        assert!(check("http://10.1.2.3/").is_ok());
        assert!(check("http://127.0.0.1:8080/").is_ok());
        assert!(check("http://169.254.169.254/latest/meta-data/").is_err());
        assert!(check("http://[fe80::1]/").is_err());
    }

    #[test]
    fn listed_networks_are_allowed_and_nothing_else() {
        let guard = Guard::new(false).with_exceptions([
            "10.20.0.0/16".parse().unwrap(),
            "169.254.10.10/32".parse().unwrap(),
        ]);
        let check = |ip: &str| guard.check_ip("feeds.internal", ip.parse().unwrap());
        assert!(check("10.20.3.4").is_ok());
        assert!(check("10.21.0.1").is_err());
        assert!(
            check("169.254.10.10").is_ok(),
            "an explicit entry opens even link-local"
        );
        assert!(check("169.254.169.254").is_err());
    }

    #[test]
    fn a_refusal_never_names_the_address_a_name_resolved_to() {
        let guard = Guard::new(false);
        let err = guard
            .check_ip("cassandra", "172.18.0.3".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cassandra resolves to a private network address"
        );
    }

    #[test]
    fn exceptions_allow_exactly_the_listed_addresses() {
        let guard = Guard::new(false).with_exceptions(["127.0.0.1/32".parse().unwrap()]);
        assert!(
            guard
                .check_ip("localhost", "127.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            guard
                .check_ip("localhost", "127.0.0.2".parse().unwrap())
                .is_err()
        );
        assert!(guard.check_ip("localhost", "::1".parse().unwrap()).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_at_subscribe_time() {
        let err = Guard::new(false)
            .check_url(&Url::parse("http://localhost/feed").unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.kind, AddressKind::Loopback);
        assert!(
            err.to_string()
                .starts_with("localhost resolves to a loopback address"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_forbidden_names() {
        let resolver = GuardedResolver::new(Guard::new(false));
        let name: Name = "localhost".parse().unwrap();
        let err = match resolver.resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.downcast_ref::<Blocked>().is_some(), "{err}");
    }
}

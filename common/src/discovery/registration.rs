//! Who this process is, as the registry lists it: the record a standard
//! Eureka client sends when it registers.

use serde_json::{Value, json};

use super::eureka::Status;
use super::settings::DiscoverySettings;

/// Who this process is, as the registry will list it.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Upper case, e.g. `MIDDLETIER`.
    pub app: String,
    /// e.g. `middletier`.
    pub vip: String,
    /// The id in the registry, unique per instance.
    pub instance_id: String,
    /// Where callers connect: the advertised host.
    pub host: String,
    /// The address put in `ipAddr`: the advertised host, unless that is a
    /// name (see [`Registration::with_ip`]).
    pub ip: String,
    /// The port callers connect to.
    pub port: u16,
}

impl Registration {
    /// A registration with the conventional id `{host}:{vip}:{port}`.
    pub fn new(app: &str, vip: &str, host: &str, port: u16, instance_id: Option<String>) -> Self {
        Self {
            app: app.to_ascii_uppercase(),
            vip: vip.to_owned(),
            instance_id: instance_id.unwrap_or_else(|| format!("{host}:{vip}:{port}")),
            host: host.to_owned(),
            ip: host.to_owned(),
            port,
        }
    }

    /// The same registration with `ip` as its `ipAddr`, for a host
    /// advertised by name (see [`super::advertise_ip`]).
    pub fn with_ip(mut self, ip: String) -> Self {
        self.ip = ip;
        self
    }

    /// The record a standard Eureka client would send.
    pub(super) fn body(
        &self,
        status: Status,
        settings: &DiscoverySettings,
        dirty_ms: u64,
    ) -> Value {
        let base = super::http_base(&self.host, self.port);
        json!({"instance": {
            "instanceId": self.instance_id,
            "hostName": self.host,
            "app": self.app,
            "ipAddr": self.ip,
            "status": status.as_str(),
            "overriddenstatus": "UNKNOWN",
            "port": {"$": self.port, "@enabled": "true"},
            "securePort": {"$": 443, "@enabled": "false"},
            "countryId": 1,
            "dataCenterInfo": {
                "@class": "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo",
                "name": "MyOwn"
            },
            "leaseInfo": {
                "renewalIntervalInSecs": settings.renewal_interval.as_secs().max(1),
                "durationInSecs": settings.lease_duration.as_secs().max(1)
            },
            "metadata": {"@class": "java.util.Collections$EmptyMap"},
            "homePageUrl": format!("{base}/"),
            "statusPageUrl": format!("{base}/healthcheck"),
            "healthCheckUrl": format!("{base}/healthcheck"),
            "vipAddress": self.vip,
            "secureVipAddress": self.vip,
            "isCoordinatingDiscoveryServer": "false",
            "lastUpdatedTimestamp": dirty_ms.to_string(),
            "lastDirtyTimestamp": dirty_ms.to_string()
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    #[test]
    fn an_ipv6_host_makes_valid_urls_in_the_record() {
        let me = Registration::new("middletier", "middletier", "::1", 9191, None);
        let body = me.body(Status::Up, &DiscoverySettings::default(), 42);
        for field in ["homePageUrl", "statusPageUrl", "healthCheckUrl"] {
            let url = body["instance"][field].as_str().unwrap();
            assert!(url.starts_with("http://[::1]:9191/"), "{field}: {url}");
            assert!(Url::parse(url).is_ok(), "{field}: {url}");
        }
    }

    #[test]
    fn the_registration_body_is_what_a_eureka_client_sends() {
        let me = Registration::new("middletier", "middletier", "10.0.0.5", 9191, None);
        let body = me.body(Status::Up, &DiscoverySettings::default(), 42);
        let record = crate::discovery::eureka::InstanceRecord::from_envelope(body).unwrap();
        assert_eq!(
            record.instance_id().as_deref(),
            Some("10.0.0.5:middletier:9191")
        );
        assert_eq!(record.app().as_deref(), Some("MIDDLETIER"));
        assert_eq!(record.status(), Status::Up);
        assert_eq!(record.port(), Some(9191));
        assert!(record.port_enabled());
        assert_eq!(record.lease_field("durationInSecs"), Some(90));
        assert_eq!(record.lease_field("renewalIntervalInSecs"), Some(30));
        assert_eq!(record.last_dirty_timestamp(), Some(42));
        assert_eq!(
            record.text("healthCheckUrl").as_deref(),
            Some("http://10.0.0.5:9191/healthcheck")
        );
    }
}

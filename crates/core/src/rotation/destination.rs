//! Where rotation webhooks may go. Anyone allowed to write a secret's metadata can name a
//! webhook URL, and Ward then sends a request there from inside the network: without a check
//! that is a server-side request forgery, aimed at the cloud metadata service
//! (169.254.169.254), at services on Ward's own host (loopback), or at the internal network.
//! So, unless the operator allows it (`[rotation] webhook_allow_internal`), a webhook may only
//! reach public addresses. The check runs on the addresses the connection will use: the
//! HTTP client resolves names through [`WebhookResolver`], which refuses a name with any
//! internal address, so a name cannot pass the check and then resolve elsewhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Whether `ip` is internal: loopback, private, link-local, shared (CGNAT), unspecified,
/// broadcast, multicast or reserved, or an IPv6 address that embeds such an IPv4 address.
pub(crate) fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
        || ip == Ipv4Addr::new(168, 63, 129, 16) // Azure's platform endpoint (metadata, DHCP, DNS)
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Prefixes that carry an IPv4 address to a translator or tunnel, which then reaches
        // it wherever it is (its range is not checked: a gateway may translate or route it
        // anywhere): IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and its local-use
        // 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32.
        || segments[..6] == [0; 6]
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || segments[..3] == [0x64, 0xff9b, 1]
        || segments[0] == 0x2002
        || segments[..2] == [0x2001, 0]
        || segments[..4] == [0x100, 0, 0, 0] // discard-only
        || segments[..2] == [0x2001, 0xdb8] // documentation
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inside)
}

/// Why a webhook URL's host may not be reached, if it may not: checked when the URL is set
/// (for addresses written in it) and again before each delivery.
pub(crate) fn refuse_host(host: &url::Host<&str>, allow_internal: bool) -> Option<String> {
    if allow_internal {
        return None;
    }
    let internal = match host {
        url::Host::Ipv4(ip) => is_internal_v4(*ip),
        url::Host::Ipv6(ip) => is_internal_v6(*ip),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    internal.then(|| {
        format!(
            "webhook_url points at an internal address ({host}); an operator can allow that \
             with [rotation] webhook_allow_internal = true"
        )
    })
}

/// Resolves webhook host names, refusing a name with any internal address (unless allowed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WebhookResolver {
    /// The operator allows internal destinations.
    pub(crate) allow_internal: bool,
}

impl WebhookResolver {
    /// The addresses of `host`, or why a webhook may not go there.
    pub(crate) async fn lookup(self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("cannot resolve the webhook host: {e}"))?
            .collect();
        if !self.allow_internal && addrs.iter().any(|a| is_internal(a.ip())) {
            return Err(
                "the webhook host resolves to an internal address; an operator can \
                        allow that with [rotation] webhook_allow_internal = true"
                    .into(),
            );
        }
        Ok(addrs)
    }
}

/// How long the check of a webhook URL waits for its name to resolve when the URL is set.
const SET_TIME_LOOKUP: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a webhook URL whose host is a name may not be set, if it may not: the name resolves
/// (now) to an internal address. The same resolution and rule as delivery, so that the
/// mistake shows when the URL is set rather than as deliveries that never happen. A name
/// that does not resolve now is let through: delivery resolves and checks it again.
pub(crate) async fn refuse_name(host: &url::Host<&str>, allow_internal: bool) -> Option<String> {
    let url::Host::Domain(name) = host else {
        return None;
    };
    if allow_internal {
        return None;
    }
    // The lookup delivery makes (see `WebhookResolver::lookup`).
    let addrs = tokio::time::timeout(SET_TIME_LOOKUP, tokio::net::lookup_host((*name, 0)))
        .await
        .ok()?
        .ok()?;
    let internal = addrs.map(|a| a.ip()).find(|ip| is_internal(*ip))?;
    Some(format!(
        "webhook_url points at an internal address ({name} resolves to {internal}); an \
         operator can allow that with [rotation] webhook_allow_internal = true"
    ))
}

impl Resolve for WebhookResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = *self;
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::101:101",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:2::1",
            "::7f00:1",
            "::a9fe:a9fe",
            "::101:101",
            "2002:a9fe:a9fe::1",
            "2002:0101:0101::1",
            "2001:0:4136:e378::1",
            "168.63.129.16",
            "fec0::1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "2001:4860:4860::8888",
            "168.63.129.17",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn hosts_written_in_the_url_are_checked_unless_allowed() {
        let refused = |url: &str, allow: bool| {
            let url = url::Url::parse(url).unwrap();
            refuse_host(&url.host().unwrap(), allow)
        };
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::ffff:10.0.0.1]/",
            "http://localhost:8080/",
            "http://api.localhost/",
        ] {
            assert!(refused(url, false).is_some(), "{url}");
            assert!(refused(url, true).is_none(), "{url}");
        }
        assert!(refused("https://hooks.example.com/ward", false).is_none());
        assert!(refused("http://1.1.1.1/", false).is_none());
    }

    #[tokio::test]
    async fn names_that_resolve_inside_are_refused_unless_allowed() {
        let strict = WebhookResolver {
            allow_internal: false,
        };
        let error = strict.lookup("localhost").await.unwrap_err();
        assert!(error.contains("internal address"), "{error}");
        let open = WebhookResolver {
            allow_internal: true,
        };
        let addrs = open.lookup("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[tokio::test]
    async fn set_time_checks_resolve_names_as_delivery_does() {
        let host = url::Host::Domain("localhost");
        let why = refuse_name(&host, false).await.unwrap();
        assert!(why.contains("internal address"), "{why}");
        assert!(refuse_name(&host, true).await.is_none());
        // Addresses are refuse_host's; names that do not resolve are left to delivery.
        let ip = url::Host::Ipv4(Ipv4Addr::LOCALHOST);
        assert!(refuse_name(&ip, false).await.is_none());
        let unknown = url::Host::Domain("no-such-host.invalid");
        assert!(refuse_name(&unknown, false).await.is_none());
    }
}

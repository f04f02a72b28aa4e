//! Outbound webhooks as the core sees them: it decides what to send, signs it and checks
//! where it may go; a [`WebhookSender`] the transport provides delivers it. The core opens
//! no connection and resolves no name.
//!
//! Where webhooks may go: anyone allowed to write a secret's metadata can name a webhook
//! URL, and Ward then sends a request there from inside the network. Without a check that is
//! a server-side request forgery, aimed at the cloud metadata service (169.254.169.254), at
//! services on Ward's own host (loopback), or at the internal network. So, unless the
//! operator allows it (`[rotation] webhook_allow_internal`), a webhook may only reach public
//! addresses: addresses written in the URL are checked here ([`refuse_host`]), names by the
//! sender, when the URL is set ([`WebhookSender::refuse_name`]) and again on the addresses
//! each delivery connects to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A signed notification to deliver. Its `Debug` leaves out the body and signature.
pub struct Webhook {
    /// Where it goes (already checked by [`refuse_host`]).
    pub url: String,
    /// The event (`X-Ward-Event`).
    pub event: &'static str,
    /// The JSON body.
    pub body: String,
    /// `sha256=<hex HMAC of the body>` under the webhook's secret (`X-Ward-Signature`).
    pub signature: String,
    /// The mount it is about, for logs.
    pub mount: String,
    /// The job it is about (a digest, not a path), for logs.
    pub job: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("event", &self.event)
            .field("mount", &self.mount)
            .field("job", &self.job)
            .finish_non_exhaustive()
    }
}

/// Delivers webhooks: provided by the transport, which owns the network.
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync {
    /// Why a webhook may not go to host `name`, if it may not: it resolves (now) to an
    /// internal address and `allow_internal` is off. Checked when a URL is set, so the
    /// mistake shows then rather than as deliveries that never happen.
    async fn refuse_name(&self, name: &str, allow_internal: bool) -> Option<String>;

    /// Delivers `webhook` in the background, with retries; failures are logged, never
    /// returned. Names must be resolved and checked as [`Self::refuse_name`] does, on the
    /// addresses the connection uses.
    fn deliver(&self, webhook: Webhook, allow_internal: bool);
}

/// The sender of a core no transport gave one: every webhook is refused.
pub(crate) struct NoSender;

#[async_trait::async_trait]
impl WebhookSender for NoSender {
    async fn refuse_name(&self, _name: &str, _allow_internal: bool) -> Option<String> {
        Some("this server sends no webhooks".into())
    }

    fn deliver(&self, webhook: Webhook, _allow_internal: bool) {
        tracing::warn!(mount = %webhook.mount, job = %webhook.job, "webhook not sent: this server sends no webhooks");
    }
}

/// The message for a name that resolves to an internal address.
pub fn internal_name_message(name: &str, internal: IpAddr) -> String {
    format!(
        "webhook_url points at an internal address ({name} resolves to {internal}); an \
         operator can allow that with [rotation] webhook_allow_internal = true"
    )
}

/// Whether `ip` is internal: loopback, private, link-local, shared (CGNAT), unspecified,
/// broadcast, multicast or reserved, or an IPv6 address that embeds such an IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
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
pub fn refuse_host(host: &url::Host<&str>, allow_internal: bool) -> Option<String> {
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
}

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

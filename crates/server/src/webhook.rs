//! Delivers the core's webhooks over HTTP. The core decides what to send and where; this
//! sends it, resolving names through [`WebhookResolver`] so that a webhook reaches only a
//! destination the core's rules allow (see [`ward_core::webhook`]): a name that passed the
//! check when it was set cannot resolve elsewhere when it is used.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use ward_core::webhook::{Webhook, WebhookSender, internal_name_message, is_internal};

/// Attempts at delivering one webhook, with back-off between them (1 s, 2 s, 4 s).
const ATTEMPTS: u32 = 4;

/// How long the check of a webhook URL waits for its name to resolve when the URL is set.
const SET_TIME_LOOKUP: Duration = Duration::from_secs(5);

/// Sends webhooks with reqwest: no redirects, no proxy, a 10 s timeout.
#[derive(Default)]
pub(crate) struct HttpWebhooks {
    /// One client per setting of `allow_internal` (built once each).
    clients: [OnceLock<reqwest::Client>; 2],
}

impl HttpWebhooks {
    /// The client for `allow_internal`. When it cannot be built the error is returned (and
    /// the next call tries again): a default client would skip every check.
    fn client(&self, allow_internal: bool) -> Result<reqwest::Client, reqwest::Error> {
        let slot = &self.clients[usize::from(allow_internal)];
        if let Some(client) = slot.get() {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(WebhookResolver { allow_internal }))
            .build()?;
        Ok(slot.get_or_init(|| client).clone())
    }
}

#[async_trait::async_trait]
impl WebhookSender for HttpWebhooks {
    async fn refuse_name(&self, name: &str, allow_internal: bool) -> Option<String> {
        if allow_internal {
            return None;
        }
        // The lookup delivery makes. A name that does not resolve now is let through:
        // delivery resolves and checks it again.
        let addrs = tokio::time::timeout(SET_TIME_LOOKUP, tokio::net::lookup_host((name, 0)))
            .await
            .ok()?
            .ok()?;
        let internal = addrs.map(|a| a.ip()).find(|ip| is_internal(*ip))?;
        Some(internal_name_message(name, internal))
    }

    fn deliver(&self, webhook: Webhook, allow_internal: bool) {
        let client = match self.client(allow_internal) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(mount = %webhook.mount, job = %webhook.job, error = %e, "webhook not sent: its HTTP client cannot be built");
                return;
            }
        };
        tokio::spawn(async move {
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                }
                let sent = client
                    .post(&webhook.url)
                    .header("Content-Type", "application/json")
                    .header("X-Ward-Event", webhook.event)
                    .header("X-Ward-Signature", &webhook.signature)
                    .body(webhook.body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => {
                        tracing::warn!(mount = %webhook.mount, job = %webhook.job, status = r.status().as_u16(), "webhook refused")
                    }
                    Err(e) => {
                        tracing::warn!(mount = %webhook.mount, job = %webhook.job, error = %e.without_url(), "webhook failed")
                    }
                }
            }
        });
    }
}

/// Resolves webhook host names, refusing a name with any internal address (unless allowed).
#[derive(Debug, Clone, Copy)]
struct WebhookResolver {
    /// The operator allows internal destinations.
    allow_internal: bool,
}

impl WebhookResolver {
    /// The addresses of `host`, or why a webhook may not go there.
    async fn lookup(self, host: &str) -> Result<Vec<SocketAddr>, String> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| format!("cannot resolve the webhook host: {e}"))?
            .collect();
        if !self.allow_internal && addrs.iter().any(|a| is_internal(a.ip())) {
            return Err(
                "the webhook host resolves to an internal address; an operator can allow that \
                 with [rotation] webhook_allow_internal = true"
                    .into(),
            );
        }
        Ok(addrs)
    }
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
        let sender = HttpWebhooks::default();
        let why = sender.refuse_name("localhost", false).await.unwrap();
        assert!(why.contains("internal address"), "{why}");
        assert!(sender.refuse_name("localhost", true).await.is_none());
        // Names that do not resolve are left to delivery.
        let unknown = sender.refuse_name("no-such-host.invalid", false).await;
        assert!(unknown.is_none());
    }
}

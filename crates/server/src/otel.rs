//! OpenTelemetry trace export (cargo feature `otel`): Ward's `tracing` spans, sent in batches
//! over OTLP/HTTP with protobuf bodies to `[telemetry] otlp_endpoint`.
//!
//! Only spans are exported, never events: a span carries just the fields Ward gives it (the
//! request span has the request id, method, route template and status), while events are log
//! lines whose text is not meant for a third party. Paths are exported only as route
//! templates, because a raw path names a secret.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::{Layer, Registry};

use crate::ServerError;

/// The OTLP/HTTP path of the traces signal, appended to a base endpoint.
const TRACES_PATH: &str = "/v1/traces";

/// The running exporter; [`Otel::shutdown`] sends what is still queued.
pub(crate) struct Otel {
    provider: SdkTracerProvider,
}

impl Otel {
    /// Flushes the queued spans and stops the batch thread (blocks until the collector
    /// answered or the export timed out).
    pub(crate) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry exporter did not shut down cleanly");
        }
    }
}

/// A `tracing` layer exporting Ward's spans to `endpoint`, and the handle that flushes them.
pub(crate) fn layer(
    endpoint: &str,
    service_name: &str,
) -> Result<(impl Layer<Registry> + Send + Sync + 'static, Otel), ServerError> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| ServerError::Config(format!("telemetry.otlp_endpoint: {e}")))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let tracer = provider.tracer("ward");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // Ward's own spans at info or above: not events (see the module docs), and not the
        // HTTP client's spans (exporting those would export the exports).
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("ward") && *meta.level() <= Level::INFO
        }));
    Ok((layer, Otel { provider }))
}

/// `http://host:4318` → `http://host:4318/v1/traces`; a URL already ending in the traces
/// path is kept as it is.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_owned()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn appends_the_traces_path_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("https://c/otlp/v1/traces"),
            "https://c/otlp/v1/traces"
        );
    }
}

//! The request id on every log line written while a request runs.
//!
//! A `tracing` span per request would carry it, but creating, entering, leaving and closing
//! a span on every request took about a tenth of a cached read's time (the subscriber
//! formats the span's fields when it is created, whether or not a line is ever written). So
//! the id rides in a task-local for as long as the request's future runs, and the log
//! formatters below add it to each line written meanwhile. Builds with the `otel` feature
//! still open a span per request, since that is what they export.

use std::future::Future;
use std::sync::Arc;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `future` with `id` as the request id of the lines it logs.
pub(crate) async fn scope<F: Future>(id: Arc<str>, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// Runs `f` with `id` as the request id of the lines it logs.
pub(crate) fn sync_scope<R>(id: Arc<str>, f: impl FnOnce() -> R) -> R {
    REQUEST_ID.sync_scope(id, f)
}

/// The id of the request this task is running, if any.
fn current() -> Option<Arc<str>> {
    REQUEST_ID.try_with(Arc::clone).ok()
}

/// Human-readable lines, as tracing's default format writes them, with the request id where
/// the request's span stood: `2026-11-23T10:00:00.000000Z  INFO request{id=…}: target: msg`.
pub(crate) struct TextLines {
    /// Colour the level (only on a terminal).
    pub(crate) ansi: bool,
}

impl<S, N> FormatEvent<S, N> for TextLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        SystemTime.format_time(&mut writer)?;
        writer.write_char(' ')?;
        let level = meta.level();
        if self.ansi {
            let colour = match *level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                tracing::Level::DEBUG => "34",
                tracing::Level::TRACE => "35",
            };
            write!(writer, "\x1b[{colour}m{level:>5}\x1b[0m ")?;
        } else {
            write!(writer, "{level:>5} ")?;
        }
        // With the `otel` feature the request's own span is in scope and names the id.
        let in_request_span = ctx
            .event_scope()
            .is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        if let Some(id) = current().filter(|_| !in_request_span) {
            write!(writer, "request{{id={id}}}: ")?;
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                write!(writer, "{}", span.name())?;
                let ext = span.extensions();
                match ext.get::<FormattedFields<N>>() {
                    Some(fields) if !fields.is_empty() => write!(writer, "{{{fields}}}: ")?,
                    _ => writer.write_str(": ")?,
                }
            }
        }
        write!(writer, "{}: ", meta.target())?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// JSON lines (tracing's JSON format) with a top-level `request_id` field first.
pub(crate) struct JsonLines<F> {
    /// tracing's JSON formatter.
    pub(crate) inner: F,
}

impl<S, N, F> FormatEvent<S, N> for JsonLines<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            // The id is a UUID this server made: nothing in it needs escaping.
            Some(rest) => write!(writer, "{{\"request_id\":\"{id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::Mutex;
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    async fn log_in_and_out_of_a_request() {
        scope(Arc::from("req-1"), async {
            tracing::info!(answer = 42, "inside");
        })
        .await;
        tracing::info!("outside");
        sync_scope(Arc::from("req-2"), || tracing::warn!("after"));
    }

    #[tokio::test]
    async fn text_lines_carry_the_request_id_of_the_request_they_were_written_in() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(TextLines { ansi: false })
            .with_writer(out.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        log_in_and_out_of_a_request().await;
        let text = out.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains(" INFO request{id=req-1}: "), "{text}");
        assert!(lines[0].ends_with("inside answer=42"), "{text}");
        assert!(!lines[1].contains("request{"), "{text}");
        assert!(lines[2].contains(" WARN request{id=req-2}: "), "{text}");
    }

    #[tokio::test]
    async fn json_lines_carry_the_request_id_as_a_field() {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines {
                inner: tracing_subscriber::fmt::format().json(),
            })
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .with_writer(out.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        log_in_and_out_of_a_request().await;
        let lines: Vec<serde_json::Value> = out
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["request_id"], "req-1");
        assert_eq!(lines[0]["fields"]["message"], "inside");
        assert!(lines[1].get("request_id").is_none());
        assert_eq!(lines[2]["request_id"], "req-2");
    }
}
